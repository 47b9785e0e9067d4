/*
 * backend/cuda/cuda_mmv.cuh — what the mat-vec kernels share: cuda_matmul.cu's
 * staged and unstaged kernels and cuda_mmv_ring.cu's ring.
 *   device   mv_put/mv_store (the epilogue: + bias, + resid), the set of
 *            matrices one launch serves (mms_set, MMS_PICK), the dp4a
 *            helpers, and the lane decoders of Q4_K/Q5_K (k4_lane) and
 *            Q6_K (k6_lane): each lane's constants, then one group's codes
 *            and scales, read from shared or global memory alike;
 *   host     mms_set_of (a set's blocks) and resident_blocks (how many
 *            blocks of a kernel the GPU holds at once).
 * The activations are cuda_matmul.cu's quantized layout (int8 codes, a
 * scale and d·Σq per 32).
 */
#ifndef REALM_BACKEND_CUDA_CUDA_MMV_CUH
#define REALM_BACKEND_CUDA_CUDA_MMV_CUH

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

/* v, activation row r's sum for weight row o_row, into out (+ bias; added
 * into resid too when there is one) */
__device__ __forceinline__ void mv_put(float v, int32_t r, int64_t ne1, int64_t o_row,
                                       const float *bias, float *out, float *resid)
{
    if (bias) v += bias[o_row];
    const int64_t oi = (int64_t)r * ne1 + o_row;
    out[oi] = v;
    if (resid) resid[oi] += v;
}

/* A mat-vec warp's epilogue: each activation row's sum over the lanes, then
 * lane r writes row r0 + r of weight row o_row (mv_put). */
template <int NR>
__device__ __forceinline__ void mv_store(const float (&acc)[NR], int lane, int32_t r0, int32_t n,
                                         int64_t o_row, int64_t ne1, const float *bias, float *out,
                                         float *resid)
{
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float v = acc[r];
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == r && r0 + r < n) mv_put(v, r0 + r, ne1, o_row, bias, out, resid);
    }
}

/* One mat-vec launch can serve up to MMS_SET matrices of one width that
 * read the same activations (q, k, v; gate, up), of one type (k_mmv_s2: two):
 * blocks [blk_end[i - 1], blk_end[i]) compute matrix i, MMS_WARPS rows each.
 * Each kernel locates its block's matrix in its own lines: a shared helper
 * changed k_mmv_s's code (44 -> 40 registers) in the build whose Q4_K_M
 * decode came out ~1% lower (NOTES round 14, item 5). */
#define MMS_WARPS 4
#define MMS_SET   3
struct mms_set {
    const uint8_t *w[MMS_SET];
    const float *bias[MMS_SET];
    float *out[MMS_SET];
    int64_t ne1[MMS_SET];
    uint32_t blk_end[MMS_SET];
};

/* set.f[mi] with constant indices: a dynamic index into a kernel parameter
 * makes every thread copy the whole struct to local memory (measured: 8B
 * decode 256 -> 199 tok/s) */
#define MMS_PICK(f, mi) ((mi) == 0 ? set.f[0] : (mi) == 1 ? set.f[1] : set.f[2])

