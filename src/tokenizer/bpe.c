/*
 * Byte-level BPE (GPT-2 family). Each pre-tokenizer piece starts as one
 * symbol per byte (the token of that byte's GPT-2 alphabet character); then,
 * repeatedly, the adjacent pair with the lowest merge rank is merged, the
 * leftmost among equal ranks — the rule HF `tokenizers` and llama.cpp share.
 * Symbols carry token ids and merges are looked up by id pair, so the loop
 * never builds or hashes strings. A priority queue keeps each piece
 * O(n log n), so a 10 MB "word" is as safe as a short one.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "tokenizer/merge_queue.h"
#include "tokenizer/tokenizer_impl.h"

/* ---- merge table ---- */

static uint64_t pair_key(int32_t l, int32_t r)
{
    return (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
}

static uint32_t pair_slot(uint64_t key, uint32_t mask)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) & mask;
}

bool realm__pairmap_find(const realm__pairmap *m, int32_t left, int32_t right, int32_t *rank,
                         int32_t *result)
{
    if (!m->slots || left < 0 || right < 0) return false;
    uint64_t key = pair_key(left, right);
    for (uint32_t i = pair_slot(key, m->mask);; i = (i + 1) & m->mask) {
        const realm__merge_slot *e = &m->slots[i];
        if (e->key == key) {
            *rank = e->rank;
            *result = e->result;
            return true;
        }
        if (e->key == UINT64_MAX) return false;
    }
}

void realm__pairmap_prefetch(const realm__pairmap *m, int32_t left, int32_t right)
{
    if (m->slots && left >= 0 && right >= 0)
        __builtin_prefetch(&m->slots[pair_slot(pair_key(left, right), m->mask)]);
}

realm_status realm__bpe_build_merges(realm_tokenizer_t *t, const realm_tokenizer_desc *d,
                                     realm_error *err)
{
    realm__pairmap *m = &t->merges;
    if (d->n_merges < 0 || d->n_merges >= INT32_MAX)
        return realm_error_set(err, REALM_E_FORMAT, "tokenizer: bad merge count %lld",
                               (long long)d->n_merges);
    uint32_t cap = 16;
    while (cap < (uint64_t)d->n_merges * 2 + 1)
        cap <<= 1;
    m->mask = cap - 1;
    m->slots = realm_malloc((size_t)cap * sizeof *m->slots);
    char *cat = realm_malloc(t->max_token_bytes * 2 + 1);
    if (!m->slots || !cat) {
        realm_free(cat);
        return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
    }
    for (uint32_t i = 0; i < cap; i++)
        m->slots[i].key = UINT64_MAX;
    int64_t skipped = 0;
    for (int64_t r = 0; r < d->n_merges; r++) {
        const char *s = d->merges[r];
        size_t n = s ? (d->merge_lens ? d->merge_lens[r] : strlen(s)) : 0;
        /* "left right": the separator is the first space after the first
         * byte (a byte-level token never contains a raw space). */
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        int32_t l = -1, rt = -1, res = -1;
        if (sp) {
            size_t ln = (size_t)(sp - s), rn = n - ln - 1;
            l = realm__strmap_find(&t->by_text, s, ln);
            rt = realm__strmap_find(&t->by_text, sp + 1, rn);
            if (ln + rn <= t->max_token_bytes * 2) {
                memcpy(cat, s, ln);
                memcpy(cat + ln, sp + 1, rn);
                res = realm__strmap_find(&t->by_text, cat, ln + rn);
            }
        }
        if (l < 0 || rt < 0 || res < 0) {
            skipped++;
            continue;
        }
        uint64_t key = pair_key(l, rt);
        uint32_t i = pair_slot(key, m->mask);
        while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key)
            i = (i + 1) & m->mask;
        if (m->slots[i].key == key) continue; /* a repeated merge keeps its first (best) rank */
        m->slots[i] = (realm__merge_slot){.key = key, .rank = (int32_t)r, .result = res};
    }
    realm_free(cat);
    if (skipped)
        realm_log(REALM_LOG_WARN,
                  "tokenizer: %lld of %lld merges name tokens not in the vocabulary",
                  (long long)skipped, (long long)d->n_merges);
    return REALM_OK;
}

/* ---- encoding ---- */

typedef struct sym {
    int32_t id;    /* current token; INT32_MIN once merged into its left neighbour */
    uint32_t prev; /* UINT32_MAX = none */
    uint32_t next; /* n = none */
} sym;

typedef struct word_ctx {
    const realm_tokenizer_t *t;
    realm__scratch *s;
    realm_token_vec *out;
} word_ctx;

/* Queue the merge of l with its neighbour r if there is one. The entry keeps
 * both ids (a, b) and the result (c): symbol ids only change by growing, so
 * the same ids still at l and next(l) mean the entry is current. */
