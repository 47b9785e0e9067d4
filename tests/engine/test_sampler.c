/* Tests for engine/sampler: each step does exactly what sampler.h promises,
 * checked on hand-made logits whose right answer is known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/sampler.h"

static realm_sampler_t *make(int32_t n_vocab, realm_sampler_params p)
{
    realm_sampler_t *s = NULL;
    realm_error err = {0};
    assert_int_equal(realm_sampler_init(n_vocab, &p, &s, &err), REALM_OK);
    return s;
}

static int32_t sample(realm_sampler_t *s, const float *logits, const realm_sampler_ctl *ctl)
{
    int32_t id = -1;
    realm_error err = {0};
    assert_int_equal(realm_sampler_sample(s, logits, ctl, &id, &err), REALM_OK);
    return id;
}

/* The ids of the last set, in the set's order. */
static int32_t last_ids(realm_sampler_t *s, int32_t *ids, float *probs)
{
    int32_t n;
    const realm_sampler_cand *c = realm_sampler_last_set(s, &n);
    for (int32_t i = 0; i < n; i++) {
        ids[i] = c[i].id;
        if (probs) probs[i] = c[i].p;
    }
    return n;
}

static void test_greedy(void **state)
{
    (void)state;
    realm_sampler_params p = realm_sampler_params_default();
    p.temperature = 0.0f;
    realm_sampler_t *s = make(6, p);
    const float l1[6] = {0.5f, 3.0f, -1.0f, 2.9f, 3.0f, 1.0f};
    assert_int_equal(sample(s, l1, NULL), 1); /* tie 1 vs 4: lowest id */
    const float l2[6] = {NAN, -INFINITY, -5.0f, NAN, -4.0f, -4.5f};
    assert_int_equal(sample(s, l2, NULL), 4); /* NaN never wins */
    int32_t ids[6];
    float probs[6];
    assert_int_equal(last_ids(s, ids, probs), 1);
    assert_int_equal(ids[0], 4);
    assert_true(probs[0] == 1.0f);
    /* Greedy ignores the random stream: same answer whatever the seed. */
    for (int i = 0; i < 20; i++)
        assert_int_equal(sample(s, l1, NULL), 1);
    realm_sampler_free(s);
}

static void test_top_k(void **state)
{
    (void)state;
    realm_sampler_params p = realm_sampler_params_default();
    p.top_k = 3;
    realm_sampler_t *s = make(6, p);
    const float l[6] = {1.0f, 5.0f, 3.0f, 5.0f, 2.0f, 0.0f};
    int32_t ids[6];
    float probs[6];
    for (int rep = 0; rep < 50; rep++) {
        int32_t id = sample(s, l, NULL);
        assert_true(id == 1 || id == 3 || id == 2);
    }
    assert_int_equal(last_ids(s, ids, probs), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 2);
    /* Renormalised softmax over the three kept logits. */
    double z = 2.0 * exp(5.0) + exp(3.0);
    assert_float_equal(probs[0], exp(5.0) / z, 1e-6);
    assert_float_equal(probs[2], exp(3.0) / z, 1e-6);
    realm_sampler_free(s);

    /* A tie at the boundary keeps the lower ids: exactly k. */
    p.top_k = 2;
    s = make(4, p);
    const float t[4] = {2.0f, 2.0f, 2.0f, 1.0f};
    sample(s, t, NULL);
    assert_int_equal(last_ids(s, ids, NULL), 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    realm_sampler_free(s);

    /* k above the vocabulary: no cut. */
    p.top_k = 100;
    s = make(4, p);
    sample(s, t, NULL);
    assert_int_equal(last_ids(s, ids, NULL), 4);
    realm_sampler_free(s);
}

static void logits_of(const double *prob, int n, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)log(prob[i]);
}

