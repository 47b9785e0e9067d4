/* The usage ledger: one row per finished request, keyed by request id so a
 * retried write cannot bill twice, committed durably (WAL + synchronous=FULL
 * makes the autocommit of this single INSERT an fsync) before returning. */
#include <string.h>

#include "tenants/tenants_impl.h"

realm_status realm_tenants_record_usage(realm_tenants_t *t, int64_t tenant_id,
                                        const char *request_id, const char *model,
                                        int64_t prompt_tokens, int64_t completion_tokens,
                                        int64_t cached_tokens, int32_t status, realm_error *err)
{
    if (!request_id || !*request_id ||
        strnlen(request_id, REALM_TENANTS_REQUEST_ID_MAX + 1) > REALM_TENANTS_REQUEST_ID_MAX)
        return realm_error_set(err, REALM_E_INVALID, "tenants: request id must be 1..%d bytes",
                               REALM_TENANTS_REQUEST_ID_MAX);
    if (!model) model = "";
    if (strnlen(model, REALM_TENANTS_MODEL_MAX + 1) > REALM_TENANTS_MODEL_MAX)
        return realm_error_set(err, REALM_E_INVALID, "tenants: model name over %d bytes",
                               REALM_TENANTS_MODEL_MAX);
    if (prompt_tokens < 0 || completion_tokens < 0 || cached_tokens < 0)
        return realm_error_set(err, REALM_E_INVALID, "tenants: negative token count");
    sqlite3_stmt *st;
    realm_status s = realm__tconn_begin(&t->wr, TSTMT_USAGE_INSERT, &st, err);
    if (s != REALM_OK) return s;
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, tenant_id);
    sqlite3_bind_text(st, 3, model, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, prompt_tokens);
    sqlite3_bind_int64(st, 5, completion_tokens);
    sqlite3_bind_int64(st, 6, cached_tokens);
    sqlite3_bind_int(st, 7, status);
    sqlite3_bind_int64(st, 8, realm__tenants_wall_ms());
    int rc = sqlite3_step(st);
    /* OR IGNORE covers the duplicate request id only; a missing tenant is
     * still a foreign-key failure. */
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        s = realm_error_set(err, REALM_E_NOT_FOUND, "tenants: usage for unknown tenant %lld",
                            (long long)tenant_id);
    else if (rc != SQLITE_DONE)
        s = realm__tenants_sqlerr(t->wr.db, rc, "record usage", err);
    realm__tconn_end(&t->wr, st);
    return s;
}

realm_status realm_tenants_usage(realm_tenants_t *t, int64_t tenant_id, int64_t since_ms,
                                 int64_t until_ms, realm_usage_totals *out, realm_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    realm_status s = realm__tconn_begin(&t->rd, TSTMT_USAGE_SUM, &st, err);
    if (s != REALM_OK) return s;
    sqlite3_bind_int64(st, 1, tenant_id);
    sqlite3_bind_int64(st, 2, since_ms);
    sqlite3_bind_int64(st, 3, until_ms);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->requests = sqlite3_column_int64(st, 0);
        out->prompt_tokens = sqlite3_column_int64(st, 1);
        out->completion_tokens = sqlite3_column_int64(st, 2);
        out->cached_tokens = sqlite3_column_int64(st, 3);
    } else {
        s = realm__tenants_sqlerr(t->rd.db, rc, "usage", err);
    }
    realm__tconn_end(&t->rd, st);
    return s;
}
