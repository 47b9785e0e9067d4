/*
 * backend/cuda/cuda_matmul.cu — out (n, ne1) = x (n, ne0) · W^T (+ bias):
 * which path takes a matmul, and the activations the quantized paths read.
 *
 * Small n (decode; n <= mmv_max_rows, default 64): activations are
 * quantized on the GPU exactly as the CPU reference quantizes them (the
 * weight type's vec_dot_type: Q8_0, Q8_1 or Q8_K, same rounding), into a
 * GPU layout per row: int8 codes, one float scale per 32 elements (Q8_K's
 * 256-element scale repeated) and, for Q8_1, the binary16-rounded d·Σq per
 * 32 (for Q8_K the unrounded d·Σq per 32, which the tile kernel's
 * super-block path reads); the mat-vec kernels (cuda_mmv.cu, and the ring
 * in cuda_mmv_ring.cu) take them from there. An rmsnorm or swiglu ahead of
 * the matmul may quantize its output itself (k_rmsnorm_quant,
 * k_quantize_act's PRE_SWIGLU). Float weights (F32, F16, BF16) dot f32
 * activations directly.
 *
 * Quantized weights at mmq_min_rows..mmq_max_rows rows (default 9..64; the
 * formats of its super-block path, Q4_K/Q5_K/Q6_K/Q8_0, at 2..96) take the
 * int8 tensor-core tile kernel instead (cuda_mmq.cu), on the same quantized
 * activations; $REALM_CUDA_MMQ=0 turns it off.
 *
 * Large n (prefill): cuBLAS on f16 tiles of the weights (cuda_gemm.cu).
 */
#include <math.h>
#include <stdio.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_mmv.cuh"

bool realm__cuda_type_ok(realm_type t)
{
    switch (t) {
    case REALM_TYPE_F32: case REALM_TYPE_F16: case REALM_TYPE_BF16:
    case REALM_TYPE_Q4_0: case REALM_TYPE_Q4_1: case REALM_TYPE_Q5_0: case REALM_TYPE_Q5_1:
    case REALM_TYPE_Q8_0: case REALM_TYPE_Q2_K: case REALM_TYPE_Q3_K: case REALM_TYPE_Q4_K:
    case REALM_TYPE_Q5_K: case REALM_TYPE_Q6_K: case REALM_TYPE_IQ4_NL: case REALM_TYPE_IQ4_XS:
        return true;
    default: return false;
    }
}

static int act_kind_of(realm_type t)
{
    switch (t) {
    case REALM_TYPE_Q4_1: case REALM_TYPE_Q5_1: return ACT_Q8_1;
    case REALM_TYPE_Q4_0: case REALM_TYPE_Q5_0: case REALM_TYPE_Q8_0: case REALM_TYPE_IQ4_NL:
        return ACT_Q8_0;
    case REALM_TYPE_F32: case REALM_TYPE_F16: case REALM_TYPE_BF16: return ACT_F32;
    default: return ACT_Q8_K;
    }
}

void realm__cuda_matmul_scratch(const realm_backend_limits *lim, size_t *act_q_bytes,
                                size_t *dq_bytes, size_t *act_h_bytes)
{
    size_t rows = (size_t)lim->max_rows, ne0 = (size_t)lim->max_ne0;
    *act_q_bytes = rows * ne0 + 2 * rows * (ne0 / 32 + 1) * sizeof(float) + 256;
    size_t row_h = ne0 * 2;
    *dq_bytes = DQ_TILE_BYTES > row_h ? DQ_TILE_BYTES : row_h;
    *act_h_bytes = rows * ne0 * 2;
}

/* ---- activation quantization (quantize_group: cuda_quant.cuh) ---- */

/* Where the fused producers put their values: 0 plain input, 1 swiglu of
 * (x = gate, y = up; gate overwritten with the result). */
enum { PRE_NONE, PRE_SWIGLU };

