/*
 * tenants/tenants_impl.h — private to src/tenants/: the handle, its two
 * connections with their statement caches, and test hooks.
 */
#ifndef REALM_TENANTS_TENANTS_IMPL_H
#define REALM_TENANTS_TENANTS_IMPL_H

#include <pthread.h>
#include <sqlite3.h>

#include "tenants/tenants.h"

/* Every SQL statement the module runs, prepared once per connection on first
 * use and kept (sqlite3_prepare_v3 with SQLITE_PREPARE_PERSISTENT). */
typedef enum realm__tstmt {
    TSTMT_TENANT_INSERT = 0,
    TSTMT_TENANT_BY_ID,
    TSTMT_TENANT_BY_NAME,
    TSTMT_TENANT_LIST,
    TSTMT_TENANT_SET_ENABLED,
    TSTMT_TENANT_SET_QUOTAS,
    TSTMT_KEY_INSERT,
    TSTMT_KEY_REVOKE,
    TSTMT_KEY_EXISTS,
    TSTMT_KEY_LIST,
    TSTMT_KEY_LOOKUP,
    TSTMT_SETTING_PUT,
    TSTMT_SETTING_GET,
    TSTMT_USAGE_INSERT,
    TSTMT_USAGE_SUM,
    TSTMT_COUNT
} realm__tstmt;

/* One SQLite connection; mu serializes every use of db and its statements. */
typedef struct realm__tconn {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmt[TSTMT_COUNT];
} realm__tconn;

/* In-memory quota accounting for one tenant (token buckets + in-flight). */
typedef struct realm__tquota {
    int64_t tenant_id;
    double req_level; /* requests left in the bucket; capacity = rpm */
    double tok_level; /* tokens left; capacity = tpm; may go negative */
    int64_t rpm, tpm; /* the capacities the levels were last refilled against */
    int64_t last_ms;  /* monotonic time of the last refill */
    int64_t in_flight;
} realm__tquota;

struct realm_tenants {
    realm__tconn wr;       /* tenant/key/settings changes and the ledger */
    realm__tconn rd;       /* authenticate, get, list, quota lookups */
    pthread_mutex_t qmu;   /* guards quotas/n_quotas/cap_quotas */
    realm__tquota *quotas; /* sorted by tenant_id */
    size_t n_quotas, cap_quotas;
};

/* The SQL text of each statement (tenants_db.c). */
extern const char *const realm__tenants_sql[TSTMT_COUNT];

/* Lock c and fetch its cached statement s into *out (preparing it on first
 * use). On failure c is unlocked again and the error returned. Pair every
 * success with realm__tconn_end, which resets the statement and unlocks. */
realm_status realm__tconn_begin(realm__tconn *c, realm__tstmt s, sqlite3_stmt **out,
                                realm_error *err);
void realm__tconn_end(realm__tconn *c, sqlite3_stmt *st);

/* Map a SQLite result code to a realm_status and fill err with what. */
realm_status realm__tenants_sqlerr(sqlite3 *db, int rc, const char *what, realm_error *err);

/* n cryptographically random bytes (getrandom). */
realm_status realm__tenants_random(void *buf, size_t n, realm_error *err);
/* Wall-clock unix milliseconds, for stored timestamps. */
int64_t realm__tenants_wall_ms(void);

/* Fill a realm_tenant_info from columns id, name, salt, enabled, rpm, tpm,
 * max_concurrent, created_ms starting at column col. */
void realm__tenants_row_info(sqlite3_stmt *st, int col, realm_tenant_info *out);

/* Test hooks: the monotonic clock the quota buckets use, and the hash
 * comparison authentication uses (tests swap in a spy to prove it is the
 * constant-time one). Not for production callers. */
extern int64_t (*realm__tenants_clock_ms)(void);
extern bool (*realm__tenants_hash_equal)(const void *a, const void *b, size_t n);

#endif
