/* backend/cuda/cuda_ops.cu — the element-wise and row ops: get_rows,
 * copy_rows, rmsnorm, rope, kv_store, swiglu, add (contracts in
 * backend/backend.h), rope(q)+rope(k)+kv_store fused into one kernel
 * for the issue loop (same arithmetic as the three), and the issue loop's
 * L2 prefetch of the next matmul's weights. Launch shapes depend only on the op's arguments, never
 * on data, so a captured graph stays valid for every pass with equal
 * arguments. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_kv.cuh"
#include "backend/cuda/cuda_quant.cuh"
#include "backend/cuda/cuda_rope.cuh"

#define LAUNCHED(c, what) CUDA_CHECK(c, cudaGetLastError())

static unsigned blocks_for(int64_t n, int threads)
{
    return (unsigned)((n + threads - 1) / threads);
}

__global__ static void k_get_rows(int type, const uint8_t *emb, size_t row_bytes, int64_t ne0,
                                  const int32_t *token, int32_t n, float *out)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int32_t r = blockIdx.y;
    if (i >= ne0 || r >= n) return;
    out[(int64_t)r * ne0 + i] = dq_elem(type, emb + (size_t)token[r] * row_bytes, i);
}

void realm__cuda_issue_get_rows(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    dim3 grid(blocks_for(w->ne0, 256), (unsigned)op->n);
    k_get_rows<<<grid, 256, 0, c->stream>>>(w->type, (const uint8_t *)w->data,
                                           realm_type_row_size(w->type, w->ne0), w->ne0,
                                           (const int32_t *)cuda__staging(c, op->idx_off), op->n,
                                           (float *)op->out);
    LAUNCHED(c, "get_rows");
}

__global__ static void k_copy_rows(const float *src, int64_t width, const int32_t *row_id,
                                   float *out)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int32_t r = blockIdx.y;
    if (i < width) out[r * width + i] = src[row_id[r] * width + i];
}

void realm__cuda_issue_copy_rows(cuda_ctx *c, const struct cuda_op *op)
{
    dim3 grid(blocks_for(op->width, 256), (unsigned)op->n);
    k_copy_rows<<<grid, 256, 0, c->stream>>>((const float *)op->x, op->width,
                                            (const int32_t *)cuda__staging(c, op->idx_off),
                                            (float *)op->out);
    LAUNCHED(c, "copy_rows");
}

/* One block of NORM_THREADS per row; the sum as k_rmsnorm_quant's. */
__global__ static void __launch_bounds__(NORM_THREADS)
    k_rmsnorm(const float *x, const float *g, int64_t d, float eps, float *out)
{
    __shared__ float sh[NORM_THREADS / 32];
    const float *xr = x + blockIdx.x * d;
    const float inv = rms_inv(row_sumsq(xr, d, sh), d, eps);
    for (int64_t i = threadIdx.x; i < d; i += NORM_THREADS)
        out[blockIdx.x * d + i] = xr[i] * inv * g[i];
}

void realm__cuda_issue_rmsnorm(cuda_ctx *c, const struct cuda_op *op)
{
    k_rmsnorm<<<op->n, NORM_THREADS, 0, c->stream>>>((const float *)op->x,
                                                     (const float *)op->w.data, op->w.ne0, op->f0,
                                                     (float *)op->out);
    LAUNCHED(c, "rmsnorm");
}

/* Rotate pair i of one head in place by (cs, sn). */
__device__ __forceinline__ void rope_rotate(float *xh, int32_t i, int32_t half, int neox, float cs,
                                            float sn)
{
    int32_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
    rope_turn(xh[i0], xh[i1], cs, sn, &xh[i0], &xh[i1]);
}

__device__ __forceinline__ void rope_pair(float *xh, int32_t i, int32_t half, int neox, int32_t p,
                                          const float *inv_freq)
{
    float cs, sn;
    rope_angle(i, p, inv_freq, &cs, &sn);
    rope_rotate(xh, i, half, neox, cs, sn);
}

/* One thread per (row, rotated pair, head). */
__global__ static void k_rope(float *x, int32_t n_head, int32_t head_dim, int32_t half, int neox,
                              const float *inv_freq, const int32_t *pos)
{
    int32_t i = blockIdx.x * blockDim.x + threadIdx.x; /* pair */
    int32_t h = blockIdx.y, r = blockIdx.z;
    if (i >= half) return;
    rope_pair(x + ((int64_t)r * n_head + h) * head_dim, i, half, neox, pos[r], inv_freq);
}

