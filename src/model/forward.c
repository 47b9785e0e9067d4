/*
 * model/forward.c — one forward pass over a batch (backend/backend.h's
 * realm_batch): the llama-family block, written once for every backend.
 *
 *   x = token_embd[token]
 *   for each layer:
 *     h = rmsnorm(x) * attn_norm
 *     q, k, v = h·Wq^T (+bq), h·Wk^T (+bk), h·Wv^T (+bv)
 *     rope(q), rope(k) at each row's position; store k, v in the KV pool
 *     x += attention(q, K, V) · Wo^T
 *     h = rmsnorm(x) * ffn_norm
 *     x += (silu(h·Wgate^T) * (h·Wup^T)) · Wdown^T
 *   logits = (rmsnorm(x) * output_norm) · Woutput^T, for the rows that want them
 */
#include <math.h>
#include <stdint.h>

#include "model/model_impl.h"

int32_t realm_batch_n_logits(const realm_batch *b)
{
    if (!b->want_logits) return b->n_rows > 0 ? 1 : 0;
    int32_t n = 0;
    for (int32_t r = 0; r < b->n_rows; r++)
        n += b->want_logits[r];
    return n;
}

/* Everything an op could index with is checked here, so ops need no checks. */
static realm_status check_batch(const realm_model_t *m, const realm_kv_pool *kv,
                                const realm_batch *b, realm_error *err)
{
    const realm_hparams *hp = &m->hp;
    if (kv->n_layer != hp->n_layer || kv->kv_dim != hp->n_head_kv * hp->head_dim ||
        kv->block_size <= 0 || kv->n_blocks <= 0)
        return realm_error_set(err, REALM_E_INVALID,
                               "forward: KV pool (%d layers, kv_dim %d) does not fit the model "
                               "(%d layers, kv_dim %d)",
                               kv->n_layer, kv->kv_dim, hp->n_layer, hp->n_head_kv * hp->head_dim);
    if (b->n_rows <= 0 || b->n_rows > m->params.max_rows)
        return realm_error_set(err, REALM_E_RANGE, "forward: batch of %d rows (allowed 1..%d)",
                               b->n_rows, m->params.max_rows);
    int32_t n_logits = realm_batch_n_logits(b);
    if (n_logits > m->params.max_logit_rows)
        return realm_error_set(err, REALM_E_RANGE,
                               "forward: %d rows want logits, at most %d per batch", n_logits,
                               m->params.max_logit_rows);
    for (int32_t s = 0; s < b->n_seqs; s++)
        for (int32_t i = 0; i < b->seqs[s].n_blocks; i++)
            if (b->seqs[s].block_table[i] < 0 || b->seqs[s].block_table[i] >= kv->n_blocks)
                return realm_error_set(err, REALM_E_RANGE,
                                       "forward: sequence %d: block %d is not in the pool of %d", s,
                                       b->seqs[s].block_table[i], kv->n_blocks);
    for (int32_t r = 0; r < b->n_rows; r++) {
        if (b->token[r] < 0 || b->token[r] >= hp->n_vocab)
            return realm_error_set(err, REALM_E_RANGE,
                                   "forward: row %d: token %d is outside the vocabulary of %d", r,
                                   b->token[r], hp->n_vocab);
        if (b->seq[r] < 0 || b->seq[r] >= b->n_seqs)
            return realm_error_set(err, REALM_E_RANGE, "forward: row %d: no sequence %d", r,
                                   b->seq[r]);
        const realm_batch_seq *s = &b->seqs[b->seq[r]];
        int64_t cap = (int64_t)s->n_blocks * kv->block_size;
        if (b->pos[r] < 0 || b->pos[r] >= m->params.max_ctx || b->pos[r] >= cap)
            return realm_error_set(err, REALM_E_RANGE,
                                   "forward: row %d: position %d is beyond the context (%d "
                                   "positions, %lld in the sequence's KV blocks)",
                                   r, b->pos[r], m->params.max_ctx, (long long)cap);
    }
    return REALM_OK;
}

/* outs[i] = x · ws[i]^T (+ biases[i]) for matmuls sharing x: one op where the
 * backend has it. Optional biases are absent when their data is NULL. */
