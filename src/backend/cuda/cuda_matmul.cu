/*
 * backend/cuda/cuda_matmul.cu — out (n, ne1) = x (n, ne0) · W^T (+ bias).
 *
 * Small n (decode; n <= mmv_max_rows): activations are quantized on the GPU
 * exactly as the CPU reference quantizes them (the weight type's
 * vec_dot_type: Q8_0, Q8_1 or Q8_K, same rounding), into a GPU layout per row:
 * int8 codes, one float scale per 32 elements (Q8_K's 256-element scale
 * repeated) and, for Q8_1, the binary16-rounded d·Σq per 32. A mat-vec kernel
 * then gives each thread one 32-element group of a weight row at a time: its
 * codes as 8 words of 4 signed bytes, dp4a against the activation codes,
 * integer sums per (sub-)block, float across them. One warp per weight row;
 * up to 8 activation rows reuse each weight word from registers, and larger
 * batches (up to mmv_max_rows, default 64) take several chunks of 8.
 * Float weights (F32, F16, BF16) dot f32 activations directly.
 *
 * Large n (prefill): W is dequantized to f16 in tiles of rows
 * (scratch bounded by DQ_TILE_BYTES), activations converted to f16, and
 * cuBLAS multiplies with f32 accumulation; F32 weights use SGEMM directly.
 */
#include <math.h>
#include <stdio.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

#define MMV_THREADS   128
#define MMV_MAX_NR    8
#define DQ_TILE_BYTES ((size_t)128 << 20)

enum act_kind { ACT_F32, ACT_Q8_0, ACT_Q8_1, ACT_Q8_K };

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

/* ---- activation quantization, bit-exact with quant/legacy.c and kquants.c ---- */

/* One warp per group of G elements (32: Q8_0/Q8_1, 256: Q8_K). */
template <int G>
__global__ static void k_quantize_act(const float *x, int64_t ne0, int kind, int8_t *q, float *d32,
                                      float *s32)
{
    const int E = G / 32; /* elements per lane */
    int lane = threadIdx.x % 32;
    int64_t gidx = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int32_t r = blockIdx.y;
    if (gidx * G >= ne0) return;
    const float *xg = x + r * ne0 + gidx * G;
    float v[E];
    float amax = 0.0f;
    for (int e = 0; e < E; e++) {
        v[e] = xg[lane * E + e];
        if (kind == ACT_Q8_K) {
            const float lim = 0x1p126f;
            v[e] = isnan(v[e]) ? 0.0f : v[e] > lim ? lim : v[e] < -lim ? -lim : v[e];
            amax = fmaxf(amax, fabsf(v[e]));
        } else if (amax < fabsf(v[e])) {
            amax = fabsf(v[e]);
        }
    }
    for (int o = 16; o > 0; o >>= 1)
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    int8_t *qg = q + r * ne0 + gidx * G;
    int64_t g32 = r * (ne0 / 32) + gidx * (G / 32);
    if (kind == ACT_Q8_K) {
        float d = amax / 127.0f;
        double id = d > 0.0f ? 1.0 / d : 0.0;
        for (int e = 0; e < E; e++) {
            double t = (double)v[e] * id;
            t = t > 127.0 ? 127.0 : t < -127.0 ? -127.0 : t;
            qg[lane * E + e] = (int8_t)__double2int_rn(t);
        }
        if (lane < G / 32) d32[g32 + lane] = d;
        return;
    }
    float d = fminf(amax / 127.0f, 65504.0f);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (isinf(id)) id = 0.0f;
    float t = v[0] * id;
    int qi = isnan(t) ? 0 : t >= 127.0f ? 127 : t <= -127.0f ? -127 : (int)roundf(t);
    qg[lane] = (int8_t)qi;
    int sum = qi;
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) {
        d32[g32] = __half2float(__float2half_rn(d));
        if (kind == ACT_Q8_1) s32[g32] = __half2float(__float2half_rn((float)sum * d));
    }
}

/* ---- group dot products: one 32-element group g of a weight row ---- */

