/*
 * model/model.h — a decoder-only transformer bound to a GGUF file and run by a
 * backend.
 *
 * Architectures are rows of a table (model/arch.c): `llama` (Llama 2/3 with
 * Llama-3 RoPE frequency factors from rope_freqs.weight, SmolLM2, TinyLlama,
 * Mistral) and `qwen2` (QKV biases, NeoX RoPE). All share one forward pass:
 * token embedding, n_layer × (RMSNorm → Q/K/V (+bias) → RoPE → KV write →
 * causal GQA attention → output projection → residual; RMSNorm → SwiGLU FFN →
 * residual), final RMSNorm, LM head (token_embd when output.weight is absent:
 * tied embeddings).
 *
 * Loading reads hyperparameters from `<arch>.*` metadata, checks every tensor
 * exists with the shape the hyperparameters imply and a type the backend can
 * compute with, and fails before any compute with an error naming the
 * architecture, key or tensor (and its expected shape). Weights are bound
 * zero-copy: they stay quantized in the GGUF mapping (on the CPU) and the
 * gguf handle must outlive the model. All scratch is allocated at load for
 * params.max_rows rows; realm_model_forward never allocates.
 *
 * Threads: a model runs one forward pass at a time (its scratch is shared).
 */
#ifndef REALM_MODEL_MODEL_H
#define REALM_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "base/status.h"
#include "gguf/gguf.h"

typedef struct realm_hparams {
    char arch[32];         /* general.architecture */
    int32_t n_layer;       /* transformer blocks */
    int32_t n_embd;        /* residual stream width */
    int32_t n_head;        /* query heads */
    int32_t n_head_kv;     /* key/value heads (GQA: n_head is a multiple) */
    int32_t head_dim;      /* per head, for q, k and v */
    int32_t n_rot;         /* leading dims of a head that RoPE rotates */
    int32_t n_ff;          /* FFN hidden width */
    int32_t n_vocab;       /* rows of token_embd */
    int32_t n_ctx_train;   /* context_length the model was trained for */
    float norm_eps;        /* RMSNorm epsilon */
    float rope_base;       /* theta base */
    float rope_freq_scale; /* linear position scaling (1 / rope.scaling.factor), 1: none */
    realm_rope_mode rope_mode;
    bool qkv_bias;        /* attn_q/k/v have biases */
    bool tied_embeddings; /* no output.weight: the LM head is token_embd */
    bool rope_factors;    /* rope_freqs.weight divides each frequency (Llama 3.1+) */
} realm_hparams;

typedef struct realm_model_params {
    int32_t max_rows;       /* rows per forward pass; <= 0: 512 */
    int32_t max_ctx;        /* longest sequence; <= 0: min(n_ctx_train, 4096) */
    int32_t max_logit_rows; /* rows whose logits one pass returns; <= 0: 64 (at most max_rows) */
} realm_model_params;

typedef struct realm_model realm_model_t;

/* params may be NULL for the defaults. The model borrows g and be. */
realm_status realm_model_load(const realm_gguf_t *g, realm_backend *be,
                              const realm_model_params *params, realm_model_t **out,
                              realm_error *err);
void realm_model_free(realm_model_t *m);

const realm_hparams *realm_model_hparams(const realm_model_t *m);
/* The limits the model was loaded with (defaults resolved). */
realm_model_params realm_model_params_get(const realm_model_t *m);
realm_backend *realm_model_backend(const realm_model_t *m);

/* Room for n_rows rows of logits (n_rows x n_vocab floats) in the host memory
 * the backend downloads into fastest (page-locked for a GPU; plain memory
 * when the backend has none or none is left), for realm_model_forward's
 * logits; NULL when out of memory. Free with realm_model_logits_free. */
float *realm_model_logits_alloc(realm_model_t *m, int32_t n_rows);
void realm_model_logits_free(realm_model_t *m, float *logits);

/* Number of rows of b whose logits a forward pass returns. */
int32_t realm_batch_n_logits(const realm_batch *b);

/* Run one batch. K/V of every row is written into kv at its (sequence,
 * position) slot before attention, so rows of one sequence in one batch see
 * each other causally. logits (realm_batch_n_logits(b), n_vocab) is host
 * memory, filled in row order for the rows that want logits. The batch is
 * checked first (token ids, positions against max_ctx and the sequence's
 * block table, block ids against the pool, pool shape against the model):
 * REALM_E_RANGE / REALM_E_INVALID with the row named, before any compute. */
realm_status realm_model_forward(realm_model_t *m, const realm_kv_pool *kv, const realm_batch *b,
                                 float *logits, realm_error *err);

/* As realm_model_forward, but each row that wants logits gets only the index
 * of its largest logit (base/rowmath.h: ties to the lowest, -1 when none is
 * finite) in ids (host, realm_batch_n_logits(b)), computed by the backend
 * where the logits are: on a GPU one int a row crosses the link instead of
 * n_vocab floats, and no host thread scans them. The greedy pick. */
realm_status realm_model_forward_argmax(realm_model_t *m, const realm_kv_pool *kv,
                                        const realm_batch *b, int32_t *ids, realm_error *err);

#endif
