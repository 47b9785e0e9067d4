/*
 * backend/cpu/x86_avx2_legacy.c — AVX2 kernels for the 32-element formats
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL against Q8_0/Q8_1 activations).
 * Compiled with -mavx2 -mfma -mf16c.
 *
 * Eight weight rows are computed together and each output element owns one
 * lane of an f32 accumulator: per block, lane r gets
 *     acc[r] = fma((float)isum_r, d_w[r] * d_a, acc[r])    (+ fma(m[r], s_a) for _1)
 * where isum_r is the exact integer dot product of the block. Two ways to
 * get the eight isums, one per batch shape, give the same integers, so every
 * element is bit-identical whichever path computed it:
 *
 *   decode (few activation rows): each row's block is unpacked and dotted on
 *     its own (8 partial i32 lanes), and the eight rows' lanes are reduced
 *     into one vector with a transposing add tree;
 *   prefill: the 8 rows are repacked once per task into a panel where every
 *     32-bit lane holds 4 bytes of a different row, so one vpmaddubsw against
 *     4 broadcast activation bytes advances all 8 rows; for 4-bit codes the
 *     i16 pair sums of a whole block fit in 16 bits and need a single
 *     vpmaddwd. That halves the multiplies per MAC and amortizes unpacking
 *     over every activation row.
 *
 * Integer products: vpmaddubsw multiplies unsigned by signed bytes. Codes of
 * Q4_0/Q5_0/Q4_1/Q5_1 are unsigned (the zero points of Q4_0/Q5_0 come off as
 * zero * sum(a)); Q8_0 and IQ4_NL values are signed and go in as |w| with the
 * sign moved onto the activation (vpsignb).
 */
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/x86_avx2_impl.h"
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

AI int zero_point(int kind)
{
    return kind == L_Q4_0 ? 8 : kind == L_Q5_0 ? 16 : 0;
}

AI int is_signed(int kind)
{
    return kind == L_Q8_0 || kind == L_IQ4_NL;
}

/* 16 packed bytes -> 32 nibbles: element j < 16 is the low nibble of byte j,
 * element j >= 16 the high nibble of byte j - 16. */
AI __m256i nibbles(const uint8_t *qs)
{
    const __m128i b = ld128(qs), m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

/* Bit j of the little-endian u32 at qh -> 0x10 in byte j (the fifth bit). */
AI __m256i fifth_bits(const uint8_t *qh)
{
    uint32_t x;
    memcpy(&x, qh, 4);
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((int64_t)0x8040201008040201);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), pick);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* One weight block: u = bytes for vpmaddubsw, sg = sign source (signed
 * kinds), d = scale, m = offset (_1 kinds). */
AI void legacy_unpack(int kind, const uint8_t *b, __m256i *u, __m256i *sg, __m256 *d, __m256 *m)
{
    *d = _mm256_set1_ps(ld_h(b));
    switch (kind) {
    case L_Q4_0: *u = nibbles(b + 2); break;
    case L_Q4_1:
        *m = _mm256_set1_ps(ld_h(b + 2));
        *u = nibbles(b + 4);
        break;
    case L_Q5_0: *u = _mm256_or_si256(nibbles(b + 6), fifth_bits(b + 2)); break;
    case L_Q5_1:
        *m = _mm256_set1_ps(ld_h(b + 2));
        *u = _mm256_or_si256(nibbles(b + 8), fifth_bits(b + 4));
        break;
    case L_Q8_0:
        *sg = ld256(b + 2);
        *u = _mm256_abs_epi8(*sg);
        break;
    default: {
        const __m256i lv = _mm256_broadcastsi128_si256(ld128(iq4_levels));
        *sg = _mm256_shuffle_epi8(lv, nibbles(b + 2));
        *u = _mm256_abs_epi8(*sg);
    }
    }
}


/* Unsigned codes small enough that a block's i16 pair sums (2 * max * 127
 * per group of 4, eight groups) cannot overflow: 4-bit codes only. */
