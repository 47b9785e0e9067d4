/*
 * backend/cuda/cuda_mmv_ring.cu — the ring mat-vec (k_mmv_ring): Q4_K/Q5_K/Q6_K
 * rows at one activation row, for cuda_matmul.cu's decode path.
 *
 * Persistent blocks (as many as fit at once; tile t to block t mod grid)
 * stream tiles of weight rows through a ring of shared-memory stages: one
 * producer lane issues each tile as one bulk copy (cp.async.bulk) that
 * completes on the stage's `full` mbarrier, once the consumers have
 * released the stage on its `empty` one; RING_ROWS consumer warps decode
 * the tile. A consumer lane meets the same groups in every row it decodes
 * (k4_lane's and k6_lane's mapping, as cuda_matmul.cu's k4_dot and k6_dot
 * take them), so it loads their activation codes,
 * scales and sums into registers once, after the wait: the per-row
 * activation loads were what kept k_mmv_s's decode on the critical path.
 * - Rows of 2048/4096 columns (GL = ne0 / 1024 groups a lane): a warp a
 *   row, RING_ROWS rows a tile; a lane's groups in ring_block's order
 *   (blocks of one parity a warp iteration: Q6_K's even blocks decode from
 *   aligned words; ncu Q6_K down 25.2 -> 23.9 us, 8B decode +0.5-0.7%),
 *   so not k_mmv_s's bits, the CPU's within tolerance. A set's members
 *   from first1 on may be of type T1, rows of rb1 bytes (Q4_K_M's Q6_K v
 *   beside Q4_K q and k). A q/k/v set may also do the rope(q), rope(k)
 *   and kv_store after it (ROPE; not neox): a pair's two rows are a
 *   tile's neighbouring warps, which meet under a named barrier
 *   (rope_pair_turn), so one kernel boundary a layer fewer.
 * - Rows of 8192/14336 columns (the down projections, whose lanes'
 *   activations would not fit the registers): SPLIT = 4 warps a row, a
 *   part of gq groups each, RING_ROWS / SPLIT rows a tile; the parts' sums
 *   meet in shared memory under a named barrier, in part order (the CPU's
 *   within the mat-vec tolerance, not k_mmv_s's bits). At 14336 columns
 *   the kernel is held to 72 registers, three blocks an SM instead of two
 *   (ncu: Q4_K down 19.1 -> 17.8 us, Q6_K 28.1 -> 27.4; 8B decode +1.3%);
 *   the same bound on the others spilled and lost 0.6-0.9%.
 * - After an rmsnorm (NORM, 2048/4096 columns): every block does the
 *   rmsnorm and its quantization itself after the wait (ring_norm), in
 *   place of k_rmsnorm_quant's launch, with its bits. H100 decode: 1B
 *   Q4_K_M +3.4%, 8B even (NOTES round 24: in bench/cuda/dataflow.cu's
 *   model of the step this structure beat separate small kernels; every
 *   block reading the row costs more here than there).
 * The producer copies `early` tiles before it waits for the kernel ahead
 * (weights are constant). H100 8B Q4_K_M decode +6.3-6.6% over k_mmv_s,
 * then +3.6% with the split rows (1B: +5.1% from the split); Q8_0 through
 * the ring lost 2.9% against k_mmv_q and stays there (NOTES round 19).
 * Deeper rings lose: with the 1B's 9 KB tiles, four stages and two tiles
 * before the wait decoded 7% slower than two and one (NOTES round 22).
 * Every consumer lane arrives on `empty` itself: an arrive releases only
 * the arriving thread's reads (racecheck clean; one lane arriving after
 * __syncwarp was not).
 */
#include "backend/cuda/cuda_mmv.cuh"
#include "backend/cuda/cuda_rope.cuh"

#define RING_ROWS       8
#define RING_MAX_STAGES 16
#define RING_ROPE_PAIRS 128 /* the most pairs a head the rope epilogue turns */

__device__ __forceinline__ uint32_t smem_addr(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void mbar_init(uint64_t *b, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(b)), "r"(count)
                 : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(b)) : "memory");
}

__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t parity)
{
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_addr(b)), "r"(parity)
                     : "memory");
    } while (!done);
}