static void test_top_p(void **state)
{
    (void)state;
    const double prob[4] = {0.10, 0.50, 0.25, 0.15};
    float l[4];
    logits_of(prob, 4, l);
    int32_t ids[4];
    float probs[4];
    struct {
        float top_p;
        int32_t top_k;
        int32_t n;
        int32_t ids[4];
    } cases[] = {
        {0.45f, 0, 1, {1}},          /* 0.5 alone reaches 0.45 */
        {0.70f, 0, 2, {1, 2}},       /* 0.5 < 0.7 <= 0.75 */
        {0.76f, 0, 3, {1, 2, 3}},    /* 0.75 < 0.76 <= 0.9 */
        {0.95f, 0, 4, {1, 2, 3, 0}}, /* all four, most probable first */
        /* after top-2 the set is {0.667, 0.333}: top-p sees renormalised mass */
        {0.60f, 2, 1, {1}},
        {0.70f, 2, 2, {1, 2}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        realm_sampler_params p = realm_sampler_params_default();
        p.top_p = cases[c].top_p;
        p.top_k = cases[c].top_k;
        p.seed = c;
        realm_sampler_t *s = make(4, p);
        for (int rep = 0; rep < 30; rep++) {
            int32_t id = sample(s, l, NULL);
            bool in = false;
            for (int32_t i = 0; i < cases[c].n; i++)
                in |= id == cases[c].ids[i];
            assert_true(in);
        }
        assert_int_equal(last_ids(s, ids, probs), cases[c].n);
        double kept = 0.0;
        for (int32_t i = 0; i < cases[c].n; i++) {
            assert_int_equal(ids[i], cases[c].ids[i]);
            kept += prob[ids[i]];
        }
        for (int32_t i = 0; i < cases[c].n; i++)
            assert_float_equal(probs[i], prob[ids[i]] / kept, 1e-5);
        realm_sampler_free(s);
    }
}

static void test_min_p(void **state)
{
    (void)state;
    const double prob[4] = {0.50, 0.25, 0.20, 0.05};
    float l[4];
    logits_of(prob, 4, l);
    realm_sampler_params p = realm_sampler_params_default();
    p.min_p = 0.45f; /* keeps p >= 0.225 */
    realm_sampler_t *s = make(4, p);
    int32_t ids[4];
    sample(s, l, NULL);
    assert_int_equal(last_ids(s, ids, NULL), 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    realm_sampler_free(s);
    /* Only the top token reaches 0.6 × 0.5: it alone stays. */
    p.min_p = 0.6f;
    s = make(4, p);
    for (int i = 0; i < 20; i++)
        assert_int_equal(sample(s, l, NULL), 0);
    assert_int_equal(last_ids(s, ids, NULL), 1);
    realm_sampler_free(s);
}

static void test_seed_determinism(void **state)
{
    (void)state;
    float l[50];
    for (int i = 0; i < 50; i++)
        l[i] = (float)sin(i * 0.7) * 2.0f;
    realm_sampler_params p = realm_sampler_params_default();
    p.temperature = 0.9f;
    p.top_p = 0.95f;
    p.seed = 7;
    realm_sampler_t *a = make(50, p), *b = make(50, p);
    p.seed = 8;
    realm_sampler_t *c = make(50, p);
    int32_t seq_a[200], differ = 0;
    for (int i = 0; i < 200; i++) {
        seq_a[i] = sample(a, l, NULL);
        assert_int_equal(sample(b, l, NULL), seq_a[i]);
        differ += sample(c, l, NULL) != seq_a[i];
    }
    assert_true(differ > 50);
    /* reset with the same seed replays the sequence */
    p.seed = 7;
    realm_error err = {0};
    assert_int_equal(realm_sampler_reset(a, &p, &err), REALM_OK);
    for (int i = 0; i < 200; i++)
        assert_int_equal(sample(a, l, NULL), seq_a[i]);
    realm_sampler_free(a);
    realm_sampler_free(b);
    realm_sampler_free(c);
}

/* Draws at temperature T follow softmax(l / T): Pearson chi-square over
 * 20000 draws below the 0.1 % critical value (df = 4: 18.47). The stream is
 * seeded, so this is deterministic, yet a wrong temperature or an off-by-one
 * in the draw fails it by orders of magnitude. */
static void test_temperature_distribution(void **state)
{
    (void)state;
    const float l[5] = {0.0f, 1.0f, 2.0f, 0.5f, -1.0f};
    const float temps[3] = {0.7f, 1.0f, 2.0f};
    enum { N = 20000 };
    for (int t = 0; t < 3; t++) {
        realm_sampler_params p = realm_sampler_params_default();
        p.temperature = temps[t];
        p.seed = 1234 + (uint64_t)t;
        realm_sampler_t *s = make(5, p);
        int hist[5] = {0};
        for (int i = 0; i < N; i++)
            hist[sample(s, l, NULL)]++;
        double z = 0.0, e[5];
        for (int i = 0; i < 5; i++)
            z += e[i] = exp(l[i] / temps[t]);
        double chi2 = 0.0;
        for (int i = 0; i < 5; i++) {
            double want = N * e[i] / z;
            chi2 += (hist[i] - want) * (hist[i] - want) / want;
        }
        assert_true(chi2 < 18.47);
        /* The same histogram is far from the distribution of another T. */
        double z2 = 0.0, chi2_other = 0.0;
        for (int i = 0; i < 5; i++)
            z2 += e[i] = exp(l[i] / (temps[t] * 1.5));
        for (int i = 0; i < 5; i++) {
            double want = N * e[i] / z2;
            chi2_other += (hist[i] - want) * (hist[i] - want) / want;
        }
        assert_true(chi2_other > 100.0);
        realm_sampler_free(s);
    }
}

/* With temperature 1 and no cut, log(p_i / p_0) is the shaped logit
 * difference: that exposes exactly what penalties and biases did. */
static double shaped(realm_sampler_t *s, int32_t id, int32_t ref)
{
    int32_t n;
    const realm_sampler_cand *c = realm_sampler_last_set(s, &n);
    double pi = 0, pr = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].id == id) pi = c[i].p;
        if (c[i].id == ref) pr = c[i].p;
    }
    return log(pi / pr);
}

