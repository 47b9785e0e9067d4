/*
 * quant/kquants_quantize.c — quantizers (from_float) for Q2_K..Q6_K.
 * Block layouts and element order are documented in kquants.c; the pack
 * functions here are the exact inverses of its unpack functions.
 *
 * Two families:
 *   affine (Q2_K, Q4_K, Q5_K): x ≈ (d*sc_j)*q - (dmin*m_j), q in 0..qmax,
 *     sc_j, m_j unsigned (4 or 6 bits), d, dmin fp16;
 *   signed (Q3_K, Q6_K):        x ≈ (d*sc_j)*q, q in -nq..nq-1,
 *     sc_j signed (6 or 8 bits), d fp16.
 *
 * Each super-block is quantized in three steps, all minimizing the plain
 * squared error (what a dot product with unknown activations sees):
 *   1. every sub-block gets a float scale (and min) by a search: candidate
 *      scales around the one that maps the extreme value onto the end of the
 *      quant range; for each, round the elements and solve the least-squares
 *      scale (and min) for those quants; keep the best and polish it with a
 *      couple of round/refit (Lloyd) passes;
 *   2. the sub-block scales (and mins) are quantized against one fp16 factor
 *      d (and dmin), chosen among candidates by the error of the scales
 *      weighted by how much each one moves its elements;
 *   3. with the stored factors fixed, each sub-block tries its integer scale
 *      and min and their neighbours, re-rounding the elements against the
 *      exact dequantized values, and keeps the lowest error; then d (and
 *      dmin) are refit by least squares over the whole super-block and kept
 *      if that lowers the error.
 * Step 3 is what lifts the result clearly above "fit, then round the scales":
 * it makes the final rounding see the scales as they are actually stored.
 *
 * Robustness: inputs are sanitized first (NaN -> 0, everything clamped to
 * ±INPUT_LIMIT, which covers ±inf), every float->int conversion is clamped
 * first, and fp16 factors saturate at 65504 instead of becoming inf; values
 * beyond what a format can represent saturate. Blocks too small for the
 * normal fp16 range still get the smallest subnormal factors. No allocation:
 * all scratch is on the stack (about 2 KiB).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/ref.h"

enum { QK = REALM_QK_K };

/* Search sizes, chosen by measurement on N(0,1) data: more candidates or
 * passes change the RMSE by < 0.5% while costing speed. */
enum {
    FIT_STEPS = 8,   /* step 1 candidates (plus one) per sub-block */
    LLOYD_ITERS = 2, /* step 1 polish passes */
    SCALE_STEPS = 8, /* step 2 candidates (plus one) per super-block factor */
};

#define FP16_MAX 65504.0f

/* Beyond the largest magnitude any K format can store (65504 * 128 * 32 ≈ 2.7e8
 * for Q6_K), so clamping to it changes no result, while it keeps every
 * product and square far from float overflow. */
#define INPUT_LIMIT 1073741824.0f

/* Round v to the nearest integer in [lo, hi] (|lo|, |hi| < 2^22), as a
 * float; NaN gives lo. Adding 1.5*2^23 leaves a float whose unit is 1, so the
 * addition itself rounds to nearest (ties to even) and subtracting it back is
 * exact: branch-free and inline, where lrintf is a library call. */
static inline float round_clampf(float v, float lo, float hi)
{
    v = v > lo ? v : lo; /* NaN compares false: lo */
    v = v < hi ? v : hi;
    return (v + 12582912.0f) - 12582912.0f;
}

/* As round_clampf, as an int; defined for any float input. */
static inline int round_clamp(float v, int lo, int hi)
{
    return (int)round_clampf(v, (float)lo, (float)hi);
}

/* The per-element loops keep LANES independent partial sums: a float sum may
 * not be reassociated by the compiler, so one accumulator would make every
 * addition wait for the previous one. Sub-blocks are 16 or 32 elements. */
enum { LANES = 8 };

static inline float lane_sum(const float *a)
{
    float s = 0;
    for (int k = 0; k < LANES; k++)
        s += a[k];
    return s;
}

