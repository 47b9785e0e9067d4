/*
 * backend/cuda/cuda_matmul.cu — out (n, ne1) = x (n, ne0) · W^T (+ bias).
 *
 * Small n (decode; n <= mmv_max_rows): activations are quantized on the GPU
 * exactly as the CPU reference quantizes them (the weight type's
 * vec_dot_type: Q8_0, Q8_1 or Q8_K, same rounding), into a GPU layout per row:
 * int8 codes, one float scale per 32 elements (Q8_K's 256-element scale
 * repeated) and, for Q8_1, the binary16-rounded d·Σq per 32 (for Q8_K the
 * unrounded d·Σq per 32, which the tile kernel's super-block path reads). A mat-vec kernel
 * then gives each thread one 32-element group of a weight row at a time: its
 * codes as 8 words of 4 signed bytes, dp4a against the activation codes,
 * integer sums per (sub-)block, float across them. One warp per weight row;
 * up to 8 activation rows reuse each weight word from registers, and larger
 * batches (up to mmv_max_rows, default 64) take several chunks of 8.
 * Quantized rows that start at 16-byte boundaries are staged: each warp
 * copies its row into shared memory with 16-byte cp.async before decoding it
 * there (k_mmv_s), and those copies are
 * issued before the kernel waits for the one ahead of it (programmatic
 * dependent launch), so weight traffic overlaps the previous op's tail;
 * the unstaged kernel (k_mmv_q: Q8_0, which decodes faster unstaged) loads
 * each lane's first two groups into registers before its wait (four where
 * all the launch's blocks fit the GPU at once). At one activation row,
 * Q4_K/Q5_K/Q6_K matrices of 2048, 4096, 8192 or 14336 columns (and
 * Q4_K_M's mixed q/k/v sets) take the ring mat-vec instead
 * (cuda_mmv_ring.cu): persistent
 * blocks stream tiles of rows through shared memory by bulk copies, and
 * each lane keeps its activations in registers across the rows it meets.
 * A following `add` can be fused into the epilogue (resid), and matmuls of
 * one type and width on one input (q, k, v; gate, up) share a launch (here,
 * or on the tile kernel's super-block path).
 * Float weights (F32, F16, BF16) dot f32 activations directly.
 *
 * Quantized weights at mmq_min_rows..mmq_max_rows rows (default 9..64; the
 * formats of its super-block path, Q4_K/Q5_K/Q6_K/Q8_0, at 2..96) take the
 * int8 tensor-core tile kernel instead (cuda_mmq.cu), on the same quantized
 * activations; $REALM_CUDA_MMQ=0 turns it off.
 *
 * Large n (prefill): W is dequantized to f16 in tiles of rows
 * (scratch bounded by DQ_TILE_BYTES; one thread per 32-element group),
 * activations converted to f16, and cuBLAS multiplies with f32
 * accumulation; F32 weights use SGEMM directly.
 */
#include <math.h>
#include <stdio.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_mmv.cuh"

#define MMV_THREADS   128
#define MMV_MAX_NR    8
#define DQ_TILE_BYTES ((size_t)128 << 20)

bool realm__cuda_type_ok(realm_type t)
{
    switch (t) {
    case REALM_TYPE_F32: case REALM_TYPE_F16: case REALM_TYPE_BF16:
    case REALM_TYPE_Q4_0: case REALM_TYPE_Q4_1: case REALM_TYPE_Q5_0: case REALM_TYPE_Q5_1:
    case REALM_TYPE_Q8_0: case REALM_TYPE_Q2_K: case REALM_TYPE_Q3_K: case REALM_TYPE_Q4_K:
    case REALM_TYPE_Q5_K: case REALM_TYPE_Q6_K: case REALM_TYPE_IQ4_NL: case REALM_TYPE_IQ4_XS:
        return true;
    default: return false;
    }
}

static int act_kind_of(realm_type t)
{
    switch (t) {
    case REALM_TYPE_Q4_1: case REALM_TYPE_Q5_1: return ACT_Q8_1;
    case REALM_TYPE_Q4_0: case REALM_TYPE_Q5_0: case REALM_TYPE_Q8_0: case REALM_TYPE_IQ4_NL:
        return ACT_Q8_0;
    case REALM_TYPE_F32: case REALM_TYPE_F16: case REALM_TYPE_BF16: return ACT_F32;
    default: return ACT_Q8_K;
    }
}

void realm__cuda_matmul_scratch(const realm_backend_limits *lim, size_t *act_q_bytes,
                                size_t *dq_bytes, size_t *act_h_bytes)
{
    size_t rows = (size_t)lim->max_rows, ne0 = (size_t)lim->max_ne0;
    *act_q_bytes = rows * ne0 + 2 * rows * (ne0 / 32 + 1) * sizeof(float) + 256;
    size_t row_h = ne0 * 2;
    *dq_bytes = DQ_TILE_BYTES > row_h ? DQ_TILE_BYTES : row_h;
    *act_h_bytes = rows * ne0 * 2;
}

/* ---- activation quantization (quantize_group: cuda_quant.cuh) ---- */

/* Where the fused producers put their values: 0 plain input, 1 swiglu of
 * (x = gate, y = up; gate overwritten with the result). */
enum { PRE_NONE, PRE_SWIGLU };

/* One warp per group; blockIdx.y is the row. */
template <int G, int PRE>
__global__ static void k_quantize_act(const float *x, const float *y, float *xout, int64_t ne0,
                                      int kind, int8_t *q, float *d32, float *s32)
{
    pdl_wait();
    pdl_trigger();
    const int E = G / 32; /* elements per lane */
    int lane = threadIdx.x % 32;
    int64_t gidx = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int32_t r = blockIdx.y;
    if (gidx * G >= ne0) return;
    const int64_t base = r * ne0 + gidx * G, l0 = base + lane * E;
    float v[E];
    /* a lane's E consecutive values as float4s where everything is aligned */
    const uintptr_t ptrs = (uintptr_t)(x + l0) |
                           (PRE == PRE_SWIGLU ? (uintptr_t)(y + l0) | (uintptr_t)(xout + l0) : 0);
    const bool wide = E % 4 == 0 && ptrs % 16 == 0;
    if (wide) {
#pragma unroll
        for (int e = 0; e < E; e += 4) {
            const float4 a = *(const float4 *)(x + l0 + e);
            v[e] = a.x, v[e + 1] = a.y, v[e + 2] = a.z, v[e + 3] = a.w;
            if (PRE == PRE_SWIGLU) {
                const float4 b = *(const float4 *)(y + l0 + e);
                const float u[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
                for (int k = 0; k < 4; k++) /* k_swiglu's expression */
                    v[e + k] = v[e + k] / (1.0f + expf(-v[e + k])) * u[k];
                *(float4 *)(xout + l0 + e) = make_float4(v[e], v[e + 1], v[e + 2], v[e + 3]);
            }
        }
    } else {
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int64_t i = l0 + e;
            if (PRE == PRE_SWIGLU) {
                float gt = x[i];
                v[e] = gt / (1.0f + expf(-gt)) * y[i]; /* k_swiglu's expression */
                xout[i] = v[e];
            } else {
                v[e] = x[i];
            }
        }
    }
    quantize_group<G>(v, lane, kind, q + base, d32, s32, r * (ne0 / 32) + gidx * (G / 32));
}

