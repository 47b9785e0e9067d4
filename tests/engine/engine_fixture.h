/* Shared by the engine tests: a tiny random model written into a temp dir, a
 * solo greedy oracle that runs the model directly (model/kv_cache.h, one
 * sequence, whole-prompt prefill then one token at a time), and a token
 * collector for engine callbacks.
 *
 * The backend is the CPU's unless $REALM_TEST_BACKEND names another
 * (backend/registry.h): bench/cuda/device_run.sh runs these tests with
 * "cuda" on the GPU machine, so the engine's batches (mixed prompt chunks and
 * decode rows, block tables, prefix hits, preemption) run on the GPU against
 * the same backend's solo oracle. There, a row's bits may depend on the batch
 * around it (the matmul and attention paths depend on the row count), so only
 * the f32 model is exact enough for equal greedy tokens: its rows differ by
 * float summation order alone. */
#ifndef REALM_TESTS_ENGINE_FIXTURE_H
#define REALM_TESTS_ENGINE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/registry.h"
#include "base/alloc.h"
#include "engine/engine.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "tools/synth.h"

/* f32 weights keep the oracle cheap under ASan; -DFX_SCHEME="q8_0" checks a
 * quantized path (the batched kernels must give every row the same bits). */
#ifndef FX_SCHEME
#define FX_SCHEME "f32"
#endif

enum { FX_MAX_ROWS = 64, FX_MAX_CTX = 128, FX_MAX_LOGITS = 32, FX_MAX_GEN = 64 };

static char fx_dir[128], fx_path[192];
static realm_gguf_t *fx_g;
static realm_backend *fx_be;
static realm_model_t *fx_m;
static int32_t fx_vocab;

static int fx_setup(void **state)
{
    (void)state;
    snprintf(fx_dir, sizeof fx_dir, "/tmp/realm_engine_test_XXXXXX");
    if (!mkdtemp(fx_dir)) return -1;
    snprintf(fx_path, sizeof fx_path, "%s/tiny.gguf", fx_dir);
    realm_synth_options o = {
        .shape = "tiny", .scheme = FX_SCHEME, .out_path = fx_path, .seed = 11, .n_threads = 1};
    realm_error err = {0};
    if (realm_synth_write(&o, &err) || realm_gguf_open(fx_path, &fx_g, &err)) goto fail;
    const char *backend = getenv("REALM_TEST_BACKEND");
    realm_backend_options bo = {.n_threads = 1};
    if (realm_backend_create(backend && *backend ? backend : "cpu", &bo, &fx_be, &err)) goto fail;
    realm_model_params mp = {
        .max_rows = FX_MAX_ROWS, .max_ctx = FX_MAX_CTX, .max_logit_rows = FX_MAX_LOGITS};
    if (realm_model_load(fx_g, fx_be, &mp, &fx_m, &err)) goto fail;
    fx_vocab = realm_model_hparams(fx_m)->n_vocab;
    return 0;
fail:
    fprintf(stderr, "engine fixture: %s\n", err.message);
    return -1;
}

static int fx_teardown(void **state)
{
    (void)state;
    realm_model_free(fx_m);
    realm_backend_free(fx_be);
    realm_gguf_close(fx_g);
    unlink(fx_path);
    rmdir(fx_dir);
    return 0;
}

static inline int32_t fx_argmax(const float *l, int32_t n)
{
    int32_t best = 0;
    for (int32_t v = 1; v < n; v++)
        if (l[v] > l[best]) best = v;
    return best;
}

/* The greedy tokens of prompt alone; stops after a stop id (included) or
 * max_tokens. Returns the count. */