/* Copy a super-block, replacing NaN by 0 and clamping to ±INPUT_LIMIT. */
static void sanitize(const float *src, float *x)
{
    for (int i = 0; i < QK; i++) {
        float v = src[i];
        x[i] = isnan(v)           ? 0.0f
               : v > INPUT_LIMIT  ? INPUT_LIMIT
               : v < -INPUT_LIMIT ? -INPUT_LIMIT
                                  : v;
    }
}

/* fp16 bits of a scale factor, saturating instead of overflowing to inf. */
static realm_fp16 fp16_sat(float v)
{
    if (v > FP16_MAX) v = FP16_MAX;
    if (v < -FP16_MAX) v = -FP16_MAX;
    return realm_fp32_to_fp16(v);
}

/* ---- step 1, affine: x ≈ s*L + b with b <= 0 (the formats store the min as
 * a non-negative value that is subtracted) ---- */

/* Least-squares (s, b) for given sums over n elements: sx = Σx, sxx = Σx²,
 * sl = ΣL, sll = ΣL², slx = ΣLx. Returns the squared error. */
static double lsq_affine(int n, double sx, double sxx, double sl, double sll, double slx, float *s,
                         float *b)
{
    double ds = 0, db = 0, det = n * sll - sl * sl;
    if (det > 0) {
        ds = (n * slx - sl * sx) / det;
        db = (sll * sx - sl * slx) / det;
    }
    if (det <= 0 || db > 0) { /* constrained optimum on b = 0 */
        db = 0;
        ds = sll > 0 ? slx / sll : 0;
    }
    if (ds <= 0) { /* quants carry no signal: best constant */
        ds = 0;
        db = sx < 0 ? sx / n : 0;
    }
    *s = (float)ds;
    *b = (float)db;
    /* Σ(sL+b-x)² expanded; double keeps it exact enough to rank candidates */
    double err = sxx + ds * ds * sll + db * db * n + 2 * ds * db * sl - 2 * ds * slx - 2 * db * sx;
    return err > 0 ? err : 0;
}

/* Round x onto L = clamp(round((x - off) * iscale)) and return the least
 * squares fit for those quants (one fused pass). */
static double round_fit_affine(int n, const float *x, double sx, double sxx, float off,
                               float iscale, int qmax, uint8_t *L, float *s, float *b)
{
    float sl[LANES] = {0}, sll[LANES] = {0}, slx[LANES] = {0};
    for (int i0 = 0; i0 < n; i0 += LANES)
        for (int k = 0; k < LANES; k++) {
            int i = i0 + k;
            float l = round_clampf((x[i] - off) * iscale, 0.0f, (float)qmax);
            L[i] = (uint8_t)l;
            sl[k] += l;
            sll[k] += l * l;
            slx[k] += l * x[i];
        }
    return lsq_affine(n, sx, sxx, lane_sum(sl), lane_sum(sll), lane_sum(slx), s, b);
}

/* Fit x ≈ s*L - mn (L in 0..qmax, s >= 0, mn >= 0) for one sub-block of n
 * elements; returns s, sets *mn and L. */
static float fit_affine(int n, const float *x, int qmax, uint8_t *L, float *mn)
{
    /* the range always includes 0: the offset b = -mn cannot be positive */
    float lo = 0.0f, hi = 0.0f;
    double sx = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sx += x[i];
        sxx += (double)x[i] * x[i];
    }
    for (int i = 0; i < n; i++)
        L[i] = 0;
    *mn = 0;
    if (!(hi > lo)) return 0; /* all zero */
    uint8_t Lt[32];
    double best = INFINITY;
    float best_s = 0, best_b = 0;
    /* candidates map [lo, hi] onto qmax + t quant steps, t in [-0.5, 1.5]:
     * t > 0 clips the extremes a little to refine the rest. Then Lloyd
     * passes: re-round against the best fit so far, refit. */
    for (int k = 0; k <= FIT_STEPS + LLOYD_ITERS; k++) {
        float off = lo, iscale = ((float)qmax - 0.5f + 2.0f * (float)k / FIT_STEPS) / (hi - lo);
        if (k > FIT_STEPS) {
            if (!(best_s > 0)) break;
            off = best_b;
            iscale = 1.0f / best_s;
        }
        float s, b;
        double err = round_fit_affine(n, x, sx, sxx, off, iscale, qmax, Lt, &s, &b);
        if (err < best) {
            best = err;
            best_s = s;
            best_b = b;
            memcpy(L, Lt, (size_t)n);
        } else if (k > FIT_STEPS) {
            break; /* Lloyd converged */
        }
    }
    *mn = -best_b;
    return best_s;
}

