/*
 * backend/cuda/cuda_attention.cu — causal softmax attention over the paged KV
 * pool, for decode and prefill rows alike.
 *
 * Rows that neither the decode split nor the prefill tiles (both below)
 * take go, at head dims 64 and 128, to k_attention_rows: one block per
 * (row, query heads sharing a K/V head), warps streaming positions with an
 * online softmax (described there). At other head dims they take
 * k_attention: one block per (row, query head). Scores: each thread takes whole
 * positions t = tid, tid + 128, ... and dots its K row with q (q in shared
 * memory, K read as float4), so a block keeps up to 128 independent K rows in
 * flight instead of walking positions one warp-step at a time; the pool slot
 * of each position is computed once there and kept for the V pass. Then the
 * block takes the max and the exp-sum, and thread groups each accumulate a
 * share of the positions for every head dimension (V rows read coalesced)
 * and combine in shared memory. K/V rows are found through the sequence's
 * block table (staged per pass); the launch shape depends only on
 * (n_rows, n_head), so a captured graph serves every context length.
 * At most ATT_SPLIT_ROWS rows (decode), each (row, head) is further split
 * over positions ($REALM_CUDA_ATT_SPLIT blocks, default 8), the last block
 * of each combining the splits (k_attention_split below) and, where the
 * next op is a matmul reading Q8_0/Q8_1 activations of the output, writing
 * those too ($REALM_CUDA_ATT_QUANT=0: off). Passes too large
 * for a graph (prefill) take tiles of up to AT_ROWS rows of one sequence
 * instead, K/V staged in shared memory once per tile (k_attention_tile);
 * short runs of rows stay one row per block. Where the one-row kernel's
 * per-position scores cannot fit the reserved context in shared memory
 * (past ~28.9k positions), the tiles take every row.
 */
#include <math.h>

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

#define ATT_THREADS 128

/* sc[t] = exp(sc[t] - max) for t < n over the whole block (ATT_THREADS
 * threads, red: n_warps floats of shared scratch); every thread gets the max
 * in *mx_out and the sum as the result. Shifting by the max keeps exp from
 * overflowing. Starts and ends with sc fully written (callers sync before).
 * Up to 32 values, warp 0 alone takes both by shuffles: one barrier instead
 * of three, and the same floats (the other warps' shares were -inf and 0). */
