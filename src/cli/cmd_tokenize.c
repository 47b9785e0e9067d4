/* realm tokenize — what a user debugging a prompt wants to see: each token's
 * id, its vocabulary spelling and the text it stands for, plus the
 * tokenizer's settings. Also a batch mode for tests (many texts, one process),
 * --decode, and --bench for throughput.
 *
 * Batch format (--batch): each stdin line is one text as hex of its UTF-8
 * bytes (so newlines, CR and NUL survive); each output line is the ids
 * separated by spaces, a tab, and the hex of the decoded ids — or "ERR " and a
 * message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static const char *const type_names[REALM_TOKEN_TYPE_COUNT] = {
    "undefined", "normal", "unknown", "control", "user", "unused", "byte"};

/* Bytes as a readable quoted string: escapes for controls and quotes; a
 * byte that is not part of a valid UTF-8 character (half of one, from a byte
 * token) shows as \xNN, or as \ufffd in JSON, which must stay valid UTF-8. */
static void put_quoted(FILE *f, const char *s, size_t n, bool json)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, json ? "\\u%04x" : "\\x%02x", c);
        else if (c < 0x80)
            fputc(c, f);
        else {
            size_t l = realm_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (l) {
                fwrite(s + i, 1, l, f);
                i += l - 1;
            } else if (json) {
                fputs("\\ufffd", f);
            } else {
                fprintf(f, "\\x%02x", c);
            }
        }
    }
    fputc('"', f);
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = realm_malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *q = realm_realloc(buf, cap * 2);
            if (!q) {
                realm_free(buf);
                return NULL;
            }
            buf = q;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    *len = n;
    return buf;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int run_batch(const realm_tokenizer_t *t, unsigned flags, unsigned detok_flags)
{
    size_t len;
    char *in = read_all(stdin, &len);
    if (!in) {
        fprintf(stderr, "realm tokenize: out of memory\n");
        return 1;
    }
    char *text = realm_malloc(len / 2 + 1);
    realm_token_vec v = {0};
    int rc = text ? 0 : 1;
    for (size_t i = 0; i < len && !rc;) {
        size_t e = i;
        while (e < len && in[e] != '\n')
            e++;
        size_t n = 0;
        bool ok = (e - i) % 2 == 0;
        for (size_t k = i; ok && k + 1 < e; k += 2) {
            int hi = hexval(in[k]), lo = hexval(in[k + 1]);
            ok = hi >= 0 && lo >= 0;
            text[n++] = (char)(hi * 16 + lo);
        }
        i = e + 1;
        if (!ok) {
            printf("ERR bad hex line\n");
            continue;
        }
        realm_error err;
        v.n = 0;
        if (realm_tokenizer_encode(t, text, n, flags, &v, &err)) {
            printf("ERR %s\n", err.message);
            continue;
        }
        for (size_t k = 0; k < v.n; k++)
            printf(k ? " %d" : "%d", v.ids[k]);
        char *dec;
        size_t dlen;
        if (realm_tokenizer_decode(t, v.ids, v.n, detok_flags, &dec, &dlen, &err)) {
            printf("\tERR %s\n", err.message);
            continue;
        }
        putchar('\t');
        for (size_t k = 0; k < dlen; k++)
            printf("%02x", (unsigned char)dec[k]);
        putchar('\n');
        realm_free(dec);
    }
    realm_token_vec_free(&v);
    realm_free(text);
    realm_free(in);
    if (rc) fprintf(stderr, "realm tokenize: out of memory\n");
    return rc;
}

/* ---- --bench: a deterministic 10 MB mixed corpus ----
 * Not a loop over a few phrases (a word cache would make that look faster
 * than real text): words are drawn Zipf-style from a lexicon of 30,000
 * syllable-built words, so frequent words repeat and rare ones do not, and
 * the text mixes prose (~60%), code (~20%), CJK (~8%), Cyrillic and Arabic
 * (~6%), numbers and emoji. */

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rnd(rng *r, uint32_t n)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)((r->s >> 11) % n);
}

