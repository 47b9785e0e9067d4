/* backend/cpu/cpu_dispatch.c — pick the kernel table the CPU runs. */
#include <math.h>
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "quant/fp16.h"

static float scalar_f32_dot(int64_t n, const float *x, const float *y)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void scalar_f32_axpy(int64_t n, float a, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* Element i of a KV pool row: f16 widened exactly, or f32. */
static float kv_elem(const void *row, int64_t i, bool f16)
{
    return f16 ? realm_fp16_to_fp32(((const realm_fp16 *)row)[i]) : ((const float *)row)[i];
}

static void scalar_attn_scores(int64_t n, int64_t hd, int nq, const float *q, size_t qs,
                               const void *k, size_t stride, bool f16, float scale, float *out,
                               size_t os)
{
    size_t es = f16 ? sizeof(realm_fp16) : sizeof(float);
    for (int h = 0; h < nq; h++)
        for (int64_t t = 0; t < n; t++) {
            const char *kt = (const char *)k + (size_t)t * stride * es;
            float s = 0.0f;
            for (int64_t i = 0; i < hd; i++)
                s += q[(size_t)h * qs + (size_t)i] * kv_elem(kt, i, f16);
            out[(size_t)h * os + t] = s * scale;
        }
}

static void scalar_attn_values(int64_t n, int64_t hd, int nq, const float *w, size_t ws,
                               const void *v, size_t stride, bool f16, float *acc, size_t as)
{
    size_t es = f16 ? sizeof(realm_fp16) : sizeof(float);
    for (int h = 0; h < nq; h++)
        for (int64_t t = 0; t < n; t++) {
            const char *vt = (const char *)v + (size_t)t * stride * es;
            float a = w[(size_t)h * ws + t], *y = acc + (size_t)h * as;
            for (int64_t i = 0; i < hd; i++)
                y[i] += a * kv_elem(vt, i, f16);
        }
}

static float scalar_exp_sum(int64_t n, float *x, float max)
{
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    return sum;
}

static void scalar_swiglu(int64_t n, float *gate, const float *up)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* Every gemm/quantize slot NULL: the driver uses the reference kernels. */
const realm_cpu_kernels realm__cpu_kernels_scalar = {
    .name = "scalar",
    .f32_dot = scalar_f32_dot,
    .f32_axpy = scalar_f32_axpy,
    .attn_scores = scalar_attn_scores,
    .attn_values = scalar_attn_values,
    .exp_sum = scalar_exp_sum,
    .swiglu = scalar_swiglu,
    .tile_rows = 1,
};

#if defined(__x86_64__) || defined(__i386__)
/* CPUID directly: clang 14's __builtin_cpu_supports has no "f16c". AVX2 also
 * needs the OS to save YMM state (OSXSAVE + XCR0 bits 1 and 2). */
static bool has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), osxsave = c & (1u << 27), f16c = c & (1u << 29);
    if (!fma || !osxsave || !f16c) return false;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6u) != 6u) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return b & (1u << 5); /* AVX2 */
}
#else
static bool has_avx2(void)
{
    return false;
}
#endif

static realm_cpu_kernels avx2_table;
static bool avx2_ok;
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

/* The x86_avx2*.c files are only built for x86 (CMakeLists.txt). */
static void avx2_fill(void)
{
    if (!has_avx2()) return;
#if defined(__x86_64__) || defined(__i386__)
    avx2_table = realm__cpu_kernels_scalar;
    realm__cpu_kernels_avx2_init(&avx2_table);
    realm__cpu_kernels_avx2_legacy_init(&avx2_table);
    realm__cpu_kernels_avx2_k_init(&avx2_table);
    avx2_ok = true;
#endif
}

static const realm_cpu_kernels *avx2(void)
{
    pthread_once(&avx2_once, avx2_fill);
    return avx2_ok ? &avx2_table : NULL;
}

const realm_cpu_kernels *realm__cpu_kernels(void)
{
    const char *force = getenv("REALM_CPU_KERNELS");
    if (force && !strcmp(force, "scalar")) return &realm__cpu_kernels_scalar;
    const realm_cpu_kernels *k = avx2();
    return k ? k : &realm__cpu_kernels_scalar;
}

int realm__cpu_kernels_all(const realm_cpu_kernels **out, int max)
{
    int n = 0;
    if (n < max) out[n++] = &realm__cpu_kernels_scalar;
    const realm_cpu_kernels *k = avx2();
    if (k && n < max) out[n++] = k;
    return n;
}
