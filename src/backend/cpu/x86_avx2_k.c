/*
 * backend/cpu/x86_avx2_k.c — AVX2+FMA kernels for the 256-element formats
 * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K activations, and Q8_K
 * activation quantization. Compiled with -mavx2 -mfma -mf16c.
 *
 * A block is walked in 8 chunks of 32 elements. Each chunk's weight codes
 * become unsigned bytes (vpmaddubsw's unsigned side) and their integer
 * sub-block scales ride in the vpmaddwd that widens the products. The zero
 * points (Q3_K: 4, Q6_K: 32) and the mins (Q2_K, Q4_K, Q5_K) are taken off
 * once per block through Q8_K's bsums. IQ4_XS values are signed and go in as
 * |w| with the sign moved onto the activation.
 *
 * As in x86_avx2_legacy.c, eight weight rows are computed together, one per
 * lane, from exact integer block sums, and every path takes the same float
 * steps per block (k_block_fma), so all agree bit for bit. Q2_K..Q6_K are
 * packed once at model load into 8-row panels (layout below): decode reads
 * the panel directly, prefill expands it once per call into one byte per
 * code and reuses it for every activation row, and the GGUF-layout entry
 * point packs 8 rows on the stack and runs the same tile. IQ4_XS stays in
 * the GGUF layout: decode dots each row on its own and reduces the eight
 * rows' lanes; prefill repacks the rows into a panel per call.
 *
 * Layout facts (element e of a block) are those documented in
 * quant/kquants.c and quant/iq4.c.
 */
#include <stdbool.h>
#include <stddef.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/x86_avx2_impl.h"
#include "base/status.h"
#include "quant/blocks.h"

enum { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6, K_IQ4XS };

AI size_t k_wbytes(int kind)
{
    switch (kind) {
    case K_Q2:
        return sizeof(realm_block_q2_k);
    case K_Q3:
        return sizeof(realm_block_q3_k);
    case K_Q4:
        return sizeof(realm_block_q4_k);
    case K_Q5:
        return sizeof(realm_block_q5_k);
    case K_Q6:
        return sizeof(realm_block_q6_k);
    default:
        return sizeof(realm_block_iq4_xs);
    }
}

/* Kinds whose scales cover 16 elements: a chunk holds two sub-blocks. */
AI int sub16(int kind)
{
    return kind == K_Q2 || kind == K_Q3 || kind == K_Q6;
}

AI int has_min(int kind)
{
    return kind == K_Q2 || kind == K_Q4 || kind == K_Q5;
}

/* Per weight block: integer scales, the i16 vector that meets bsums (mins,
 * or the scales for the zero-point kinds), and the float factors. */
typedef struct kblock {
    int16_t sc[16];
    int16_t m16[16]; /* meets bsums[j]: mins, or scales for the zero-point kinds */
    float d, dmin;
} kblock;

AI void k_scales(int kind, const uint8_t *b, kblock *kb)
{
    int16_t *m16 = kb->m16;
    memset(m16, 0, sizeof kb->m16);
    kb->dmin = 0.0f;
    switch (kind) {
    case K_Q2: {
        const realm_block_q2_k *x = (const realm_block_q2_k *)b;
        for (int j = 0; j < 16; j++) {
            kb->sc[j] = x->scales[j] & 15;
            m16[j] = x->scales[j] >> 4;
        }
        kb->d = _cvtsh_ss(x->d);
        kb->dmin = _cvtsh_ss(x->dmin);
        break;
    }
    case K_Q3: {
        const realm_block_q3_k *x = (const realm_block_q3_k *)b;
        for (int j = 0; j < 16; j++) {
            int lo = (x->scales[j % 8] >> (4 * (j / 8))) & 15;
            int hi = (x->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            kb->sc[j] = (int16_t)((lo | (hi << 4)) - 32);
            m16[j] = kb->sc[j];
        }
        kb->d = _cvtsh_ss(x->d);
        break;
    }
    case K_Q4:
    case K_Q5: {
        const uint8_t *s = b + 4; /* d, dmin, then the 12 scale bytes in both */
        for (int j = 0; j < 8; j++) {
            int sc, m;
            if (j < 4) {
                sc = s[j] & 63;
                m = s[j + 4] & 63;
            } else {
                sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
                m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
            }
            kb->sc[j] = (int16_t)sc;
            m16[2 * j] = m16[2 * j + 1] = (int16_t)m;
        }
        kb->d = ld_h(b);
        kb->dmin = ld_h(b + 2);
        break;
    }
    case K_Q6: {
        const realm_block_q6_k *x = (const realm_block_q6_k *)b;
        for (int j = 0; j < 16; j++)
            m16[j] = kb->sc[j] = x->scales[j];
        kb->d = _cvtsh_ss(x->d);
        break;
    }
    default: {
        const realm_block_iq4_xs *x = (const realm_block_iq4_xs *)b;
        for (int ib = 0; ib < 8; ib++)
            kb->sc[ib] = (int16_t)((((x->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) |
                                    (((x->scales_h >> (2 * ib)) & 3) << 4)) -
                                   32);
        kb->d = _cvtsh_ss(x->d);
    }
    }
}

/* Chunk g (elements 32g..32g+31) of a weight block: *u the bytes for
 * vpmaddubsw, *sg the sign source (IQ4_XS). */
AI void k_chunk(int kind, const uint8_t *b, int g, __m256i *u, __m256i *sg)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    switch (kind) {
    case K_Q2: {
        const realm_block_q2_k *x = (const realm_block_q2_k *)b;
        *u = _mm256_and_si256(_mm256_srli_epi16(ld256(x->qs + 32 * (g / 4)), 2 * (g % 4)), m2);
        break;
    }
    case K_Q3: {
        const realm_block_q3_k *x = (const realm_block_q3_k *)b;
        __m256i lo =
            _mm256_and_si256(_mm256_srli_epi16(ld256(x->qs + 32 * (g / 4)), 2 * (g % 4)), m2);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ld256(x->hmask), g), one);
        *u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2)); /* q + 4 in 0..7 */
        break;
    }
    case K_Q4: {
        const realm_block_q4_k *x = (const realm_block_q4_k *)b;
        *u = _mm256_and_si256(_mm256_srli_epi16(ld256(x->qs + 32 * (g / 2)), 4 * (g % 2)), m4);
        break;
    }
    case K_Q5: {
        const realm_block_q5_k *x = (const realm_block_q5_k *)b;
        __m256i lo =
            _mm256_and_si256(_mm256_srli_epi16(ld256(x->qs + 32 * (g / 2)), 4 * (g % 2)), m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ld256(x->qh), g), one);
        *u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        break;
    }
    case K_Q6: {
        const realm_block_q6_k *x = (const realm_block_q6_k *)b;
        int h = g / 4, kk = g % 4;
        __m256i lo = _mm256_and_si256(
            _mm256_srli_epi16(ld256(x->ql + 64 * h + 32 * (kk % 2)), 4 * (kk / 2)), m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ld256(x->qh + 32 * h), 2 * kk), m2);
        *u = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)); /* q + 32 in 0..63 */
        break;
    }
    default: {
        const realm_block_iq4_xs *x = (const realm_block_iq4_xs *)b;
        const __m128i q = ld128(x->qs + 16 * g), m = _mm_set1_epi8(0x0F);
        __m256i idx = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
        *sg = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(ld128(iq4_levels)), idx);
        *u = _mm256_abs_epi8(*sg);
    }
    }
}

