/* Tests for base/threadpool: every task runs exactly once, on a valid thread
 * index, for pools of 1..4 threads and task counts from 0 to 999. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>

#include "base/threadpool.h"

typedef struct pool_check {
    atomic_int hits[1000];
    atomic_int bad_thread;
    int size;
} pool_check;

static void pool_task(void *ctx, int64_t task, int thread)
{
    pool_check *c = ctx;
    atomic_fetch_add(&c->hits[task], 1);
    if (thread < 0 || thread >= c->size) atomic_store(&c->bad_thread, 1);
}

static void test_threadpool(void **state)
{
    (void)state;
    for (int size = 1; size <= 4; size++) {
        realm_threadpool_t *p = NULL;
        realm_error err = {0};
        assert_int_equal(realm_threadpool_create(size, &p, &err), REALM_OK);
        assert_int_equal(realm_threadpool_size(p), size);
        static pool_check c;
        for (int job = 0; job < 300; job++) {
            int n = (job * 37) % 1000;
            memset(&c, 0, sizeof c);
            c.size = size;
            realm_threadpool_run(p, n, job % 3, pool_task, &c);
            for (int i = 0; i < 1000; i++)
                assert_int_equal(atomic_load(&c.hits[i]), i < n ? 1 : 0);
            assert_int_equal(atomic_load(&c.bad_thread), 0);
        }
        realm_threadpool_free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threadpool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
