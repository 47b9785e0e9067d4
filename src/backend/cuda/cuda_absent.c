/* backend/cuda/cuda_absent.c — linked instead of the CUDA backend when the
 * build found no nvcc, so "cuda" still names a backend and says why it is
 * not there. */
#include "backend/cuda/cuda.h"

bool realm_backend_cuda_built(void)
{
    return false;
}

realm_status realm_backend_cuda_create(const realm_backend_cuda_params *params,
                                       realm_backend **out, realm_error *err)
{
    (void)params;
    *out = NULL;
    return realm_error_set(err, REALM_E_UNSUPPORTED,
                           "cuda backend: this realm was built without CUDA (no nvcc found when "
                           "it was configured)");
}

realm_backend_cuda_counts realm_backend_cuda_counts_of(const realm_backend *be)
{
    (void)be;
    return (realm_backend_cuda_counts){0};
}
