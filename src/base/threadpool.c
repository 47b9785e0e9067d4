/* base/threadpool.c — see threadpool.h. A job is published by writing a new
 * job word (below); workers notice it by spinning or are woken from a
 * condition variable. Sleep/wake follows the Dekker pattern on two seq_cst
 * atomics (work, n_sleeping), so a wake-up cannot be lost: either the worker
 * sees the new generation before sleeping, or the caller sees it asleep and
 * broadcasts under the mutex the worker holds until it waits. */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "base/alloc.h"
#include "base/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* ~50-100 us of pause instructions: longer than the gap between two matmuls
 * of a decode step, far shorter than the gap between requests. */
#define SPIN_ITERS 20000
/* The caller spins this long for stragglers, then yields its core: on a
 * loaded machine the straggler may be waiting for exactly that core. */
#define YIELD_AFTER 2000

typedef struct worker {
    realm_threadpool_t *pool;
    pthread_t tid;
    int index;
} worker;

/* The job word: generation (16 bits) | n_tasks (24) | next task (24). One
 * CAS both checks that a job is still the current one and claims a task of
 * it, so a worker that wakes late can never run a task of a finished job,
 * and the caller never waits for a worker that was not scheduled: it simply
 * runs the remaining tasks itself. */
#define W_IDX_BITS 24
#define W_IDX_MASK ((1ull << W_IDX_BITS) - 1)
#define W_MAX_TASKS W_IDX_MASK
#define W_GEN(v)   ((v) >> (2 * W_IDX_BITS))
#define W_N(v)     (((v) >> W_IDX_BITS) & W_IDX_MASK)
#define W_NEXT(v)  ((v) & W_IDX_MASK)

struct realm_threadpool {
    int size;
    worker *workers; /* (size - 1) */
    int n_started;
    /* the current job: fn and ctx are written before the job word publishes them */
    realm_pool_task_fn fn;
    void *ctx;
    /* threads taking part in this job, caller included; atomic because a
     * worker late for the previous job may still read it while the caller
     * sets the next job's (the stale value is harmless: that worker's tasks
     * are claimed by generation, so it runs none of the new job's) */
    atomic_int n_active;
    atomic_ullong work;
    atomic_llong n_completed;
    /* sleeping */
    atomic_int n_sleeping;
    atomic_bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Claims and runs tasks of the job whose generation is gen until none is left. */
static void run_tasks(realm_threadpool_t *p, unsigned long long gen, int thread)
{
    unsigned long long v = atomic_load(&p->work);
    for (;;) {
        if (W_GEN(v) != gen || W_NEXT(v) >= W_N(v)) return;
        if (!atomic_compare_exchange_weak(&p->work, &v, v + 1)) continue;
        p->fn(p->ctx, (int64_t)W_NEXT(v), thread);
        atomic_fetch_add_explicit(&p->n_completed, 1, memory_order_release);
        v = atomic_load(&p->work);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    realm_threadpool_t *p = w->pool;
    unsigned long long seen = 0;
    for (;;) {
        unsigned long long v;
        int spins = 0;
        while (W_GEN(v = atomic_load(&p->work)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (W_GEN(atomic_load(&p->work)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = W_GEN(v);
        /* n_active is read after the job word that published it */
        if (w->index < atomic_load_explicit(&p->n_active, memory_order_relaxed))
            run_tasks(p, seen, w->index);
    }
}

static void wake(realm_threadpool_t *p)
{
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

realm_status realm_threadpool_create(int n_threads, realm_threadpool_t **out, realm_error *err)
{
    *out = NULL;
    if (n_threads <= 0) n_threads = realm_cpu_count();
    realm_threadpool_t *p = realm_calloc(1, sizeof *p);
    worker *ws = n_threads > 1 ? realm_calloc((size_t)n_threads - 1, sizeof *ws) : NULL;
    if (!p || (n_threads > 1 && !ws)) {
        realm_free(p);
        realm_free(ws);
        return realm_error_set(err, REALM_E_NOMEM, "thread pool: out of memory");
    }
    p->size = n_threads;
    p->workers = ws;
    atomic_init(&p->work, 0);
    atomic_init(&p->n_completed, 0);
    atomic_init(&p->n_active, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < n_threads - 1; i++) {
        ws[i] = (worker){.pool = p, .index = i + 1};
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            p->size = p->n_started + 1; /* run on the threads we have */
            break;
        }
        p->n_started++;
    }
    *out = p;
    return REALM_OK;
}

void realm_threadpool_free(realm_threadpool_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].tid, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    realm_free(p->workers);
    realm_free(p);
}

int realm_threadpool_size(const realm_threadpool_t *p)
{
    return p->size;
}

void realm_threadpool_run(realm_threadpool_t *p, int64_t n_tasks, int n_threads,
                          realm_pool_task_fn fn, void *ctx)
{
    if (n_tasks <= 0) return;
    if (n_threads <= 0 || n_threads > p->size) n_threads = p->size;
    if (n_threads > n_tasks) n_threads = (int)n_tasks;
    if (n_threads <= 1 || n_tasks > (int64_t)W_MAX_TASKS) {
        for (int64_t i = 0; i < n_tasks; i++)
            fn(ctx, i, 0);
        return;
    }
    /* Every task of the previous job has completed, so no worker is inside
     * fn; a late worker only reads the job word, which it re-checks. */
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->n_active, n_threads, memory_order_relaxed);
    atomic_store_explicit(&p->n_completed, 0, memory_order_relaxed);
    unsigned long long gen = (W_GEN(atomic_load(&p->work)) + 1) & 0xFFFF;
    atomic_store(&p->work, gen << (2 * W_IDX_BITS) | (unsigned long long)n_tasks << W_IDX_BITS);
    wake(p);
    run_tasks(p, gen, 0);
    for (int spins = 0; atomic_load_explicit(&p->n_completed, memory_order_acquire) < n_tasks;)
        if (++spins < YIELD_AFTER)
            cpu_relax();
        else
            sched_yield(); /* a worker holding a task was preempted: let it run */
}
