/*
 * tokenizer/chat_jinja.h — internal: the Jinja2 subset that renders chat templates.
 *
 * Contract: realm__jinja_compile lexes and parses a template once into an
 * immutable program; realm__jinja_render executes it for one conversation and
 * returns the text. The semantics are those of Jinja2 3.1 as Hugging Face
 * transformers configures it for apply_chat_template (trim_blocks,
 * lstrip_blocks, the loopcontrols extension, raise_exception, tojson as
 * json.dumps, namespace, strftime_now, an immutable sandbox) — byte-identical
 * output is the goal, and what the subset lacks is reported as an error at
 * compile time where it can be (unknown tags, filters, tests) and at render time
 * otherwise, never approximated.
 *
 * Limits bound every resource a hostile template can grab: template size, the
 * nesting depth of blocks and expressions, executed steps, output bytes and
 * the memory one render may use. Exceeding one is REALM_E_RANGE with a message.
 *
 * Errors: REALM_E_FORMAT (syntax), REALM_E_UNSUPPORTED (outside the subset),
 * REALM_E_INVALID (the template raised, or a type error such as 'str' + 'int'),
 * REALM_E_RANGE (a limit), REALM_E_NOMEM. Messages name the template line.
 * Thread-safety: a program is immutable after compile; renders of one program
 * may run concurrently (each has its own memory).
 */
#ifndef REALM_TOKENIZER_CHAT_JINJA_H
#define REALM_TOKENIZER_CHAT_JINJA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"
#include "tokenizer/chat_template.h"

typedef struct realm__jinja_program realm__jinja_program;

typedef struct realm__jinja_limits {
    size_t max_template_bytes;
    int max_depth;           /* nesting of blocks, and of expressions */
    unsigned long max_steps; /* statements executed + loop iterations + items filtered */
    size_t max_output_bytes;
    size_t max_memory_bytes; /* everything one render allocates */
} realm__jinja_limits;

/* What a template sees: the variables transformers passes to render(). */
typedef struct realm__jinja_inputs {
    const realm_chat_message *messages;
    size_t n_messages;
    bool add_generation_prompt;
    const char *bos_token; /* NULL: undefined */
    const char *eos_token;
} realm__jinja_inputs;

realm_status realm__jinja_compile(const char *src, size_t len, const realm__jinja_limits *lim,
                                  realm__jinja_program **out, realm_error *err);
void realm__jinja_free(realm__jinja_program *p);

/* *out is NUL-terminated, allocated with realm_malloc; the caller frees it. */
realm_status realm__jinja_render(const realm__jinja_program *p, const realm__jinja_inputs *in,
                                 const realm__jinja_limits *lim, char **out, size_t *out_len,
                                 realm_error *err);

#endif
