/*
 * backend/cuda/cuda_mmq.cu — out (n, ne1) = x (n, ne0) · W^T for quantized W
 * and 2..~512 activation rows, on the int8 tensor cores.
 *
 * Inputs are the quantized activations cuda_matmul.cu writes (int8 codes
 * row-major, one float scale per 32 elements, and the d·Σq per 32 of Q8_1
 * (rounded) and Q8_K), i.e. the CPU's vec_dot_type rounding: per 32-element
 * group the result is an exact integer dot product times float scales, as in
 * the mat-vec.
 *
 * Two kernels: k_mmq (every quantized format) below, and k_mmq_sb (Q4_K,
 * Q5_K, Q6_K, Q8_0: raw bytes staged by cp.async, integer sub-scales per
 * super-block; its own section further down), which realm__cuda_mmq_sb
 * picks and cuda_matmul.cu routes by row count. One k_mmq_sb launch can
 * take a set of matrices on the same input (q, k, v; gate, up), each with
 * the K splits it would have alone, so a set computes the same bits as its
 * members one by one (mmq_set).
 *
 * k_mmq: one thread block computes a tile of MMQ_BM weight rows × BN activation rows
 * and walks K in steps of MMQ_KG groups (128 elements):
 *   1. every thread unpacks MMQ_BM·MMQ_KG / MMQ_THREADS weight groups with the
 *      mat-vec's load_group (cuda_quant.cuh) into int8 codes in shared
 *      memory, plus the group's float sub-scales; the activation codes of the
 *      step are copied beside them with the sum of each 16-code half (the
 *      "mins" term of Q2_K/Q4_K/Q5_K). The next step's global loads are issued
 *      before this step's arithmetic (registers as the second stage).
 *   2. each warp multiplies its (16·TM × 8·TN) sub-tile group by group with
 *      mma.sync m16n8k32 s8·s8→s32 (K = 32 = one group, so each product is the
 *      group's exact integer sum), or two m16n8k16 for the formats whose
 *      scales change every 16 elements (Q2_K, Q3_K, Q6_K), and folds the
 *      integer sums into float accumulators with the group's scales — the
 *      arithmetic of the mat-vec's group_dot, per group.
 * Each weight tile is read from memory once per BN activation rows (the
 * mat-vec reads it once per 8). Matrices with too few tiles to fill the GPU
 * (decode-sized: 1024 rows are 8 tiles) split K over blockIdx.z: partial
 * sums go to c->mmq_part and a second kernel adds them in a fixed order
 * (deterministic, no atomics), then bias and the fused residual.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k32 / m16n8k16 with .s8), with
 * g = lane / 4 and t = lane % 4:
 *   A (16×32, row): a0 = A[g][4t..4t+3], a1 = A[g+8][4t..], a2 = A[g][16+4t..],
 *                   a3 = A[g+8][16+4t..]; the k16 shape takes {a0, a1} of its 16.
 *   B (32×8, col):  b0 = B[4t..4t+3][g], b1 = B[16+4t..][g]; k16 takes b0.
 *   C (16×8):       c0, c1 = C[g][2t], C[g][2t+1]; c2, c3 = C[g+8][2t], C[g+8][2t+1].
 * Shared-memory rows are MMQ_KG·32 + 16 bytes (36 words): the 32 lanes of a
 * fragment load hit banks 4g + t, all different.
 */
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

/* Shared memory of one block (41 KB at BN = 64: under the 48 KB static limit). */
template <int BN> struct mmq_smem {
    int8_t w[MMQ_BM * MMQ_LD];   /* weight codes, (MMQ_BM, MMQ_KG·32) */
    int8_t a[BN * MMQ_LD];       /* activation codes, (BN, MMQ_KG·32) */
    float wf[5][MMQ_KG][MMQ_BM]; /* fa0, fa1, fm0, fm1, fs of each group (grp's fields) */
    float ad[MMQ_KG][BN];        /* activation scale of each group */
    float as[MMQ_KG][BN];        /* Q8_1: d·Σq of each group */
    int asum[2][MMQ_KG][BN];     /* Σ codes of each 16-element half */
};

/* Blocks per SM the register allocation must allow (128 registers at 2):
 * uncapped, ptxas gives BN = 64 ~140 registers and several smaller tiles
 * 130-180, one block per SM; capped, BN = 64 spills 20-90 bytes of the
 * prefetched step and the others at most 20. */
#define MMQ_MIN_BLOCKS 2

/* grid: (activation-row tiles, weight-row tiles, K splits); each split covers
 * kt_per steps of MMQ_KG groups. part == NULL: one split, write out (+ bias,
 * + resid); else write this split's partial sums to part[split]. */
