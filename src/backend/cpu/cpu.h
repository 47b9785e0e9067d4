/*
 * backend/cpu/cpu.h — the CPU backend: the reference implementation of
 * backend/backend.h.
 *
 * Weights stay in their GGUF format and are read in place from the mapping
 * (buffer_from_host is zero-copy); matmul converts activation rows to the
 * weight type's vec_dot_type once and runs the best kernel table this CPU
 * has (cpu_kernels.h: AVX2 variants chosen at run time from CPUID, else the
 * quant/ reference kernels; REALM_CPU_KERNELS=scalar forces the reference),
 * accumulating in f32. Work (matmul tiles, attention per (row, head)) runs on
 * a persistent thread pool of n_threads threads created with the backend;
 * no op allocates after reserve. Every output element is computed by the
 * same instruction sequence whatever the split, so results do not depend on
 * the thread count or on how rows are batched.
 */
#ifndef REALM_BACKEND_CPU_CPU_H
#define REALM_BACKEND_CPU_CPU_H

#include "backend/backend.h"

typedef struct realm_backend_cpu_params {
    int n_threads; /* <= 0: all cores */
} realm_backend_cpu_params;

/* params may be NULL for the defaults. Free with realm_backend_free. */
realm_status realm_backend_cpu_create(const realm_backend_cpu_params *params, realm_backend **out,
                                      realm_error *err);

#endif
