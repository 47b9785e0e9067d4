/*
 * tests/quant/test_quant_legacy.c — kernels of quant/float.c, quant/legacy.c
 * and quant/iq4.c, reached through the traits table as callers reach them.
 *
 * Per type: normalized RMSE of quantize -> dequantize on N(0,1) data, the
 * largest error of any element against the block's range, exact round trip
 * of representable values, block layouts decoded from hand-written bytes,
 * hard inputs (zeros, outliers, negative-only, tiny, huge, non-finite) and
 * vec_dot against the double-precision dot product of the dequantized
 * operands. F16/BF16 conversions are checked exhaustively. Bounds are
 * justified where they are declared. Q8_K activations (paired with IQ4_XS)
 * are produced by a small quantizer in this file so the test depends only on
 * the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/types.h"

#define U24 0x1p-24 /* float32 unit roundoff */

/* ---- deterministic random numbers (splitmix64 + Box-Muller) ------------- */

static uint64_t rng_state;

static uint64_t rng_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(void) /* in (0, 1) */
{
    return ((double)(rng_u64() >> 11) + 0.5) * 0x1p-53;
}

static float rng_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform()));
}

static void fill_gauss(float *x, int64_t n, float mean, float sigma)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = mean + sigma * rng_gauss();
}

/* cmocka's allocator: it also frees what a failing test leaves behind */
static void *xmalloc(size_t n)
{
    void *p = test_malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* ---- the types under test ------------------------------------------------ */

typedef struct qcase {
    realm_type type;
    /* Bound on sqrt(sum (x-y)^2 / sum x^2) for N(0,1) data. A uniform quantizer
     * with step D has RMS error D/sqrt(12); D is amax/8 (Q4_0), range/15 (Q4_1),
     * amax/16, range/31, amax/127 (Q8). For blocks of 32 N(0,1) samples
     * E[amax^2] = 5.71 and E[range^2] = 17.6, which predicts 0.0862, 0.0808,
     * 0.0431, 0.0391, 0.00543 (measured: 0.0859, 0.0782, 0.0427, 0.0378,
     * 0.00535); the bounds add 5%. IQ4 levels are non-uniform, so there is no
     * such formula: measured 0.0741 (NL) and 0.0742 (XS); the bound 0.080 adds
     * 8% and stays below Q4_0's 0.086, which a non-linear grid with a searched
     * scale in the same 4.5 bits must beat. F16/BF16: half an ulp is at most
     * 2^-11 / 2^-8 relative, and the RMS of a uniform error is below half of
     * that. */
    double rmse_max;
    /* Bound on max |x - y| / (amax of the block). Q4_0/Q5_0 map the signed
     * extreme to -8/-16, so the other sign reaches only +7/+15 steps and an
     * element there clips by up to one step d = amax/8 (amax/16); Q4_1/Q5_1 and
     * Q8 are off by at most half a step (range/30 <= amax/15, range/62,
     * amax/254). Plus binary16 rounding of the scale (2^-11 relative, times the
     * largest code: amax * 2^-11) and of the Q4_1/Q5_1 minimum: 2^-9 covers
     * both. IQ4: the search minimizes the sum of squares, not the largest error;
     * what it provably keeps is a sum below the canonical scale's (extreme on
     * -127: half-gaps <= 12 units, +113 clips the other sign by <= 14 units),
     * i.e. a single error <= sqrt(32) * 14/127 = 0.62 amax. Measured on the
     * N(0,1) data: 0.137 (NL), 0.103 (XS); 0.2 guards against regressions. */
    double err_frac;
    /* Largest |code| multiplying the scale: a subnormal binary16 scale is off
     * by up to 2^-25 absolute, so an element by up to code_max * 2^-25. */
    double code_max;
    int min_offset; /* byte offset of the binary16 minimum m in a block, or -1 */
} qcase;

static const qcase cases[] = {
    {REALM_TYPE_F32, 0.0, 0.0, 0, -1},
    {REALM_TYPE_F16, 0x1p-12, 0x1p-11, 1, -1},
    {REALM_TYPE_BF16, 0x1p-9, 0x1p-8, 0, -1},
    {REALM_TYPE_Q4_0, 0.091, 1.0 / 8 + 0x1p-9, 8, -1},
    {REALM_TYPE_Q4_1, 0.085, 1.0 / 15 + 0x1p-9, 15, 2},
    {REALM_TYPE_Q5_0, 0.046, 1.0 / 16 + 0x1p-9, 16, -1},
    {REALM_TYPE_Q5_1, 0.041, 1.0 / 31 + 0x1p-9, 31, 2},
    {REALM_TYPE_Q8_0, 0.0058, 1.0 / 254 + 0x1p-9, 127, -1},
    {REALM_TYPE_Q8_1, 0.0058, 1.0 / 254 + 0x1p-9, 127, -1},
    {REALM_TYPE_IQ4_NL, 0.080, 0.2, 127, -1},
    {REALM_TYPE_IQ4_XS, 0.080, 0.2, 127 * 32, -1},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static const realm_type_traits *traits_of(realm_type t)
{
    const realm_type_traits *tr = realm_type_traits_get(t);
    assert_non_null(tr);
    assert_non_null(tr->to_float);
    assert_non_null(tr->from_float);
    assert_non_null(tr->vec_dot);
    return tr;
}

/* Quantizes n elements of x into a fresh buffer (caller frees). */
static void *quantize(realm_type t, const float *x, int64_t n)
{
    const size_t size = realm_type_row_size(t, n);
    assert_true(size > 0);
    void *q = xmalloc(size);
    traits_of(t)->from_float(x, q, n);
    return q;
}

static void roundtrip(realm_type t, const float *x, float *y, int64_t n)
{
    void *q = quantize(t, x, n);
    traits_of(t)->to_float(q, y, n);
    test_free(q);
}

static float amax_of(const float *x, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* Every element within err_frac of its block's amax, plus the subnormal
 * scale floor; all outputs finite. Float types are judged per element. */
static void assert_block_errors(const qcase *c, const float *x, const float *y, int64_t n)
{
    const int64_t bs = traits_of(c->type)->block_size;
    for (int64_t b = 0; b < n; b += bs) {
        const double bound = c->err_frac * amax_of(x + b, bs) + c->code_max * 0x1p-25;
        for (int64_t j = b; j < b + bs; j++) {
            if (isfinite(y[j]) && fabs((double)x[j] - y[j]) <= bound) continue;
            fail_msg("%s: element %lld: x=%.9g y=%.9g, bound %.3g", realm_type_name(c->type),
                     (long long)j, x[j], y[j], bound);
        }
    }
}

/* ---- Q8_K activations, made independently of quant/kquants.c ------------- */

static void q8k_quantize(const float *x, realm_block_q8_k *y, int64_t n)
{
    for (int64_t i = 0; i < n / REALM_QK_K; i++) {
        const float *xb = x + i * REALM_QK_K;
        const float d = amax_of(xb, REALM_QK_K) / 127.0f;
        y[i].d = d;
        for (int j = 0; j < REALM_QK_K; j++)
            y[i].qs[j] = (int8_t)(d > 0.0f ? lrintf(fminf(127.0f, fmaxf(-127.0f, xb[j] / d))) : 0);
        for (int g = 0; g < REALM_QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)s;
        }
    }
}

static void q8k_dequantize(const realm_block_q8_k *y, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = y[i / REALM_QK_K].d * (float)y[i / REALM_QK_K].qs[i % REALM_QK_K];
}

/* ---- per-type tests -------------------------------------------------------- */

static void test_rmse_gaussian(void **state)
{
    const qcase *c = *state;
    const int64_t n = 1 << 16;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    rng_state = 1;
    fill_gauss(x, n, 0.0f, 1.0f);
    roundtrip(c->type, x, y, n);
    double se = 0.0, sx = 0.0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        sx += (double)x[i] * x[i];
    }
    const double nrmse = sqrt(se / sx);
    const int64_t bs = traits_of(c->type)->block_size;
    double worst = 0.0; /* largest error relative to its block's amax */
    for (int64_t b = 0; b < n; b += bs)
        for (int64_t j = b; j < b + bs; j++)
            worst = fmax(worst, fabs((double)x[j] - y[j]) / amax_of(x + b, bs));
    print_message(
        "%-7s normalized RMSE on N(0,1): %.5f (bound %.5f), max error / block amax %.4f\n",
        realm_type_name(c->type), nrmse, c->rmse_max, worst);
    assert_true(nrmse <= c->rmse_max);
    assert_block_errors(c, x, y, n);
    test_free(x);
    test_free(y);
}

/* A dequantized row is representable, so quantizing it again must give it
 * back bit for bit — at several magnitudes and with a mean offset. */
static void test_exact_roundtrip(void **state)
{
    const qcase *c = *state;
    const int64_t n = 8192;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y), *z = xmalloc(n * sizeof *z);
    static const float scales[] = {1.0f, 1e-3f, 300.0f};
    rng_state = 2;
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
        fill_gauss(x, n, 0.5f * scales[s], scales[s]);
        roundtrip(c->type, x, y, n);
        roundtrip(c->type, y, z, n);
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&y[i], &z[i], sizeof(float)) != 0)
                fail_msg("%s scale %g: element %lld: %.9g re-quantized to %.9g",
                         realm_type_name(c->type), scales[s], (long long)i, y[i], z[i]);
    }
    test_free(x);
    test_free(y);
    test_free(z);
}