/* ---- step 1, signed: x ≈ s*L ---- */

/* Round x onto L = clamp(round(x * iscale)) in -nq..nq-1; returns Σ x L and
 * sets *sll = Σ L² (one fused pass). */
static float round_dot_signed(int n, const float *x, float iscale, int nq, int8_t *L, float *sll)
{
    float axl[LANES] = {0}, all[LANES] = {0};
    for (int i0 = 0; i0 < n; i0 += LANES)
        for (int k = 0; k < LANES; k++) {
            int i = i0 + k;
            float l = round_clampf(x[i] * iscale, (float)-nq, (float)(nq - 1));
            L[i] = (int8_t)l;
            axl[k] += l * x[i];
            all[k] += l * l;
        }
    *sll = lane_sum(all);
    return lane_sum(axl);
}

/* Fit x ≈ s*L (L in -nq..nq-1) for one sub-block; returns s (either sign:
 * the element of largest magnitude goes to the wider, negative end). For
 * given L the best s is Σxl/Σll, leaving the error Σx² - (Σxl)²/Σll, so the
 * search maximizes (Σxl)²/Σll. */
static float fit_signed(int n, const float *x, int nq, int8_t *L)
{
    float xm = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(xm)) xm = x[i];
    for (int i = 0; i < n; i++)
        L[i] = 0;
    if (xm == 0.0f) return 0;
    int8_t Lt[16];
    double best_num = -1, best_den = 1;
    float s = 0;
    for (int k = 0; k <= FIT_STEPS + LLOYD_ITERS; k++) {
        /* candidates map xm onto -(nq + t), t in [-0.5, 0.5]; then Lloyd */
        float iscale = k <= FIT_STEPS ? -((float)nq - 0.5f + (float)k / FIT_STEPS) / xm : 1.0f / s;
        float sll;
        double sxl = round_dot_signed(n, x, iscale, nq, Lt, &sll);
        if (sll > 0 && sxl * sxl * best_den > best_num * sll) {
            best_num = sxl * sxl;
            best_den = sll;
            s = (float)(sxl / sll);
            memcpy(L, Lt, (size_t)n);
        } else if (k > FIT_STEPS) {
            break; /* Lloyd converged */
        }
    }
    return s;
}

/* ---- step 2: quantize n sub-block scales v[j] to integers in [lo, hi]
 * against one fp16 factor. The value of largest magnitude goes to the end of
 * the range it fits best (hi when lo == 0, else lo: the wider, negative end).
 * wt[j] is how much an error in v[j] costs (Σ L² of that sub-block). Returns
 * the factor's bits and sets q[j]. ---- */
static realm_fp16 quantize_scales(int n, const float *v, const float *wt, int lo, int hi, int *q)
{
    float vm = 0;
    for (int j = 0; j < n; j++) {
        q[j] = 0;
        if (fabsf(v[j]) > fabsf(vm)) vm = v[j];
    }
    if (vm == 0) return 0;
    float end = lo < 0 ? (float)lo : (float)hi, dir = lo < 0 ? -1.0f : 1.0f;
    realm_fp16 sign = (vm > 0) == (dir > 0) ? 0 : 0x8000;
    realm_fp16 best_h = 0;
    double best = INFINITY;
    /* candidates put vm at end ∓ [0.5, -0.5], then the four smallest
     * subnormals, which are the only usable factors for tiny blocks */
    for (int k = 0; k <= SCALE_STEPS + 4; k++) {
        realm_fp16 h = k <= SCALE_STEPS
                           ? fp16_sat(vm / (end - dir * (0.5f - (float)k / SCALE_STEPS)))
                           : (realm_fp16)(sign | (k - SCALE_STEPS));
        float d = realm_fp16_to_fp32(h);
        if (d == 0) continue;
        double err = 0;
        for (int j = 0; j < n; j++) {
            double e = (double)d * round_clamp(v[j] / d, lo, hi) - v[j];
            err += wt[j] * e * e;
        }
        if (err < best) {
            best = err;
            best_h = h;
        }
    }
    float d = realm_fp16_to_fp32(best_h);
    for (int j = 0; j < n && d != 0; j++)
        q[j] = round_clamp(v[j] / d, lo, hi);
    return best_h;
}