/* One warp per group; blockIdx.y is the row. */
template <int G, int PRE>
__global__ static void k_quantize_act(const float *x, const float *y, float *xout, int64_t ne0,
                                      int kind, int8_t *q, float *d32, float *s32)
{
    pdl_wait();
    pdl_trigger();
    const int E = G / 32; /* elements per lane */
    int lane = threadIdx.x % 32;
    int64_t gidx = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int32_t r = blockIdx.y;
    if (gidx * G >= ne0) return;
    const int64_t base = r * ne0 + gidx * G, l0 = base + lane * E;
    float v[E];
    /* a lane's E consecutive values as float4s where everything is aligned */
    const uintptr_t ptrs = (uintptr_t)(x + l0) |
                           (PRE == PRE_SWIGLU ? (uintptr_t)(y + l0) | (uintptr_t)(xout + l0) : 0);
    const bool wide = E % 4 == 0 && ptrs % 16 == 0;
    if (wide) {
#pragma unroll
        for (int e = 0; e < E; e += 4) {
            const float4 a = *(const float4 *)(x + l0 + e);
            v[e] = a.x, v[e + 1] = a.y, v[e + 2] = a.z, v[e + 3] = a.w;
            if (PRE == PRE_SWIGLU) {
                const float4 b = *(const float4 *)(y + l0 + e);
                const float u[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
                for (int k = 0; k < 4; k++) /* k_swiglu's expression */
                    v[e + k] = v[e + k] / (1.0f + expf(-v[e + k])) * u[k];
                *(float4 *)(xout + l0 + e) = make_float4(v[e], v[e + 1], v[e + 2], v[e + 3]);
            }
        }
    } else {
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int64_t i = l0 + e;
            if (PRE == PRE_SWIGLU) {
                float gt = x[i];
                v[e] = gt / (1.0f + expf(-gt)) * y[i]; /* k_swiglu's expression */
                xout[i] = v[e];
            } else {
                v[e] = x[i];
            }
        }
    }
    quantize_group<G>(v, lane, kind, q + base, d32, s32, r * (ne0 / 32) + gidx * (G / 32));
}

/* rmsnorm (k_rmsnorm's arithmetic: row_sumsq, rms_inv, the same products)
 * writing the normed row and its quantization. Block (part, row) of
 * NORM_THREADS threads: every block sums the whole row (from L2), then each
 * warp normalizes and quantizes norm_part<G> / 4 elements (one Q8_K group,
 * or two groups of 32). Many small blocks instead of one of 1024 threads per
 * row: 8B decode +4% (NOTES round 11). Launched with
 * programmatic dependent launch: the norm weights (constant) are loaded
 * before pdl_wait; the kernel lets its own follower start only once the
 * kernel before it has finished (pdl_trigger after pdl_wait), so at most one
 * kernel runs ahead. */
template <int G> __host__ __device__ constexpr int norm_part()
{
    return G == 256 ? 1024 : 256; /* elements per block */
}

