/*
 * engine/scheduler.c — one engine step:
 *   1. take new submissions and cancellations (under the lock);
 *   2. end cancelled sequences (free their blocks, tell the consumer);
 *   3. admit waiting sequences by VTC while running slots and KV blocks last;
 *   4. build one batch in priority order: a decode row for every sequence
 *      that has its whole context cached (allocating a block at a block
 *      boundary, preempting the lowest-priority sequence when none is left),
 *      then prompt chunks with the remaining token budget;
 *   5. one forward pass; publish newly full blocks to the prefix cache;
 *   6. sample a token for each sequence whose last position got logits,
 *      deliver it, and end sequences at a stop id or their length limit.
 * A sequence's state is (tokens, n_computed): rows are always positions
 * [n_computed, n_tokens), so prefill, decode and recompute after preemption
 * are the same code.
 */
#include <string.h>

#include "base/rowmath.h"
#include "engine/engine_impl.h"

static int32_t min_i32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static int32_t cdiv(int32_t a, int32_t b)
{
    return (a + b - 1) / b;
}

/* Chain hash of block i of slot q (computing its predecessors first). */
static uint64_t block_key(realm_engine_t *e, eng_seq *q, int32_t i)
{
    while (q->n_keyed <= i) {
        int32_t k = q->n_keyed;
        uint64_t parent = k ? q->keys[k - 1] : q->seed;
        q->keys[k] =
            realm_kv_pages_hash(parent, q->tokens + (size_t)k * e->block_size, e->block_size);
        q->n_keyed++;
    }
    return q->keys[i];
}

static void release_blocks(realm_engine_t *e, eng_seq *q)
{
    for (int32_t i = 0; i < q->n_blocks; i++)
        realm_kv_pages_unref(e->kv, q->blocks[i]);
    q->n_blocks = q->n_computed = q->n_published = 0;
}

static void running_remove(realm_engine_t *e, int32_t s)
{
    for (int32_t i = 0; i < e->n_running; i++)
        if (e->running[i] == s) {
            memmove(e->running + i, e->running + i + 1,
                    (size_t)(e->n_running - i - 1) * sizeof *e->running);
            e->n_running--;
            e->tenants[e->seqs[s].tenant].n_running--;
            return;
        }
    REALM_ASSERT(!"slot not running");
}

/* Detach s from the queue or running set, free its blocks and its slot. The
 * final event has been delivered (or is delivered here when ev is given). */
static void finish(realm_engine_t *e, int32_t s, const realm_engine_event *ev)
{
    eng_seq *q = &e->seqs[s];
    if (q->state == SLOT_RUNNING)
        running_remove(e, s);
    else
        realm__engine_dequeue(e, s);
    release_blocks(e, q);
    if (ev) q->on_event(q->user, ev);
    e->st.finished++;
    e->st.cancelled += ev && ev->finish == REALM_ENGINE_FINISH_CANCELLED;
    realm__engine_slot_release(e, s);
}

static realm_engine_event event_of(const realm_engine_t *e, int32_t s, int32_t token,
                                   realm_engine_finish fin)
{
    const eng_seq *q = &e->seqs[s];
    return (realm_engine_event){.seq = (uint64_t)q->gen << 32 | (uint32_t)s,
                                .tenant = q->tenant_id,
                                .token = token,
                                .n_generated = q->n_generated,
                                .finish = fin,
                                .n_prompt_cached = q->n_prompt_cached,
                                .queue_steps = q->queue_steps};
}

static void fail(realm_engine_t *e, int32_t s, const char *msg)
{
    realm_engine_event ev = event_of(e, s, -1, REALM_ENGINE_FINISH_ERROR);
    ev.error = msg;
    finish(e, s, &ev);
}

/* Step 1-2: new submissions into their tenants' queues; cancelled sequences end. */
static void take_inbox(realm_engine_t *e)
{
    int32_t n_cancel = 0;
    pthread_mutex_lock(&e->mu);
    for (int32_t s = e->inbox_head; s >= 0;) {
        int32_t nx = e->seqs[s].next;
        e->seqs[s].state = SLOT_WAITING;
        realm__engine_enqueue(e, s, false);
        s = nx;
    }
    e->inbox_head = e->inbox_tail = -1;
    if (e->n_cancel_asked) {
        for (int32_t s = 0; s < e->n_slots; s++)
            if (e->seqs[s].cancel &&
                (e->seqs[s].state == SLOT_WAITING || e->seqs[s].state == SLOT_RUNNING))
                e->scratch[n_cancel++] = s;
        e->n_cancel_asked = 0;
    }
    pthread_mutex_unlock(&e->mu);
    for (int32_t i = 0; i < n_cancel; i++) {
        realm_engine_event ev = event_of(e, e->scratch[i], -1, REALM_ENGINE_FINISH_CANCELLED);
        finish(e, e->scratch[i], &ev);
    }
}

