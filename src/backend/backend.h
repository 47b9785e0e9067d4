/*
 * backend/backend.h — the one interface between the model and the hardware
 * that runs it.
 *
 * A backend is a `static const realm_backend_ops` table (designated
 * initializers) plus a context. The model code calls only these ops, so the
 * same forward pass runs on the CPU reference backend (backend/cpu/) and on any
 * later backend (CUDA) that fills the same table. Ops work at a coarse grain:
 * a matmul takes a whole batch of activation rows against one weight matrix
 * (with its bias fused), attention takes the whole batch against the KV pool,
 * so a backend can fuse and launch few kernels.
 *
 * Memory: every pointer an op receives for activations, weights and the KV
 * pool is *backend memory* (host memory on the CPU, device memory on a GPU):
 * the model does arithmetic on those addresses but never dereferences them.
 * Small per-batch index arrays (token ids, positions, block tables, row ids)
 * are passed as host memory in the realm_batch descriptor; a device backend
 * copies them into its own scratch.
 *
 * Errors: ops return nothing. A backend whose ops can fail asynchronously
 * (CUDA) records the first error; `synchronize` waits for queued work and
 * returns that error. The CPU backend's ops cannot fail (arguments are checked
 * by the model before any op runs).
 *
 * Scratch: `reserve` sizes every buffer an op needs for the largest batch the
 * model will run; after it no op allocates.
 *
 * Threads: one backend instance serves one forward pass at a time.
 */
#ifndef REALM_BACKEND_BACKEND_H
#define REALM_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "quant/types.h"

typedef struct realm_backend realm_backend;

/* A block of backend memory. */
typedef struct realm_buffer {
    void *data; /* backend address; NULL when empty */
    size_t size_bytes;
    bool borrowed; /* wraps caller memory (zero-copy host mapping): free does not release it */
} realm_buffer;

/* A weight in backend memory: ne1 rows of ne0 elements of `type`, rows
 * contiguous (GGUF layout: ne0 is the input dimension of a matmul). */
typedef struct realm_weight {
    realm_type type;
    int64_t ne0;      /* row length */
    int64_t ne1;      /* number of rows; 1 for a vector */
    const void *data; /* backend address; NULL: absent (optional weights) */
    /* The same matrix in the layout this backend's matmul reads fastest
     * (weight_pack), or NULL: matmul reads it when set, get_rows never. */
    const void *packed;
} realm_weight;

/* ---- the batch descriptor ----
 * One forward pass runs rows of (sequence, position, token). Prefill chunks,
 * decode steps and several sequences at once are all just batches. Each
 * sequence brings its block table: position p lives in slot p % block_size of
 * pool block block_table[p / block_size]. Attention for a row at position p
 * covers positions 0..p of its sequence: earlier positions must already be in
 * the cache (written by earlier batches or by earlier rows of this batch). */
typedef struct realm_batch_seq {
    const int32_t *block_table; /* (n_blocks) ids of KV pool blocks */
    int32_t n_blocks;
} realm_batch_seq;

typedef struct realm_batch {
    int32_t n_rows;
    const int32_t *token;    /* (n_rows) token ids */
    const int32_t *pos;      /* (n_rows) position of each row in its sequence */
    const int32_t *seq;      /* (n_rows) index into seqs */
    const bool *want_logits; /* (n_rows) rows whose logits are returned; NULL: last row only */
    int32_t n_seqs;
    const realm_batch_seq *seqs; /* (n_seqs) */
} realm_batch;

/* The KV pool in backend memory. Blocks are the unit of ownership so a
 * paged cache (engine/) and the simple per-sequence cache (model/kv_cache.h)
 * share one layout; the model never knows which one allocated the blocks.
 * Elements are REALM_TYPE_F16 (half the memory and half the bytes attention
 * reads; kv_store rounds to nearest even, as quant/fp16.h, a value past 65504
 * becomes inf) or REALM_TYPE_F32 (exact). Every backend takes both, with the
 * same rounding; which one a cache gets is its owner's choice
 * (realm_kv_choice below). */
