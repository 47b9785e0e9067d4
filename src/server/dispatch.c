/*
 * server/dispatch.c — the loop thread's side of a generation: it drains the
 * inbox, turns engine tokens into text (detokenizer + stop strings), hands
 * text to the request's protocol (SSE, WebSocket, or a whole JSON reply), and
 * sequences the end: final event → usage committed on a worker → last bytes.
 *
 * Stop strings: text that could still turn into a stop string is held back
 * until it cannot, so a client never sees a partial stop string; when one
 * appears, the text is cut before it and the sequence is cancelled (its
 * finish_reason is "stop").
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "server/server_impl.h"

static void usage_job(srv_server *s, srv_req *r)
{
    srv_usage_record(s, r);
    srv_quota_release(s, r);
    srv_msg m = {.kind = SRV_MSG_USAGE, .req = r};
    srv_post(s, &m);
}

void srv_req_cancel(srv_server *s, srv_req *r)
{
    if (r->submitted && !r->final_seen && !r->cancel_sent) {
        r->cancel_sent = true;
        realm_engine_cancel(s->engine, r->seq);
    }
}

static void emit(srv_req *r, const char *t, size_t n)
{
    if (!r->conn || !n) return;
    if (r->api == SRV_API_WS)
        srv_ws_on_text(r, t, n);
    else if (r->gen.stream)
        srv_openai_on_text(r, t, n);
}

/* Append a piece of generated text; stream what can no longer be part of a
 * stop string. */
static void on_piece(srv_server *s, srv_req *r, const char *t, size_t n, bool final)
{
    if (r->stop_hit) return;
    size_t old = r->text.n;
    if (srv_buf_add(&r->text, t, n)) {
        snprintf(r->engine_error, sizeof r->engine_error, "out of memory");
        srv_req_cancel(s, r);
        return;
    }
    const srv_gen *g = &r->gen;
    size_t cut = r->text.n;
    for (int i = 0; i < g->n_stop; i++) {
        size_t from = old >= g->stop_len[i] ? old - g->stop_len[i] + 1 : 0;
        const char *hit = memmem(r->text.p + from, r->text.n - from, g->stop[i], g->stop_len[i]);
        if (hit && (size_t)(hit - r->text.p) < cut) cut = (size_t)(hit - r->text.p);
    }
    if (cut < r->text.n) {
        r->text.n = cut;
        r->text.p[cut] = '\0';
        r->stop_hit = true;
        srv_req_cancel(s, r);
        final = true;
    }
    size_t safe = r->text.n;
    for (int i = 0; !final && i < g->n_stop; i++) {
        for (size_t k = g->stop_len[i] - 1; k > 0; k--) {
            if (k <= r->text.n && !memcmp(r->text.p + r->text.n - k, g->stop[i], k)) {
                if (r->text.n - k < safe) safe = r->text.n - k;
                break;
            }
        }
    }
    if (safe > r->n_emitted) {
        emit(r, r->text.p + r->n_emitted, safe - r->n_emitted);
        r->n_emitted = safe;
    }
}

static void on_event(srv_server *s, srv_req *r, const realm_engine_event *ev)
{
    if (!r->submitted) {
        r->submitted = true;
        r->seq = ev->seq;
    }
    srv_tenant_metrics *tm = srv_metrics_tenant(s, &r->tenant);
    double now = srv_now();
    if (ev->token >= 0 && ev->finish != REALM_ENGINE_FINISH_STOP) {
        if (!r->t_first) {
            r->t_first = now;
            if (tm) srv_hist_observe(&tm->ttft_s, now - r->t_recv);
        } else if (tm) {
            srv_hist_observe(&tm->itl_s, now - r->t_last);
        }
        r->t_last = now;
        char piece[1024];
        size_t n = 0;
        if (!realm_detok_feed(&r->dt, ev->token, piece, sizeof piece, &n, NULL))
            on_piece(s, r, piece, n, false);
    }
    r->n_gen = ev->n_generated;
    if (ev->finish == REALM_ENGINE_FINISH_NONE) return;
    r->final_seen = true;
    r->finish = r->stop_hit ? REALM_ENGINE_FINISH_STOP : ev->finish;
    r->n_cached = ev->n_prompt_cached;
    r->queue_steps = ev->queue_steps;
    if (tm && r->t_first) srv_hist_observe(&tm->queue_s, r->t_submit - r->t_recv);
    char tail[16];
    size_t n = realm_detok_flush(&r->dt, tail, sizeof tail);
    on_piece(s, r, tail, n, true);
    if (!r->stop_hit && r->text.n > r->n_emitted) {
        emit(r, r->text.p + r->n_emitted, r->text.n - r->n_emitted);
        r->n_emitted = r->text.n;
    }
    r->job = usage_job;
    srv_job_push(s, r);
    srv_req_unref(r); /* the engine's reference */
}

