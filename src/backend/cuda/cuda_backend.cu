/* backend/cuda/cuda_backend.cu — the CUDA backend's table, memory arena and
 * op recording (see cuda.h for the contract); cuda_pass.cu issues what is
 * recorded (fusion, graphs). Knobs for A/B runs:
 * $REALM_CUDA_NO_FUSE, $REALM_CUDA_MMV_PLAIN, $REALM_CUDA_MMV_SET, $REALM_CUDA_MMS_FIT,
 * $REALM_CUDA_PDL, $REALM_CUDA_ATT_SPLIT, $REALM_CUDA_ATT_TILE_MIN, $REALM_CUDA_ATT_ROWS,
 * $REALM_CUDA_ATT_QUANT, $REALM_CUDA_MMV_ROWS,
 * $REALM_CUDA_GRAPH_ROWS, $REALM_CUDA_PROFILE, $REALM_CUDA_HOST_ALLOC, $REALM_CUDA_HOST_TIME,
 * $REALM_CUDA_EARLY_OPS, $REALM_CUDA_HEAD_CHUNKS, $REALM_CUDA_HEAD_ROWS; the int8 tile kernel:
 * $REALM_CUDA_MMQ (0: off), $REALM_CUDA_MMQ_MIN (9), $REALM_CUDA_MMQ_ROWS (64),
 * $REALM_CUDA_MMQ_SB (1: the super-block path), $REALM_CUDA_MMQ_SB_MIN (2),
 * $REALM_CUDA_MMQ_SB_ROWS (96). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"

extern "C" {
#include "base/alloc.h"
}

#define ARENA_ALIGN    256
#define CUBLAS_WS_SIZE (32u << 20)

void realm__cuda_fail(cuda_ctx *c, cudaError_t e, const char *what)
{
    if (c->first_status != REALM_OK) return;
    c->first_status = e == cudaErrorMemoryAllocation ? REALM_E_NOMEM : REALM_E_INTERNAL;
    snprintf(c->first_error, sizeof c->first_error, "cuda backend: %s: %s", what,
             cudaGetErrorString(e));
}

/* ---- the arena: sorted free ranges, first fit ---- */

static bool arena_alloc(cuda_ctx *c, size_t size, size_t *off)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    for (int i = 0; i < c->n_free; i++) {
        if (c->free_list[i].size < size) continue;
        *off = c->free_list[i].off;
        c->free_list[i].off += size;
        c->free_list[i].size -= size;
        if (c->free_list[i].size == 0) {
            memmove(&c->free_list[i], &c->free_list[i + 1],
                    (size_t)(c->n_free - i - 1) * sizeof *c->free_list);
            c->n_free--;
        }
        return true;
    }
    return false;
}

static void arena_release(cuda_ctx *c, size_t off, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0) size = ARENA_ALIGN;
    int i = 0;
    while (i < c->n_free && c->free_list[i].off < off)
        i++;
    /* merge with the neighbours where they touch */
    bool left = i > 0 && c->free_list[i - 1].off + c->free_list[i - 1].size == off;
    bool right = i < c->n_free && off + size == c->free_list[i].off;
    if (left && right) {
        c->free_list[i - 1].size += size + c->free_list[i].size;
        memmove(&c->free_list[i], &c->free_list[i + 1],
                (size_t)(c->n_free - i - 1) * sizeof *c->free_list);
        c->n_free--;
    } else if (left) {
        c->free_list[i - 1].size += size;
    } else if (right) {
        c->free_list[i].off = off;
        c->free_list[i].size += size;
    } else {
        if (c->n_free == c->cap_free) {
            int cap = c->cap_free * 2;
            void *p = realm_realloc(c->free_list, (size_t)cap * sizeof *c->free_list);
            if (!p) return; /* leaks the range; the arena stays consistent */
            c->free_list = (struct cuda_range *)p;
            c->cap_free = cap;
        }
        memmove(&c->free_list[i + 1], &c->free_list[i],
                (size_t)(c->n_free - i) * sizeof *c->free_list);
        c->free_list[i].off = off;
        c->free_list[i].size = size;
        c->n_free++;
    }
}

static size_t arena_free_bytes(const cuda_ctx *c, size_t *largest)
{
    size_t total = 0;
    *largest = 0;
    for (int i = 0; i < c->n_free; i++) {
        total += c->free_list[i].size;
        if (c->free_list[i].size > *largest) *largest = c->free_list[i].size;
    }
    return total;
}

