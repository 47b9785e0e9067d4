/* backend/cpu/cpu_impl.h — state shared by the CPU backend's files. */
#ifndef REALM_BACKEND_CPU_CPU_IMPL_H
#define REALM_BACKEND_CPU_CPU_IMPL_H

#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "base/threadpool.h"

typedef struct cpu_ctx {
    realm_backend be;
    int n_threads;
    realm_threadpool_t *pool;     /* n_threads threads, the caller included */
    const realm_cpu_kernels *k;   /* chosen from the CPU's features at create */
    realm_backend_limits lim;
    void *act_q; /* (max_rows, row bytes of max_ne0 in the widest activation type) */
    size_t act_q_bytes;
} cpu_ctx;

static inline cpu_ctx *realm__cpu_ctx(realm_backend *be)
{
    return (cpu_ctx *)be->ctx;
}

void realm__cpu_get_rows(realm_backend *be, const realm_weight *emb, const int32_t *token,
                         int32_t n, float *out);
void realm__cpu_copy_rows(realm_backend *be, const float *src, int64_t width, const int32_t *row_id,
                          int32_t n, float *out);
void realm__cpu_rmsnorm(realm_backend *be, const float *x, const realm_weight *w, int32_t n,
                        float eps, float *out);
void realm__cpu_matmul(realm_backend *be, const realm_weight *w, const realm_weight *bias,
                       const float *x, int32_t n, float *out);
void realm__cpu_matmul_multi(realm_backend *be, int count, const realm_weight *const *w,
                             const realm_weight *const *bias, const float *x, int32_t n,
                             float *const *out);
void realm__cpu_rope(realm_backend *be, float *x, int32_t n, int32_t n_head, int32_t head_dim,
                     int32_t n_rot, realm_rope_mode mode, const float *inv_freq,
                     const int32_t *pos);
void realm__cpu_kv_store(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                         const realm_batch *b, const float *k, const float *v);
void realm__cpu_attention(realm_backend *be, const realm_kv_pool *kv, int32_t layer,
                          const realm_batch *b, const realm_attn_params *p, const float *q,
                          float *out);
void realm__cpu_swiglu(realm_backend *be, float *gate, const float *up, int64_t n);
void realm__cpu_add(realm_backend *be, float *x, const float *y, int64_t n);
void realm__cpu_argmax(realm_backend *be, const float *x, int32_t n, int64_t width, int32_t *out);

#endif
