/*
 * Tests of the K-quant kernels (quant/kquants.c, quant/kquants_quantize.c),
 * reached through the type-traits table as callers reach them.
 *
 *   layout:     hand-built blocks (literal scale bytes, patterned quants)
 *               dequantized and checked element by element, plus values
 *               worked out by hand, so a layout bug fails here and not only
 *               in the gguf-py oracle;
 *   round trip: normalized RMSE on Gaussian data under a per-type bound;
 *   hard cases: zero, constant, single-outlier, one-signed, tiny, huge and
 *               non-finite inputs;
 *   vec_dot:    equals the dot of the dequantized operands up to float
 *               rounding, for several lengths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/types.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail_msg("%s", #cond);                                                                 \
        }                                                                                          \
    } while (0)

enum { QK = REALM_QK_K };

static const realm_type WEIGHT_TYPES[] = {REALM_TYPE_Q2_K, REALM_TYPE_Q3_K, REALM_TYPE_Q4_K,
                                          REALM_TYPE_Q5_K, REALM_TYPE_Q6_K};
static const realm_type ALL_TYPES[] = {REALM_TYPE_Q2_K, REALM_TYPE_Q3_K, REALM_TYPE_Q4_K,
                                       REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, REALM_TYPE_Q8_K};
#define N_WEIGHT_TYPES (sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])
#define N_ALL_TYPES    (sizeof ALL_TYPES / sizeof ALL_TYPES[0])

/* Normalized RMSE bounds on N(0,1) data (65536 samples, fixed seed). Each is
 * what this quantizer measures (Q2_K 0.265, Q3_K 0.144, Q4_K 0.0708, Q5_K
 * 0.0350, Q6_K 0.0177) plus ~6% headroom, so a regression in the search
 * fails; all sit below what llama.cpp's reference quantizers reach (about
 * 0.3 / 0.17 / 0.09 / 0.045 / 0.022). Q8_K follows from theory: its step is
 * amax/127 with amax ≈ 3 for 256 normal samples, and uniform rounding error
 * is step/√12 ≈ 0.0068. */
static double nrmse_bound(realm_type t)
{
    switch (t) {
    case REALM_TYPE_Q2_K:
        return 0.280;
    case REALM_TYPE_Q3_K:
        return 0.153;
    case REALM_TYPE_Q4_K:
        return 0.075;
    case REALM_TYPE_Q5_K:
        return 0.037;
    case REALM_TYPE_Q6_K:
        return 0.0187;
    case REALM_TYPE_Q8_K:
        return 0.0075;
    default:
        return 0;
    }
}

/* ---- helpers ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_uniform(void) /* (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static float rng_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform()));
}

static void fill_gauss(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = rng_gauss() * scale;
}

static const realm_type_traits *traits(realm_type t)
{
    const realm_type_traits *tr = realm_type_traits_get(t);
    assert_non_null(tr);
    assert_non_null(tr->to_float);
    assert_non_null(tr->from_float);
    assert_non_null(tr->vec_dot);
    assert_int_equal(tr->block_size, QK);
    assert_int_equal(tr->vec_dot_type, REALM_TYPE_Q8_K);
    return tr;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    assert_non_null(p);
    return p;
}

/* Quantize n floats to type t and dequantize them into y. */
static void round_trip(realm_type t, const float *x, float *y, int64_t n)
{
    const realm_type_traits *tr = traits(t);
    void *q = xmalloc(realm_type_row_size(t, n));
    tr->from_float(x, q, n);
    tr->to_float(q, y, n);
    free(q);
}

static double nrmse(const float *x, const float *y, int64_t n)
{
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)y[i] - x[i];
        se += e * e;
        sx += (double)x[i] * x[i];
    }
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

static void check_all_finite(realm_type t, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        CHECK(isfinite(y[i]), "%s: element %lld is %g", realm_type_name(t), (long long)i,
              (double)y[i]);
}

/* Pattern bytes for hand-built blocks: varied, reproducible, easy to redo by
 * hand (e.g. pat37(5) = 5*37+11 = 196). */