__device__ static float block_exp_sum(float *sc, int32_t n, float *red, float *mx_out)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = ATT_THREADS / 32;
    if (n <= 32) {
        if (warp == 0) {
            const float x = lane < n ? sc[lane] : -INFINITY;
            float m = x;
            for (int o = 16; o > 0; o >>= 1)
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            const float e = lane < n ? expf(x - m) : 0.0f;
            float s = e;
            for (int o = 16; o > 0; o >>= 1)
                s += __shfl_xor_sync(0xffffffffu, s, o);
            if (lane < n) sc[lane] = e;
            if (lane == 0) {
                red[0] = m;
                red[1] = s;
            }
        }
        __syncthreads();
        *mx_out = red[0];
        return red[1];
    }
    float mx = -INFINITY;
    for (int32_t t = threadIdx.x; t < n; t += ATT_THREADS)
        mx = fmaxf(mx, sc[t]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = red[0];
    for (int k = 1; k < n_warps; k++)
        mx = fmaxf(mx, red[k]);
    float sum = 0.0f;
    for (int32_t t = threadIdx.x; t < n; t += ATT_THREADS) {
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
    *mx_out = mx;
    return sum;
}

__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention(const float *q, float *out, const float *kbase, const float *vbase, int32_t layer,
                int32_t n_blocks, int32_t block_size, int32_t kv_dim, const int32_t *pos,
                const int32_t *seq, const int32_t *tables, int32_t max_blocks, int32_t n_head,
                int32_t group, int32_t hd, float scale, const int32_t *rows)
{
    /* q (hd) | partial (ATT_THREADS) | red (32) | scores (max_ctx) | slots (max_ctx) */
    extern __shared__ float sh[];
    float *qs = sh, *part = sh + hd, *red = part + ATT_THREADS, *sc = red + 32;
    const int32_t r = rows ? rows[blockIdx.x] : (int32_t)blockIdx.x, h = blockIdx.y,
                  kvh = h / group;
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
    float mx, sum = block_exp_sum(sc, n_pos, red, &mx);
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

/* ---- many rows at head dims 64 and 128: one block per (row, query heads
 * of one K/V head) ----
 * k_attention above walks positions one per thread (a K row of 32 float4
 * loads each) and then V one position per step for every head dimension:
 * ~66 us per layer for 64 decode rows of the 8B (NOTES round 11), 5x what
 * its K/V bytes take, and each of a K/V head's query heads read it again.
 * Here a block takes HB query heads that share one K/V head; each warp
 * streams positions warp*AR_U.., AR_U at a time: lane l holds head
 * dimensions l*E..l*E+E-1 (E = HD/32) of q, K, V and the output, so each
 * K or V row is one coalesced warp load, issued for AR_U positions before
 * any is used. Scores are reduced across the warp, and the softmax is taken
 * online (running max m and sum l per head; when the max grows, what was
 * summed is rescaled by e^(m_old - m_new)). The warps' (m, l, output) are
 * combined in shared memory at the end (8 warps: agg32 +2% over 4). No
 * per-position shared memory, so any context length fits. (At decode the
 * split kernel below stays faster: NOTES round 11.) */
#define AR_U     4
#define AR_WARPS 8

template <int E> struct ar_vec;
template <> struct ar_vec<2> {
    typedef float2 t;
};
template <> struct ar_vec<4> {
    typedef float4 t;
};

template <int E>
__device__ __forceinline__ void ar_load(const float *p, float (&v)[E])
{
    typename ar_vec<E>::t x = *(const typename ar_vec<E>::t *)p;
    const float *f = (const float *)&x;
#pragma unroll
    for (int e = 0; e < E; e++)
        v[e] = f[e];
}

template <int HD, int HB>
__global__ static void __launch_bounds__(AR_WARPS * 32)
    k_attention_rows(const float *q, float *out, const float *kbase, const float *vbase,
                     int32_t layer, int32_t n_blocks, int32_t block_size, int32_t kv_dim,
                     const int32_t *pos, const int32_t *seq, const int32_t *tables,
                     int32_t max_blocks, int32_t n_head, int32_t group, float scale,
                     const int32_t *rows)
{
    constexpr int E = HD / 32;
    __shared__ float sml[AR_WARPS][HB][2];
    __shared__ float sacc[AR_WARPS][HB][HD];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int32_t r = rows ? rows[blockIdx.x] : (int32_t)blockIdx.x;
    const int32_t h0 = (int32_t)blockIdx.y * HB, kvh = h0 / group;
    const int32_t n_pos = pos[r] + 1;
    const int32_t *tab = tables + (int64_t)seq[r] * max_blocks;
    const size_t layer_base = (size_t)layer * n_blocks;
    const int64_t q_dim = (int64_t)n_head * HD;
    float qv[HB][E], acc[HB][E], m[HB], l[HB];
#pragma unroll
    for (int j = 0; j < HB; j++) {
        ar_load<E>(q + r * q_dim + (int64_t)(h0 + j) * HD + lane * E, qv[j]);
        m[j] = -INFINITY;
        l[j] = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++)
            acc[j][e] = 0.0f;
    }
    const size_t col = (size_t)kvh * HD + (size_t)lane * E;
    for (int32_t t0 = warp * AR_U; t0 < n_pos; t0 += AR_WARPS * AR_U) {
        float kf[AR_U][E], vf[AR_U][E];
#pragma unroll
        for (int u = 0; u < AR_U; u++) {
            const int32_t t = t0 + u;
            if (t < n_pos) {
                const size_t slot =
                    (layer_base + (size_t)tab[t / block_size]) * block_size + t % block_size;
                ar_load<E>(kbase + slot * kv_dim + col, kf[u]);
                ar_load<E>(vbase + slot * kv_dim + col, vf[u]);
            } else {
#pragma unroll
                for (int e = 0; e < E; e++)
                    kf[u][e] = vf[u][e] = 0.0f;
            }
        }
#pragma unroll
        for (int j = 0; j < HB; j++) {
            float s[AR_U], mn = m[j];
#pragma unroll
            for (int u = 0; u < AR_U; u++) {
                float d = 0.0f;
#pragma unroll
                for (int e = 0; e < E; e++)
                    d += qv[j][e] * kf[u][e];
                for (int o = 16; o > 0; o >>= 1)
                    d += __shfl_xor_sync(0xffffffffu, d, o);
                s[u] = t0 + u < n_pos ? d * scale : -INFINITY;
                mn = fmaxf(mn, s[u]);
            }
            /* t0 < n_pos: mn is finite, and e^(-inf - mn) = 0 */
            const float c = expf(m[j] - mn);
            l[j] *= c;
#pragma unroll
            for (int e = 0; e < E; e++)
                acc[j][e] *= c;
#pragma unroll
            for (int u = 0; u < AR_U; u++) {
                const float p = expf(s[u] - mn);
                l[j] += p;
#pragma unroll
                for (int e = 0; e < E; e++)
                    acc[j][e] += p * vf[u][e];
            }
            m[j] = mn;
        }
    }
#pragma unroll
    for (int j = 0; j < HB; j++) {
        if (lane == 0) {
            sml[warp][j][0] = m[j];
            sml[warp][j][1] = l[j];
        }
#pragma unroll
        for (int e = 0; e < E; e++)
            sacc[warp][j][lane * E + e] = acc[j][e];
    }
    __syncthreads();
    /* warp 0 saw position 0, so the largest m is finite; a warp that saw no
     * position has m = -inf and weighs 0 */
    for (int i = threadIdx.x; i < HB * HD; i += AR_WARPS * 32) {
        const int j = i / HD, d = i % HD;
        float mx = sml[0][j][0];
#pragma unroll
        for (int w = 1; w < AR_WARPS; w++)
            mx = fmaxf(mx, sml[w][j][0]);
        float num = 0.0f, den = 0.0f;
#pragma unroll
        for (int w = 0; w < AR_WARPS; w++) {
            const float f = expf(sml[w][j][0] - mx);
            num += sacc[w][j][d] * f;
            den += sml[w][j][1] * f;
        }
        out[r * q_dim + (int64_t)(h0 + j) * HD + d] = num / den;
    }
}

/* k_attention_rows for p's head dim and K/V grouping, or NULL: the query
 * heads of one K/V head go HB = 4, 3, 2 or 1 to a block (the largest that
 * divides the group). */
typedef void (*att_rows_fn)(const float *, float *, const float *, const float *, int32_t, int32_t,
                            int32_t, int32_t, const int32_t *, const int32_t *, const int32_t *,
                            int32_t, int32_t, int32_t, float, const int32_t *);

static att_rows_fn att_rows_kernel(const realm_attn_params *p, const realm_kv_pool *kv, int *hb)
{
    const int32_t group = p->n_head / p->n_head_kv;
    if ((p->head_dim != 64 && p->head_dim != 128) || kv->kv_dim % 4 || group < 1) return NULL;
    *hb = group % 4 == 0 ? 4 : group % 3 == 0 ? 3 : group % 2 == 0 ? 2 : 1;
#define R(HB) return p->head_dim == 64 ? k_attention_rows<64, HB> : k_attention_rows<128, HB>
    switch (*hb) {
    case 4: R(4);
    case 3: R(3);
    case 2: R(2);
    default: R(1);
    }
#undef R
}

/* ---- decode: positions split over blocks ----
 * For few rows (decode) the (row, head) grid has too few blocks to fill the
 * GPU, so each (row, head) is split into `n_split` blocks over contiguous
 * position ranges (the split count comes from the launch, the ranges from
 * the row's position, so a graph still fits every length). A block scores
 * its positions with 8 lanes per position (each lane float4 columns
 * j, j+8, ... of the K row, so a warp's loads are coalesced and 4 positions
 * go at once), then writes its (max, exp-sum, unnormalized V sum). The last
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

__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention_split(const float *q, float *part, unsigned *tickets, float *out,
                      const float *kbase, const float *vbase, int32_t layer, int32_t n_blocks,
                      int32_t block_size, int32_t kv_dim, const int32_t *pos, const int32_t *seq,
                      const int32_t *tables, const int32_t *early, int32_t max_blocks,
                      int32_t n_head, int32_t group, int32_t hd, float scale,
                      const cuda_act_target quant)
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
    const float *vh = vbase + (size_t)kvh * hd + threadIdx.x % hd;
    const int32_t tk = warp * 4 + pw; /* the lane group's first position */
    const float4 *k4p =
        (const float4 *)(kbase + (size_t)(tk < cnt ? slots[tk] : 0) * kv_dim + (size_t)kvh * hd);
    float4 kpre[ATT_THREADS / 32]; /* elements 4i.. of K, i = sub + 8j < hd / 4 */
    float vpre[ATT_VPRE];
#pragma unroll
    for (int j = 0; j < ATT_THREADS / 32; j++)
        kpre[j] = tk < cnt && tk != cur && sub + 8 * j < hd / 4 ? k4p[sub + 8 * j]
                                                                : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int k = 0; k < ATT_VPRE; k++) {
        const int32_t t = gi + k * n_grp;
        vpre[k] = gi < n_grp && t < cnt && t != cur ? vh[(size_t)slots[t] * kv_dim] : 0.0f;
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
                if (sub + 8 * j < hd / 4) kpre[j] = k4p[sub + 8 * j];
        }
