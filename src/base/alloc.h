/*
 * base/alloc.h — the allocator every Realm module uses, with fault injection.
 *
 * Contract: realm_malloc/calloc/realloc/free behave like the C library but go
 * through one place so tests can make the Nth allocation fail
 * (realm_alloc_fail_after) and prove that every caller handles NULL.
 * realm_calloc and realm_alloc_array check n * size for overflow and return
 * NULL on it. Thread-safe: the fault-injection counter is atomic.
 */
#ifndef REALM_BASE_ALLOC_H
#define REALM_BASE_ALLOC_H

#include <stddef.h>

#include "base/status.h"

void *realm_malloc(size_t size);
void *realm_calloc(size_t n, size_t size);
void *realm_realloc(void *ptr, size_t size);
/* realloc to n * size bytes; NULL (ptr untouched) on overflow or failure. */
void *realm_realloc_array(void *ptr, size_t n, size_t size);
void realm_free(void *ptr);
/* Make *arr (an array of *cap elements of elem_size bytes) hold at least
 * need elements, doubling from min_cap; *arr and *cap change only on
 * success. REALM_E_NOMEM (arr untouched) on overflow or failure. The one
 * growth policy for every growable array in Realm. */
realm_status realm_array_reserve(void **arr, size_t *cap, size_t need, size_t elem_size, size_t min_cap);
/* strdup through realm_malloc. */
char *realm_strdup(const char *s);

/* Fault injection for tests: after n more successful allocations, every
 * allocation fails until reset. n < 0 disables injection (the default). */
void realm_alloc_fail_after(long n);
/* Number of allocations that were made to fail since the last reset. */
long realm_alloc_failures(void);

#endif
