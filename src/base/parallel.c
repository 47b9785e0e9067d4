#include "base/parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/alloc.h"

typedef struct job {
    atomic_llong next;
    int64_t n_tasks;
    realm_task_fn fn;
    void *ctx;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n_tasks) return NULL;
        j->fn(j->ctx, i);
    }
}

void realm_parallel_for(int64_t n_tasks, int n_threads, realm_task_fn fn, void *ctx)
{
    job j = {.n_tasks = n_tasks, .fn = fn, .ctx = ctx};
    atomic_init(&j.next, 0);
    if (n_threads > n_tasks) n_threads = (int)n_tasks;
    if (n_threads <= 1) {
        worker(&j);
        return;
    }
    pthread_t *threads = realm_calloc((size_t)n_threads - 1, sizeof *threads);
    int to_start = threads ? n_threads - 1 : 0;
    int started = 0;
    for (; started < to_start; started++)
        if (pthread_create(&threads[started], NULL, worker, &j) != 0) break;
    /* The caller works too; tasks are claimed atomically, so a short start is
     * still correct, only slower. */
    worker(&j);
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    realm_free(threads);
}

int realm_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
