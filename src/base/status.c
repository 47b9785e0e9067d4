#include "base/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *realm_status_name(realm_status st)
{
    switch (st) {
    case REALM_OK: return "ok";
    case REALM_E_INVALID: return "invalid";
    case REALM_E_NOMEM: return "nomem";
    case REALM_E_IO: return "io";
    case REALM_E_FORMAT: return "format";
    case REALM_E_UNSUPPORTED: return "unsupported";
    case REALM_E_NOT_FOUND: return "not_found";
    case REALM_E_RANGE: return "range";
    case REALM_E_INTERNAL: return "internal";
    case REALM_E_BUSY: return "busy";
    }
    return "unknown";
}

realm_status realm_error_set(realm_error *err, realm_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

void realm_error_clear(realm_error *err)
{
    if (err) {
        err->status = REALM_OK;
        err->message[0] = '\0';
    }
}

void realm__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "realm: internal invariant failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