/* rmsnorm (k_rmsnorm's arithmetic: row_sumsq, rms_inv, the same products)
 * writing the normed row and its quantization. Block (part, row) of
 * NORM_THREADS threads: every block sums the whole row (from L2), then each
 * warp normalizes and quantizes norm_part<G> / 4 elements (one Q8_K group,
 * or two groups of 32). Many small blocks instead of one of 1024 threads per
 * row: 8B decode +4% (NOTES round 11). Launched with
 * programmatic dependent launch: the norm weights (constant) are loaded
 * before pdl_wait; the kernel lets its own follower start only once the
 * kernel before it has finished (pdl_trigger after pdl_wait), so at most one
 * kernel runs ahead. */
template <int G> __host__ __device__ constexpr int norm_part()
{
    return G == 256 ? 1024 : 256; /* elements per block */
}

template <int G>
__global__ static void __launch_bounds__(NORM_THREADS)
    k_rmsnorm_quant(const float *x, const float *gw, int64_t d, float eps, float *out, int kind,
                    int8_t *q, float *d32, float *s32)
{
    __shared__ float sh[NORM_THREADS / 32];
    constexpr int PW = norm_part<G>() / (NORM_THREADS / 32); /* elements per warp */
    constexpr int E = G / 32, NG = PW / G; /* elements per lane per group, groups per warp */
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t g0 = ((int64_t)blockIdx.x * norm_part<G>() + warp * PW) / G; /* first group */
    const int32_t r = blockIdx.y;
    float gv[NG * E];
#pragma unroll
    for (int k = 0; k < NG; k++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int64_t i = (g0 + k) * G + lane * E + e;
            gv[k * E + e] = i < d ? __ldg(gw + i) : 0.0f;
        }
    pdl_wait();
    pdl_trigger();
    const float *xr = x + r * d;
    const float inv = rms_inv(row_sumsq(xr, d, sh), d, eps);
#pragma unroll
    for (int k = 0; k < NG; k++) {
        const int64_t gi = g0 + k;
        if (gi * G >= d) break;
        float v[E];
        const int64_t i0 = gi * G + lane * E;
        if (E % 4 == 0 && (((uintptr_t)(xr + i0) | (uintptr_t)(out + r * d + i0)) % 16) == 0) {
#pragma unroll
            for (int e = 0; e < E; e += 4) {
                const float4 a = *(const float4 *)(xr + i0 + e);
                v[e] = a.x * inv * gv[k * E + e];
                v[e + 1] = a.y * inv * gv[k * E + e + 1];
                v[e + 2] = a.z * inv * gv[k * E + e + 2];
                v[e + 3] = a.w * inv * gv[k * E + e + 3];
                *(float4 *)(out + r * d + i0 + e) = make_float4(v[e], v[e + 1], v[e + 2], v[e + 3]);
            }
        } else {
#pragma unroll
            for (int e = 0; e < E; e++) {
                v[e] = xr[i0 + e] * inv * gv[k * E + e];
                out[r * d + i0 + e] = v[e];
            }
        }
        quantize_group<G>(v, lane, kind, q + r * d + gi * G, d32, s32,
                          (int64_t)r * (d / 32) + gi * (G / 32));
    }
}

/* One group's contribution for activation row ar (every mat-vec's float order). */
template <int T>
__device__ __forceinline__ float group_dot(const grp &q, const int8_t *aq, const float *ad,
                                           const float *as, int64_t ne0, int64_t G, int64_t ar,
                                           int64_t g)
{
    const int4 *ap = (const int4 *)(aq + ar * ne0 + g * 32);
    int4 a0 = ld_prior(ap), a1 = ld_prior(ap + 1);
    int av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
    int i0 = 0, i1 = 0, s0 = 0, s1 = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        i0 = __dp4a(q.w[k], av[k], i0);
        i1 = __dp4a(q.w[k + 4], av[k + 4], i1);
    }
    float da = ld_prior(ad + ar * G + g);
    float v;
    if (T == REALM_TYPE_Q2_K || T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            s0 = __dp4a(av[k], 0x01010101, s0);
            s1 = __dp4a(av[k + 4], 0x01010101, s1);
        }
        v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1 - q.fm0 * (float)s0 - q.fm1 * (float)s1);
    } else if (T == REALM_TYPE_Q3_K || T == REALM_TYPE_Q6_K) {
        v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1);
    } else {
        v = (float)(i0 + i1) * (q.fa0 * da);
        if (T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1) v += q.fs * ld_prior(as + ar * G + g);
    }
    return v;
}

/* Groups [g0, g0 + ng) of a Q4_K/Q5_K row, at `sb` (a staged slab, whose
 * units are whole 256-element blocks, or the row itself in global memory),
 * against NR activation rows. Lanes stride by 32 groups, so
 * lane l always takes sub-block j = l % 8 of blocks l / 8, l / 8 + 4, ...:
 * its code offset, nibble, mask and scale-byte positions are constants of
 * the lane, and the block head (d, dmin, 12 scale bytes) is one 16-byte
 * load. Q4_K's high nibbles are dotted in place, 16 q each (unsigned bytes
 * against signed ones), with the scale divided by 16: exact, so the
 * product is the same float as q's. The mins term takes the quantizer's
 * d·Σq of the group (as) rather than a second dot. Rounding differs from
 * group_dot's (one integer sum per group, then da·(dl·Σ) − ml·(d·Σq)). */
template <int T, int NR>
__device__ __forceinline__ void k4_dot(const uint8_t *__restrict__ sb, int32_t ng, int64_t g0,
                                       int lane, const int8_t *aq, const float *ad, const float *as,
                                       int64_t ne0, int32_t r0, int32_t n, float (&acc)[NR])
{
    constexpr int BS = k4_lane<T>::BS;
    const k4_lane<T> L(lane);
    const int64_t G = ne0 / 32;
    const uint8_t *bp = sb + (lane >> 3) * BS;
    const int64_t ga = g0 + lane;
    const int8_t *ap = aq + ga * 32;
    const float *dp = ad + ga, *sp = as + ga;
#pragma unroll 2
    for (int32_t g = lane; g < ng; g += 32, bp += 4 * BS, ap += 1024, dp += 32, sp += 32) {
        uint32_t w[8];
        float dl, ml;
        L.decode(bp, w, dl, ml);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            if (r0 + r >= n) break;
            int4 a0, a1;
            act_codes(ap, r0 + r, ne0, a0, a1);
            const int s = dot16_us(w + 4, a1, dot16_us(w, a0, 0));
            const int64_t ro = (int64_t)(r0 + r) * G;
            acc[r] += ld_prior(dp + ro) * (dl * (float)s) - ml * ld_prior(sp + ro);
        }
    }
}

/* Groups [g0, g0 + ng) of a Q6_K row at `sb` (as k4_dot: a staged slab of
 * whole 8-block units, or the row in global memory) against NR activation
 * rows. Lane l takes sub-block j = l % 8 of blocks l / 8, l / 8 + 4, ...
 * (840 bytes apart), so its offsets, shifts and the blocks' misalignment
 * (210-byte blocks: 0 or 2 mod 4) are the lane's constants. Codes are
 * built unsigned (0..63: the low bits by a rotate, the high two by
 * another, one mask-and-merge) and dotted as such; 32·Σa of each 16-half
 * comes off the integer sums, which are then group_dot's i0 and i1, so
 * the floats are the same. */