__device__ __forceinline__ uint32_t spread4(uint32_t x)
{
    return ((x & 1) << 4) | ((x & 2) << 11) | ((x & 4) << 18) | ((x & 8) << 25);
}

/* The codes of group g as 8 words (elements 4k..4k+3 in word k) and how to
 * scale integer dots: result = sum over the two 16-halves h of
 * (fa[h] * isum_h) - fm[h] * asum_h, times the activation scale, plus
 * (Q8_1 formats) fs * activation s. */
struct grp {
    int w[8];
    float fa0, fa1, fm0, fm1, fs;
};

template <int T>
__device__ __forceinline__ void load_group(const uint8_t *row, int64_t g, grp &o)
{
    o.fm0 = o.fm1 = o.fs = 0.0f;
    if (T == REALM_TYPE_Q4_0 || T == REALM_TYPE_IQ4_NL) {
        const realm_block_q4_0 *b = (const realm_block_q4_0 *)row + g;
        for (int k = 0; k < 4; k++) {
            uint32_t v = ld4_a2(b->qs + 4 * k);
            uint32_t lo = v & 0x0F0F0F0Fu, hi = (v >> 4) & 0x0F0F0F0Fu;
            if (T == REALM_TYPE_Q4_0) {
                o.w[k] = (int)__vsubss4(lo, 0x08080808u);
                o.w[k + 4] = (int)__vsubss4(hi, 0x08080808u);
            } else {
                o.w[k] = (int)iq4_lookup4(lo);
                o.w[k + 4] = (int)iq4_lookup4(hi);
            }
        }
        o.fa0 = o.fa1 = h2f(b->d);
    } else if (T == REALM_TYPE_Q4_1) {
        const realm_block_q4_1 *b = (const realm_block_q4_1 *)row + g;
        for (int k = 0; k < 4; k++) {
            uint32_t v = ld4_a4(b->qs + 4 * k);
            o.w[k] = (int)(v & 0x0F0F0F0Fu);
            o.w[k + 4] = (int)((v >> 4) & 0x0F0F0F0Fu);
        }
        o.fa0 = o.fa1 = h2f(b->d);
        o.fs = h2f(b->m);
    } else if (T == REALM_TYPE_Q5_0) {
        const realm_block_q5_0 *b = (const realm_block_q5_0 *)row + g;
        uint32_t qh = ld4_a2(b->qh);
        for (int k = 0; k < 4; k++) {
            uint32_t v = ld4_a2(b->qs + 4 * k);
            uint32_t lo = (v & 0x0F0F0F0Fu) | spread4((qh >> (4 * k)) & 15);
            uint32_t hi = ((v >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * k)) & 15);
            o.w[k] = (int)__vsubss4(lo, 0x10101010u);
            o.w[k + 4] = (int)__vsubss4(hi, 0x10101010u);
        }
        o.fa0 = o.fa1 = h2f(b->d);
    } else if (T == REALM_TYPE_Q5_1) {
        const realm_block_q5_1 *b = (const realm_block_q5_1 *)row + g;
        uint32_t qh = ld4_a4(b->qh);
        for (int k = 0; k < 4; k++) {
            uint32_t v = ld4_a4(b->qs + 4 * k);
            o.w[k] = (int)((v & 0x0F0F0F0Fu) | spread4((qh >> (4 * k)) & 15));
            o.w[k + 4] = (int)(((v >> 4) & 0x0F0F0F0Fu) | spread4((qh >> (16 + 4 * k)) & 15));
        }
        o.fa0 = o.fa1 = h2f(b->d);
        o.fs = h2f(b->m);
    } else if (T == REALM_TYPE_Q8_0) {
        const realm_block_q8_0 *b = (const realm_block_q8_0 *)row + g;
        for (int k = 0; k < 8; k++)
            o.w[k] = (int)ld4_a2((const uint8_t *)b->qs + 4 * k);
        o.fa0 = o.fa1 = h2f(b->d);
    } else if (T == REALM_TYPE_Q2_K) {
        const realm_block_q2_k *b = (const realm_block_q2_k *)row + g / 8;
        int j = (int)(g % 8), sh = 2 * (j % 4);
        for (int k = 0; k < 8; k++)
            o.w[k] = (int)((ld4_a4(b->qs + 32 * (j / 4) + 4 * k) >> sh) & 0x03030303u);
        float d = h2f(b->d), dm = h2f(b->dmin);
        uint8_t s0 = b->scales[2 * j], s1 = b->scales[2 * j + 1];
        o.fa0 = d * (float)(s0 & 15);
        o.fa1 = d * (float)(s1 & 15);
        o.fm0 = dm * (float)(s0 >> 4);
        o.fm1 = dm * (float)(s1 >> 4);
    } else if (T == REALM_TYPE_Q3_K) {
        const realm_block_q3_k *b = (const realm_block_q3_k *)row + g / 8;
        int j = (int)(g % 8), sh = 2 * (j % 4);
        for (int k = 0; k < 8; k++) {
            uint32_t lo = (ld4_a2(b->qs + 32 * (j / 4) + 4 * k) >> sh) & 0x03030303u;
            uint32_t hi = ((ld4_a2(b->hmask + 4 * k) >> j) & 0x01010101u) << 2;
            o.w[k] = (int)__vsubss4(lo | hi, 0x04040404u);
        }
        float d = h2f(b->d);
        o.fa0 = d * (float)q3k_scale(b->scales, 2 * j);
        o.fa1 = d * (float)q3k_scale(b->scales, 2 * j + 1);
    } else if (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
        const uint8_t *blk = row + (g / 8) * (T == REALM_TYPE_Q4_K ? 144 : 176);
        const realm_block_q4_k *b4 = (const realm_block_q4_k *)blk;
        const realm_block_q5_k *b5 = (const realm_block_q5_k *)blk;
        int j = (int)(g % 8), sc, m;
        const uint8_t *qs = T == REALM_TYPE_Q4_K ? b4->qs : b5->qs;
        const uint4 *q4 = (const uint4 *)(qs + 32 * (j / 2));
        uint4 a = q4[0], c = q4[1];
        uint32_t v[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
        for (int k = 0; k < 8; k++)
            o.w[k] = (int)((v[k] >> (4 * (j % 2))) & 0x0F0F0F0Fu);
        if (T == REALM_TYPE_Q5_K) {
            const uint4 *h4 = (const uint4 *)b5->qh;
            uint4 ha = h4[0], hc = h4[1];
            uint32_t h[8] = {ha.x, ha.y, ha.z, ha.w, hc.x, hc.y, hc.z, hc.w};
            for (int k = 0; k < 8; k++)
                o.w[k] |= (int)(((h[k] >> j) & 0x01010101u) << 4);
        }
        k4_scale_min(b4->scales, j, &sc, &m);
        o.fa0 = o.fa1 = h2f(b4->d) * (float)sc;
        o.fm0 = o.fm1 = h2f(b4->dmin) * (float)m;
    } else if (T == REALM_TYPE_Q6_K) {
        const realm_block_q6_k *b = (const realm_block_q6_k *)row + g / 8;
        int j = (int)(g % 8);
        const uint8_t *ql = b->ql + 64 * (j / 4) + 32 * (j % 2);
        const uint8_t *qh = b->qh + 32 * (j / 4);
        int sl = 4 * ((j % 4) / 2), shh = 2 * (j % 4);
        for (int k = 0; k < 8; k++) {
            uint32_t lo = (ld4_a2(ql + 4 * k) >> sl) & 0x0F0F0F0Fu;
            uint32_t hi = ((ld4_a2(qh + 4 * k) >> shh) & 0x03030303u) << 4;
            o.w[k] = (int)__vsubss4(lo | hi, 0x20202020u);
        }
        float d = h2f(b->d);
        o.fa0 = d * (float)b->scales[2 * j];
        o.fa1 = d * (float)b->scales[2 * j + 1];
    } else if (T == REALM_TYPE_IQ4_XS) {
        const realm_block_iq4_xs *b = (const realm_block_iq4_xs *)row + g / 8;
        int j = (int)(g % 8);
        const uint2 *q2 = (const uint2 *)(b->qs + 16 * j);
        uint2 a = q2[0], c = q2[1];
        uint32_t v[4] = {a.x, a.y, c.x, c.y};
        for (int k = 0; k < 4; k++) {
            o.w[k] = (int)iq4_lookup4(v[k] & 0x0F0F0F0Fu);
            o.w[k + 4] = (int)iq4_lookup4((v[k] >> 4) & 0x0F0F0F0Fu);
        }
        int ls = ((b->scales_l[j / 2] >> (4 * (j % 2))) & 15) | (((b->scales_h >> (2 * j)) & 3) << 4);
        o.fa0 = o.fa1 = h2f(b->d) * (float)(ls - 32);
    }
}

