/*
 * bench/cuda/dataflow.cu — what the small ops between a decode layer's
 * mat-vecs cost, and which structure pays least for them: kernels chained
 * by programmatic dependent launch (PDL, as the decode step runs now), one
 * persistent kernel whose ops wait on flags (a dataflow decode kernel's
 * skeleton), or the small op done again by every block of the mat-vec after
 * it. Weight traffic is shaped like the Llama-3-8B layer (q/k/v 14 MB, o
 * 9.4, gate/up 66, down 33; at --scale 0.27 about the 1B's).
 *
 * A stream op streams its tiles (16 KB of weight bytes, one bulk copy each)
 * through a ring of shared-memory stages, as k_mmv_ring does: a producer
 * lane copies, eight consumer warps each dot a 2 KB row of the tile with
 * activation codes held in registers (dp4a) and write one float a row. A
 * small op reads up to 4096 of the floats before it, reduces them (a sum of
 * squares) and writes 4 KB of codes for the next stream op: an
 * rmsnorm + quantize, two dependent round trips. A layer: stream, small,
 * four times. Variants (each at ring depths of 32..192 KB):
 *
 *   pdl      a kernel an op in a CUDA graph, launched with PDL: a stream
 *            kernel copies its first `early` tiles before griddepcontrol.wait
 *   pdl+l    (local) no small kernels: every block of a stream kernel does
 *            the small op ahead of it itself, after its wait
 *   ticket   one persistent kernel a chain, a block an SM: each block's
 *            producer runs ahead across ops (weights are constant) as far as
 *            its stages allow; the last block to finish a stream op (an
 *            acq_rel ticket) does the small op and releases a flag that the
 *            next stream op's consumers poll
 *   local    the persistent kernel with a counter a stream op (red.release)
 *            that every block polls, then does the small op itself
 *   stream   the persistent kernel with no small ops and no waits: the
 *            streaming alone, against the bytes at the copy bandwidth
 *
 * ticket and local print where the time goes at each small op (globaltimer
 * at the blocks' thread 0, 256 ns steps): the spread of the blocks' ends of
 * the stream op, the ticket's round trip, the small op, when the median
 * and last blocks see their flag, and their activations' load (local: the
 * small op). Every variant must print the same checksum (the same floats).
 * Times are medians of 15 chains. Built as realm_cuda_dataflow where the
 * CUDA backend is; on the GPU machine alone:
 *     nvcc -arch=sm_90 -O3 -std=c++17 -o /tmp/dataflow bench/cuda/dataflow.cu
 *     /tmp/dataflow; /tmp/dataflow --scale 0.27 --layers 16
 * Results: bench/cuda/NOTES.md round 24.
 */
#include <algorithm>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define TILE      16384
#define CONSUMERS 8 /* warps */
#define THREADS   ((CONSUMERS + 1) * 32)
#define MAX_OPS   256
#define ACT_WORDS 1024 /* 4 KB of int8 codes */
#define MAX_STAGE 13
#define ROW       (TILE / CONSUMERS) /* a warp's row of a tile */
#define SMALL_IN  4096               /* floats a small op reads */

#define CK(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct chain {
    int n_ops;
    int small[MAX_OPS];     /* 1: a small op (after a stream op) */
    int64_t tile0[MAX_OPS]; /* a stream op's first tile in the weights */
    int n_tiles[MAX_OPS];   /* a stream op's tiles; a small op's input floats */
    const uint8_t *w;       /* weights */
    float *out;             /* a float a row (CONSUMERS a tile) of every stream op */
    int *act;               /* ACT_WORDS words of codes an op (a small op's output) */
    unsigned *done, *ready; /* a stream op's finished blocks; a small op's epoch */
    unsigned long long *tl; /* flags: TL_N times (ns) an op a block, see TL_* */
};

/* the flags kernel's timeline, by the block's thread 0 (globaltimer, ns) */
enum { TL_DONE, TL_TICKET, TL_SMALL_END, TL_SEEN, TL_ACT, TL_N };

__device__ __forceinline__ unsigned long long now_ns(void)
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ uint32_t sa(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void mbar_init(uint64_t *b, uint32_t n)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(sa(b)), "r"(n) : "memory");
}

__device__ __forceinline__ void mbar_wait(uint64_t *b, uint32_t parity)
{
    uint32_t ok;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(ok)
                     : "r"(sa(b)), "r"(parity)
                     : "memory");
    } while (!ok);
}

