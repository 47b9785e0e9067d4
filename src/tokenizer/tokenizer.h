/*
 * tokenizer/tokenizer.h — text ⇄ token ids, built from a model's GGUF metadata,
 * identical to the tokenizer the model was trained with.
 *
 * Two algorithms, chosen by `tokenizer.ggml.model`:
 *  - "gpt2": byte-level BPE. Text is split by the pre-tokenizer regexes named by
 *    `tokenizer.ggml.pre` (gpt2 default, smollm/starcoder, llama-bpe (Llama 3),
 *    qwen2, ...); each piece's bytes are merged by the ranked
 *    `tokenizer.ggml.merges` (lowest rank first, ties leftmost), as HF
 *    `tokenizers` and llama.cpp do.
 *  - "llama": SentencePiece BPE. Spaces become U+2581 "▁" (one is prepended when
 *    `tokenizer.ggml.add_space_prefix`, default true); UTF-8 characters are
 *    merged by the score of the merged piece (highest first, ties leftmost);
 *    characters outside the vocabulary fall back to `<0xXX>` byte tokens, or to
 *    the unknown token when the vocabulary has none.
 * Token types follow GGUF (`tokenizer.ggml.token_type`). User-defined tokens are
 * always matched whole in the input; control (and unknown) tokens only with
 * REALM_TOKENIZE_PARSE_SPECIAL, which is off by default so raw user text cannot
 * inject control tokens — turn it on only for text we rendered ourselves (chat
 * templates).
 *
 * Input text must be valid UTF-8 (NUL bytes are allowed: lengths are explicit);
 * anything else fails with REALM_E_INVALID naming the byte offset, before any
 * output is written. Decoding is in detok.h.
 *
 * Ownership and threads: a realm_tokenizer_t copies everything it needs from
 * the GGUF file (the file may be closed afterwards) and is immutable after
 * init, so any number of threads may call every function below on one
 * tokenizer at once. realm_tokenizer_encode allocates its own scratch per call
 * (freed before it returns) and appends to a caller-owned realm_token_vec.
 */
#ifndef REALM_TOKENIZER_TOKENIZER_H
#define REALM_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "gguf/gguf.h"

/* GGUF token types (the numeric values are the file's). */
typedef enum realm_token_type {
    REALM_TOKEN_TYPE_UNDEFINED = 0,
    REALM_TOKEN_TYPE_NORMAL = 1,
    REALM_TOKEN_TYPE_UNKNOWN = 2,
    REALM_TOKEN_TYPE_CONTROL = 3,
    REALM_TOKEN_TYPE_USER_DEFINED = 4,
    REALM_TOKEN_TYPE_UNUSED = 5,
    REALM_TOKEN_TYPE_BYTE = 6,
    REALM_TOKEN_TYPE_COUNT
} realm_token_type;

typedef enum realm_tokenizer_kind {
    REALM_TOKENIZER_KIND_BPE = 0, /* "gpt2": byte-level BPE with merges */
    REALM_TOKENIZER_KIND_SPM = 1, /* "llama": SentencePiece BPE with scores */
    REALM_TOKENIZER_KIND_COUNT
} realm_tokenizer_kind;

typedef enum realm_special_token {
    REALM_SPECIAL_BOS = 0,
    REALM_SPECIAL_EOS,
    REALM_SPECIAL_EOT, /* end of turn: the chat stop token (may equal eos) */
    REALM_SPECIAL_UNK,
    REALM_SPECIAL_PAD,
    REALM_SPECIAL_COUNT
} realm_special_token;

/* Flags of realm_tokenizer_encode. */
enum {
    REALM_TOKENIZE_ADD_SPECIAL = 1u << 0,   /* add bos/eos when the model asks for them */
    REALM_TOKENIZE_PARSE_SPECIAL = 1u << 1, /* match control-token text ("<|im_start|>") */
};

typedef struct realm_tokenizer realm_tokenizer_t;

/* A growable id array owned by the caller: zero-initialise, free with
 * realm_token_vec_free. Encoding appends. */
typedef struct realm_token_vec {
    int32_t *ids;
    size_t n;
    size_t cap;
} realm_token_vec;

void realm_token_vec_free(realm_token_vec *v);
/* Append one id (REALM_E_NOMEM on allocation failure). */
realm_status realm_token_vec_push(realm_token_vec *v, int32_t id);

