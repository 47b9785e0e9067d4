/*
 * quant/types.h — the tensor element types Realm knows and their traits.
 *
 * One row per type in a table indexed by the GGML type id (the id GGUF files
 * store). Every known id has its block geometry, so files holding types we
 * cannot compute with can still be validated and inspected; the function
 * slots are NULL where Realm has no kernel for that type.
 *
 * Kernel contracts (all reference implementations, scalar C, pure, thread-safe):
 *   to_float(src, dst, n)   n is a multiple of block_size; dequantizes n elements.
 *   from_float(src, dst, n) n is a multiple of block_size; quantizes n elements.
 *   vec_dot(n, w, a)        dot product of n elements of w (this type) with a
 *                           (vec_dot_type, produced by that type's from_float),
 *                           accumulated in float; n a multiple of both block sizes.
 */
#ifndef REALM_QUANT_TYPES_H
#define REALM_QUANT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values are GGML type ids as stored in GGUF. Gaps are ids retired by GGML. */
typedef enum realm_type {
    REALM_TYPE_F32 = 0,
    REALM_TYPE_F16 = 1,
    REALM_TYPE_Q4_0 = 2,
    REALM_TYPE_Q4_1 = 3,
    REALM_TYPE_Q5_0 = 6,
    REALM_TYPE_Q5_1 = 7,
    REALM_TYPE_Q8_0 = 8,
    REALM_TYPE_Q8_1 = 9,
    REALM_TYPE_Q2_K = 10,
    REALM_TYPE_Q3_K = 11,
    REALM_TYPE_Q4_K = 12,
    REALM_TYPE_Q5_K = 13,
    REALM_TYPE_Q6_K = 14,
    REALM_TYPE_Q8_K = 15,
    REALM_TYPE_IQ2_XXS = 16,
    REALM_TYPE_IQ2_XS = 17,
    REALM_TYPE_IQ3_XXS = 18,
    REALM_TYPE_IQ1_S = 19,
    REALM_TYPE_IQ4_NL = 20,
    REALM_TYPE_IQ3_S = 21,
    REALM_TYPE_IQ2_S = 22,
    REALM_TYPE_IQ4_XS = 23,
    REALM_TYPE_I8 = 24,
    REALM_TYPE_I16 = 25,
    REALM_TYPE_I32 = 26,
    REALM_TYPE_I64 = 27,
    REALM_TYPE_F64 = 28,
    REALM_TYPE_IQ1_M = 29,
    REALM_TYPE_BF16 = 30,
    REALM_TYPE_TQ1_0 = 34,
    REALM_TYPE_TQ2_0 = 35,
    REALM_TYPE_MXFP4 = 39,
    REALM_TYPE_NVFP4 = 40,
    REALM_TYPE_Q1_0 = 41,
    REALM_TYPE_COUNT = 42
} realm_type;

typedef void (*realm_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*realm_from_float_fn)(const float *src, void *dst, int64_t n);
typedef float (*realm_vec_dot_fn)(int64_t n, const void *w, const void *a);

typedef struct realm_type_traits {
    const char *name;        /* "Q4_K"; NULL for ids that are not types */
    int64_t block_size;      /* elements per block */
    size_t type_size;        /* bytes per block */
    bool is_quantized;       /* block-quantized (not a plain float/int type) */
    realm_type vec_dot_type; /* activation type vec_dot pairs this type with */
    realm_to_float_fn to_float;
    realm_from_float_fn from_float;
    realm_vec_dot_fn vec_dot;
} realm_type_traits;

/* Traits of type id t, or NULL if t is not a known type id. */
const realm_type_traits *realm_type_traits_get(int64_t t);

/* Name of t, or NULL if unknown. */
const char *realm_type_name(int64_t t);

/* Type id by case-insensitive name ("q4_k", "F16"); -1 if none. */
int realm_type_from_name(const char *name);

/* Bytes for a row of n elements of type t; 0 when t is unknown or n is not a
 * multiple of the block size. */
size_t realm_type_row_size(realm_type t, int64_t n);

#endif