static void on_usage(srv_server *s, srv_req *r)
{
    r->usage_done = true;
    s->in_flight--;
    srv_tenant_metrics *tm = srv_metrics_tenant(s, &r->tenant);
    if (tm) {
        tm->prompt_tokens += r->n_prompt;
        tm->completion_tokens += r->n_gen;
        tm->cached_tokens += r->n_cached;
        tm->in_flight--;
    }
    if (!r->conn) return;
    if (r->api == SRV_API_WS)
        srv_ws_on_end(r);
    else
        srv_openai_on_end(r);
}

static void on_reply(srv_server *s, srv_req *r, srv_msg *m)
{
    if (m->status == 0) { /* submitted: tokens follow */
        if (!r->submitted) {
            r->submitted = true;
            r->seq = m->ev.seq;
        }
        srv_tenant_metrics *tm = srv_metrics_tenant(s, &r->tenant);
        if (tm) {
            tm->requests[r->api]++;
            tm->in_flight++;
        }
        if (!r->conn) {
            srv_req_cancel(s, r);
            return;
        }
        if (r->api != SRV_API_WS && r->gen.stream && !r->final_seen) srv_openai_on_text(r, NULL, 0);
        return;
    }
    s->in_flight--;
    if (m->status >= 400 && m->status < 600) s->http_errors[m->status >= 500 ? 5 : 4]++;
    if (!r->conn) return;
    if (r->api == SRV_API_WS) {
        srv_ws_reply(s, r, m->status, m->body ? m->body : "{}");
        return;
    }
    srv_conn *c = r->conn;
    if (m->retry_after[0]) {
        snprintf(c->extra_hdr_name, sizeof c->extra_hdr_name, "retry-after:");
        snprintf(c->extra_hdr_val, sizeof c->extra_hdr_val, "%s", m->retry_after);
    }
    srv_http_respond(c, m->status, m->ctype ? m->ctype : "application/json", m->body,
                     m->body ? strlen(m->body) : 0);
}

void srv_inbox_drain(srv_server *s)
{
    pthread_mutex_lock(&s->inbox_mu);
    srv_msg *msgs = s->inbox;
    size_t n = s->inbox_n, cap = s->inbox_cap;
    s->inbox = s->inbox_spare;
    s->inbox_cap = s->inbox_spare_cap;
    s->inbox_n = 0;
    pthread_mutex_unlock(&s->inbox_mu);
    for (size_t i = 0; i < n; i++) {
        srv_msg *m = &msgs[i];
        srv_req *r = m->req;
        switch (m->kind) {
        case SRV_MSG_EVENT:
            on_event(s, r, &m->ev);
            continue; /* its reference is the engine's, dropped at the end event */
        case SRV_MSG_USAGE: on_usage(s, r); break;
        case SRV_MSG_REPLY: on_reply(s, r, m); break;
        case SRV_MSG_COUNT: break;
        }
        free(m->body);
        srv_req_unref(r); /* the job's reference */
    }
    /* Keep both arrays: the next drain reuses this one, so steady-state
     * streaming allocates nothing here. */
    pthread_mutex_lock(&s->inbox_mu);
    s->inbox_spare = msgs;
    s->inbox_spare_cap = cap;
    pthread_mutex_unlock(&s->inbox_mu);
}