static realm_status dev_alloc(cuda_ctx *c, size_t size, void **p, const char *what,
                              realm_error *err)
{
    size_t off;
    if (!arena_alloc(c, size, &off)) {
        size_t largest, free_b = arena_free_bytes(c, &largest);
        return realm_error_set(err, REALM_E_NOMEM,
                               "cuda backend: %s needs %.1f MiB but only %.1f MiB of the %.1f MiB "
                               "GPU budget is free (largest piece %.1f MiB); raise the budget "
                               "(REALM_CUDA_MEM_MB) or use a smaller model or context",
                               what, size / 1048576.0, free_b / 1048576.0,
                               c->arena_bytes / 1048576.0, largest / 1048576.0);
    }
    *p = c->arena + off;
    return REALM_OK;
}

static void dev_free(cuda_ctx *c, void *p, size_t size)
{
    if (p) arena_release(c, (size_t)((char *)p - c->arena), size);
}

static struct cuda_op *record(cuda_ctx *c, int kind, int32_t n)
{
    if (c->n_ops == c->cap_ops) {
        int32_t cap = c->cap_ops ? 2 * c->cap_ops : 1024;
        void *p = realm_realloc(c->ops, (size_t)cap * sizeof *c->ops);
        if (!p) {
            realm__cuda_fail(c, cudaErrorMemoryAllocation, "recording an op (host memory)");
            return NULL;
        }
        c->ops = (struct cuda_op *)p;
        c->cap_ops = cap;
    }
    if (c->n_ops == 0 && c->host_time) c->ht_first_rec = realm__cuda_now_s();
    /* The pass so far goes to the GPU while the host records the rest
     * (before an rmsnorm, so no fused chain is cut). */
    if (kind == CUDA_OP_RMSNORM && c->seg_start == 0 && c->early_ops > 0 &&
        c->n_ops >= c->early_ops && !c->profile)
        realm__cuda_launch(c);
    struct cuda_op *op = &c->ops[c->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->n = n;
    if (n > c->graph_max_rows) c->graph_ok = false;
    return op;
}

/* Copy host bytes into the staging area; returns their offset. */
static uint32_t stage(cuda_ctx *c, const void *src, size_t bytes)
{
    uint32_t off = c->staging_used;
    size_t end = ((size_t)off + bytes + 15) & ~(size_t)15;
    if (end > c->staging_cap) {
        realm__cuda_fail(c, cudaErrorMemoryAllocation, "staging area (batch larger than reserved)");
        return 0;
    }
    if (src && bytes) memcpy(c->staging_h + off, src, bytes);
    c->staging_used = (uint32_t)end;
    return off;
}

static uint32_t stage_pos(cuda_ctx *c, const int32_t *pos, int32_t n)
{
    if (c->last_batch_pos == pos && c->last_batch) return c->last_cb.pos_off;
    return stage(c, pos, (size_t)n * sizeof(int32_t));
}

/* Positions, sequence ids and block tables of b, once per pass. */
static struct cuda_batch stage_batch(cuda_ctx *c, const realm_kv_pool *kv, const realm_batch *b)
{
    if (c->last_batch == b && c->last_batch_pos == b->pos) return c->last_cb;
    struct cuda_batch cb = {};
    cb.n_rows = b->n_rows;
    cb.n_seqs = b->n_seqs;
    cb.max_blocks = (c->lim.max_ctx + kv->block_size - 1) / kv->block_size;
    cb.pos_off = stage(c, b->pos, (size_t)b->n_rows * sizeof(int32_t));
    cb.seq_off = stage(c, b->seq, (size_t)b->n_rows * sizeof(int32_t));
    size_t tb = (size_t)b->n_seqs * cb.max_blocks * sizeof(int32_t);
    cb.table_off = stage(c, NULL, tb);
    if (c->first_status == REALM_OK) {
        int32_t *t = (int32_t *)(c->staging_h + cb.table_off);
        memset(t, 0, tb);
        for (int32_t s = 0; s < b->n_seqs; s++) {
            int32_t nb = b->seqs[s].n_blocks < cb.max_blocks ? b->seqs[s].n_blocks : cb.max_blocks;
            memcpy(t + (size_t)s * cb.max_blocks, b->seqs[s].block_table, (size_t)nb * 4);
        }
    }
    cb.early_off = stage(c, NULL, (size_t)b->n_rows * sizeof(int32_t));
    if (c->first_status == REALM_OK)
        realm__cuda_att_early(b, (int32_t *)(c->staging_h + cb.early_off));
    cb.tile_off = stage(c, NULL, 4 * (size_t)b->n_rows * sizeof(int32_t));
    if (c->first_status == REALM_OK)
        cb.n_tiles =
            realm__cuda_att_tiles(c, b, (int32_t *)(c->staging_h + cb.tile_off), &cb.n_single);
    c->last_batch = b;
    c->last_batch_pos = b->pos;
    c->last_cb = cb;
    return cb;
}

/* ---- the ops: record only ---- */

static void rec_get_rows(realm_backend *be, const realm_weight *emb, const int32_t *token,
                         int32_t n, float *out)
{
    cuda_ctx *c = cuda__ctx(be);
    struct cuda_op *op = record(c, CUDA_OP_GET_ROWS, n);
    if (!op) return;
    op->w = *emb;
    op->idx_off = stage(c, token, (size_t)n * sizeof(int32_t));
    op->out = out;
}

static void rec_copy_rows(realm_backend *be, const float *src, int64_t width, const int32_t *row_id,
                          int32_t n, float *out)
{
    cuda_ctx *c = cuda__ctx(be);
    struct cuda_op *op = record(c, CUDA_OP_COPY_ROWS, n);
    if (!op) return;
    op->x = src;
    op->width = width;
    op->idx_off = stage(c, row_id, (size_t)n * sizeof(int32_t));
    op->out = out;
}

static void rec_rmsnorm(realm_backend *be, const float *x, const realm_weight *w, int32_t n,
                        float eps, float *out)
{
    struct cuda_op *op = record(cuda__ctx(be), CUDA_OP_RMSNORM, n);
    if (!op) return;
    op->x = x;
    op->w = *w;
    op->f0 = eps;
    op->out = out;
}

static void rec_matmul(realm_backend *be, const realm_weight *w, const realm_weight *bias,
                       const float *x, int32_t n, float *out)
{
    struct cuda_op *op = record(cuda__ctx(be), CUDA_OP_MATMUL, n);
    if (!op) return;
    op->w = *w;
    if (bias) op->bias = *bias;
    op->x = x;
    op->out = out;
}

static void rec_rope(realm_backend *be, float *x, int32_t n, int32_t n_head, int32_t head_dim,
                     int32_t n_rot, realm_rope_mode mode, const float *inv_freq, const int32_t *pos)
{
    cuda_ctx *c = cuda__ctx(be);
    struct cuda_op *op = record(c, CUDA_OP_ROPE, n);
    if (!op) return;
    op->out = x;
    op->i0 = n_head;
    op->i1 = head_dim;
    op->i2 = n_rot;
    op->width = mode;
    op->y = inv_freq;
    op->idx_off = stage_pos(c, pos, n);
}

/* Do the kernels take kv's elements (f16, f32)? Where not, the error is
 * recorded (synchronize reports it) and the op is not: the caches that
 * make pools reject other types (model/kv_cache.c, engine/kv_pages.c). */
static bool kv_type_ok(cuda_ctx *c, const realm_kv_pool *kv)
{
    if (kv->type == REALM_TYPE_F16 || kv->type == REALM_TYPE_F32) return true;
    realm__cuda_fail(c, cudaErrorInvalidValue, "KV pool of an element type not f16 or f32");
    return false;
}

/* op->kv = *kv field by field: the struct has padding, and records compare
 * with memcmp (the caller's padding copied would keep a pass from
 * replaying its graph) */
static void put_kv(struct cuda_op *op, const realm_kv_pool *kv)
{
    op->kv.n_layer = kv->n_layer;
    op->kv.n_blocks = kv->n_blocks;
    op->kv.block_size = kv->block_size;
    op->kv.kv_dim = kv->kv_dim;
    op->kv.type = kv->type;
    op->kv.k = kv->k;
    op->kv.v = kv->v;
}

static void rec_kv_store(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                         const realm_batch *b, const float *k, const float *v)
{
    cuda_ctx *c = cuda__ctx(be);
    struct cuda_op *op = kv_type_ok(c, kv) ? record(c, CUDA_OP_KV_STORE, b->n_rows) : NULL;
    if (!op) return;
    put_kv(op, kv);
    op->i0 = layer;
    op->batch = stage_batch(c, kv, b);
    op->x = k;
    op->y = v;
}

static void rec_attention(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                          const realm_batch *b, const realm_attn_params *p, const float *q,
                          float *out)
{
    cuda_ctx *c = cuda__ctx(be);
    struct cuda_op *op = kv_type_ok(c, kv) ? record(c, CUDA_OP_ATTENTION, b->n_rows) : NULL;
    if (!op) return;
    put_kv(op, kv);
    op->i0 = layer;
    op->ap = *p;
    op->batch = stage_batch(c, kv, b);
    op->x = q;
    op->out = out;
}

static void rec_swiglu(realm_backend *be, float *gate, const float *up, int64_t n)
{
    struct cuda_op *op = record(cuda__ctx(be), CUDA_OP_SWIGLU, 1);
    if (!op) return;
    op->out = gate;
    op->y = up;
    op->width = n;
}

static void rec_add(realm_backend *be, float *x, const float *y, int64_t n)
{
    struct cuda_op *op = record(cuda__ctx(be), CUDA_OP_ADD, 1);
    if (!op) return;
    op->out = x;
    op->y = y;
    op->width = n;
}

static void rec_argmax(realm_backend *be, const float *x, int32_t n, int64_t width, int32_t *out)
{
    struct cuda_op *op = record(cuda__ctx(be), CUDA_OP_ARGMAX, n);
    if (!op) return;
    op->x = x;
    op->width = width;
    op->out = out;
}

/* ---- table entries ---- */

static bool cu_supports(const realm_backend *be, realm_type type)
{
    (void)be;
    return realm__cuda_type_ok(type);
}

/* Forget every captured graph (the next pass of each shape captures anew). */
static void graphs_drop(cuda_ctx *c)
{
    for (int i = 0; i < CUDA_GRAPH_CACHE; i++) {
        if (c->graphs[i].exec) cudaGraphExecDestroy(c->graphs[i].exec);
        realm_free(c->graphs[i].ops);
        c->graphs[i] = (struct cuda_graph_entry){};
    }
}

static void free_scratch(cuda_ctx *c)
{
    dev_free(c, c->act_q, c->act_q_bytes);
    dev_free(c, c->dq, c->dq_bytes);
    dev_free(c, c->act_h, (size_t)c->lim.max_rows * c->lim.max_ne0 * 2);
    dev_free(c, c->att_part, c->att_part_bytes);
    dev_free(c, c->mmq_part, c->mmq_part_bytes);
    c->act_q = c->dq = c->act_h = NULL;
    c->att_part = NULL;
    c->mmq_part = NULL;
    c->mmq_part_bytes = 0;
    if (c->staging_h) cudaFreeHost(c->staging_h);
    dev_free(c, c->staging_d, c->staging_cap);
    c->staging_h = c->staging_d = NULL;
    c->staging_cap = 0;
}

static void cu_destroy(realm_backend *be)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    if (c->profile) realm__cuda_print_profile(c);
    realm__cuda_print_host_time(c);
    for (int i = 0; i < 2; i++)
        if (c->ht_ev[i]) cudaEventDestroy(c->ht_ev[i]);
    for (int i = 0; i < CUDA_HEAD_CHUNKS_MAX; i++)
        if (c->ev_fork[i]) cudaEventDestroy(c->ev_fork[i]);
    if (c->ev_join) cudaEventDestroy(c->ev_join);
    if (c->ev_pf) cudaEventDestroy(c->ev_pf);
    if (c->copy_stream) cudaStreamDestroy(c->copy_stream);
    graphs_drop(c);
    free_scratch(c);
    if (c->cublas) cublasDestroy(c->cublas);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->arena) cudaFree(c->arena);
    realm_free(c->free_list);
    realm_free(c->ops);
    realm_free(c);
}

