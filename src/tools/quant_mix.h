/*
 * tools/quant_mix.h — which type each tensor of a model gets for a named
 * quantization scheme ("q4_k_m", "q8_0", "f16", ...).
 *
 * A scheme is either a single type (every weight matrix in that type) or one
 * of the mixes users know from llama.cpp (Q4_K_M etc.), whose rules are
 * published facts: e.g. Q4_K_M keeps output.weight and, in the layers that
 * matter most, attn_v and ffn_down in Q6_K. One-dimensional tensors (norms,
 * biases, rope factors) always stay F32. A K-quant needs rows that are a
 * multiple of 256; for other rows the scheme falls back to a 32-block type of
 * similar size, as llama.cpp does. Pure functions; thread-safe.
 */
#ifndef REALM_TOOLS_QUANT_MIX_H
#define REALM_TOOLS_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "quant/types.h"

#define REALM_FILE_TYPE_NONE UINT32_MAX

typedef struct realm_quant_mix {
    char name[16];       /* canonical spelling: "Q4_K_M" */
    uint32_t file_type;  /* GGUF general.file_type (llama.cpp's ftype); NONE if it has none */
    realm_type base;     /* type of most weight matrices */
    realm_type more;     /* type of output.weight and of the "more bits" attn_v/ffn_down */
    int more_bits_rule;  /* 1: attn_v/ffn_down in `more` on the layers that matter most */
} realm_quant_mix;

/* Fill *out with the scheme named name (case-insensitive): one of llama.cpp's
 * named schemes, or any type Realm can quantize to, which then applies to
 * every weight matrix (Q8_1, Q8_K, ...). Returns false if there is none. */
bool realm_quant_mix_find(const char *name, realm_quant_mix *out);
/* Comma-separated list of all scheme names, for usage messages. */
const char *realm_quant_mix_list(void);

/* Type for tensor `name` with n_dims dims and row length ne0 in a model of
 * n_layer blocks. */
realm_type realm_quant_mix_type(const realm_quant_mix *m, const char *name, uint32_t n_dims,
                                int64_t ne0, int n_layer);

#endif
