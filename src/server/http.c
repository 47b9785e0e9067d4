/*
 * server/http.c — the libwebsockets callback: HTTP requests in, responses
 * out, WebSocket connections handed to ws.c. Runs only on the loop thread.
 *
 * libwebsockets rules this file follows (see DESIGN.md): headers and URL
 * arguments are read in LWS_CALLBACK_HTTP, before anything is written; each
 * WRITEABLE callback makes exactly one lws_write (headers, then body pieces,
 * each in its own callback); nothing here blocks — a request that needs the
 * database, JSON parsing or the model goes to a worker, and its reply comes
 * back through the inbox.
 *
 * Streamed responses (SSE) carry no Content-Length: the body ends when the
 * server closes the connection after the last event, and every response the
 * server ends by closing says `Connection: close`.
 *
 * Keep-alive: the transaction is completed (lws_http_transaction_completed)
 * in the same WRITEABLE callback as the response's last byte. A client may
 * send its next request as soon as it has read that byte; lws 4.1 parses
 * bytes that arrive before the transaction is completed against the old
 * header table (and, after a body, fires BODY_COMPLETION again for ever), so
 * such early (pipelined) bytes close the connection instead: the request in
 * progress is cancelled and the client retries, as RFC 9112 9.3.2 expects.
 *
 * A body refused with 413 is still read (and dropped) before the close, up
 * to LINGER_S seconds and LINGER_BODY_FACTOR times the cap: a close with
 * unread bytes resets the connection, and a client still writing its body
 * then loses the response (RFC 9112 9.6's lingering close).
 *
 * So is the body of any other response whose headers go out before its
 * request's body has been read (404, 405, the draining server's 503), and
 * that response says Connection: close. Kept alive, lws 4.1 would drop the
 * rest of the body itself, but where its end and the next request arrive in
 * one read it takes that request with stale state (BODY_COMPLETION fires
 * for ever) and the request would be lost.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/server_impl.h"

static unsigned char g_scratch[LWS_PRE + 65536]; /* loop thread only */

void srv_conn_want_write(srv_conn *c)
{
    if (c && c->wsi) lws_callback_on_writable(c->wsi);
}

void srv_http_respond(srv_conn *c, int status, const char *ctype, const char *body, size_t n)
{
    c->status = status;
    c->ctype = ctype;
    c->content_length = body ? (int64_t)n : -1;
    c->hdr_pending = true;
    if (body) {
        c->body_done = true;
        if (srv_buf_add(&c->out, body, n)) c->wants_close = true;
    }
    srv_conn_want_write(c);
}

/* The client is gone (or being closed): its requests lose their output and
 * stop generating. */
static void conn_closed(srv_server *s, srv_conn *c)
{
    if (c->wsi || c->req || c->ws_reqs)
        realm_log(REALM_LOG_DEBUG, "realm serve: connection %p closed: %s%s", (void *)c,
                  c->close_why ? c->close_why : "by the client or an lws timeout",
                  (c->req && !c->req->usage_done) || c->ws_reqs ? "; its request(s) cancelled" : "");
    if (c->req) {
        c->req->conn = NULL;
        srv_req_cancel(s, c->req);
        srv_req_unref(c->req);
        c->req = NULL;
    }
    while (c->ws_reqs) {
        srv_req *r = c->ws_reqs;
        c->ws_reqs = r->next_ws;
        r->conn = NULL;
        srv_req_cancel(s, r);
        srv_req_unref(r);
    }
    srv_buf_free(&c->out);
    srv_buf_free(&c->rx);
    c->wsi = NULL;
    c->close_why = NULL;
}

/* Return value of a callback that closes the connection, saying why. */
static int close_conn(srv_conn *c, const char *why)
{
    c->close_why = why;
    return -1;
}

srv_req *srv_req_new(srv_server *s, srv_conn *c, srv_api api)
{
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    atomic_init(&r->refs, 1); /* the connection's */
    r->srv = s;
    r->conn = c;
    r->api = api;
    r->t_recv = srv_now();
    realm_detok_init(&r->dt, s->tok, 0);
    static uint64_t counter; /* loop thread only */
    r->created = (int64_t)time(NULL);
    /* Unique across restarts too: the ledger is idempotent on this id. */
    snprintf(r->id, sizeof r->id, "%s-%llx%04x%06llx", api == SRV_API_COMPLETIONS ? "cmpl" : "chatcmpl",
             (unsigned long long)r->created, (unsigned)getpid() & 0xffffu,
             (unsigned long long)(++counter & 0xffffff));
    return r;
}

