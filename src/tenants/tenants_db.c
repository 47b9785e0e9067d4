/* The tenants database: opening it (WAL, synchronous=FULL, foreign keys),
 * migrating its schema, the statement cache, and SQLite's allocations routed
 * through realm_malloc so fault-injection tests reach SQLite's OOM paths too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/sha256.h"
#include "tenants/tenants_impl.h"

#define TENANT_COLS "id, name, salt, enabled, rpm, tpm, max_concurrent, created_ms"

const char *const realm__tenants_sql[TSTMT_COUNT] = {
    [TSTMT_TENANT_INSERT] = "INSERT INTO tenants(name, salt, enabled, rpm, tpm, max_concurrent, "
                            "created_ms) VALUES(?1, ?2, 1, ?3, ?4, ?5, ?6)",
    [TSTMT_TENANT_BY_ID] = "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1",
    [TSTMT_TENANT_BY_NAME] = "SELECT " TENANT_COLS " FROM tenants WHERE name = ?1",
    [TSTMT_TENANT_LIST] = "SELECT " TENANT_COLS " FROM tenants ORDER BY id",
    [TSTMT_TENANT_SET_ENABLED] = "UPDATE tenants SET enabled = ?2 WHERE id = ?1",
    [TSTMT_TENANT_SET_QUOTAS] = "UPDATE tenants SET rpm = ?2, tpm = ?3, max_concurrent = ?4 "
                                "WHERE id = ?1",
    [TSTMT_KEY_INSERT] = "INSERT INTO api_keys(key_id, tenant_id, label, hash, created_ms) "
                         "VALUES(?1, ?2, ?3, ?4, ?5)",
    [TSTMT_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = ?2 WHERE key_id = ?1 AND "
                         "revoked_ms IS NULL",
    [TSTMT_KEY_EXISTS] = "SELECT 1 FROM api_keys WHERE key_id = ?1",
    [TSTMT_KEY_LIST] = "SELECT key_id, tenant_id, label, created_ms, coalesce(revoked_ms, 0) "
                       "FROM api_keys WHERE tenant_id = ?1 ORDER BY id",
    [TSTMT_KEY_LOOKUP] = "SELECT k.hash, k.revoked_ms IS NOT NULL, t.id, t.name, t.salt, "
                         "t.enabled, t.rpm, t.tpm, t.max_concurrent, t.created_ms "
                         "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
                         "WHERE k.key_id = ?1",
    [TSTMT_SETTING_PUT] = "INSERT INTO settings(name, value) VALUES(?1, ?2) "
                          "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [TSTMT_SETTING_GET] = "SELECT value FROM settings WHERE name = ?1",
    [TSTMT_USAGE_INSERT] = "INSERT OR IGNORE INTO usage(request_id, tenant_id, model, "
                           "prompt_tokens, completion_tokens, cached_tokens, status, ts_ms) "
                           "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [TSTMT_USAGE_SUM] = "SELECT count(*), coalesce(sum(prompt_tokens), 0), "
                        "coalesce(sum(completion_tokens), 0), coalesce(sum(cached_tokens), 0) "
                        "FROM usage WHERE tenant_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3",
};

/* Schema migrations, applied in order inside one transaction each; entry i
 * brings the schema to version i + 1. Append, never edit a shipped entry. */
static const char *const MIGRATIONS[] = {
    "CREATE TABLE tenants("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  salt INTEGER NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK(enabled IN (0, 1)),"
    "  rpm INTEGER NOT NULL DEFAULT 0 CHECK(rpm >= 0),"
    "  tpm INTEGER NOT NULL DEFAULT 0 CHECK(tpm >= 0),"
    "  max_concurrent INTEGER NOT NULL DEFAULT 0 CHECK(max_concurrent >= 0),"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE api_keys("
    "  id INTEGER PRIMARY KEY,"
    "  key_id TEXT NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  label TEXT NOT NULL,"
    "  hash BLOB NOT NULL CHECK(length(hash) = 32),"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER);"
    "CREATE INDEX api_keys_tenant ON api_keys(tenant_id);"
    "CREATE TABLE settings(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE usage("
    "  request_id TEXT PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  model TEXT NOT NULL,"
    "  prompt_tokens INTEGER NOT NULL,"
    "  completion_tokens INTEGER NOT NULL,"
    "  cached_tokens INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL);"
    "CREATE INDEX usage_tenant_ts ON usage(tenant_id, ts_ms);",
};
#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ---- SQLite allocations through realm_malloc ---- */

