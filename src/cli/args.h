/*
 * cli/args.h — strict parsing of option values for the subcommands: the whole
 * string must be the number, within range, or the call fails (the caller
 * names the option and exits with a usage error). Nothing is allocated.
 */
#ifndef REALM_CLI_ARGS_H
#define REALM_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"

/* A base-10 integer in [lo, hi]. */
bool realm_cli_int(const char *s, long lo, long hi, int32_t *out);
/* A finite float. */
bool realm_cli_float(const char *s, float *out);
/* A KV pool's element choice: "auto", "f16" or "f32". */
bool realm_cli_kv_type(const char *s, realm_kv_choice *out);

#endif
