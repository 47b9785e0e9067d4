/*
 * backend/cuda/cuda_kv.cuh — the K/V pool's elements (backend.h's
 * realm_kv_pool) for the kernels that store and read them. The kernels take
 * the element type KV as a template argument, float (REALM_TYPE_F32) or
 * __half (REALM_TYPE_F16), picked at launch by the pool's type (kv_is_f16),
 * so an f32 instance compiles to the code of an f32-only kernel.
 *   kv_put       stores one float: f16 rounds to nearest even
 *                (__float2half_rn: quant/fp16.h's bits for every non-NaN
 *                value; from 65520 on, inf), as the CPU backend's kv_store
 *   kv_load1     one element as a float (f16: exact)
 *   kv_load2/4   elements 2i, 2i + 1 (4i .. 4i + 3) from p in one load: 8
 *                or 16 bytes of f32, 4 or 8 of f16, so p must be aligned to
 *                that (pool rows and head offsets at multiples of 4
 *                elements: the callers check kv_dim % 4 and head_dim % 4);
 *                indexed as the float2/float4 arrays the f32 kernels read,
 *                which keeps their code as it was
 *   kv_raw<KV>   loads ahead of pdl_wait: kv_raw<KV>::load4/load1 keep the
 *                bits (a float4 or 4 halves, a float or a half) and
 *                kv_wide widens them after the wait, so no conversion waits
 *                for its load ahead of the wait (converted at the load, the
 *                decode split's f16 instance added 1.06 us a layer to the
 *                H100's 1B decode step, 5.44 against 4.38: NOTES round 27)
 */
#ifndef REALM_BACKEND_CUDA_CUDA_KV_CUH
#define REALM_BACKEND_CUDA_CUDA_KV_CUH

#include <cuda_fp16.h>

#include "backend/cuda/cuda_impl.h"

/* Does the pool hold f16 (else f32: rec_kv_store and rec_attention record
 * no other type)? */
static inline bool kv_is_f16(const realm_kv_pool *kv)
{
    return kv->type == REALM_TYPE_F16;
}

__device__ __forceinline__ void kv_put(float *p, float v)
{
    *p = v;
}

__device__ __forceinline__ void kv_put(__half *p, float v)
{
    *p = __float2half_rn(v);
}

__device__ __forceinline__ float kv_load1(const float *p)
{
    return *p;
}

__device__ __forceinline__ float kv_load1(const __half *p)
{
    return __half2float(*p);
}

__device__ __forceinline__ float2 kv_load2(const float *p, int i)
{
    return ((const float2 *)p)[i];
}

__device__ __forceinline__ float2 kv_load2(const __half *p, int i)
{
    return __half22float2(((const __half2 *)p)[i]);
}

__device__ __forceinline__ float4 kv_load4(const float *p, int i)
{
    return ((const float4 *)p)[i];
}

__device__ __forceinline__ float4 kv_load4(const __half *p, int i)
{
    const uint2 u = ((const uint2 *)p)[i]; /* one 8-byte load (a struct of two __half2 took two) */
    const __half2 *h = (const __half2 *)&u;
    const float2 a = __half22float2(h[0]), b = __half22float2(h[1]);
    return make_float4(a.x, a.y, b.x, b.y);
}

template <typename KV> struct kv_raw;

template <> struct kv_raw<float> {
    typedef float4 x4;
    typedef float x1;
    __device__ static __forceinline__ x4 load4(const float *p, int i)
    {
        return ((const float4 *)p)[i];
    }
    __device__ static __forceinline__ x1 load1(const float *p)
    {
        return *p;
    }
    __device__ static __forceinline__ x4 zero4(void)
    {
        return make_float4(0.f, 0.f, 0.f, 0.f);
    }
};

template <> struct kv_raw<__half> {
    typedef uint2 x4;
    typedef unsigned short x1;
    __device__ static __forceinline__ x4 load4(const __half *p, int i)
    {
        return ((const uint2 *)p)[i];
    }
    __device__ static __forceinline__ x1 load1(const __half *p)
    {
        return *(const unsigned short *)p;
    }
    __device__ static __forceinline__ x4 zero4(void)
    {
        return make_uint2(0u, 0u);
    }
};

__device__ __forceinline__ float4 kv_wide(float4 r)
{
    return r;
}

__device__ __forceinline__ float kv_wide(float r)
{
    return r;
}

__device__ __forceinline__ float4 kv_wide(uint2 r)
{
    const __half2 *h = (const __half2 *)&r;
    const float2 a = __half22float2(h[0]), b = __half22float2(h[1]);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ float kv_wide(unsigned short r)
{
    return __half2float(__ushort_as_half(r));
}

#endif