/* bytes (a multiple of 16, both addresses 16-byte aligned) from global to
 * shared; the transfer completes on mbarrier b, which expects them */
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, uint32_t bytes, uint64_t *b)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(b)),
                 "r"(bytes)
                 : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], "
                 "%2, [%3];\n" ::"r"(smem_addr(dst)),
                 "l"(src), "r"(bytes), "r"(smem_addr(b))
                 : "memory");
}

/* a consumer lane's activations: groups lane + 32 i, i < GL, of row 0 */
template <int GL> struct ring_act {
    int4 a0[GL], a1[GL];
    float d[GL], s[GL]; /* scale; d·Σq (Q4_K/Q5_K) */
    int z0[GL], z1[GL]; /* 32·Σa of each 16-half (Q6_K) */
};

/* The block a lane takes in iteration i: a warp's iteration takes blocks
 * of one parity (0 2 4 6, then 1 3 5 7, 8 10 12 14, …), so in its even
 * iterations a Q6_K row's 210-byte blocks are 4-byte aligned (rows and
 * parts are: whole rows of 16-byte multiples, parts of an even number of
 * blocks) and decode from plain words. The lane's sub-block is lane % 8
 * as in k4_dot/k6_dot; GL must be even. */
__device__ __forceinline__ int ring_block(int lane, int i)
{
    return 8 * (i >> 1) + 2 * (lane >> 3) + (i & 1);
}

/* row (in shared memory; PART: the part of gq groups a warp of a split row
 * takes) · the activations, group by group in ring_block's order */
template <int T, int GL, bool PART>
__device__ __forceinline__ float ring_row(const uint8_t *row, int lane, const ring_act<GL> &A,
                                          int gq)
{
    static_assert(GL % 2 == 0, "ring_block pairs iterations");
    float acc = 0.0f;
    if constexpr (T == REALM_TYPE_Q6_K) {
        const k6_lane L(lane, row);
#pragma unroll
        for (int i = 0; i < GL; i++) {
            const int b = ring_block(lane, i);
            if (PART && 8 * b >= gq) break;
            uint32_t w[8];
            float fa0, fa1;
            if (i & 1)
                L.decode_at<2>(row + b * 210, w, fa0, fa1);
            else
                L.decode_at<0>(row + b * 210, w, fa0, fa1);
            const int i0 = dot16_us(w, A.a0[i], 0) - A.z0[i];
            const int i1 = dot16_us(w + 4, A.a1[i], 0) - A.z1[i];
            acc += A.d[i] * (fa0 * (float)i0 + fa1 * (float)i1);
        }
    } else {
        const k4_lane<T> L(lane);
#pragma unroll
        for (int i = 0; i < GL; i++) {
            const int b = ring_block(lane, i);
            if (PART && 8 * b >= gq) break;
            const uint8_t *bp = row + b * k4_lane<T>::BS;
            uint32_t w[8];
            float dl, ml;
            L.decode(bp, w, dl, ml);
            const int sum = dot16_us(w + 4, A.a1[i], dot16_us(w, A.a0[i], 0));
            acc += A.d[i] * (dl * (float)sum) - ml * A.s[i];
        }
    }
    return acc;
}

/* The rope epilogue's constants, before the wait (positions, block tables
 * and inv_freq are staged or constant): the (cos, sin) of every turned pair
 * at q's position (tab[2i], tab[2i + 1]) and at k's (from tab[2 half]), and
 * the batch row's K/V pool slot. The consumer warps share tab (named
 * barrier 5). Each angle and slot was one chain of dependent global loads
 * on a tile's critical path when computed in the epilogue. */
__device__ __forceinline__ size_t ring_rope_setup(const cuda_rope_kv &rope, float *tab)
{
    for (int j = threadIdx.x; j < 2 * rope.half; j += RING_ROWS * 32) {
        const bool is_k = j >= rope.half;
        rope_angle(is_k ? j - rope.half : j, is_k ? rope.kpos[0] : rope.qpos[0], rope.inv_freq,
                   &tab[2 * j], &tab[2 * j + 1]);
    }
    asm volatile("bar.sync 5, %0;\n" ::"n"(RING_ROWS * 32) : "memory");
    return rope_kv_slot(rope, 0);
}

