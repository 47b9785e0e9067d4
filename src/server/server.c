/*
 * server/server.c — start-up, the three kinds of threads and the hand-offs
 * between them, graceful drain on SIGTERM.
 *
 * The loop thread owns every connection and every request's output state;
 * workers and the engine thread only post srv_msg values to the inbox and
 * wake the loop with lws_cancel_service (the one libwebsockets call that is
 * safe from other threads). The engine thread wakes the loop at most once
 * per step, however many tokens the step produced.
 */
#define _GNU_SOURCE /* memmem */
#include "server/server.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend/registry.h"
#include "base/log.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "server/server_impl.h"

static volatile sig_atomic_t g_signal;
static struct lws_context *volatile g_ctx;

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- buffers ---- */

int srv_buf_add(srv_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int srv_buf_str(srv_buf *b, const char *s) { return srv_buf_add(b, s, strlen(s)); }

int srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof tmp) return srv_buf_add(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = srv_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

int srv_buf_json_str(srv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (srv_buf_add(b, "\"", 1)) return -1;
    size_t run = 0; /* bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        if (srv_buf_add(b, s + run, i - run)) return -1;
        char esc[7] = {'\\', 0};
        size_t k = 2;
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            k = 6;
        }
        if (srv_buf_add(b, esc, k)) return -1;
        run = i + 1;
    }
    if (srv_buf_add(b, s + run, n - run)) return -1;
    return srv_buf_add(b, "\"", 1);
}

void srv_buf_free(srv_buf *b)
{
    free(b->p);
    *b = (srv_buf){0};
}

/* ---- requests ---- */

static void req_free(srv_req *r)
{
    srv_gen_free(&r->gen);
    srv_buf_free(&r->body);
    srv_buf_free(&r->text);
    free(r);
}

void srv_req_unref(srv_req *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) req_free(r);
}

/* ---- inbox (any thread → loop) ---- */

static void inbox_add(srv_server *s, const srv_msg *m)
{
    pthread_mutex_lock(&s->inbox_mu);
    if (s->inbox_n == s->inbox_cap) {
        size_t cap = s->inbox_cap ? s->inbox_cap * 2 : 1024;
        srv_msg *p = realloc(s->inbox, cap * sizeof *p);
        if (!p) { /* cannot happen in practice; losing a message would leak a request */
            pthread_mutex_unlock(&s->inbox_mu);
            fprintf(stderr, "realm serve: out of memory in the inbox\n");
            abort();
        }
        s->inbox = p;
        s->inbox_cap = cap;
    }
    s->inbox[s->inbox_n++] = *m;
    pthread_mutex_unlock(&s->inbox_mu);
}

void srv_post(srv_server *s, const srv_msg *m)
{
    inbox_add(s, m);
    lws_cancel_service(s->ctx);
}

/* ---- worker jobs ---- */

void srv_job_push(srv_server *s, srv_req *r)
{
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&s->jobs_mu);
    if (s->jobs_n == s->jobs_cap) {
        size_t cap = s->jobs_cap ? s->jobs_cap * 2 : 256;
        srv_req **p = malloc(cap * sizeof *p);
        if (!p) abort();
        for (size_t i = 0; i < s->jobs_n; i++)
            p[i] = s->jobs[(s->jobs_head + i) % s->jobs_cap];
        free(s->jobs);
        s->jobs = p;
        s->jobs_cap = cap;
        s->jobs_head = 0;
    }
    s->jobs[(s->jobs_head + s->jobs_n++) % s->jobs_cap] = r;
    pthread_cond_signal(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
}

static void *worker_main(void *arg)
{
    srv_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->jobs_mu);
        while (!s->jobs_n && !s->jobs_stop)
            pthread_cond_wait(&s->jobs_cv, &s->jobs_mu);
        if (s->jobs_stop) {
            pthread_mutex_unlock(&s->jobs_mu);
            return NULL;
        }
        srv_req *r = s->jobs[s->jobs_head];
        s->jobs_head = (s->jobs_head + 1) % s->jobs_cap;
        s->jobs_n--;
        pthread_mutex_unlock(&s->jobs_mu);
        /* Every job ends by posting exactly one message that carries this
         * job's reference back to the loop. */
        r->job(s, r);
    }
}

void srv_reply(srv_server *s, srv_req *r, int status, const char *ctype, char *body)
{
    srv_msg m = {.kind = SRV_MSG_REPLY, .req = r, .status = status, .ctype = ctype, .body = body};
    srv_post(s, &m);
}

