/*
 * server/server.h — `realm serve`: an OpenAI-compatible HTTP + SSE and
 * WebSocket front end over one model and one continuous-batching engine.
 *
 * Threads (the event loop never waits on compute):
 *   - the loop thread (the caller of realm_server_run) runs libwebsockets: it
 *     reads requests, writes responses and SSE/WebSocket frames, and drains
 *     the inbox that the other threads post to (woken by lws_cancel_service);
 *   - worker threads authenticate, check quotas, parse and validate JSON,
 *     render chat templates, tokenize and submit to the engine, and commit
 *     usage to the ledger;
 *   - the engine thread steps the engine and posts every token to the inbox,
 *     waking the loop once per step.
 *
 * Shutdown: SIGTERM or SIGINT stops accepting requests (new ones get 503),
 * lets in-flight requests finish (up to drain_timeout_ms, then cancels them),
 * and returns 0.
 *
 * Errors: realm_server_run returns non-zero when start-up fails (model,
 * database, port), with the reason in err; a client's bad request is an
 * error reply to that client only.
 */
#ifndef REALM_SERVER_SERVER_H
#define REALM_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct realm_server_opts {
    const char *model_path;
    const char *model_name; /* id in /v1/models; NULL: the file's base name without .gguf */
    const char *db_path;    /* tenants database (tenants/tenants.h) */
    const char *host;       /* listen address */
    int port;               /* 0: any free port (printed on stdout) */
    const char *device;     /* backend (backend/registry.h): cpu, cuda, auto; NULL: auto */
    size_t gpu_mem_bytes;   /* cuda: device memory reserved at start-up; 0: the backend's default */
    int threads;            /* compute threads of the CPU backend; 0: all cores */
    int workers;            /* parse/tokenize/ledger threads; 0: 2 */
    const char *admin_key;  /* enables the admin API when non-NULL */
    int32_t max_ctx;        /* longest sequence; 0: min(model, 2048) */
    int32_t max_running;    /* sequences per step; 0: 64 */
    int32_t max_queued;     /* waiting sequences before 503; 0: 1024 */
    int32_t kv_tokens;      /* KV pool size in positions; 0: 16384 */
    int kv_type;            /* realm_kv_choice (backend/backend.h); 0: the backend's */
    int32_t max_body_bytes; /* request body cap (413 beyond); 0: 1 MiB */
    int32_t drain_timeout_ms; /* SIGTERM grace period; 0: 30 s */
} realm_server_opts;

void realm_server_opts_default(realm_server_opts *o);

/* Start, serve until SIGTERM/SIGINT, drain, stop. Prints
 * "realm serve: listening on http://HOST:PORT" on stdout once ready. */
realm_status realm_server_run(const realm_server_opts *o, realm_error *err);

#endif