template <int T, int BN>
__global__ static void __launch_bounds__(MMQ_THREADS, MMQ_MIN_BLOCKS)
    k_mmq(const uint8_t *__restrict__ w, size_t row_bytes, int64_t ne0, int64_t ne1,
          const int8_t *__restrict__ aq, const float *__restrict__ ad,
          const float *__restrict__ as, int32_t n, int32_t kt_per, const float *__restrict__ bias,
          float *__restrict__ out, float *resid, float *__restrict__ part)
{
    typedef mmq_kind<T> K;
    constexpr int WN = BN >= 64 ? 2 : 1;     /* warps across activation rows */
    constexpr int WM = MMQ_THREADS / 32 / WN; /* warps across weight rows */
    constexpr int TM = MMQ_BM / WM / 16;      /* m16 tiles per warp */
    constexpr int TN = BN / WN / 8;           /* n8 tiles per warp */
    constexpr int WPT = MMQ_BM * MMQ_KG / MMQ_THREADS;          /* weight groups per thread */
    constexpr int ACH = BN * MMQ_KG * 2;                          /* 16-byte activation chunks */
    constexpr int APT = (ACH + MMQ_THREADS - 1) / MMQ_THREADS;   /* chunks per thread */
    static_assert(WPT * MMQ_THREADS == MMQ_BM * MMQ_KG, "weight groups split evenly");
    static_assert(TM >= 1 && TN >= 1, "tile shape");

    __shared__ __align__(16) mmq_smem<BN> sh;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int gq = lane / 4, tq = lane % 4;
    const int m_base = (warp % WM) * TM * 16, n_base = (warp / WM) * TN * 8;
    const int32_t r0 = (int32_t)blockIdx.x * BN;
    const int64_t m0 = (int64_t)blockIdx.y * MMQ_BM;
    const int64_t G = ne0 / 32;
    const int64_t nkt = (G + MMQ_KG - 1) / MMQ_KG;
    const int64_t kt0 = (int64_t)blockIdx.z * kt_per;
    const int64_t kt1 = kt0 + kt_per < nkt ? kt0 + kt_per : nkt;

    float acc[TM][TN][4] = {};

    /* the step in flight: unpacked weight groups and raw activation chunks.
     * Out-of-range groups and rows load a clamped in-range address (so the
     * loads carry no branch) and are zeroed when stored. */
    grp wq[WPT];
    int4 av[APT];
    float adv[APT], asv[APT];
    auto fetch = [&](int64_t kt) {
#pragma unroll
        for (int i = 0; i < WPT; i++) {
            const int idx = tid + i * MMQ_THREADS;
            const int64_t m = m0 + idx / MMQ_KG, g = kt * MMQ_KG + idx % MMQ_KG;
            load_group<T>(w + (size_t)(m < ne1 ? m : ne1 - 1) * row_bytes, g < G ? g : G - 1,
                          wq[i]);
        }
#pragma unroll
        for (int j = 0; j < APT; j++) {
            const int c = tid + j * MMQ_THREADS;
            if (ACH % MMQ_THREADS && c >= ACH) break;
            const int32_t r = r0 + c / (MMQ_KG * 2);
            const int64_t g = kt * MMQ_KG + (c % (MMQ_KG * 2)) / 2;
            const int64_t rc = r < n ? r : n - 1, gc = g < G ? g : G - 1;
            av[j] = __ldg((const int4 *)(aq + rc * ne0 + gc * 32 + (c % 2) * 16));
            adv[j] = __ldg(ad + rc * G + gc);
            asv[j] = K::q81 ? __ldg(as + rc * G + gc) : 0.0f;
        }
    };
    auto store = [&](int64_t kt) {
#pragma unroll
        for (int i = 0; i < WPT; i++) {
            const int idx = tid + i * MMQ_THREADS, ml = idx / MMQ_KG, kg = idx % MMQ_KG;
            const bool ok = m0 + ml < ne1 && kt * MMQ_KG + kg < G;
            const grp &q = wq[i];
            int4 *dst = (int4 *)(sh.w + ml * MMQ_LD + kg * 32);
            dst[0] = ok ? make_int4(q.w[0], q.w[1], q.w[2], q.w[3]) : make_int4(0, 0, 0, 0);
            dst[1] = ok ? make_int4(q.w[4], q.w[5], q.w[6], q.w[7]) : make_int4(0, 0, 0, 0);
            sh.wf[0][kg][ml] = ok ? q.fa0 : 0.0f;
            sh.wf[1][kg][ml] = ok ? q.fa1 : 0.0f;
            sh.wf[2][kg][ml] = ok ? q.fm0 : 0.0f;
            sh.wf[3][kg][ml] = ok ? q.fm1 : 0.0f;
            sh.wf[4][kg][ml] = ok ? q.fs : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < APT; j++) {
            const int c = tid + j * MMQ_THREADS;
            if (ACH % MMQ_THREADS && c >= ACH) break;
            const int rl = c / (MMQ_KG * 2), ch = c % (MMQ_KG * 2), kg = ch / 2;
            const bool ok = r0 + rl < n && kt * MMQ_KG + kg < G;
            const int4 v = ok ? av[j] : make_int4(0, 0, 0, 0);
            *(int4 *)(sh.a + rl * MMQ_LD + ch * 16) = v;
            int s = __dp4a(v.x, 0x01010101, 0);
            s = __dp4a(v.y, 0x01010101, s);
            s = __dp4a(v.z, 0x01010101, s);
            s = __dp4a(v.w, 0x01010101, s);
            sh.asum[ch % 2][kg][rl] = s;
            if (ch % 2 == 0) {
                sh.ad[kg][rl] = ok ? adv[j] : 0.0f;
                sh.as[kg][rl] = ok ? asv[j] : 0.0f;
            }
        }
    };

    if (kt0 < kt1) fetch(kt0);
    for (int64_t kt = kt0; kt < kt1; kt++) {
        if (kt > kt0) __syncthreads(); /* the previous step's reads of sh are done */
        store(kt);
        __syncthreads();
        /* the next step's loads fly during this step's arithmetic; the last
         * step reloads itself (L1/L2 hits) so that the loads carry no branch */
        fetch(kt + 1 < kt1 ? kt + 1 : kt);
#pragma unroll
        for (int kg = 0; kg < MMQ_KG; kg++) {
            /* per activation column: its scale, and the mins / Q8_1 terms
             * already times that scale (shared by every weight row) */
            uint32_t b[TN][2];
            float da[TN][2], ds0[TN][2], ds1[TN][2];
#pragma unroll
            for (int j = 0; j < TN; j++) {
                const int8_t *p = sh.a + (n_base + j * 8 + gq) * MMQ_LD + kg * 32 + tq * 4;
                b[j][0] = lds32(p);
                b[j][1] = lds32(p + 16);
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int col = n_base + j * 8 + tq * 2 + e;
                    const float d = sh.ad[kg][col];
                    const int s0 = sh.asum[0][kg][col], s1 = sh.asum[1][kg][col];
                    da[j][e] = d;
                    if (K::split16) {
                        ds0[j][e] = d * (float)s0;
                        ds1[j][e] = d * (float)s1;
                    } else {
                        ds0[j][e] = d * (float)(s0 + s1);
                        ds1[j][e] = sh.as[kg][col];
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < TM; i++) {
                const int row = m_base + i * 16 + gq;
                const int8_t *p = sh.w + row * MMQ_LD + kg * 32 + tq * 4;
                const uint32_t a[4] = {lds32(p), lds32(p + 8 * MMQ_LD), lds32(p + 16),
                                       lds32(p + 8 * MMQ_LD + 16)};
                float fa0[2], fa1[2], fm0[2], fm1[2], fs[2];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    fa0[h] = sh.wf[0][kg][row + 8 * h];
                    fa1[h] = sh.wf[1][kg][row + 8 * h];
                    fm0[h] = sh.wf[2][kg][row + 8 * h];
                    fm1[h] = sh.wf[3][kg][row + 8 * h];
                    fs[h] = sh.wf[4][kg][row + 8 * h];
                }
#pragma unroll
                for (int j = 0; j < TN; j++) {
                    int c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
                    mma_group<K::split16>(c0, c1, a, b[j][0], b[j][1]);
                    /* group_dot's terms, as fused multiply-adds into acc */
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int h = e / 2, x = e % 2;
                        float &r = acc[i][j][e];
                        float t = fa0[h] * (float)c0[e];
                        if (K::split16) t = fmaf(fa1[h], (float)c1[e], t);
                        r = fmaf(da[j][x], t, r);
                        if (K::mins) r = fmaf(-fm0[h], ds0[j][x], r);
                        if (K::split16 && K::mins) r = fmaf(-fm1[h], ds1[j][x], r);
                        if (K::q81) r = fmaf(fs[h], ds1[j][x], r);
                    }
                }
            }
        }
    }

    mmq_store<TM, TN>(acc, m0 + m_base, r0 + n_base, ne1, n, bias, out, resid, part,
                      (int32_t)blockIdx.z);
}