char *srv_error_json(int status, const char *type, const char *param, const char *msg)
{
    srv_buf b = {0};
    srv_buf_str(&b, "{\"error\":{\"message\":");
    srv_buf_json_str(&b, msg, strlen(msg));
    srv_buf_str(&b, ",\"type\":");
    srv_buf_json_str(&b, type, strlen(type));
    srv_buf_str(&b, ",\"param\":");
    if (param)
        srv_buf_json_str(&b, param, strlen(param));
    else
        srv_buf_str(&b, "null");
    srv_buf_printf(&b, ",\"code\":%d}}", status);
    return b.p;
}

void srv_reply_error(srv_server *s, srv_req *r, int status, const char *type, const char *param,
                     const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_msg m = {.kind = SRV_MSG_REPLY,
                 .req = r,
                 .status = status,
                 .ctype = "application/json",
                 .body = srv_error_json(status, type, param, msg)};
    srv_post(s, &m);
}

/* ---- engine thread ---- */

static realm_status on_sample(void *user, const float *logits, int32_t n_vocab, int32_t *out,
                              realm_error *err)
{
    srv_req *r = user;
    if (!r->sampler && realm_sampler_init(n_vocab, &r->gen.sp, &r->sampler, err)) return err->status;
    if (realm_sampler_sample(r->sampler, logits, NULL, out, err)) return err->status;
    return realm_sampler_accept(r->sampler, *out, err);
}

static void on_event(void *user, const realm_engine_event *ev)
{
    srv_req *r = user;
    if (ev->finish != REALM_ENGINE_FINISH_NONE) {
        realm_sampler_free(r->sampler);
        r->sampler = NULL;
        if (ev->finish == REALM_ENGINE_FINISH_ERROR)
            snprintf(r->engine_error, sizeof r->engine_error, "%s", ev->error ? ev->error : "engine error");
    }
    srv_msg m = {.kind = SRV_MSG_EVENT, .req = r, .ev = *ev};
    m.ev.error = NULL;
    inbox_add(r->srv, &m);
    atomic_store(&r->srv->engine_posted, true);
}

bool srv_submit(srv_server *s, srv_req *r)
{
    realm_engine_request q = {
        .tenant = (uint32_t)r->tenant.id,
        .tenant_salt = r->tenant.salt,
        .tenant_max_running = r->tenant.max_running,
        .prompt = r->gen.prompt.ids,
        .n_prompt = (int32_t)r->gen.prompt.n,
        .max_tokens = r->gen.max_tokens,
        .stop = s->stop_ids,
        .n_stop = s->n_stop_ids,
        .sample = r->gen.greedy ? NULL : on_sample,
        .on_event = on_event,
        .user = r,
    };
    realm_error err = {0};
    realm_engine_seq_id seq = 0;
    atomic_fetch_add(&r->refs, 1); /* the engine's reference */
    r->t_submit = srv_now();
    r->n_prompt = (int32_t)r->gen.prompt.n; /* before submit: the loop may read it at the end */
    if (realm_engine_submit(s->engine, &q, &seq, &err)) {
        atomic_fetch_sub(&r->refs, 1);
        srv_quota_release(s, r);
        if (err.status == REALM_E_BUSY)
            srv_reply_error(s, r, 503, "server_overloaded", NULL, "the server is busy: %s", err.message);
        else
            srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", err.message);
        return false;
    }
    realm_token_vec_free(&r->gen.prompt); /* the engine copied it */
    srv_msg m = {.kind = SRV_MSG_REPLY, .req = r, .status = 0};
    m.ev.seq = seq;
    srv_post(s, &m);
    return true;
}

