/*
 * backend/cpu/x86_avx2_legacy.c — AVX2 kernels for the 32-element formats
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL against Q8_0/Q8_1 activations).
 * Compiled with -mavx2 -mfma -mf16c.
 *
 * Packed layout (pack_legacy, done once per weight at model load): panels of
 * 8 rows; per 32-element block a panel holds, in this order,
 *     d[8]   f16 scales of rows 0..7                       (16 bytes)
 *     m[8]   f16 offsets (Q4_1, Q5_1)                      (16 bytes)
 *     qh[8]  u32 fifth bits (Q5_0, Q5_1), remapped below   (32 bytes)
 *     qs     4-bit kinds: 4 vectors of 32 bytes, lane r of vector v = bytes
 *            4v..4v+3 of row r's 16 code bytes; Q8_0: 8 vectors, lane r of
 *            vector g = values 4g..4g+3 of row r                (128 / 256)
 * which is exactly 8 blocks' bytes, so a panel is 8 rows long in the GGUF
 * byte count. Group G (0..7) of a block is elements 4G..4G+3: the low
 * nibbles of vector G (G < 4) or the high nibbles of vector G - 4, and
 * byte b of each lane is element 4G + b. The fifth bits are stored so that
 * bit 8b + G of a row's word is the bit of element 4G + b: one shift and one
 * mask give group G's 0x10s.
 *
 * One vpmaddubsw then advances all 8 rows by 4 elements against 4 broadcast
 * activation bytes, and each row owns one lane of an f32 accumulator:
 *     acc[r] = fma((float)isum_r, d_w[r] * d_a, acc[r])    (+ fma(m[r], s_a))
 * with isum_r the exact integer dot product of the block. The float steps
 * do not depend on how many activation rows a call has, so decode and
 * prefill are bit-identical, and the GGUF-layout entry point (gemm_*: packs
 * 8 rows at a time on the stack, then runs the same tile) agrees with the
 * packed one bit for bit.
 *
 * Integer products: vpmaddubsw multiplies unsigned by signed bytes. Codes of
 * Q4_0/Q5_0/Q4_1/Q5_1 are unsigned (the zero points of Q4_0/Q5_0 come off as
 * zero * sum(a)); Q8_0 and IQ4_NL values are signed and go in as |w| with the
 * sign moved onto the activation (vpsignb). For 4-bit codes the i16 pair sums
 * of a whole block fit in 16 bits (8 groups * 2 * 15 * 127); 5-bit codes
 * widen after 4 groups.
 */
#include <stdbool.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/x86_avx2_impl.h"
#include "base/status.h"
#include "quant/blocks.h"

enum { L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_Q8_0, L_IQ4_NL };

AI size_t legacy_wbytes(int kind)
{
    switch (kind) {
    case L_Q4_0: return sizeof(realm_block_q4_0);
    case L_Q4_1: return sizeof(realm_block_q4_1);
    case L_Q5_0: return sizeof(realm_block_q5_0);
    case L_Q5_1: return sizeof(realm_block_q5_1);
    case L_Q8_0: return sizeof(realm_block_q8_0);
    default: return sizeof(realm_block_iq4_nl);
    }
}

AI int pairs_q8_1(int kind)
{
    return kind == L_Q4_1 || kind == L_Q5_1;
}

AI int has_qh(int kind)
{
    return kind == L_Q5_0 || kind == L_Q5_1;
}

AI int zero_point(int kind)
{
    return kind == L_Q4_0 ? 8 : kind == L_Q5_0 ? 16 : 0;
}

AI int is_signed(int kind)
{
    return kind == L_Q8_0 || kind == L_IQ4_NL;
}

/* Byte offsets inside a packed block of 8 rows. */
AI size_t off_qh(int kind)
{
    return pairs_q8_1(kind) ? 32 : 16;
}

AI size_t off_qs(int kind)
{
    return off_qh(kind) + (has_qh(kind) ? 32 : 0);
}