/* Prefix hits then fresh blocks for every position of q's tokens; false (and
 * nothing held) when the pool cannot cover them with `reserve` blocks to spare. */
static bool take_blocks(realm_engine_t *e, eng_seq *q, int32_t reserve)
{
    int32_t bs = e->block_size;
    if (!e->p.no_prefix_cache) {
        /* The block holding the last position is always computed: its row
         * must produce the logits of the next token. */
        int32_t n_full = (q->n_tokens - 1) / bs;
        for (int32_t i = 0; i < n_full; i++) {
            uint64_t parent = i ? block_key(e, q, i - 1) : q->seed;
            int32_t b = realm_kv_pages_lookup(e->kv, block_key(e, q, i), parent,
                                              q->tokens + (size_t)i * bs);
            if (b < 0) break;
            q->blocks[q->n_blocks++] = b;
        }
        q->n_computed = q->n_blocks * bs;
        q->n_published = q->n_blocks;
    }
    int32_t need = cdiv(q->n_tokens, bs) - q->n_blocks;
    if (realm_kv_pages_available(e->kv) < need + reserve) {
        release_blocks(e, q);
        return false;
    }
    for (int32_t i = 0; i < need; i++) {
        int32_t b = realm_kv_pages_alloc(e->kv);
        REALM_ASSERT(b >= 0);
        q->blocks[q->n_blocks++] = b;
    }
    return true;
}

/* Step 3: admission by VTC. Stops at the first sequence that does not fit, so
 * a large request of the most deserving tenant is not starved by small ones. */
static void admit(realm_engine_t *e)
{
    while (e->n_running < e->p.max_running) {
        int32_t t = realm__engine_pick_tenant(e);
        if (t < 0) return;
        int32_t s = e->tenants[t].q_head;
        eng_seq *q = &e->seqs[s];
        /* Keep a block per running sequence spare so that decoding does not
         * preempt right after admitting; the first sequence needs none. */
        if (!take_blocks(e, q, e->n_running)) return;
        realm__engine_dequeue(e, s);
        pthread_mutex_lock(&e->mu);
        q->state = SLOT_RUNNING;
        e->n_queued--;
        int64_t now = e->step_no;
        pthread_mutex_unlock(&e->mu);
        e->running[e->n_running++] = s;
        e->tenants[t].n_running++;
        q->admit_order = e->admit_counter++;
        if (!q->admitted_once) {
            q->admitted_once = true;
            q->queue_steps = now - q->submit_step;
            q->n_prompt_cached = q->n_computed;
            e->tenants[t].vtc += (double)e->p.vtc_w_in * q->n_prompt;
        }
    }
}

/* Free a running sequence's blocks and put it back at the front of its
 * tenant's queue; it recomputes its tokens when admitted again. */
static void preempt(realm_engine_t *e, int32_t s)
{
    eng_seq *q = &e->seqs[s];
    running_remove(e, s);
    release_blocks(e, q);
    pthread_mutex_lock(&e->mu);
    q->state = SLOT_WAITING;
    e->n_queued++;
    pthread_mutex_unlock(&e->mu);
    realm__engine_enqueue(e, s, true);
    e->st.preemptions++;
}

static void add_rows(realm_engine_t *e, int32_t s, int32_t chunk, int32_t *n_rows, int32_t *n_bs)
{
    eng_seq *q = &e->seqs[s];
    int32_t j = (*n_bs)++;
    e->b_seqs[j] = (realm_batch_seq){.block_table = q->blocks, .n_blocks = q->n_blocks};
    e->b_slot[j] = s;
    e->b_chunk[j] = chunk;
    e->b_scheduled[s] = true;
    for (int32_t i = 0; i < chunk; i++) {
        int32_t r = (*n_rows)++;
        e->b_token[r] = q->tokens[q->n_computed + i];
        e->b_pos[r] = q->n_computed + i;
        e->b_seq[r] = j;
        e->b_want[r] = q->n_computed + i == q->n_tokens - 1;
    }
}

