/* Tests for tenants/ under stress: the ledger survives SIGKILL right after
 * record_usage returns, several threads share one handle, and every
 * allocation failure (ours and SQLite's, which goes through realm_malloc) is
 * reported as an error and leaks nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "tenants/tenants.h"
#include "tenants/tenants_fixture.h"

static int setup(void **state)
{
    tfix *f = calloc(1, sizeof *f);
    tfix_init(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    tfix_done(*state);
    free(*state);
    return 0;
}

/* Whether the ledger at path has a row for request_id (read with plain
 * SQLite, not the module under test). */
static int ledger_has(const char *path, const char *request_id)
{
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
    sqlite3_stmt *st;
    int found = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM usage WHERE request_id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) found = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return found;
}

static void test_durable_after_sigkill(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t;
    int64_t id = 0;
    assert_int_equal(realm_tenants_open(f->path, &t, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "billing", NULL, &id, NULL), REALM_OK);
    realm_tenants_close(t);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Child: record requests forever, reporting each id only after
         * record_usage has returned REALM_OK. */
        close(fds[0]);
        realm_tenants_t *c;
        if (realm_tenants_open(f->path, &c, NULL) != REALM_OK) _exit(3);
        for (int i = 0;; i++) {
            char rid[32];
            snprintf(rid, sizeof rid, "req-%d", i);
            if (realm_tenants_record_usage(c, id, rid, "m", 1, 1, 0, 200, NULL) != REALM_OK)
                _exit(4);
            if (write(fds[1], &i, sizeof i) != (ssize_t)sizeof i) _exit(5);
        }
    }
    close(fds[1]);
    int last = -1, v;
    while (last < 25 && read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        last = v;
    /* Killed without any chance to flush or close; whatever it reported
     * before dying (including reports still in the pipe) must be there. */
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
        last = v;
    close(fds[0]);
    assert_true(last >= 25);

    for (int i = 0; i <= last; i++) {
        char rid[32];
        snprintf(rid, sizeof rid, "req-%d", i);
        assert_int_equal(ledger_has(f->path, rid), 1);
    }
    assert_int_equal(realm_tenants_open(f->path, &t, NULL), REALM_OK);
    realm_usage_totals u;
    assert_int_equal(realm_tenants_usage(t, id, 0, INT64_MAX, &u, NULL), REALM_OK);
    assert_true(u.requests >= last + 1);
    /* The next row (if the kill landed between commit and report) at most. */
    assert_true(u.requests <= last + 2);
    realm_tenants_close(t);
}

enum { N_THREADS = 8, N_PER_THREAD = 40 };

typedef struct worker {
    realm_tenants_t *t;
    int index;
    char key[REALM_TENANTS_KEY_SIZE];
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        realm_auth_result r;
        realm_tenant_info info;
        if (realm_tenants_authenticate(w->t, w->key, strlen(w->key), &info, &r, NULL) != REALM_OK ||
            r != REALM_AUTH_OK) {
            w->failures++;
            continue;
        }
        realm_quota_ticket tk;
        if (realm_tenants_admit(w->t, info.id, 10, &tk, NULL) != REALM_OK) w->failures++;
        char rid[48];
        snprintf(rid, sizeof rid, "w%d-%d", w->index, i);
        if (realm_tenants_record_usage(w->t, info.id, rid, "m", 3, 4, 1, 200, NULL) != REALM_OK)
            w->failures++;
        realm_tenants_release(w->t, &tk, 7);
        if (i % 10 == 0) {
            char name[32];
            snprintf(name, sizeof name, "extra-%d-%d", w->index, i);
            if (realm_tenants_create(w->t, name, NULL, NULL, NULL) != REALM_OK) w->failures++;
            realm_tenant_info *v;
            size_t n;
            if (realm_tenants_list(w->t, &v, &n, NULL) != REALM_OK) w->failures++;
            realm_free(v);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t;
    assert_int_equal(realm_tenants_open(f->path, &t, NULL), REALM_OK);
    /* Two tenants shared by the workers, so quota state and the ledger see
     * real contention; limits high enough that nothing is refused. */
    int64_t ids[2];
    realm_tenant_quotas q = {
        .requests_per_min = 100000, .tokens_per_min = 10000000, .max_concurrent = N_THREADS};
    assert_int_equal(realm_tenants_create(t, "even", &q, &ids[0], NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "odd", &q, &ids[1], NULL), REALM_OK);
    worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].t = t;
        w[i].index = i;
        assert_int_equal(realm_tenants_key_create(t, ids[i % 2], "w", w[i].key, NULL, NULL),
                         REALM_OK);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(w[i].failures, 0);
    for (int k = 0; k < 2; k++) {
        realm_usage_totals u;
        assert_int_equal(realm_tenants_usage(t, ids[k], 0, INT64_MAX, &u, NULL), REALM_OK);
        assert_int_equal(u.requests, N_THREADS / 2 * N_PER_THREAD);
        assert_int_equal(u.prompt_tokens, 3 * u.requests);
        /* Every slot came back: max_concurrent admits again. */
        realm_quota_ticket tk[N_THREADS];
        for (int i = 0; i < N_THREADS; i++) {
            assert_int_equal(realm_tenants_admit(t, ids[k], 1, &tk[i], NULL), REALM_OK);
            assert_int_equal(tk[i].verdict, REALM_QUOTA_OK);
        }
        for (int i = 0; i < N_THREADS; i++)
            realm_tenants_release(t, &tk[i], 1);
    }
    realm_tenant_info *v;
    size_t n;
    assert_int_equal(realm_tenants_list(t, &v, &n, NULL), REALM_OK);
    assert_int_equal(n, 2 + N_THREADS * (N_PER_THREAD / 10));
    realm_free(v);
    realm_tenants_close(t);
}

