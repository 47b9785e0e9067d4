/* backend/cpu/cpu_matmul.c — the CPU matmul: quantize the activation rows
 * once, then run the kernel table's gemm over tiles of the output on the
 * thread pool.
 *
 * Work split: a decode step (few activation rows) is memory-bound, so tasks
 * are slices of weight rows, several per thread so uneven cores balance.
 * A prefill batch is compute-bound: tasks are (weight rows x activation
 * rows) tiles sized so the weight slice stays in L2 while activation rows
 * stream through it. Every output element is computed by the same gemm
 * instruction sequence whatever the split (cpu_kernels.h), so results do not
 * depend on the thread count or the batch shape. */
#include "backend/cpu/cpu_impl.h"

/* Weight bytes a prefill task keeps hot (well inside a 512 KiB L2). */
#define TASK_WEIGHT_BYTES (160 * 1024)
/* Activation rows per prefill task. */
#define TASK_ACT_ROWS 64
/* Weight matrices larger than this are not expected to stay in L3 between
 * column tiles (plan's task order). */
#define WEIGHT_L3_BYTES (4.0 * 1024 * 1024)

typedef struct mm_job {
    const realm_weight *w;
    const void *wdata; /* w->packed (for a packed gemm) or w->data */
    const float *bias; /* (w->ne1) or NULL */
    const char *act;   /* (n, act_row_bytes) activations in w's vec_dot_type */
    size_t act_row_bytes, w_row_bytes;
    int32_t n;
    int64_t rows_per_task, cols_per_task, n_row_tasks, n_col_tasks;
    bool cols_inner; /* consecutive tasks take the column tiles of one weight slice */
    realm_type act_type;    /* the activations' format (w's vec_dot_type) */
    realm_cpu_gemm_fn gemm; /* NULL: reference vec_dot */
    realm_vec_dot_fn dot;
    float *out; /* (n, w->ne1) */
} mm_job;

static void mm_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const mm_job *j = ctx;
    int64_t N = j->w->ne1;
    int64_t rt = j->cols_inner ? task / j->n_col_tasks : task % j->n_row_tasks;
    int64_t ct = j->cols_inner ? task % j->n_col_tasks : task / j->n_row_tasks;
    int64_t r0 = rt * j->rows_per_task, c0 = ct * j->cols_per_task;
    int64_t nr = N - r0 < j->rows_per_task ? N - r0 : j->rows_per_task;
    int64_t nc = j->n - c0 < j->cols_per_task ? j->n - c0 : j->cols_per_task;
    const char *w = (const char *)j->wdata + (size_t)r0 * j->w_row_bytes;
    const char *a = j->act + (size_t)c0 * j->act_row_bytes;
    float *out = j->out + (size_t)c0 * N + r0;
    if (j->gemm) {
        j->gemm(j->w->ne0, w, j->w_row_bytes, nr, a, j->act_row_bytes, nc, out, (size_t)N);
    } else {
        for (int64_t r = 0; r < nr; r++)
            for (int64_t c = 0; c < nc; c++)
                out[c * N + r] = j->dot(j->w->ne0, w + (size_t)r * j->w_row_bytes,
                                        a + (size_t)c * j->act_row_bytes);
    }
    if (j->bias)
        for (int64_t c = 0; c < nc; c++)
            for (int64_t r = 0; r < nr; r++)
                out[c * N + r] += j->bias[r0 + r];
}

typedef struct quant_job {
    realm_from_float_fn q;
    const float *x;
    int64_t ne0;
    char *dst;
    size_t row_bytes;
} quant_job;

static void quant_task(void *ctx, int64_t r, int thread)
{
    (void)thread;
    const quant_job *j = ctx;
    j->q(j->x + r * j->ne0, j->dst + (size_t)r * j->row_bytes, j->ne0);
}

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* Several matmuls over the same x, run as one pool job. */
typedef struct multi_job {
    mm_job jobs[REALM_MATMUL_MULTI_MAX];
    int64_t first_task[REALM_MATMUL_MULTI_MAX + 1]; /* job i owns tasks [first_task[i], first_task[i + 1]) */
    int count;
} multi_job;

static void multi_task(void *ctx, int64_t task, int thread)
{
    const multi_job *m = ctx;
    int i = 0;
    while (task >= m->first_task[i + 1])
        i++;
    mm_task((void *)&m->jobs[i], task - m->first_task[i], thread);
}

/* Fills j for w and returns its task count; quantizes x into *act_free (the
 * next free byte of the scratch) unless an earlier job of this call already
 * holds x in the same format. */
