/*
 * backend/cuda/cuda_impl.h — state shared by the CUDA backend's files.
 *
 * Ops are recorded as `cuda_op` values (arguments by value; host index arrays
 * copied into the pinned staging area at a per-pass offset) and issued on the
 * stream in segments (a pass's first ops once early_ops are recorded, the
 * rest at flush): directly, or captured once into a CUDA graph that later
 * segments with byte-equal records replay (cuda_pass.cu). The issue
 * functions (cuda_ops.cu, cuda_matmul.cu, cuda_attention.cu, ...) only
 * enqueue kernels; they record the first CUDA error in the context and
 * never synchronize.
 */
#ifndef REALM_BACKEND_CUDA_CUDA_IMPL_H
#define REALM_BACKEND_CUDA_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* base/status.h is C: its _Noreturn is spelled the C++ way here. */
#define _Noreturn [[noreturn]]
extern "C" {
#include "backend/backend.h"
#include "backend/cuda/cuda.h"
}

enum cuda_op_kind {
    CUDA_OP_GET_ROWS,
    CUDA_OP_COPY_ROWS,
    CUDA_OP_RMSNORM,
    CUDA_OP_MATMUL,
    CUDA_OP_ROPE,
    CUDA_OP_KV_STORE,
    CUDA_OP_ATTENTION,
    CUDA_OP_SWIGLU,
    CUDA_OP_ADD,
    CUDA_OP_DOWNLOAD, /* x (device) -> out (page-locked host), width bytes */
    CUDA_OP_ARGMAX,   /* out (int32) = each of n rows of x (width floats): its arg-max */
};

/* The batch as the device sees it: offsets (bytes) into the device copy of
 * the staging area. Block tables are rows of max_blocks ids. */
struct cuda_batch {
    int32_t n_rows, n_seqs, max_blocks;
    uint32_t pos_off, seq_off, table_off;
    /* prefill attention (realm__cuda_att_tiles): row tiles (0: not tiled)
     * and the rows left to the one-row kernel, both tables at tile_off */
    int32_t n_tiles, n_single;
    uint32_t tile_off;
    uint32_t early_off; /* decode attention: realm__cuda_att_early's flags */
};

/* One recorded op. Zero-initialised before filling so records compare with
 * memcmp (padding included). */
struct cuda_op {
    int32_t kind;
    int32_t n, i0, i1, i2; /* rows; op-specific ints */
    int64_t width;
    float f0;
    realm_weight w, bias;
    realm_kv_pool kv;
    realm_attn_params ap;
    struct cuda_batch batch;
    uint32_t idx_off; /* staging offset of token ids / row ids / positions */
    const void *x, *y;
    void *out;
};

/* rope(q) + rope(k) + kv_store(k, v) of one pass, resolved to device
 * pointers (realm__cuda_rope_kv_of): what k_rope_kv and the ring mat-vec's
 * fused epilogue take. q is nq heads of head_dim a row, k and v nk; pairs
 * below half turn (neox: i and i + half, else 2i and 2i + 1). */
struct cuda_rope_kv {
    float *q, *k;
    const float *v;
    int32_t nq, nk, head_dim, half, neox;
    int32_t kv_f16; /* kbase and vbase hold __half (else float); in the padding before inv_freq */
    const float *inv_freq;
    const int32_t *qpos, *kpos; /* q's and k's positions a row */
    void *kbase, *vbase;        /* the K/V pool */
    int32_t layer, n_blocks, block_size, max_blocks;
    const int32_t *pos, *seq, *tables; /* the batch: where each row's K/V goes */
};

/* The rmsnorm ahead of a ring set, for the set to do in every block
 * (realm__cuda_mmv_ring's norm): out = x · rms_inv · g over the set's input
 * width, at one row. */
struct cuda_norm_in {
    const float *x, *g;
    float *out;
    float eps;
};

