/*
 * Vocabulary: building a tokenizer from a desc (or a GGUF file's
 * `tokenizer.ggml.*` keys), the lookup tables, special tokens, and the encode
 * driver that cuts input at whole-matched tokens and hands the text between
 * them to BPE or SPM.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

/* ---- hashing and maps ---- */

uint64_t realm__hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

realm_status realm__strmap_build(realm__strmap *m, const char *blob, const uint32_t *off, int32_t n,
                                 const uint8_t *keep)
{
    uint32_t cap = pow2_at_least((uint64_t)n * 2 + 1);
    m->mask = cap - 1;
    m->blob = blob;
    m->off = off;
    m->slots = realm_malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return REALM_E_NOMEM;
    for (uint32_t i = 0; i < cap; i++)
        m->slots[i].id = -1;
    for (int32_t id = 0; id < n; id++) {
        if (keep && !keep[id]) continue;
        const char *k = blob + off[id];
        size_t len = off[id + 1] - off[id];
        if (realm__strmap_find(m, k, len) >= 0) continue;
        uint64_t h = realm__hash_bytes(k, len);
        uint32_t i = (uint32_t)h & m->mask;
        while (m->slots[i].id >= 0)
            i = (i + 1) & m->mask;
        m->slots[i] = (realm__strmap_slot){.id = id, .hash = (uint32_t)(h >> 32)};
    }
    return REALM_OK;
}

int32_t realm__strmap_find(const realm__strmap *m, const char *key, size_t len)
{
    return realm__strmap_find_hashed(m, key, len, realm__hash_bytes(key, len));
}

int32_t realm__strmap_find_hashed(const realm__strmap *m, const char *key, size_t len, uint64_t h)
{
    uint32_t h32 = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i].id;
        if (id < 0) return -1;
        if (m->slots[i].hash == h32 && m->off[id + 1] - m->off[id] == len &&
            !memcmp(m->blob + m->off[id], key, len))
            return id;
    }
}

static void strmap_free(realm__strmap *m)
{
    realm_free(m->slots);
}

/* ---- small helpers ---- */

