/*
 * tenants/tenants.h — tenants, API keys, quotas and the durable usage ledger.
 *
 * What it does: one embedded SQLite database (WAL journal) holds the tenants,
 * their API keys (only SHA-256 hashes, never the plaintext), their quotas, an
 * admin-key hash and the usage ledger. Quota accounting (requests/min,
 * tokens/min, in-flight requests) lives in memory and restarts empty with the
 * process; everything else is durable.
 *
 * Durability: the database runs with journal_mode=WAL, synchronous=FULL and
 * foreign_keys=ON, so when a write function returns REALM_OK its row has been
 * fsync'd and survives a crash or SIGKILL. The server must call
 * realm_tenants_record_usage (and see REALM_OK) before it writes the last byte
 * of a response.
 *
 * API keys: "rk_" + 12 hex key id + "_" + 43 base64url characters (32 random
 * bytes from getrandom()), 59 characters. The key id is public (shown by list,
 * used to revoke); the database stores SHA-256(key) and the key id, and
 * authentication compares the hash in constant time. The plaintext is returned
 * exactly once, by realm_tenants_key_create.
 *
 * Admin key: a separate secret of the same shape ("rk_admin_" + 43 base64url),
 * stored as a SHA-256 hash in the settings table. Set it with
 * realm_tenants_admin_create (generates and returns it once; the CLI's
 * `realm tenant admin-key`) or realm_tenants_admin_set (the server passes a key
 * from its environment/flag, e.g. REALM_ADMIN_KEY). Without one, every admin
 * check fails (the admin API is closed).
 *
 * Ownership: realm_tenants_open returns a handle the caller frees with
 * realm_tenants_close. Arrays returned by the *_list functions are allocated
 * with realm_malloc and freed by the caller with realm_free. Strings passed in
 * are copied; nothing is retained.
 *
 * Thread-safety: every function except realm_tenants_close may be called from
 * any number of threads at once on one handle. Internally there are two SQLite
 * connections, each behind its own mutex with its prepared statements cached:
 * one for writes (ledger, admin changes) and one for reads (authenticate, get,
 * list, quota lookup), so that authentication never waits behind a ledger
 * fsync (WAL lets the reader proceed during a write). Quota state has its own
 * mutex. Another process (e.g. the CLI) may use the same database file at the
 * same time; its changes (disable, quotas, revoke) are seen by the next call.
 *
 * Process-wide effect: the first realm_tenants_open routes SQLite's own
 * allocations through realm_malloc (sqlite3_config, once), so the
 * fault-injecting allocator reaches SQLite's out-of-memory paths too.
 *
 * Errors: functions return realm_status and fill an optional realm_error.
 *   REALM_E_INVALID    bad argument (empty/too long/control characters in a
 *                      name or label, negative quota), or a duplicate name
 *   REALM_E_NOT_FOUND  no such tenant / key id
 *   REALM_E_IO         SQLite failed (disk, locking, corruption)
 *   REALM_E_NOMEM      allocation failed (ours or SQLite's)
 *   REALM_E_UNSUPPORTED the database's schema is newer than this build
 * Authentication and admission are *verdicts*, not errors: they return
 * REALM_OK with the verdict in an out-parameter, and an error status only when
 * the check itself could not be made (map those to HTTP 500).
 */
#ifndef REALM_TENANTS_TENANTS_H
#define REALM_TENANTS_TENANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct realm_tenants realm_tenants_t;

#define REALM_TENANT_NAME_MAX        64  /* bytes, without the NUL */
#define REALM_TENANT_LABEL_MAX       128 /* bytes, without the NUL */
#define REALM_TENANTS_KEY_SIZE       64  /* buffer for a plaintext key incl. NUL (keys are 59) */
#define REALM_TENANTS_KEY_ID_SIZE    16  /* buffer for a key id incl. NUL (ids are 12 hex) */
#define REALM_TENANTS_REQUEST_ID_MAX 128 /* bytes of a ledger request id */
#define REALM_TENANTS_MODEL_MAX      256 /* bytes of a ledger model name */

