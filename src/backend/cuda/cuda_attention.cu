/*
 * backend/cuda/cuda_attention.cu — causal softmax attention over the paged KV
 * pool, for decode and prefill rows alike.
 *
 * Rows that neither the decode split (cuda_att_decode.cu, tried first: at
 * most ATT_SPLIT_ROWS rows, each (row, head) split over positions into
 * $REALM_CUDA_ATT_SPLIT blocks) nor the prefill tiles (below) take go, at
 * head dims 64 and 128, to k_attention_rows: one block per (row, query
 * heads sharing a K/V head), warps streaming positions with an online
 * softmax (described there). At other head dims they take k_attention: one
 * block per (row, query head). Scores: each thread takes whole
 * positions t = tid, tid + 128, ... and dots its K row with q (q in shared
 * memory, K read 4 elements a load), so a block keeps up to 128
 * independent K rows in flight instead of walking positions one warp-step at
 * a time; the pool slot of each position is computed once there and kept
 * for the V pass. Then the block takes the max and the exp-sum, and thread
 * groups each accumulate a share of the positions for every head dimension
 * (V rows read coalesced) and combine in shared memory. K/V rows are found through the sequence's
 * block table (staged per pass); the launch shape depends only on
 * (n_rows, n_head), so a captured graph serves every context length.
 * Passes too large for a graph (prefill) take tiles of up to AT_ROWS rows
 * of one sequence instead, K/V staged in shared memory once per tile (k_attention_tile);
 * short runs of rows stay one row per block. Where the one-row kernel's
 * per-position scores cannot fit the reserved context in shared memory
 * (past ~28.9k positions), the tiles take every row.
 * Every kernel takes the pool's element type KV (__half or float) as a
 * template argument and converts to float as it loads (cuda_kv.cuh).
 */
#include <math.h>

#include "backend/cuda/cuda_att.cuh"
#include "backend/cuda/cuda_kv.cuh"

