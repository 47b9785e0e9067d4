/*
 * Streaming detokenizer: a token's bytes (precomputed in vocab.c) go through
 * a small UTF-8 assembler that holds back an incomplete character between
 * feeds, so a stream cut at any token boundary is still valid UTF-8.
 */
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

#define REPLACEMENT "\xEF\xBF\xBD"

void realm_detok_init(realm_detok *d, const realm_tokenizer_t *t, unsigned flags)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->flags = flags;
    d->at_start = true;
}

size_t realm_detok_max_output(const realm_tokenizer_t *t)
{
    /* Held-back bytes plus the token, each byte at worst a 3-byte U+FFFD. */
    return 3 * (t->max_token_bytes + 4);
}

/* true when s[0..n) (n < its announced length) can still become a valid
 * character once more bytes arrive. */
static bool valid_prefix(const unsigned char *s, size_t n)
{
    if (n >= 2 && !realm_utf8_second_ok(s[0], s[1])) return false;
    return n < 3 || (s[2] & 0xC0) == 0x80;
}

/* Move complete characters of in[0..n) to out, invalid bytes as U+FFFD, and
 * keep a trailing incomplete character in d->pending. */
static size_t assemble(realm_detok *d, const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] < 0x80) {
            out[o++] = (char)in[i++];
            continue;
        }
        size_t l = realm_utf8_seq_len(in + i, n - i);
        if (l) {
            memcpy(out + o, in + i, l);
            o += l;
            i += l;
            continue;
        }
        size_t want = realm_utf8_lead_len(in[i]);
        if (want > n - i && valid_prefix(in + i, n - i)) {
            memcpy(d->pending, in + i, n - i);
            d->n_pending = (uint8_t)(n - i);
            return o;
        }
        memcpy(out + o, REPLACEMENT, 3);
        o += 3;
        i++;
    }
    return o;
}

realm_status realm_detok_feed(realm_detok *d, int32_t id, char *out, size_t cap, size_t *n_out,
                              realm_error *err)
{
    const realm_tokenizer_t *t = d->tok;
    *n_out = 0;
    if (id < 0 || id >= t->n_vocab)
        return realm_error_set(err, REALM_E_RANGE,
                               "detokenize: token id %d out of range (vocabulary of %d)", id,
                               t->n_vocab);
    if (cap < realm_detok_max_output(t))
        return realm_error_set(err, REALM_E_RANGE, "detokenize: output buffer of %zu < %zu bytes",
                               cap, realm_detok_max_output(t));
    const char *p;
    size_t n;
    realm_tokenizer_token_bytes(t, id, &p, &n);
    realm_token_type ty = t->types[id];
    bool special = d->flags & REALM_DETOK_SPECIAL;
    if (ty == REALM_TOKEN_TYPE_CONTROL && !special) return REALM_OK;
    if (ty == REALM_TOKEN_TYPE_UNKNOWN && !special) {
        p = REPLACEMENT;
        n = 3;
    }
    if (n == 0) return REALM_OK;
    if (d->at_start) {
        d->at_start = false;
        if (t->add_space_prefix && p[0] == ' ' && ty != REALM_TOKEN_TYPE_CONTROL) {
            p++;
            n--;
        }
    }
    size_t o = 0;
    if (d->n_pending) {
        /* Finish the held-back character first with the continuation bytes
         * it still needs. */
        unsigned char buf[4];
        size_t k = d->n_pending, want = realm_utf8_lead_len(d->pending[0]);
        memcpy(buf, d->pending, k);
        d->n_pending = 0;
        while (k < want && n > 0 && ((unsigned char)*p & 0xC0) == 0x80) {
            buf[k++] = (unsigned char)*p++;
            n--;
        }
        if (k < want && n == 0) { /* the token was all continuation bytes: wait on */
            memcpy(d->pending, buf, k);
            d->n_pending = (uint8_t)k;
            return REALM_OK;
        }
        if (k < want) { /* cut short by a byte that cannot continue it */
            for (size_t i = 0; i < k; i++, o += 3)
                memcpy(out + o, REPLACEMENT, 3);
        } else {
            o = assemble(d, buf, k, out);
        }
    }
    o += assemble(d, (const unsigned char *)p, n, out + o);
    *n_out = o;
    return REALM_OK;
}

size_t realm_detok_flush(realm_detok *d, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < d->n_pending && o + 3 <= cap; i++, o += 3)
        memcpy(out + o, REPLACEMENT, 3);
    d->n_pending = 0;
    d->at_start = true;
    return o;
}

realm_status realm_tokenizer_decode(const realm_tokenizer_t *t, const int32_t *ids, size_t n,
                                    unsigned flags, char **text, size_t *len, realm_error *err)
{
    *text = NULL;
    *len = 0;
    size_t piece = realm_detok_max_output(t);
    size_t cap = piece + 16, o = 0;
    char *buf = realm_malloc(cap);
    if (!buf) return realm_error_set(err, REALM_E_NOMEM, "detokenize: out of memory");
    realm_detok d;
    realm_detok_init(&d, t, flags);
    for (size_t i = 0; i < n; i++) {
        if (cap - o < piece + 16) {
            char *q = realm_realloc(buf, cap * 2);
            if (!q) {
                realm_free(buf);
                return realm_error_set(err, REALM_E_NOMEM, "detokenize: out of memory");
            }
            buf = q;
            cap *= 2;
        }
        size_t w;
        realm_status st = realm_detok_feed(&d, ids[i], buf + o, cap - o, &w, err);
        if (st) {
            realm_free(buf);
            return st;
        }
        o += w;
    }
    o += realm_detok_flush(&d, buf + o, cap - o - 1);
    buf[o] = 0;
    *text = buf;
    *len = o;
    return REALM_OK;
}