/* dp4a of 4 unsigned weight bytes against 4 signed activation bytes */
__device__ __forceinline__ int dp4a_us(uint32_t a, int b, int c)
{
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

/* c + the dot of 16 unsigned weight bytes (4 words) with 16 activation codes */
__device__ __forceinline__ int dot16_us(const uint32_t *w, const int4 &a, int c)
{
    return dp4a_us(w[3], a.w, dp4a_us(w[2], a.z, dp4a_us(w[1], a.y, dp4a_us(w[0], a.x, c))));
}

/* the 32 activation codes of group `ap` in activation row ar, as two int4 */
__device__ __forceinline__ void act_codes(const int8_t *ap, int64_t ar, int64_t ne0, int4 &a0,
                                          int4 &a1)
{
    const int4 *a4 = (const int4 *)(ap + ar * ne0);
    a0 = ld_prior(a4);
    a1 = ld_prior(a4 + 1);
}

/* A lane's constants for Q4_K/Q5_K groups (k4_dot says which it takes)
 * and the decoding of one group. */
template <int T> struct k4_lane {
    static constexpr int BS = T == REALM_TYPE_Q4_K ? 144 : 176; /* block bytes */
    static constexpr int QS = T == REALM_TYPE_Q4_K ? 16 : 48;   /* codes' offset in the block */
    int j;
    bool hi;
    uint32_t sh, m_lo, m_hi, sh_m, qmask;
    int nib;
    float unit;
    __device__ __forceinline__ explicit k4_lane(int lane)
    {
        j = lane & 7;
        hi = j >= 4;
        /* scale: j < 4 the low 6 bits of byte j; else byte j + 4's low nibble
         * and byte j - 4's top two bits. min: j < 4 byte j + 4's low 6 bits;
         * else byte j + 4's high nibble and byte j's top two bits. Word x of
         * the head holds scale bytes 4x - 4 .. 4x - 1. */
        sh = 8 * (uint32_t)(j & 3), m_lo = hi ? 15u : 63u, m_hi = hi ? 0x30u : 0u;
        sh_m = hi ? sh + 4 : sh;
        nib = 4 * (j & 1);
        qmask = (T == REALM_TYPE_Q4_K && nib) ? 0xF0F0F0F0u : 0x0F0F0F0Fu;
        unit = (T == REALM_TYPE_Q4_K && nib) ? 0.0625f : 1.0f;
    }
    /* the lane's group of the block at bp: its codes, unsigned (Q4_K's high
     * nibbles in place), and the float scale and min they take */
    __device__ __forceinline__ void decode(const uint8_t *bp, uint32_t (&w)[8], float &dl,
                                           float &ml) const
    {
        const uint4 h = *(const uint4 *)bp;
        const uint4 qa = *(const uint4 *)(bp + QS + 32 * (j >> 1));
        const uint4 qb = *(const uint4 *)(bp + QS + 32 * (j >> 1) + 16);
        w[0] = qa.x, w[1] = qa.y, w[2] = qa.z, w[3] = qa.w;
        w[4] = qb.x, w[5] = qb.y, w[6] = qb.z, w[7] = qb.w;
        if (T == REALM_TYPE_Q4_K) {
#pragma unroll
            for (int k = 0; k < 8; k++)
                w[k] &= qmask;
        } else {
            const uint4 ha = *(const uint4 *)(bp + 16), hb = *(const uint4 *)(bp + 32);
            const uint32_t hw[8] = {ha.x, ha.y, ha.z, ha.w, hb.x, hb.y, hb.z, hb.w};
#pragma unroll
            for (int k = 0; k < 8; k++)
                w[k] = ((w[k] >> nib) & qmask) | (((hw[k] >> j) & 0x01010101u) << 4);
        }
        const uint32_t ws = hi ? h.w : h.y, wm = hi ? h.w : h.z;
        const uint32_t sc = ((ws >> sh) & m_lo) | ((h.y >> (sh + 2)) & m_hi);
        const uint32_t mn = ((wm >> sh_m) & m_lo) | ((h.z >> (sh + 2)) & m_hi);
        dl = h2f((uint16_t)h.x) * (float)sc * unit;
        ml = h2f((uint16_t)(h.x >> 16)) * (float)mn;
    }
};

/* A lane's constants for Q6_K groups (k6_dot says which it takes) and the
 * decoding of one group. */
struct k6_lane {
    int j, mis, qlo, qho;
    uint32_t msh, rl, rh;
    /* bp: where the lane's first block starts (its misalignment is the
     * same for every block it meets: they are 840 bytes apart) */
    __device__ __forceinline__ k6_lane(int lane, const uint8_t *bp)
    {
        j = lane & 7;
        mis = (int)((uintptr_t)bp & 3);
        msh = 8 * (uint32_t)mis;
        rl = 4 * (uint32_t)((j & 3) >> 1);      /* low nibble or high */
        rh = (2 * (uint32_t)(j & 3) + 28) & 31; /* bits 2(j%4).. to bits 4-5 */
        qlo = 64 * (j >> 2) + 32 * (j & 1) - mis, qho = 128 + 32 * (j >> 2) - mis;
    }
    /* the lane's group of the block at bp: codes, unsigned (0..63), and the
     * float scales of its two 16-halves */
    __device__ __forceinline__ void decode(const uint8_t *bp, uint32_t (&w)[8], float &fa0,
                                           float &fa1) const
    {
        const uint32_t *wl = (const uint32_t *)(bp + qlo), *wh = (const uint32_t *)(bp + qho);
        uint32_t pl = wl[0], ph = wh[0];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const uint32_t nl = wl[k + 1], nh = wh[k + 1];
            w[k] = codes(__funnelshift_r(pl, nl, msh), __funnelshift_r(ph, nh, msh));
            pl = nl;
            ph = nh;
        }
        scales(bp, fa0, fa1);
    }
    /* decode for a block whose misalignment is known at compile time, MIS
     * (0: plain words, no shifts; 2: at 2 mod 4), whatever the lane was
     * constructed with */
    template <int MIS>
    __device__ __forceinline__ void decode_at(const uint8_t *bp, uint32_t (&w)[8], float &fa0,
                                              float &fa1) const
    {
        const uint32_t *wl = (const uint32_t *)(bp + qlo + mis - MIS),
                       *wh = (const uint32_t *)(bp + qho + mis - MIS);
        uint32_t pl = wl[0], ph = wh[0];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            uint32_t l = pl, h = ph;
            if constexpr (MIS != 0) {
                const uint32_t nl = wl[k + 1], nh = wh[k + 1];
                l = __funnelshift_r(pl, nl, 8 * MIS), h = __funnelshift_r(ph, nh, 8 * MIS);
                pl = nl, ph = nh;
            } else if (k < 7) {
                pl = wl[k + 1], ph = wh[k + 1];
            }
            w[k] = codes(l, h);
        }
        scales(bp, fa0, fa1);
    }
    /* four codes from the aligned words of ql (l) and qh (h) */
    __device__ __forceinline__ uint32_t codes(uint32_t l, uint32_t h) const
    {
        return (__funnelshift_r(l, l, rl) & 0x0F0F0F0Fu) |
               (__funnelshift_r(h, h, rh) & 0x30303030u);
    }
    /* the float scales of the lane's two 16-halves in the block at bp */
    __device__ __forceinline__ void scales(const uint8_t *bp, float &fa0, float &fa1) const
    {
        const uint32_t scw = *(const uint16_t *)(bp + 192 + 2 * j);
        const float d = h2f(*(const uint16_t *)(bp + 208));
        fa0 = d * (float)(int8_t)(scw & 0xff), fa1 = d * (float)(int8_t)(scw >> 8);
    }
};

