/*
 * backend/cuda/cuda_attention.cu — causal softmax attention over the paged KV
 * pool, for decode and prefill rows alike.
 *
 * One block per (batch row, query head). Scores: each thread takes whole
 * positions t = tid, tid + 128, ... and dots its K row with q (q in shared
 * memory, K read as float4), so a block keeps up to 128 independent K rows in
 * flight instead of walking positions one warp-step at a time; the pool slot
 * of each position is computed once there and kept for the V pass. Then the
 * block takes the max and the exp-sum, and thread groups each accumulate a
 * share of the positions for every head dimension (V rows read coalesced)
 * and combine in shared memory. K/V rows are found through the sequence's
 * block table (staged per pass); the launch shape depends only on
 * (n_rows, n_head), so a captured graph serves every context length.
 */
#include <math.h>

#include "backend/cuda/cuda_impl.h"

#define ATT_THREADS 128

__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention(const float *q, float *out, const float *kbase, const float *vbase, int32_t layer,
                int32_t n_blocks, int32_t block_size, int32_t kv_dim, const int32_t *pos,
                const int32_t *seq, const int32_t *tables, int32_t max_blocks, int32_t n_head,
                int32_t group, int32_t hd, float scale)
{
    /* q (hd) | partial (ATT_THREADS) | red (32) | scores (max_ctx) | slots (max_ctx) */
    extern __shared__ float sh[];
    float *qs = sh, *part = sh + hd, *red = part + ATT_THREADS, *sc = red + 32;
    const int32_t r = blockIdx.x, h = blockIdx.y, kvh = h / group;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = ATT_THREADS / 32;
    const int32_t n_pos = pos[r] + 1;
    int32_t *slots = (int32_t *)(sc + n_pos);
    const int32_t *tab = tables + (int64_t)seq[r] * max_blocks;
    const int64_t q_dim = (int64_t)n_head * hd;
    for (int i = threadIdx.x; i < hd; i += ATT_THREADS)
        qs[i] = q[r * q_dim + (int64_t)h * hd + i];
    __syncthreads();
    const size_t layer_base = (size_t)layer * n_blocks;
    const bool vec4 = hd % 4 == 0 && kv_dim % 4 == 0;
    for (int32_t t = threadIdx.x; t < n_pos; t += ATT_THREADS) {
        int32_t slot = (int32_t)((layer_base + (size_t)tab[t / block_size]) * block_size +
                                 t % block_size);
        slots[t] = slot;
        const float *kt = kbase + (size_t)slot * kv_dim + (size_t)kvh * hd;
        float d = 0.0f;
        if (vec4) {
            const float4 *k4 = (const float4 *)kt;
            for (int i = 0; i < hd / 4; i++) {
                float4 kv = k4[i];
                d += qs[4 * i] * kv.x;
                d += qs[4 * i + 1] * kv.y;
                d += qs[4 * i + 2] * kv.z;
                d += qs[4 * i + 3] * kv.w;
            }
        } else {
            for (int i = 0; i < hd; i++)
                d += qs[i] * kt[i];
        }
        sc[t] = d * scale;
    }
    __syncthreads();
    /* max, then exp and sum: softmax shifted by the max so exp never overflows */
    float mx = -INFINITY;
    for (int32_t t = threadIdx.x; t < n_pos; t += ATT_THREADS)
        mx = fmaxf(mx, sc[t]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = red[0];
    for (int k = 1; k < n_warps; k++)
        mx = fmaxf(mx, red[k]);
    float sum = 0.0f;
    for (int32_t t = threadIdx.x; t < n_pos; t += ATT_THREADS) {
        float e = expf(sc[t] - mx);
        sc[t] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    __syncthreads();
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int k = 0; k < n_warps; k++)
        sum += red[k];
    /* weighted sum of V: n_grp groups of hd threads split the positions */
    const int n_grp = hd <= ATT_THREADS ? ATT_THREADS / hd : 1;
    const int gi = threadIdx.x / hd, i = threadIdx.x % hd;
    for (int ib = 0; ib < hd; ib += ATT_THREADS) {
        float acc = 0.0f;
        int ii = hd <= ATT_THREADS ? i : ib + threadIdx.x;
        bool active = hd <= ATT_THREADS ? gi < n_grp : ii < hd;
        if (active) {
            int g0 = hd <= ATT_THREADS ? gi : 0, gs = hd <= ATT_THREADS ? n_grp : 1;
            const float *vh = vbase + (size_t)kvh * hd + ii;
#pragma unroll 4
            for (int32_t t = g0; t < n_pos; t += gs)
                acc += sc[t] * vh[(size_t)slots[t] * kv_dim];
        }
        __syncthreads();
        part[threadIdx.x] = acc;
        __syncthreads();
        if (hd <= ATT_THREADS) {
            if (threadIdx.x < hd) {
                float v = 0.0f;
                for (int k = 0; k < n_grp; k++)
                    v += part[k * hd + threadIdx.x];
                out[r * q_dim + (int64_t)h * hd + threadIdx.x] = v / sum;
            }
        } else if (ii < hd) {
            out[r * q_dim + (int64_t)h * hd + ii] = acc / sum;
        }
    }
}

static size_t att_shared(int32_t hd, int32_t max_ctx)
{
    return ((size_t)hd + ATT_THREADS + 32 + 2 * (size_t)max_ctx) * sizeof(float);
}

void realm__cuda_issue_attention(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    size_t shm = att_shared(p->head_dim, c->lim.max_ctx);
    if (shm > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)shm);
        if (e != cudaSuccess) {
            realm__cuda_fail(c, e, "attention: context too long for shared memory");
            return;
        }
    }
    dim3 grid((unsigned)b->n_rows, (unsigned)p->n_head);
    k_attention<<<grid, ATT_THREADS, shm, c->stream>>>(
        (const float *)op->x, (float *)op->out, kv->k, kv->v, op->i0, kv->n_blocks, kv->block_size,
        kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off), (const int32_t *)cuda__staging(c, b->table_off),
        b->max_blocks, p->n_head, p->n_head / p->n_head_kv, p->head_dim, p->scale);
    CUDA_CHECK(c, cudaGetLastError());
}
