/*
 * engine/engine.h — continuous batching of many tenants' sequences over one
 * model and one paged KV cache.
 *
 * A request (prompt ids, limits, a sampling hook, a token callback) becomes a
 * sequence. Each realm_engine_step builds ONE batch across all running
 * sequences within a token budget — decode rows first, then chunks of
 * prompts (prefill) — runs one forward pass, samples one token for every
 * sequence whose last row got logits, and hands the tokens to their callbacks.
 *
 * Scheduling:
 *   - KV: a paged pool (engine/kv_pages.h) reserved at create. A sequence is
 *     admitted only when blocks for its whole prompt are available (after
 *     prefix hits); when decode needs a block and none is left, the
 *     lowest-priority running sequence is preempted (its blocks freed, it goes
 *     back to the front of its tenant's queue and later recomputes prompt +
 *     generated tokens — published blocks usually come back as prefix hits).
 *   - Prefix cache: full blocks keyed by a hash chain over (tenant id, tenant
 *     salt, adapter id, token ids); never shared across tenants.
 *   - Fairness: admission picks the tenant with the smallest virtual token
 *     counter (VTC, Sheng et al., OSDI'24): counter += w_in per prompt token
 *     at admission and += w_out per generated token; a tenant that becomes
 *     active is lifted to the smallest counter of the active tenants, so idle
 *     time is not banked. Preemption picks the running sequence of the tenant
 *     with the largest counter (latest admitted first). Per-tenant cap on
 *     running sequences.
 *   - Light-tenant bound: a request of a tenant below its cap whose prompt
 *     fits the pool waits at most (steps until any running sequence ends)
 *     + 1 steps: once it is at the head its tenant has the smallest counter,
 *     because a tenant is lifted only to the minimum and the flooding tenant
 *     accrues w_out per token while it waits. tests/engine/test_engine_stress.c
 *     asserts this.
 *
 * Threads: realm_engine_submit, realm_engine_cancel, realm_engine_stats and
 * realm_engine_wait may be called from any thread at any time (one mutex
 * guards the submission inbox, cancel flags and the stats snapshot). Exactly
 * one thread (the engine thread) calls realm_engine_step. Callbacks run with
 * no engine lock held, so they may call submit/cancel; they must not call
 * realm_engine_step or realm_engine_free. on_event runs on the engine thread.
 * The token picks of one step (sample hooks, greedy arg-max) run at once on
 * up to sample_threads threads, the engine thread among them: a row of a
 * large vocabulary is ~0.5 MB to scan, and on a GPU the picks of 64
 * sequences took longer than the forward pass that made their logits. So
 * the hooks of different sequences may run concurrently; one sequence's
 * hook never runs beside itself or its on_event. A step whose sequences are
 * all greedy (no hook) has the backend pick instead
 * (realm_model_forward_argmax): on a GPU their logits never leave it.
 *
 * Memory: realm_engine_create reserves everything — the KV pool, a slot per
 * sequence the engine can hold (max_running + max_queued), each with room for
 * max_ctx tokens and its block table, the batch arrays and the logits. Submit,
 * cancel and step never allocate.
 *
 * Errors: realm_engine_submit returns REALM_E_BUSY when the engine is over
 * capacity (queue limit reached, or too many distinct tenants in flight): a
 * RETRYABLE condition (HTTP 429/503), the message says which limit.
 * REALM_E_INVALID means the request itself is bad (empty prompt, token out of
 * the vocabulary, prompt + max_tokens over the context, ...) and retrying it
 * will not help. A failure inside a step (forward pass, a sample hook) ends
 * the affected sequences with REALM_ENGINE_FINISH_ERROR, never the engine.
 */
#ifndef REALM_ENGINE_ENGINE_H
#define REALM_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "model/model.h"

#define REALM_ENGINE_MAX_STOP 8

/* Names one sequence: slot and generation, so a stale id (the sequence
 * already finished and its slot was reused) is recognised and ignored. */
typedef uint64_t realm_engine_seq_id;

typedef enum realm_engine_finish {
    REALM_ENGINE_FINISH_NONE = 0, /* more events follow */
    REALM_ENGINE_FINISH_STOP,     /* a stop id was generated (it is this event's token) */
    REALM_ENGINE_FINISH_LENGTH,   /* max_tokens or the context limit reached */
    REALM_ENGINE_FINISH_CANCELLED,
    REALM_ENGINE_FINISH_ERROR,
    REALM_ENGINE_FINISH_COUNT
} realm_engine_finish;

/* One generated token and/or the end of a sequence. */
typedef struct realm_engine_event {
    realm_engine_seq_id seq;
    uint32_t tenant;
    int32_t token;       /* -1 when the event only ends the sequence */
    int32_t n_generated; /* tokens generated so far, this one included */
    realm_engine_finish finish;
    int32_t n_prompt_cached; /* prompt positions served by the prefix cache at first admission */
    int64_t queue_steps;     /* steps from submit to first admission */
    const char *error;       /* FINISH_ERROR: a message valid during the callback */
} realm_engine_event;