/* Scale field of every block of a quantized row: all the formats here start
 * their blocks with the binary16 d. */
static realm_fp16 block_d(const qcase *c, const void *q, int64_t b)
{
    realm_fp16 d;
    memcpy(&d, (const uint8_t *)q + b * traits_of(c->type)->type_size, sizeof d);
    return d;
}

static void test_hard_inputs(void **state)
{
    const qcase *c = *state;
    const realm_type_traits *tr = traits_of(c->type);
    const int64_t bs = tr->block_size, n = 4 * bs;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y), *y2 = xmalloc(n * sizeof *y2);
    rng_state = 3;

    /* all-zero blocks (+0 and -0): scale exactly 0, every output exactly 0 */
    for (int64_t i = 0; i < n; i++)
        x[i] = i % 3 ? 0.0f : -0.0f;
    void *q = quantize(c->type, x, n);
    tr->to_float(q, y, n);
    for (int64_t b = 0; b < n / bs; b++)
        assert_int_equal(block_d(c, q, b) & 0x7fff, 0);
    for (int64_t i = 0; i < n; i++)
        assert_true(y[i] == 0.0f);
    test_free(q);

    /* a single outlier of either sign in zeros, at varying positions */
    for (int64_t b = 0; b < n / bs; b++)
        x[b * bs + (b * 7 + 3) % bs] = b % 2 ? -100.0f : 100.0f;
    roundtrip(c->type, x, y, n);
    assert_block_errors(c, x, y, n);

    /* negative-only and positive-only blocks far from zero */
    for (int64_t i = 0; i < n; i++)
        x[i] = (i / bs % 2 ? 1.0f : -1.0f) * (3.0f + 2.0f * (float)rng_uniform());
    roundtrip(c->type, x, y, n);
    assert_block_errors(c, x, y, n);

    /* tiny: scales in binary16's subnormal range stay within the floor; float32
     * subnormal input (beyond binary16) reads back exactly zero */
    fill_gauss(x, n, 0.0f, 3e-5f);
    roundtrip(c->type, x, y, n);
    assert_block_errors(c, x, y, n);
    fill_gauss(x, n, 0.0f, 1e-40f);
    roundtrip(c->type, x, y, n);
    for (int64_t i = 0; i < n; i++)
        assert_true(y[i] == 0.0f);

    /* huge but representable (|x| <= 4e4 < 65504): the usual relative bound */
    fill_gauss(x, n, 0.0f, 1e4f);
    for (int64_t i = 0; i < n; i++)
        x[i] = fminf(4e4f, fmaxf(-4e4f, x[i]));
    roundtrip(c->type, x, y, n);
    assert_block_errors(c, x, y, n);
    /* beyond any binary16 scale: the scale saturates, output stays finite */
    for (int64_t i = 0; i < n; i++)
        x[i] = i % 5 == 0 ? FLT_MAX : i % 5 == 1 ? -FLT_MAX : 1e30f * rng_gauss();
    roundtrip(c->type, x, y, n);
    for (int64_t i = 0; i < n; i++)
        assert_true(isfinite(y[i]));

    /* non-finite input in block 0 (any output there is fine, but no UB under
     * UBSan) leaves the other blocks as they are quantized on their own */
    fill_gauss(x, n, 0.0f, 1.0f);
    x[0] = NAN;
    x[bs / 2] = INFINITY;
    x[bs - 1] = -INFINITY;
    roundtrip(c->type, x, y, n);
    roundtrip(c->type, x + bs, y2, n - bs);
    assert_memory_equal(y + bs, y2, (size_t)(n - bs) * sizeof *y);
    for (int64_t i = 0; i < bs; i++)
        x[i] = NAN;
    roundtrip(c->type, x, y, n);
    assert_memory_equal(y + bs, y2, (size_t)(n - bs) * sizeof *y);
    test_free(x);
    test_free(y);
    test_free(y2);
}

