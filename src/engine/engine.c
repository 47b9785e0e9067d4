/* engine/engine.c — create/free and the thread-safe side of the engine:
 * submit, cancel, idle, wait, stats. The step itself is in scheduler.c. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/parallel.h"
#include "engine/engine_impl.h"

static realm_engine_params resolve(const realm_model_t *m, const realm_engine_params *in)
{
    realm_engine_params p = in ? *in : (realm_engine_params){0};
    realm_model_params mp = realm_model_params_get(m);
    if (p.block_size <= 0) p.block_size = 16;
    if (p.max_batch_tokens <= 0 || p.max_batch_tokens > mp.max_rows)
        p.max_batch_tokens = mp.max_rows;
    if (p.max_running <= 0) p.max_running = 64;
    if (p.max_running > mp.max_logit_rows) p.max_running = mp.max_logit_rows;
    if (p.max_queued <= 0) p.max_queued = 256;
    if (p.max_tenants <= 0) p.max_tenants = 64;
    if (p.tenant_max_running <= 0 || p.tenant_max_running > p.max_running)
        p.tenant_max_running = p.max_running;
    if (p.vtc_w_in <= 0 && p.vtc_w_out <= 0) {
        p.vtc_w_in = 1;
        p.vtc_w_out = 2;
    }
    if (p.sample_threads <= 0) p.sample_threads = realm_cpu_count();
    int32_t per_seq = (mp.max_ctx + p.block_size - 1) / p.block_size;
    if (p.n_kv_blocks <= 0) p.n_kv_blocks = per_seq * p.max_running;
    return p;
}

realm_status realm_engine_create(realm_model_t *m, const realm_engine_params *params,
                                 realm_engine_t **out, realm_error *err)
{
    *out = NULL;
    realm_engine_t *e = realm_calloc(1, sizeof *e);
    if (!e) return realm_error_set(err, REALM_E_NOMEM, "engine: out of memory");
    e->m = m;
    e->p = resolve(m, params);
    const realm_hparams *hp = realm_model_hparams(m);
    e->n_vocab = hp->n_vocab;
    e->max_ctx = realm_model_params_get(m).max_ctx;
    e->block_size = e->p.block_size;
    e->max_blocks = (e->max_ctx + e->block_size - 1) / e->block_size;
    e->n_slots = e->p.max_running + e->p.max_queued;
    realm_status st;
    if (pthread_mutex_init(&e->mu, NULL)) {
        realm_free(e);
        return realm_error_set(err, REALM_E_INTERNAL, "engine: cannot create a mutex");
    }
    if (pthread_cond_init(&e->cv, NULL)) {
        pthread_mutex_destroy(&e->mu);
        realm_free(e);
        return realm_error_set(err, REALM_E_INTERNAL, "engine: cannot create a condition");
    }
    if (e->p.n_kv_blocks < e->max_blocks) {
        st = realm_error_set(err, REALM_E_INVALID,
                             "engine: a KV pool of %d blocks cannot hold one sequence of the "
                             "model's context (%d positions = %d blocks)",
                             e->p.n_kv_blocks, e->max_ctx, e->max_blocks);
        goto fail;
    }
    if ((st = realm_kv_pages_init(realm_model_backend(m), hp, e->p.n_kv_blocks, e->block_size,
                                  realm_kv_type_pick(realm_model_backend(m), e->p.kv_type), &e->kv,
                                  err)))
        goto fail;
    size_t ns = (size_t)e->n_slots, nr = (size_t)e->p.max_running,
           nb = (size_t)e->p.max_batch_tokens;
    e->seqs = realm_calloc(ns, sizeof *e->seqs);
    e->tok_store = realm_calloc(ns * (size_t)e->max_ctx, sizeof *e->tok_store);
    e->blk_store = realm_calloc(ns * (size_t)e->max_blocks, sizeof *e->blk_store);
    e->key_store = realm_calloc(ns * (size_t)e->max_blocks, sizeof *e->key_store);
    e->tenants = realm_calloc((size_t)e->p.max_tenants, sizeof *e->tenants);
    e->running = realm_calloc(nr, sizeof *e->running);
    e->scratch = realm_calloc(ns, sizeof *e->scratch);
    e->b_token = realm_calloc(nb, sizeof *e->b_token);
    e->b_pos = realm_calloc(nb, sizeof *e->b_pos);
    e->b_seq = realm_calloc(nb, sizeof *e->b_seq);
    e->b_want = realm_calloc(nb, sizeof *e->b_want);
    e->b_seqs = realm_calloc(nr, sizeof *e->b_seqs);
    e->b_slot = realm_calloc(nr, sizeof *e->b_slot);
    e->b_chunk = realm_calloc(nr, sizeof *e->b_chunk);
    e->b_scheduled = realm_calloc(ns, sizeof *e->b_scheduled);
    e->logits = realm_model_logits_alloc(e->m, (int32_t)nr);
    e->b_logit = realm_calloc(nr, sizeof *e->b_logit);
    e->b_tok = realm_calloc(nr, sizeof *e->b_tok);
    e->b_err = realm_calloc(nr, sizeof *e->b_err);
    if (!e->seqs || !e->tok_store || !e->blk_store || !e->key_store || !e->tenants || !e->running ||
        !e->scratch || !e->b_token || !e->b_pos || !e->b_seq || !e->b_want || !e->b_seqs ||
        !e->b_slot || !e->b_chunk || !e->b_scheduled || !e->logits || !e->b_logit || !e->b_tok ||
        !e->b_err) {
        st = realm_error_set(err, REALM_E_NOMEM, "engine: out of memory");
        goto fail;
    }
    if ((st = realm_threadpool_create(e->p.sample_threads, &e->pool, err))) goto fail;
    /* a step returns logits or ids, never both: the ids take the logits'
     * memory, which the backend downloads into fastest (page-locked on a GPU,
     * where the download then stays inside the step's graph) */
    e->b_ids = (int32_t *)e->logits;
    for (int32_t i = 0; i < e->n_slots; i++) {
        eng_seq *q = &e->seqs[i];
        q->tokens = e->tok_store + (size_t)i * e->max_ctx;
        q->blocks = e->blk_store + (size_t)i * e->max_blocks;
        q->keys = e->key_store + (size_t)i * e->max_blocks;
        q->next = i + 1 < e->n_slots ? i + 1 : -1;
        q->prev = -1;
    }
    e->free_head = 0;
    e->inbox_head = e->inbox_tail = -1;
    *out = e;
    return REALM_OK;
