/*
 * engine/engine_impl.h — the engine's private state, shared by engine.c (the
 * thread-safe API side), scheduler.c (the step) and fairness.c (tenants, VTC).
 *
 * Ownership of fields between threads:
 *   [mu]  read and written only with e->mu held;
 *   [eng] the engine thread only (no lock);
 *   [sub] written by submit under mu while the slot is FREE, then read-only.
 * The engine thread takes a slot from the inbox under mu, after which the
 * [sub] fields are visible to it (the mutex orders the writes).
 */
#ifndef REALM_ENGINE_ENGINE_IMPL_H
#define REALM_ENGINE_ENGINE_IMPL_H

#include <pthread.h>

#include "base/threadpool.h"
#include "engine/engine.h"
#include "engine/kv_pages.h"

typedef enum slot_state {
    SLOT_FREE = 0, /* on the free list */
    SLOT_INBOX,    /* submitted, not yet seen by a step */
    SLOT_WAITING,  /* in its tenant's queue (new or preempted) */
    SLOT_RUNNING,  /* in e->running, holds KV blocks */
} slot_state;

typedef struct eng_seq {
    uint32_t gen;     /* [mu] bumped at each submit into this slot */
    slot_state state; /* [mu] FREE/INBOX transitions; WAITING/RUNNING by the engine under mu */
    bool cancel;      /* [mu] cancellation asked */
    int32_t next;     /* [mu] free list / inbox link; [eng] tenant queue link */
    int32_t prev;     /* [eng] tenant queue link */

    int32_t tenant; /* [sub] index into e->tenants */
    uint32_t tenant_id;
    uint64_t seed; /* [sub] prefix-chain seed of (tenant, salt, adapter) */
    int32_t cap;   /* [sub] tenant's running cap for this request */
    int32_t n_prompt, max_tokens, n_stop;
    int32_t stop[REALM_ENGINE_MAX_STOP];
    realm_engine_sample_fn sample;
    realm_engine_event_fn on_event;
    void *user;
    int64_t submit_step; /* [sub] e->step_no at submit */

    int32_t *tokens;     /* (max_ctx) prompt then generated; [sub] prompt, [eng] after */
    int32_t n_tokens;    /* [eng] */
    int32_t n_computed;  /* [eng] positions whose KV is in the cache */
    int32_t n_generated; /* [eng] */
    int32_t *blocks;     /* (max_blocks) [eng] block table */
    int32_t n_blocks;
    uint64_t *keys; /* (max_blocks) [eng] chain hashes of full blocks, n_keyed valid */
    int32_t n_keyed;
    int32_t n_published; /* [eng] leading blocks already offered to the prefix cache */
    bool admitted_once;  /* [eng] input cost charged, queue delay recorded */
    int32_t n_prompt_cached;
    int64_t queue_steps;
    int64_t admit_order; /* [eng] latest admission, for preemption ties */
} eng_seq;

typedef struct eng_tenant {
    uint32_t id;       /* [mu] */
    bool used;         /* [mu] */
    int32_t n_live;    /* [mu] slots of this tenant not FREE */
    double vtc;        /* [eng] virtual token counter (reset under mu when recycled) */
    int32_t n_running; /* [eng] */
    int32_t q_head, q_tail, n_waiting; /* [eng] FIFO of WAITING slots */
} eng_tenant;

struct realm_engine {
    realm_model_t *m;
    realm_kv_pages_t *kv;
    realm_engine_params p; /* resolved */
    int32_t n_vocab, max_ctx, block_size, max_blocks;
    int32_t n_slots;
    eng_seq *seqs;       /* (n_slots) */
    int32_t *tok_store;  /* (n_slots, max_ctx) */
    int32_t *blk_store;  /* (n_slots, max_blocks) */
    uint64_t *key_store; /* (n_slots, max_blocks) */
    eng_tenant *tenants; /* (p.max_tenants) */

    pthread_mutex_t mu;
    pthread_cond_t cv;              /* signalled on submit and cancel */
    int32_t free_head;              /* [mu] */
    int32_t inbox_head, inbox_tail; /* [mu] */
    int32_t n_queued;               /* [mu] INBOX + WAITING */
    int32_t n_live;                 /* [mu] slots not FREE */
    int32_t n_cancel_asked;         /* [mu] cancels since the last step looked */
    int64_t step_no;                /* [mu] written by the engine under mu, read by submit */
    int64_t submitted, rejected;    /* [mu] */
    realm_engine_stats snap;        /* [mu] as of the end of the last step */

    /* [eng] */
    int32_t *running; /* (p.max_running) slot ids in admission order */
    int32_t n_running;
    int64_t admit_counter;
    double last_left_vtc;             /* VTC of the tenant whose queue emptied last */
    realm_engine_stats st;            /* engine-side counters */
    int32_t *scratch;                 /* (n_slots) cancel list / priority order */
    int32_t *b_token, *b_pos, *b_seq; /* (p.max_batch_tokens) the batch */
    bool *b_want;                     /* (p.max_batch_tokens) */
    realm_batch_seq *b_seqs;          /* (p.max_running) */
    int32_t *b_slot, *b_chunk;        /* (p.max_running) slot and rows of each batch sequence */
    bool *b_scheduled;                /* (n_slots) in this step's batch */
    float *logits;                    /* (p.max_running, n_vocab) */
    int32_t *b_logit;                 /* (p.max_running) its row of logits; -1: none this step */
    int32_t *b_tok;                   /* (p.max_running) the token it picked */
    int32_t *b_ids;                   /* (p.max_running) the backend's picks, by logit row (in logits) */
    realm_error *b_err;               /* (p.max_running) why the pick failed (status set) */
    realm_threadpool_t *pool;         /* picks a step's tokens at once (p.sample_threads) */
};

/* ---- fairness.c ---- */
/* [mu] The tenant index for id, creating or recycling an entry; -1 when the
 * table is full of tenants with live sequences. */
int32_t realm__engine_tenant_get(realm_engine_t *e, uint32_t id);
/* [eng] Put slot s at the back (front: preempted) of its tenant's queue,
 * lifting the tenant's VTC if its queue was empty. */
void realm__engine_enqueue(realm_engine_t *e, int32_t s, bool front);
/* [eng] Remove a WAITING slot from its tenant's queue. */
void realm__engine_dequeue(realm_engine_t *e, int32_t s);
/* [eng] The tenant to admit from next (smallest VTC among tenants with
 * waiting slots whose head is below its cap); -1 when none. */
int32_t realm__engine_pick_tenant(const realm_engine_t *e);
/* [eng] Order e->running by priority, highest first, into out. */
void realm__engine_priority_order(const realm_engine_t *e, int32_t *out);

/* ---- engine.c ---- */
/* [eng] Return slot s to the free list (takes mu). */
void realm__engine_slot_release(realm_engine_t *e, int32_t s);

#endif
