/* backend/backend.c — what every backend shares. */
#include "backend/backend.h"

void realm_backend_free(realm_backend *be)
{
    if (be) be->ops->destroy(be);
}
