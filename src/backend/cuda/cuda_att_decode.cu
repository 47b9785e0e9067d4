/*
 * backend/cuda/cuda_att_decode.cu — decode attention: at most
 * ATT_SPLIT_ROWS rows, each (row, head) split over positions into
 * $REALM_CUDA_ATT_SPLIT blocks (k_attention_split), the last block of each
 * combining the splits and, where the next op is a matmul reading Q8_0/Q8_1
 * activations of the output, writing those too. cuda_attention.cu takes
 * every other pass.
 */
#include <math.h>

#include "backend/cuda/cuda_att.cuh"
#include "backend/cuda/cuda_kv.cuh"

/* ---- decode: positions split over blocks ----
 * For few rows (decode) the (row, head) grid has too few blocks to fill the
 * GPU, so each (row, head) is split into `n_split` blocks over contiguous
 * position ranges (the split count comes from the launch, the ranges from
 * the row's position, so a graph still fits every length). A block scores
 * its positions with 8 lanes per position (each lane 4-column pieces j,
 * j+8, ... of the K row, a float4 of f32 or 8 bytes of f16, so a warp's
 * loads are coalesced and 4 positions go at once), then writes its (max,
 * exp-sum, unnormalized V sum). The pool's elements are KV (__half or
 * float), converted to float as they are loaded. The last
 * block of a (row, head) to finish — counted by an atomic ticket — rescales
 * and combines the splits, so decode attention is one kernel (a separate
 * combine kernel cost ~7 us per layer on the H100, nearly all latency). */
#define ATT_SPLIT_ROWS 8
#define ATT_SPLIT_MAX  32
#define ATT_TICKETS    (ATT_SPLIT_ROWS * 1024) /* one per (row, head), at the end of att_part */
#define ATT_VPRE       12                      /* V rows a thread loads before the scores */

/* Rescale and add the n_split partials of (row r, head h) at pp0 into out
 * (threads i < hd, hd <= ATT_THREADS): out = Σ_z V_z·e^(m_z - m) /
 * Σ_z s_z·e^(m_z - m), m the largest m_z (empty splits, s_z = 0, add
 * nothing). Each thread reads every split's (m_z, s_z) and its own V_z
 * element at once, 8 splits at a time, so 8 splits are one round trip to
 * L2 (the partials come from other blocks: read past L1, __ldcg), with no
 * barrier; past 8 the sums are carried over rescaled (online softmax).
 * Thread i < hd gets out[i] back. */
__device__ static float combine_splits(const float *pp0, float *out, int32_t n_split, int32_t hd)
{
    if (threadIdx.x >= hd) return 0.0f;
    float mx = -INFINITY, t = 0.0f, v = 0.0f;
    for (int32_t z0 = 0; z0 < n_split; z0 += 8) {
        float m[8], sz[8], vz[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const float *p = pp0 + (size_t)(z0 + k) * (hd + 2);
            const bool in = z0 + k < n_split;
            m[k] = in ? __ldcg(p) : -INFINITY;
            sz[k] = in ? __ldcg(p + 1) : 0.0f;
            vz[k] = in ? __ldcg(p + 2 + threadIdx.x) : 0.0f;
        }
        float cm = mx;
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (sz[k] > 0.0f) cm = fmaxf(cm, m[k]);
        if (cm == -INFINITY) continue; /* nothing yet */
        const float r = mx == -INFINITY ? 0.0f : expf(mx - cm);
        t *= r;
        v *= r;
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (sz[k] > 0.0f) {
                const float e = expf(m[k] - cm);
                t += sz[k] * e;
                v += vz[k] * e;
            }
        mx = cm;
    }
    v /= t;
    out[threadIdx.x] = v;
    return v;
}

/* The o projection's quantized input in 32-element groups (Q8_0, Q8_1),
 * written by the block that combines a head: each of its warps quantizes
 * its 32 values (the values and quantize_group of k_quantize_act: the same
 * codes), and the o projection needs no quantization launch of its own.
 * Not for Q8_K's 256-element groups, which span 256 / hd heads: the last of
 * their combining blocks (a second ticket) quantizing the group made 8B
 * Q4_K_M decode 1.8% slower than the separate launch (NOTES round 15). */
