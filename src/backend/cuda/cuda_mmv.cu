/*
 * backend/cuda/cuda_mmv.cu — the mat-vec kernels of cuda_matmul.cu's small
 * path (at most mmv_max_rows activation rows: decode), on the activations
 * cuda_matmul.cu quantized (int8 codes, a float scale per 32 and, for Q8_1,
 * d·Σq per 32).
 *
 * Each thread takes one 32-element group of a weight row at a time: its
 * codes as 8 words of 4 signed bytes, dp4a against the activation codes,
 * integer sums per (sub-)block, float across them. One warp per weight row;
 * up to 8 activation rows reuse each weight word from registers, and larger
 * batches take several chunks of 8.
 * - k_mmv_s (staged): quantized rows that start at 16-byte boundaries are
 *   copied into shared memory with 16-byte cp.async by their warp before
 *   it decodes them there, and those copies are issued before the kernel
 *   waits for the one ahead of it (programmatic dependent launch), so
 *   weight traffic overlaps the previous op's tail. k_mmv_s2 runs a set
 *   whose members from first1 on are of a second type.
 * - k_mmv_q (unstaged: Q8_0, which decodes faster so) loads each lane's
 *   first two groups into registers before its wait (four where all the
 *   launch's blocks fit the GPU at once).
 * - k_mmv_f: float weights against f32 activations.
 * At one activation row, Q4_K/Q5_K/Q6_K matrices of 2048, 4096, 8192 or
 * 14336 columns (and Q4_K_M's mixed q/k/v sets) take the ring mat-vec
 * instead (cuda_mmv_ring.cu). A following `add` can be fused into the
 * epilogue (resid), and matmuls of one type and width on one input (q, k,
 * v; gate, up) share a launch.
 */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_mmv.cuh"
#include "backend/cuda/cuda_rope.cuh"

#define MMV_THREADS 128

/* One group's contribution for activation row ar (every mat-vec's float order). */
template <int T>
__device__ __forceinline__ float group_dot(const grp &q, const int8_t *aq, const float *ad,
                                           const float *as, int64_t ne0, int64_t G, int64_t ar,
                                           int64_t g)
{
    const int4 *ap = (const int4 *)(aq + ar * ne0 + g * 32);
    int4 a0 = ld_prior(ap), a1 = ld_prior(ap + 1);
    int av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
    int i0 = 0, i1 = 0, s0 = 0, s1 = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        i0 = __dp4a(q.w[k], av[k], i0);
        i1 = __dp4a(q.w[k + 4], av[k + 4], i1);
    }
    float da = ld_prior(ad + ar * G + g);
    float v;
    if (T == REALM_TYPE_Q2_K || T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            s0 = __dp4a(av[k], 0x01010101, s0);
            s1 = __dp4a(av[k + 4], 0x01010101, s1);
        }
        v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1 - q.fm0 * (float)s0 - q.fm1 * (float)s1);
    } else if (T == REALM_TYPE_Q3_K || T == REALM_TYPE_Q6_K) {
        v = da * (q.fa0 * (float)i0 + q.fa1 * (float)i1);
    } else {
        v = (float)(i0 + i1) * (q.fa0 * da);
        if (T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1) v += q.fs * ld_prior(as + ar * G + g);
    }
    return v;
}

/* Groups [g0, g0 + ng) of a Q4_K/Q5_K row, at `sb` (a staged slab, whose
 * units are whole 256-element blocks, or the row itself in global memory),
 * against NR activation rows. Lanes stride by 32 groups, so
 * lane l always takes sub-block j = l % 8 of blocks l / 8, l / 8 + 4, ...:
 * its code offset, nibble, mask and scale-byte positions are constants of
 * the lane, and the block head (d, dmin, 12 scale bytes) is one 16-byte
 * load. Q4_K's high nibbles are dotted in place, 16 q each (unsigned bytes
 * against signed ones), with the scale divided by 16: exact, so the
 * product is the same float as q's. The mins term takes the quantizer's
 * d·Σq of the group (as) rather than a second dot. Rounding differs from
 * group_dot's (one integer sum per group, then da·(dl·Σ) − ml·(d·Σq)). */
