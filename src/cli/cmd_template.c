/* realm template — which chat template a model got (its family, whether the
 * model's own template is used or a built-in fallback, and why), and with
 * --messages what a conversation renders to. --template-file renders a
 * template without a model, with --bos/--eos standing in for the model's
 * tokens; --prompt-only prints just the rendered bytes (for scripts). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"

#define USAGE                                                                                      \
    "usage: realm template MODEL.gguf|--template-file PATH [--bos TEXT] [--eos TEXT]\n"            \
    "                      [--messages FILE.json|-] [--no-generation-prompt] [--prompt-only]\n"    \
    "messages: a JSON array of {\"role\": ..., \"content\": \"...\"}, or an object with one\n"     \
    "under \"messages\" (an OpenAI request body)\n"

typedef struct inputs {
    char *text;
    size_t len;
    char *bos, *eos;
} inputs;

static void inputs_free(inputs *in)
{
    realm_free(in->text);
    realm_free(in->bos);
    realm_free(in->eos);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = realm_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Read up to one byte more than a template may have, so the size limit is
 * reported by the template module rather than hidden by truncation. */
static int read_template_file(const char *path, inputs *in)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = (size_t)REALM_CHAT_TEMPLATE_MAX_BYTES + 1;
    in->text = realm_malloc(cap + 1);
    if (!in->text) {
        fclose(f);
        fprintf(stderr, "realm template: out of memory\n");
        return 1;
    }
    in->len = fread(in->text, 1, cap, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "realm template: cannot read %s\n", path);
        return 1;
    }
    in->text[in->len] = '\0';
    return 0;
}

/* The token string with the id stored under key, or NULL. */
static char *token_by_key(const realm_gguf_t *g, const char *key)
{
    uint32_t id;
    realm_gguf_kind kind;
    uint64_t n;
    int64_t tokens = realm_gguf_find_key(g, "tokenizer.ggml.tokens");
    if (realm_gguf_get_u32(g, key, &id, NULL) || tokens < 0 ||
        realm_gguf_kv_arr(g, tokens, &kind, &n) || kind != REALM_GGUF_STRING || id >= n)
        return NULL;
    realm_gguf_str s = realm_gguf_arr_str(g, tokens, id);
    return dup_n(s.ptr, s.len);
}

static int read_model(const char *path, inputs *in)
{
    realm_gguf_t *g;
    realm_error err = {0};
    if (realm_gguf_open(path, &g, &err)) {
        fprintf(stderr, "realm template: %s: %s\n", path, err.message);
        return 1;
    }
    realm_gguf_str s;
    int rc = 0;
    if (!realm_gguf_get_str(g, "tokenizer.chat_template", &s, NULL) && s.len) {
        in->len = s.len;
        if (!(in->text = dup_n(s.ptr, s.len))) rc = 1;
    }
    if (!in->bos) in->bos = token_by_key(g, "tokenizer.ggml.bos_token_id");
    if (!in->eos) in->eos = token_by_key(g, "tokenizer.ggml.eos_token_id");
    realm_gguf_close(g);
    if (rc) fprintf(stderr, "realm template: out of memory\n");
    return rc;
}

/* Messages from JSON; role/content point into root (kept alive by the caller). */
static int parse_messages(json_t *root, realm_chat_message **out, size_t *n_out)
{
    json_t *arr = json_is_object(root) ? json_object_get(root, "messages") : root;
    if (!json_is_array(arr)) {
        fprintf(stderr,
                "realm template: messages must be a JSON array (or {\"messages\": [...]})\n");
        return 1;
    }
    size_t n = json_array_size(arr);
    realm_chat_message *msgs = realm_calloc(n ? n : 1, sizeof *msgs);
    if (!msgs) {
        fprintf(stderr, "realm template: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role) || !json_is_string(content)) {
            fprintf(stderr, "realm template: message %zu needs string \"role\" and \"content\"\n",
                    i);
            realm_free(msgs);
            return 1;
        }
        const char *key;
        json_t *v;
        json_object_foreach(m, key, v) if (strcmp(key, "role") && strcmp(key, "content")) fprintf(
            stderr,
            "realm template: note: message %zu: field \"%s\" is not passed to the template\n", i,
            key);
        msgs[i].role = json_string_value(role);
        msgs[i].content = json_string_value(content);
    }
    *out = msgs;
    *n_out = n;
    return 0;
}