template <int NR>
__device__ __forceinline__ void k6_dot(const uint8_t *__restrict__ sb, int32_t ng, int64_t g0,
                                       int lane, const int8_t *aq, const float *ad, int64_t ne0,
                                       int32_t r0, int32_t n, float (&acc)[NR])
{
    const int64_t G = ne0 / 32;
    const uint8_t *bp = sb + (lane >> 3) * 210;
    const k6_lane L(lane, bp);
    const int64_t ga = g0 + lane;
    const int8_t *ap = aq + ga * 32;
    const float *dp = ad + ga;
#pragma unroll 2
    for (int32_t g = lane; g < ng; g += 32, bp += 4 * 210, ap += 1024, dp += 32) {
        uint32_t w[8];
        float fa0, fa1;
        L.decode(bp, w, fa0, fa1);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            if (r0 + r >= n) break;
            int4 a0, a1;
            act_codes(ap, r0 + r, ne0, a0, a1);
            /* Σ(q - 32)·a = Σq·a - 32·Σa */
            const int i0 = dot16_us(w, a0, 0) - k6_bias(a0);
            const int i1 = dot16_us(w + 4, a1, 0) - k6_bias(a1);
            acc[r] += ld_prior(dp + (int64_t)(r0 + r) * G) * (fa0 * (float)i0 + fa1 * (float)i1);
        }
    }
}

/* One warp per weight row, MMS_WARPS rows per block (no block-wide
 * synchronization: a warp's lanes stride over the row's groups and reduce by
 * shuffles); NR activation rows starting at blockIdx.y * NR; the blocks of a
 * set as in k_mmv_s (Q8_0's q/k/v and gate/up in one launch each: 8B decode
 * 277.9 vs 253.2 tok/s one by one, NOTES round 14). Each lane loads its
 * first EARLY groups before pdl_wait (four: launch_mmv_q8). */
template <int T, int NR, int EARLY = 2>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_q(const mms_set set, size_t row_bytes, int64_t ne0, const int8_t *aq, const float *ad,
            const float *as, int32_t n, float *resid)
{
    pdl_trigger(); /* as k_mmv_s: a mat-vec lets its follower start at once */
    const int64_t G = ne0 / 32;
    const int lane = threadIdx.x % 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const float *bias = MMS_PICK(bias, mi);
    float *out = MMS_PICK(out, mi);
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + threadIdx.x / 32;
    const int32_t r0 = blockIdx.y * NR;
    if (o_row >= ne1) return;
    const uint8_t *wr = MMS_PICK(w, mi) + (size_t)o_row * row_bytes;
    float acc[NR];
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    if constexpr (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
        pdl_wait();
        k4_dot<T, NR>(wr, (int32_t)G, 0, lane, aq, ad, as, ne0, r0, n, acc);
    } else if constexpr (T == REALM_TYPE_Q6_K) {
        pdl_wait();
        k6_dot<NR>(wr, (int32_t)G, 0, lane, aq, ad, ne0, r0, n, acc);
    } else {
        /* the lane's first groups are weights (constant): loaded before
         * the wait, they arrive while the kernel ahead finishes */
        grp q0[EARLY];
#pragma unroll
        for (int u = 0; u < EARLY; u++)
            if (lane + 32 * u < G) load_group<T>(wr, lane + 32 * u, q0[u]);
        pdl_wait();
#pragma unroll
        for (int u = 0; u < EARLY; u++) {
            if (lane + 32 * u >= G) break;
            for (int r = 0; r < NR; r++) {
                if (r0 + r >= n) break;
                acc[r] += group_dot<T>(q0[u], aq, ad, as, ne0, G, (int64_t)(r0 + r), lane + 32 * u);
            }
        }
#pragma unroll 2
        for (int64_t g = lane + 32 * EARLY; g < G; g += 32) {
            grp q;
            load_group<T>(wr, g, q);
            for (int r = 0; r < NR; r++) {
                if (r0 + r >= n) break;
                acc[r] += group_dot<T>(q, aq, ad, as, ne0, G, (int64_t)(r0 + r), g);
            }
        }
    }
    mv_store<NR>(acc, lane, r0, n, o_row, ne1, bias, out, resid);
}

/* Float weights against f32 activations. */
template <int T, int NR>
__global__ static void __launch_bounds__(MMV_THREADS)
    k_mmv_f(const uint8_t *w, int64_t ne0, int64_t ne1, const float *x, int32_t n,
            const float *bias, float *out)
{
    const int64_t o_row = blockIdx.x;
    const int32_t r0 = blockIdx.y * NR;
    float acc[NR];
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += MMV_THREADS) {
        float wv;
        if (T == REALM_TYPE_F32) wv = ((const float *)w)[o_row * ne0 + i];
        else if (T == REALM_TYPE_F16) wv = h2f(((const uint16_t *)w)[o_row * ne0 + i]);
        else wv = __uint_as_float((uint32_t)((const uint16_t *)w)[o_row * ne0 + i] << 16);
        for (int r = 0; r < NR; r++)
            if (r0 + r < n) acc[r] = fmaf(wv, x[(int64_t)(r0 + r) * ne0 + i], acc[r]);
    }
    __shared__ float sh[MMV_THREADS / 32][NR];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int r = 0; r < NR; r++) {
        float v = acc[r];
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sh[warp][r] = v;
    }
    __syncthreads();
    if (threadIdx.x < NR && r0 + (int)threadIdx.x < n) {
        float v = 0.0f;
        for (int k = 0; k < MMV_THREADS / 32; k++)
            v += sh[k][threadIdx.x];
        if (bias) v += bias[o_row];
        out[(int64_t)(r0 + threadIdx.x) * ne1 + o_row] = v;
    }
}

/* ---- the staged mat-vec (decode) ----
 * Same arithmetic as k_mmv_q (group by group, same float order per group and
 * lane), but the weight row reaches the warp through shared memory: each
 * warp copies its row slab by slab with 16-byte cp.async (fully coalesced,
 * no registers held while in flight, two slabs in flight), then decodes the
 * groups from shared memory with load_group. This is what makes the loads
 * wide whatever the format's block size (18, 34, 210 bytes...): the copy
 * only needs the row to start at a 16-byte boundary. A slab is a whole
 * number of "units", the smallest run of blocks whose bytes are a multiple
 * of 16, so every block keeps its global alignment modulo 16 in shared
 * memory; slabs hold at most c->mms_cap bytes. */

/* One warp's weight row o_row of w (< ne1) against NR activation rows, in
 * slabs of the geometry given (mms_geometry). */
