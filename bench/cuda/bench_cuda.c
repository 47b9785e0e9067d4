/*
 * bench/cuda/bench_cuda.c — forward-pass speed of one model on one backend:
 *   decode1     batch-1 greedy decode after a 16-token prompt (tokens/s)
 *   prefillP    one P-row prompt batch (tokens/s), P = 128, 256, 512
 *   aggS        S sequences decoding together, one row each per step
 *               (aggregate tokens/s), for S in 1, 8, 32, 64
 * usage: realm_bench_cuda MODEL.gguf [--device cuda|cpu] [--steps N] [--decode-only]
 *                         [--streams S] [--prefill P]
 * Prints one "BENCH key=value ..." line. --decode-only stops after decode1,
 * --streams S measures aggS alone, --prefill P prefillP alone (median of 3
 * after a warm-up), --mixed D one continuous-batching pass alone: D
 * sequences at context 512 decoding a row each beside a prompt chunk of
 * 448 - D rows (ms, median of 3); with REALM_CUDA_PROFILE=1 (2 for prefill
 * and mixed) either prints the op-by-op profile of those passes.
 * --logits K: only the first K sequences of a decode step want logits (the
 * LM head and the logits download shrink; to see what they cost at S).
 * --kv-type f16|f32: the KV cache's elements (default: the backend's, f16 on
 * the GPU). --start P with --streams S: the S sequences decode from position
 * P without a prompt (the KV below P is whatever the pool held: a step's
 * time, not its tokens, is what this measures), to time long contexts.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/registry.h"
#include "base/alloc.h"
#include "model/kv_cache.h"
#include "model/model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define MAX_SEQS 64
#define CTX      640

static realm_model_t *m;
static int logit_rows = MAX_SEQS; /* --logits */
static realm_kv_cache_t *kv;
static float *logits;
static int start_pos; /* --start: run_decode skips its prompt and starts there */

static void die(realm_error *e)
{
    fprintf(stderr, "bench: %s\n", e->message);
    exit(1);
}

/* n_seqs sequences, each: prefill `prompt` tokens (all in one batch), then
 * `steps` decode steps of n_seqs rows. Returns decode tokens/s. */
static double run_decode(int n_seqs, int prompt, int steps, double *prefill_tok_s)
{
    realm_error err = {0};
    int32_t tok[512], pos[512], seq[512];
    realm_batch_seq seqs[MAX_SEQS];
    for (int s = 0; s < n_seqs; s++)
        seqs[s] = *realm_kv_cache_seq(kv, s);
    for (int s = 0; s < n_seqs && !start_pos; s++) {
        for (int i = 0; i < prompt; i++) {
            tok[i] = (i * 31 + s * 7 + 1) % 1000;
            pos[i] = i;
            seq[i] = 0;
        }
        realm_batch b = {.n_rows = prompt, .token = tok, .pos = pos, .seq = seq, .n_seqs = 1,
                         .seqs = &seqs[s]};
        double t0 = now_s();
        if (realm_model_forward(m, realm_kv_cache_pool(kv), &b, logits, &err)) die(&err);
        if (prefill_tok_s && s == n_seqs - 1) *prefill_tok_s = prompt / (now_s() - t0);
    }
    bool want[MAX_SEQS];
    for (int s = 0; s < n_seqs; s++)
        want[s] = s < logit_rows;
    double t0 = 0;
    const int warm = 3;
    for (int step = 0; step < steps + warm; step++) {
        if (step == warm) t0 = now_s();
        for (int s = 0; s < n_seqs; s++) {
            tok[s] = (step * 13 + s) % 1000;
            pos[s] = (start_pos ? start_pos : prompt) + step;
            seq[s] = s;
        }
        realm_batch b = {.n_rows = n_seqs, .token = tok, .pos = pos, .seq = seq,
                         .want_logits = want, .n_seqs = n_seqs, .seqs = seqs};
        if (realm_model_forward(m, realm_kv_cache_pool(kv), &b, logits, &err)) die(&err);
    }
    return (double)n_seqs * steps / (now_s() - t0);
}

/* One pass as continuous batching makes it: n_dec sequences at context
 * ctx decoding one row each, and a chunk-row prompt of another sequence.
 * Returns the pass's time in ms (median of 3 after a warm-up). */
static double run_mixed(int n_dec, int ctx, int chunk)
{
    realm_error err = {0};
    run_decode(n_dec, ctx, 0, NULL); /* ctx prompt rows, then 3 warm-up steps, each sequence */
    static int32_t tok[MAX_SEQS + 512], pos[MAX_SEQS + 512], seq[MAX_SEQS + 512];
    static bool want[MAX_SEQS + 512];
    realm_batch_seq seqs[MAX_SEQS];
    for (int s = 0; s <= n_dec; s++)
        seqs[s] = *realm_kv_cache_seq(kv, s);
    for (int r = 0; r < n_dec + chunk; r++) {
        bool dec = r < n_dec;
        tok[r] = (r * 17 + 3) % 1000;
        pos[r] = dec ? ctx + 3 : r - n_dec;
        seq[r] = dec ? r : n_dec;
        want[r] = dec;
    }
    realm_batch b = {.n_rows = n_dec + chunk,
                     .token = tok,
                     .pos = pos,
                     .seq = seq,
                     .want_logits = want,
                     .n_seqs = n_dec + 1,
                     .seqs = seqs};
    double t[4];
    for (int i = 0; i < 4; i++) {
        double t0 = now_s();
        if (realm_model_forward(m, realm_kv_cache_pool(kv), &b, logits, &err)) die(&err);
        t[i] = now_s() - t0;
    }
    double lo = t[1] < t[2] ? t[1] : t[2], hi = t[1] < t[2] ? t[2] : t[1];
    return 1e3 * (t[3] < lo ? lo : t[3] > hi ? hi : t[3]);
}

