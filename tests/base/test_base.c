/* Tests for base/: error objects, the fault-injecting allocator, parallel_for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include "base/alloc.h"
#include "base/parallel.h"
#include "base/status.h"

static void test_error_set(void **state)
{
    (void)state;
    realm_error err;
    realm_error_clear(&err);
    assert_int_equal(err.status, REALM_OK);
    assert_string_equal(err.message, "");
    assert_int_equal(realm_error_set(&err, REALM_E_FORMAT, "bad %s at byte %d", "magic", 0),
                     REALM_E_FORMAT);
    assert_string_equal(err.message, "bad magic at byte 0");
    assert_string_equal(realm_status_name(err.status), "format");
    /* NULL error objects are allowed; long messages are truncated, not overflowed */
    assert_int_equal(realm_error_set(NULL, REALM_E_IO, "x"), REALM_E_IO);
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    realm_error_set(&err, REALM_E_INVALID, "%s", big);
    assert_int_equal(strlen(err.message), REALM_ERROR_MESSAGE_MAX - 1);
}

static void test_alloc_fault_injection(void **state)
{
    (void)state;
    realm_alloc_fail_after(2);
    void *a = realm_malloc(8), *b = realm_calloc(2, 8), *c = realm_malloc(8);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_null(realm_strdup("x"));
    assert_int_equal(realm_alloc_failures(), 2);
    realm_alloc_fail_after(-1);
    c = realm_malloc(8);
    assert_non_null(c);
    realm_free(a);
    realm_free(b);
    realm_free(c);
}

static void test_alloc_overflow(void **state)
{
    (void)state;
    assert_null(realm_calloc(SIZE_MAX / 2, 4));
    void *p = realm_malloc(16);
    assert_null(realm_realloc_array(p, SIZE_MAX / 8, 16));
    realm_free(p); /* untouched by the failed realloc */
}

static void count_task(void *ctx, int64_t i)
{
    atomic_int *hits = ctx;
    atomic_fetch_add(&hits[i], 1);
}

static void test_parallel_for_runs_each_task_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    static atomic_int hits[N];
    for (int threads = 0; threads <= 5; threads++) {
        for (int i = 0; i < N; i++) atomic_store(&hits[i], 0);
        realm_parallel_for(N, threads, count_task, hits);
        for (int i = 0; i < N; i++) assert_int_equal(atomic_load(&hits[i]), 1);
    }
    /* thread start-up without memory still completes every task */
    for (int i = 0; i < N; i++) atomic_store(&hits[i], 0);
    realm_alloc_fail_after(0);
    realm_parallel_for(N, 4, count_task, hits);
    realm_alloc_fail_after(-1);
    for (int i = 0; i < N; i++) assert_int_equal(atomic_load(&hits[i]), 1);
    realm_parallel_for(0, 4, count_task, hits);
    assert_true(realm_cpu_count() >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_alloc_fault_injection),
        cmocka_unit_test(test_alloc_overflow),
        cmocka_unit_test(test_parallel_for_runs_each_task_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
