/* engine/kv_pages.c — block pool, refcounts, LRU of cached blocks, prefix hash table. */
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kv_pages.h"

struct realm_kv_pages {
    realm_backend *be;
    realm_kv_pool pool;
    realm_buffer k_buf, v_buf; /* (n_layer, n_blocks, block_size, kv_dim) f32 each */
    int32_t n_blocks, block_size;
    int32_t *ref;      /* (n_blocks) references from block tables */
    bool *published;   /* (n_blocks) in the hash table */
    uint64_t *key;     /* (n_blocks) chain hash of a published block */
    uint64_t *parent;  /* (n_blocks) chain hash of its predecessor */
    int32_t *tokens;   /* (n_blocks, block_size) tokens of a published block */
    int32_t *free_stk; /* (n_blocks) free blocks, n_free used */
    int32_t n_free;
    int32_t *lru_prev, *lru_next; /* (n_blocks) cached blocks, oldest at lru_head */
    int32_t lru_head, lru_tail, n_cached;
    int32_t *bucket;     /* (n_buckets) first published block of each chain; -1 empty */
    int32_t *chain_next; /* (n_blocks) next published block in the same bucket */
    uint32_t n_buckets;  /* power of two */
    int64_t hits, misses, evictions;
};

/* splitmix64's finalizer: every input bit affects every output bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t realm_kv_pages_seed(uint32_t tenant, uint64_t salt, int32_t adapter)
{
    uint64_t h = mix64(0x7265616c6d6b7631ull ^ tenant); /* "realmkv1" */
    h = mix64(h ^ salt);
    return mix64(h ^ (uint64_t)(uint32_t)adapter);
}

uint64_t realm_kv_pages_hash(uint64_t parent, const int32_t *tokens, int32_t block_size)
{
    uint64_t h = mix64(parent + 0x9e3779b97f4a7c15ull);
    for (int32_t i = 0; i < block_size; i++)
        h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] + ((uint64_t)i << 32)));
    return h;
}

void realm_kv_pages_free(realm_kv_pages_t *p)
{
    if (!p) return;
    if (p->k_buf.data) p->be->ops->buffer_free(p->be, &p->k_buf);
    if (p->v_buf.data) p->be->ops->buffer_free(p->be, &p->v_buf);
    realm_free(p->ref);
    realm_free(p->published);
    realm_free(p->key);
    realm_free(p->parent);
    realm_free(p->tokens);
    realm_free(p->free_stk);
    realm_free(p->lru_prev);
    realm_free(p->lru_next);
    realm_free(p->bucket);
    realm_free(p->chain_next);
    realm_free(p);
}

realm_status realm_kv_pages_init(realm_backend *be, const realm_hparams *hp, int32_t n_blocks,
                                 int32_t block_size, realm_type type, realm_kv_pages_t **out,
                                 realm_error *err)
{
    *out = NULL;
    if (n_blocks <= 0 || block_size <= 0 || n_blocks > (1 << 28))
        return realm_error_set(err, REALM_E_INVALID,
                               "kv pages: %d blocks of %d positions (need >= 1 of each)", n_blocks,
                               block_size);
    if (type != REALM_TYPE_F16 && type != REALM_TYPE_F32)
        return realm_error_set(err, REALM_E_INVALID, "kv pages: elements must be f16 or f32");
    realm_kv_pages_t *p = realm_calloc(1, sizeof *p);
    if (!p) return realm_error_set(err, REALM_E_NOMEM, "kv pages: out of memory");
    p->be = be;
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    p->n_buckets = 1;
    while (p->n_buckets < (uint32_t)n_blocks * 2u)
        p->n_buckets <<= 1;
    size_t nb = (size_t)n_blocks;
    p->ref = realm_calloc(nb, sizeof *p->ref);
    p->published = realm_calloc(nb, sizeof *p->published);
    p->key = realm_calloc(nb, sizeof *p->key);
    p->parent = realm_calloc(nb, sizeof *p->parent);
    p->tokens = realm_calloc(nb * (size_t)block_size, sizeof *p->tokens);
    p->free_stk = realm_calloc(nb, sizeof *p->free_stk);
    p->lru_prev = realm_calloc(nb, sizeof *p->lru_prev);
    p->lru_next = realm_calloc(nb, sizeof *p->lru_next);
    p->bucket = realm_calloc(p->n_buckets, sizeof *p->bucket);
    p->chain_next = realm_calloc(nb, sizeof *p->chain_next);
    realm_status st;
    if (!p->ref || !p->published || !p->key || !p->parent || !p->tokens || !p->free_stk ||
        !p->lru_prev || !p->lru_next || !p->bucket || !p->chain_next) {
        st = realm_error_set(err, REALM_E_NOMEM, "kv pages: out of memory");
        goto fail;
    }
    p->pool = (realm_kv_pool){.n_layer = hp->n_layer,
                              .n_blocks = n_blocks,
                              .block_size = block_size,
                              .kv_dim = hp->n_head_kv * hp->head_dim,
                              .type = type};
    size_t bytes = realm_kv_pool_bytes(hp->n_layer, n_blocks, block_size, p->pool.kv_dim, type);
    if ((st = be->ops->buffer_alloc(be, bytes, &p->k_buf, err)) ||
        (st = be->ops->buffer_alloc(be, bytes, &p->v_buf, err)))
        goto fail;
    p->pool.k = p->k_buf.data;
    p->pool.v = p->v_buf.data;
    /* Low block ids are handed out first (the stack pops from the top). */
    for (int32_t i = 0; i < n_blocks; i++)
        p->free_stk[i] = n_blocks - 1 - i;
    p->n_free = n_blocks;
    p->lru_head = p->lru_tail = -1;
    for (uint32_t i = 0; i < p->n_buckets; i++)
        p->bucket[i] = -1;
    *out = p;
    return REALM_OK;
fail:
    realm_kv_pages_free(p);
    return st;
}