/* ---- the super-block path (Q4_K, Q5_K, Q6_K, Q8_0) ----
 * The same weight tiles (MMQ_BM rows), fragments and K splits as k_mmq, but
 * each warp takes 16 weight rows by all the tile's activation rows, and:
 *   - the weights' raw bytes (and the activation codes and floats) reach
 *     shared memory through a ring of sb_tile::S stages filled by cp.async,
 *     256 elements of K per stage: no registers hold loads in flight, so
 *     several stages are in flight per block, and a stage costs one barrier
 *     (k_mmq: a step of register-prefetched groups, unpacked into shared
 *     memory between two barriers);
 *   - each warp builds its A fragments straight from the raw codes (a word
 *     of packed codes -> 4 int8 codes by shifts and masks) and decodes the
 *     scales it needs itself;
 *   - the K-quants' sub-block scales are integers: each group's mma sum
 *     times its scale is summed in integers over the super-block and scaled
 *     to float once, d·da·Σ sc·isum (the CPU's Q8_K dot product); the mins
 *     term of Q4_K/Q5_K stays per group, dmin·m·(da·Σq), with the da·Σq per
 *     32 that the Q8_K quantizer writes (cuda_matmul.cu). Q8_0 folds each
 *     group in floats, dw·da·isum.
 * A weight row's K step is 144 (Q4_K), 176 (Q5_K), 210 (Q6_K) or 272 (8 x
 * Q8_0) bytes. The copies need 16-byte aligned rows; a Q6_K super-block
 * starts at any even offset, so its stage row holds the 14 aligned chunks
 * around it and words are read as two aligned words and a funnel shift (as
 * are the odd-aligned Q8_0 blocks). Activation codes sit 256 bytes per row
 * with their 16-byte chunks XOR-swizzled by (row % 8), so a B fragment's 32
 * lanes hit 32 different banks; the weight row strides (36, 44, 60, 68
 * words) are conflict-free as they are. */
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
static uint64_t div_inv(uint32_t d)
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

