/*
 * backend/cuda/cuda_quant.cuh — device-side decoding of every weight format.
 *
 * Two views of each format (layouts: quant/blocks.h; element order: the top
 * comments of quant/legacy.c, kquants.c, iq4.c):
 *   dq_elem(type, row, i)       element i of a row as float, with the same
 *                               float operations as the CPU's to_float
 *                               (get_rows);
 *   group quants for matmul     the 32 codes of one 32-element group packed
 *                               as 8 ints of 4 signed bytes, plus the
 *                               group's integer sub-scales, for dp4a (and,
 *                               scaled back to floats with the same
 *                               operations as dq_elem, the f16 tiles of the
 *                               cuBLAS path).
 * Blocks are only 2-byte aligned in several formats (18, 22, 34, 110, 210
 * bytes), so 4-byte words are assembled from 16-bit loads there.
 */
#ifndef REALM_BACKEND_CUDA_CUDA_QUANT_CUH
#define REALM_BACKEND_CUDA_CUDA_QUANT_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "quant/blocks.h"
#include "quant/types.h"
}

__device__ __forceinline__ float h2f(uint16_t h)
{
    return __half2float(__ushort_as_half(h));
}

/* 4 bytes at a 2-byte aligned address */
__device__ __forceinline__ uint32_t ld4_a2(const uint8_t *p)
{
    const uint16_t *q = (const uint16_t *)p;
    return (uint32_t)q[0] | ((uint32_t)q[1] << 16);
}

__device__ __forceinline__ uint32_t ld4_a4(const uint8_t *p)
{
    return *(const uint32_t *)p;
}

/* x - c per byte for bytes x in 0..127 and c <= 128: with each byte's top
 * bit set first no borrow crosses a byte, and flipping it back leaves the
 * two's complement difference. Exact where __vsubss4 (emulated on sm_90,
 * ~10 instructions) would not saturate; three instructions. */
__device__ __forceinline__ uint32_t sub_bytes(uint32_t x, uint32_t c)
{
    return ((x | 0x80808080u) - c) ^ 0x80808080u;
}

__constant__ static const int8_t kv_iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                               1,    13,   25,  38,  53,  69,  89,  113};

/* Four 4-bit indices (the low nibble of each byte of idx) mapped through the
 * IQ4 level table, as 4 signed bytes: __byte_perm picks bytes of the table
 * held in registers, so no memory lookup per element. */
__device__ __forceinline__ uint32_t iq4_lookup4(uint32_t idx)
{
    const uint32_t t0 = 0xBFAD9881u, t1 = 0xF6EADDCFu; /* levels 0..7 as bytes, little-endian */
    const uint32_t t2 = 0x26190D01u, t3 = 0x71594535u; /* levels 8..15 */
    uint32_t sel = (idx & 0x7) | ((idx >> 4) & 0x70) | ((idx >> 8) & 0x700) | ((idx >> 12) & 0x7000);
    uint32_t lo = __byte_perm(t0, t1, sel), hi = __byte_perm(t2, t3, sel);
    uint32_t m = idx & 0x08080808u; /* bit 3 of each index chooses the upper table */
    m = (m >> 3) * 0xFFu;
    return (hi & m) | (lo & ~m);
}

/* ---- per-element dequantization (float operations as the CPU's) ---- */

__device__ __forceinline__ int nib32(const uint8_t *qs, int j)
{
    return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4;
}

__device__ __forceinline__ void k4_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