typedef struct realm_kv_pool {
    int32_t n_layer, n_blocks, block_size, kv_dim; /* kv_dim = n_head_kv * head_dim */
    realm_type type;                               /* REALM_TYPE_F16 or REALM_TYPE_F32 */
    void *k;                                       /* (n_layer, n_blocks, block_size, kv_dim) */
    void *v;                                       /* (n_layer, n_blocks, block_size, kv_dim) */
} realm_kv_pool;

/* Bytes of one half (k or v) of a pool of these dimensions; 0 for a type
 * that is neither F16 nor F32. */
size_t realm_kv_pool_bytes(int32_t n_layer, int32_t n_blocks, int32_t block_size, int32_t kv_dim,
                           realm_type type);

/* A KV pool's element type as a user asks for it: the backend's own
 * (realm_backend_ops.kv_type), or fixed. */
typedef enum realm_kv_choice { REALM_KV_AUTO = 0, REALM_KV_F16, REALM_KV_F32 } realm_kv_choice;

/* How q/k pairs rotate (llama.cpp's rope types). NORMAL rotates adjacent
 * pairs (x[2i], x[2i+1]); GGUF llama checkpoints have Q/K rows permuted by the
 * converter so that this equals HF's rotate_half. NEOX rotates (x[i],
 * x[i + n_rot/2]), used unpermuted by qwen2. */
typedef enum realm_rope_mode {
    REALM_ROPE_NORMAL = 0,
    REALM_ROPE_NEOX,
    REALM_ROPE_MODE_COUNT
} realm_rope_mode;

typedef struct realm_attn_params {
    int32_t n_head, n_head_kv, head_dim;
    float scale; /* applied to q·k, usually 1/sqrt(head_dim) */
} realm_attn_params;

/* Largest work the model will submit; backends size their scratch from it. */
typedef struct realm_backend_limits {
    int32_t max_rows; /* rows per batch */
    int32_t max_ctx;  /* positions one row may attend over */
    int64_t max_ne0;  /* longest matmul input row */
} realm_backend_limits;

enum { REALM_MATMUL_MULTI_MAX = 3 };

