/*
 * realm bench — prompt-processing and generation speed of a model on the CPU
 * backend, in the manner of llama.cpp's llama-bench so the two compare:
 *
 *   ppN: one forward pass over N prompt tokens from an empty cache (logits
 *        for the last row only), tokens/s = N / time.
 *   tgN: N single-token forward passes from an empty cache, tokens/s =
 *        N / time.
 *
 * Each (thread count, test) runs once to warm up, then -r times; the table
 * gives mean ± sample sd. For tg it also gives the share of the memory
 * roofline: weight bytes read per token (every tensor except the embedding
 * table, which only gives one row per token — unless it doubles as the LM
 * head) times tokens/s, over the bandwidth of a streaming read measured here
 * with the same thread count (the best of the reads before the tests and
 * right after the tg runs). KV-cache reads are left out (small at tg128).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "base/parallel.h"
#include "base/threadpool.h"
#include "cli/commands.h"
#include "model/kv_cache.h"
#include "model/model.h"

#define MAX_THREAD_COUNTS 16
#define BW_BYTES          ((size_t)256 << 20)
#define BW_SLICE          ((size_t)4 << 20)

static int usage(void)
{
    fprintf(stderr, "usage: realm bench MODEL.gguf [-p 512] [-n 128] [-t 1,2] [-r 5]\n");
    return 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- memory bandwidth: a streaming read over a buffer far beyond the caches ---- */

typedef struct bw_job {
    const uint64_t *buf;
    uint64_t partial[BW_BYTES / BW_SLICE]; /* one slot per task, summed after */
} bw_job;

static void bw_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    bw_job *j = ctx;
    const uint64_t *p = j->buf + (size_t)task * (BW_SLICE / 8);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < BW_SLICE / 8; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    j->partial[task] = s0 + s1 + s2 + s3;
}

/* Best of 5 reads of BW_BYTES, in bytes/s; 0 if the buffer cannot be had. */
static double measure_bandwidth(int n_threads)
{
    realm_threadpool_t *pool = NULL;
    realm_error err = {0};
    bw_job *j = realm_calloc(1, sizeof *j);
    uint64_t *buf = realm_malloc(BW_BYTES);
    double best = 0;
    if (!j || !buf || realm_threadpool_create(n_threads, &pool, &err)) goto done;
    for (size_t i = 0; i < BW_BYTES / 8; i++)
        buf[i] = i;
    j->buf = buf;
    int64_t n_tasks = (int64_t)(BW_BYTES / BW_SLICE);
    uint64_t check = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        realm_threadpool_run(pool, n_tasks, n_threads, bw_task, j);
        double dt = now_s() - t0;
        for (int64_t i = 0; i < n_tasks; i++)
            check += j->partial[i];
        if (dt > 0 && BW_BYTES / dt > best) best = BW_BYTES / dt;
    }
    /* the sums are used, so the reads cannot be optimized away */
    if (check == 42) fprintf(stderr, " ");
done:
    realm_threadpool_free(pool);
    realm_free(buf);
    realm_free(j);
    return best;
}

/* ---- the model ---- */

static uint64_t weight_bytes_per_token(const realm_gguf_t *g)
{
    uint64_t total = 0, embd = 0;
    bool has_output = false;
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        if (realm_gguf_str_eq(t->name, "token_embd.weight"))
            embd = t->size_bytes;
        else
            total += t->size_bytes;
        if (realm_gguf_str_eq(t->name, "output.weight")) has_output = true;
    }
    return total + (has_output ? 0 : embd);
}

typedef struct stats {
    double mean, sd;
} stats;

static stats summarize(const double *v, int n)
{
    stats s = {0};
    for (int i = 0; i < n; i++)
        s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++)
        s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0;
    return s;
}

typedef struct bench_ctx {
    realm_model_t *m;
    realm_kv_cache_t *kv;
    int32_t *tokens, *pos, *seq;
    float *logits;
} bench_ctx;

/* One forward pass over rows [first, first + n) from position first. */
static realm_status step(bench_ctx *b, int32_t first, int32_t n, realm_error *err)
{
    realm_batch bt = {.n_rows = n,
                      .token = b->tokens + first,
                      .pos = b->pos + first,
                      .seq = b->seq + first,
                      .n_seqs = 1,
                      .seqs = realm_kv_cache_seq(b->kv, 0)};
    return realm_model_forward(b->m, realm_kv_cache_pool(b->kv), &bt, b->logits, err);
}

/* Tokens/s of one run of the test (pp: one pass of n rows; tg: n passes). */
static realm_status run_test(bench_ctx *b, bool pp, int32_t n, double *tps, realm_error *err)
{
    realm_status st = REALM_OK;
    double t0 = now_s();
    if (pp)
        st = step(b, 0, n, err);
    else
        for (int32_t i = 0; i < n && !st; i++)
            st = step(b, i, 1, err);
    *tps = n / (now_s() - t0);
    return st;
}