/* Everything a tokenizer is built from, as plain arrays (what the GGUF keys
 * hold). Used by realm_tokenizer_init_gguf and by tests with hand-made
 * vocabularies. Strings are (pointer, length) so they may hold any bytes;
 * a NULL *_lens array means NUL-terminated strings. */
typedef struct realm_tokenizer_desc {
    realm_tokenizer_kind kind;
    const char *pre; /* BPE pre-tokenizer name; NULL = "default" */
    int32_t n_tokens;
    const char *const *tokens; /* (n_tokens) */
    const size_t *token_lens;  /* (n_tokens) or NULL */
    const float *scores;       /* (n_tokens) or NULL: SPM merge priority */
    const int32_t *types;      /* (n_tokens) or NULL: all NORMAL */
    int64_t n_merges;
    const char *const *merges;            /* (n_merges) "left right", rank = index */
    const size_t *merge_lens;             /* (n_merges) or NULL */
    int32_t special[REALM_SPECIAL_COUNT]; /* ids, -1 when absent */
    bool add_bos, add_eos, add_space_prefix;
} realm_tokenizer_desc;

/* A desc with no vocabulary, special ids -1 and the defaults of kind. */
void realm_tokenizer_desc_defaults(realm_tokenizer_desc *d, realm_tokenizer_kind kind);

realm_status realm_tokenizer_init(const realm_tokenizer_desc *d, realm_tokenizer_t **out,
                                  realm_error *err);
/* Read the `tokenizer.ggml.*` keys of an open model. REALM_E_UNSUPPORTED for a
 * tokenizer.ggml.model other than gpt2/llama; REALM_E_FORMAT for missing or
 * inconsistent arrays (the message names the key). */
realm_status realm_tokenizer_init_gguf(const realm_gguf_t *g, realm_tokenizer_t **out,
                                       realm_error *err);
void realm_tokenizer_free(realm_tokenizer_t *t);

/* The code point that spells byte b (0..255) in byte-level BPE ("gpt2")
 * vocabularies: printable Latin-1 bytes stand for themselves, the other 68
 * are shifted to U+0100.. in byte order (so ' ' is 'Ġ'). */
uint32_t realm_tokenizer_gpt2_byte_char(unsigned b);

/* Encode text[0..len) and append the ids to out. On error out->n is unchanged. */
realm_status realm_tokenizer_encode(const realm_tokenizer_t *t, const char *text, size_t len,
                                    unsigned flags, realm_token_vec *out, realm_error *err);

realm_tokenizer_kind realm_tokenizer_get_kind(const realm_tokenizer_t *t);
/* The pre-tokenizer in use ("smollm", "llama-bpe", ...; "spm" for SentencePiece). */
const char *realm_tokenizer_pre_name(const realm_tokenizer_t *t);
int32_t realm_tokenizer_n_vocab(const realm_tokenizer_t *t);
/* Special token id, or -1 when the model has none. */
int32_t realm_tokenizer_special(const realm_tokenizer_t *t, realm_special_token which);
bool realm_tokenizer_add_bos(const realm_tokenizer_t *t);
bool realm_tokenizer_add_eos(const realm_tokenizer_t *t);
bool realm_tokenizer_add_space_prefix(const realm_tokenizer_t *t);
/* Type of id; REALM_TOKEN_TYPE_UNDEFINED when id is out of range. */
realm_token_type realm_tokenizer_token_type(const realm_tokenizer_t *t, int32_t id);
/* The token as the vocabulary spells it ("Ġthe", "▁the", "<0x0A>"): points
 * into the tokenizer. REALM_E_RANGE when id is out of range. */
realm_status realm_tokenizer_token_text(const realm_tokenizer_t *t, int32_t id, const char **ptr,
                                        size_t *len);
/* The bytes the token stands for in decoded text ("Ġthe" → " the", "<0x0A>" →
 * "\n"; control and user-defined tokens: their text). May be a partial UTF-8
 * sequence. REALM_E_RANGE when id is out of range. */
realm_status realm_tokenizer_token_bytes(const realm_tokenizer_t *t, int32_t id, const char **ptr,
                                         size_t *len);
/* Longest token_bytes of any token (sizing buffers for the detokenizer). */
size_t realm_tokenizer_max_token_bytes(const realm_tokenizer_t *t);
/* Id of a token spelled exactly text[0..len) (any type), or -1. */
int32_t realm_tokenizer_find(const realm_tokenizer_t *t, const char *text, size_t len);

#endif
