/*
 * backend/cuda/cuda_mmq_sb.cu — the int8 tile kernel's super-block path,
 * k_mmq_sb (Q4_K, Q5_K, Q6_K, Q8_0), which cuda_mmq.cu's realm__cuda_mmq
 * picks where realm__cuda_mmq_sb takes the weight.
 *
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
#include "backend/cuda/cuda_mmq.cuh"

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

/* launch_sb at bn activation rows a tile (Q6_K: at most 32, see launch_mmq) */
template <int T>
static void launch_sb_bn(cuda_ctx *c, int bn, const mmq_set &set, int n_set, size_t rb, int64_t ne0,
                         uint32_t row_tiles, const int8_t *aq, const float *ad, const float *as,
                         int32_t n, float *resid)
{
#define S(B) launch_sb<T, B>(c, set, n_set, rb, ne0, row_tiles, aq, ad, as, n, resid)
    if (bn == 8)
        S(8);
    else if (bn == 16)
        S(16);
    else if constexpr (T == REALM_TYPE_Q6_K)
        S(32);
    else if (bn == 32)
        S(32);
    else
        S(64);
#undef S
}

void realm__cuda_mmq_sb_launch(cuda_ctx *c, realm_type type, int bn, const mmq_set &set, int n_set,
                               size_t rb, int64_t ne0, uint32_t row_tiles, const int8_t *aq,
                               const float *ad, const float *as, int32_t n, float *resid)
{
    switch (type) {
    case REALM_TYPE_Q4_K:
        launch_sb_bn<REALM_TYPE_Q4_K>(c, bn, set, n_set, rb, ne0, row_tiles, aq, ad, as, n, resid);
        break;
    case REALM_TYPE_Q5_K:
        launch_sb_bn<REALM_TYPE_Q5_K>(c, bn, set, n_set, rb, ne0, row_tiles, aq, ad, as, n, resid);
        break;
    case REALM_TYPE_Q6_K:
        launch_sb_bn<REALM_TYPE_Q6_K>(c, bn, set, n_set, rb, ne0, row_tiles, aq, ad, as, n, resid);
        break;
    default:
        launch_sb_bn<REALM_TYPE_Q8_0>(c, bn, set, n_set, rb, ne0, row_tiles, aq, ad, as, n, resid);
        break;
    }
}
