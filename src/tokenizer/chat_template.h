/*
 * tokenizer/chat_template.h — turn a conversation into the prompt text a model
 * was trained on, from the template it ships (GGUF `tokenizer.chat_template`).
 *
 * How: the template text is compiled by a Jinja2 subset interpreter
 * (chat_jinja.h) that renders byte-identically to Hugging Face transformers'
 * apply_chat_template, so any template the subset covers is rendered as the
 * model's authors wrote it, default system prompts and quirks included. The
 * family (ChatML, Llama 3, Llama 2, Mistral [INST], Gemma, Zephyr, Phi-3) is
 * also recognised from marker strings in the text: it names the format in
 * logs and `realm template`, and it picks the fallback. When the model's
 * template cannot be compiled (outside the subset, malformed, too large) or is
 * absent, the family's built-in template is used instead — ChatML when the
 * family is unknown — and a warning is logged with the reason.
 *
 * Rendering sees the variables transformers passes: messages (dicts with role
 * and content), add_generation_prompt, bos_token, eos_token, tools = none,
 * documents = none. Roles are free strings (system/user/assistant, tool, ...);
 * the template decides what it accepts and may raise (e.g. Llama 2 and Gemma
 * require user/assistant alternation): that is REALM_E_INVALID with the
 * template's message.
 *
 * Ownership: realm_chat_template_init copies what it needs from its arguments.
 * realm_chat_render returns text allocated with realm_malloc (NUL-terminated,
 * the caller frees it with realm_free); messages are only read during the call.
 *
 * Errors: REALM_E_INVALID (bad arguments, an empty conversation, text that is
 * not UTF-8, the template raised or hit a type error), REALM_E_RANGE (a render
 * exceeded its step, output or memory limit), REALM_E_UNSUPPORTED (the template
 * compiled but used something outside the subset at render time),
 * REALM_E_NOMEM.
 *
 * Thread-safety: a realm_chat_template_t is immutable after init; any number of
 * threads may render with it at once.
 */
#ifndef REALM_TOKENIZER_CHAT_TEMPLATE_H
#define REALM_TOKENIZER_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

/* Limits applied to every template (hostile ones included). */
#define REALM_CHAT_TEMPLATE_MAX_BYTES (1u << 20)   /* template text */
#define REALM_CHAT_MAX_DEPTH          128          /* nested blocks / expressions */
#define REALM_CHAT_MAX_STEPS          4000000ul    /* statements + iterations per render */
#define REALM_CHAT_MAX_OUTPUT_BYTES   (64u << 20)  /* rendered prompt */
#define REALM_CHAT_MAX_MEMORY_BYTES   (256u << 20) /* scratch memory per render */

typedef enum realm_chat_family {
    REALM_CHAT_FAMILY_UNKNOWN = 0,
    REALM_CHAT_FAMILY_CHATML,  /* <|im_start|>role\n...<|im_end|> (SmolLM2, Qwen2) */
    REALM_CHAT_FAMILY_LLAMA3,  /* <|start_header_id|>role<|end_header_id|> */
    REALM_CHAT_FAMILY_LLAMA2,  /* [INST] <<SYS>> ... <</SYS>> */
    REALM_CHAT_FAMILY_MISTRAL, /* [INST] ... [/INST] without <<SYS>> */
    REALM_CHAT_FAMILY_GEMMA,   /* <start_of_turn>role */
    REALM_CHAT_FAMILY_ZEPHYR,  /* <|user|>\n...eos (Zephyr, TinyLlama) */
    REALM_CHAT_FAMILY_PHI3,    /* <|user|>\n...<|end|> */
    REALM_CHAT_FAMILY_COUNT
} realm_chat_family;

/* Which template renders. */
typedef enum realm_chat_source {
    REALM_CHAT_SOURCE_MODEL = 0, /* the model's own template text */
    REALM_CHAT_SOURCE_BUILTIN,   /* the family's built-in template (fallback) */
    REALM_CHAT_SOURCE_COUNT
} realm_chat_source;

typedef struct realm_chat_message {
    const char *role;    /* NUL-terminated UTF-8 */
    const char *content; /* NUL-terminated UTF-8 */
} realm_chat_message;

typedef struct realm_chat_template realm_chat_template_t;

/* Compile template_text[0..len) (NULL or len 0: the model has none). bos and
 * eos are the token strings the template may use (NULL: undefined there).
 * Falls back as described above rather than failing: only bad arguments
 * (REALM_E_INVALID) and allocation failure (REALM_E_NOMEM) fail. */
realm_status realm_chat_template_init(const char *template_text, size_t len, const char *bos,
                                      const char *eos, realm_chat_template_t **out,
                                      realm_error *err);
void realm_chat_template_free(realm_chat_template_t *t);

realm_chat_family realm_chat_template_family(const realm_chat_template_t *t);
/* Short stable name: "chatml", "llama3", ..., "unknown". */
const char *realm_chat_family_name(realm_chat_family f);
/* The family of t by name. */
const char *realm_chat_template_family_name(const realm_chat_template_t *t);
realm_chat_source realm_chat_template_source(const realm_chat_template_t *t);
/* Why the built-in template is used ("" when the model's template is used). */
const char *realm_chat_template_fallback_reason(const realm_chat_template_t *t);

/* Render n messages; add_generation_prompt appends the header that starts the
 * assistant's reply. On success *out_text (NUL-terminated) and *out_len are
 * set; the caller frees *out_text with realm_free. */
realm_status realm_chat_render(const realm_chat_template_t *t, const realm_chat_message *msgs,
                               size_t n, bool add_generation_prompt, char **out_text,
                               size_t *out_len, realm_error *err);

#endif
