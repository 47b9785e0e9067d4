/*
 * backend/cuda/cuda_att.cuh — what the attention kernels share: the block
 * size of the one-row and decode-split kernels and their block-wide softmax
 * sums (block_exp_sum).
 */
#ifndef REALM_BACKEND_CUDA_CUDA_ATT_CUH
#define REALM_BACKEND_CUDA_CUDA_ATT_CUH

#include <math.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

#define ATT_THREADS 128

/* sc[t] = exp(sc[t] - max) for t < n over the whole block (ATT_THREADS
 * threads, red: n_warps floats of shared scratch); every thread gets the max
 * in *mx_out and the sum as the result. Shifting by the max keeps exp from
 * overflowing. Starts and ends with sc fully written (callers sync before).
 * Up to 32 values, warp 0 alone takes both by shuffles: one barrier instead
 * of three, and the same floats (the other warps' shares were -inf and 0). */
__device__ static inline float block_exp_sum(float *sc, int32_t n, float *red, float *mx_out)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = ATT_THREADS / 32;
    if (n <= 32) {
        if (warp == 0) {
            const float x = lane < n ? sc[lane] : -INFINITY;
            float m = x;
            for (int o = 16; o > 0; o >>= 1)
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            const float e = lane < n ? expf(x - m) : 0.0f;
            float s = e;
            for (int o = 16; o > 0; o >>= 1)
                s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane < n) sc[lane] = e;
            if (lane == 0) {
                red[0] = m;
                red[1] = s;
            }
        }
        __syncthreads();
        *mx_out = red[0];
        return red[1];
    }
    float mx = -INFINITY;
    for (int32_t t = threadIdx.x; t < n; t += ATT_THREADS)
        mx = fmaxf(mx, sc[t]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = red[0];
    for (int k = 1; k < n_warps; k++)
        mx = fmaxf(mx, red[k]);
    float sum = 0.0f;
    for (int32_t t = threadIdx.x; t < n; t += ATT_THREADS) {
        float e = expf(sc[t] - mx);
        sc[t] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    __syncthreads();
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int k = 0; k < n_warps; k++)
        sum += red[k];
    *mx_out = mx;
    return sum;
}

#endif
