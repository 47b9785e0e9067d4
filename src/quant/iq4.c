/*
 * quant/iq4.c — reference kernels for the non-linear 4-bit formats IQ4_NL and
 * IQ4_XS.
 *
 * Both store 4-bit indices into one fixed table of 16 signed levels, denser
 * near zero (a format fact):
 *   kvalues = {-127,-104,-83,-65,-49,-35,-22,-10,1,13,25,38,53,69,89,113}
 *
 *   IQ4_NL (18 B, 32 elements): d (binary16) | qs[16]
 *     element j: idx = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4
 *     x = d * kvalues[idx]                               (one float32 rounding)
 *   IQ4_XS (136 B, 256 elements = 8 sub-blocks of 32):
 *     d (binary16) | scales_h (uint16 LE) | scales_l[4] | qs[128]
 *     sub-block ib: 6-bit ls = (scales_l[ib / 2] >> 4 * (ib % 2)) & 0x0F
 *                              | ((scales_h >> 2 * ib) & 3) << 4
 *                   its 32 elements use qs[16 ib .. 16 ib + 15] with the
 *                   IQ4_NL nibble order
 *     x = (d * (ls - 32)) * kvalues[idx]     (two float32 roundings, in that order)
 * Both orders of operation are those of gguf-py, so dequantization is
 * bit-exact with it.
 *
 * Quantization (Realm's own design; any choice of scale is a valid file):
 * the grid is non-uniform and asymmetric, so no closed-form scale is best.
 * For each group of 32 we first look for a scale that reproduces the group
 * exactly (its signed extreme exactly on one of the 16 levels), so data read
 * back from this format is written again unchanged. Otherwise we try inverse
 * scales that put the signed extreme at or near either end of the grid
 * (-127 ± 3, 113 ± 3), each as-is and refitted by least squares for the
 * nearest-level assignment it induces, and keep the scale with the smallest
 * squared error measured exactly as it will be read back (for IQ4_NL after
 * rounding d to binary16). More candidates buy little: ±8 units instead of ±3
 * lowers the N(0,1) error by 1% for 3x the time. IQ4_XS then fits the
 * super-block scale d to the largest sub-block scale (mapping it to
 * ls - 32 = -32, or for exactly representable blocks to the d they were
 * written with) and picks each 6-bit ls among the integers within 2 of the
 * ideal one by the same exact error.
 *
 * vec_dot: IQ4_NL pairs with Q8_0, IQ4_XS with Q8_K; integer sums within a
 * block (within a sub-block, then weighted by the integer sub-scale), float
 * across blocks.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/ref.h"

#define GROUP              32 /* elements per IQ4_NL block and per IQ4_XS sub-block */
#define SEARCH_STEPS       3  /* extreme element tried at grid end ± this many units */
#define LS_RADIUS          2  /* IQ4_XS: sub-scales tried around the rounded ideal */
#define ZERO_INDEX         8  /* kvalues[8] = 1, the level closest to zero */
#define FP16_MAX           65504.0f
#define FP16_MIN_SUBNORMAL 0x1p-24f

static_assert(REALM_QK4_NL == GROUP && REALM_QK_K == 8 * GROUP, "iq4 geometry");

static const int8_t kvalues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

/* ---- helpers --------------------------------------------------------------- */

static float clamp_fp16_range(float v)
{
    if (v > FP16_MAX) return FP16_MAX;
    if (v < -FP16_MAX) return -FP16_MAX;
    return v;
}

/* The float a binary16 scale reads back as; saturating instead of overflowing
 * so that finite input always dequantizes to finite output. */
static float round_fp16(float v)
{
    return realm_fp16_to_fp32(realm_fp32_to_fp16(clamp_fp16_range(v)));
}

/* Midpoints between neighbouring levels: y is nearest to level i when
 * mids[i - 1] <= y < mids[i] (ties to the upper level). */
static const float mids[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                               7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};

/* Index of the level nearest to y: the number of midpoints <= y, found by a
 * branch-free binary search over 16 slots. Only comparisons, so NaN (which
 * compares false) safely yields 0. */
static int nearest_level(float y)
{
    int i = 8 * (y >= mids[7]);
    i += 4 * (y >= mids[i + 3]);
    i += 2 * (y >= mids[i + 1]);
    return i + (y >= mids[i]);
}

static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

/* Assign each element of a group its nearest level under scale d and return
 * the squared error of the values exactly as d * kvalues[idx] reads them back
 * (d == 0 reads back zeros whatever the indices). */
static float group_error(const float *x, float d, uint8_t idx[GROUP])
{
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!isfinite(id)) id = 0.0f;
    float err0 = 0.0f, err1 = 0.0f; /* two chains: the quantizers spend their time here */
    for (int j = 0; j < GROUP; j += 2) {
        idx[j] = (uint8_t)nearest_level(x[j] * id);
        idx[j + 1] = (uint8_t)nearest_level(x[j + 1] * id);
        const float e0 = x[j] - d * (float)kvalues[idx[j]];
        const float e1 = x[j + 1] - d * (float)kvalues[idx[j + 1]];
        err0 += e0 * e0;
        err1 += e1 * e1;
    }
    return err0 + err1;
}

