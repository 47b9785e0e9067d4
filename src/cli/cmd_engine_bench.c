/*
 * realm engine-bench — throughput and latency of the engine (engine/engine.h)
 * on one model: for each concurrency C, C requests of --prompt random tokens
 * and --gen generated tokens (greedy, or with --temp each drawing from its own
 * seeded sampler, as the server's) are submitted at once and the engine is
 * stepped until all are done. Reports aggregate generation tokens/s
 * (C * gen / wall time, prompt processing included), the decode rate
 * (tokens / time over the steps that ran no prompt rows), time to first
 * token (submit -> first token event), and both rates relative to C = 1. Then the effect of a
 * shared prefix: C requests whose first --shared tokens are equal (a system prompt) after one
 * warm-up request, with the prefix cache off and on (--shared 0: not run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/registry.h"
#include "base/alloc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct bench_req {
    double t_submit, t_first, t_done;
    int32_t n;
    realm_sampler_t *sampler; /* --temp > 0: this request's own */
    realm_engine_finish finish;
    char error[128]; /* FINISH_ERROR's message */
} bench_req;

static void on_event(void *user, const realm_engine_event *ev)
{
    bench_req *r = user;
    double t = now_s();
    if (ev->token >= 0 && r->n++ == 0) r->t_first = t;
    if (ev->finish != REALM_ENGINE_FINISH_NONE) {
        r->t_done = t;
        r->finish = ev->finish;
        if (ev->error) snprintf(r->error, sizeof r->error, "%s", ev->error);
    }
}

typedef struct bench_cfg {
    int n_prompt, n_gen, n_shared, budget, sample_threads;
    float temp, top_p; /* temp 0: greedy (the backend picks), else a sampler a request */
    realm_kv_choice kv_type;
} bench_cfg;

static realm_status sample(void *user, const float *logits, int32_t n_vocab, int32_t *out,
                           realm_error *err)
{
    bench_req *r = user;
    (void)n_vocab;
    realm_status st = realm_sampler_sample(r->sampler, logits, NULL, out, err);
    return st ? st : realm_sampler_accept(r->sampler, *out, err);
}

typedef struct bench_result {
    double wall_s, tok_s, ttft_mean_s, ttft_max_s;
    double decode_tok_s; /* over the steps that ran decode rows only */
    int64_t steps, prompt_rows, hit_blocks;
} bench_result;

static uint64_t rng = 42;
static int32_t rnd(int32_t n)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((rng >> 33) % (uint64_t)n);
}

/* C requests at once (after `warm` warm-up requests run alone); shared: the
 * first n_shared tokens of every prompt are equal. */