template <typename KV>
__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention(const float *q, float *out, const KV *kbase, const KV *vbase, int32_t layer,
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
        const KV *kt = kbase + (size_t)slot * kv_dim + (size_t)kvh * hd;
        float d = 0.0f;
        if (vec4) {
            for (int i = 0; i < hd / 4; i++) {
                float4 kv = kv_load4(kt, i);
                d += qs[4 * i] * kv.x;
                d += qs[4 * i + 1] * kv.y;
                d += qs[4 * i + 2] * kv.z;
                d += qs[4 * i + 3] * kv.w;
            }
        } else {
            for (int i = 0; i < hd; i++)
                d += qs[i] * kv_load1(kt + i);
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
            const KV *vh = vbase + (size_t)kvh * hd + ii;
#pragma unroll 4
            for (int32_t t = g0; t < n_pos; t += gs)
                acc += sc[t] * kv_load1(vh + (size_t)slots[t] * kv_dim);
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
 * split kernel below stays faster: NOTES round 11.) PIPE issues the loads
 * of a warp's next AR_U positions before it scores these, keeping them as
 * loaded (ar_raw) until their turn: H100, f16 pool, 64 sequences decoding
 * (engine-bench), 8B Q4_K_M +16% at 1024-token prompts and +8% at 128, 1B
 * +13% and +3% (NOTES round 27). */
#define AR_U     4
#define AR_WARPS 8

/* E (2 or 4) consecutive elements of q (float) or the pool (KV) in one load */
template <int E, typename T> __device__ __forceinline__ void ar_load(const T *p, float (&v)[E])
{
    static_assert(E == 2 || E == 4, "HD / 32 elements a lane");
    if constexpr (E == 2) {
        const float2 x = kv_load2(p, 0);
        v[0] = x.x, v[1] = x.y;
    } else {
        const float4 x = kv_load4(p, 0);
        v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
    }
}

/* E consecutive pool elements as loaded (W 32-bit words, one load),
 * widened to floats where they are used: a load can then be issued an
 * iteration ahead of its use (PIPE) without holding floats for it */
template <int E, typename KV> struct ar_raw {
    static constexpr int W = E * (int)sizeof(KV) / 4;
    uint32_t w[W];
    __device__ __forceinline__ void load(const KV *p)
    {
        if constexpr (W == 4) {
            const uint4 x = *(const uint4 *)p;
            w[0] = x.x, w[1] = x.y, w[2] = x.z, w[3] = x.w;
        } else if constexpr (W == 2) {
            const uint2 x = *(const uint2 *)p;
            w[0] = x.x, w[1] = x.y;
        } else {
            w[0] = *(const uint32_t *)p;
        }
    }
    __device__ __forceinline__ void zero(void)
    {
#pragma unroll
        for (int i = 0; i < W; i++)
            w[i] = 0u;
    }
    __device__ __forceinline__ void wide(float (&v)[E]) const
    {
        if constexpr (sizeof(KV) == 4) {
#pragma unroll
            for (int e = 0; e < E; e++)
                v[e] = __uint_as_float(w[e]);
        } else {
#pragma unroll
            for (int i = 0; i < W; i++) {
                const float2 f = __half22float2(*(const __half2 *)&w[i]);
                v[2 * i] = f.x, v[2 * i + 1] = f.y;
            }
        }
    }
};

template <int HD, int HB, typename KV, bool PIPE>
__global__ static void __launch_bounds__(AR_WARPS * 32)
    k_attention_rows(const float *q, float *out, const KV *kbase, const KV *vbase, int32_t layer,
                     int32_t n_blocks, int32_t block_size, int32_t kv_dim, const int32_t *pos,
                     const int32_t *seq, const int32_t *tables, int32_t max_blocks, int32_t n_head,
                     int32_t group, float scale, const int32_t *rows)
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
    ar_raw<E, KV> kr[AR_U], vr[AR_U];
    /* positions t0 .. t0 + AR_U - 1 into kr, vr (zeros past the row's) */
    auto fetch = [&](int32_t t0) {
#pragma unroll
        for (int u = 0; u < AR_U; u++) {
            const int32_t t = t0 + u;
            if (t < n_pos) {
                const size_t slot =
                    (layer_base + (size_t)tab[t / block_size]) * block_size + t % block_size;
                kr[u].load(kbase + slot * kv_dim + col);
                vr[u].load(vbase + slot * kv_dim + col);
            } else {
                kr[u].zero();
                vr[u].zero();
            }
        }
    };
    if (PIPE && warp * AR_U < n_pos) fetch(warp * AR_U);
    for (int32_t t0 = warp * AR_U; t0 < n_pos; t0 += AR_WARPS * AR_U) {
        float kf[AR_U][E], vf[AR_U][E];
        if (!PIPE) fetch(t0);
#pragma unroll
        for (int u = 0; u < AR_U; u++) {
            kr[u].wide(kf[u]);
            vr[u].wide(vf[u]);
        }
        /* PIPE: the next positions' loads are in flight while these are
         * scored */
        if (PIPE && t0 + AR_WARPS * AR_U < n_pos) fetch(t0 + AR_WARPS * AR_U);
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
template <typename KV>
using att_rows_fn = void (*)(const float *, float *, const KV *, const KV *, int32_t, int32_t,
                             int32_t, int32_t, const int32_t *, const int32_t *, const int32_t *,
                             int32_t, int32_t, int32_t, float, const int32_t *);

template <typename KV, bool PIPE>
static att_rows_fn<KV> att_rows_kernel(const realm_attn_params *p, const realm_kv_pool *kv, int *hb)
{
    const int32_t group = p->n_head / p->n_head_kv;
    if ((p->head_dim != 64 && p->head_dim != 128) || kv->kv_dim % 4 || group < 1) return NULL;
    *hb = group % 4 == 0 ? 4 : group % 3 == 0 ? 3 : group % 2 == 0 ? 2 : 1;
#define R(HB)                                                                                      \
    return p->head_dim == 64 ? k_attention_rows<64, HB, KV, PIPE>                                  \
                             : k_attention_rows<128, HB, KV, PIPE>
    switch (*hb) {
    case 4: R(4);
    case 3: R(3);
    case 2: R(2);
    default: R(1);
    }
#undef R
}

/* ---- prefill: tiles of rows of one sequence ----
 * One row per block re-reads the sequence's K and V for every row and head:
 * a 512-row pass of the 8B read ~4 GB per layer from L2 (1 ms per layer, a
 * third of the pass). A block here takes a tile of up to AT_ROWS rows of one
 * sequence and one query head, stages AT_POS positions of K and V in shared
 * memory at a time (as floats: an f16 pool is converted as it is staged, so
 * the tile reads half the bytes and computes as from an f32 one), and keeps
 * a running max and exp-sum per row (online softmax: earlier sums are
 * rescaled by e^(m_old - m_new) when the max grows), so each K/V row is read
 * once per tile. Thread (a, b) of the 8 x 16 layout owns rows 4a..4a+3:
 * their scores at positions b, b+16, ... of each chunk, then head dims
 * 4b..4b+3, 4b+64.. of their output. Each
 * shared-memory read feeds 4 (scores) or 8-16 (output) FMAs. Positions
 * past a row's own are masked, so the rows of a tile may sit anywhere;
 * warps whose rows are all past the tile's only help stage K/V. Runs of
 * fewer than $REALM_CUDA_ATT_TILE_MIN (8) rows of one sequence
 * (decode rows batched with a prompt) stay with the one-row kernel,
 * launched beside. */
#define AT_ROWS 32
#define AT_POS  64

template <int HD, typename KV>
__global__ static void __launch_bounds__(ATT_THREADS)
    k_attention_tile(const float *q, float *out, const KV *kbase, const KV *vbase, int32_t layer,
                     int32_t n_blocks, int32_t block_size, int32_t kv_dim, const int32_t *pos,
                     const int32_t *seq, const int32_t *tables, int32_t max_blocks,
                     const int32_t *tiles, int32_t n_head, int32_t group, float scale)
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
                kk = kv_load4(kbase + off, cc);
                vv = kv_load4(vbase + off, cc);
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

template <typename KV> static bool attention_tiled(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    const int32_t hd = p->head_dim;
    if (b->n_tiles <= 0 || (hd != 64 && hd != 128) || kv->kv_dim % 4) return false;
    /* q, K and V as floats (whatever the pool's type), and the weights */
    size_t shm =
        ((AT_ROWS + 2 * AT_POS) * (size_t)(hd + 4) + AT_POS * (AT_ROWS + 4)) * sizeof(float);
    const auto kern = hd == 64 ? k_attention_tile<64, KV> : k_attention_tile<128, KV>;
    if (shm > 48 * 1024 && cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)shm) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    dim3 grid((unsigned)b->n_tiles, (unsigned)p->n_head);
    kern<<<grid, ATT_THREADS, shm, c->stream>>>(
        (const float *)op->x, (float *)op->out, (const KV *)kv->k, (const KV *)kv->v, op->i0,
        kv->n_blocks, kv->block_size, kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off),
        (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks,
        (const int32_t *)cuda__staging(c, b->tile_off), p->n_head, p->n_head / p->n_head_kv,
        p->scale);
    CUDA_CHECK(c, cudaGetLastError());
    return true;
}

/* the attention the decode split does not take, over a pool of KV */
template <typename KV> static void issue_attention(cuda_ctx *c, const struct cuda_op *op)
{
    const realm_kv_pool *kv = &op->kv;
    const struct cuda_batch *b = &op->batch;
    const realm_attn_params *p = &op->ap;
    /* tiled: the tiles' rows there, the rows of short runs here */
    const int32_t *rows = NULL;
    int32_t n_rows = b->n_rows;
    if (attention_tiled<KV>(c, op)) {
        rows = (const int32_t *)cuda__staging(c, b->tile_off) + 3 * (size_t)b->n_rows;
        n_rows = b->n_single;
        if (n_rows == 0) return;
    }
    int hb = 1;
    const att_rows_fn<KV> kr = c->att_rows == 2   ? att_rows_kernel<KV, true>(p, kv, &hb)
                               : c->att_rows != 0 ? att_rows_kernel<KV, false>(p, kv, &hb)
                                                  : NULL;
    if (kr) {
        dim3 grid((unsigned)n_rows, (unsigned)(p->n_head / hb));
        kr<<<grid, AR_WARPS * 32, 0, c->stream>>>(
            (const float *)op->x, (float *)op->out, (const KV *)kv->k, (const KV *)kv->v, op->i0,
            kv->n_blocks, kv->block_size, kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
            (const int32_t *)cuda__staging(c, b->seq_off),
            (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks, p->n_head,
            p->n_head / p->n_head_kv, p->scale, rows);
        CUDA_CHECK(c, cudaGetLastError());
        return;
    }
    size_t shm = att_shared(p->head_dim, c->lim.max_ctx);
    if (shm > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_attention<KV>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm);
        if (e != cudaSuccess) {
            realm__cuda_fail(c, e, "attention: context too long for shared memory");
            return;
        }
    }
    dim3 grid((unsigned)n_rows, (unsigned)p->n_head);
    k_attention<KV><<<grid, ATT_THREADS, shm, c->stream>>>(
        (const float *)op->x, (float *)op->out, (const KV *)kv->k, (const KV *)kv->v, op->i0,
        kv->n_blocks, kv->block_size, kv->kv_dim, (const int32_t *)cuda__staging(c, b->pos_off),
        (const int32_t *)cuda__staging(c, b->seq_off),
        (const int32_t *)cuda__staging(c, b->table_off), b->max_blocks, p->n_head,
        p->n_head / p->n_head_kv, p->head_dim, p->scale, rows);
    CUDA_CHECK(c, cudaGetLastError());
}

void realm__cuda_issue_attention(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm)
{
    if (realm__cuda_att_decode(c, op, mm)) return;
    if (kv_is_f16(&op->kv))
        issue_attention<__half>(c, op);
    else
        issue_attention<float>(c, op);
}
