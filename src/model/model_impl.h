/* model/model_impl.h — the model's private state, shared by the files of model/. */
#ifndef REALM_MODEL_MODEL_IMPL_H
#define REALM_MODEL_MODEL_IMPL_H

#include "model/model.h"

/* One architecture: its name in general.architecture and what sets it apart
 * from the common llama-style block. */
typedef struct realm__arch {
    const char *name;
    realm_rope_mode rope_mode; /* llama.cpp's rope type for the arch */
    bool qkv_bias;             /* attn_{q,k,v}.bias present */
} realm__arch;

/* Shapes as (rows, row length); in GGUF ne order that is [ne0 = row length, ne1 = rows]. */
typedef struct realm_layer_weights {
    realm_weight attn_norm; /* (n_embd) f32 */
    realm_weight wq;        /* (n_head * head_dim, n_embd) */
    realm_weight wk;        /* (n_head_kv * head_dim, n_embd) */
    realm_weight wv;        /* (n_head_kv * head_dim, n_embd) */
    realm_weight bq;        /* (n_head * head_dim) f32, data NULL without qkv_bias */
    realm_weight bk;        /* (n_head_kv * head_dim) f32, idem */
    realm_weight bv;        /* (n_head_kv * head_dim) f32, idem */
    realm_weight wo;        /* (n_embd, n_head * head_dim) */
    realm_weight ffn_norm;  /* (n_embd) f32 */
    realm_weight w_gate;    /* (n_ff, n_embd) */
    realm_weight w_up;      /* (n_ff, n_embd) */
    realm_weight w_down;    /* (n_embd, n_ff) */
} realm_layer_weights;

struct realm_model {
    realm_hparams hp;
    realm_model_params params;
    const realm_gguf_t *gguf;
    realm_backend *be;

    realm_buffer weights_buf;    /* the GGUF data section as backend memory */
    realm_weight token_embd;     /* (n_vocab, n_embd) */
    realm_weight output_norm;    /* (n_embd) f32 */
    realm_weight output;         /* (n_vocab, n_embd); token_embd when tied */
    realm_layer_weights *layers; /* (n_layer) host array of backend weights */
    realm_buffer inv_freq_buf;   /* (n_rot / 2) f32: base^(-2i/n_rot) * freq_scale / factor[i] */
    realm_buffer *packed;        /* (n_packed) the backend's packed copies of the matrices */
    int32_t n_packed;

    /* Activation scratch, one backend allocation carved into: */
    realm_buffer scratch;
    float *x;            /* (max_rows, n_embd) residual stream */
    float *xb;           /* (max_rows, n_embd) normed input / block output */
    float *q;            /* (max_rows, n_head * head_dim) */
    float *k;            /* (max_rows, n_head_kv * head_dim) */
    float *v;            /* (max_rows, n_head_kv * head_dim) */
    float *att;          /* (max_rows, n_head * head_dim) attention output */
    float *hb;           /* (max_rows, n_ff) gate, then swiglu */
    float *hb2;          /* (max_rows, n_ff) up */
    float *xo;           /* (max_logit_rows, n_embd) rows that want logits */
    float *logits;       /* (max_logit_rows, n_vocab) */
    float *ids;          /* (max_logit_rows) int32 arg-max ids (realm_model_forward_argmax) */
    int32_t *logit_rows; /* host (max_rows): batch rows that want logits */
};

/* arch.c: the architecture row for name, or NULL. */
const realm__arch *realm__arch_find(const char *name);
/* arch.c: fill hp from g's metadata (not n_vocab / tied_embeddings). */
realm_status realm__model_read_hparams(const realm_gguf_t *g, realm_hparams *hp,
                                       const realm__arch **arch, realm_error *err);
/* weights.c: bind every tensor, check shapes and types, build inv_freq. */
realm_status realm__model_bind_weights(realm_model_t *m, const realm__arch *arch, realm_error *err);

#endif