/* ---- step 3 and the whole super-block, affine family ---- */

typedef struct {
    int n_sub; /* sub-blocks per super-block */
    int qmax;  /* element quants 0..qmax */
    int scmax; /* sub-block scales and mins 0..scmax */
} affine_fmt;

/* The quantized form of an affine super-block, before packing. */
typedef struct {
    realm_fp16 d, dmin;
    int sc[16], m[16];
    uint8_t L[QK];
} affine_q;

/* Re-round n elements against the stored values dl = d*sc, ml = dmin*m (as
 * dequantization computes them); returns the squared error. */
static double round_affine(int n, const float *x, float dl, float ml, int qmax, uint8_t *L)
{
    float idl = dl > 0 ? 1.0f / dl : 0.0f, err[LANES] = {0};
    for (int i0 = 0; i0 < n; i0 += LANES)
        for (int k = 0; k < LANES; k++) {
            int i = i0 + k;
            float l = round_clampf((x[i] + ml) * idl, 0.0f, (float)qmax);
            L[i] = (uint8_t)l;
            float e = dl * l - ml - x[i];
            err[k] += e * e;
        }
    return lane_sum(err);
}

/* Step 3 for one sub-block: re-round against the stored scale and min and,
 * with neighbours, also try each one ±1, a coordinate at a time (the scale
 * first: the error depends on it more). Returns the error. */
static double refine_affine_sub(const affine_fmt *f, int len, const float *x, float d, float dmin,
                                int neighbours, int *sc, int *m, uint8_t *L)
{
    uint8_t Lt[32];
    int sc0 = *sc, m0 = *m;
    double best = round_affine(len, x, d * (float)sc0, dmin * (float)m0, f->qmax, L);
    for (int step = 0; step < 4 && neighbours; step++) {
        int a = step < 2 ? sc0 + (step ? 1 : -1) : *sc;
        int c = step < 2 ? m0 : m0 + (step == 3 ? 1 : -1);
        if (step >= 2 && dmin == 0) break; /* the min has no effect */
        if (a < 0 || a > f->scmax || c < 0 || c > f->scmax) continue;
        double err = round_affine(len, x, d * (float)a, dmin * (float)c, f->qmax, Lt);
        if (err < best) {
            best = err;
            *sc = a;
            *m = c;
            memcpy(L, Lt, (size_t)len);
        }
    }
    return best;
}

static double refine_affine(const affine_fmt *f, const float *x, int neighbours, affine_q *q)
{
    const int len = QK / f->n_sub;
    float d = realm_fp16_to_fp32(q->d), dmin = realm_fp16_to_fp32(q->dmin);
    double err = 0;
    for (int j = 0; j < f->n_sub; j++)
        err += refine_affine_sub(f, len, x + j * len, d, dmin, neighbours, &q->sc[j], &q->m[j],
                                 q->L + j * len);
    return err;
}

static void quantize_affine(const affine_fmt *f, const float *x, affine_q *out)
{
    const int len = QK / f->n_sub;
    float s[16], mn[16], ws[16], wm[16];
    for (int j = 0; j < f->n_sub; j++) {
        s[j] = fit_affine(len, x + j * len, f->qmax, out->L + j * len, &mn[j]);
        /* an error e in the scale moves the elements by e*L, in the min by e */
        float sl2 = 0;
        for (int i = 0; i < len; i++)
            sl2 += (float)(out->L[j * len + i] * out->L[j * len + i]);
        ws[j] = sl2;
        wm[j] = (float)len;
    }
    out->d = quantize_scales(f->n_sub, s, ws, 0, f->scmax, out->sc);
    out->dmin = quantize_scales(f->n_sub, mn, wm, 0, f->scmax, out->m);
    double err = refine_affine(f, x, 1, out);

    /* refit (d, dmin) by least squares for the chosen integers:
     * x ≈ d*(sc*L) - dmin*m */
    double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
    for (int i = 0; i < QK; i++) {
        double a = (double)out->sc[i / len] * out->L[i], b = -(double)out->m[i / len];
        aa += a * a;
        ab += a * b;
        bb += b * b;
        ax += a * x[i];
        bx += b * x[i];
    }
    double det = aa * bb - ab * ab, nd, ndmin;
    if (det > 0) {
        nd = (ax * bb - bx * ab) / det;
        ndmin = (aa * bx - ab * ax) / det;
    } else { /* no mins in use: d alone */
        nd = aa > 0 ? ax / aa : 0;
        ndmin = realm_fp16_to_fp32(out->dmin);
    }
    if (nd > 0 && ndmin >= 0) {
        affine_q t = *out;
        t.d = fp16_sat((float)nd);
        t.dmin = fp16_sat((float)ndmin);
        if (refine_affine(f, x, 0, &t) < err) *out = t;
    }
}

