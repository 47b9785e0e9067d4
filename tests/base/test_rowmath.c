/* Tests for base/rowmath.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rowmath.h"

/* realm_argmax_f32 against the obvious loop: every length around the lane
 * count, ties (the lowest index), NaN and -inf never chosen, nothing left. */
static void test_argmax(void **state)
{
    (void)state;
    float x[300];
    uint64_t r = 5;
    for (int32_t n = 0; n <= 300; n += n < 40 ? 1 : 37) {
        for (int trial = 0; trial < 20; trial++) {
            for (int32_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                uint32_t u = (uint32_t)(r >> 33);
                /* few distinct values, so ties are common; some NaN and -inf */
                x[i] = u % 11 == 0 ? NAN : u % 13 == 0 ? -INFINITY : (float)(u % 7) - 3.0f;
            }
            int32_t want = -1;
            for (int32_t i = 0; i < n; i++)
                if (x[i] > -INFINITY && (want < 0 || x[i] > x[want])) want = i;
            assert_int_equal(realm_argmax_f32(x, n), want);
        }
    }
    for (int32_t i = 0; i < 20; i++)
        x[i] = i % 2 ? NAN : -INFINITY;
    assert_int_equal(realm_argmax_f32(x, 20), -1);
    x[17] = -1e30f;
    assert_int_equal(realm_argmax_f32(x, 20), 17);
    x[3] = INFINITY;
    assert_int_equal(realm_argmax_f32(x, 20), 3);
}

static int64_t ordered(float f)
{
    int32_t b;
    memcpy(&b, &f, sizeof b);
    return b < 0 ? (int64_t)INT32_MIN - b : b; /* monotonic in f: ulps apart = difference */
}

/* realm_exp_scaled_f32 against double exp rounded to float: within 1 ulp on
 * every 97th float of [-87, 0] (some 10 million, all binades), 0 below -87
 * and at -inf, exactly 1 at 0; sub and mul applied as (x - sub) * mul. */
static void test_exp_scaled(void **state)
{
    (void)state;
    enum { CHUNK = 4096 };
    float *x = malloc(CHUNK * sizeof *x), *arg = malloc(CHUNK * sizeof *arg);
    assert_non_null(x);
    assert_non_null(arg);
    int64_t worst = 0, n = 0;
    uint32_t bits = 0x80000000u; /* -0.0, then down to -87 in steps of 97 ulps */
    for (;;) {
        int k = 0;
        for (; k < CHUNK; k++, bits += 97) {
            float f;
            memcpy(&f, &bits, sizeof f);
            if (!(f >= -87.0f)) break;
            x[k] = arg[k] = f;
        }
        if (k == 0) break;
        realm_exp_scaled_f32(x, k, 0.0f, 1.0f);
        for (int i = 0; i < k; i++) {
            int64_t d = llabs(ordered(x[i]) - ordered((float)exp((double)arg[i])));
            if (d > worst) worst = d;
        }
        n += k;
        if (k < CHUNK) break;
    }
    printf("exp_scaled: %lld arguments, worst %lld ulp\n", (long long)n, (long long)worst);
    assert_true(n > 10000000);
    assert_true(worst <= 1);
    float y[6] = {-INFINITY, -87.5f, -1000.0f, 0.0f, 3.0f, 2.5f};
    realm_exp_scaled_f32(y, 6, 3.0f, 2.0f); /* (x - 3) * 2 */
    assert_true(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f);
    assert_true(fabsf(y[3] - (float)exp(-6.0)) <= 1e-7f * (float)exp(-6.0));
    assert_true(y[4] == 1.0f);
    assert_true(fabsf(y[5] - (float)exp(-1.0)) <= 1e-7f);
    free(x);
    free(arg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_argmax),
                                       cmocka_unit_test(test_exp_scaled)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
