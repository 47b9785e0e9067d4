/* backend/cpu/cpu_ops.c — the CPU backend's element-wise ops and attention:
 * one loop per formula, f32 activations; the inner loops of attention and
 * SwiGLU come from the kernel table (cpu_kernels.h). See backend/backend.h for each op's
 * contract. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_impl.h"
#include "base/rowmath.h"
#include "quant/fp16.h"

void realm__cpu_get_rows(realm_backend *be, const realm_weight *emb, const int32_t *token,
                         int32_t n, float *out)
{
    (void)be;
    const realm_type_traits *t = realm_type_traits_get(emb->type);
    size_t row_bytes = realm_type_row_size(emb->type, emb->ne0);
    for (int32_t r = 0; r < n; r++)
        t->to_float((const char *)emb->data + (size_t)token[r] * row_bytes, out + r * emb->ne0,
                    emb->ne0);
}

void realm__cpu_copy_rows(realm_backend *be, const float *src, int64_t width, const int32_t *row_id,
                          int32_t n, float *out)
{
    (void)be;
    for (int32_t r = 0; r < n; r++)
        memcpy(out + r * width, src + row_id[r] * width, (size_t)width * sizeof(float));
}

void realm__cpu_rmsnorm(realm_backend *be, const float *x, const realm_weight *w, int32_t n,
                        float eps, float *out)
{
    (void)be;
    const float *g = w->data;
    int64_t d = w->ne0;
    for (int32_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        double ss = 0; /* a double sum: the reference should not be the error source */
        for (int64_t i = 0; i < d; i++)
            ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / (double)d + eps));
        for (int64_t i = 0; i < d; i++)
            out[r * d + i] = xr[i] * inv * g[i];
    }
}

void realm__cpu_rope(realm_backend *be, float *x, int32_t n, int32_t n_head, int32_t head_dim,
                     int32_t n_rot, realm_rope_mode mode, const float *inv_freq, const int32_t *pos)
{
    (void)be;
    int32_t half = n_rot / 2;
    for (int32_t r = 0; r < n; r++) {
        float *xr = x + (int64_t)r * n_head * head_dim;
        for (int32_t i = 0; i < half; i++) {
            double theta = (double)pos[r] * inv_freq[i];
            float cs = (float)cos(theta), sn = (float)sin(theta);
            /* NORMAL pairs neighbours; NEOX pairs the two halves. */
            int32_t i0 = mode == REALM_ROPE_NEOX ? i : 2 * i;
            int32_t i1 = mode == REALM_ROPE_NEOX ? i + half : 2 * i + 1;
            for (int32_t h = 0; h < n_head; h++) {
                float *xh = xr + h * head_dim;
                float a = xh[i0], b = xh[i1];
                xh[i0] = a * cs - b * sn;
                xh[i1] = a * sn + b * cs;
            }
        }
    }
}

/* Address of element `col` of (layer, seq, position) in one half (k or v)
 * of the pool. */
static void *kv_slot(const realm_kv_pool *kv, void *base, int32_t layer, const realm_batch_seq *s,
                     int32_t p, int32_t col)
{
    int32_t block = s->block_table[p / kv->block_size];
    size_t slot = ((size_t)layer * kv->n_blocks + (size_t)block) * kv->block_size +
                  (size_t)(p % kv->block_size);
    size_t es = kv->type == REALM_TYPE_F16 ? sizeof(realm_fp16) : sizeof(float);
    return (char *)base + (slot * (size_t)kv->kv_dim + (size_t)col) * es;
}

static void kv_row_store(const realm_kv_pool *kv, void *dst, const float *src)
{
    if (kv->type == REALM_TYPE_F16) {
        realm_fp16 *d = dst;
        for (int32_t i = 0; i < kv->kv_dim; i++)
            d[i] = realm_fp32_to_fp16(src[i]);
    } else {
        memcpy(dst, src, (size_t)kv->kv_dim * sizeof(float));
    }
}

void realm__cpu_kv_store(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                         const realm_batch *b, const float *k, const float *v)
{
    (void)be;
    REALM_ASSERT(kv->type == REALM_TYPE_F16 || kv->type == REALM_TYPE_F32);
    for (int32_t r = 0; r < b->n_rows; r++) {
        const realm_batch_seq *s = &b->seqs[b->seq[r]];
        kv_row_store(kv, kv_slot(kv, kv->k, layer, s, b->pos[r], 0), k + (size_t)r * kv->kv_dim);
        kv_row_store(kv, kv_slot(kv, kv->v, layer, s, b->pos[r], 0), v + (size_t)r * kv->kv_dim);
    }
}

