/*
 * realm logits — run the forward pass on given token ids and write the
 * logits of every position: the hook the oracle tests compare against.
 *
 * --chunk N feeds the tokens N at a time (1: token by token, as decoding
 * does; default: all at once, as prefill does). --out writes the logits as
 * raw little-endian f32, (n_tokens, n_vocab) row-major; without it the
 * arg-max token of each position is printed. --greedy N then decodes N more
 * tokens one at a time, each the arg-max of the previous logits, prints
 * them ("greedy: ID,ID,...") and includes their rows in the output.
 * --device picks the backend by name (backend/registry.h; default cpu);
 * --kv-type the KV pool's elements (auto, the default: the backend's; f16; f32).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "base/alloc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/kv_cache.h"
#include "model/model.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: realm logits MODEL.gguf --tokens ID,ID,... [--chunk N] [--greedy N]"
            " [--out FILE.f32] [--threads N] [--device cpu|cuda] [--kv-type auto|f16|f32]\n");
    return 2;
}

/* Parses "1,2,3" into a new array with `extra` more free slots; returns the
 * count parsed, -1 on bad input. */
static int parse_tokens(const char *s, int extra, int32_t **out)
{
    int n = 1;
    for (const char *p = s; *p; p++)
        n += *p == ',';
    int32_t *t = realm_calloc((size_t)n + (size_t)extra, sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            realm_free(t);
            return -1;
        }
        t[i] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    *out = t;
    return n;
}

static int32_t argmax(const float *l, int32_t n)
{
    int32_t best = 0;
    for (int32_t v = 1; v < n; v++)
        if (l[v] > l[best]) best = v;
    return best;
}

/* tokens has room for n + n_greedy ids; the first n are the prompt. */
static int run(const char *path, int32_t *tokens, int n, int n_greedy, int chunk,
               const char *out_path, int n_threads, const char *device, realm_kv_choice kv_type)
{
    realm_error err = {0};
    realm_gguf_t *g = NULL;
    realm_backend *be = NULL;
    realm_model_t *m = NULL;
    realm_kv_cache_t *kv = NULL;
    float *logits = NULL;
    bool *want = NULL;
    int32_t *pos = NULL, *seq = NULL;
    FILE *f = NULL;
    int rc = 1;
    realm_backend_options bo = {.n_threads = n_threads};
    if (realm_gguf_open(path, &g, &err) || realm_backend_create(device, &bo, &be, &err)) goto done;
    int total = n + n_greedy;
    realm_model_params mp = {.max_rows = chunk, .max_ctx = total, .max_logit_rows = chunk};
    if (realm_model_load(g, be, &mp, &m, &err)) goto done;
    const realm_hparams *hp = realm_model_hparams(m);
    if (realm_kv_cache_init(be, hp, 1, total, realm_kv_type_pick(be, kv_type), &kv, &err))
        goto done;
    logits = realm_calloc((size_t)total * hp->n_vocab, sizeof *logits);
    want = realm_calloc((size_t)chunk, sizeof *want);
    pos = realm_calloc((size_t)total, sizeof *pos);
    seq = realm_calloc((size_t)total, sizeof *seq);
    if (!logits || !want || !pos || !seq) {
        realm_error_set(&err, REALM_E_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < total; i++)
        pos[i] = i;
    for (int i = 0; i < chunk; i++)
        want[i] = true;
    for (int i = 0; i < total;) {
        int32_t rows = i < n ? (n - i < chunk ? n - i : chunk) : 1;
        if (i >= n) tokens[i] = argmax(logits + (size_t)(i - 1) * hp->n_vocab, hp->n_vocab);
        realm_batch b = {.n_rows = rows,
                         .token = tokens + i,
                         .pos = pos + i,
                         .seq = seq + i,
                         .want_logits = want,
                         .n_seqs = 1,
                         .seqs = realm_kv_cache_seq(kv, 0)};
        if (realm_model_forward(m, realm_kv_cache_pool(kv), &b, logits + (size_t)i * hp->n_vocab,
                                &err))
            goto done;
        i += rows;
    }
    if (n_greedy > 0) {
        printf("greedy: ");
        for (int i = n; i < total; i++)
            printf("%s%d", i > n ? "," : "", tokens[i]);
        printf("\n");
    }
    if (out_path) {
        f = fopen(out_path, "wb");
        if (!f || fwrite(logits, sizeof(float) * hp->n_vocab, (size_t)total, f) != (size_t)total) {
            realm_error_set(&err, REALM_E_IO, "cannot write %s", out_path);
            goto done;
        }
    } else {
        for (int i = 0; i < total; i++) {
            const float *l = logits + (size_t)i * hp->n_vocab;
            int32_t best = argmax(l, hp->n_vocab);
            printf("%d\t%d\t%d\t%.6f\n", i, tokens[i], best, l[best]);
        }
    }
    rc = 0;
done:
    if (f && fclose(f) && rc == 0) {
        realm_error_set(&err, REALM_E_IO, "cannot write %s", out_path);
        rc = 1;
    }
    if (rc) fprintf(stderr, "realm logits: %s\n", err.message);
    realm_free(logits);
    realm_free(want);
    realm_free(pos);
    realm_free(seq);
    realm_kv_cache_free(kv);
    realm_model_free(m);
    realm_backend_free(be);
    realm_gguf_close(g);
    return rc;
}

int realm_cmd_logits(int argc, char **argv)
{
    const char *path = NULL, *toks = NULL, *out = NULL, *device = "cpu";
    int chunk = 0, threads = 0, greedy = 0;
    realm_kv_choice kv_type = REALM_KV_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && !path) {
            path = a;
            continue;
        }
        if (!v) return usage();
        if (!strcmp(a, "--tokens"))
            toks = v;
        else if (!strcmp(a, "--chunk"))
            chunk = atoi(v);
        else if (!strcmp(a, "--out") || !strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--greedy"))
            greedy = atoi(v);
        else if (!strcmp(a, "--kv-type")) {
            if (!realm_cli_kv_type(v, &kv_type)) {
                fprintf(stderr, "realm logits: bad value '%s' for --kv-type\n", v);
                return usage();
            }
        } else
            return usage();
        i++;
    }
    if (!path || !toks) return usage();
    int32_t *tokens = NULL;
    if (greedy < 0 || greedy > 4096) return usage();
    int n = parse_tokens(toks, greedy, &tokens);
    if (n <= 0) {
        fprintf(stderr, "realm logits: --tokens wants comma-separated ids\n");
        return 2;
    }
    if (chunk <= 0 || chunk > n) chunk = n;
    int rc = run(path, tokens, n, greedy, chunk, out, threads, device, kv_type);
    realm_free(tokens);
    return rc;
}