static void test_penalties(void **state)
{
    (void)state;
    realm_sampler_params p = realm_sampler_params_default();
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 1.0f;
    realm_sampler_t *s = make(6, p);
    realm_error err = {0};
    const int32_t prompt[3] = {2, 2, 5};
    assert_int_equal(realm_sampler_accept_prompt(s, prompt, 3, &err), REALM_OK);
    assert_int_equal(realm_sampler_accept(s, 3, &err), REALM_OK);
    assert_int_equal(realm_sampler_accept(s, 3, &err), REALM_OK);
    assert_int_equal(realm_sampler_accept(s, 4, &err), REALM_OK);
    assert_int_equal(realm_sampler_count(s, 3), 2);
    assert_int_equal(realm_sampler_count(s, 2), 0);
    const float l[6] = {0.0f, 1.0f, 4.0f, -1.0f, 3.0f, -2.0f};
    sample(s, l, NULL);
    /* 0, 1 untouched; 2 prompt only: 4/2; 5 prompt only: -2*2;
     * 3: -1*2 - (0.5*2 + 1); 4: 3/2 - (0.5*1 + 1) */
    assert_float_equal(shaped(s, 1, 0), 1.0, 1e-5);
    assert_float_equal(shaped(s, 2, 0), 2.0, 1e-5);
    assert_float_equal(shaped(s, 5, 0), -4.0, 1e-5);
    assert_float_equal(shaped(s, 3, 0), -4.0, 1e-5);
    assert_float_equal(shaped(s, 4, 0), 0.0, 1e-5);
    /* Reset forgets the history. */
    assert_int_equal(realm_sampler_reset(s, &p, &err), REALM_OK);
    assert_int_equal(realm_sampler_count(s, 3), 0);
    sample(s, l, NULL);
    assert_float_equal(shaped(s, 2, 0), 4.0, 1e-5);
    assert_float_equal(shaped(s, 3, 0), -1.0, 1e-5);
    assert_int_equal(realm_sampler_accept(s, 6, &err), REALM_E_RANGE);
    realm_sampler_free(s);
}

