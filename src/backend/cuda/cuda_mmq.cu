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
 * super-block; cuda_mmq_sb.cu), which realm__cuda_mmq_sb picks and
 * cuda_matmul.cu routes by row count. One k_mmq_sb launch can
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
#include "backend/cuda/cuda_mmq.cuh"

/* Shared memory of one block (41 KB at BN = 64: under the 48 KB static limit). */
template <int BN> struct mmq_smem {
    int8_t w[MMQ_BM * MMQ_LD];   /* weight codes, (MMQ_BM, MMQ_KG·32) */
    int8_t a[BN * MMQ_LD];       /* activation codes, (BN, MMQ_KG·32) */
    float wf[5][MMQ_KG][MMQ_BM]; /* fa0, fa1, fm0, fm1, fs of each group (grp's fields) */
    float ad[MMQ_KG][BN];        /* activation scale of each group */
    float as[MMQ_KG][BN];        /* Q8_1: d·Σq of each group */
    int asum[2][MMQ_KG][BN];     /* Σ codes of each 16-element half */
};

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
        realm__cuda_mmq_sb_launch(c, w->type, bn, set, n_set, rb, w->ne0, row_tiles, aq, ad, as,
                                  op->n, resid);
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