template <int T, int NR>
__device__ __forceinline__ void
mms_row(const uint8_t *__restrict__ w, const float *__restrict__ bias, float *__restrict__ out,
        int64_t ne1, int64_t o_row, size_t row_bytes, int64_t ne0, const int8_t *aq,
        const float *ad, const float *as, int32_t n, float *resid, int32_t slab_bytes,
        int32_t slab_groups, int32_t n_slabs)
{
    extern __shared__ uint4 mms_sh[];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t G = ne0 / 32;
    const int32_t r0 = blockIdx.y * NR;
    const int stages = n_slabs > 1 ? 2 : 1;
    uint8_t *buf = (uint8_t *)mms_sh + (size_t)warp * stages * slab_bytes;
    const uint8_t *wr = w + (size_t)o_row * row_bytes;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    {
        int32_t bytes = (int32_t)(row_bytes < (size_t)slab_bytes ? row_bytes : (size_t)slab_bytes);
        for (int32_t i = lane * 16; i < bytes; i += 512)
            cp_async16(buf + i, wr + i);
        cp_async_commit();
    }
    /* the weights are constant; the activations, out and resid belong to the
     * kernels before this one */
    pdl_wait();
    for (int32_t s = 0; s < n_slabs; s++) {
        if (s + 1 < n_slabs) {
            size_t off = (size_t)(s + 1) * slab_bytes;
            int32_t bytes = (int32_t)(row_bytes - off < (size_t)slab_bytes ? row_bytes - off
                                                                           : (size_t)slab_bytes);
            uint8_t *dst = buf + ((s + 1) & 1) * slab_bytes;
            for (int32_t i = lane * 16; i < bytes; i += 512)
                cp_async16(dst + i, wr + off + i);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncwarp();
        const uint8_t *sb = buf + (s & 1) * slab_bytes;
        const int64_t g0 = (int64_t)s * slab_groups;
        const int32_t ng = (int32_t)(G - g0 < slab_groups ? G - g0 : slab_groups);
        if constexpr (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
            k4_dot<T, NR>(sb, ng, g0, lane, aq, ad, as, ne0, r0, n, acc);
        } else if constexpr (T == REALM_TYPE_Q6_K) {
            k6_dot<NR>(sb, ng, g0, lane, aq, ad, ne0, r0, n, acc);
        } else {
#pragma unroll 2
            for (int32_t g = lane; g < ng; g += 32) {
                grp q;
                load_group<T>(sb, g, q);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    if (r0 + r >= n) break;
                    acc[r] += group_dot<T>(q, aq, ad, as, ne0, G, (int64_t)(r0 + r), g0 + g);
                }
            }
        }
        __syncwarp(); /* the next copy overwrites this buffer */
    }
    mv_store<NR>(acc, lane, r0, n, o_row, ne1, bias, out, resid);
}

template <int T, int NR>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_s(const mms_set set, size_t row_bytes, int64_t ne0, const int8_t *aq, const float *ad,
            const float *as, int32_t n, float *resid, int32_t slab_bytes, int32_t slab_groups,
            int32_t n_slabs)
{
    pdl_trigger();
    const int warp = threadIdx.x / 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const uint8_t *__restrict__ w = MMS_PICK(w, mi);
    const float *__restrict__ bias = MMS_PICK(bias, mi);
    float *__restrict__ out = MMS_PICK(out, mi);
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + warp;
    if (o_row >= ne1) return; /* whole warps only: no block-wide barrier below */
    mms_row<T, NR>(w, bias, out, ne1, o_row, row_bytes, ne0, aq, ad, as, n, resid, slab_bytes,
                   slab_groups, n_slabs);
}

/* A set whose members from `first1` on are of type T1 (Q4_K_M's Q6_K v
 * beside the Q4_K q and k), each member with the row geometry of its type
 * as it would have alone: the bits of the members one by one. */
struct mms_geom {
    size_t row_bytes;
    int32_t slab_bytes, slab_groups, n_slabs;
};

template <int T0, int T1, int NR>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_s2(const mms_set set, int first1, const mms_geom g0, const mms_geom g1, int64_t ne0,
             const int8_t *aq, const float *ad, const float *as, int32_t n)
{
    pdl_trigger();
    const int warp = threadIdx.x / 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + warp;
    if (o_row >= ne1) return;
    if (mi >= first1)
        mms_row<T1, NR>(MMS_PICK(w, mi), MMS_PICK(bias, mi), MMS_PICK(out, mi), ne1, o_row,
                        g1.row_bytes, ne0, aq, ad, as, n, NULL, g1.slab_bytes, g1.slab_groups,
                        g1.n_slabs);
    else
        mms_row<T0, NR>(MMS_PICK(w, mi), MMS_PICK(bias, mi), MMS_PICK(out, mi), ne1, o_row,
                        g0.row_bytes, ne0, aq, ad, as, n, NULL, g0.slab_bytes, g0.slab_groups,
                        g0.n_slabs);
}

/* Slab geometry for the staged kernel: slabs of at most `cap` bytes (at
 * least one unit), as even as whole units allow; false when the row cannot
 * be staged (row or data not 16-byte aligned). */
static bool mms_geometry(const realm_weight *w, size_t cap, int32_t *slab_bytes,
                         int32_t *slab_groups, int32_t *n_slabs)
{
    const realm_type_traits *t = realm_type_traits_get(w->type);
    size_t rb = realm_type_row_size(w->type, w->ne0), bs = t->type_size;
    if (rb % 16 || ((uintptr_t)w->data) % 16 || t->block_size % 32) return false;
    /* Q8_0 decodes faster unstaged (its 34-byte blocks give 272-byte
     * staging units): 8B decode 216 vs 210 tok/s in round 5, 221 vs 190
     * with the one-wave slabs of round 8 (NOTES.md round 9) */
    if (w->type == REALM_TYPE_Q8_0) return false;
    size_t unit = bs;
    while (unit % 16)
        unit += bs;
    size_t units = (rb + unit - 1) / unit;
    size_t su = cap / unit < 1 ? 1 : cap / unit;
    size_t ns = (units + su - 1) / su;
    su = (units + ns - 1) / ns;
    *slab_bytes = (int32_t)(su * unit);
    *slab_groups = (int32_t)(su * unit / bs * (t->block_size / 32));
    *n_slabs = (int32_t)((rb + *slab_bytes - 1) / *slab_bytes);
    return true;
}

static size_t mms_shm(int32_t slab_bytes, int32_t n_slabs)
{
    return (size_t)MMS_WARPS * (n_slabs > 1 ? 2 : 1) * slab_bytes;
}

/* The slab geometry of w's staged mat-vec. Long rows (several slabs, two
 * in flight per warp) take the most shared memory; where that leaves too
 * few blocks per SM for w's blocks to run in one wave (the 14336-wide down
 * projection: 1024 blocks of 32-40 KB, 5-6 per SM, so a second wave of a
 * fifth of the blocks doubled its time), slabs shrink until they fit, if
 * they can. The choice depends on w's shape and the device only (not on
 * the batch or on the matrices it shares a launch with: a set runs only
 * members whose geometries agree, mms_same_fit), so results stay the same
 * bits. */
template <int T>
static bool mms_fit(const cuda_ctx *c, const realm_weight *w, int32_t *sb, int32_t *sg, int32_t *ns)
{
    if (!mms_geometry(w, (size_t)c->mms_cap, sb, sg, ns)) return false;
    if (!c->mms_fit || *ns == 1) return true;
    const int64_t need = (w->ne1 + MMS_WARPS - 1) / MMS_WARPS;
    /* only where the smallest slabs (one unit) would run the blocks in one
     * wave: a matrix of more rows than that (a 70B's 28672-row gate at 8192
     * columns) would otherwise shrink to one-unit slabs, and small slabs are
     * slow (8B decode 357 -> 195 tok/s at 1152-byte slabs, NOTES round 14) */
    int32_t ub, ug, un;
    int64_t res;
    mms_geometry(w, 1, &ub, &ug, &un);
    if (!resident_blocks(c, k_mmv_s<T, 1>, mms_shm(ub, un), &res) || res < need) return true;
    while (*ns > 1) {
        if (!resident_blocks(c, k_mmv_s<T, 1>, mms_shm(*sb, *ns), &res) || res >= need) break;
        int32_t b = *sb, g = *sg, n = *ns;
        mms_geometry(w, (size_t)*sb - 1, sb, sg, ns);
        if (*sb >= b) { /* a single unit already */
            *sb = b, *sg = g, *ns = n;
            break;
        }
    }
    return true;
}

/* Does the staged kernel take w's rows at all (format, alignment)? */
static bool mms_stageable(const cuda_ctx *c, const realm_weight *w)
{
    int32_t sb, sg, ns;
    return mms_geometry(w, (size_t)c->mms_cap, &sb, &sg, &ns);
}

