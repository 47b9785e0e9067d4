/*
 * backend/cpu/cpu_kernels.h — the CPU backend's compute kernels, one table per
 * instruction set, chosen once at run time from the CPU's features.
 *
 * Variants live in their own files compiled with their own ISA flags
 * (x86_avx2*.c with -mavx2 -mfma -mf16c); the rest of the build stays
 * portable and cpu_dispatch.c only calls a variant after CPUID says it runs.
 * The scalar table wraps the quant/ reference kernels (the oracle).
 *
 * gemm contract: out[c * out_stride + r] = dot(weight row r, activation row c)
 * for r < nr, c < nc, where weight rows are w_stride bytes apart and
 * activation rows (already in the weight type's vec_dot_type) a_stride bytes
 * apart, each k elements long (k a multiple of the block sizes). Every output
 * element is computed by the same sequence of floating-point operations
 * whatever nr and nc are and wherever the element sits in a tile, so results
 * do not depend on how a matmul is split into tiles, threads or batches
 * (batched and unbatched forward passes are bit-identical). Pure, thread-safe.
 *
 * quantize contract: the same bytes as the type's reference from_float.
 * f32_dot / f32_axpy / attn_* / exp_sum: attention helpers; swiglu: the FFN gate.
 * Their order of operations depends only on n, never on the batch.
 */
#ifndef REALM_BACKEND_CPU_CPU_KERNELS_H
#define REALM_BACKEND_CPU_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant/types.h"

typedef void (*realm_cpu_gemm_fn)(int64_t k, const void *w, size_t w_stride, int64_t nr,
                                  const void *a, size_t a_stride, int64_t nc, float *out,
                                  size_t out_stride);

/* pack contract: rewrites nr weight rows (GGUF layout, w_stride apart, k
 * elements) into dst in the kernel's own layout: ceil(nr / tile_rows) panels,
 * each tile_rows * w_stride bytes (rows past nr read as zero). gemm_packed has
 * gemm's contract with w pointing at the panel that holds weight row 0 (so
 * row r0, a multiple of tile_rows, is at w + r0 * w_stride) and returns the
 * same bits as gemm on the unpacked rows. */
typedef void (*realm_cpu_pack_fn)(int64_t k, const void *w, size_t w_stride, int64_t nr,
                                  void *dst);

typedef struct realm_cpu_kernels {
    const char *name; /* "avx2", "scalar" */
    /* NULL slots fall back to the type's reference vec_dot / from_float. */
    realm_cpu_gemm_fn gemm[REALM_TYPE_COUNT];       /* by weight type */
    realm_cpu_pack_fn pack[REALM_TYPE_COUNT];       /* NULL: the type is used unpacked */
    realm_cpu_gemm_fn gemm_packed[REALM_TYPE_COUNT]; /* set with pack */
    realm_from_float_fn quantize[REALM_TYPE_COUNT]; /* by activation type */
    float (*f32_dot)(int64_t n, const float *x, const float *y);
    void (*f32_axpy)(int64_t n, float a, const float *x, float *y); /* y += a * x */
    /* Attention over n positions of the KV pool whose rows (hd elements:
     * f16 where f16, else f32; an f16 widens exactly) lie stride elements
     * apart, for nq queries (q + h * qs) at once:
     * out[h * os + t] = dot(q + h * qs, k + t * stride) * scale, each
     * query's bits the same whatever nq; and, likewise for nq queries,
     * (acc + h * as)[0..hd) += sum_t (w + h * ws)[t] * (v + t * stride).
     * An f16 row gives the bits of the same row widened to f32. */
    void (*attn_scores)(int64_t n, int64_t hd, int nq, const float *q, size_t qs, const void *k,
                        size_t stride, bool f16, float scale, float *out, size_t os);
    void (*attn_values)(int64_t n, int64_t hd, int nq, const float *w, size_t ws, const void *v,
                        size_t stride, bool f16, float *acc, size_t as);
    /* x[i] = exp(x[i] - max) in place; returns the sum of the new x[i]. */
    float (*exp_sum)(int64_t n, float *x, float max);
    /* gate[i] = silu(gate[i]) * up[i] */
    void (*swiglu)(int64_t n, float *gate, const float *up);
    int tile_rows; /* weight rows a kernel computes together: split matmuls on multiples */
} realm_cpu_kernels;

/* The best table this CPU runs (cached after the first call), or the scalar
 * one when REALM_CPU_KERNELS=scalar is set in the environment. */
const realm_cpu_kernels *realm__cpu_kernels(void);
/* Every table the CPU can run, best last, for tests; returns the count. */
int realm__cpu_kernels_all(const realm_cpu_kernels **out, int max);

extern const realm_cpu_kernels realm__cpu_kernels_scalar;
/* Fills t with the AVX2+FMA+F16C kernels; only call when the CPU has them. */
void realm__cpu_kernels_avx2_init(realm_cpu_kernels *t);
void realm__cpu_kernels_avx2_legacy_init(realm_cpu_kernels *t); /* 32-element formats */
void realm__cpu_kernels_avx2_k_init(realm_cpu_kernels *t);      /* K-quants, IQ4_XS */

#endif