__device__ __forceinline__ int q3k_scale(const uint8_t *scales, int j)
{
    int lo = (scales[j % 8] >> (4 * (j / 8))) & 15;
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

__device__ static float dq_elem(int type, const uint8_t *row, int64_t i)
{
    switch (type) {
    case REALM_TYPE_F32: return ((const float *)row)[i];
    case REALM_TYPE_F16: return h2f(((const uint16_t *)row)[i]);
    case REALM_TYPE_BF16: return __uint_as_float((uint32_t)((const uint16_t *)row)[i] << 16);
    case REALM_TYPE_Q4_0: {
        const realm_block_q4_0 *b = (const realm_block_q4_0 *)row + i / 32;
        return (float)(nib32(b->qs, (int)(i % 32)) - 8) * h2f(b->d);
    }
    case REALM_TYPE_Q4_1: {
        const realm_block_q4_1 *b = (const realm_block_q4_1 *)row + i / 32;
        return __fadd_rn(__fmul_rn((float)nib32(b->qs, (int)(i % 32)), h2f(b->d)), h2f(b->m));
    }
    case REALM_TYPE_Q5_0: {
        const realm_block_q5_0 *b = (const realm_block_q5_0 *)row + i / 32;
        int j = (int)(i % 32);
        uint32_t qh = b->qh[0] | b->qh[1] << 8 | b->qh[2] << 16 | (uint32_t)b->qh[3] << 24;
        return (float)((nib32(b->qs, j) | (int)((qh >> j) & 1) << 4) - 16) * h2f(b->d);
    }
    case REALM_TYPE_Q5_1: {
        const realm_block_q5_1 *b = (const realm_block_q5_1 *)row + i / 32;
        int j = (int)(i % 32);
        uint32_t qh = b->qh[0] | b->qh[1] << 8 | b->qh[2] << 16 | (uint32_t)b->qh[3] << 24;
        float q = (float)(nib32(b->qs, j) | (int)((qh >> j) & 1) << 4);
        return __fadd_rn(__fmul_rn(q, h2f(b->d)), h2f(b->m));
    }
    case REALM_TYPE_Q8_0: {
        const realm_block_q8_0 *b = (const realm_block_q8_0 *)row + i / 32;
        return (float)b->qs[i % 32] * h2f(b->d);
    }
    case REALM_TYPE_IQ4_NL: {
        const realm_block_iq4_nl *b = (const realm_block_iq4_nl *)row + i / 32;
        return h2f(b->d) * (float)kv_iq4[nib32(b->qs, (int)(i % 32))];
    }
    case REALM_TYPE_Q2_K: {
        const realm_block_q2_k *b = (const realm_block_q2_k *)row + i / 256;
        int e = (int)(i % 256), j = e / 16;
        int q = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        float dl = __fmul_rn(h2f(b->d), (float)(b->scales[j] & 15));
        float ml = __fmul_rn(h2f(b->dmin), (float)(b->scales[j] >> 4));
        return __fsub_rn(__fmul_rn(dl, (float)q), ml);
    }
    case REALM_TYPE_Q3_K: {
        const realm_block_q3_k *b = (const realm_block_q3_k *)row + i / 256;
        int e = (int)(i % 256);
        int lo = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        int hi = (b->hmask[e % 32] >> (e / 32)) & 1;
        float dl = __fmul_rn(h2f(b->d), (float)q3k_scale(b->scales, e / 16));
        return __fmul_rn(dl, (float)(lo - (hi ? 0 : 4)));
    }
    case REALM_TYPE_Q4_K: {
        const realm_block_q4_k *b = (const realm_block_q4_k *)row + i / 256;
        int e = (int)(i % 256), sc, m;
        k4_scale_min(b->scales, e / 32, &sc, &m);
        int q = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15;
        float dl = __fmul_rn(h2f(b->d), (float)sc), ml = __fmul_rn(h2f(b->dmin), (float)m);
        return __fsub_rn(__fmul_rn(dl, (float)q), ml);
    }
    case REALM_TYPE_Q5_K: {
        const realm_block_q5_k *b = (const realm_block_q5_k *)row + i / 256;
        int e = (int)(i % 256), sc, m;
        k4_scale_min(b->scales, e / 32, &sc, &m);
        int q = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15;
        q |= ((b->qh[e % 32] >> (e / 32)) & 1) << 4;
        float dl = __fmul_rn(h2f(b->d), (float)sc), ml = __fmul_rn(h2f(b->dmin), (float)m);
        return __fsub_rn(__fmul_rn(dl, (float)q), ml);
    }
    case REALM_TYPE_Q6_K: {
        const realm_block_q6_k *b = (const realm_block_q6_k *)row + i / 256;
        int e = (int)(i % 256), r = e % 128;
        int lo = (b->ql[64 * (e / 128) + r % 64] >> (4 * (r / 64))) & 15;
        int hi = (b->qh[32 * (e / 128) + r % 32] >> (2 * (r / 32))) & 3;
        float dl = __fmul_rn(h2f(b->d), (float)b->scales[e / 16]);
        return __fmul_rn(dl, (float)((lo | (hi << 4)) - 32));
    }
    case REALM_TYPE_IQ4_XS: {
        const realm_block_iq4_xs *b = (const realm_block_iq4_xs *)row + i / 256;
        int e = (int)(i % 256), ib = e / 32;
        int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b->scales_h >> (2 * ib)) & 3) << 4);
        float dl = __fmul_rn(h2f(b->d), (float)(ls - 32));
        return __fmul_rn(dl, (float)kv_iq4[nib32(b->qs + 16 * ib, e % 32)]);
    }
    }
    return 0.0f;
}