/* Do ops[from .. to) slab their rows as (sb, sg, ns)? A set runs every
 * member of a type with one geometry, and each must be the one it has
 * alone (mms_fit depends on the row count where rows take several slabs). */
template <int T>
static bool mms_same_fit(const cuda_ctx *c, const struct cuda_op *ops, int from, int to, int32_t sb,
                         int32_t sg, int32_t ns)
{
    for (int i = from; i < to; i++) {
        int32_t b, g, n;
        if (!mms_fit<T>(c, &ops[i].w, &b, &g, &n) || b != sb || g != sg || n != ns) return false;
    }
    return true;
}

/* ops[0 .. n_set): matrices of one type and width on the same activations
 * (the caller checks); resid only with n_set == 1. */
template <int T, int NR>
static bool launch_mms_t(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                         const float *ad, const float *as, float *resid)
{
    const realm_weight *w = &ops[0].w;
    int32_t sb, sg, ns;
    if (!mms_fit<T>(c, w, &sb, &sg, &ns) || !mms_same_fit<T>(c, ops, 1, n_set, sb, sg, ns))
        return false;
    if (NR == 1 && realm__cuda_mmv_ring(c, ops, n_set, n_set, aq, ad, as, resid, NULL)) return true;
    const mms_set set = mms_set_of(ops, n_set);
    dim3 grid(set.blk_end[MMS_SET - 1], (unsigned)((ops[0].n + NR - 1) / NR));
    size_t rb = realm_type_row_size(w->type, w->ne0);
    cuda__launch_pdl(c, k_mmv_s<T, NR>, grid, dim3(MMS_WARPS * 32), mms_shm(sb, ns), set, rb,
                     w->ne0, aq, ad, as, ops[0].n, resid, sb, sg, ns);
    return true;
}

/* ops[0 .. first1) of type T0, ops[first1 .. n_set) of type T1 (no resid):
 * each with the geometry mms_fit gives its type and shape alone */
template <int T0, int T1, int NR>
static bool launch_mms2_t(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const int8_t *aq, const float *ad, const float *as)
{
    if (NR == 1 && realm__cuda_mmv_ring(c, ops, n_set, first1, aq, ad, as, NULL, NULL)) return true;
    const realm_weight *w0 = &ops[0].w, *w1 = &ops[first1].w;
    mms_geom g0, g1;
    if (!mms_fit<T0>(c, w0, &g0.slab_bytes, &g0.slab_groups, &g0.n_slabs) ||
        !mms_fit<T1>(c, w1, &g1.slab_bytes, &g1.slab_groups, &g1.n_slabs) ||
        !mms_same_fit<T0>(c, ops, 1, first1, g0.slab_bytes, g0.slab_groups, g0.n_slabs) ||
        !mms_same_fit<T1>(c, ops, first1 + 1, n_set, g1.slab_bytes, g1.slab_groups, g1.n_slabs))
        return false;
    g0.row_bytes = realm_type_row_size(w0->type, w0->ne0);
    g1.row_bytes = realm_type_row_size(w1->type, w1->ne0);
    const size_t shm0 = mms_shm(g0.slab_bytes, g0.n_slabs),
                 shm1 = mms_shm(g1.slab_bytes, g1.n_slabs);
    const mms_set set = mms_set_of(ops, n_set);
    dim3 grid(set.blk_end[MMS_SET - 1], (unsigned)((ops[0].n + NR - 1) / NR));
    cuda__launch_pdl(c, k_mmv_s2<T0, T1, NR>, grid, dim3(MMS_WARPS * 32), shm0 > shm1 ? shm0 : shm1,
                     set, first1, g0, g1, w0->ne0, aq, ad, as, ops[0].n);
    return true;
}

/* The type pairs a mat-vec set may mix (the llama.cpp _M mixes' Q6_K v
 * after Q4_K or Q5_K q and k); launch_mms2 takes exactly these. */
static bool mms_mixable(realm_type t0, realm_type t1)
{
    return (t0 == REALM_TYPE_Q4_K || t0 == REALM_TYPE_Q5_K) && t1 == REALM_TYPE_Q6_K;
}

template <int NR>
static bool launch_mms2(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                        const int8_t *aq, const float *ad, const float *as)
{
    if (ops[0].w.type == REALM_TYPE_Q4_K)
        return launch_mms2_t<REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, NR>(c, ops, n_set, first1, aq, ad,
                                                                   as);
    return launch_mms2_t<REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, NR>(c, ops, n_set, first1, aq, ad, as);
}

template <int NR>
static bool launch_mms(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                       const float *ad, const float *as, float *resid)
{
#define S(T) return launch_mms_t<T, NR>(c, ops, n_set, aq, ad, as, resid)
    switch (ops[0].w.type) {
    case REALM_TYPE_Q4_0: S(REALM_TYPE_Q4_0);
    case REALM_TYPE_Q4_1: S(REALM_TYPE_Q4_1);
    case REALM_TYPE_Q5_0: S(REALM_TYPE_Q5_0);
    case REALM_TYPE_Q5_1: S(REALM_TYPE_Q5_1);
    case REALM_TYPE_Q2_K: S(REALM_TYPE_Q2_K);
    case REALM_TYPE_Q3_K: S(REALM_TYPE_Q3_K);
    case REALM_TYPE_Q4_K: S(REALM_TYPE_Q4_K);
    case REALM_TYPE_Q5_K: S(REALM_TYPE_Q5_K);
    case REALM_TYPE_Q6_K: S(REALM_TYPE_Q6_K);
    case REALM_TYPE_IQ4_NL: S(REALM_TYPE_IQ4_NL);
    case REALM_TYPE_IQ4_XS: S(REALM_TYPE_IQ4_XS);
    default: return false; /* Q8_0 (unstaged: mms_geometry) and the float types */
    }
#undef S
}

/* Q8_0 at one activation row, where every block of the launch can be
 * resident at once (the 8B's o and down projections, 1024 blocks; 54
 * registers, 9 blocks an SM): each lane loads four groups before the wait,
 * a 4096-wide row's all, instead of two, so more of the weights arrive
 * while the kernel ahead finishes (the blocks of a launch of several waves
 * start after it has, whatever they would load early). Same groups in the
 * same order, so the same floats. H100 8B Q8_0 decode1 +1.7-2.2%; three
 * groups at 40 registers for the q/k/v set (1536 blocks, one wave at 12 an
 * SM) spilled and lost 1.2% (NOTES round 18). */
static bool launch_mmv_q8(cuda_ctx *c, const mms_set &set, dim3 grid, size_t rb, int64_t ne0,
                          const int8_t *aq, const float *ad, const float *as, int32_t n,
                          float *resid)
{
    int64_t res;
    if (!resident_blocks(c, k_mmv_q<REALM_TYPE_Q8_0, 1, 4>, 0, &res) || res < (int64_t)grid.x)
        return false;
    cuda__launch_pdl(c, k_mmv_q<REALM_TYPE_Q8_0, 1, 4>, grid, dim3(MMS_WARPS * 32), 0, set, rb, ne0,
                     aq, ad, as, n, resid);
    return true;
}

/* The unstaged mat-vec of ops[0 .. n_set) (a set: quantized types only);
 * float weights (one op) take k_mmv_f, which adds nothing into resid. */
