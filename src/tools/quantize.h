/*
 * tools/quantize.h — convert a GGUF model's tensors to a quantization scheme.
 *
 * Reads IN with the validated reader, keeps every metadata key (updating
 * general.file_type), and writes each tensor in the type the scheme gives it
 * (tools/quant_mix.h): unchanged bytes when the type is unchanged, otherwise
 * dequantized with the source type's reference kernel and re-quantized with
 * the target's. Fails with a clear error (and leaves no partial output file
 * behind) when a source type has no dequantizer.
 */
#ifndef REALM_TOOLS_QUANTIZE_H
#define REALM_TOOLS_QUANTIZE_H

#include "base/status.h"

realm_status realm_quantize_file(const char *in_path, const char *out_path, const char *scheme,
                                 int n_threads, realm_error *err);

#endif
