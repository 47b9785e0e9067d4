/*
 * base/parallel.h — run a function over a range of tasks on several threads.
 *
 * Contract: realm_parallel_for calls fn(ctx, i) exactly once for every i in
 * [0, n_tasks), spread over n_threads threads (the caller's thread is one of
 * them; n_threads <= 1 runs everything inline), and returns when all calls
 * have finished. Tasks are handed out dynamically, one at a time, so uneven
 * tasks balance. It starts threads per call: meant for tools (quantize,
 * synth), not for the decode loop, which gets a persistent pool.
 * If threads cannot be started the remaining work runs on fewer threads
 * (down to the caller's alone): slower, never wrong, so it cannot fail.
 */
#ifndef REALM_BASE_PARALLEL_H
#define REALM_BASE_PARALLEL_H

#include <stdint.h>

typedef void (*realm_task_fn)(void *ctx, int64_t task);

void realm_parallel_for(int64_t n_tasks, int n_threads, realm_task_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int realm_cpu_count(void);

#endif