static int64_t plan(cpu_ctx *c, const realm_weight *w, const realm_weight *bias, const float *x,
                    int32_t n, float *out, const mm_job *earlier, int n_earlier, size_t *act_free,
                    int threads, mm_job *j)
{
    const realm_type_traits *t = realm_type_traits_get(w->type);
    *j = (mm_job){.w = w,
                  .bias = bias ? bias->data : NULL,
                  .n = n,
                  .gemm = w->packed ? c->k->gemm_packed[w->type] : c->k->gemm[w->type],
                  .wdata = w->packed ? w->packed : w->data,
                  .dot = t->vec_dot,
                  .out = out,
                  .w_row_bytes = realm_type_row_size(w->type, w->ne0),
                  .act_type = t->vec_dot_type};
    REALM_ASSERT(n <= c->lim.max_rows && w->ne0 <= c->lim.max_ne0);
    if (t->vec_dot_type == REALM_TYPE_F32) {
        j->act = (const char *)x;
        j->act_row_bytes = (size_t)w->ne0 * sizeof(float);
    } else {
        j->act_row_bytes = realm_type_row_size(t->vec_dot_type, w->ne0);
        for (int i = 0; i < n_earlier && !j->act; i++)
            if (earlier[i].act_type == j->act_type) j->act = earlier[i].act;
        if (!j->act) {
            /* Quantize each activation row once, for all output rows. */
            quant_job q = {.q = c->k->quantize[t->vec_dot_type], .x = x, .ne0 = w->ne0,
                           .dst = (char *)c->act_q + *act_free, .row_bytes = j->act_row_bytes};
            if (!q.q) q.q = realm_type_traits_get(t->vec_dot_type)->from_float;
            *act_free += (size_t)n * j->act_row_bytes;
            REALM_ASSERT(j->act_row_bytes > 0 && *act_free <= c->act_q_bytes);
            realm_threadpool_run(c->pool, n, n >= 8 ? threads : 1, quant_task, &q);
            j->act = q.dst;
        }
    }
    int64_t tr = c->k->tile_rows, N = w->ne1;
    if (n <= 8 || threads == 1) {
        /* decode: slices of weight rows, ~4 per thread */
        j->cols_per_task = n;
        j->rows_per_task = threads > 1 ? round_up((N + 4 * threads - 1) / (4 * threads), tr) : N;
    } else {
        int64_t rows = (int64_t)(TASK_WEIGHT_BYTES / j->w_row_bytes);
        rows = rows < tr ? tr : rows / tr * tr;
        /* enough tasks to keep every thread busy even for narrow matrices */
        int64_t cols = TASK_ACT_ROWS;
        while ((round_up(N, rows) / rows) * ((n + cols - 1) / cols) < 4 * threads && rows > tr)
            rows = rows / 2 < tr ? tr : rows / 2 / tr * tr;
        j->rows_per_task = rows;
        j->cols_per_task = cols;
    }
    if (j->rows_per_task < 1) j->rows_per_task = 1;
    j->n_row_tasks = (N + j->rows_per_task - 1) / j->rows_per_task;
    j->n_col_tasks = (n + j->cols_per_task - 1) / j->cols_per_task;
    /* Task order. Row slices vary fastest by default: a column tile of
     * activations stays in L2 while the weights pass, and small matrices
     * come back from L3 for the next tile. A matrix past WEIGHT_L3_BYTES (a
     * share of L3, which the activations and other work use too) is mostly
     * gone from it by the next column tile, so there a weight
     * slice's column tiles go one after the other instead (the activations,
     * a few MB, come from L3): one 8192 x 2048 F16 matrix at 512 rows, one
     * thread, 76-83 -> 82-87 GFLOP/s; 2048 x 2048 78 -> 85; SmolLM2's 1536 x 576
     * would lose 4% (bench/cpu_gemm_order.c). */
    j->cols_inner = (double)N * (double)j->w_row_bytes > WEIGHT_L3_BYTES;
    return j->n_row_tasks * j->n_col_tasks;
}

void realm__cpu_matmul_multi(realm_backend *be, int count, const realm_weight *const *w,
                             const realm_weight *const *bias, const float *x, int32_t n,
                             float *const *out)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    REALM_ASSERT(count >= 1 && count <= REALM_MATMUL_MULTI_MAX);
    multi_job m = {.count = count};
    /* Threads pay off only above ~a quarter million multiply-adds. */
    double work = 0;
    for (int i = 0; i < count; i++)
        work += (double)w[i]->ne1 * (double)w[i]->ne0 * n;
    int threads = work >= (1 << 18) ? c->n_threads : 1;
    size_t act_free = 0;
    for (int i = 0; i < count; i++)
        m.first_task[i + 1] = m.first_task[i] + plan(c, w[i], bias ? bias[i] : NULL, x, n, out[i],
                                                     m.jobs, i, &act_free, threads, &m.jobs[i]);
    realm_threadpool_run(c->pool, m.first_task[count], threads, multi_task, &m);
}

void realm__cpu_matmul(realm_backend *be, const realm_weight *w, const realm_weight *bias,
                       const float *x, int32_t n, float *out)
{
    realm__cpu_matmul_multi(be, 1, &w, &bias, x, n, &out);
}