AI size_t act_bytes(int kind)
{
    return pairs_q8_1(kind) ? sizeof(realm_block_q8_1) : sizeof(realm_block_q8_0);
}

/* ---- packing (load time) ---- */

/* Blocks [i0, i1) of R <= 8 GGUF rows (ws bytes apart) into packed blocks at
 * dst; rows R..7 are zero. */
static void pack_blocks(int kind, int R, int64_t i0, int64_t i1, const char *w, size_t ws, char *dst)
{
    const size_t wb = legacy_wbytes(kind), pb = 8 * wb;
    for (int64_t i = i0; i < i1; i++) {
        uint8_t *o = (uint8_t *)dst + (size_t)(i - i0) * pb;
        memset(o, 0, pb);
        for (int r = 0; r < R; r++) {
            const uint8_t *b = (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb;
            memcpy(o + 2 * r, b, 2); /* d */
            const uint8_t *q = b + 2;
            if (pairs_q8_1(kind)) {
                memcpy(o + 16 + 2 * r, b + 2, 2); /* m */
                q += 2;
            }
            if (has_qh(kind)) {
                uint32_t qh, word = 0;
                memcpy(&qh, q, 4);
                for (int G = 0; G < 8; G++)
                    for (int e = 0; e < 4; e++)
                        word |= ((qh >> (4 * G + e)) & 1u) << (8 * e + G);
                memcpy(o + off_qh(kind) + 4 * r, &word, 4);
                q += 4;
            }
            uint8_t *qs = o + off_qs(kind);
            int vecs = kind == L_Q8_0 ? 8 : 4;
            for (int v = 0; v < vecs; v++)
                memcpy(qs + 32 * v + 4 * r, q + 4 * v, 4);
        }
    }
}

static void pack_legacy(int kind, int64_t k, const void *w, size_t ws, int64_t nr, void *dst)
{
    const int64_t nb = k / 32;
    for (int64_t r0 = 0; r0 < nr; r0 += 8) {
        int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
        pack_blocks(kind, R, 0, nb, (const char *)w + (size_t)r0 * ws, ws,
                    (char *)dst + (size_t)r0 * ws);
    }
}

/* ---- the tile: 8 packed rows x C <= 4 activation rows ---- */

/* PC: activation rows per tile. PF_DIST: how far ahead of the block being
 * read the decode tile prefetches. A decode step streams many small weight
 * matrices (a task is often a few KiB), too short for the hardware
 * prefetcher to ramp up; 1 KiB ahead measured best of 512/1024/2048. */
enum { PC = 4, PF_DIST = 1024 };

/* Group G's codes as bytes: unsigned codes, or for the signed kinds the
 * signed values. raw = vector G % 4 of the 4-bit kinds. */
AI __m256i group_codes(int kind, int G, const uint8_t *blk, __m256i raw)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i v;
    if (kind == L_Q8_0) return ld256(blk + off_qs(kind) + 32 * G);
    v = G < 4 ? _mm256_and_si256(raw, m4) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    if (has_qh(kind)) {
        __m256i qh = ld256(blk + off_qh(kind));
        qh = G <= 4 ? _mm256_slli_epi32(qh, 4 - G) : _mm256_srli_epi32(qh, G - 4);
        v = _mm256_or_si256(v, _mm256_and_si256(qh, _mm256_set1_epi8(0x10)));
    }
    if (kind == L_IQ4_NL) v = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(ld128(iq4_levels)), v);
    return v;
}

/* A block with every group's codes as bytes (|w| for the signed kinds, their
 * signs in sg): the tile then costs one vpmaddubsw per group and row. */
typedef struct wide_block {
    __m256i w[8], sg[8];
    __m256 d, m;
} wide_block;

/* acc[c] (lane r = weight row r) += blocks [0, nb) against activation rows
 * c < C (as bytes apart), reading the packed panel at pb (decode), or when
 * `wide` its expansion wb (prefill: no unpacking in the loop). Both give the
 * same integers and take the same float steps. asum (zero-point kinds): the
 * exact sum of each activation block's codes, nb per activation row. */