static uint8_t pat37(int i)
{
    return (uint8_t)(i * 37 + 11);
}

static uint8_t pat73(int i)
{
    return (uint8_t)(i * 73 + 5);
}

/* Dequantize one hand-built block and compare it exactly with expect (all
 * expected values are exact in float, so any correct operation order gives
 * them bit for bit); then dot it with all-ones activations, which must give
 * the exact sum. */
static void check_hand_block(realm_type t, const void *block, const float *expect)
{
    const realm_type_traits *tr = traits(t);
    float y[QK];
    tr->to_float(block, y, QK);
    for (int e = 0; e < QK; e++)
        CHECK(y[e] == expect[e], "%s element %d: got %g want %g", realm_type_name(t), e,
              (double)y[e], (double)expect[e]);

    realm_block_q8_k ones;
    ones.d = 1.0f;
    for (int e = 0; e < QK; e++)
        ones.qs[e] = 1;
    for (int j = 0; j < QK / 16; j++)
        ones.bsums[j] = 16;
    double sum = 0;
    for (int e = 0; e < QK; e++)
        sum += expect[e];
    float dot = tr->vec_dot(QK, block, &ones);
    CHECK(fabs(dot - sum) <= 1e-6 * fabs(sum) + 1e-6, "%s vec_dot with ones: got %g want %g",
          realm_type_name(t), (double)dot, sum);
}

/* ---- layout: hand-built blocks ---- */

static void test_q2_k_layout(void **state)
{
    (void)state;
    realm_block_q2_k b;
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    for (int j = 0; j < 16; j++)
        b.scales[j] = (uint8_t)(j | ((15 - j) << 4)); /* sc=j, m=15-j */
    for (int i = 0; i < 64; i++)
        b.qs[i] = pat37(i);

    /* qs[32h + l] holds elements 128h + 32k + l in bits 2k..2k+1 */
    float expect[QK];
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++) {
                int e = 128 * h + 32 * k + l, j = e / 16;
                int q = (b.qs[32 * h + l] >> (2 * k)) & 3;
                expect[e] = 1.0f * (float)(j * q) - 0.5f * (float)(15 - j);
            }
    /* by hand: e=37 is qs[5]=196=0b11000100 bits 2..3 -> 1, j=2: 2*1 - 6.5 */
    assert_true(expect[37] == -4.5f);
    check_hand_block(REALM_TYPE_Q2_K, &b, expect);
}

static void test_q3_k_layout(void **state)
{
    (void)state;
    /* 6-bit scales u = sc + 32, packed by hand:
     * u = {0,63,32,31, 1,62,16,48, 5,10,20,40, 33,47,15,60}
     * bytes 0..7: low nibble of u[i], high nibble of u[i+8];
     * byte 8+k: top 2 bits of u[k], u[k+4], u[k+8], u[k+12] at bits 0,2,4,6 */
    static const int sc[16] = {-32, 31, 0, -1, -31, 30, -16, 16, -27, -22, -12, 8, 1, 15, -17, 28};
    static const uint8_t scales[12] = {0x50, 0xAF, 0x40, 0x8F, 0x11, 0xFE,
                                       0xF0, 0xC0, 0x80, 0x8F, 0x16, 0xED};
    realm_block_q3_k b;
    b.d = 0x3800; /* 0.5 */
    memcpy(b.scales, scales, 12);
    for (int i = 0; i < 64; i++)
        b.qs[i] = pat37(i);
    for (int i = 0; i < 32; i++)
        b.hmask[i] = pat73(i);

    /* low 2 bits as Q2_K; hmask[l] bit k is element 32k + l's third bit, and a
     * clear bit means -4 */
    float expect[QK];
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++) {
                int e = 128 * h + 32 * k + l;
                int lo = (b.qs[32 * h + l] >> (2 * k)) & 3;
                int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
                expect[e] = 0.5f * (float)(sc[e / 16] * (lo - (hi ? 0 : 4)));
            }
    /* by hand: e=20: qs[20]=239 -> 3, hmask[20]=185 bit0=1, sc=31: 46.5;
     * e=130: qs[34]=245 -> 1, hmask[2]=151 bit4=1, sc=-27: -13.5;
     * e=129: qs[33]=208 -> 0, hmask[1]=78 bit4=0 (so -4), sc=-27: 54 */
    assert_true(expect[20] == 46.5f);
    assert_true(expect[130] == -13.5f);
    assert_true(expect[129] == 54.0f);
    check_hand_block(REALM_TYPE_Q3_K, &b, expect);
}