static void dispatch(srv_server *s, srv_conn *c)
{
    srv_req *r = c->req;
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0); /* generation may take long */
    r->t_recv = srv_now();
    if (r->route->loop) {
        r->route->loop(s, c);
        return;
    }
    s->in_flight++;
    r->job = r->route->job;
    srv_job_push(s, r);
}

static void respond_error(srv_conn *c, int status, const char *type, const char *msg)
{
    char *body = srv_error_json(status, type, NULL, msg);
    srv_http_respond(c, status, "application/json", body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

static int on_http(srv_server *s, srv_conn *c, struct lws *wsi, const char *path)
{
    if (c->busy) return close_conn(c, "a request arrived before the previous response ended (pipelining)");
    srv_buf_free(&c->out);
    *c = (srv_conn){.wsi = wsi, .busy = true};
    char cl[32];
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        c->body_expected = strtoll(cl, NULL, 10);
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {{WSI_TOKEN_GET_URI, "GET"},
                   {WSI_TOKEN_POST_URI, "POST"},
                   {WSI_TOKEN_DELETE_URI, "DELETE"},
                   {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}};
    const char *method = "?";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) {
            method = methods[i].name;
            break;
        }
    bool known = false;
    const srv_route *rt = srv_route_find(method, path, &known);
    if (!rt) {
        respond_error(c, known ? 405 : 404, "invalid_request_error",
                      known ? "method not allowed on this path" : "no such endpoint");
        return 0;
    }
    srv_api api = SRV_API_CHAT;
    if (!strcmp(rt->path, "/v1/completions")) api = SRV_API_COMPLETIONS;
    srv_req *r = srv_req_new(s, c, api);
    if (!r) {
        respond_error(c, 500, "server_error", "out of memory");
        return 0;
    }
    r->route = rt;
    snprintf(r->path, sizeof r->path, "%s", path);
    c->req = r;
    char auth[300];
    if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
        const char *k = !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : auth;
        snprintf(r->auth, sizeof r->auth, "%.255s", k);
    }
    if (s->draining && rt->auth != SRV_AUTH_NONE) {
        respond_error(c, 503, "server_shutting_down", "the server is shutting down");
        return 0;
    }
    if (c->body_expected > s->opts.max_body_bytes) {
        c->too_large = true;
        c->wants_close = true;
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %d bytes",
                 s->opts.max_body_bytes);
        respond_error(c, 413, "invalid_request_error", msg);
        return 0;
    }
    if (!strcmp(method, "POST") && c->body_expected > 0) return 0; /* the body follows */
    dispatch(s, c);
    return 0;
}

/* How long, and how many refused bytes, a connection may linger after a
 * 413 or another early error (see srv_conn.lingering): past either it
 * closes anyway. */
#define LINGER_S           5
#define LINGER_BODY_FACTOR 16

static int on_body(srv_server *s, srv_conn *c, const char *in, size_t len)
{
    if (c->too_large || c->hdr_pending) { /* refused or answered already: dropped */
        c->drained += (int64_t)len;
        if (c->lingering && c->drained > (int64_t)LINGER_BODY_FACTOR * s->opts.max_body_bytes)
            return close_conn(c, "the refused body is too long to drain");
        return 0;
    }
    if (!c->req) return 0;
    if (c->req->body.n + len > (size_t)s->opts.max_body_bytes) {
        c->too_large = true;
        c->wants_close = true;
        respond_error(c, 413, "invalid_request_error", "the request body is too large");
        return 0;
    }
    if (srv_buf_add(&c->req->body, in, len)) return -1;
    return 0;
}

/* The response's last byte is out: the connection is ready for the next
 * request, or closes. */