struct cuda_graph_entry {
    cudaGraphExec_t exec;
    struct cuda_op *ops; /* the records the graph was captured from */
    int32_t n_ops;
    uint32_t staging_from, staging_bytes; /* the staging range it uploads */
    uint64_t last_use;
};

#define CUDA_GRAPH_CACHE     32
#define CUDA_HEAD_CHUNKS_MAX 16

/* profile slots: one per op kind, then one per weight type for matmuls */
#define CUDA_PROF_MATMUL 16
#define CUDA_PROF_SLOTS  (CUDA_PROF_MATMUL + REALM_TYPE_COUNT)

struct cuda_range {
    size_t off, size;
};

typedef struct cuda_ctx {
    realm_backend be;
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    void *cublas_ws;
    realm_status first_status; /* first asynchronous error, kept for synchronize */
    char first_error[200];

    /* the arena: one device allocation, first-fit ranges */
    char *arena;
    size_t arena_bytes;
    struct cuda_range *free_list;
    int n_free, cap_free;

    /* scratch sized by reserve */
    realm_backend_limits lim;
    void *act_q;   /* quantized activations: (max_rows, max_ne0) int8 + scales */
    size_t act_q_bytes;
    /* what act_q (for the f16/bf16 kinds: act_h) holds while issuing (x,
     * rows, width, kind), so the matmuls that share an input (q/k/v,
     * gate/up) quantize or convert it once; NULL: nothing */
    const void *aq_x;
    int32_t aq_n, aq_kind;
    int64_t aq_ne0;
    void *dq;      /* f16 weight tile for the cuBLAS path */
    size_t dq_bytes;
    void *act_h;   /* (max_rows, max_ne0) f16 activations for the cuBLAS path */
    float *att_part; /* split attention partials: (ATT_SPLIT_ROWS, ATT_SPLIT, ...) */
    size_t att_part_bytes;

    /* the recorded pass: ops[0..seg_start) and staging_h[0..staging_sent)
     * are launched already (a pass's first ops go to the GPU once
     * early_ops are recorded, $REALM_CUDA_EARLY_OPS (32, 0: off), so
     * the GPU works while the host records the rest); the segment after is
     * launched at flush */
    struct cuda_op *ops;
    int32_t n_ops, cap_ops, seg_start, early_ops;
    bool graph_ok;       /* every op of the segment small enough to be worth a graph */
    char *staging_h;     /* pinned host staging for index arrays */
    char *staging_d;     /* its device mirror */
    uint32_t staging_used, staging_sent, staging_cap;
    const realm_batch *last_batch; /* batch uploaded in this pass (reused by later ops) */
    const int32_t *last_batch_pos;
    struct cuda_batch last_cb;

    struct cuda_graph_entry graphs[CUDA_GRAPH_CACHE];
    uint64_t tick;
    int32_t graph_max_rows; /* passes with more rows run without a graph */
    int32_t mmv_max_rows;   /* matmuls with more rows take the cuBLAS path */
    bool mmv_plain;         /* $REALM_CUDA_MMV_PLAIN: the unstaged mat-vec (A/B) */
    bool mmv_set;           /* $REALM_CUDA_MMV_SET (default 1): matmuls on one input, one launch */
    bool mmv_mixed;         /* $REALM_CUDA_MMV_MIXED (1): a set may mix Q4_K/Q5_K with Q6_K */
    bool mms_fit;           /* $REALM_CUDA_MMS_FIT (default 1): long rows' slabs fit one wave */
    int32_t mms_cap;        /* $REALM_CUDA_MMS_CAP (4096): the staged mat-vec's largest slab, bytes */
    bool mmv_ring;          /* $REALM_CUDA_MMV_RING (1): k_mmv_ring where it applies */
    int32_t ring_kb;        /* $REALM_CUDA_RING_KB (20): shared memory of its stages, KB */
    bool ring_split;        /* $REALM_CUDA_RING_SPLIT (1): 8192/14336-wide rows too, split */
    bool qkv_rope;          /* $REALM_CUDA_QKV_ROPE (1): q/k/v sets do rope + kv_store */
    bool ring_norm;         /* $REALM_CUDA_RING_NORM (1): a ring set after an rmsnorm does it */
    int32_t ring_early_kb;  /* $REALM_CUDA_RING_EARLY_KB (10): what it copies before the wait
                             * (at least a tile; 0: nothing) */
    bool att_quant;         /* $REALM_CUDA_ATT_QUANT (1): decode attention quantizes for wo */
    bool no_fuse;           /* $REALM_CUDA_NO_FUSE: every op on its own (A/B) */
    bool pdl;               /* $REALM_CUDA_PDL (default 1): decode kernels start early (PDL) */
    int32_t att_split;      /* $REALM_CUDA_ATT_SPLIT: position splits at decode (1 = off) */
    int32_t att_tile_min;   /* $REALM_CUDA_ATT_TILE_MIN: fewest rows the prefill tiles take */
    int att_rows;           /* $REALM_CUDA_ATT_ROWS: k_attention_rows at head dims 64/128, loading
                             * K/V an iteration ahead (2, the default) or at their use (1); 0 off */
    int profile;            /* $REALM_CUDA_PROFILE: time ops one by one (2: every pass) */
    /* $REALM_CUDA_HOST_TIME=1: per graph-launched pass, host time recording
     * and launching against the graph's GPU time (printed when freed) */
    bool host_time;
    double ht_first_rec, ht_launch0, ht_last_exit, ht_rec, ht_launch, ht_wall, ht_gpu;
    long long ht_n;
    cudaEvent_t ht_ev[2];
    /* the LM head of >= head_min_rows rows ($REALM_CUDA_HEAD_ROWS, 8) in
     * head_chunks ($REALM_CUDA_HEAD_CHUNKS, 8; < 2: off) column chunks, each
     * chunk's download on copy_stream beside the next chunk's matmul */
    int32_t head_chunks, head_min_rows;
    cudaStream_t copy_stream;
    cudaEvent_t ev_fork[CUDA_HEAD_CHUNKS_MAX], ev_join;
    bool host_alloc;        /* $REALM_CUDA_HOST_ALLOC (1): host_alloc gives page-locked memory */
    /* L2 prefetch of the next matmul's weights: after a matmul of at most
     * l2pf_max_rows rows ($REALM_CUDA_L2PF_ROWS, 64), a kernel on copy_stream
     * asks L2 for the first l2pf_bytes ($REALM_CUDA_L2PF_KB, 4096; 0: off) of the
     * next matmul's (or matmul set's) weights while the small kernels between
     * the two run; joined back into the stream at the end of the issued ops */
    int64_t l2pf_bytes;
    int32_t l2pf_max_rows;
    bool l2pf_forked;
    cudaEvent_t ev_pf;
    /* the batched int8 tile kernel (cuda_mmq.cu), off with $REALM_CUDA_MMQ=0:
     * quantized matmuls of mmq_min_rows..mmq_max_rows rows take it instead of
     * the mat-vec chunks or cuBLAS */
    bool mmq;
    int32_t mmq_min_rows, mmq_max_rows; /* $REALM_CUDA_MMQ_MIN (9), $REALM_CUDA_MMQ_ROWS (64) */
    /* the super-block path: $REALM_CUDA_MMQ_SB_MIN (2), $REALM_CUDA_MMQ_SB_ROWS (96) */
    int32_t sb_min_rows, sb_max_rows;
    bool mmq_sb;            /* $REALM_CUDA_MMQ_SB (1): Q4_K/Q5_K/Q6_K/Q8_0 take the super-block path */
    int32_t n_sm;           /* multiprocessors of the device */
    int smem_optin;         /* shared memory one block may opt in to */
    float *mmq_part;        /* split-K partial sums, (splits, rows, ne1); NULL unless mmq */
    size_t mmq_part_bytes;
    double prof_ms[CUDA_PROF_SLOTS];
    double prof_bytes[CUDA_PROF_SLOTS]; /* weight bytes read (matmul slots) */
    long long prof_n[CUDA_PROF_SLOTS];
    realm_backend_cuda_counts counts;
} cuda_ctx;