typedef struct best_scale {
    float d, err;
    bool have;
    uint8_t idx[GROUP];
} best_scale;

/* Judges scale d (as the binary16 it will be stored as, with as_fp16) and
 * keeps it in *best if its error is smaller: on equal error the earlier
 * candidate stays. The levels d assigns are left in trial. */
static void consider(const float *x, float d, bool as_fp16, best_scale *best, uint8_t trial[GROUP])
{
    if (as_fp16) d = round_fp16(d);
    const float err = group_error(x, d, trial);
    if (!best->have || err < best->err) {
        best->have = true;
        best->err = err;
        best->d = d;
        memcpy(best->idx, trial, GROUP);
    }
}

/* The least-squares scale for fixed levels: sum x k / sum k^2. */
static float refit(const float *x, const uint8_t idx[GROUP])
{
    float sxk = 0.0f, skk = 0.0f;
    for (int j = 0; j < GROUP; j++) {
        const float k = (float)kvalues[idx[j]];
        sxk += x[j] * k;
        skk += k * k;
    }
    return sxk / skk; /* skk >= 32: no level is 0 */
}

/* Whether every element is exactly d times its nearest level (then written
 * to idx). */
static bool reproduces(const float *x, float d, uint8_t idx[GROUP])
{
    if (d == 0.0f || !isfinite(1.0f / d)) return false;
    const float id = 1.0f / d;
    for (int j = 0; j < GROUP; j++) {
        idx[j] = (uint8_t)nearest_level(x[j] * id);
        if (x[j] != d * (float)kvalues[idx[j]]) return false;
    }
    return true;
}

/* Best scale for one group of 32 (see the top comment); writes the matching
 * indices and whether the group is read back exactly. With as_fp16 the
 * candidates are judged, and returned, as the binary16 value to be stored. */
static float search_group_scale(const float *x, bool as_fp16, uint8_t idx[GROUP], bool *exact)
{
    const float max = signed_absmax(x, GROUP);
    best_scale best = {.have = false};
    uint8_t trial[GROUP];
    *exact = true;
    if (max == 0.0f) {
        memset(idx, ZERO_INDEX, GROUP);
        return 0.0f;
    }
    /* A group read back from this format has its signed extreme exactly on
     * some level; find that scale and the group comes back bit for bit. The
     * check gives up at the first element off the grid, so it is cheap for
     * groups that are not representable. */
    for (int k = 0; k < 16; k++) {
        float d = max / (float)kvalues[k];
        if (as_fp16) d = round_fp16(d);
        if (reproduces(x, d, idx)) return d;
    }
    *exact = false;
    /* Near either end of the grid, as-is and refitted by least squares. */
    static const float ends[2] = {-127.0f, 113.0f};
    for (int e = 0; e < 2; e++) {
        for (int t = -SEARCH_STEPS; t <= SEARCH_STEPS; t++) {
            consider(x, max / (ends[e] + (float)t), as_fp16, &best, trial);
            consider(x, refit(x, trial), as_fp16, &best, trial);
        }
    }
    memcpy(idx, best.idx, GROUP);
    return best.d;
}

static void pack_nibbles(uint8_t qs[GROUP / 2], const uint8_t idx[GROUP])
{
    for (int j = 0; j < GROUP / 2; j++)
        qs[j] = (uint8_t)(idx[j] | idx[j + GROUP / 2] << 4);
}

static int level(const uint8_t qs[GROUP / 2], int j)
{
    return kvalues[j < GROUP / 2 ? qs[j] & 0x0F : qs[j - GROUP / 2] >> 4];
}

/* ---- IQ4_NL ------------------------------------------------------------------ */

void realm__iq4_nl_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / GROUP; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        for (int j = 0; j < GROUP; j++)
            dst[i * GROUP + j] = d * (float)level(b[i].qs, j);
    }
}

void realm__iq4_nl_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_iq4_nl *b = dst;
    for (int64_t i = 0; i < n / GROUP; i++) {
        uint8_t idx[GROUP];
        bool exact;
        b[i].d = realm_fp32_to_fp16(search_group_scale(src + i * GROUP, true, idx, &exact));
        pack_nibbles(b[i].qs, idx);
    }
}

