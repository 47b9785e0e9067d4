/*
 * backend/cpu/x86_avx2.c — AVX2+FMA+F16C kernels for the float formats (F32,
 * F16, BF16 against f32 activations), Q8_0/Q8_1 activation quantization and
 * the attention/SwiGLU helpers. The 32-element quantized formats are in
 * x86_avx2_legacy.c, the 256-element ones in x86_avx2_k.c. Compiled with
 * -mavx2 -mfma -mf16c; called only after cpu_dispatch.c has seen those
 * features.
 */
#include <math.h>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/x86_avx2_impl.h"
#include "quant/blocks.h"

/* ---- float weights against f32 activations ---- */

enum { F_F32, F_F16, F_BF16 };

AI __m256 float8(int kind, const char *row, int64_t j)
{
    switch (kind) {
    case F_F32: return _mm256_loadu_ps((const float *)row + j);
    case F_F16: return _mm256_cvtph_ps(ld128(row + 2 * j));
    default:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(ld128(row + 2 * j)), 16));
    }
}

AI float float1(int kind, const char *row, int64_t j)
{
    switch (kind) {
    case F_F32: return ld_f(row + 4 * j);
    case F_F16: return ld_h(row + 2 * j);
    default: {
        uint16_t h;
        memcpy(&h, row + 2 * j, 2);
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    }
}

/* R weight rows x C activation rows, R * C <= 12 accumulators, over k
 * elements [j0, j1) (multiples of 8): acc[r * C + c] is element (r, c)'s
 * 8-lane accumulator, fed in k order. */
AI void tile_float_run(const int kind, const int R, const int C, int64_t j0, int64_t j1,
                       const char *w, size_t ws, const char *a, size_t as, __m256 *accp)
{
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = accp[r * C + c];
    const int es = kind == F_F32 ? 4 : 2;
    for (int64_t j = j0; j < j1; j += 8) {
        /* decode: fetch the next tile's rows (R rows on) while this one
         * runs; its short row streams would each restart the hardware
         * prefetcher */
        if (C <= 2 && (j * es) % 64 == 0)
            for (int r = 0; r < R; r++)
                _mm_prefetch(w + (size_t)(r + R) * ws + (size_t)j * es, _MM_HINT_T0);
        __m256 x[4];
        for (int r = 0; r < R; r++)
            x[r] = float8(kind, w + (size_t)r * ws, j);
        for (int c = 0; c < C; c++) {
            const __m256 y = _mm256_loadu_ps((const float *)(a + (size_t)c * as) + j);
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm256_fmadd_ps(x[r], y, acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            accp[r * C + c] = acc[r][c];
}

/* Element (r, c) from its accumulator: hsum8, then the k % 8 tail in order. */
AI float float_finish(const int kind, __m256 acc, int64_t k, const char *wr, const float *y)
{
    float s = hsum8(acc);
    for (int64_t j = k & ~(int64_t)7; j < k; j++)
        s += float1(kind, wr, j) * y[j];
    return s;
}

/* The whole of k at once. Each element owns one 8-lane accumulator fed in k
 * order and reduced by hsum8, so neither the tile shape nor a split of k
 * (gemm_float's long-k path) changes its bits. */
AI void tile_float(const int kind, const int R, const int C, int64_t k, const char *w, size_t ws,
                   const char *a, size_t as, float *out, size_t os)
{
    __m256 acc[16];
    for (int i = 0; i < R * C; i++)
        acc[i] = _mm256_setzero_ps();
    tile_float_run(kind, R, C, 0, k & ~(int64_t)7, w, ws, a, as, acc);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            out[(size_t)c * os + r] = float_finish(kind, acc[r * C + c], k, w + (size_t)r * ws,
                                                   (const float *)(a + (size_t)c * as));
}

/* Longest k for which four f32 activation rows (32 KiB) stay in L1 while
 * weights stream past them (one core's L1D here: 32 KiB). */
enum { GEMM_WIDE_MAX_K = 2048 };
/* Weight rows whose accumulators the long-k path keeps (6 KiB of them). */
enum { GEMM_KB_ROWS = 48 };

/* Long k (above GEMM_WIDE_MAX_K), four activation rows: k in chunks of
 * GEMM_WIDE_MAX_K, so the chunk of the four rows stays in L1 while every
 * weight row of the block passes by in 3 x 4 tiles; the accumulators wait
 * in memory between chunks (same FMAs in the same order: same bits).
 * 1B F16 down projection (k = 8192): was the 4 x 2 tile. */
AI void gemm_float_long4(const int kind, int64_t k, const char *w, size_t ws, int64_t nr,
                         const char *a, size_t as, float *out, size_t os)
{
    __m256 acc[GEMM_KB_ROWS * 4];
    const int64_t k8 = k & ~(int64_t)7;
    for (int64_t b0 = 0; b0 < nr; b0 += GEMM_KB_ROWS) {
        const int64_t nb = nr - b0 < GEMM_KB_ROWS ? nr - b0 : GEMM_KB_ROWS;
        const char *wb = w + (size_t)b0 * ws;
        for (int64_t i = 0; i < nb * 4; i++)
            acc[i] = _mm256_setzero_ps();
        for (int64_t j0 = 0; j0 < k8; j0 += GEMM_WIDE_MAX_K) {
            const int64_t j1 = k8 - j0 < GEMM_WIDE_MAX_K ? k8 : j0 + GEMM_WIDE_MAX_K;
            int64_t r0 = 0;
            for (; r0 + 3 <= nb; r0 += 3)
                tile_float_run(kind, 3, 4, j0, j1, wb + (size_t)r0 * ws, ws, a, as, acc + r0 * 4);
            if (nb - r0 == 2)
                tile_float_run(kind, 2, 4, j0, j1, wb + (size_t)r0 * ws, ws, a, as, acc + r0 * 4);
            else if (nb - r0 == 1)
                tile_float_run(kind, 1, 4, j0, j1, wb + (size_t)r0 * ws, ws, a, as, acc + r0 * 4);
        }
        for (int64_t r = 0; r < nb; r++)
            for (int c = 0; c < 4; c++)
                out[(size_t)c * os + b0 + r] =
                    float_finish(kind, acc[r * 4 + c], k, wb + (size_t)r * ws,
                                 (const float *)(a + (size_t)c * as));
    }
}

/* Prefill (4+ activation rows): 3 weight rows x 4 activation rows, so each
 * weight vector (converted once) feeds four FMAs and each activation load
 * three: F32/BF16 +20-30%, F16 +3-5% over 4 x 2 (a 2 x 4 tile for two
 * leftover weight rows); past GEMM_WIDE_MAX_K in chunks of k
 * (gemm_float_long4). The leftover activation rows and decode
 * (1-2 rows, memory-bound) use 4 x 2 tiles that keep four weight streams in
 * flight. No split changes an element's bits (tile_float). */
AI void gemm_float(const int kind, int64_t k, const void *w, size_t ws, int64_t nr, const void *a,
                   size_t as, int64_t nc, float *out, size_t os)
{
    const char *wb = w, *ab = a;
    int64_t c0 = 0;
    for (; c0 + 4 <= nc; c0 += 4) {
        const char *ap = ab + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os;
        /* one chunk would do for short k too, but keeping the accumulators
         * in memory cost SmolLM2 F16 pp512 ~15% (4 interleaved pairs) */
        if (k > GEMM_WIDE_MAX_K) {
            gemm_float_long4(kind, k, wb, ws, nr, ap, as, op, os);
            continue;
        }
        int64_t r0 = 0;
        for (; r0 + 3 <= nr; r0 += 3)
            tile_float(kind, 3, 4, k, wb + (size_t)r0 * ws, ws, ap, as, op + r0, os);
        if (nr - r0 == 2) tile_float(kind, 2, 4, k, wb + (size_t)r0 * ws, ws, ap, as, op + r0, os);
        else if (nr - r0 == 1)
            tile_float(kind, 1, 4, k, wb + (size_t)r0 * ws, ws, ap, as, op + r0, os);
    }
    for (; c0 < nc; c0 += 2) {
        const int cc = nc - c0 < 2 ? (int)(nc - c0) : 2;
        const char *ap = ab + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os;
        for (int64_t r0 = 0; r0 < nr; r0 += 4) {
            const int rr = nr - r0 < 4 ? (int)(nr - r0) : 4;
            const char *wp = wb + (size_t)r0 * ws;
            switch (rr * 8 + cc) {
            case 4 * 8 + 2: tile_float(kind, 4, 2, k, wp, ws, ap, as, op + r0, os); break;
            case 4 * 8 + 1: tile_float(kind, 4, 1, k, wp, ws, ap, as, op + r0, os); break;
            case 3 * 8 + 2: tile_float(kind, 3, 2, k, wp, ws, ap, as, op + r0, os); break;
            case 3 * 8 + 1: tile_float(kind, 3, 1, k, wp, ws, ap, as, op + r0, os); break;
            case 2 * 8 + 2: tile_float(kind, 2, 2, k, wp, ws, ap, as, op + r0, os); break;
            case 2 * 8 + 1: tile_float(kind, 2, 1, k, wp, ws, ap, as, op + r0, os); break;
            case 1 * 8 + 2: tile_float(kind, 1, 2, k, wp, ws, ap, as, op + r0, os); break;
            default: tile_float(kind, 1, 1, k, wp, ws, ap, as, op + r0, os); break;
            }
        }
    }
}

static void gemm_f32(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                     int64_t nc, float *out, size_t os)
{
    gemm_float(F_F32, k, w, ws, nr, a, as, nc, out, os);
}

static void gemm_f16(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                     int64_t nc, float *out, size_t os)
{
    gemm_float(F_F16, k, w, ws, nr, a, as, nc, out, os);
}

static void gemm_bf16(int64_t k, const void *w, size_t ws, int64_t nr, const void *a, size_t as,
                      int64_t nc, float *out, size_t os)
{
    gemm_float(F_BF16, k, w, ws, nr, a, as, nc, out, os);
}

/* Elements i.. of a KV pool row as floats: 8 (f16 widened exactly by
 * F16C), or one. */
AI __m256 kv_load8(const bool F16, const void *row, size_t i)
{
    return F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)))
               : _mm256_loadu_ps((const float *)row + i);
}

AI float kv_load1(const bool F16, const void *row, size_t i)
{
    return F16 ? _cvtsh_ss(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

/* dot(q, k) and y += a * v over n elements, k and v rows of the KV pool
 * (f16 or f32): 8 lanes of FMAs, hsum8, then the tail in order; with f32
 * rows they are the table's f32_dot and f32_axpy */
AI float kv_dot(const bool F16, int64_t n, const float *q, const void *k)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < n8; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv_load8(F16, k, (size_t)i), acc);
    float s = hsum8(acc);
    for (int64_t i = n8; i < n; i++)
        s += q[i] * kv_load1(F16, k, (size_t)i);
    return s;
}

AI void kv_axpy(const bool F16, int64_t n, float a, const void *v, size_t i0, float *y)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < n8; i += 8)
        _mm256_storeu_ps(
            y + i, _mm256_fmadd_ps(va, kv_load8(F16, v, i0 + (size_t)i), _mm256_loadu_ps(y + i)));
    for (int64_t i = n8; i < n; i++)
        y[i] += a * kv_load1(F16, v, i0 + (size_t)i);
}

