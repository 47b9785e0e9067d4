/*
 * backend/cpu/x86_avx2_impl.h — helpers shared by the AVX2 kernel files
 * (x86_avx2.c, x86_avx2_k.c). Only include from files compiled with
 * -mavx2 -mfma -mf16c.
 *
 * Exactness across splits: every output element must see the same float
 * instructions in the same order whatever tile, thread or batch computed it.
 * The float kernels (REALM__DEFINE_GEMM) give each element one 8-lane
 * accumulator reduced by hsum8 at the end; the quantized kernels give each
 * element one lane and feed it exact integer block sums (see
 * x86_avx2_legacy.c).
 */
#ifndef REALM_BACKEND_CPU_X86_AVX2_IMPL_H
#define REALM_BACKEND_CPU_X86_AVX2_IMPL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { TR = 4, TC = 2 }; /* micro-tile: weight rows x activation rows (8 accumulators) */

AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* binary16 bits at p (unaligned) as f32; the hardware conversion is exact. */
AI float ld_h(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

AI float ld_f(const void *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

AI __m256i ld256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

AI __m128i ld128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* Signed bytes a times unsigned bytes u, summed in groups of four into 8 i32
 * (u <= 128 and |a| <= 127 keep the i16 pair sums from saturating). */
AI __m256i dot_u8i8(__m256i u, __m256i a)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi16(1));
}

/* The 16 IQ4_NL / IQ4_XS levels (a format fact, see quant/iq4.c). */
static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

/* Eight vectors of eight i32 -> the eight totals (exact). */
AI __m256i reduce8_i32(const __m256i *p)
{
    __m256i t0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20),
                            _mm256_permute2x128_si256(t0, t1, 0x31));
}

/* 8x8 transpose of i32: out[g] lane r = in[r] lane g (repacks 8 weight rows
 * so that each 32-bit lane holds 4 bytes of a different row). */
AI void transpose8_i32(const __m256i *in, __m256i *out)
{
    __m256i t[8], v[8];
    for (int j = 0; j < 4; j++) {
        t[2 * j] = _mm256_unpacklo_epi32(in[2 * j], in[2 * j + 1]);
        t[2 * j + 1] = _mm256_unpackhi_epi32(in[2 * j], in[2 * j + 1]);
    }
    for (int j = 0; j < 2; j++) {
        v[4 * j + 0] = _mm256_unpacklo_epi64(t[4 * j], t[4 * j + 2]);
        v[4 * j + 1] = _mm256_unpackhi_epi64(t[4 * j], t[4 * j + 2]);
        v[4 * j + 2] = _mm256_unpacklo_epi64(t[4 * j + 1], t[4 * j + 3]);
        v[4 * j + 3] = _mm256_unpackhi_epi64(t[4 * j + 1], t[4 * j + 3]);
    }
    for (int g = 0; g < 4; g++) {
        out[g] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x20);
        out[g + 4] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x31);
    }
}

/* The 4 bytes at p in every 32-bit lane. */
AI __m256i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Lanes 0..R-1 of v to out[0..R). */
AI void store_lanes(float *out, int R, __m256 v)
{
    if (R == 8) {
        _mm256_storeu_ps(out, v);
    } else {
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int r = 0; r < R; r++)
            out[r] = t[r];
    }
}

/* Defines gemm NAME(k, w, ws, nr, a, as, nc, out, os) (cpu_kernels.h) from an
 * always-inline tile function TILE(R, C, k, w, ws, a, as, out, os) computing
 * R <= TR weight rows x C <= TC activation rows; edge tiles are instances
 * with smaller compile-time R, C. Activation tiles are the outer loop so a
 * few activation rows stay in L1 while the weight rows stream past them. */
#define REALM__DEFINE_GEMM(NAME, TILE)                                                             \
    static void NAME(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,   \
                     int64_t nc, float *out, size_t os)                                           \
    {                                                                                              \
        for (int64_t c0 = 0; c0 < nc; c0 += TC) {                                                  \
            int cc = nc - c0 < TC ? (int)(nc - c0) : TC;                                           \
            for (int64_t r0 = 0; r0 < nr; r0 += TR) {                                              \
                int rr = nr - r0 < TR ? (int)(nr - r0) : TR;                                       \
                const char *wp = (const char *)w + (size_t)r0 * ws;                                \
                const char *ap = (const char *)a + (size_t)c0 * as;                                \
                float *op = out + (size_t)c0 * os + r0;                                            \
                switch (rr * 8 + cc) {                                                             \
                case 4 * 8 + 2: TILE(4, 2, k, wp, ws, ap, as, op, os); break;                      \
                case 4 * 8 + 1: TILE(4, 1, k, wp, ws, ap, as, op, os); break;                      \
                case 3 * 8 + 2: TILE(3, 2, k, wp, ws, ap, as, op, os); break;                      \
                case 3 * 8 + 1: TILE(3, 1, k, wp, ws, ap, as, op, os); break;                      \
                case 2 * 8 + 2: TILE(2, 2, k, wp, ws, ap, as, op, os); break;                      \
                case 2 * 8 + 1: TILE(2, 1, k, wp, ws, ap, as, op, os); break;                      \
                case 1 * 8 + 2: TILE(1, 2, k, wp, ws, ap, as, op, os); break;                      \
                default: TILE(1, 1, k, wp, ws, ap, as, op, os); break;                             \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#endif
