/*
 * server/server_impl.h — the server's private types, shared by its files.
 *
 * Ownership of a request (srv_req): reference counted. The connection holds
 * one reference while it is open, a worker job one while it runs, the engine
 * one from submit until the loop has processed the sequence's final event.
 * Every field marked [loop] is touched only by the loop thread; [worker] only
 * by the worker running the request's job (before it posts its reply);
 * [engine] only inside engine callbacks. Hand-offs go through the inbox,
 * whose mutex orders them.
 */
#ifndef REALM_SERVER_SERVER_IMPL_H
#define REALM_SERVER_SERVER_IMPL_H

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "tenants/tenants.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

#define SRV_MAX_STOP_STRINGS 4
#define SRV_MAX_JSON_DEPTH 32
#define SRV_MAX_OUT_BYTES (4u << 20) /* pending output per client before it counts as too slow */
#define SRV_MAX_TENANT_METRICS 256
#define SRV_WS_AUTH_OK 298 /* internal reply codes of WebSocket jobs */
#define SRV_WS_CANCEL 299

/* A growable byte buffer (NUL-terminated when non-empty). */
typedef struct srv_buf {
    char *p;
    size_t n, cap;
} srv_buf;

int srv_buf_add(srv_buf *b, const char *s, size_t n);
int srv_buf_str(srv_buf *b, const char *s);
int srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..n) as a JSON string literal, quotes included. */
int srv_buf_json_str(srv_buf *b, const char *s, size_t n);
void srv_buf_free(srv_buf *b);

/* Who is calling: filled by authentication (server/auth.c). */
typedef struct srv_tenant {
    int64_t id;
    char name[64];
    uint64_t salt;
    int32_t max_running;
    int64_t key_id;
} srv_tenant;

typedef enum srv_api {
    SRV_API_CHAT = 0,
    SRV_API_COMPLETIONS,
    SRV_API_WS,
    SRV_API_COUNT
} srv_api;

typedef enum srv_auth_kind { SRV_AUTH_NONE = 0, SRV_AUTH_TENANT, SRV_AUTH_ADMIN } srv_auth_kind;

typedef struct srv_server srv_server;
typedef struct srv_conn srv_conn;
typedef struct srv_req srv_req;
typedef void (*srv_job_fn)(srv_server *s, srv_req *r);

/* A generation's parsed parameters (openai.c / ws.c fill it on a worker). */
typedef struct srv_gen {
    realm_token_vec prompt;
    int32_t max_tokens;
    bool stream, include_usage, greedy;
    realm_sampler_params sp;
    realm_logit_bias *bias; /* (sp.n_logit_bias) */
    char *stop[SRV_MAX_STOP_STRINGS];
    size_t stop_len[SRV_MAX_STOP_STRINGS];
    int n_stop;
} srv_gen;

struct srv_req {
    atomic_int refs;
    srv_server *srv;
    srv_conn *conn;     /* [loop] NULL once the client is gone */
    srv_req *next_ws;   /* [loop] the connection's list of WebSocket requests */
    srv_api api;
    const struct srv_route *route;
    char ws_id[128];    /* the WebSocket request's "id" as JSON text */
    char id[40];        /* "chatcmpl-…" */
    int64_t created;
    char auth[256];     /* the bearer token, copied from the headers */
    srv_buf body;       /* request body; freed once parsed */
    srv_tenant tenant;
    realm_quota_ticket ticket; /* quota reservation, released at the end */
    char path[256];     /* request path (routes with a '*' segment read it) */
    srv_gen gen;
    srv_job_fn job;     /* what a worker runs next for this request */
    /* engine side */
    realm_sampler_t *sampler; /* [engine] built at the first sample */
    char engine_error[256];   /* [engine] FINISH_ERROR message */
    /* loop side */
    realm_engine_seq_id seq; /* [loop] valid once submitted */
    bool submitted, final_seen, usage_done, stop_hit, cancel_sent, reply_ready;
    realm_engine_finish finish;
    int32_t n_prompt, n_gen, n_cached;
    int32_t ws_index; /* [loop] streamed frames so far */
    realm_detok dt;
    srv_buf text;     /* [loop] generated text so far (after stop trimming) */
    size_t n_emitted; /* [loop] bytes of text already streamed */
    double t_recv, t_submit, t_first, t_last;
    int64_t queue_steps;
};

