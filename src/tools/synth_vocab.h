/*
 * tools/synth_vocab.h — a synthetic but valid byte-level BPE vocabulary.
 *
 * Writes tokenizer.ggml.* metadata (model gpt2, the given pre-tokenizer,
 * tokens in GPT-2's byte-to-unicode spelling, token types, ranked merges,
 * special tokens and a chat template in the style of the named family) of
 * exactly n_vocab tokens. Every merge joins two tokens that exist and yields
 * a token that exists, so any BPE implementation can load and run it; the
 * token strings are random letter sequences, not a trained vocabulary.
 */
#ifndef REALM_TOOLS_SYNTH_VOCAB_H
#define REALM_TOOLS_SYNTH_VOCAB_H

#include <stdint.h>

#include "base/status.h"
#include "gguf/gguf.h"

/* style: "smollm", "llama3" or "qwen2". */
realm_status realm_synth_vocab_write(realm_gguf_writer_t *w, const char *style, int n_vocab,
                                     uint64_t seed, realm_error *err);

#endif