/* Positions per softmax chunk: the K and V rows of one chunk and one KV head
 * (2 * 32 * head_dim floats) stay in L1 while every query of a task walks
 * them. Chunks start at multiples of ATTN_CHUNK and are cut at KV block
 * boundaries, so they depend only on absolute positions. */
enum { ATTN_CHUNK = 32, ATTN_MAX_QUERIES = 64, ATTN_ROWS_PER_TASK = 4 };
/* Query heads of one task (rows_per_task * heads_per_task <= ATTN_MAX_QUERIES). */
enum { ATTN_MAX_HEADS = ATTN_MAX_QUERIES / ATTN_ROWS_PER_TASK };

typedef struct attn_job {
    cpu_ctx *c;
    const realm_kv_pool *kv;
    int32_t layer;
    const realm_batch *b;
    const realm_attn_params *p;
    const float *q;         /* (n_rows, n_head * head_dim) */
    float *out;             /* (n_rows, n_head * head_dim) */
    int32_t rows_per_task;  /* consecutive batch rows of one task */
    int32_t heads_per_task; /* query heads of one task, all on one KV head */
    int32_t head_tasks;     /* n_head / heads_per_task */
} attn_job;

/* Chunk [t0, t1) of row r for the nh query heads h0.. (all on one KV head),
 * run by run of KV block: scores sc[h * ATTN_CHUNK + (t - t0)] (values 0),
 * or (values 1) (oh + h * head_dim) += the chunk's V rows weighted by them. */
static void attn_chunk_heads(const attn_job *j, int values, int32_t r, int32_t h0, int32_t nh,
                             int32_t t0, int32_t t1, float *sc, float *oh)
{
    const realm_attn_params *p = j->p;
    const realm_kv_pool *kv = j->kv;
    const realm_batch_seq *s = &j->b->seqs[j->b->seq[r]];
    int32_t hd = p->head_dim, kvh = h0 / (p->n_head / p->n_head_kv), bs = kv->block_size;
    const float *qh = j->q + (int64_t)r * p->n_head * hd + (int64_t)h0 * hd;
    const bool f16 = kv->type == REALM_TYPE_F16;
    for (int32_t t = t0; t < t1; t += bs - t % bs) {
        int32_t run = bs - t % bs < t1 - t ? bs - t % bs : t1 - t;
        if (values)
            j->c->k->attn_values(run, hd, nh, sc + (t - t0), ATTN_CHUNK,
                                 kv_slot(kv, kv->v, j->layer, s, t, kvh * hd), (size_t)kv->kv_dim,
                                 f16, oh, (size_t)hd);
        else
            j->c->k->attn_scores(run, hd, nh, qh, (size_t)hd,
                                 kv_slot(kv, kv->k, j->layer, s, t, kvh * hd), (size_t)kv->kv_dim,
                                 f16, p->scale, sc + (t - t0), ATTN_CHUNK);
    }
}

/* One query's scores sc of chunk [t0, t1) folded into its running softmax:
 * max *m, denominator *l; sc becomes the weights, and the unnormalized
 * output oh is rescaled to the new max (the chunk's V rows are added next).
 * The float operations depend only on the row's positions and the chunk,
 * never on which other rows or heads share the task. */
static void attn_fold(const attn_job *j, int32_t n, float *sc, float *m, float *l, float *oh)
{
    int32_t hd = j->p->head_dim;
    float mx = *m;
    for (int32_t t = 0; t < n; t++)
        if (sc[t] > mx) mx = sc[t];
    /* Online softmax: earlier chunks were weighted by exp(-*m); rescale them
     * to the new max (exp(-inf) = 0 on the first chunk). */
    float alpha = expf(*m - mx);
    *l = *l * alpha + j->c->k->exp_sum(n, sc, mx);
    *m = mx;
    if (alpha != 1.0f)
        for (int32_t i = 0; i < hd; i++)
            oh[i] *= alpha;
}

/* A few rows x the query heads of one KV head (GQA): softmax(q·K^T * scale)
 * · V over positions 0..pos of each row, chunk by chunk, so a chunk of K/V
 * read from memory serves every query of the task from L1. */
