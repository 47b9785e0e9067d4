/*
 * quant/kquants.c — dequantization and dot products of the K-quant formats
 * (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the activation format Q8_K).
 * The quantizers (from_float) of Q2_K..Q6_K live in kquants_quantize.c.
 *
 * Every K-quant block holds 256 elements (a "super-block") split into
 * sub-blocks that each have a small integer scale (and min), which are in turn
 * scaled by one or two fp16 super-block factors. Element e (0..255) of a block
 * is stored as follows; these are facts of the GGUF format, checked bit for
 * bit against gguf-py's dequantize_blocks.
 *
 * Q2_K (84 B): sub-block j = e/16 (16 of them), q in 0..3.
 *   q  = (qs[32*(e/128) + e%32] >> 2*((e/32)%4)) & 3
 *   scales[j]: low nibble sc, high nibble m (both 4-bit unsigned)
 *   x  = (d*sc)*q - (dmin*m)
 * Q3_K (110 B): sub-block j = e/16, q in -4..3.
 *   lo = (qs[32*(e/128) + e%32] >> 2*((e/32)%4)) & 3   (as Q2_K)
 *   hi = (hmask[e%32] >> (e/32)) & 1;  q = lo - (hi ? 0 : 4)
 *   sc (6-bit, stored +32): low 4 bits in nibble j%8 of scales[0..7] (low
 *   nibbles for j<8, high nibbles for j>=8), high 2 bits at bit 2*(j/4) of
 *   scales[8 + j%4];  x = (d*(sc-32))*q
 * Q4_K (144 B): sub-block j = e/32 (8 of them), q in 0..15.
 *   q  = (qs[32*(e/64) + e%32] >> 4*((e/32)%2)) & 15
 *   6-bit sc/m in 12 bytes: for j<4 sc = s[j]&63, m = s[j+4]&63; for j>=4 the
 *   low 4 bits are the nibbles of s[j+4] (sc low, m high) and the high 2 bits
 *   are the top two bits of s[j-4] (sc) and s[j] (m).
 *   x  = (d*sc)*q - (dmin*m)
 * Q5_K (176 B): as Q4_K plus a fifth bit: q |= ((qh[e%32] >> (e/32)) & 1) << 4.
 * Q6_K (210 B): sub-block j = e/16, q in -32..31, int8 scales.
 *   lo = (ql[64*(e/128) + e%64] >> 4*((e%128)/64)) & 15
 *   hi = (qh[32*(e/128) + e%32] >> 2*((e%128)/32)) & 3
 *   x  = (d*scales[j])*((lo | hi<<4) - 32)
 * Q8_K (292 B): float d, x = d*qs[e]; bsums[j] = sum of qs[16j..16j+15].
 *
 * The float operations and their order are those of gguf-py (the build uses
 * -ffp-contract=off), so to_float is bit-exact with it.
 *
 * Each format's layout is decoded in exactly one place, its unpack function,
 * into plain int8 quants and integer scales; to_float and vec_dot both work
 * from that, so they cannot disagree about the layout.
 *
 * vec_dot pairs every format with Q8_K activations: within a block all
 * products are summed in integers (the mins through Q8_K's bsums), and blocks
 * are combined in float.
 */
#include <math.h>
#include <stdint.h>

#include "quant/blocks.h"
#include "quant/ref.h"

enum { QK = REALM_QK_K };

/* Element e's 2-bit field in the Q2_K/Q3_K qs layout. */
static inline int crumb(const uint8_t *qs, int e)
{
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
}