template <int T> struct sb_fmt {
    static constexpr bool k4 = T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K;
    static constexpr int BYTES = T == REALM_TYPE_Q4_K   ? 144
                                 : T == REALM_TYPE_Q5_K ? 176
                                 : T == REALM_TYPE_Q6_K ? 210
                                                        : 272;        /* per K step */
    static constexpr int CH = T == REALM_TYPE_Q6_K ? 14 : BYTES / 16; /* chunks copied per row */
    static constexpr int LD = T == REALM_TYPE_Q6_K ? 240 : BYTES;     /* stage row stride */
    /* activation floats per row and stage: da of the super-block (Q8_K
     * kinds, 16 bytes), and one float per group (32 bytes): da·Σq for the
     * mins (Q4_K, Q5_K) or da itself (Q8_0). The group floats' two 16-byte
     * halves swap places in columns with (c >> 2) & 1 set: a load of group
     * j by the 32 lanes reads columns 2tq + e, and unswizzled, columns c and
     * c + 4 (32 words apart) shared a bank (2-way conflicts, 39% excess
     * shared wavefronts in ncu at 16 rows). */
    static constexpr int FD = T == REALM_TYPE_Q8_0 ? 0 : 16;
    static constexpr int FG = T == REALM_TYPE_Q6_K ? 0 : 32;
};

template <int T, int BN> struct sb_tile {
    typedef sb_fmt<T> F;
    static constexpr int W = MMQ_BM * F::LD; /* weight bytes per stage */
    static constexpr int A = BN * 256;       /* activation codes */
    static constexpr int STAGE = W + A + BN * (F::FD + F::FG);
    static constexpr int S0 = SB_RING_BYTES / STAGE;
    static constexpr int S = S0 > 4 ? 4 : S0 < 2 ? 2 : S0; /* stages */
    static_assert(S * STAGE <= SB_RING_BYTES, "the ring fits what realm__cuda_mmq_sb checks");
};

/* the 4 bytes at p + off of a stage row, p 4-byte aligned, off only even.
 * The word address is p plus an offset (not a masked integer), so the
 * compiler still knows it is shared memory: masking the address made these
 * generic loads with 64-bit addresses (164 of them in the Q6_K kernels). */
__device__ __forceinline__ uint32_t lds32_a2(const uint8_t *p, int off)
{
    const uint32_t *q = (const uint32_t *)(p + (off & ~3));
    return __funnelshift_r(q[0], q[1], 8 * (off & 3));
}

/* Q4_K/Q5_K: the 8 sub-block scales and mins of a super-block's 12 bytes,
 * one byte each: sc[0] = sc0..3, sc[1] = sc4..7 (k4_scale_min's packing) */
__device__ __forceinline__ void k4_scales(const uint8_t *s12, uint32_t sc[2], uint32_t m[2])
{
    const uint32_t w0 = *(const uint32_t *)s12, w1 = *(const uint32_t *)(s12 + 4),
                   w2 = *(const uint32_t *)(s12 + 8);
    sc[0] = w0 & 0x3F3F3F3Fu;
    m[0] = w1 & 0x3F3F3F3Fu;
    sc[1] = (w2 & 0x0F0F0F0Fu) | ((w0 >> 2) & 0x30303030u);
    m[1] = ((w2 >> 4) & 0x0F0F0F0Fu) | ((w1 >> 2) & 0x30303030u);
}

/* The A-fragment word of group j (elements off..off+3, off = 4tq or
 * 16 + 4tq) of one weight row of a stage; blk is the row's K step (Q6_K:
 * at an even offset delta from blk) */
template <int T>
__device__ __forceinline__ uint32_t sb_codes(const uint8_t *blk, int j, int off, int delta)
{
    if (T == REALM_TYPE_Q4_K || T == REALM_TYPE_Q5_K) {
        constexpr int QS = T == REALM_TYPE_Q4_K ? 16 : 48;
        uint32_t v =
            (*(const uint32_t *)(blk + QS + 32 * (j / 2) + off) >> (4 * (j % 2))) & 0x0F0F0F0Fu;
        if (T == REALM_TYPE_Q5_K)
            v |= ((*(const uint32_t *)(blk + 16 + off) >> j) & 0x01010101u) << 4;
        return v;
    } else if (T == REALM_TYPE_Q6_K) {
        const uint32_t lo = lds32_a2(blk, delta + 64 * (j / 4) + 32 * (j % 2) + off);
        const uint32_t hi = lds32_a2(blk, delta + 128 + 32 * (j / 4) + off);
        const uint32_t q = ((lo >> (4 * ((j % 4) / 2))) & 0x0F0F0F0Fu) |
                           (((hi >> (2 * (j % 4))) & 0x03030303u) << 4);
        return sub_bytes(q, 0x20202020u); /* q - 32 per byte */
    } else { /* Q8_0: block j at 34j, codes from 34j + 2 */
        const int o = 34 * j + 2 + off;
        return (34 * j + 2) % 4 == 0 ? *(const uint32_t *)(blk + o) : lds32_a2(blk, o);
    }
}

/* where block blockIdx.x of a set's launch works: matrix mi, split z, weight
 * rows from m0, activation rows from r0 */
struct sb_where {
    int mi;
    int32_t z, r0;
    int64_t m0;
};

__device__ __forceinline__ sb_where sb_locate(const mmq_set &set, uint32_t row_tiles, int bn)
{
    sb_where a;
    const unsigned bx = blockIdx.x;
    a.mi = bx < set.blk_end[0] ? 0 : bx < set.blk_end[1] ? 1 : 2;
    const int mi = a.mi;
    const uint32_t lb = bx - (mi == 0 ? 0u : MMQ_PICK(blk_end, mi - 1));
    const uint32_t per_split = MMQ_PICK(per_split, mi);
    const uint32_t z = div_by(lb, per_split, MMQ_PICK(ps_inv, mi)), in = lb - z * per_split;
    const uint32_t mt = div_by(in, row_tiles, set.rt_inv);
    a.z = (int32_t)z;
    a.r0 = (int32_t)(in - mt * row_tiles) * bn;
    a.m0 = (int64_t)mt * MMQ_BM;
    return a;
}