#pragma unroll
        for (int k = 0; k < ATT_VPRE; k++)
            if (gi < n_grp && gi + k * n_grp == cur && cur < cnt)
                vpre[k] = vh[(size_t)slots[cur] * kv_dim];
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
                    const float4 kv = kpre[j], qv = q4[sub + 8 * j];
                    d += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
                }
            } else if (t < cnt) {
                const float4 *k4 =
                    (const float4 *)(kbase + (size_t)slots[t] * kv_dim + (size_t)kvh * hd);
                for (int i = sub; i < hd / 4; i += 8) {
                    float4 kv = k4[i], qv = q4[i];
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
                if (t < cnt) acc += sc[t] * vpre[k];
            }
#pragma unroll 4
            for (int32_t t = gi + ATT_VPRE * n_grp; t < cnt; t += n_grp)
                acc += sc[t] * vh[(size_t)slots[t] * kv_dim];
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

/* ---- prefill: tiles of rows of one sequence ----
 * One row per block re-reads the sequence's K and V for every row and head:
 * a 512-row pass of the 8B read ~4 GB per layer from L2 (1 ms per layer, a
 * third of the pass). A block here takes a tile of up to AT_ROWS rows of one
 * sequence and one query head, stages AT_POS positions of K and V in shared
 * memory at a time, and keeps a running max and exp-sum per row (online
 * softmax: earlier sums are rescaled by e^(m_old - m_new) when the max
 * grows), so each K/V row is read once per tile. Thread (a, b) of the
 * 8 x 16 layout owns rows 4a..4a+3: their scores at positions b, b+16, ...
 * of each chunk, then head dims 4b..4b+3, 4b+64.. of their output. Each
 * shared-memory read feeds 4 (scores) or 8-16 (output) FMAs. Positions
 * past a row's own are masked, so the rows of a tile may sit anywhere;
 * warps whose rows are all past the tile's only help stage K/V. Runs of
 * fewer than $REALM_CUDA_ATT_TILE_MIN (8) rows of one sequence
 * (decode rows batched with a prompt) stay with the one-row kernel,
 * launched beside. */
#define AT_ROWS 32
#define AT_POS  64

template <int HD>
__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention_tile(const float *q, float *out, const float *kbase, const float *vbase,
                     int32_t layer, int32_t n_blocks, int32_t block_size, int32_t kv_dim,
                     const int32_t *pos, const int32_t *seq, const int32_t *tables,
                     int32_t max_blocks, const int32_t *tiles, int32_t n_head, int32_t group,
                     float scale)
{
    constexpr int LD = HD + 4; /* padded rows: the float4 reads below are conflict-free */
    constexpr int LP = AT_ROWS + 4;
    constexpr int NC = HD / 64; /* float4 output columns per thread and row */
    constexpr int NP = AT_POS / 16;
    extern __shared__ float4 sh4[];
    float *qs = (float *)sh4, *ks = qs + AT_ROWS * LD, *vs = ks + AT_POS * LD;
    float *pt = vs + AT_POS * LD; /* weights, AT_POS x LP: position-major */
    const int32_t r0 = tiles[3 * blockIdx.x], nr = tiles[3 * blockIdx.x + 1];
    const int32_t n_pos = tiles[3 * blockIdx.x + 2], h = blockIdx.y, kvh = h / group;
    const int a = threadIdx.x / 16, b = threadIdx.x % 16;
    const int64_t q_dim = (int64_t)n_head * HD;
    for (int e = threadIdx.x; e < AT_ROWS * HD / 4; e += ATT_THREADS) {
        int rr = e / (HD / 4), cc = e % (HD / 4);
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (rr < nr) v = ((const float4 *)(q + (r0 + rr) * q_dim + (int64_t)h * HD))[cc];
        *(float4 *)(qs + rr * LD + 4 * cc) = v;
    }
    int32_t my_pos[4];
#pragma unroll
    for (int r = 0; r < 4; r++)
        my_pos[r] = 4 * a + r < nr ? pos[r0 + 4 * a + r] : -1;
    const int32_t *tab = tables + (int64_t)seq[r0] * max_blocks;
    const size_t layer_base = (size_t)layer * n_blocks;
    const bool busy = 8 * (int)(threadIdx.x / 32) < nr; /* warp-uniform */
    float m[4], l[4];
    float4 o[4][NC];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++)
            o[r][c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    for (int32_t t0 = 0; t0 < n_pos; t0 += AT_POS) {
        __syncthreads(); /* the last chunk's readers are done */
        for (int e = threadIdx.x; e < AT_POS * HD / 4; e += ATT_THREADS) {
            int tt = e / (HD / 4), cc = e % (HD / 4);
            int32_t t = t0 + tt;
            float4 kk = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kk;
            if (t < n_pos) {
                size_t slot =
                    (layer_base + (size_t)tab[t / block_size]) * block_size + t % block_size;
                size_t off = slot * kv_dim + (size_t)kvh * HD;
                kk = ((const float4 *)(kbase + off))[cc];
                vv = ((const float4 *)(vbase + off))[cc];
            }
            *(float4 *)(ks + tt * LD + 4 * cc) = kk;
            *(float4 *)(vs + tt * LD + 4 * cc) = vv;
        }
        __syncthreads();
        if (!busy) continue; /* no row of this warp's 8 is in the tile */
        float s[4][NP];
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int p = 0; p < NP; p++)
                s[r][p] = 0.0f;
#pragma unroll 2
        for (int d = 0; d < HD; d += 4) {
            float4 qv[4], kv[NP];
#pragma unroll
            for (int r = 0; r < 4; r++)
                qv[r] = *(const float4 *)(qs + (4 * a + r) * LD + d);
#pragma unroll
            for (int p = 0; p < NP; p++)
                kv[p] = *(const float4 *)(ks + (b + 16 * p) * LD + d);
#pragma unroll
            for (int r = 0; r < 4; r++)
#pragma unroll
                for (int p = 0; p < NP; p++) {
                    s[r][p] += qv[r].x * kv[p].x;
                    s[r][p] += qv[r].y * kv[p].y;
                    s[r][p] += qv[r].z * kv[p].z;
                    s[r][p] += qv[r].w * kv[p].w;
                }
        }
        float alpha[4];
#pragma unroll
        for (int r = 0; r < 4; r++) {
            float cm = -INFINITY;
#pragma unroll
            for (int p = 0; p < NP; p++) {
                s[r][p] = t0 + b + 16 * p <= my_pos[r] ? s[r][p] * scale : -INFINITY;
                cm = fmaxf(cm, s[r][p]);
            }
#pragma unroll
            for (int o2 = 1; o2 < 16; o2 <<= 1)
                cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, o2));
            const float mn = fmaxf(m[r], cm);
            /* a row with no position yet (all masked) keeps m = -inf, l = 0 */
            alpha[r] = mn == -INFINITY ? 1.0f : expf(m[r] - mn);
            float sum = 0.0f;
#pragma unroll
            for (int p = 0; p < NP; p++) {
                float w = mn == -INFINITY ? 0.0f : expf(s[r][p] - mn);
                pt[(b + 16 * p) * LP + 4 * a + r] = w;
                sum += w;
            }
#pragma unroll
            for (int o2 = 1; o2 < 16; o2 <<= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, o2);
            l[r] = l[r] * alpha[r] + sum;
            m[r] = mn;
        }
        __syncwarp(); /* rows 4a.. get their weights from their own warp */