/* vec_dot(w, a) against sum w_i a_i in double over the dequantized operands.
 * Per block the integer sum is exact; what remains is float rounding of the
 * dequantized values, of d_w * d_a, the block product and the running sum:
 * at most (n_blocks + 8) u relative to sum |w_i a_i| (u = 2^-24). For Q4_1 and
 * Q5_1 the decomposition d sum q a + m sum a measures against |m| sum |a| as
 * well, and Q8_1's s = d sum q is binary16 (about 2^-10 relative, d included). */
static void check_vec_dot(const qcase *c, int64_t n, float w_mean)
{
    const realm_type_traits *tr = traits_of(c->type);
    const realm_type at = tr->vec_dot_type;
    float *w = xmalloc(n * sizeof *w), *a = xmalloc(n * sizeof *a);
    float *wd = xmalloc(n * sizeof *wd), *ad = xmalloc(n * sizeof *ad);
    fill_gauss(w, n, w_mean, 1.0f);
    fill_gauss(a, n, 0.0f, 1.0f);
    void *wq = quantize(c->type, w, n);
    void *aq;
    tr->to_float(wq, wd, n);
    if (at == REALM_TYPE_Q8_K) {
        aq = xmalloc(realm_type_row_size(at, n));
        q8k_quantize(a, aq, n);
        q8k_dequantize(aq, ad, n);
    } else {
        aq = quantize(at, a, n);
        traits_of(at)->to_float(aq, ad, n);
    }
    double ref = 0.0, mag = 0.0, min_term = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)wd[i] * ad[i];
        mag += fabs((double)wd[i] * ad[i]);
    }
    if (c->min_offset >= 0) {
        for (int64_t b = 0; b < n / 32; b++) {
            realm_fp16 m;
            memcpy(&m, (uint8_t *)wq + b * tr->type_size + c->min_offset, sizeof m);
            const double s = realm_fp16_to_fp32(((realm_block_q8_1 *)aq)[b].s);
            double suma = 0.0;
            for (int j = 0; j < 32; j++)
                suma += fabs(ad[b * 32 + j]);
            const double am = fabs(realm_fp16_to_fp32(m));
            mag += am * suma;
            min_term += am * (0x1p-10 * (suma + fabs(s)) + 0x1p-24);
        }
    }
    const double nb = (double)n / (double)tr->block_size;
    const double tol = (fmin(nb, (double)n / 32) + 8) * U24 * mag + min_term;
    const float got = tr->vec_dot(n, wq, aq);
    if (!(fabs(got - ref) <= tol))
        fail_msg("%s n=%lld mean %g: vec_dot %.9g, dequantized dot %.9g, tolerance %.3g",
                 realm_type_name(c->type), (long long)n, w_mean, got, ref, tol);
    /* the tolerance is not vacuous: far below the dot's own scale */
    assert_true(tol <= 2e-3 * mag);
    test_free(w);
    test_free(a);
    test_free(wd);
    test_free(ad);
    test_free(wq);
    test_free(aq);
}