/* Per-tenant limits; 0 means unlimited. */
typedef struct realm_tenant_quotas {
    int64_t requests_per_min;
    int64_t tokens_per_min; /* prompt + completion tokens */
    int64_t max_concurrent; /* requests admitted and not yet released */
} realm_tenant_quotas;

typedef struct realm_tenant_info {
    int64_t id;
    char name[REALM_TENANT_NAME_MAX + 1];
    uint64_t salt; /* random per tenant, fixed at creation: the engine's prefix-cache salt */
    realm_tenant_quotas quotas;
    bool enabled;
    int64_t created_ms; /* unix milliseconds */
} realm_tenant_info;

typedef struct realm_tenant_key {
    char key_id[REALM_TENANTS_KEY_ID_SIZE];
    int64_t tenant_id;
    char label[REALM_TENANT_LABEL_MAX + 1];
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while active */
} realm_tenant_key;

/* Open (creating if missing) the database at db_path and migrate its schema. */
realm_status realm_tenants_open(const char *db_path, realm_tenants_t **out, realm_error *err);
/* Close the handle (NULL is fine). No call may be in progress on it. */
void realm_tenants_close(realm_tenants_t *t);

/* ---- tenants ---- */

/* Create a tenant: name is 1..REALM_TENANT_NAME_MAX bytes without control
 * characters (stored verbatim, any other bytes allowed); quotas may be NULL
 * (all unlimited). A new random salt is drawn. out_id may be NULL. Duplicate
 * names give REALM_E_INVALID ("already exists"). */
realm_status realm_tenants_create(realm_tenants_t *t, const char *name,
                                  const realm_tenant_quotas *quotas, int64_t *out_id,
                                  realm_error *err);
realm_status realm_tenants_get(realm_tenants_t *t, int64_t tenant_id, realm_tenant_info *out,
                               realm_error *err);
realm_status realm_tenants_find(realm_tenants_t *t, const char *name, realm_tenant_info *out,
                                realm_error *err);
/* All tenants ordered by id; *out is realm_malloc'd (NULL when *n == 0). */
realm_status realm_tenants_list(realm_tenants_t *t, realm_tenant_info **out, size_t *n,
                                realm_error *err);
/* A disabled tenant's keys authenticate as REALM_AUTH_DISABLED (HTTP 403). */
realm_status realm_tenants_set_enabled(realm_tenants_t *t, int64_t tenant_id, bool enabled,
                                       realm_error *err);
realm_status realm_tenants_set_quotas(realm_tenants_t *t, int64_t tenant_id,
                                      const realm_tenant_quotas *quotas, realm_error *err);

/* ---- API keys ---- */

/* Create a key for the tenant; label (may be NULL = "") up to
 * REALM_TENANT_LABEL_MAX bytes without control characters. Writes the
 * plaintext key (NUL-terminated) to out_key — the only time it exists outside
 * the caller — and its id to out_key_id (may be NULL). */
realm_status realm_tenants_key_create(realm_tenants_t *t, int64_t tenant_id, const char *label,
                                      char out_key[REALM_TENANTS_KEY_SIZE],
                                      char out_key_id[REALM_TENANTS_KEY_ID_SIZE], realm_error *err);
/* Revoke by key id; revoking twice is REALM_OK, an unknown id REALM_E_NOT_FOUND. */
realm_status realm_tenants_key_revoke(realm_tenants_t *t, const char *key_id, realm_error *err);
/* The tenant's keys (active and revoked), never the secret. */
realm_status realm_tenants_key_list(realm_tenants_t *t, int64_t tenant_id, realm_tenant_key **out,
                                    size_t *n, realm_error *err);

typedef enum realm_auth_result {
    REALM_AUTH_OK = 0,
    REALM_AUTH_UNKNOWN_KEY, /* malformed, unknown or revoked key: HTTP 401 */
    REALM_AUTH_DISABLED,    /* valid key of a disabled tenant: HTTP 403 */
    REALM_AUTH_COUNT
} realm_auth_result;

/* Check the key (len bytes, need not be NUL-terminated, e.g. straight from an
 * "Authorization: Bearer" header). On REALM_AUTH_OK and REALM_AUTH_DISABLED
 * *out is filled (out may be NULL). */
realm_status realm_tenants_authenticate(realm_tenants_t *t, const char *key, size_t len,
                                        realm_tenant_info *out, realm_auth_result *result,
                                        realm_error *err);