/* Step 4: the batch. Returns its number of rows. */
static int32_t build_batch(realm_engine_t *e, int32_t *n_bs)
{
    int32_t *order = e->scratch, n_order = e->n_running, n_rows = 0;
    realm__engine_priority_order(e, order);
    *n_bs = 0;
    /* Decode rows, highest priority first; victims come from the other end,
     * which has not been scheduled yet. */
    for (int32_t i = 0; i < n_order; i++) {
        int32_t s = order[i];
        eng_seq *q = &e->seqs[s];
        if (q->n_tokens - q->n_computed != 1) continue;
        if (n_rows == e->p.max_batch_tokens) break;
        bool dropped = false;
        while (q->n_blocks < cdiv(q->n_tokens, e->block_size)) {
            int32_t b = realm_kv_pages_alloc(e->kv);
            if (b >= 0) {
                q->blocks[q->n_blocks++] = b;
                continue;
            }
            int32_t v = order[--n_order];
            REALM_ASSERT(!e->b_scheduled[v]);
            preempt(e, v);
            if (v == s) {
                dropped = true;
                break;
            }
        }
        if (!dropped) add_rows(e, s, 1, &n_rows, n_bs);
    }
    /* Prompt (and recompute) chunks; their blocks were taken at admission. */
    for (int32_t i = 0; i < n_order && n_rows < e->p.max_batch_tokens; i++) {
        int32_t s = order[i];
        eng_seq *q = &e->seqs[s];
        if (q->state != SLOT_RUNNING || e->b_scheduled[s]) continue;
        int32_t left = q->n_tokens - q->n_computed;
        if (left <= 1) continue;
        add_rows(e, s, min_i32(left, e->p.max_batch_tokens - n_rows), &n_rows, n_bs);
    }
    return n_rows;
}

static realm_engine_finish finish_reason(const realm_engine_t *e, const eng_seq *q, int32_t tok)
{
    for (int32_t i = 0; i < q->n_stop; i++)
        if (q->stop[i] == tok) return REALM_ENGINE_FINISH_STOP;
    if (q->n_generated >= q->max_tokens || q->n_tokens >= e->max_ctx)
        return REALM_ENGINE_FINISH_LENGTH;
    return REALM_ENGINE_FINISH_NONE;
}

/* A greedy pick's -1 (base/rowmath.h): nothing to pick. */
static const char no_finite_logit[] = "engine: every logit is NaN or -inf";

/* Step 5 for batch sequence j, when its last row had logits: its token from
 * its row, into b_tok[j] (b_err[j] says why not). One task of the step's
 * parallel pick (a task a batch sequence): reads only its own sequence and
 * row. */
static void pick(void *ctx, int64_t task, int thread)
{
    (void)thread;
    realm_engine_t *e = ctx;
    int32_t j = (int32_t)task;
    if (e->b_logit[j] < 0) return;
    eng_seq *q = &e->seqs[e->b_slot[j]];
    const float *logits = e->logits + (size_t)e->b_logit[j] * e->n_vocab;
    realm_error *err = &e->b_err[j];
    realm_error_clear(err);
    int32_t tok;
    if (q->sample) {
        if (q->sample(q->user, logits, e->n_vocab, &tok, err) != REALM_OK) {
            if (!err->status)
                realm_error_set(err, REALM_E_INTERNAL, "engine: the sample hook failed");
            return;
        }
        if (tok < 0 || tok >= e->n_vocab) {
            realm_error_set(err, REALM_E_RANGE,
                            "engine: the sample hook returned a token outside the vocabulary");
            return;
        }
    } else if ((tok = realm_argmax_f32(logits, e->n_vocab)) < 0) {
        realm_error_set(err, REALM_E_INTERNAL, "%s", no_finite_logit);
        return;
    }
    e->b_tok[j] = tok;
}

/* Steps 5-6 for batch sequence j whose rows ran; picked: its last row had
 * logits and pick() ran for it. */
static void advance(realm_engine_t *e, int32_t j, bool picked)
{
    int32_t s = e->b_slot[j];
    eng_seq *q = &e->seqs[s];
    q->n_computed += e->b_chunk[j];
    if (!e->p.no_prefix_cache) {
        for (int32_t i = q->n_published; i < q->n_computed / e->block_size; i++) {
            uint64_t parent = i ? block_key(e, q, i - 1) : q->seed;
            realm_kv_pages_publish(e->kv, q->blocks[i], block_key(e, q, i), parent,
                                   q->tokens + (size_t)i * e->block_size);
        }
        if (q->n_computed / e->block_size > q->n_published)
            q->n_published = q->n_computed / e->block_size;
    }
    if (!picked) return;
    if (e->b_err[j].status) {
        fail(e, s, e->b_err[j].message);
        return;
    }
    int32_t tok = e->b_tok[j];
    q->tokens[q->n_tokens++] = tok;
    q->n_generated++;
    e->tenants[q->tenant].vtc += e->p.vtc_w_out;
    e->st.tokens_generated++;
    realm_engine_finish fin = finish_reason(e, q, tok);
    realm_engine_event ev = event_of(e, s, tok, fin);
    q->on_event(q->user, &ev);
    if (fin != REALM_ENGINE_FINISH_NONE) finish(e, s, NULL);
}

