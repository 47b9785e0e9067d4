/* Unit tests for tokenizer/chat_template and its Jinja subset: exact prompts for
 * each family's format, family recognition, the built-in fallback and why it
 * was taken, Jinja semantics chat templates lean on (whitespace control, loop
 * variables, namespaces, filters, raise_exception), hostile templates (huge,
 * deeply nested, unterminated, endless loops, enormous output) that must end
 * in a clear error, and allocation failure at every point of init + render.
 * The oracle test (tests/oracle/test_chat_template_oracle.py) compares real
 * models' templates with jinja2 byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/log.h"
#include "tokenizer/chat_jinja.h"
#include "tokenizer/chat_template.h"

static const realm__jinja_limits LIM = {
    .max_template_bytes = REALM_CHAT_TEMPLATE_MAX_BYTES,
    .max_depth = REALM_CHAT_MAX_DEPTH,
    .max_steps = REALM_CHAT_MAX_STEPS,
    .max_output_bytes = REALM_CHAT_MAX_OUTPUT_BYTES,
    .max_memory_bytes = REALM_CHAT_MAX_MEMORY_BYTES,
};

static const realm_chat_message SYS_USER[] = {
    {"system", "You are terse."},
    {"user", "Hi"},
};
static const realm_chat_message MULTI[] = {
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "Bye"},
};

/* Render msgs with template src (bos <s>, eos </s>) and compare with want. */
static void expect_render(const char *src, const realm_chat_message *msgs, size_t n, bool gen,
                          const char *want)
{
    realm_chat_template_t *t;
    realm_error err = {0};
    assert_int_equal(realm_chat_template_init(src, strlen(src), "<s>", "</s>", &t, &err), REALM_OK);
    char *text = NULL;
    size_t len = 0;
    realm_status st = realm_chat_render(t, msgs, n, gen, &text, &len, &err);
    if (st) fprintf(stderr, "render: %s\n", err.message);
    assert_int_equal(st, REALM_OK);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    realm_free(text);
    realm_chat_template_free(t);
}

/* Compile + render src through the interpreter directly; returns the status,
 * the text in *out (caller frees) and the message in err. */
static realm_status jinja(const char *src, const realm_chat_message *msgs, size_t n, char **out,
                          realm_error *err)
{
    realm__jinja_program *p = NULL;
    *out = NULL;
    realm_status st = realm__jinja_compile(src, strlen(src), &LIM, &p, err);
    if (st) return st;
    realm__jinja_inputs in = {msgs, n, true, "<s>", "</s>"};
    size_t len;
    st = realm__jinja_render(p, &in, &LIM, out, &len, err);
    realm__jinja_free(p);
    return st;
}

static void expect_jinja(const char *src, const char *want)
{
    char *out;
    realm_error err = {0};
    realm_status st = jinja(src, MULTI, 3, &out, &err);
    if (st) fprintf(stderr, "%s: %s\n", src, err.message);
    assert_int_equal(st, REALM_OK);
    assert_string_equal(out, want);
    realm_free(out);
}

static void expect_jinja_error(const char *src, realm_status want, const char *msg_part)
{
    char *out;
    realm_error err = {0};
    realm_status st = jinja(src, MULTI, 3, &out, &err);
    if (st != want || !strstr(err.message, msg_part))
        fprintf(stderr, "template %.60s...: status %d, message '%s'\n", src, st, err.message);
    assert_int_equal(st, want);
    assert_non_null(strstr(err.message, msg_part));
    assert_null(out);
}

/* ---- family formats, through the built-in templates ---- */

static const char *builtin_of(const char *markers)
{
    /* An uncompilable template carrying the family's markers falls back to
     * the family's built-in: the way to reach each built-in directly. */
    static char buf[256];
    snprintf(buf, sizeof buf, "%s {%% bogus_tag %%}", markers);
    return buf;
}