static float f32_dot(int64_t n, const float *x, const float *y)
{
    return kv_dot(false, n, x, y);
}

static void f32_axpy(int64_t n, float a, const float *x, float *y)
{
    kv_axpy(false, n, a, x, 0, y);
}

/* NQ queries x 4 positions: each K load feeds NQ FMAs (the grouped query
 * heads of one KV head score the same K rows). Per query and position the
 * same FMAs in the same order as one query alone, each 8-lane sum reduced
 * by one tree (pairs, then pairs of pairs, then the two 128-bit halves):
 * the bits do not depend on NQ. */
AI void scores_q4(const bool F16, const int NQ, int64_t n8, int64_t hd, const float *q, size_t qs,
                  const void *k, size_t stride, __m128 vs, float *out, size_t os)
{
    for (int64_t t = 0; t < n8; t += 4) {
        __m256 a[3][4];
        for (int h = 0; h < NQ; h++)
            for (int j = 0; j < 4; j++)
                a[h][j] = _mm256_setzero_ps();
        for (int64_t i = 0; i < hd; i += 8) {
            __m256 qv[3];
            for (int h = 0; h < NQ; h++)
                qv[h] = _mm256_loadu_ps(q + (size_t)h * qs + i);
            for (int j = 0; j < 4; j++) {
                const __m256 kv = kv_load8(F16, k, (size_t)(t + j) * stride + (size_t)i);
                for (int h = 0; h < NQ; h++)
                    a[h][j] = _mm256_fmadd_ps(qv[h], kv, a[h][j]);
            }
        }
        for (int h = 0; h < NQ; h++) {
            const __m256 t0 =
                _mm256_hadd_ps(_mm256_hadd_ps(a[h][0], a[h][1]), _mm256_hadd_ps(a[h][2], a[h][3]));
            const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(t0), _mm256_extractf128_ps(t0, 1));
            _mm_storeu_ps(out + (size_t)h * os + t, _mm_mul_ps(sum, vs));
        }
    }
}

