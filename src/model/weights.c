/*
 * model/weights.c — binds the GGUF tensors of a model to backend weights.
 *
 * Every tensor is checked against the shape the hyperparameters imply and
 * against what the backend can compute with, so a broken or unsupported file
 * fails at load with the tensor's name, never in the middle of a forward
 * pass. Nothing is dequantized: a weight is the backend address of its bytes
 * in the GGUF data section, plus, where the backend asks for it
 * (weight_pack), a copy of each matrix in the backend's matmul layout.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "model/model_impl.h"

/* Bind `name` as ne1 rows of ne0 elements. Vectors (norms, biases, rope
 * factors) must be F32: ops read them as floats. Matrices must be a type the
 * backend supports with rows its activation format can tile. */
static realm_status bind(realm_model_t *m, const char *name, int64_t ne0, int64_t ne1,
                         bool required, realm_weight *out, realm_error *err)
{
    *out = (realm_weight){0};
    const realm_gguf_tensor *t = realm_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (!required) return REALM_OK;
        if (ne1 == 1)
            return realm_error_set(err, REALM_E_NOT_FOUND,
                                   "model (%s): missing tensor '%s' (expected shape [%lld])",
                                   m->hp.arch, name, (long long)ne0);
        return realm_error_set(err, REALM_E_NOT_FOUND,
                               "model (%s): missing tensor '%s' (expected shape [%lld, %lld])",
                               m->hp.arch, name, (long long)ne0, (long long)ne1);
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return realm_error_set(err, REALM_E_FORMAT,
                               "model (%s): tensor '%s' has shape [%lld, %lld, %lld, %lld], "
                               "expected [%lld, %lld] from the metadata",
                               m->hp.arch, name, (long long)t->ne[0], (long long)t->ne[1],
                               (long long)t->ne[2], (long long)t->ne[3], (long long)ne0,
                               (long long)ne1);
    if (ne1 == 1 && t->type != REALM_TYPE_F32)
        return realm_error_set(err, REALM_E_UNSUPPORTED,
                               "model: vector tensor '%s' has type %s; only F32 is supported", name,
                               realm_type_name(t->type));
    if (ne1 > 1) {
        const realm_type_traits *tr = realm_type_traits_get(t->type);
        if (!m->be->ops->supports(m->be, t->type))
            return realm_error_set(err, REALM_E_UNSUPPORTED,
                                   "model: tensor '%s' has type %s, which the %s backend cannot "
                                   "compute with",
                                   name, realm_type_name(t->type), m->be->ops->name);
        if (realm_type_row_size(tr->vec_dot_type, ne0) == 0)
            return realm_error_set(err, REALM_E_UNSUPPORTED,
                                   "model: tensor '%s' rows of %lld do not tile its activation "
                                   "type %s",
                                   name, (long long)ne0, realm_type_name(tr->vec_dot_type));
    }
    *out = (realm_weight){.type = t->type,
                          .ne0 = ne0,
                          .ne1 = ne1,
                          .data = (const char *)m->weights_buf.data + t->offset};
    return REALM_OK;
}

/* inv_freq[i] = freq_scale * base^(-2i/n_rot) / factor[i]: the angle of pair
 * i at position p is p * inv_freq[i]. Built in double, stored f32. */
static realm_status build_inv_freq(realm_model_t *m, realm_error *err)
{
    const realm_hparams *hp = &m->hp;
    int32_t half = hp->n_rot / 2;
    const float *factors = NULL;
    const realm_gguf_tensor *t = realm_gguf_find_tensor(m->gguf, "rope_freqs.weight");
    if (t) {
        realm_weight w;
        realm_status st = bind(m, "rope_freqs.weight", half, 1, true, &w, err);
        if (st) return st;
        factors = t->data; /* host view of the same bytes: read once here */
        m->hp.rope_factors = true;
    }
    float inv[half];
    for (int32_t i = 0; i < half; i++) {
        float f = 1.0f;
        if (factors) memcpy(&f, factors + i, sizeof f);
        if (!(f > 0))
            return realm_error_set(err, REALM_E_FORMAT,
                                   "model: rope_freqs.weight[%d] = %g must be positive", i, f);
        inv[i] = (float)(hp->rope_freq_scale * pow(hp->rope_base, -2.0 * i / hp->n_rot) / f);
    }
    realm_status st = m->be->ops->buffer_alloc(m->be, sizeof inv, &m->inv_freq_buf, err);
    if (st) return st;
    m->be->ops->buffer_upload(m->be, &m->inv_freq_buf, 0, inv, sizeof inv);
    return REALM_OK;
}