AI void tile_legacy(const int kind, const int C, const bool wide, int64_t nb, const char *pb,
                    const wide_block *wb, const char *a, size_t as, const int32_t *asum,
                    __m256 *acc)
{
    const size_t ab = act_bytes(kind), aq = pairs_q8_1(kind) ? 4 : 2, wb_bytes = 8 * legacy_wbytes(kind);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = wide ? NULL : (const uint8_t *)pb + (size_t)i * wb_bytes;
        if (!wide)
            for (size_t o = 0; o < wb_bytes; o += 64)
                _mm_prefetch((const char *)blk + PF_DIST + o, _MM_HINT_T0);
        const uint8_t *y[PC];
        __m256i s16[PC], s32[PC];
        for (int c = 0; c < C; c++) {
            y[c] = (const uint8_t *)a + (size_t)c * as + (size_t)i * ab + aq;
            s16[c] = s32[c] = _mm256_setzero_si256();
        }
        for (int G = 0; G < 8; G++) {
            __m256i u, sg;
            if (wide) {
                u = wb[i].w[G];
                sg = wb[i].sg[G];
            } else {
                __m256i raw = _mm256_setzero_si256();
                if (kind != L_Q8_0) raw = ld256(blk + off_qs(kind) + 32 * (G & 3));
                sg = group_codes(kind, G, blk, raw);
                u = is_signed(kind) ? _mm256_abs_epi8(sg) : sg;
            }
            for (int c = 0; c < C; c++) {
                const __m256i av = bcast4(y[c] + 4 * G);
                if (is_signed(kind)) {
                    s32[c] = _mm256_add_epi32(
                        s32[c], _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(av, sg)), ones));
                } else {
                    s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(u, av));
                    if (has_qh(kind) && G == 3) { /* 5-bit codes: widen every 4 groups */
                        s32[c] = _mm256_madd_epi16(s16[c], ones);
                        s16[c] = _mm256_setzero_si256();
                    }
                }
            }
        }
        const __m256 d = wide ? wb[i].d : _mm256_cvtph_ps(ld128(blk));
        __m256 m = _mm256_setzero_ps();
        if (pairs_q8_1(kind)) m = wide ? wb[i].m : _mm256_cvtph_ps(ld128(blk + 16));
        for (int c = 0; c < C; c++) {
            const uint8_t *yb = y[c] - aq;
            __m256i p = is_signed(kind) ? s32[c] : _mm256_add_epi32(s32[c], _mm256_madd_epi16(s16[c], ones));
            if (zero_point(kind))
                p = _mm256_sub_epi32(p, _mm256_set1_epi32(zero_point(kind) * asum[(size_t)c * nb + i]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(d, _mm256_set1_ps(ld_h(yb))), acc[c]);
            if (pairs_q8_1(kind)) acc[c] = _mm256_fmadd_ps(m, _mm256_set1_ps(ld_h(yb + 2)), acc[c]);
        }
    }
}

/* Sum of the 32 activation codes of a block (exact). */
AI int32_t act_sum(__m256i q)
{
    __m256i s = dot_u8i8(_mm256_set1_epi8(1), q);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
}

/* Block sums of nc activation rows, nb blocks each (zero-point kinds). */
AI void act_sums(int kind, int64_t nb, const char *a, size_t as, int64_t nc, int32_t *asum)
{
    if (!zero_point(kind)) return;
    for (int64_t c = 0; c < nc; c++)
        for (int64_t i = 0; i < nb; i++)
            asum[c * nb + i] = act_sum(ld256(a + (size_t)c * as + (size_t)i * act_bytes(kind) + 2));
}

/* Activation rows per call of tile_legacy's caller: their block sums live on
 * the stack (ASUM_MAX ints). */
enum { ASUM_MAX = 8192 };

