/*
 * backend/cuda/cuda.h — the CUDA backend: backend/backend.h on one NVIDIA GPU.
 *
 * Memory: at creation the backend takes one device allocation of
 * `mem_budget_bytes` (default: 90% of the free memory, or $REALM_CUDA_MEM_MB)
 * and carves every buffer out of it; weights (buffer_from_host) are copied in
 * once and shared by every sequence. An allocation that does not fit fails
 * with REALM_E_NOMEM and a message naming the request, the budget and what is
 * free — never later, in the middle of a forward pass.
 *
 * Execution: ops are recorded, not run, when called; `synchronize` (or a
 * buffer call that must see their results) runs the recorded pass on the
 * GPU. A pass whose ops and arguments equal an earlier one's (a decode step:
 * only token ids, positions and block tables differ, and those travel in a
 * staging area) replays that pass's CUDA graph, so a decode step costs one
 * launch instead of hundreds. Errors of any CUDA call are kept (the first
 * one) and returned by `synchronize`.
 *
 * Numerics: matmul with up to 64 activation rows ($REALM_CUDA_MMV_ROWS) converts activations to the
 * weight type's vec_dot_type exactly as the CPU reference does (Q8_0, Q8_1,
 * Q8_K) and sums integer products per block, so results differ from the CPU
 * only in the order of float additions. Larger batches dequantize weights to
 * f16 tiles and use cuBLAS (f16 inputs, f32 accumulation).
 *
 * When the binary is built without nvcc, or no GPU is present, create fails
 * with REALM_E_UNSUPPORTED and says why. Threads: as backend.h.
 */
#ifndef REALM_BACKEND_CUDA_CUDA_H
#define REALM_BACKEND_CUDA_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

typedef struct realm_backend_cuda_params {
    int device;              /* CUDA device ordinal */
    size_t mem_budget_bytes; /* 0: $REALM_CUDA_MEM_MB, else 90% of free memory */
} realm_backend_cuda_params;

/* Was this binary built with the CUDA backend (nvcc found at configure)? */
bool realm_backend_cuda_built(void);

/* params may be NULL for the defaults. Free with realm_backend_free. */
realm_status realm_backend_cuda_create(const realm_backend_cuda_params *params,
                                       realm_backend **out, realm_error *err);

/* What the issue loop fused since creation, for tests and benchmarks that
 * must know a path ran (a pass replayed from its CUDA graph counts once,
 * when it was captured). */
typedef struct realm_backend_cuda_counts {
    uint64_t qkv_rope;  /* q/k/v mat-vec sets that did rope + kv_store too */
    uint64_t ring_norm; /* mat-vec sets that did the rmsnorm ahead of them */
} realm_backend_cuda_counts;

/* be: a backend realm_backend_cuda_create made */
realm_backend_cuda_counts realm_backend_cuda_counts_of(const realm_backend *be);

#endif
