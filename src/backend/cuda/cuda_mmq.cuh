/*
 * backend/cuda/cuda_mmq.cuh — what the int8 tensor-core tile kernels share:
 * cuda_mmq.cu's k_mmq (every quantized format) and cuda_mmq_sb.cu's
 * super-block kernel k_mmq_sb. The tile shape, the mma.sync products of one
 * 32-element group, the store of a warp's accumulators (or split-K partials),
 * and the set of matrices one launch serves (mmq_set).
 */
#ifndef REALM_BACKEND_CUDA_CUDA_MMQ_CUH
#define REALM_BACKEND_CUDA_CUDA_MMQ_CUH

#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_quant.cuh"

#define MMQ_BM      128 /* weight rows per block */
#define MMQ_KG      4   /* 32-element groups per K step */
#define MMQ_THREADS 256
#define MMQ_LD      (MMQ_KG * 32 + 16) /* bytes per shared-memory row */
#define MMQ_PART_CAP ((size_t)16 << 20)

/* what the per-group float arithmetic needs, by weight type */
template <int T> struct mmq_kind {
    /* two scales per group (16-element sub-blocks): two k16 products */
    static constexpr bool split16 =
        T == REALM_TYPE_Q2_K || T == REALM_TYPE_Q3_K || T == REALM_TYPE_Q6_K;
    /* minus min · Σ activation codes */
    static constexpr bool mins =
        T == REALM_TYPE_Q2_K || T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K;
    /* plus m · (d·Σq) of the Q8_1 activations */
    static constexpr bool q81 = T == REALM_TYPE_Q4_1 || T == REALM_TYPE_Q5_1;
};

__device__ __forceinline__ void mma_k32(int c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_k16(int c[4], uint32_t a0, uint32_t a1, uint32_t b0)
{
    asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(b0));
}

/* One 32-element group's integer sums from zero: the whole group (k32) in
 * c0, or (SPLIT16) its two 16-element halves in c0 and c1 */
template <bool SPLIT16>
__device__ __forceinline__ void mma_group(int c0[4], int c1[4], const uint32_t a[4], uint32_t b0,
                                          uint32_t b1)
{
    if (SPLIT16) {
        mma_k16(c0, a[0], a[1], b0);
        mma_k16(c1, a[2], a[3], b1);
    } else {
        mma_k32(c0, a, b0, b1);
    }
}

__device__ __forceinline__ uint32_t lds32(const int8_t *p)
{
    return *(const uint32_t *)p;
}

/* A warp's accumulators (TM m16 × TN n8 tiles from weight row mw, activation
 * row rn) -> part[split z] (split K) or out (+ bias, + resid). Blocks that
 * run few K steps (many splits) spend a good part of their time here, so
 * the choices are made once and each value costs an address and a store. */
template <int TM, int TN>
__device__ __forceinline__ void mmq_store(const float (&acc)[TM][TN][4], int64_t mw, int32_t rn,
                                          int64_t ne1, int32_t n, const float *__restrict__ bias,
                                          float *__restrict__ out, float *resid,
                                          float *__restrict__ part, int32_t z)
{
    const int gq = threadIdx.x % 32 / 4, tq = threadIdx.x % 4;
    float *__restrict__ dst = part ? part + (int64_t)z * n * ne1 : out;
    if (part) bias = NULL, resid = NULL; /* the reduction adds them */
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int64_t m = mw + i * 16 + gq + 8 * h;
            if (m >= ne1) continue;
            const float b = bias ? bias[m] : 0.0f;
#pragma unroll
            for (int j = 0; j < TN; j++)
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    const int32_t r = rn + j * 8 + tq * 2 + x;
                    if (r >= n) continue;
                    const int64_t o = (int64_t)r * ne1 + m;
                    float v = acc[i][j][2 * h + x];
                    if (bias) v += b;
                    dst[o] = v;
                    if (resid) resid[o] += v;
                }
        }
}

/* Blocks per SM the register allocation must allow (128 registers at 2):
 * uncapped, ptxas gives BN = 64 ~140 registers and several smaller tiles
 * 130-180, one block per SM; capped, BN = 64 spills 20-90 bytes of the
 * prefetched step and the others at most 20. */
#define MMQ_MIN_BLOCKS 2

#define SB_RING_BYTES (112 * 1024) /* per block: two blocks per SM */

/* The matrices of one launch: one, or up to MMQ_SET of one type and width
 * that read the same activations (q, k, v; gate, up). Each keeps the K
 * splits it would have alone (so a set computes the same bits as its
 * members one by one) and its own partials; blocks [blk_end[i - 1],
 * blk_end[i]) of the 1-D grid are matrix i's, in the order of a 3-D grid
 * (activation-row tile fastest, then weight tile, then split). For the
 * reduction, matrix i's outputs are columns [row0[i], row0[i] + ne1[i]) of
 * the set's (unused entries: row0 past every column). */
#define MMQ_SET 3
struct mmq_set {
    const uint8_t *w[MMQ_SET];
    const float *bias[MMQ_SET];
    float *out[MMQ_SET];
    float *part[MMQ_SET]; /* split-K partials, (splits, n, ne1); NULL: one split */
    int64_t ne1[MMQ_SET], row0[MMQ_SET];
    uint32_t blk_end[MMQ_SET];
    int32_t kt_per[MMQ_SET], splits[MMQ_SET];
    /* the super-block kernel's block -> tile map (sb_locate): blocks per
     * split of each matrix and the reciprocals (div_inv) of those and of
     * the row tile count */
    uint32_t per_split[MMQ_SET];
    uint64_t ps_inv[MMQ_SET], rt_inv;
};

/* n / d for any n, d < 2^32 as the high half of n * div_inv(d): with
 * inv = ceil(2^64 / d) the product overshoots n / d by less than
 * n / 2^64 < 1 / d, so the floor is exact (Lemire, Kaser and Kurz, "Faster
 * remainder by direct computation", 2019). The grid's runtime divisors
 * would otherwise take the emulated 32-bit division, twice per block. */
static inline uint64_t div_inv(uint32_t d)
{
    return d <= 1 ? 0 : UINT64_MAX / d + 1;
}

__device__ __forceinline__ uint32_t div_by(uint32_t n, uint32_t d, uint64_t inv)
{
    return d == 1 ? n : (uint32_t)__umul64hi((uint64_t)n, inv);
}

/* set.f[mi] with constant indices (a dynamic index into a kernel parameter
 * copies the whole struct to local memory: cuda_mmv.cuh's MMS_PICK) */
#define MMQ_PICK(f, mi) ((mi) == 0 ? set.f[0] : (mi) == 1 ? set.f[1] : set.f[2])

/* k_mmq_sb<type, bn> (cuda_mmq_sb.cu) over set's blocks: the weights'
 * type (Q4_K, Q5_K, Q6_K or Q8_0: realm__cuda_mmq_sb) and bn activation
 * rows a tile (8, 16, 32; 64 but for Q6_K) */
void realm__cuda_mmq_sb_launch(cuda_ctx *c, realm_type type, int bn, const mmq_set &set, int n_set,
                               size_t rb, int64_t ne0, uint32_t row_tiles, const int8_t *aq,
                               const float *ad, const float *as, int32_t n, float *resid);

#endif
