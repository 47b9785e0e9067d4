/* Unit tests for tokenizer/: hand-made vocabularies pin the BPE and SPM
 * algorithms (merge order, ties, ignore_merges, byte fallback, unknown
 * fusion, special tokens), the pre-tokenizer regexes are checked against
 * splits HF `tokenizers` produced (pretok_fixture.h, generated), and bad
 * input (invalid UTF-8, NUL bytes, 10 MB without a space, ids out of range)
 * has defined results. The oracle test covers real vocabularies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

typedef struct pretok_case {
    const char *pre;
    const char *text;
    size_t len;
    int n;
    const uint32_t *ends;
} pretok_case;
#include "tokenizer/pretok_fixture.h"

/* ---- helpers ---- */

/* GPT-2's byte alphabet, written from its definition: printable Latin-1
 * stands for itself, the other bytes take U+0100.. in order. */
static void gpt2_char(unsigned b, char out[5])
{
    unsigned cp;
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    if (printable) {
        cp = b;
    } else {
        unsigned n = 0;
        for (unsigned c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
        cp = 256 + n;
    }
    size_t l = realm_utf8_encode(cp, out);
    out[l] = 0;
}

/* A byte-level vocabulary: ids 0..255 are the bytes (in byte order), then
 * extra tokens (already in alphabet spelling), then merges. */
typedef struct bpe_vocab {
    char bytes[256][5];
    const char *tokens[300];
    int32_t types[300];
    int32_t n;
} bpe_vocab;

static void bpe_vocab_init(bpe_vocab *v)
{
    for (unsigned b = 0; b < 256; b++) {
        gpt2_char(b, v->bytes[b]);
        v->tokens[b] = v->bytes[b];
        v->types[b] = REALM_TOKEN_TYPE_NORMAL;
    }
    v->n = 256;
}

static int32_t bpe_add(bpe_vocab *v, const char *tok, int32_t type)
{
    v->tokens[v->n] = tok;
    v->types[v->n] = type;
    return v->n++;
}

static realm_tokenizer_t *make_bpe(bpe_vocab *v, const char *pre, const char *const *merges,
                                   int64_t n_merges)
{
    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_BPE);
    d.pre = pre;
    d.n_tokens = v->n;
    d.tokens = v->tokens;
    d.types = v->types;
    d.merges = merges;
    d.n_merges = n_merges;
    realm_tokenizer_t *t = NULL;
    realm_error err;
    realm_status st = realm_tokenizer_init(&d, &t, &err);
    if (st) fprintf(stderr, "init: %s\n", err.message);
    assert_int_equal(st, REALM_OK);
    return t;
}