typedef struct realm_backend_ops {
    const char *name;
    /* The KV pool's element type where the user asks for none: F32 on the
     * CPU (the reference: exact, and with the small default model a
     * near-tie can turn on the KV's rounding), F16 on the GPU (half the
     * memory and the bytes attention reads). */
    realm_type kv_type;
    /* Can matmul/get_rows read weights of this type? */
    bool (*supports)(const realm_backend *be, realm_type type);
    void (*destroy)(realm_backend *be);
    realm_status (*reserve)(realm_backend *be, const realm_backend_limits *lim, realm_error *err);
    realm_status (*synchronize)(realm_backend *be, realm_error *err);

    /* ---- buffers ---- */
    realm_status (*buffer_alloc)(realm_backend *be, size_t size_bytes, realm_buffer *out,
                                 realm_error *err);
    /* Make read-only host memory (the GGUF mapping) visible to the backend:
     * zero-copy where the backend can read host memory, a copy otherwise. The
     * host memory must outlive the buffer. */
    realm_status (*buffer_from_host)(realm_backend *be, const void *host, size_t size_bytes,
                                     realm_buffer *out, realm_error *err);
    void (*buffer_free)(realm_backend *be, realm_buffer *buf);
    void (*buffer_upload)(realm_backend *be, realm_buffer *buf, size_t offset, const void *src,
                          size_t size_bytes);
    void (*buffer_download)(realm_backend *be, const realm_buffer *buf, size_t offset, void *dst,
                            size_t size_bytes);
    void (*buffer_clear)(realm_backend *be, realm_buffer *buf); /* all bytes zero */
    /* Optional (NULL: any host memory downloads as fast). Host memory that
     * buffer_download fills fastest (page-locked on a GPU: a download into
     * pageable memory is staged by the driver at a fraction of the link's
     * speed), or NULL when none is left; freed with host_free. */
    void *(*host_alloc)(realm_backend *be, size_t size_bytes);
    void (*host_free)(realm_backend *be, void *p);
    /* Optional (NULL: weights are read as bound). A copy of matrix w in the
     * backend's own layout for matmul, in *out (free with buffer_free; the
     * caller points w->packed at out->data). out->data is NULL when the
     * backend reads this type as it is. Called once per matrix at load. */
    realm_status (*weight_pack)(realm_backend *be, const realm_weight *w, realm_buffer *out,
                                realm_error *err);

    /* ---- ops; activations are f32, row-major (rows, width) ---- */
    /* out (n, emb->ne0) = rows token[0..n) of the embedding table, as f32. */
    void (*get_rows)(realm_backend *be, const realm_weight *emb, const int32_t *token, int32_t n,
                     float *out);
    /* out (n, width) = src rows row_id[0..n) (width floats each). */
    void (*copy_rows)(realm_backend *be, const float *src, int64_t width, const int32_t *row_id,
                      int32_t n, float *out);
    /* out (n, w->ne0) = x / sqrt(mean(x^2) + eps) * w, per row. out may be x. */
    void (*rmsnorm)(realm_backend *be, const float *x, const realm_weight *w, int32_t n, float eps,
                    float *out);
    /* out (n, w->ne1) = x (n, w->ne0) · w^T (+ bias (w->ne1) when bias is not
     * NULL). Each x row is converted to the weight type's vec_dot_type and
     * every product accumulates in f32 through the type's vec_dot. */
    void (*matmul)(realm_backend *be, const realm_weight *w, const realm_weight *bias,
                   const float *x, int32_t n, float *out);
    /* Optional (NULL: the model calls matmul count times). outs[i] = x ·
     * ws[i]^T (+ biases[i] when biases and biases[i] are not NULL) for
     * i < count <= REALM_MATMUL_MULTI_MAX: matmuls that read the same x (Q/K/V,
     * gate/up) as one op, so x is converted once and the work is one job.
     * Results equal count matmul calls bit for bit. */
    void (*matmul_multi)(realm_backend *be, int count, const realm_weight *const *ws,
                         const realm_weight *const *biases, const float *x, int32_t n,
                         float *const *outs);
    /* Rotate, in place, n_head heads of head_dim in each of n rows of x
     * (row width n_head * head_dim) by angle pos[r] * inv_freq[i] for the
     * first n_rot dims; inv_freq (n_rot / 2) is backend memory. */
    void (*rope)(realm_backend *be, float *x, int32_t n, int32_t n_head, int32_t head_dim,
                 int32_t n_rot, realm_rope_mode mode, const float *inv_freq, const int32_t *pos);
    /* Write each batch row's k and v (n_rows, kv_dim) into its sequence's
     * slot for its position, in layer `layer` of the pool. */
    void (*kv_store)(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                     const realm_batch *b, const float *k, const float *v);
    /* out (n_rows, n_head * head_dim): causal softmax attention of each row's
     * q over positions 0..pos of its sequence in layer `layer` (GQA: query
     * head h reads kv head h / (n_head / n_head_kv)). */
    void (*attention)(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                      const realm_batch *b, const realm_attn_params *p, const float *q, float *out);
    /* gate[i] = silu(gate[i]) * up[i] for n elements, in place. */
    void (*swiglu)(realm_backend *be, float *gate, const float *up, int64_t n);
    /* x[i] += y[i] for n elements. */
    void (*add)(realm_backend *be, float *x, const float *y, int64_t n);
    /* out[r] (backend memory) = the index of the largest of row r of x (n
     * rows of width floats), as base/rowmath.h: ties to the lowest index,
     * NaN and -inf never win, -1 when none is finite. */
    void (*argmax)(realm_backend *be, const float *x, int32_t n, int64_t width, int32_t *out);
} realm_backend_ops;

struct realm_backend {
    const realm_backend_ops *ops;
    void *ctx; /* the backend's own state */
};

/* The element type a KV pool of choice c takes on be. */
realm_type realm_kv_type_pick(const realm_backend *be, realm_kv_choice c);

/* Destroys the backend (NULL is a no-op). Buffers must be freed first. */
void realm_backend_free(realm_backend *be);

#endif