template <int G>
__global__ static void __launch_bounds__(NORM_THREADS)
    k_rmsnorm_quant(const float *x, const float *gw, int64_t d, float eps, float *out, int kind,
                    int8_t *q, float *d32, float *s32)
{
    __shared__ float sh[NORM_THREADS / 32];
    constexpr int PW = norm_part<G>() / (NORM_THREADS / 32); /* elements per warp */
    constexpr int E = G / 32, NG = PW / G; /* elements per lane per group, groups per warp */
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t g0 = ((int64_t)blockIdx.x * norm_part<G>() + warp * PW) / G; /* first group */
    const int32_t r = blockIdx.y;
    float gv[NG * E];
#pragma unroll
    for (int k = 0; k < NG; k++)
#pragma unroll
        for (int e = 0; e < E; e++) {
            const int64_t i = (g0 + k) * G + lane * E + e;
            gv[k * E + e] = i < d ? __ldg(gw + i) : 0.0f;
        }
    pdl_wait();
    pdl_trigger();
    const float *xr = x + r * d;
    const float inv = rms_inv(row_sumsq(xr, d, sh), d, eps);
#pragma unroll
    for (int k = 0; k < NG; k++) {
        const int64_t gi = g0 + k;
        if (gi * G >= d) break;
        float v[E];
        const int64_t i0 = gi * G + lane * E;
        if (E % 4 == 0 && (((uintptr_t)(xr + i0) | (uintptr_t)(out + r * d + i0)) % 16) == 0) {
#pragma unroll
            for (int e = 0; e < E; e += 4) {
                const float4 a = *(const float4 *)(xr + i0 + e);
                v[e] = a.x * inv * gv[k * E + e];
                v[e + 1] = a.y * inv * gv[k * E + e + 1];
                v[e + 2] = a.z * inv * gv[k * E + e + 2];
                v[e + 3] = a.w * inv * gv[k * E + e + 3];
                *(float4 *)(out + r * d + i0 + e) = make_float4(v[e], v[e + 1], v[e + 2], v[e + 3]);
            }
        } else {
#pragma unroll
            for (int e = 0; e < E; e++) {
                v[e] = xr[i0 + e] * inv * gv[k * E + e];
                out[r * d + i0 + e] = v[e];
            }
        }
        quantize_group<G>(v, lane, kind, q + r * d + gi * G, d32, s32,
                          (int64_t)r * (d / 32) + gi * (G / 32));
    }
}

/* Where matmul_small finds the quantized activations of its op. */
struct act_view {
    int8_t *aq;
    float *ad, *as;
};

static act_view act_layout(cuda_ctx *c, int32_t n, int64_t ne0)
{
    act_view a;
    a.aq = (int8_t *)c->act_q;
    size_t nq = ((size_t)n * ne0 + 15) & ~(size_t)15;
    a.ad = (float *)((char *)c->act_q + nq);
    a.as = a.ad + (size_t)n * (ne0 / 32);
    return a;
}

static bool takes_small_path(const cuda_ctx *c, const struct cuda_op *mm)
{
    return mm->n <= c->mmv_max_rows;
}

/* The tile kernel (cuda_mmq.cu) for quantized weights, ahead of both other
 * paths: its super-block path at sb_min_rows..sb_max_rows rows, the other
 * formats at mmq_min_rows..mmq_max_rows. */
static bool takes_mmq(const cuda_ctx *c, const struct cuda_op *mm)
{
    if (!c->mmq || act_kind_of(mm->w.type) == ACT_F32) return false;
    if (realm__cuda_mmq_sb(c, &mm->w)) return mm->n >= c->sb_min_rows && mm->n <= c->sb_max_rows;
    return mm->n >= c->mmq_min_rows && mm->n <= c->mmq_max_rows;
}

/* Will the matmul read quantized activations (so a producer may write them)? */
static bool takes_quant_path(const cuda_ctx *c, const struct cuda_op *mm)
{
    return takes_small_path(c, mm) || takes_mmq(c, mm);
}

/* x (and y, for PRE) -> n rows of int8 activations of `kind` in a, one launch
 * (4 groups of G per 128-thread block); xout: where PRE's f32 result goes. */
template <int PRE>
static void launch_quantize(cuda_ctx *c, int kind, int32_t n, int64_t ne0, const float *x,
                            const float *y, float *xout, const act_view &a)
{
    const int G = kind == ACT_Q8_K ? 256 : 32;
    dim3 grid((unsigned)((ne0 / G + 3) / 4), (unsigned)n);
    if (G == 256)
        cuda__launch_pdl(c, k_quantize_act<256, PRE>, grid, dim3(128), 0, x, y, xout, ne0, kind,
                         a.aq, a.ad, a.as);
    else
        cuda__launch_pdl(c, k_quantize_act<32, PRE>, grid, dim3(128), 0, x, y, xout, ne0, kind,
                         a.aq, a.ad, a.as);
    CUDA_CHECK(c, cudaGetLastError());
}

/* The quantized activations of op's input: quantized now unless the last
 * quantization (or a fused producer) left them in act_q. */
