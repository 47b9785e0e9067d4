/*
 * backend/cuda/cuda_pass.cu — a recorded pass onto the GPU: each op issued
 * with the ops after it that it fuses with (issue_at), the LM head's logits
 * downloaded in chunks behind its matmul, segments replayed as captured
 * graphs, and the $REALM_CUDA_PROFILE and $REALM_CUDA_HOST_TIME accounts.
 * cuda_backend.cu records the ops and calls realm__cuda_launch (a segment
 * without waiting) and realm__cuda_flush (everything, then wait).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "backend/cuda/cuda_impl.h"

extern "C" {
#include "base/alloc.h"
}

/* The LM head of many rows and the download of its logits: the matmul in
 * column chunks (vocabulary entries), chunk j's logits copied on the copy
 * stream while chunk j+1 computes, so most of the download hides behind the
 * matmul (~1 ms of a 64-stream 8B step was logits: NOTES round 10). Chunk
 * j's (n, cw) block lies at n * v0 in the device buffer; the copy puts it at
 * column v0 of each host row. Every output is the same dot product as in
 * one launch, though the tile kernel may split K differently for a chunk
 * (last-bit differences; the per-op test's `head` rows hold it to the
 * matmul's tolerance against the CPU). Returns false, having enqueued
 * nothing, unless `dl` downloads exactly mm's output. */
static bool issue_head_chunks(cuda_ctx *c, const struct cuda_op *mm, const struct cuda_op *dl)
{
    const int64_t ne1 = mm->w.ne1, n = mm->n;
    int k = c->head_chunks < CUDA_HEAD_CHUNKS_MAX ? c->head_chunks : CUDA_HEAD_CHUNKS_MAX;
    if (k < 2 || n < c->head_min_rows || mm->bias.data || dl->x != mm->out ||
        dl->width != n * ne1 * (int64_t)sizeof(float))
        return false;
    int64_t cw = ((ne1 + k - 1) / k + 255) / 256 * 256; /* whole weight tiles */
    if (cw >= ne1) return false;
    const size_t row_bytes = realm_type_row_size(mm->w.type, mm->w.ne0);
    for (int64_t v0 = 0, j = 0; v0 < ne1; v0 += cw, j++) {
        struct cuda_op part = *mm;
        part.w.ne1 = ne1 - v0 < cw ? ne1 - v0 : cw;
        part.w.data = (const char *)mm->w.data + (size_t)v0 * row_bytes;
        part.out = (float *)mm->out + n * v0;
        realm__cuda_issue_matmul(c, &part, NULL);
        CUDA_CHECK(c, cudaEventRecord(c->ev_fork[j], c->stream));
        CUDA_CHECK(c, cudaStreamWaitEvent(c->copy_stream, c->ev_fork[j], 0));
        size_t wb = (size_t)part.w.ne1 * sizeof(float);
        CUDA_CHECK(c,
                   cudaMemcpy2DAsync((float *)dl->out + v0, (size_t)ne1 * sizeof(float), part.out,
                                     wb, wb, (size_t)n, cudaMemcpyDeviceToHost, c->copy_stream));
    }
    CUDA_CHECK(c, cudaEventRecord(c->ev_join, c->copy_stream));
    CUDA_CHECK(c, cudaStreamWaitEvent(c->stream, c->ev_join, 0));
    return true;
}

/* Enqueue ops[i], fused with the ops after it where a pattern fits (the
 * decode step's per-layer chain: rmsnorm→matmul (or rmsnorm→a ring set that
 * does the rmsnorm in every block), swiglu→matmul,
 * matmul→add, matmuls on one input (q, k, v; gate, up) as one launch,
 * rope→rope→kv_store; and matmul→download, issue_head_chunks); returns
 * how many ops it consumed. Fusion
 * never changes a value: each fused kernel does the unfused kernels'
 * arithmetic. */