template <int NR>
static void launch_mmv(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                       const float *ad, const float *as, float *resid)
{
    const struct cuda_op *op = &ops[0];
    const realm_weight *w = &op->w;
    const unsigned gy = (unsigned)((op->n + NR - 1) / NR);
    const uint8_t *wd = (const uint8_t *)w->data;
    size_t rb = realm_type_row_size(w->type, w->ne0);
    const float *bias = (const float *)op->bias.data;
    float *out = (float *)op->out;
    const float *x = (const float *)op->x;
    const mms_set set = mms_set_of(ops, n_set);
    const dim3 gridq(set.blk_end[MMS_SET - 1], gy);
    if (w->type == REALM_TYPE_Q8_0 && NR == 1 &&
        launch_mmv_q8(c, set, gridq, rb, w->ne0, aq, ad, as, op->n, resid))
        return;
#define Q(T)                                                                                       \
    cuda__launch_pdl(c, k_mmv_q<T, NR>, gridq, dim3(MMS_WARPS * 32), 0, set, rb, w->ne0, aq, ad,   \
                     as, op->n, resid)
#define F(T)                                                                                       \
    k_mmv_f<T, NR><<<dim3((unsigned)w->ne1, gy), MMV_THREADS, 0, c->stream>>>(wd, w->ne0, w->ne1,  \
                                                                              x, op->n, bias, out)
    switch (w->type) {
    case REALM_TYPE_F32: F(REALM_TYPE_F32); break;
    case REALM_TYPE_F16: F(REALM_TYPE_F16); break;
    case REALM_TYPE_BF16: F(REALM_TYPE_BF16); break;
    case REALM_TYPE_Q4_0: Q(REALM_TYPE_Q4_0); break;
    case REALM_TYPE_Q4_1: Q(REALM_TYPE_Q4_1); break;
    case REALM_TYPE_Q5_0: Q(REALM_TYPE_Q5_0); break;
    case REALM_TYPE_Q5_1: Q(REALM_TYPE_Q5_1); break;
    case REALM_TYPE_Q8_0: Q(REALM_TYPE_Q8_0); break;
    case REALM_TYPE_Q2_K: Q(REALM_TYPE_Q2_K); break;
    case REALM_TYPE_Q3_K: Q(REALM_TYPE_Q3_K); break;
    case REALM_TYPE_Q4_K: Q(REALM_TYPE_Q4_K); break;
    case REALM_TYPE_Q5_K: Q(REALM_TYPE_Q5_K); break;
    case REALM_TYPE_Q6_K: Q(REALM_TYPE_Q6_K); break;
    case REALM_TYPE_IQ4_NL: Q(REALM_TYPE_IQ4_NL); break;
    case REALM_TYPE_IQ4_XS: Q(REALM_TYPE_IQ4_XS); break;
    default: break;
    }
#undef Q
#undef F
}

/* Where matmul_small finds the quantized activations of its op. */
struct act_view {
    int8_t *aq;
    float *ad, *as;
};

static act_view act_layout(cuda_ctx *c, int32_t n, int64_t ne0)
{
    act_view a;
    a.aq = (int8_t *)c->act_q;
    size_t nq = ((size_t)n * ne0 + 15) & ~(size_t)15;
    a.ad = (float *)((char *)c->act_q + nq);
    a.as = a.ad + (size_t)n * (ne0 / 32);
    return a;
}

static bool takes_small_path(const cuda_ctx *c, const struct cuda_op *mm)
{
    return mm->n <= c->mmv_max_rows;
}

/* The tile kernel (cuda_mmq.cu) for quantized weights, ahead of both other
 * paths: its super-block path at sb_min_rows..sb_max_rows rows, the other
 * formats at mmq_min_rows..mmq_max_rows. */
static bool takes_mmq(const cuda_ctx *c, const struct cuda_op *mm)
{
    if (!c->mmq || act_kind_of(mm->w.type) == ACT_F32) return false;
    if (realm__cuda_mmq_sb(c, &mm->w)) return mm->n >= c->sb_min_rows && mm->n <= c->sb_max_rows;
    return mm->n >= c->mmq_min_rows && mm->n <= c->mmq_max_rows;
}

/* Will the matmul read quantized activations (so a producer may write them)? */
static bool takes_quant_path(const cuda_ctx *c, const struct cuda_op *mm)
{
    return takes_small_path(c, mm) || takes_mmq(c, mm);
}

static void remember_act(cuda_ctx *c, const void *x, int32_t n, int64_t ne0, int kind)
{
    c->aq_x = x;
    c->aq_n = n;
    c->aq_ne0 = ne0;
    c->aq_kind = kind;
}

/* x (and y, for PRE) -> n rows of int8 activations of `kind` in a, one launch
 * (4 groups of G per 128-thread block); xout: where PRE's f32 result goes. */
template <int PRE>
static void launch_quantize(cuda_ctx *c, int kind, int32_t n, int64_t ne0, const float *x,
                            const float *y, float *xout, const act_view &a)
{
    const int G = kind == ACT_Q8_K ? 256 : 32;
    dim3 grid((unsigned)((ne0 / G + 3) / 4), (unsigned)n);
    if (G == 256)
        cuda__launch_pdl(c, k_quantize_act<256, PRE>, grid, dim3(128), 0, x, y, xout, ne0, kind,
                         a.aq, a.ad, a.as);
    else
        cuda__launch_pdl(c, k_quantize_act<32, PRE>, grid, dim3(128), 0, x, y, xout, ne0, kind,
                         a.aq, a.ad, a.as);
    CUDA_CHECK(c, cudaGetLastError());
}

/* The quantized activations of op's input: quantized now unless the last
 * quantization (or a fused producer) left them in act_q. */
static act_view quantize_input(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    int kind = act_kind_of(w->type);
    act_view a = act_layout(c, op->n, w->ne0);
    bool cached = c->aq_x == op->x && c->aq_n == op->n && c->aq_ne0 == w->ne0 &&
                  c->aq_kind == kind;
    if (kind != ACT_F32 && !cached) {
        launch_quantize<PRE_NONE>(c, kind, op->n, w->ne0, (const float *)op->x, NULL, NULL, a);
        remember_act(c, op->x, op->n, w->ne0, kind);
    }
    return a;
}

/* launch_mms at the activation-row chunk for n rows */
static bool launch_mms_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, const act_view &a,
                         float *resid)
{
    const int32_t n = ops[0].n;
    if (n == 1) return launch_mms<1>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    if (n == 2) return launch_mms<2>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    if (n <= 4) return launch_mms<4>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    return launch_mms<8>(c, ops, n_set, a.aq, a.ad, a.as, resid);
}

/* launch_mms2 at the activation-row chunk for n rows */
static bool launch_mms2_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const act_view &a)
{
    const int32_t n = ops[0].n;
    if (n == 1) return launch_mms2<1>(c, ops, n_set, first1, a.aq, a.ad, a.as);
    if (n == 2) return launch_mms2<2>(c, ops, n_set, first1, a.aq, a.ad, a.as);
    if (n <= 4) return launch_mms2<4>(c, ops, n_set, first1, a.aq, a.ad, a.as);
    return launch_mms2<8>(c, ops, n_set, first1, a.aq, a.ad, a.as);
}

/* launch_mmv at the activation-row chunk for n rows */
static void launch_mmv_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, const act_view &a,
                         float *resid)
{
    const int32_t n = ops[0].n;
    if (n == 1)
        launch_mmv<1>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    else if (n == 2)
        launch_mmv<2>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    else if (n <= 4)
        launch_mmv<4>(c, ops, n_set, a.aq, a.ad, a.as, resid);
    else
        launch_mmv<8>(c, ops, n_set, a.aq, a.ad, a.as, resid);
}