/* The epilogue of a q/k/v set with rope (k_mmv_ring's ROPE): row o_row of
 * member mi (q, k, v) from the warp's sum acc, + bias, q and k rows below
 * 2·half of their head turned with their pair's other row (rope_pair_turn:
 * a tile's rows start at a multiple of 8; the pair's sums meet in part[k &
 * 1], by tile parity) by ring_rope_setup's angles, then into out and, for k
 * and v, the K/V pool's slot (KV elements). */
template <typename KV>
__device__ __forceinline__ void ring_rope_store(float acc, int lane, int warp, int32_t k, int mi,
                                                int64_t o_row, const float *bias, float *out,
                                                const cuda_rope_kv &rope, const float *tab,
                                                size_t slot, float (&part)[2][RING_ROWS])
{
    float v = acc;
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    if (bias) v += bias[o_row];
    const int32_t i = (int32_t)(o_row % rope.head_dim) / 2; /* the pair */
    if (mi < 2 && i < rope.half) {                          /* the same for both warps */
        const float *a = tab + 2 * (mi * rope.half + i);
        v = rope_pair_turn(v, lane, warp, a[0], a[1], part[k & 1]);
    }
    if (lane == 0) rope_kv_put<KV>(rope, mi, o_row, out, slot, v);
}

/* tile t of the set, R rows a tile: its member and first row */
__device__ __forceinline__ int ring_tile(const mms_set &set, uint32_t t, int R, int64_t *row)
{
    const int mi = t < set.blk_end[0] ? 0 : t < set.blk_end[1] ? 1 : 2;
    const uint32_t t0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    *row = (int64_t)(t - t0) * R;
    return mi;
}

/* bar.sync among the consumer warps (named barrier 5, which
 * ring_rope_setup also takes, before the wait) */
__device__ __forceinline__ void ring_consumers_sync(void)
{
    asm volatile("bar.sync 5, %0;\n" ::"n"(RING_ROWS * 32) : "memory");
}

/* Shared memory the rmsnorm ahead of a set takes in each block (NORM): the
 * row's codes (ne0 bytes), d and d·Σq per 32 elements, and the warps' sums
 * of x². */
__host__ __device__ constexpr size_t ring_norm_bytes(int64_t ne0)
{
    return (size_t)ne0 + 2 * (size_t)(ne0 / 32) * 4 + NORM_THREADS / 32 * 4;
}

/* A consumer lane's part of the row for the rmsnorm (NG Q8_K groups a warp,
 * 8 elements of each a lane: the elements row_sumsq's order gives it) and
 * its norm weights, loaded before the wait (constant; coherent loads, which
 * the SASS check allows there). */
template <int D> struct ring_norm_w {
    static constexpr int NG = D / 256 / RING_ROWS;
    static_assert(NG >= 1 && D % (256 * RING_ROWS) == 0 && RING_ROWS * 32 >= NORM_THREADS,
                  "whole groups a warp; row_sumsq's threads among the consumers");
    float4 g[NG][2];
};

template <int D>
__device__ __forceinline__ void ring_norm_weights(const cuda_norm_in &nrm, int warp, int lane,
                                                  ring_norm_w<D> &W)
{
#pragma unroll
    for (int k = 0; k < ring_norm_w<D>::NG; k++) {
        const float4 *g4 =
            (const float4 *)(nrm.g + (warp * ring_norm_w<D>::NG + k) * 256 + lane * 8);
        W.g[k][0] = __ldca(g4), W.g[k][1] = __ldca(g4 + 1);
    }
}

/* The rmsnorm ahead of the set, done by every block (NORM) instead of a
 * kernel of its own, into this lane's activations: each consumer warp
 * loads its groups of the row x (D floats), and the first NORM_THREADS
 * threads also row_sumsq's share of it, whose x² they add in row_sumsq's
 * order (their warps' sums meet in shared memory); then x·rms_inv·g and
 * quantize_group<256> into shared memory, as k_rmsnorm_quant does: the same
 * bits. Block b also writes groups b, b + grid, ... of the normed row to out
 * (for readers after the set). All consumer warps call it, after the wait:
 * one round trip for the row, two barriers. */