static void *engine_main(void *arg)
{
    srv_server *s = arg;
    int64_t last_decode = 0;
    while (!atomic_load(&s->engine_stop)) {
        if (realm_engine_idle(s->engine)) {
            realm_engine_wait(s->engine, 200);
            if (s->draining) lws_cancel_service(s->ctx); /* lets the loop check its deadline */
            continue;
        }
        int32_t rows = 0;
        realm_error err = {0};
        if (realm_engine_step(s->engine, &rows, &err))
            fprintf(stderr, "realm serve: engine step failed: %s\n", err.message);
        realm_engine_stats st = realm_engine_stats_get(s->engine);
        int32_t dec = (int32_t)(st.decode_rows - last_decode);
        last_decode = st.decode_rows;
        if (dec > atomic_load(&s->max_batch_seqs_pub)) atomic_store(&s->max_batch_seqs_pub, dec);
        if (atomic_exchange(&s->engine_posted, false)) lws_cancel_service(s->ctx);
        if (rows == 0) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return NULL;
}

/* ---- start-up ---- */

void realm_server_opts_default(realm_server_opts *o)
{
    *o = (realm_server_opts){.host = "127.0.0.1", .port = 8080};
}

static void on_signal(int sig)
{
    g_signal = sig;
    if (g_ctx) lws_cancel_service(g_ctx); /* writes to a pipe: async-signal-safe */
}

static realm_status load_model(srv_server *s, realm_error *err)
{
    const realm_server_opts *o = &s->opts;
    realm_backend_options bo = {.n_threads = o->threads, .mem_budget_bytes = o->gpu_mem_bytes};
    if (realm_gguf_open(o->model_path, &s->g, err) ||
        realm_tokenizer_init_gguf(s->g, &s->tok, err) ||
        realm_backend_create(o->device ? o->device : "auto", &bo, &s->be, err))
        return err->status;
    realm_log(REALM_LOG_INFO, "serve: backend %s", s->be->ops->name);
    realm_gguf_str tmpl = {0};
    (void)realm_gguf_get_str(s->g, "tokenizer.chat_template", &tmpl, NULL);
    char names[2][128] = {{0}};
    const realm_special_token which[2] = {REALM_SPECIAL_BOS, REALM_SPECIAL_EOS};
    for (int i = 0; i < 2; i++) {
        const char *p;
        size_t len;
        int32_t id = realm_tokenizer_special(s->tok, which[i]);
        if (id >= 0 && !realm_tokenizer_token_text(s->tok, id, &p, &len) && len < sizeof names[i])
            memcpy(names[i], p, len);
    }
    if (realm_chat_template_init(tmpl.len ? tmpl.ptr : NULL, tmpl.len, names[0][0] ? names[0] : NULL,
                                 names[1][0] ? names[1] : NULL, &s->tmpl, err))
        return err->status;
    int32_t max_running = o->max_running > 0 ? o->max_running : 64;
    realm_model_params mp = {.max_rows = 512, .max_ctx = o->max_ctx > 0 ? o->max_ctx : 2048,
                             .max_logit_rows = max_running};
    if (realm_model_load(s->g, s->be, &mp, &s->model, err)) return err->status;
    const realm_hparams *hp = realm_model_hparams(s->model);
    s->n_vocab = hp->n_vocab;
    s->max_ctx = mp.max_ctx;
    int32_t kv_tokens = o->kv_tokens > 0 ? o->kv_tokens : 16384;
    realm_engine_params ep = {.n_kv_blocks = (kv_tokens + 15) / 16,
                              .block_size = 16,
                              .max_running = max_running,
                              .max_queued = o->max_queued > 0 ? o->max_queued : 1024,
                              .max_tenants = 256,
                              .kv_type = (realm_kv_choice)o->kv_type};
    if (realm_engine_create(s->model, &ep, &s->engine, err)) return err->status;
    int32_t eos = realm_tokenizer_special(s->tok, REALM_SPECIAL_EOS),
            eot = realm_tokenizer_special(s->tok, REALM_SPECIAL_EOT);
    if (eos >= 0) s->stop_ids[s->n_stop_ids++] = eos;
    if (eot >= 0 && eot != eos) s->stop_ids[s->n_stop_ids++] = eot;
    if (o->model_name) {
        snprintf(s->model_name, sizeof s->model_name, "%s", o->model_name);
    } else {
        const char *base = strrchr(o->model_path, '/');
        base = base ? base + 1 : o->model_path;
        size_t n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
        snprintf(s->model_name, sizeof s->model_name, "%.*s", (int)n, base);
    }
    srv_buf mj = {0};
    if (srv_buf_json_str(&mj, s->model_name, strlen(s->model_name)) || mj.n >= sizeof s->model_json)
        return realm_error_set(err, REALM_E_INVALID, "bad model name");
    memcpy(s->model_json, mj.p, mj.n + 1);
    srv_buf_free(&mj);
    return REALM_OK;
}

static realm_status start_lws(srv_server *s, realm_error *err)
{
    static const struct lws_protocols protocols[] = {
        {"realm", srv_lws_callback, sizeof(srv_conn), 65536, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0}};
    struct lws_context_creation_info info = {0};
    info.port = s->opts.port;
    info.iface = s->opts.host;
    info.protocols = protocols;
    info.user = s;
    info.count_threads = 1;
    info.max_http_header_pool = 4096; /* one per in-flight request: SSE streams hold theirs */
    info.timeout_secs = 60;
    info.keepalive_timeout = 30;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    lws_set_log_level(LLL_ERR, NULL);
    s->ctx = lws_create_context(&info);
    if (!s->ctx)
        return realm_error_set(err, REALM_E_IO, "cannot listen on %s:%d (in use, or a bad address?)",
                               s->opts.host, s->opts.port);
    s->vhost = lws_get_vhost_by_name(s->ctx, "default");
    return REALM_OK;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Releases what the loop and threads still hold after they stopped. */
static void discard_pending(srv_server *s)
{
    for (size_t i = 0; i < s->jobs_n; i++)
        srv_req_unref(s->jobs[(s->jobs_head + i) % s->jobs_cap]);
    s->jobs_n = 0;
    for (size_t i = 0; i < s->inbox_n; i++) {
        srv_msg *m = &s->inbox[i];
        if (m->kind == SRV_MSG_EVENT && m->ev.finish == REALM_ENGINE_FINISH_NONE) continue;
        free(m->body);
        srv_req_unref(m->req);
    }
    s->inbox_n = 0;
}

realm_status realm_server_run(const realm_server_opts *o, realm_error *err)
{
    srv_server *s = calloc(1, sizeof *s);
    if (!s) return realm_error_set(err, REALM_E_NOMEM, "out of memory");
    s->opts = *o;
    if (!s->opts.workers) s->opts.workers = 2;
    if (!s->opts.max_body_bytes) s->opts.max_body_bytes = 1 << 20;
    if (!s->opts.drain_timeout_ms) s->opts.drain_timeout_ms = 30000;
    pthread_mutex_init(&s->inbox_mu, NULL);
    pthread_mutex_init(&s->jobs_mu, NULL);
    pthread_cond_init(&s->jobs_cv, NULL);
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    realm_status st = load_model(s, err);
    if (!st) st = srv_auth_open(s, err);
    if (!st) st = start_lws(s, err);
    if (st) goto out;
    g_ctx = s->ctx;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    s->workers = calloc((size_t)s->opts.workers, sizeof *s->workers);
    for (int i = 0; s->workers && i < s->opts.workers; i++)
        if (!pthread_create(&s->workers[i], NULL, worker_main, s)) s->n_workers++;
    if (!s->n_workers || pthread_create(&s->engine_thread, NULL, engine_main, s)) {
        st = realm_error_set(err, REALM_E_NOMEM, "cannot start threads");
        goto out;
    }
    printf("realm serve: listening on http://%s:%d (model %s)\n", s->opts.host,
           lws_get_vhost_listen_port(s->vhost), s->model_name);
    fflush(stdout);

    double deadline = 0, quiet_since = 0;
    for (;;) {
        lws_service(s->ctx, 0);
        if (g_signal && !s->draining) {
            s->draining = true;
            deadline = srv_now() + s->opts.drain_timeout_ms / 1000.0;
            fprintf(stderr, "realm serve: draining %lld in-flight request(s)\n", (long long)s->in_flight);
        }
        if (!s->draining) continue;
        /* Quiet for 200 ms after the last request ended: its bytes are out. */
        if (s->in_flight == 0) {
            if (!quiet_since) quiet_since = srv_now();
            if (srv_now() - quiet_since > 0.2) break;
            lws_cancel_service(s->ctx);
        } else {
            quiet_since = 0;
        }
        if (srv_now() > deadline) {
            fprintf(stderr, "realm serve: drain timed out with %lld request(s) in flight\n",
                    (long long)s->in_flight);
            break;
        }
    }
    fprintf(stderr, "realm serve: stopped\n");
out:
    pthread_mutex_lock(&s->jobs_mu);
    s->jobs_stop = true;
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    if (s->n_workers) {
        atomic_store(&s->engine_stop, true);
        pthread_join(s->engine_thread, NULL);
    }
    g_ctx = NULL;
    if (s->ctx) lws_context_destroy(s->ctx);
    discard_pending(s);
    free(s->workers);
    free(s->jobs);
    free(s->inbox);
    free(s->inbox_spare);
    srv_auth_close(s);
    realm_engine_free(s->engine);
    realm_model_free(s->model);
    realm_chat_template_free(s->tmpl);
    realm_tokenizer_free(s->tok);
    realm_backend_free(s->be);
    realm_gguf_close(s->g);
    pthread_mutex_destroy(&s->inbox_mu);
    pthread_mutex_destroy(&s->jobs_mu);
    pthread_cond_destroy(&s->jobs_cv);
    free(s);
    return st;
}
