/* backend/cpu/cpu_ops.c — the CPU backend's element-wise ops and attention:
 * one loop per formula, f32 activations; the inner loops of attention and
 * SwiGLU come from the kernel table (cpu_kernels.h). See backend/backend.h for each op's
 * contract. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_impl.h"

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

typedef struct attn_job {
    cpu_ctx *c;
    const realm_kv_pool *kv;
    int32_t layer;
    const realm_batch *b;
    const realm_attn_params *p;
    const float *q;
    float *out;
} attn_job;

/* One (row, head): softmax(q·K^T * scale) · V over positions 0..pos, walked
 * in runs of positions that share a KV block (contiguous rows). */
static void attn_task(void *ctx, int64_t task, int thread)
{
    const attn_job *j = ctx;
    const realm_attn_params *p = j->p;
    const realm_kv_pool *kv = j->kv;
    const realm_cpu_kernels *k = j->c->k;
    int32_t r = (int32_t)(task / p->n_head), h = (int32_t)(task % p->n_head);
    int32_t hd = p->head_dim, kvh = h / (p->n_head / p->n_head_kv);
    int64_t q_dim = (int64_t)p->n_head * hd;
    const realm_batch_seq *s = &j->b->seqs[j->b->seq[r]];
    int32_t n_pos = j->b->pos[r] + 1, bs = kv->block_size;
    float *w = j->c->scores + (size_t)thread * (size_t)j->c->lim.max_ctx;
    const float *qh = j->q + r * q_dim + h * hd;
    for (int32_t t = 0; t < n_pos; t += bs - t % bs) {
        int32_t run = bs - t % bs < n_pos - t ? bs - t % bs : n_pos - t;
        k->attn_scores(run, hd, qh, kv_slot(kv, kv->k, j->layer, s, t) + kvh * hd,
                       (size_t)kv->kv_dim, p->scale, w + t);
    }
    float mx = -INFINITY;
    for (int32_t t = 0; t < n_pos; t++)
        if (w[t] > mx) mx = w[t];
    /* Softmax shifted by the max so exp never overflows. */
    float inv = 1.0f / k->exp_sum(n_pos, w, mx);
    for (int32_t t = 0; t < n_pos; t++)
        w[t] *= inv;
    float *oh = j->out + r * q_dim + h * hd;
    memset(oh, 0, (size_t)hd * sizeof(float));
    for (int32_t t = 0; t < n_pos; t += bs - t % bs) {
        int32_t run = bs - t % bs < n_pos - t ? bs - t % bs : n_pos - t;
        k->attn_values(run, hd, w + t, kv_slot(kv, kv->v, j->layer, s, t) + kvh * hd,
                       (size_t)kv->kv_dim, oh);
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
    realm_threadpool_run(c->pool, (int64_t)b->n_rows * p->n_head, threads, attn_task, &j);
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