static int bench_threads(const char *path, realm_gguf_t *g, int n_threads, int n_pp, int n_tg,
                         int reps, uint64_t bytes_per_token)
{
    realm_error err = {0};
    realm_backend *be = NULL;
    bench_ctx b = {0};
    double *v = realm_calloc((size_t)reps, sizeof *v);
    int rc = 1;
    int32_t rows = n_pp > 0 ? n_pp : 1, ctx = n_pp + n_tg + 1;
    realm_backend_cpu_params bp = {.n_threads = n_threads};
    realm_model_params mp = {.max_rows = rows, .max_ctx = ctx, .max_logit_rows = 1};
    if (!v || realm_backend_cpu_create(&bp, &be, &err) ||
        realm_model_load(g, be, &mp, &b.m, &err) ||
        realm_kv_cache_init(be, realm_model_hparams(b.m), 1, ctx, be->ops->kv_type, &b.kv, &err))
        goto done;
    const realm_hparams *hp = realm_model_hparams(b.m);
    b.tokens = realm_calloc((size_t)ctx, sizeof *b.tokens);
    b.pos = realm_calloc((size_t)ctx, sizeof *b.pos);
    b.seq = realm_calloc((size_t)ctx, sizeof *b.seq);
    b.logits = realm_model_logits_alloc(b.m, 1);
    if (!b.tokens || !b.pos || !b.seq || !b.logits) {
        realm_error_set(&err, REALM_E_NOMEM, "out of memory");
        goto done;
    }
    uint32_t s = 12345;
    for (int32_t i = 0; i < ctx; i++) {
        s = s * 1664525u + 1013904223u;
        b.tokens[i] = (int32_t)((s >> 8) % (uint32_t)hp->n_vocab);
        b.pos[i] = i;
    }
    double bw = n_tg > 0 ? measure_bandwidth(n_threads) : 0;
    for (int test = 0; test < 2; test++) {
        bool pp = test == 0;
        int32_t n = pp ? n_pp : n_tg;
        if (n <= 0) continue;
        double warm;
        if (run_test(&b, pp, n, &warm, &err)) goto done;
        for (int r = 0; r < reps; r++)
            if (run_test(&b, pp, n, &v[r], &err)) goto done;
        stats st = summarize(v, reps);
        /* the machine's bandwidth moves with its load: the best read before
         * or right after the runs (a low read gave shares above 100%) */
        if (!pp && bw > 0) {
            double bw_after = measure_bandwidth(n_threads);
            if (bw_after > bw) bw = bw_after;
        }
        char roof[32] = "";
        if (!pp && bw > 0)
            snprintf(roof, sizeof roof, "%.1f %% of %.1f GB/s",
                     100.0 * st.mean * (double)bytes_per_token / bw, bw / 1e9);
        printf("| %-28s | %7d | %s%-5d | %9.2f ± %-7.2f | %-22s |\n", path, n_threads,
               pp ? "pp" : "tg", n, st.mean, st.sd, roof);
        fflush(stdout);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "realm bench: %s\n", err.message);
    realm_free(v);
    realm_free(b.tokens);
    realm_free(b.pos);
    realm_free(b.seq);
    realm_model_logits_free(b.m, b.logits);
    realm_kv_cache_free(b.kv);
    realm_model_free(b.m);
    realm_backend_free(be);
    return rc;
}

/* "1,2,4" -> counts; returns how many, -1 on bad input. */
static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 1024 || n == max || (*end && *end != ',')) return -1;
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

int realm_cmd_bench(int argc, char **argv)
{
    const char *path = NULL;
    int n_pp = 512, n_tg = 128, reps = 5, threads[MAX_THREAD_COUNTS] = {0}, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && !path) {
            path = a;
            continue;
        }
        if (!v) return usage();
        if (!strcmp(a, "-p"))
            n_pp = atoi(v);
        else if (!strcmp(a, "-n"))
            n_tg = atoi(v);
        else if (!strcmp(a, "-r"))
            reps = atoi(v);
        else if (!strcmp(a, "-t")) {
            if ((n_threads = parse_list(v, threads, MAX_THREAD_COUNTS)) <= 0) return usage();
        } else
            return usage();
        i++;
    }
    if (!path || n_pp < 0 || n_tg < 0 || n_pp + n_tg == 0 || n_pp > 65536 || n_tg > 65536 ||
        reps < 1 || reps > 1000)
        return usage();
    if (n_threads == 0) {
        threads[0] = 0; /* all cores */
        n_threads = 1;
    }
    realm_error err = {0};
    realm_gguf_t *g = NULL;
    if (realm_gguf_open(path, &g, &err)) {
        fprintf(stderr, "realm bench: %s\n", err.message);
        return 1;
    }
    uint64_t bpt = weight_bytes_per_token(g);
    printf("weights read per token: %.1f MiB; %d repetitions after one warm-up\n",
           (double)bpt / (1 << 20), reps);
    printf("| %-28s | %7s | %-7s | %19s | %-22s |\n", "model", "threads", "test", "t/s",
           "tg roofline");
    int rc = 0;
    for (int i = 0; i < n_threads && rc == 0; i++)
        rc = bench_threads(path, g, threads[i] > 0 ? threads[i] : realm_cpu_count(), n_pp,
                           n_tg, reps, bpt);
    realm_gguf_close(g);
    return rc;
}
