/*
 * realm serve — the OpenAI-compatible HTTP/SSE + WebSocket server
 * (server/server.h). Parses flags, reads the admin key from the environment
 * (never from argv, where `ps` would show it) and runs until SIGTERM.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "server/server.h"

#define USAGE                                                                                      \
    "usage: realm serve [--model PATH] --db PATH [--host 127.0.0.1] [--port 8080]\n"               \
    "         [--device auto|cpu|cuda] [--gpu-mem-mb N] [--threads N] [--workers N]\n"             \
    "         [--admin-key-env VAR] [--model-name NAME]\n"                                         \
    "         [--max-ctx N] [--max-running N] [--max-queued N] [--kv-tokens N]\n"                  \
    "         [--kv-type auto|f16|f32]\n"                                                          \
    "         [--max-body-bytes N] [--drain-timeout-ms N]\n"                                       \
    "  --port 0 picks a free port; the chosen one is printed on stdout.\n"                         \
    "  --device auto (default): the GPU where one is present, else the CPU.\n"                     \
    "  --gpu-mem-mb: device memory reserved at start-up (default 90% of what is free).\n"          \
    "  --kv-type: the KV cache's elements; auto (default): f16 on the GPU (half the memory),\n"    \
    "    f32 on the CPU (exact).\n"                                                                \
    "  --admin-key-env VAR: the admin API key is read from $VAR (default REALM_ADMIN_KEY;\n"       \
    "    the admin API is off when it is unset).\n"                                                \
    "  without --model: $REALM_MODEL_PATH, else "                                                  \
    "~/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf\n"

int realm_cmd_serve(int argc, char **argv)
{
    realm_server_opts o;
    realm_server_opts_default(&o);
    const char *admin_env = "REALM_ADMIN_KEY";
    static char default_model[1024];
    int32_t port = o.port, threads = 0, workers = 0, gpu_mem_mb = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "realm serve: %s needs a value\n%s", a, USAGE);
            return 2;
        }
        bool ok = true;
        if (!strcmp(a, "--model") || !strcmp(a, "-m")) o.model_path = v;
        else if (!strcmp(a, "--db")) o.db_path = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--device"))
            o.device = v;
        else if (!strcmp(a, "--gpu-mem-mb"))
            ok = realm_cli_int(v, 1, 1 << 30, &gpu_mem_mb);
        else if (!strcmp(a, "--model-name")) o.model_name = v;
        else if (!strcmp(a, "--admin-key-env")) admin_env = v;
        else if (!strcmp(a, "--port"))
            ok = realm_cli_int(v, 0, 65535, &port);
        else if (!strcmp(a, "--threads"))
            ok = realm_cli_int(v, 0, 1024, &threads);
        else if (!strcmp(a, "--workers"))
            ok = realm_cli_int(v, 0, 256, &workers);
        else if (!strcmp(a, "--max-ctx"))
            ok = realm_cli_int(v, 16, 1 << 20, &o.max_ctx);
        else if (!strcmp(a, "--max-running"))
            ok = realm_cli_int(v, 1, 4096, &o.max_running);
        else if (!strcmp(a, "--max-queued"))
            ok = realm_cli_int(v, 1, 1 << 20, &o.max_queued);
        else if (!strcmp(a, "--kv-tokens"))
            ok = realm_cli_int(v, 16, 1 << 26, &o.kv_tokens);
        else if (!strcmp(a, "--kv-type")) {
            realm_kv_choice c;
            ok = realm_cli_kv_type(v, &c);
            o.kv_type = (int)c;
        } else if (!strcmp(a, "--max-body-bytes"))
            ok = realm_cli_int(v, 1024, 1 << 30, &o.max_body_bytes);
        else if (!strcmp(a, "--drain-timeout-ms"))
            ok = realm_cli_int(v, 1, 1 << 30, &o.drain_timeout_ms);
        else {
            fprintf(stderr, "realm serve: unknown option %s\n%s", a, USAGE);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "realm serve: bad value '%s' for %s\n", v, a);
            return 2;
        }
        i++;
    }
    o.port = port;
    o.threads = threads;
    o.workers = workers;
    o.gpu_mem_bytes = (size_t)gpu_mem_mb << 20;
    if (!o.db_path) {
        fprintf(stderr, "realm serve: --db PATH is required (create tenants with `realm tenant`)\n%s", USAGE);
        return 2;
    }
    if (!o.model_path) o.model_path = getenv("REALM_MODEL_PATH");
    if (!o.model_path) {
        const char *home = getenv("HOME");
        snprintf(default_model, sizeof default_model, "%s/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                 home ? home : ".");
        o.model_path = default_model;
    }
    const char *k = getenv(admin_env);
    if (k && *k) o.admin_key = k;
    realm_error err = {0};
    if (realm_server_run(&o, &err)) {
        fprintf(stderr, "realm serve: %s\n", err.message);
        return 1;
    }
    return 0;
}
