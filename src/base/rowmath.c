/* base/rowmath.c — see rowmath.h. */
#include "base/rowmath.h"

#include <math.h>
#include <stdint.h>

int32_t realm_argmax_f32(const float *x, int32_t n)
{
    /* The maximum in eight independent lanes (no branch carried from one
     * element to the next, so it vectorizes; NaN fails every comparison and
     * drops out), then the first index holding it. */
    enum { L = 8 };
    float m[L];
    for (int k = 0; k < L; k++)
        m[k] = -INFINITY;
    int32_t i = 0;
    for (; i + L <= n; i += L)
        for (int k = 0; k < L; k++)
            m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    float best = m[0];
    for (int k = 1; k < L; k++)
        best = m[k] > best ? m[k] : best;
    if (!(best > -INFINITY)) return -1;
    i = 0;
    while (x[i] != best)
        i++;
    return i;
}

/* e^x for x <= 0 (-inf included): within 1 ulp of the correctly rounded
 * value for x >= -87 (tests/base/test_rowmath.c), 0 below. glibc's expf, a
 * call, took 40% of a sampler's draw over 128k tokens; this has no
 * call and no branch (bit masks, not selects, so the compiler cannot split
 * the loop at a constant case), so the softmax loop vectorizes; and it gives
 * the same bits on every machine (libm picks an FMA or a plain variant at
 * run time). x = k ln2 + r with |r| <= ln2 / 2 (k rounded by the 1.5 * 2^23
 * shifter; ln2 in two parts, so k ln2 is exact), e^r by its Taylor
 * polynomial to r^7 (truncation error < 1e-8), 2^k from exponent bits. */
static inline float exp_nonpos(float x)
{
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f,
                ln2_lo = 1.42860682030941723e-6f, shifter = 12582912.0f;
    union {
        float f;
        uint32_t u;
    } xb = {.f = x};
    const uint32_t below = 0u - (uint32_t)(xb.u > 0xC2AE0000u); /* x < -87 (bits of -87.0f) */
    xb.u = (xb.u & ~below) | (0xC2AE0000u & below);
    const float xc = xb.f;
    const union {
        float f;
        uint32_t u;
    } kr = {.f = xc * log2e + shifter};
    const float kf = kr.f - shifter;
    const int32_t k = (int32_t)(kr.u - 0x4B400000u); /* the integer in kr's low bits */
    const float r = (xc - kf * ln2_hi) - kf * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const union {
        uint32_t u;
        float f;
    } two_k = {.u = ((uint32_t)(k + 127) << 23) & ~below}; /* 0 below -87 */
    return p * two_k.f;
}

void realm_exp_scaled_f32(float *x, int32_t n, float sub, float mul)
{
    for (int32_t i = 0; i < n; i++)
        x[i] = exp_nonpos((x[i] - sub) * mul);
}