float realm__iq4_nl_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_iq4_nl *x = w;
    const realm_block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / GROUP; i++) {
        int32_t isum = 0;
        for (int j = 0; j < GROUP; j++)
            isum += level(x[i].qs, j) * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* ---- IQ4_XS ------------------------------------------------------------------ */

enum { XS_GROUPS = REALM_QK_K / GROUP };

static int xs_scale(const realm_block_iq4_xs *b, int ib)
{
    const int lo = (b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
    const int hi = (b->scales_h >> (2 * ib)) & 3;
    return (lo | hi << 4) - 32;
}

/* round(v) clamped to [lo, hi]; NaN to 0 (inside the range for IQ4_XS). */
static int round_clamp(float v, int lo, int hi)
{
    if (isnan(v)) return 0;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)roundf(v);
}

void realm__iq4_xs_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / REALM_QK_K; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        for (int ib = 0; ib < XS_GROUPS; ib++) {
            const float dl = d * (float)xs_scale(&b[i], ib);
            const uint8_t *qs = b[i].qs + ib * GROUP / 2;
            float *y = dst + i * REALM_QK_K + ib * GROUP;
            for (int j = 0; j < GROUP; j++)
                y[j] = dl * (float)level(qs, j);
        }
    }
}

/* For a block read back from this format (every group exact) the super-scale
 * it was written with: the binary16 d, tried from the canonical
 * smax = -32 d outwards, that makes every sub-scale an integer multiple of it
 * in [-32, 31]. 0 if there is none. */
static float xs_exact_scale(const float scale[XS_GROUPS], float smax)
{
    for (int k = 0; k < 63; k++) {
        const int l_ext = k < 32 ? k - 32 : 63 - k; /* -32 .. -1, then 31 .. 1 */
        const float d = round_fp16(smax / (float)l_ext);
        if (d == 0.0f) continue;
        bool ok = true;
        for (int ib = 0; ib < XS_GROUPS && ok; ib++) {
            const int l = round_clamp(scale[ib] / d, -32, 31);
            ok = d * (float)l == scale[ib];
        }
        if (ok) return d;
    }
    return 0.0f;
}

static void xs_quantize_block(const float *x, realm_block_iq4_xs *b)
{
    float scale[XS_GROUPS];
    uint8_t idx[GROUP];
    bool all_exact = true;
    for (int ib = 0; ib < XS_GROUPS; ib++) {
        bool exact;
        scale[ib] = search_group_scale(x + ib * GROUP, false, idx, &exact);
        all_exact = all_exact && exact;
    }

    /* The largest sub-scale maps to ls - 32 = -32, the end of the 6-bit range
     * without a positive twin. A super-scale below binary16's smallest
     * subnormal would zero the whole block; keep the smallest one instead and
     * let the ls search below decide whether that beats zero. */
    const float smax = signed_absmax(scale, XS_GROUPS);
    float d = all_exact && smax != 0.0f ? xs_exact_scale(scale, smax) : 0.0f;
    if (d == 0.0f) d = round_fp16(smax / -32.0f);
    if (d == 0.0f && smax != 0.0f) d = smax > 0.0f ? -FP16_MIN_SUBNORMAL : FP16_MIN_SUBNORMAL;
    b->d = realm_fp32_to_fp16(d);
    b->scales_h = 0;
    memset(b->scales_l, 0, sizeof b->scales_l);

    for (int ib = 0; ib < XS_GROUPS; ib++) {
        const float *xg = x + ib * GROUP;
        const int ideal = d != 0.0f ? round_clamp(scale[ib] / d, -32, 31) : 0;
        /* l = 0 reads the group back as zeros; then ideal, ideal - 1, ideal + 1,
         * ...: on equal error the earlier one stays. */
        int best_l = 0;
        float best_err = group_error(xg, 0.0f, idx);
        for (int s = 0; s <= 2 * LS_RADIUS; s++) {
            const int l = ideal + (s % 2 ? -(s + 1) / 2 : s / 2);
            if (l < -32 || l > 31 || l == 0) continue;
            uint8_t trial[GROUP];
            const float err = group_error(xg, d * (float)l, trial);
            if (err < best_err) {
                best_err = err;
                best_l = l;
                memcpy(idx, trial, GROUP);
            }
        }
        const unsigned ls = (unsigned)(best_l + 32);
        b->scales_l[ib / 2] |= (uint8_t)((ls & 0x0F) << (4 * (ib % 2)));
        b->scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
        pack_nibbles(b->qs + ib * GROUP / 2, idx);
    }
}

void realm__iq4_xs_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_iq4_xs *b = dst;
    for (int64_t i = 0; i < n / REALM_QK_K; i++)
        xs_quantize_block(src + i * REALM_QK_K, &b[i]);
}

float realm__iq4_xs_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_iq4_xs *x = w;
    const realm_block_q8_k *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / REALM_QK_K; i++) {
        /* per group |gsum| <= 32 * 127 * 128; times |ls - 32| <= 32, times 8
         * groups: < 2^28, fits in int32 */
        int32_t isum = 0;
        for (int ib = 0; ib < XS_GROUPS; ib++) {
            const uint8_t *qs = x[i].qs + ib * GROUP / 2;
            const int8_t *q8 = y[i].qs + ib * GROUP;
            int32_t gsum = 0;
            for (int j = 0; j < GROUP; j++)
                gsum += level(qs, j) * q8[j];
            isum += xs_scale(&x[i], ib) * gsum;
        }
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * y[i].d);
    }
    return sum;
}