template <int T, int NR>
__device__ __forceinline__ void k4_dot(const uint8_t *__restrict__ sb, int32_t ng, int64_t g0,
                                       int lane, const int8_t *aq, const float *ad, const float *as,
                                       int64_t ne0, int32_t r0, int32_t n, float (&acc)[NR])
{
    constexpr int BS = k4_lane<T>::BS;
    const k4_lane<T> L(lane);
    const int64_t G = ne0 / 32;
    const uint8_t *bp = sb + (lane >> 3) * BS;
    const int64_t ga = g0 + lane;
    const int8_t *ap = aq + ga * 32;
    const float *dp = ad + ga, *sp = as + ga;
#pragma unroll 2
    for (int32_t g = lane; g < ng; g += 32, bp += 4 * BS, ap += 1024, dp += 32, sp += 32) {
        uint32_t w[8];
        float dl, ml;
        L.decode(bp, w, dl, ml);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            if (r0 + r >= n) break;
            int4 a0, a1;
            act_codes(ap, r0 + r, ne0, a0, a1);
            const int s = dot16_us(w + 4, a1, dot16_us(w, a0, 0));
            const int64_t ro = (int64_t)(r0 + r) * G;
            acc[r] += ld_prior(dp + ro) * (dl * (float)s) - ml * ld_prior(sp + ro);
        }
    }
}

/* Groups [g0, g0 + ng) of a Q6_K row at `sb` (as k4_dot: a staged slab of
 * whole 8-block units, or the row in global memory) against NR activation
 * rows. Lane l takes sub-block j = l % 8 of blocks l / 8, l / 8 + 4, ...
 * (840 bytes apart), so its offsets, shifts and the blocks' misalignment
 * (210-byte blocks: 0 or 2 mod 4) are the lane's constants. Codes are
 * built unsigned (0..63: the low bits by a rotate, the high two by
 * another, one mask-and-merge) and dotted as such; 32·Σa of each 16-half
 * comes off the integer sums, which are then group_dot's i0 and i1, so
 * the floats are the same. */
template <int NR>
__device__ __forceinline__ void k6_dot(const uint8_t *__restrict__ sb, int32_t ng, int64_t g0,
                                       int lane, const int8_t *aq, const float *ad, int64_t ne0,
                                       int32_t r0, int32_t n, float (&acc)[NR])
{
    const int64_t G = ne0 / 32;
    const uint8_t *bp = sb + (lane >> 3) * 210;
    const k6_lane L(lane, bp);
    const int64_t ga = g0 + lane;
    const int8_t *ap = aq + ga * 32;
    const float *dp = ad + ga;
#pragma unroll 2
    for (int32_t g = lane; g < ng; g += 32, bp += 4 * 210, ap += 1024, dp += 32) {
        uint32_t w[8];
        float fa0, fa1;
        L.decode(bp, w, fa0, fa1);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            if (r0 + r >= n) break;
            int4 a0, a1;
            act_codes(ap, r0 + r, ne0, a0, a1);
            /* Σ(q - 32)·a = Σq·a - 32·Σa */
            const int i0 = dot16_us(w, a0, 0) - k6_bias(a0);
            const int i1 = dot16_us(w + 4, a1, 0) - k6_bias(a1);
            acc[r] += ld_prior(dp + (int64_t)(r0 + r) * G) * (fa0 * (float)i0 + fa1 * (float)i1);
        }
    }
}

/* One warp per weight row, MMS_WARPS rows per block (no block-wide
 * synchronization: a warp's lanes stride over the row's groups and reduce by
 * shuffles); NR activation rows starting at blockIdx.y * NR; the blocks of a
 * set as in k_mmv_s (Q8_0's q/k/v and gate/up in one launch each: 8B decode
 * 277.9 vs 253.2 tok/s one by one, NOTES round 14). Each lane loads its
 * first EARLY groups before pdl_wait (four: launch_mmv_q8). ROPE (a q/k/v
 * set at one row, realm__cuda_mmv_rope): rope(q), rope(k) and kv_store by
 * `rope` in the epilogue, into a pool of KV (__half or float); a pair's rows
 * are a block's neighbouring warps, and their angle and the K/V slot are
 * computed before the wait. */