/* Rank in [0, n) with probability falling like 1/rank. */
static uint32_t zipf(rng *r, uint32_t n)
{
    double u = (double)rnd(r, 1u << 30) / (double)(1u << 30);
    uint32_t k = (uint32_t)(exp(u * log((double)n + 1.0)) - 1.0);
    return k < n ? k : n - 1;
}

static size_t put_word(rng *r, uint32_t rank, char *o, const char *const *syl, uint32_t n_syl)
{
    rng w = {rank * 0x9E3779B97F4A7C15ull + 1};
    size_t l = 0, k = 1 + rnd(&w, 3) + (rank > 2000) + (rank > 10000);
    for (size_t i = 0; i < k; i++) {
        const char *sy = syl[rnd(&w, n_syl)];
        size_t sl = strlen(sy);
        memcpy(o + l, sy, sl);
        l += sl;
    }
    (void)r;
    return l;
}

static size_t put_utf8(uint32_t cp, char *o)
{
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static char *bench_corpus(size_t target, size_t *len)
{
    static const char *const syl[] = {"the", "an",   "re", "in", "ter", "con", "st",  "pro", "a",
                                      "ing", "tion", "er", "ly", "ed",  "es",  "o",   "u",   "ma",
                                      "ke",  "ri",   "lo", "na", "ve",  "com", "par", "si",  "de"};
    static const char *const punct[] = {". ",  ", ",  "; ",   "? ", "! ", ": ",
                                        " - ", "'s ", "n't ", " (", ") "};
    static const char *const code[] = {"    if (",
                                       " == ",
                                       ") {\n",
                                       "        return ",
                                       ";\n",
                                       "    }\n",
                                       "for (int i = 0; i < n; i++) ",
                                       "->",
                                       "[i]",
                                       " += ",
                                       "\tconst char *",
                                       " = NULL;\n",
                                       "#include <",
                                       ".h>\n",
                                       "def ",
                                       "(self, ",
                                       "):\n        ",
                                       "  # "};
    static const uint32_t emoji[] = {0x1F600, 0x1F44D, 0x2728, 0x1F680, 0x2764, 0x1F389};
    const uint32_t n_syl = sizeof syl / sizeof syl[0];
    char *buf = realm_malloc(target + 1024);
    if (!buf) return NULL;
    rng r = {88172645463325252ull};
    size_t n = 0;
    while (n < target) {
        uint32_t kind = rnd(&r, 100);
        if (kind < 60) { /* a prose sentence */
            uint32_t words = 4 + rnd(&r, 14);
            for (uint32_t i = 0; i < words; i++) {
                size_t l = put_word(&r, zipf(&r, 30000), buf + n, syl, n_syl);
                if (i == 0) buf[n] = (char)(buf[n] - 32);
                n += l;
                const char *sep = rnd(&r, 8) ? " " : punct[rnd(&r, sizeof punct / sizeof punct[0])];
                if (rnd(&r, 30) == 0) n += (size_t)sprintf(buf + n, " %u ", rnd(&r, 100000));
                memcpy(buf + n, sep, strlen(sep));
                n += strlen(sep);
            }
            buf[n++] = rnd(&r, 4) ? ' ' : '\n';
        } else if (kind < 80) { /* a line of code */
            for (uint32_t i = 0, k = 3 + rnd(&r, 6); i < k; i++) {
                const char *c = code[rnd(&r, sizeof code / sizeof code[0])];
                memcpy(buf + n, c, strlen(c));
                n += strlen(c);
                n += put_word(&r, zipf(&r, 3000), buf + n, syl, n_syl);
                if (rnd(&r, 3) == 0) buf[n++] = '_';
            }
            buf[n++] = '\n';
        } else if (kind < 88) { /* CJK */
            for (uint32_t i = 0, k = 6 + rnd(&r, 20); i < k; i++)
                n += put_utf8(0x4E00 + zipf(&r, 3000), buf + n);
            n += put_utf8(0x3002, buf + n);
        } else if (kind < 94) { /* Cyrillic or Arabic words */
            uint32_t base = rnd(&r, 2) ? 0x430 : 0x627;
            for (uint32_t i = 0, k = 3 + rnd(&r, 8); i < k; i++) {
                for (uint32_t j = 0, m = 2 + rnd(&r, 8); j < m; j++)
                    n += put_utf8(base + zipf(&r, 26), buf + n);
                buf[n++] = ' ';
            }
        } else if (kind < 98) { /* numbers */
            n += (size_t)sprintf(buf + n, "%u.%02u%% of %u,%03u in %u. ", rnd(&r, 100),
                                 rnd(&r, 100), rnd(&r, 1000), rnd(&r, 1000), 1900 + rnd(&r, 130));
        } else { /* emoji */
            n += put_utf8(emoji[rnd(&r, sizeof emoji / sizeof emoji[0])], buf + n);
            buf[n++] = ' ';
        }
    }
    *len = n;
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_bench(const realm_tokenizer_t *t, const char *file, unsigned flags)
{
    size_t len;
    char *text;
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            perror(file);
            return 1;
        }
        text = read_all(f, &len);
        fclose(f);
    } else {
        text = bench_corpus(10u << 20, &len);
    }
    if (!text) {
        fprintf(stderr, "realm tokenize: out of memory\n");
        return 1;
    }
    realm_token_vec v = {0};
    realm_error err;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        v.n = 0;
        double t0 = now_s();
        if (realm_tokenizer_encode(t, text, len, flags, &v, &err)) {
            fprintf(stderr, "realm tokenize: %s\n", err.message);
            realm_free(text);
            realm_token_vec_free(&v);
            return 1;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("encode: %.2f MB in %.3f s = %.1f MB/s (1 thread, best of 3), %zu tokens, %.2f "
           "bytes/token\n",
           (double)len / 1e6, best, (double)len / 1e6 / best, v.n, (double)len / (double)v.n);
    realm_token_vec_free(&v);
    realm_free(text);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: realm tokenize MODEL.gguf [--special] [--no-bos] [--json|--ids] TEXT|-\n"
            "       realm tokenize MODEL.gguf --decode ID...\n"
            "       realm tokenize MODEL.gguf --batch      (hex lines on stdin, see source)\n"
            "       realm tokenize MODEL.gguf --bench [FILE]\n"
            "  --special   match control-token text such as <|im_start|> (off: it is plain text)\n"
            "  --no-bos    do not add the bos/eos tokens the model asks for\n");
    return 2;
}

