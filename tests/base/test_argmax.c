/* Tests for base/argmax.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "base/argmax.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_argmax)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