/* Q4_K/Q5_K 6-bit scales and mins, packed by hand:
 * sc = {1,2,3,4,33,40,50,63}, m = {5,6,7,8,17,34,48,60};
 * bytes 0..3: sc[j] | top2(sc[j+4])<<6; 4..7: m[j] | top2(m[j+4])<<6;
 * 8..11: low4(sc[j+4]) | low4(m[j+4])<<4 */
static const int K4_SC[8] = {1, 2, 3, 4, 33, 40, 50, 63};
static const int K4_M[8] = {5, 6, 7, 8, 17, 34, 48, 60};
static const uint8_t K4_SCALES[12] = {0x81, 0x82, 0xC3, 0xC4, 0x45, 0x86,
                                      0xC7, 0xC8, 0x11, 0x28, 0x02, 0xCF};

static void test_q4_k_layout(void **state)
{
    (void)state;
    realm_block_q4_k b;
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    memcpy(b.scales, K4_SCALES, 12);
    for (int i = 0; i < 128; i++)
        b.qs[i] = pat37(i);

    /* qs[32c + l]: low nibble is element 64c + l, high nibble 64c + 32 + l */
    float expect[QK];
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            for (int hi = 0; hi < 2; hi++) {
                int e = 64 * c + 32 * hi + l, j = e / 32;
                int q = (b.qs[32 * c + l] >> (4 * hi)) & 15;
                expect[e] = 1.0f * (float)(K4_SC[j] * q) - 0.5f * (float)K4_M[j];
            }
    /* by hand: e=200: qs[104]=0x13 low -> 3, sc=50, m=48: 150-24;
     * e=45: qs[13]=0xEC high -> 14, sc=2, m=6: 28-3;
     * e=255: qs[127]=0x66 high -> 6, sc=63, m=60: 378-30 */
    assert_true(expect[200] == 126.0f);
    assert_true(expect[45] == 25.0f);
    assert_true(expect[255] == 348.0f);
    check_hand_block(REALM_TYPE_Q4_K, &b, expect);
}

static void test_q5_k_layout(void **state)
{
    (void)state;
    realm_block_q5_k b;
    b.d = 0x3C00;    /* 1.0 */
    b.dmin = 0x3800; /* 0.5 */
    memcpy(b.scales, K4_SCALES, 12);
    for (int i = 0; i < 128; i++)
        b.qs[i] = pat37(i);
    for (int i = 0; i < 32; i++)
        b.qh[i] = pat73(i);

    /* low nibbles as Q4_K; qh[l] bit k adds 16 to element 32k + l */
    float expect[QK];
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            for (int hi = 0; hi < 2; hi++) {
                int e = 64 * c + 32 * hi + l, j = e / 32;
                int q = ((b.qs[32 * c + l] >> (4 * hi)) & 15) | (((b.qh[l] >> (e / 32)) & 1) << 4);
                expect[e] = 1.0f * (float)(K4_SC[j] * q) - 0.5f * (float)K4_M[j];
            }
    /* by hand: e=200: low 3, qh[8]=77 bit6=1 -> 19, sc=50, m=48: 950-24;
     * e=45: high 14, qh[13]=186 bit1=1 -> 30, sc=2, m=6: 60-3 */
    assert_true(expect[200] == 926.0f);
    assert_true(expect[45] == 57.0f);
    check_hand_block(REALM_TYPE_Q5_K, &b, expect);
}