/* Positions below n & ~7 in groups of 4 (scores_q4), the rest one by one. */
AI void scores(const bool F16, int64_t n, int64_t hd, int nq, const float *q, size_t qs,
               const void *k, size_t stride, float scale, float *out, size_t os)
{
    const __m128 vs = _mm_set1_ps(scale);
    const int64_t n8 = hd % 8 == 0 ? n & ~(int64_t)7 : 0;
    const size_t es = F16 ? 2 : 4;
    int h = 0;
    for (; h + 3 <= nq; h += 3)
        scores_q4(F16, 3, n8, hd, q + (size_t)h * qs, qs, k, stride, vs, out + (size_t)h * os, os);
    if (nq - h == 2)
        scores_q4(F16, 2, n8, hd, q + (size_t)h * qs, qs, k, stride, vs, out + (size_t)h * os, os);
    else if (nq - h == 1)
        scores_q4(F16, 1, n8, hd, q + (size_t)h * qs, qs, k, stride, vs, out + (size_t)h * os, os);
    for (h = 0; h < nq; h++)
        for (int64_t t = n8; t < n; t++)
            out[(size_t)h * os + t] =
                kv_dot(F16, hd, q + (size_t)h * qs, (const char *)k + (size_t)t * stride * es) *
                scale;
}