/* i16 multipliers for chunk g: one scale for 32 elements, or two for 16 each. */
AI __m256i k_chunk_scale(int kind, const kblock *kb, int g)
{
    if (sub16(kind))
        return _mm256_set_m128i(_mm_set1_epi16(kb->sc[2 * g + 1]), _mm_set1_epi16(kb->sc[2 * g]));
    return _mm256_set1_epi16(kb->sc[g]);
}

/* The float steps every element takes per block, rows in lanes: the same in
 * the decode and the prefill path, so both give identical bits. isum and
 * bsum are exact integer totals per row. */
AI __m256 k_block_fma(int kind, __m256 acc, __m256i isum, __m256i bsum, __m256 d8, __m256 dmin8,
                      float da)
{
    if (kind == K_Q6) isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(bsum, 5));
    if (kind == K_Q3) isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(bsum, 2));
    const __m256 vda = _mm256_set1_ps(da);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d8, vda), acc);
    if (has_min(kind))
        acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(bsum), _mm256_mul_ps(dmin8, vda), acc);
    return acc;
}

/* ---- packed layout (Q2_K..Q6_K; pack_k, once per weight at model load) ----
 * Panels of 8 rows; per 256-element super-block a panel holds, in order,
 *     d[8]     f16 super-block scales of rows 0..7                (16 bytes)
 *     dmin[8]  f16 (Q2_K, Q4_K, Q5_K)                             (16 bytes)
 *     scales   per row, in the row's 32-bit lane (below)    (96 or 128 bytes)
 *     nib      low 4 code bits (Q4_K, Q5_K, Q6_K): 32 vectors   (1024 bytes)
 *     two      next 2 bits (Q2_K, Q3_K: bits 0-1; Q6_K: 4-5): 16  (512 bytes)
 *     one      next bit (Q3_K: bit 2; Q5_K: bit 4): 8 vectors     (256 bytes)
 * which is exactly 8 GGUF blocks' bytes. Group G (0..63) is elements
 * 4G..4G+3 and byte b of lane r holds row r's element 4G + b: in nib vector
 * G / 2, nibble G % 2; in two vector G / 4, bits 2 (G % 4); in one vector
 * G / 8, bit G % 8. The codes are unsigned (Q3_K: q + 4, Q6_K: q + 32), so
 * one vpmaddubsw against 4 broadcast activation bytes advances all 8 rows.
 *
 * Scales: a scale vector holds four values per lane, value b (0..3) of row
 * r at byte 4r + kpos[b], so that the low bytes of the lane's two i16 are
 * values 0, 1 and the high bytes values 2, 3 (one mask or shift turns a
 * vector into i16 pairs for vpmaddwd against two of Q8_K's block sums).
 *  Q2_K, Q6_K: four vectors of the GGUF scale bytes, sub-blocks 4v..4v+3.
 *  Q4_K, Q5_K, Q3_K: the 6-bit values in 96 bytes: lo (32), lo2 (32), hi
 *  (32); lo byte = set A values b | b + 4 as nibbles, lo2 the same for set
 *  B, hi bits 0-1/2-3/4-5/6-7 = the top two bits of A b, A b+4, B b, B b+4.
 *  Q4_K/Q5_K: A = the 8 scales, B = the 8 mins; Q3_K: A = sub-blocks 0..7,
 *  B = 8..15, stored as scale + 32. */