template <int T, int BN>
__global__ static void __launch_bounds__(MMQ_THREADS, MMQ_MIN_BLOCKS)
    k_mmq_sb(const mmq_set set, size_t row_bytes, int64_t ne0, uint32_t row_tiles, const int8_t *aq,
             const float *ad, const float *as, int32_t n, float *resid)
{
    typedef sb_tile<T, BN> L;
    typedef sb_fmt<T> F;
    /* each warp: 16 weight rows x all BN activation rows, so that an A
     * fragment serves BN / 8 products (k_mmq splits 64 rows over two warps) */
    constexpr int TM = MMQ_BM / (MMQ_THREADS / 32) / 16, TN = BN / 8;
    static_assert(TM == 1, "one m16 tile per warp");
    extern __shared__ __align__(16) uint8_t sm[];
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int gq = lane / 4, tq = lane % 4;
    const int m_base = warp * TM * 16, n_base = 0;
    const sb_where at = sb_locate(set, row_tiles, BN);
    const int32_t r0 = at.r0;
    /* the tile's first weight row, and how many of its rows are in range */
    const uint8_t *__restrict__ wt = MMQ_PICK(w, at.mi) + (size_t)at.m0 * row_bytes;
    const int rows =
        (int)(MMQ_PICK(ne1, at.mi) - at.m0 < MMQ_BM ? MMQ_PICK(ne1, at.mi) - at.m0 : MMQ_BM);
    const int64_t G = ne0 / 32, nsb = ne0 / 256;
    const int32_t kt_per = MMQ_PICK(kt_per, at.mi);
    const int64_t kt0 = (int64_t)at.z * kt_per;
    const int steps = (int)((kt0 + kt_per < nsb ? kt0 + kt_per : nsb) - kt0);

    /* stage `slot` <- K step sb of BM weight rows (issue_w) and BN
     * activation rows (issue_a); out-of-range rows copy the last valid one
     * and are never stored */
    auto issue_w = [&](int64_t sb, int slot) {
        uint8_t *st = sm + slot * L::STAGE;
        const size_t w_off = (size_t)sb * F::BYTES & ~(size_t)15;
        /* not unrolled: unrolled, the compiler keeps every chunk's address
         * across the main loop (Q8_0: 9 of them) and spills */
#pragma unroll 1
        for (int c = tid; c < MMQ_BM * F::CH; c += MMQ_THREADS) {
            const int r = c / F::CH, k = c % F::CH;
            const int rr = r < rows ? r : rows - 1;
            cp_async16(st + r * F::LD + 16 * k, wt + (size_t)rr * row_bytes + w_off + 16 * k);
        }
    };
    auto issue_a = [&](int64_t sb, int slot) {
        uint8_t *st = sm + slot * L::STAGE;
#pragma unroll 1
        for (int c = tid; c < BN * 16; c += MMQ_THREADS) {
            const int col = c / 16, k = c % 16;
            const int64_t r = r0 + col < n ? r0 + col : n - 1;
            cp_async16(st + L::W + col * 256 + 16 * (k ^ (col % 8)),
                       aq + r * ne0 + sb * 256 + 16 * k);
        }
        constexpr int FC = (F::FD + F::FG) / 16; /* float chunks per activation row */
        for (int c = tid; c < BN * FC; c += MMQ_THREADS) {
            const int col = c / FC, k = c % FC;
            const int64_t r = r0 + col < n ? r0 + col : n - 1;
            uint8_t *f = st + L::W + L::A;
            if (F::FD && k == 0)
                cp_async16(f + col * 16, ad + r * G + sb * 8);
            else if (F::FG) /* swizzled halves: sb_fmt */
                cp_async16(f + BN * F::FD + col * 32 + 16 * ((k - F::FD / 16) ^ ((col >> 2) & 1)),
                           (T == REALM_TYPE_Q8_0 ? ad : as) + r * G + sb * 8 +
                               4 * (k - F::FD / 16));
        }
    };

    float acc[TM][TN][4] = {};

    /* The first stages' weights (constant) are on their way while the kernel
     * before finishes (launched with PDL); the activations are its output.
     * Commit group s then holds stage s's activations (group 0 also every
     * early weight copy), so waiting for group s still covers stage s. */
#pragma unroll
    for (int s = 0; s < L::S - 1; s++)
        if (s < steps) issue_w(kt0 + s, s);
    pdl_wait();
#pragma unroll
    for (int s = 0; s < L::S - 1; s++) {
        if (s < steps) issue_a(kt0 + s, s);
        cp_async_commit();
    }
    for (int it = 0; it < steps; it++) {
        cp_async_wait<L::S - 2>(); /* this thread's copies of stage it have landed */
        __syncthreads();           /* everyone's have; and everyone is done with stage it - 1 */
        if (it + L::S - 1 < steps) {
            issue_w(kt0 + it + L::S - 1, (it + L::S - 1) % L::S);
            issue_a(kt0 + it + L::S - 1, (it + L::S - 1) % L::S);
        }
        cp_async_commit();

        const uint8_t *st = sm + (it % L::S) * L::STAGE;
        const int8_t *sa = (const int8_t *)(st + L::W);
        const float *fd = (const float *)(st + L::W + L::A); /* da of column c at fd[4c] */
        /* group j's float of column c at fg[8c + (j ^ 4·((c >> 2) & 1))]:
         * a lane's columns 2tq + e (+ 8jn) have (c >> 2) & 1 = tq >> 1 */
        const float *fg = fd + BN * F::FD / 4;
        const int fx = 4 * (tq >> 1);
        const int delta = (int)((kt0 + it) * F::BYTES % 16); /* Q6_K: where the K step starts */
        const uint8_t *rows[TM][2];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                rows[i][h] = st + (m_base + i * 16 + gq + 8 * h) * F::LD;
        uint32_t scw[TM][2][2], mw[TM][2][2]; /* Q4_K/Q5_K scales and mins, a byte each */
        if (F::k4)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int h = 0; h < 2; h++)
                    k4_scales(rows[i][h] + 4, scw[i][h], mw[i][h]);
        int sacc[TM][TN][4] = {};
#pragma unroll
        for (int j = 0; j < 8; j++) {
            uint32_t b[TN][2];
            float fgj[TN][2]; /* group j's activation float of this lane's columns */
#pragma unroll
            for (int jn = 0; jn < TN; jn++) {
                const int8_t *pc = sa + (n_base + jn * 8 + gq) * 256 + 4 * tq;
                b[jn][0] = lds32(pc + 16 * ((2 * j) ^ gq));
                b[jn][1] = lds32(pc + 16 * ((2 * j + 1) ^ gq));
#pragma unroll
                for (int e = 0; e < 2; e++)
                    fgj[jn][e] = F::FG ? fg[8 * (n_base + jn * 8 + 2 * tq + e) + (j ^ fx)] : 0.0f;
            }
#pragma unroll
            for (int i = 0; i < TM; i++) {
                uint32_t a[4];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    a[h] = sb_codes<T>(rows[i][h], j, 4 * tq, delta);
                    a[2 + h] = sb_codes<T>(rows[i][h], j, 16 + 4 * tq, delta);
                }
                int sc0[2] = {0, 0}, sc1[2] = {0, 0};
                float fw[2] = {0.0f, 0.0f}; /* Q4_K/Q5_K: dmin·m; Q8_0: dw */
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const uint8_t *blk = rows[i][h];
                    if (F::k4) {
                        sc0[h] = (int)((scw[i][h][j / 4] >> (8 * (j % 4))) & 0xFF);
                        fw[h] = h2f(((const uint16_t *)blk)[1]) *
                                (float)((mw[i][h][j / 4] >> (8 * (j % 4))) & 0xFF);
                    } else if (T == REALM_TYPE_Q6_K) {
                        /* scales[2j], scales[2j + 1] (at 192 of the K step) */
                        const uint32_t two = lds32_a2(blk, delta + 192 + 2 * j);
                        sc0[h] = (int)(int8_t)(two & 0xFF);
                        sc1[h] = (int)(int8_t)((two >> 8) & 0xFF);
                    } else {
                        fw[h] = h2f(*(const uint16_t *)(blk + 34 * j));
                    }
                }
#pragma unroll
                for (int jn = 0; jn < TN; jn++) {
                    int c0[4] = {0, 0, 0, 0}, c1[4] = {0, 0, 0, 0};
                    mma_group<T == REALM_TYPE_Q6_K>(c0, c1, a, b[jn][0], b[jn][1]);
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int h = e / 2;
                        float &r = acc[i][jn][e];
                        if (F::k4) {
                            sacc[i][jn][e] += sc0[h] * c0[e];
                            r = fmaf(-fw[h], fgj[jn][e % 2], r);
                        } else if (T == REALM_TYPE_Q6_K) {
                            sacc[i][jn][e] += sc0[h] * c0[e] + sc1[h] * c1[e];
                        } else {
                            r = fmaf(fw[h] * fgj[jn][e % 2], (float)c0[e], r);
                        }
                    }
                }
            }
        }
        /* K-quants: + d·da·Σ sc·isum, once per super-block */
        if (T != REALM_TYPE_Q8_0)
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const float d = T == REALM_TYPE_Q6_K
                                        ? h2f((uint16_t)lds32_a2(rows[i][h], delta + 208))
                                        : h2f(((const uint16_t *)rows[i][h])[0]);