static int run_one(realm_model_t *m, const bench_cfg *cfg, int conc, bool shared, bool cache,
                   bench_result *out, realm_error *err)
{
    realm_engine_params ep = {.max_running = conc < 64 ? 64 : conc,
                              .max_batch_tokens = cfg->budget,
                              .no_prefix_cache = !cache,
                              .sample_threads = cfg->sample_threads,
                              .kv_type = cfg->kv_type};
    realm_engine_t *e = NULL;
    int32_t n_vocab = realm_model_hparams(m)->n_vocab;
    int32_t *prompt = realm_calloc((size_t)cfg->n_prompt, sizeof *prompt);
    bench_req *rs = realm_calloc((size_t)conc + 1, sizeof *rs);
    int rc = 1;
    if (!prompt || !rs) {
        realm_error_set(err, REALM_E_NOMEM, "out of memory");
        goto done;
    }
    if (realm_engine_create(m, &ep, &e, err)) goto done;
    for (int i = -(int)shared; i < conc; i++) {
        uint64_t keep = rng;
        for (int k = 0; k < cfg->n_prompt; k++) {
            if (k == 0 && shared) rng = 7; /* the same prefix for every request */
            if (k == cfg->n_shared && shared) rng = keep + (uint64_t)i * 7919;
            prompt[k] = rnd(n_vocab);
        }
        bench_req *r = &rs[i + (int)shared];
        if (cfg->temp > 0) {
            realm_sampler_params sp = realm_sampler_params_default();
            sp.temperature = cfg->temp;
            sp.top_p = cfg->top_p;
            sp.seed = (uint64_t)i + 1000;
            if (realm_sampler_init(n_vocab, &sp, &r->sampler, err)) goto done;
        }
        realm_engine_request q = {.tenant = 1,
                                  .prompt = prompt,
                                  .n_prompt = cfg->n_prompt,
                                  .max_tokens = cfg->n_gen,
                                  .sample = r->sampler ? sample : NULL,
                                  .on_event = on_event,
                                  .user = r};
        r->t_submit = now_s();
        if (realm_engine_submit(e, &q, NULL, err)) goto done;
        /* The warm-up request runs alone, so its prefix is cached before the rest arrive. */
        if (i < 0)
            while (!realm_engine_idle(e))
                if (realm_engine_step(e, NULL, err)) goto done;
    }
    realm_engine_stats s0 = realm_engine_stats_get(e);
    double t0 = now_s(), t_dec = 0;
    int64_t n_dec = 0;
    while (!realm_engine_idle(e)) {
        realm_engine_stats a = realm_engine_stats_get(e);
        double ta = now_s();
        if (realm_engine_step(e, NULL, err)) goto done;
        realm_engine_stats b = realm_engine_stats_get(e);
        if (b.prompt_rows == a.prompt_rows) {
            t_dec += now_s() - ta;
            n_dec += b.tokens_generated - a.tokens_generated;
        }
    }
    double t1 = now_s();
    /* every request must have run to its length: a figure over failed ones means nothing */
    for (int i = 0; i < conc + (int)shared; i++)
        if (rs[i].finish != REALM_ENGINE_FINISH_LENGTH || rs[i].n != cfg->n_gen) {
            realm_error_set(err, REALM_E_INTERNAL,
                            "request %d ended after %d of %d tokens (%s%s%s)", i, rs[i].n,
                            cfg->n_gen,
                            rs[i].finish == REALM_ENGINE_FINISH_ERROR ? "error" : "not by length",
                            rs[i].error[0] ? ": " : "", rs[i].error);
            goto done;
        }
    realm_engine_stats s1 = realm_engine_stats_get(e);
    *out = (bench_result){.wall_s = t1 - t0,
                          .tok_s = (double)conc * cfg->n_gen / (t1 - t0),
                          .decode_tok_s = t_dec > 0 ? (double)n_dec / t_dec : 0,
                          .steps = s1.steps - s0.steps,
                          .prompt_rows = s1.prompt_rows - s0.prompt_rows,
                          .hit_blocks = s1.prefix_hit_blocks - s0.prefix_hit_blocks};
    for (int i = (int)shared; i < conc + (int)shared; i++) {
        double ttft = rs[i].t_first - rs[i].t_submit;
        out->ttft_mean_s += ttft / conc;
        if (ttft > out->ttft_max_s) out->ttft_max_s = ttft;
    }
    rc = 0;
done:
    realm_engine_free(e);
    for (int i = 0; rs && i < conc + 1; i++)
        realm_sampler_free(rs[i].sampler);
    realm_free(prompt);
    realm_free(rs);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: realm engine-bench MODEL.gguf [--conc 1,4,16,64] [--prompt N] [--gen N]"
                    " [--shared N] [--budget N] [--threads N] [--device auto|cpu|cuda] [--kv-type "
                    "auto|f16|f32]\n"
                    "         [--temp T] [--top-p P] [--sample-threads N]   (--temp 0: greedy)\n");
    return 2;
}

