/* Quota admission in memory: per tenant a requests bucket (capacity rpm) and a
 * tokens bucket (capacity tpm), both refilled continuously at capacity/60 s,
 * plus an in-flight count. Restarts empty (full buckets) with the process;
 * only the limits themselves are durable. */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "tenants/tenants_impl.h"

/* The state of tenant_id, created with full buckets on first use. Called with
 * t->qmu held; NULL on allocation failure. */
static realm__tquota *quota_state(realm_tenants_t *t, int64_t tenant_id, int64_t now_ms)
{
    size_t lo = 0, hi = t->n_quotas;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->quotas[mid].tenant_id < tenant_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n_quotas && t->quotas[lo].tenant_id == tenant_id) return &t->quotas[lo];
    if (t->n_quotas == t->cap_quotas) {
        size_t nc = t->cap_quotas ? t->cap_quotas * 2 : 16;
        realm__tquota *nq = realm_realloc_array(t->quotas, nc, sizeof *nq);
        if (!nq) return NULL;
        t->quotas = nq;
        t->cap_quotas = nc;
    }
    memmove(&t->quotas[lo + 1], &t->quotas[lo], (t->n_quotas - lo) * sizeof *t->quotas);
    t->n_quotas++;
    realm__tquota *q = &t->quotas[lo];
    memset(q, 0, sizeof *q);
    q->tenant_id = tenant_id;
    q->last_ms = now_ms;
    return q;
}

/* Bring one bucket up to date: refill for the elapsed time and follow a
 * changed capacity (a new limit starts full; a lowered one clamps). */
static void refill(double *level, int64_t *cap_seen, int64_t cap, int64_t elapsed_ms)
{
    if (cap != *cap_seen) {
        *level = *cap_seen == 0 ? (double)cap : fmin(*level, (double)cap);
        *cap_seen = cap;
    }
    if (cap > 0) *level = fmin((double)cap, *level + (double)elapsed_ms * (double)cap / 60000.0);
}

/* Seconds until a bucket of capacity cap holds need, rounded up, at least 1. */
static int32_t wait_s(double need, double level, int64_t cap)
{
    double s = ceil((need - level) * 60.0 / (double)cap);
    if (!(s >= 1)) return 1;
    return s > 3600 ? 3600 : (int32_t)s;
}

realm_status realm_tenants_admit(realm_tenants_t *t, int64_t tenant_id, int64_t est_tokens,
                                 realm_quota_ticket *ticket, realm_error *err)
{
    memset(ticket, 0, sizeof *ticket);
    ticket->tenant_id = tenant_id;
    ticket->verdict = REALM_QUOTA_OK;
    if (est_tokens < 0) est_tokens = 0;
    /* Limits read fresh, so a change made by another process (the CLI)
     * applies to the next request. */
    realm_tenant_info info;
    realm_status s = realm_tenants_get(t, tenant_id, &info, err);
    if (s != REALM_OK) return s;
    if (!info.enabled) {
        ticket->verdict = REALM_QUOTA_DISABLED;
        return REALM_OK;
    }
    const realm_tenant_quotas *lim = &info.quotas;
    int64_t now = realm__tenants_clock_ms();

    pthread_mutex_lock(&t->qmu);
    realm__tquota *q = quota_state(t, tenant_id, now);
    if (!q) {
        pthread_mutex_unlock(&t->qmu);
        return realm_error_set(err, REALM_E_NOMEM, "tenants: out of memory for quota state");
    }
    int64_t elapsed = now > q->last_ms ? now - q->last_ms : 0;
    q->last_ms = now;
    refill(&q->req_level, &q->rpm, lim->requests_per_min, elapsed);
    refill(&q->tok_level, &q->tpm, lim->tokens_per_min, elapsed);
    /* A request larger than a whole minute's budget waits for a full bucket
     * rather than being refused forever. */
    double need = lim->tokens_per_min > 0 && est_tokens > lim->tokens_per_min
                      ? (double)lim->tokens_per_min
                      : (double)est_tokens;
    if (lim->max_concurrent > 0 && q->in_flight >= lim->max_concurrent) {
        ticket->verdict = REALM_QUOTA_CONCURRENCY;
        ticket->retry_after_s = 1;
    } else if (lim->requests_per_min > 0 && q->req_level < 1.0) {
        ticket->verdict = REALM_QUOTA_REQUESTS;
        ticket->retry_after_s = wait_s(1.0, q->req_level, lim->requests_per_min);
    } else if (lim->tokens_per_min > 0 && q->tok_level < need) {
        ticket->verdict = REALM_QUOTA_TOKENS;
        ticket->retry_after_s = wait_s(need, q->tok_level, lim->tokens_per_min);
    } else {
        if (lim->requests_per_min > 0) q->req_level -= 1.0;
        if (lim->tokens_per_min > 0) q->tok_level -= (double)est_tokens;
        q->in_flight++;
        ticket->reserved_tokens = est_tokens;
        ticket->held = true;
    }
    pthread_mutex_unlock(&t->qmu);
    return REALM_OK;
}

void realm_tenants_release(realm_tenants_t *t, realm_quota_ticket *ticket, int64_t actual_tokens)
{
    if (!ticket || !ticket->held) return;
    ticket->held = false;
    if (actual_tokens < 0) actual_tokens = 0;
    pthread_mutex_lock(&t->qmu);
    /* The state exists: admit created it and states are never removed. */
    realm__tquota *q = quota_state(t, ticket->tenant_id, realm__tenants_clock_ms());
    if (q) {
        if (q->in_flight > 0) q->in_flight--;
        /* Settle the estimate against what was really used. */
        if (q->tpm > 0)
            q->tok_level = fmin((double)q->tpm,
                                q->tok_level + (double)(ticket->reserved_tokens - actual_tokens));
    }
    pthread_mutex_unlock(&t->qmu);
}

int realm_tenants_auth_http_status(realm_auth_result r)
{
    static const int http[REALM_AUTH_COUNT] = {200, 401, 403};
    return (unsigned)r < REALM_AUTH_COUNT ? http[r] : 500;
}

int realm_tenants_quota_http_status(realm_quota_verdict v)
{
    static const int http[REALM_QUOTA_COUNT] = {200, 429, 429, 429, 403};
    return (unsigned)v < REALM_QUOTA_COUNT ? http[v] : 500;
}

const char *realm_tenants_quota_verdict_name(realm_quota_verdict v)
{
    static const char *const names[REALM_QUOTA_COUNT] = {"ok", "requests_per_min", "tokens_per_min",
                                                         "max_concurrent", "tenant_disabled"};
    return (unsigned)v < REALM_QUOTA_COUNT ? names[v] : "unknown";
}
