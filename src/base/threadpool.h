/*
 * base/threadpool.h — a persistent pool of worker threads for the hot path
 * (the CPU backend's matmuls and attention, ~200 jobs per decoded token).
 *
 * Contract: realm_threadpool_run calls fn(ctx, task, thread) exactly once for
 * every task in [0, n_tasks) and returns when all calls have finished. The
 * calling thread works too (thread index 0; workers are 1..size-1), so a pool
 * of size 1 has no threads and runs everything inline. Tasks are claimed one
 * at a time from a shared counter, so uneven tasks balance. `thread` lets a
 * task use per-thread scratch.
 *
 * Waiting: between jobs workers spin briefly (a decode step submits the next
 * job within microseconds), then sleep on a condition variable so an idle
 * server costs no CPU. run() allocates nothing.
 *
 * Threads: one caller at a time per pool (a pool belongs to one backend
 * instance, which serves one forward pass at a time). fn must not call run()
 * on the same pool.
 */
#ifndef REALM_BASE_THREADPOOL_H
#define REALM_BASE_THREADPOOL_H

#include <stdint.h>

#include "base/status.h"

typedef struct realm_threadpool realm_threadpool_t;

typedef void (*realm_pool_task_fn)(void *ctx, int64_t task, int thread);

/* n_threads <= 0: one per online CPU. Starts n_threads - 1 workers. */
realm_status realm_threadpool_create(int n_threads, realm_threadpool_t **out, realm_error *err);
/* Stops and joins the workers; NULL is a no-op. */
void realm_threadpool_free(realm_threadpool_t *p);
/* Threads that run tasks, the caller included. */
int realm_threadpool_size(const realm_threadpool_t *p);
/* n_threads caps how many threads take part (<= 0 or > size: all). */
void realm_threadpool_run(realm_threadpool_t *p, int64_t n_tasks, int n_threads,
                          realm_pool_task_fn fn, void *ctx);

#endif