AI void run_tile(const int kind, int C, int64_t nb, const char *pb, const char *a, size_t as,
                 const int32_t *asum, __m256 *acc)
{
    switch (C) {
    case 4: tile_legacy(kind, 4, false, nb, pb, NULL, a, as, asum, acc); break;
    case 3: tile_legacy(kind, 3, false, nb, pb, NULL, a, as, asum, acc); break;
    case 2: tile_legacy(kind, 2, false, nb, pb, NULL, a, as, asum, acc); break;
    default: tile_legacy(kind, 1, false, nb, pb, NULL, a, as, asum, acc); break;
    }
}

/* ---- prefill: a panel expanded once, reused by many activation rows ---- */

enum { WIDE_MAX_BLOCKS = 512, WIDE_MIN_ROWS = 8 };

static void expand_panel(int kind, int64_t nb, const char *pb, wide_block *wb)
{
    const size_t bytes = 8 * legacy_wbytes(kind);
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = (const uint8_t *)pb + (size_t)i * bytes;
        for (int G = 0; G < 8; G++) {
            __m256i raw = _mm256_setzero_si256(), v;
            if (kind != L_Q8_0) raw = ld256(blk + off_qs(kind) + 32 * (G & 3));
            switch (kind) { /* constant kinds so group_codes inlines */
            case L_Q4_0: v = group_codes(L_Q4_0, G, blk, raw); break;
            case L_Q4_1: v = group_codes(L_Q4_1, G, blk, raw); break;
            case L_Q5_0: v = group_codes(L_Q5_0, G, blk, raw); break;
            case L_Q5_1: v = group_codes(L_Q5_1, G, blk, raw); break;
            case L_Q8_0: v = group_codes(L_Q8_0, G, blk, raw); break;
            default: v = group_codes(L_IQ4_NL, G, blk, raw); break;
            }
            wb[i].sg[G] = v;
            wb[i].w[G] = is_signed(kind) ? _mm256_abs_epi8(v) : v;
        }
        wb[i].d = _mm256_cvtph_ps(ld128(blk));
        wb[i].m = pairs_q8_1(kind) ? _mm256_cvtph_ps(ld128(blk + 16)) : _mm256_setzero_ps();
    }
}

/* Packed weights: panels of 8 rows (8 * ws bytes each) from w. Few
 * activation rows read the packed panel directly; many expand it once per
 * chunk of activation rows and reuse it from L2. */
AI void gemm_packed_legacy(const int kind, int64_t k, const void *w, size_t ws, int64_t nr,
                           const void *a, size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 32;
    const bool wide = nc >= WIDE_MIN_ROWS && nb <= WIDE_MAX_BLOCKS;
    wide_block wb[wide ? nb : 1];
    int32_t asum[ASUM_MAX];
    int64_t chunk = zero_point(kind) ? (ASUM_MAX / nb) / PC * PC : nc;
    if (chunk < 1) chunk = 1; /* nb > ASUM_MAX / PC: one activation row per chunk */
    REALM_ASSERT(!zero_point(kind) || nb <= ASUM_MAX);
    for (int64_t c1 = 0; c1 < nc; c1 += chunk) {
        const int64_t nc1 = nc - c1 < chunk ? nc - c1 : chunk;
        const char *a1 = (const char *)a + (size_t)c1 * as;
        act_sums(kind, nb, a1, as, nc1, asum);
        for (int64_t r0 = 0; r0 < nr; r0 += 8) {
            const int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
            const char *pb = (const char *)w + (size_t)r0 * ws;
            if (wide) expand_panel(kind, nb, pb, wb);
            for (int64_t c0 = 0; c0 < nc1; c0 += PC) {
                const int C = nc1 - c0 < PC ? (int)(nc1 - c0) : PC;
                __m256 acc[PC] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                                  _mm256_setzero_ps()};
                const char *ac = a1 + (size_t)c0 * as;
                const int32_t *sc = asum + c0 * nb;
                if (wide && C == PC) tile_legacy(kind, PC, true, nb, NULL, wb, ac, as, sc, acc);
                else run_tile(kind, C, nb, pb, ac, as, sc, acc);
                for (int c = 0; c < C; c++)
                    store_lanes(out + (size_t)(c1 + c0 + c) * os + r0, R, acc[c]);
            }
        }
    }
}