/* resid (or NULL): also add the result into it (a following `add`); returns
 * false when the kernel could not (float weights), and the caller issues the
 * add itself. */
static bool matmul_small(cuda_ctx *c, const struct cuda_op *op, float *resid)
{
    const bool quant = act_kind_of(op->w.type) != ACT_F32;
    act_view a = quantize_input(c, op);
    if (!quant || c->mmv_plain || !launch_mms_n(c, op, 1, a, resid))
        launch_mmv_n(c, op, 1, a, resid);
    CUDA_CHECK(c, cudaGetLastError());
    return quant && resid;
}

bool realm__cuda_act_target(cuda_ctx *c, const struct cuda_op *mm, const void *x, int32_t n,
                            int64_t ne0, struct cuda_act_target *t)
{
    const int kind = act_kind_of(mm->w.type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || mm->x != x || mm->n != n || mm->w.ne0 != ne0)
        return false;
    const act_view a = act_layout(c, n, ne0);
    t->kind = kind;
    t->aq = a.aq;
    t->ad = a.ad;
    t->as = a.as;
    return true;
}

void realm__cuda_act_written(cuda_ctx *c, const struct cuda_op *mm)
{
    remember_act(c, mm->x, mm->n, mm->w.ne0, act_kind_of(mm->w.type));
}

bool realm__cuda_issue_rmsnorm_quant(cuda_ctx *c, const struct cuda_op *norm,
                                     const struct cuda_op *mm)
{
    const realm_weight *w = &mm->w;
    int kind = act_kind_of(w->type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || norm->w.ne0 != w->ne0 ||
        norm->n != mm->n || norm->out != mm->x)
        return false;
    act_view a = act_layout(c, mm->n, w->ne0);
    const float *x = (const float *)norm->x, *g = (const float *)norm->w.data;
    float *out = (float *)norm->out;
    const int64_t part = kind == ACT_Q8_K ? norm_part<256>() : norm_part<32>();
    dim3 grid((unsigned)((w->ne0 + part - 1) / part), (unsigned)norm->n);
    if (kind == ACT_Q8_K)
        cuda__launch_pdl(c, k_rmsnorm_quant<256>, grid, dim3(NORM_THREADS), 0, x, g, w->ne0,
                         norm->f0, out, kind, a.aq, a.ad, a.as);
    else
        cuda__launch_pdl(c, k_rmsnorm_quant<32>, grid, dim3(NORM_THREADS), 0, x, g, w->ne0,
                         norm->f0, out, kind, a.aq, a.ad, a.as);
    CUDA_CHECK(c, cudaGetLastError());
    remember_act(c, mm->x, mm->n, w->ne0, kind);
    return true;
}

bool realm__cuda_issue_swiglu_quant(cuda_ctx *c, const struct cuda_op *sw, const struct cuda_op *mm)
{
    const realm_weight *w = &mm->w;
    int kind = act_kind_of(w->type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || sw->out != mm->x ||
        sw->width != (int64_t)mm->n * w->ne0 || sw->y == sw->out)
        return false;
    act_view a = act_layout(c, mm->n, w->ne0);
    float *gate = (float *)sw->out;
    launch_quantize<PRE_SWIGLU>(c, kind, mm->n, w->ne0, gate, (const float *)sw->y, gate, a);
    remember_act(c, mm->x, mm->n, w->ne0, kind);
    return true;
}

/* ---- the cuBLAS path ---- */

/* One 32-element group per thread, unpacked by the mat-vec's load_group:
 * element = fa·code − fm (+ fs), the same float operations as dq_elem (so
 * the same binary16 values). Each warp's 32 groups (2 KB) pass through
 * shared memory so that its stores are whole 512-byte runs (a thread's own
 * 64 bytes as four 16-byte stores half-filled every sector they touched:
 * 1.1 TB/s of writes on the H100). blockIdx.x is the row. */
template <int T>
__global__ static void __launch_bounds__(128)
    k_dequant_h(const uint8_t *__restrict__ w, size_t row_bytes, int32_t ne0, __half *dst)
{
    __shared__ uint4 st[4][32 * 5]; /* a lane's 4 x 16 bytes at stride 5: no bank conflicts */
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t n_g = ne0 / 32, g0 = (int32_t)blockIdx.y * blockDim.x + 32 * warp;
    if (g0 >= n_g) return; /* warp-uniform */
    if (g0 + lane < n_g) {
        grp o;
        load_group<T>(w + (size_t)blockIdx.x * row_bytes, g0 + lane, o);
#pragma unroll
        for (int k = 0; k < 8; k += 2) {
            float fa = k < 4 ? o.fa0 : o.fa1, fm = k < 4 ? o.fm0 : o.fm1;
            __half2 h[4];
#pragma unroll
            for (int e = 0; e < 8; e += 2) {
                float v[2];
#pragma unroll
                for (int u = 0; u < 2; u++) {
                    int q = (int)(int8_t)((uint32_t)o.w[k + (e + u) / 4] >> (8 * ((e + u) % 4)));
                    v[u] = __fsub_rn(__fmul_rn(fa, (float)q), fm);
                    if (T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1) v[u] = __fadd_rn(v[u], o.fs);
                }
                h[e / 2] = __floats2half2_rn(v[0], v[1]);
            }
            st[warp][5 * lane + k / 2] = *(const uint4 *)h;
        }
    }
    __syncwarp();
    uint4 *d = (uint4 *)(dst + (size_t)blockIdx.x * ne0 + 32 * (size_t)g0);
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int i = 32 * k + lane; /* 16-byte unit i of the warp's run: group i / 4 */
        if (g0 + i / 4 < n_g) d[i] = st[warp][5 * (i / 4) + i % 4];
    }
}

static void launch_dequant_h(cuda_ctx *c, realm_type t, const void *w, size_t rb, int64_t ne0,
                             int64_t rows)
{
    dim3 grid((unsigned)rows, (unsigned)((ne0 / 32 + 127) / 128));
    const uint8_t *p = (const uint8_t *)w;
    __half *d = (__half *)c->dq;
#define DQ(T) k_dequant_h<T><<<grid, 128, 0, c->stream>>>(p, rb, (int32_t)ne0, d)
    switch (t) {
    case REALM_TYPE_Q4_0: DQ(REALM_TYPE_Q4_0); break;
    case REALM_TYPE_Q4_1: DQ(REALM_TYPE_Q4_1); break;
    case REALM_TYPE_Q5_0: DQ(REALM_TYPE_Q5_0); break;
    case REALM_TYPE_Q5_1: DQ(REALM_TYPE_Q5_1); break;
    case REALM_TYPE_Q8_0: DQ(REALM_TYPE_Q8_0); break;
    case REALM_TYPE_Q2_K: DQ(REALM_TYPE_Q2_K); break;
    case REALM_TYPE_Q3_K: DQ(REALM_TYPE_Q3_K); break;
    case REALM_TYPE_Q4_K: DQ(REALM_TYPE_Q4_K); break;
    case REALM_TYPE_Q5_K: DQ(REALM_TYPE_Q5_K); break;
    case REALM_TYPE_Q6_K: DQ(REALM_TYPE_Q6_K); break;
    case REALM_TYPE_IQ4_NL: DQ(REALM_TYPE_IQ4_NL); break;
    case REALM_TYPE_IQ4_XS: DQ(REALM_TYPE_IQ4_XS); break;
    default: break; /* float types never come here (realm__cuda_type_ok) */
    }
#undef DQ
}