static act_view quantize_input(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_weight *w = &op->w;
    int kind = act_kind_of(w->type);
    act_view a = act_layout(c, op->n, w->ne0);
    bool cached = c->aq_x == op->x && c->aq_n == op->n && c->aq_ne0 == w->ne0 &&
                  c->aq_kind == kind;
    if (kind != ACT_F32 && !cached) {
        launch_quantize<PRE_NONE>(c, kind, op->n, w->ne0, (const float *)op->x, NULL, NULL, a);
        cuda__remember_act(c, op->x, op->n, w->ne0, kind);
    }
    return a;
}

/* resid (or NULL): also add the result into it (a following `add`); returns
 * false when the kernel could not (float weights), and the caller issues the
 * add itself. */
static bool matmul_small(cuda_ctx *c, const struct cuda_op *op, float *resid)
{
    const bool quant = act_kind_of(op->w.type) != ACT_F32;
    act_view a = quantize_input(c, op);
    realm__cuda_mmv(c, op, 1, 0, a.aq, a.ad, a.as, resid);
    CUDA_CHECK(c, cudaGetLastError());
    return quant && resid;
}

bool realm__cuda_act_target(cuda_ctx *c, const struct cuda_op *mm, const void *x, int32_t n,
                            int64_t ne0, struct cuda_act_target *t)
{
    const int kind = act_kind_of(mm->w.type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || mm->x != x || mm->n != n || mm->w.ne0 != ne0)
        return false;
    const act_view a = act_layout(c, n, ne0);
    t->kind = kind;
    t->aq = a.aq;
    t->ad = a.ad;
    t->as = a.as;
    return true;
}

void realm__cuda_act_written(cuda_ctx *c, const struct cuda_op *mm)
{
    cuda__remember_act(c, mm->x, mm->n, mm->w.ne0, act_kind_of(mm->w.type));
}

bool realm__cuda_issue_rmsnorm_quant(cuda_ctx *c, const struct cuda_op *norm,
                                     const struct cuda_op *mm)
{
    const realm_weight *w = &mm->w;
    int kind = act_kind_of(w->type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || norm->w.ne0 != w->ne0 ||
        norm->n != mm->n || norm->out != mm->x)
        return false;
    act_view a = act_layout(c, mm->n, w->ne0);
    const float *x = (const float *)norm->x, *g = (const float *)norm->w.data;
    float *out = (float *)norm->out;
    const int64_t part = kind == ACT_Q8_K ? norm_part<256>() : norm_part<32>();
    dim3 grid((unsigned)((w->ne0 + part - 1) / part), (unsigned)norm->n);
    if (kind == ACT_Q8_K)
        cuda__launch_pdl(c, k_rmsnorm_quant<256>, grid, dim3(NORM_THREADS), 0, x, g, w->ne0,
                         norm->f0, out, kind, a.aq, a.ad, a.as);
    else
        cuda__launch_pdl(c, k_rmsnorm_quant<32>, grid, dim3(NORM_THREADS), 0, x, g, w->ne0,
                         norm->f0, out, kind, a.aq, a.ad, a.as);
    CUDA_CHECK(c, cudaGetLastError());
    cuda__remember_act(c, mm->x, mm->n, w->ne0, kind);
    return true;
}

bool realm__cuda_issue_swiglu_quant(cuda_ctx *c, const struct cuda_op *sw, const struct cuda_op *mm)
{
    const realm_weight *w = &mm->w;
    int kind = act_kind_of(w->type);
    if (kind == ACT_F32 || !takes_quant_path(c, mm) || sw->out != mm->x ||
        sw->width != (int64_t)mm->n * w->ne0 || sw->y == sw->out)
        return false;
    act_view a = act_layout(c, mm->n, w->ne0);
    float *gate = (float *)sw->out;
    launch_quantize<PRE_SWIGLU>(c, kind, mm->n, w->ne0, gate, (const float *)sw->y, gate, a);
    cuda__remember_act(c, mm->x, mm->n, w->ne0, kind);
    return true;
}