/* One warp per weight row, MMV_THREADS / 32 rows per block (no block-wide
 * synchronization: a warp's lanes stride over the row's groups and reduce by
 * shuffles); NR activation rows starting at blockIdx.y * NR. */
template <int T, int NR>
__global__ static void __launch_bounds__(MMV_THREADS)
    k_mmv_q(const uint8_t *w, size_t row_bytes, int64_t ne0, int64_t ne1, const int8_t *aq,
            const float *ad, const float *as, int32_t n, const float *bias, float *out)
{
    const int64_t G = ne0 / 32;
    const int lane = threadIdx.x % 32;
    const int64_t o_row = (int64_t)blockIdx.x * (MMV_THREADS / 32) + threadIdx.x / 32;
    const int32_t r0 = blockIdx.y * NR;
    if (o_row >= ne1) return;
    const uint8_t *wr = w + (size_t)o_row * row_bytes;
    float acc[NR];
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
#pragma unroll 2
    for (int64_t g = lane; g < G; g += 32) {
        grp q;
        load_group<T>(wr, g, q);
        for (int r = 0; r < NR; r++) {
            if (r0 + r >= n) break;
            const int64_t ar = (int64_t)(r0 + r);
            const int4 *ap = (const int4 *)(aq + ar * ne0 + g * 32);
            int4 a0 = ap[0], a1 = ap[1];
            int av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            int i0 = 0, i1 = 0, s0 = 0, s1 = 0;
            for (int k = 0; k < 4; k++) {
                i0 = __dp4a(q.w[k], av[k], i0);
                i1 = __dp4a(q.w[k + 4], av[k + 4], i1);
            }
            float da = ad[ar * G + g];
            float v;
            if (T == REALM_TYPE_Q2_K || T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
                for (int k = 0; k < 4; k++) {
                    s0 = __dp4a(av[k], 0x01010101, s0);
                    s1 = __dp4a(av[k + 4], 0x01010101, s1);
                }
                v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1 - q.fm0 * (float)s0 -
                          q.fm1 * (float)s1);
            } else if (T == REALM_TYPE_Q3_K || T == REALM_TYPE_Q6_K) {
                v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1);
            } else {
                v = (float)(i0 + i1) * (q.fa0 * da);
                if (T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1) v += q.fs * as[ar * G + g];
            }
            acc[r] += v;
        }
    }
    for (int r = 0; r < NR; r++) {
        float v = acc[r];
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == r && r0 + r < n) {
            if (bias) v += bias[o_row];
            out[(int64_t)(r0 + r) * ne1 + o_row] = v;
        }
    }
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