template <int D, int GL>
__device__ __forceinline__ void ring_norm(const cuda_norm_in &nrm, const ring_norm_w<D> &W,
                                          uint8_t *buf, int warp, int lane, ring_act<GL> &A)
{
    constexpr int NG = ring_norm_w<D>::NG;
    int8_t *q = (int8_t *)buf;
    float *d32 = (float *)(buf + D), *s32 = d32 + D / 32, *red = s32 + D / 32;
    /* this lane's groups, and (the first NORM_THREADS threads) row_sumsq's
     * float4s t, t + NORM_THREADS, ...: the row read twice, both issued
     * together (one round trip) */
    const int tid = warp * 32 + lane;
    const float4 *x4 = (const float4 *)nrm.x;
    float4 x[NG][2], xs[D / 4 / NORM_THREADS];
#pragma unroll
    for (int k = 0; k < NG; k++) {
        const float4 *p = x4 + ((warp * NG + k) * 256 + lane * 8) / 4;
        x[k][0] = ld_prior(p), x[k][1] = ld_prior(p + 1);
    }
    if (tid < NORM_THREADS) {
#pragma unroll
        for (int j = 0; j < D / 4 / NORM_THREADS; j++)
            xs[j] = ld_prior(x4 + tid + j * NORM_THREADS);
    }
    float ss = 0.0f;
    if (tid < NORM_THREADS) {
#pragma unroll
        for (int j = 0; j < D / 4 / NORM_THREADS; j++)
            ss = sumsq4(xs[j], ss);
        for (int o = 16; o > 0; o >>= 1)
            ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if (lane == 0) red[warp] = ss;
    }
    ring_consumers_sync();
    ss = 0.0f;
#pragma unroll
    for (int w = 0; w < NORM_THREADS / 32; w++)
        ss += red[w];
    const float inv = rms_inv(ss, D, nrm.eps);
#pragma unroll
    for (int k = 0; k < NG; k++) {
        const int gi = warp * NG + k;
        const float4 a = x[k][0], b = x[k][1], g0 = W.g[k][0], g1 = W.g[k][1];
        float v[8] = {a.x * inv * g0.x, a.y * inv * g0.y, a.z * inv * g0.z, a.w * inv * g0.w,
                      b.x * inv * g1.x, b.y * inv * g1.y, b.z * inv * g1.z, b.w * inv * g1.w};
        if (gi % gridDim.x == blockIdx.x) {
            float4 *o4 = (float4 *)(nrm.out + gi * 256 + lane * 8);
            o4[0] = make_float4(v[0], v[1], v[2], v[3]);
            o4[1] = make_float4(v[4], v[5], v[6], v[7]);
        }
        quantize_group<256>(v, lane, ACT_Q8_K, q + gi * 256, d32, s32, gi * 8);
    }
    ring_consumers_sync();
#pragma unroll
    for (int i = 0; i < GL; i++) {
        const int ga = 8 * ring_block(lane, i) + (lane & 7);
        const int4 *p = (const int4 *)(q + ga * 32);
        A.a0[i] = p[0], A.a1[i] = p[1];
        A.d[i] = d32[ga], A.s[i] = s32[ga];
    }
}

