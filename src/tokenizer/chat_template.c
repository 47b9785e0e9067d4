/*
 * tokenizer/chat_template.c — chat templates: recognise the family, compile the
 * model's template with the Jinja subset, fall back to the family's built-in
 * template when that fails, and render conversations.
 *
 * The built-in templates are the published templates of one representative
 * model per family (named below), so a model whose own template the subset
 * cannot compile still gets its family's format, rendered the same way.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "tokenizer/chat_jinja.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"

static const realm__jinja_limits LIMITS = {
    .max_template_bytes = REALM_CHAT_TEMPLATE_MAX_BYTES,
    .max_depth = REALM_CHAT_MAX_DEPTH,
    .max_steps = REALM_CHAT_MAX_STEPS,
    .max_output_bytes = REALM_CHAT_MAX_OUTPUT_BYTES,
    .max_memory_bytes = REALM_CHAT_MAX_MEMORY_BYTES,
};

typedef struct family_info {
    const char *name;
    const char *markers[3]; /* all must occur in the template text */
    const char *builtin;    /* Jinja source used when the model's own fails */
} family_info;

/* Indexed by realm_chat_family. */
static const family_info FAMILIES[REALM_CHAT_FAMILY_COUNT] = {
    [REALM_CHAT_FAMILY_UNKNOWN] = {"unknown", {NULL}, NULL},
    /* teknium/OpenHermes-2.5-Mistral-7B: plain ChatML */
    [REALM_CHAT_FAMILY_CHATML] =
        {"chatml",
         {"<|im_start|>"},
         "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
         "{{ '<|im_start|>assistant\\n' }}{% endif %}"},
    /* meta-llama/Meta-Llama-3-8B-Instruct */
    [REALM_CHAT_FAMILY_LLAMA3] =
        {"llama3",
         {"<|start_header_id|>"},
         "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
         "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] "
         "| trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content "
         "%}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
         "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"},
    /* meta-llama/Llama-2-7b-chat-hf */
    [REALM_CHAT_FAMILY_LLAMA2] =
        {"llama2",
         {"[INST]", "<<SYS>>"},
         "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set "
         "system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% "
         "set system_message = false %}{% endif %}{% for message in loop_messages %}{% if "
         "(message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation "
         "roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 "
         "== 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
         "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] "
         "%}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
         "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + "
         "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"},
    /* mistralai/Mixtral-8x7B-Instruct-v0.1 (Mistral's v1 [INST] format) */
    [REALM_CHAT_FAMILY_MISTRAL] =
        {"mistral",
         {"[INST]"},
         "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
         "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
         "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ "
         "'[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' "
         "%}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and "
         "assistant roles are supported!') }}{% endif %}{% endfor %}"},
    /* google/gemma-3-*-it, text part: system folded into the first user turn */
    [REALM_CHAT_FAMILY_GEMMA] =
        {"gemma",
         {"<start_of_turn>"},
         "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = "
         "messages[0]['content'] + '\\n\\n' -%}{%- set loop_messages = messages[1:] -%}{%- else "
         "-%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif "
         "-%}{%- for message in loop_messages -%}{%- if (message['role'] == 'user') != "
         "(loop.index0 % 2 == 0) -%}{{ raise_exception(\"Conversation roles must alternate "
         "user/assistant/user/assistant/...\") }}{%- endif -%}{%- if (message['role'] == "
         "'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] "
         "-%}{%- endif -%}{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first "
         "else \"\") }}{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}{%- endfor -%}{%- if "
         "add_generation_prompt -%}{{'<start_of_turn>model\\n'}}{%- endif -%}"},
    /* HuggingFaceH4/zephyr-7b-beta (also TinyLlama-1.1B-Chat-v1.0) */
    [REALM_CHAT_FAMILY_ZEPHYR] =
        {"zephyr",
         {"<|user|>"},
         "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
         "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
         "'<|system|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
         "'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif "
         "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% "
         "endfor %}"},
    /* microsoft/Phi-3-mini-4k-instruct */
    [REALM_CHAT_FAMILY_PHI3] =
        {"phi3",
         {"<|user|>", "<|end|>"},
         "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
         "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' "
         "+ message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' "
         "%}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% "
         "if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"},
};

/* More specific families first: Llama 2 also has [INST], Phi-3 also has <|user|>. */
static const realm_chat_family DETECT_ORDER[] = {
    REALM_CHAT_FAMILY_LLAMA3, REALM_CHAT_FAMILY_CHATML,  REALM_CHAT_FAMILY_GEMMA,
    REALM_CHAT_FAMILY_LLAMA2, REALM_CHAT_FAMILY_MISTRAL, REALM_CHAT_FAMILY_PHI3,
    REALM_CHAT_FAMILY_ZEPHYR,
};

struct realm_chat_template {
    realm_chat_family family;
    realm_chat_source source;
    char reason[REALM_ERROR_MESSAGE_MAX];
    char *bos, *eos;
    realm__jinja_program *prog;     /* what renders */
    realm__jinja_program *fallback; /* the family's built-in, when prog is the model's */
};

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, m)) return true;
    return false;
}

static realm_chat_family detect(const char *text, size_t len)
{
    for (size_t i = 0; i < sizeof DETECT_ORDER / sizeof DETECT_ORDER[0]; i++) {
        const family_info *f = &FAMILIES[DETECT_ORDER[i]];
        bool all = true;
        for (int k = 0; k < 3 && f->markers[k] && all; k++)
            all = contains(text, len, f->markers[k]);
        if (all) return DETECT_ORDER[i];
    }
    return REALM_CHAT_FAMILY_UNKNOWN;
}

