/*
 * server/metrics.c — Prometheus text exposition (format 0.0.4) of per-tenant
 * request, token and latency figures and the engine's batching and KV-cache
 * state. Per-tenant series are updated and rendered on the loop thread only,
 * so they need no locks; engine figures come from realm_engine_stats_get.
 *
 * Latencies: queue = request received → submitted to the engine (auth,
 * parsing, tokenization and the worker queue); time to first token and
 * inter-token gaps as the loop sees the tokens (one wake-up per engine step).
 */
#include <stdio.h>
#include <string.h>

#include "server/server_impl.h"

static const double g_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5,   1,      2.5,   5,    10,    30,   60};
#define N_BOUNDS (sizeof g_bounds / sizeof g_bounds[0])
_Static_assert(N_BOUNDS + 1 <= sizeof ((srv_hist *)0)->bucket / sizeof(int64_t), "histogram buckets");

void srv_hist_observe(srv_hist *h, double v)
{
    size_t i = 0;
    while (i < N_BOUNDS && v > g_bounds[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

srv_tenant_metrics *srv_metrics_tenant(srv_server *s, const srv_tenant *t)
{
    if (t->id <= 0) return NULL;
    for (int i = 0; i < s->n_tm; i++)
        if (s->tm[i].tenant_id == t->id) return &s->tm[i];
    if (s->n_tm == SRV_MAX_TENANT_METRICS) return NULL; /* beyond: not broken down */
    srv_tenant_metrics *m = &s->tm[s->n_tm++];
    *m = (srv_tenant_metrics){.tenant_id = t->id};
    /* Label values escape backslash and double quote (names have no control characters). */
    size_t o = 0;
    for (const char *p = t->name; *p && o + 2 < sizeof m->name; p++) {
        if (*p == '"' || *p == '\\') m->name[o++] = '\\';
        m->name[o++] = *p;
    }
    m->name[o] = '\0';
    return m;
}

static void head(srv_buf *b, const char *name, const char *type, const char *help)
{
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void hist(srv_buf *b, const char *name, const char *tenant, const srv_hist *h)
{
    int64_t cum = 0;
    for (size_t i = 0; i <= N_BOUNDS; i++) {
        cum += h->bucket[i];
        if (i < N_BOUNDS)
            srv_buf_printf(b, "%s_bucket{tenant=\"%s\",le=\"%g\"} %lld\n", name, tenant, g_bounds[i], (long long)cum);
        else
            srv_buf_printf(b, "%s_bucket{tenant=\"%s\",le=\"+Inf\"} %lld\n", name, tenant, (long long)cum);
    }
    srv_buf_printf(b, "%s_sum{tenant=\"%s\"} %.6f\n%s_count{tenant=\"%s\"} %lld\n", name, tenant, h->sum,
                   name, tenant, (long long)h->count);
}

typedef struct counter_col {
    const char *name, *help;
    size_t off;
} counter_col;

void srv_metrics_render(srv_server *s, srv_buf *b)
{
    static const char *api_names[SRV_API_COUNT] = {"chat", "completions", "ws"};
    head(b, "realm_backend_info", "gauge", "The backend the model runs on (--device), as a label.");
    srv_buf_printf(b, "realm_backend_info{backend=\"%s\"} 1\n", s->be->ops->name);
    head(b, "realm_requests_total", "counter", "Generation requests accepted, by tenant and API.");
    for (int i = 0; i < s->n_tm; i++)
        for (int a = 0; a < SRV_API_COUNT; a++)
            srv_buf_printf(b, "realm_requests_total{tenant=\"%s\",api=\"%s\"} %lld\n", s->tm[i].name,
                           api_names[a], (long long)s->tm[i].requests[a]);
    static const counter_col cols[] = {
        {"realm_prompt_tokens_total", "Prompt tokens of finished requests.", offsetof(srv_tenant_metrics, prompt_tokens)},
        {"realm_completion_tokens_total", "Generated tokens of finished requests.", offsetof(srv_tenant_metrics, completion_tokens)},
        {"realm_prompt_cached_tokens_total", "Prompt tokens served by the prefix cache.", offsetof(srv_tenant_metrics, cached_tokens)},
    };
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
        head(b, cols[c].name, "counter", cols[c].help);
        for (int i = 0; i < s->n_tm; i++)
            srv_buf_printf(b, "%s{tenant=\"%s\"} %lld\n", cols[c].name, s->tm[i].name,
                           (long long)*(const int64_t *)((const char *)&s->tm[i] + cols[c].off));
    }
    head(b, "realm_requests_in_flight", "gauge", "Generations submitted and not finished.");
    for (int i = 0; i < s->n_tm; i++)
        srv_buf_printf(b, "realm_requests_in_flight{tenant=\"%s\"} %d\n", s->tm[i].name, s->tm[i].in_flight);
    head(b, "realm_queue_seconds", "histogram", "Request received to submitted to the engine.");
    for (int i = 0; i < s->n_tm; i++) hist(b, "realm_queue_seconds", s->tm[i].name, &s->tm[i].queue_s);
    head(b, "realm_time_to_first_token_seconds", "histogram", "Request received to first token.");
    for (int i = 0; i < s->n_tm; i++)
        hist(b, "realm_time_to_first_token_seconds", s->tm[i].name, &s->tm[i].ttft_s);
    head(b, "realm_inter_token_seconds", "histogram", "Gap between consecutive tokens of a stream.");
    for (int i = 0; i < s->n_tm; i++) hist(b, "realm_inter_token_seconds", s->tm[i].name, &s->tm[i].itl_s);

    realm_engine_stats st = realm_engine_stats_get(s->engine);
    const struct {
        const char *name, *type, *help;
        long long v;
    } eng[] = {
        {"realm_running_sequences", "gauge", "Sequences in the running batch.", st.n_running},
        {"realm_waiting_sequences", "gauge", "Sequences queued for admission.", st.n_queued},
        {"realm_kv_blocks_total", "gauge", "KV cache blocks in the pool.", st.kv_blocks},
        {"realm_kv_blocks_used", "gauge", "KV cache blocks held by sequences.", st.kv_blocks - st.kv_free - st.kv_cached},
        {"realm_kv_blocks_cached", "gauge", "Free KV blocks kept as prefix cache.", st.kv_cached},
        {"realm_prefix_cache_hits_total", "counter", "Prompt blocks served by the prefix cache.", st.prefix_hit_blocks},
        {"realm_prefix_cache_misses_total", "counter", "Prompt blocks computed.", st.prefix_miss_blocks},
        {"realm_engine_steps_total", "counter", "Forward passes run.", st.steps},
        {"realm_engine_rows_total", "counter", "Rows (tokens) in all forward passes.", st.rows},
        {"realm_engine_decode_rows_total", "counter", "Decode rows in all forward passes.", st.decode_rows},
        {"realm_engine_tokens_generated_total", "counter", "Tokens sampled.", st.tokens_generated},
        {"realm_engine_preemptions_total", "counter", "Sequences preempted for KV space.", st.preemptions},
        {"realm_engine_max_decode_batch", "gauge", "Most sequences decoded in one forward pass.",
         atomic_load(&s->max_batch_seqs_pub)},
        {"realm_http_client_errors_total", "counter", "4xx replies.", s->http_errors[4]},
        {"realm_http_server_errors_total", "counter", "5xx replies.", s->http_errors[5]},
    };
    for (size_t i = 0; i < sizeof eng / sizeof eng[0]; i++) {
        head(b, eng[i].name, eng[i].type, eng[i].help);
        srv_buf_printf(b, "%s %lld\n", eng[i].name, eng[i].v);
    }
}