/* Encode and compare with the expected ids (terminated by -1). */
static void expect_ids(const realm_tokenizer_t *t, const char *text, size_t len, unsigned flags,
                       const int32_t *want)
{
    realm_token_vec v = {0};
    realm_error err;
    realm_status st = realm_tokenizer_encode(t, text, len, flags, &v, &err);
    if (st) fprintf(stderr, "encode: %s\n", err.message);
    assert_int_equal(st, REALM_OK);
    size_t n = 0;
    while (want[n] >= 0)
        n++;
    if (v.n != n || (n && memcmp(v.ids, want, n * sizeof *want))) {
        fprintf(stderr, "text \"%.*s\": got", (int)len, text);
        for (size_t i = 0; i < v.n; i++)
            fprintf(stderr, " %d", v.ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
    realm_token_vec_free(&v);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__, -1})
#define NO_IDS   ((const int32_t[]){-1})

/* Decode ids and compare with text. */
static void expect_decode(const realm_tokenizer_t *t, const int32_t *ids, size_t n, unsigned flags,
                          const char *want, size_t want_len)
{
    char *s;
    size_t len;
    realm_error err;
    assert_int_equal(realm_tokenizer_decode(t, ids, n, flags, &s, &len, &err), REALM_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(s, want, len);
    realm_free(s);
}

static void round_trip(const realm_tokenizer_t *t, const char *text, size_t len)
{
    realm_token_vec v = {0};
    realm_error err;
    assert_int_equal(realm_tokenizer_encode(t, text, len, 0, &v, &err), REALM_OK);
    expect_decode(t, v.ids, v.n, 0, text, len);
    realm_token_vec_free(&v);
}

/* ---- byte-level BPE ---- */

static void test_bpe_merges_by_rank(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t he = bpe_add(&v, "he", 1), ll = bpe_add(&v, "ll", 1), hell = bpe_add(&v, "hell", 1);
    int32_t hello = bpe_add(&v, "hello", 1), gw = bpe_add(&v, "\xC4\xA0w", 1); /* "Ġw" */
    int32_t lo = bpe_add(&v, "lo", 1);
    /* "l o" ranks after "he ll": in "hello" the rank order decides that
     * "hell"+"o" wins over "hel"+"lo". */
    const char *merges[] = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "l o"};
    realm_tokenizer_t *t = make_bpe(&v, "gpt2", merges, 6);
    expect_ids(t, "hello", 5, 0, IDS(hello));
    expect_ids(t, "hello world", 11, 0, IDS(hello, gw, 'o', 'r', 'l', 'd'));
    expect_ids(t, "helo", 4, 0, IDS(he, lo));
    expect_ids(t, "hellhell", 8, 0, IDS(hell, hell));
    (void)ll;
    expect_ids(t, "", 0, 0, NO_IDS);
    round_trip(t, "hello world\n\té東😀", strlen("hello world\n\té東😀"));
    realm_tokenizer_free(t);
}

static void test_bpe_leftmost_tie(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t aa = bpe_add(&v, "aa", 1);
    const char *merges[] = {"a a"};
    realm_tokenizer_t *t = make_bpe(&v, "gpt2", merges, 1);
    /* Equal ranks: the leftmost pair merges first. */
    expect_ids(t, "aaa", 3, 0, IDS(aa, 'a'));
    expect_ids(t, "aaaaa", 5, 0, IDS(aa, aa, 'a'));
    realm_tokenizer_free(t);
}

static void test_bpe_ignore_merges(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t ab = bpe_add(&v, "ab", 1), abc = bpe_add(&v, "abc", 1);
    const char *merges[] = {"a b"}; /* no merge reaches "abc" */
    realm_tokenizer_t *t = make_bpe(&v, "gpt2", merges, 1);
    expect_ids(t, "abc", 3, 0, IDS(ab, 'c'));
    realm_tokenizer_free(t);
    /* Llama 3 takes a piece that is a whole token as it is. */
    t = make_bpe(&v, "llama-bpe", merges, 1);
    expect_ids(t, "abc", 3, 0, IDS(abc));
    assert_string_equal(realm_tokenizer_pre_name(t), "llama-bpe");
    realm_tokenizer_free(t);
}

static void test_bpe_special_tokens(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t s1 = bpe_add(&v, "<|s|>", REALM_TOKEN_TYPE_CONTROL);
    int32_t s2 = bpe_add(&v, "<|s|>x", REALM_TOKEN_TYPE_CONTROL); /* longer, same start */
    int32_t ud = bpe_add(&v, "<think>", REALM_TOKEN_TYPE_USER_DEFINED);
    realm_tokenizer_t *t = make_bpe(&v, NULL, NULL, 0);
    /* Off: control-token text is plain text; user-defined tokens still match. */
    expect_ids(t, "<|s|>", 5, 0, IDS('<', '|', 's', '|', '>'));
    expect_ids(t, "a<think>b", 9, 0, IDS('a', ud, 'b'));
    /* On: leftmost-longest. */
    expect_ids(t, "<|s|>", 5, REALM_TOKENIZE_PARSE_SPECIAL, IDS(s1));
    expect_ids(t, "<|s|>xy", 7, REALM_TOKENIZE_PARSE_SPECIAL, IDS(s2, 'y'));
    expect_ids(t, "a<|s|><|s|>", 11, REALM_TOKENIZE_PARSE_SPECIAL, IDS('a', s1, s1));
    /* Decoding: control tokens render only when asked. */
    expect_decode(t, IDS(s1, 'a'), 2, 0, "a", 1);
    expect_decode(t, IDS(s1, 'a'), 2, REALM_DETOK_SPECIAL, "<|s|>a", 6);
    realm_tokenizer_free(t);
}

static void test_bpe_bos_eos(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t bos = bpe_add(&v, "<s>", REALM_TOKEN_TYPE_CONTROL);
    int32_t eos = bpe_add(&v, "</s>", REALM_TOKEN_TYPE_CONTROL);
    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_BPE);
    d.n_tokens = v.n;
    d.tokens = v.tokens;
    d.types = v.types;
    d.special[REALM_SPECIAL_BOS] = bos;
    d.special[REALM_SPECIAL_EOS] = eos;
    d.add_bos = d.add_eos = true;
    realm_tokenizer_t *t;
    assert_int_equal(realm_tokenizer_init(&d, &t, NULL), REALM_OK);
    expect_ids(t, "a", 1, REALM_TOKENIZE_ADD_SPECIAL, IDS(bos, 'a', eos));
    expect_ids(t, "a", 1, 0, IDS('a'));
    assert_int_equal(realm_tokenizer_special(t, REALM_SPECIAL_EOT), eos);
    realm_tokenizer_free(t);
}

