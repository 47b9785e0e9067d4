/*
 * model/kv_cache.h — a simple KV cache for a fixed set of sequences.
 *
 * It owns a realm_kv_pool (backend memory, f16 or f32) and gives sequence s the
 * contiguous blocks [s * blocks_per_seq, (s + 1) * blocks_per_seq): a block
 * table that never changes. The model reads K/V only through the pool and the
 * per-sequence block tables in the batch (backend/backend.h), so the
 * engine's paged cache — the same pool layout with block tables it allocates,
 * shares and evicts — replaces this without touching model code.
 *
 * Reusing a sequence for a new prompt needs no reset: a row at position p
 * attends to positions 0..p, which the new prompt overwrites first.
 * Not thread-safe; immutable while a forward pass uses it.
 */
#ifndef REALM_MODEL_KV_CACHE_H
#define REALM_MODEL_KV_CACHE_H

#include "backend/backend.h"
#include "model/model.h"

#define REALM_KV_BLOCK_SIZE 16

typedef struct realm_kv_cache realm_kv_cache_t;

/* Room for n_seqs sequences of max_ctx positions each (rounded up to whole
 * blocks), elements of type (REALM_TYPE_F16 or REALM_TYPE_F32; anything else
 * is REALM_E_INVALID). The cache borrows be. */
realm_status realm_kv_cache_init(realm_backend *be, const realm_hparams *hp, int32_t n_seqs,
                                 int32_t max_ctx, realm_type type, realm_kv_cache_t **out,
                                 realm_error *err);
void realm_kv_cache_free(realm_kv_cache_t *c);

const realm_kv_pool *realm_kv_cache_pool(const realm_kv_cache_t *c);
/* Block table of sequence s (0 <= s < n_seqs), to put in a realm_batch. */
const realm_batch_seq *realm_kv_cache_seq(const realm_kv_cache_t *c, int32_t s);
int32_t realm_kv_cache_n_seqs(const realm_kv_cache_t *c);

#endif