static realm_status cu_reserve(realm_backend *be, const realm_backend_limits *lim, realm_error *err)
{
    cuda_ctx *c = cuda__ctx(be);
    if (lim->max_rows <= 0 || lim->max_ctx <= 0 || lim->max_ne0 <= 0)
        return realm_error_set(err, REALM_E_INVALID, "cuda backend: limits must be positive");
    realm__cuda_flush(c);
    free_scratch(c);
    c->lim = *lim;
    size_t aq, dq, ah;
    realm__cuda_matmul_scratch(lim, &aq, &dq, &ah);
    /* token/row ids, positions, sequence ids, attention tiles, and a block
     * table (at most one block per position, plus rounding) per sequence */
    size_t stg = 20 * 4 * ((size_t)lim->max_rows + 64) +
                 4 * (size_t)lim->max_rows * ((size_t)lim->max_ctx + 2) + 65536;
    realm_status st;
    if ((st = dev_alloc(c, aq, &c->act_q, "activation scratch", err)) ||
        (st = dev_alloc(c, dq, &c->dq, "dequantization scratch", err)) ||
        (st = dev_alloc(c, ah, &c->act_h, "f16 activation scratch", err)) ||
        (st = dev_alloc(c, stg, (void **)&c->staging_d, "staging", err)) ||
        (st = dev_alloc(c, realm__cuda_att_part_bytes(lim), (void **)&c->att_part,
                        "attention partials", err)))
        return st;
    c->att_part_bytes = realm__cuda_att_part_bytes(lim);
    /* split attention's per-(row, head) tickets start at 0 */
    CUDA_CHECK(c, cudaMemsetAsync(c->att_part, 0, c->att_part_bytes, c->stream));
    if (c->mmq) {
        size_t pb = realm__cuda_mmq_part_bytes(lim);
        if ((st = dev_alloc(c, pb, (void **)&c->mmq_part, "matmul split-K partials", err)))
            return st;
        c->mmq_part_bytes = pb;
    }
    c->act_q_bytes = aq;
    c->dq_bytes = dq;
    c->staging_cap = (uint32_t)stg;
    cudaError_t e = cudaHostAlloc((void **)&c->staging_h, stg, cudaHostAllocDefault);
    if (e != cudaSuccess) {
        c->staging_h = NULL;
        return realm_error_set(err, REALM_E_NOMEM, "cuda backend: pinned staging (%zu bytes): %s",
                               stg, cudaGetErrorString(e));
    }
    return REALM_OK;
}