int realm_cmd_engine_bench(int argc, char **argv)
{
    const char *path = NULL, *conc_list = "1,4,16,64";
    bench_cfg cfg = {.n_prompt = 64,
                     .n_gen = 32,
                     .n_shared = 48,
                     .budget = 256,
                     .top_p = 1.0f,
                     .kv_type = REALM_KV_AUTO};
    int threads = 0;
    const char *device = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-' && !path) {
            path = a;
            continue;
        }
        if (!v) return usage();
        bool ok = true;
        if (!strcmp(a, "--conc"))
            conc_list = v;
        else if (!strcmp(a, "--prompt"))
            ok = realm_cli_int(v, 1, 1 << 20, &cfg.n_prompt);
        else if (!strcmp(a, "--gen"))
            ok = realm_cli_int(v, 1, 1 << 20, &cfg.n_gen);
        else if (!strcmp(a, "--shared"))
            ok = realm_cli_int(v, 0, 1 << 20, &cfg.n_shared);
        else if (!strcmp(a, "--budget"))
            ok = realm_cli_int(v, 1, 1 << 20, &cfg.budget);
        else if (!strcmp(a, "--threads"))
            ok = realm_cli_int(v, 0, 1024, &threads);
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--temp"))
            ok = realm_cli_float(v, &cfg.temp);
        else if (!strcmp(a, "--top-p"))
            ok = realm_cli_float(v, &cfg.top_p);
        else if (!strcmp(a, "--sample-threads"))
            ok = realm_cli_int(v, 0, 1024, &cfg.sample_threads);
        else if (!strcmp(a, "--kv-type"))
            ok = realm_cli_kv_type(v, &cfg.kv_type);
        else
            return usage();
        if (!ok) {
            fprintf(stderr, "realm engine-bench: bad value '%s' for %s\n", v, a);
            return usage();
        }
        i++;
    }
    if (!path || cfg.n_prompt <= 0 || cfg.n_gen <= 0 || cfg.budget <= 0 || cfg.n_shared < 0 ||
        cfg.n_shared > cfg.n_prompt || !(cfg.temp >= 0) || !(cfg.top_p > 0 && cfg.top_p <= 1))
        return usage();
    int conc[16], n_conc = 0, max_conc = 1;
    for (const char *p = conc_list; *p && n_conc < 16;) {
        conc[n_conc] = atoi(p);
        if (conc[n_conc] <= 0) return usage();
        if (conc[n_conc] > max_conc) max_conc = conc[n_conc];
        n_conc++;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    realm_error err = {0};
    realm_gguf_t *g = NULL;
    realm_backend *be = NULL;
    realm_model_t *m = NULL;
    int rc = 1;
    realm_backend_options bo = {.n_threads = threads};
    int32_t logit_rows = max_conc < 64 ? 64 : max_conc;
    realm_model_params mp = {.max_rows = cfg.budget > logit_rows ? cfg.budget : logit_rows,
                             .max_ctx = cfg.n_prompt + cfg.n_gen,
                             .max_logit_rows = logit_rows};
    if (realm_gguf_open(path, &g, &err) || realm_backend_create(device, &bo, &be, &err) ||
        realm_model_load(g, be, &mp, &m, &err))
        goto done;
    printf("engine-bench: %s on %s, KV %s, prompt %d, gen %d, budget %d rows/step, ", path,
           be->ops->name, realm_kv_type_pick(be, cfg.kv_type) == REALM_TYPE_F32 ? "f32" : "f16",
           cfg.n_prompt, cfg.n_gen, cfg.budget);
    if (cfg.temp > 0)
        printf("sampled (temperature %g, top-p %g, a sampler a request)\n", cfg.temp, cfg.top_p);
    else
        printf("greedy\n");
    printf("%6s %8s %10s %8s %11s %8s %10s %10s %6s\n", "conc", "wall_s", "gen_tok/s", "x_conc1",
           "decode_t/s", "x_conc1", "ttft_mean", "ttft_max", "steps");
    double base = 0, base_dec = 0;
    for (int i = 0; i < n_conc; i++) {
        bench_result r;
        if (run_one(m, &cfg, conc[i], false, true, &r, &err)) goto done;
        if (i == 0) {
            base = r.tok_s;
            base_dec = r.decode_tok_s;
        }
        printf("%6d %8.2f %10.2f %8.2f %11.2f %8.2f %9.3fs %9.3fs %6lld\n", conc[i], r.wall_s,
               r.tok_s, r.tok_s / base, r.decode_tok_s, r.decode_tok_s / base_dec, r.ttft_mean_s,
               r.ttft_max_s, (long long)r.steps);
        fflush(stdout);
    }
    if (cfg.n_shared > 0) { /* --shared 0: no shared-prefix runs */
        int sc = max_conc < 16 ? max_conc : 16;
        printf(
            "shared prefix: %d requests, first %d of %d prompt tokens equal, after one warm-up\n",
            sc, cfg.n_shared, cfg.n_prompt);
        printf("%14s %10s %12s %11s %12s %10s\n", "prefix_cache", "wall_s", "gen_tok/s",
               "ttft_mean", "prompt_rows", "hit_blocks");
        for (int cache = 0; cache < 2; cache++) {
            bench_result r;
            if (run_one(m, &cfg, sc, true, cache, &r, &err)) goto done;
            printf("%14s %10.2f %12.2f %10.3fs %12lld %10lld\n", cache ? "on" : "off", r.wall_s,
                   r.tok_s, r.ttft_mean_s, (long long)r.prompt_rows, (long long)r.hit_blocks);
        }
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "realm engine-bench: %s\n", err.message);
    realm_model_free(m);
    realm_backend_free(be);
    realm_gguf_close(g);
    return rc;
}