/* ---- pre-tokenizer regexes against HF's splits ---- */

typedef struct collect {
    const char *base;
    uint32_t ends[4096];
    int n;
} collect;

static realm_status collect_piece(void *ctx, const char *p, size_t n)
{
    collect *c = ctx;
    if (c->n < 4096) c->ends[c->n++] = (uint32_t)(p + n - c->base);
    return REALM_OK;
}

static void test_pretok_fixture(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof pretok_cases / sizeof pretok_cases[0]; i++) {
        const pretok_case *pc = &pretok_cases[i];
        realm__pretok *p;
        const char *name;
        bool im;
        assert_int_equal(realm__pretok_init(pc->pre, &p, &name, &im, NULL), REALM_OK);
        void *md = realm__pretok_match_data(p);
        assert_non_null(md);
        collect c = {.base = pc->text};
        assert_int_equal(realm__pretok_split(p, md, pc->text, pc->len, collect_piece, &c, NULL),
                         REALM_OK);
        if (c.n != pc->n || memcmp(c.ends, pc->ends, (size_t)c.n * sizeof c.ends[0])) {
            fprintf(stderr, "%s split of \"%.*s\" differs:", pc->pre, (int)pc->len, pc->text);
            for (int k = 0; k < c.n; k++)
                fprintf(stderr, " %u", c.ends[k]);
            fprintf(stderr, " (want");
            for (int k = 0; k < pc->n; k++)
                fprintf(stderr, " %u", pc->ends[k]);
            fprintf(stderr, ")\n");
            failures++;
        }
        realm__pretok_match_data_free(md);
        realm__pretok_free(p);
    }
    assert_int_equal(failures, 0);
}

/* ---- SentencePiece ---- */

typedef struct spm_vocab {
    const char *tokens[400];
    float scores[400];
    int32_t types[400];
    char byte_names[256][7];
    int32_t n;
} spm_vocab;

static int32_t spm_add(spm_vocab *v, const char *tok, float score, int32_t type)
{
    v->tokens[v->n] = tok;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    return v->n++;
}

/* <unk> <s> </s>, then (optionally) the 256 byte tokens. */
static void spm_vocab_init(spm_vocab *v, bool bytes)
{
    v->n = 0;
    spm_add(v, "<unk>", 0, REALM_TOKEN_TYPE_UNKNOWN);
    spm_add(v, "<s>", 0, REALM_TOKEN_TYPE_CONTROL);
    spm_add(v, "</s>", 0, REALM_TOKEN_TYPE_CONTROL);
    if (!bytes) return;
    for (unsigned b = 0; b < 256; b++) {
        snprintf(v->byte_names[b], sizeof v->byte_names[b], "<0x%02X>", b);
        spm_add(v, v->byte_names[b], 0, REALM_TOKEN_TYPE_BYTE);
    }
}

