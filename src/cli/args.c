/* cli/args.c — see args.h. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool realm_cli_int(const char *s, long lo, long hi, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

bool realm_cli_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

bool realm_cli_kv_type(const char *s, realm_kv_choice *out)
{
    if (!strcmp(s, "auto"))
        *out = REALM_KV_AUTO;
    else if (!strcmp(s, "f16"))
        *out = REALM_KV_F16;
    else if (!strcmp(s, "f32"))
        *out = REALM_KV_F32;
    else
        return false;
    return true;
}
