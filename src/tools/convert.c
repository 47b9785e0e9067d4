#include "tools/convert.h"

#include <stdatomic.h>

#include "base/alloc.h"
#include "base/parallel.h"

#define ROWS_PER_TASK 16

typedef struct convert_job {
    const realm_type_traits *tr;
    int64_t ne0, n_rows;
    size_t row_bytes;
    realm_row_source_fn source;
    void *ctx;
    unsigned char *out;
    atomic_int failed; /* a task could not get its scratch row */
} convert_job;

static void convert_task(void *arg, int64_t task)
{
    convert_job *j = arg;
    float *row = realm_malloc((size_t)j->ne0 * sizeof *row);
    if (!row) {
        atomic_store(&j->failed, 1);
        return;
    }
    int64_t end = (task + 1) * ROWS_PER_TASK;
    if (end > j->n_rows) end = j->n_rows;
    for (int64_t r = task * ROWS_PER_TASK; r < end; r++) {
        j->source(j->ctx, r, row, j->ne0);
        j->tr->from_float(row, j->out + (size_t)r * j->row_bytes, j->ne0);
    }
    realm_free(row);
}

realm_status realm_convert_rows(realm_type type, int64_t ne0, int64_t n_rows,
                                realm_row_source_fn source, void *ctx, int n_threads, void *out,
                                realm_error *err)
{
    const realm_type_traits *tr = realm_type_traits_get(type);
    if (!tr || !tr->from_float)
        return realm_error_set(err, REALM_E_UNSUPPORTED, "cannot quantize to type %s",
                               tr ? tr->name : "(unknown)");
    size_t row_bytes = realm_type_row_size(type, ne0);
    if (row_bytes == 0)
        return realm_error_set(err, REALM_E_INVALID,
                               "row length %lld is not a multiple of %s's block size %lld",
                               (long long)ne0, tr->name, (long long)tr->block_size);
    convert_job j = {.tr = tr, .ne0 = ne0, .n_rows = n_rows, .row_bytes = row_bytes,
                     .source = source, .ctx = ctx, .out = out};
    atomic_init(&j.failed, 0);
    realm_parallel_for((n_rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, n_threads, convert_task, &j);
    if (atomic_load(&j.failed))
        return realm_error_set(err, REALM_E_NOMEM, "out of memory converting rows to %s",
                               tr->name);
    return REALM_OK;
}