/* ---- step 3 and the whole super-block, signed family (16 sub-blocks of 16) ---- */

typedef struct {
    int nq;  /* element quants -nq..nq-1 */
    int scn; /* sub-block scales -scn..scn-1 */
} signed_fmt;

typedef struct {
    realm_fp16 d;
    int sc[16];
    int8_t L[QK];
} signed_q;

static double round_signed(const float *x, float dl, int nq, int8_t *L)
{
    float idl = dl != 0 ? 1.0f / dl : 0.0f, err[LANES] = {0};
    for (int i0 = 0; i0 < 16; i0 += LANES)
        for (int k = 0; k < LANES; k++) {
            int i = i0 + k;
            float l = round_clampf(x[i] * idl, (float)-nq, (float)(nq - 1));
            L[i] = (int8_t)l;
            float e = dl * l - x[i];
            err[k] += e * e;
        }
    return lane_sum(err);
}

static double refine_signed(const signed_fmt *f, const float *x, int neighbours, signed_q *q)
{
    float d = realm_fp16_to_fp32(q->d);
    double total = 0;
    for (int j = 0; j < 16; j++) {
        int8_t Lt[16];
        int sc0 = q->sc[j];
        double best = round_signed(x + 16 * j, d * (float)sc0, f->nq, q->L + 16 * j);
        for (int a = sc0 - 1; a <= sc0 + 1 && neighbours; a += 2) {
            if (a < -f->scn || a > f->scn - 1) continue;
            double err = round_signed(x + 16 * j, d * (float)a, f->nq, Lt);
            if (err < best) {
                best = err;
                q->sc[j] = a;
                memcpy(q->L + 16 * j, Lt, 16);
            }
        }
        total += best;
    }
    return total;
}

static void quantize_signed(const signed_fmt *f, const float *x, signed_q *out)
{
    float s[16], ws[16];
    for (int j = 0; j < 16; j++) {
        s[j] = fit_signed(16, x + 16 * j, f->nq, out->L + 16 * j);
        float sl2 = 0;
        for (int i = 0; i < 16; i++)
            sl2 += (float)(out->L[16 * j + i] * out->L[16 * j + i]);
        ws[j] = sl2;
    }
    out->d = quantize_scales(16, s, ws, -f->scn, f->scn - 1, out->sc);
    double err = refine_signed(f, x, 1, out);

    /* refit d by least squares: x ≈ d*(sc*L) */
    double aa = 0, ax = 0;
    for (int i = 0; i < QK; i++) {
        double a = (double)out->sc[i / 16] * out->L[i];
        aa += a * a;
        ax += a * x[i];
    }
    if (aa > 0) {
        signed_q t = *out;
        t.d = fp16_sat((float)(ax / aa));
        if (refine_signed(f, x, 0, &t) < err) *out = t;
    }
}

/* ---- packing: inverses of the unpack functions in kquants.c ---- */

/* Element e's 2-bit field in the Q2_K/Q3_K qs layout (qs zeroed first). */
static void put_crumb(uint8_t *qs, int e, int v)
{
    qs[32 * (e / 128) + e % 32] |= (uint8_t)((v & 3) << (2 * ((e / 32) % 4)));
}