static realm_status take_error(cuda_ctx *c, realm_error *err)
{
    realm_status st = c->first_status;
    if (st) {
        realm_error_set(err, st, "%s", c->first_error);
        c->first_status = REALM_OK; /* reported: the next pass starts clean */
    }
    return st;
}

static realm_status cu_synchronize(realm_backend *be, realm_error *err)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    return take_error(c, err);
}

static realm_status cu_buffer_alloc(realm_backend *be, size_t size_bytes, realm_buffer *out,
                                    realm_error *err)
{
    cuda_ctx *c = cuda__ctx(be);
    *out = (realm_buffer){0};
    void *p;
    realm_status st = dev_alloc(c, size_bytes, &p, "a buffer", err);
    if (st) return st;
    realm__cuda_flush(c);
    CUDA_CHECK(c, cudaMemsetAsync(p, 0, size_bytes, c->stream));
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
    *out = (realm_buffer){.data = p, .size_bytes = size_bytes};
    return take_error(c, err);
}

/* Host <-> device copies on the backend's own stream, waited for. A plain
 * cudaMemcpy runs on the legacy default stream, which does not order against
 * c->stream (created non-blocking), and from pageable memory it returns
 * before the DMA to the device has finished: the next kernels could read a
 * half-uploaded buffer. (The per-op test's "attention prefill 70+33 hd=128"
 * row, the first kernels after fresh uploads, failed that way now and then.) */
