#include "tools/quant_mix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Single-type schemes still put output.weight in a higher type where
 * llama.cpp does (Q6_K for the quantized ones), so that speed comparisons on
 * the same scheme compare the same bytes. */
static const realm_quant_mix mixes[] = {
    /* name, file_type, base, more, more_bits_rule */
    {"F32", 0, REALM_TYPE_F32, REALM_TYPE_F32, 0},
    {"F16", 1, REALM_TYPE_F16, REALM_TYPE_F16, 0},
    {"BF16", 32, REALM_TYPE_BF16, REALM_TYPE_BF16, 0},
    {"Q4_0", 2, REALM_TYPE_Q4_0, REALM_TYPE_Q6_K, 0},
    {"Q4_1", 3, REALM_TYPE_Q4_1, REALM_TYPE_Q6_K, 0},
    {"Q5_0", 8, REALM_TYPE_Q5_0, REALM_TYPE_Q6_K, 0},
    {"Q5_1", 9, REALM_TYPE_Q5_1, REALM_TYPE_Q6_K, 0},
    {"Q8_0", 7, REALM_TYPE_Q8_0, REALM_TYPE_Q8_0, 0},
    {"Q2_K", 10, REALM_TYPE_Q2_K, REALM_TYPE_Q6_K, 0},
    {"Q3_K_M", 12, REALM_TYPE_Q3_K, REALM_TYPE_Q6_K, 1},
    {"Q4_K_S", 14, REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, 0},
    {"Q4_K_M", 15, REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, 1},
    {"Q5_K_S", 16, REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, 0},
    {"Q5_K_M", 17, REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, 1},
    {"Q6_K", 18, REALM_TYPE_Q6_K, REALM_TYPE_Q6_K, 0},
    {"IQ4_NL", 25, REALM_TYPE_IQ4_NL, REALM_TYPE_Q6_K, 0},
    {"IQ4_XS", 30, REALM_TYPE_IQ4_XS, REALM_TYPE_Q6_K, 0},
};
#define N_MIXES (sizeof mixes / sizeof mixes[0])

/* Aliases: a bare K type means its _M mix where one exists. */
static const struct {
    const char *alias, *name;
} aliases[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

bool realm_quant_mix_find(const char *name, realm_quant_mix *out)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcasecmp(name, aliases[i].alias)) name = aliases[i].name;
    for (size_t i = 0; i < N_MIXES; i++)
        if (!strcasecmp(name, mixes[i].name)) {
            *out = mixes[i];
            return true;
        }
    int t = realm_type_from_name(name);
    const realm_type_traits *tr = realm_type_traits_get(t);
    if (!tr || !tr->from_float) return false;
    *out = (realm_quant_mix){.file_type = REALM_FILE_TYPE_NONE, .base = (realm_type)t,
                             .more = (realm_type)t};
    snprintf(out->name, sizeof out->name, "%s", tr->name);
    return true;
}

const char *realm_quant_mix_list(void)
{
    return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_S, "
           "Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, or any other type name (applies to every matrix)";
}

/* llama.cpp's "use more bits" layers: the first and last eighth of the
 * blocks and every third block in between. */
static int uses_more_bits(int layer, int n_layer)
{
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* Block layer index parsed from "blk.N.", or -1. */
static int layer_of(const char *name)
{
    if (strncmp(name, "blk.", 4) != 0) return -1;
    return atoi(name + 4);
}

/* K-quants need rows of 256; fall back to a 32-block type of about the same
 * size, the substitution llama.cpp makes. */
static realm_type fit_row(realm_type t, int64_t ne0)
{
    const realm_type_traits *tr = realm_type_traits_get(t);
    if (ne0 % tr->block_size == 0) return t;
    switch (t) {
    case REALM_TYPE_Q2_K:
    case REALM_TYPE_Q3_K:
    case REALM_TYPE_IQ4_XS: return REALM_TYPE_IQ4_NL;
    case REALM_TYPE_Q4_K: return REALM_TYPE_Q5_0;
    case REALM_TYPE_Q5_K: return REALM_TYPE_Q5_1;
    case REALM_TYPE_Q6_K: return REALM_TYPE_Q8_0;
    default: return REALM_TYPE_F16;
    }
}

realm_type realm_quant_mix_type(const realm_quant_mix *m, const char *name, uint32_t n_dims,
                                int64_t ne0, int n_layer)
{
    if (n_dims < 2) return REALM_TYPE_F32;
    realm_type t = m->base;
    if (!strcmp(name, "output.weight")) {
        t = m->more;
    } else if (m->more_bits_rule &&
               (strstr(name, ".attn_v.weight") || strstr(name, ".ffn_down.weight"))) {
        int layer = layer_of(name);
        if (layer >= 0 && uses_more_bits(layer, n_layer)) t = m->more;
    }
    return fit_row(t, ne0);
}