/* A 16-byte header keeps the block's size (SQLite asks for it) and the
 * alignment malloc gives. */
#define HDR 16

static void *sq_malloc(int n)
{
    unsigned char *p = realm_malloc((size_t)n + HDR);
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    return p + HDR;
}

static void sq_free(void *p)
{
    if (p) realm_free((unsigned char *)p - HDR);
}

static int sq_size(void *p)
{
    int n = 0;
    if (p) memcpy(&n, (unsigned char *)p - HDR, sizeof n);
    return n;
}

static void *sq_realloc(void *p, int n)
{
    unsigned char *q = realm_realloc((unsigned char *)p - HDR, (size_t)n + HDR);
    if (!q) return NULL;
    memcpy(q, &n, sizeof n);
    return q + HDR;
}

static int sq_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sq_init(void *arg)
{
    (void)arg;
    return SQLITE_OK;
}

static void sq_shutdown(void *arg)
{
    (void)arg;
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void configure_sqlite(void)
{
    static const sqlite3_mem_methods mem = {sq_malloc,  sq_free, sq_realloc,  sq_size,
                                            sq_roundup, sq_init, sq_shutdown, NULL};
    /* Fails with SQLITE_MISUSE if something else initialized SQLite first;
     * then SQLite keeps its own allocator, which is fine. */
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK)
        realm_log(REALM_LOG_DEBUG, "tenants: SQLite allocator left as is");
}

/* ---- helpers ---- */

realm_status realm__tenants_sqlerr(sqlite3 *db, int rc, const char *what, realm_error *err)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (rc == SQLITE_IOERR_NOMEM) rc = SQLITE_NOMEM;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return realm_error_set(err, REALM_E_NOMEM, "tenants: %s: out of memory", what);
    case SQLITE_CONSTRAINT:
        return realm_error_set(err, REALM_E_INVALID, "tenants: %s: %s", what, msg);
    default:
        return realm_error_set(err, REALM_E_IO, "tenants: %s: %s", what, msg);
    }
}

realm_status realm__tenants_random(void *buf, size_t n, realm_error *err)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return realm_error_set(err, REALM_E_IO, "tenants: getrandom: %s", strerror(errno));
        }
        p += got;
        n -= (size_t)got;
    }
    return REALM_OK;
}

int64_t realm__tenants_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t (*realm__tenants_clock_ms)(void) = monotonic_ms;
bool (*realm__tenants_hash_equal)(const void *, const void *, size_t) = realm_ct_equal;

void realm__tenants_row_info(sqlite3_stmt *st, int col, realm_tenant_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, col);
    const unsigned char *name = sqlite3_column_text(st, col + 1);
    int n = sqlite3_column_bytes(st, col + 1);
    if (name && n > 0) {
        if (n > REALM_TENANT_NAME_MAX) n = REALM_TENANT_NAME_MAX;
        memcpy(out->name, name, (size_t)n);
    }
    out->salt = (uint64_t)sqlite3_column_int64(st, col + 2);
    out->enabled = sqlite3_column_int(st, col + 3) != 0;
    out->quotas.requests_per_min = sqlite3_column_int64(st, col + 4);
    out->quotas.tokens_per_min = sqlite3_column_int64(st, col + 5);
    out->quotas.max_concurrent = sqlite3_column_int64(st, col + 6);
    out->created_ms = sqlite3_column_int64(st, col + 7);
}

realm_status realm__tconn_begin(realm__tconn *c, realm__tstmt s, sqlite3_stmt **out,
                                realm_error *err)
{
    pthread_mutex_lock(&c->mu);
    if (!c->stmt[s]) {
        int rc = sqlite3_prepare_v3(c->db, realm__tenants_sql[s], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmt[s], NULL);
        if (rc != SQLITE_OK) {
            c->stmt[s] = NULL;
            realm_status st = realm__tenants_sqlerr(c->db, rc, "prepare", err);
            pthread_mutex_unlock(&c->mu);
            *out = NULL;
            return st;
        }
    }
    *out = c->stmt[s];
    return REALM_OK;
}

void realm__tconn_end(realm__tconn *c, sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&c->mu);
}

/* ---- open / migrate / close ---- */

static realm_status exec(sqlite3 *db, const char *sql, const char *what, realm_error *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? REALM_OK : realm__tenants_sqlerr(db, rc, what, err);
}

/* journal_mode=WAL reports the mode it ended up in rather than failing, so
 * check it: the ledger's durability and the reader/writer split rely on WAL. */