/* One client connection: libwebsockets' per-session data (zeroed by lws). */
struct srv_conn {
    struct lws *wsi;
    bool is_ws, ws_authed, closing, wants_close;
    /* [loop] a request was read and its response is not complete yet. lws 4.1
     * cannot take the next request on this connection until the transaction
     * is completed: bytes that arrive earlier (pipelining) are re-parsed
     * against the stale header table, or fire BODY_COMPLETION again forever. */
    bool busy, body_complete;
    const char *close_why; /* [loop] why the server closes it (debug log) */
    srv_req *req;     /* the HTTP request in progress */
    srv_req *ws_reqs; /* WebSocket requests in flight */
    srv_tenant ws_tenant;
    char ws_auth[256]; /* bearer token from the upgrade request's headers */
    /* response being written (HTTP) */
    int status;
    const char *ctype;
    int64_t content_length; /* -1: streamed until close */
    char extra_hdr_name[32], extra_hdr_val[64];
    bool hdr_pending, hdr_sent, body_done;
    bool too_large;
    /* [loop] a response sent with Connection: close before its request's
     * body was read (a 413, or any early error: http.c) is out, and the rest
     * of that body is read and dropped before the close: closing with unread
     * bytes resets the connection, and the client may lose the response it
     * had not read */
    bool lingering;
    int64_t body_expected, drained;
    srv_buf out;  /* HTTP: body bytes to write; WS: [u32 len][bytes] messages */
    size_t out_off;
    srv_buf rx;   /* WS: fragments of the message being received */
};

/* Messages to the loop thread. */
typedef enum srv_msg_kind {
    SRV_MSG_EVENT = 0, /* an engine event */
    SRV_MSG_REPLY,     /* a worker finished a request: a whole reply or a submitted sequence */
    SRV_MSG_USAGE,     /* usage is committed: the last bytes may go out */
    SRV_MSG_COUNT
} srv_msg_kind;

typedef struct srv_msg {
    srv_msg_kind kind;
    srv_req *req;
    realm_engine_event ev;   /* SRV_MSG_EVENT (ev.error not kept: see engine_error) */
    int status;              /* SRV_MSG_REPLY: HTTP status (0: submitted, stream follows) */
    char *body;              /* SRV_MSG_REPLY: response body (taken) */
    const char *ctype;
    char retry_after[16];
} srv_msg;

typedef struct srv_route {
    const char *method, *path;
    srv_auth_kind auth;
    srv_job_fn job;                       /* runs on a worker, replies with srv_reply */
    void (*loop)(srv_server *s, srv_conn *c); /* cheap handlers that run on the loop */
    const char *summary;
} srv_route;

typedef struct srv_hist {
    double sum;
    int64_t count;
    int64_t bucket[16];
} srv_hist;

typedef struct srv_tenant_metrics {
    int64_t tenant_id;
    char name[64];
    int64_t requests[SRV_API_COUNT], errors, prompt_tokens, completion_tokens, cached_tokens;
    int32_t in_flight;
    srv_hist queue_s, ttft_s, itl_s;
} srv_tenant_metrics;

struct srv_server {
    realm_server_opts opts;
    char model_name[128];
    char model_json[300]; /* model_name as a JSON string literal */
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    realm_gguf_t *g;
    realm_backend *be;
    realm_model_t *model;
    realm_engine_t *engine;
    realm_tokenizer_t *tok;
    realm_chat_template_t *tmpl;
    int32_t stop_ids[2], n_stop_ids;
    int32_t n_vocab, max_ctx;
    realm_tenants_t *tenants;
    /* inbox */
    pthread_mutex_t inbox_mu;
    srv_msg *inbox, *inbox_spare;
    size_t inbox_n, inbox_cap, inbox_spare_cap;
    /* worker jobs */
    pthread_mutex_t jobs_mu;
    pthread_cond_t jobs_cv;
    srv_req **jobs;
    size_t jobs_head, jobs_n, jobs_cap;
    bool jobs_stop;
    pthread_t *workers;
    int n_workers;
    pthread_t engine_thread;
    atomic_bool engine_stop;
    atomic_bool engine_posted;
    /* loop state */
    atomic_bool draining;
    int64_t in_flight; /* [loop] requests accepted and not yet finished */
    srv_tenant_metrics tm[SRV_MAX_TENANT_METRICS];
    int n_tm;
    int32_t max_batch_seqs; /* [engine] most sequences seen in one step */
    atomic_int max_batch_seqs_pub;
    int64_t http_errors[6]; /* 4xx by kind, for /metrics */
};

