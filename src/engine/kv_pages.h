/*
 * engine/kv_pages.h — the paged KV cache: one pool of fixed-size blocks,
 * reference counts, and a prefix cache of full blocks.
 *
 * The pool (realm_kv_pool, backend memory, f16 or f32) is allocated once at init and
 * never grows; sequences own blocks through block tables the engine keeps and
 * passes to the model in each realm_batch. A block is in exactly one of three
 * states:
 *   - free:       refcount 0, no content worth keeping;
 *   - cached:     refcount 0, holds a published full block; kept on an LRU
 *                 list and reused on a prefix hit, or evicted (oldest first)
 *                 when a fresh block is needed and none is free;
 *   - referenced: refcount > 0 (one per block table holding it).
 * `available` = free + cached: what allocation can hand out.
 *
 * Prefix cache: a full block (block_size tokens) is keyed by a hash chain
 *   h_0 = H(seed, tokens of block 0), h_i = H(h_{i-1}, tokens of block i)
 * where the seed mixes (tenant id, tenant salt, adapter id)
 * (realm_kv_pages_seed), so two tenants never hit each other's blocks even
 * with equal prompts. Each cached block also stores its parent hash and its
 * tokens and a hit checks both, so a 64-bit hash collision cannot return
 * wrong KV.
 *
 * Memory: everything is allocated in realm_kv_pages_init; no other call
 * allocates. Threads: not thread-safe; the engine thread alone uses it.
 * Errors: init returns REALM_E_INVALID / REALM_E_NOMEM (or the backend's
 * allocation error); alloc returns -1 when nothing is available.
 */
#ifndef REALM_ENGINE_KV_PAGES_H
#define REALM_ENGINE_KV_PAGES_H

#include <stdint.h>

#include "backend/backend.h"
#include "model/model.h"

typedef struct realm_kv_pages realm_kv_pages_t;

typedef struct realm_kv_pages_stats {
    int32_t n_blocks, n_free, n_cached; /* n_blocks - n_free - n_cached are referenced */
    int64_t hits, misses;               /* prefix lookups, in blocks */
    int64_t evictions;                  /* cached blocks reused for fresh content */
} realm_kv_pages_stats;

/* A pool of n_blocks blocks of block_size positions for the model shape hp,
 * elements of type (REALM_TYPE_F16 or REALM_TYPE_F32). Borrows be, which
 * must outlive the pages. */
realm_status realm_kv_pages_init(realm_backend *be, const realm_hparams *hp, int32_t n_blocks,
                                 int32_t block_size, realm_type type, realm_kv_pages_t **out,
                                 realm_error *err);
void realm_kv_pages_free(realm_kv_pages_t *p);

const realm_kv_pool *realm_kv_pages_pool(const realm_kv_pages_t *p);
int32_t realm_kv_pages_block_size(const realm_kv_pages_t *p);
/* Blocks allocation can hand out now (free + cached). */
int32_t realm_kv_pages_available(const realm_kv_pages_t *p);
realm_kv_pages_stats realm_kv_pages_stats_get(const realm_kv_pages_t *p);

/* A block with refcount 1 (a free one, else the least recently used cached
 * one, which leaves the prefix cache); -1 when none is available. */
int32_t realm_kv_pages_alloc(realm_kv_pages_t *p);
/* Drop one reference; at zero the block becomes cached (if published) or free. */
void realm_kv_pages_unref(realm_kv_pages_t *p, int32_t block);

/* The chain seed of one (tenant, salt, adapter). */
uint64_t realm_kv_pages_seed(uint32_t tenant, uint64_t salt, int32_t adapter);
/* The key of a full block of block_size tokens whose predecessor has key parent
 * (the seed for block 0). */
uint64_t realm_kv_pages_hash(uint64_t parent, const int32_t *tokens, int32_t block_size);

/* The cached block with this key, parent and tokens, with one more reference
 * (counted as a hit); -1 when absent (a miss). */
int32_t realm_kv_pages_lookup(realm_kv_pages_t *p, uint64_t key, uint64_t parent,
                              const int32_t *tokens);
/* Offer a referenced block whose KV for these block_size tokens is fully
 * written to the prefix cache under key. A no-op when the key is already
 * cached (another sequence computed the same block first) or the block is
 * already published. */
void realm_kv_pages_publish(realm_kv_pages_t *p, int32_t block, uint64_t key, uint64_t parent,
                            const int32_t *tokens);

#endif