template <int T0, int T1, int GL, int SPLIT, bool ROPE, typename KV>
__global__ static void __launch_bounds__((RING_ROWS + 1) * 32,
                                         (SPLIT > 1 || (ROPE && T0 == T1)) && GL == 4 ? 3 : 0)
    k_mmv_ring(const mms_set set, int first1, size_t rb0, size_t rb1, int32_t gq, const int8_t *aq,
               const float *ad, const float *as, float *resid, int32_t stages, int32_t early,
               const cuda_rope_kv rope, const cuda_norm_in norm)
{
    static_assert(!ROPE || SPLIT == 1, "rope pairs are a tile's neighbouring warps");
    constexpr int R = RING_ROWS / SPLIT; /* rows a tile */
    extern __shared__ uint4 ring_sh[];
    __shared__ uint64_t full[RING_MAX_STAGES], empty[RING_MAX_STAGES];
    __shared__ float part[2][RING_ROWS]; /* split rows' (rope pairs') warp sums, by tile parity */
    __shared__ float rope_tab[ROPE ? 4 * RING_ROPE_PAIRS : 1]; /* ring_rope_setup's angles */
    pdl_trigger();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t tile_bytes = R * (rb0 > rb1 ? rb0 : rb1);
    const uint32_t n_tiles = set.blk_end[MMS_SET - 1];
    if (threadIdx.x == 0) {
        for (int s = 0; s < stages; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], RING_ROWS * 32);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (warp == RING_ROWS) { /* the producer */
        if (lane) return;
        int32_t k = 0;
        for (uint32_t t = blockIdx.x; t < n_tiles; t += gridDim.x, k++) {
            const int s = k % stages;
            if (k == early) pdl_wait();
            if (k >= stages) mbar_wait(&empty[s], (uint32_t)(k / stages - 1) & 1);
            int64_t row;
            const int mi = ring_tile(set, t, R, &row);
            const int64_t ne1 = MMS_PICK(ne1, mi), rows = ne1 - row < R ? ne1 - row : R;
            const size_t rb = mi >= first1 ? rb1 : rb0;
            bulk_copy((uint8_t *)ring_sh + s * tile_bytes, MMS_PICK(w, mi) + row * rb,
                      (uint32_t)(rows * rb), &full[s]);
        }
        return;
    }
    const int rr = warp / SPLIT, q = warp % SPLIT; /* the tile's row, the part of it */
    size_t slot = 0;
    if constexpr (ROPE) slot = ring_rope_setup(rope, rope_tab);
    ring_norm_w<GL * 1024> nw;
    if (SPLIT == 1 && norm.x) ring_norm_weights(norm, warp, lane, nw);
    pdl_wait();
    ring_act<GL> A;
    if (SPLIT == 1 && norm.x) {
        ring_norm<GL * 1024, GL>(norm, nw, (uint8_t *)ring_sh + stages * tile_bytes, warp, lane, A);
    } else {
#pragma unroll
        for (int i = 0; i < GL; i++) {
            if (SPLIT > 1 && 8 * ring_block(lane, i) >= gq) break;
            const int64_t ga = (int64_t)q * gq + 8 * ring_block(lane, i) + (lane & 7);
            act_codes(aq + ga * 32, 0, 0, A.a0[i], A.a1[i]);
            A.d[i] = ld_prior(ad + ga);
            if (T0 != REALM_TYPE_Q6_K) A.s[i] = ld_prior(as + ga);
        }
    }
#pragma unroll
    for (int i = 0; i < GL; i++) {
        if (SPLIT > 1 && 8 * ring_block(lane, i) >= gq) break;
        if (T0 == REALM_TYPE_Q6_K || T1 == REALM_TYPE_Q6_K)
            A.z0[i] = k6_bias(A.a0[i]), A.z1[i] = k6_bias(A.a1[i]);
    }
    int32_t k = 0;
    for (uint32_t t = blockIdx.x; t < n_tiles; t += gridDim.x, k++) {
        const int s = k % stages;
        mbar_wait(&full[s], (uint32_t)(k / stages) & 1);
        int64_t row;
        const int mi = ring_tile(set, t, R, &row);
        const int64_t o_row = row + rr, ne1 = MMS_PICK(ne1, mi);
        if (o_row < ne1) {
            const uint8_t *stage = (const uint8_t *)ring_sh + s * tile_bytes;
            float acc[1];
            if (T1 != T0 && mi >= first1)
                acc[0] = ring_row<T1, GL, false>(stage + warp * rb1, lane, A, gq);
            else if (SPLIT == 1)
                acc[0] = ring_row<T0, GL, false>(stage + warp * rb0, lane, A, gq);
            else
                acc[0] = ring_row<T0, GL, true>(stage + rr * rb0 + q * (rb0 / SPLIT), lane, A, gq);
            if constexpr (ROPE) {
                ring_rope_store<KV>(acc[0], lane, warp, k, mi, o_row, MMS_PICK(bias, mi),
                                    MMS_PICK(out, mi), rope, rope_tab, slot, part);
            } else if constexpr (SPLIT == 1) {
                mv_store<1>(acc, lane, 0, 1, o_row, ne1, MMS_PICK(bias, mi), MMS_PICK(out, mi),
                            resid);
            } else {
                /* the row's SPLIT warps: their sums in part order, then as mv_store */
                float v = acc[0];
                for (int o = 16; o > 0; o >>= 1)
                    v += __shfl_xor_sync(0xffffffffu, v, o);
                if (lane == 0) part[k & 1][warp] = v;
                static_assert(R == 2, "one named barrier a row of the tile: 1 and 2");
                if (rr == 0)
                    asm volatile("bar.sync 1, %0;\n" ::"n"(SPLIT * 32) : "memory");
                else
                    asm volatile("bar.sync 2, %0;\n" ::"n"(SPLIT * 32) : "memory");
                if (q == 0 && lane == 0) {
                    v = part[k & 1][warp];
                    for (int j = 1; j < SPLIT; j++)
                        v += part[k & 1][warp + j];
                    mv_put(v, 0, ne1, o_row, MMS_PICK(bias, mi), MMS_PICK(out, mi), resid);
                }
            }
        }
        /* every lane releases its own reads of the stage (an arrive
         * releases only the arriving thread's accesses; one lane's arrive
         * after __syncwarp leaned on the warp barrier's ordering, which
         * racecheck does not take: it reported the producer's next copy
         * against the other lanes' reads) */
        mbar_arrive(&empty[s]);
    }
}