static inline cuda_ctx *cuda__ctx(realm_backend *be)
{
    return (cuda_ctx *)be->ctx;
}

/* Keep the first error; later ones are consequences. */
void realm__cuda_fail(cuda_ctx *c, cudaError_t e, const char *what);

/* cuda_pass.cu: the segment recorded since the last launch onto the stream,
 * without waiting (a captured graph where it fits); everything recorded,
 * then wait for it; the $REALM_CUDA_PROFILE and $REALM_CUDA_HOST_TIME
 * reports (stderr); CLOCK_MONOTONIC in seconds. */
void realm__cuda_launch(cuda_ctx *c);
void realm__cuda_flush(cuda_ctx *c);
void realm__cuda_print_profile(const cuda_ctx *c);
void realm__cuda_print_host_time(const cuda_ctx *c);
double realm__cuda_now_s(void);
#define CUDA_CHECK(c, call)                                                                        \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) realm__cuda_fail((c), e_, #call);                                   \
    } while (0)

/* Launch k on c->stream with programmatic dependent launch when c->pdl (it
 * may then start while the kernel before it runs). The kernel must call
 * pdl_wait() (cuda_quant.cuh) before it reads or writes anything but
 * constant data (weights); small kernels call pdl_trigger() only after
 * pdl_wait(), so the chain never runs more than one kernel ahead (with the
 * trigger first, decode was 4% slower: NOTES round 7). */