/* *out = the decimal integer s, all of it; false (and *out = -1) otherwise */
static bool int_arg(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    bool ok = end != s && *end == '\0' && v >= 0 && v <= 1000000;
    *out = ok ? (int)v : -1;
    return ok;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *device = "cuda";
    int steps = 64, decode_only = 0, streams = 0, prefill = 0, mixed = 0;
    realm_kv_choice kv_type = REALM_KV_AUTO;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &steps);
        else if (!strcmp(argv[i], "--decode-only")) decode_only = 1;
        else if (!strcmp(argv[i], "--streams") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &streams);
        else if (!strcmp(argv[i], "--prefill") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &prefill);
        else if (!strcmp(argv[i], "--mixed") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &mixed);
        else if (!strcmp(argv[i], "--logits") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &logit_rows);
        else if (!strcmp(argv[i], "--start") && i + 1 < argc)
            bad |= !int_arg(argv[++i], &start_pos);
        else if (!strcmp(argv[i], "--kv-type") && i + 1 < argc) {
            const char *t = argv[++i];
            kv_type = !strcmp(t, "f32") ? REALM_KV_F32 : REALM_KV_F16;
            bad |= strcmp(t, "f32") && strcmp(t, "f16");
        } else if (argv[i][0] == '-')
            bad = true;
        else path = argv[i];
    }
    if (bad || !path || streams > MAX_SEQS || prefill > 512 || mixed >= MAX_SEQS ||
        logit_rows < 1 || (start_pos && !streams)) {
        fprintf(stderr,
                "usage: realm_bench_cuda MODEL.gguf [--device cuda|cpu] [--steps N] "
                "[--decode-only] [--streams 1..%d] [--prefill 1..512] [--mixed 1..%d] "
                "[--logits K] [--kv-type f16|f32] [--start P (with --streams)]\n",
                MAX_SEQS, MAX_SEQS - 1);
        return 2;
    }
    realm_error err = {0};
    realm_gguf_t *g;
    realm_backend *be;
    if (realm_gguf_open(path, &g, &err) || realm_backend_create(device, NULL, &be, &err)) die(&err);
    const int ctx = start_pos + steps + 8 > CTX ? start_pos + steps + 8 : CTX;
    realm_model_params mp = {.max_rows = 512, .max_ctx = ctx, .max_logit_rows = MAX_SEQS};
    double t0 = now_s();
    if (realm_model_load(g, be, &mp, &m, &err)) die(&err);
    double load_s = now_s() - t0;
    const realm_hparams *hp = realm_model_hparams(m);
    if (realm_kv_cache_init(be, hp, MAX_SEQS, ctx, realm_kv_type_pick(be, kv_type), &kv, &err))
        die(&err);
    logits = realm_model_logits_alloc(m, MAX_SEQS);
    if (!logits) {
        fprintf(stderr, "bench: out of memory for logits\n");
        return 1;
    }
    if (streams > 0) {
        double t = run_decode(streams, 16, steps, NULL);
        printf("BENCH model=%s device=%s agg%d_tok_s=%.1f step_ms=%.2f logit_rows=%d\n", path,
               device, streams, t, 1e3 * streams / t, logit_rows < streams ? logit_rows : streams);
        goto done;
    }
    if (mixed > 0) {
        printf("BENCH model=%s device=%s mixed%d_pass_ms=%.2f\n", path, device, mixed,
               run_mixed(mixed, 512, 448 - mixed));
        goto done;
    }
    double pre = 0;
    if (prefill > 0) {
        double t[3];
        run_decode(1, prefill, 0, &pre);
        for (int i = 0; i < 3; i++)
            run_decode(1, prefill, 0, &t[i]);
        double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
        pre = t[2] < lo ? lo : t[2] > hi ? hi : t[2];
        printf("BENCH model=%s device=%s prefill%d_tok_s=%.0f\n", path, device, prefill, pre);
        goto done;
    }
    double d1 = run_decode(1, 16, 2 * steps, NULL);
    if (decode_only) {
        printf("BENCH model=%s device=%s decode1_tok_s=%.1f\n", path, device, d1);
        goto done;
    }
    printf("BENCH model=%s device=%s load_s=%.1f decode1_tok_s=%.1f", path, device, load_s, d1);
    const int ps[3] = {128, 256, 512};
    for (int i = 0; i < 3; i++) {
        run_decode(1, ps[i], 0, &pre); /* warm-up of the path */
        run_decode(1, ps[i], 0, &pre);
        printf(" prefill%d_tok_s=%.0f", ps[i], pre);
    }
    fflush(stdout);
    const int ns[4] = {1, 8, 32, 64};
    for (int i = 0; i < 4; i++)
        printf(" agg%d_tok_s=%.1f", ns[i], run_decode(ns[i], 16, steps, NULL)), fflush(stdout);
    printf("\n");
done:
    realm_model_logits_free(m, logits);
    realm_kv_cache_free(kv);
    realm_model_free(m);
    realm_backend_free(be);
    realm_gguf_close(g);
    return 0;
}