static const uint8_t kpos[4] = {0, 2, 1, 3};

AI int has_nib(int kind)
{
    return kind == K_Q4 || kind == K_Q5 || kind == K_Q6;
}

AI int has_two(int kind)
{
    return kind == K_Q2 || kind == K_Q3 || kind == K_Q6;
}

AI int has_one(int kind)
{
    return kind == K_Q3 || kind == K_Q5;
}

AI size_t off_sc(int kind)
{
    return has_min(kind) ? 32 : 16;
}

AI size_t off_nib(int kind)
{
    return off_sc(kind) + (kind == K_Q2 || kind == K_Q6 ? 128 : 96);
}

AI size_t off_two(int kind)
{
    return off_nib(kind) + (has_nib(kind) ? 1024 : 0);
}

AI size_t off_one(int kind)
{
    return off_two(kind) + (has_two(kind) ? 512 : 0);
}

/* Offset of the f16 d (then dmin) in a GGUF block. */
AI size_t gguf_off_d(int kind)
{
    switch (kind) {
    case K_Q2:
        return offsetof(realm_block_q2_k, d);
    case K_Q3:
        return offsetof(realm_block_q3_k, d);
    case K_Q6:
        return offsetof(realm_block_q6_k, d);
    default:
        return 0;
    }
}

/* Row r's two sets of eight 6-bit values into the 96-byte scale layout. */
AI void put6(uint8_t *o, int r, const int *a, const int *b)
{
    for (int s = 0; s < 4; s++) {
        const int p = 4 * r + kpos[s];
        o[p] = (uint8_t)((a[s] & 15) | (a[s + 4] & 15) << 4);
        o[32 + p] = (uint8_t)((b[s] & 15) | (b[s + 4] & 15) << 4);
        o[64 + p] =
            (uint8_t)(a[s] >> 4 | (a[s + 4] >> 4) << 2 | (b[s] >> 4) << 4 | (b[s + 4] >> 4) << 6);
    }
}

AI void or32(uint8_t *p, uint32_t v)
{
    uint32_t x;
    memcpy(&x, p, 4);
    x |= v;
    memcpy(p, &x, 4);
}

/* Blocks [i0, i1) of R <= 8 GGUF rows (ws bytes apart) into packed blocks at
 * dst; rows R..7 are zero. */
AI void pack_k_blocks(const int kind, int R, int64_t i0, int64_t i1, const char *w, size_t ws,
                      char *dst)
{
    const size_t wb = k_wbytes(kind), pbytes = 8 * wb;
    REALM_ASSERT(off_one(kind) + (has_one(kind) ? 256 : 0) == pbytes);
    for (int64_t i = i0; i < i1; i++) {
        uint8_t *o = (uint8_t *)dst + (size_t)(i - i0) * pbytes;
        memset(o, 0, pbytes);
        for (int r = 0; r < R; r++) {
            const uint8_t *b = (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb;
            kblock kb = {0}; /* Q4_K/Q5_K set only sc[0..7] */
            k_scales(kind, b, &kb);
            memcpy(o + 2 * r, b + gguf_off_d(kind), 2);
            if (has_min(kind)) memcpy(o + 16 + 2 * r, b + gguf_off_d(kind) + 2, 2);
            uint8_t *sc = o + off_sc(kind);
            int A[16], B[8];
            for (int j = 0; j < 16; j++)
                A[j] = kind == K_Q2 ? ((const realm_block_q2_k *)b)->scales[j]
                                    : kb.sc[j] + (kind == K_Q3 ? 32 : 0);
            for (int j = 0; j < 8; j++)
                B[j] = kb.m16[2 * j];
            if (kind == K_Q2 || kind == K_Q6)
                for (int j = 0; j < 16; j++)
                    sc[32 * (j / 4) + 4 * r + kpos[j % 4]] = (uint8_t)A[j];
            else
                put6(sc, r, A, kind == K_Q3 ? A + 8 : B);
            uint8_t u[256];
            for (int g = 0; g < 8; g++) {
                __m256i v, sg;
                k_chunk(kind, b, g, &v, &sg);
                _mm256_storeu_si256((__m256i *)(u + 32 * g), v);
            }
            for (int G = 0; G < 64; G++) { /* 4 elements, one byte each, at a time */
                uint32_t c;
                memcpy(&c, u + 4 * G, 4);
                if (has_nib(kind)) {
                    or32(o + off_nib(kind) + 32 * (G / 2) + 4 * r, (c & 0x0F0F0F0Fu)
                                                                       << 4 * (G % 2));
                    c = c >> 4 & 0x0F0F0F0Fu;
                }
                if (has_two(kind)) {
                    or32(o + off_two(kind) + 32 * (G / 4) + 4 * r, (c & 0x03030303u)
                                                                       << 2 * (G % 4));
                    c = c >> 2 & 0x3F3F3F3Fu;
                }
                if (has_one(kind))
                    or32(o + off_one(kind) + 32 * (G / 8) + 4 * r, (c & 0x01010101u) << G % 8);
            }
        }
    }
}

AI void pack_k(const int kind, int64_t k, const void *w, size_t ws, int64_t nr, void *dst)
{
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        const int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
        pack_k_blocks(kind, R, 0, k / 256, (const char *)w + (size_t)r0 * ws, ws,
                      (char *)dst + (size_t)r0 * ws);
    }
}