static void attn_task(void *ctx, int64_t task, int thread)
{
    (void)thread;
    const attn_job *j = ctx;
    const realm_attn_params *p = j->p;
    int32_t r0 = (int32_t)(task / j->head_tasks) * j->rows_per_task;
    int32_t h0 = (int32_t)(task % j->head_tasks) * j->heads_per_task;
    int32_t r1 = r0 + j->rows_per_task < j->b->n_rows ? r0 + j->rows_per_task : j->b->n_rows;
    int32_t nh = j->heads_per_task, hd = p->head_dim;
    int64_t q_dim = (int64_t)p->n_head * hd;
    float m[ATTN_MAX_QUERIES], l[ATTN_MAX_QUERIES];
    float sc[ATTN_MAX_HEADS * ATTN_CHUNK]; /* one row's scores, head by head */
    int32_t n_pos_max = 0;
    for (int32_t r = r0; r < r1; r++) {
        if (j->b->pos[r] + 1 > n_pos_max) n_pos_max = j->b->pos[r] + 1;
        for (int32_t h = 0; h < nh; h++) {
            m[(r - r0) * nh + h] = -INFINITY;
            l[(r - r0) * nh + h] = 0.0f;
        }
        memset(j->out + r * q_dim + h0 * hd, 0, (size_t)(nh * hd) * sizeof(float));
    }
    for (int32_t t0 = 0; t0 < n_pos_max; t0 += ATTN_CHUNK)
        for (int32_t r = r0; r < r1; r++) {
            int32_t n_pos = j->b->pos[r] + 1;
            if (t0 >= n_pos) continue;
            int32_t t1 = t0 + ATTN_CHUNK < n_pos ? t0 + ATTN_CHUNK : n_pos;
            float *oh = j->out + r * q_dim + (int64_t)h0 * hd;
            attn_chunk_heads(j, 0, r, h0, nh, t0, t1, sc, oh);
            for (int32_t h = 0; h < nh; h++) {
                int32_t qi = (r - r0) * nh + h;
                attn_fold(j, t1 - t0, sc + h * ATTN_CHUNK, &m[qi], &l[qi], oh + (int64_t)h * hd);
            }
            attn_chunk_heads(j, 1, r, h0, nh, t0, t1, sc, oh);
        }
    for (int32_t r = r0; r < r1; r++)
        for (int32_t h = 0; h < nh; h++) {
            float inv = 1.0f / l[(r - r0) * nh + h], *oh = j->out + r * q_dim + (h0 + h) * hd;
            for (int32_t i = 0; i < hd; i++)
                oh[i] *= inv;
        }
}

void realm__cpu_attention(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                          const realm_batch *b, const realm_attn_params *p, const float *q,
                          float *out)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    int64_t work = 0; /* multiply-adds */
    for (int32_t r = 0; r < b->n_rows; r++) {
        REALM_ASSERT(b->pos[r] + 1 <= c->lim.max_ctx);
        work += 2 * (int64_t)(b->pos[r] + 1) * p->n_head * p->head_dim;
    }
    attn_job j = {.c = c, .kv = kv, .layer = layer, .b = b, .p = p, .q = q, .out = out};
    /* A short decode step is cheaper than waking the pool (cf. matmul). */
    int threads = work >= (1 << 18) ? c->n_threads : 1;
    int32_t group = p->n_head / p->n_head_kv;
    /* Prefill: tasks of a few rows x one KV head's query group share its
     * K/V chunks. Few rows (decode): one task per (row, head), enough tasks
     * to balance the threads. Either way each query's arithmetic is the same. */
    int64_t grouped =
        ((int64_t)b->n_rows + ATTN_ROWS_PER_TASK - 1) / ATTN_ROWS_PER_TASK * p->n_head_kv;
    if (grouped >= 4 * threads && ATTN_ROWS_PER_TASK * group <= ATTN_MAX_QUERIES) {
        j.rows_per_task = ATTN_ROWS_PER_TASK;
        j.heads_per_task = group;
    } else {
        j.rows_per_task = 1;
        j.heads_per_task = 1;
    }
    j.head_tasks = p->n_head / j.heads_per_task;
    int64_t n_tasks = ((int64_t)b->n_rows + j.rows_per_task - 1) / j.rows_per_task * j.head_tasks;
    realm_threadpool_run(c->pool, n_tasks, threads, attn_task, &j);
}

void realm__cpu_swiglu(realm_backend *be, float *gate, const float *up, int64_t n)
{
    realm__cpu_ctx(be)->k->swiglu(n, gate, up);
}

void realm__cpu_add(realm_backend *be, float *x, const float *y, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

typedef struct argmax_job {
    const float *x;
    int64_t width;
    int32_t *out;
} argmax_job;

static void argmax_task(void *ctx, int64_t r, int thread)
{
    (void)thread;
    const argmax_job *j = ctx;
    j->out[r] = realm_argmax_f32(j->x + r * j->width, (int32_t)j->width);
}

/* One row a task: a row of a large vocabulary is ~0.5 MB to scan. */
void realm__cpu_argmax(realm_backend *be, const float *x, int32_t n, int64_t width, int32_t *out)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    argmax_job j = {x, width, out};
    realm_threadpool_run(c->pool, n, c->n_threads, argmax_task, &j);
}
