/*
 * tokenizer/detok.h — token ids back to text, one token at a time.
 *
 * A realm_detok turns a stream of ids into UTF-8 text for streaming: each feed
 * writes only complete, valid UTF-8. Bytes that may still become a character
 * (a byte token `<0xE4>` waiting for its two continuation bytes, or a
 * byte-level token holding half a character) are held back until the
 * character completes; bytes that can no longer form one come out as U+FFFD.
 * Flush emits what is held back (as U+FFFD) at the end of a stream.
 *
 * Token text: byte-level tokens map their GPT-2 alphabet back to bytes,
 * SentencePiece "▁" becomes a space and `<0xXX>` its byte; with
 * add_space_prefix the first space of the stream is dropped (it is the dummy
 * prefix the encoder added). Control tokens render as nothing and the unknown
 * token as U+FFFD, unless REALM_DETOK_SPECIAL asks for their text. Decoding
 * the ids of valid UTF-8 text gives back exactly that text.
 *
 * Ownership and threads: a realm_detok is a small caller-owned value (no heap
 * memory), one per stream; it borrows the tokenizer, which must outlive it.
 * Different streams may run on different threads against one tokenizer.
 * Errors: REALM_E_RANGE for an id outside the vocabulary (the stream's state
 * is unchanged, so the caller may skip it and go on) or an output buffer
 * smaller than realm_detok_max_output.
 */
#ifndef REALM_TOKENIZER_DETOK_H
#define REALM_TOKENIZER_DETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

enum {
    REALM_DETOK_SPECIAL = 1u << 0, /* render control and unknown tokens as their text */
};

typedef struct realm_detok {
    const realm_tokenizer_t *tok;
    unsigned flags;
    bool at_start; /* no byte written yet: the dummy-prefix space is still due */
    uint8_t n_pending;
    unsigned char pending[4]; /* start of a character not yet complete */
} realm_detok;

void realm_detok_init(realm_detok *d, const realm_tokenizer_t *t, unsigned flags);
/* Bytes one feed or flush may write at most. */
size_t realm_detok_max_output(const realm_tokenizer_t *t);
/* Append the text of token id to out[0..cap); *n_out = bytes written. */
realm_status realm_detok_feed(realm_detok *d, int32_t id, char *out, size_t cap, size_t *n_out,
                              realm_error *err);
/* End of stream: write held-back bytes as U+FFFD (cap >= 12); returns bytes
 * written. The detok is then ready for a new stream. */
size_t realm_detok_flush(realm_detok *d, char *out, size_t cap);

/* Whole-sequence decode through the same rules: *text is NUL-terminated,
 * allocated with realm_malloc (caller frees with realm_free), *len excludes
 * the NUL. */
realm_status realm_tokenizer_decode(const realm_tokenizer_t *t, const int32_t *ids, size_t n,
                                    unsigned flags, char **text, size_t *len, realm_error *err);

#endif