#pragma unroll
        for (int r = 0; r < 4; r++)
#pragma unroll
            for (int c = 0; c < NC; c++) {
                o[r][c].x *= alpha[r];
                o[r][c].y *= alpha[r];
                o[r][c].z *= alpha[r];
                o[r][c].w *= alpha[r];
            }
#pragma unroll 4
        for (int t = 0; t < AT_POS; t++) {
            const float4 w = *(const float4 *)(pt + t * LP + 4 * a);
            const float wr[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
            for (int c = 0; c < NC; c++) {
                const float4 vv = *(const float4 *)(vs + t * LD + 4 * b + 64 * c);
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    o[r][c].x += wr[r] * vv.x;
                    o[r][c].y += wr[r] * vv.y;
                    o[r][c].z += wr[r] * vv.z;
                    o[r][c].w += wr[r] * vv.w;
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        if (4 * a + r >= nr) break;
        float *dst = out + (r0 + 4 * a + r) * q_dim + (int64_t)h * HD;
#pragma unroll
        for (int c = 0; c < NC; c++)
            *(float4 *)(dst + 4 * b + 64 * c) =
                make_float4(o[r][c].x / l[r], o[r][c].y / l[r], o[r][c].z / l[r], o[r][c].w / l[r]);
    }
}

/* Shared memory of the one-row kernel (k_attention): it holds a score and
 * a slot per position of the longest context. */
static size_t att_shared(int32_t hd, int32_t max_ctx)
{
    return ((size_t)hd + ATT_THREADS + 32 + 2 * (size_t)max_ctx) * sizeof(float);
}

void realm__cuda_att_early(const realm_batch *b, int32_t *early)
{
    for (int32_t r = 0; r < b->n_rows; r++) {
        early[r] = b->n_rows <= ATT_SPLIT_ROWS;
        for (int32_t i = 0; early[r] && i < b->n_rows; i++)
            early[r] = b->seq[i] != b->seq[r] || b->pos[i] >= b->pos[r];
    }
}

int32_t realm__cuda_att_tiles(const cuda_ctx *c, const realm_batch *b, int32_t *tab,
                              int32_t *n_single)
{
    *n_single = 0;
    /* Past ~28k positions the one-row kernel's scores no longer fit in shared
     * memory: then the tiles take every row (at head dims 64 and 128), one
     * tile per row where a graph may capture the pass (a shape n_rows fixes). */
    const bool rows_fit = att_shared(128, c->lim.max_ctx) <= (size_t)c->smem_optin;
    if (b->n_rows <= c->graph_max_rows) {
        if (rows_fit) return 0;
        for (int32_t r = 0; r < b->n_rows; r++) {
            tab[3 * r] = r;
            tab[3 * r + 1] = 1;
            tab[3 * r + 2] = b->pos[r] + 1;
        }
        return b->n_rows;
    }
    const int32_t tile_min = rows_fit ? c->att_tile_min : 1;
    int32_t n = 0, *single = tab + 3 * (size_t)b->n_rows;
    for (int32_t r0 = 0, r1; r0 < b->n_rows; r0 = r1) {
        for (r1 = r0 + 1; r1 < b->n_rows && b->seq[r1] == b->seq[r0]; r1++) {
        }
        /* a short run of one sequence (the decode rows of a mixed batch)
         * goes to the one-row kernel: a tile walks all its positions at the
         * cost of a full one, so a one-row tile did 32 rows' work serially */
        if (r1 - r0 < tile_min) {
            for (int32_t r = r0; r < r1; r++)
                single[(*n_single)++] = r;
            continue;
        }
        /* the run in tiles of (nearly) equal size, at most AT_ROWS rows */
        const int32_t k = (r1 - r0 + AT_ROWS - 1) / AT_ROWS;
        for (int32_t i = 0; i < k; i++, n++) {
            int32_t t = r0 + (int32_t)((int64_t)(r1 - r0) * i / k);
            int32_t end = r0 + (int32_t)((int64_t)(r1 - r0) * (i + 1) / k), np = 0;
            for (int32_t r = t; r < end; r++)
                np = b->pos[r] + 1 > np ? b->pos[r] + 1 : np;
            tab[3 * n] = t;
            tab[3 * n + 1] = end - t;
            tab[3 * n + 2] = np;
        }
    }
    return n;
}

static bool attention_tiled(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    const int32_t hd = p->head_dim;
    if (b->n_tiles <= 0 || (hd != 64 && hd != 128) || kv->kv_dim % 4) return false;
    size_t shm =
        ((AT_ROWS + 2 * AT_POS) * (size_t)(hd + 4) + AT_POS * (AT_ROWS + 4)) * sizeof(float);
    void (*kern)(const float *, float *, const float *, const float *, int32_t, int32_t, int32_t,
                 int32_t, const int32_t *, const int32_t *, const int32_t *, int32_t,
                 const int32_t *, int32_t, int32_t, float) =
        hd == 64 ? k_attention_tile<64> : k_attention_tile<128>;
    if (shm > 48 * 1024 && cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)shm) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    dim3 grid((unsigned)b->n_tiles, (unsigned)p->n_head);
    kern<<<grid, ATT_THREADS, shm, c->stream>>>(
        (const float *)op->x, (float *)op->out, kv->k, kv->v, op->i0, kv->n_blocks, kv->block_size,
        kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off),
        (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks,
        (const int32_t *)cuda__staging(c, b->tile_off), p->n_head, p->n_head / p->n_head_kv,
        p->scale);
    CUDA_CHECK(c, cudaGetLastError());
    return true;
}