static void try_queue(const realm_tokenizer_t *t, const sym *sy, realm__cand *h, size_t *nh,
                      uint32_t l, uint32_t r)
{
    int32_t rank, result;
    if (!realm__pairmap_find(&t->merges, sy[l].id, sy[r].id, &rank, &result)) return;
    realm__cand c = {
        .key = realm__cand_key((uint32_t)rank, l), .a = sy[l].id, .b = sy[r].id, .c = result};
    realm__queue_push(h, nh, c);
}

static realm_status emit(const realm_tokenizer_t *t, realm_token_vec *out, int32_t id)
{
    /* A byte with no token (never in a complete byte-level vocabulary): the
     * unknown token if there is one, else nothing. */
    if (id < 0) id = t->special[REALM_SPECIAL_UNK];
    return id < 0 ? REALM_OK : realm_token_vec_push(out, id);
}

/* Merge the bytes w[0..n) (n >= 2); the surviving symbols are read from
 * s->sym starting at index 0 and following next. */
static realm_status bpe_merge(const realm_tokenizer_t *t, const unsigned char *b, size_t n,
                              realm__scratch *s)
{
    if (n >= UINT32_MAX / 2 || realm__scratch_reserve(&s->sym, &s->sym_cap, n * sizeof(sym)) ||
        realm__scratch_reserve(&s->heap, &s->heap_cap, n * sizeof(realm__cand)))
        return REALM_E_NOMEM;
    sym *sy = s->sym;
    realm__cand *h = s->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        sy[i].id = t->byte_token[b[i]];
        sy[i].prev = i ? (uint32_t)i - 1 : UINT32_MAX;
        sy[i].next = (uint32_t)i + 1;
    }
    /* The merge table is larger than the cache: ask for every pair's slot
     * first so the misses overlap instead of queueing one after another. */
    for (size_t i = 0; i + 1 < n; i++)
        realm__pairmap_prefetch(&t->merges, sy[i].id, sy[i + 1].id);
    for (size_t i = 0; i + 1 < n; i++)
        try_queue(t, sy, h, &nh, (uint32_t)i, (uint32_t)i + 1);
    /* At most n - 1 initial candidates; each merge pops one and queues at
     * most two, so the heap grows by one per merge at worst (< 2n). */
    while (nh) {
        if ((nh + 2) * sizeof(realm__cand) > s->heap_cap) {
            if (realm__scratch_reserve(&s->heap, &s->heap_cap, (nh + 2) * sizeof(realm__cand)))
                return REALM_E_NOMEM;
            h = s->heap;
        }
        realm__cand c = realm__queue_pop(h, &nh);
        uint32_t l = realm__cand_left(&c), r = sy[l].next;
        if (sy[l].id != c.a || r >= n || sy[r].id != c.b) continue;
        uint32_t nx = sy[r].next;
        sy[l].id = c.c;
        sy[l].next = nx;
        sy[r].id = INT32_MIN;
        if (nx < n) sy[nx].prev = l;
        if (sy[l].prev != UINT32_MAX) try_queue(t, sy, h, &nh, sy[l].prev, l);
        if (nx < n) try_queue(t, sy, h, &nh, l, nx);
    }
    return REALM_OK;
}

/* ---- per-call word cache ----
 * Text repeats its words (Zipf), and a word's BPE result depends only on its
 * bytes, so each call remembers the merge results of the words it has seen.
 * Per call, so threads share nothing; bounded, so a hostile input cannot make
 * it grow without limit. */

#define CACHE_MAX_WORD    64         /* longer pieces are rare and not cached */
#define CACHE_MAX_ENTRIES (1u << 18) /* at most ~10 MB of cache per call */

typedef struct cache_slot {
    uint64_t hash; /* 0 = empty */
    uint32_t key_off, ids_off;
    uint16_t key_len, n_ids;
} cache_slot;

struct realm__word_cache {
    uint32_t mask, n;
    cache_slot *slots;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
};

void realm__word_cache_free(struct realm__word_cache *c)
{
    if (!c) return;
    realm_free(c->slots);
    realm_free(c->keys);
    realm_free(c->ids);
    realm_free(c);
}

static const cache_slot *cache_find(const struct realm__word_cache *c, const char *w, size_t n,
                                    uint64_t h)
{
    if (!c || !c->slots) return NULL;
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        const cache_slot *e = &c->slots[i];
        if (!e->hash) return NULL;
        if (e->hash == h && e->key_len == n && !memcmp(c->keys + e->key_off, w, n)) return e;
    }
}