#pragma unroll
                    for (int jn = 0; jn < TN; jn++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            const float da = fd[4 * (n_base + jn * 8 + 2 * tq + e)];
                            float &r = acc[i][jn][2 * h + e];
                            r = fmaf(d * da, (float)sacc[i][jn][2 * h + e], r);
                        }
                }
    }
    /* the follower may be scheduled once every block is past its main loop:
     * its weight copies overlap this kernel's tail (not earlier: its
     * blocks would wait in the SM slots this kernel's blocks need) */
    pdl_trigger();
    const sb_where e = sb_locate(set, row_tiles, BN); /* recomputed: fewer live registers */
    mmq_store<TM, TN>(acc, e.m0 + m_base, e.r0 + n_base, MMQ_PICK(ne1, e.mi), n,
                      MMQ_PICK(bias, e.mi), MMQ_PICK(out, e.mi), resid, MMQ_PICK(part, e.mi), e.z);
}

/* out = Σ over splits of the partial sums (split 0 first), + bias, and into
 * resid when fused with an add (a set of one), for the set's matrices with
 * partials. Block (x, r): columns blockIdx.x·256.. of activation row r. */
__global__ static void k_mmq_reduce(const mmq_set set, int32_t n, int64_t ne_all, float *resid)
{
    const int64_t mg = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (mg >= ne_all) return;
    const int mi = mg < set.row0[1] ? 0 : mg < set.row0[2] ? 1 : 2;
    const float *__restrict__ part = MMQ_PICK(part, mi);
    if (!part) return; /* one split: the tile kernel wrote out itself */
    const int64_t m = mg - MMQ_PICK(row0, mi), ne1 = MMQ_PICK(ne1, mi);
    const float *bias = MMQ_PICK(bias, mi);
    const int64_t total = (int64_t)n * ne1, o = r * ne1 + m;
    const int32_t splits = MMQ_PICK(splits, mi);
    float v = part[o];
    for (int32_t s = 1; s < splits; s++)
        v += part[(int64_t)s * total + o];
    if (bias) v += bias[m];
    MMQ_PICK(out, mi)[o] = v;
    if (resid) resid[o] += v;
}