/* How many of ops[0], ops[1], ... (up to MMS_SET) are matmuls of one width
 * on ops[0]'s input, at most one change of type (mixing, never on the tile
 * kernel mmq); *first1: the first member of the second type (0: none). */
static int set_extent(const cuda_ctx *c, const struct cuda_op *ops, int n_ops, bool mmq,
                      int *first1)
{
    const struct cuda_op *op = &ops[0];
    int k = 1;
    *first1 = 0;
    while (k < n_ops && k < MMS_SET) {
        const struct cuda_op *o = &ops[k];
        if (o->kind != CUDA_OP_MATMUL || o->x != op->x || o->n != op->n || o->w.ne0 != op->w.ne0 ||
            (uintptr_t)o->w.data % 16)
            break;
        if (o->w.type != ops[k - 1].w.type) { /* once, in the staged mat-vec's sets */
            if (mmq || *first1 || c->mmv_plain || !c->mmv_mixed ||
                !realm__cuda_mmv_mixable(op->w.type, o->w.type))
                break;
            *first1 = k;
        }
        k++;
    }
    for (int i = 0; i < k; i++) /* no member may overwrite the input the others read */
        if (ops[i].out == op->x) return 0;
    return k;
}

/* The set of k (q, k, v at one row) with the rope, rope and kv_store after
 * it (ops[3 .. 6)) as one cuda_rope_kv, where the ring may do them. */
static bool set_rope(const cuda_ctx *c, const struct cuda_op *ops, int k, int n_ops, bool mmq,
                     struct cuda_rope_kv *rkv)
{
    const struct cuda_op *op = &ops[0];
    return !mmq && k == 3 && n_ops >= 6 && c->qkv_rope && !c->mmv_plain && ops[3].n == op->n &&
           realm__cuda_rope_kv_of(c, &ops[3], &ops[4], &ops[5], rkv) && rkv->q == ops[0].out &&
           rkv->k == ops[1].out && rkv->v == ops[2].out &&
           (int64_t)rkv->nq * rkv->head_dim == ops[0].w.ne1 &&
           (int64_t)rkv->nk * rkv->head_dim == ops[1].w.ne1 && ops[2].w.ne1 == ops[1].w.ne1;
}

int realm__cuda_issue_matmul_set(cuda_ctx *c, const struct cuda_op *ops, int n_ops)
{
    const struct cuda_op *op = &ops[0];
    /* the tile kernel's super-block path (q, k, v at 9..96 rows) or the
     * staged mat-vec */
    const bool mmq = takes_mmq(c, op);
    if (!c->mmv_set || act_kind_of(op->w.type) == ACT_F32 ||
        (mmq ? !realm__cuda_mmq_sb(c, &op->w) : !takes_small_path(c, op)))
        return 0;
    int first1; /* the first member of a second type */
    const int k = set_extent(c, ops, n_ops, mmq, &first1);
    if (k < 2) return 0;
    act_view a = quantize_input(c, op);
    /* q, k, v at one row, then their rope, rope and kv_store: the ring does
     * those three ops in its epilogue */
    struct cuda_rope_kv rkv;
    if (set_rope(c, ops, k, n_ops, mmq, &rkv) &&
        (realm__cuda_mmv_ring(c, ops, k, first1 ? first1 : k, a.aq, a.ad, a.as, NULL, &rkv, NULL) ||
         (!first1 && realm__cuda_mmv_rope(c, ops, a.aq, a.ad, a.as, &rkv)))) {
        c->counts.qkv_rope++;
        c->aq_x = NULL;
        return 6;
    }
    if (mmq) /* the input stays cached: the tile kernel's sets are not mat-vecs */
        return realm__cuda_mmq(c, ops, k, a.aq, a.ad, a.as, NULL) ? k : 0;
    /* a staged set whose members would slab their rows differently goes
     * one by one (the cached input serves them) */
    if (!realm__cuda_mmv(c, ops, k, first1, a.aq, a.ad, a.as, NULL)) return 0;
    CUDA_CHECK(c, cudaGetLastError());
    /* The quantized input is still valid (no member wrote it), but a
     * matmul of another type on it (a Q6_K v after a Q4_K q/k set with
     * mixing off) was better off quantizing it again: 8B Q4_K_M decode1
     * 337.4 with the copy kept vs 340.6 (NOTES round 12); likely two
     * mat-vecs back to back, both starting their followers early, then
     * compete for the SMs. */
    c->aq_x = NULL;
    return k;
}