/* server.c */
double srv_now(void);
void srv_req_unref(srv_req *r);
/* dispatch.c: stop r's sequence if it is running (loop thread). */
void srv_req_cancel(srv_server *s, srv_req *r);
void srv_post(srv_server *s, const srv_msg *m);
void srv_job_push(srv_server *s, srv_req *r); /* takes a reference */
/* Worker side: reply to r with a whole response (body taken), or an OpenAI error. */
void srv_reply(srv_server *s, srv_req *r, int status, const char *ctype, char *body);
void srv_reply_error(srv_server *s, srv_req *r, int status, const char *type, const char *param,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Submit r->gen to the engine (worker); replies itself on failure. */
bool srv_submit(srv_server *s, srv_req *r);
void srv_conn_want_write(srv_conn *c);
void srv_inbox_drain(srv_server *s);

/* http_routes.c */
const srv_route *srv_route_find(const char *method, const char *path, bool *path_known);
extern const srv_route srv_routes[];
extern const size_t srv_n_routes;

/* http.c */
srv_req *srv_req_new(srv_server *s, srv_conn *c, srv_api api);
int srv_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);
void srv_http_respond(srv_conn *c, int status, const char *ctype, const char *body, size_t n);
char *srv_error_json(int status, const char *type, const char *param, const char *msg);

/* openai.c */
json_t *srv_json_parse(const char *body, size_t n, char *why, size_t why_cap);
void srv_job_chat(srv_server *s, srv_req *r);
void srv_job_completions(srv_server *s, srv_req *r);
void srv_job_models(srv_server *s, srv_req *r);
void srv_job_tokenize(srv_server *s, srv_req *r);
void srv_job_detokenize(srv_server *s, srv_req *r);
/* Validation shared with WebSocket "generate": fills r->gen from a request object. */
/* Returns 0, or the HTTP status of the problem, with why and *param set. */
int srv_parse_gen(srv_server *s, srv_req *r, json_t *root, srv_api api, char *why, size_t cap,
                  const char **param);
void srv_gen_free(srv_gen *g);
/* Loop side output of an HTTP generation. */
void srv_openai_on_text(srv_req *r, const char *text, size_t n);
void srv_openai_on_end(srv_req *r);
const char *srv_finish_name(const srv_req *r);

/* ws.c */
void srv_ws_established(srv_conn *c, srv_server *s);
void srv_ws_message(srv_server *s, srv_conn *c, const char *msg, size_t n);
void srv_ws_send(srv_conn *c, const char *msg, size_t n);
void srv_ws_on_text(srv_req *r, const char *text, size_t n);
void srv_ws_on_end(srv_req *r);
/* A worker's reply to a WebSocket request (an OpenAI error body is turned into an error frame). */
void srv_ws_reply(srv_server *s, srv_req *r, int status, const char *body);
int srv_ws_writeable(srv_conn *c);

/* auth.c: tenants.h behind a small interface */
realm_status srv_auth_open(srv_server *s, realm_error *err);
void srv_auth_close(srv_server *s);
/* 200 and *out filled, or the HTTP status of the refusal (401/403/500). */
int srv_auth_check(srv_server *s, const char *key, srv_tenant *out);
/* Fills r->tenant, or replies 401/403 and returns false. */
bool srv_auth_tenant(srv_server *s, srv_req *r);
bool srv_auth_admin(srv_server *s, srv_req *r);
/* Takes a concurrency slot and checks rates; replies 429 and returns false. */
bool srv_quota_admit(srv_server *s, srv_req *r, int64_t est_tokens);
void srv_quota_release(srv_server *s, srv_req *r);
/* Durably records r's usage (worker). */
void srv_usage_record(srv_server *s, srv_req *r);

/* metrics.c (loop thread) */
srv_tenant_metrics *srv_metrics_tenant(srv_server *s, const srv_tenant *t);
void srv_hist_observe(srv_hist *h, double v);
void srv_metrics_render(srv_server *s, srv_buf *out);

/* admin.c */
void srv_job_admin_tenants(srv_server *s, srv_req *r);

#endif