/* GGUF-layout weights (not packed at load): each 8-row panel is packed on
 * the stack, PANEL_BLOCKS blocks at a time, and run through the same tile
 * with the accumulators carried, so the result equals the packed path's. */
enum { PANEL_BLOCKS = 256 };

AI void gemm_legacy(const int kind, int64_t k, const void *w, size_t ws, int64_t nr, const void *a,
                    size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 32;
    _Alignas(32) char panel[PANEL_BLOCKS * 8 * sizeof(realm_block_q8_0)];
    int32_t asum[ASUM_MAX];
    const size_t ab = act_bytes(kind);
    for (int64_t c0 = 0; c0 < nc; c0 += PC) {
        const int C = nc - c0 < PC ? (int)(nc - c0) : PC;
        const char *ac = (const char *)a + (size_t)c0 * as;
        for (int64_t r0 = 0; r0 < nr; r0 += 8) {
            const int R = nr - r0 < 8 ? (int)(nr - r0) : 8;
            __m256 acc[PC] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                              _mm256_setzero_ps()};
            for (int64_t i0 = 0; i0 < nb; i0 += PANEL_BLOCKS) {
                const int64_t n = nb - i0 < PANEL_BLOCKS ? nb - i0 : PANEL_BLOCKS;
                pack_blocks(kind, R, i0, i0 + n, (const char *)w + (size_t)r0 * ws, ws, panel);
                act_sums(kind, n, ac + (size_t)i0 * ab, as, C, asum);
                run_tile(kind, C, n, panel, ac + (size_t)i0 * ab, as, asum, acc);
            }
            for (int c = 0; c < C; c++)
                store_lanes(out + (size_t)(c0 + c) * os + r0, R, acc[c]);
        }
    }
}

#define DEFINE_LEGACY(NAME, KIND)                                                                  \
    static void gemm_##NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a,       \
                            size_t as, int64_t nc, float *out, size_t os)                         \
    {                                                                                              \
        gemm_legacy(KIND, k, w, ws, nr, a, as, nc, out, os);                                       \
    }                                                                                              \
    static void gemm_packed_##NAME(int64_t k, const void *w, size_t ws, int64_t nr,               \
                                   const void *a, size_t as, int64_t nc, float *out, size_t os)   \
    {                                                                                              \
        gemm_packed_legacy(KIND, k, w, ws, nr, a, as, nc, out, os);                                \
    }                                                                                              \
    static void pack_##NAME(int64_t k, const void *w, size_t ws, int64_t nr, void *dst)           \
    {                                                                                              \
        pack_legacy(KIND, k, w, ws, nr, dst);                                                      \
    }
DEFINE_LEGACY(q4_0, L_Q4_0)
DEFINE_LEGACY(q4_1, L_Q4_1)
DEFINE_LEGACY(q5_0, L_Q5_0)
DEFINE_LEGACY(q5_1, L_Q5_1)
DEFINE_LEGACY(q8_0, L_Q8_0)
DEFINE_LEGACY(iq4_nl, L_IQ4_NL)

#define SET(TYPE, NAME)                                                                            \
    (t->gemm[TYPE] = gemm_##NAME, t->gemm_packed[TYPE] = gemm_packed_##NAME,                       \
     t->pack[TYPE] = pack_##NAME)

void realm__cpu_kernels_avx2_legacy_init(realm_cpu_kernels *t)
{
    SET(REALM_TYPE_Q4_0, q4_0);
    SET(REALM_TYPE_Q4_1, q4_1);
    SET(REALM_TYPE_Q5_0, q5_0);
    SET(REALM_TYPE_Q5_1, q5_1);
    SET(REALM_TYPE_Q8_0, q8_0);
    SET(REALM_TYPE_IQ4_NL, iq4_nl);
}