static int render(const realm_chat_template_t *t, const char *path, bool gen_prompt,
                  bool prompt_only)
{
    json_error_t jerr;
    json_t *root = !strcmp(path, "-") ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
                                      : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        fprintf(stderr, "realm template: %s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
        return 1;
    }
    realm_chat_message *msgs = NULL;
    size_t n = 0;
    int rc = parse_messages(root, &msgs, &n);
    if (rc == 0) {
        char *text = NULL;
        size_t len = 0;
        realm_error err = {0};
        if (realm_chat_render(t, msgs, n, gen_prompt, &text, &len, &err)) {
            fprintf(stderr, "realm template: %s\n", err.message);
            rc = 1;
        } else {
            if (!prompt_only) printf("--- prompt (%zu bytes) ---\n", len);
            fwrite(text, 1, len, stdout);
            if (!prompt_only) printf("\n--- end ---\n");
            realm_free(text);
        }
    }
    realm_free(msgs);
    json_decref(root);
    return rc;
}

int realm_cmd_template(int argc, char **argv)
{
    const char *model = NULL, *template_file = NULL, *messages = NULL;
    bool gen_prompt = true, prompt_only = false;
    inputs in = {0};
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--template-file") && has_value)
            template_file = argv[++i];
        else if (!strcmp(a, "--messages") && has_value)
            messages = argv[++i];
        else if (!strcmp(a, "--bos") && has_value) {
            realm_free(in.bos);
            in.bos = realm_strdup(argv[++i]);
        } else if (!strcmp(a, "--eos") && has_value) {
            realm_free(in.eos);
            in.eos = realm_strdup(argv[++i]);
        } else if (!strcmp(a, "--no-generation-prompt"))
            gen_prompt = false;
        else if (!strcmp(a, "--prompt-only"))
            prompt_only = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            inputs_free(&in);
            return 0;
        } else if (a[0] != '-' && !model)
            model = a;
        else {
            fprintf(stderr, "realm template: unexpected argument '%s'\n%s", a, USAGE);
            goto done;
        }
    }
    if (!model == !template_file) {
        fprintf(stderr, "realm template: give a MODEL.gguf or --template-file PATH\n%s", USAGE);
        goto done;
    }
    if (prompt_only && !messages) {
        fprintf(stderr, "realm template: --prompt-only needs --messages\n%s", USAGE);
        goto done;
    }
    rc = template_file ? read_template_file(template_file, &in) : read_model(model, &in);
    if (rc) goto done;

    realm_chat_template_t *t;
    realm_error err = {0};
    if (realm_chat_template_init(in.text, in.len, in.bos, in.eos, &t, &err)) {
        fprintf(stderr, "realm template: %s\n", err.message);
        rc = 1;
        goto done;
    }
    if (!prompt_only) {
        realm_chat_family f = realm_chat_template_family(t);
        printf("family: %s (%s)\n", realm_chat_template_family_name(t),
               f == REALM_CHAT_FAMILY_UNKNOWN ? "not recognised" : "recognised");
        if (realm_chat_template_source(t) == REALM_CHAT_SOURCE_MODEL)
            printf("template: the model's own (%zu bytes), rendered by the Jinja interpreter\n",
                   in.len);
        else
            printf("template: built-in %s (fallback: %s)\n",
                   f == REALM_CHAT_FAMILY_UNKNOWN ? "chatml" : realm_chat_family_name(f),
                   realm_chat_template_fallback_reason(t));
        printf("bos_token: %s\neos_token: %s\n", in.bos ? in.bos : "(undefined)",
               in.eos ? in.eos : "(undefined)");
    }
    rc = messages ? render(t, messages, gen_prompt, prompt_only) : 0;
    realm_chat_template_free(t);
done:
    inputs_free(&in);
    return rc;
}