size_t realm__cuda_att_part_bytes(const realm_backend_limits *lim)
{
    /* n_head * (hd + 2) <= q width * 17/16 (hd >= 32), q width <= max_ne0 */
    return (size_t)ATT_SPLIT_ROWS * ATT_SPLIT_MAX * ((size_t)lim->max_ne0 * 17 / 16 + 64) *
               sizeof(float) +
           ATT_TICKETS * sizeof(unsigned);
}

static bool attention_split(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm)
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
        cudaError_t e = cudaFuncSetAttribute(k_attention_split,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            return false;
        }
    }
    dim3 grid((unsigned)b->n_rows, (unsigned)p->n_head, (unsigned)S);
    unsigned *tickets = (unsigned *)((char *)c->att_part + c->att_part_bytes) - ATT_TICKETS;
    cuda__launch_pdl(c, k_attention_split, grid, dim3(ATT_THREADS), shm, (const float *)op->x,
                     c->att_part, tickets, (float *)op->out, kv->k, kv->v, op->i0, kv->n_blocks,
                     kv->block_size, kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
                     (const int32_t *)cuda__staging(c, b->seq_off),
                     (const int32_t *)cuda__staging(c, b->table_off),
                     (const int32_t *)cuda__staging(c, b->early_off), b->max_blocks, p->n_head,
                     p->n_head / p->n_head_kv, hd, p->scale, quant);
    CUDA_CHECK(c, cudaGetLastError());
    if (quant.kind != ACT_F32) realm__cuda_act_written(c, mm);
    return true;
}

