/*
 * base/status.h — status codes and the error object every fallible call fills.
 *
 * Contract: a fallible function returns a realm_status (REALM_OK == 0, errors
 * negative) and, when given a non-NULL realm_error, writes a human-readable
 * message into it that says what went wrong and where (e.g. a byte offset).
 * The error object is caller-owned, fixed-size and never allocates, so it can
 * be filled on allocation-failure paths. Thread-safe: no shared state.
 */
#ifndef REALM_BASE_STATUS_H
#define REALM_BASE_STATUS_H

#include <stdarg.h>

typedef enum realm_status {
    REALM_OK = 0,
    REALM_E_INVALID = -1,     /* bad argument or malformed input */
    REALM_E_NOMEM = -2,       /* allocation failed */
    REALM_E_IO = -3,          /* open/read/write/mmap failed */
    REALM_E_FORMAT = -4,      /* a file or message violates its format */
    REALM_E_UNSUPPORTED = -5, /* well-formed but not supported (type, architecture) */
    REALM_E_NOT_FOUND = -6,   /* a named key, tensor or entity does not exist */
    REALM_E_RANGE = -7,       /* a value is out of its allowed range */
    REALM_E_INTERNAL = -8,    /* a bug: an invariant did not hold */
    REALM_E_BUSY = -9,        /* over capacity right now: retrying later may succeed */
} realm_status;

#define REALM_ERROR_MESSAGE_MAX 512

typedef struct realm_error {
    realm_status status;
    char message[REALM_ERROR_MESSAGE_MAX];
} realm_error;

/* Short stable name of a status ("invalid", "nomem", ...). */
const char *realm_status_name(realm_status st);

/* Record st and a printf-style message in err (ignored when err is NULL).
 * Returns st so callers can write `return realm_error_set(err, ...)`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
realm_status
realm_error_set(realm_error *err, realm_status st, const char *fmt, ...);

/* Reset err to REALM_OK with an empty message. */
void realm_error_clear(realm_error *err);

/* Aborts with file:line when an internal invariant is broken. Never use for
 * conditions that bad input can trigger. */
#define REALM_ASSERT(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) realm__assert_fail(#cond, __FILE__, __LINE__);                                \
    } while (0)

_Noreturn void realm__assert_fail(const char *expr, const char *file, int line);

#endif