void realm_token_vec_free(realm_token_vec *v)
{
    if (!v) return;
    realm_free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

realm_status realm_token_vec_push(realm_token_vec *v, int32_t id)
{
    void *ids = v->ids;
    if (realm_array_reserve(&ids, &v->cap, v->n + 1, sizeof *v->ids, 64)) return REALM_E_NOMEM;
    v->ids = ids;
    v->ids[v->n++] = id;
    return REALM_OK;
}

realm_status realm__scratch_reserve(void **p, size_t *cap, size_t need)
{
    return realm_array_reserve(p, cap, need, 1, 256);
}

/* GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes are shifted to U+0100.. in byte order, so every byte has
 * a visible, unambiguous character. */
uint32_t realm_tokenizer_gpt2_byte_char(unsigned b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

/* Inverse of realm_tokenizer_gpt2_byte_char; -1 when cp is not in the alphabet. */
static int gpt2_char_byte(uint32_t cp)
{
    if (cp < 256) {
        return ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174)) ? (int)cp : -1;
    }
    if (cp >= 256 + 68) return -1;
    unsigned n = cp - 256;
    for (unsigned b = 0; b < 256; b++)
        if (realm_tokenizer_gpt2_byte_char(b) >= 256 && n-- == 0) return (int)b;
    return -1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xAB>" → 0xAB, else -1. */
static int spm_byte_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* The bytes token id stands for in text, appended at out (capacity checked by
 * the caller: at most the spelling's length). Returns the length. */
static size_t decode_token(const realm_tokenizer_t *t, int32_t id, const char *s, size_t n,
                           char *out)
{
    realm_token_type type = t->types[id];
    if (type == REALM_TOKEN_TYPE_CONTROL || type == REALM_TOKEN_TYPE_UNKNOWN) {
        memcpy(out, s, n);
        return n;
    }
    size_t o = 0;
    if (t->kind == REALM_TOKENIZER_KIND_SPM) {
        int b = type == REALM_TOKEN_TYPE_BYTE ? spm_byte_value(s, n) : -1;
        if (b >= 0) {
            out[0] = (char)b;
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                out[o++] = ' ';
                i += 3;
            } else {
                out[o++] = s[i++];
            }
        }
        return o;
    }
    if (type == REALM_TOKEN_TYPE_USER_DEFINED) {
        memcpy(out, s, n);
        return n;
    }
    /* Byte-level: each alphabet character is one byte; anything else (not
     * expected in a byte-level vocabulary) is kept as its UTF-8. */
    for (size_t i = 0; i < n;) {
        size_t l = realm_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (l == 0) {
            out[o++] = s[i++];
            continue;
        }
        int b = gpt2_char_byte(realm_utf8_decode((const unsigned char *)s + i, l));
        if (b >= 0) {
            out[o++] = (char)b;
        } else {
            memcpy(out + o, s + i, l);
            o += l;
        }
        i += l;
    }
    return o;
}

/* ---- building ---- */

void realm_tokenizer_desc_defaults(realm_tokenizer_desc *d, realm_tokenizer_kind kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    for (int i = 0; i < REALM_SPECIAL_COUNT; i++)
        d->special[i] = -1;
    /* SentencePiece models (Llama 1/2, Mistral) expect a BOS and the dummy
     * prefix unless the file says otherwise; byte-level BPE files say so. */
    d->add_bos = kind == REALM_TOKENIZER_KIND_SPM;
    d->add_space_prefix = kind == REALM_TOKENIZER_KIND_SPM;
}

void realm_tokenizer_free(realm_tokenizer_t *t)
{
    if (!t) return;
    realm_free(t->text_blob);
    realm_free(t->text_off);
    realm_free(t->bytes_blob);
    realm_free(t->bytes_off);
    realm_free(t->types);
    realm_free(t->scores);
    strmap_free(&t->by_text);
    strmap_free(&t->by_bytes);
    realm_free(t->merges.slots);
    realm__pretok_free(t->pretok);
    realm_free(t->matchable);
    realm_free(t);
}

static size_t desc_token_len(const realm_tokenizer_desc *d, int32_t i)
{
    return d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
}

/* Copy spellings and types, decode every token's bytes. */
static realm_status build_tokens(realm_tokenizer_t *t, const realm_tokenizer_desc *d,
                                 realm_error *err)
{
    int32_t n = d->n_tokens;
    uint64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!d->tokens[i])
            return realm_error_set(err, REALM_E_INVALID, "tokenizer: token %d is NULL", i);
        total += desc_token_len(d, i);
    }
    if (total >= UINT32_MAX)
        return realm_error_set(err, REALM_E_UNSUPPORTED, "tokenizer: vocabulary text too large");
    t->text_blob = realm_malloc(total + 1);
    t->bytes_blob = realm_malloc(total + 1);
    t->text_off = realm_calloc((size_t)n + 1, sizeof *t->text_off);
    t->bytes_off = realm_calloc((size_t)n + 1, sizeof *t->bytes_off);
    t->types = realm_malloc((size_t)n + 1);
    if (!t->text_blob || !t->bytes_blob || !t->text_off || !t->bytes_off || !t->types)
        return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
    if (d->scores) {
        t->scores = realm_calloc((size_t)n + 1, sizeof *t->scores);
        if (!t->scores) return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
        memcpy(t->scores, d->scores, (size_t)n * sizeof *t->scores);
    }
    uint32_t o = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = d->types ? d->types[i] : REALM_TOKEN_TYPE_NORMAL;
        if (ty < 0 || ty >= REALM_TOKEN_TYPE_COUNT)
            return realm_error_set(err, REALM_E_FORMAT, "tokenizer: token %d has unknown type %d",
                                   i, ty);
        /* Older converters wrote 0 for ordinary tokens. */
        t->types[i] = (uint8_t)(ty == REALM_TOKEN_TYPE_UNDEFINED ? REALM_TOKEN_TYPE_NORMAL : ty);
        size_t len = desc_token_len(d, i);
        memcpy(t->text_blob + o, d->tokens[i], len);
        t->text_off[i] = o;
        o += (uint32_t)len;
        if (len > t->max_token_bytes) t->max_token_bytes = len;
    }
    t->text_off[n] = o;
    uint32_t b = 0;
    for (int32_t i = 0; i < n; i++) {
        t->bytes_off[i] = b;
        b += (uint32_t)decode_token(t, i, t->text_blob + t->text_off[i],
                                    t->text_off[i + 1] - t->text_off[i], t->bytes_blob + b);
    }
    t->bytes_off[n] = b;
    return REALM_OK;
}