__device__ __forceinline__ void mbar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(sa(b)) : "memory");
}

__device__ __forceinline__ void copy_tile(void *dst, const void *src, uint64_t *b)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sa(b)), "r"(TILE)
                 : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], "
                 "%2, [%3];" ::"r"(sa(dst)),
                 "l"(src), "r"(TILE), "r"(sa(b))
                 : "memory");
}

__device__ __forceinline__ void consumers_sync(void)
{
    asm volatile("bar.sync 1, %0;" ::"n"(CONSUMERS * 32) : "memory");
}

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

/* a consumer lane's 16 activation words (64 bytes of each row) */
__device__ __forceinline__ void load_act(const int *act, int lane, int (&a)[16])
{
#pragma unroll
    for (int j = 0; j < 16; j++)
        a[j] = __ldca(act + 16 * lane + j);
}

/* a warp's row of the tile (ROW bytes): Σ codes · weight bytes into *o */
__device__ __forceinline__ void dot_row(const uint8_t *row, int lane, const int (&a)[16], float *o)
{
    const int4 *p = (const int4 *)row + 4 * lane;
    int acc = 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int4 v = p[j];
        acc = __dp4a(v.x, a[4 * j], acc);
        acc = __dp4a(v.y, a[4 * j + 1], acc);
        acc = __dp4a(v.z, a[4 * j + 2], acc);
        acc = __dp4a(v.w, a[4 * j + 3], acc);
    }
    float f = (float)acc;
    for (int s = 16; s > 0; s >>= 1)
        f += __shfl_xor_sync(0xffffffffu, f, s);
    if (lane == 0) *o = f;
}

/* the small op's pieces, shared by small_op and small_local: a thread's
 * sum of squares to red[its warp] (after the warp's shuffles), the scale
 * from the warps' sums (after a barrier), and one word of four codes */
template <int E>
__device__ __forceinline__ void warp_sumsq(const float (&v)[E], int tid, float *red)
{
    float ss = 0;
#pragma unroll
    for (int j = 0; j < E; j++)
        ss += v[j] * v[j];
    for (int s = 16; s > 0; s >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, s);
    if (tid % 32 == 0) red[tid / 32] = ss;
}

__device__ __forceinline__ float codes_scale(const float *red, int n)
{
    float t = 0;
    for (int w = 0; w < CONSUMERS; w++)
        t += red[w];
    return rsqrtf(t / n + 1e-6f) * 16.0f;
}

__device__ __forceinline__ int code_word(float f0, float f1, float f2, float f3, float r)
{
    const float f[4] = {f0, f1, f2, f3};
    uint32_t word = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int q = __float2int_rn(f[k] * r);
        q = q > 127 ? 127 : q < -127 ? -127 : q;
        word |= ((uint32_t)q & 0xffu) << (8 * k);
    }
    return (int)word;
}

/* the small op: the first n <= SMALL_IN floats of in -> ACT_WORDS words of
 * codes in act (CONSUMERS·32 threads, each phase's loads issued at once;
 * red: CONSUMERS floats) */
__device__ __forceinline__ void small_op(const float *in, int n, int *act, int tid, float *red)
{
    constexpr int E = SMALL_IN / (CONSUMERS * 32), W = ACT_WORDS / (CONSUMERS * 32);
    float v[E];
#pragma unroll
    for (int j = 0; j < E; j++) {
        const int i = tid + j * CONSUMERS * 32;
        v[j] = i < n ? __ldcg(in + i) : 0.0f;
    }
    warp_sumsq(v, tid, red);
    float f[W][4];
#pragma unroll
    for (int j = 0; j < W; j++)
#pragma unroll
        for (int k = 0; k < 4; k++)
            f[j][k] = __ldcg(in + (4 * (tid + j * CONSUMERS * 32) + k) % n);
    consumers_sync();
    const float r = codes_scale(red, n);
#pragma unroll
    for (int j = 0; j < W; j++)
        act[tid + j * CONSUMERS * 32] = code_word(f[j][0], f[j][1], f[j][2], f[j][3], r);
    consumers_sync(); /* red reused */
}

/* small_op done by every block for itself ("local"): the same codes, this
 * consumer lane's 16 words into a (sh: SMALL_IN floats, then ACT_WORDS
 * words; each shared-memory phase free of bank conflicts but the last's
 * 4-way int4 reads) */