/* ---- group quants: one 32-element group g of a weight row, as int8 codes ----
 * (the mat-vec kernels of cuda_matmul.cu and the tile kernel of cuda_mmq.cu
 * share this unpacking) */

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
                o.w[k] = (int)sub_bytes(lo, 0x08080808u);
                o.w[k + 4] = (int)sub_bytes(hi, 0x08080808u);
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
            o.w[k] = (int)sub_bytes(lo, 0x10101010u);
            o.w[k + 4] = (int)sub_bytes(hi, 0x10101010u);
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
        if ((uintptr_t)row % 4 == 0) {
            /* 34-byte blocks in a 4-byte aligned row: 9 aligned loads instead
             * of 17 two-byte ones */
            const uint32_t *w = (const uint32_t *)((const uint8_t *)b - 2 * (g & 1));
            if (g & 1) { /* block at 2 mod 4: d ends the word before, codes aligned */
                o.fa0 = h2f((uint16_t)(w[0] >> 16));
                for (int k = 0; k < 8; k++)
                    o.w[k] = (int)w[1 + k];
            } else { /* block aligned: d, then the codes 2 bytes in */
                uint32_t p = w[0];
                o.fa0 = h2f((uint16_t)p);
                for (int k = 0; k < 7; k++) {
                    const uint32_t n = w[1 + k];
                    o.w[k] = (int)__funnelshift_r(p, n, 16);
                    p = n;
                }
                /* the last two codes alone: no read past the block */
                o.w[7] = (int)((p >> 16) | ((uint32_t)*(const uint16_t *)(b->qs + 30) << 16));
            }
            o.fa1 = o.fa0;
        } else {
            for (int k = 0; k < 8; k++)
                o.w[k] = (int)ld4_a2((const uint8_t *)b->qs + 4 * k);
            o.fa0 = o.fa1 = h2f(b->d);
        }
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
            o.w[k] = (int)sub_bytes(lo | hi, 0x04040404u);
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
        /* 210-byte blocks: ql and qh sit at 2 mod 4 in every other block.
         * The aligned words around them, funnel-shifted by the offset (nine
         * loads for eight words; the ninth stays inside the block, and
         * what precedes an unaligned block is the block before it). The
         * word addresses step back from ql/qh (masking the address as an
         * integer would hide that staged rows are in shared memory: 54
         * generic loads with 64-bit addresses in k_mmv_s<Q6_K>). */
        /* qh is as misaligned: both sit a multiple of 4 bytes into the block */
        const int mis = (int)((uintptr_t)ql & 3);
        const uint32_t sh = 8 * (uint32_t)mis;
        const uint32_t *wl = (const uint32_t *)(ql - mis);
        const uint32_t *wh = (const uint32_t *)(qh - mis);
        uint32_t pl = wl[0], ph = wh[0];
        for (int k = 0; k < 8; k++) {
            const uint32_t nl = wl[k + 1], nh = wh[k + 1];
            uint32_t lo = (__funnelshift_r(pl, nl, sh) >> sl) & 0x0F0F0F0Fu;
            uint32_t hi = ((__funnelshift_r(ph, nh, sh) >> shh) & 0x03030303u) << 4;
            o.w[k] = (int)sub_bytes(lo | hi, 0x20202020u);
            pl = nl;
            ph = nh;
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

/* 16 bytes global -> shared without passing through registers (both
 * addresses 16-byte aligned); a thread's copies since its last commit form
 * one group, and cp_async_wait<N> returns once at most N of its groups are
 * still in flight (other threads' copies need a barrier after it). */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem)
{
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}

