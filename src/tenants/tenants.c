/* Tenants, API keys and the admin key: validation, CRUD through the cached
 * prepared statements (never SQL built from input), key generation and
 * constant-time authentication. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "tenants/tenants_impl.h"

#define KEY_PREFIX     "rk_"
#define KEY_ID_HEX     12 /* 6 random bytes */
#define KEY_SECRET_B64 43 /* 32 random bytes, base64url without padding */
#define KEY_LEN        (3 + KEY_ID_HEX + 1 + KEY_SECRET_B64)
#define ADMIN_PREFIX   "rk_admin_"
#define ADMIN_SETTING  "admin_key_sha256"
#define ADMIN_KEY_MIN  16

_Static_assert(KEY_LEN < REALM_TENANTS_KEY_SIZE, "key buffer too small");
_Static_assert(KEY_ID_HEX < REALM_TENANTS_KEY_ID_SIZE, "key id buffer too small");

/* Names and labels are stored verbatim; only control bytes are refused so a
 * name cannot forge lines in CLI output or logs. */
static realm_status check_text(const char *s, size_t min, size_t max, const char *what,
                               realm_error *err)
{
    if (!s) return realm_error_set(err, REALM_E_INVALID, "tenants: %s missing", what);
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max)
        return realm_error_set(err, REALM_E_INVALID, "tenants: %s must be %zu..%zu bytes", what,
                               min, max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return realm_error_set(err, REALM_E_INVALID,
                                   "tenants: %s contains a control character at byte %zu", what, i);
    return REALM_OK;
}

static realm_status check_quotas(const realm_tenant_quotas *q, realm_error *err)
{
    if (q && (q->requests_per_min < 0 || q->tokens_per_min < 0 || q->max_concurrent < 0))
        return realm_error_set(err, REALM_E_INVALID, "tenants: quotas must be >= 0 (0: unlimited)");
    return REALM_OK;
}

/* Step a write statement to completion and report whether it changed a row. */
static realm_status step_write(realm__tconn *c, sqlite3_stmt *st, const char *what, bool *changed,
                               realm_error *err)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return realm__tenants_sqlerr(c->db, rc, what, err);
    if (changed) *changed = sqlite3_changes(c->db) > 0;
    return REALM_OK;
}

realm_status realm_tenants_create(realm_tenants_t *t, const char *name,
                                  const realm_tenant_quotas *quotas, int64_t *out_id,
                                  realm_error *err)
{
    realm_status s = check_text(name, 1, REALM_TENANT_NAME_MAX, "tenant name", err);
    if (s == REALM_OK) s = check_quotas(quotas, err);
    if (s != REALM_OK) return s;
    realm_tenant_quotas q = quotas ? *quotas : (realm_tenant_quotas){0};
    uint64_t salt;
    if ((s = realm__tenants_random(&salt, sizeof salt, err)) != REALM_OK) return s;
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->wr, TSTMT_TENANT_INSERT, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)salt);
    sqlite3_bind_int64(st, 3, q.requests_per_min);
    sqlite3_bind_int64(st, 4, q.tokens_per_min);
    sqlite3_bind_int64(st, 5, q.max_concurrent);
    sqlite3_bind_int64(st, 6, realm__tenants_wall_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        if (out_id) *out_id = sqlite3_last_insert_rowid(t->wr.db);
    } else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        s = realm_error_set(err, REALM_E_INVALID, "tenants: a tenant named '%s' already exists",
                            name);
    } else {
        s = realm__tenants_sqlerr(t->wr.db, rc, "create tenant", err);
    }
    realm__tconn_end(&t->wr, st);
    return s;
}

static realm_status get_one(realm_tenants_t *t, realm__tstmt which, int64_t id, const char *name,
                            realm_tenant_info *out, realm_error *err)
{
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->rd, which, &st, err);
    if (bs != REALM_OK) return bs;
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    realm_status s = REALM_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        realm__tenants_row_info(st, 0, out);
    else if (rc == SQLITE_DONE)
        s = name ? realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no tenant named '%s'", name)
                 : realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no tenant with id %lld",
                                   (long long)id);
    else
        s = realm__tenants_sqlerr(t->rd.db, rc, "get tenant", err);
    realm__tconn_end(&t->rd, st);
    return s;
}