__device__ __forceinline__ void small_local(const float *in, int n, float *sh, float *red, int tid,
                                            int (&a)[16])
{
    constexpr int E = SMALL_IN / (CONSUMERS * 32), W = ACT_WORDS / (CONSUMERS * 32);
    float v[E];
#pragma unroll
    for (int j = 0; j < E; j++) {
        const int i = tid + j * CONSUMERS * 32;
        v[j] = i < n ? __ldca(in + i) : 0.0f;
        sh[i] = v[j];
    }
    warp_sumsq(v, tid, red);
    consumers_sync();
    const float r = codes_scale(red, n);
    int *codes = (int *)(sh + SMALL_IN);
#pragma unroll
    for (int j = 0; j < W; j++) {
        const int i = tid + j * CONSUMERS * 32;
        codes[i] = code_word(sh[(4 * i) % n], sh[(4 * i + 1) % n], sh[(4 * i + 2) % n],
                             sh[(4 * i + 3) % n], r);
    }
    consumers_sync();
    const int4 *c4 = (const int4 *)codes + 4 * (tid % 32);
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int4 x = c4[j];
        a[4 * j] = x.x, a[4 * j + 1] = x.y, a[4 * j + 2] = x.z, a[4 * j + 3] = x.w;
    }
    consumers_sync(); /* red, sh reused */
}

/* ---- pdl: a kernel an op ---- */