static realm_status enable_wal(sqlite3 *db, realm_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) return realm__tenants_sqlerr(db, rc, "WAL", err);
    realm_status s = REALM_OK;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        s = realm__tenants_sqlerr(db, rc, "WAL", err);
    else if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0)
        s = realm_error_set(err, REALM_E_IO, "tenants: cannot switch the database to WAL (mode %s)",
                            (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return s;
}

static realm_status conn_open(realm__tconn *c, const char *path, bool read_only, realm_error *err)
{
    /* NOMUTEX: c->mu already serializes every use of this connection. */
    int rc = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        realm_status st = realm__tenants_sqlerr(c->db, rc, path, err);
        sqlite3_close(c->db);
        c->db = NULL;
        return st;
    }
    sqlite3_extended_result_codes(c->db, 1);
    /* Another process (the CLI) may hold the write lock briefly. */
    sqlite3_busy_timeout(c->db, 5000);
    realm_status st = exec(c->db,
                           "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                           "PRAGMA trusted_schema = OFF;",
                           "configure", err);
    if (st == REALM_OK && !read_only) st = enable_wal(c->db, err);
    if (st == REALM_OK && read_only) st = exec(c->db, "PRAGMA query_only = ON", "query_only", err);
    return st;
}

static void conn_close(realm__tconn *c)
{
    for (int i = 0; i < TSTMT_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    if (c->db && sqlite3_close(c->db) != SQLITE_OK)
        realm_log(REALM_LOG_WARN, "tenants: close: %s", sqlite3_errmsg(c->db));
    memset(c->stmt, 0, sizeof c->stmt);
    c->db = NULL;
}

static realm_status migrate(sqlite3 *db, realm_error *err)
{
    realm_status st = exec(db,
                           "CREATE TABLE IF NOT EXISTS schema_version("
                           "version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
                           "schema_version", err);
    if (st != REALM_OK) return st;
    /* IMMEDIATE: two processes opening a fresh database must not both migrate. */
    if ((st = exec(db, "BEGIN IMMEDIATE", "begin migration", err)) != REALM_OK) return st;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &q,
                                NULL);
    int version = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        version = sqlite3_column_int(q, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK) {
        st = realm__tenants_sqlerr(db, rc, "read schema version", err);
    } else if (version > N_MIGRATIONS) {
        st = realm_error_set(err, REALM_E_UNSUPPORTED,
                             "tenants: database schema version %d is newer than this build (%d)",
                             version, N_MIGRATIONS);
    }
    for (int v = version; st == REALM_OK && v < N_MIGRATIONS; v++) {
        st = exec(db, MIGRATIONS[v], "migrate", err);
        if (st != REALM_OK) break;
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES(%d, %lld)", v + 1,
                 (long long)realm__tenants_wall_ms());
        st = exec(db, sql, "record schema version", err);
    }
    if (st == REALM_OK) st = exec(db, "COMMIT", "commit migration", err);
    if (st != REALM_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

realm_status realm_tenants_open(const char *db_path, realm_tenants_t **out, realm_error *err)
{
    *out = NULL;
    if (!db_path || !*db_path)
        return realm_error_set(err, REALM_E_INVALID, "tenants: empty database path");
    pthread_once(&sqlite_once, configure_sqlite);
    realm_tenants_t *t = realm_calloc(1, sizeof *t);
    if (!t) return realm_error_set(err, REALM_E_NOMEM, "tenants: out of memory");
    pthread_mutex_init(&t->wr.mu, NULL);
    pthread_mutex_init(&t->rd.mu, NULL);
    pthread_mutex_init(&t->qmu, NULL);
    /* The writer first: it switches the file to WAL and migrates before the
     * reader looks at the schema. */
    realm_status st = conn_open(&t->wr, db_path, false, err);
    if (st == REALM_OK) st = migrate(t->wr.db, err);
    if (st == REALM_OK) st = conn_open(&t->rd, db_path, true, err);
    if (st != REALM_OK) {
        realm_tenants_close(t);
        return st;
    }
    *out = t;
    return REALM_OK;
}

void realm_tenants_close(realm_tenants_t *t)
{
    if (!t) return;
    conn_close(&t->rd);
    conn_close(&t->wr);
    pthread_mutex_destroy(&t->wr.mu);
    pthread_mutex_destroy(&t->rd.mu);
    pthread_mutex_destroy(&t->qmu);
    realm_free(t->quotas);
    realm_free(t);
}