/* 32·Σa of 16 activation codes: what the unsigned Q6_K codes' dot carries
 * over the signed one (|Σa| <= 16·128, exact) */
__device__ __forceinline__ int k6_bias(const int4 &a)
{
    const uint32_t ones[4] = {0x01010101u, 0x01010101u, 0x01010101u, 0x01010101u};
    return 32 * dot16_us(ones, a, 0);
}

/* The set of ops[0 .. n_set) (entries past n_set repeat the last member
 * with no blocks of their own). */
static inline mms_set mms_set_of(const struct cuda_op *ops, int n_set, int rows = MMS_WARPS)
{
    mms_set set = {};
    uint32_t blocks = 0;
    for (int i = 0; i < MMS_SET; i++) {
        const struct cuda_op *o = &ops[i < n_set ? i : n_set - 1];
        if (i < n_set) blocks += (uint32_t)((o->w.ne1 + rows - 1) / rows);
        set.w[i] = (const uint8_t *)o->w.data;
        set.bias[i] = (const float *)o->bias.data;
        set.out[i] = (float *)o->out;
        set.ne1[i] = o->w.ne1;
        set.blk_end[i] = blocks;
    }
    return set;
}

/* *n: how many blocks of kern (shm bytes of shared memory, `threads`
 * threads) the whole GPU holds at once; false where CUDA cannot say. */
template <typename K>
static inline bool resident_blocks(const cuda_ctx *c, K kern, size_t shm, int64_t *n,
                                   int threads = MMS_WARPS * 32)
{
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, threads, shm) != cudaSuccess)
        return false;
    *n = (int64_t)per_sm * c->n_sm;
    return true;
}

#endif
