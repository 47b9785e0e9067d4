/* model/model.c — loading a model: hyperparameters, weights, scratch. */
#include <string.h>

#include "base/alloc.h"
#include "model/model_impl.h"

/* Carve the activation scratch out of one backend allocation, each piece
 * 64-byte aligned. With base NULL it only measures. */
static size_t carve(realm_model_t *m, char *base)
{
    const realm_hparams *hp = &m->hp;
    size_t rows = (size_t)m->params.max_rows, lrows = (size_t)m->params.max_logit_rows;
    size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    struct {
        float **p;
        size_t n;
    } parts[] = {
        {&m->x, rows * hp->n_embd},
        {&m->xb, rows * hp->n_embd},
        {&m->q, rows * q_dim},
        {&m->k, rows * kv_dim},
        {&m->v, rows * kv_dim},
        {&m->att, rows * q_dim},
        {&m->hb, rows * hp->n_ff},
        {&m->hb2, rows * hp->n_ff},
        {&m->xo, lrows * hp->n_embd},
        {&m->logits, lrows * hp->n_vocab},
        {&m->ids, lrows},
    };
    size_t off = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (base) *parts[i].p = (float *)(base + off);
        off += (parts[i].n * sizeof(float) + 63) & ~(size_t)63;
    }
    return off;
}

realm_status realm_model_load(const realm_gguf_t *g, realm_backend *be,
                              const realm_model_params *params, realm_model_t **out,
                              realm_error *err)
{
    *out = NULL;
    realm_model_t *m = realm_calloc(1, sizeof *m);
    if (!m) return realm_error_set(err, REALM_E_NOMEM, "model: out of memory");
    m->gguf = g;
    m->be = be;
    const realm__arch *arch = NULL;
    realm_status st = realm__model_read_hparams(g, &m->hp, &arch, err);
    if (!st) st = realm__model_bind_weights(m, arch, err);
    if (st) goto fail;

    const realm_hparams *hp = &m->hp;
    realm_model_params p = params ? *params : (realm_model_params){0};
    if (p.max_rows <= 0) p.max_rows = 512;
    if (p.max_ctx <= 0) p.max_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (p.max_logit_rows <= 0) p.max_logit_rows = 64;
    if (p.max_logit_rows > p.max_rows) p.max_logit_rows = p.max_rows;
    m->params = p;

    m->logit_rows = realm_calloc((size_t)p.max_rows, sizeof *m->logit_rows);
    if (!m->logit_rows) {
        st = realm_error_set(err, REALM_E_NOMEM, "model: out of memory");
        goto fail;
    }
    if ((st = be->ops->buffer_alloc(be, carve(m, NULL), &m->scratch, err))) goto fail;
    carve(m, m->scratch.data);
    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, max_ne0 = hp->n_embd;
    if (q_dim > max_ne0) max_ne0 = q_dim;
    if (hp->n_ff > max_ne0) max_ne0 = hp->n_ff;
    realm_backend_limits lim = {.max_rows = p.max_rows, .max_ctx = p.max_ctx, .max_ne0 = max_ne0};
    if ((st = be->ops->reserve(be, &lim, err))) goto fail;
    *out = m;
    return REALM_OK;
fail:
    realm_model_free(m);
    return st;
}

void realm_model_free(realm_model_t *m)
{
    if (!m) return;
    realm_backend *be = m->be;
    if (m->scratch.data) be->ops->buffer_free(be, &m->scratch);
    if (m->inv_freq_buf.data) be->ops->buffer_free(be, &m->inv_freq_buf);
    if (m->weights_buf.data) be->ops->buffer_free(be, &m->weights_buf);
    for (int32_t i = 0; i < m->n_packed; i++)
        be->ops->buffer_free(be, &m->packed[i]);
    realm_free(m->packed);
    realm_free(m->layers);
    realm_free(m->logit_rows);
    realm_free(m);
}

const realm_hparams *realm_model_hparams(const realm_model_t *m)
{
    return &m->hp;
}

realm_model_params realm_model_params_get(const realm_model_t *m)
{
    return m->params;
}

realm_backend *realm_model_backend(const realm_model_t *m)
{
    return m->be;
}

/* A logits block starts LOGITS_HDR bytes into its allocation; the first byte
 * says whose it is (1: the backend's host_alloc, 0: realm_malloc). */
#define LOGITS_HDR 64

float *realm_model_logits_alloc(realm_model_t *m, int32_t n_rows)
{
    if (n_rows < 1) n_rows = 1;
    size_t bytes = (size_t)n_rows * (size_t)m->hp.n_vocab * sizeof(float);
    const realm_backend_ops *op = m->be->ops;
    unsigned char *p = op->host_alloc ? op->host_alloc(m->be, bytes + LOGITS_HDR) : NULL;
    unsigned char tag = p != NULL;
    if (!p) p = realm_malloc(bytes + LOGITS_HDR);
    if (!p) return NULL;
    memset(p, 0, bytes + LOGITS_HDR);
    p[0] = tag;
    return (float *)(p + LOGITS_HDR);
}

void realm_model_logits_free(realm_model_t *m, float *logits)
{
    if (!logits) return;
    unsigned char *p = (unsigned char *)logits - LOGITS_HDR;
    if (p[0])
        m->be->ops->host_free(m->be, p);
    else
        realm_free(p);
}
