/*
 * quant/float.c — reference kernels for the plain float types F32, F16, BF16.
 *
 * Layouts (one element per "block", little-endian as GGUF stores them):
 *   F32   4 bytes, IEEE binary32.
 *   F16   2 bytes, IEEE binary16 (sign 1, exponent 5, mantissa 10).
 *   BF16  2 bytes, the top half of a binary32 (sign 1, exponent 8, mantissa 7).
 *
 * Widening (F16/BF16 -> F32) is exact; narrowing rounds to nearest even with
 * overflow to ±inf and NaN kept a NaN (quant/fp16.h), as NumPy's casts do, so
 * both directions match the gguf-py oracle bit for bit.
 *
 * vec_dot pairs every float type with F32 activations. It accumulates in
 * double and rounds once at the end: these are the reference results the
 * optimized and GPU kernels are checked against, so they should carry as
 * little rounding error of their own as possible.
 */
#include <string.h>

#include "quant/fp16.h"
#include "quant/ref.h"

/* memcpy with a NULL pointer is undefined even for 0 bytes, and n == 0 may
 * come with empty (NULL) buffers. */
void realm__f32_to_float(const void *src, float *dst, int64_t n)
{
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}

void realm__f32_from_float(const float *src, void *dst, int64_t n)
{
    if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
}

float realm__f32_vec_dot(int64_t n, const void *w, const void *a)
{
    const float *x = w;
    const float *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)x[i] * (double)y[i];
    return (float)sum;
}

void realm__f16_to_float(const void *src, float *dst, int64_t n)
{
    const realm_fp16 *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = realm_fp16_to_fp32(h[i]);
}

void realm__f16_from_float(const float *src, void *dst, int64_t n)
{
    realm_fp16 *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = realm_fp32_to_fp16(src[i]);
}

float realm__f16_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_fp16 *x = w;
    const float *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)realm_fp16_to_fp32(x[i]) * (double)y[i];
    return (float)sum;
}

void realm__bf16_to_float(const void *src, float *dst, int64_t n)
{
    const realm_bf16 *b = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = realm_bf16_to_fp32(b[i]);
}

void realm__bf16_from_float(const float *src, void *dst, int64_t n)
{
    realm_bf16 *b = dst;
    for (int64_t i = 0; i < n; i++)
        b[i] = realm_fp32_to_bf16(src[i]);
}

float realm__bf16_vec_dot(int64_t n, const void *w, const void *a)
{
    const realm_bf16 *x = w;
    const float *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)realm_bf16_to_fp32(x[i]) * (double)y[i];
    return (float)sum;
}
