/* model/kv_cache.c — fixed per-sequence block tables over one KV pool. */
#include <stdint.h>

#include "base/alloc.h"
#include "model/kv_cache.h"

struct realm_kv_cache {
    realm_backend *be;
    realm_kv_pool pool;
    realm_buffer k_buf, v_buf; /* (n_layer, n_blocks, block_size, kv_dim) each */
    int32_t n_seqs;
    int32_t *tables;       /* (n_seqs, blocks_per_seq) block ids */
    realm_batch_seq *seqs; /* (n_seqs) views into tables */
};

realm_status realm_kv_cache_init(realm_backend *be, const realm_hparams *hp, int32_t n_seqs,
                                 int32_t max_ctx, realm_type type, realm_kv_cache_t **out,
                                 realm_error *err)
{
    *out = NULL;
    if (n_seqs <= 0 || max_ctx <= 0)
        return realm_error_set(err, REALM_E_INVALID,
                               "kv cache: need at least one sequence and position");
    if (type != REALM_TYPE_F16 && type != REALM_TYPE_F32)
        return realm_error_set(err, REALM_E_INVALID, "kv cache: elements must be f16 or f32");
    int32_t per_seq = (max_ctx + REALM_KV_BLOCK_SIZE - 1) / REALM_KV_BLOCK_SIZE;
    if ((int64_t)per_seq * n_seqs > INT32_MAX)
        return realm_error_set(err, REALM_E_RANGE, "kv cache: too many blocks");
    realm_kv_cache_t *c = realm_calloc(1, sizeof *c);
    if (!c) return realm_error_set(err, REALM_E_NOMEM, "kv cache: out of memory");
    c->be = be;
    c->n_seqs = n_seqs;
    c->pool = (realm_kv_pool){.n_layer = hp->n_layer,
                              .n_blocks = per_seq * n_seqs,
                              .block_size = REALM_KV_BLOCK_SIZE,
                              .kv_dim = hp->n_head_kv * hp->head_dim,
                              .type = type};
    size_t bytes = realm_kv_pool_bytes(hp->n_layer, c->pool.n_blocks, REALM_KV_BLOCK_SIZE,
                                       c->pool.kv_dim, type);
    realm_status st;
    c->tables = realm_calloc((size_t)per_seq * n_seqs, sizeof *c->tables);
    c->seqs = realm_calloc((size_t)n_seqs, sizeof *c->seqs);
    if (!c->tables || !c->seqs) {
        st = realm_error_set(err, REALM_E_NOMEM, "kv cache: out of memory");
        goto fail;
    }
    if ((st = be->ops->buffer_alloc(be, bytes, &c->k_buf, err)) ||
        (st = be->ops->buffer_alloc(be, bytes, &c->v_buf, err)))
        goto fail;
    c->pool.k = c->k_buf.data;
    c->pool.v = c->v_buf.data;
    for (int32_t s = 0; s < n_seqs; s++) {
        for (int32_t i = 0; i < per_seq; i++)
            c->tables[s * per_seq + i] = s * per_seq + i;
        c->seqs[s] = (realm_batch_seq){.block_table = c->tables + s * per_seq, .n_blocks = per_seq};
    }
    *out = c;
    return REALM_OK;
fail:
    realm_kv_cache_free(c);
    return st;
}

void realm_kv_cache_free(realm_kv_cache_t *c)
{
    if (!c) return;
    if (c->k_buf.data) c->be->ops->buffer_free(c->be, &c->k_buf);
    if (c->v_buf.data) c->be->ops->buffer_free(c->be, &c->v_buf);
    realm_free(c->tables);
    realm_free(c->seqs);
    realm_free(c);
}

const realm_kv_pool *realm_kv_cache_pool(const realm_kv_cache_t *c)
{
    return &c->pool;
}

const realm_batch_seq *realm_kv_cache_seq(const realm_kv_cache_t *c, int32_t s)
{
    return &c->seqs[s];
}

int32_t realm_kv_cache_n_seqs(const realm_kv_cache_t *c)
{
    return c->n_seqs;
}