/* Q4_K/Q5_K: 6-bit scale and min of sub-block j from the 12 packed bytes. */
static void unpack_scale_min_k4(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* ---- unpack: one block -> int8 quants q[256] + integer scales ---- */

static void q2_k_unpack(const realm_block_q2_k *b, int8_t q[QK], int sc[16], int m[16])
{
    for (int e = 0; e < QK; e++)
        q[e] = (int8_t)crumb(b->qs, e);
    for (int j = 0; j < 16; j++) {
        sc[j] = b->scales[j] & 15;
        m[j] = b->scales[j] >> 4;
    }
}

static void q3_k_unpack(const realm_block_q3_k *b, int8_t q[QK], int sc[16])
{
    for (int e = 0; e < QK; e++) {
        int hi = (b->hmask[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(crumb(b->qs, e) - (hi ? 0 : 4));
    }
    for (int j = 0; j < 16; j++) {
        int lo = (b->scales[j % 8] >> (4 * (j / 8))) & 15;
        int hi = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (lo | (hi << 4)) - 32;
    }
}

static void q4_k_unpack(const realm_block_q4_k *b, int8_t q[QK], int sc[8], int m[8])
{
    for (int e = 0; e < QK; e++)
        q[e] = (int8_t)((b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15);
    for (int j = 0; j < 8; j++)
        unpack_scale_min_k4(b->scales, j, &sc[j], &m[j]);
}

static void q5_k_unpack(const realm_block_q5_k *b, int8_t q[QK], int sc[8], int m[8])
{
    for (int e = 0; e < QK; e++) {
        int lo = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15;
        int hi = (b->qh[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(lo | (hi << 4));
    }
    for (int j = 0; j < 8; j++)
        unpack_scale_min_k4(b->scales, j, &sc[j], &m[j]);
}

static void q6_k_unpack(const realm_block_q6_k *b, int8_t q[QK], int sc[16])
{
    for (int e = 0; e < QK; e++) {
        int r = e % 128;
        int lo = (b->ql[64 * (e / 128) + r % 64] >> (4 * (r / 64))) & 15;
        int hi = (b->qh[32 * (e / 128) + r % 32] >> (2 * (r / 32))) & 3;
        q[e] = (int8_t)((lo | (hi << 4)) - 32);
    }
    for (int j = 0; j < 16; j++)
        sc[j] = b->scales[j];
}

/* ---- to_float ---- */

/* x = (d*sc)*q - (dmin*m) over n_sub sub-blocks of QK/n_sub elements: the
 * operation order of gguf-py, so the result is bit-exact with it. */
static void affine_to_float(float d, float dmin, const int8_t *q, const int *sc, const int *m,
                            int n_sub, float *y)
{
    int len = QK / n_sub;
    for (int j = 0; j < n_sub; j++) {
        float dl = d * (float)sc[j];
        float ml = dmin * (float)m[j];
        for (int l = 0; l < len; l++)
            y[j * len + l] = dl * (float)q[j * len + l] - ml;
    }
}

/* x = (d*sc)*q for 16 sub-blocks of 16 (Q3_K, Q6_K). */
static void scaled_to_float(float d, const int8_t *q, const int *sc, float *y)
{
    for (int j = 0; j < 16; j++) {
        float dl = d * (float)sc[j];
        for (int l = 0; l < 16; l++)
            y[j * 16 + l] = dl * (float)q[j * 16 + l];
    }
}

void realm__q2_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q2_k *b = src;
    int8_t q[QK];
    int sc[16], m[16];
    for (int64_t i = 0; i < n / QK; i++) {
        q2_k_unpack(&b[i], q, sc, m);
        affine_to_float(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m, 16,
                        dst + i * QK);
    }
}

void realm__q3_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q3_k *b = src;
    int8_t q[QK];
    int sc[16];
    for (int64_t i = 0; i < n / QK; i++) {
        q3_k_unpack(&b[i], q, sc);
        scaled_to_float(realm_fp16_to_fp32(b[i].d), q, sc, dst + i * QK);
    }
}

void realm__q4_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q4_k *b = src;
    int8_t q[QK];
    int sc[8], m[8];
    for (int64_t i = 0; i < n / QK; i++) {
        q4_k_unpack(&b[i], q, sc, m);
        affine_to_float(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m, 8,
                        dst + i * QK);
    }
}

void realm__q5_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q5_k *b = src;
    int8_t q[QK];
    int sc[8], m[8];
    for (int64_t i = 0; i < n / QK; i++) {
        q5_k_unpack(&b[i], q, sc, m);
        affine_to_float(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m, 8,
                        dst + i * QK);
    }
}

void realm__q6_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q6_k *b = src;
    int8_t q[QK];
    int sc[16];
    for (int64_t i = 0; i < n / QK; i++) {
        q6_k_unpack(&b[i], q, sc);
        scaled_to_float(realm_fp16_to_fp32(b[i].d), q, sc, dst + i * QK);
    }
}

void realm__q8_k_to_float(const void *src, float *dst, int64_t n)
{
    const realm_block_q8_k *b = src;
    for (int64_t i = 0; i < n / QK; i++)
        for (int e = 0; e < QK; e++)
            dst[i * QK + e] = b[i].d * (float)b[i].qs[e];
}

/* ---- Q8_K quantization (activations) ---- */

/* Inputs are clamped to ±2^126 (NaN read as 0, ±inf saturating): far beyond
 * any activation, and it keeps d*127 finite, so dequantized values are too. */
static inline float q8_k_input(float v)
{
    const float limit = 0x1p126f;
    return isnan(v) ? 0.0f : v > limit ? limit : v < -limit ? -limit : v;
}

/* d = amax/127 and q = round(x/d) in -127..127: symmetric, so no -128 and
 * |q*q'| fits the integer sums of every vec_dot. */
void realm__q8_k_from_float(const float *src, void *dst, int64_t n)
{
    realm_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        const float *x = src + i * QK;
        float amax = 0.0f;
        for (int e = 0; e < QK; e++) amax = fmaxf(amax, fabsf(q8_k_input(x[e])));
        b[i].d = amax / 127.0f;
        /* in double: 1/d overflows float when amax is a tiny subnormal */
        double id = b[i].d > 0.0f ? 1.0 / b[i].d : 0.0;
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                double v = q8_k_input(x[16 * j + l]) * id;
                int q = (int)lrint(v > 127.0 ? 127.0 : v < -127.0 ? -127.0 : v);
                b[i].qs[16 * j + l] = (int8_t)q;
                sum += q;
            }
            b[i].bsums[j] = (int16_t)sum;
        }
    }
}