/* ---- reading a packed block ---- */

/* The field at bit `from` of every byte of v moved to bit `to`, masked. A
 * 16-bit shift is enough: the field never crosses its byte. */
AI __m256i field(__m256i v, int from, int to, int mask)
{
    if (from > to) v = _mm256_srli_epi16(v, from - to);
    if (from < to) v = _mm256_slli_epi16(v, to - from);
    return _mm256_and_si256(v, _mm256_set1_epi8((char)mask));
}

/* Group 8o + t's unsigned codes (elements 32o + 4t ..), lane r = row r; t
 * is a compile-time constant in the tiles so the shifts are immediates. */
AI __m256i k_group(int kind, const uint8_t *blk, int o, int t)
{
    __m256i u = _mm256_setzero_si256();
    int at = 0;
    if (has_nib(kind)) {
        u = field(ld256(blk + off_nib(kind) + 32 * (4 * o + t / 2)), 4 * (t % 2), 0, 0x0F);
        at = 4;
    }
    if (has_two(kind)) {
        u = _mm256_or_si256(
            u, field(ld256(blk + off_two(kind) + 32 * (2 * o + t / 4)), 2 * (t % 4), at, 3 << at));
        at += 2;
    }
    if (has_one(kind))
        u = _mm256_or_si256(u, field(ld256(blk + off_one(kind) + 32 * o), t, at, 1 << at));
    return u;
}

/* vpshufb control: byte kpos[b] of each lane into bytes `at` and at + 2 (the
 * other two bytes zero): at 0 gives unsigned i16, at 1 the value * 256. */
AI __m256i pick_ctrl(int b, int at)
{
    const uint32_t p = kpos[b], z = 0x80;
    const uint32_t lane = at ? (z | p << 8 | z << 16 | p << 24) : (p | z << 8 | p << 16 | z << 24);
    return _mm256_add_epi8(_mm256_set1_epi32((int)lane),
                           _mm256_setr_epi32(0, 0x04040404, 0x08080808, 0x0C0C0C0C, 0, 0x04040404,
                                             0x08080808, 0x0C0C0C0C));
}

/* A block's per-row scales in the forms the tile multiplies by. */
typedef struct kside {
    __m256i sv[16]; /* i16 (scale, scale) per lane, per sub-block */
    __m256i bv[8];  /* i16 pairs meeting two Q8_K block sums (k_bsum) */
    __m256 d, dmin;
} kside;

AI int n_bv(int kind)
{
    return kind == K_Q4 || kind == K_Q5 ? 4 : 8;
}

AI void k_side(int kind, const uint8_t *blk, kside *s)
{
    const uint8_t *sc = blk + off_sc(kind);
    __m256i v[4]; /* value b of lane r at byte 4r + kpos[b]: scales 4q..4q+3 */
    s->d = _mm256_cvtph_ps(ld128(blk));
    s->dmin = has_min(kind) ? _mm256_cvtph_ps(ld128(blk + 16)) : _mm256_setzero_ps();
    if (kind == K_Q2 || kind == K_Q6) {
        for (int q = 0; q < 4; q++)
            v[q] = ld256(sc + 32 * q);
    } else {
        const __m256i lo = ld256(sc), lo2 = ld256(sc + 32), hi = ld256(sc + 64);
        v[0] = _mm256_or_si256(field(lo, 0, 0, 0x0F), field(hi, 0, 4, 0x30));
        v[1] = _mm256_or_si256(field(lo, 4, 0, 0x0F), field(hi, 2, 4, 0x30));
        v[2] = _mm256_or_si256(field(lo2, 0, 0, 0x0F), field(hi, 4, 4, 0x30));
        v[3] = _mm256_or_si256(field(lo2, 4, 0, 0x0F), field(hi, 6, 4, 0x30));
        if (kind == K_Q3)
            for (int q = 0; q < 4; q++)
                v[q] = _mm256_sub_epi8(v[q], _mm256_set1_epi8(32));
    }
    const __m256i even = _mm256_set1_epi32(0x00FF00FF);
    switch (kind) {
    case K_Q4:
    case K_Q5: /* sv from the scales (v0, v1), bv from the mins (v2, v3) */
        for (int j = 0; j < 8; j++)
            s->sv[j] = _mm256_shuffle_epi8(v[j / 4], pick_ctrl(j % 4, 0));
        for (int q = 0; q < 2; q++) {
            s->bv[2 * q] = _mm256_and_si256(v[2 + q], even);
            s->bv[2 * q + 1] = _mm256_srli_epi16(v[2 + q], 8);
        }
        break;
    case K_Q2: /* scale in the low nibble, min in the high one */
        for (int j = 0; j < 16; j++)
            s->sv[j] = _mm256_and_si256(_mm256_shuffle_epi8(v[j / 4], pick_ctrl(j % 4, 0)),
                                        _mm256_set1_epi16(15));
        for (int q = 0; q < 4; q++) {
            const __m256i m = field(v[q], 4, 0, 0x0F);
            s->bv[2 * q] = _mm256_and_si256(m, even);
            s->bv[2 * q + 1] = _mm256_srli_epi16(m, 8);
        }
        break;
    default: /* Q3_K, Q6_K: signed scales, which also meet the block sums */
        for (int j = 0; j < 16; j++)
            s->sv[j] = _mm256_srai_epi16(_mm256_shuffle_epi8(v[j / 4], pick_ctrl(j % 4, 1)), 8);
        for (int q = 0; q < 4; q++) {
            s->bv[2 * q] = _mm256_srai_epi16(_mm256_slli_epi16(v[q], 8), 8);
            s->bv[2 * q + 1] = _mm256_srai_epi16(v[q], 8);
        }
    }
}