const realm_kv_pool *realm_kv_pages_pool(const realm_kv_pages_t *p)
{
    return &p->pool;
}

int32_t realm_kv_pages_block_size(const realm_kv_pages_t *p)
{
    return p->block_size;
}

int32_t realm_kv_pages_available(const realm_kv_pages_t *p)
{
    return p->n_free + p->n_cached;
}

realm_kv_pages_stats realm_kv_pages_stats_get(const realm_kv_pages_t *p)
{
    return (realm_kv_pages_stats){.n_blocks = p->n_blocks,
                                  .n_free = p->n_free,
                                  .n_cached = p->n_cached,
                                  .hits = p->hits,
                                  .misses = p->misses,
                                  .evictions = p->evictions};
}

static void lru_unlink(realm_kv_pages_t *p, int32_t b)
{
    int32_t pr = p->lru_prev[b], nx = p->lru_next[b];
    if (pr >= 0)
        p->lru_next[pr] = nx;
    else
        p->lru_head = nx;
    if (nx >= 0)
        p->lru_prev[nx] = pr;
    else
        p->lru_tail = pr;
    p->n_cached--;
}

static void lru_push_tail(realm_kv_pages_t *p, int32_t b)
{
    p->lru_prev[b] = p->lru_tail;
    p->lru_next[b] = -1;
    if (p->lru_tail >= 0)
        p->lru_next[p->lru_tail] = b;
    else
        p->lru_head = b;
    p->lru_tail = b;
    p->n_cached++;
}

static uint32_t bucket_of(const realm_kv_pages_t *p, uint64_t key)
{
    return (uint32_t)(key ^ (key >> 32)) & (p->n_buckets - 1);
}

static void unhash(realm_kv_pages_t *p, int32_t b)
{
    int32_t *link = &p->bucket[bucket_of(p, p->key[b])];
    while (*link != b) {
        REALM_ASSERT(*link >= 0);
        link = &p->chain_next[*link];
    }
    *link = p->chain_next[b];
    p->published[b] = false;
}

int32_t realm_kv_pages_alloc(realm_kv_pages_t *p)
{
    int32_t b;
    if (p->n_free > 0) {
        b = p->free_stk[--p->n_free];
    } else if (p->lru_head >= 0) {
        b = p->lru_head;
        lru_unlink(p, b);
        unhash(p, b);
        p->evictions++;
    } else {
        return -1;
    }
    REALM_ASSERT(p->ref[b] == 0 && !p->published[b]);
    p->ref[b] = 1;
    return b;
}

void realm_kv_pages_unref(realm_kv_pages_t *p, int32_t b)
{
    REALM_ASSERT(b >= 0 && b < p->n_blocks && p->ref[b] > 0);
    if (--p->ref[b] > 0) return;
    if (p->published[b])
        lru_push_tail(p, b);
    else
        p->free_stk[p->n_free++] = b;
}

static int32_t find(const realm_kv_pages_t *p, uint64_t key, uint64_t parent, const int32_t *tokens)
{
    for (int32_t b = p->bucket[bucket_of(p, key)]; b >= 0; b = p->chain_next[b])
        if (p->key[b] == key && p->parent[b] == parent &&
            !memcmp(p->tokens + (size_t)b * p->block_size, tokens,
                    (size_t)p->block_size * sizeof *tokens))
            return b;
    return -1;
}

int32_t realm_kv_pages_lookup(realm_kv_pages_t *p, uint64_t key, uint64_t parent,
                              const int32_t *tokens)
{
    int32_t b = find(p, key, parent, tokens);
    if (b < 0) {
        p->misses++;
        return -1;
    }
    p->hits++;
    if (p->ref[b]++ == 0) lru_unlink(p, b);
    return b;
}

void realm_kv_pages_publish(realm_kv_pages_t *p, int32_t b, uint64_t key, uint64_t parent,
                            const int32_t *tokens)
{
    REALM_ASSERT(b >= 0 && b < p->n_blocks && p->ref[b] > 0);
    if (p->published[b] || find(p, key, parent, tokens) >= 0) return;
    p->published[b] = true;
    p->key[b] = key;
    p->parent[b] = parent;
    memcpy(p->tokens + (size_t)b * p->block_size, tokens, (size_t)p->block_size * sizeof *tokens);
    uint32_t h = bucket_of(p, key);
    p->chain_next[b] = p->bucket[h];
    p->bucket[h] = b;
}
