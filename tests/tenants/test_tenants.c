/* Tests for tenants/: schema and reopen, tenant and key lifecycle,
 * authentication verdicts, hashed-only key storage, constant-time comparison,
 * verbatim storage of hostile names, quotas under a fake clock, and the
 * ledger's idempotency. Durability, threads and OOM are in
 * test_tenants_stress.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <string.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "tenants/tenants.h"
#include "tenants/tenants_impl.h"
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

static realm_tenants_t *open_ok(const tfix *f)
{
    realm_tenants_t *t = NULL;
    realm_error err;
    realm_error_clear(&err);
    assert_int_equal(realm_tenants_open(f->path, &t, &err), REALM_OK);
    assert_non_null(t);
    return t;
}

static void test_schema_and_reopen(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    int64_t id = 0;
    realm_tenant_quotas q = {.requests_per_min = 10, .tokens_per_min = 1000, .max_concurrent = 2};
    assert_int_equal(realm_tenants_create(t, "acme", &q, &id, NULL), REALM_OK);
    realm_tenant_info a;
    assert_int_equal(realm_tenants_get(t, id, &a, NULL), REALM_OK);
    /* The writer commits with an fsync (synchronous=FULL = 2) and enforces
     * foreign keys; both are per connection, so ask it directly. */
    sqlite3_stmt *pst;
    assert_int_equal(sqlite3_prepare_v2(t->wr.db, "PRAGMA synchronous", -1, &pst, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(pst), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(pst, 0), 2);
    sqlite3_finalize(pst);
    assert_int_equal(sqlite3_prepare_v2(t->wr.db, "PRAGMA foreign_keys", -1, &pst, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(pst), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(pst, 0), 1);
    sqlite3_finalize(pst);
    realm_tenants_close(t);

    /* Reopen: same row, same salt; the schema is not migrated twice. */
    t = open_ok(f);
    realm_tenant_info b;
    assert_int_equal(realm_tenants_find(t, "acme", &b, NULL), REALM_OK);
    assert_int_equal(b.id, id);
    assert_true(b.salt == a.salt);
    assert_int_equal(b.quotas.tokens_per_min, 1000);
    assert_int_equal(b.quotas.max_concurrent, 2);
    realm_tenants_close(t);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_version", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* A database from a newer build is refused, not misread. */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES(99, 0)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    realm_error err;
    assert_int_equal(realm_tenants_open(f->path, &t, &err), REALM_E_UNSUPPORTED);
    assert_null(t);
    assert_non_null(strstr(err.message, "newer"));
}

static void test_tenant_lifecycle(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    realm_error err;
    int64_t a = 0, b = 0;
    assert_int_equal(realm_tenants_create(t, "alpha", NULL, &a, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "beta", NULL, &b, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "alpha", NULL, NULL, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "already exists"));
    assert_int_equal(realm_tenants_create(t, "", NULL, NULL, NULL), REALM_E_INVALID);
    assert_int_equal(realm_tenants_create(t, "a\nb", NULL, NULL, NULL), REALM_E_INVALID);
    char longname[REALM_TENANT_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(realm_tenants_create(t, longname, NULL, NULL, NULL), REALM_E_INVALID);
    longname[REALM_TENANT_NAME_MAX] = '\0';
    assert_int_equal(realm_tenants_create(t, longname, NULL, NULL, NULL), REALM_OK);
    realm_tenant_quotas neg = {.tokens_per_min = -1};
    assert_int_equal(realm_tenants_create(t, "neg", &neg, NULL, NULL), REALM_E_INVALID);

    realm_tenant_info *v;
    size_t n;
    assert_int_equal(realm_tenants_list(t, &v, &n, NULL), REALM_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "alpha");
    assert_string_equal(v[1].name, "beta");
    assert_string_equal(v[2].name, longname);
    assert_true(v[0].enabled);
    assert_true(v[0].salt != v[1].salt); /* 2^-64 chance of a false failure */
    realm_free(v);

    assert_int_equal(realm_tenants_set_enabled(t, b, false, NULL), REALM_OK);
    realm_tenant_info info;
    assert_int_equal(realm_tenants_get(t, b, &info, NULL), REALM_OK);
    assert_false(info.enabled);
    realm_tenant_quotas q = {5, 6, 7};
    assert_int_equal(realm_tenants_set_quotas(t, b, &q, NULL), REALM_OK);
    assert_int_equal(realm_tenants_get(t, b, &info, NULL), REALM_OK);
    assert_int_equal(info.quotas.requests_per_min, 5);
    assert_int_equal(info.quotas.tokens_per_min, 6);
    assert_int_equal(info.quotas.max_concurrent, 7);
    assert_int_equal(realm_tenants_set_enabled(t, 9999, true, &err), REALM_E_NOT_FOUND);
    assert_int_equal(realm_tenants_set_quotas(t, 9999, &q, NULL), REALM_E_NOT_FOUND);
    assert_int_equal(realm_tenants_get(t, 9999, &info, NULL), REALM_E_NOT_FOUND);
    assert_int_equal(realm_tenants_find(t, "nobody", &info, NULL), REALM_E_NOT_FOUND);
    realm_tenants_close(t);
}

static int ct_calls;
static bool spy_equal(const void *a, const void *b, size_t n)
{
    ct_calls++;
    return realm_ct_equal(a, b, n);
}

static void test_keys_and_authenticate(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    int64_t a = 0, b = 0;
    assert_int_equal(realm_tenants_create(t, "alpha", NULL, &a, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "beta", NULL, &b, NULL), REALM_OK);
    char ka[REALM_TENANTS_KEY_SIZE], kb[REALM_TENANTS_KEY_SIZE], ka2[REALM_TENANTS_KEY_SIZE];
    char ida[REALM_TENANTS_KEY_ID_SIZE], ida2[REALM_TENANTS_KEY_ID_SIZE];
    assert_int_equal(realm_tenants_key_create(t, a, "ci", ka, ida, NULL), REALM_OK);
    assert_int_equal(realm_tenants_key_create(t, a, NULL, ka2, ida2, NULL), REALM_OK);
    assert_int_equal(realm_tenants_key_create(t, b, "prod", kb, NULL, NULL), REALM_OK);
    assert_int_equal(strlen(ka), 59);
    assert_memory_equal(ka, "rk_", 3);
    assert_memory_equal(ka + 3, ida, 12);
    assert_string_not_equal(ka, ka2);
    char scratch[REALM_TENANTS_KEY_SIZE];
    assert_int_equal(realm_tenants_key_create(t, 4242, "x", scratch, NULL, NULL),
                     REALM_E_NOT_FOUND);
    assert_string_equal(scratch, "");

    ct_calls = 0;
    realm__tenants_hash_equal = spy_equal;
    realm_auth_result r;
    realm_tenant_info info;
    assert_int_equal(realm_tenants_authenticate(t, ka, strlen(ka), &info, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_OK);
    assert_int_equal(info.id, a);
    assert_string_equal(info.name, "alpha");
    assert_int_equal(realm_tenants_authenticate(t, kb, strlen(kb), &info, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_OK);
    assert_int_equal(info.id, b);
    assert_int_equal(ct_calls, 2);

    /* Right key id, wrong secret: found by id, refused by the hash compare. */
    char bad[REALM_TENANTS_KEY_SIZE];
    memcpy(bad, ka, sizeof bad);
    bad[58] = bad[58] == 'A' ? 'B' : 'A';
    assert_int_equal(realm_tenants_authenticate(t, bad, 59, &info, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_UNKNOWN_KEY);
    assert_int_equal(ct_calls, 3);
    /* Malformed keys, a prefix, a key with trailing bytes, not NUL-terminated. */
    const char *junk[] = {"", "rk_", "Bearer x",
                          "rk_zzzzzzzzzzzz_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(realm_tenants_authenticate(t, junk[i], strlen(junk[i]), NULL, &r, NULL),
                         REALM_OK);
        assert_int_equal(r, REALM_AUTH_UNKNOWN_KEY);
    }
    assert_int_equal(realm_tenants_authenticate(t, ka, 58, NULL, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_UNKNOWN_KEY);
    char framed[80];
    memcpy(framed, ka, 59);
    memcpy(framed + 59, "\r\nX", 3); /* len says 59: the header's bytes after it are ignored */
    assert_int_equal(realm_tenants_authenticate(t, framed, 59, NULL, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_OK);

    /* Disabled tenant: 403, still identified. */
    assert_int_equal(realm_tenants_set_enabled(t, b, false, NULL), REALM_OK);
    assert_int_equal(realm_tenants_authenticate(t, kb, 59, &info, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_DISABLED);
    assert_int_equal(info.id, b);
    assert_int_equal(realm_tenants_auth_http_status(r), 403);
    assert_int_equal(realm_tenants_auth_http_status(REALM_AUTH_UNKNOWN_KEY), 401);

    /* Revoke: that key stops working, the tenant's other key does not. */
    assert_int_equal(realm_tenants_key_revoke(t, ida, NULL), REALM_OK);
    assert_int_equal(realm_tenants_key_revoke(t, ida, NULL), REALM_OK);
    assert_int_equal(realm_tenants_key_revoke(t, "000000000000", NULL), REALM_E_NOT_FOUND);
    assert_int_equal(realm_tenants_authenticate(t, ka, 59, NULL, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_UNKNOWN_KEY);
    assert_int_equal(realm_tenants_authenticate(t, ka2, 59, NULL, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_OK);

    realm_tenant_key *keys;
    size_t n;
    assert_int_equal(realm_tenants_key_list(t, a, &keys, &n, NULL), REALM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].key_id, ida);
    assert_string_equal(keys[0].label, "ci");
    assert_true(keys[0].revoked_ms > 0);
    assert_string_equal(keys[1].key_id, ida2);
    assert_int_equal(keys[1].revoked_ms, 0);
    realm_free(keys);

    /* Admin key: closed until set, then only the exact key opens it. */
    ct_calls = 0;
    assert_false(realm_tenants_admin_check(t, ka2, 59));
    char admin[REALM_TENANTS_KEY_SIZE];
    assert_int_equal(realm_tenants_admin_create(t, admin, NULL), REALM_OK);
    assert_true(realm_tenants_admin_check(t, admin, strlen(admin)));
    assert_false(realm_tenants_admin_check(t, admin, strlen(admin) - 1));
    assert_false(realm_tenants_admin_check(t, ka2, 59));
    assert_true(ct_calls >= 2);
    assert_int_equal(realm_tenants_admin_set(t, "short", 5, NULL), REALM_E_INVALID);
    const char *env_key = "an-admin-key-from-the-environment";
    assert_int_equal(realm_tenants_admin_set(t, env_key, strlen(env_key), NULL), REALM_OK);
    assert_false(realm_tenants_admin_check(t, admin, strlen(admin)));
    assert_true(realm_tenants_admin_check(t, env_key, strlen(env_key)));
    realm__tenants_hash_equal = realm_ct_equal;
    realm_tenants_close(t);
}

static void test_plaintext_never_stored(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    int64_t a = 0;
    assert_int_equal(realm_tenants_create(t, "needle-tenant-name", NULL, &a, NULL), REALM_OK);
    char key[REALM_TENANTS_KEY_SIZE], admin[REALM_TENANTS_KEY_SIZE];
    assert_int_equal(realm_tenants_key_create(t, a, "lbl", key, NULL, NULL), REALM_OK);
    assert_int_equal(realm_tenants_admin_create(t, admin, NULL), REALM_OK);
    uint8_t hash[REALM_SHA256_SIZE];
    realm_sha256(key, strlen(key), hash);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    /* While open the rows sit in the WAL; after close, in the main file. The
     * scan must find the name and the hash (so it can see rows at all) and
     * never the key, its secret half, or the admin key. */
    for (int pass = 0; pass < 2; pass++) {
        int name_seen = tfix_file_contains(f->path, "needle-tenant-name", 18) ||
                        tfix_file_contains(wal, "needle-tenant-name", 18);
        int hash_seen = tfix_file_contains(f->path, hash, sizeof hash) ||
                        tfix_file_contains(wal, hash, sizeof hash);
        assert_true(name_seen);
        assert_true(hash_seen);
        const char *paths[2] = {f->path, wal};
        for (int i = 0; i < 2; i++) {
            assert_false(tfix_file_contains(paths[i], key, strlen(key)));
            assert_false(tfix_file_contains(paths[i], key + 16, 43));
            assert_false(tfix_file_contains(paths[i], admin, strlen(admin)));
            assert_false(tfix_file_contains(paths[i], admin + 9, 20));
        }
        if (pass == 0) realm_tenants_close(t);
    }
}

static void test_hostile_names_verbatim(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    const char *names[] = {"x'); DROP TABLE tenants; --", "\" OR 1=1 --", "a%s%n%x",
                           "robert'; DELETE FROM api_keys WHERE '1'='1", "ünïcødé ☃"};
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(realm_tenants_create(t, names[i], NULL, &ids[i], NULL), REALM_OK);
    const char *label = "'); UPDATE tenants SET enabled=0; --";
    char key[REALM_TENANTS_KEY_SIZE], kid[REALM_TENANTS_KEY_ID_SIZE];
    assert_int_equal(realm_tenants_key_create(t, ids[0], label, key, kid, NULL), REALM_OK);
    assert_int_equal(
        realm_tenants_record_usage(t, ids[1], "'; DROP TABLE usage; --", label, 1, 2, 0, 200, NULL),
        REALM_OK);
    for (int i = 0; i < 5; i++) {
        realm_tenant_info info;
        assert_int_equal(realm_tenants_find(t, names[i], &info, NULL), REALM_OK);
        assert_int_equal(info.id, ids[i]);
        assert_string_equal(info.name, names[i]);
        assert_true(info.enabled);
    }
    realm_tenant_key *k;
    size_t n;
    assert_int_equal(realm_tenants_key_list(t, ids[0], &k, &n, NULL), REALM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(k[0].label, label);
    realm_free(k);
    realm_usage_totals u;
    assert_int_equal(realm_tenants_usage(t, ids[1], 0, INT64_MAX, &u, NULL), REALM_OK);
    assert_int_equal(u.requests, 1);
    assert_int_equal(realm_tenants_key_revoke(t, "' OR '1'='1", NULL), REALM_E_NOT_FOUND);
    realm_auth_result r;
    assert_int_equal(realm_tenants_authenticate(t, key, strlen(key), NULL, &r, NULL), REALM_OK);
    assert_int_equal(r, REALM_AUTH_OK);
    realm_tenants_close(t);
}

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

static void test_quotas(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    int64_t (*real_clock)(void) = realm__tenants_clock_ms;
    realm__tenants_clock_ms = fake_clock;
    fake_now = 1000000;
    realm_tenant_quotas q = {.requests_per_min = 3, .tokens_per_min = 600, .max_concurrent = 2};
    int64_t id = 0, other = 0;
    assert_int_equal(realm_tenants_create(t, "q", &q, &id, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "free", NULL, &other, NULL), REALM_OK);
    realm_quota_ticket t1, t2, t3, t4;

    /* Concurrency: two in flight, the third waits for a release. */
    assert_int_equal(realm_tenants_admit(t, id, 100, &t1, NULL), REALM_OK);
    assert_int_equal(t1.verdict, REALM_QUOTA_OK);
    assert_int_equal(realm_tenants_admit(t, id, 100, &t2, NULL), REALM_OK);
    assert_int_equal(t2.verdict, REALM_QUOTA_OK);
    assert_int_equal(realm_tenants_admit(t, id, 100, &t3, NULL), REALM_OK);
    assert_int_equal(t3.verdict, REALM_QUOTA_CONCURRENCY);
    assert_int_equal(t3.retry_after_s, 1);
    assert_int_equal(realm_tenants_quota_http_status(t3.verdict), 429);
    realm_tenants_release(t, &t3, 0); /* refused ticket: no-op */
    realm_tenants_release(t, &t1, 100);
    realm_tenants_release(t, &t1, 100); /* double release: no-op */

    /* Requests/min: the third request this minute is refused; one request
     * refills in 20 s. */
    assert_int_equal(realm_tenants_admit(t, id, 100, &t3, NULL), REALM_OK);
    assert_int_equal(t3.verdict, REALM_QUOTA_OK);
    realm_tenants_release(t, &t3, 100);
    assert_int_equal(realm_tenants_admit(t, id, 100, &t4, NULL), REALM_OK);
    assert_int_equal(t4.verdict, REALM_QUOTA_REQUESTS);
    assert_int_equal(t4.retry_after_s, 20);
    fake_now += 20000;
    assert_int_equal(realm_tenants_admit(t, id, 100, &t4, NULL), REALM_OK);
    assert_int_equal(t4.verdict, REALM_QUOTA_OK);
    realm_tenants_release(t, &t4, 100);
    realm_tenants_release(t, &t2, 100);

    /* Tokens/min: lift the request limit; 600 - 3*100 - 20s*10/s + ... */
    q.requests_per_min = 0;
    assert_int_equal(realm_tenants_set_quotas(t, id, &q, NULL), REALM_OK);
    fake_now += 60000; /* everything refilled: 600 tokens */
    assert_int_equal(realm_tenants_admit(t, id, 500, &t1, NULL), REALM_OK);
    assert_int_equal(t1.verdict, REALM_QUOTA_OK);
    assert_int_equal(realm_tenants_admit(t, id, 200, &t2, NULL), REALM_OK);
    assert_int_equal(t2.verdict, REALM_QUOTA_TOKENS);
    assert_int_equal(t2.retry_after_s, 10); /* 100 missing at 10 tokens/s */
    /* The request used only 100 of its 500: the difference is refunded. */
    realm_tenants_release(t, &t1, 100);
    assert_int_equal(realm_tenants_admit(t, id, 200, &t2, NULL), REALM_OK);
    assert_int_equal(t2.verdict, REALM_QUOTA_OK);
    /* It used 700: the bucket goes negative (600-100-700 = -200). */
    realm_tenants_release(t, &t2, 700);
    assert_int_equal(realm_tenants_admit(t, id, 1, &t3, NULL), REALM_OK);
    assert_int_equal(t3.verdict, REALM_QUOTA_TOKENS);
    assert_int_equal(t3.retry_after_s, 21);
    /* Larger than a minute's budget: admitted once the bucket is full. */
    fake_now += 80000;
    assert_int_equal(realm_tenants_admit(t, id, 5000, &t3, NULL), REALM_OK);
    assert_int_equal(t3.verdict, REALM_QUOTA_OK);
    realm_tenants_release(t, &t3, 5000);

    /* Unlimited tenant; disabled tenant; unknown tenant. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(realm_tenants_admit(t, other, 1000000, &t4, NULL), REALM_OK);
        assert_int_equal(t4.verdict, REALM_QUOTA_OK);
    }
    assert_int_equal(realm_tenants_set_enabled(t, other, false, NULL), REALM_OK);
    assert_int_equal(realm_tenants_admit(t, other, 1, &t4, NULL), REALM_OK);
    assert_int_equal(t4.verdict, REALM_QUOTA_DISABLED);
    assert_int_equal(realm_tenants_quota_http_status(t4.verdict), 403);
    assert_int_equal(realm_tenants_admit(t, 777, 1, &t4, NULL), REALM_E_NOT_FOUND);
    assert_string_equal(realm_tenants_quota_verdict_name(REALM_QUOTA_TOKENS), "tokens_per_min");
    realm__tenants_clock_ms = real_clock;
    realm_tenants_close(t);
}

static void test_ledger(void **state)
{
    tfix *f = *state;
    realm_tenants_t *t = open_ok(f);
    int64_t a = 0, b = 0;
    assert_int_equal(realm_tenants_create(t, "a", NULL, &a, NULL), REALM_OK);
    assert_int_equal(realm_tenants_create(t, "b", NULL, &b, NULL), REALM_OK);
    assert_int_equal(realm_tenants_record_usage(t, a, "req-1", "smol", 10, 20, 5, 200, NULL),
                     REALM_OK);
    /* A retry with the same id (even different numbers) is not billed again. */
    assert_int_equal(realm_tenants_record_usage(t, a, "req-1", "smol", 99, 99, 99, 200, NULL),
                     REALM_OK);
    assert_int_equal(realm_tenants_record_usage(t, a, "req-2", "smol", 1, 2, 0, 200, NULL),
                     REALM_OK);
    assert_int_equal(realm_tenants_record_usage(t, b, "req-3", "smol", 7, 0, 0, 500, NULL),
                     REALM_OK);
    realm_error err;
    assert_int_equal(realm_tenants_record_usage(t, 12345, "req-4", "m", 1, 1, 0, 200, &err),
                     REALM_E_NOT_FOUND);
    assert_int_equal(realm_tenants_record_usage(t, a, "", "m", 1, 1, 0, 200, NULL),
                     REALM_E_INVALID);
    assert_int_equal(realm_tenants_record_usage(t, a, "req-5", "m", -1, 1, 0, 200, NULL),
                     REALM_E_INVALID);
    realm_usage_totals u;
    assert_int_equal(realm_tenants_usage(t, a, 0, INT64_MAX, &u, NULL), REALM_OK);
    assert_int_equal(u.requests, 2);
    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.completion_tokens, 22);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(realm_tenants_usage(t, b, 0, INT64_MAX, &u, NULL), REALM_OK);
    assert_int_equal(u.requests, 1);
    assert_int_equal(u.prompt_tokens, 7);
    /* Time window: nothing before the epoch's first millisecond. */
    assert_int_equal(realm_tenants_usage(t, a, 0, 1, &u, NULL), REALM_OK);
    assert_int_equal(u.requests, 0);
    realm_tenants_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_never_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quotas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