static void attn_scores(int64_t n, int64_t hd, int nq, const float *q, size_t qs, const void *k,
                        size_t stride, bool f16, float scale, float *out, size_t os)
{
    if (f16)
        scores(true, n, hd, nq, q, qs, k, stride, scale, out, os);
    else
        scores(false, n, hd, nq, q, qs, k, stride, scale, out, os);
}

/* NQ queries x 32 floats of their accumulators stay in registers across the
 * positions, each V load feeding NQ FMAs; per element the same FMAs in the
 * same order (position by position) as one query alone. */
AI void values_q32(const bool F16, const int NQ, int64_t n, int64_t i_end, const float *w,
                   size_t ws, const void *v, size_t stride, float *acc, size_t as)
{
    for (int64_t i0 = 0; i0 < i_end; i0 += 32) {
        __m256 o[3][4];
        for (int h = 0; h < NQ; h++)
            for (int j = 0; j < 4; j++)
                o[h][j] = _mm256_loadu_ps(acc + (size_t)h * as + i0 + 8 * j);
        for (int64_t t = 0; t < n; t++) {
            __m256 wt[3];
            for (int h = 0; h < NQ; h++)
                wt[h] = _mm256_set1_ps(w[(size_t)h * ws + t]);
            const size_t vt = (size_t)t * stride + (size_t)i0;
            for (int j = 0; j < 4; j++) {
                const __m256 vv = kv_load8(F16, v, vt + 8 * (size_t)j);
                for (int h = 0; h < NQ; h++)
                    o[h][j] = _mm256_fmadd_ps(wt[h], vv, o[h][j]);
            }
        }
        for (int h = 0; h < NQ; h++)
            for (int j = 0; j < 4; j++)
                _mm256_storeu_ps(acc + (size_t)h * as + i0 + 8 * j, o[h][j]);
    }
}

/* Whole 32-float slices by values_q32, the rest position by position
 * (kv_axpy: the same FMA per element up to hd & ~7). */
AI void values(const bool F16, int64_t n, int64_t hd, int nq, const float *w, size_t ws,
               const void *v, size_t stride, float *acc, size_t as)
{
    const int64_t i_end = hd & ~(int64_t)31;
    int h = 0;
    for (; h + 3 <= nq; h += 3)
        values_q32(F16, 3, n, i_end, w + (size_t)h * ws, ws, v, stride, acc + (size_t)h * as, as);
    if (nq - h == 2)
        values_q32(F16, 2, n, i_end, w + (size_t)h * ws, ws, v, stride, acc + (size_t)h * as, as);
    else if (nq - h == 1)
        values_q32(F16, 1, n, i_end, w + (size_t)h * ws, ws, v, stride, acc + (size_t)h * as, as);
    if (i_end < hd)
        for (h = 0; h < nq; h++)
            for (int64_t t = 0; t < n; t++)
                kv_axpy(F16, hd - i_end, w[(size_t)h * ws + t], v,
                        (size_t)t * stride + (size_t)i_end, acc + (size_t)h * as + i_end);
}

static void attn_values(int64_t n, int64_t hd, int nq, const float *w, size_t ws, const void *v,
                        size_t stride, bool f16, float *acc, size_t as)
{
    if (f16)
        values(true, n, hd, nq, w, ws, v, stride, acc, as);
    else
        values(false, n, hd, nq, w, ws, v, stride, acc, as);
}