static void test_vec_dot(void **state)
{
    const qcase *c = *state;
    const int64_t bs = traits_of(c->type)->block_size;
    const int64_t unit = bs > 32 ? bs : 32; /* a multiple of the activation block too */
    const int64_t sizes[] = {unit, 7 * unit, 4096, 16384 + unit};
    rng_state = 4;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_vec_dot(c, sizes[k], 0.0f);
        check_vec_dot(c, sizes[k], 2.0f);
    }
    /* zero weights dot any finite activations is exactly zero (0x11 bytes make
     * finite scales, s and values in every activation format) */
    float z[256] = {0};
    const size_t a_size = realm_type_row_size(traits_of(c->type)->vec_dot_type, unit);
    void *wq = quantize(c->type, z, unit);
    void *aq = xmalloc(a_size);
    memset(aq, 0x11, a_size);
    assert_true(traits_of(c->type)->vec_dot(unit, wq, aq) == 0.0f);
    test_free(wq);
    test_free(aq);
}

/* ---- layouts from hand-written bytes ----------------------------------------- */

static const int kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                           1,    13,   25,  38,  53,  69,  89,  113};

/* bit j of the 4 qh bytes, read byte by byte (ggml stores a little-endian u32) */
static int hbit(const uint8_t qh[4], int j)
{
    return (qh[j / 8] >> (j % 8)) & 1;
}

