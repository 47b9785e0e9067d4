/*
 * quant/legacy.c — reference kernels for GGML's 32-element "legacy" formats.
 *
 * Every block holds 32 elements. Scales are IEEE binary16; multi-byte fields
 * are little-endian. Element j of a block (0..31) lives at:
 *   nibble(j) = j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4   (low halves first)
 *   hbit(j)   = bit j of qh[0..3] read as a little-endian uint32
 *
 *   Q4_0 (18 B)  d | qs[16]          x = d * (nibble - 8)
 *   Q4_1 (20 B)  d | m | qs[16]      x = d * nibble + m
 *   Q5_0 (22 B)  d | qh[4] | qs[16]  x = d * ((nibble | hbit << 4) - 16)
 *   Q5_1 (24 B)  d | m | qh[4] | qs  x = d * (nibble | hbit << 4) + m
 *   Q8_0 (34 B)  d | int8 qs[32]     x = d * qs[j]
 *   Q8_1 (36 B)  d | s | int8 qs[32] x = d * qs[j];  s = d * sum(qs), used by
 *                                    vec_dot for the min term of Q4_1/Q5_1
 *
 * Dequantization is bit-exact with gguf-py: the integer code becomes a float
 * exactly, then one float32 multiply by d, then (for the _1 formats) one
 * float32 add of m — two roundings, never fused (the build uses
 * -ffp-contract=off).
 *
 * Quantizers make the same choices as ggml's reference quantizers, so for
 * finite input in the binary16 range Realm writes the same bytes llama.cpp
 * does: _0 formats map the signed element of largest magnitude to the most
 * negative code (-8 / -16: the end of the range without a positive twin);
 * _1 formats span [min, max]; Q8 uses amax / 127 and roundf. Codes are
 * computed with the unrounded float scale, as ggml does. Differences only
 * where ggml misbehaves: scales beyond binary16 saturate at ±65504 instead of
 * becoming inf (whose products with q = 0 are NaN), a reciprocal scale that
 * overflows is treated as zero, and every float -> int conversion is clamped
 * first so NaN and inf input cannot reach undefined behaviour.
 *
 * vec_dot: integer products within a block (exact), float across blocks.
 */
#include <math.h>
#include <stdbool.h>

#include "quant/blocks.h"
#include "quant/ref.h"

#define QK       32 /* elements per block, the same for all six formats */
#define FP16_MAX 65504.0f

static_assert(REALM_QK4_0 == QK && REALM_QK4_1 == QK && REALM_QK5_0 == QK && REALM_QK5_1 == QK &&
                  REALM_QK8_0 == QK && REALM_QK8_1 == QK,
              "legacy formats share one block length");

/* ---- helpers shared by the six formats ---------------------------------- */

/* Saturate a scale or offset to the binary16 range: finite input must give a
 * finite stored value (an inf scale turns q = 0 into NaN on dequantization). */
static float clamp_fp16_range(float v)
{
    if (v > FP16_MAX) return FP16_MAX;
    if (v < -FP16_MAX) return -FP16_MAX;
    return v;
}

/* 1/d, or 0 when d is 0 or so small that 1/d overflows: all codes then take
 * the zero point and, d rounding to 0 in binary16, the block reads back 0. */
static float inverse_scale(float d)
{
    if (d == 0.0f) return 0.0f;
    float id = 1.0f / d;
    return isfinite(id) ? id : 0.0f;
}

/* trunc(t) clamped to [0, hi]; callers add 0.5 (or zero point + 0.5) first so
 * truncation rounds to nearest, as ggml does. Clamping before the cast keeps
 * the conversion defined for NaN and inf (NaN becomes 0). */
static int trunc_clamp(float t, int hi)
{
    if (!(t >= 0.0f)) return 0;
    if (t >= (float)hi) return hi;
    return (int)t;
}

/* roundf (halves away from zero) clamped to ±127, NaN to 0. */
static int round_clamp127(float v)
{
    if (isnan(v)) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -127.0f) return -127;
    return (int)roundf(v);
}

/* The element of largest magnitude with its sign; the first one on ties, 0
 * for an all-zero block. NaN never compares greater, so it is skipped. */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static uint32_t load_u32le(const uint8_t b[4])
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void store_u32le(uint8_t b[4], uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static int nibble(const uint8_t qs[QK / 2], int j)
{
    return j < QK / 2 ? qs[j] & 0x0F : qs[j - QK / 2] >> 4;
}

static int five_bit(const uint8_t qs[QK / 2], uint32_t qh, int j)
{
    return nibble(qs, j) | (int)((qh >> j) & 1u) << 4;
}

static void pack_nibbles(uint8_t qs[QK / 2], const uint8_t q[QK])
{
    for (int j = 0; j < QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 0x0F) | (q[j + QK / 2] & 0x0F) << 4);
}

static uint32_t pack_high_bits(const uint8_t q[QK])
{
    uint32_t qh = 0;
    for (int j = 0; j < QK; j++)
        qh |= (uint32_t)((q[j] >> 4) & 1u) << j;
    return qh;
}

/* Codes for the symmetric formats (Q4_0: zero = 8, Q5_0: zero = 16): the
 * signed extreme maps to code 0. Returns the scale to store. */
static float quantize_symmetric(const float *x, int zero, uint8_t q[QK])
{
    const float d = clamp_fp16_range(signed_absmax(x) / (float)-zero);
    const float id = inverse_scale(d);
    for (int j = 0; j < QK; j++)
        q[j] = (uint8_t)trunc_clamp(x[j] * id + ((float)zero + 0.5f), 2 * zero - 1);
    return d;
}

/* Codes for the affine formats (Q4_1: hi = 15, Q5_1: hi = 31): code 0 is
 * the block minimum, code hi its maximum. */
