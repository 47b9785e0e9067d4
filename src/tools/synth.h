/*
 * tools/synth.h — write a GGUF model with random weights for a known shape.
 *
 * Used for speed and memory work on any machine: the files are structurally
 * real (the tensors, metadata and tokenizer a loader expects for that
 * architecture) but the weights are random, so they say nothing about
 * quality. Deterministic: the same options give the same bytes, whatever the
 * thread count. Weights are generated and quantized tensor by tensor and
 * streamed to disk, so memory stays near one tensor.
 */
#ifndef REALM_TOOLS_SYNTH_H
#define REALM_TOOLS_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"

typedef struct realm_synth_shape {
    const char *name;       /* "llama-3-8b" */
    const char *arch;       /* GGUF general.architecture: "llama", "qwen2" */
    const char *tokenizer;  /* synthetic vocabulary style: "smollm", "llama3", "qwen2" */
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_base, norm_eps;
    bool tied_embeddings;   /* no output.weight: the LM head reuses token_embd */
    bool qkv_bias;          /* attn_q/k/v biases (qwen2) */
    float rope_scale;       /* Llama 3.1-style frequency scaling factor; 0: none */
    int rope_orig_ctx;      /* original context for that scaling */
} realm_synth_shape;

typedef struct realm_synth_options {
    const char *shape;      /* a realm_synth_shape name */
    const char *scheme;     /* quantization scheme: a type or a mix (tools/quant_mix.h) */
    const char *out_path;
    uint64_t seed;
    int n_threads;          /* <= 0: all cores */
    const char *vocab_from; /* copy tokenizer.* metadata from this GGUF; NULL: synthetic */
    int n_layer_override;   /* > 0: use this many layers instead of the shape's */
} realm_synth_options;

/* All known shapes, terminated by an entry with name NULL. */
const realm_synth_shape *realm_synth_shapes(void);
const realm_synth_shape *realm_synth_shape_find(const char *name);

realm_status realm_synth_write(const realm_synth_options *opt, realm_error *err);

#endif