/* Four elements per thread. */
__global__ static void k_to_half(const float *x, int64_t n, int bf16, void *dst)
{
    int64_t i0 = 4 * ((int64_t)blockIdx.x * blockDim.x + threadIdx.x);
    for (int64_t i = i0; i < i0 + 4 && i < n; i++) {
        if (bf16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(x[i]);
        else
            ((__half *)dst)[i] = __float2half_rn(x[i]);
    }
}

__global__ static void k_add_bias(float *out, const float *bias, int64_t ne1, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] += bias[i % ne1];
}

static void cublas_check(cuda_ctx *c, cublasStatus_t s, const char *what)
{
    if (s != CUBLAS_STATUS_SUCCESS && c->first_status == REALM_OK) {
        c->first_status = REALM_E_INTERNAL;
        snprintf(c->first_error, sizeof c->first_error, "cuda backend: %s: cuBLAS status %d", what,
                 (int)s);
    }
}

static void matmul_big(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    const int64_t ne0 = w->ne0, ne1 = w->ne1, n = op->n;
    const float one = 1.0f, zero = 0.0f;
    float *out = (float *)op->out;
    if (w->type == REALM_TYPE_F32) {
        cublas_check(c, cublasSgemm(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)ne1, (int)n, (int)ne0,
                                    &one, (const float *)w->data, (int)ne0, (const float *)op->x,
                                    (int)ne0, &zero, out, (int)ne1),
                     "sgemm");
    } else {
        int bf16 = w->type == REALM_TYPE_BF16;
        cudaDataType dt = bf16 ? CUDA_R_16BF : CUDA_R_16F;
        /* q/k/v and gate/up read one input: convert it once */
        const int kind = bf16 ? ACT_BF16 : ACT_F16;
        if (c->aq_x != op->x || c->aq_n != n || c->aq_ne0 != ne0 || c->aq_kind != kind) {
            k_to_half<<<(unsigned)((n * ne0 + 1023) / 1024), 256, 0, c->stream>>>(
                (const float *)op->x, n * ne0, bf16, c->act_h);
            CUDA_CHECK(c, cudaGetLastError());
            remember_act(c, op->x, (int32_t)n, ne0, kind);
        }
        size_t rb = realm_type_row_size(w->type, ne0);
        int64_t tile = (int64_t)(c->dq_bytes / ((size_t)ne0 * 2));
        for (int64_t r0 = 0; r0 < ne1; r0 += tile) {
            int64_t rows = ne1 - r0 < tile ? ne1 - r0 : tile;
            const void *a = (const uint8_t *)w->data + (size_t)r0 * rb;
            if (w->type != REALM_TYPE_F16 && w->type != REALM_TYPE_BF16) {
                launch_dequant_h(c, w->type, a, rb, ne0, rows);
                CUDA_CHECK(c, cudaGetLastError());
                a = c->dq;
            }
            cublas_check(c,
                         cublasGemmEx(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n,
                                      (int)ne0, &one, a, dt, (int)ne0, c->act_h, dt, (int)ne0,
                                      &zero, out + r0, CUDA_R_32F, (int)ne1, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         "gemm");
        }
    }
    if (op->bias.data) {
        k_add_bias<<<(unsigned)((n * ne1 + 255) / 256), 256, 0, c->stream>>>(
            out, (const float *)op->bias.data, ne1, n * ne1);
        CUDA_CHECK(c, cudaGetLastError());
    }
}

int realm__cuda_issue_matmul_set(cuda_ctx *c, const struct cuda_op *ops, int n_ops)
{
    const struct cuda_op *op = &ops[0];
    /* the tile kernel's super-block path (q, k, v at 9..96 rows) or the
     * staged mat-vec */
    const bool mmq = takes_mmq(c, op);
    if (!c->mmv_set || act_kind_of(op->w.type) == ACT_F32 ||
        (mmq ? !realm__cuda_mmq_sb(c, &op->w) : !takes_small_path(c, op)))
        return 0;
    int k = 1, first1 = 0; /* first1: the first member of a second type */
    while (k < n_ops && k < MMS_SET) {
        const struct cuda_op *o = &ops[k];
        if (o->kind != CUDA_OP_MATMUL || o->x != op->x || o->n != op->n || o->w.ne0 != op->w.ne0 ||
            (uintptr_t)o->w.data % 16)
            break;
        if (o->w.type != ops[k - 1].w.type) { /* once, in the staged mat-vec's sets */
            if (mmq || first1 || c->mmv_plain || !c->mmv_mixed ||
                !mms_mixable(op->w.type, o->w.type))
                break;
            first1 = k;
        }
        k++;
    }
    if (k < 2) return 0;
    for (int i = 0; i < k; i++) /* no member may overwrite the input the others read */
        if (ops[i].out == op->x) return 0;
    act_view a = quantize_input(c, op);
    /* q, k, v at one row, then their rope, rope and kv_store: the ring does
     * those three ops in its epilogue */
    struct cuda_rope_kv rkv;
    if (!mmq && k == 3 && n_ops >= 6 && c->ring_rope && !c->mmv_plain && ops[3].n == op->n &&
        realm__cuda_rope_kv_of(c, &ops[3], &ops[4], &ops[5], &rkv) && rkv.q == ops[0].out &&
        rkv.k == ops[1].out && rkv.v == ops[2].out &&
        (int64_t)rkv.nq * rkv.head_dim == ops[0].w.ne1 &&
        (int64_t)rkv.nk * rkv.head_dim == ops[1].w.ne1 && ops[2].w.ne1 == ops[1].w.ne1 &&
        realm__cuda_mmv_ring(c, ops, k, first1 ? first1 : k, a.aq, a.ad, a.as, NULL, &rkv)) {
        c->counts.ring_rope++;
        c->aq_x = NULL;
        return 6;
    }
    if (mmq) /* the input stays cached: the tile kernel's sets are not mat-vecs */
        return realm__cuda_mmq(c, ops, k, a.aq, a.ad, a.as, NULL) ? k : 0;
    /* a staged set whose members would slab their rows differently goes
     * one by one (the cached input serves them); formats and rows the
     * staged kernel does not take (Q8_0) as a set of the unstaged one */
    if (first1) {
        if (!launch_mms2_n(c, ops, k, first1, a)) return 0;
    } else if (!c->mmv_plain && mms_stageable(c, &op->w)) {
        if (!launch_mms_n(c, ops, k, a, NULL)) return 0;
    } else {
        launch_mmv_n(c, ops, k, a, NULL);
    }
    CUDA_CHECK(c, cudaGetLastError());
    /* The quantized input is still valid (no member wrote it), but a
     * matmul of another type on it (a Q6_K v after a Q4_K q/k set with
     * mixing off) was better off quantizing it again: 8B Q4_K_M decode1
     * 337.4 with the copy kept vs 340.6 (NOTES round 12); likely two
     * mat-vecs back to back, both starting their followers early, then
     * compete for the SMs. */
    c->aq_x = NULL;
    return k;
}

bool realm__cuda_issue_matmul(cuda_ctx *c, const struct cuda_op *op, float *resid)
{
    bool added = false;
    if (takes_mmq(c, op)) {
        act_view a = quantize_input(c, op);
        if (realm__cuda_mmq(c, op, 1, a.aq, a.ad, a.as, resid))
            added = resid != NULL;
        else matmul_big(c, op);
    } else if (takes_small_path(c, op)) {
        added = matmul_small(c, op, resid);
    } else {
        matmul_big(c, op);
    }
    if (op->out == c->aq_x || (resid && resid == c->aq_x))
        c->aq_x = NULL; /* the cached input was overwritten */
    return added;
}