static int transaction_done(srv_conn *c)
{
    if (c->content_length < 0) return close_conn(c, "end of a streamed response");
    if (c->wants_close) {
        if (!c->body_complete && c->body_expected > 0) { /* read the rest of the body first */
            c->lingering = true;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LINGER_S);
            return 0;
        }
        return close_conn(c, "response sent with Connection: close");
    }
    if (c->req) {
        c->req->conn = NULL;
        srv_req_unref(c->req);
        c->req = NULL;
    }
    c->hdr_sent = c->hdr_pending = c->body_done = c->busy = c->body_complete = false;
    c->out.n = c->out_off = 0;
    srv_buf_free(&c->out); /* an idle keep-alive connection holds no buffer */
    if (lws_http_transaction_completed(c->wsi)) return close_conn(c, "lws ended the keep-alive connection");
    return 0;
}

static int http_writeable(srv_conn *c)
{
    struct lws *wsi = c->wsi;
    if (!c->hdr_sent) {
        if (!c->hdr_pending) return 0;
        if (c->body_expected > 0 && !c->body_complete) c->wants_close = true; /* see the top */
        unsigned char *start = g_scratch + LWS_PRE, *p = start, *end = g_scratch + 4096;
        lws_filepos_t cl = c->content_length < 0 ? LWS_ILLEGAL_HTTP_CONTENT_LEN
                                                 : (lws_filepos_t)c->content_length;
        if (lws_add_http_common_headers(wsi, (unsigned)c->status, c->ctype, cl, &p, end)) return -1;
        if (c->content_length < 0 &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-cache", 8, &p, end))
            return -1;
        if (c->wants_close && c->content_length >= 0 &&
            lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                         &p, end))
            return -1;
        if (c->extra_hdr_name[0] &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)c->extra_hdr_name,
                                        (const unsigned char *)c->extra_hdr_val,
                                        (int)strlen(c->extra_hdr_val), &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end)) return close_conn(c, "write failed");
        c->hdr_sent = true;
        if (c->body_done && c->content_length == 0) return transaction_done(c);
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t pending = c->out.n - c->out_off;
    if (pending) {
        size_t k = pending < 65536 ? pending : 65536;
        memcpy(g_scratch + LWS_PRE, c->out.p + c->out_off, k);
        bool last = c->body_done && k == pending && c->content_length >= 0;
        if (lws_write(wsi, g_scratch + LWS_PRE, k, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
            return close_conn(c, "write failed");
        c->out_off += k;
        if (c->out_off == c->out.n) c->out.n = c->out_off = 0;
        if (last) return transaction_done(c);
        if (c->out.n || c->body_done) lws_callback_on_writable(wsi);
        return 0;
    }
    if (!c->body_done) return 0;
    return transaction_done(c);
}

int srv_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    srv_conn *c = user;
    srv_server *s = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s) srv_inbox_drain(s);
        return 0;
    case LWS_CALLBACK_HTTP:
        return on_http(s, c, wsi, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(s, c, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c->lingering)
            return close_conn(c, "response sent with Connection: close; refused body read");
        if (c->body_complete) /* lws re-reads its stale state: the next request came early */
            return close_conn(c, "a request arrived before the previous response ended (pipelining)");
        c->body_complete = true;
        if (!c->too_large && c->req && !c->hdr_pending) dispatch(s, c);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_writeable(c);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (c) conn_closed(s, c);
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char path[64];
        if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 || strcmp(path, "/v1/ws"))
            return 1; /* refuse the upgrade */
        if (c) {
            char auth[300];
            *c = (srv_conn){.wsi = wsi, .is_ws = true};
            if (lws_hdr_copy(wsi, auth, sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
                const char *k = !strncasecmp(auth, "Bearer ", 7) ? auth + 7 : auth;
                snprintf(c->ws_auth, sizeof c->ws_auth, "%.255s", k);
            }
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        c->wsi = wsi;
        c->is_ws = true;
        srv_ws_established(c, s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (srv_buf_add(&c->rx, in, len) || c->rx.n > (size_t)s->opts.max_body_bytes) return -1;
        if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
        srv_ws_message(s, c, c->rx.p ? c->rx.p : "", c->rx.n);
        c->rx.n = 0;
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return srv_ws_writeable(c);
    case LWS_CALLBACK_CLOSED:
        conn_closed(s, c);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