AI int one_madd(int kind)
{
    return kind == L_Q4_0 || kind == L_Q4_1;
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

AI size_t act_bytes(int kind)
{
    return pairs_q8_1(kind) ? sizeof(realm_block_q8_1) : sizeof(realm_block_q8_0);
}

/* ---- decode: R <= 8 weight rows x C <= 2 activation rows, no repacking ---- */

AI void tile_rows8(const int kind, const int R, const int C, int64_t k, const char *w, size_t ws,
                   const char *a, size_t as, float *out, size_t os)
{
    const size_t wb = legacy_wbytes(kind), ab = act_bytes(kind), aq = pairs_q8_1(kind) ? 4 : 2;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < k / 32; i++) {
        __m256i u[8], sg[8];
        float dw[8] = {0}, mw[8] = {0};
        for (int r = 0; r < R; r++) {
            __m256 d, m = _mm256_setzero_ps();
            sg[r] = _mm256_setzero_si256();
            legacy_unpack(kind, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r],
                          &d, &m);
            dw[r] = _mm256_cvtss_f32(d);
            mw[r] = _mm256_cvtss_f32(m);
        }
        const __m256 d8 = _mm256_loadu_ps(dw), m8 = _mm256_loadu_ps(mw);
        for (int c = 0; c < C; c++) {
            const uint8_t *y = (const uint8_t *)a + (size_t)c * as + (size_t)i * ab;
            const __m256i q = ld256(y + aq);
            __m256i corr = _mm256_setzero_si256(), p[8];
            if (zero_point(kind)) corr = dot_u8i8(_mm256_set1_epi8((char)zero_point(kind)), q);
            for (int r = 0; r < 8; r++) {
                if (r >= R)
                    p[r] = _mm256_setzero_si256();
                else if (is_signed(kind))
                    p[r] = dot_u8i8(u[r], _mm256_sign_epi8(q, sg[r]));
                else
                    p[r] = _mm256_sub_epi32(dot_u8i8(u[r], q), corr);
            }
            const __m256 da = _mm256_set1_ps(ld_h(y));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8_i32(p)), _mm256_mul_ps(d8, da), acc[c]);
            if (pairs_q8_1(kind)) acc[c] = _mm256_fmadd_ps(m8, _mm256_set1_ps(ld_h(y + 2)), acc[c]);
        }
    }
    for (int c = 0; c < C; c++)
        store_lanes(out + (size_t)c * os, R, acc[c]);
}

/* ---- prefill: 8 rows repacked into a panel, x PC activation rows ---- */

/* k <= 16384 on the panel path; block sums of up to 8192 activation blocks
 * per chunk (at least PC rows of the longest k). */
enum { PC = 4, PANEL_MAX_BLOCKS = 512, ASUM_MAX = 8192 };

typedef struct panel_block {
    __m256i w[8];  /* group g: bytes 4g..4g+3 of rows 0..7 (|w| or unsigned codes) */
    __m256i sg[8]; /* signed kinds: the signed values, same layout */
    __m256 d, m;   /* per-row scale and offset */
} panel_block;