/* Q4_K/Q5_K 12-byte packing of eight 6-bit scales and mins. */
static void pack_scale_min_k4(const int *sc, const int *m, uint8_t *s)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/* Q4_K/Q5_K low nibbles: element e in qs[32*(e/64) + e%32], nibble (e/32)%2. */
static void pack_nibbles_k4(const uint8_t *L, uint8_t *qs)
{
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)((L[64 * c + l] & 15) | ((L[64 * c + 32 + l] & 15) << 4));
}

void realm__q2_k_from_float(const float *src, void *dst, int64_t n)
{
    static const affine_fmt f = {.n_sub = 16, .qmax = 3, .scmax = 15};
    realm_block_q2_k *b = dst;
    float x[QK];
    affine_q q;
    for (int64_t i = 0; i < n / QK; i++) {
        sanitize(src + i * QK, x);
        quantize_affine(&f, x, &q);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = q.d;
        b[i].dmin = q.dmin;
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (uint8_t)(q.sc[j] | (q.m[j] << 4));
        for (int e = 0; e < QK; e++)
            put_crumb(b[i].qs, e, q.L[e]);
    }
}

void realm__q3_k_from_float(const float *src, void *dst, int64_t n)
{
    static const signed_fmt f = {.nq = 4, .scn = 32};
    realm_block_q3_k *b = dst;
    float x[QK];
    signed_q q;
    for (int64_t i = 0; i < n / QK; i++) {
        sanitize(src + i * QK, x);
        quantize_signed(&f, x, &q);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = q.d;
        for (int j = 0; j < 16; j++) {
            int u = q.sc[j] + 32; /* stored biased, 0..63 */
            b[i].scales[j % 8] |= (uint8_t)((u & 15) << (4 * (j / 8)));
            b[i].scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
        }
        for (int e = 0; e < QK; e++) {
            int u = q.L[e] + 4; /* 0..7: bit 2 is the hmask bit */
            put_crumb(b[i].qs, e, u & 3);
            b[i].hmask[e % 32] |= (uint8_t)((u >> 2) << (e / 32));
        }
    }
}

void realm__q4_k_from_float(const float *src, void *dst, int64_t n)
{
    static const affine_fmt f = {.n_sub = 8, .qmax = 15, .scmax = 63};
    realm_block_q4_k *b = dst;
    float x[QK];
    affine_q q;
    for (int64_t i = 0; i < n / QK; i++) {
        sanitize(src + i * QK, x);
        quantize_affine(&f, x, &q);
        b[i].d = q.d;
        b[i].dmin = q.dmin;
        pack_scale_min_k4(q.sc, q.m, b[i].scales);
        pack_nibbles_k4(q.L, b[i].qs);
    }
}

void realm__q5_k_from_float(const float *src, void *dst, int64_t n)
{
    static const affine_fmt f = {.n_sub = 8, .qmax = 31, .scmax = 63};
    realm_block_q5_k *b = dst;
    float x[QK];
    affine_q q;
    for (int64_t i = 0; i < n / QK; i++) {
        sanitize(src + i * QK, x);
        quantize_affine(&f, x, &q);
        b[i].d = q.d;
        b[i].dmin = q.dmin;
        pack_scale_min_k4(q.sc, q.m, b[i].scales);
        pack_nibbles_k4(q.L, b[i].qs);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int e = 0; e < QK; e++)
            b[i].qh[e % 32] |= (uint8_t)((q.L[e] >> 4) << (e / 32));
    }
}

void realm__q6_k_from_float(const float *src, void *dst, int64_t n)
{
    static const signed_fmt f = {.nq = 32, .scn = 128};
    realm_block_q6_k *b = dst;
    float x[QK];
    signed_q q;
    for (int64_t i = 0; i < n / QK; i++) {
        sanitize(src + i * QK, x);
        quantize_signed(&f, x, &q);
        memset(&b[i], 0, sizeof b[i]);
        b[i].d = q.d;
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (int8_t)q.sc[j];
        for (int e = 0; e < QK; e++) {
            int u = q.L[e] + 32, r = e % 128; /* 0..63 */
            b[i].ql[64 * (e / 128) + r % 64] |= (uint8_t)((u & 15) << (4 * (r / 64)));
            b[i].qh[32 * (e / 128) + r % 32] |= (uint8_t)((u >> 4) << (2 * (r / 32)));
        }
    }
}