/* rope(q) + rope(k) + kv_store(k, v) in one launch: block (head slot, row)
 * with head_dim threads; slots [0, nq) rotate q heads, [nq, nq + nk) rotate
 * k heads and store them, [nq + nk, nq + 2 nk) store v heads, into a pool
 * of KV (d.kv_f16: __half, else float). */
template <typename KV> __global__ static void k_rope_kv(const cuda_rope_kv d)
{
    const int32_t h = blockIdx.x, r = blockIdx.y, i = threadIdx.x;
    const int32_t nq = d.nq, nk = d.nk, head_dim = d.head_dim, half = d.half;
    const int32_t kv_dim = nk * head_dim;
    const bool is_k = h >= nq && h < nq + nk;
    /* angles and the K/V slot come from constants and the staged batch
     * (uploaded before the pass's first kernel): computed while the kernel
     * before runs */
    float cs = 1.0f, sn = 0.0f;
    if ((h < nq || is_k) && i < half)
        rope_angle(i, h < nq ? d.qpos[r] : d.kpos[r], d.inv_freq, &cs, &sn);
    const size_t slot = rope_kv_slot(d, r);
    pdl_wait();
    pdl_trigger();
    if (h < nq) {
        if (i < half) rope_rotate(d.q + ((int64_t)r * nq + h) * head_dim, i, half, d.neox, cs, sn);
        return;
    }
    const int32_t kh = is_k ? h - nq : h - nq - nk;
    float *src = (is_k ? d.k : (float *)d.v) + (int64_t)r * kv_dim + (int64_t)kh * head_dim;
    if (is_k) {
        if (i < half) rope_rotate(src, i, half, d.neox, cs, sn);
        __syncthreads(); /* the pair's other element was written by another thread */
    }
    KV *dst = (KV *)(is_k ? d.kbase : d.vbase) + slot * kv_dim + (size_t)kh * head_dim;
    for (int32_t j = i; j < head_dim; j += blockDim.x)
        kv_put(dst + j, src[j]);
}

bool realm__cuda_rope_kv_of(const cuda_ctx *c, const struct cuda_op *rq, const struct cuda_op *rk,
                            const struct cuda_op *st, struct cuda_rope_kv *d)
{
    const realm_kv_pool *kv = &st->kv;
    const struct cuda_batch *b = &st->batch;
    const int32_t hd = rk->i1;
    if (rq->kind != CUDA_OP_ROPE || rk->kind != CUDA_OP_ROPE || st->kind != CUDA_OP_KV_STORE ||
        st->x != rk->out || rq->out == rk->out || rq->out == st->y || rk->out == st->y ||
        rq->n != rk->n || rk->n != b->n_rows || rq->i1 != hd || rq->i2 != rk->i2 ||
        rq->width != rk->width || rq->y != rk->y || (int64_t)rk->i0 * hd != kv->kv_dim ||
        hd > 1024 || rk->i2 / 2 <= 0)
        return false;
    *d = (struct cuda_rope_kv){
        .q = (float *)rq->out,
        .k = (float *)rk->out,
        .v = (const float *)st->y,
        .nq = rq->i0,
        .nk = rk->i0,
        .head_dim = hd,
        .half = rk->i2 / 2,
        .neox = rk->width == REALM_ROPE_NEOX,
        .kv_f16 = kv_is_f16(kv),
        .inv_freq = (const float *)rk->y,
        .qpos = (const int32_t *)cuda__staging(c, rq->idx_off),
        .kpos = (const int32_t *)cuda__staging(c, rk->idx_off),
        .kbase = kv->k,
        .vbase = kv->v,
        .layer = st->i0,
        .n_blocks = kv->n_blocks,
        .block_size = kv->block_size,
        .max_blocks = b->max_blocks,
        .pos = (const int32_t *)cuda__staging(c, b->pos_off),
        .seq = (const int32_t *)cuda__staging(c, b->seq_off),
        .tables = (const int32_t *)cuda__staging(c, b->table_off),
    };
    return true;
}

bool realm__cuda_issue_rope_kv(cuda_ctx *c, const struct cuda_op *rq, const struct cuda_op *rk,
                               const struct cuda_op *st)
{
    struct cuda_rope_kv d;
    if (!realm__cuda_rope_kv_of(c, rq, rk, st, &d)) return false;
    const int threads = d.head_dim < 32 ? 32 : d.head_dim;
    dim3 grid((unsigned)(d.nq + 2 * d.nk), (unsigned)rq->n);
    cuda__launch_pdl(c, d.kv_f16 ? k_rope_kv<__half> : k_rope_kv<float>, grid,
                     dim3((unsigned)threads), 0, d);
    LAUNCHED(c, "rope_kv");
    return true;
}