realm_status realm_tenants_get(realm_tenants_t *t, int64_t tenant_id, realm_tenant_info *out,
                               realm_error *err)
{
    return get_one(t, TSTMT_TENANT_BY_ID, tenant_id, NULL, out, err);
}

realm_status realm_tenants_find(realm_tenants_t *t, const char *name, realm_tenant_info *out,
                                realm_error *err)
{
    if (!name) return realm_error_set(err, REALM_E_INVALID, "tenants: name missing");
    return get_one(t, TSTMT_TENANT_BY_NAME, 0, name, out, err);
}

realm_status realm_tenants_list(realm_tenants_t *t, realm_tenant_info **out, size_t *n,
                                realm_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->rd, TSTMT_TENANT_LIST, &st, err);
    if (bs != REALM_OK) return bs;
    realm_tenant_info *v = NULL;
    size_t len = 0, cap = 0;
    realm_status s = REALM_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void *grown = v;
        if (realm_array_reserve(&grown, &cap, len + 1, sizeof *v, 8)) {
            s = realm_error_set(err, REALM_E_NOMEM, "tenants: out of memory listing tenants");
            break;
        }
        v = grown;
        realm__tenants_row_info(st, 0, &v[len++]);
    }
    if (s == REALM_OK && rc != SQLITE_DONE) s = realm__tenants_sqlerr(t->rd.db, rc, "list", err);
    realm__tconn_end(&t->rd, st);
    if (s != REALM_OK) {
        realm_free(v);
        return s;
    }
    *out = v;
    *n = len;
    return REALM_OK;
}

realm_status realm_tenants_set_enabled(realm_tenants_t *t, int64_t tenant_id, bool enabled,
                                       realm_error *err)
{
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->wr, TSTMT_TENANT_SET_ENABLED, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_int(st, 2, enabled ? 1 : 0);
    bool changed = false;
    realm_status s = step_write(&t->wr, st, "set enabled", &changed, err);
    realm__tconn_end(&t->wr, st);
    if (s == REALM_OK && !changed)
        s = realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no tenant with id %lld",
                            (long long)tenant_id);
    return s;
}

realm_status realm_tenants_set_quotas(realm_tenants_t *t, int64_t tenant_id,
                                      const realm_tenant_quotas *quotas, realm_error *err)
{
    if (!quotas) return realm_error_set(err, REALM_E_INVALID, "tenants: quotas missing");
    realm_status s = check_quotas(quotas, err);
    if (s != REALM_OK) return s;
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->wr, TSTMT_TENANT_SET_QUOTAS, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_int64(st, 2, quotas->requests_per_min);
    sqlite3_bind_int64(st, 3, quotas->tokens_per_min);
    sqlite3_bind_int64(st, 4, quotas->max_concurrent);
    bool changed = false;
    s = step_write(&t->wr, st, "set quotas", &changed, err);
    realm__tconn_end(&t->wr, st);
    if (s == REALM_OK && !changed)
        s = realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no tenant with id %lld",
                            (long long)tenant_id);
    return s;
}

