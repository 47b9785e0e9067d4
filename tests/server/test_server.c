/*
 * tests/server/test_server.c — the server's parsing, validation and framing
 * without a socket: JSON body limits, field-level validation messages, the
 * route table, JSON string escaping, SSE chunk and response shapes, and
 * stop-string holding. Includes the .c files to reach their statics.
 */
#define _GNU_SOURCE /* memmem, as in dispatch.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/dispatch.c"
#include "server/openai_out.c"

static void test_json_escape(void **state)
{
    (void)state;
    srv_buf b = {0};
    assert_int_equal(srv_buf_json_str(&b, "a\"b\\c\n\x01\xc3\xa9", 9), 0);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
    srv_buf_free(&b);
}

static void test_json_limits(void **state)
{
    (void)state;
    char why[256];
    assert_null(srv_json_parse("", 0, why, sizeof why));
    assert_non_null(strstr(why, "empty"));
    assert_null(srv_json_parse("[1]", 3, why, sizeof why));
    assert_non_null(strstr(why, "object"));
    assert_null(srv_json_parse("{\"a\":1", 6, why, sizeof why));
    assert_non_null(strstr(why, "invalid JSON"));
    assert_null(srv_json_parse("{\"a\":1,\"a\":2}", 13, why, sizeof why));
    char deep[200] = "{\"a\":";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    for (int i = 0; i < 40; i++) strcat(deep, "]");
    strcat(deep, "}");
    assert_null(srv_json_parse(deep, strlen(deep), why, sizeof why));
    assert_non_null(strstr(why, "nested"));
    /* brackets inside strings do not count */
    const char *ok = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\",\"b\":null}";
    json_t *j = srv_json_parse(ok, strlen(ok), why, sizeof why);
    assert_non_null(j);
    assert_null(json_object_get(j, "b")); /* null means default: dropped */
    json_decref(j);
}

static int parse(const char *body, srv_api api, char *why, const char **param)
{
    static srv_server s;
    snprintf(s.model_name, sizeof s.model_name, "m");
    s.max_ctx = 64;
    srv_req r = {0};
    json_t *j = srv_json_parse(body, strlen(body), why, 300);
    assert_non_null(j);
    int st = srv_parse_gen(&s, &r, j, api, why, 300, param);
    static char copy[64]; /* *param may point into j, as the server's job knows */
    snprintf(copy, sizeof copy, "%s", *param ? *param : "");
    *param = copy;
    json_decref(j);
    srv_gen_free(&r.gen);
    return st;
}

static void test_field_validation(void **state)
{
    (void)state;
    char why[300];
    const char *param = NULL;
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[],\"temperature\":\"x\"}", SRV_API_CHAT, why, &param), 400);
    assert_string_equal(param, "temperature");
    assert_non_null(strstr(why, "'temperature' must be a number"));
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[],\"top_p\":3}", SRV_API_CHAT, why, &param), 400);
    assert_non_null(strstr(why, "between"));
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[],\"n\":2}", SRV_API_CHAT, why, &param), 400);
    assert_non_null(strstr(why, "n=1"));
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[],\"frobnicate\":1}", SRV_API_CHAT, why, &param), 400);
    assert_string_equal(param, "frobnicate");
    assert_int_equal(parse("{\"model\":\"m\",\"prompt\":\"x\"}", SRV_API_CHAT, why, &param), 400); /* prompt: completions only */
    assert_int_equal(parse("{\"model\":\"other\",\"messages\":[]}", SRV_API_CHAT, why, &param), 404);
    assert_int_equal(parse("{\"messages\":[]}", SRV_API_CHAT, why, &param), 400);
    assert_string_equal(param, "model");
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[]}", SRV_API_CHAT, why, &param), 400);
    assert_non_null(strstr(why, "non-empty"));
    assert_int_equal(parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"extra\":1}]}",
                           SRV_API_CHAT, why, &param), 400);
    assert_non_null(strstr(why, "messages[0]"));
    assert_int_equal(parse("{\"model\":\"m\",\"prompt\":[1,\"x\"]}", SRV_API_COMPLETIONS, why, &param), 400);
}