static void test_q6_k_layout(void **state)
{
    (void)state;
    static const int8_t sc[16] = {-128, 127, -1,   1,  0,   64, -64, 5,
                                  -5,   100, -100, 33, -33, 7,  -7,  2};
    realm_block_q6_k b;
    b.d = 0x3400; /* 0.25 */
    memcpy(b.scales, sc, 16);
    for (int i = 0; i < 128; i++)
        b.ql[i] = pat37(i);
    for (int i = 0; i < 64; i++)
        b.qh[i] = pat73(i);

    /* ql[64h + l]: low nibble is element 128h + l, high 128h + 64 + l;
     * qh[32h + l] bits 2k..2k+1 are the top bits of element 128h + 32k + l */
    int q[QK];
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 64; l++) {
            q[128 * h + l] = b.ql[64 * h + l] & 15;
            q[128 * h + 64 + l] = b.ql[64 * h + l] >> 4;
        }
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++)
            for (int k = 0; k < 4; k++)
                q[128 * h + 32 * k + l] |= ((b.qh[32 * h + l] >> (2 * k)) & 3) << 4;
    float expect[QK];
    for (int e = 0; e < QK; e++)
        expect[e] = 0.25f * (float)(sc[e / 16] * (q[e] - 32));
    /* by hand: e=200: ql[72]=0x73 high -> 7, qh[40]=109 bits 4..5 -> 2, so
     * 39-32=7, sc=-33: -57.75; e=5: ql[5]=0xC4 low -> 4, qh[5]=114 -> 2, so
     * 4, sc=-128: -128; e=16: ql[16]=0x5B -> 11, qh[16]=149 -> 1, so -5,
     * sc=127: -158.75 */
    assert_true(expect[200] == -57.75f);
    assert_true(expect[5] == -128.0f);
    assert_true(expect[16] == -158.75f);
    check_hand_block(REALM_TYPE_Q6_K, &b, expect);
}

static void test_q8_k_layout(void **state)
{
    (void)state;
    realm_block_q8_k b;
    b.d = 0.5f;
    for (int e = 0; e < QK; e++)
        b.qs[e] = (int8_t)(e - 128);
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++)
            s += b.qs[16 * j + l];
        b.bsums[j] = (int16_t)s;
    }
    float expect[QK];
    for (int e = 0; e < QK; e++)
        expect[e] = 0.5f * (float)(e - 128);
    check_hand_block(REALM_TYPE_Q8_K, &b, expect);
}

/* ---- round trip ---- */

static void test_roundtrip_gaussian(void **state)
{
    (void)state;
    const int64_t n = 256 * QK;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    rng_seed(1);
    fill_gauss(x, n, 1.0f);
    for (size_t k = 0; k < N_ALL_TYPES; k++) {
        realm_type t = ALL_TYPES[k];
        round_trip(t, x, y, n);
        double r = nrmse(x, y, n);
        print_message("%-5s normalized RMSE %.5f (bound %.4f)\n", realm_type_name(t), r,
                      nrmse_bound(t));
        CHECK(r <= nrmse_bound(t), "%s: nrmse %g > %g", realm_type_name(t), r, nrmse_bound(t));
    }
    free(x);
    free(y);
}

/* Scale invariance within each format's range: the same data times 1e-4 and
 * 1e4 keeps the bound (fp16 factors are relative), 1e-9 is below every
 * format's smallest step and must come back finite and no larger than the
 * input, and 1e30 (beyond every format) saturates, finite, with signs kept. */