template <int T, int NR, int EARLY = 2, bool ROPE = false, typename KV = float>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_q(const mms_set set, size_t row_bytes, int64_t ne0, const int8_t *aq, const float *ad,
            const float *as, int32_t n, float *resid, const cuda_rope_kv rope)
{
    static_assert(!ROPE || NR == 1, "rope at one activation row");
    __shared__ float xch[ROPE ? MMS_WARPS : 1]; /* the rope pairs' sums */
    pdl_trigger(); /* as k_mmv_s: a mat-vec lets its follower start at once */
    const int64_t G = ne0 / 32;
    const int lane = threadIdx.x % 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const float *bias = MMS_PICK(bias, mi);
    float *out = MMS_PICK(out, mi);
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + threadIdx.x / 32;
    const int32_t r0 = blockIdx.y * NR;
    if (o_row >= ne1) return; /* ROPE: ne1 is whole heads, so whole pairs */
    const int32_t pair = ROPE ? (int32_t)(o_row % rope.head_dim) / 2 : 0;
    const bool turn = ROPE && mi < 2 && pair < rope.half;
    float cs = 1.0f, sn = 0.0f; /* the pair's angle, on lane 0 */
    size_t slot = 0;
    if constexpr (ROPE) { /* staged positions and tables, constant inv_freq */
        if (turn && lane == 0)
            rope_angle(pair, mi == 0 ? rope.qpos[0] : rope.kpos[0], rope.inv_freq, &cs, &sn);
        slot = rope_kv_slot(rope, 0);
    }
    const uint8_t *wr = MMS_PICK(w, mi) + (size_t)o_row * row_bytes;
    float acc[NR];
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    if constexpr (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
        pdl_wait();
        k4_dot<T, NR>(wr, (int32_t)G, 0, lane, aq, ad, as, ne0, r0, n, acc);
    } else if constexpr (T == REALM_TYPE_Q6_K) {
        pdl_wait();
        k6_dot<NR>(wr, (int32_t)G, 0, lane, aq, ad, ne0, r0, n, acc);
    } else {
        /* the lane's first groups are weights (constant): loaded before
         * the wait, they arrive while the kernel ahead finishes */
        grp q0[EARLY];
#pragma unroll
        for (int u = 0; u < EARLY; u++)
            if (lane + 32 * u < G) load_group<T>(wr, lane + 32 * u, q0[u]);
        pdl_wait();
#pragma unroll
        for (int u = 0; u < EARLY; u++) {
            if (lane + 32 * u >= G) break;
            for (int r = 0; r < NR; r++) {
                if (r0 + r >= n) break;
                acc[r] += group_dot<T>(q0[u], aq, ad, as, ne0, G, (int64_t)(r0 + r), lane + 32 * u);
            }
        }
#pragma unroll 2
        for (int64_t g = lane + 32 * EARLY; g < G; g += 32) {
            grp q;
            load_group<T>(wr, g, q);
            for (int r = 0; r < NR; r++) {
                if (r0 + r >= n) break;
                acc[r] += group_dot<T>(q, aq, ad, as, ne0, G, (int64_t)(r0 + r), g);
            }
        }
    }
    if constexpr (ROPE) {
        float v = acc[0];
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (bias) v += bias[o_row];
        if (turn) v = rope_pair_turn(v, lane, threadIdx.x / 32, cs, sn, xch);
        if (lane == 0) rope_kv_put<KV>(rope, mi, o_row, out, slot, v);
    } else {
        mv_store<NR>(acc, lane, r0, n, o_row, ne1, bias, out, resid);
    }
}

/* Float weights against f32 activations. */
template <int T, int NR>
__global__ static void __launch_bounds__(MMV_THREADS)
    k_mmv_f(const uint8_t *w, int64_t ne0, int64_t ne1, const float *x, int32_t n,
            const float *bias, float *out)
{
    const int64_t o_row = blockIdx.x;
    const int32_t r0 = blockIdx.y * NR;
    float acc[NR];
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    for (int64_t i = threadIdx.x; i < ne0; i += MMV_THREADS) {
        float wv;
        if (T == REALM_TYPE_F32) wv = ((const float *)w)[o_row * ne0 + i];
        else if (T == REALM_TYPE_F16) wv = h2f(((const uint16_t *)w)[o_row * ne0 + i]);
        else wv = __uint_as_float((uint32_t)((const uint16_t *)w)[o_row * ne0 + i] << 16);
        for (int r = 0; r < NR; r++)
            if (r0 + r < n) acc[r] = fmaf(wv, x[(int64_t)(r0 + r) * ne0 + i], acc[r]);
    }
    __shared__ float sh[MMV_THREADS / 32][NR];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int r = 0; r < NR; r++) {
        float v = acc[r];
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sh[warp][r] = v;
    }
    __syncthreads();
    if (threadIdx.x < NR && r0 + (int)threadIdx.x < n) {
        float v = 0.0f;
        for (int k = 0; k < MMV_THREADS / 32; k++)
            v += sh[k][threadIdx.x];
        if (bias) v += bias[o_row];
        out[(int64_t)(r0 + threadIdx.x) * ne1 + o_row] = v;
    }
}

/* ---- the staged mat-vec (decode) ----
 * Same arithmetic as k_mmv_q (group by group, same float order per group and
 * lane), but the weight row reaches the warp through shared memory: each
 * warp copies its row slab by slab with 16-byte cp.async (fully coalesced,
 * no registers held while in flight, two slabs in flight), then decodes the
 * groups from shared memory with load_group. This is what makes the loads
 * wide whatever the format's block size (18, 34, 210 bytes...): the copy
 * only needs the row to start at a 16-byte boundary. A slab is a whole
 * number of "units", the smallest run of blocks whose bytes are a multiple
 * of 16, so every block keeps its global alignment modulo 16 in shared
 * memory; slabs hold at most c->mms_cap bytes. */

