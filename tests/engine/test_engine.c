/* Tests for engine/: batched generation equals solo generation, the prefix
 * cache (hits, misses, tenant isolation, LRU eviction), preemption and
 * resume, admission errors, and allocation failures at create. */
#include "engine_fixture.h"

typedef struct job {
    int32_t prompt[48];
    int32_t n_prompt, max_tokens, arrive_step;
    uint32_t tenant;
    int32_t expect[FX_MAX_GEN], n_expect;
    fx_out out;
} job;

/* Prompts of 1..40 tokens; every other one starts with a shared 24-token
 * prefix so that prefix hits happen while other sequences still run. */
static void make_jobs(job *j, int n, int max_arrive)
{
    static const int32_t shared[24] = {7,  100, 200, 300, 400, 500, 600, 700, 800, 900, 11,  22,
                                       33, 44,  55,  66,  77,  88,  99,  111, 222, 333, 444, 555};
    for (int i = 0; i < n; i++) {
        memset(&j[i], 0, sizeof j[i]);
        j[i].n_prompt = 1 + (int32_t)fx_rand(40);
        int32_t k = 0;
        if (i % 2 && j[i].n_prompt > 24)
            for (; k < 24; k++)
                j[i].prompt[k] = shared[k];
        for (; k < j[i].n_prompt; k++)
            j[i].prompt[k] = (int32_t)fx_rand((uint32_t)fx_vocab);
        j[i].max_tokens = 1 + (int32_t)fx_rand(12);
        j[i].arrive_step = max_arrive ? (int32_t)fx_rand((uint32_t)max_arrive) : 0;
        j[i].n_expect = fx_solo(j[i].prompt, j[i].n_prompt, j[i].max_tokens, NULL, 0, j[i].expect);
    }
}

/* Submit each job at its arrival step, run to completion, compare. */
static void run_jobs(realm_engine_t *e, job *j, int n)
{
    realm_error err = {0};
    int submitted = 0;
    for (int step = 0; submitted < n || !realm_engine_idle(e); step++) {
        assert_true(step < 100000);
        for (int i = 0; i < n; i++)
            if (j[i].arrive_step == step) {
                fx_submit(e, j[i].tenant, j[i].prompt, j[i].n_prompt, j[i].max_tokens, &j[i].out);
                submitted++;
            }
        assert_int_equal(realm_engine_step(e, NULL, &err), REALM_OK);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(j[i].out.n_final, 1);
        assert_int_equal(j[i].out.finish, REALM_ENGINE_FINISH_LENGTH);
        assert_int_equal(j[i].out.n, j[i].n_expect);
        assert_memory_equal(j[i].out.tokens, j[i].expect, (size_t)j[i].n_expect * sizeof(int32_t));
    }
    fx_assert_no_leak(e);
}

static void test_batched_equals_solo(void **state)
{
    (void)state;
    static const int counts[] = {1, 3, 8, 32};
    job *j = realm_calloc(32, sizeof *j);
    assert_non_null(j);
    make_jobs(j, 32, 0);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        int n = counts[c];
        for (int i = 0; i < n; i++) {
            memset(&j[i].out, 0, sizeof j[i].out);
            j[i].arrive_step = (int32_t)fx_rand(12);
        }
        /* A 48-row budget forces prompt chunking once several sequences decode. */
        realm_engine_params p = {.max_batch_tokens = 48, .max_running = 32};
        realm_engine_t *e = fx_engine(&p);
        run_jobs(e, j, n);
        realm_engine_stats s = realm_engine_stats_get(e);
        assert_int_equal(s.finished, n);
        if (n >= 8) assert_true(s.prefix_hit_blocks > 0);
        realm_engine_free(e);
    }
    realm_free(j);
}