static realm_tokenizer_t *make_spm(spm_vocab *v, bool add_space_prefix, bool add_bos)
{
    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_SPM);
    d.n_tokens = v->n;
    d.tokens = v->tokens;
    d.scores = v->scores;
    d.types = v->types;
    d.special[REALM_SPECIAL_UNK] = 0;
    d.special[REALM_SPECIAL_BOS] = 1;
    d.special[REALM_SPECIAL_EOS] = 2;
    d.add_bos = add_bos;
    d.add_space_prefix = add_space_prefix;
    realm_tokenizer_t *t;
    assert_int_equal(realm_tokenizer_init(&d, &t, NULL), REALM_OK);
    return t;
}

#define SP "\xE2\x96\x81" /* ▁ */

static void test_spm_scores_and_prefix(void **state)
{
    (void)state;
    spm_vocab v;
    spm_vocab_init(&v, true);
    int32_t sp = spm_add(&v, SP, -1, 1), h = spm_add(&v, "h", -2, 1), e = spm_add(&v, "e", -2, 1);
    int32_t l = spm_add(&v, "l", -2, 1), o = spm_add(&v, "o", -2, 1);
    int32_t sph = spm_add(&v, SP "h", -3, 1), ll = spm_add(&v, "ll", -1.5f, 1);
    int32_t he = spm_add(&v, "he", -4, 1), sphe = spm_add(&v, SP "he", -2.5f, 1);
    int32_t llo = spm_add(&v, "llo", -2.6f, 1), w = spm_add(&v, "w", -2, 1);
    realm_tokenizer_t *t = make_spm(&v, true, true);
    /* "▁hello": ll (-1.5) first, then ▁h (-3)?? no: ▁he needs ▁h first;
     * order: ll, llo, ▁h, ▁he. */
    expect_ids(t, "hello", 5, 0, IDS(sphe, llo));
    expect_ids(t, "hello", 5, REALM_TOKENIZE_ADD_SPECIAL, IDS(1, sphe, llo));
    expect_ids(t, "", 0, REALM_TOKENIZE_ADD_SPECIAL, IDS(1));
    expect_ids(t, "", 0, 0, NO_IDS);
    /* spaces are ▁; a leading space gives two. */
    expect_ids(t, " hw", 3, 0, IDS(sp, sph, w));
    /* é and 東 are not pieces: UTF-8 bytes (byte fallback). */
    expect_ids(t, "é", 2, 0, IDS(sp, 3 + 0xC3, 3 + 0xA9));
    round_trip(t, "hello wé東 x\n", strlen("hello wé東 x\n"));
    round_trip(t, " two  spaces ", 13);
    /* The dummy prefix is dropped on decode, once. */
    expect_decode(t, IDS(1, sphe, llo), 3, 0, "hello", 5);
    expect_decode(t, IDS(sp, sphe), 2, 0, " he", 3);
    (void)h, (void)e, (void)l, (void)o, (void)ll, (void)he;
    realm_tokenizer_free(t);
    t = make_spm(&v, false, false);
    expect_ids(t, "hello", 5, 0, IDS(he, llo));
    realm_tokenizer_free(t);
}

static void test_spm_unknown_fused(void **state)
{
    (void)state;
    spm_vocab v;
    spm_vocab_init(&v, false);
    int32_t sp = spm_add(&v, SP, -1, 1), a = spm_add(&v, "a", -1, 1);
    realm_tokenizer_t *t = make_spm(&v, true, false);
    /* No byte tokens: a run of unknown characters is one <unk>. */
    expect_ids(t, "a東京a", strlen("a東京a"), 0, IDS(sp, a, 0, a));
    expect_ids(t, "東 東", strlen("東 東"), 0, IDS(sp, 0, sp, 0));
    expect_decode(t, IDS(0), 1, 0, "\xEF\xBF\xBD", 3);
    expect_decode(t, IDS(0), 1, REALM_DETOK_SPECIAL, "<unk>", 5);
    realm_tokenizer_free(t);
}