/* One warp's weight row o_row of w (< ne1) against NR activation rows, in
 * slabs of the geometry given (mms_geometry). */
template <int T, int NR>
__device__ __forceinline__ void
mms_row(const uint8_t *__restrict__ w, const float *__restrict__ bias, float *__restrict__ out,
        int64_t ne1, int64_t o_row, size_t row_bytes, int64_t ne0, const int8_t *aq,
        const float *ad, const float *as, int32_t n, float *resid, int32_t slab_bytes,
        int32_t slab_groups, int32_t n_slabs)
{
    extern __shared__ uint4 mms_sh[];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t G = ne0 / 32;
    const int32_t r0 = blockIdx.y * NR;
    const int stages = n_slabs > 1 ? 2 : 1;
    uint8_t *buf = (uint8_t *)mms_sh + (size_t)warp * stages * slab_bytes;
    const uint8_t *wr = w + (size_t)o_row * row_bytes;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++)
        acc[r] = 0.0f;
    {
        int32_t bytes = (int32_t)(row_bytes < (size_t)slab_bytes ? row_bytes : (size_t)slab_bytes);
        for (int32_t i = lane * 16; i < bytes; i += 512)
            cp_async16(buf + i, wr + i);
        cp_async_commit();
    }
    /* the weights are constant; the activations, out and resid belong to the
     * kernels before this one */
    pdl_wait();
    for (int32_t s = 0; s < n_slabs; s++) {
        if (s + 1 < n_slabs) {
            size_t off = (size_t)(s + 1) * slab_bytes;
            int32_t bytes = (int32_t)(row_bytes - off < (size_t)slab_bytes ? row_bytes - off
                                                                           : (size_t)slab_bytes);
            uint8_t *dst = buf + ((s + 1) & 1) * slab_bytes;
            for (int32_t i = lane * 16; i < bytes; i += 512)
                cp_async16(dst + i, wr + off + i);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncwarp();
        const uint8_t *sb = buf + (s & 1) * slab_bytes;
        const int64_t g0 = (int64_t)s * slab_groups;
        const int32_t ng = (int32_t)(G - g0 < slab_groups ? G - g0 : slab_groups);
        if constexpr (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
            k4_dot<T, NR>(sb, ng, g0, lane, aq, ad, as, ne0, r0, n, acc);
        } else if constexpr (T == REALM_TYPE_Q6_K) {
            k6_dot<NR>(sb, ng, g0, lane, aq, ad, ne0, r0, n, acc);
        } else {
#pragma unroll 2
            for (int32_t g = lane; g < ng; g += 32) {
                grp q;
                load_group<T>(sb, g, q);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    if (r0 + r >= n) break;
                    acc[r] += group_dot<T>(q, aq, ad, as, ne0, G, (int64_t)(r0 + r), g0 + g);
                }
            }
        }
        __syncwarp(); /* the next copy overwrites this buffer */
    }
    mv_store<NR>(acc, lane, r0, n, o_row, ne1, bias, out, resid);
}

template <int T, int NR>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_s(const mms_set set, size_t row_bytes, int64_t ne0, const int8_t *aq, const float *ad,
            const float *as, int32_t n, float *resid, int32_t slab_bytes, int32_t slab_groups,
            int32_t n_slabs)
{
    pdl_trigger();
    const int warp = threadIdx.x / 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const uint8_t *__restrict__ w = MMS_PICK(w, mi);
    const float *__restrict__ bias = MMS_PICK(bias, mi);
    float *__restrict__ out = MMS_PICK(out, mi);
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + warp;
    if (o_row >= ne1) return; /* whole warps only: no block-wide barrier below */
    mms_row<T, NR>(w, bias, out, ne1, o_row, row_bytes, ne0, aq, ad, as, n, resid, slab_bytes,
                   slab_groups, n_slabs);
}

/* A set whose members from `first1` on are of type T1 (Q4_K_M's Q6_K v
 * beside the Q4_K q and k), each member with the row geometry of its type
 * as it would have alone: the bits of the members one by one. */
struct mms_geom {
    size_t row_bytes;
    int32_t slab_bytes, slab_groups, n_slabs;
};