static int cmp_matchable(const void *a, const void *b, const realm_tokenizer_t *t)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    unsigned char fx = (unsigned char)t->text_blob[t->text_off[x]];
    unsigned char fy = (unsigned char)t->text_blob[t->text_off[y]];
    if (fx != fy) return fx < fy ? -1 : 1;
    uint32_t lx = t->text_off[x + 1] - t->text_off[x], ly = t->text_off[y + 1] - t->text_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Tokens matched whole in the input: control, unknown and user-defined ones
 * with a non-empty, valid UTF-8 spelling (so a match never splits a
 * character and the text around it stays valid). */
static bool is_matchable(const realm_tokenizer_t *t, int32_t i)
{
    realm_token_type ty = t->types[i];
    const char *s = t->text_blob + t->text_off[i];
    size_t len = t->text_off[i + 1] - t->text_off[i];
    return (ty == REALM_TOKEN_TYPE_CONTROL || ty == REALM_TOKEN_TYPE_UNKNOWN ||
            ty == REALM_TOKEN_TYPE_USER_DEFINED) &&
           len > 0 && realm_utf8_invalid_offset(s, len) == len;
}

static realm_status build_matchable(realm_tokenizer_t *t, realm_error *err)
{
    uint32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        n += is_matchable(t, i);
    t->matchable = realm_malloc(((size_t)n + 1) * sizeof *t->matchable);
    if (!t->matchable) return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (is_matchable(t, i)) t->matchable[n++] = i;
    t->n_matchable = n;
    for (uint32_t k = 0; k < n; k++)
        t->has_user_defined |= t->types[t->matchable[k]] == REALM_TOKEN_TYPE_USER_DEFINED;
    /* Insertion sort: a few hundred entries at most in real vocabularies. */
    for (uint32_t i = 1; i < n; i++) {
        int32_t v = t->matchable[i];
        uint32_t j = i;
        while (j > 0 && cmp_matchable(&v, &t->matchable[j - 1], t) < 0) {
            t->matchable[j] = t->matchable[j - 1];
            j--;
        }
        t->matchable[j] = v;
    }
    uint32_t k = 0;
    for (unsigned b = 0; b < 256; b++) {
        t->match_begin[b] = k;
        while (k < n && (unsigned char)t->text_blob[t->text_off[t->matchable[k]]] == b)
            k++;
    }
    t->match_begin[256] = n;
    return REALM_OK;
}

/* Known end-of-turn spellings, for files that do not name one. */
static const char *const eot_spellings[] = {"<|eot_id|>",    "<|im_end|>",    "<|end|>",
                                            "<end_of_turn>", "<|endoftext|>", "<EOT>"};