/* Per row, the exact integer that k_block_fma takes off with the mins or
 * zero point: sum_j m_j * (block sum of sub-block j). Q4_K/Q5_K sub-blocks
 * are 32 elements, two of Q8_K's 16-element sums. */
AI __m256i k_bsum(int kind, const kside *s, const realm_block_q8_k *y)
{
    __m256i t = _mm256_setzero_si256();
    if (kind == K_Q4 || kind == K_Q5) {
        const __m256i p =
            _mm256_castsi128_si256(_mm_hadd_epi16(ld128(y->bsums), ld128(y->bsums + 8)));
        for (int q = 0; q < 4; q++)
            t = _mm256_add_epi32(t, _mm256_madd_epi16(s->bv[q], _mm256_permutevar8x32_epi32(
                                                                    p, _mm256_set1_epi32(q))));
    } else {
        for (int q = 0; q < 8; q++)
            t = _mm256_add_epi32(t, _mm256_madd_epi16(s->bv[q], bcast4(y->bsums + 2 * q)));
    }
    return t;
}

/* Groups of 4 elements whose i16 pair sums may be added before vpmaddwd
 * widens them: 8 * 2 * 15 * 127, 4 * 2 * 31 * 127, 2 * 2 * 63 * 127 < 32768. */
AI int k_widen(int kind)
{
    return kind == K_Q4 ? 8 : kind == K_Q6 ? 2 : 4;
}

/* ---- the tile: 8 packed rows x C <= KPC activation rows ---- */

enum { KPC = 4, KWIDE_MAX_BLOCKS = 64, KWIDE_MIN_ROWS = 8 };

/* A block expanded for prefill: every group's codes as bytes. */
typedef struct kwide {
    __m256i u[64];
    kside s;
} kwide;

/* acc[c] (lane r = weight row r) += blocks [0, nb) against activation rows
 * c < C (as bytes apart), reading the packed panel pb or, when wide, its
 * expansion wb: the same integers and the same float steps either way. */
AI void tile_k(const int kind, const int C, const bool wide, int64_t nb, const char *pb,
               const kwide *wb, const char *a, size_t as, __m256 *acc)
{
    const size_t pbytes = 8 * k_wbytes(kind);
    const int W = k_widen(kind); /* divides 8 and, for 16-element sub-blocks, 4 */
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = (const uint8_t *)pb + (size_t)i * pbytes;
        kside local;
        const kside *s = &local;
        if (wide) {
            s = &wb[i].s;
        } else {
            for (size_t o = 0; o < pbytes; o += 64)
                _mm_prefetch((const char *)blk + 2 * pbytes + o, _MM_HINT_T0);
            k_side(kind, blk, &local);
        }
        const realm_block_q8_k *y[KPC];
        __m256i isum[KPC], s16[KPC];
        for (int c = 0; c < C; c++) {
            y[c] = (const realm_block_q8_k *)(a + (size_t)c * as) + i;
            isum[c] = s16[c] = _mm256_setzero_si256();
        }
        for (int o = 0; o < 8; o++) /* 32 elements: one or two sub-blocks */
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) {
                const int G = 8 * o + t, j = sub16(kind) ? 2 * o + t / 4 : o;
                const __m256i u = wide ? wb[i].u[G] : k_group(kind, blk, o, t);
                for (int c = 0; c < C; c++)
                    s16[c] =
                        _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(u, bcast4(y[c]->qs + 4 * G)));
                if ((t + 1) % W == 0)
                    for (int c = 0; c < C; c++) {
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s16[c], s->sv[j]));
                        s16[c] = _mm256_setzero_si256();
                    }
            }
        for (int c = 0; c < C; c++)
            acc[c] =
                k_block_fma(kind, acc[c], isum[c], k_bsum(kind, s, y[c]), s->d, s->dmin, y[c]->d);
    }
}

AI void run_tile_k(const int kind, int C, int64_t nb, const char *pb, const char *a, size_t as,
                   __m256 *acc)
{
    switch (C) {
    case 4:
        tile_k(kind, 4, false, nb, pb, NULL, a, as, acc);
        break;
    case 3:
        tile_k(kind, 3, false, nb, pb, NULL, a, as, acc);
        break;
    case 2:
        tile_k(kind, 2, false, nb, pb, NULL, a, as, acc);
        break;
    default:
        tile_k(kind, 1, false, nb, pb, NULL, a, as, acc);
        break;
    }
}

AI void expand_k(const int kind, int64_t nb, const char *pb, kwide *wb)
{
    const size_t pbytes = 8 * k_wbytes(kind);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = (const uint8_t *)pb + (size_t)i * pbytes;
        k_side(kind, blk, &wb[i].s);
        for (int o = 0; o < 8; o++)
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++)
                wb[i].u[8 * o + t] = k_group(kind, blk, o, t);
    }
}

/* Packed weights: panels of 8 rows (8 * ws bytes each) from w. Few
 * activation rows read the packed panel directly; many expand it once and
 * reuse it from L1/L2. */
