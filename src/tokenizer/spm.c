/*
 * SentencePiece BPE (tokenizer.ggml.model = "llama"), as the sentencepiece
 * library encodes a BPE model with an identity normalizer: every ' ' becomes
 * "▁" (U+2581) and, with add_space_prefix, one "▁" is prepended; the text
 * starts as one symbol per UTF-8 character; repeatedly the adjacent pair whose
 * concatenation is a vocabulary piece with the highest score is merged (the
 * leftmost among equal scores). A final symbol that is not a piece (only a
 * single character can be one) becomes its UTF-8 bytes as `<0xXX>` tokens
 * (byte fallback), or the unknown token when the vocabulary lacks them.
 *
 * Only normal and user-defined pieces take part: control, unknown, byte and
 * unused pieces are never produced from text (sentencepiece keeps them out of
 * its piece table). The whole fragment is one sequence (no whitespace
 * pre-split); a priority queue keeps it O(n log n).
 */
#include <string.h>

#include "tokenizer/merge_queue.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

typedef struct spm_sym {
    uint32_t start, len; /* bytes of the escaped text; len 0 once merged away */
    uint32_t prev, next; /* UINT32_MAX / n = none */
} spm_sym;

/* The piece spelled s[0..n) if it may come out of text, else -1. */
static int32_t piece_id(const realm_tokenizer_t *t, const char *s, size_t n)
{
    int32_t id = realm__strmap_find(&t->by_text, s, n);
    if (id < 0) return -1;
    realm_token_type ty = t->types[id];
    return ty == REALM_TOKEN_TYPE_NORMAL || ty == REALM_TOKEN_TYPE_USER_DEFINED ? id : -1;
}

/* Queue the merge of l with its neighbour r if their text is a piece. The
 * entry keeps r (a) and the pair's size (b): symbols only grow, so the same
 * neighbour and size mean the entry is current. */
static void try_queue(const realm_tokenizer_t *t, const char *text, const spm_sym *sy,
                      realm__cand *h, size_t *nh, uint32_t l, uint32_t r)
{
    uint32_t size = sy[l].len + sy[r].len;
    int32_t id = piece_id(t, text + sy[l].start, size);
    if (id < 0) return;
    float score = t->scores ? t->scores[id] : 0.0f;
    realm__cand c = {.key = realm__cand_key(realm__score_priority(score), l),
                     .a = (int32_t)r,
                     .b = (int32_t)size};
    realm__queue_push(h, nh, c);
}

/* A symbol that is not a piece: its bytes as byte tokens, or the unknown
 * token — one for a whole run of such symbols, as sentencepiece (and HF's
 * fuse_unk) does. *in_unk tells whether the previous symbol ended as unknown. */
static realm_status fallback(const realm_tokenizer_t *t, const unsigned char *s, size_t n,
                             bool *in_unk, realm_token_vec *out)
{
    bool all = true;
    for (size_t i = 0; i < n; i++)
        all = all && t->byte_token[s[i]] >= 0;
    if (!all) {
        int32_t unk = t->special[REALM_SPECIAL_UNK];
        if (*in_unk || unk < 0) return REALM_OK;
        *in_unk = true;
        return realm_token_vec_push(out, unk);
    }
    *in_unk = false;
    for (size_t i = 0; i < n; i++) {
        realm_status st = realm_token_vec_push(out, t->byte_token[s[i]]);
        if (st) return st;
    }
    return REALM_OK;
}

realm_status realm__spm_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                               bool prefix_space, realm__scratch *s, realm_token_vec *out,
                               realm_error *err)
{
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t elen = len + 2 * spaces + (prefix_space ? 3 : 0);
    if (elen >= UINT32_MAX / 2 || realm__scratch_reserve((void **)&s->buf, &s->buf_cap, elen + 1) ||
        realm__scratch_reserve(&s->sym, &s->sym_cap, elen * sizeof(spm_sym)) ||
        realm__scratch_reserve(&s->heap, &s->heap_cap, (elen + 1) * sizeof(realm__cand)))
        return realm_error_set(err, REALM_E_NOMEM, "tokenize: out of memory");
    char *e = s->buf;
    size_t o = 0;
    if (prefix_space) {
        memcpy(e, "\xE2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + o, "\xE2\x96\x81", 3);
            o += 3;
        } else {
            e[o++] = text[i];
        }
    }
    spm_sym *sy = s->sym;
    uint32_t n = 0;
    for (size_t i = 0; i < elen; n++) {
        /* The input was validated, so every lead byte is well-formed. */
        size_t cl = realm_utf8_lead_len((unsigned char)e[i]);
        sy[n].start = (uint32_t)i;
        sy[n].len = (uint32_t)cl;
        sy[n].prev = n ? n - 1 : UINT32_MAX;
        sy[n].next = n + 1;
        i += cl;
    }
    realm__cand *h = s->heap;
    size_t nh = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        try_queue(t, e, sy, h, &nh, i, i + 1);
    /* Each merge pops one entry and queues at most two: grow as needed. */
    while (nh) {
        if ((nh + 2) * sizeof(realm__cand) > s->heap_cap) {
            if (realm__scratch_reserve(&s->heap, &s->heap_cap, (nh + 2) * sizeof(realm__cand)))
                return realm_error_set(err, REALM_E_NOMEM, "tokenize: out of memory");
            h = s->heap;
        }
        realm__cand c = realm__queue_pop(h, &nh);
        uint32_t li = realm__cand_left(&c), ri = (uint32_t)c.a;
        spm_sym *l = &sy[li], *r = &sy[ri];
        if (l->len == 0 || r->len == 0 || l->next != ri || l->len + r->len != (uint32_t)c.b)
            continue;
        l->len += r->len;
        l->next = r->next;
        r->len = 0;
        if (l->next < n) sy[l->next].prev = li;
        if (l->prev != UINT32_MAX) try_queue(t, e, sy, h, &nh, l->prev, li);
        if (l->next < n) try_queue(t, e, sy, h, &nh, li, l->next);
    }
    bool in_unk = false;
    for (uint32_t i = 0; i < n; i = sy[i].next) {
        int32_t id = piece_id(t, e + sy[i].start, sy[i].len);
        realm_status st;
        if (id >= 0) {
            in_unk = false;
            st = realm_token_vec_push(out, id);
        } else {
            st = fallback(t, (const unsigned char *)e + sy[i].start, sy[i].len, &in_unk, out);
        }
        if (st) return realm_error_set(err, st, "tokenize: out of memory");
    }
    return REALM_OK;
}
