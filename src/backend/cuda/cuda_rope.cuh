/*
 * backend/cuda/cuda_rope.cuh — rope's arithmetic for the kernels that apply
 * it: cuda_ops.cu's k_rope and k_rope_kv, and the ring mat-vec's fused
 * epilogue (cuda_mmv_ring.cu), which must give their bits.
 *   rope_angle   the (cos, sin) of pair i at position p, in double as the CPU's
 *                (rope_angle_of: from the pair's inv_freq)
 *   rope_turn    one pair (a, b) turned by (cs, sn)
 *   rope_kv_slot the K/V pool slot of a cuda_rope_kv's batch row
 */
#ifndef REALM_BACKEND_CUDA_CUDA_ROPE_CUH
#define REALM_BACKEND_CUDA_CUDA_ROPE_CUH

#include "backend/cuda/cuda_impl.h"

__device__ __forceinline__ void rope_angle_of(int32_t p, float inv_freq, float *cs, float *sn)
{
    double s, co;
    sincos((double)p * inv_freq, &s, &co);
    *cs = (float)co;
    *sn = (float)s;
}

__device__ __forceinline__ void rope_angle(int32_t i, int32_t p, const float *inv_freq, float *cs,
                                           float *sn)
{
    rope_angle_of(p, inv_freq[i], cs, sn);
}

__device__ __forceinline__ void rope_turn(float a, float b, float cs, float sn, float *x0,
                                          float *x1)
{
    /* rounded products and sums, as the CPU's: no contraction into fma,
     * which nvcc chooses per call site (the ring's epilogue and k_rope_kv
     * differed in the last bit) */
    *x0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn));
    *x1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(b, cs));
}

__device__ __forceinline__ size_t rope_kv_slot(const cuda_rope_kv &d, int32_t r)
{
    const int32_t p = d.pos[r];
    const int32_t block = d.tables[(int64_t)d.seq[r] * d.max_blocks + p / d.block_size];
    return ((size_t)d.layer * d.n_blocks + (size_t)block) * d.block_size +
           (size_t)(p % d.block_size);
}

#endif