static int issue_at(cuda_ctx *c, const struct cuda_op *ops, int32_t i, int32_t n_ops)
{
    const struct cuda_op *op = &ops[i];
    const struct cuda_op *nx = i + 1 < n_ops && !c->no_fuse ? &ops[i + 1] : NULL;
    /* quantized activations stay valid across consecutive matmuls only */
    if (op->kind != CUDA_OP_MATMUL) c->aq_x = NULL;
    switch (op->kind) {
    case CUDA_OP_GET_ROWS: realm__cuda_issue_get_rows(c, op); break;
    case CUDA_OP_COPY_ROWS: realm__cuda_issue_copy_rows(c, op); break;
    case CUDA_OP_RMSNORM:
        if (nx && nx->kind == CUDA_OP_MATMUL) {
            const int k = realm__cuda_issue_norm_set(c, op, nx, n_ops - i - 1);
            if (k > 0) return 1 + k;
            if (realm__cuda_issue_rmsnorm_quant(c, op, nx)) break;
        }
        realm__cuda_issue_rmsnorm(c, op);
        break;
    case CUDA_OP_MATMUL:
        if (nx && nx->kind == CUDA_OP_DOWNLOAD && issue_head_chunks(c, op, nx)) return 2;
        if (nx && nx->kind == CUDA_OP_ADD && nx->y == op->out &&
            nx->width == (int64_t)op->n * op->w.ne1 && nx->out != op->x && nx->out != op->out) {
            if (!realm__cuda_issue_matmul(c, op, (float *)nx->out)) {
                c->aq_x = NULL;
                realm__cuda_issue_add(c, nx);
            }
            c->aq_x = NULL;
            return 2;
        }
        if (nx) {
            int k = realm__cuda_issue_matmul_set(c, op, n_ops - i);
            if (k > 0) return k;
        }
        realm__cuda_issue_matmul(c, op, NULL);
        break;
    case CUDA_OP_ROPE:
        if (nx && i + 2 < n_ops && nx->kind == CUDA_OP_ROPE && ops[i + 2].kind == CUDA_OP_KV_STORE &&
            realm__cuda_issue_rope_kv(c, op, nx, &ops[i + 2]))
            return 3;
        realm__cuda_issue_rope(c, op);
        break;
    case CUDA_OP_KV_STORE: realm__cuda_issue_kv_store(c, op); break;
    case CUDA_OP_ATTENTION: realm__cuda_issue_attention(c, op, nx); break;
    case CUDA_OP_SWIGLU:
        if (nx && nx->kind == CUDA_OP_MATMUL && realm__cuda_issue_swiglu_quant(c, op, nx)) break;
        realm__cuda_issue_swiglu(c, op);
        break;
    case CUDA_OP_ADD: realm__cuda_issue_add(c, op); break;
    case CUDA_OP_ARGMAX:
        realm__cuda_issue_argmax(c, op);
        break;
    case CUDA_OP_DOWNLOAD:
        CUDA_CHECK(c, cudaMemcpyAsync(op->out, op->x, (size_t)op->width, cudaMemcpyDeviceToHost,
                                      c->stream));
        break;
    }
    return 1;
}

/* The segment: the ops recorded since the last launch, and the staging
 * bytes written since (an op only reads staging written before it). */
static const struct cuda_op *seg_ops(const cuda_ctx *c)
{
    return c->ops + c->seg_start;
}

static int32_t seg_n(const cuda_ctx *c)
{
    return c->n_ops - c->seg_start;
}

static void upload_staging(cuda_ctx *c)
{
    c->aq_x = NULL;
    if (c->staging_used > c->staging_sent)
        CUDA_CHECK(c, cudaMemcpyAsync(
                          c->staging_d + c->staging_sent, c->staging_h + c->staging_sent,
                          c->staging_used - c->staging_sent, cudaMemcpyHostToDevice, c->stream));
}

static void issue_all(cuda_ctx *c)
{
    upload_staging(c);
    const struct cuda_op *ops = seg_ops(c);
    for (int32_t i = 0, n = seg_n(c); i < n;) {
        const int k = issue_at(c, ops, i, n);
        /* after a matmul (or an rmsnorm issued with the set after it) */
        const struct cuda_op *mm = &ops[i];
        if (mm->kind != CUDA_OP_MATMUL && k > 1) mm = &ops[i + 1];
        if (c->l2pf_bytes > 0 && mm->kind == CUDA_OP_MATMUL && mm->n <= c->l2pf_max_rows)
            realm__cuda_issue_l2_prefetch(c, ops + i + k, n - i - k);
        i += k;
    }
    if (c->l2pf_forked) { /* a captured fork must join the capturing stream */
        CUDA_CHECK(c, cudaEventRecord(c->ev_pf, c->copy_stream));
        CUDA_CHECK(c, cudaStreamWaitEvent(c->stream, c->ev_pf, 0));
        c->l2pf_forked = false;
    }
}

/* $REALM_CUDA_PROFILE=1: passes of at most 64 rows run op by op between
 * events, so the time of each op kind (matmuls by weight type) shows where a
 * decode step goes; printed when the backend is freed. Graphs are off then.
 * $REALM_CUDA_PROFILE=2 times passes of any size (prefill) the same way.
 * A fused group counts under its first op (rmsnorm includes the quantization
 * of its output, a matmul the add after it, rope the second rope and the
 * kv_store). */