static inline int32_t fx_solo(const int32_t *prompt, int32_t n_prompt, int32_t max_tokens,
                              const int32_t *stop, int32_t n_stop, int32_t *out)
{
    realm_error err = {0};
    realm_kv_cache_t *kv = NULL;
    assert_int_equal(realm_kv_cache_init(fx_be, realm_model_hparams(fx_m), 1, FX_MAX_CTX,
                                         realm_kv_type_pick(fx_be, REALM_KV_AUTO), &kv, &err),
                     REALM_OK);
    float *logits = realm_calloc((size_t)fx_vocab, sizeof *logits);
    int32_t pos[FX_MAX_ROWS], seq[FX_MAX_ROWS] = {0}, tok[FX_MAX_CTX];
    assert_non_null(logits);
    assert_true(n_prompt <= FX_MAX_ROWS);
    memcpy(tok, prompt, (size_t)n_prompt * sizeof *tok);
    for (int32_t i = 0; i < FX_MAX_ROWS; i++)
        pos[i] = i;
    realm_batch b = {.n_rows = n_prompt,
                     .token = tok,
                     .pos = pos,
                     .seq = seq,
                     .n_seqs = 1,
                     .seqs = realm_kv_cache_seq(kv, 0)};
    int32_t n = 0;
    for (;;) {
        assert_int_equal(realm_model_forward(fx_m, realm_kv_cache_pool(kv), &b, logits, &err),
                         REALM_OK);
        int32_t t = fx_argmax(logits, fx_vocab);
        out[n++] = t;
        bool stopped = false;
        for (int32_t i = 0; i < n_stop; i++)
            stopped |= stop[i] == t;
        if (stopped || n == max_tokens) break;
        int32_t p = n_prompt + n - 1;
        tok[p] = t;
        pos[0] = p;
        b = (realm_batch){.n_rows = 1,
                          .token = tok + p,
                          .pos = pos,
                          .seq = seq,
                          .n_seqs = 1,
                          .seqs = realm_kv_cache_seq(kv, 0)};
    }
    realm_free(logits);
    realm_kv_cache_free(kv);
    return n;
}

/* What the engine delivered for one request. */
typedef struct fx_out {
    int32_t tokens[FX_MAX_GEN];
    int32_t n, n_events, n_final;
    realm_engine_finish finish;
    int32_t n_prompt_cached;
    int64_t queue_steps;
    realm_engine_seq_id id;
} fx_out;

static inline void fx_on_event(void *user, const realm_engine_event *ev)
{
    fx_out *o = user;
    o->n_events++;
    if (ev->token >= 0) {
        assert_true(o->n < FX_MAX_GEN);
        o->tokens[o->n++] = ev->token;
        assert_int_equal(ev->n_generated, o->n);
    }
    if (ev->finish != REALM_ENGINE_FINISH_NONE) {
        o->n_final++;
        o->finish = ev->finish;
    }
    o->n_prompt_cached = ev->n_prompt_cached;
    o->queue_steps = ev->queue_steps;
}

static inline realm_engine_t *fx_engine(const realm_engine_params *p)
{
    realm_engine_t *e = NULL;
    realm_error err = {0};
    assert_int_equal(realm_engine_create(fx_m, p, &e, &err), REALM_OK);
    return e;
}

static inline void fx_submit(realm_engine_t *e, uint32_t tenant, const int32_t *prompt, int32_t n,
                             int32_t max_tokens, fx_out *o)
{
    realm_error err = {0};
    realm_engine_request r = {.tenant = tenant,
                              .prompt = prompt,
                              .n_prompt = n,
                              .max_tokens = max_tokens,
                              .on_event = fx_on_event,
                              .user = o};
    assert_int_equal(realm_engine_submit(e, &r, &o->id, &err), REALM_OK);
}

static inline void fx_run(realm_engine_t *e)
{
    realm_error err = {0};
    for (int guard = 0; !realm_engine_idle(e); guard++) {
        assert_true(guard < 100000);
        assert_int_equal(realm_engine_step(e, NULL, &err), REALM_OK);
    }
}

/* Every block back: free or cached, none referenced. */
static inline void fx_assert_no_leak(realm_engine_t *e)
{
    realm_engine_stats s = realm_engine_stats_get(e);
    assert_int_equal(s.n_running, 0);
    assert_int_equal(s.n_queued, 0);
    assert_int_equal(s.kv_free + s.kv_cached, s.kv_blocks);
}

/* Deterministic pseudo-random numbers for the tests. */
static uint64_t fx_rng = 0x12345678u;
static inline uint32_t fx_rand(uint32_t n)
{
    fx_rng = fx_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(fx_rng >> 33) % n;
}

#endif
