/* Engine tests over many requests: random submissions and cancellations free
 * every block; the light tenant's queueing delay stays bounded while another
 * tenant floods; submit/cancel from another thread while the engine steps.
 *
 * REALM_ENGINE_STRESS=N sets the number of random requests (default 150,
 * about 10 s under ASan; the 10,000 is
 * REALM_ENGINE_STRESS=10000). REALM_TEST_FILTER=NAME runs one test. */
#include <pthread.h>
#include <sched.h>

#include "engine_fixture.h"

typedef struct req {
    fx_out out;
    int32_t cancel_at; /* cancel from inside the callback after this many tokens; 0: never */
    realm_engine_t *e;
} req;

static void on_event_cancel(void *user, const realm_engine_event *ev)
{
    req *r = user;
    fx_on_event(&r->out, ev);
    if (r->cancel_at && r->out.n == r->cancel_at && ev->finish == REALM_ENGINE_FINISH_NONE)
        assert_true(realm_engine_cancel(r->e, ev->seq));
}

static void random_prompt(int32_t *p, int32_t n)
{
    /* Prompts of a few families share long prefixes, across tenants too. */
    uint32_t family = fx_rand(4);
    for (int32_t k = 0; k < n; k++)
        p[k] = k < 20 ? (int32_t)(family * 97 + (uint32_t)k * 13) % fx_vocab
                      : (int32_t)fx_rand((uint32_t)fx_vocab);
}

static void test_random_cancel_no_leak(void **state)
{
    (void)state;
    const char *env = getenv("REALM_ENGINE_STRESS");
    int n_req = env ? atoi(env) : 150;
    if (n_req <= 0) n_req = 150;
    req *rs = realm_calloc((size_t)n_req, sizeof *rs);
    realm_engine_seq_id *live = realm_calloc((size_t)n_req, sizeof *live);
    assert_non_null(rs);
    assert_non_null(live);
    /* A pool of 12 blocks for up to 16 sequences of up to 80 positions:
     * eviction and preemption happen all the time. */
    realm_engine_params p = {
        .n_kv_blocks = 12, .max_running = 16, .max_queued = 24, .max_batch_tokens = 48};
    realm_engine_t *e = fx_engine(&p);
    realm_error err = {0};
    int next = 0, n_live = 0, accepted = 0, rejected = 0, cancels = 0;
    while (next < n_req || !realm_engine_idle(e)) {
        /* Mostly keep the queue short; one step in ten bursts past its limit. */
        int burst =
            realm_engine_stats_get(e).n_queued < 8 || fx_rand(10) == 0 ? (int)fx_rand(4) : 0;
        for (int k = burst; k > 0 && next < n_req; k--, next++) {
            req *r = &rs[next];
            int32_t prompt[40];
            int32_t n = 1 + (int32_t)fx_rand(40);
            random_prompt(prompt, n);
            r->e = e;
            r->cancel_at = fx_rand(8) == 0 ? 1 + (int32_t)fx_rand(4) : 0;
            realm_engine_request q = {.tenant = fx_rand(5),
                                      .prompt = prompt,
                                      .n_prompt = n,
                                      .max_tokens = 1 + (int32_t)fx_rand(32),
                                      .on_event = on_event_cancel,
                                      .user = r};
            realm_status st = realm_engine_submit(e, &q, &r->out.id, &err);
            if (st == REALM_E_BUSY) {
                rejected++;
                r->out.n_final = 1; /* never accepted: nothing to deliver */
                continue;
            }
            assert_int_equal(st, REALM_OK);
            accepted++;
            live[n_live++] = r->out.id;
        }
        /* Cancel a random id, live or long dead (dead ids are ignored). */
        if (n_live && fx_rand(3) == 0)
            cancels += realm_engine_cancel(e, live[fx_rand((uint32_t)n_live)]);
        assert_int_equal(realm_engine_step(e, NULL, &err), REALM_OK);
    }
    for (int i = 0; i < n_req; i++)
        assert_int_equal(rs[i].out.n_final, 1);
    realm_engine_stats s = realm_engine_stats_get(e);
    assert_int_equal(s.finished, accepted);
    assert_int_equal(s.rejected, rejected);
    assert_true(s.cancelled > 0 && s.cancelled <= cancels + n_req);
    assert_true(s.preemptions > 0);
    assert_true(s.evictions > 0);
    assert_true(s.prefix_hit_blocks > 0);
    fx_assert_no_leak(e);
    print_message("stress: %d requests, %d accepted, %d rejected, %lld cancelled, %lld "
                  "preemptions, %lld evictions, %lld prefix hits, %lld steps\n",
                  n_req, accepted, rejected, (long long)s.cancelled, (long long)s.preemptions,
                  (long long)s.evictions, (long long)s.prefix_hit_blocks, (long long)s.steps);
    realm_engine_free(e);
    realm_free(rs);
    realm_free(live);
}

/* One tenant keeps 32 requests queued; another sends one every 20 steps.
 * Bound (engine.h): the light request waits at most until some running
 * sequence ends, i.e. <= M steps for heavy requests of M tokens whose prompt
 * fits one step, where FCFS would make it wait for the whole backlog
 * (32 * M / 8 = 48 steps). With a cap on the heavy tenant below max_running
 * it is admitted at once. */