const char *realm_chat_family_name(realm_chat_family f)
{
    return (unsigned)f < REALM_CHAT_FAMILY_COUNT ? FAMILIES[f].name : "invalid";
}

static realm_status compile_builtin(realm_chat_family f, realm__jinja_program **out,
                                    realm_error *err)
{
    const char *src =
        FAMILIES[f == REALM_CHAT_FAMILY_UNKNOWN ? REALM_CHAT_FAMILY_CHATML : f].builtin;
    realm_error e = {0};
    realm_status st = realm__jinja_compile(src, strlen(src), &LIMITS, out, &e);
    if (st == REALM_E_NOMEM)
        return realm_error_set(err, st, "out of memory compiling a chat template");
    if (st)
        return realm_error_set(err, REALM_E_INTERNAL, "built-in %s chat template: %s",
                               realm_chat_family_name(f), e.message);
    return REALM_OK;
}

void realm_chat_template_free(realm_chat_template_t *t)
{
    if (!t) return;
    realm__jinja_free(t->prog);
    realm__jinja_free(t->fallback);
    realm_free(t->bos);
    realm_free(t->eos);
    realm_free(t);
}

realm_status realm_chat_template_init(const char *template_text, size_t len, const char *bos,
                                      const char *eos, realm_chat_template_t **out,
                                      realm_error *err)
{
    if (!out || (!template_text && len))
        return realm_error_set(err, REALM_E_INVALID, "realm_chat_template_init: bad arguments");
    *out = NULL;
    realm_chat_template_t *t = realm_calloc(1, sizeof *t);
    if (!t) return realm_error_set(err, REALM_E_NOMEM, "out of memory for a chat template");
    if ((bos && !(t->bos = realm_strdup(bos))) || (eos && !(t->eos = realm_strdup(eos)))) {
        realm_chat_template_free(t);
        return realm_error_set(err, REALM_E_NOMEM, "out of memory for a chat template");
    }
    realm_status st;
    if (len == 0) {
        snprintf(t->reason, sizeof t->reason, "the model has no chat template");
    } else {
        t->family = detect(template_text, len);
        realm_error e = {0};
        st = realm__jinja_compile(template_text, len, &LIMITS, &t->prog, &e);
        if (st == REALM_E_NOMEM) {
            realm_chat_template_free(t);
            return realm_error_set(err, st, "out of memory compiling the chat template");
        }
        if (st) snprintf(t->reason, sizeof t->reason, "%s", e.message);
    }
    /* The family's built-in renders when the model's template could not be
     * compiled, and backs it up when a render needs something the subset lacks. */
    st = compile_builtin(t->family, t->prog ? &t->fallback : &t->prog, err);
    if (st) {
        realm_chat_template_free(t);
        return st;
    }
    t->source = t->fallback ? REALM_CHAT_SOURCE_MODEL : REALM_CHAT_SOURCE_BUILTIN;
    if (t->source == REALM_CHAT_SOURCE_BUILTIN)
        realm_log(REALM_LOG_WARN, "chat template: %s; using the built-in %s template", t->reason,
                  t->family == REALM_CHAT_FAMILY_UNKNOWN ? "chatml"
                                                         : realm_chat_family_name(t->family));
    else if (t->family == REALM_CHAT_FAMILY_UNKNOWN)
        realm_log(REALM_LOG_INFO, "chat template: not a known family; rendering it as written");
    *out = t;
    return REALM_OK;
}

realm_chat_family realm_chat_template_family(const realm_chat_template_t *t)
{
    return t->family;
}
const char *realm_chat_template_family_name(const realm_chat_template_t *t)
{
    return realm_chat_family_name(t->family);
}
realm_chat_source realm_chat_template_source(const realm_chat_template_t *t)
{
    return t->source;
}
const char *realm_chat_template_fallback_reason(const realm_chat_template_t *t)
{
    return t->source == REALM_CHAT_SOURCE_BUILTIN ? t->reason : "";
}

realm_status realm_chat_render(const realm_chat_template_t *t, const realm_chat_message *msgs,
                               size_t n, bool add_generation_prompt, char **out_text,
                               size_t *out_len, realm_error *err)
{
    if (!t || !out_text || !out_len || (n && !msgs))
        return realm_error_set(err, REALM_E_INVALID, "realm_chat_render: bad arguments");
    if (n == 0) return realm_error_set(err, REALM_E_INVALID, "cannot render an empty conversation");
    for (size_t i = 0; i < n; i++) {
        const char *fields[2] = {msgs[i].role, msgs[i].content};
        for (int k = 0; k < 2; k++) {
            if (!fields[k])
                return realm_error_set(err, REALM_E_INVALID, "message %zu has no %s", i,
                                       k ? "content" : "role");
            size_t len = strlen(fields[k]), bad = realm_utf8_invalid_offset(fields[k], len);
            if (bad < len)
                return realm_error_set(err, REALM_E_INVALID,
                                       "message %zu %s is not valid UTF-8 (byte %zu)", i,
                                       k ? "content" : "role", bad);
        }
    }
    realm__jinja_inputs in = {msgs, n, add_generation_prompt, t->bos, t->eos};
    realm_error e = {0};
    realm_status st = realm__jinja_render(t->prog, &in, &LIMITS, out_text, out_len, &e);
    if (st == REALM_E_UNSUPPORTED && t->fallback) {
        realm_log(
            REALM_LOG_WARN,
            "chat template: %s; rendering this request with the built-in %s template", e.message,
            t->family == REALM_CHAT_FAMILY_UNKNOWN ? "chatml" : realm_chat_family_name(t->family));
        st = realm__jinja_render(t->fallback, &in, &LIMITS, out_text, out_len, &e);
    }
    if (st) return realm_error_set(err, st, "chat template: %s", e.message);
    return REALM_OK;
}