realm_status realm_tokenizer_init(const realm_tokenizer_desc *d, realm_tokenizer_t **out,
                                  realm_error *err)
{
    *out = NULL;
    if (d->kind < 0 || d->kind >= REALM_TOKENIZER_KIND_COUNT)
        return realm_error_set(err, REALM_E_INVALID, "tokenizer: unknown kind %d", (int)d->kind);
    if (d->n_tokens <= 0 || !d->tokens)
        return realm_error_set(err, REALM_E_FORMAT, "tokenizer: empty vocabulary");
    realm_tokenizer_t *t = realm_calloc(1, sizeof *t);
    if (!t) return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
    t->kind = d->kind;
    t->n_vocab = d->n_tokens;
    t->add_bos = d->add_bos;
    t->add_eos = d->add_eos;
    t->add_space_prefix = d->kind == REALM_TOKENIZER_KIND_SPM && d->add_space_prefix;
    t->pre_name = "spm";
    realm_status st = build_tokens(t, d, err);
    if (st) goto fail;
    if ((st = realm__strmap_build(&t->by_text, t->text_blob, t->text_off, t->n_vocab, NULL))) {
        realm_error_set(err, st, "tokenizer: out of memory");
        goto fail;
    }
    for (int i = 0; i < REALM_SPECIAL_COUNT; i++) {
        int32_t id = d->special[i];
        if (id >= t->n_vocab) {
            realm_log(REALM_LOG_WARN, "tokenizer: special token %d id %d out of range, ignored", i,
                      id);
            id = -1;
        }
        t->special[i] = id < 0 ? -1 : id;
    }
    if (t->special[REALM_SPECIAL_EOT] < 0) {
        for (size_t i = 0; i < sizeof eot_spellings / sizeof eot_spellings[0]; i++) {
            int32_t id =
                realm__strmap_find(&t->by_text, eot_spellings[i], strlen(eot_spellings[i]));
            if (id >= 0 && t->types[id] == REALM_TOKEN_TYPE_CONTROL) {
                t->special[REALM_SPECIAL_EOT] = id;
                break;
            }
        }
        if (t->special[REALM_SPECIAL_EOT] < 0)
            t->special[REALM_SPECIAL_EOT] = t->special[REALM_SPECIAL_EOS];
    }
    for (unsigned b = 0; b < 256; b++)
        t->byte_token[b] = -1;
    if (t->kind == REALM_TOKENIZER_KIND_BPE) {
        for (unsigned b = 0; b < 256; b++) {
            char c[4];
            size_t l = realm_utf8_encode(realm_tokenizer_gpt2_byte_char(b), c);
            t->byte_token[b] = realm__strmap_find(&t->by_text, c, l);
        }
        if ((st = realm__pretok_init(d->pre, &t->pretok, &t->pre_name, &t->ignore_merges, err)) ||
            (st = realm__bpe_build_merges(t, d, err)) || (st = realm__bpe_build_whole(t, err)))
            goto fail;
    } else {
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (t->types[i] != REALM_TOKEN_TYPE_BYTE) continue;
            int b =
                spm_byte_value(t->text_blob + t->text_off[i], t->text_off[i + 1] - t->text_off[i]);
            if (b >= 0 && t->byte_token[b] < 0) t->byte_token[b] = i;
        }
    }
    if ((st = build_matchable(t, err))) goto fail;
    *out = t;
    return REALM_OK;
fail:
    realm_tokenizer_free(t);
    return st;
}

/* ---- accessors ---- */

realm_tokenizer_kind realm_tokenizer_get_kind(const realm_tokenizer_t *t)
{
    return t->kind;
}
const char *realm_tokenizer_pre_name(const realm_tokenizer_t *t)
{
    return t->pre_name;
}
int32_t realm_tokenizer_n_vocab(const realm_tokenizer_t *t)
{
    return t->n_vocab;
}
int32_t realm_tokenizer_special(const realm_tokenizer_t *t, realm_special_token which)
{
    return which < REALM_SPECIAL_COUNT ? t->special[which] : -1;
}
bool realm_tokenizer_add_bos(const realm_tokenizer_t *t)
{
    return t->add_bos;
}
bool realm_tokenizer_add_eos(const realm_tokenizer_t *t)
{
    return t->add_eos;
}
bool realm_tokenizer_add_space_prefix(const realm_tokenizer_t *t)
{
    return t->add_space_prefix;
}
size_t realm_tokenizer_max_token_bytes(const realm_tokenizer_t *t)
{
    return t->max_token_bytes;
}

realm_token_type realm_tokenizer_token_type(const realm_tokenizer_t *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? (realm_token_type)t->types[id] : REALM_TOKEN_TYPE_UNDEFINED;
}

realm_status realm_tokenizer_token_text(const realm_tokenizer_t *t, int32_t id, const char **ptr,
                                        size_t *len)
{
    if (id < 0 || id >= t->n_vocab) return REALM_E_RANGE;
    *ptr = t->text_blob + t->text_off[id];
    *len = t->text_off[id + 1] - t->text_off[id];
    return REALM_OK;
}

realm_status realm_tokenizer_token_bytes(const realm_tokenizer_t *t, int32_t id, const char **ptr,
                                         size_t *len)
{
    if (id < 0 || id >= t->n_vocab) return REALM_E_RANGE;
    *ptr = t->bytes_blob + t->bytes_off[id];
    *len = t->bytes_off[id + 1] - t->bytes_off[id];
    return REALM_OK;
}

