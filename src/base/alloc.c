#include "base/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long budget = -1; /* allocations left before failing; < 0: off */
static atomic_long failures = 0;

/* Returns nonzero when this allocation must fail. */
static int inject(void)
{
    long b = atomic_load(&budget);
    while (b >= 0) {
        if (b == 0) {
            atomic_fetch_add(&failures, 1);
            return 1;
        }
        if (atomic_compare_exchange_weak(&budget, &b, b - 1)) return 0;
    }
    return 0;
}

void *realm_malloc(size_t size)
{
    if (inject()) return NULL;
    return malloc(size ? size : 1);
}

void *realm_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    if (inject()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *realm_realloc(void *ptr, size_t size)
{
    if (inject()) return NULL;
    return realloc(ptr, size ? size : 1);
}

void *realm_realloc_array(void *ptr, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    return realm_realloc(ptr, n * size);
}

realm_status realm_array_reserve(void **arr, size_t *cap, size_t need, size_t elem_size, size_t min_cap)
{
    if (need <= *cap) return REALM_OK;
    size_t c = *cap ? *cap : (min_cap ? min_cap : 1);
    while (c < need) {
        if (c > SIZE_MAX / 2) return REALM_E_NOMEM;
        c *= 2;
    }
    void *p = realm_realloc_array(*arr, c, elem_size);
    if (!p) return REALM_E_NOMEM;
    *arr = p;
    *cap = c;
    return REALM_OK;
}

void realm_free(void *ptr)
{
    free(ptr);
}

char *realm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = realm_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void realm_alloc_fail_after(long n)
{
    atomic_store(&failures, 0);
    atomic_store(&budget, n);
}

long realm_alloc_failures(void)
{
    return atomic_load(&failures);
}
