/* backend/cpu/cpu_ops.c — the reference kernels of the CPU backend: plain C,
 * one loop per formula, f32 activations. See backend/backend.h for each op's
 * contract. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_impl.h"
#include "base/parallel.h"

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

/* One matmul split into tasks of `chunk` output rows. */
typedef struct mm_job {
    const realm_weight *w;
    const float *bias; /* (w->ne1) or NULL */
    const char *act;   /* (n, act_row_bytes) activations in w's vec_dot_type */
    size_t act_row_bytes;
    size_t w_row_bytes;
    int32_t n;
    int64_t chunk;
    realm_vec_dot_fn dot;
    float *out; /* (n, w->ne1) */
} mm_job;

/* Weight-row-major loop: each weight row is read once and dotted with every
 * activation row while it is in cache. */
static void mm_task(void *ctx, int64_t task)
{
    const mm_job *j = ctx;
    int64_t o0 = task * j->chunk, o1 = o0 + j->chunk;
    if (o1 > j->w->ne1) o1 = j->w->ne1;
    for (int64_t o = o0; o < o1; o++) {
        const char *wr = (const char *)j->w->data + (size_t)o * j->w_row_bytes;
        float b = j->bias ? j->bias[o] : 0.0f;
        for (int32_t r = 0; r < j->n; r++)
            j->out[r * j->w->ne1 + o] =
                j->dot(j->w->ne0, wr, j->act + (size_t)r * j->act_row_bytes) + b;
    }
}

void realm__cpu_matmul(realm_backend *be, const realm_weight *w, const realm_weight *bias,
                       const float *x, int32_t n, float *out)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    const realm_type_traits *t = realm_type_traits_get(w->type);
    mm_job j = {.w = w,
                .bias = bias ? bias->data : NULL,
                .n = n,
                .dot = t->vec_dot,
                .out = out,
                .w_row_bytes = realm_type_row_size(w->type, w->ne0)};
    REALM_ASSERT(n <= c->lim.max_rows && w->ne0 <= c->lim.max_ne0);
    if (t->vec_dot_type == REALM_TYPE_F32) {
        j.act = (const char *)x;
        j.act_row_bytes = (size_t)w->ne0 * sizeof(float);
    } else {
        /* Quantize each activation row once, for all output rows. */
        const realm_type_traits *a = realm_type_traits_get(t->vec_dot_type);
        j.act_row_bytes = realm_type_row_size(t->vec_dot_type, w->ne0);
        REALM_ASSERT(j.act_row_bytes > 0 && (size_t)n * j.act_row_bytes <= c->act_q_bytes);
        for (int32_t r = 0; r < n; r++)
            a->from_float(x + r * w->ne0, (char *)c->act_q + (size_t)r * j.act_row_bytes, w->ne0);
        j.act = c->act_q;
    }
    /* Threads pay off only above ~a quarter million multiply-adds. */
    double work = (double)w->ne1 * (double)w->ne0 * n;
    int threads = work >= (1 << 18) ? c->n_threads : 1;
    j.chunk = threads > 1 ? (w->ne1 + 4 * threads - 1) / (4 * threads) : w->ne1;
    if (j.chunk < 1) j.chunk = 1;
    int64_t n_tasks = (w->ne1 + j.chunk - 1) / j.chunk;
    realm_parallel_for(n_tasks, threads, mm_task, &j);
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

/* Address of (layer, seq, position) in one half (k or v) of the pool. */
static float *kv_slot(const realm_kv_pool *kv, float *base, int32_t layer, const realm_batch_seq *s,
                      int32_t p)
{
    int32_t block = s->block_table[p / kv->block_size];
    size_t slot = ((size_t)layer * kv->n_blocks + (size_t)block) * kv->block_size +
                  (size_t)(p % kv->block_size);
    return base + slot * kv->kv_dim;
}

void realm__cpu_kv_store(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                         const realm_batch *b, const float *k, const float *v)
{
    (void)be;
    size_t row = (size_t)kv->kv_dim * sizeof(float);
    for (int32_t r = 0; r < b->n_rows; r++) {
        const realm_batch_seq *s = &b->seqs[b->seq[r]];
        memcpy(kv_slot(kv, kv->k, layer, s, b->pos[r]), k + (size_t)r * kv->kv_dim, row);
        memcpy(kv_slot(kv, kv->v, layer, s, b->pos[r]), v + (size_t)r * kv->kv_dim, row);
    }
}

void realm__cpu_attention(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                          const realm_batch *b, const realm_attn_params *p, const float *q,
                          float *out)
{
    cpu_ctx *c = realm__cpu_ctx(be);
    int32_t hd = p->head_dim, group = p->n_head / p->n_head_kv;
    int64_t q_dim = (int64_t)p->n_head * hd;
    float *w = c->scores;
    for (int32_t r = 0; r < b->n_rows; r++) {
        const realm_batch_seq *s = &b->seqs[b->seq[r]];
        int32_t n_pos = b->pos[r] + 1;
        REALM_ASSERT(n_pos <= c->lim.max_ctx);
        for (int32_t h = 0; h < p->n_head; h++) {
            const float *qh = q + r * q_dim + h * hd;
            int32_t kvh = h / group;
            float mx = -INFINITY;
            for (int32_t t = 0; t < n_pos; t++) {
                const float *kt = kv_slot(kv, kv->k, layer, s, t) + kvh * hd;
                float d = 0;
                for (int32_t i = 0; i < hd; i++)
                    d += qh[i] * kt[i];
                w[t] = d * p->scale;
                if (w[t] > mx) mx = w[t];
            }
            /* Softmax shifted by the max so exp never overflows. */
            float sum = 0;
            for (int32_t t = 0; t < n_pos; t++) {
                w[t] = expf(w[t] - mx);
                sum += w[t];
            }
            float *oh = out + r * q_dim + h * hd;
            memset(oh, 0, (size_t)hd * sizeof(float));
            for (int32_t t = 0; t < n_pos; t++) {
                const float *vt = kv_slot(kv, kv->v, layer, s, t) + kvh * hd;
                float a = w[t] / sum;
                for (int32_t i = 0; i < hd; i++)
                    oh[i] += a * vt[i];
            }
        }
    }
}

void realm__cpu_swiglu(realm_backend *be, float *gate, const float *up, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void realm__cpu_add(realm_backend *be, float *x, const float *y, int64_t n)
{
    (void)be;
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}
