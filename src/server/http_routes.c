/*
 * server/http_routes.c — every HTTP endpoint as one row of a table: method,
 * path ('*' matches one path segment), who may call it, and where it runs
 * (a worker job, or a cheap handler on the loop thread). Dispatch, 404/405
 * and the OpenAPI document (docs/openapi.yaml) follow this table.
 */
#include <stdio.h>
#include <string.h>

#include "server/server_impl.h"

static void loop_health(srv_server *s, srv_conn *c)
{
    const char *body = s->draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}";
    srv_http_respond(c, s->draining ? 503 : 200, "application/json", body, strlen(body));
}

static void loop_metrics(srv_server *s, srv_conn *c)
{
    srv_buf b = {0};
    srv_metrics_render(s, &b);
    srv_http_respond(c, 200, "text/plain; version=0.0.4", b.p ? b.p : "", b.n);
    srv_buf_free(&b);
}

const srv_route srv_routes[] = {
    {"GET", "/health", SRV_AUTH_NONE, NULL, loop_health, "liveness; 503 while draining"},
    {"GET", "/metrics", SRV_AUTH_NONE, NULL, loop_metrics, "Prometheus metrics"},
    {"GET", "/v1/models", SRV_AUTH_TENANT, srv_job_models, NULL, "the served model"},
    {"POST", "/v1/chat/completions", SRV_AUTH_TENANT, srv_job_chat, NULL, "chat completion (SSE with stream)"},
    {"POST", "/v1/completions", SRV_AUTH_TENANT, srv_job_completions, NULL, "text completion (SSE with stream)"},
    {"POST", "/tokenize", SRV_AUTH_TENANT, srv_job_tokenize, NULL, "text or messages → token ids"},
    {"POST", "/detokenize", SRV_AUTH_TENANT, srv_job_detokenize, NULL, "token ids → text"},
    {"GET", "/admin/tenants", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "list tenants"},
    {"POST", "/admin/tenants", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "create a tenant"},
    {"POST", "/admin/tenants/*/disable", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "disable a tenant"},
    {"POST", "/admin/tenants/*/enable", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "enable a tenant"},
    {"GET", "/admin/tenants/*/keys", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "list a tenant's keys"},
    {"POST", "/admin/tenants/*/keys", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "create a key (shown once)"},
    {"POST", "/admin/keys/*/revoke", SRV_AUTH_ADMIN, srv_job_admin_tenants, NULL, "revoke a key"},
};
const size_t srv_n_routes = sizeof srv_routes / sizeof srv_routes[0];

/* pattern and path segment by segment; '*' takes one non-empty segment. */
static bool path_match(const char *pat, const char *path)
{
    while (*pat && *path) {
        if (*pat == '*') {
            const char *e = strchr(path, '/');
            size_t n = e ? (size_t)(e - path) : strlen(path);
            if (!n) return false;
            path += n;
            pat++;
            continue;
        }
        if (*pat++ != *path++) return false;
    }
    return !*pat && !*path;
}

const srv_route *srv_route_find(const char *method, const char *path, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < srv_n_routes; i++) {
        if (!path_match(srv_routes[i].path, path)) continue;
        *path_known = true;
        if (!strcmp(srv_routes[i].method, method)) return &srv_routes[i];
    }
    return NULL;
}
