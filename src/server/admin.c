/*
 * server/admin.c — the admin API (behind the admin key, on worker threads):
 *   GET  /admin/tenants                      list tenants
 *   POST /admin/tenants {"name", "requests_per_min"?, "tokens_per_min"?, "max_concurrent"?}
 *   POST /admin/tenants/{id}/disable | /enable
 *   GET  /admin/tenants/{id}/keys            list keys (never the secret)
 *   POST /admin/tenants/{id}/keys {"label"?} create a key: the reply is the only time it is shown
 *   POST /admin/keys/{key_id}/revoke
 * Every call maps to one tenants/tenants.h function; its status becomes the
 * HTTP status (not found 404, invalid 400, database 500).
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "server/server_impl.h"

static int status_of(realm_status st)
{
    return st == REALM_E_NOT_FOUND ? 404 : st == REALM_E_INVALID ? 400 : 500;
}

/* The n-th path segment (0-based) of r->path into out. */
static void segment(const srv_req *r, int n, char *out, size_t cap)
{
    const char *p = r->path;
    for (int i = 0; i <= n && p; i++) {
        p = strchr(p, '/');
        if (p) p++;
    }
    size_t k = 0;
    while (p && p[k] && p[k] != '/' && k + 1 < cap)
        k++;
    memcpy(out, p ? p : "", k);
    out[k] = '\0';
}

static void tenant_json(srv_buf *b, const realm_tenant_info *t)
{
    srv_buf_printf(b, "{\"id\":%lld,\"name\":", (long long)t->id);
    srv_buf_json_str(b, t->name, strlen(t->name));
    srv_buf_printf(b, ",\"enabled\":%s,\"requests_per_min\":%lld,\"tokens_per_min\":%lld,"
                      "\"max_concurrent\":%lld,\"created_ms\":%lld}",
                   t->enabled ? "true" : "false", (long long)t->quotas.requests_per_min,
                   (long long)t->quotas.tokens_per_min, (long long)t->quotas.max_concurrent,
                   (long long)t->created_ms);
}

static void list_tenants(srv_server *s, srv_req *r)
{
    realm_tenant_info *ts = NULL;
    size_t n = 0;
    realm_error err = {0};
    if (realm_tenants_list(s->tenants, &ts, &n, &err)) {
        srv_reply_error(s, r, 500, "server_error", NULL, "%s", err.message);
        return;
    }
    srv_buf b = {0};
    srv_buf_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) srv_buf_str(&b, ",");
        tenant_json(&b, &ts[i]);
    }
    srv_buf_str(&b, "]}");
    realm_free(ts);
    srv_reply(s, r, 200, "application/json", b.p);
}

static void create_tenant(srv_server *s, srv_req *r, json_t *body)
{
    const char *name = NULL;
    json_int_t rpm = 0, tpm = 0, conc = 0;
    json_error_t je;
    if (json_unpack_ex(body, &je, JSON_STRICT, "{s:s, s?:I, s?:I, s?:I}", "name", &name, "requests_per_min",
                       &rpm, "tokens_per_min", &tpm, "max_concurrent", &conc)) {
        srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", je.text);
        return;
    }
    realm_tenant_quotas q = {rpm, tpm, conc};
    realm_error err = {0};
    int64_t id = 0;
    realm_tenant_info t;
    if (realm_tenants_create(s->tenants, name, &q, &id, &err) || realm_tenants_get(s->tenants, id, &t, &err)) {
        srv_reply_error(s, r, status_of(err.status), "invalid_request_error", "name", "%s", err.message);
        return;
    }
    srv_buf b = {0};
    tenant_json(&b, &t);
    srv_reply(s, r, 201, "application/json", b.p);
}

static void keys(srv_server *s, srv_req *r, int64_t tenant, json_t *body, bool create)
{
    realm_error err = {0};
    srv_buf b = {0};
    if (create) {
        const char *label = NULL;
        json_error_t je;
        if (body && json_unpack_ex(body, &je, JSON_STRICT, "{s?:s}", "label", &label)) {
            srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", je.text);
            return;
        }
        char key[REALM_TENANTS_KEY_SIZE], key_id[REALM_TENANTS_KEY_ID_SIZE];
        if (realm_tenants_key_create(s->tenants, tenant, label, key, key_id, &err)) {
            srv_reply_error(s, r, status_of(err.status), "invalid_request_error", NULL, "%s", err.message);
            return;
        }
        srv_buf_printf(&b, "{\"key\":\"%s\",\"key_id\":\"%s\",\"tenant_id\":%lld}", key, key_id, (long long)tenant);
        memset(key, 0, sizeof key);
        srv_reply(s, r, 201, "application/json", b.p);
        return;
    }
    realm_tenant_key *ks = NULL;
    size_t n = 0;
    if (realm_tenants_key_list(s->tenants, tenant, &ks, &n, &err)) {
        srv_reply_error(s, r, status_of(err.status), "invalid_request_error", NULL, "%s", err.message);
        return;
    }
    srv_buf_str(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(&b, "%s{\"key_id\":\"%s\",\"label\":", i ? "," : "", ks[i].key_id);
        srv_buf_json_str(&b, ks[i].label, strlen(ks[i].label));
        srv_buf_printf(&b, ",\"created_ms\":%lld,\"revoked_ms\":%lld}", (long long)ks[i].created_ms,
                       (long long)ks[i].revoked_ms);
    }
    srv_buf_str(&b, "]}");
    realm_free(ks);
    srv_reply(s, r, 200, "application/json", b.p);
}

void srv_job_admin_tenants(srv_server *s, srv_req *r)
{
    if (!srv_auth_admin(s, r)) return;
    json_t *body = NULL;
    if (r->body.n) {
        char why[400];
        body = srv_json_parse(r->body.p, r->body.n, why, sizeof why);
        srv_buf_free(&r->body);
        if (!body) {
            srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", why);
            return;
        }
    }
    const char *pat = r->route->path, *method = r->route->method;
    char seg[64], action[32];
    segment(r, 2, seg, sizeof seg);
    segment(r, 3, action, sizeof action);
    char *end;
    int64_t id = strtoll(seg, &end, 10);
    bool id_ok = seg[0] && !*end;
    realm_error err = {0};
    if (!strcmp(pat, "/admin/tenants")) {
        if (!strcmp(method, "GET"))
            list_tenants(s, r);
        else if (body)
            create_tenant(s, r, body);
        else
            srv_reply_error(s, r, 400, "invalid_request_error", NULL, "a JSON body {\"name\": ...} is required");
    } else if (!strncmp(pat, "/admin/keys/", 12)) {
        if (realm_tenants_key_revoke(s->tenants, seg, &err))
            srv_reply_error(s, r, status_of(err.status), "invalid_request_error", NULL, "%s", err.message);
        else
            srv_reply(s, r, 200, "application/json", strdup("{\"revoked\":true}"));
    } else if (!id_ok) {
        srv_reply_error(s, r, 404, "not_found_error", NULL, "'%s' is not a tenant id", seg);
    } else if (!strcmp(action, "keys")) {
        keys(s, r, id, body, !strcmp(method, "POST"));
    } else {
        bool enable = !strcmp(action, "enable");
        if (realm_tenants_set_enabled(s->tenants, id, enable, &err))
            srv_reply_error(s, r, status_of(err.status), "invalid_request_error", NULL, "%s", err.message);
        else
            srv_reply(s, r, 200, "application/json", strdup(enable ? "{\"enabled\":true}" : "{\"enabled\":false}"));
    }
    json_decref(body);
}