static void expect_decoded(realm_type t, const void *block, const float *want, int64_t n)
{
    float got[REALM_QK_K];
    traits_of(t)->to_float(block, got, n);
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s element %lld: got %g want %g", realm_type_name(t), (long long)i, got[i],
                     want[i]);
}

static void test_layouts(void **state)
{
    (void)state;
    float want[REALM_QK_K];
    uint8_t nib_qs[16]; /* element j < 16 gets nibble j, element 16 + j nibble 15 - j */
    for (int j = 0; j < 16; j++)
        nib_qs[j] = (uint8_t)(j | (15 - j) << 4);
    const uint8_t qh[4] = {0x01, 0x80, 0x00, 0xff}; /* elements 0, 15, 24..31 */
    int nib[32];
    for (int j = 0; j < 16; j++)
        nib[j] = j, nib[16 + j] = 15 - j;

    realm_block_q4_0 b40 = {.d = 0x3800}; /* 0.5 */
    memcpy(b40.qs, nib_qs, 16);
    for (int j = 0; j < 32; j++)
        want[j] = 0.5f * (float)(nib[j] - 8);
    expect_decoded(REALM_TYPE_Q4_0, &b40, want, 32);

    realm_block_q4_1 b41 = {.d = 0x3800, .m = 0xc000}; /* 0.5, -2 */
    memcpy(b41.qs, nib_qs, 16);
    for (int j = 0; j < 32; j++)
        want[j] = 0.5f * (float)nib[j] - 2.0f;
    expect_decoded(REALM_TYPE_Q4_1, &b41, want, 32);

    realm_block_q5_0 b50 = {.d = 0x3800};
    memcpy(b50.qs, nib_qs, 16);
    memcpy(b50.qh, qh, 4);
    for (int j = 0; j < 32; j++)
        want[j] = 0.5f * (float)((nib[j] | hbit(qh, j) << 4) - 16);
    expect_decoded(REALM_TYPE_Q5_0, &b50, want, 32);

    realm_block_q5_1 b51 = {.d = 0x3800, .m = 0xc000};
    memcpy(b51.qs, nib_qs, 16);
    memcpy(b51.qh, qh, 4);
    for (int j = 0; j < 32; j++)
        want[j] = 0.5f * (float)(nib[j] | hbit(qh, j) << 4) - 2.0f;
    expect_decoded(REALM_TYPE_Q5_1, &b51, want, 32);

    realm_block_q8_0 b80 = {.d = 0x3400};              /* 0.25 */
    realm_block_q8_1 b81 = {.d = 0x3400, .s = 0x7c00}; /* s plays no part in dequantization */
    for (int j = 0; j < 32; j++) {
        b80.qs[j] = b81.qs[j] = (int8_t)(j * 8 - 128);
        want[j] = 0.25f * (float)(j * 8 - 128);
    }
    expect_decoded(REALM_TYPE_Q8_0, &b80, want, 32);
    expect_decoded(REALM_TYPE_Q8_1, &b81, want, 32);

    realm_block_iq4_nl bnl = {.d = 0x3800};
    memcpy(bnl.qs, nib_qs, 16);
    for (int j = 0; j < 32; j++)
        want[j] = 0.5f * (float)kv[nib[j]];
    expect_decoded(REALM_TYPE_IQ4_NL, &bnl, want, 32);

    /* 6-bit sub-scales {0,63,32,33,1,47,16,31}, encoded by hand: low nibbles
     * 0,15,0,1,1,15,0,15 pairwise in scales_l, high bits 0,3,2,2,0,2,1,1 two
     * per sub-block in scales_h */
    static const int ls[8] = {0, 63, 32, 33, 1, 47, 16, 31};
    realm_block_iq4_xs bxs = {
        .d = 0x3400, .scales_h = 0x58AC, .scales_l = {0xF0, 0x10, 0xF1, 0xF0}};
    for (int g = 0; g < 8; g++)
        memcpy(bxs.qs + 16 * g, nib_qs, 16);
    for (int g = 0; g < 8; g++)
        for (int j = 0; j < 32; j++)
            want[32 * g + j] = 0.25f * (float)(ls[g] - 32) * (float)kv[nib[j]];
    expect_decoded(REALM_TYPE_IQ4_XS, &bxs, want, 256);
}