template <int T0, int T1, int NR>
__global__ static void __launch_bounds__(MMS_WARPS * 32)
    k_mmv_s2(const mms_set set, int first1, const mms_geom g0, const mms_geom g1, int64_t ne0,
             const int8_t *aq, const float *ad, const float *as, int32_t n)
{
    pdl_trigger();
    const int warp = threadIdx.x / 32;
    const unsigned bx = blockIdx.x;
    const int mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const int64_t ne1 = MMS_PICK(ne1, mi);
    const unsigned b0 = mi == 0 ? 0u : mi == 1 ? set.blk_end[0] : set.blk_end[1];
    const int64_t o_row = (int64_t)(bx - b0) * MMS_WARPS + warp;
    if (o_row >= ne1) return;
    if (mi >= first1)
        mms_row<T1, NR>(MMS_PICK(w, mi), MMS_PICK(bias, mi), MMS_PICK(out, mi), ne1, o_row,
                        g1.row_bytes, ne0, aq, ad, as, n, NULL, g1.slab_bytes, g1.slab_groups,
                        g1.n_slabs);
    else
        mms_row<T0, NR>(MMS_PICK(w, mi), MMS_PICK(bias, mi), MMS_PICK(out, mi), ne1, o_row,
                        g0.row_bytes, ne0, aq, ad, as, n, NULL, g0.slab_bytes, g0.slab_groups,
                        g0.n_slabs);
}

/* Slab geometry for the staged kernel: slabs of at most `cap` bytes (at
 * least one unit), as even as whole units allow; false when the row cannot
 * be staged (row or data not 16-byte aligned). */
static bool mms_geometry(const realm_weight *w, size_t cap, int32_t *slab_bytes,
                         int32_t *slab_groups, int32_t *n_slabs)
{
    const realm_type_traits *t = realm_type_traits_get(w->type);
    size_t rb = realm_type_row_size(w->type, w->ne0), bs = t->type_size;
    if (rb % 16 || ((uintptr_t)w->data) % 16 || t->block_size % 32) return false;
    /* Q8_0 decodes faster unstaged (its 34-byte blocks give 272-byte
     * staging units): 8B decode 216 vs 210 tok/s in round 5, 221 vs 190
     * with the one-wave slabs of round 8 (NOTES.md round 9) */
    if (w->type == REALM_TYPE_Q8_0) return false;
    size_t unit = bs;
    while (unit % 16)
        unit += bs;
    size_t units = (rb + unit - 1) / unit;
    size_t su = cap / unit < 1 ? 1 : cap / unit;
    size_t ns = (units + su - 1) / su;
    su = (units + ns - 1) / ns;
    *slab_bytes = (int32_t)(su * unit);
    *slab_groups = (int32_t)(su * unit / bs * (t->block_size / 32));
    *n_slabs = (int32_t)((rb + *slab_bytes - 1) / *slab_bytes);
    return true;
}

static size_t mms_shm(int32_t slab_bytes, int32_t n_slabs)
{
    return (size_t)MMS_WARPS * (n_slabs > 1 ? 2 : 1) * slab_bytes;
}

/* The slab geometry of w's staged mat-vec. Long rows (several slabs, two
 * in flight per warp) take the most shared memory; where that leaves too
 * few blocks per SM for w's blocks to run in one wave (the 14336-wide down
 * projection: 1024 blocks of 32-40 KB, 5-6 per SM, so a second wave of a
 * fifth of the blocks doubled its time), slabs shrink until they fit, if
 * they can. The choice depends on w's shape and the device only (not on
 * the batch or on the matrices it shares a launch with: a set runs only
 * members whose geometries agree, mms_same_fit), so results stay the same
 * bits. */
template <int T>
static bool mms_fit(const cuda_ctx *c, const realm_weight *w, int32_t *sb, int32_t *sg, int32_t *ns)
{
    if (!mms_geometry(w, (size_t)c->mms_cap, sb, sg, ns)) return false;
    if (!c->mms_fit || *ns == 1) return true;
    const int64_t need = (w->ne1 + MMS_WARPS - 1) / MMS_WARPS;
    /* only where the smallest slabs (one unit) would run the blocks in one
     * wave: a matrix of more rows than that (a 70B's 28672-row gate at 8192
     * columns) would otherwise shrink to one-unit slabs, and small slabs are
     * slow (8B decode 357 -> 195 tok/s at 1152-byte slabs, NOTES round 14) */
    int32_t ub, ug, un;
    int64_t res;
    mms_geometry(w, 1, &ub, &ug, &un);
    if (!resident_blocks(c, k_mmv_s<T, 1>, mms_shm(ub, un), &res) || res < need) return true;
    while (*ns > 1) {
        if (!resident_blocks(c, k_mmv_s<T, 1>, mms_shm(*sb, *ns), &res) || res >= need) break;
        int32_t b = *sb, g = *sg, n = *ns;
        mms_geometry(w, (size_t)*sb - 1, sb, sg, ns);
        if (*sb >= b) { /* a single unit already */
            *sb = b, *sg = g, *ns = n;
            break;
        }
    }
    return true;
}