template <bool LOCAL>
__global__ static void __launch_bounds__(THREADS) k_stream(chain c, int op, int stages, int early)
{
    __shared__ __align__(16) float sh[LOCAL ? SMALL_IN + ACT_WORDS : 1], red[CONSUMERS];
    extern __shared__ __align__(128) uint8_t ring[];
    __shared__ uint64_t full[MAX_STAGE], empty[MAX_STAGE];
    asm volatile("griddepcontrol.launch_dependents;");
    const int tid = threadIdx.x;
    if (tid == 0) {
        for (int s = 0; s < stages; s++)
            mbar_init(&full[s], 1), mbar_init(&empty[s], CONSUMERS * 32);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    const int n = c.n_tiles[op];
    const uint8_t *w = c.w + c.tile0[op] * TILE;
    if (tid / 32 == CONSUMERS) {
        if (tid % 32) return;
        int k = 0;
        for (int t = blockIdx.x; t < n; t += gridDim.x, k++) {
            const int s = k % stages;
            if (k == early) asm volatile("griddepcontrol.wait;" ::: "memory");
            if (k >= stages) mbar_wait(&empty[s], (k / stages - 1) & 1);
            copy_tile(ring + (size_t)s * TILE, w + (size_t)t * TILE, &full[s]);
        }
        return;
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");
    const int warp = tid / 32, lane = tid % 32;
    int a[16];
    if (LOCAL && op > 0)
        small_local(c.out + c.tile0[op - 2] * CONSUMERS, c.n_tiles[op - 1], sh, red, tid, a);
    else
        load_act(c.act + (size_t)(op ? op - 1 : 0) * ACT_WORDS, lane, a);
    int k = 0;
    for (int t = blockIdx.x; t < n; t += gridDim.x, k++) {
        const int s = k % stages;
        mbar_wait(&full[s], (k / stages) & 1);
        dot_row(ring + (size_t)s * TILE + warp * ROW, lane, a,
                c.out + (c.tile0[op] + t) * CONSUMERS + warp);
        mbar_arrive(&empty[s]);
    }
}

__global__ static void __launch_bounds__(CONSUMERS * 32) k_small(chain c, int op)
{
    __shared__ float red[CONSUMERS];
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    small_op(c.out + c.tile0[op - 1] * CONSUMERS, c.n_tiles[op], c.act + (size_t)op * ACT_WORDS,
             threadIdx.x, red);
}

/* ---- flags: one persistent kernel a chain ---- */

enum { STREAM, TICKET, LOCAL };

template <int MODE>
__global__ static void __launch_bounds__(THREADS, 1) k_flags(chain c, int stages, unsigned epoch)
{
    constexpr bool WAIT = MODE != STREAM;
    __shared__ __align__(16) float sh[MODE == LOCAL ? SMALL_IN + ACT_WORDS : 1];
    extern __shared__ __align__(128) uint8_t ring[];
    __shared__ uint64_t full[MAX_STAGE], empty[MAX_STAGE];
    __shared__ float red[CONSUMERS];
    __shared__ bool last;
    const int tid = threadIdx.x, G = gridDim.x;
    if (tid == 0) {
        for (int s = 0; s < stages; s++)
            mbar_init(&full[s], 1), mbar_init(&empty[s], CONSUMERS * 32);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (tid / 32 ==
        CONSUMERS) { /* the producer: every stream op's tiles, no waits but the ring's */
        if (tid % 32) return;
        int k = 0;
        for (int op = 0; op < c.n_ops; op++) {
            if (c.small[op]) continue;
            const uint8_t *w = c.w + c.tile0[op] * TILE;
            for (int t = blockIdx.x; t < c.n_tiles[op]; t += G, k++) {
                const int s = k % stages;
                if (k >= stages) mbar_wait(&empty[s], (k / stages - 1) & 1);
                copy_tile(ring + (size_t)s * TILE, w + (size_t)t * TILE, &full[s]);
            }
        }
        return;
    }
    int k = 0;
    unsigned long long *tl = c.tl + (size_t)blockIdx.x * TL_N;
    const size_t tl_op = (size_t)G * TL_N; /* an op's stride */
    for (int op = 0; op < c.n_ops; op++, tl += tl_op) {
        if (c.small[op]) {
            if (MODE == TICKET && last) { /* this block finished the stream op ahead last */
                small_op(c.out + c.tile0[op - 1] * CONSUMERS, c.n_tiles[op],
                         c.act + (size_t)op * ACT_WORDS, tid, red);
                if (tid == 0) {
                    __threadfence();
                    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(c.ready + op),
                                 "r"(epoch)
                                 : "memory");
                    tl[TL_SMALL_END] = now_ns();
                }
            }
            continue;
        }
        if (WAIT && op > 0) { /* the small op ahead's codes; LOCAL: its input */
            if (tid == 0) {
                if (MODE == TICKET)
                    while (ld_acquire(c.ready + op - 1) < epoch)
                        ;
                else
                    while (ld_acquire(c.done + op - 2) < epoch * (unsigned)G)
                        ;
                tl[TL_SEEN] = now_ns();
            }
            consumers_sync();
        }
        int a[16];
        if (MODE == LOCAL && op > 0)
            small_local(c.out + c.tile0[op - 2] * CONSUMERS, c.n_tiles[op - 1], sh, red, tid, a);
        else
            load_act(c.act + (size_t)(op ? op - 1 : 0) * ACT_WORDS, tid % 32, a);
        if (WAIT && tid == 0) {
            asm volatile("" ::"r"(a[0]), "r"(a[15]));
            tl[TL_ACT] = now_ns();
        }
        for (int t = blockIdx.x; t < c.n_tiles[op]; t += G, k++) {
            const int s = k % stages;
            mbar_wait(&full[s], (k / stages) & 1);
            dot_row(ring + (size_t)s * TILE + (tid / 32) * ROW, tid % 32, a,
                    c.out + (c.tile0[op] + t) * CONSUMERS + tid / 32);
            mbar_arrive(&empty[s]);
        }
        if (WAIT) { /* publish this block's floats; the last block takes the small op */
            consumers_sync();
            if (tid == 0) {
                tl[TL_DONE] = now_ns();
                if (MODE == TICKET) {
                    unsigned old;
                    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;"
                                 : "=r"(old)
                                 : "l"(c.done + op)
                                 : "memory");
                    last = old == epoch * (unsigned)G - 1;
                } else {
                    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(c.done + op)
                                 : "memory");
                }
                tl[TL_TICKET] = now_ns();
            }
            if (MODE == TICKET) consumers_sync();
        }
    }
}