/* ---- keys ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* base64url (RFC 4648 §5) without padding; out needs ceil(4n/3) + 1 bytes. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

realm_status realm_tenants_key_create(realm_tenants_t *t, int64_t tenant_id, const char *label,
                                      char out_key[REALM_TENANTS_KEY_SIZE],
                                      char out_key_id[REALM_TENANTS_KEY_ID_SIZE], realm_error *err)
{
    out_key[0] = '\0';
    if (!label) label = "";
    realm_status s = check_text(label, 0, REALM_TENANT_LABEL_MAX, "key label", err);
    if (s != REALM_OK) return s;
    /* A key id collision (2^-48 per pair) is retried with fresh randomness. */
    for (int attempt = 0; attempt < 4; attempt++) {
        unsigned char rnd[6 + 32];
        if ((s = realm__tenants_random(rnd, sizeof rnd, err)) != REALM_OK) return s;
        char key_id[KEY_ID_HEX + 1], secret[KEY_SECRET_B64 + 1];
        hex_encode(rnd, 6, key_id);
        b64url_encode(rnd + 6, 32, secret);
        char key[REALM_TENANTS_KEY_SIZE];
        snprintf(key, sizeof key, KEY_PREFIX "%s_%s", key_id, secret);
        uint8_t hash[REALM_SHA256_SIZE];
        realm_sha256(key, KEY_LEN, hash);

        sqlite3_stmt *st;
        realm_status bs = realm__tconn_begin(&t->wr, TSTMT_KEY_INSERT, &st, err);
        if (bs != REALM_OK) return bs;
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, tenant_id);
        sqlite3_bind_text(st, 3, label, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 4, hash, sizeof hash, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, realm__tenants_wall_ms());
        int rc = sqlite3_step(st);
        realm__tconn_end(&t->wr, st);
        if (rc == SQLITE_DONE) {
            memcpy(out_key, key, KEY_LEN + 1);
            if (out_key_id) memcpy(out_key_id, key_id, KEY_ID_HEX + 1);
            memset(key, 0, sizeof key);
            memset(rnd, 0, sizeof rnd);
            return REALM_OK;
        }
        memset(key, 0, sizeof key);
        memset(rnd, 0, sizeof rnd);
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no tenant with id %lld",
                                   (long long)tenant_id);
        if (rc != SQLITE_CONSTRAINT_UNIQUE) return realm__tenants_sqlerr(t->wr.db, rc, "key", err);
    }
    return realm_error_set(err, REALM_E_INTERNAL, "tenants: could not draw a unique key id");
}

realm_status realm_tenants_key_revoke(realm_tenants_t *t, const char *key_id, realm_error *err)
{
    if (!key_id) return realm_error_set(err, REALM_E_INVALID, "tenants: key id missing");
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->wr, TSTMT_KEY_REVOKE, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, realm__tenants_wall_ms());
    bool changed = false;
    realm_status s = step_write(&t->wr, st, "revoke key", &changed, err);
    realm__tconn_end(&t->wr, st);
    if (s != REALM_OK || changed) return s;
    /* Nothing changed: already revoked (fine) or no such key. */
    if ((s = realm__tconn_begin(&t->wr, TSTMT_KEY_EXISTS, &st, err)) != REALM_OK) return s;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        s = realm_error_set(err, REALM_E_NOT_FOUND, "tenants: no key with id '%s'", key_id);
    else if (rc != SQLITE_ROW)
        s = realm__tenants_sqlerr(t->wr.db, rc, "revoke key", err);
    realm__tconn_end(&t->wr, st);
    return s;
}

realm_status realm_tenants_key_list(realm_tenants_t *t, int64_t tenant_id, realm_tenant_key **out,
                                    size_t *n, realm_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->rd, TSTMT_KEY_LIST, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_int64(st, 1, tenant_id);
    realm_tenant_key *v = NULL;
    size_t len = 0, cap = 0;
    realm_status s = REALM_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void *grown = v;
        if (realm_array_reserve(&grown, &cap, len + 1, sizeof *v, 4)) {
            s = realm_error_set(err, REALM_E_NOMEM, "tenants: out of memory listing keys");
            break;
        }
        v = grown;
        realm_tenant_key *k = &v[len++];
        memset(k, 0, sizeof *k);
        snprintf(k->key_id, sizeof k->key_id, "%s", (const char *)sqlite3_column_text(st, 0));
        k->tenant_id = sqlite3_column_int64(st, 1);
        const char *label = (const char *)sqlite3_column_text(st, 2);
        snprintf(k->label, sizeof k->label, "%s", label ? label : "");
        k->created_ms = sqlite3_column_int64(st, 3);
        k->revoked_ms = sqlite3_column_int64(st, 4);
    }
    if (s == REALM_OK && rc != SQLITE_DONE) s = realm__tenants_sqlerr(t->rd.db, rc, "keys", err);
    realm__tconn_end(&t->rd, st);
    if (s != REALM_OK) {
        realm_free(v);
        return s;
    }
    *out = v;
    *n = len;
    return REALM_OK;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