/* The set after the rmsnorm `norm` that the ring would take with the
 * rmsnorm in every block: its size (0: none), first1 (0: one type), the
 * norm's inputs and, where the q/k/v set's rope fits, *rope = true. */
static int norm_set_of(const cuda_ctx *c, const struct cuda_op *norm, const struct cuda_op *ops,
                       int n_ops, int *first1, struct cuda_norm_in *nrm, struct cuda_rope_kv *rkv,
                       bool *rope)
{
    const struct cuda_op *op = &ops[0];
    if (!c->ring_norm || !c->mmv_set || c->mmv_plain || op->kind != CUDA_OP_MATMUL || op->n != 1 ||
        norm->n != 1 || norm->out != op->x || norm->w.ne0 != op->w.ne0 ||
        act_kind_of(op->w.type) != ACT_Q8_K || takes_mmq(c, op) || !takes_small_path(c, op))
        return 0;
    const int k = set_extent(c, ops, n_ops, false, first1);
    if (k < 2) return 0;
    for (int i = 0; i < k; i++) /* nor the row the rmsnorm reads */
        if (ops[i].out == norm->x) return 0;
    *nrm = (struct cuda_norm_in){(const float *)norm->x, (const float *)norm->w.data,
                                 (float *)norm->out, norm->f0};
    *rope = set_rope(c, ops, k, n_ops, false, rkv);
    /* the ring's own conditions: widths, types, alignment, no rmsnorm in place */
    if (!realm__cuda_ring_takes(c, ops, k, *first1 ? *first1 : k, *rope ? rkv : NULL, nrm))
        return 0;
    return k;
}

bool realm__cuda_norm_set_fits(const cuda_ctx *c, const struct cuda_op *norm,
                               const struct cuda_op *ops, int n_ops)
{
    int first1;
    struct cuda_norm_in nrm;
    struct cuda_rope_kv rkv;
    bool rope;
    return norm_set_of(c, norm, ops, n_ops, &first1, &nrm, &rkv, &rope) > 0;
}

int realm__cuda_issue_norm_set(cuda_ctx *c, const struct cuda_op *norm, const struct cuda_op *ops,
                               int n_ops)
{
    int first1;
    struct cuda_norm_in nrm;
    struct cuda_rope_kv rkv;
    bool rope;
    const int k = norm_set_of(c, norm, ops, n_ops, &first1, &nrm, &rkv, &rope);
    if (!k || !realm__cuda_mmv_ring(c, ops, k, first1 ? first1 : k, NULL, NULL, NULL, NULL,
                                    rope ? &rkv : NULL, &nrm))
        return 0;
    c->counts.ring_norm++;
    if (rope) c->counts.qkv_rope++;
    c->aq_x = NULL; /* the codes stayed in the ring's blocks */
    return rope ? 6 : k;
}

bool realm__cuda_issue_matmul(cuda_ctx *c, const struct cuda_op *op, float *resid)
{
    bool added = false;
    if (takes_mmq(c, op)) {
        act_view a = quantize_input(c, op);
        if (realm__cuda_mmq(c, op, 1, a.aq, a.ad, a.as, resid))
            added = resid != NULL;
        else
            realm__cuda_matmul_big(c, op);
    } else if (takes_small_path(c, op)) {
        added = matmul_small(c, op, resid);
    } else {
        realm__cuda_matmul_big(c, op);
    }
    if (op->out == c->aq_x || (resid && resid == c->aq_x))
        c->aq_x = NULL; /* the cached input was overwritten */
    return added;
}