void realm__cuda_issue_rope(cuda_ctx *c, const struct cuda_op *op)
{
    int32_t n_half = op->i2 / 2;
    if (n_half <= 0) return;
    dim3 grid(blocks_for(n_half, 64), (unsigned)op->i0, (unsigned)op->n);
    k_rope<<<grid, 64, 0, c->stream>>>((float *)op->out, op->i0, op->i1, n_half,
                                       op->width == REALM_ROPE_NEOX, (const float *)op->y,
                                       (const int32_t *)cuda__staging(c, op->idx_off));
    LAUNCHED(c, "rope");
}

/* One thread per (element, row), into a pool of KV (__half or float). */
template <typename KV>
__global__ static void k_kv_store(KV *kbase, KV *vbase, int32_t layer, int32_t n_blocks,
                                  int32_t block_size, int32_t kv_dim, const int32_t *pos,
                                  const int32_t *seq, const int32_t *tables, int32_t max_blocks,
                                  const float *k, const float *v)
{
    int32_t i = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (i >= kv_dim) return;
    int32_t p = pos[r];
    int32_t block = tables[(int64_t)seq[r] * max_blocks + p / block_size];
    size_t slot = ((size_t)layer * n_blocks + (size_t)block) * block_size + (size_t)(p % block_size);
    kv_put(&kbase[slot * kv_dim + i], k[(int64_t)r * kv_dim + i]);
    kv_put(&vbase[slot * kv_dim + i], v[(int64_t)r * kv_dim + i]);
}

template <typename KV> static void issue_kv_store(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    dim3 grid(blocks_for(kv->kv_dim, 256), (unsigned)b->n_rows);
    k_kv_store<KV><<<grid, 256, 0, c->stream>>>(
        (KV *)kv->k, (KV *)kv->v, op->i0, kv->n_blocks, kv->block_size, kv->kv_dim,
        (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off),
        (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks, (const float *)op->x,
        (const float *)op->y);
    LAUNCHED(c, "kv_store");
}

void realm__cuda_issue_kv_store(cuda_ctx *c, const struct cuda_op *op)
{
    if (kv_is_f16(&op->kv))
        issue_kv_store<__half>(c, op);
    else
        issue_kv_store<float>(c, op);
}

__global__ static void k_swiglu(float *gate, const float *up, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void realm__cuda_issue_swiglu(cuda_ctx *c, const struct cuda_op *op)
{
    if (op->width <= 0) return;
    k_swiglu<<<blocks_for(op->width, 256), 256, 0, c->stream>>>((float *)op->out,
                                                               (const float *)op->y, op->width);
    LAUNCHED(c, "swiglu");
}

__global__ static void k_add(float *x, const float *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

void realm__cuda_issue_add(cuda_ctx *c, const struct cuda_op *op)
{
    if (op->width <= 0) return;
    k_add<<<blocks_for(op->width, 256), 256, 0, c->stream>>>((float *)op->out,
                                                            (const float *)op->y, op->width);
    LAUNCHED(c, "add");
}

/* One block a row. Each thread keeps the first of its strided elements
 * holding its largest value; the block's reduction keeps the larger value,
 * then the lower index, so ties go to the lowest index as base/rowmath.h's.
 * NaN fails every comparison and -inf never beats the start (-inf, -1). */
#define ARGMAX_THREADS 256
__global__ static void __launch_bounds__(ARGMAX_THREADS)
    k_argmax(const float *x, int64_t width, int32_t *out)
{
    __shared__ float sv[ARGMAX_THREADS / 32];
    __shared__ int32_t si[ARGMAX_THREADS / 32];
    const float *xr = x + blockIdx.x * width;
    float v = -INFINITY;
    int32_t idx = -1;
    for (int64_t i = threadIdx.x; i < width; i += ARGMAX_THREADS)
        if (xr[i] > v) {
            v = xr[i];
            idx = (int32_t)i;
        }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_down_sync(0xffffffffu, v, o);
        const int32_t oi = __shfl_down_sync(0xffffffffu, idx, o);
        if (oi >= 0 && (ov > v || (ov == v && (idx < 0 || oi < idx)))) {
            v = ov;
            idx = oi;
        }
    }
    if (threadIdx.x % 32 == 0) {
        sv[threadIdx.x / 32] = v;
        si[threadIdx.x / 32] = idx;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < ARGMAX_THREADS / 32; w++)
            if (si[w] >= 0 && (sv[w] > v || (sv[w] == v && (idx < 0 || si[w] < idx)))) {
                v = sv[w];
                idx = si[w];
            }
        out[blockIdx.x] = idx;
    }
}

void realm__cuda_issue_argmax(cuda_ctx *c, const struct cuda_op *op)
{
    if (op->n <= 0) return;
    k_argmax<<<(unsigned)op->n, ARGMAX_THREADS, 0, c->stream>>>((const float *)op->x, op->width,
                                                                (int32_t *)op->out);
    LAUNCHED(c, "argmax");
}

/* ---- L2 prefetch ----
 * Each thread asks the copy engine to bring one L2PF_CHUNK of the ranges
 * into L2 (cp.async.bulk.prefetch: no registers, no result, fire and
 * forget), so the kernel ends at once and the bytes arrive while the
 * stream's small kernels run. */
#define L2PF_CHUNK 4096 /* bytes per thread (1 KB: slower; 16 KB: the same) */
#define L2PF_SETS  3
struct l2pf_ranges {
    const char *p[L2PF_SETS];
    uint64_t n[L2PF_SETS]; /* multiples of 16 */
};

__global__ static void k_l2_prefetch(const l2pf_ranges r)
{
    /* one chunk a thread; each range starts at a chunk of its own */
    uint64_t chunk = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
#pragma unroll
    for (int i = 0; i < L2PF_SETS; i++) {
        const uint64_t chunks = (r.n[i] + L2PF_CHUNK - 1) / L2PF_CHUNK;
        if (chunk < chunks) {
            const uint64_t off = chunk * L2PF_CHUNK, left = r.n[i] - off;
            const uint32_t size = (uint32_t)(left < L2PF_CHUNK ? left : L2PF_CHUNK);
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(r.p[i] + off),
                         "r"(size)
                         : "memory");
            return;
        }
        chunk -= chunks;
    }
}