static void copy_sync(cuda_ctx *c, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    CUDA_CHECK(c, cudaMemcpyAsync(dst, src, bytes, kind, c->stream));
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}

static realm_status cu_buffer_from_host(realm_backend *be, const void *host, size_t size_bytes,
                                        realm_buffer *out, realm_error *err)
{
    cuda_ctx *c = cuda__ctx(be);
    *out = (realm_buffer){0};
    void *p;
    realm_status st = dev_alloc(c, size_bytes, &p, "the weights", err);
    if (st) return st;
    realm__cuda_flush(c);
    copy_sync(c, p, host, size_bytes, cudaMemcpyHostToDevice);
    if ((st = take_error(c, err))) {
        dev_free(c, p, size_bytes);
        return st;
    }
    *out = (realm_buffer){.data = p, .size_bytes = size_bytes};
    return REALM_OK;
}

static void cu_buffer_free(realm_backend *be, realm_buffer *buf)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    dev_free(c, buf->data, buf->size_bytes);
    *buf = (realm_buffer){0};
}

static void cu_buffer_upload(realm_backend *be, realm_buffer *buf, size_t offset, const void *src,
                             size_t size_bytes)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    copy_sync(c, (char *)buf->data + offset, src, size_bytes, cudaMemcpyHostToDevice);
}