/* ---- float conversions, exhaustively ----------------------------------------- */

/* binary16 h decoded from its definition, in double */
static double half_value(unsigned h)
{
    const unsigned e = (h >> 10) & 31, m = h & 1023;
    const double sign = h & 0x8000 ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : sign * INFINITY;
    return sign * (e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24));
}

static realm_fp16 to_half(float f)
{
    realm_fp16 h;
    traits_of(REALM_TYPE_F16)->from_float(&f, &h, 1);
    return h;
}

static void test_f16_exhaustive(void **state)
{
    (void)state;
    const realm_type_traits *tr = traits_of(REALM_TYPE_F16);
    for (unsigned h = 0; h < 65536; h++) {
        const realm_fp16 hh = (realm_fp16)h;
        float f;
        tr->to_float(&hh, &f, 1);
        const double want = half_value(h);
        if (isnan(want)) {
            assert_true(isnan(f));
            const realm_fp16 back = to_half(f); /* a NaN of the same sign */
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);
            assert_int_equal(back & 0x8000, h & 0x8000);
            continue;
        }
        assert_true((double)f == want && !signbit(f) == !(h & 0x8000));
        assert_int_equal(to_half(f), h); /* exact and identity, -0 and ±inf included */
        /* rounding: the midpoint to the next half away from zero goes to the
         * even one (0x7bff's midpoint is 65520, which overflows to inf), and one
         * float ulp either side of it goes to the nearer */
        if ((h & 0x7fff) >= 0x7c00) continue;
        const double next = (h & 0x7fff) == 0x7bff ? copysign(65536.0, f) : half_value(h + 1);
        const float mid = (float)((f + next) / 2); /* 12 significant bits: exact */
        const unsigned even = h & 1 ? h + 1 : h;
        assert_int_equal(to_half(mid), even);
        assert_int_equal(to_half(nextafterf(mid, 0.0f)), h);
        assert_int_equal(to_half(nextafterf(mid, copysignf(INFINITY, f))), h + 1);
    }
    assert_int_equal(to_half(65519.996f), 0x7bff);
    assert_int_equal(to_half(1e10f), 0x7c00);
    assert_int_equal(to_half(-1e10f), 0xfc00);
    assert_int_equal(to_half(0x1p-26f), 0x0000); /* half the smallest subnormal: ties to even 0 */
    assert_int_equal(to_half(0x1.8p-25f), 0x0001);
}