int realm_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text_arg = NULL;
    bool special = false, no_bos = false, json = false, ids_only = false, batch = false;
    bool bench = false, decode = false;
    int first_id = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--special"))
            special = true;
        else if (!strcmp(a, "--no-bos"))
            no_bos = true;
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--ids"))
            ids_only = true;
        else if (!strcmp(a, "--batch"))
            batch = true;
        else if (!strcmp(a, "--bench"))
            bench = true;
        else if (!strcmp(a, "--decode")) {
            decode = true;
            first_id = i + 1;
            break;
        } else if (!model)
            model = a;
        else if (!text_arg)
            text_arg = a;
        else
            return usage();
    }
    if (!model || (!text_arg && !batch && !bench && !decode)) return usage();

    realm_error err;
    realm_gguf_t *g;
    if (realm_gguf_open(model, &g, &err)) {
        fprintf(stderr, "realm tokenize: %s\n", err.message);
        return 1;
    }
    realm_tokenizer_t *t;
    realm_status st = realm_tokenizer_init_gguf(g, &t, &err);
    realm_gguf_close(g);
    if (st) {
        fprintf(stderr, "realm tokenize: %s: %s\n", model, err.message);
        return 1;
    }
    unsigned flags =
        (special ? REALM_TOKENIZE_PARSE_SPECIAL : 0) | (no_bos ? 0 : REALM_TOKENIZE_ADD_SPECIAL);
    unsigned detok_flags = special ? REALM_DETOK_SPECIAL : 0;
    int rc = 0;
    if (batch) {
        rc = run_batch(t, flags, detok_flags);
        goto out;
    }
    if (bench) {
        rc = run_bench(t, text_arg, flags);
        goto out;
    }
    realm_token_vec v = {0};
    char *owned = NULL;
    size_t len = 0;
    const char *text = text_arg;
    if (decode) {
        for (int i = first_id; i < argc; i++) {
            char *end;
            long id = strtol(argv[i], &end, 10);
            if (*end || end == argv[i] || realm_token_vec_push(&v, (int32_t)id)) {
                fprintf(stderr, "realm tokenize: bad id '%s'\n", argv[i]);
                rc = 2;
                goto done;
            }
        }
    } else {
        if (!strcmp(text_arg, "-")) {
            owned = read_all(stdin, &len);
            text = owned;
            if (!owned) {
                fprintf(stderr, "realm tokenize: out of memory\n");
                rc = 1;
                goto done;
            }
        } else {
            len = strlen(text_arg);
        }
        if (realm_tokenizer_encode(t, text, len, flags, &v, &err)) {
            fprintf(stderr, "realm tokenize: %s\n", err.message);
            rc = 1;
            goto done;
        }
    }
    char *dec = NULL;
    size_t dlen = 0;
    if (realm_tokenizer_decode(t, v.ids, v.n, detok_flags, &dec, &dlen, &err)) {
        fprintf(stderr, "realm tokenize: %s\n", err.message);
        rc = 1;
        goto done;
    }
    if (ids_only) {
        for (size_t i = 0; i < v.n; i++)
            printf(i ? " %d" : "%d", v.ids[i]);
        putchar('\n');
    } else if (json) {
        printf("{\"n_tokens\": %zu, \"ids\": [", v.n);
        for (size_t i = 0; i < v.n; i++)
            printf(i ? ", %d" : "%d", v.ids[i]);
        printf("], \"pieces\": [");
        for (size_t i = 0; i < v.n; i++) {
            const char *p;
            size_t pl;
            realm_tokenizer_token_bytes(t, v.ids[i], &p, &pl);
            if (i) fputs(", ", stdout);
            put_quoted(stdout, p, pl, true);
        }
        printf("], \"text\": ");
        put_quoted(stdout, dec, dlen, true);
        printf("}\n");
    } else {
        printf("tokenizer: %s (%s), %d tokens; bos %d eos %d eot %d; add_bos %s%s\n",
               realm_tokenizer_get_kind(t) == REALM_TOKENIZER_KIND_BPE ? "byte-level BPE"
                                                                       : "SentencePiece",
               realm_tokenizer_pre_name(t), realm_tokenizer_n_vocab(t),
               realm_tokenizer_special(t, REALM_SPECIAL_BOS),
               realm_tokenizer_special(t, REALM_SPECIAL_EOS),
               realm_tokenizer_special(t, REALM_SPECIAL_EOT),
               realm_tokenizer_add_bos(t) ? "yes" : "no",
               special ? "; special-token text parsed" : "");
        printf("%8s  %-9s %-24s %s\n", "id", "type", "piece", "text");
        for (size_t i = 0; i < v.n; i++) {
            const char *p, *b;
            size_t pl, bl;
            realm_tokenizer_token_text(t, v.ids[i], &p, &pl);
            realm_tokenizer_token_bytes(t, v.ids[i], &b, &bl);
            printf("%8d  %-9s ", v.ids[i], type_names[realm_tokenizer_token_type(t, v.ids[i])]);
            put_quoted(stdout, p, pl, false);
            size_t width = 0; /* characters, for the column */
            for (size_t k = 0; k < pl; k++)
                width += ((unsigned char)p[k] & 0xC0) != 0x80;
            printf("%*s", width < 22 ? (int)(22 - width) : 0, " ");
            put_quoted(stdout, b, bl, false);
            putchar('\n');
        }
        printf("%zu tokens, %zu bytes\ndecoded: ", v.n, decode ? dlen : len);
        put_quoted(stdout, dec, dlen, false);
        putchar('\n');
    }
    realm_free(dec);
done:
    realm_token_vec_free(&v);
    realm_free(owned);
out:
    realm_tokenizer_free(t);
    return rc;
}