/* Does the staged kernel take w's rows at all (format, alignment)? */
static bool mms_stageable(const cuda_ctx *c, const realm_weight *w)
{
    int32_t sb, sg, ns;
    return mms_geometry(w, (size_t)c->mms_cap, &sb, &sg, &ns);
}

/* Do ops[from .. to) slab their rows as (sb, sg, ns)? A set runs every
 * member of a type with one geometry, and each must be the one it has
 * alone (mms_fit depends on the row count where rows take several slabs). */
template <int T>
static bool mms_same_fit(const cuda_ctx *c, const struct cuda_op *ops, int from, int to, int32_t sb,
                         int32_t sg, int32_t ns)
{
    for (int i = from; i < to; i++) {
        int32_t b, g, n;
        if (!mms_fit<T>(c, &ops[i].w, &b, &g, &n) || b != sb || g != sg || n != ns) return false;
    }
    return true;
}

/* ops[0 .. n_set): matrices of one type and width on the same activations
 * (the caller checks); resid only with n_set == 1. */
template <int T, int NR>
static bool launch_mms_t(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                         const float *ad, const float *as, float *resid)
{
    const realm_weight *w = &ops[0].w;
    int32_t sb, sg, ns;
    if (!mms_fit<T>(c, w, &sb, &sg, &ns) || !mms_same_fit<T>(c, ops, 1, n_set, sb, sg, ns))
        return false;
    if (NR == 1 && realm__cuda_mmv_ring(c, ops, n_set, n_set, aq, ad, as, resid, NULL, NULL))
        return true;
    const mms_set set = mms_set_of(ops, n_set);
    dim3 grid(set.blk_end[MMS_SET - 1], (unsigned)((ops[0].n + NR - 1) / NR));
    size_t rb = realm_type_row_size(w->type, w->ne0);
    cuda__launch_pdl(c, k_mmv_s<T, NR>, grid, dim3(MMS_WARPS * 32), mms_shm(sb, ns), set, rb,
                     w->ne0, aq, ad, as, ops[0].n, resid, sb, sg, ns);
    return true;
}

/* ops[0 .. first1) of type T0, ops[first1 .. n_set) of type T1 (no resid):
 * each with the geometry mms_fit gives its type and shape alone */
template <int T0, int T1, int NR>
static bool launch_mms2_t(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const int8_t *aq, const float *ad, const float *as)
{
    if (NR == 1 && realm__cuda_mmv_ring(c, ops, n_set, first1, aq, ad, as, NULL, NULL, NULL))
        return true;
    const realm_weight *w0 = &ops[0].w, *w1 = &ops[first1].w;
    mms_geom g0, g1;
    if (!mms_fit<T0>(c, w0, &g0.slab_bytes, &g0.slab_groups, &g0.n_slabs) ||
        !mms_fit<T1>(c, w1, &g1.slab_bytes, &g1.slab_groups, &g1.n_slabs) ||
        !mms_same_fit<T0>(c, ops, 1, first1, g0.slab_bytes, g0.slab_groups, g0.n_slabs) ||
        !mms_same_fit<T1>(c, ops, first1 + 1, n_set, g1.slab_bytes, g1.slab_groups, g1.n_slabs))
        return false;
    g0.row_bytes = realm_type_row_size(w0->type, w0->ne0);
    g1.row_bytes = realm_type_row_size(w1->type, w1->ne0);
    const size_t shm0 = mms_shm(g0.slab_bytes, g0.n_slabs),
                 shm1 = mms_shm(g1.slab_bytes, g1.n_slabs);
    const mms_set set = mms_set_of(ops, n_set);
    dim3 grid(set.blk_end[MMS_SET - 1], (unsigned)((ops[0].n + NR - 1) / NR));
    cuda__launch_pdl(c, k_mmv_s2<T0, T1, NR>, grid, dim3(MMS_WARPS * 32), shm0 > shm1 ? shm0 : shm1,
                     set, first1, g0, g1, w0->ne0, aq, ad, as, ops[0].n);
    return true;
}

/* The type pairs a mat-vec set may mix (the llama.cpp _M mixes' Q6_K v
 * after Q4_K or Q5_K q and k); launch_mms2 takes exactly these. */
static bool mms_mixable(realm_type t0, realm_type t1)
{
    return (t0 == REALM_TYPE_Q4_K || t0 == REALM_TYPE_Q5_K) && t1 == REALM_TYPE_Q6_K;
}

template <int NR>
static bool launch_mms2(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                        const int8_t *aq, const float *ad, const float *as)
{
    if (ops[0].w.type == REALM_TYPE_Q4_K)
        return launch_mms2_t<REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, NR>(c, ops, n_set, first1, aq, ad,
                                                                   as);
    return launch_mms2_t<REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, NR>(c, ops, n_set, first1, aq, ad, as);
}