static void test_tiny_and_huge(void **state)
{
    (void)state;
    const int64_t n = 16 * QK;
    float *g = xmalloc(n * sizeof *g), *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    rng_seed(2);
    fill_gauss(g, n, 1.0f);
    static const float scales[] = {1e-4f, 1e4f};
    for (size_t k = 0; k < N_ALL_TYPES; k++) {
        realm_type t = ALL_TYPES[k];
        for (size_t s = 0; s < 2; s++) {
            for (int64_t i = 0; i < n; i++)
                x[i] = g[i] * scales[s];
            round_trip(t, x, y, n);
            double r = nrmse(x, y, n);
            CHECK(r <= 1.1 * nrmse_bound(t), "%s at scale %g: nrmse %g", realm_type_name(t),
                  (double)scales[s], r);
        }
        for (int64_t i = 0; i < n; i++)
            x[i] = g[i] * 1e-9f;
        round_trip(t, x, y, n);
        check_all_finite(t, y, n);
        CHECK(nrmse(x, y, n) <= 1.0 + 1e-6, "%s at 1e-9: worse than zero", realm_type_name(t));

        for (int64_t i = 0; i < n; i++)
            x[i] = g[i] * 1e30f;
        round_trip(t, x, y, n);
        check_all_finite(t, y, n);
        for (int64_t i = 0; i < n; i++)
            if (fabsf(g[i]) > 0.1f) /* above half a step in every format */
                CHECK((y[i] > 0) == (x[i] > 0) && y[i] != 0, "%s at 1e30: element %lld %g -> %g",
                      realm_type_name(t), (long long)i, (double)x[i], (double)y[i]);
    }
    free(g);
    free(x);
    free(y);
}

/* ---- hard cases ---- */

static void test_zero_blocks(void **state)
{
    (void)state;
    float x[2 * QK] = {0}, y[2 * QK];
    x[QK + 7] = -0.0f;
    for (size_t k = 0; k < N_ALL_TYPES; k++) {
        round_trip(ALL_TYPES[k], x, y, 2 * QK);
        for (int i = 0; i < 2 * QK; i++)
            CHECK(y[i] == 0.0f, "%s: zero block element %d -> %g", realm_type_name(ALL_TYPES[k]), i,
                  (double)y[i]);
    }
}

/* A constant block is one scale (and min) away from exact in every format;
 * what remains is fp16 rounding of the factors. */
static void test_constant_blocks(void **state)
{
    (void)state;
    static const float values[] = {1.0f, -1.0f, 3.7f, -1234.5f};
    float x[QK], y[QK];
    for (size_t k = 0; k < N_ALL_TYPES; k++)
        for (size_t v = 0; v < 4; v++) {
            for (int i = 0; i < QK; i++)
                x[i] = values[v];
            round_trip(ALL_TYPES[k], x, y, QK);
            for (int i = 0; i < QK; i++)
                CHECK(fabsf(y[i] - x[i]) <= 2e-3f * fabsf(x[i]), "%s: constant %g -> %g",
                      realm_type_name(ALL_TYPES[k]), (double)x[i], (double)y[i]);
        }
}

/* One large value among small ones: it keeps its value (its sub-block's
 * scale is set by it) and the small ones do not blow up. */
static void test_single_outlier(void **state)
{
    (void)state;
    float x[2 * QK], y[2 * QK];
    for (size_t k = 0; k < N_ALL_TYPES; k++)
        for (int sign = -1; sign <= 1; sign += 2) {
            rng_seed(3);
            fill_gauss(x, 2 * QK, 0.01f);
            int pos = QK + 77;
            x[pos] = 100.0f * (float)sign;
            round_trip(ALL_TYPES[k], x, y, 2 * QK);
            CHECK(fabsf(y[pos] - x[pos]) <= 0.01f * 100.0f, "%s: outlier %g -> %g",
                  realm_type_name(ALL_TYPES[k]), (double)x[pos], (double)y[pos]);
            for (int i = 0; i < 2 * QK; i++)
                if (i != pos)
                    CHECK(fabsf(y[i] - x[i]) <= 0.1f, "%s: element %d next to outlier %g -> %g",
                          realm_type_name(ALL_TYPES[k]), i, (double)x[i], (double)y[i]);
            /* the block without the outlier is unaffected by it */
            CHECK(nrmse(x, y, QK) <= 1.1 * nrmse_bound(ALL_TYPES[k]), "%s: first block",
                  realm_type_name(ALL_TYPES[k]));
        }
}

/* Blocks of one sign: |N(0,1)| and -|N(0,1)|. The formats with a min shift
 * their range onto them; the signed ones use half their levels, which the
 * smaller relative spread makes up for. */