static void test_logit_bias(void **state)
{
    (void)state;
    const realm_logit_bias bias[2] = {{0, 2.5f}, {2, -INFINITY}};
    realm_sampler_params p = realm_sampler_params_default();
    p.logit_bias = bias;
    p.n_logit_bias = 2;
    realm_sampler_t *s = make(4, p);
    const float l[4] = {0.0f, 1.0f, 9.0f, -1.0f};
    for (int i = 0; i < 100; i++)
        assert_int_not_equal(sample(s, l, NULL), 2); /* banned */
    assert_float_equal(shaped(s, 0, 3), 3.5, 1e-5);
    assert_float_equal(shaped(s, 1, 3), 2.0, 1e-5);
    realm_sampler_free(s);
    p.temperature = 0.0f;
    s = make(4, p);
    assert_int_equal(sample(s, l, NULL), 0); /* 2.5 > 1.0; 2 is banned */
    realm_sampler_free(s);
}

static void test_mask(void **state)
{
    (void)state;
    float l[40];
    for (int i = 0; i < 40; i++)
        l[i] = (float)i * 0.1f;
    uint32_t allowed[2] = {(1u << 3) | (1u << 17), 1u << (33 - 32)};
    realm_sampler_ctl ctl = {.allowed = allowed};
    realm_sampler_params p = realm_sampler_params_default();
    p.temperature = 0.0f;
    realm_sampler_t *g = make(40, p);
    assert_int_equal(sample(g, l, &ctl), 33);
    /* The controller's bias applies after the mask. */
    const realm_logit_bias cb = {3, 10.0f};
    ctl.bias = &cb;
    ctl.n_bias = 1;
    assert_int_equal(sample(g, l, &ctl), 3);
    p.temperature = 1.5f;
    realm_sampler_t *s = make(40, p);
    ctl.bias = NULL;
    ctl.n_bias = 0;
    int seen[40] = {0};
    for (int i = 0; i < 600; i++)
        seen[sample(s, l, &ctl)]++;
    for (int i = 0; i < 40; i++)
        assert_true((seen[i] > 0) == (i == 3 || i == 17 || i == 33));
    /* Nothing allowed: a clear error, for greedy and sampling alike. */
    uint32_t none[2] = {0, 0};
    ctl.allowed = none;
    int32_t id;
    realm_error err = {0};
    assert_int_equal(realm_sampler_sample(s, l, &ctl, &id, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "no token"));
    assert_int_equal(realm_sampler_sample(g, l, &ctl, &id, &err), REALM_E_INVALID);
    realm_sampler_free(g);
    realm_sampler_free(s);
}

static void test_bad_params(void **state)
{
    (void)state;
    realm_error err = {0};
    realm_sampler_t *s = NULL;
    realm_sampler_params p = realm_sampler_params_default();
    p.top_p = 0.0f;
    assert_int_equal(realm_sampler_init(10, &p, &s, &err), REALM_E_RANGE);
    assert_non_null(strstr(err.message, "top_p"));
    p = realm_sampler_params_default();
    p.temperature = -1.0f;
    assert_int_equal(realm_sampler_init(10, &p, &s, &err), REALM_E_RANGE);
    p.temperature = NAN;
    assert_int_equal(realm_sampler_init(10, &p, &s, &err), REALM_E_RANGE);
    p = realm_sampler_params_default();
    const realm_logit_bias b = {10, 1.0f};
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    assert_int_equal(realm_sampler_init(10, &p, &s, &err), REALM_E_RANGE);
    assert_non_null(strstr(err.message, "token id 10"));
    assert_null(s);
    /* Every allocation failure of init is reported, none leaks (ASan). */
    p = realm_sampler_params_default();
    for (long n = 0; n < 6; n++) {
        realm_alloc_fail_after(n);
        realm_status st = realm_sampler_init(10, &p, &s, &err);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) {
            realm_sampler_free(s);
            continue;
        }
        assert_int_equal(st, REALM_E_NOMEM);
        assert_null(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_temperature_distribution),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
