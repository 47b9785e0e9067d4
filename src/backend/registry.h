/*
 * backend/registry.h — pick a backend by name at run time.
 *
 * Callers (CLI, engine, server, tests) name a backend ("cpu", "cuda") instead
 * of including a backend's header, so no caller needs to know which backends
 * this binary was built with. "cuda" is always listed; in a build without
 * nvcc, or on a machine without a GPU, creating it fails with
 * REALM_E_UNSUPPORTED and a message that says which. "auto" is "cuda" where
 * that can be created and "cpu" where it fails with REALM_E_UNSUPPORTED; any
 * other failure is returned as is. The backend made says which it is in
 * be->ops->name.
 */
#ifndef REALM_BACKEND_REGISTRY_H
#define REALM_BACKEND_REGISTRY_H

#include <stddef.h>

#include "backend/backend.h"

typedef struct realm_backend_options {
    int n_threads;           /* cpu: worker threads, <= 0: all cores */
    int device;              /* cuda: device ordinal */
    size_t mem_budget_bytes; /* cuda: GPU memory reserved at start-up, 0: default */
} realm_backend_options;

/* Names of the known backends, NULL-terminated. */
const char *const *realm_backend_names(void);

/* opt may be NULL for the defaults. REALM_E_NOT_FOUND for an unknown name. */
realm_status realm_backend_create(const char *name, const realm_backend_options *opt,
                                  realm_backend **out, realm_error *err);

#endif