int32_t realm_tokenizer_find(const realm_tokenizer_t *t, const char *text, size_t len)
{
    return realm__strmap_find(&t->by_text, text, len);
}

/* ---- encoding ---- */

/* Longest whole-matched token at s[0..n) that flags allow, or -1. */
static int32_t match_special(const realm_tokenizer_t *t, const char *s, size_t n,
                             bool parse_special, size_t *mlen)
{
    unsigned char c = (unsigned char)s[0];
    for (uint32_t k = t->match_begin[c]; k < t->match_begin[c + 1]; k++) {
        int32_t id = t->matchable[k];
        if (!parse_special && t->types[id] != REALM_TOKEN_TYPE_USER_DEFINED) continue;
        size_t len = t->text_off[id + 1] - t->text_off[id];
        if (len <= n && !memcmp(s, t->text_blob + t->text_off[id], len)) {
            *mlen = len;
            return id;
        }
    }
    return -1;
}

/* Text between whole-matched tokens. For SPM every such fragment gets the
 * dummy prefix, as llama.cpp does: each is tokenized as its own text, and a
 * fragment always starts the input or follows a matched token. */
static realm_status encode_fragment(const realm_tokenizer_t *t, const char *s, size_t n,
                                    realm__scratch *sc, realm_token_vec *out, realm_error *err)
{
    if (t->kind == REALM_TOKENIZER_KIND_BPE) return realm__bpe_encode(t, s, n, sc, out, err);
    return realm__spm_encode(t, s, n, t->add_space_prefix, sc, out, err);
}

realm_status realm_tokenizer_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                                    unsigned flags, realm_token_vec *out, realm_error *err)
{
    if (!text && len) return realm_error_set(err, REALM_E_INVALID, "tokenize: NULL text");
    size_t bad = realm_utf8_invalid_offset(text, len);
    if (bad < len)
        return realm_error_set(err, REALM_E_INVALID,
                               "tokenize: input is not valid UTF-8 at byte %zu (0x%02x)", bad,
                               (unsigned char)text[bad]);
    size_t n0 = out->n;
    realm__scratch sc = {0};
    realm_status st = REALM_OK;
    bool add_special = flags & REALM_TOKENIZE_ADD_SPECIAL;
    bool parse_special = flags & REALM_TOKENIZE_PARSE_SPECIAL;
    if (t->kind == REALM_TOKENIZER_KIND_BPE && len > 0) {
        sc.match_data = realm__pretok_match_data(t->pretok);
        if (!sc.match_data) {
            st = realm_error_set(err, REALM_E_NOMEM, "tokenize: out of memory");
            goto done;
        }
    }
    if (add_special && t->add_bos && t->special[REALM_SPECIAL_BOS] >= 0 &&
        (st = realm_token_vec_push(out, t->special[REALM_SPECIAL_BOS])))
        goto nomem;
    size_t frag = 0;
    /* Without a token that may match, the text is one fragment. */
    size_t scan_end = (parse_special ? t->n_matchable : t->has_user_defined) ? len : 0;
    for (size_t i = 0; i < scan_end;) {
        unsigned char c = (unsigned char)text[i];
        size_t mlen;
        int32_t id;
        if (t->match_begin[c] == t->match_begin[c + 1] ||
            (id = match_special(t, text + i, len - i, parse_special, &mlen)) < 0) {
            i++;
            continue;
        }
        if (i > frag && (st = encode_fragment(t, text + frag, i - frag, &sc, out, err))) goto done;
        if ((st = realm_token_vec_push(out, id))) goto nomem;
        i += mlen;
        frag = i;
    }
    if (frag < len && (st = encode_fragment(t, text + frag, len - frag, &sc, out, err))) goto done;
    if (add_special && t->add_eos && t->special[REALM_SPECIAL_EOS] >= 0 &&
        (st = realm_token_vec_push(out, t->special[REALM_SPECIAL_EOS])))
        goto nomem;
    goto done;
nomem:
    realm_error_set(err, st, "tokenize: out of memory");
done:
    if (st) out->n = n0;
    realm_free(sc.sym);
    realm_free(sc.heap);
    realm_free(sc.buf);
    realm__word_cache_free(sc.cache);
    if (sc.match_data) realm__pretok_match_data_free(sc.match_data);
    return st;
}