fail:
    realm_engine_free(e);
    return st;
}

void realm_engine_free(realm_engine_t *e)
{
    if (!e) return;
    realm_kv_pages_free(e->kv); /* blocks die with the pool: no per-sequence release */
    realm_free(e->seqs);
    realm_free(e->tok_store);
    realm_free(e->blk_store);
    realm_free(e->key_store);
    realm_free(e->tenants);
    realm_free(e->running);
    realm_free(e->scratch);
    realm_free(e->b_token);
    realm_free(e->b_pos);
    realm_free(e->b_seq);
    realm_free(e->b_want);
    realm_free(e->b_seqs);
    realm_free(e->b_slot);
    realm_free(e->b_chunk);
    realm_free(e->b_scheduled);
    realm_model_logits_free(e->m, e->logits);
    realm_free(e->b_logit);
    realm_free(e->b_tok);
    realm_free(e->b_err);
    realm_threadpool_free(e->pool);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    realm_free(e);
}

/* Everything about the request that does not need the lock. */
static realm_status check_request(const realm_engine_t *e, const realm_engine_request *r,
                                  realm_error *err)
{
    if (!r->prompt || r->n_prompt <= 0)
        return realm_error_set(err, REALM_E_INVALID, "engine: the prompt is empty");
    if (r->max_tokens <= 0)
        return realm_error_set(err, REALM_E_INVALID, "engine: max_tokens must be positive");
    if ((int64_t)r->n_prompt + r->max_tokens > e->max_ctx)
        return realm_error_set(err, REALM_E_INVALID,
                               "engine: prompt (%d tokens) + max_tokens (%d) exceeds the context "
                               "of %d",
                               r->n_prompt, r->max_tokens, e->max_ctx);
    if (r->n_stop < 0 || r->n_stop > REALM_ENGINE_MAX_STOP || (r->n_stop > 0 && !r->stop))
        return realm_error_set(err, REALM_E_INVALID, "engine: %d stop ids (at most %d)", r->n_stop,
                               REALM_ENGINE_MAX_STOP);
    if (!r->on_event) return realm_error_set(err, REALM_E_INVALID, "engine: no on_event callback");
    for (int32_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->n_vocab)
            return realm_error_set(err, REALM_E_INVALID,
                                   "engine: prompt token %d at %d is outside the vocabulary of %d",
                                   r->prompt[i], i, e->n_vocab);
    return REALM_OK;
}