template <typename... P, typename... A>
static inline void cuda__launch_pdl(cuda_ctx *c, void (*k)(P...), dim3 grid, dim3 block, size_t shm,
                                    A... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = shm;
    cfg.stream = c->stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = c->pdl ? 1 : 0;
    CUDA_CHECK(c, cudaLaunchKernelEx(&cfg, k, (P)args...));
}

/* act_q (or act_h) now holds x as n rows of ne0, quantized as `kind` */
static inline void cuda__remember_act(cuda_ctx *c, const void *x, int32_t n, int64_t ne0, int kind)
{
    c->aq_x = x;
    c->aq_n = n;
    c->aq_ne0 = ne0;
    c->aq_kind = kind;
}

static inline const void *cuda__staging(const cuda_ctx *c, uint32_t off)
{
    return c->staging_d + off;
}

/* issue functions: enqueue one recorded op on c->stream */
void realm__cuda_issue_get_rows(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_copy_rows(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_rmsnorm(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_rope(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_kv_store(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_swiglu(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_add(cuda_ctx *c, const struct cuda_op *op);
void realm__cuda_issue_argmax(cuda_ctx *c, const struct cuda_op *op);
bool realm__cuda_issue_l2_prefetch(cuda_ctx *c, const struct cuda_op *ops, int32_t n);
/* resid: also add the product into resid (a fused `add`); returns whether it
 * did (false: the caller issues the add) */
bool realm__cuda_issue_matmul(cuda_ctx *c, const struct cuda_op *op, float *resid);
/* ops[0], ops[1], ... (up to 3 of n_ops) that are matmuls of one weight type
 * and width on the same input, at decode sizes, as one mat-vec launch (q,
 * k, v at one row with the rope, rope and kv_store after them, where the
 * ring takes them); returns how many ops it issued, 0 when it issued
 * nothing. */
int realm__cuda_issue_matmul_set(cuda_ctx *c, const struct cuda_op *ops, int n_ops);
/* the same after the rmsnorm `norm` whose output the set reads, the ring
 * doing the rmsnorm in every block ($REALM_CUDA_RING_NORM); returns 0,
 * having issued nothing, where the ring does not take the set (the caller
 * then issues the rmsnorm and the set as they are) */
int realm__cuda_issue_norm_set(cuda_ctx *c, const struct cuda_op *norm, const struct cuda_op *ops,
                               int n_ops);
/* will realm__cuda_issue_norm_set take the rmsnorm `norm` and the set
 * after it? (the L2 prefetch leaves such a set alone) */
bool realm__cuda_norm_set_fits(const cuda_ctx *c, const struct cuda_op *norm,
                               const struct cuda_op *ops, int n_ops);
/* mm: the op after the attention (NULL: none); where it is a matmul on the
 * attention's output, the decode split may write its quantized input */
void realm__cuda_issue_attention(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm);
/* the decode split (cuda_att_decode.cu) for op where it applies (few rows);
 * false, having issued nothing, where not */
bool realm__cuda_att_decode(cuda_ctx *c, const struct cuda_op *op, const struct cuda_op *mm);

/* Where a producer kernel may write matmul mm's quantized input itself: the
 * activation kind (cuda_quant.cuh's act_kind) and the layout the matmul
 * reads (codes, a scale per 32 elements, and d·Σq per 32 for Q8_1/Q8_K).
 * False when mm does not read quantized activations of x as n rows of ne0.
 * Once the producer is enqueued, realm__cuda_act_written(c, mm) lets mm
 * take them as its own (no quantization launch). */
struct cuda_act_target {
    int kind;
    int8_t *aq;
    float *ad, *as;
};
bool realm__cuda_act_target(cuda_ctx *c, const struct cuda_op *mm, const void *x, int32_t n,
                            int64_t ne0, struct cuda_act_target *t);
void realm__cuda_act_written(cuda_ctx *c, const struct cuda_op *mm);

/* Fused pairs and triples (cuda_pass.cu's issue loop finds them): each
 * returns false, having enqueued nothing, when the ops do not fit its
 * pattern. rmsnorm/swiglu + the matmul that reads their output: the
 * producer also writes the matmul's quantized activations (the matmul then
 * finds them cached). rope(q) + rope(k) + kv_store(k, v): one kernel. */
bool realm__cuda_issue_rmsnorm_quant(cuda_ctx *c, const struct cuda_op *norm,
                                     const struct cuda_op *mm);
bool realm__cuda_issue_swiglu_quant(cuda_ctx *c, const struct cuda_op *sw, const struct cuda_op *mm);
bool realm__cuda_issue_rope_kv(cuda_ctx *c, const struct cuda_op *rq, const struct cuda_op *rk,
                               const struct cuda_op *st);

/* cuda_att_decode.cu: bytes of the split-attention partials for these limits */
size_t realm__cuda_att_part_bytes(const realm_backend_limits *lim);
/* cuda_attention.cu: the row tiles of b for the tiled attention kernel
 * into tab (room for 4 * n_rows ints: first row, rows and position count
 * per tile; from tab + 3 * n_rows the rows of runs too short for a tile,
 * *n_single of them, which the one-row kernel takes); returns the number
 * of tiles, 0 when b's attention is not tiled. A pass a graph may capture
 * is not tiled (the grid would depend on the data) unless the context is
 * too long for the one-row kernel: then it gets one tile per row. */
int32_t realm__cuda_att_tiles(const cuda_ctx *c, const realm_batch *b, int32_t *tab,
                              int32_t *n_single);
/* cuda_att_decode.cu: early[r] = 1 where no row of b holds an earlier
 * position of row r's sequence, so the decode split may read r's K/V
 * before the kernel ahead (which stores the batch's own positions) is done;
 * 0 elsewhere, and for every row of a batch the split does not take. */
void realm__cuda_att_early(const realm_batch *b, int32_t *early);

/* cuda_mmq.cu: out (+ bias, + resid) for the n rows of ops[0 .. n_set) from
 * the quantized activations (aq, ad, as: cuda_matmul.cu's layout), in one
 * launch; a set (n_set 2..3: matmuls of one type and width on one input,
 * no resid) only on the super-block path. False, having enqueued nothing,
 * for a type or set the tile kernel does not take. */
bool realm__cuda_mmq(cuda_ctx *c, const struct cuda_op *ops, int n_set, const int8_t *aq,
                     const float *ad, const float *as, float *resid);
/* bytes of split-K partials the tile kernel may use */
size_t realm__cuda_mmq_part_bytes(const realm_backend_limits *lim);
/* Does w take the tile kernel's super-block path (Q4_K, Q5_K, Q6_K, Q8_0)? */
bool realm__cuda_mmq_sb(const cuda_ctx *c, const realm_weight *w);

/* cuda_mmv_ring.cu: the ring mat-vec of ops[0 .. n_set) at one activation
 * row (members from first1 on of a second type; first1 = n_set if none), on
 * cuda_matmul.cu's quantized activations; with rope (or NULL: the set is
 * q, k, v, no resid), also rope(q), rope(k) and kv_store(k, v) in its
 * epilogue (not neox; 2048 or 4096 columns); with norm (or NULL), the
 * rmsnorm ahead in every block, its activations not read from aq/ad/as
 * (2048 or 4096 columns; also writes norm->out). False, having enqueued
 * nothing, where it does not take the types, width or row count (or
 * $REALM_CUDA_MMV_RING=0). */
bool realm__cuda_mmv_ring(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                          const int8_t *aq, const float *ad, const float *as, float *resid,
                          const struct cuda_rope_kv *rope, const struct cuda_norm_in *norm);
/* would realm__cuda_mmv_ring take this set (no resid)? */
bool realm__cuda_ring_takes(const cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                            const struct cuda_rope_kv *rope, const struct cuda_norm_in *norm);
/* cuda_ops.cu: rope q (rq), rope k (rk) and kv_store (st) of one pass as one
 * cuda_rope_kv, or false where they do not fit together (k_rope_kv's
 * conditions) */
bool realm__cuda_rope_kv_of(const cuda_ctx *c, const struct cuda_op *rq, const struct cuda_op *rk,
                            const struct cuda_op *st, struct cuda_rope_kv *d);

/* cuda_matmul.cu: can matmul/get_rows read this type? */
bool realm__cuda_type_ok(realm_type t);
/* cuda_mmv.cu: the mat-vec of ops[0 .. n_set) (one weight type and width
 * on one input; members from first1 on of a second type, mixable with the
 * first; first1 = 0 if none) at ops[0].n <= mmv_max_rows rows, on the
 * quantized activations (aq, ad, as; float weights read op->x): the ring,
 * staged or unstaged kernel; resid: also add the product into it
 * (quantized weights). False, having enqueued nothing, where a set cannot
 * go as one launch. */
bool realm__cuda_mmv(cuda_ctx *c, const struct cuda_op *ops, int n_set, int first1,
                     const int8_t *aq, const float *ad, const float *as, float *resid);
/* q, k, v (ops[0..3), Q8_0) at one row with rope(q), rope(k) and kv_store
 * by *rope in the epilogue of one k_mmv_q launch; false, having enqueued
 * nothing, for other types (the ring takes the K-quants) or shapes */
bool realm__cuda_mmv_rope(cuda_ctx *c, const struct cuda_op *ops, const int8_t *aq, const float *ad,
                          const float *as, const struct cuda_rope_kv *rope);
/* may a staged set hold members of types t0 and t1? */
bool realm__cuda_mmv_mixable(realm_type t0, realm_type t1);
/* cuda_gemm.cu: op at any row count through cuBLAS (f16 tiles of W) */
void realm__cuda_matmul_big(cuda_ctx *c, const struct cuda_op *op);

/* the large path's dequantization tile (cuda_gemm.cu) */
#define DQ_TILE_BYTES ((size_t)128 << 20)

/* scratch bytes the matmul paths need for these limits */
void realm__cuda_matmul_scratch(const realm_backend_limits *lim, size_t *act_q_bytes,
                                size_t *dq_bytes, size_t *act_h_bytes);

#endif