/* Let the backend repack every matrix into its matmul layout (once, here). */
static realm_status pack_weights(realm_model_t *m, realm_error *err)
{
    if (!m->be->ops->weight_pack) return REALM_OK;
    int32_t cap = m->hp.n_layer * 7 + 1;
    m->packed = realm_calloc((size_t)cap, sizeof *m->packed);
    if (!m->packed) return realm_error_set(err, REALM_E_NOMEM, "model: out of memory");
    realm_weight *mats[cap];
    int32_t n = 0;
    mats[n++] = &m->output;
    for (int32_t l = 0; l < m->hp.n_layer; l++) {
        realm_layer_weights *L = &m->layers[l];
        realm_weight *lw[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof lw / sizeof *lw; i++)
            mats[n++] = lw[i];
    }
    for (int32_t i = 0; i < n; i++) {
        realm_buffer *b = &m->packed[m->n_packed];
        realm_status st = m->be->ops->weight_pack(m->be, mats[i], b, err);
        if (st) return st;
        if (b->data) {
            mats[i]->packed = b->data;
            m->n_packed++;
        }
    }
    return REALM_OK;
}

realm_status realm__model_bind_weights(realm_model_t *m, const realm__arch *arch, realm_error *err)
{
    realm_hparams *hp = &m->hp;
    realm_status st;
    /* The whole data section becomes one backend buffer; weights are offsets in it. */
    if (realm_gguf_tensor_count(m->gguf) == 0)
        return realm_error_set(err, REALM_E_NOT_FOUND, "model (%s): the file has no tensors",
                               hp->arch);
    const realm_gguf_tensor *t0 = realm_gguf_tensor_at(m->gguf, 0);
    const char *data = (const char *)t0->data - t0->offset;
    size_t size = realm_gguf_file_size(m->gguf) - realm_gguf_data_offset(m->gguf);
    if ((st = m->be->ops->buffer_from_host(m->be, data, size, &m->weights_buf, err))) return st;

    const realm_gguf_tensor *emb = realm_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb)
        return realm_error_set(err, REALM_E_NOT_FOUND,
                               "model (%s): missing tensor 'token_embd.weight' (expected shape "
                               "[%d, n_vocab])",
                               hp->arch, hp->n_embd);
    if (emb->ne[1] > INT32_MAX)
        return realm_error_set(err, REALM_E_RANGE, "model: vocabulary is too large");
    hp->n_vocab = (int32_t)emb->ne[1];
    if ((st = bind(m, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->token_embd, err)) ||
        (st = bind(m, "output_norm.weight", hp->n_embd, 1, true, &m->output_norm, err)) ||
        (st = bind(m, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output, err)))
        return st;
    hp->tied_embeddings = m->output.data == NULL;
    if (hp->tied_embeddings) m->output = m->token_embd;

    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim,
            kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    m->layers = realm_calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) return realm_error_set(err, REALM_E_NOMEM, "model: out of memory");
    for (int32_t l = 0; l < hp->n_layer; l++) {
        realm_layer_weights *L = &m->layers[l];
        char name[96];
#define BIND(suffix, ne0, ne1, req, field)                                                         \
    (snprintf(name, sizeof name, "blk.%d." suffix, l), bind(m, name, ne0, ne1, req, &L->field, err))
        if ((st = BIND("attn_norm.weight", hp->n_embd, 1, true, attn_norm)) ||
            (st = BIND("attn_q.weight", hp->n_embd, q_dim, true, wq)) ||
            (st = BIND("attn_k.weight", hp->n_embd, kv_dim, true, wk)) ||
            (st = BIND("attn_v.weight", hp->n_embd, kv_dim, true, wv)) ||
            (st = BIND("attn_output.weight", q_dim, hp->n_embd, true, wo)) ||
            (st = BIND("ffn_norm.weight", hp->n_embd, 1, true, ffn_norm)) ||
            (st = BIND("ffn_gate.weight", hp->n_embd, hp->n_ff, true, w_gate)) ||
            (st = BIND("ffn_up.weight", hp->n_embd, hp->n_ff, true, w_up)) ||
            (st = BIND("ffn_down.weight", hp->n_ff, hp->n_embd, true, w_down)))
            return st;
        if (arch->qkv_bias && ((st = BIND("attn_q.bias", q_dim, 1, true, bq)) ||
                               (st = BIND("attn_k.bias", kv_dim, 1, true, bk)) ||
                               (st = BIND("attn_v.bias", kv_dim, 1, true, bv))))
            return st;
#undef BIND
    }
    if ((st = pack_weights(m, err))) return st;
    return build_inv_freq(m, err);
}