static void test_builtin_formats(void **state)
{
    (void)state;
    realm_log_set_level(REALM_LOG_ERROR);
    expect_render(builtin_of("<|im_start|>"), SYS_USER, 2, true,
                  "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_render(builtin_of("<|start_header_id|>"), SYS_USER, 2, true,
                  "<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_render(builtin_of("[INST] <<SYS>>"), SYS_USER, 2, true,
                  "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST]");
    expect_render(builtin_of("[INST]"), MULTI, 3, false,
                  "<s>[INST] Hi [/INST]Hello!</s>[INST] Bye [/INST]");
    expect_render(
        builtin_of("<start_of_turn>"), SYS_USER, 2, true,
        "<s><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    expect_render(
        builtin_of("<|user|>"), MULTI, 3, true,
        "<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n");
    expect_render(builtin_of("<|user|> <|end|>"), MULTI, 3, false,
                  "<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n</s>");
    realm_log_set_level(REALM_LOG_INFO);
}

/* SmolLM2's own template (the default model's): a default system prompt when
 * the conversation has none. */
static void test_smollm2_default_system(void **state)
{
    (void)state;
    static const char *SMOL =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
        "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
        "'<|im_start|>assistant\\n' }}{% endif %}";
    static const realm_chat_message user[] = {{"user", "What is 2+2?"}};
    expect_render(SMOL, user, 1, true,
                  "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                  "Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_render(SMOL, SYS_USER, 2, false,
                  "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    realm_chat_template_t *t;
    realm_error err = {0};
    assert_int_equal(realm_chat_template_init(SMOL, strlen(SMOL), NULL, NULL, &t, &err), REALM_OK);
    assert_int_equal(realm_chat_template_family(t), REALM_CHAT_FAMILY_CHATML);
    assert_string_equal(realm_chat_template_family_name(t), "chatml");
    assert_int_equal(realm_chat_template_source(t), REALM_CHAT_SOURCE_MODEL);
    assert_string_equal(realm_chat_template_fallback_reason(t), "");
    realm_chat_template_free(t);
}

static void test_family_detection(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        realm_chat_family f;
    } cases[] = {
        {"{{ '<|im_start|>' }}", REALM_CHAT_FAMILY_CHATML},
        {"{{ '<|start_header_id|>' }}", REALM_CHAT_FAMILY_LLAMA3},
        {"{{ '[INST] <<SYS>>' }}", REALM_CHAT_FAMILY_LLAMA2},
        {"{{ '[INST]' }}", REALM_CHAT_FAMILY_MISTRAL},
        {"{{ '<start_of_turn>' }}", REALM_CHAT_FAMILY_GEMMA},
        {"{{ '<|user|>' }}", REALM_CHAT_FAMILY_ZEPHYR},
        {"{{ '<|user|><|end|>' }}", REALM_CHAT_FAMILY_PHI3},
        {"{{ 'User: ' }}", REALM_CHAT_FAMILY_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        realm_chat_template_t *t;
        realm_error err = {0};
        assert_int_equal(
            realm_chat_template_init(cases[i].text, strlen(cases[i].text), NULL, NULL, &t, &err),
            REALM_OK);
        assert_int_equal(realm_chat_template_family(t), cases[i].f);
        assert_int_equal(realm_chat_template_source(t), REALM_CHAT_SOURCE_MODEL);
        realm_chat_template_free(t);
    }
    assert_string_equal(realm_chat_family_name(REALM_CHAT_FAMILY_GEMMA), "gemma");
    assert_string_equal(realm_chat_family_name(REALM_CHAT_FAMILY_COUNT), "invalid");
}

static void test_fallback(void **state)
{
    (void)state;
    realm_log_set_level(REALM_LOG_ERROR);
    realm_chat_template_t *t;
    realm_error err = {0};
    /* No template at all: ChatML. */
    assert_int_equal(realm_chat_template_init(NULL, 0, NULL, NULL, &t, &err), REALM_OK);
    assert_int_equal(realm_chat_template_source(t), REALM_CHAT_SOURCE_BUILTIN);
    assert_int_equal(realm_chat_template_family(t), REALM_CHAT_FAMILY_UNKNOWN);
    assert_non_null(strstr(realm_chat_template_fallback_reason(t), "no chat template"));
    char *text;
    size_t len;
    assert_int_equal(realm_chat_render(t, SYS_USER + 1, 1, true, &text, &len, &err), REALM_OK);
    assert_string_equal(text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    realm_free(text);
    realm_chat_template_free(t);
    /* Unknown tag: the reason names it and the line. */
    const char *bad = "line one\n{% frobnicate %}";
    assert_int_equal(realm_chat_template_init(bad, strlen(bad), NULL, NULL, &t, &err), REALM_OK);
    assert_int_equal(realm_chat_template_source(t), REALM_CHAT_SOURCE_BUILTIN);
    assert_non_null(strstr(realm_chat_template_fallback_reason(t), "frobnicate"));
    assert_non_null(strstr(realm_chat_template_fallback_reason(t), "2"));
    realm_chat_template_free(t);
    realm_log_set_level(REALM_LOG_INFO);
}

static void test_render_errors(void **state)
{
    (void)state;
    realm_chat_template_t *t;
    realm_error err = {0};
    const char *src = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role "
                      "not supported') }}{% endif %}{{ messages[0]['content'] }}";
    assert_int_equal(realm_chat_template_init(src, strlen(src), NULL, NULL, &t, &err), REALM_OK);
    char *text = NULL;
    size_t len;
    assert_int_equal(realm_chat_render(t, SYS_USER, 2, true, &text, &len, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "System role not supported"));
    assert_null(text);
    assert_int_equal(realm_chat_render(t, SYS_USER, 0, true, &text, &len, &err), REALM_E_INVALID);
    realm_chat_message bad_utf8[] = {{"user", "\xff\xfe"}};
    assert_int_equal(realm_chat_render(t, bad_utf8, 1, true, &text, &len, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "UTF-8"));
    realm_chat_message no_content[] = {{"user", NULL}};
    assert_int_equal(realm_chat_render(t, no_content, 1, true, &text, &len, &err), REALM_E_INVALID);
    realm_chat_template_free(t);
    assert_int_equal(realm_chat_template_init(NULL, 5, NULL, NULL, &t, &err), REALM_E_INVALID);
}

/* ---- Jinja semantics chat templates rely on ---- */

static void test_jinja_semantics(void **state)
{
    (void)state;
    /* trim_blocks + lstrip_blocks, and '-' whitespace control. */
    expect_jinja("  {% for m in messages %}\n[{{ m.role }}]\n  {% endfor %}\nend",
                 "[user]\n[assistant]\n[user]\nend");
    expect_jinja("a  {%- if true -%}  b  {%- endif %} c", "ab c");
    /* loop variables, filters, slicing, string methods. */
    expect_jinja("{% for m in messages %}{{ loop.index }}/{{ loop.length }}"
                 "{{ '!' if loop.last }}{% endfor %}",
                 "1/32/33/3!");
    expect_jinja("{{ messages[1:] | length }}{{ messages[-1]['content'] | upper }}"
                 "{{ '  x  '.strip() }}{{ 'a,b'.split(',') | join('+') }}",
                 "2BYEx"
                 "a+b");
    expect_jinja("{{ 'héllo'[1:3] }}{{ 'abc'[::-1] }}", "élcba");
    /* namespace() survives loop scopes; plain set does not. */
    expect_jinja("{% set ns = namespace(n=0) %}{% set k = 0 %}{% for m in messages %}"
                 "{% set ns.n = ns.n + 1 %}{% set k = k + 1 %}{% endfor %}{{ ns.n }},{{ k }}",
                 "3,0");
    /* tojson is transformers' json.dumps filter: no HTML escaping, ensure_ascii off. */
    expect_jinja("{{ {'a': [1, 2.5, none, true], 'b': '<é\">'} | tojson }}",
                 "{\"a\": [1, 2.5, null, true], \"b\": \"<é\\\">\"}");
    /* macros, is defined, in, loop controls. */
    expect_jinja(
        "{% macro w(x, y='!') %}<{{ x }}{{ y }}>{% endmacro %}{{ w('a') }}{{ w('b', y='?') }}"
        "{{ tools is none }}{{ foo is defined }}{{ 'ss' in 'assist' }}"
        "{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
        "<a!><b?>TrueFalseTrue012");
    /* Jinja-looking message text is data, never re-evaluated. */
    static const realm_chat_message inj[] = {{"user", "{{ 7 * 7 }} {% raise %}"}};
    char *out;
    realm_error err = {0};
    assert_int_equal(jinja("{{ messages[0].content }}", inj, 1, &out, &err), REALM_OK);
    assert_string_equal(out, "{{ 7 * 7 }} {% raise %}");
    realm_free(out);
    /* Errors as Jinja reports them. */
    expect_jinja_error("{{ 'a' + 1 }}", REALM_E_INVALID, "str");
    expect_jinja_error("{{ raise_exception('boom') }}", REALM_E_INVALID, "boom");
    expect_jinja_error("{{ x | no_such_filter }}", REALM_E_UNSUPPORTED, "no_such_filter");
    expect_jinja_error("{{ '%d' % 3 }}", REALM_E_UNSUPPORTED, "formatting");
}

/* ---- hostile templates ---- */

static char *repeat_str(const char *a, size_t na, const char *mid, const char *b, size_t nb)
{
    size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
    char *s = malloc(la * na + lm + lb * nb + 1), *p = s;
    assert_non_null(s);
    for (size_t i = 0; i < na; i++, p += la)
        memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (size_t i = 0; i < nb; i++, p += lb)
        memcpy(p, b, lb);
    *p = '\0';
    return s;
}

static void test_hostile_compile(void **state)
{
    (void)state;
    /* Deeply nested blocks and expressions: a depth error, not a stack overflow. */
    char *s = repeat_str("{% if true %}", 10000, "x", "{% endif %}", 10000);
    expect_jinja_error(s, REALM_E_RANGE, "deep");
    free(s);
    s = repeat_str("(", 100000, "1", ")", 100000);
    char *t = repeat_str("{{ ", 1, s, " }}", 1);
    expect_jinja_error(t, REALM_E_RANGE, "deep");
    free(t);
    free(s);
    s = repeat_str("[", 200000, "", "", 0);
    t = repeat_str("{{ ", 1, s, "", 0);
    char *out;
    realm_error err = {0};
    assert_int_not_equal(jinja(t, MULTI, 3, &out, &err), REALM_OK);
    free(t);
    free(s);
    /* Unterminated tags, comments, strings, blocks. */
    static const char *unterminated[] = {
        "{{ messages",
        "{% for m in messages %}x",
        "{# comment",
        "{{ 'abc }}",
        "{% if true %}a{% else %}b",
        "{% endfor %}",
        "{% for %}",
        "{{ }}",
        "{% set %}",
        "{% macro m( %}",
        "{{ a[ }}",
        "{{ 1 +* 2 }}",
        "{% raw %}never closed",
    };
    for (size_t i = 0; i < sizeof unterminated / sizeof unterminated[0]; i++) {
        realm__jinja_program *p = NULL;
        realm_status st =
            realm__jinja_compile(unterminated[i], strlen(unterminated[i]), &LIM, &p, &err);
        if (st == REALM_OK) fprintf(stderr, "compiled: %s\n", unterminated[i]);
        assert_int_not_equal(st, REALM_OK);
        assert_true(err.message[0] != '\0');
        assert_null(p);
    }
    /* Over the size limit: falls back with the reason. */
    size_t big = REALM_CHAT_TEMPLATE_MAX_BYTES + 10;
    s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'x', big);
    s[big] = '\0';
    realm_log_set_level(REALM_LOG_ERROR);
    realm_chat_template_t *tp;
    assert_int_equal(realm_chat_template_init(s, big, NULL, NULL, &tp, &err), REALM_OK);
    assert_int_equal(realm_chat_template_source(tp), REALM_CHAT_SOURCE_BUILTIN);
    assert_true(realm_chat_template_fallback_reason(tp)[0] != '\0');
    realm_chat_template_free(tp);
    realm_log_set_level(REALM_LOG_INFO);
    free(s);
}

static void test_hostile_render(void **state)
{
    (void)state;
    /* Endless-ish loops: the step limit. */
    expect_jinja_error("{% for i in range(1000000000) %}{% endfor %}", REALM_E_RANGE, "");
    expect_jinja_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                       "{% endfor %}",
                       REALM_E_RANGE, "");
    /* Enormous output, in one expression and by accumulation. */
    expect_jinja_error("{{ 'x' * 1000000000000 }}", REALM_E_RANGE, "");
    expect_jinja_error("{% for i in range(1000000) %}{{ 'y' * 1000 }}{% endfor %}", REALM_E_RANGE,
                       "");
    expect_jinja_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
                       REALM_E_RANGE, "");
    /* Unbounded recursion through a macro: the call depth limit. */
    expect_jinja_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", REALM_E_RANGE, "");
    /* Integer overflow is reported (Python would use a big int). */
    expect_jinja_error("{{ 9223372036854775807 + 1 }}", REALM_E_RANGE, "overflow");
    /* Through the public API the limit is an error for that render only. */
    realm_chat_template_t *t;
    realm_error err = {0};
    const char *src = "{% for i in range(1000000000) %}{{ i }}{% endfor %}";
    assert_int_equal(realm_chat_template_init(src, strlen(src), NULL, NULL, &t, &err), REALM_OK);
    char *text = NULL;
    size_t len;
    assert_int_equal(realm_chat_render(t, MULTI, 3, true, &text, &len, &err), REALM_E_RANGE);
    assert_null(text);
    realm_chat_template_free(t);
}

