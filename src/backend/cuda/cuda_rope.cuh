/*
 * backend/cuda/cuda_rope.cuh — rope's arithmetic for the kernels that apply
 * it: cuda_ops.cu's k_rope and k_rope_kv, and the ring mat-vec's fused
 * epilogue (cuda_mmv_ring.cu), which must give their bits.
 *   rope_angle   the (cos, sin) of pair i at position p, in double as the CPU's
 *                (rope_angle_of: from the pair's inv_freq)
 *   rope_turn    one pair (a, b) turned by (cs, sn)
 *   rope_kv_slot the K/V pool slot of a cuda_rope_kv's batch row
 *   rope_pair_turn, rope_kv_put  a q/k/v mat-vec's epilogue with rope, for
 *                k_mmv_ring's and k_mmv_q's ROPE instances
 */
#ifndef REALM_BACKEND_CUDA_CUDA_ROPE_CUH
#define REALM_BACKEND_CUDA_CUDA_ROPE_CUH

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_kv.cuh"

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

/* bar.sync on named barrier 1 + pair (0..3) for the pair's 64 threads:
 * immediate ids (with a register id ptxas reserves all 16) */
__device__ __forceinline__ void rope_pair_bar(int pair)
{
    switch (pair) {
    case 0:
        asm volatile("bar.sync 1, 64;\n" ::: "memory");
        break;
    case 1:
        asm volatile("bar.sync 2, 64;\n" ::: "memory");
        break;
    case 2:
        asm volatile("bar.sync 3, 64;\n" ::: "memory");
        break;
    default:
        asm volatile("bar.sync 4, 64;\n" ::: "memory");
        break;
    }
}

/* v: a warp's sum (+ bias) for one row of a rope pair (rows 2i, 2i + 1 of a
 * head) whose other row the neighbouring warp (warp ^ 1) holds: a tile's or
 * block's rows start at an even warp. The sums meet in xch[warp] under the
 * pair's named barrier (both warps call this); returns this row turned by
 * (cs, sn), k_rope_kv's arithmetic and so its bits, on the lane whose cs
 * and sn are the pair's angle. */
__device__ __forceinline__ float rope_pair_turn(float v, int lane, int warp, float cs, float sn,
                                                float *xch)
{
    if (lane == 0) xch[warp] = v;
    rope_pair_bar(warp / 2);
    const float u = xch[warp ^ 1];
    float x0, x1;
    if (warp & 1) {
        rope_turn(u, v, cs, sn, &x0, &x1);
        return x1;
    }
    rope_turn(v, u, cs, sn, &x0, &x1);
    return x0;
}

/* row o_row of member mi (q, k, v) into out and, for k and v, the K/V
 * pool's slot, of KV elements (d.kv_f16's type: the launch picks the
 * instance; a branch on d.kv_f16 here moved the ring's register counts) */
template <typename KV>
__device__ __forceinline__ void rope_kv_put(const cuda_rope_kv &d, int mi, int64_t o_row,
                                            float *out, size_t slot, float v)
{
    out[o_row] = v;
    if (mi > 0) kv_put((KV *)(mi == 1 ? d.kbase : d.vbase) + slot * d.nk * d.head_dim + o_row, v);
}

#endif