/* Called on the engine thread for every token and once with finish != NONE;
 * after that call the sequence id is dead. */
typedef void (*realm_engine_event_fn)(void *user, const realm_engine_event *ev);
/* Picks the next token from one row of logits (n_vocab), on the engine thread
 * (e.g. wraps an engine/sampler.h sampler the request owner holds). NULL in
 * the request: greedy arg-max, ties to the lowest id. */
typedef realm_status (*realm_engine_sample_fn)(void *user, const float *logits, int32_t n_vocab,
                                               int32_t *out_token, realm_error *err);

typedef struct realm_engine_request {
    uint32_t tenant;
    uint64_t tenant_salt;       /* mixed into the prefix-cache keys */
    int32_t adapter;            /* LoRA adapter id (0: base model); part of the prefix key */
    int32_t tenant_max_running; /* > 0: this tenant's cap on running sequences; 0: engine default */
    const int32_t *prompt;      /* (n_prompt) copied at submit */
    int32_t n_prompt;
    int32_t max_tokens;  /* > 0 */
    const int32_t *stop; /* (n_stop <= REALM_ENGINE_MAX_STOP) copied at submit */
    int32_t n_stop;
    realm_engine_sample_fn sample; /* NULL: greedy */
    realm_engine_event_fn on_event;
    void *user; /* passed to sample and on_event */
} realm_engine_request;

typedef struct realm_engine_params {
    int32_t n_kv_blocks;      /* pool size in blocks; <= 0: enough for max_running full contexts */
    int32_t block_size;       /* positions per block; <= 0: 16 */
    int32_t max_batch_tokens; /* rows per step; <= 0 or > the model's max_rows: max_rows */
    int32_t max_running;      /* sequences per step; <= 0: 64; at most the model's max_logit_rows */
    int32_t max_queued;       /* submitted but not running; <= 0: 256 */
    int32_t max_tenants;      /* distinct tenants in flight; <= 0: 64 */
    int32_t tenant_max_running; /* default per-tenant cap; <= 0: max_running */
    float vtc_w_in, vtc_w_out;  /* VTC weights; both 0: 1 and 2 */
    bool no_prefix_cache;       /* disable lookups and publishing */
    int32_t sample_threads;     /* threads picking a step's tokens; <= 0: one per online CPU */
    realm_kv_choice kv_type;    /* the KV pool's elements; AUTO (0): the backend's */
} realm_engine_params;

typedef struct realm_engine_stats {
    int64_t steps, rows, prompt_rows, decode_rows; /* forward passes and their rows */
    int64_t tokens_generated;
    int64_t submitted, rejected, finished, cancelled, preemptions;
    int64_t prefix_hit_blocks, prefix_miss_blocks, evictions;
    int32_t n_running, n_queued;
    int32_t kv_blocks, kv_free, kv_cached; /* kv_blocks - free - cached are in use */
} realm_engine_stats;

typedef struct realm_engine realm_engine_t;

/* Borrows m (and its backend), which must outlive the engine; the engine is
 * then the only user of m. params may be NULL for the defaults. */
realm_status realm_engine_create(realm_model_t *m, const realm_engine_params *params,
                                 realm_engine_t **out, realm_error *err);
/* Sequences still held end without callbacks. No other thread may be using e. */
void realm_engine_free(realm_engine_t *e);

/* Queue a request; *out (may be NULL) names the sequence. Any thread. */
realm_status realm_engine_submit(realm_engine_t *e, const realm_engine_request *req,
                                 realm_engine_seq_id *out, realm_error *err);
/* Ask to end a sequence; the next step frees its blocks and delivers
 * FINISH_CANCELLED. Returns false when the id is dead or already cancelled.
 * Any thread. */
bool realm_engine_cancel(realm_engine_t *e, realm_engine_seq_id id);

/* One scheduling step: admit, build a batch, forward, sample, deliver. Sets
 * *n_rows (may be NULL) to the rows run (0: nothing to do). Returns an error
 * only for a broken invariant; request-level failures end those requests. */
realm_status realm_engine_step(realm_engine_t *e, int32_t *n_rows, realm_error *err);
/* True when nothing is running or queued (submissions not yet seen by a step
 * count as queued). Any thread. */
bool realm_engine_idle(realm_engine_t *e);
/* Block until there is work or timeout_ms passes (< 0: forever). Any thread. */
void realm_engine_wait(realm_engine_t *e, int32_t timeout_ms);

/* A consistent snapshot as of the end of the last step (counters of
 * submissions are current). Any thread. */
realm_engine_stats realm_engine_stats_get(realm_engine_t *e);

#endif
