/*
 * tests/fuzz/fuzz_tokenizer.c — libFuzzer driver for the tokenizer.
 *
 * The first input byte picks a tokenizer (byte-level BPE with each
 * pre-tokenizer family, or SentencePiece with byte fallback) and the flags;
 * the rest is the text. Invariants checked on every input:
 *  - encode either fails with REALM_E_INVALID (and only for invalid UTF-8) or
 *    succeeds with ids inside the vocabulary;
 *  - decoding those ids gives the text back exactly (BPE always; SPM when no
 *    special token split the text, since each fragment gets a dummy prefix,
 *    and the text has no literal "▁", which SentencePiece reads as a space);
 *  - the same bytes read as int32 ids decode without a crash, out-of-range
 *    ids failing with REALM_E_RANGE, and the streaming detokenizer only ever
 *    writes valid UTF-8.
 * The vocabularies are small and built here (all 256 bytes plus merges and
 * special tokens), so the fuzzer needs no model file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static const char *const pres[] = {"gpt2", "smollm", "llama-bpe", "qwen2"};
#define N_TOK 5 /* 4 BPE + 1 SPM */
static realm_tokenizer_t *toks[N_TOK];

static char bpe_text[400][8];
static const char *bpe_tokens[400];
static int32_t bpe_types[400];
static const char *const bpe_merges[] = {
    "\xC4\xA0 t",
    "h e",
    "t h",
    "i n",
    "\xC4\xA0t he",
    "a n",
    "e r",
    "o n",
    "l l",
    "in g",
    "\xC4\xA0 a",
    "r e",
    "1 2",
    "\xC4\xA0 \xC4\xA0",
    "\xC4\xA0\xC4\xA0 \xC4\xA0\xC4\xA0",
    "\xC3\xA6 \xC2\x9D",
    "\xC3\xA6\xC2\x9D \xC2\xB1", /* 東 as bytes */
};
static const char *const bpe_extra[] = {"\xC4\xA0t",
                                        "he",
                                        "th",
                                        "in",
                                        "\xC4\xA0the",
                                        "an",
                                        "er",
                                        "on",
                                        "ll",
                                        "ing",
                                        ("\xC4\xA0"
                                         "a"),
                                        "re",
                                        "12",
                                        "\xC4\xA0\xC4\xA0",
                                        "\xC4\xA0\xC4\xA0\xC4\xA0\xC4\xA0",
                                        "\xC3\xA6\xC2\x9D",
                                        "\xC3\xA6\xC2\x9D\xC2\xB1"};

static void gpt2_char(unsigned b, char out[8])
{
    unsigned cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        unsigned n = 0;
        for (unsigned c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
        cp = 256 + n;
    }
    out[realm_utf8_encode(cp, out)] = 0;
}