static void test_bf16_exhaustive(void **state)
{
    (void)state;
    const realm_type_traits *tr = traits_of(REALM_TYPE_BF16);
    for (unsigned b = 0; b < 65536; b++) {
        const realm_bf16 bb = (realm_bf16)b;
        float f;
        tr->to_float(&bb, &f, 1);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        assert_int_equal(bits, (uint32_t)b << 16);
        realm_bf16 back;
        tr->from_float(&f, &back, 1);
        if (isnan(f))
            assert_true((back & 0x7f80) == 0x7f80 && (back & 0x7f) != 0);
        else
            assert_int_equal(back, b);
        if ((b & 0x7f80) == 0x7f80) continue;
        /* midpoints to the next bf16 away from zero: ties to even; overflow of
         * the largest finite value rounds to inf */
        const uint32_t mid = bits | 0x8000u;
        const uint32_t probes[3] = {mid, mid - 1, mid + 1};
        const unsigned want[3] = {b & 1 ? b + 1 : b, b, b + 1};
        for (int k = 0; k < 3; k++) {
            float p;
            memcpy(&p, &probes[k], sizeof p);
            tr->from_float(&p, &back, 1);
            assert_int_equal(back, want[k]);
        }
    }
    /* a NaN whose payload is only in the dropped half must stay NaN, not inf */
    const uint32_t snan = 0x7f800001u;
    float f;
    realm_bf16 back;
    memcpy(&f, &snan, sizeof f);
    tr->from_float(&f, &back, 1);
    assert_true((back & 0x7f80) == 0x7f80 && (back & 0x7f) != 0);
}

static void test_f32_identity(void **state)
{
    (void)state;
    const realm_type_traits *tr = traits_of(REALM_TYPE_F32);
    uint32_t in[4096], mid[4096], out[4096];
    rng_state = 5;
    for (int i = 0; i < 4096; i++)
        in[i] = (uint32_t)rng_u64();
    tr->from_float((const float *)(const void *)in, mid, 4096);
    tr->to_float(mid, (float *)(void *)out, 4096);
    assert_memory_equal(in, out, sizeof in);
}

/* ---- runner --------------------------------------------------------------------- */

int main(void)
{
    static const struct {
        const char *name;
        CMUnitTestFunction fn;
    } per_type[] = {
        {"rmse_gaussian", test_rmse_gaussian},
        {"exact_roundtrip", test_exact_roundtrip},
        {"hard_inputs", test_hard_inputs},
        {"vec_dot", test_vec_dot},
    };
    enum { N_PER_TYPE = sizeof per_type / sizeof per_type[0] };
    static char names[N_CASES * N_PER_TYPE][48];
    struct CMUnitTest tests[N_CASES * N_PER_TYPE + 4];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_layouts);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_f16_exhaustive);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_bf16_exhaustive);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_f32_identity);
    for (size_t k = 0; k < N_PER_TYPE; k++) {
        for (size_t c = 0; c < N_CASES; c++) {
            const bool quantized = traits_of(cases[c].type)->is_quantized;
            /* hard inputs are about block scales; float types have none */
            if (!quantized && per_type[k].fn == test_hard_inputs) continue;
            char *name = names[k * N_CASES + c];
            snprintf(name, sizeof names[0], "%s/%s", per_type[k].name,
                     realm_type_name(cases[c].type));
            tests[n++] = (struct CMUnitTest){name, per_type[k].fn, NULL, NULL, (void *)&cases[c]};
        }
    }
    return _cmocka_run_group_tests("quant_legacy", tests, n, NULL, NULL);
}