static float median(std::vector<float> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv)
{
    double scale = 1.0;
    int layers = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--scale")) scale = atof(argv[i + 1]);
        if (!strcmp(argv[i], "--layers")) layers = atoi(argv[i + 1]);
    }
    /* the 8B layer's four weight streams, MB: q/k/v, o, gate/up, down */
    const double mb[4] = {14.16, 9.44, 66.06, 33.03};
    chain c = {};
    int64_t tiles = 0;
    for (int l = 0; l < layers; l++)
        for (int j = 0; j < 4; j++) {
            const int n = (int)(mb[j] * scale * 1e6 / TILE);
            c.small[c.n_ops] = 0, c.tile0[c.n_ops] = tiles, c.n_tiles[c.n_ops] = n;
            tiles += n, c.n_ops++;
            c.small[c.n_ops] = 1, c.n_tiles[c.n_ops] = std::min(n * CONSUMERS, SMALL_IN);
            c.n_ops++;
        }
    const double bytes = (double)tiles * TILE;
    int n_sm;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    uint8_t *w;
    CK(cudaMalloc(&w, (size_t)bytes));
    CK(cudaMemset(w, 1, (size_t)bytes));
    c.w = w;
    CK(cudaMalloc(&c.out, tiles * CONSUMERS * sizeof(float)));
    CK(cudaMalloc(&c.act, (size_t)c.n_ops * ACT_WORDS * sizeof(int)));
    CK(cudaMemset(c.act, 1, (size_t)c.n_ops * ACT_WORDS * sizeof(int)));
    CK(cudaMalloc(&c.done, 2 * MAX_OPS * sizeof(unsigned)));
    CK(cudaMemset(c.done, 0, 2 * MAX_OPS * sizeof(unsigned)));
    c.ready = c.done + MAX_OPS;
    const size_t tl_n = (size_t)c.n_ops * n_sm * TL_N;
    CK(cudaMalloc(&c.tl, tl_n * sizeof(unsigned long long)));
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    /* copy bandwidth: read + write of half the weights */
    {
        std::vector<float> v;
        for (int r = 0; r < 5; r++) {
            CK(cudaEventRecord(e0, st));
            CK(cudaMemcpyAsync(w + (size_t)bytes / 2, w, (size_t)bytes / 2,
                               cudaMemcpyDeviceToDevice, st));
            CK(cudaEventRecord(e1, st));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            v.push_back(ms);
        }
        CK(cudaMemset(w, 1, (size_t)bytes));
        const double bw = bytes / (median(v) * 1e-3);
        printf("scale %.2f, %d layers, %.1f MB a layer, copy bandwidth %.0f GB/s: "
               "%.2f us a layer of bytes\n",
               scale, layers, bytes / layers / 1e6, bw / 1e9, bytes / layers / bw * 1e6);
    }
    auto checksum = [&]() {
        std::vector<float> h(tiles * CONSUMERS);
        CK(cudaMemcpy(h.data(), c.out, h.size() * sizeof(float), cudaMemcpyDeviceToHost));
        double s = 0;
        for (float f : h)
            s += f;
        CK(cudaMemset(c.out, 0, tiles * CONSUMERS * sizeof(float)));
        return s;
    };
    auto report = [&](const char *name, std::vector<float> &v) {
        printf("%-34s %8.2f us a layer  (checksum %.6g)\n", name, median(v) * 1e3 / layers,
               checksum());
    };

    /* where a flags chain's time goes at each small op (the last run):
     * medians over the layers, µs */
    auto timeline = [&]() {
        std::vector<unsigned long long> h(tl_n);
        CK(cudaMemcpy(h.data(), c.tl, tl_n * sizeof h[0], cudaMemcpyDeviceToHost));
        auto at = [&](int op, int b, int k) {
            return (double)h[((size_t)op * n_sm + b) * TL_N + k];
        };
        const char *names[4] = {"qkv", "o", "gate/up", "down"};
        printf("    after     spread  ticket  small  seen(med/max)  act  [us]\n");
        for (int j = 0; j < 4; j++) {
            std::vector<float> col[6];
            for (int op = 2 * j; op + 2 < c.n_ops; op += 8) {
                std::vector<double> done, seen, act;
                int owner = -1;
                for (int b = 0; b < n_sm; b++) {
                    done.push_back(at(op, b, TL_DONE));
                    seen.push_back(at(op + 2, b, TL_SEEN));
                    act.push_back(at(op + 2, b, TL_ACT));
                    if (at(op + 1, b, TL_SMALL_END) != 0) owner = b;
                }
                std::sort(done.begin(), done.end());
                std::sort(seen.begin(), seen.end());
                std::sort(act.begin(), act.end());
                const double fmax = done.back(), fmed = done[n_sm / 2];
                /* no owner (local): the small op is in "act" */
                const double tk = owner < 0 ? fmax : at(op, owner, TL_TICKET),
                             se = owner < 0 ? fmax : at(op + 1, owner, TL_SMALL_END);
                col[0].push_back((float)(fmax - fmed));
                col[1].push_back((float)(tk - fmax));
                col[2].push_back((float)(se - tk));
                col[3].push_back((float)(seen[n_sm / 2] - se));
                col[4].push_back((float)(seen.back() - se));
                col[5].push_back((float)(act[n_sm / 2] - seen[n_sm / 2]));
            }
            if (col[0].empty()) continue;
            printf("    %-8s %6.2f  %6.2f  %5.2f  %5.2f/%5.2f    %5.2f\n", names[j],
                   median(col[0]) / 1e3, median(col[1]) / 1e3, median(col[2]) / 1e3,
                   median(col[3]) / 1e3, median(col[4]) / 1e3, median(col[5]) / 1e3);
        }
    };

    unsigned epoch = 0; /* chains with flags run so far */
    for (int kb : {32, 48, 64, 96, 128, 192}) {
        const int stages = std::min(MAX_STAGE, kb * 1024 / TILE);
        const size_t shm = (size_t)stages * TILE;
        if (kb == 32 || kb == 64 || kb == 128 || kb == 192) {
            /* pdl: graph of a kernel an op, early = 1 tile and all stages */
            CK(cudaFuncSetAttribute(k_stream<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)shm));
            CK(cudaFuncSetAttribute(k_stream<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)shm));
            for (int variant = 0; variant < 3; variant++) {
                const bool local = variant == 2;
                const int early = variant == 1 ? stages : 1;
                int per_sm;
                CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                    &per_sm, local ? k_stream<true> : k_stream<false>, THREADS, shm));
                cudaLaunchAttribute at = {};
                at.id = cudaLaunchAttributeProgrammaticStreamSerialization;
                at.val.programmaticStreamSerializationAllowed = 1;
                cudaGraph_t gr;
                cudaGraphExec_t ge;
                CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
                for (int op = 0; op < c.n_ops; op++) {
                    cudaLaunchConfig_t cfg = {};
                    cfg.stream = st;
                    cfg.attrs = &at;
                    cfg.numAttrs = 1;
                    if (c.small[op]) {
                        if (local) continue;
                        cfg.gridDim = dim3(1), cfg.blockDim = dim3(CONSUMERS * 32);
                        CK(cudaLaunchKernelEx(&cfg, k_small, c, op));
                    } else {
                        cfg.gridDim = dim3(std::min(n_sm * per_sm, c.n_tiles[op]));
                        cfg.blockDim = dim3(THREADS), cfg.dynamicSmemBytes = shm;
                        CK(cudaLaunchKernelEx(&cfg, local ? k_stream<true> : k_stream<false>, c, op,
                                              stages, early));
                    }
                }
                CK(cudaStreamEndCapture(st, &gr));
                CK(cudaGraphInstantiate(&ge, gr, 0));
                std::vector<float> v;
                for (int r = 0; r < 16; r++) {
                    CK(cudaEventRecord(e0, st));
                    CK(cudaGraphLaunch(ge, st));
                    CK(cudaEventRecord(e1, st));
                    CK(cudaEventSynchronize(e1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, e0, e1));
                    if (r) v.push_back(ms);
                }
                char name[80];
                snprintf(name, sizeof name, "pdl%s %3d KB x%d/SM early %2d", local ? "+l" : "  ",
                         kb, per_sm, early);
                report(name, v);
                CK(cudaGraphExecDestroy(ge));
                CK(cudaGraphDestroy(gr));
            }
        }
        /* flags (and the stream alone): one block an SM, all resident */
        for (int mode : {TICKET, LOCAL, STREAM}) {
            const unsigned wait = mode != STREAM;
            auto k = mode == TICKET  ? k_flags<TICKET>
                     : mode == LOCAL ? k_flags<LOCAL>
                                     : k_flags<STREAM>;
            CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm));
            std::vector<float> v;
            for (int r = 0; r < 17; r++) {
                epoch += wait;
                if (r == 16) CK(cudaMemset(c.tl, 0, tl_n * sizeof(unsigned long long)));
                CK(cudaEventRecord(e0, st));
                k<<<n_sm, THREADS, shm, st>>>(c, stages, epoch);
                CK(cudaEventRecord(e1, st));
                CK(cudaEventSynchronize(e1));
                CK(cudaGetLastError());
                float ms;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                if (r && r < 16) v.push_back(ms);
            }
            char name[80];
            snprintf(name, sizeof name, "%s %3d KB x1/SM (%d stages)",
                     mode == TICKET  ? "ticket"
                     : mode == LOCAL ? "local "
                                     : "stream",
                     kb, stages);
            report(name, v);
            if (wait) timeline();
        }
    }
    CK(cudaDeviceSynchronize());
    return 0;
}