size_t realm__cuda_mmq_part_bytes(const realm_backend_limits *lim)
{
    (void)lim;
    return MMQ_PART_CAP;
}

/* How many K splits (within the partials scratch, at least one step each):
 * the fewest that minimise rounds x (steps per block + 2), where a round is
 * MMQ_MIN_BLOCKS blocks on every SM and the 2 stand for a block's fixed
 * costs (filling its pipeline, storing its tile). More splits than that only
 * add a partly filled round: 112 weight tiles in 3 splits were 1.27 rounds
 * of 264 blocks, and the SMs idled 30% of the kernel (ncu, NOTES round 10;
 * "at least 2 blocks per SM", the rule before, was 2-12% slower at 16-64
 * streams). */
static int32_t mmq_splits(const cuda_ctx *c, int64_t tiles, int64_t nkt, int64_t out_elems,
                          int32_t *kt_per)
{
    int64_t cap = c->mmq_part ? (int64_t)(c->mmq_part_bytes / ((size_t)out_elems * sizeof(float)))
                              : 1;
    if (cap > nkt) cap = nkt;
    const int64_t slots = (int64_t)MMQ_MIN_BLOCKS * c->n_sm;
    int64_t best_per = nkt, best_t = -1;
    for (int64_t s = 1; s <= cap; s++) {
        const int64_t per = (nkt + s - 1) / s, blocks = tiles * ((nkt + per - 1) / per);
        const int64_t t = (blocks + slots - 1) / slots * (per + 2);
        if (best_t < 0 || t < best_t) best_t = t, best_per = per;
    }
    *kt_per = (int32_t)best_per;
    return (int32_t)((nkt + best_per - 1) / best_per);
}

/* Does the super-block path take this weight? Q4_K, Q5_K, Q6_K and Q8_0
 * rows of whole 256-element K steps that start at 16-byte boundaries, on a
 * GPU that gives a block the stage ring ($REALM_CUDA_MMQ_SB=0: never). */
bool realm__cuda_mmq_sb(const cuda_ctx *c, const realm_weight *w)
{
    switch (w->type) {
    case REALM_TYPE_Q4_K: case REALM_TYPE_Q5_K: case REALM_TYPE_Q6_K: case REALM_TYPE_Q8_0: break;
    default: return false;
    }
    return c->mmq_sb && c->smem_optin >= SB_RING_BYTES && w->ne0 % 256 == 0 &&
           realm_type_row_size(w->type, w->ne0) % 16 == 0 && (uintptr_t)w->data % 16 == 0;
}

template <int T, int BN>
static void launch_sb(cuda_ctx *c, const mmq_set &set, int n_set, size_t rb, int64_t ne0,
                      uint32_t row_tiles, const int8_t *aq, const float *ad, const float *as,
                      int32_t n, float *resid)
{
    typedef sb_tile<T, BN> L;
    const int shm = L::S * L::STAGE;
    static int opted_in = -1; /* the device this instance may use shm on */
    if (opted_in != c->device) {
        CUDA_CHECK(c, cudaFuncSetAttribute(k_mmq_sb<T, BN>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, shm));
        opted_in = c->device;
    }
    cuda__launch_pdl(c, k_mmq_sb<T, BN>, dim3(set.blk_end[n_set - 1]), dim3(MMQ_THREADS), shm, set,
                     rb, ne0, row_tiles, aq, ad, as, n, resid);
}