template <int NR>
static bool launch_mms(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                       const float *ad, const float *as, float *resid)
{
#define S(T) return launch_mms_t<T, NR>(c, ops, n_set, aq, ad, as, resid)
    switch (ops[0].w.type) {
    case REALM_TYPE_Q4_0: S(REALM_TYPE_Q4_0);
    case REALM_TYPE_Q4_1: S(REALM_TYPE_Q4_1);
    case REALM_TYPE_Q5_0: S(REALM_TYPE_Q5_0);
    case REALM_TYPE_Q5_1: S(REALM_TYPE_Q5_1);
    case REALM_TYPE_Q2_K: S(REALM_TYPE_Q2_K);
    case REALM_TYPE_Q3_K: S(REALM_TYPE_Q3_K);
    case REALM_TYPE_Q4_K: S(REALM_TYPE_Q4_K);
    case REALM_TYPE_Q5_K: S(REALM_TYPE_Q5_K);
    case REALM_TYPE_Q6_K: S(REALM_TYPE_Q6_K);
    case REALM_TYPE_IQ4_NL: S(REALM_TYPE_IQ4_NL);
    case REALM_TYPE_IQ4_XS: S(REALM_TYPE_IQ4_XS);
    default: return false; /* Q8_0 (unstaged: mms_geometry) and the float types */
    }
#undef S
}

/* Q8_0 at one activation row, where every block of the launch can be
 * resident at once (the 8B's o and down projections, 1024 blocks; 54
 * registers, 9 blocks an SM): each lane loads four groups before the wait,
 * a 4096-wide row's all, instead of two, so more of the weights arrive
 * while the kernel ahead finishes (the blocks of a launch of several waves
 * start after it has, whatever they would load early). Same groups in the
 * same order, so the same floats. H100 8B Q8_0 decode1 +1.7-2.2%; three
 * groups at 40 registers for the q/k/v set (1536 blocks, one wave at 12 an
 * SM) spilled and lost 1.2% (NOTES round 18). */
static bool launch_mmv_q8(cuda_ctx *c, const mms_set &set, dim3 grid, size_t rb, int64_t ne0,
                          const int8_t *aq, const float *ad, const float *as, int32_t n,
                          float *resid)
{
    int64_t res;
    if (!resident_blocks(c, k_mmv_q<REALM_TYPE_Q8_0, 1, 4>, 0, &res) || res < (int64_t)grid.x)
        return false;
    cuda__launch_pdl(c, k_mmv_q<REALM_TYPE_Q8_0, 1, 4>, grid, dim3(MMS_WARPS * 32), 0, set, rb, ne0,
                     aq, ad, as, n, resid, cuda_rope_kv{});
    return true;
}

/* The unstaged mat-vec of ops[0 .. n_set) (a set: quantized types only);
 * float weights (one op) take k_mmv_f, which adds nothing into resid. */
template <int NR>
static void launch_mmv(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                       const float *ad, const float *as, float *resid)
{
    const struct cuda_op *op = &ops[0];
    const realm_weight *w = &op->w;
    const unsigned gy = (unsigned)((op->n + NR - 1) / NR);
    const uint8_t *wd = (const uint8_t *)w->data;
    size_t rb = realm_type_row_size(w->type, w->ne0);
    const float *bias = (const float *)op->bias.data;
    float *out = (float *)op->out;
    const float *x = (const float *)op->x;
    const mms_set set = mms_set_of(ops, n_set);
    const dim3 gridq(set.blk_end[MMS_SET - 1], gy);
    if (w->type == REALM_TYPE_Q8_0 && NR == 1 &&
        launch_mmv_q8(c, set, gridq, rb, w->ne0, aq, ad, as, op->n, resid))
        return;
#define Q(T)                                                                                       \
    cuda__launch_pdl(c, k_mmv_q<T, NR>, gridq, dim3(MMS_WARPS * 32), 0, set, rb, w->ne0, aq, ad,   \
                     as, op->n, resid, cuda_rope_kv{})
#define F(T)                                                                                       \
    k_mmv_f<T, NR><<<dim3((unsigned)w->ne1, gy), MMV_THREADS, 0, c->stream>>>(wd, w->ne0, w->ne1,  \
                                                                              x, op->n, bias, out)
    switch (w->type) {
    case REALM_TYPE_F32: F(REALM_TYPE_F32); break;
    case REALM_TYPE_F16: F(REALM_TYPE_F16); break;
    case REALM_TYPE_BF16: F(REALM_TYPE_BF16); break;
    case REALM_TYPE_Q4_0: Q(REALM_TYPE_Q4_0); break;
    case REALM_TYPE_Q4_1: Q(REALM_TYPE_Q4_1); break;
    case REALM_TYPE_Q5_0: Q(REALM_TYPE_Q5_0); break;
    case REALM_TYPE_Q5_1: Q(REALM_TYPE_Q5_1); break;
    case REALM_TYPE_Q8_0: Q(REALM_TYPE_Q8_0); break;
    case REALM_TYPE_Q2_K: Q(REALM_TYPE_Q2_K); break;
    case REALM_TYPE_Q3_K: Q(REALM_TYPE_Q3_K); break;
    case REALM_TYPE_Q4_K: Q(REALM_TYPE_Q4_K); break;
    case REALM_TYPE_Q5_K: Q(REALM_TYPE_Q5_K); break;
    case REALM_TYPE_Q6_K: Q(REALM_TYPE_Q6_K); break;
    case REALM_TYPE_IQ4_NL: Q(REALM_TYPE_IQ4_NL); break;
    case REALM_TYPE_IQ4_XS: Q(REALM_TYPE_IQ4_XS); break;
    default: break;
    }
#undef Q
#undef F
}