/* ---- admin key ---- */

/* Generate a new admin key, store its hash (replacing any previous one) and
 * write the plaintext to out_key once. */
realm_status realm_tenants_admin_create(realm_tenants_t *t, char out_key[REALM_TENANTS_KEY_SIZE],
                                        realm_error *err);
/* Store the hash of a caller-chosen admin key (at least 16 bytes). */
realm_status realm_tenants_admin_set(realm_tenants_t *t, const char *key, size_t len,
                                     realm_error *err);
/* true when key is the admin key (constant-time on the hash); false when it
 * is not, when none is set, or when the database cannot be read. */
bool realm_tenants_admin_check(realm_tenants_t *t, const char *key, size_t len);

/* ---- quotas (in memory) ---- */

typedef enum realm_quota_verdict {
    REALM_QUOTA_OK = 0,
    REALM_QUOTA_REQUESTS,    /* requests/min exhausted: HTTP 429 */
    REALM_QUOTA_TOKENS,      /* tokens/min exhausted: HTTP 429 */
    REALM_QUOTA_CONCURRENCY, /* max_concurrent in flight: HTTP 429 */
    REALM_QUOTA_DISABLED,    /* tenant disabled since authentication: HTTP 403 */
    REALM_QUOTA_COUNT
} realm_quota_verdict;

/* Filled by realm_tenants_admit; pass the same ticket to realm_tenants_release. */
typedef struct realm_quota_ticket {
    realm_quota_verdict verdict;
    int32_t retry_after_s; /* > 0 when refused for requests/tokens/concurrency */
    int64_t tenant_id;
    int64_t reserved_tokens; /* private: what admit charged */
    bool held;               /* private: true while it counts as in flight */
} realm_quota_ticket;

/* Check the tenant's quotas (read fresh from the database) and, when they
 * allow it, reserve one request, est_tokens tokens and one in-flight slot.
 * Rates are token buckets refilled continuously (a full minute's budget is the
 * burst). A request estimated at more than the whole tokens/min budget is
 * admitted only when the bucket is full and then drives it negative, so it is
 * not refused forever. Concurrency refusals suggest retry_after_s = 1.
 * Returns REALM_OK with ticket->verdict; REALM_E_NOT_FOUND for an unknown tenant. */
realm_status realm_tenants_admit(realm_tenants_t *t, int64_t tenant_id, int64_t est_tokens,
                                 realm_quota_ticket *ticket, realm_error *err);
/* End the request: free its in-flight slot and correct the token charge from
 * the estimate to actual_tokens (refund or extra debit). Safe on a refused or
 * already released ticket (no-op). Never fails. */
void realm_tenants_release(realm_tenants_t *t, realm_quota_ticket *ticket, int64_t actual_tokens);

/* HTTP status for a verdict (200/401/403/429), for the server's tables. */
int realm_tenants_auth_http_status(realm_auth_result r);
int realm_tenants_quota_http_status(realm_quota_verdict v);
const char *realm_tenants_quota_verdict_name(realm_quota_verdict v);

/* ---- usage ledger (durable) ---- */

/* Append one row for a finished request and commit it durably (WAL fsync)
 * before returning. Idempotent on request_id (1..REALM_TENANTS_REQUEST_ID_MAX
 * bytes): a repeated id leaves the first row as it was and returns REALM_OK,
 * so a retry cannot bill twice. status is the request's HTTP status. */
realm_status realm_tenants_record_usage(realm_tenants_t *t, int64_t tenant_id,
                                        const char *request_id, const char *model,
                                        int64_t prompt_tokens, int64_t completion_tokens,
                                        int64_t cached_tokens, int32_t status, realm_error *err);

typedef struct realm_usage_totals {
    int64_t requests;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;
} realm_usage_totals;

/* Sum the tenant's ledger rows recorded in [since_ms, until_ms) (unix ms;
 * pass 0 and INT64_MAX for all time). */
realm_status realm_tenants_usage(realm_tenants_t *t, int64_t tenant_id, int64_t since_ms,
                                 int64_t until_ms, realm_usage_totals *out, realm_error *err);

#endif