static void build(void)
{
    int32_t n = 0;
    for (unsigned b = 0; b < 256; b++, n++) {
        gpt2_char(b, bpe_text[n]);
        bpe_tokens[n] = bpe_text[n];
        bpe_types[n] = REALM_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < sizeof bpe_extra / sizeof bpe_extra[0]; i++, n++) {
        bpe_tokens[n] = bpe_extra[i];
        bpe_types[n] = REALM_TOKEN_TYPE_NORMAL;
    }
    bpe_tokens[n] = "<|endoftext|>";
    bpe_types[n++] = REALM_TOKEN_TYPE_CONTROL;
    bpe_tokens[n] = "<|im_start|>";
    bpe_types[n++] = REALM_TOKEN_TYPE_CONTROL;
    bpe_tokens[n] = "<tool>";
    bpe_types[n++] = REALM_TOKEN_TYPE_USER_DEFINED;
    for (int k = 0; k < 4; k++) {
        realm_tokenizer_desc d;
        realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_BPE);
        d.pre = pres[k];
        d.n_tokens = n;
        d.tokens = bpe_tokens;
        d.types = bpe_types;
        d.merges = bpe_merges;
        d.n_merges = sizeof bpe_merges / sizeof bpe_merges[0];
        d.special[REALM_SPECIAL_EOS] = n - 3;
        CHECK(realm_tokenizer_init(&d, &toks[k], NULL) == REALM_OK);
    }

    static char byte_names[256][8];
    static const char *spm_tokens[300];
    static float spm_scores[300];
    static int32_t spm_types[300];
    static const char *const pieces[] = {"\xE2\x96\x81",
                                         "\xE2\x96\x81t",
                                         "he",
                                         "\xE2\x96\x81the",
                                         "a",
                                         "e",
                                         "h",
                                         "t",
                                         "n",
                                         "\xE2\x96\x81\xE2\x96\x81",
                                         "an"};
    int32_t m = 0;
    spm_tokens[m] = "<unk>";
    spm_types[m++] = REALM_TOKEN_TYPE_UNKNOWN;
    spm_tokens[m] = "<s>";
    spm_types[m++] = REALM_TOKEN_TYPE_CONTROL;
    spm_tokens[m] = "</s>";
    spm_types[m++] = REALM_TOKEN_TYPE_CONTROL;
    for (unsigned b = 0; b < 256; b++, m++) {
        snprintf(byte_names[b], sizeof byte_names[b], "<0x%02X>", b);
        spm_tokens[m] = byte_names[b];
        spm_types[m] = REALM_TOKEN_TYPE_BYTE;
    }
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++, m++) {
        spm_tokens[m] = pieces[i];
        spm_scores[m] = -(float)i;
        spm_types[m] = REALM_TOKEN_TYPE_NORMAL;
    }
    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_SPM);
    d.n_tokens = m;
    d.tokens = spm_tokens;
    d.scores = spm_scores;
    d.types = spm_types;
    d.special[REALM_SPECIAL_UNK] = 0;
    d.special[REALM_SPECIAL_BOS] = 1;
    d.special[REALM_SPECIAL_EOS] = 2;
    CHECK(realm_tokenizer_init(&d, &toks[4], NULL) == REALM_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!toks[0]) build();
    if (size < 1) return 0;
    unsigned sel = data[0];
    const realm_tokenizer_t *t = toks[sel % N_TOK];
    bool parse_special = sel & 0x10, add_special = sel & 0x20;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    realm_token_vec v = {0};
    realm_error err;
    unsigned flags = (parse_special ? REALM_TOKENIZE_PARSE_SPECIAL : 0) |
                     (add_special ? REALM_TOKENIZE_ADD_SPECIAL : 0);
    realm_status st = realm_tokenizer_encode(t, text, len, flags, &v, &err);
    bool valid = realm_utf8_invalid_offset(text, len) == len;
    CHECK(valid ? st == REALM_OK : st == REALM_E_INVALID);
    if (st == REALM_OK) {
        int32_t nv = realm_tokenizer_n_vocab(t);
        bool special_seen = false;
        for (size_t i = 0; i < v.n; i++) {
            CHECK(v.ids[i] >= 0 && v.ids[i] < nv);
            special_seen |= realm_tokenizer_token_type(t, v.ids[i]) != REALM_TOKEN_TYPE_NORMAL &&
                            realm_tokenizer_token_type(t, v.ids[i]) != REALM_TOKEN_TYPE_BYTE;
        }
        char *dec;
        size_t dlen;
        CHECK(realm_tokenizer_decode(t, v.ids, v.n, REALM_DETOK_SPECIAL, &dec, &dlen, NULL) ==
              REALM_OK);
        bool spm = realm_tokenizer_get_kind(t) == REALM_TOKENIZER_KIND_SPM;
        /* SentencePiece cannot tell a typed "▁" from an escaped space. */
        bool has_sp = false;
        for (size_t i = 0; spm && i + 3 <= len; i++)
            has_sp |= !memcmp(text + i, "\xE2\x96\x81", 3);
        if (!spm || (!special_seen && !has_sp)) CHECK(dlen == len && !memcmp(dec, text, len));
        realm_free(dec);
    }
    realm_token_vec_free(&v);

    /* The same bytes as ids, streamed. */
    realm_detok d;
    realm_detok_init(&d, t, sel & 0x40 ? REALM_DETOK_SPECIAL : 0);
    size_t cap = realm_detok_max_output(t);
    char *out = malloc(cap);
    CHECK(out);
    for (size_t i = 1; i + 4 <= size; i += 4) {
        int32_t id;
        memcpy(&id, data + i, 4);
        if (sel & 0x80) id = (int32_t)((uint32_t)id % 600u) - 20; /* mostly in range */
        size_t n;
        st = realm_detok_feed(&d, id, out, cap, &n, NULL);
        CHECK(st == REALM_OK ||
              (st == REALM_E_RANGE && (id < 0 || id >= realm_tokenizer_n_vocab(t))));
        CHECK(realm_utf8_invalid_offset(out, n) == n);
    }
    size_t n = realm_detok_flush(&d, out, cap);
    CHECK(realm_utf8_invalid_offset(out, n) == n);
    free(out);
    return 0;
}
