/*
 * server/ws.c — the WebSocket API on /v1/ws.
 *
 * Client → server, one JSON text message per request:
 *   {"id": ID, "function": "generate"|"health"|"metadata"|"cancel"|"auth", "params": {...}}
 *   ID is a string or an integer chosen by the client; "generate" params are
 *   the completion parameters (prompt or messages, max_tokens, temperature,
 *   top_p, stop, seed, penalties, logit_bias); "cancel" stops the generation
 *   with that ID; "auth" {"api_key": KEY} authenticates a connection that
 *   sent no Authorization header.
 * Server → client:
 *   {"id", "status":"streaming", "data":{"text","index","is_final"}} per piece,
 *   {"id", "status":"complete", "data":{...usage...}} at the end,
 *   {"id", "status":"error", "error":{"code","message"}} on failure (code is
 *   the HTTP status the same problem gets over HTTP).
 * Many generations may run at once on one connection; closing the connection
 * cancels them all.
 *
 * Authentication of the upgrade's header runs on the loop (a read of the
 * tenants database that never waits behind ledger writes); message parsing,
 * tokenization and submission run on workers like HTTP requests.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

void srv_ws_send(srv_conn *c, const char *msg, size_t n)
{
    if (!c || c->wants_close) return;
    uint32_t len = (uint32_t)n;
    if (srv_buf_add(&c->out, (const char *)&len, sizeof len) || srv_buf_add(&c->out, msg, n) ||
        c->out.n - c->out_off > SRV_MAX_OUT_BYTES) {
        c->wants_close = true; /* too slow a reader: drop the client, which cancels its work */
    }
    srv_conn_want_write(c);
}

static void detach(srv_conn *c, srv_req *r)
{
    for (srv_req **p = &c->ws_reqs; *p; p = &(*p)->next_ws)
        if (*p == r) {
            *p = r->next_ws;
            r->conn = NULL;
            srv_req_unref(r);
            return;
        }
}

static void send_error(srv_conn *c, const char *id, int code, const char *msg)
{
    srv_buf b = {0};
    srv_buf_printf(&b, "{\"id\":%s,\"status\":\"error\",\"error\":{\"code\":%d,\"message\":", id, code);
    srv_buf_json_str(&b, msg, strlen(msg));
    srv_buf_str(&b, "}}");
    if (b.p) srv_ws_send(c, b.p, b.n);
    srv_buf_free(&b);
}

void srv_ws_established(srv_conn *c, srv_server *s)
{
    if (!c->ws_auth[0]) return; /* may authenticate with a first message */
    int st = srv_auth_check(s, c->ws_auth, &c->ws_tenant);
    if (st == 200) {
        c->ws_authed = true;
        return;
    }
    send_error(c, "null", st, st == 403 ? "the tenant of this API key is disabled" : "Incorrect API key provided");
    c->wants_close = true;
}

static void ws_job(srv_server *s, srv_req *r)
{
    json_t *root = NULL, *id = NULL, *params = NULL;
    const char *fn = NULL;
    json_error_t je;
    char why[600];
    root = srv_json_parse(r->body.p, r->body.n, why, sizeof why);
    srv_buf_free(&r->body);
    if (!root) {
        srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", why);
        return;
    }
    if (json_unpack_ex(root, &je, JSON_STRICT, "{s:o, s:s, s?:o}", "id", &id, "function", &fn, "params",
                       &params)) {
        json_decref(root);
        srv_reply_error(s, r, 400, "invalid_request_error", NULL,
                        "expected {\"id\", \"function\", \"params\"}: %s", je.text);
        return;
    }
    char *idtxt = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
    if (idtxt && strlen(idtxt) < sizeof r->ws_id && (json_is_string(id) || json_is_integer(id)))
        snprintf(r->ws_id, sizeof r->ws_id, "%s", idtxt);
    free(idtxt);
    if (!r->ws_id[0]) {
        json_decref(root);
        snprintf(r->ws_id, sizeof r->ws_id, "null");
        srv_reply_error(s, r, 400, "invalid_request_error", "id", "'id' must be a string or an integer (< 100 bytes)");
        return;
    }
    srv_buf b = {0};
    if (!strcmp(fn, "auth")) {
        const char *key = NULL;
        if (json_unpack_ex(params ? params : json_null(), &je, JSON_STRICT, "{s:s}", "api_key", &key)) {
            srv_reply_error(s, r, 400, "invalid_request_error", "params", "auth params: %s", je.text);
        } else {
            int st = srv_auth_check(s, key, &r->tenant);
            if (st != 200)
                srv_reply_error(s, r, st, "authentication_error", NULL,
                                st == 403 ? "the tenant of this API key is disabled" : "Incorrect API key provided");
            else {
                srv_buf_printf(&b, "{\"id\":%s,\"status\":\"complete\",\"data\":{\"authenticated\":true}}", r->ws_id);
                srv_reply(s, r, SRV_WS_AUTH_OK, NULL, b.p);
            }
        }
    } else if (!strcmp(fn, "health")) {
        srv_buf_printf(&b, "{\"id\":%s,\"status\":\"complete\",\"data\":{\"status\":\"%s\"}}", r->ws_id,
                       s->draining ? "draining" : "ok");
        srv_reply(s, r, 200, NULL, b.p);
    } else if (!strcmp(fn, "metadata")) {
        srv_buf_printf(&b, "{\"id\":%s,\"status\":\"complete\",\"data\":{\"model\":%s,\"max_context\":%d,"
                           "\"n_vocab\":%d,\"chat_template\":\"%s\"}}",
                       r->ws_id, s->model_json, s->max_ctx, s->n_vocab, realm_chat_template_family_name(s->tmpl));
        srv_reply(s, r, 200, NULL, b.p);
    } else if (!strcmp(fn, "cancel")) {
        srv_reply(s, r, SRV_WS_CANCEL, NULL, NULL);
    } else if (!strcmp(fn, "generate")) {
        if (srv_auth_tenant(s, r)) {
            const char *param = NULL;
            int st = params ? srv_parse_gen(s, r, params, SRV_API_WS, why, sizeof why, &param) : 400;
            if (!params) snprintf(why, sizeof why, "'generate' needs params");
            if (st)
                srv_reply_error(s, r, st, "invalid_request_error", NULL, "%s", why);
            else if (srv_quota_admit(s, r, (int64_t)r->gen.prompt.n + r->gen.max_tokens))
                srv_submit(s, r);
        }
    } else {
        srv_reply_error(s, r, 404, "invalid_request_error", "function",
                        "unknown function '%.64s' (generate, health, metadata, cancel, auth)", fn);
    }
    json_decref(root);
}

