/*
 * server/auth.c — the server's use of tenants/tenants.h: API-key
 * authentication (401 unknown key, 403 disabled tenant), quota admission
 * (429 with Retry-After), and the durable usage ledger. Worker threads only:
 * every call may touch the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

realm_status srv_auth_open(srv_server *s, realm_error *err)
{
    if (realm_tenants_open(s->opts.db_path, &s->tenants, err)) return err->status;
    if (s->opts.admin_key &&
        realm_tenants_admin_set(s->tenants, s->opts.admin_key, strlen(s->opts.admin_key), err))
        return err->status;
    return REALM_OK;
}

void srv_auth_close(srv_server *s)
{
    realm_tenants_close(s->tenants);
    s->tenants = NULL;
}

int srv_auth_check(srv_server *s, const char *key, srv_tenant *out)
{
    if (!key[0]) return 401;
    realm_tenant_info info;
    realm_auth_result res = REALM_AUTH_UNKNOWN_KEY;
    if (realm_tenants_authenticate(s->tenants, key, strlen(key), &info, &res, NULL)) return 500;
    if (res != REALM_AUTH_OK) return realm_tenants_auth_http_status(res);
    *out = (srv_tenant){.id = info.id, .salt = info.salt};
    snprintf(out->name, sizeof out->name, "%.63s", info.name);
    return 200;
}

bool srv_auth_tenant(srv_server *s, srv_req *r)
{
    if (r->tenant.id > 0) return true; /* a WebSocket connection authenticated already */
    int st = srv_auth_check(s, r->auth, &r->tenant);
    if (st == 200) return true;
    if (st == 403)
        srv_reply_error(s, r, 403, "permission_error", NULL, "the tenant of this API key is disabled");
    else if (st == 500)
        srv_reply_error(s, r, 500, "server_error", NULL, "cannot check the API key now");
    else if (!r->auth[0])
        srv_reply_error(s, r, 401, "authentication_error", NULL,
                        "You didn't provide an API key: pass it as 'Authorization: Bearer KEY'");
    else
        srv_reply_error(s, r, 401, "authentication_error", NULL, "Incorrect API key provided");
    return false;
}

bool srv_auth_admin(srv_server *s, srv_req *r)
{
    if (r->auth[0] && realm_tenants_admin_check(s->tenants, r->auth, strlen(r->auth))) return true;
    srv_reply_error(s, r, 401, "authentication_error", NULL,
                    "this endpoint needs the admin key ('Authorization: Bearer ADMIN_KEY')");
    return false;
}

bool srv_quota_admit(srv_server *s, srv_req *r, int64_t est_tokens)
{
    realm_error err = {0};
    if (realm_tenants_admit(s->tenants, r->tenant.id, est_tokens, &r->ticket, &err)) {
        srv_reply_error(s, r, 500, "server_error", NULL, "cannot check quotas: %s", err.message);
        return false;
    }
    realm_quota_verdict v = r->ticket.verdict;
    if (v == REALM_QUOTA_OK) return true;
    int st = realm_tenants_quota_http_status(v);
    char msg[200];
    snprintf(msg, sizeof msg, "%s: quota exceeded (%s)",
             st == 403 ? "the tenant is disabled" : "Rate limit reached",
             realm_tenants_quota_verdict_name(v));
    srv_msg m = {.kind = SRV_MSG_REPLY, .req = r, .status = st, .ctype = "application/json",
                 .body = srv_error_json(st, st == 403 ? "permission_error" : "rate_limit_error", NULL, msg)};
    if (st == 429)
        snprintf(m.retry_after, sizeof m.retry_after, "%d", r->ticket.retry_after_s > 0 ? r->ticket.retry_after_s : 1);
    srv_post(s, &m);
    return false;
}

void srv_quota_release(srv_server *s, srv_req *r)
{
    realm_tenants_release(s->tenants, &r->ticket, (int64_t)r->n_prompt + r->n_gen);
}

void srv_usage_record(srv_server *s, srv_req *r)
{
    realm_error err = {0};
    int32_t status = r->finish == REALM_ENGINE_FINISH_ERROR ? 500 : 200;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (!realm_tenants_record_usage(s->tenants, r->tenant.id, r->id, s->model_name, r->n_prompt,
                                        r->n_gen, r->n_cached, status, &err))
            return;
    }
    /* Not billed, so not served: the client gets an error instead of the end. */
    fprintf(stderr, "realm serve: usage ledger write failed for %s: %s\n", r->id, err.message);
    snprintf(r->engine_error, sizeof r->engine_error, "cannot record usage: %.200s", err.message);
    r->finish = REALM_ENGINE_FINISH_ERROR;
}