/* ---- allocation failure at every point ---- */

static void test_alloc_failure(void **state)
{
    (void)state;
    static const char *SRC =
        "{%- set ns = namespace(sys='') -%}{%- if messages[0].role == 'system' -%}"
        "{%- set ns.sys = messages[0].content | trim -%}{%- endif -%}"
        "{% macro turn(r, c) %}<|{{ r }}|>{{ c }}{% endmacro %}"
        "{%- for m in messages[1:] if m.role != 'tool' -%}{{ turn(m.role, (ns.sys + ' ' + "
        "m.content) | trim) }}{{ {'i': loop.index, 'c': m.content.split(' ')} | tojson }}"
        "{%- endfor -%}{{ eos_token if not add_generation_prompt else '<|assistant|>' }}";
    static const realm_chat_message msgs[] = {
        {"system", "  sys  "}, {"user", "a b c"}, {"assistant", "d e"}, {"user", "f"}};
    realm_log_set_level(REALM_LOG_ERROR);
    bool done = false;
    for (long n = 0; !done && n < 100000; n++) {
        realm_alloc_fail_after(n);
        realm_chat_template_t *t = NULL;
        realm_error err = {0};
        realm_status st = realm_chat_template_init(SRC, strlen(SRC), "<s>", "</s>", &t, &err);
        if (st) {
            assert_int_equal(st, REALM_E_NOMEM);
            assert_null(t);
            continue;
        }
        char *text = NULL;
        size_t len = 0;
        st = realm_chat_render(t, msgs, 4, true, &text, &len, &err);
        /* A model template that failed to compile for lack of memory would
         * silently become the built-in: it must not. */
        assert_int_equal(realm_chat_template_source(t), REALM_CHAT_SOURCE_MODEL);
        if (st == REALM_OK) {
            assert_string_equal(text, "<|user|>sys a b c{\"i\": 1, \"c\": [\"a\", \"b\", \"c\"]}"
                                      "<|assistant|>sys d e{\"i\": 2, \"c\": [\"d\", \"e\"]}"
                                      "<|user|>sys f{\"i\": 3, \"c\": [\"f\"]}<|assistant|>");
            realm_free(text);
            done = true;
        } else {
            if (st != REALM_E_NOMEM) fprintf(stderr, "n=%ld: %d %s\n", n, st, err.message);
            assert_int_equal(st, REALM_E_NOMEM);
            assert_null(text);
        }
        realm_chat_template_free(t);
    }
    realm_alloc_fail_after(-1);
    realm_log_set_level(REALM_LOG_INFO);
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_formats),  cmocka_unit_test(test_smollm2_default_system),
        cmocka_unit_test(test_family_detection), cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_render_errors),    cmocka_unit_test(test_jinja_semantics),
        cmocka_unit_test(test_hostile_compile),  cmocka_unit_test(test_hostile_render),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