/* The ring mat-vec of ops[0 .. n_set) (one width, at one activation row;
 * members from first1 on of type T1, n_set if none; GL groups a lane,
 * SPLIT warps a row; ROPE: rope and kv_store by *rope in the epilogue,
 * into a pool of KV (rope->kv_f16: __half, else float; float without ROPE);
 * norm: the rmsnorm ahead, or NULL; rows and weights 16-byte aligned,
 * ring_takes checked): as many stages as fit c->ring_kb, at least two, and
 * as many blocks as the GPU holds at once, at most one a tile; false where
 * two stages do not fit a block's shared memory. */
template <int T0, int T1, int GL, int SPLIT, bool ROPE, typename KV>
static bool launch_ring_gl(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                           const int8_t *aq, const float *ad, const float *as, float *resid,
                           const cuda_rope_kv *rope, const cuda_norm_in *norm)
{
    constexpr int R = RING_ROWS / SPLIT;
    const int64_t ne0 = ops[0].w.ne0;
    const size_t rb0 = realm_type_row_size(ops[0].w.type, ne0),
                 rb1 = first1 < n_set ? realm_type_row_size(ops[first1].w.type, ne0) : rb0;
    const size_t tile = R * (rb0 > rb1 ? rb0 : rb1);
    size_t stages = (size_t)c->ring_kb * 1024 / tile;
    stages = stages < 2 ? 2 : stages > RING_MAX_STAGES ? RING_MAX_STAGES : stages;
    const size_t shm = stages * tile + (norm ? ring_norm_bytes(ne0) : 0);
    auto kernel = k_mmv_ring<T0, T1, GL, SPLIT, ROPE, KV>;
    /* the most dynamic shared memory this instance may use on c->device */
    static int opted_dev = -1;
    static size_t opted = 0;
    if (opted_dev != c->device || opted < shm) {
        if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm) !=
            cudaSuccess) {
            (void)cudaGetLastError(); /* more than a block may have */
            return false;
        }
        opted_dev = c->device, opted = shm;
    }
    const mms_set set = mms_set_of(ops, n_set, R);
    int64_t res;
    if (!resident_blocks(c, kernel, shm, &res, (RING_ROWS + 1) * 32) || res < 1) return false;
    const int64_t tiles = set.blk_end[MMS_SET - 1];
    /* tiles copied before the wait: at least one, none at RING_EARLY_KB=0 */
    size_t early = (size_t)c->ring_early_kb * 1024 / tile;
    if (c->ring_early_kb && early < 1) early = 1;
    cuda__launch_pdl(c, kernel, dim3((unsigned)(tiles < res ? tiles : res)),
                     dim3((RING_ROWS + 1) * 32), shm, set, first1 < n_set ? first1 : MMS_SET, rb0,
                     rb1, (int32_t)(ne0 / 32 / SPLIT), aq, ad, as, resid, (int32_t)stages,
                     (int32_t)early, rope ? *rope : cuda_rope_kv{}, norm ? *norm : cuda_norm_in{});
    return true;
}

/* launch_ring_gl at the width's GL and SPLIT: 2048 or 4096 columns
 * (GL = ne0 / 1024; with rope or without), 8192 and 14336 split over four
 * warps (c->ring_split; the activations of more groups a lane would not
 * fit its registers), one type only */