static void panel_fill(int kind, int R, int64_t nb, const char *w, size_t ws, panel_block *pb)
{
    const size_t wb = legacy_wbytes(kind);
    for (int64_t i = 0; i < nb; i++) {
        __m256i u[8], sg[8];
        float dw[8] = {0}, mw[8] = {0};
        for (int r = 0; r < 8; r++) {
            u[r] = sg[r] = _mm256_setzero_si256();
            if (r >= R) continue;
            __m256 d, m = _mm256_setzero_ps();
            switch (kind) { /* constant kinds so the unpacking inlines */
            case L_Q4_0: legacy_unpack(L_Q4_0, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            case L_Q4_1: legacy_unpack(L_Q4_1, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            case L_Q5_0: legacy_unpack(L_Q5_0, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            case L_Q5_1: legacy_unpack(L_Q5_1, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            case L_Q8_0: legacy_unpack(L_Q8_0, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            default: legacy_unpack(L_IQ4_NL, (const uint8_t *)w + (size_t)r * ws + (size_t)i * wb, &u[r], &sg[r], &d, &m); break;
            }
            dw[r] = _mm256_cvtss_f32(d);
            mw[r] = _mm256_cvtss_f32(m);
        }
        transpose8_i32(u, pb[i].w);
        if (is_signed(kind)) transpose8_i32(sg, pb[i].sg);
        pb[i].d = _mm256_loadu_ps(dw);
        pb[i].m = _mm256_loadu_ps(mw);
    }
}

AI void tile_panel(const int kind, const int C, int R, int64_t nb, const panel_block *pb,
                   const char *a, size_t as, const int32_t *asum, float *out, size_t os)
{
    const size_t ab = act_bytes(kind), aq = pairs_q8_1(kind) ? 4 : 2;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[PC];
    for (int c = 0; c < C; c++)
        acc[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const panel_block *b = &pb[i];
        const uint8_t *y[PC];
        __m256i s16[PC], s32[PC];
        for (int c = 0; c < C; c++) {
            y[c] = (const uint8_t *)a + (size_t)c * as + (size_t)i * ab + aq;
            s16[c] = s32[c] = _mm256_setzero_si256();
        }
        for (int g = 0; g < 8; g++) {
            for (int c = 0; c < C; c++) {
                __m256i av = bcast4(y[c] + 4 * g);
                if (is_signed(kind)) {
                    s32[c] = _mm256_add_epi32(
                        s32[c], _mm256_madd_epi16(_mm256_maddubs_epi16(b->w[g], _mm256_sign_epi8(av, b->sg[g])), ones));
                } else {
                    s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(b->w[g], av));
                    if (!one_madd(kind) && g == 3) { /* 5-bit codes: widen every 4 groups */
                        s32[c] = _mm256_madd_epi16(s16[c], ones);
                        s16[c] = _mm256_setzero_si256();
                    }
                }
            }
        }
        for (int c = 0; c < C; c++) {
            const uint8_t *yb = y[c] - aq;
            __m256i p = is_signed(kind) ? s32[c] : _mm256_add_epi32(s32[c], _mm256_madd_epi16(s16[c], ones));
            if (zero_point(kind))
                p = _mm256_sub_epi32(p, _mm256_set1_epi32(zero_point(kind) * asum[(size_t)c * nb + i]));
            acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(b->d, _mm256_set1_ps(ld_h(yb))), acc[c]);
            if (pairs_q8_1(kind)) acc[c] = _mm256_fmadd_ps(b->m, _mm256_set1_ps(ld_h(yb + 2)), acc[c]);
        }
    }
    for (int c = 0; c < C; c++)
        store_lanes(out + (size_t)c * os, R, acc[c]);
}

AI void gemm_legacy(const int kind, int64_t k, const void *w, size_t ws, int64_t nr, const void *a,
                    size_t as, int64_t nc, float *out, size_t os)
{
    const int64_t nb = k / 32;
    if (nc < PC || nb > PANEL_MAX_BLOCKS) {
        for (int64_t c0 = 0; c0 < nc; c0 += 2) {
            const char *ap = (const char *)a + (size_t)c0 * as;
            for (int64_t r0 = 0; r0 < nr; r0 += 8) {
                const char *wp = (const char *)w + (size_t)r0 * ws;
                float *op = out + (size_t)c0 * os + r0;
                int rr = nr - r0 < 8 ? (int)(nr - r0) : 8;
                if (nc - c0 >= 2) {
                    if (rr == 8) tile_rows8(kind, 8, 2, k, wp, ws, ap, as, op, os);
                    else tile_rows8(kind, rr, 2, k, wp, ws, ap, as, op, os);
                } else {
                    if (rr == 8) tile_rows8(kind, 8, 1, k, wp, ws, ap, as, op, os);
                    else tile_rows8(kind, rr, 1, k, wp, ws, ap, as, op, os);
                }
            }
        }
        return;
    }
    /* Activation rows go in chunks whose block sums fit the stack buffer;
     * each chunk repacks the weight rows once and reuses them for all of it. */
    panel_block pb[PANEL_MAX_BLOCKS];
    int32_t asum[ASUM_MAX];
    const int64_t chunk = (ASUM_MAX / nb) / PC * PC;
    for (int64_t c1 = 0; c1 < nc; c1 += chunk) {
        const int64_t nc1 = nc - c1 < chunk ? nc - c1 : chunk;
        const char *a1 = (const char *)a + (size_t)c1 * as;
        if (zero_point(kind))
            for (int64_t c = 0; c < nc1; c++)
                for (int64_t i = 0; i < nb; i++)
                    asum[c * nb + i] = act_sum(ld256(a1 + (size_t)c * as + (size_t)i * act_bytes(kind) + 2));
        for (int64_t r0 = 0; r0 < nr; r0 += 8) {
            int rr = nr - r0 < 8 ? (int)(nr - r0) : 8;
            panel_fill(kind, rr, nb, (const char *)w + (size_t)r0 * ws, ws, pb);
            for (int64_t c0 = 0; c0 < nc1; c0 += PC) {
                const char *ap = a1 + (size_t)c0 * as;
                const int32_t *sp = asum + c0 * nb;
                float *op = out + (size_t)(c1 + c0) * os + r0;
                switch (nc1 - c0 < PC ? (int)(nc1 - c0) : PC) {
                case 4: tile_panel(kind, 4, rr, nb, pb, ap, as, sp, op, os); break;
                case 3: tile_panel(kind, 3, rr, nb, pb, ap, as, sp, op, os); break;
                case 2: tile_panel(kind, 2, rr, nb, pb, ap, as, sp, op, os); break;
                default: tile_panel(kind, 1, rr, nb, pb, ap, as, sp, op, os); break;
                }
            }
        }
    }
}

#define DEFINE_LEGACY_GEMM(NAME, KIND)                                                             \
    static void NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,   \
                     int64_t nc, float *out, size_t os)                                           \
    {                                                                                              \
        gemm_legacy(KIND, k, w, ws, nr, a, as, nc, out, os);                                       \
    }
DEFINE_LEGACY_GEMM(gemm_q4_0, L_Q4_0)
DEFINE_LEGACY_GEMM(gemm_q4_1, L_Q4_1)
DEFINE_LEGACY_GEMM(gemm_q5_0, L_Q5_0)
DEFINE_LEGACY_GEMM(gemm_q5_1, L_Q5_1)
DEFINE_LEGACY_GEMM(gemm_q8_0, L_Q8_0)
DEFINE_LEGACY_GEMM(gemm_iq4_nl, L_IQ4_NL)

void realm__cpu_kernels_avx2_legacy_init(realm_cpu_kernels *t)
{
    t->gemm[REALM_TYPE_Q4_0] = gemm_q4_0;
    t->gemm[REALM_TYPE_Q4_1] = gemm_q4_1;
    t->gemm[REALM_TYPE_Q5_0] = gemm_q5_0;
    t->gemm[REALM_TYPE_Q5_1] = gemm_q5_1;
    t->gemm[REALM_TYPE_Q8_0] = gemm_q8_0;
    t->gemm[REALM_TYPE_IQ4_NL] = gemm_iq4_nl;
}