template <int NR>
static void launch_mmv(cuda_ctx *c, const struct cuda_op *op, const int8_t *aq, const float *ad,
                       const float *as)
{
    const realm_weight *w = &op->w;
    dim3 grid((unsigned)w->ne1, (unsigned)((op->n + NR - 1) / NR));
    const uint8_t *wd = (const uint8_t *)w->data;
    size_t rb = realm_type_row_size(w->type, w->ne0);
    const float *bias = (const float *)op->bias.data;
    float *out = (float *)op->out;
    const float *x = (const float *)op->x;
    dim3 gridq((unsigned)((w->ne1 + MMV_THREADS / 32 - 1) / (MMV_THREADS / 32)), grid.y);
#define Q(T) k_mmv_q<T, NR><<<gridq, MMV_THREADS, 0, c->stream>>>(wd, rb, w->ne0, w->ne1, aq, ad, as, op->n, bias, out)
#define F(T) k_mmv_f<T, NR><<<grid, MMV_THREADS, 0, c->stream>>>(wd, w->ne0, w->ne1, x, op->n, bias, out)
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

static void matmul_small(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    int kind = act_kind_of(w->type);
    int8_t *aq = (int8_t *)c->act_q;
    size_t nq = ((size_t)op->n * w->ne0 + 15) & ~(size_t)15;
    float *ad = (float *)((char *)c->act_q + nq);
    float *as = ad + (size_t)op->n * (w->ne0 / 32);
    bool cached = c->aq_x == op->x && c->aq_n == op->n && c->aq_ne0 == w->ne0 &&
                  c->aq_kind == kind;
    if (kind != ACT_F32 && !cached) {
        int G = kind == ACT_Q8_K ? 256 : 32;
        int64_t groups = w->ne0 / G;
        dim3 grid((unsigned)((groups + 3) / 4), (unsigned)op->n);
        if (G == 256)
            k_quantize_act<256><<<grid, 128, 0, c->stream>>>((const float *)op->x, w->ne0, kind,
                                                            aq, ad, as);
        else
            k_quantize_act<32><<<grid, 128, 0, c->stream>>>((const float *)op->x, w->ne0, kind, aq,
                                                           ad, as);
        CUDA_CHECK(c, cudaGetLastError());
        c->aq_x = op->x;
        c->aq_n = op->n;
        c->aq_ne0 = w->ne0;
        c->aq_kind = kind;
    }
    if (op->n == 1) launch_mmv<1>(c, op, aq, ad, as);
    else if (op->n == 2) launch_mmv<2>(c, op, aq, ad, as);
    else if (op->n <= 4) launch_mmv<4>(c, op, aq, ad, as);
    else launch_mmv<8>(c, op, aq, ad, as);
    CUDA_CHECK(c, cudaGetLastError());
}

/* ---- the cuBLAS path ---- */

__global__ static void k_dequant_h(int type, const uint8_t *w, size_t row_bytes, int64_t ne0,
                                   int64_t n_rows, int bf16, void *dst)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ne0 * n_rows) return;
    float v = dq_elem(type, w + (size_t)(i / ne0) * row_bytes, i % ne0);
    if (bf16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
    else ((__half *)dst)[i] = __float2half_rn(v);
}