/* ops[0 .. n_set): see realm__cuda_mmq */
template <int BN>
static bool launch_mmq(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                       const float *ad, const float *as, float *resid)
{
    const struct cuda_op *op = &ops[0];
    const realm_weight *w = &op->w;
    const bool sb = realm__cuda_mmq_sb(c, w);
    if (n_set > MMQ_SET || (n_set > 1 && (!sb || resid))) return false;
    /* Q6_K's super-block tiles stop at 32 activation rows (at 64 its two
     * k16 products per group spill 284 bytes per thread; the others 40-52);
     * the two 32-row tiles of a weight tile are neighbours in the grid, so
     * the second mostly reads the weights from L2. (64-row tiles against
     * two of 32, 8B, 64 streams: Q8_0 32.0 vs 33.2 us per matmul, agg48
     * 4275 vs 3957; Q4_K 26.6 vs 26.2 us; NOTES round 10.) */
    constexpr int BN32 = BN > 32 ? 32 : BN;
    const int bn = sb && w->type == REALM_TYPE_Q6_K ? BN32 : BN;
    /* K steps: super-blocks (sb) or MMQ_KG groups */
    const int64_t G = w->ne0 / 32, nkt = sb ? w->ne0 / 256 : (G + MMQ_KG - 1) / MMQ_KG;
    const uint32_t row_tiles = (uint32_t)((op->n + bn - 1) / bn);
    /* each matrix's splits as it would have alone, its partials after the
     * previous ones' */
    mmq_set set = {};
    uint32_t blocks = 0;
    int64_t ne_all = 0;
    size_t part_used = 0;
    for (int i = 0; i < n_set; i++) {
        const struct cuda_op *o = &ops[i];
        const int64_t tiles = (o->w.ne1 + MMQ_BM - 1) / MMQ_BM, elems = (int64_t)op->n * o->w.ne1;
        set.w[i] = (const uint8_t *)o->w.data;
        set.bias[i] = (const float *)o->bias.data;
        set.out[i] = (float *)o->out;
        set.ne1[i] = o->w.ne1;
        set.splits[i] = mmq_splits(c, row_tiles * tiles, nkt, elems, &set.kt_per[i]);
        if (set.splits[i] > 1) {
            set.part[i] = c->mmq_part + part_used / sizeof(float);
            part_used += (size_t)set.splits[i] * elems * sizeof(float);
            if (part_used > c->mmq_part_bytes) return false; /* a set: the caller goes one by one */
        }
        set.row0[i] = ne_all;
        ne_all += o->w.ne1;
        set.per_split[i] = row_tiles * (uint32_t)tiles;
        set.ps_inv[i] = div_inv(set.per_split[i]);
        blocks += set.per_split[i] * (uint32_t)set.splits[i];
        set.blk_end[i] = blocks;
    }
    set.rt_inv = div_inv(row_tiles);
    for (int i = n_set; i < MMQ_SET; i++) { /* never picked: past every block and column */
        set.row0[i] = INT64_MAX;
        set.blk_end[i] = blocks;
    }
    const uint8_t *wd = (const uint8_t *)w->data;
    size_t rb = realm_type_row_size(w->type, w->ne0);
    if (sb) {
#define S(T, B) launch_sb<T, B>(c, set, n_set, rb, w->ne0, row_tiles, aq, ad, as, op->n, resid)
        switch (w->type) {
        case REALM_TYPE_Q4_K: S(REALM_TYPE_Q4_K, BN); break;
        case REALM_TYPE_Q5_K: S(REALM_TYPE_Q5_K, BN); break;
        case REALM_TYPE_Q6_K: S(REALM_TYPE_Q6_K, BN32); break;
        default: S(REALM_TYPE_Q8_0, BN); break;
        }
#undef S
    } else {
        dim3 grid(row_tiles, (unsigned)((w->ne1 + MMQ_BM - 1) / MMQ_BM), (unsigned)set.splits[0]);
#define M(T)                                                                                       \
    k_mmq<T, BN><<<grid, MMQ_THREADS, 0, c->stream>>>(wd, rb, w->ne0, w->ne1, aq, ad, as, op->n,   \
                                                      set.kt_per[0], set.bias[0], set.out[0],      \
                                                      resid, set.part[0])
        switch (w->type) {
        case REALM_TYPE_Q4_0: M(REALM_TYPE_Q4_0); break;
        case REALM_TYPE_Q4_1: M(REALM_TYPE_Q4_1); break;
        case REALM_TYPE_Q5_0: M(REALM_TYPE_Q5_0); break;
        case REALM_TYPE_Q5_1: M(REALM_TYPE_Q5_1); break;
        case REALM_TYPE_Q8_0: M(REALM_TYPE_Q8_0); break;
        case REALM_TYPE_Q2_K: M(REALM_TYPE_Q2_K); break;
        case REALM_TYPE_Q3_K: M(REALM_TYPE_Q3_K); break;
        case REALM_TYPE_Q4_K: M(REALM_TYPE_Q4_K); break;
        case REALM_TYPE_Q5_K: M(REALM_TYPE_Q5_K); break;
        case REALM_TYPE_Q6_K: M(REALM_TYPE_Q6_K); break;
        case REALM_TYPE_IQ4_NL: M(REALM_TYPE_IQ4_NL); break;
        case REALM_TYPE_IQ4_XS: M(REALM_TYPE_IQ4_XS); break;
        default: return false;
        }
#undef M
    }
    CUDA_CHECK(c, cudaGetLastError());
    if (part_used) {
        dim3 rg((unsigned)((ne_all + 255) / 256), (unsigned)op->n);
        k_mmq_reduce<<<rg, 256, 0, c->stream>>>(set, op->n, ne_all, resid);
        CUDA_CHECK(c, cudaGetLastError());
    }
    return true;
}

bool realm__cuda_mmq(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                     const float *ad, const float *as, float *resid)
{
    const int32_t n = ops[0].n;
    if (n <= 8) return launch_mmq<8>(c, ops, n_set, aq, ad, as, resid);
    if (n <= 16) return launch_mmq<16>(c, ops, n_set, aq, ad, as, resid);
    if (n <= 32) return launch_mmq<32>(c, ops, n_set, aq, ad, as, resid);
    return launch_mmq<64>(c, ops, n_set, aq, ad, as, resid);
}