/* After a recorded pass into page-locked memory (the logits), the copy is
 * the pass's last op: in its graph, waited for once, and the LM head's
 * download overlaps its matmul (issue_head_chunks). */
static void cu_buffer_download(realm_backend *be, const realm_buffer *buf, size_t offset, void *dst,
                               size_t size_bytes)
{
    cuda_ctx *c = cuda__ctx(be);
    cudaPointerAttributes pa;
    if (c->n_ops > 0 && cudaPointerGetAttributes(&pa, dst) == cudaSuccess &&
        pa.type == cudaMemoryTypeHost) {
        struct cuda_op *op = record(c, CUDA_OP_DOWNLOAD, 1);
        if (op) {
            op->x = (const char *)buf->data + offset;
            op->out = dst;
            op->width = (int64_t)size_bytes;
        }
        realm__cuda_flush(c);
        return;
    }
    (void)cudaGetLastError(); /* cudaPointerGetAttributes of pageable memory: not sticky */
    realm__cuda_flush(c);
    copy_sync(c, dst, (const char *)buf->data + offset, size_bytes, cudaMemcpyDeviceToHost);
}

static void cu_buffer_clear(realm_backend *be, realm_buffer *buf)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    CUDA_CHECK(c, cudaMemsetAsync(buf->data, 0, buf->size_bytes, c->stream));
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
}

/* Page-locked host memory, which downloads go to at the link's speed (into
 * pageable memory the driver stages them): with the 33 MB of logits per
 * step of 64 streams, the 8B Q4_K_M decoded 5696 tok/s against 4719; one
 * stream 313 against 310 (NOTES round 10). $REALM_CUDA_HOST_ALLOC=0: none. */
