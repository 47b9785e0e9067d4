/*
 * quant/ref.h — the reference (scalar C) kernels behind the type-traits table.
 *
 * Internal to quant/: callers reach these through realm_type_traits_get().
 * Contracts are those of quant/types.h. The reference kernels are compiled
 * without floating-point contraction so that dequantization is bit-exact
 * with the independent NumPy oracle (d * q + m is two roundings, not an FMA).
 */
#ifndef REALM_QUANT_REF_H
#define REALM_QUANT_REF_H

#include <stdint.h>

#define REALM__REF_KERNELS(t)                                                                      \
    void realm__##t##_to_float(const void *src, float *dst, int64_t n);                            \
    void realm__##t##_from_float(const float *src, void *dst, int64_t n);                          \
    float realm__##t##_vec_dot(int64_t n, const void *w, const void *a);

/* float.c: f32·f32, f16·f32, bf16·f32 */
REALM__REF_KERNELS(f32)
REALM__REF_KERNELS(f16)
REALM__REF_KERNELS(bf16)
/* legacy.c: q4_0,q5_0,q8_0 pair with q8_0; q4_1,q5_1 with q8_1 */
REALM__REF_KERNELS(q4_0)
REALM__REF_KERNELS(q4_1)
REALM__REF_KERNELS(q5_0)
REALM__REF_KERNELS(q5_1)
REALM__REF_KERNELS(q8_0)
REALM__REF_KERNELS(q8_1)
/* iq4.c: iq4_nl pairs with q8_0, iq4_xs with q8_k */
REALM__REF_KERNELS(iq4_nl)
REALM__REF_KERNELS(iq4_xs)
/* kquants.c: all pair with q8_k */
REALM__REF_KERNELS(q2_k)
REALM__REF_KERNELS(q3_k)
REALM__REF_KERNELS(q4_k)
REALM__REF_KERNELS(q5_k)
REALM__REF_KERNELS(q6_k)
REALM__REF_KERNELS(q8_k)

#undef REALM__REF_KERNELS

#endif
