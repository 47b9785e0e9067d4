/*
 * engine/fairness.c — tenants, their queues and the virtual token counters of
 * VTC ("Fairness in Serving Large Language Models", Sheng et al., OSDI'24).
 *
 * Each tenant has a counter of the service it received, weighted
 * (w_in per prompt token admitted, w_out per generated token; the engine
 * adds those in scheduler.c). Admission always serves the tenant with the
 * smallest counter among those with waiting requests. When a tenant's queue
 * goes from empty to non-empty its counter is lifted to the smallest counter
 * of the tenants still waiting (or, when none waits, to the counter of the
 * tenant whose queue emptied last): a tenant that was idle cannot bank its
 * idle time and then monopolise the engine, and a newcomer is never behind a
 * flooding tenant by more than that tenant's own backlog of service.
 */
#include "engine/engine_impl.h"

int32_t realm__engine_tenant_get(realm_engine_t *e, uint32_t id)
{
    int32_t unused = -1, idle = -1;
    for (int32_t i = 0; i < e->p.max_tenants; i++) {
        eng_tenant *t = &e->tenants[i];
        if (t->used && t->id == id) return i;
        if (!t->used && unused < 0) unused = i;
        if (t->used && t->n_live == 0 && idle < 0) idle = i;
    }
    int32_t i = unused >= 0 ? unused : idle;
    if (i < 0) return -1;
    /* A recycled entry has no live slots, so the engine thread touches none of
     * its [eng] fields now; its queue is empty and it runs nothing. */
    eng_tenant *t = &e->tenants[i];
    t->id = id;
    t->used = true;
    t->vtc = 0; /* lifted when its first request is queued */
    return i;
}

/* Smallest counter of the tenants with waiting slots, other than skip. */
static bool min_waiting_vtc(const realm_engine_t *e, int32_t skip, double *out)
{
    bool any = false;
    for (int32_t i = 0; i < e->p.max_tenants; i++) {
        const eng_tenant *t = &e->tenants[i];
        if (i == skip || t->n_waiting == 0) continue;
        if (!any || t->vtc < *out) *out = t->vtc;
        any = true;
    }
    return any;
}

void realm__engine_enqueue(realm_engine_t *e, int32_t s, bool front)
{
    eng_seq *q = &e->seqs[s];
    eng_tenant *t = &e->tenants[q->tenant];
    if (t->n_waiting == 0) {
        double lift = 0;
        if (!min_waiting_vtc(e, q->tenant, &lift)) lift = e->last_left_vtc;
        if (t->vtc < lift) t->vtc = lift;
    }
    q->prev = q->next = -1;
    if (t->n_waiting == 0) {
        t->q_head = t->q_tail = s;
    } else if (front) {
        q->next = t->q_head;
        e->seqs[t->q_head].prev = s;
        t->q_head = s;
    } else {
        q->prev = t->q_tail;
        e->seqs[t->q_tail].next = s;
        t->q_tail = s;
    }
    t->n_waiting++;
}

void realm__engine_dequeue(realm_engine_t *e, int32_t s)
{
    eng_seq *q = &e->seqs[s];
    eng_tenant *t = &e->tenants[q->tenant];
    if (q->prev >= 0)
        e->seqs[q->prev].next = q->next;
    else
        t->q_head = q->next;
    if (q->next >= 0)
        e->seqs[q->next].prev = q->prev;
    else
        t->q_tail = q->prev;
    q->prev = q->next = -1;
    if (--t->n_waiting == 0) e->last_left_vtc = t->vtc;
}

int32_t realm__engine_pick_tenant(const realm_engine_t *e)
{
    int32_t best = -1;
    for (int32_t i = 0; i < e->p.max_tenants; i++) {
        const eng_tenant *t = &e->tenants[i];
        if (t->n_waiting == 0 || t->n_running >= e->seqs[t->q_head].cap) continue;
        if (best < 0) {
            best = i;
            continue;
        }
        const eng_tenant *b = &e->tenants[best];
        /* Ties (a newcomer lifted to the flooder's counter) go to the tenant
         * running fewer sequences. */
        if (t->vtc < b->vtc || (t->vtc == b->vtc && t->n_running < b->n_running)) best = i;
    }
    return best;
}

/* Higher priority: smaller tenant counter, then earlier admission. */
static bool before(const realm_engine_t *e, int32_t a, int32_t b)
{
    const eng_seq *x = &e->seqs[a], *y = &e->seqs[b];
    double va = e->tenants[x->tenant].vtc, vb = e->tenants[y->tenant].vtc;
    if (va != vb) return va < vb;
    return x->admit_order < y->admit_order;
}

void realm__engine_priority_order(const realm_engine_t *e, int32_t *out)
{
    /* Insertion sort: at most max_running entries, usually already ordered. */
    for (int32_t i = 0; i < e->n_running; i++) {
        int32_t s = e->running[i], j = i;
        while (j > 0 && before(e, s, out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = s;
    }
}