__device__ static void quantize_head(const cuda_act_target &aq, float v, int32_t r, int32_t h,
                                     int32_t hd, int64_t q_dim)
{
    if (threadIdx.x < hd) {
        const int64_t base = r * q_dim + (int64_t)h * hd + 32 * (threadIdx.x / 32);
        quantize_group<32>(&v, threadIdx.x % 32, aq.kind, aq.aq + base, aq.ad, aq.as, base / 32);
    }
}

template <typename KV>
__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention_split(const float *q, float *part, unsigned *tickets, float *out, const KV *kbase,
                      const KV *vbase, int32_t layer, int32_t n_blocks, int32_t block_size,
                      int32_t kv_dim, const int32_t *pos, const int32_t *seq, const int32_t *tables,
                      const int32_t *early, int32_t max_blocks, int32_t n_head, int32_t group,
                      int32_t hd, float scale, const cuda_act_target quant)
{
    /* q (hd) | partial (ATT_THREADS) | red (32) | scores (chunk) | slots (chunk) */
    extern __shared__ float sh[];
    float *qs = sh, *pt = sh + hd, *red = pt + ATT_THREADS, *sc = red + 32;
    __shared__ bool last;
    const int32_t r = blockIdx.x, h = blockIdx.y, z = blockIdx.z, n_split = gridDim.z;
    const int32_t kvh = h / group;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = ATT_THREADS / 32;
    const int32_t n_pos = pos[r] + 1;
    const bool early_kv = early[r] != 0; /* read with pos[r], ahead of the barrier below */
    const int32_t chunk = (n_pos + n_split - 1) / n_split;
    const int32_t t0 = z * chunk, t1 = min(n_pos, t0 + chunk), cnt = max(0, t1 - t0);
    int32_t *slots = (int32_t *)(sc + chunk);
    float *pp0 = part + ((size_t)r * n_head + h) * n_split * (size_t)(hd + 2);
    float *pp = pp0 + (size_t)z * (hd + 2);
    /* the batch's positions and block tables were staged before the pass's
     * first kernel: the K/V slots are looked up while the kernel before runs */
    const size_t layer_base = (size_t)layer * n_blocks;
    const int32_t *tab = tables + (int64_t)seq[r] * max_blocks;
    for (int32_t t = threadIdx.x; t < cnt; t += ATT_THREADS)
        slots[t] = (int32_t)((layer_base + (size_t)tab[(t0 + t) / block_size]) * block_size +
                             (t0 + t) % block_size);
    __syncthreads(); /* the slots */
    /* K of each lane group's first position and V of each thread's first
     * ATT_VPRE positions are loaded now too, before pdl_wait, except the
     * row's newest position (cur, as an index of this block's range): the
     * kernel ahead (rope_kv or kv_store, each done waiting for its own
     * predecessor before this kernel may start) writes only the batch rows'
     * positions, and every other position was stored by a kernel that has
     * finished. So the K/V reads overlap the kernel ahead, and K and V
     * arrive together. That holds where no row of the batch holds an
     * earlier position of the row's sequence (early[r], a decode step);
     * where one does (a short prompt, draft tokens being verified), its
     * K/V is being stored by the kernel ahead, so the block waits first
     * (pdl_wait again below returns at once). */
    if (!early_kv) pdl_wait();
    const int32_t cur = n_pos - 1 - t0;
    const int sub = lane % 8, pw = lane / 8; /* lane within position, position within warp */
    const int n_grp = ATT_THREADS / hd, gi = threadIdx.x / hd;
    const KV *vh = vbase + (size_t)kvh * hd + threadIdx.x % hd;
    const int32_t tk = warp * 4 + pw; /* the lane group's first position */
    const KV *kp = kbase + (size_t)(tk < cnt ? slots[tk] : 0) * kv_dim + (size_t)kvh * hd;
    /* raw bits, widened after the wait (cuda_kv.cuh) */
    typedef kv_raw<KV> R;
    typename R::x4 kpre[ATT_THREADS / 32]; /* elements 4i.. of K, i = sub + 8j < hd / 4 */
    typename R::x1 vpre[ATT_VPRE];
#pragma unroll
    for (int j = 0; j < ATT_THREADS / 32; j++)
        kpre[j] =
            tk < cnt && tk != cur && sub + 8 * j < hd / 4 ? R::load4(kp, sub + 8 * j) : R::zero4();
#pragma unroll
    for (int k = 0; k < ATT_VPRE; k++) {
        const int32_t t = gi + k * n_grp;
        vpre[k] = gi < n_grp && t < cnt && t != cur ? R::load1(vh + (size_t)slots[t] * kv_dim)
                                                    : (typename R::x1)0;
    }
    pdl_wait();
    pdl_trigger();
    if (cnt == 0) {
        if (threadIdx.x == 0) {
            pp[0] = -INFINITY;
            pp[1] = 0.0f;
        }
    } else {
        const int64_t q_dim = (int64_t)n_head * hd;
        for (int i = threadIdx.x; i < hd; i += ATT_THREADS)
            qs[i] = q[r * q_dim + (int64_t)h * hd + i];
        if (tk == cur && cur < cnt) {
#pragma unroll
            for (int j = 0; j < ATT_THREADS / 32; j++)
                if (sub + 8 * j < hd / 4) kpre[j] = R::load4(kp, sub + 8 * j);
        }
#pragma unroll
        for (int k = 0; k < ATT_VPRE; k++)
            if (gi < n_grp && gi + k * n_grp == cur && cur < cnt)
                vpre[k] = R::load1(vh + (size_t)slots[cur] * kv_dim);
        __syncthreads(); /* q */
        /* scores: 8 lanes per position */
        const float4 *q4 = (const float4 *)qs;
        for (int32_t tb = warp * 4; tb < cnt; tb += n_warps * 4) {
            const int32_t t = tb + pw;
            float d = 0.0f;
            if (t == tk) { /* the first position: K loaded above */
#pragma unroll
                for (int j = 0; j < ATT_THREADS / 32; j++) {
                    if (sub + 8 * j >= hd / 4) break;
                    const float4 kv = kv_wide(kpre[j]), qv = q4[sub + 8 * j];
                    d += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            } else if (t < cnt) {
                const KV *kt = kbase + (size_t)slots[t] * kv_dim + (size_t)kvh * hd;
                for (int i = sub; i < hd / 4; i += 8) {
                    float4 kv = kv_load4(kt, i), qv = q4[i];
                    d += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            }
            d += __shfl_xor_sync(0xffffffffu, d, 4);
            d += __shfl_xor_sync(0xffffffffu, d, 2);
            d += __shfl_xor_sync(0xffffffffu, d, 1);
            if (sub == 0 && t < cnt) sc[t] = d * scale;
        }
        __syncthreads();
        float mx, sum = block_exp_sum(sc, cnt, red, &mx);
        if (threadIdx.x == 0) {
            pp[0] = mx;
            pp[1] = sum;
        }
        /* unnormalized weighted sum of V (hd <= ATT_THREADS here), in
         * position order */
        float acc = 0.0f;
        if (gi < n_grp) {
#pragma unroll
            for (int k = 0; k < ATT_VPRE; k++) {
                const int32_t t = gi + k * n_grp;
                if (t < cnt) acc += sc[t] * kv_wide(vpre[k]);
            }
#pragma unroll 4
            for (int32_t t = gi + ATT_VPRE * n_grp; t < cnt; t += n_grp)
                acc += sc[t] * kv_load1(vh + (size_t)slots[t] * kv_dim);
        }
        pt[threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.x < hd) {
            float v = 0.0f;
            for (int k = 0; k < n_grp; k++)
                v += pt[k * hd + threadIdx.x];
            pp[2 + threadIdx.x] = v;
        }
    }
    /* the last of the (r, h) blocks to finish combines all splits; its
     * ticket goes back to 0 for the next launch. The ticket is taken with
     * acquire-release semantics after the block's barrier: it publishes
     * this block's partials (release; the barrier orders the other
     * threads' stores before it) and, for the last block, makes every
     * other block's visible (acquire; the barrier after carries that to
     * the block's threads), in place of a fence on each side. */
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned *tk = tickets + (size_t)r * n_head + h, old;
        asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;"
                     : "=r"(old)
                     : "l"(tk)
                     : "memory");
        last = old == (unsigned)n_split - 1;
        if (last) *tk = 0;
    }
    __syncthreads();
    if (!last) return;
    const int64_t q_dim = (int64_t)n_head * hd;
    const float v = combine_splits(pp0, out + r * q_dim + (int64_t)h * hd, n_split, hd);
    if (quant.kind != ACT_F32) quantize_head(quant, v, r, h, hd, q_dim);
}