__global__ static void k_to_half(const float *x, int64_t n, int bf16, void *dst)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (bf16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(x[i]);
    else ((__half *)dst)[i] = __float2half_rn(x[i]);
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
        k_to_half<<<(unsigned)((n * ne0 + 255) / 256), 256, 0, c->stream>>>((const float *)op->x,
                                                                            n * ne0, bf16, c->act_h);
        CUDA_CHECK(c, cudaGetLastError());
        size_t rb = realm_type_row_size(w->type, ne0);
        int64_t tile = (int64_t)(c->dq_bytes / ((size_t)ne0 * 2));
        for (int64_t r0 = 0; r0 < ne1; r0 += tile) {
            int64_t rows = ne1 - r0 < tile ? ne1 - r0 : tile;
            const void *a = (const uint8_t *)w->data + (size_t)r0 * rb;
            if (w->type != REALM_TYPE_F16 && w->type != REALM_TYPE_BF16) {
                k_dequant_h<<<(unsigned)((rows * ne0 + 255) / 256), 256, 0, c->stream>>>(
                    w->type, (const uint8_t *)a, rb, ne0, rows, 0, c->dq);
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

void realm__cuda_issue_matmul(cuda_ctx *c, const struct cuda_op *op)
{
    if (op->n <= c->mmv_max_rows) matmul_small(c, op);
    else matmul_big(c, op);
    if (op->out == c->aq_x) c->aq_x = NULL; /* the cached input was overwritten */
}