static void *cu_host_alloc(realm_backend *be, size_t size_bytes)
{
    cuda_ctx *c = cuda__ctx(be);
    void *p = NULL;
    if (!c->host_alloc || cudaHostAlloc(&p, size_bytes, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it */
        return NULL;
    }
    return p;
}

/* A graph whose pass downloaded into p is bound to p's page-locked
 * allocation: replaying it after cudaFreeHost crashed in cuGraphLaunch once
 * a new allocation came back at the same address (its ops then compare
 * equal). So every graph goes with it; host buffers are freed only when an
 * engine or a caller's logits go, not per pass. */
static void cu_host_free(realm_backend *be, void *p)
{
    cuda_ctx *c = cuda__ctx(be);
    realm__cuda_flush(c);
    graphs_drop(c);
    cudaFreeHost(p);
}

static const realm_backend_ops cuda_ops = {
    .name = "cuda",
    .kv_type = REALM_TYPE_F16,
    .supports = cu_supports,
    .destroy = cu_destroy,
    .reserve = cu_reserve,
    .synchronize = cu_synchronize,
    .buffer_alloc = cu_buffer_alloc,
    .buffer_from_host = cu_buffer_from_host,
    .buffer_free = cu_buffer_free,
    .buffer_upload = cu_buffer_upload,
    .buffer_download = cu_buffer_download,
    .buffer_clear = cu_buffer_clear,
    .host_alloc = cu_host_alloc,
    .host_free = cu_host_free,
    .get_rows = rec_get_rows,
    .copy_rows = rec_copy_rows,
    .rmsnorm = rec_rmsnorm,
    .matmul = rec_matmul,
    .rope = rec_rope,
    .kv_store = rec_kv_store,
    .attention = rec_attention,
    .swiglu = rec_swiglu,
    .add = rec_add,
    .argmax = rec_argmax,
};

extern "C" bool realm_backend_cuda_built(void)
{
    return true;
}

extern "C" realm_backend_cuda_counts realm_backend_cuda_counts_of(const realm_backend *be)
{
    return ((const cuda_ctx *)be->ctx)->counts;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

extern "C" realm_status realm_backend_cuda_create(const realm_backend_cuda_params *params,
                                                  realm_backend **out, realm_error *err)
{
    *out = NULL;
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0)
        return realm_error_set(err, REALM_E_UNSUPPORTED, "cuda backend: no CUDA GPU found (%s)",
                               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    int dev = params ? params->device : 0;
    if (dev < 0 || dev >= n_dev)
        return realm_error_set(err, REALM_E_RANGE, "cuda backend: device %d of %d", dev, n_dev);
    if ((e = cudaSetDevice(dev)) != cudaSuccess)
        return realm_error_set(err, REALM_E_UNSUPPORTED, "cuda backend: cudaSetDevice(%d): %s",
                               dev, cudaGetErrorString(e));
    cuda_ctx *c = (cuda_ctx *)realm_calloc(1, sizeof *c);
    if (!c) return realm_error_set(err, REALM_E_NOMEM, "cuda backend: out of memory");
    c->be.ops = &cuda_ops;
    c->be.ctx = c;
    c->device = dev;
    c->graph_ok = true;
    c->graph_max_rows = env_int("REALM_CUDA_GRAPH_ROWS", 64);
    c->mmv_max_rows = env_int("REALM_CUDA_MMV_ROWS", 64);
    c->mmv_plain = env_int("REALM_CUDA_MMV_PLAIN", 0) != 0;
    c->mmv_set = env_int("REALM_CUDA_MMV_SET", 1) != 0;
    c->mmv_mixed = env_int("REALM_CUDA_MMV_MIXED", 1) != 0;
    c->mms_fit = env_int("REALM_CUDA_MMS_FIT", 1) != 0;
    c->att_quant = env_int("REALM_CUDA_ATT_QUANT", 1) != 0;
    c->mmv_ring = env_int("REALM_CUDA_MMV_RING", 1) != 0;
    /* two stages and one tile before the wait at every width the ring takes
     * (the 8B's tiles are 16-27 KB: it had those already); 1B decode
     * 1545.9 against 1444.5 tok/s with 40 and 18 (four stages, two early
     * 9 KB tiles), 8B even (NOTES round 22) */
    c->ring_kb = env_int("REALM_CUDA_RING_KB", 20);
    c->ring_early_kb = env_int("REALM_CUDA_RING_EARLY_KB", 10);
    /* no block has more than 227 KB of shared memory (H100) */
    if (c->ring_kb < 1 || c->ring_kb > 227) c->ring_kb = 20;
    if (c->ring_early_kb < 0 || c->ring_early_kb > 227) c->ring_early_kb = 10;
    c->ring_split = env_int("REALM_CUDA_RING_SPLIT", 1) != 0;
    c->qkv_rope = env_int("REALM_CUDA_QKV_ROPE", 1) != 0;
    c->ring_norm = env_int("REALM_CUDA_RING_NORM", 1) != 0;
    c->mms_cap = env_int("REALM_CUDA_MMS_CAP", 4096);
    if (c->mms_cap < 16 || c->mms_cap > 6144) c->mms_cap = 4096; /* <= 48 KB a block */
    c->no_fuse = env_int("REALM_CUDA_NO_FUSE", 0) != 0;
    c->pdl = env_int("REALM_CUDA_PDL", 1) != 0;
    c->att_split = env_int("REALM_CUDA_ATT_SPLIT", 8);
    c->att_tile_min = env_int("REALM_CUDA_ATT_TILE_MIN", 8);
    c->att_rows = env_int("REALM_CUDA_ATT_ROWS", 2);
    c->profile = env_int("REALM_CUDA_PROFILE", 0);
    c->host_alloc = env_int("REALM_CUDA_HOST_ALLOC", 1) != 0;
    c->host_time = env_int("REALM_CUDA_HOST_TIME", 0) != 0;
    c->head_chunks = env_int("REALM_CUDA_HEAD_CHUNKS", 8);
    c->head_min_rows = env_int("REALM_CUDA_HEAD_ROWS", 8);
    c->l2pf_bytes = (int64_t)env_int("REALM_CUDA_L2PF_KB", 4096) << 10;
    c->l2pf_max_rows = env_int("REALM_CUDA_L2PF_ROWS", 64);
    c->early_ops = env_int("REALM_CUDA_EARLY_OPS", 32);
    /* The tile kernel for 9..64 rows: on the H100 it took 8B Q4_K_M's
     * 64-stream decode from 1122 to 3365 tok/s (cuBLAS on dequantized f16
     * tiles: 2626). From 96 rows cuBLAS is faster since the dequantization
     * kernel works by groups (prefill96 4549 vs 4071, prefill128 5937 vs
     * 5174); up to 8 rows the mat-vec reads each weight once too and is
     * faster (8 streams: Q8_0 892 vs 680 tok/s, Q4_K_M 931 vs 912).
     * NOTES.md rounds 5 and 9. The super-block path (Q4_K, Q5_K, Q6_K,
     * Q8_0) beats the mat-vec from 2 rows (8 streams: Q4_K_M 1606 vs 937,
     * Q8_0 1332 vs 906; 4: 845 vs 762, 702 vs 643) and cuBLAS at 96
     * (prefill96 6639 vs 6062, Q8_0 6176 vs 5686; at 128 cuBLAS leads by
     * 1-2%): NOTES.md round 10. */
    c->mmq = env_int("REALM_CUDA_MMQ", 1) != 0;
    c->mmq_min_rows = env_int("REALM_CUDA_MMQ_MIN", 9);
    c->mmq_max_rows = env_int("REALM_CUDA_MMQ_ROWS", 64);
    c->sb_min_rows = env_int("REALM_CUDA_MMQ_SB_MIN", 2);
    c->sb_max_rows = env_int("REALM_CUDA_MMQ_SB_ROWS", 96);
    c->mmq_sb = env_int("REALM_CUDA_MMQ_SB", 1) != 0;
    if (cudaDeviceGetAttribute(&c->n_sm, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
        c->n_sm = 1;
    if (cudaDeviceGetAttribute(&c->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
        cudaSuccess)
        c->smem_optin = 48 * 1024;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    size_t budget = params && params->mem_budget_bytes ? params->mem_budget_bytes : 0;
    if (!budget && env_int("REALM_CUDA_MEM_MB", 0) > 0)
        budget = (size_t)env_int("REALM_CUDA_MEM_MB", 0) << 20;
    if (!budget) budget = free_b / 10 * 9;
    realm_status st = REALM_OK;
    if ((e = cudaMalloc((void **)&c->arena, budget)) != cudaSuccess) {
        c->arena = NULL;
        st = realm_error_set(err, REALM_E_NOMEM,
                             "cuda backend: cannot reserve the %.1f MiB GPU budget (%.1f MiB free "
                             "of %.1f MiB): %s",
                             budget / 1048576.0, free_b / 1048576.0, total_b / 1048576.0,
                             cudaGetErrorString(e));
        goto fail;
    }
    c->arena_bytes = budget;
    c->cap_free = 64;
    c->free_list = (struct cuda_range *)realm_calloc((size_t)c->cap_free, sizeof *c->free_list);
    if (!c->free_list) {
        st = realm_error_set(err, REALM_E_NOMEM, "cuda backend: out of memory");
        goto fail;
    }
    c->free_list[0].off = 0;
    c->free_list[0].size = budget;
    c->n_free = 1;
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        st = realm_error_set(err, REALM_E_INTERNAL, "cuda backend: stream: %s",
                             cudaGetErrorString(e));
        goto fail;
    }
    if ((e = cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking)) != cudaSuccess) {
        c->copy_stream = NULL;
        st = realm_error_set(err, REALM_E_INTERNAL, "cuda backend: copy stream: %s",
                             cudaGetErrorString(e));
        goto fail;
    }
    for (int i = 0; i < CUDA_HEAD_CHUNKS_MAX && e == cudaSuccess; i++)
        e = cudaEventCreateWithFlags(&c->ev_fork[i], cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->ev_join, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->ev_pf, cudaEventDisableTiming);
    for (int i = 0; i < 2 && c->host_time && e == cudaSuccess; i++)
        e = cudaEventCreate(&c->ht_ev[i]); /* timed, for $REALM_CUDA_HOST_TIME alone */
    if (e != cudaSuccess) {
        st = realm_error_set(err, REALM_E_INTERNAL, "cuda backend: event: %s",
                             cudaGetErrorString(e));
        goto fail;
    }
    if (cublasCreate(&c->cublas) != CUBLAS_STATUS_SUCCESS) {
        c->cublas = NULL;
        st = realm_error_set(err, REALM_E_INTERNAL, "cuda backend: cublasCreate failed");
        goto fail;
    }
    /* cuBLAS gets its workspace from the arena so graph capture never sees it allocate */
    if ((st = dev_alloc(c, CUBLAS_WS_SIZE, &c->cublas_ws, "cuBLAS workspace", err))) goto fail;
    if (cublasSetStream(c->cublas, c->stream) != CUBLAS_STATUS_SUCCESS ||
        cublasSetWorkspace(c->cublas, c->cublas_ws, CUBLAS_WS_SIZE) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(c->cublas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        st = realm_error_set(err, REALM_E_INTERNAL, "cuda backend: cuBLAS setup failed");
        goto fail;
    }
    *out = &c->be;
    return REALM_OK;
fail:
    cu_destroy(&c->be);
    return st;
}
