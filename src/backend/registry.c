/* backend/registry.c — the table of backends by name. The CUDA entry links
 * against backend/cuda/: the real backend when nvcc built it, otherwise
 * cuda_absent.c, which only reports that it is missing. */
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda.h"
#include "backend/registry.h"
#include "base/log.h"

static realm_status make_cpu(const realm_backend_options *o, realm_backend **out, realm_error *err)
{
    realm_backend_cpu_params p = {.n_threads = o->n_threads};
    return realm_backend_cpu_create(&p, out, err);
}

static realm_status make_cuda(const realm_backend_options *o, realm_backend **out,
                              realm_error *err)
{
    realm_backend_cuda_params p = {.device = o->device, .mem_budget_bytes = o->mem_budget_bytes};
    return realm_backend_cuda_create(&p, out, err);
}

/* The GPU where one is present (built with nvcc and a device found), else the
 * CPU. Any other failure of the CUDA backend (a budget that does not fit, a
 * broken driver) is reported, not papered over by a silent CPU fallback. */
static realm_status make_auto(const realm_backend_options *o, realm_backend **out, realm_error *err)
{
    realm_error why = {0};
    realm_status st = make_cuda(o, out, &why);
    if (st != REALM_E_UNSUPPORTED) {
        if (st && err) *err = why;
        return st;
    }
    /* a build without CUDA has nothing to report; a GPU build without a GPU does */
    realm_log(realm_backend_cuda_built() ? REALM_LOG_INFO : REALM_LOG_DEBUG,
              "backend auto: %s; using the CPU", why.message);
    return make_cpu(o, out, err);
}

static const struct {
    const char *name;
    realm_status (*create)(const realm_backend_options *, realm_backend **, realm_error *);
} table[] = {
    {"cpu", make_cpu},
    {"cuda", make_cuda},
    {"auto", make_auto},
};

static const char *const names[] = {"cpu", "cuda", "auto", NULL};

const char *const *realm_backend_names(void)
{
    return names;
}

realm_status realm_backend_create(const char *name, const realm_backend_options *opt,
                                  realm_backend **out, realm_error *err)
{
    *out = NULL;
    realm_backend_options o = opt ? *opt : (realm_backend_options){0};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0) return table[i].create(&o, out, err);
    return realm_error_set(err, REALM_E_NOT_FOUND, "unknown backend '%s' (known: cpu, cuda, auto)",
                           name);
}