static void matmuls(realm_backend *be, int count, const realm_weight *const *ws,
                    const realm_weight *biases, const float *x, int32_t n, float *const *outs)
{
    const realm_weight *bp[REALM_MATMUL_MULTI_MAX];
    for (int i = 0; i < count; i++)
        bp[i] = biases && biases[i].data ? &biases[i] : NULL;
    if (be->ops->matmul_multi) {
        be->ops->matmul_multi(be, count, ws, bp, x, n, outs);
        return;
    }
    for (int i = 0; i < count; i++)
        be->ops->matmul(be, ws[i], bp[i], x, n, outs[i]);
}

/* The pass; the logit rows' logits into logits, or (logits NULL) their
 * arg-max ids into ids (both NULL: neither). */
static realm_status forward(realm_model_t *m, const realm_kv_pool *kv, const realm_batch *b,
                            float *logits, int32_t *ids, realm_error *err)
{
    realm_status st = check_batch(m, kv, b, err);
    if (st) return st;
    const realm_hparams *hp = &m->hp;
    realm_backend *be = m->be;
    const realm_backend_ops *op = be->ops;
    int32_t n = b->n_rows, D = hp->n_embd;
    const realm_attn_params ap = {.n_head = hp->n_head,
                                  .n_head_kv = hp->n_head_kv,
                                  .head_dim = hp->head_dim,
                                  .scale = 1.0f / sqrtf((float)hp->head_dim)};
    const float *inv_freq = m->inv_freq_buf.data;

    op->get_rows(be, &m->token_embd, b->token, n, m->x);
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const realm_layer_weights *L = &m->layers[l];
        /* attention */
        op->rmsnorm(be, m->x, &L->attn_norm, n, hp->norm_eps, m->xb);
        const realm_weight *qkv[] = {&L->wq, &L->wk, &L->wv};
        const realm_weight qkv_bias[] = {L->bq, L->bk, L->bv};
        matmuls(be, 3, qkv, qkv_bias, m->xb, n, (float *const[]){m->q, m->k, m->v});
        op->rope(be, m->q, n, hp->n_head, hp->head_dim, hp->n_rot, hp->rope_mode, inv_freq, b->pos);
        op->rope(be, m->k, n, hp->n_head_kv, hp->head_dim, hp->n_rot, hp->rope_mode, inv_freq,
                 b->pos);
        op->kv_store(be, kv, l, b, m->k, m->v);
        op->attention(be, kv, l, b, &ap, m->q, m->att);
        op->matmul(be, &L->wo, NULL, m->att, n, m->xb);
        op->add(be, m->x, m->xb, (int64_t)n * D);
        /* feed-forward */
        op->rmsnorm(be, m->x, &L->ffn_norm, n, hp->norm_eps, m->xb);
        const realm_weight *gate_up[] = {&L->w_gate, &L->w_up};
        matmuls(be, 2, gate_up, NULL, m->xb, n, (float *const[]){m->hb, m->hb2});
        op->swiglu(be, m->hb, m->hb2, (int64_t)n * hp->n_ff);
        op->matmul(be, &L->w_down, NULL, m->hb, n, m->xb);
        op->add(be, m->x, m->xb, (int64_t)n * D);
    }

    /* LM head only for the rows that want logits. */
    int32_t n_out = 0;
    for (int32_t r = 0; r < n; r++)
        if (b->want_logits ? b->want_logits[r] : r == n - 1) m->logit_rows[n_out++] = r;
    if (n_out > 0) {
        op->copy_rows(be, m->x, D, m->logit_rows, n_out, m->xo);
        op->rmsnorm(be, m->xo, &m->output_norm, n_out, hp->norm_eps, m->xo);
        op->matmul(be, &m->output, NULL, m->xo, n_out, m->logits);
        if (logits) {
            op->buffer_download(be, &m->scratch,
                                (size_t)((char *)m->logits - (char *)m->scratch.data), logits,
                                (size_t)n_out * hp->n_vocab * sizeof(float));
        } else if (ids) {
            op->argmax(be, m->logits, n_out, hp->n_vocab, (int32_t *)m->ids);
            op->buffer_download(be, &m->scratch, (size_t)((char *)m->ids - (char *)m->scratch.data),
                                ids, (size_t)n_out * sizeof(int32_t));
        }
    }
    return op->synchronize(be, err);
}

realm_status realm_model_forward(realm_model_t *m, const realm_kv_pool *kv, const realm_batch *b,
                                 float *logits, realm_error *err)
{
    return forward(m, kv, b, logits, NULL, err);
}

realm_status realm_model_forward_argmax(realm_model_t *m, const realm_kv_pool *kv,
                                        const realm_batch *b, int32_t *ids, realm_error *err)
{
    return forward(m, kv, b, NULL, ids, err);
}