static void test_one_signed_blocks(void **state)
{
    (void)state;
    const int64_t n = 16 * QK;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y);
    for (size_t k = 0; k < N_ALL_TYPES; k++)
        for (int sign = -1; sign <= 1; sign += 2) {
            rng_seed(4);
            for (int64_t i = 0; i < n; i++)
                x[i] = (float)sign * fabsf(rng_gauss());
            round_trip(ALL_TYPES[k], x, y, n);
            double r = nrmse(x, y, n);
            CHECK(r <= nrmse_bound(ALL_TYPES[k]), "%s: sign %d nrmse %g",
                  realm_type_name(ALL_TYPES[k]), sign, r);
        }
    free(x);
    free(y);
}

/* NaN and ±inf must not crash or poison anything: NaN reads as 0, ±inf
 * saturates, all outputs are finite, and other blocks are untouched. */
static void test_non_finite(void **state)
{
    (void)state;
    float x[2 * QK], clean[QK], y[2 * QK], y_clean[QK];
    for (size_t k = 0; k < N_ALL_TYPES; k++) {
        realm_type t = ALL_TYPES[k];
        rng_seed(5);
        fill_gauss(x, 2 * QK, 1.0f);
        memcpy(clean, x + QK, sizeof clean);
        x[3] = NAN;
        x[40] = INFINITY;
        x[41] = -INFINITY;
        x[200] = -NAN;
        round_trip(t, x, y, 2 * QK);
        check_all_finite(t, y, 2 * QK);
        CHECK(y[40] > 0 && y[41] < 0, "%s: inf signs lost: %g %g", realm_type_name(t),
              (double)y[40], (double)y[41]);
        round_trip(t, clean, y_clean, QK);
        CHECK(memcmp(y + QK, y_clean, sizeof y_clean) == 0, "%s: blocks not independent",
              realm_type_name(t));

        /* NaN quantizes exactly as 0 would */
        const realm_type_traits *tr = traits(t);
        uint8_t q_nan[sizeof(realm_block_q8_k)], q_zero[sizeof(realm_block_q8_k)];
        fill_gauss(x, QK, 1.0f);
        x[100] = NAN;
        tr->from_float(x, q_nan, QK);
        x[100] = 0.0f;
        tr->from_float(x, q_zero, QK);
        CHECK(memcmp(q_nan, q_zero, tr->type_size) == 0, "%s: NaN not read as 0",
              realm_type_name(t));

        for (int i = 0; i < QK; i++)
            x[i] = NAN;
        round_trip(t, x, y, QK);
        for (int i = 0; i < QK; i++)
            CHECK(y[i] == 0.0f, "%s: all-NaN block element %d -> %g", realm_type_name(t), i,
                  (double)y[i]);
    }
}

/* ---- Q8_K quantization ---- */

static void test_q8_k_quantize(void **state)
{
    (void)state;
    const realm_type_traits *tr = traits(REALM_TYPE_Q8_K);
    float x[4 * QK];
    realm_block_q8_k b[4];
    rng_seed(6);
    fill_gauss(x, 4 * QK, 3.0f);
    x[17] = -50.0f; /* block 0: amax is negative */
    tr->from_float(x, b, 4 * QK);
    for (int i = 0; i < 4; i++) {
        float amax = 0;
        for (int e = 0; e < QK; e++)
            amax = fmaxf(amax, fabsf(x[i * QK + e]));
        assert_true(b[i].d == amax / 127.0f);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b[i].qs[16 * j + l];
            assert_int_equal(b[i].bsums[j], s);
        }
        for (int e = 0; e < QK; e++) {
            assert_true(b[i].qs[e] >= -127);
            /* q is x/d rounded to nearest */
            CHECK(fabsf((float)b[i].qs[e] - x[i * QK + e] / b[i].d) <= 0.5f + 1e-4f,
                  "q8_k block %d element %d", i, e);
        }
    }
    assert_int_equal(b[0].qs[17], -127);
}

/* ---- vec_dot ---- */

/* vec_dot(w, a) against the double-precision dot of the dequantized operands.
 * Within a block vec_dot sums in integers (exact), so the only differences
 * are a few float roundings per block and the float sum across blocks:
 * relative to Σ|w_i a_i| that is far below 1e-5. A layout or min-term bug
 * is of the order of Σ|w_i a_i| itself. */