AI void gemm_packed_k(const int kind, int64_t k, const void *w, size_t ws, int64_t nr,
                      const void *a, size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 256;
    const bool wide = nc >= KWIDE_MIN_ROWS && nb <= KWIDE_MAX_BLOCKS;
    kwide wb[wide ? nb : 1];
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        const int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
        const char *pb = (const char *)w + (size_t)r0 * ws;
        if (wide) expand_k(kind, nb, pb, wb);
        for (int64_t c0 = 0; c0 < nc; c0 += KPC) {
            const int C = nc - c0 < KPC ? (int)(nc - c0) : KPC;
            __m256 acc[KPC] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                               _mm256_setzero_ps()};
            const char *ac = (const char *)a + (size_t)c0 * as;
            if (wide && C == KPC)
                tile_k(kind, KPC, true, nb, pb, wb, ac, as, acc);
            else
                run_tile_k(kind, C, nb, pb, ac, as, acc);
            for (int c = 0; c < C; c++)
                store_lanes(out + (size_t)(c0 + c) * os + r0, R, acc[c]);
        }
    }
}

/* GGUF-layout weights (not packed at load): each 8-row panel is packed on
 * the stack, KPANEL_BLOCKS blocks at a time, and run through the same tile
 * with the accumulators carried, so the result equals the packed path's. */
enum { KPANEL_BLOCKS = 32 };

AI void gemm_k_packing(const int kind, int64_t k, const void *w, size_t ws, int64_t nr,
                       const void *a, size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 256;
    _Alignas(32) char panel[KPANEL_BLOCKS * 8 * sizeof(realm_block_q6_k)];
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        const int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
        for (int64_t c0 = 0; c0 < nc; c0 += KPC) {
            const int C = nc - c0 < KPC ? (int)(nc - c0) : KPC;
            const char *ac = (const char *)a + (size_t)c0 * as;
            __m256 acc[KPC] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                               _mm256_setzero_ps()};
            for (int64_t i0 = 0; i0 < nb; i0 += KPANEL_BLOCKS) {
                const int64_t n = nb - i0 < KPANEL_BLOCKS ? nb - i0 : KPANEL_BLOCKS;
                if (c0 == 0 || nb > KPANEL_BLOCKS) /* one chunk: packed once per panel */
                    pack_k_blocks(kind, R, i0, i0 + n, (const char *)w + (size_t)r0 * ws, ws,
                                  panel);
                run_tile_k(kind, C, n, panel, ac + (size_t)i0 * sizeof(realm_block_q8_k), as, acc);
            }
            for (int c = 0; c < C; c++)
                store_lanes(out + (size_t)(c0 + c) * os + r0, R, acc[c]);
        }
    }
}

#define DEFINE_K_PACKED(NAME, KIND)                                                                \
    static void gemm_##NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a,        \
                            size_t as, int64_t nc, float *out, size_t os)                          \
    {                                                                                              \
        gemm_k_packing(KIND, k, w, ws, nr, a, as, nc, out, os);                                    \
    }                                                                                              \
    static void gemm_packed_##NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, \
                                   size_t as, int64_t nc, float *out, size_t os)                   \
    {                                                                                              \
        gemm_packed_k(KIND, k, w, ws, nr, a, as, nc, out, os);                                     \
    }                                                                                              \
    static void pack_##NAME(int64_t k, const void *w, size_t ws, int64_t nr, void *dst)            \
    {                                                                                              \
        pack_k(KIND, k, w, ws, nr, dst);                                                           \
    }
DEFINE_K_PACKED(q2_k, K_Q2)
DEFINE_K_PACKED(q3_k, K_Q3)
DEFINE_K_PACKED(q4_k, K_Q4)
DEFINE_K_PACKED(q5_k, K_Q5)
DEFINE_K_PACKED(q6_k, K_Q6)

/* ---- IQ4_XS (not packed at load) ----
 * decode: R <= 8 weight rows x 1 activation row, no repacking */

AI void tile_k_rows8(const int kind, const int R, int64_t k, const char *w, size_t ws,
                     const char *a, float *out)
{
    const size_t wb = k_wbytes(kind);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / 256; i++) {
        const realm_block_q8_k *y = (const realm_block_q8_k *)a + i;
        const __m256i bs = ld256(y->bsums);
        __m256i isum[8], bsum[8];
        float d[8] = {0}, dmin[8] = {0};
        for (int r = 0; r < 8; r++) {
            isum[r] = bsum[r] = _mm256_setzero_si256();
            if (r >= R) continue;
            const uint8_t *b = (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb;
            kblock kb;
            k_scales(kind, b, &kb);
            d[r] = kb.d;
            dmin[r] = kb.dmin;
            for (int g = 0; g < 8; g++) {
                __m256i u, sg = _mm256_setzero_si256();
                k_chunk(kind, b, g, &u, &sg);
                const __m256i q = ld256(y->qs + 32 * g);
                __m256i p = kind == K_IQ4XS ? _mm256_maddubs_epi16(u, _mm256_sign_epi8(q, sg))
                                            : _mm256_maddubs_epi16(u, q);
                isum[r] =
                    _mm256_add_epi32(isum[r], _mm256_madd_epi16(p, k_chunk_scale(kind, &kb, g)));
            }
            bsum[r] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)kb.m16), bs);
        }
        acc = k_block_fma(kind, acc, reduce8_i32(isum), reduce8_i32(bsum), _mm256_loadu_ps(d),
                          _mm256_loadu_ps(dmin), y->d);
    }
    store_lanes(out, R, acc);
}