static void test_routes(void **state)
{
    (void)state;
    bool known;
    const srv_route *r = srv_route_find("POST", "/v1/chat/completions", &known);
    assert_non_null(r);
    assert_int_equal(r->auth, SRV_AUTH_TENANT);
    assert_null(srv_route_find("GET", "/v1/chat/completions", &known));
    assert_true(known); /* 405 */
    assert_null(srv_route_find("GET", "/v1/nope", &known));
    assert_false(known); /* 404 */
    r = srv_route_find("POST", "/admin/tenants/12/disable", &known);
    assert_non_null(r);
    assert_int_equal(r->auth, SRV_AUTH_ADMIN);
    assert_null(srv_route_find("POST", "/admin/tenants//disable", &known));
    assert_null(srv_route_find("POST", "/admin/tenants/1/2/disable", &known));
}

static srv_server g_srv = {.model_json = "\"m\""};

static void test_sse_chunks(void **state)
{
    (void)state;
    srv_req r = {.srv = &g_srv, .api = SRV_API_CHAT, .created = 7};
    snprintf(r.id, sizeof r.id, "chatcmpl-1");
    srv_buf b = {0};
    chunk(&b, &r, "assistant", "", 0, NULL);
    chunk(&b, &r, NULL, "a\"b", 3, NULL);
    chunk(&b, &r, NULL, NULL, 0, "\"stop\"");
    assert_string_equal(
        b.p,
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\\"b\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n");
    srv_buf_free(&b);
    r.api = SRV_API_COMPLETIONS;
    r.gen.include_usage = true;
    chunk(&b, &r, NULL, "x", 1, NULL);
    assert_non_null(strstr(b.p, "\"object\":\"text_completion\""));
    assert_non_null(strstr(b.p, "\"text\":\"x\""));
    assert_non_null(strstr(b.p, "\"usage\":null}\n\n"));
    srv_buf_free(&b);
}

static void test_whole_response(void **state)
{
    (void)state;
    srv_req r = {.srv = &g_srv, .api = SRV_API_CHAT, .n_prompt = 3, .n_gen = 2,
                 .finish = REALM_ENGINE_FINISH_LENGTH};
    srv_buf_str(&r.text, "hi");
    char *s = whole_response(&r);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "message"), "content")), "hi");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "length");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")), 5);
    json_decref(j);
    free(s);
    srv_buf_free(&r.text);
}

static void test_stop_strings(void **state)
{
    (void)state;
    srv_req r = {.srv = &g_srv, .api = SRV_API_CHAT};
    r.gen.stop[0] = strdup("END");
    r.gen.stop_len[0] = 3;
    r.gen.n_stop = 1;
    on_piece(&g_srv, &r, "abc E", 5, false);
    assert_int_equal(r.n_emitted, 4); /* "E" may start "END": held back */
    on_piece(&g_srv, &r, "N", 1, false);
    assert_int_equal(r.n_emitted, 4);
    on_piece(&g_srv, &r, "D tail", 6, false);
    assert_true(r.stop_hit);
    assert_string_equal(r.text.p, "abc ");
    on_piece(&g_srv, &r, "more", 4, false); /* ignored after the stop */
    assert_string_equal(r.text.p, "abc ");
    srv_req q = {.srv = &g_srv, .api = SRV_API_CHAT};
    q.gen = r.gen;
    on_piece(&g_srv, &q, "xEN", 3, false);
    on_piece(&g_srv, &q, "Dy", 2, true); /* a stop string split across pieces */
    assert_string_equal(q.text.p, "x");
    srv_buf_free(&r.text);
    srv_buf_free(&q.text);
    srv_gen_free(&r.gen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),    cmocka_unit_test(test_json_limits),
        cmocka_unit_test(test_field_validation), cmocka_unit_test(test_routes),
        cmocka_unit_test(test_sse_chunks),     cmocka_unit_test(test_whole_response),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