static void issue_profiled(cuda_ctx *c)
{
    cudaEvent_t e[2];
    if (cudaEventCreate(&e[0]) != cudaSuccess || cudaEventCreate(&e[1]) != cudaSuccess) {
        issue_all(c);
        return;
    }
    upload_staging(c);
    for (int32_t i = 0, n = seg_n(c); i < n;) {
        const struct cuda_op *op = &seg_ops(c)[i];
        int slot = op->kind == CUDA_OP_MATMUL ? CUDA_PROF_MATMUL + (int)op->w.type : op->kind;
        CUDA_CHECK(c, cudaEventRecord(e[0], c->stream));
        i += issue_at(c, seg_ops(c), i, n);
        CUDA_CHECK(c, cudaEventRecord(e[1], c->stream));
        float ms = 0.0f;
        CUDA_CHECK(c, cudaEventSynchronize(e[1]));
        CUDA_CHECK(c, cudaEventElapsedTime(&ms, e[0], e[1]));
        c->prof_ms[slot] += ms;
        if (op->kind == CUDA_OP_MATMUL)
            c->prof_bytes[slot] += (double)realm_type_row_size(op->w.type, op->w.ne0) * op->w.ne1;
        c->prof_n[slot]++;
    }
    cudaEventDestroy(e[0]);
    cudaEventDestroy(e[1]);
}

void realm__cuda_print_profile(const cuda_ctx *c)
{
    static const char *const names[] = {"get_rows", "copy_rows", "rmsnorm",   "matmul",
                                        "rope",     "kv_store",  "attention", "swiglu",
                                        "add",      "download",  "argmax"};
    double total = 0;
    for (int i = 0; i < CUDA_PROF_SLOTS; i++)
        total += c->prof_ms[i];
    if (total <= 0) return;
    fprintf(stderr, "cuda profile (passes of %s rows): %.1f ms in all\n",
            c->profile > 1 ? "all" : "<= 64", total);
    for (int i = 0; i < CUDA_PROF_SLOTS; i++) {
        if (!c->prof_n[i]) continue;
        const char *name = i < CUDA_PROF_MATMUL ? names[i]
                                                : realm_type_traits_get((realm_type)(i - CUDA_PROF_MATMUL))->name;
        fprintf(stderr, "  %-10s%s %8.2f ms %5.1f%% %8lld ops %7.2f us/op", name,
                i < CUDA_PROF_MATMUL ? "" : " mm", c->prof_ms[i], 100.0 * c->prof_ms[i] / total,
                (long long)c->prof_n[i], 1e3 * c->prof_ms[i] / (double)c->prof_n[i]);
        if (c->prof_bytes[i] > 0)
            fprintf(stderr, " %7.0f GB/s (weights, launch included)",
                    c->prof_bytes[i] / (c->prof_ms[i] * 1e-3) / 1e9);
        fprintf(stderr, "\n");
    }
}

double realm__cuda_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void realm__cuda_print_host_time(const cuda_ctx *c)
{
    if (!c->ht_n) return;
    const double ms = 1e3 / (double)c->ht_n;
    fprintf(stderr,
            "cuda host time (%lld passes, ms per pass): between_ends_ms=%.4f gpu_ms=%.4f (from "
            "before the first launch) recording_ms=%.4f (until it) launching_ms=%.4f (from it "
            "to the last)\n",
            c->ht_n, c->ht_wall * ms, c->ht_gpu * ms, c->ht_rec * ms, c->ht_launch * ms);
}

static bool same_segment(const cuda_ctx *c, const struct cuda_graph_entry *g)
{
    return g->exec && g->n_ops == seg_n(c) && g->staging_from == c->staging_sent &&
           g->staging_bytes == c->staging_used &&
           memcmp(g->ops, seg_ops(c), (size_t)seg_n(c) * sizeof *c->ops) == 0;
}

/* Capture the segment into a graph and keep it: update the least recently
 * used entry in place when CUDA allows (same topology), else instantiate
 * anew. (An entry launched earlier in this pass is the most recently used.) */
