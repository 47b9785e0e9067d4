#include "quant/types.h"

#include <strings.h>

#include "quant/blocks.h"
#include "quant/ref.h"

/* One row per GGML type id. Geometry for every id GGUF files may carry;
 * kernels where Realm implements the type. */
#define KERNELS(t, dot_type)                                                                       \
    .vec_dot_type = REALM_TYPE_##dot_type, .to_float = realm__##t##_to_float,                      \
    .from_float = realm__##t##_from_float, .vec_dot = realm__##t##_vec_dot

static const realm_type_traits traits[REALM_TYPE_COUNT] = {
    [REALM_TYPE_F32] = {"F32", 1, 4, false, KERNELS(f32, F32)},
    [REALM_TYPE_F16] = {"F16", 1, 2, false, KERNELS(f16, F32)},
    [REALM_TYPE_BF16] = {"BF16", 1, 2, false, KERNELS(bf16, F32)},
    [REALM_TYPE_Q4_0] = {"Q4_0", REALM_QK4_0, sizeof(realm_block_q4_0), true, KERNELS(q4_0, Q8_0)},
    [REALM_TYPE_Q4_1] = {"Q4_1", REALM_QK4_1, sizeof(realm_block_q4_1), true, KERNELS(q4_1, Q8_1)},
    [REALM_TYPE_Q5_0] = {"Q5_0", REALM_QK5_0, sizeof(realm_block_q5_0), true, KERNELS(q5_0, Q8_0)},
    [REALM_TYPE_Q5_1] = {"Q5_1", REALM_QK5_1, sizeof(realm_block_q5_1), true, KERNELS(q5_1, Q8_1)},
    [REALM_TYPE_Q8_0] = {"Q8_0", REALM_QK8_0, sizeof(realm_block_q8_0), true, KERNELS(q8_0, Q8_0)},
    [REALM_TYPE_Q8_1] = {"Q8_1", REALM_QK8_1, sizeof(realm_block_q8_1), true, KERNELS(q8_1, Q8_1)},
    [REALM_TYPE_Q2_K] = {"Q2_K", REALM_QK_K, sizeof(realm_block_q2_k), true, KERNELS(q2_k, Q8_K)},
    [REALM_TYPE_Q3_K] = {"Q3_K", REALM_QK_K, sizeof(realm_block_q3_k), true, KERNELS(q3_k, Q8_K)},
    [REALM_TYPE_Q4_K] = {"Q4_K", REALM_QK_K, sizeof(realm_block_q4_k), true, KERNELS(q4_k, Q8_K)},
    [REALM_TYPE_Q5_K] = {"Q5_K", REALM_QK_K, sizeof(realm_block_q5_k), true, KERNELS(q5_k, Q8_K)},
    [REALM_TYPE_Q6_K] = {"Q6_K", REALM_QK_K, sizeof(realm_block_q6_k), true, KERNELS(q6_k, Q8_K)},
    [REALM_TYPE_Q8_K] = {"Q8_K", REALM_QK_K, sizeof(realm_block_q8_k), true, KERNELS(q8_k, Q8_K)},
    [REALM_TYPE_IQ4_NL] = {"IQ4_NL", REALM_QK4_NL, sizeof(realm_block_iq4_nl), true,
                           KERNELS(iq4_nl, Q8_0)},
    [REALM_TYPE_IQ4_XS] = {"IQ4_XS", REALM_QK_K, sizeof(realm_block_iq4_xs), true,
                           KERNELS(iq4_xs, Q8_K)},
    /* known to the file format, no kernels in Realm (yet) */
    [REALM_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66, true},
    [REALM_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74, true},
    [REALM_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98, true},
    [REALM_TYPE_IQ1_S] = {"IQ1_S", 256, 50, true},
    [REALM_TYPE_IQ3_S] = {"IQ3_S", 256, 110, true},
    [REALM_TYPE_IQ2_S] = {"IQ2_S", 256, 82, true},
    [REALM_TYPE_IQ1_M] = {"IQ1_M", 256, 56, true},
    [REALM_TYPE_TQ1_0] = {"TQ1_0", 256, 54, true},
    [REALM_TYPE_TQ2_0] = {"TQ2_0", 256, 66, true},
    [REALM_TYPE_MXFP4] = {"MXFP4", 32, 17, true},
    [REALM_TYPE_NVFP4] = {"NVFP4", 64, 36, true},
    [REALM_TYPE_Q1_0] = {"Q1_0", 128, 18, true},
    [REALM_TYPE_I8] = {"I8", 1, 1, false},
    [REALM_TYPE_I16] = {"I16", 1, 2, false},
    [REALM_TYPE_I32] = {"I32", 1, 4, false},
    [REALM_TYPE_I64] = {"I64", 1, 8, false},
    [REALM_TYPE_F64] = {"F64", 1, 8, false},
};

const realm_type_traits *realm_type_traits_get(int64_t t)
{
    if (t < 0 || t >= REALM_TYPE_COUNT || traits[t].name == NULL) return NULL;
    return &traits[t];
}

const char *realm_type_name(int64_t t)
{
    const realm_type_traits *tr = realm_type_traits_get(t);
    return tr ? tr->name : NULL;
}

int realm_type_from_name(const char *name)
{
    for (int t = 0; t < REALM_TYPE_COUNT; t++)
        if (traits[t].name && strcasecmp(traits[t].name, name) == 0) return t;
    return -1;
}

size_t realm_type_row_size(realm_type t, int64_t n)
{
    const realm_type_traits *tr = realm_type_traits_get(t);
    if (!tr || n < 0 || n % tr->block_size != 0) return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}