realm_status realm_tenants_authenticate(realm_tenants_t *t, const char *key, size_t len,
                                        realm_tenant_info *out, realm_auth_result *result,
                                        realm_error *err)
{
    *result = REALM_AUTH_UNKNOWN_KEY;
    /* Shape first: a malformed key never reaches the database. */
    if (!key || len != KEY_LEN || memcmp(key, KEY_PREFIX, 3) != 0 || !is_hex(key + 3, KEY_ID_HEX) ||
        key[3 + KEY_ID_HEX] != '_')
        return REALM_OK;
    char key_id[KEY_ID_HEX + 1];
    memcpy(key_id, key + 3, KEY_ID_HEX);
    key_id[KEY_ID_HEX] = '\0';
    uint8_t hash[REALM_SHA256_SIZE];
    realm_sha256(key, len, hash);
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->rd, TSTMT_KEY_LOOKUP, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    realm_status s = REALM_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(st, 0);
        bool match = stored && sqlite3_column_bytes(st, 0) == REALM_SHA256_SIZE &&
                     realm__tenants_hash_equal(stored, hash, REALM_SHA256_SIZE);
        bool revoked = sqlite3_column_int(st, 1) != 0;
        if (match && !revoked) {
            realm_tenant_info info;
            realm__tenants_row_info(st, 2, &info);
            *result = info.enabled ? REALM_AUTH_OK : REALM_AUTH_DISABLED;
            if (out) *out = info;
        }
    } else if (rc != SQLITE_DONE) {
        s = realm__tenants_sqlerr(t->rd.db, rc, "authenticate", err);
    }
    realm__tconn_end(&t->rd, st);
    return s;
}

/* ---- admin key ---- */

static realm_status admin_store(realm_tenants_t *t, const char *key, size_t len, realm_error *err)
{
    uint8_t hash[REALM_SHA256_SIZE];
    realm_sha256(key, len, hash);
    sqlite3_stmt *st;
    realm_status bs = realm__tconn_begin(&t->wr, TSTMT_SETTING_PUT, &st, err);
    if (bs != REALM_OK) return bs;
    sqlite3_bind_text(st, 1, ADMIN_SETTING, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, sizeof hash, SQLITE_STATIC);
    realm_status s = step_write(&t->wr, st, "store admin key", NULL, err);
    realm__tconn_end(&t->wr, st);
    return s;
}

realm_status realm_tenants_admin_create(realm_tenants_t *t, char out_key[REALM_TENANTS_KEY_SIZE],
                                        realm_error *err)
{
    out_key[0] = '\0';
    unsigned char rnd[32];
    realm_status s = realm__tenants_random(rnd, sizeof rnd, err);
    if (s != REALM_OK) return s;
    char secret[KEY_SECRET_B64 + 1], key[REALM_TENANTS_KEY_SIZE];
    b64url_encode(rnd, sizeof rnd, secret);
    int n = snprintf(key, sizeof key, ADMIN_PREFIX "%s", secret);
    s = admin_store(t, key, (size_t)n, err);
    if (s == REALM_OK) memcpy(out_key, key, (size_t)n + 1);
    memset(key, 0, sizeof key);
    memset(rnd, 0, sizeof rnd);
    return s;
}

realm_status realm_tenants_admin_set(realm_tenants_t *t, const char *key, size_t len,
                                     realm_error *err)
{
    if (!key || len < ADMIN_KEY_MIN)
        return realm_error_set(err, REALM_E_INVALID, "tenants: admin key must be at least %d bytes",
                               ADMIN_KEY_MIN);
    return admin_store(t, key, len, err);
}

bool realm_tenants_admin_check(realm_tenants_t *t, const char *key, size_t len)
{
    if (!key || len < ADMIN_KEY_MIN) return false;
    uint8_t hash[REALM_SHA256_SIZE];
    realm_sha256(key, len, hash);
    sqlite3_stmt *st;
    if (realm__tconn_begin(&t->rd, TSTMT_SETTING_GET, &st, NULL) != REALM_OK) return false;
    sqlite3_bind_text(st, 1, ADMIN_SETTING, -1, SQLITE_STATIC);
    bool ok = false;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == REALM_SHA256_SIZE)
        ok = realm__tenants_hash_equal(sqlite3_column_blob(st, 0), hash, REALM_SHA256_SIZE);
    realm__tconn_end(&t->rd, st);
    return ok;
}