/* Step 5 when the backend picked: b_tok from the ids of the logit rows. */
static void take_ids(realm_engine_t *e, int32_t n_bs)
{
    for (int32_t j = 0; j < n_bs; j++) {
        if (e->b_logit[j] < 0) continue;
        realm_error_clear(&e->b_err[j]);
        e->b_tok[j] = e->b_ids[e->b_logit[j]];
        if (e->b_tok[j] < 0 || e->b_tok[j] >= e->n_vocab)
            realm_error_set(&e->b_err[j], REALM_E_INTERNAL, "%s", no_finite_logit);
    }
}

static void publish_stats(realm_engine_t *e)
{
    realm_kv_pages_stats ks = realm_kv_pages_stats_get(e->kv);
    e->st.prefix_hit_blocks = ks.hits;
    e->st.prefix_miss_blocks = ks.misses;
    e->st.evictions = ks.evictions;
    e->st.kv_blocks = ks.n_blocks;
    e->st.kv_free = ks.n_free;
    e->st.kv_cached = ks.n_cached;
    e->st.n_running = e->n_running;
    pthread_mutex_lock(&e->mu);
    e->snap = e->st;
    e->step_no++;
    pthread_mutex_unlock(&e->mu);
}

realm_status realm_engine_step(realm_engine_t *e, int32_t *n_rows_out, realm_error *err)
{
    if (n_rows_out) *n_rows_out = 0;
    take_inbox(e);
    admit(e);
    int32_t n_bs = 0, n_rows = build_batch(e, &n_bs);
    /* Preemption in build_batch may have freed room for a waiting sequence,
     * but admitting now would need another pass: it waits for the next step. */
    if (n_rows == 0) {
        publish_stats(e);
        return REALM_OK;
    }
    realm_batch b = {.n_rows = n_rows,
                     .token = e->b_token,
                     .pos = e->b_pos,
                     .seq = e->b_seq,
                     .want_logits = e->b_want,
                     .n_seqs = n_bs,
                     .seqs = e->b_seqs};
    /* The sequences whose last row has logits, in row order, are the rows
     * of e->logits. When none has a sample hook, the backend picks (the
     * arg-max where the logits are: on a GPU the rows never cross the link);
     * else every pick runs here, all at once. Then each sequence advances in
     * batch order, so events keep their order. */
    int32_t n_logit = 0;
    bool greedy = true;
    for (int32_t j = 0; j < n_bs; j++) {
        const eng_seq *q = &e->seqs[e->b_slot[j]];
        e->b_logit[j] = q->n_computed + e->b_chunk[j] == q->n_tokens ? n_logit++ : -1;
        if (e->b_logit[j] >= 0 && q->sample) greedy = false;
    }
    realm_error ferr = {0};
    const realm_kv_pool *pool = realm_kv_pages_pool(e->kv);
    realm_status st = greedy ? realm_model_forward_argmax(e->m, pool, &b, e->b_ids, &ferr)
                             : realm_model_forward(e->m, pool, &b, e->logits, &ferr);
    if (!st && n_logit > 0) {
        if (greedy)
            take_ids(e, n_bs);
        else
            realm_threadpool_run(e->pool, n_bs, 0, pick, e);
    }
    for (int32_t j = 0; j < n_bs; j++) {
        int32_t s = e->b_slot[j];
        e->b_scheduled[s] = false;
        if (st) {
            fail(e, s, ferr.message);
            continue;
        }
        advance(e, j, e->b_logit[j] >= 0);
    }
    e->st.steps++;
    e->st.rows += n_rows;
    for (int32_t j = 0; j < n_bs; j++)
        if (e->b_chunk[j] == 1)
            e->st.decode_rows++;
        else
            e->st.prompt_rows += e->b_chunk[j];
    publish_stats(e);
    if (n_rows_out) *n_rows_out = n_rows;
    (void)err;
    return REALM_OK;
}