void realm__cuda_issue_attention(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    if (attention_split(c, op, mm)) return;
    /* tiled: the tiles' rows there, the rows of short runs here */
    const int32_t *rows = NULL;
    int32_t n_rows = b->n_rows;
    if (attention_tiled(c, op)) {
        rows = (const int32_t *)cuda__staging(c, b->tile_off) + 3 * (size_t)b->n_rows;
        n_rows = b->n_single;
        if (n_rows == 0) return;
    }
    int hb = 1;
    const att_rows_fn kr = c->att_rows ? att_rows_kernel(p, kv, &hb) : NULL;
    if (kr) {
        dim3 grid((unsigned)n_rows, (unsigned)(p->n_head / hb));
        kr<<<grid, AR_WARPS * 32, 0, c->stream>>>(
            (const float *)op->x, (float *)op->out, kv->k, kv->v, op->i0, kv->n_blocks,
            kv->block_size, kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
            (const int32_t *)cuda__staging(c, b->seq_off),
            (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks, p->n_head,
            p->n_head / p->n_head_kv, p->scale, rows);
        CUDA_CHECK(c, cudaGetLastError());
        return;
    }
    size_t shm = att_shared(p->head_dim, c->lim.max_ctx);
    if (shm > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_attention, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)shm);
        if (e != cudaSuccess) {
            realm__cuda_fail(c, e, "attention: context too long for shared memory");
            return;
        }
    }
    dim3 grid((unsigned)n_rows, (unsigned)p->n_head);
    k_attention<<<grid, ATT_THREADS, shm, c->stream>>>(
        (const float *)op->x, (float *)op->out, kv->k, kv->v, op->i0, kv->n_blocks, kv->block_size,
        kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off),
        (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks, p->n_head,
        p->n_head / p->n_head_kv, p->head_dim, p->scale, rows);
    CUDA_CHECK(c, cudaGetLastError());
}