__device__ __forceinline__ void cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void cp_async_wait(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* RMSNorm's Σ x² over a row of d floats for a block of NORM_THREADS
 * threads, in one fixed order (float4 loads where the row allows, explicit
 * fmaf), so that k_rmsnorm, k_rmsnorm_quant and the ring mat-vec's rmsnorm
 * (cuda_mmv_ring.cu's ring_norm, which repeats it with its first
 * NORM_THREADS consumer threads) compute the same bits; every thread gets the
 * sum. sh: NORM_THREADS / 32 floats of shared scratch, used
 * once per block. */
#define NORM_THREADS 128

/* ss + Σ of v's four squares, in row_sumsq's order */
__device__ __forceinline__ float sumsq4(const float4 &v, float ss)
{
    ss = fmaf(v.x, v.x, ss);
    ss = fmaf(v.y, v.y, ss);
    ss = fmaf(v.z, v.z, ss);
    return fmaf(v.w, v.w, ss);
}

__device__ __forceinline__ float row_sumsq(const float *xr, int64_t d, float *sh)
{
    float ss = 0.0f;
    if (d % 4 == 0 && (uintptr_t)xr % 16 == 0) {
        const float4 *x4 = (const float4 *)xr;
#pragma unroll 8
        for (int64_t i = threadIdx.x; i < d / 4; i += NORM_THREADS)
            ss = sumsq4(x4[i], ss);
    } else {
        for (int64_t i = threadIdx.x; i < d; i += NORM_THREADS)
            ss = fmaf(xr[i], xr[i], ss);
    }
    for (int o = 16; o > 0; o >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = ss;
    __syncthreads();
    ss = 0.0f;
#pragma unroll
    for (int w = 0; w < NORM_THREADS / 32; w++)
        ss += sh[w];
    return ss;
}

/* 1 / RMS from Σ x² (double, as the CPU) */
__device__ __forceinline__ float rms_inv(float ss, int64_t d, float eps)
{
    return (float)(1.0 / sqrt((double)ss / (double)d + eps));
}

/* what a matmul reads activations as; ACT_F16/ACT_BF16: the cuBLAS path's
 * converted copy (act_h) */
enum act_kind { ACT_F32, ACT_Q8_0, ACT_Q8_1, ACT_Q8_K, ACT_F16, ACT_BF16 };

/* ---- activation quantization, bit-exact with quant/legacy.c and kquants.c ---- */

/* Quantize one group of G elements (32: Q8_0/Q8_1, 256: Q8_K) held by a warp,
 * E = G / 32 consecutive values per lane, into group g32 (in 32-element
 * units) of the activation layout. */
template <int G>
__device__ __forceinline__ void quantize_group(float *v, int lane, int kind, int8_t *qg, float *d32,
                                               float *s32, int64_t g32)
{
    const int E = G / 32;
    float amax = 0.0f;
#pragma unroll
    for (int e = 0; e < E; e++) {
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
    if (kind == ACT_Q8_K) {
        float d = amax / 127.0f;
        double id = d > 0.0f ? 1.0 / d : 0.0;
        int sum = 0;
        uint32_t packed[2] = {}; /* a lane's 8 codes (E == 8, G = 256) */
#pragma unroll
        for (int e = 0; e < E; e++) {
            double t = (double)v[e] * id;
            t = t > 127.0 ? 127.0 : t < -127.0 ? -127.0 : t;
            const int qi = __double2int_rn(t);
            if constexpr (E == 8)
                packed[e / 4] |= (uint32_t)(qi & 0xff) << (8 * (e % 4));
            else
                qg[lane * E + e] = (int8_t)qi;
            sum += qi;
        }
        /* in one 8-byte store (groups start 256-aligned) */
        if constexpr (E == 8) *(uint2 *)(qg + lane * E) = make_uint2(packed[0], packed[1]);
        /* d·Σ codes of each 32-element group (4 lanes): the tile kernel's mins term */
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        if (lane < G / 32) d32[g32 + lane] = d;
        if (lane % 4 == 0) s32[g32 + lane / 4] = d * (float)sum;
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

/* Programmatic dependent launch (sm_90): a kernel launched with the
 * programmatic-serialization attribute may start before the kernel ahead of
 * it in the stream has finished; it must call pdl_wait() before it touches
 * anything that kernel writes (pdl_wait returns once that kernel has
 * completed and its writes are visible; without the attribute it returns at
 * once). pdl_trigger() lets such a follower be scheduled now: mat-vecs call
 * it first thing (their follower's weight copies then overlap their tail),
 * the tile kernel k_mmq_sb after its main loop, small kernels launched with
 * the attribute right after their pdl_wait() (cuda__launch_pdl in
 * cuda_impl.h), so that at most one kernel runs ahead. */
__device__ __forceinline__ void pdl_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* A load of what a kernel ahead wrote (activations, their scales) in a
 * kernel launched with PDL: coherent (ld.global.ca), never __ldg or a load
 * through a const __restrict__ pointer. Those become ld.global.nc, which
 * promises the bytes do not change while the kernel runs; under PDL they do
 * until pdl_wait returns, and ptxas does schedule ld.global.nc above
 * griddepcontrol.wait: it moved k_mmv_ring's activation loads there once
 * its consumer warps had work before the wait (wrong logits from the second
 * decode step; NOTES round 22). tests/cuda/check_pdl_sass.py finds such
 * loads in the built kernels. */
template <typename T> __device__ __forceinline__ T ld_prior(const T *p)
{
    return __ldca(p);
}

#endif