size_t realm__cuda_att_part_bytes(const realm_backend_limits *lim)
{
    /* n_head * (hd + 2) <= q width * 17/16 (hd >= 32), q width <= max_ne0 */
    return (size_t)ATT_SPLIT_ROWS * ATT_SPLIT_MAX * ((size_t)lim->max_ne0 * 17 / 16 + 64) *
               sizeof(float) +
           ATT_TICKETS * sizeof(unsigned);
}

void realm__cuda_att_early(const realm_batch *b, int32_t *early)
{
    for (int32_t r = 0; r < b->n_rows; r++) {
        early[r] = b->n_rows <= ATT_SPLIT_ROWS;
        for (int32_t i = 0; early[r] && i < b->n_rows; i++)
            early[r] = b->seq[i] != b->seq[r] || b->pos[i] >= b->pos[r];
    }
}

/* realm__cuda_att_decode over a pool of KV elements */
template <typename KV>
static bool att_decode(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    const int32_t hd = p->head_dim, S = c->att_split > ATT_SPLIT_MAX ? ATT_SPLIT_MAX : c->att_split;
    if (S <= 1 || b->n_rows > ATT_SPLIT_ROWS || hd % 32 || hd > ATT_THREADS || kv->kv_dim % 4 ||
        !c->att_part || p->n_head > ATT_TICKETS / ATT_SPLIT_ROWS ||
        (size_t)b->n_rows * S * p->n_head * (hd + 2) * sizeof(float) >
            c->att_part_bytes - ATT_TICKETS * sizeof(unsigned))
        return false;
    /* the o projection's quantized input, in 32-element groups (kind
     * ACT_F32: none) */
    struct cuda_act_target quant = {};
    if (!mm || !c->att_quant ||
        !realm__cuda_act_target(c, mm, op->out, b->n_rows, (int64_t)p->n_head * hd, &quant) ||
        (quant.kind != ACT_Q8_0 && quant.kind != ACT_Q8_1))
        quant = {ACT_F32, NULL, NULL, NULL};
    const int32_t chunk = (c->lim.max_ctx + S - 1) / S;
    size_t shm = ((size_t)hd + ATT_THREADS + 32 + 2 * (size_t)chunk) * sizeof(float);
    if (shm > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_attention_split<KV>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            return false;
        }
    }
    dim3 grid((unsigned)b->n_rows, (unsigned)p->n_head, (unsigned)S);
    unsigned *tickets = (unsigned *)((char *)c->att_part + c->att_part_bytes) - ATT_TICKETS;
    cuda__launch_pdl(c, k_attention_split<KV>, grid, dim3(ATT_THREADS), shm, (const float *)op->x,
                     c->att_part, tickets, (float *)op->out, (const KV *)kv->k, (const KV *)kv->v,
                     op->i0, kv->n_blocks, kv->block_size, kv->kv_dim,
                     (const int32_t *)cuda__staging(c, b->pos_off),
                     (const int32_t *)cuda__staging(c, b->seq_off),
                     (const int32_t *)cuda__staging(c, b->table_off),
                     (const int32_t *)cuda__staging(c, b->early_off), b->max_blocks, p->n_head,
                     p->n_head / p->n_head_kv, hd, p->scale, quant);
    CUDA_CHECK(c, cudaGetLastError());
    if (quant.kind != ACT_F32) realm__cuda_act_written(c, mm);
    return true;
}

bool realm__cuda_att_decode(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm)
{
    return kv_is_f16(&op->kv) ? att_decode<__half>(c, op, mm) : att_decode<float>(c, op, mm);
}