static void run_fairness(int heavy_cap, int64_t bound)
{
    enum { M = 12, RUNNING = 8, BACKLOG = 32, N_LIGHT = 5, GAP = 15, POOL = 2048 };
    realm_engine_params p = {.max_running = RUNNING, .max_batch_tokens = 64, .max_queued = 64};
    realm_engine_t *e = fx_engine(&p);
    fx_out *heavy = realm_calloc(POOL, sizeof *heavy), light[N_LIGHT] = {0};
    assert_non_null(heavy);
    realm_error err = {0};
    int n_heavy = 0, n_light = 0;
    int32_t prompt[8];
    for (int step = 0; n_light < N_LIGHT || light[N_LIGHT - 1].n_final == 0; step++) {
        realm_engine_stats s = realm_engine_stats_get(e);
        while (s.n_queued < BACKLOG && n_heavy < POOL) {
            random_prompt(prompt, 8);
            realm_engine_request r = {.tenant = 1,
                                      .tenant_max_running = heavy_cap,
                                      .prompt = prompt,
                                      .n_prompt = 8,
                                      .max_tokens = M,
                                      .on_event = fx_on_event,
                                      .user = &heavy[n_heavy++]};
            assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
            s.n_queued++;
        }
        if (step % GAP == GAP - 1 && n_light < N_LIGHT) {
            random_prompt(prompt, 8);
            realm_engine_request r = {.tenant = 2,
                                      .prompt = prompt,
                                      .n_prompt = 8,
                                      .max_tokens = 4,
                                      .on_event = fx_on_event,
                                      .user = &light[n_light++]};
            assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
        }
        assert_int_equal(realm_engine_step(e, NULL, &err), REALM_OK);
    }
    int64_t worst = 0;
    for (int i = 0; i < N_LIGHT; i++) {
        assert_int_equal(light[i].n_final, 1);
        if (light[i].queue_steps > worst) worst = light[i].queue_steps;
    }
    print_message("fairness (heavy cap %d): light tenant's worst queueing delay %lld steps "
                  "(bound %lld)\n",
                  heavy_cap, (long long)worst, (long long)bound);
    assert_true(worst <= bound);
    realm_engine_free(e); /* heavy requests still queued end without callbacks */
    realm_free(heavy);
}

static void test_fairness_light_tenant(void **state)
{
    (void)state;
    run_fairness(0, 12);
    run_fairness(6, 0);
}

/* ---- another thread submits and cancels while this one steps ---- */

typedef struct shared {
    realm_engine_t *e;
    req *rs;
    int n;
    volatile int done; /* written by the submitter, read after join or as a hint */
    pthread_mutex_t mu;
} shared;

static void *submitter(void *arg)
{
    shared *sh = arg;
    uint64_t rng = 99;
    for (int i = 0; i < sh->n; i++) {
        int32_t prompt[24];
        for (int k = 0; k < 24; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            prompt[k] = (int32_t)((rng >> 33) % 1000);
        }
        realm_engine_request q = {.tenant = (uint32_t)(rng >> 40) % 3,
                                  .prompt = prompt,
                                  .n_prompt = 1 + (int32_t)((rng >> 20) % 24),
                                  .max_tokens = 6,
                                  .on_event = fx_on_event,
                                  .user = &sh->rs[i].out};
        realm_engine_seq_id id;
        realm_status st;
        while ((st = realm_engine_submit(sh->e, &q, &id, NULL)) == REALM_E_BUSY)
            sched_yield();
        assert_int_equal(st, REALM_OK);
        if (i % 3 == 0) realm_engine_cancel(sh->e, id);
    }
    pthread_mutex_lock(&sh->mu);
    sh->done = 1;
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    realm_engine_params p = {.max_running = 8, .max_queued = 8, .n_kv_blocks = 16};
    shared sh = {.e = fx_engine(&p), .n = 100};
    sh.rs = realm_calloc((size_t)sh.n, sizeof *sh.rs);
    assert_non_null(sh.rs);
    pthread_mutex_init(&sh.mu, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submitter, &sh), 0);
    realm_error err = {0};
    for (;;) {
        pthread_mutex_lock(&sh.mu);
        int done = sh.done;
        pthread_mutex_unlock(&sh.mu);
        if (done && realm_engine_idle(sh.e)) break;
        realm_engine_wait(sh.e, 10);
        assert_int_equal(realm_engine_step(sh.e, NULL, &err), REALM_OK);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < sh.n; i++)
        assert_int_equal(sh.rs[i].out.n_final, 1);
    fx_assert_no_leak(sh.e);
    realm_engine_free(sh.e);
    pthread_mutex_destroy(&sh.mu);
    realm_free(sh.rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_cancel_no_leak),
        cmocka_unit_test(test_fairness_light_tenant),
        cmocka_unit_test(test_threads),
    };
    /* REALM_TEST_FILTER=test_threads runs one test (e.g. under TSan). */
    if (getenv("REALM_TEST_FILTER")) cmocka_set_test_filter(getenv("REALM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