void srv_ws_message(srv_server *s, srv_conn *c, const char *msg, size_t n)
{
    if (c->wants_close) return;
    if (s->draining) {
        send_error(c, "null", 503, "the server is shutting down");
        return;
    }
    srv_req *r = srv_req_new(s, c, SRV_API_WS);
    if (!r || srv_buf_add(&r->body, msg, n)) {
        if (r) srv_req_unref(r);
        send_error(c, "null", 500, "out of memory");
        return;
    }
    if (c->ws_authed) r->tenant = c->ws_tenant;
    r->next_ws = c->ws_reqs;
    c->ws_reqs = r;
    r->job = ws_job;
    s->in_flight++;
    srv_job_push(s, r);
}

void srv_ws_reply(srv_server *s, srv_req *r, int status, const char *body)
{
    srv_conn *c = r->conn;
    if (status == SRV_WS_AUTH_OK) {
        c->ws_authed = true;
        c->ws_tenant = r->tenant;
    }
    if (status == SRV_WS_CANCEL) {
        bool found = false;
        for (srv_req *q = c->ws_reqs; q; q = q->next_ws)
            if (q != r && !strcmp(q->ws_id, r->ws_id) && q->submitted && !q->final_seen) {
                srv_req_cancel(s, q);
                found = true;
            }
        if (!found) {
            send_error(c, r->ws_id, 404, "no generation with this id is running");
        } else {
            char m[200];
            snprintf(m, sizeof m, "{\"id\":%s,\"status\":\"complete\",\"data\":{\"cancelled\":true}}", r->ws_id);
            srv_ws_send(c, m, strlen(m));
        }
    } else if (status >= 400) {
        /* The worker wrote an OpenAI error body; the frame carries its message. */
        json_t *e = json_loads(body, 0, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(e, "error"), "message"));
        send_error(c, r->ws_id[0] ? r->ws_id : "null", status, msg ? msg : "error");
        json_decref(e);
    } else {
        srv_ws_send(c, body, strlen(body));
    }
    detach(c, r);
}

static void frame(srv_req *r, const char *text, size_t n, bool final)
{
    srv_buf b = {0};
    srv_buf_printf(&b, "{\"id\":%s,\"status\":\"streaming\",\"data\":{\"text\":", r->ws_id);
    srv_buf_json_str(&b, text, n);
    srv_buf_printf(&b, ",\"index\":%d,\"is_final\":%s}}", r->ws_index++, final ? "true" : "false");
    if (b.p) srv_ws_send(r->conn, b.p, b.n);
    srv_buf_free(&b);
}

void srv_ws_on_text(srv_req *r, const char *text, size_t n) { frame(r, text, n, false); }

void srv_ws_on_end(srv_req *r)
{
    srv_conn *c = r->conn;
    if (r->finish == REALM_ENGINE_FINISH_ERROR) {
        send_error(c, r->ws_id, 500, r->engine_error);
    } else {
        frame(r, "", 0, true);
        srv_buf b = {0};
        srv_buf_printf(&b, "{\"id\":%s,\"status\":\"complete\",\"data\":{\"text\":", r->ws_id);
        srv_buf_json_str(&b, r->text.p ? r->text.p : "", r->text.n);
        srv_buf_printf(&b,
                       ",\"finish_reason\":\"%s\",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                       "\"total_tokens\":%d,\"cached_tokens\":%d}}}",
                       srv_finish_name(r), r->n_prompt, r->n_gen, r->n_prompt + r->n_gen, r->n_cached);
        if (b.p) srv_ws_send(c, b.p, b.n);
        srv_buf_free(&b);
    }
    detach(c, r);
}

int srv_ws_writeable(srv_conn *c)
{
    if (c->out.n - c->out_off < sizeof(uint32_t)) return c->wants_close ? -1 : 0;
    uint32_t len;
    memcpy(&len, c->out.p + c->out_off, sizeof len);
    const char *msg = c->out.p + c->out_off + sizeof len;
    unsigned char *buf = malloc(LWS_PRE + (size_t)len + 1);
    if (!buf) return -1;
    memcpy(buf + LWS_PRE, msg, len);
    int w = lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
    free(buf);
    if (w < (int)len) return -1;
    c->out_off += sizeof len + len;
    if (c->out_off == c->out.n) {
        c->out.n = c->out_off = 0;
    } else if (c->out_off > 65536 && c->out_off > c->out.n / 2) {
        memmove(c->out.p, c->out.p + c->out_off, c->out.n - c->out_off);
        c->out.n -= c->out_off;
        c->out_off = 0;
    }
    if (c->out.n || c->wants_close) lws_callback_on_writable(c->wsi);
    return 0;
}