static void test_prefix_hit_miss_and_tenants(void **state)
{
    (void)state;
    int32_t prompt[40], expect[8];
    for (int i = 0; i < 40; i++)
        prompt[i] = 3 + 17 * i;
    int32_t n_expect = fx_solo(prompt, 40, 8, NULL, 0, expect);
    realm_engine_t *e = fx_engine(NULL);
    realm_error err = {0};
    struct {
        uint32_t tenant;
        uint64_t salt;
        int32_t adapter;
        int32_t cached; /* expected prompt positions served from the cache */
    } cases[] = {
        {1, 0, 0, 0},  /* first time: miss */
        {1, 0, 0, 32}, /* same tenant: the two full blocks before the last position hit */
        {2, 0, 0, 0},  /* another tenant, same prompt: never shared */
        {1, 9, 0, 0},  /* same tenant, another salt */
        {1, 0, 4, 0},  /* same tenant, another adapter */
        {2, 0, 0, 32}, /* tenant 2 now hits its own blocks */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx_out o = {0};
        realm_engine_request r = {.tenant = cases[c].tenant,
                                  .tenant_salt = cases[c].salt,
                                  .adapter = cases[c].adapter,
                                  .prompt = prompt,
                                  .n_prompt = 40,
                                  .max_tokens = 8,
                                  .on_event = fx_on_event,
                                  .user = &o};
        assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
        fx_run(e);
        assert_int_equal(o.n_prompt_cached, cases[c].cached);
        assert_int_equal(o.n, n_expect);
        assert_memory_equal(o.tokens, expect, (size_t)n_expect * sizeof(int32_t));
    }
    realm_engine_stats s = realm_engine_stats_get(e);
    assert_int_equal(s.prefix_hit_blocks, 4);
    assert_true(s.prefix_miss_blocks >= 4);
    fx_assert_no_leak(e);
    realm_engine_free(e);
}

/* A pool of exactly one context (8 blocks): distinct prompts push old
 * cached blocks out, oldest first, and results stay exact. */
static void test_eviction_lru(void **state)
{
    (void)state;
    enum { N = 5, LEN = 48 };
    static int32_t prompts[N][LEN];
    int32_t expect[N][4];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < LEN; k++)
            prompts[i][k] = (int32_t)fx_rand((uint32_t)fx_vocab);
        fx_solo(prompts[i], LEN, 4, NULL, 0, expect[i]);
    }
    realm_engine_params p = {.n_kv_blocks = FX_MAX_CTX / 16};
    realm_engine_t *e = fx_engine(&p);
    for (int i = 0; i < N; i++) {
        fx_out o = {0};
        fx_submit(e, 1, prompts[i], LEN, 4, &o);
        fx_run(e);
        assert_memory_equal(o.tokens, expect[i], sizeof expect[i]);
    }
    realm_engine_stats s = realm_engine_stats_get(e);
    assert_true(s.evictions > 0);
    /* Each run leaves its 3 full blocks cached (the partial 4th is freed):
     * the pool of 8 keeps only the last two runs. The newest prompt hits its
     * 2 blocks before the last position, the oldest misses. */
    fx_out newest = {0}, oldest = {0};
    fx_submit(e, 1, prompts[N - 1], LEN, 4, &newest);
    fx_run(e);
    assert_int_equal(newest.n_prompt_cached, 32);
    assert_memory_equal(newest.tokens, expect[N - 1], sizeof expect[N - 1]);
    fx_submit(e, 1, prompts[0], LEN, 4, &oldest);
    fx_run(e);
    assert_int_equal(oldest.n_prompt_cached, 0);
    assert_memory_equal(oldest.tokens, expect[0], sizeof expect[0]);
    fx_assert_no_leak(e);
    realm_engine_free(e);
}

/* Six generations of up to 3 blocks each in a pool of 8 blocks: sequences are
 * preempted and recomputed, with and without the prefix cache, and every
 * one still yields its solo tokens. */
static void test_preempt_and_resume(void **state)
{
    (void)state;
    enum { N = 6 };
    job *j = realm_calloc(N, sizeof *j);
    assert_non_null(j);
    for (int i = 0; i < N; i++) {
        j[i].n_prompt = 12 + i;
        for (int k = 0; k < j[i].n_prompt; k++)
            j[i].prompt[k] = (int32_t)fx_rand((uint32_t)fx_vocab);
        j[i].max_tokens = 24 + i;
        j[i].tenant = (uint32_t)i % 3;
        j[i].n_expect = fx_solo(j[i].prompt, j[i].n_prompt, j[i].max_tokens, NULL, 0, j[i].expect);
    }
    for (int no_cache = 0; no_cache < 2; no_cache++) {
        for (int i = 0; i < N; i++)
            memset(&j[i].out, 0, sizeof j[i].out);
        realm_engine_params p = {.n_kv_blocks = 8, .no_prefix_cache = no_cache};
        realm_engine_t *e = fx_engine(&p);
        run_jobs(e, j, N);
        realm_engine_stats s = realm_engine_stats_get(e);
        assert_true(s.preemptions > 0);
        realm_engine_free(e);
    }
    realm_free(j);
}

