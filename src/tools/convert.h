/*
 * tools/convert.h — produce a tensor in any type from float rows, in parallel.
 *
 * Contract: realm_convert_rows asks `source` for each of n_rows rows of ne0
 * floats (row order is not sequential: rows are produced on n_threads threads
 * at once, so the source must be thread-safe and depend only on the row
 * index) and writes the rows, converted with the type's reference quantizer,
 * contiguously into out (realm_type_row_size(type, ne0) * n_rows bytes).
 * Used by `realm synth` (random rows) and `realm quantize` (dequantized rows).
 */
#ifndef REALM_TOOLS_CONVERT_H
#define REALM_TOOLS_CONVERT_H

#include <stdint.h>

#include "base/status.h"
#include "quant/types.h"

typedef void (*realm_row_source_fn)(void *ctx, int64_t row, float *dst, int64_t ne0);

realm_status realm_convert_rows(realm_type type, int64_t ne0, int64_t n_rows,
                                realm_row_source_fn source, void *ctx, int n_threads, void *out,
                                realm_error *err);

#endif