/* launch_mms at the activation-row chunk for n rows */
static bool launch_mms_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                         const float *ad, const float *as, float *resid)
{
    const int32_t n = ops[0].n;
    if (n == 1) return launch_mms<1>(c, ops, n_set, aq, ad, as, resid);
    if (n == 2) return launch_mms<2>(c, ops, n_set, aq, ad, as, resid);
    if (n <= 4) return launch_mms<4>(c, ops, n_set, aq, ad, as, resid);
    return launch_mms<8>(c, ops, n_set, aq, ad, as, resid);
}

/* launch_mms2 at the activation-row chunk for n rows */
static bool launch_mms2_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const int8_t *aq, const float *ad, const float *as)
{
    const int32_t n = ops[0].n;
    if (n == 1) return launch_mms2<1>(c, ops, n_set, first1, aq, ad, as);
    if (n == 2) return launch_mms2<2>(c, ops, n_set, first1, aq, ad, as);
    if (n <= 4) return launch_mms2<4>(c, ops, n_set, first1, aq, ad, as);
    return launch_mms2<8>(c, ops, n_set, first1, aq, ad, as);
}

/* launch_mmv at the activation-row chunk for n rows */
static void launch_mmv_n(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                         const float *ad, const float *as, float *resid)
{
    const int32_t n = ops[0].n;
    if (n == 1)
        launch_mmv<1>(c, ops, n_set, aq, ad, as, resid);
    else if (n == 2)
        launch_mmv<2>(c, ops, n_set, aq, ad, as, resid);
    else if (n <= 4)
        launch_mmv<4>(c, ops, n_set, aq, ad, as, resid);
    else
        launch_mmv<8>(c, ops, n_set, aq, ad, as, resid);
}

bool realm__cuda_mmv_mixable(realm_type t0, realm_type t1)
{
    return mms_mixable(t0, t1);
}

bool realm__cuda_mmv(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                     const int8_t *aq, const float *ad, const float *as, float *resid)
{
    if (first1) return launch_mms2_n(c, ops, n_set, first1, aq, ad, as);
    /* a set whose members would slab their rows differently fails (the
     * caller issues them one by one on the cached input); formats and rows
     * the staged kernel does not take (Q8_0, float weights) go unstaged */
    if (!c->mmv_plain && (n_set == 1 || mms_stageable(c, &ops[0].w))) {
        if (launch_mms_n(c, ops, n_set, aq, ad, as, resid)) return true;
        if (n_set > 1) return false;
    }
    launch_mmv_n(c, ops, n_set, aq, ad, as, resid);
    return true;
}

bool realm__cuda_mmv_rope(cuda_ctx *c, const struct cuda_op *ops, const int8_t *aq, const float *ad,
                          const float *as, const struct cuda_rope_kv *rope)
{
    if (ops[0].n != 1 || rope->neox || rope->head_dim % 2) return false;
    for (int i = 0; i < 3; i++)
        if (ops[i].w.type != REALM_TYPE_Q8_0) return false;
    const mms_set set = mms_set_of(ops, 3);
    cuda__launch_pdl(c,
                     rope->kv_f16 ? k_mmv_q<REALM_TYPE_Q8_0, 1, 2, true, __half>
                                  : k_mmv_q<REALM_TYPE_Q8_0, 1, 2, true, float>,
                     dim3(set.blk_end[MMS_SET - 1]), dim3(MMS_WARPS * 32), 0, set,
                     realm_type_row_size(REALM_TYPE_Q8_0, ops[0].w.ne0), ops[0].w.ne0, aq, ad, as,
                     (int32_t)1, (float *)NULL, *rope);
    return true;
}