template <int T0, int T1>
static bool launch_ring(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                        const int8_t *aq, const float *ad, const float *as, float *resid,
                        const cuda_rope_kv *rope, const cuda_norm_in *norm)
{
#define GL_(G, S, P, KV)                                                                           \
    launch_ring_gl<T0, T1, G, S, P, KV>(c, ops, n_set, first1, aq, ad, as, resid, rope, norm)
#define ROPE_(G) (rope->kv_f16 ? GL_(G, 1, true, __half) : GL_(G, 1, true, float))
    if (ops[0].w.ne0 == 2048) return rope ? ROPE_(2) : GL_(2, 1, false, float);
    if (ops[0].w.ne0 == 4096) return rope ? ROPE_(4) : GL_(4, 1, false, float);
    if (rope || norm) return false;
    if constexpr (T1 == T0) { /* 32 and 56 blocks a row: 8 and 14 a part */
        if (ops[0].w.ne0 == 8192 && c->ring_split) return GL_(2, 4, false, float);
        if (ops[0].w.ne0 == 14336 && c->ring_split) return GL_(4, 4, false, float);
    }
    return false;
#undef ROPE_
#undef GL_
}

/* Does the ring take this set (its types, width, alignment and row count;
 * rope's and norm's conditions)? launch_ring's shapes, without launching. */
static bool ring_takes(const cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                       const float *resid, const struct cuda_rope_kv *rope,
                       const struct cuda_norm_in *norm)
{
    if (!c->mmv_ring || ops[0].n != 1) return false;
    if (norm && (((uintptr_t)norm->x | (uintptr_t)norm->g | (uintptr_t)norm->out) % 16 ||
                 norm->x == norm->out))
        return false;
    if (rope &&
        (n_set != 3 || resid || rope->neox || rope->head_dim % 2 || rope->half > RING_ROPE_PAIRS))
        return false;
    const realm_type t0 = ops[0].w.type, t1 = first1 < n_set ? ops[first1].w.type : t0;
    const bool k0 = t0 == REALM_TYPE_Q4_K || t0 == REALM_TYPE_Q5_K;
    if (!(t1 == t0 ? k0 || t0 == REALM_TYPE_Q6_K : k0 && t1 == REALM_TYPE_Q6_K)) return false;
    const int64_t ne0 = ops[0].w.ne0;
    if (!(ne0 == 2048 || ne0 == 4096 ||
          (!rope && !norm && t1 == t0 && c->ring_split && (ne0 == 8192 || ne0 == 14336))))
        return false;
    for (int i = 0; i < n_set; i++) /* bulk copies move multiples of 16 bytes */
        if ((uintptr_t)ops[i].w.data % 16 || realm_type_row_size(ops[i].w.type, ne0) % 16)
            return false;
    return true;
}

bool realm__cuda_ring_takes(const cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                            const struct cuda_rope_kv *rope, const struct cuda_norm_in *norm)
{
    return ring_takes(c, ops, n_set, first1, NULL, rope, norm);
}

bool realm__cuda_mmv_ring(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const int8_t *aq, const float *ad, const float *as, float *resid,
                          const struct cuda_rope_kv *rope, const struct cuda_norm_in *norm)
{
    if (!ring_takes(c, ops, n_set, first1, resid, rope, norm)) return false;
    const realm_type t0 = ops[0].w.type, t1 = first1 < n_set ? ops[first1].w.type : t0;
#define RING(A, B) return launch_ring<A, B>(c, ops, n_set, first1, aq, ad, as, resid, rope, norm)
    if (t1 == t0) {
        switch (t0) {
        case REALM_TYPE_Q4_K:
            RING(REALM_TYPE_Q4_K, REALM_TYPE_Q4_K);
        case REALM_TYPE_Q5_K:
            RING(REALM_TYPE_Q5_K, REALM_TYPE_Q5_K);
        default:
            RING(REALM_TYPE_Q6_K, REALM_TYPE_Q6_K);
        }
    }
    if (t0 == REALM_TYPE_Q4_K) RING(REALM_TYPE_Q4_K, REALM_TYPE_Q6_K);
    RING(REALM_TYPE_Q5_K, REALM_TYPE_Q6_K);
#undef RING
}