realm_status realm_engine_submit(realm_engine_t *e, const realm_engine_request *r,
                                 realm_engine_seq_id *out, realm_error *err)
{
    if (out) *out = 0;
    realm_status st = check_request(e, r, err);
    if (st) return st;
    pthread_mutex_lock(&e->mu);
    int32_t t = -1;
    if (e->n_queued >= e->p.max_queued || e->free_head < 0) {
        st = realm_error_set(err, REALM_E_BUSY,
                             "engine: queue full (%d requests waiting, limit %d); retry later",
                             e->n_queued, e->p.max_queued);
    } else if ((t = realm__engine_tenant_get(e, r->tenant)) < 0) {
        st = realm_error_set(err, REALM_E_BUSY,
                             "engine: %d tenants already have requests in flight; retry later",
                             e->p.max_tenants);
    }
    if (st) {
        e->rejected++;
        pthread_mutex_unlock(&e->mu);
        return st;
    }
    int32_t s = e->free_head;
    eng_seq *q = &e->seqs[s];
    e->free_head = q->next;
    q->gen++;
    q->state = SLOT_INBOX;
    q->cancel = false;
    q->tenant = t;
    q->tenant_id = r->tenant;
    q->seed = realm_kv_pages_seed(r->tenant, r->tenant_salt, r->adapter);
    q->cap = r->tenant_max_running > 0 && r->tenant_max_running < e->p.tenant_max_running
                 ? r->tenant_max_running
                 : e->p.tenant_max_running;
    q->n_prompt = r->n_prompt;
    q->max_tokens = r->max_tokens;
    q->n_stop = r->n_stop;
    if (r->n_stop > 0) memcpy(q->stop, r->stop, (size_t)r->n_stop * sizeof *q->stop);
    q->sample = r->sample;
    q->on_event = r->on_event;
    q->user = r->user;
    q->submit_step = e->step_no;
    memcpy(q->tokens, r->prompt, (size_t)r->n_prompt * sizeof *q->tokens);
    q->n_tokens = r->n_prompt;
    q->n_computed = q->n_generated = q->n_blocks = q->n_keyed = q->n_published = 0;
    q->admitted_once = false;
    q->n_prompt_cached = 0;
    q->queue_steps = 0;
    q->next = -1;
    if (e->inbox_tail >= 0)
        e->seqs[e->inbox_tail].next = s;
    else
        e->inbox_head = s;
    e->inbox_tail = s;
    e->tenants[t].n_live++;
    e->n_queued++;
    e->n_live++;
    e->submitted++;
    if (out) *out = (uint64_t)q->gen << 32 | (uint32_t)s;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return REALM_OK;
}

bool realm_engine_cancel(realm_engine_t *e, realm_engine_seq_id id)
{
    uint32_t s = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (s >= (uint32_t)e->n_slots) return false;
    pthread_mutex_lock(&e->mu);
    eng_seq *q = &e->seqs[s];
    bool ok = q->state != SLOT_FREE && q->gen == gen && !q->cancel;
    if (ok) {
        q->cancel = true;
        e->n_cancel_asked++;
        pthread_cond_broadcast(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

void realm__engine_slot_release(realm_engine_t *e, int32_t s)
{
    pthread_mutex_lock(&e->mu);
    eng_seq *q = &e->seqs[s];
    if (q->state == SLOT_WAITING) e->n_queued--;
    q->state = SLOT_FREE;
    q->next = e->free_head;
    e->free_head = s;
    e->tenants[q->tenant].n_live--;
    e->n_live--;
    pthread_mutex_unlock(&e->mu);
}

bool realm_engine_idle(realm_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    bool idle = e->n_live == 0;
    pthread_mutex_unlock(&e->mu);
    return idle;
}

void realm_engine_wait(realm_engine_t *e, int32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&e->mu);
    while (e->n_live == 0 && timeout_ms != 0) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&e->cv, &e->mu)
                                : pthread_cond_timedwait(&e->cv, &e->mu, &until);
        if (rc == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&e->mu);
}

realm_engine_stats realm_engine_stats_get(realm_engine_t *e)
{
    pthread_mutex_lock(&e->mu);
    realm_engine_stats s = e->snap;
    s.submitted = e->submitted;
    s.rejected = e->rejected;
    s.n_queued = e->n_queued;
    pthread_mutex_unlock(&e->mu);
    return s;
}