/* ---- vec_dot (weights · Q8_K) ---- */

/* Integer dot of len weight quants with activation quants. */
static inline int32_t idot(const int8_t *q, const int8_t *a, int len)
{
    int32_t s = 0;
    for (int l = 0; l < len; l++)
        s += (int32_t)q[l] * (int32_t)a[l];
    return s;
}

/* Sum of the activations of a sub-block of len elements starting at element
 * 16*k, from bsums (so the min term costs no pass over the quants). */
static inline int32_t bsum(const realm_block_q8_k *a, int k, int len)
{
    int32_t s = 0;
    for (int t = 0; t < len / 16; t++)
        s += a->bsums[k + t];
    return s;
}

/* Σ (d*sc*q - dmin*m)*da*aq = da*(d*Σ sc*Σq*aq - dmin*Σ m*Σaq) for one block. */
static float affine_block_dot(float d, float dmin, const int8_t *q, const int *sc, const int *m,
                              int n_sub, const realm_block_q8_k *a)
{
    int len = QK / n_sub;
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < n_sub; j++) {
        isum += sc[j] * idot(q + j * len, a->qs + j * len, len);
        msum += m[j] * bsum(a, j * len / 16, len);
    }
    return a->d * (d * (float)isum - dmin * (float)msum);
}

/* Σ d*sc*q*da*aq = d*da*Σ sc*Σq*aq for 16 sub-blocks of 16. */
static float scaled_block_dot(float d, const int8_t *q, const int *sc, const realm_block_q8_k *a)
{
    int32_t isum = 0;
    for (int j = 0; j < 16; j++)
        isum += sc[j] * idot(q + 16 * j, a->qs + 16 * j, 16);
    return a->d * d * (float)isum;
}

float realm__q2_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q2_k *b = w;
    const realm_block_q8_k *y = a;
    int8_t q[QK];
    int sc[16], m[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q2_k_unpack(&b[i], q, sc, m);
        sum += affine_block_dot(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m,
                                16, &y[i]);
    }
    return sum;
}

float realm__q3_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q3_k *b = w;
    const realm_block_q8_k *y = a;
    int8_t q[QK];
    int sc[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q3_k_unpack(&b[i], q, sc);
        sum += scaled_block_dot(realm_fp16_to_fp32(b[i].d), q, sc, &y[i]);
    }
    return sum;
}

float realm__q4_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q4_k *b = w;
    const realm_block_q8_k *y = a;
    int8_t q[QK];
    int sc[8], m[8];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q4_k_unpack(&b[i], q, sc, m);
        sum += affine_block_dot(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m,
                                8, &y[i]);
    }
    return sum;
}

float realm__q5_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q5_k *b = w;
    const realm_block_q8_k *y = a;
    int8_t q[QK];
    int sc[8], m[8];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q5_k_unpack(&b[i], q, sc, m);
        sum += affine_block_dot(realm_fp16_to_fp32(b[i].d), realm_fp16_to_fp32(b[i].dmin), q, sc, m,
                                8, &y[i]);
    }
    return sum;
}

float realm__q6_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q6_k *b = w;
    const realm_block_q8_k *y = a;
    int8_t q[QK];
    int sc[16];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++) {
        q6_k_unpack(&b[i], q, sc);
        sum += scaled_block_dot(realm_fp16_to_fp32(b[i].d), q, sc, &y[i]);
    }
    return sum;
}

float realm__q8_k_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_block_q8_k *b = w;
    const realm_block_q8_k *y = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK; i++)
        sum += b[i].d * y[i].d * (float)idot(b[i].qs, y[i].qs, QK);
    return sum;
}