/* ops[0 .. n): the ops after a matmul. Prefetches the weights of the next
 * matmul and of the matmuls right after it on the same input (a set), in
 * the order their launch reads them, up to c->l2pf_bytes; false when there
 * is none. The prefetch waits for everything issued so far (the matmul
 * just issued), so it does not compete with that matmul's own reads. */
bool realm__cuda_issue_l2_prefetch(cuda_ctx *c, const struct cuda_op *ops, int32_t n)
{
    int32_t j = 0;
    while (j < n && ops[j].kind != CUDA_OP_MATMUL)
        j++;
    if (j == n) return false;
    /* A set whose ring does the rmsnorm ahead of it ($REALM_CUDA_RING_NORM)
     * follows the matmul ahead at once: no idle window to fill, and such
     * prefetches (4.9 us against 2.7) held up the useful ones queued behind
     * them on copy_stream (8B decode 404 -> 414 tok/s without them: NOTES
     * round 24). */
    if (j > 0 && ops[j - 1].kind == CUDA_OP_RMSNORM &&
        realm__cuda_norm_set_fits(c, &ops[j - 1], &ops[j], n - j))
        return false;
    l2pf_ranges r = {};
    uint64_t budget = (uint64_t)c->l2pf_bytes, threads = 0;
    for (int k = 0; k < L2PF_SETS && j + k < n && budget > 0; k++) {
        const struct cuda_op *m = &ops[j + k];
        if (m->kind != CUDA_OP_MATMUL || m->x != ops[j].x || (uintptr_t)m->w.data % 16) break;
        uint64_t bytes = (uint64_t)realm_type_row_size(m->w.type, m->w.ne0) * (uint64_t)m->w.ne1;
        bytes = (bytes < budget ? bytes : budget) & ~(uint64_t)15;
        r.p[k] = (const char *)m->w.data;
        r.n[k] = bytes;
        budget -= bytes;
        threads += (bytes + L2PF_CHUNK - 1) / L2PF_CHUNK;
    }
    if (!threads) return false;
    CUDA_CHECK(c, cudaEventRecord(c->ev_pf, c->stream));
    CUDA_CHECK(c, cudaStreamWaitEvent(c->copy_stream, c->ev_pf, 0));
    /* blocks of one warp: the bulk prefetches of one block queue on one
     * SM's copy engine (128-thread blocks of 64 KB chunks, 2 MB per SM:
     * 8B decode 341 -> 276 tok/s at 4 MB; NOTES round 14) */
    k_l2_prefetch<<<(unsigned)((threads + 31) / 32), 32, 0, c->copy_stream>>>(r);
    LAUNCHED(c, "l2_prefetch");
    c->l2pf_forked = true;
    return true;
}