/* One pass over every entry point; returns the first failing status. Under
 * fault injection any step may fail, but only with an error status. */
static realm_status one_pass(const char *path, int iter)
{
    realm_tenants_t *t;
    realm_status s = realm_tenants_open(path, &t, NULL);
    if (s != REALM_OK) {
        assert_null(t);
        return s;
    }
    char name[32], rid[32], key[REALM_TENANTS_KEY_SIZE], kid[REALM_TENANTS_KEY_ID_SIZE];
    snprintf(name, sizeof name, "t%d", iter);
    snprintf(rid, sizeof rid, "r%d", iter);
    int64_t id = 0;
    realm_tenant_quotas q = {.requests_per_min = 10, .tokens_per_min = 100, .max_concurrent = 1};
    realm_tenant_info info, *v = NULL;
    realm_tenant_key *keys = NULL;
    size_t n;
    realm_auth_result r;
    realm_quota_ticket tk;
    realm_usage_totals u;
    if ((s = realm_tenants_create(t, name, &q, &id, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_key_create(t, id, "l", key, kid, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_authenticate(t, key, strlen(key), &info, &r, NULL)) != REALM_OK)
        goto out;
    assert_int_equal(r, REALM_AUTH_OK);
    if ((s = realm_tenants_admit(t, id, 5, &tk, NULL)) != REALM_OK) goto out;
    assert_int_equal(tk.verdict, REALM_QUOTA_OK);
    realm_tenants_release(t, &tk, 5);
    if ((s = realm_tenants_record_usage(t, id, rid, "m", 1, 2, 0, 200, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_usage(t, id, 0, INT64_MAX, &u, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_list(t, &v, &n, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_key_list(t, id, &keys, &n, NULL)) != REALM_OK) goto out;
    if ((s = realm_tenants_key_revoke(t, kid, NULL)) != REALM_OK) goto out;
out:
    realm_free(v);
    realm_free(keys);
    realm_tenants_close(t);
    return s;
}

static void test_allocation_failures(void **state)
{
    tfix *f = *state;
    int n;
    for (n = 0; n < 5000; n++) {
        realm_alloc_fail_after(n);
        realm_status s = one_pass(f->path, n);
        long failed = realm_alloc_failures();
        realm_alloc_fail_after(-1);
        if (failed == 0) {
            assert_int_equal(s, REALM_OK);
            break;
        }
        /* A failed allocation may surface as NOMEM, or as an I/O error when
         * SQLite hit it inside its pager; never as success of a lost write. */
        if (s != REALM_OK) assert_true(s == REALM_E_NOMEM || s == REALM_E_IO);
    }
    assert_true(n > 10 && n < 5000);
    /* The database is intact after all of it. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
    print_message("allocation failure injected at each of %d points\n", n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_durable_after_sigkill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
