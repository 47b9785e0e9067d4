/*
 * tokenizer/tokenizer_impl.h — the tokenizer's private layout, shared by
 * vocab.c (building, special tokens, the encode driver), bpe.c, spm.c,
 * pretokenize.c and detok.c. Not for use outside src/tokenizer/.
 */
#ifndef REALM_TOKENIZER_TOKENIZER_IMPL_H
#define REALM_TOKENIZER_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

/* Open-addressing map from a byte string to a token id. The strings live in a
 * blob owned by the tokenizer (token i is blob[off[i] .. off[i+1])), so a slot
 * holds only the id and a hash fragment to skip most comparisons. */
typedef struct realm__strmap_slot {
    int32_t id;    /* -1 = empty */
    uint32_t hash; /* high bits of the key's hash */
} realm__strmap_slot;

typedef struct realm__strmap {
    uint32_t mask;             /* capacity - 1, capacity a power of two */
    realm__strmap_slot *slots; /* (capacity) one cache line holds 8 probes */
    const char *blob;
    const uint32_t *off; /* (n_vocab + 1) */
} realm__strmap;

/* Map from an adjacent pair of token ids (BPE merge) to its rank and result.
 * One 16-byte slot per entry so a probe touches one cache line. */
typedef struct realm__merge_slot {
    uint64_t key; /* (left << 32 | right), UINT64_MAX = empty */
    int32_t rank;
    int32_t result;
} realm__merge_slot;

typedef struct realm__pairmap {
    uint32_t mask;
    realm__merge_slot *slots; /* (capacity) */
} realm__pairmap;

typedef struct realm__pretok realm__pretok;

struct realm_tokenizer {
    realm_tokenizer_kind kind;
    int32_t n_vocab;
    char *text_blob;     /* every token as spelled in the vocabulary */
    uint32_t *text_off;  /* (n_vocab + 1) */
    char *bytes_blob;    /* every token's decoded bytes */
    uint32_t *bytes_off; /* (n_vocab + 1) */
    uint8_t *types;      /* (n_vocab) realm_token_type */
    float *scores;       /* (n_vocab) SPM only, else NULL */
    size_t max_token_bytes;
    int32_t special[REALM_SPECIAL_COUNT];
    bool add_bos, add_eos, add_space_prefix;

    realm__strmap by_text;   /* spelling → first id with it */
    realm__strmap by_bytes;  /* BPE: decoded bytes → a normal token that is the whole
                              * BPE result of those bytes (or, with ignore_merges,
                              * any normal token): pieces found here skip merging */
    int32_t byte_token[256]; /* token of one raw byte (BPE alphabet or SPM <0xXX>), -1 none */

    /* BPE */
    realm__pairmap merges;
    bool ignore_merges; /* Llama 3: a piece that is a whole token is not merged */
    realm__pretok *pretok;
    const char *pre_name; /* static string */

    /* Tokens matched whole in the input (control, unknown, user-defined),
     * grouped by first byte and longest first within a group, so the first
     * hit at a position is the longest (leftmost-longest, as HF does). */
    int32_t *matchable; /* (n_matchable) ids */
    uint32_t n_matchable;
    bool has_user_defined;     /* some matchable token is user-defined (matched always) */
    uint32_t match_begin[257]; /* matchable[match_begin[b] .. match_begin[b+1]) start with byte b */
};

/* Per-call scratch shared by bpe.c and spm.c: grown on demand, freed at the
 * end of realm_tokenizer_encode. */
typedef struct realm__scratch {
    void *sym;      /* algorithm's symbol array */
    size_t sym_cap; /* bytes */
    void *heap;
    size_t heap_cap; /* bytes */
    char *buf;       /* SPM: escaped text */
    size_t buf_cap;
    void *match_data;                /* pcre2_match_data for the pre-tokenizer */
    struct realm__word_cache *cache; /* BPE: this call's merged words (bpe.c) */
} realm__scratch;

void realm__word_cache_free(struct realm__word_cache *c);

/* Grow *p to hold at least need bytes (amortised doubling). */
realm_status realm__scratch_reserve(void **p, size_t *cap, size_t need);

uint64_t realm__hash_bytes(const char *p, size_t n);
int32_t realm__strmap_find(const realm__strmap *m, const char *key, size_t len);
/* The same with the key's realm__hash_bytes already computed. */
int32_t realm__strmap_find_hashed(const realm__strmap *m, const char *key, size_t len, uint64_t h);
/* Index token ids 0..n-1 by blob[off[id]..off[id+1]) (the first id wins a
 * duplicate); keep == NULL indexes all, else only ids with keep[id] != 0. */
realm_status realm__strmap_build(realm__strmap *m, const char *blob, const uint32_t *off, int32_t n,
                                 const uint8_t *keep);
/* Rank and result of merging (left, right); false when no such merge. */
void realm__pairmap_prefetch(const realm__pairmap *m, int32_t left, int32_t right);
bool realm__pairmap_find(const realm__pairmap *m, int32_t left, int32_t right, int32_t *rank,
                         int32_t *result);

/* Encode one fragment of plain text (no special tokens inside). */
realm_status realm__bpe_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                               realm__scratch *s, realm_token_vec *out, realm_error *err);
/* prefix_space: prepend "▁" (first fragment, or after a special token). */
realm_status realm__spm_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                               bool prefix_space, realm__scratch *s, realm_token_vec *out,
                               realm_error *err);
/* Build the merge table from "left right" strings (BPE). */
realm_status realm__bpe_build_merges(realm_tokenizer_t *t, const realm_tokenizer_desc *d,
                                     realm_error *err);
/* Build by_bytes (after the merges). */
realm_status realm__bpe_build_whole(realm_tokenizer_t *t, realm_error *err);

/* ---- pre-tokenizer (pretokenize.c) ---- */

/* Compile the split regexes for a `tokenizer.ggml.pre` name. Unknown names get
 * the GPT-2 default and a warning. *canonical is a static name, *ignore_merges
 * tells whether that tokenizer skips merges for whole-token pieces. */
realm_status realm__pretok_init(const char *pre, realm__pretok **out, const char **canonical,
                                bool *ignore_merges, realm_error *err);
void realm__pretok_free(realm__pretok *p);
/* Match data sized for p, to keep in the per-call scratch. */
void *realm__pretok_match_data(const realm__pretok *p);
void realm__pretok_match_data_free(void *md);
typedef realm_status (*realm__piece_fn)(void *ctx, const char *piece, size_t len);
/* Split valid UTF-8 text into pieces (regex matches and the gaps between
 * them, in order, covering all of text). */
realm_status realm__pretok_split(const realm__pretok *p, void *match_data, const char *text,
                                 size_t len, realm__piece_fn fn, void *ctx, realm_error *err);

#endif