/* ---- prefill: 8 rows repacked into a panel, x KPC activation rows ----
 * Panel lane r holds row r: w[g][q] = bytes 4q..4q+3 of chunk g of the 8
 * rows, so one vpmaddubsw against 4 broadcast activation bytes advances all
 * rows; i16 pair sums are widened by vpmaddwd with each row's sub-block
 * scale as soon as they could overflow or the scale changes. */

enum { KPANEL_MAX_BLOCKS = 64 }; /* k <= 16384 on the panel path */

typedef struct kpanel_block {
    __m256i w[8][8];  /* [chunk][group] */
    __m256i sg[8][8]; /* IQ4_XS: signed values, same layout */
    __m256i sv[16];   /* i16 (scale_r, scale_r) per lane, per sub-block */
    __m256i mv[8];    /* i16 (m16_r[2j], m16_r[2j+1]) per lane, per pair j of bsums */
    __m256 d, dmin;
} kpanel_block;

/* Groups of 4 elements whose i16 pair sums may be added before widening. */
AI int k_groups_per_madd(int kind)
{
    switch (kind) {
    case K_Q4:
        return 8; /* 8 * 2 * 15 * 127 < 32768 */
    case K_Q6:
        return 2; /* 2 * 2 * 63 * 127 < 32768 */
    case K_IQ4XS:
        return 1;
    default:
        return 4; /* Q2_K, Q3_K (sub-blocks of 16), Q5_K (2 * 31 * 127 * 4) */
    }
}

AI void kpanel_fill(const int kind, int R, int64_t nb, const char *w, size_t ws, kpanel_block *pb)
{
    const size_t wb = k_wbytes(kind);
    for (int64_t i = 0; i < nb; i++) {
        kpanel_block *P = &pb[i];
        kblock kb[8];
        memset(kb, 0, sizeof kb);
        float d[8] = {0}, dmin[8] = {0};
        for (int r = 0; r < R; r++) {
            k_scales(kind, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &kb[r]);
            d[r] = kb[r].d;
            dmin[r] = kb[r].dmin;
        }
        for (int g = 0; g < 8; g++) {
            __m256i u[8], sg[8];
            for (int r = 0; r < 8; r++) {
                u[r] = sg[r] = _mm256_setzero_si256();
                if (r < R)
                    k_chunk(kind, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, g, &u[r],
                            &sg[r]);
            }
            transpose8_i32(u, P->w[g]);
            if (kind == K_IQ4XS) transpose8_i32(sg, P->sg[g]);
        }
        for (int j = 0; j < 16; j++) {
            int16_t t[16];
            for (int r = 0; r < 8; r++)
                t[2 * r] = t[2 * r + 1] = kb[r].sc[j];
            P->sv[j] = _mm256_loadu_si256((const __m256i *)t);
        }
        for (int j = 0; j < 8; j++) {
            int16_t t[16];
            for (int r = 0; r < 8; r++) {
                t[2 * r] = kb[r].m16[2 * j];
                t[2 * r + 1] = kb[r].m16[2 * j + 1];
            }
            P->mv[j] = _mm256_loadu_si256((const __m256i *)t);
        }
        P->d = _mm256_loadu_ps(d);
        P->dmin = _mm256_loadu_ps(dmin);
    }
}

AI void tile_kpanel(const int kind, const int C, int R, int64_t nb, const kpanel_block *pb,
                    const char *a, size_t as, float *out, size_t os)
{
    const int G = k_groups_per_madd(kind);
    __m256 acc[KPC];
    for (int c = 0; c < C; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const kpanel_block *P = &pb[i];
        const realm_block_q8_k *y[KPC];
        __m256i isum[KPC], s16[KPC];
        for (int c = 0; c < C; c++) {
            y[c] = (const realm_block_q8_k *)(a + (size_t)c * as) + i;
            isum[c] = s16[c] = _mm256_setzero_si256();
        }
        for (int g = 0; g < 8; g++)
            for (int q = 0; q < 8; q++) {
                for (int c = 0; c < C; c++) {
                    const __m256i av = bcast4(y[c]->qs + 32 * g + 4 * q);
                    const __m256i p =
                        kind == K_IQ4XS
                            ? _mm256_maddubs_epi16(P->w[g][q], _mm256_sign_epi8(av, P->sg[g][q]))
                            : _mm256_maddubs_epi16(P->w[g][q], av);
                    s16[c] = _mm256_add_epi16(s16[c], p);
                    if ((q + 1) % G == 0) {
                        const __m256i sv = sub16(kind) ? P->sv[2 * g + q / 4] : P->sv[g];
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s16[c], sv));
                        s16[c] = _mm256_setzero_si256();
                    }
                }
            }
        for (int c = 0; c < C; c++) {
            __m256i bsum = _mm256_setzero_si256();
            if (kind != K_IQ4XS)
                for (int j = 0; j < 8; j++)
                    bsum = _mm256_add_epi32(
                        bsum, _mm256_madd_epi16(P->mv[j], bcast4(y[c]->bsums + 2 * j)));
            acc[c] = k_block_fma(kind, acc[c], isum[c], bsum, P->d, P->dmin, y[c]->d);
        }
    }
    for (int c = 0; c < C; c++)
        store_lanes(out + (size_t)c * os, R, acc[c]);
}