static realm_status cache_grow(struct realm__word_cache *c)
{
    uint32_t cap = c->slots ? (c->mask + 1) * 2 : 1024;
    cache_slot *s = realm_calloc(cap, sizeof *s);
    if (!s) return REALM_E_NOMEM;
    for (uint32_t i = 0; c->slots && i <= c->mask; i++) {
        if (!c->slots[i].hash) continue;
        uint32_t j = (uint32_t)c->slots[i].hash & (cap - 1);
        while (s[j].hash)
            j = (j + 1) & (cap - 1);
        s[j] = c->slots[i];
    }
    realm_free(c->slots);
    c->slots = s;
    c->mask = cap - 1;
    return REALM_OK;
}

/* Remember w → ids[0..k). Failing to cache is not an error: the word was
 * encoded either way. */
static void cache_put(realm__scratch *sc, const char *w, size_t n, uint64_t h, const int32_t *ids,
                      size_t k)
{
    struct realm__word_cache *c = sc->cache;
    if (!c && !(c = sc->cache = realm_calloc(1, sizeof *c))) return;
    if (c->n >= CACHE_MAX_ENTRIES || k > UINT16_MAX) return;
    if ((!c->slots || (c->n + 1) * 2 > c->mask + 1) && cache_grow(c)) return;
    if (realm__scratch_reserve((void **)&c->keys, &c->keys_cap, c->keys_len + n) ||
        realm__scratch_reserve((void **)&c->ids, &c->ids_cap, (c->ids_len + k) * sizeof *c->ids))
        return;
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slots[i].hash)
        i = (i + 1) & c->mask;
    c->slots[i] = (cache_slot){.hash = h,
                               .key_off = (uint32_t)c->keys_len,
                               .ids_off = (uint32_t)c->ids_len,
                               .key_len = (uint16_t)n,
                               .n_ids = (uint16_t)k};
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, k * sizeof *ids);
    c->keys_len += n;
    c->ids_len += k;
    c->n++;
}

static realm_status bpe_word(void *vctx, const char *w, size_t n)
{
    word_ctx *ctx = vctx;
    const realm_tokenizer_t *t = ctx->t;
    realm_token_vec *out = ctx->out;
    const unsigned char *b = (const unsigned char *)w;
    if (n == 1) return emit(t, out, t->byte_token[b[0]]);
    uint64_t raw = realm__hash_bytes(w, n);
    uint64_t h = raw | 1; /* the cache's hash is never 0, its empty-slot mark */
    /* Most words of real text are one token: skip the merge loop for them. */
    int32_t id = realm__strmap_find_hashed(&t->by_bytes, w, n, raw);
    if (id >= 0) return realm_token_vec_push(out, id);
    const cache_slot *e = n <= CACHE_MAX_WORD ? cache_find(ctx->s->cache, w, n, h) : NULL;
    if (e) {
        for (uint32_t i = 0; i < e->n_ids; i++) {
            realm_status st = realm_token_vec_push(out, ctx->s->cache->ids[e->ids_off + i]);
            if (st) return st;
        }
        return REALM_OK;
    }
    realm_status st = bpe_merge(t, b, n, ctx->s);
    if (st) return st;
    size_t first = out->n;
    const sym *sy = ctx->s->sym;
    for (uint32_t i = 0; i < n; i = sy[i].next)
        if ((st = emit(t, out, sy[i].id))) return st;
    if (n <= CACHE_MAX_WORD) cache_put(ctx->s, w, n, h, out->ids + first, out->n - first);
    return REALM_OK;
}

realm_status realm__bpe_build_whole(realm_tokenizer_t *t, realm_error *err)
{
    uint8_t *keep = realm_calloc((size_t)t->n_vocab, 1);
    realm__scratch s = {0};
    realm_status st = keep ? REALM_OK : REALM_E_NOMEM;
    for (int32_t id = 0; id < t->n_vocab && !st; id++) {
        if (t->types[id] != REALM_TOKEN_TYPE_NORMAL) continue;
        const unsigned char *b = (const unsigned char *)t->bytes_blob + t->bytes_off[id];
        size_t n = t->bytes_off[id + 1] - t->bytes_off[id];
        if (t->ignore_merges || n == 1) {
            keep[id] = n > 0;
            continue;
        }
        if (n == 0 || (st = bpe_merge(t, b, n, &s))) continue;
        const sym *sy = s.sym;
        keep[id] = sy[0].next == n && sy[0].id == id;
    }
    if (!st) st = realm__strmap_build(&t->by_bytes, t->bytes_blob, t->bytes_off, t->n_vocab, keep);
    realm_free(keep);
    realm_free(s.sym);
    realm_free(s.heap);
    return st ? realm_error_set(err, st, "tokenizer: out of memory") : REALM_OK;
}

realm_status realm__bpe_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                               realm__scratch *s, realm_token_vec *out, realm_error *err)
{
    word_ctx ctx = {t, s, out};
    realm_status st = realm__pretok_split(t->pretok, s->match_data, text, len, bpe_word, &ctx, err);
    if (st == REALM_E_NOMEM) realm_error_set(err, st, "tokenize: out of memory");
    return st;
}