/* exp(x) for x <= 88: x = n ln2 + r, |r| <= ln2/2, exp(r) by its Taylor
 * polynomial to degree 7 (truncation < 1e-8 relative), times 2^n built in
 * the exponent bits. Below -87.3 (where 2^n would be subnormal) it returns 0. */
AI __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static float exp_sum(int64_t n, float *x, float max)
{
    const __m256 vm = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum8(acc);
    for (int64_t i = n8; i < n; i++) {
        x[i] = expf(x[i] - max);
        s += x[i];
    }
    return s;
}

AI __m256 swiglu8(__m256 g, __m256 u)
{
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_xor_ps(g, neg)))), u);
}

static void swiglu(int64_t n, float *gate, const float *up)
{
    int64_t n8 = n & ~(int64_t)7;
    for (int64_t i = 0; i < n8; i += 8)
        _mm256_storeu_ps(gate + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    /* The tail goes through the same vector code, so an element's result does
     * not depend on where it sits in the batch. */
    if (n8 < n) {
        float g[8] = {0}, u[8] = {0};
        memcpy(g, gate + n8, (size_t)(n - n8) * sizeof(float));
        memcpy(u, up + n8, (size_t)(n - n8) * sizeof(float));
        _mm256_storeu_ps(g, swiglu8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(gate + n8, g, (size_t)(n - n8) * sizeof(float));
    }
}

/* ---- Q8_0 / Q8_1 activation quantization (bytes identical to quant/) ---- */

/* One block of 32: d = amax / 127 (saturated to the binary16 range), codes
 * roundf(x / d) with halves away from zero, NaN -> 0. Returns d; *qsum is
 * the sum of the codes. */
AI float q8_block(const float *x, int8_t *qs, int32_t *qsum)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), amax); /* NaN lanes keep amax */
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float d = _mm_cvtss_f32(m) / 127.0f;
    if (d > 65504.0f) d = 65504.0f;
    float id = d == 0.0f ? 0.0f : 1.0f / d;
    if (!(id - id == 0.0f)) id = 0.0f; /* inf: d too small to invert */
    const __m256 vid = _mm256_set1_ps(id), lim = _mm256_set1_ps(127.0f);
    __m256i q[4];
    for (int i = 0; i < 4; i++) {
        __m256 t = _mm256_mul_ps(v[i], vid);
        t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));
        t = _mm256_min_ps(_mm256_max_ps(t, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
        const __m256 tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256 fr = _mm256_andnot_ps(sign, _mm256_sub_ps(t, tr));
        const __m256 one = _mm256_or_ps(_mm256_and_ps(t, sign), _mm256_set1_ps(1.0f));
        const __m256 up = _mm256_cmp_ps(fr, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
        q[i] = _mm256_cvttps_epi32(_mm256_add_ps(tr, _mm256_and_ps(up, one)));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    *qsum = _mm_cvtsi128_si32(s4);
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p);
    return d;
}

static void quantize_q8_0(const float *src, void *dst, int64_t n)
{
    realm_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t qsum;
        b[i].d = realm_fp32_to_fp16(q8_block(src + 32 * i, b[i].qs, &qsum));
    }
}

static void quantize_q8_1(const float *src, void *dst, int64_t n)
{
    realm_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / 32; i++) {
        int32_t qsum;
        float d = q8_block(src + 32 * i, b[i].qs, &qsum);
        b[i].d = realm_fp32_to_fp16(d);
        b[i].s = realm_fp32_to_fp16((float)qsum * d);
    }
}

void realm__cpu_kernels_avx2_init(realm_cpu_kernels *t)
{
    t->name = "avx2";
    t->gemm[REALM_TYPE_F32] = gemm_f32;
    t->gemm[REALM_TYPE_F16] = gemm_f16;
    t->gemm[REALM_TYPE_BF16] = gemm_bf16;
    t->quantize[REALM_TYPE_Q8_0] = quantize_q8_0;
    t->quantize[REALM_TYPE_Q8_1] = quantize_q8_1;
    t->f32_dot = f32_dot;
    t->f32_axpy = f32_axpy;
    t->attn_scores = attn_scores;
    t->attn_values = attn_values;
    t->exp_sum = exp_sum;
    t->swiglu = swiglu;
    t->tile_rows = 8; /* the quantized kernels work on 8 weight rows at a time */
}