/* ---- streaming detokenizer ---- */

static void test_detok_streaming_utf8(void **state)
{
    (void)state;
    spm_vocab v;
    spm_vocab_init(&v, true);
    spm_add(&v, SP, -1, 1);
    realm_tokenizer_t *t = make_spm(&v, true, false);
    realm_detok d;
    realm_detok_init(&d, t, 0);
    char out[256];
    size_t n;
    /* 東 = E6 9D B1 as three byte tokens: nothing until the last. */
    assert_int_equal(realm_detok_feed(&d, 3 + 0xE6, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(realm_detok_feed(&d, 3 + 0x9D, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(realm_detok_feed(&d, 3 + 0xB1, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "東", 3);
    /* A lead byte followed by ASCII: U+FFFD, then the ASCII. */
    assert_int_equal(realm_detok_feed(&d, 3 + 0xE6, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(realm_detok_feed(&d, 3 + 'A', out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(out,
                        "\xEF\xBF\xBD"
                        "A",
                        4);
    /* A stray continuation byte: U+FFFD at once. */
    assert_int_equal(realm_detok_feed(&d, 3 + 0x9D, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 3);
    /* Held back at the end of the stream: flush gives U+FFFD. */
    assert_int_equal(realm_detok_feed(&d, 3 + 0xF0, out, sizeof out, &n, NULL), REALM_OK);
    assert_int_equal(n, 0);
    assert_int_equal(realm_detok_flush(&d, out, sizeof out), 3);
    /* Out of range: an error, and the stream goes on. */
    realm_error err;
    assert_int_equal(realm_detok_feed(&d, -1, out, sizeof out, &n, &err), REALM_E_RANGE);
    assert_int_equal(realm_detok_feed(&d, v.n, out, sizeof out, &n, &err), REALM_E_RANGE);
    assert_non_null(strstr(err.message, "out of range"));
    char *s;
    size_t len;
    assert_int_equal(realm_tokenizer_decode(t, IDS(3, 1 << 30), 2, 0, &s, &len, &err),
                     REALM_E_RANGE);
    realm_tokenizer_free(t);
}

static void test_detok_byte_level_split_char(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    realm_tokenizer_t *t = make_bpe(&v, NULL, NULL, 0);
    /* "😀" = F0 9F 98 80, one byte token each, fed one at a time. */
    realm_detok d;
    realm_detok_init(&d, t, 0);
    char out[256];
    size_t n, total = 0;
    const unsigned char e[4] = {0xF0, 0x9F, 0x98, 0x80};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(realm_detok_feed(&d, e[i], out + total, sizeof out - total, &n, NULL),
                         REALM_OK);
        assert_int_equal(n, i == 3 ? 4 : 0);
        total += n;
    }
    assert_memory_equal(out, "😀", 4);
    realm_tokenizer_free(t);
}

/* ---- bad input ---- */

static void test_invalid_utf8(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    realm_tokenizer_t *t = make_bpe(&v, "smollm", NULL, 0);
    static const char *const bad[] = {
        "\x80", "a\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "ok\xFF", "\xE6\x9D"};
    realm_token_vec vec = {0};
    assert_int_equal(realm_token_vec_push(&vec, 7), REALM_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        realm_error err;
        assert_int_equal(realm_tokenizer_encode(t, bad[i], strlen(bad[i]), 0, &vec, &err),
                         REALM_E_INVALID);
        assert_non_null(strstr(err.message, "UTF-8"));
        assert_int_equal(vec.n, 1); /* nothing appended */
    }
    realm_error err;
    assert_int_equal(realm_tokenizer_encode(t, "ok\xFF", 3, 0, &vec, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "byte 2"));
    realm_token_vec_free(&vec);
    realm_tokenizer_free(t);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    realm_tokenizer_t *t = make_bpe(&v, "qwen2", NULL, 0);
    expect_ids(t, "a\0b", 3, 0, IDS('a', 0, 'b'));
    round_trip(t, "\0\0 \0x", 5);
    realm_tokenizer_free(t);
    spm_vocab sv;
    spm_vocab_init(&sv, true);
    spm_add(&sv, SP, -1, 1);
    t = make_spm(&sv, true, false);
    round_trip(t, "a\0b", 3);
    realm_tokenizer_free(t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 10 MB without a space is one pre-tokenizer piece: it must stay
 * O(n log n) (a quadratic merge loop would take hours). */
static void test_long_input_no_spaces(void **state)
{
    (void)state;
    const size_t n = 10u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    bpe_vocab v;
    bpe_vocab_init(&v);
    int32_t aa = bpe_add(&v, "aa", 1), a4 = bpe_add(&v, "aaaa", 1);
    const char *merges[] = {"a a", "aa aa"};
    for (int k = 0; k < 2; k++) {
        realm_tokenizer_t *t = make_bpe(&v, k ? "llama-bpe" : "gpt2", merges, 2);
        realm_token_vec vec = {0};
        double t0 = now_s();
        assert_int_equal(realm_tokenizer_encode(t, big, n, 0, &vec, NULL), REALM_OK);
        double dt = now_s() - t0;
        assert_int_equal(vec.n, n / 4);
        assert_int_equal(vec.ids[0], a4);
        assert_true(dt < 60.0);
        realm_token_vec_free(&vec);
        realm_tokenizer_free(t);
    }
    (void)aa;
    /* SPM: the whole text is one sequence. */
    spm_vocab sv;
    spm_vocab_init(&sv, true);
    spm_add(&sv, SP, -1, 1);
    spm_add(&sv, "a", -1, 1);
    int32_t saa = spm_add(&sv, "aa", -1, 1);
    realm_tokenizer_t *t = make_spm(&sv, false, false);
    realm_token_vec vec = {0};
    assert_int_equal(realm_tokenizer_encode(t, big, n, 0, &vec, NULL), REALM_OK);
    assert_int_equal(vec.n, n / 2);
    assert_int_equal(vec.ids[n / 2 - 1], saa);
    realm_token_vec_free(&vec);
    realm_tokenizer_free(t);
    free(big);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    bpe_vocab v;
    bpe_vocab_init(&v);
    bpe_add(&v, "he", 1);
    bpe_add(&v, "<|s|>", REALM_TOKEN_TYPE_CONTROL);
    const char *merges[] = {"h e"};
    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, REALM_TOKENIZER_KIND_BPE);
    d.n_tokens = v.n;
    d.tokens = v.tokens;
    d.types = v.types;
    d.merges = merges;
    d.n_merges = 1;
    /* Every allocation of init and encode may fail: an error, never a crash
     * or a leak (ASan checks the latter). */
    for (long k = 0; k < 200; k++) {
        realm_alloc_fail_after(k);
        realm_tokenizer_t *t = NULL;
        realm_status st = realm_tokenizer_init(&d, &t, NULL);
        if (st == REALM_OK) {
            realm_token_vec vec = {0};
            st = realm_tokenizer_encode(t, "hehe <|s|> hello", 16, REALM_TOKENIZE_PARSE_SPECIAL,
                                        &vec, NULL);
            assert_true(st == REALM_OK || st == REALM_E_NOMEM);
            realm_token_vec_free(&vec);
            realm_tokenizer_free(t);
        } else {
            assert_true(st == REALM_E_NOMEM);
        }
        realm_alloc_fail_after(-1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_merges_by_rank),
        cmocka_unit_test(test_bpe_leftmost_tie),
        cmocka_unit_test(test_bpe_ignore_merges),
        cmocka_unit_test(test_bpe_special_tokens),
        cmocka_unit_test(test_bpe_bos_eos),
        cmocka_unit_test(test_pretok_fixture),
        cmocka_unit_test(test_spm_scores_and_prefix),
        cmocka_unit_test(test_spm_unknown_fused),
        cmocka_unit_test(test_detok_streaming_utf8),
        cmocka_unit_test(test_detok_byte_level_split_char),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_long_input_no_spaces),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