static void quantize_affine(const float *x, int hi, uint8_t q[QK], float *d_out, float *m_out)
{
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < QK; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    if (!(min <= max)) min = max = 0.0f; /* every element NaN */
    /* The offset must be storable too; values below a saturated minimum clip to code 0. */
    min = clamp_fp16_range(min);
    const float d = clamp_fp16_range((max - min) / (float)hi);
    const float id = inverse_scale(d);
    for (int j = 0; j < QK; j++)
        q[j] = (uint8_t)trunc_clamp((x[j] - min) * id + 0.5f, hi);
    *d_out = d;
    *m_out = min;
}

/* Codes for Q8_0/Q8_1: d = amax / 127, q = roundf(x / d). Returns d. */
static float quantize_q8(const float *x, int8_t q[QK])
{
    float amax = 0.0f;
    for (int j = 0; j < QK; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]);
    const float d = clamp_fp16_range(amax / 127.0f);
    const float id = inverse_scale(d);
    for (int j = 0; j < QK; j++)
        q[j] = (int8_t)round_clamp127(x[j] * id);
    return d;
}

/* ---- Q4_0 ---------------------------------------------------------------- */

void realm__q4_0_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)(nibble(b[i].qs, j) - 8) * d;
    }
}

void realm__q4_0_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        uint8_t q[QK];
        b[i].d = realm_fp32_to_fp16(quantize_symmetric(src + i * QK, 8, q));
        pack_nibbles(b[i].qs, q);
    }
}

float realm__q4_0_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q4_0 *x = w;
    const realm_block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += (nibble(x[i].qs, j) - 8) * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* ---- Q4_1 ---------------------------------------------------------------- */

void realm__q4_1_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        const float m = realm_fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)nibble(b[i].qs, j) * d + m;
    }
}

void realm__q4_1_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        uint8_t q[QK];
        float d, m;
        quantize_affine(src + i * QK, 15, q, &d, &m);
        b[i].d = realm_fp32_to_fp16(d);
        b[i].m = realm_fp32_to_fp16(m);
        pack_nibbles(b[i].qs, q);
    }
}

/* sum_j (d q_j + m) a_j = d * sum_j q_j a_j + m * sum_j a_j, and Q8_1 carries
 * sum_j a_j precomputed as s. */
float realm__q4_1_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q4_1 *x = w;
    const realm_block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += nibble(x[i].qs, j) * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d)) +
               realm_fp16_to_fp32(x[i].m) * realm_fp16_to_fp32(y[i].s);
    }
    return sum;
}

/* ---- Q5_0 ---------------------------------------------------------------- */

void realm__q5_0_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)(five_bit(b[i].qs, qh, j) - 16) * d;
    }
}

void realm__q5_0_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        uint8_t q[QK];
        b[i].d = realm_fp32_to_fp16(quantize_symmetric(src + i * QK, 16, q));
        store_u32le(b[i].qh, pack_high_bits(q));
        pack_nibbles(b[i].qs, q);
    }
}

float realm__q5_0_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q5_0 *x = w;
    const realm_block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        const uint32_t qh = load_u32le(x[i].qh);
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += (five_bit(x[i].qs, qh, j) - 16) * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* ---- Q5_1 ---------------------------------------------------------------- */

void realm__q5_1_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        const float m = realm_fp16_to_fp32(b[i].m);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)five_bit(b[i].qs, qh, j) * d + m;
    }
}

void realm__q5_1_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        uint8_t q[QK];
        float d, m;
        quantize_affine(src + i * QK, 31, q, &d, &m);
        b[i].d = realm_fp32_to_fp16(d);
        b[i].m = realm_fp32_to_fp16(m);
        store_u32le(b[i].qh, pack_high_bits(q));
        pack_nibbles(b[i].qs, q);
    }
}

/* Same decomposition as Q4_1. */
float realm__q5_1_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q5_1 *x = w;
    const realm_block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        const uint32_t qh = load_u32le(x[i].qh);
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += five_bit(x[i].qs, qh, j) * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d)) +
               realm_fp16_to_fp32(x[i].m) * realm_fp16_to_fp32(y[i].s);
    }
    return sum;
}

/* ---- Q8_0 ---------------------------------------------------------------- */

void realm__q8_0_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)b[i].qs[j] * d;
    }
}

void realm__q8_0_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK; i++)
        b[i].d = realm_fp32_to_fp16(quantize_q8(src + i * QK, b[i].qs));
}

float realm__q8_0_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q8_0 *x = w;
    const realm_block_q8_0 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += x[i].qs[j] * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* ---- Q8_1 ---------------------------------------------------------------- */

void realm__q8_1_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = realm_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK; j++)
            dst[i * QK + j] = (float)b[i].qs[j] * d;
    }
}

/* s = sum(q) * d with the unrounded d, as ggml computes it; s is rounded to
 * binary16 once and overflows to inf when |d * sum(q)| > 65504 — a limit of
 * the format that vec_dot then reports as inf rather than hiding. */
void realm__q8_1_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = quantize_q8(src + i * QK, b[i].qs);
        int32_t qsum = 0;
        for (int j = 0; j < QK; j++)
            qsum += b[i].qs[j];
        b[i].d = realm_fp32_to_fp16(d);
        b[i].s = realm_fp32_to_fp16((float)qsum * d);
    }
}

float realm__q8_1_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q8_1 *x = w;
    const realm_block_q8_1 *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QK; j++)
            isum += x[i].qs[j] * y[i].qs[j];
        sum += (float)isum * (realm_fp16_to_fp32(x[i].d) * realm_fp16_to_fp32(y[i].d));
    }
    return sum;
}
