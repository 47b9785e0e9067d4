/*
 * quant/fp16.h — exact IEEE binary16 and bfloat16 conversions.
 *
 * Contract: realm_fp16_to_fp32 is exact for every input (normals, subnormals,
 * ±0, ±inf, NaN payloads kept); realm_fp32_to_fp16 rounds to nearest even,
 * overflows to ±inf — the same bits as NumPy's float32 -> float16 cast for
 * every non-NaN input — and turns NaN into a quiet NaN (payload not kept).
 * bf16 rounds to nearest even and keeps NaN a quiet NaN. Pure functions,
 * header-only so C and CUDA host code share them.
 */
#ifndef REALM_QUANT_FP16_H
#define REALM_QUANT_FP16_H

#include <stdint.h>
#include <string.h>

typedef uint16_t realm_fp16; /* IEEE binary16 bits */
typedef uint16_t realm_bf16; /* bfloat16 bits (top half of a float32) */

static inline uint32_t realm__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float realm__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float realm_fp16_to_fp32(realm_fp16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return realm__f32_from_bits(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return realm__f32_from_bits(sign);
        /* subnormal: value = man * 2^-24, exact in float32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return realm__f32_from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline realm_fp16 realm_fp32_to_fp16(float f)
{
    uint32_t x = realm__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or NaN (keep a quiet NaN) */
        return (realm_fp16)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return (realm_fp16)(sign | 0x7c00u); /* overflow */
    if (e <= 0) {
        if (e < -10) return (realm_fp16)sign; /* underflows to zero even after rounding */
        man |= 0x800000u;                     /* implicit bit */
        uint32_t shift = (uint32_t)(14 - e);  /* 14..24 */
        uint32_t half = 1u << (shift - 1);
        uint32_t q = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (realm_fp16)(sign | q);
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++; /* may carry into inf: correct */
    return (realm_fp16)(sign | q);
}

static inline float realm_bf16_to_fp32(realm_bf16 b)
{
    return realm__f32_from_bits((uint32_t)b << 16);
}

static inline realm_bf16 realm_fp32_to_bf16(float f)
{
    uint32_t x = realm__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (realm_bf16)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (realm_bf16)(x >> 16);
}

#endif