static void check_vec_dot(realm_type t, int64_t n, float w_scale, float a_scale)
{
    const realm_type_traits *tr = traits(t), *tq8 = traits(REALM_TYPE_Q8_K);
    float *w = xmalloc(n * sizeof *w), *a = xmalloc(n * sizeof *a);
    void *wq = xmalloc(realm_type_row_size(t, n));
    void *aq = xmalloc(realm_type_row_size(REALM_TYPE_Q8_K, n));
    fill_gauss(w, n, w_scale);
    fill_gauss(a, n, a_scale);
    tr->from_float(w, wq, n);
    tq8->from_float(a, aq, n);
    tr->to_float(wq, w, n);
    tq8->to_float(aq, a, n);
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        ref += (double)w[i] * a[i];
        mag += fabs((double)w[i] * a[i]);
    }
    float got = tr->vec_dot(n, wq, aq);
    CHECK(fabs(got - ref) <= 1e-5 * mag,
          "%s n=%lld: vec_dot %.9g, dequantized dot %.9g (sum|wa| %g)", realm_type_name(t),
          (long long)n, (double)got, ref, mag);
    free(w);
    free(a);
    free(wq);
    free(aq);
}

static void test_vec_dot(void **state)
{
    (void)state;
    static const int64_t lengths[] = {256, 4096, 14336};
    rng_seed(7);
    for (size_t k = 0; k < N_ALL_TYPES; k++)
        for (size_t l = 0; l < 3; l++)
            check_vec_dot(ALL_TYPES[k], lengths[l], 1.0f, 1.0f);
    /* magnitudes far from 1, and far apart */
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++)
        check_vec_dot(WEIGHT_TYPES[k], 4096, 1e-3f, 1e3f);
}

/* Weights whose blocks are all positive or all negative: every min term is
 * large, so a wrong sign or a wrong bsums index cannot hide. */
static void test_vec_dot_offsets(void **state)
{
    (void)state;
    const int64_t n = 4096;
    float *w = xmalloc(n * sizeof *w), *a = xmalloc(n * sizeof *a);
    rng_seed(8);
    for (int64_t i = 0; i < n; i++)
        w[i] = ((i / QK) % 2 ? 5.0f : -5.0f) + rng_gauss();
    fill_gauss(a, n, 1.0f);
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        realm_type t = WEIGHT_TYPES[k];
        const realm_type_traits *tr = traits(t), *tq8 = traits(REALM_TYPE_Q8_K);
        void *wq = xmalloc(realm_type_row_size(t, n));
        realm_block_q8_k *aq = xmalloc(realm_type_row_size(REALM_TYPE_Q8_K, n));
        float *wd = xmalloc(n * sizeof *wd), *ad = xmalloc(n * sizeof *ad);
        tr->from_float(w, wq, n);
        tq8->from_float(a, aq, n);
        tr->to_float(wq, wd, n);
        tq8->to_float(aq, ad, n);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)wd[i] * ad[i];
            mag += fabs((double)wd[i] * ad[i]);
        }
        float got = tr->vec_dot(n, wq, aq);
        CHECK(fabs(got - ref) <= 1e-5 * mag, "%s: vec_dot %.9g, dequantized dot %.9g",
              realm_type_name(t), (double)got, ref);
        free(wq);
        free(aq);
        free(wd);
        free(ad);
    }
    free(w);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q2_k_layout),
        cmocka_unit_test(test_q3_k_layout),
        cmocka_unit_test(test_q4_k_layout),
        cmocka_unit_test(test_q5_k_layout),
        cmocka_unit_test(test_q6_k_layout),
        cmocka_unit_test(test_q8_k_layout),
        cmocka_unit_test(test_roundtrip_gaussian),
        cmocka_unit_test(test_tiny_and_huge),
        cmocka_unit_test(test_zero_blocks),
        cmocka_unit_test(test_constant_blocks),
        cmocka_unit_test(test_single_outlier),
        cmocka_unit_test(test_one_signed_blocks),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_q8_k_quantize),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_vec_dot_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