AI void gemm_k(const int kind, int64_t k, const void *w, size_t ws, int64_t nr, const void *a,
               size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 256;
    if (nc < KPC || nb > KPANEL_MAX_BLOCKS) {
        for (int64_t c = 0; c < nc; c++)
            for (int64_t r0 = 0; r0 < nr; r0 += 8) {
                const char *wp = (const char *)w + (size_t)r0 * ws,
                           *ap = (const char *)a + (size_t)c * as;
                float *op = out + (size_t)c * os + r0;
                if (nr - r0 >= 8)
                    tile_k_rows8(kind, 8, k, wp, ws, ap, op);
                else
                    tile_k_rows8(kind, (int)(nr - r0), k, wp, ws, ap, op);
            }
        return;
    }
    kpanel_block pb[KPANEL_MAX_BLOCKS];
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        int rr = nr - r0 < 8 ? (int)(nr - r0) : 8;
        kpanel_fill(kind, rr, nb, (const char *)w + (size_t)r0 * ws, ws, pb);
        for (int64_t c0 = 0; c0 < nc; c0 += KPC) {
            const char *ap = (const char *)a + (size_t)c0 * as;
            float *op = out + (size_t)c0 * os + r0;
            switch (nc - c0 < KPC ? (int)(nc - c0) : KPC) {
            case 4:
                tile_kpanel(kind, 4, rr, nb, pb, ap, as, op, os);
                break;
            case 3:
                tile_kpanel(kind, 3, rr, nb, pb, ap, as, op, os);
                break;
            case 2:
                tile_kpanel(kind, 2, rr, nb, pb, ap, as, op, os);
                break;
            default:
                tile_kpanel(kind, 1, rr, nb, pb, ap, as, op, os);
                break;
            }
        }
    }
}

#define DEFINE_K_GEMM(NAME, KIND)                                                                  \
    static void NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,    \
                     int64_t nc, float *out, size_t os)                                            \
    {                                                                                              \
        gemm_k(KIND, k, w, ws, nr, a, as, nc, out, os);                                            \
    }
DEFINE_K_GEMM(gemm_iq4_xs, K_IQ4XS)

/* ---- Q8_K activation quantization (bytes identical to quant/) ----
 * Inputs clamped to ±2^126 with NaN read as 0; d = amax / 127 in float;
 * codes lrint(x * (1.0 / d)) in double, clamped to ±127. */
AI __m256 q8k_input(__m256 v)
{
    const __m256 lim = _mm256_set1_ps(0x1p126f);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
}

AI __m128i q8k_codes4(__m128 x, __m256d id)
{
    const __m256d lim = _mm256_set1_pd(127.0);
    __m256d v = _mm256_mul_pd(_mm256_cvtps_pd(x), id);
    v = _mm256_min_pd(_mm256_max_pd(v, _mm256_sub_pd(_mm256_setzero_pd(), lim)), lim);
    return _mm256_cvtpd_epi32(v); /* MXCSR rounding: nearest even, as lrint */
}

static void quantize_q8_k(const float *src, void *dst, int64_t n)
{
    realm_block_q8_k *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / 256; i++) {
        const float *x = src + 256 * i;
        __m256 amax = _mm256_setzero_ps();
        for (int j = 0; j < 32; j++)
            amax =
                _mm256_max_ps(amax, _mm256_andnot_ps(sign, q8k_input(_mm256_loadu_ps(x + 8 * j))));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        b[i].d = _mm_cvtss_f32(m) / 127.0f;
        const __m256d id = _mm256_set1_pd(b[i].d > 0.0f ? 1.0 / b[i].d : 0.0);
        for (int j = 0; j < 16; j++) {
            __m256 v0 = q8k_input(_mm256_loadu_ps(x + 16 * j));
            __m256 v1 = q8k_input(_mm256_loadu_ps(x + 16 * j + 8));
            __m128i q0 = q8k_codes4(_mm256_castps256_ps128(v0), id);
            __m128i q1 = q8k_codes4(_mm256_extractf128_ps(v0, 1), id);
            __m128i q2 = q8k_codes4(_mm256_castps256_ps128(v1), id);
            __m128i q3 = q8k_codes4(_mm256_extractf128_ps(v1, 1), id);
            __m128i s = _mm_add_epi32(_mm_add_epi32(q0, q1), _mm_add_epi32(q2, q3));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
            b[i].bsums[j] = (int16_t)_mm_cvtsi128_si32(s);
            _mm_storeu_si128((__m128i *)(b[i].qs + 16 * j),
                             _mm_packs_epi16(_mm_packs_epi32(q0, q1), _mm_packs_epi32(q2, q3)));
        }
    }
}

#define SET(TYPE, NAME)                                                                            \
    (t->gemm[TYPE] = gemm_##NAME, t->gemm_packed[TYPE] = gemm_packed_##NAME,                       \
     t->pack[TYPE] = pack_##NAME)

void realm__cpu_kernels_avx2_k_init(realm_cpu_kernels *t)
{
    SET(REALM_TYPE_Q2_K, q2_k);
    SET(REALM_TYPE_Q3_K, q3_k);
    SET(REALM_TYPE_Q4_K, q4_k);
    SET(REALM_TYPE_Q5_K, q5_k);
    SET(REALM_TYPE_Q6_K, q6_k);
    t->gemm[REALM_TYPE_IQ4_XS] = gemm_iq4_xs;
    t->quantize[REALM_TYPE_Q8_K] = quantize_q8_k;
}