static struct cuda_graph_entry *capture(cuda_ctx *c)
{
    struct cuda_graph_entry *slot = &c->graphs[0];
    for (int i = 1; i < CUDA_GRAPH_CACHE; i++)
        if (c->graphs[i].last_use < slot->last_use) slot = &c->graphs[i];
    struct cuda_op *copy = (struct cuda_op *)realm_malloc((size_t)seg_n(c) * sizeof *copy);
    if (!copy) return NULL;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        realm_free(copy);
        realm__cuda_fail(c, e, "cudaStreamBeginCapture");
        return NULL;
    }
    issue_all(c);
    e = cudaStreamEndCapture(c->stream, &graph);
    if (e != cudaSuccess || c->first_status) {
        realm_free(copy);
        if (graph) cudaGraphDestroy(graph);
        realm__cuda_fail(c, e, "cudaStreamEndCapture");
        return NULL;
    }
    /* an update can only succeed for the same kernels in the same order:
     * where the ops' kinds, rows or weight types differ (so the kernels
     * do) it is not tried (a failed update is a failing driver call, which
     * compute-sanitizer reports) */
    bool updated = false, alike = slot->exec && slot->n_ops == seg_n(c);
    for (int32_t i = 0; alike && i < seg_n(c); i++) {
        const struct cuda_op *o = &slot->ops[i], *p = &seg_ops(c)[i];
        alike = o->kind == p->kind && o->n == p->n && o->w.type == p->w.type;
    }
    if (slot->exec && !alike) {
        cudaGraphExecDestroy(slot->exec);
        slot->exec = NULL;
    }
    if (slot->exec) {
        cudaGraphExecUpdateResultInfo info;
        updated = cudaGraphExecUpdate(slot->exec, graph, &info) == cudaSuccess;
        if (!updated) {
            (void)cudaGetLastError();
            cudaGraphExecDestroy(slot->exec);
            slot->exec = NULL;
        }
    }
    if (!updated) {
        e = cudaGraphInstantiate(&slot->exec, graph, 0);
        if (e != cudaSuccess) {
            slot->exec = NULL;
            realm_free(copy);
            cudaGraphDestroy(graph);
            realm__cuda_fail(c, e, "cudaGraphInstantiate");
            return NULL;
        }
    }
    cudaGraphDestroy(graph);
    memcpy(copy, seg_ops(c), (size_t)seg_n(c) * sizeof *copy);
    realm_free(slot->ops);
    slot->ops = copy;
    slot->n_ops = seg_n(c);
    slot->staging_from = c->staging_sent;
    slot->staging_bytes = c->staging_used;
    return slot;
}

/* Issue the segment without waiting: replay its graph (captured on first
 * sight) when its ops are small enough, else op by op. */
void realm__cuda_launch(cuda_ctx *c)
{
    if (seg_n(c) > 0 && c->first_status == REALM_OK) {
        if (c->host_time && c->seg_start == 0) {
            c->ht_launch0 = realm__cuda_now_s();
            c->ht_rec += c->ht_launch0 - c->ht_first_rec;
            CUDA_CHECK(c, cudaEventRecord(c->ht_ev[0], c->stream));
        }
        struct cuda_graph_entry *g = NULL;
        if (c->graph_ok && c->graph_max_rows > 0 && !c->profile) {
            for (int i = 0; i < CUDA_GRAPH_CACHE && !g; i++)
                if (same_segment(c, &c->graphs[i])) g = &c->graphs[i];
            if (!g) g = capture(c);
        }
        if (g) {
            g->last_use = ++c->tick;
            CUDA_CHECK(c, cudaGraphLaunch(g->exec, c->stream));
        } else if (c->profile && (c->graph_ok || c->profile > 1) && c->first_status == REALM_OK) {
            issue_profiled(c);
        } else if (c->first_status == REALM_OK) {
            issue_all(c);
        }
    }
    c->seg_start = c->n_ops;
    c->staging_sent = c->staging_used;
    c->graph_ok = true;
}

/* Run everything recorded, then wait for it: every caller of flush needs the
 * results (or the staging area free) next. */
void realm__cuda_flush(cuda_ctx *c)
{
    const bool timed = c->host_time && c->n_ops > 0 && c->first_status == REALM_OK;
    realm__cuda_launch(c);
    double t1 = 0;
    if (timed) {
        t1 = realm__cuda_now_s();
        CUDA_CHECK(c, cudaEventRecord(c->ht_ev[1], c->stream));
    }
    c->n_ops = c->seg_start = 0;
    c->staging_used = c->staging_sent = 0;
    c->last_batch = NULL;
    c->last_batch_pos = NULL;
    CUDA_CHECK(c, cudaStreamSynchronize(c->stream));
    if (timed) {
        float ms = 0;
        CUDA_CHECK(c, cudaEventElapsedTime(&ms, c->ht_ev[0], c->ht_ev[1]));
        double t2 = realm__cuda_now_s();
        if (c->ht_last_exit > 0) {
            c->ht_n++;
            c->ht_launch += t1 - c->ht_launch0;
            c->ht_gpu += ms * 1e-3;
            c->ht_wall += t2 - c->ht_last_exit;
        } else {
            c->ht_rec = 0; /* the first pass only starts the clock */
        }
        c->ht_last_exit = t2;
    }
}