static void test_stop_ids(void **state)
{
    (void)state;
    int32_t prompt[5] = {9, 8, 7, 6, 5}, expect[16];
    int32_t n = fx_solo(prompt, 5, 16, NULL, 0, expect);
    assert_true(n >= 3);
    int32_t stop[2] = {expect[2], -5};
    int32_t n_stop_expect = fx_solo(prompt, 5, 16, stop, 1, expect);
    realm_engine_t *e = fx_engine(NULL);
    fx_out o = {0};
    realm_error err = {0};
    realm_engine_request r = {.tenant = 1,
                              .prompt = prompt,
                              .n_prompt = 5,
                              .max_tokens = 16,
                              .stop = stop,
                              .n_stop = 2,
                              .on_event = fx_on_event,
                              .user = &o};
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
    fx_run(e);
    assert_int_equal(o.finish, REALM_ENGINE_FINISH_STOP);
    assert_int_equal(o.n, n_stop_expect);
    assert_memory_equal(o.tokens, expect, (size_t)n_stop_expect * sizeof(int32_t));
    realm_engine_free(e);
}

static void test_submit_errors(void **state)
{
    (void)state;
    realm_engine_params p = {.max_queued = 3, .max_tenants = 2};
    realm_engine_t *e = fx_engine(&p);
    realm_error err = {0};
    int32_t prompt[4] = {1, 2, 3, 4}, bad[2] = {1, 1 << 30};
    fx_out o[8] = {0};
    realm_engine_request r = {.tenant = 1,
                              .prompt = prompt,
                              .n_prompt = 4,
                              .max_tokens = 4,
                              .on_event = fx_on_event,
                              .user = &o[0]};
    realm_engine_request x = r;
    x.n_prompt = 0;
    assert_int_equal(realm_engine_submit(e, &x, NULL, &err), REALM_E_INVALID);
    x = r;
    x.prompt = bad;
    x.n_prompt = 2;
    assert_int_equal(realm_engine_submit(e, &x, NULL, &err), REALM_E_INVALID);
    x = r;
    x.max_tokens = FX_MAX_CTX;
    assert_int_equal(realm_engine_submit(e, &x, NULL, &err), REALM_E_INVALID);
    x = r;
    x.on_event = NULL;
    assert_int_equal(realm_engine_submit(e, &x, NULL, &err), REALM_E_INVALID);
    /* Tenant table full (2): a third tenant is told to retry. */
    r.tenant = 2;
    r.user = &o[1];
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
    r.tenant = 3;
    r.user = &o[2];
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
    r.tenant = 4;
    r.user = &o[3];
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_E_BUSY);
    assert_non_null(strstr(err.message, "retry"));
    /* Queue limit (3): the fourth waiting request is told to retry. */
    r.tenant = 2;
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
    r.user = &o[4];
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_E_BUSY);
    assert_non_null(strstr(err.message, "queue full"));
    assert_int_equal(realm_engine_stats_get(e).rejected, 2);
    /* Once they ran there is room again, and tenant 4 fits: tenant 3 is done. */
    fx_run(e);
    r.tenant = 4;
    assert_int_equal(realm_engine_submit(e, &r, NULL, &err), REALM_OK);
    fx_run(e);
    for (int i = 0; i < 5; i++)
        assert_int_equal(o[i].n_final, i == 0 ? 0 : 1);
    fx_assert_no_leak(e);
    realm_engine_free(e);
}

/* Every allocation in create may fail: a clean error, no leak (ASan). */
static void test_create_alloc_failures(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        realm_engine_t *e = NULL;
        realm_error err = {0};
        realm_alloc_fail_after(n);
        realm_status st = realm_engine_create(fx_m, NULL, &e, &err);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) {
            realm_engine_free(e);
            assert_true(n > 10);
            break;
        }
        assert_int_equal(st, REALM_E_NOMEM);
        assert_null(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_solo),
        cmocka_unit_test(test_prefix_hit_miss_and_tenants),
        cmocka_unit_test(test_eviction_lru),
        cmocka_unit_test(test_preempt_and_resume),
        cmocka_unit_test(test_stop_ids),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_create_alloc_failures),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
