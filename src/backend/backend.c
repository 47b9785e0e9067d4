/* backend/backend.c — what every backend shares. */
#include "backend/backend.h"

void realm_backend_free(realm_backend *be)
{
    if (be) be->ops->destroy(be);
}

size_t realm_kv_pool_bytes(int32_t n_layer, int32_t n_blocks, int32_t block_size, int32_t kv_dim,
                           realm_type type)
{
    size_t elem = type == REALM_TYPE_F16 ? 2 : type == REALM_TYPE_F32 ? 4 : 0;
    return (size_t)n_layer * (size_t)n_blocks * (size_t)block_size * (size_t)kv_dim * elem;
}

realm_type realm_kv_type_pick(const realm_backend *be, realm_kv_choice c)
{
    return c == REALM_KV_F16   ? REALM_TYPE_F16
           : c == REALM_KV_F32 ? REALM_TYPE_F32
                               : be->ops->kv_type;
}
