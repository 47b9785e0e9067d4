/*
 * server/openai.c — OpenAI-compatible request parsing and validation, and the
 * worker jobs of /v1/chat/completions, /v1/completions, /v1/models,
 * /tokenize and /detokenize.
 *
 * Input: a JSON object (at most SRV_MAX_JSON_DEPTH deep, no duplicate keys).
 * Top-level fields are checked against one table (name, type, range, which
 * APIs accept it): an unknown field, a wrong type or an out-of-range value is
 * a 400 whose message and `param` name the field, as OpenAI does. A field
 * set to null means "the default". Nested objects (messages, stream_options)
 * are unpacked with json_unpack_ex in strict mode, whose messages name the
 * offending key.
 *
 * Runs on worker threads: everything here may take time (JSON, templates,
 * tokenization); the loop only sees the result.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "server/server_impl.h"

enum { A_CHAT = 1 << SRV_API_CHAT, A_COMP = 1 << SRV_API_COMPLETIONS, A_WS = 1 << SRV_API_WS };
typedef enum ftype { F_STR, F_INT, F_NUM, F_BOOL, F_ANY } ftype;

typedef struct field {
    const char *name;
    ftype type;
    double lo, hi;
    unsigned apis;
} field;

static const field g_fields[] = {
    {"model", F_STR, 0, 0, A_CHAT | A_COMP | A_WS},
    {"messages", F_ANY, 0, 0, A_CHAT | A_WS},
    {"prompt", F_ANY, 0, 0, A_COMP | A_WS},
    {"max_tokens", F_INT, 1, 1 << 20, A_CHAT | A_COMP | A_WS},
    {"max_completion_tokens", F_INT, 1, 1 << 20, A_CHAT | A_WS},
    {"temperature", F_NUM, 0, 2, A_CHAT | A_COMP | A_WS},
    {"top_p", F_NUM, 0, 1, A_CHAT | A_COMP | A_WS},
    {"n", F_INT, 1, 1, A_CHAT | A_COMP},
    {"stream", F_BOOL, 0, 0, A_CHAT | A_COMP},
    {"stream_options", F_ANY, 0, 0, A_CHAT | A_COMP},
    {"stop", F_ANY, 0, 0, A_CHAT | A_COMP | A_WS},
    {"seed", F_INT, -9.2e18, 9.2e18, A_CHAT | A_COMP | A_WS},
    {"presence_penalty", F_NUM, -2, 2, A_CHAT | A_COMP | A_WS},
    {"frequency_penalty", F_NUM, -2, 2, A_CHAT | A_COMP | A_WS},
    {"logit_bias", F_ANY, 0, 0, A_CHAT | A_COMP | A_WS},
    {"user", F_STR, 0, 0, A_CHAT | A_COMP | A_WS},
};

static const char *type_name(ftype t)
{
    static const char *names[] = {"a string", "an integer", "a number", "a boolean", "a value"};
    return names[t];
}

/* Nesting depth outside strings, before jansson sees the text: a hostile
 * body cannot make the parser recurse deeply. */
static bool depth_ok(const char *p, size_t n, int max)
{
    int d = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            if (++d > max) return false;
        } else if (ch == '}' || ch == ']') {
            d--;
        }
    }
    return true;
}

json_t *srv_json_parse(const char *body, size_t n, char *why, size_t why_cap)
{
    if (!body || !n) {
        snprintf(why, why_cap, "the request body is empty; expected a JSON object");
        return NULL;
    }
    if (!depth_ok(body, n, SRV_MAX_JSON_DEPTH)) {
        snprintf(why, why_cap, "the JSON body is nested deeper than %d levels", SRV_MAX_JSON_DEPTH);
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(why, why_cap, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(why, why_cap, "the request body must be a JSON object");
        return NULL;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(root, tmp, k, v) if (json_is_null(v)) json_object_del(root, k);
    return root;
}

void srv_gen_free(srv_gen *g)
{
    realm_token_vec_free(&g->prompt);
    free(g->bias);
    for (int i = 0; i < g->n_stop; i++)
        free(g->stop[i]);
    *g = (srv_gen){0};
}

#define FAIL(status, p, ...)                                                                       \
    do {                                                                                           \
        *param = (p);                                                                              \
        snprintf(why, cap, __VA_ARGS__);                                                           \
        return (status);                                                                           \
    } while (0)

static int check_fields(json_t *root, srv_api api, char *why, size_t cap, const char **param)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        const field *f = NULL;
        for (size_t i = 0; i < sizeof g_fields / sizeof g_fields[0]; i++)
            if (!strcmp(g_fields[i].name, k) && (g_fields[i].apis & (1u << api))) f = &g_fields[i];
        if (!f) FAIL(400, k, "Unrecognized request argument supplied: %s", k);
        bool ok = f->type == F_ANY || (f->type == F_STR && json_is_string(v)) ||
                  (f->type == F_INT && json_is_integer(v)) ||
                  (f->type == F_NUM && json_is_number(v)) || (f->type == F_BOOL && json_is_boolean(v));
        if (!ok) FAIL(400, f->name, "'%s' must be %s", f->name, type_name(f->type));
        if (f->type == F_INT || f->type == F_NUM) {
            double x = json_number_value(v);
            if (!strcmp(k, "n") && x != 1) FAIL(400, "n", "only n=1 is supported");
            if (!(x >= f->lo && x <= f->hi))
                FAIL(400, f->name, "'%s' must be between %g and %g, got %g", f->name, f->lo, f->hi, x);
        }
    }
    return 0;
}

/* Render messages with the model's chat template and tokenize the result. */
static int parse_messages(srv_server *s, json_t *msgs, realm_token_vec *out, char *why, size_t cap,
                          const char **param)
{
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || n == 0) FAIL(400, "messages", "'messages' must be a non-empty array");
    if (n > 4096) FAIL(400, "messages", "too many messages (%zu, at most 4096)", n);
    realm_chat_message *cm = calloc(n, sizeof *cm);
    char **joined = calloc(n, sizeof *joined);
    int status = 0;
    for (size_t i = 0; i < n && !status; i++) {
        const char *role = NULL, *name = NULL;
        json_t *content = NULL;
        json_error_t je;
        if (!cm || !joined) {
            status = 500;
            snprintf(why, cap, "out of memory");
            break;
        }
        if (json_unpack_ex(json_array_get(msgs, i), &je, JSON_STRICT, "{s:s, s:o, s?:s}", "role",
                           &role, "content", &content, "name", &name)) {
            *param = "messages";
            snprintf(why, cap, "messages[%zu]: %s", i, je.text);
            status = 400;
            break;
        }
        cm[i].role = role;
        if (json_is_string(content)) {
            cm[i].content = json_string_value(content);
            continue;
        }
        /* [{"type":"text","text":"..."}, ...] → the parts joined */
        srv_buf b = {0};
        size_t j;
        json_t *part;
        json_array_foreach(content, j, part) {
            const char *type = NULL, *text = NULL;
            if (json_unpack_ex(part, &je, JSON_STRICT, "{s:s, s:s}", "type", &type, "text", &text) ||
                strcmp(type, "text")) {
                status = 400;
                *param = "messages";
                snprintf(why, cap, "messages[%zu].content[%zu]: only {\"type\":\"text\",\"text\":...} parts are supported", i, j);
                break;
            }
            srv_buf_str(&b, text);
        }
        if (!json_is_array(content)) {
            status = 400;
            *param = "messages";
            snprintf(why, cap, "messages[%zu].content must be a string or an array of text parts", i);
        }
        joined[i] = b.p ? b.p : calloc(1, 1);
        cm[i].content = joined[i];
    }
    char *text = NULL;
    size_t len = 0;
    realm_error err = {0};
    if (!status && realm_chat_render(s->tmpl, cm, n, true, &text, &len, &err)) {
        status = err.status == REALM_E_NOMEM ? 500 : 400;
        *param = "messages";
        snprintf(why, cap, "the chat template rejected the conversation: %s", err.message);
    }
    if (!status && realm_tokenizer_encode(s->tok, text, len, REALM_TOKENIZE_PARSE_SPECIAL, out, &err)) {
        status = 400;
        *param = "messages";
        snprintf(why, cap, "%s", err.message);
    }
    realm_free(text);
    for (size_t i = 0; joined && i < n; i++)
        free(joined[i]);
    free(joined);
    free(cm);
    return status;
}

static int parse_prompt(srv_server *s, json_t *p, realm_token_vec *out, char *why, size_t cap,
                        const char **param)
{
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    realm_error err = {0};
    if (json_is_string(p)) {
        if (realm_tokenizer_encode(s->tok, json_string_value(p), json_string_length(p),
                                   REALM_TOKENIZE_ADD_SPECIAL, out, &err))
            FAIL(400, "prompt", "%s", err.message);
        return 0;
    }
    if (!json_is_array(p) || json_array_size(p) == 0)
        FAIL(400, "prompt", "'prompt' must be a string or a non-empty array of token ids");
    size_t i;
    json_t *v;
    json_array_foreach(p, i, v) {
        if (!json_is_integer(v)) {
            if (json_is_string(v)) FAIL(400, "prompt", "only one prompt per request is supported");
            FAIL(400, "prompt", "prompt[%zu] must be a token id", i);
        }
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= s->n_vocab)
            FAIL(400, "prompt", "prompt[%zu] = %lld is not a token id (vocabulary: %d)", i, (long long)id, s->n_vocab);
        if (realm_token_vec_push(out, (int32_t)id)) FAIL(500, NULL, "out of memory");
    }
    return 0;
}

static int parse_stop(srv_gen *g, json_t *stop, char *why, size_t cap, const char **param)
{
    if (!stop) return 0;
    json_t *one[1] = {stop};
    size_t n = json_is_string(stop) ? 1 : json_array_size(stop);
    if (!json_is_string(stop) && !json_is_array(stop))
        FAIL(400, "stop", "'stop' must be a string or an array of strings");
    if (n > SRV_MAX_STOP_STRINGS) FAIL(400, "stop", "at most %d stop sequences", SRV_MAX_STOP_STRINGS);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_is_string(stop) ? one[0] : json_array_get(stop, i);
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256)
            FAIL(400, "stop", "stop[%zu] must be a non-empty string of at most 256 bytes", i);
        g->stop[g->n_stop] = strdup(json_string_value(v));
        if (!g->stop[g->n_stop]) FAIL(500, NULL, "out of memory");
        g->stop_len[g->n_stop++] = json_string_length(v);
    }
    return 0;
}

static int parse_bias(srv_server *s, srv_gen *g, json_t *lb, char *why, size_t cap, const char **param)
{
    if (!lb) return 0;
    if (!json_is_object(lb)) FAIL(400, "logit_bias", "'logit_bias' must be an object of token id → bias");
    size_t n = json_object_size(lb);
    if (n > REALM_SAMPLER_MAX_LOGIT_BIAS)
        FAIL(400, "logit_bias", "at most %d logit_bias entries", REALM_SAMPLER_MAX_LOGIT_BIAS);
    g->bias = calloc(n ? n : 1, sizeof *g->bias);
    if (!g->bias) FAIL(500, NULL, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(lb, k, v) {
        char *end;
        long id = strtol(k, &end, 10);
        if (!*k || *end || id < 0 || id >= s->n_vocab)
            FAIL(400, "logit_bias", "logit_bias key '%s' is not a token id (vocabulary: %d)", k, s->n_vocab);
        double b = json_number_value(v);
        if (!json_is_number(v) || b < -100 || b > 100)
            FAIL(400, "logit_bias", "logit_bias['%s'] must be a number between -100 and 100", k);
        g->bias[g->sp.n_logit_bias++] = (realm_logit_bias){(int32_t)id, b <= -100 ? -INFINITY : (float)b};
    }
    g->sp.logit_bias = g->bias;
    return 0;
}

int srv_parse_gen(srv_server *s, srv_req *r, json_t *root, srv_api api, char *why, size_t cap,
                  const char **param)
{
    srv_gen *g = &r->gen;
    int st = check_fields(root, api, why, cap, param);
    if (st) return st;
    json_t *model = json_object_get(root, "model");
    if (model && strcmp(json_string_value(model), s->model_name) && strcmp(json_string_value(model), "default"))
        FAIL(404, "model", "The model `%s` does not exist (this server has `%s`)", json_string_value(model),
             s->model_name);
    if (api != SRV_API_WS && !model) FAIL(400, "model", "'model' is required");
    json_t *msgs = json_object_get(root, "messages"), *prompt = json_object_get(root, "prompt");
    if (api == SRV_API_CHAT && !msgs) FAIL(400, "messages", "'messages' is required");
    if (api == SRV_API_COMPLETIONS && !prompt) FAIL(400, "prompt", "'prompt' is required");
    if (api == SRV_API_WS && !msgs == !prompt) FAIL(400, "params", "give exactly one of 'prompt' and 'messages'");
    st = msgs ? parse_messages(s, msgs, &g->prompt, why, cap, param)
              : parse_prompt(s, prompt, &g->prompt, why, cap, param);
    if (st) return st;
    if (g->prompt.n == 0) FAIL(400, msgs ? "messages" : "prompt", "the prompt has no tokens");
    int32_t n_prompt = (int32_t)g->prompt.n, room = s->max_ctx - n_prompt;
    json_t *mt = json_object_get(root, "max_completion_tokens");
    if (!mt) mt = json_object_get(root, "max_tokens");
    int64_t want = mt ? json_integer_value(mt) : (msgs ? room : 16);
    if (room < 1 || want > room)
        FAIL(400, mt ? json_object_get(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens" : "messages",
             "This model's maximum context length is %d tokens. However, you requested %lld tokens "
             "(%d in the prompt, %lld in the completion). Please reduce the prompt or the completion.",
             s->max_ctx, (long long)n_prompt + want, n_prompt, (long long)want);
    g->max_tokens = (int32_t)want;
    g->sp = realm_sampler_params_default();
    json_t *v;
    if ((v = json_object_get(root, "temperature"))) g->sp.temperature = (float)json_number_value(v);
    if ((v = json_object_get(root, "top_p"))) g->sp.top_p = (float)json_number_value(v);
    if (g->sp.top_p <= 0) FAIL(400, "top_p", "'top_p' must be greater than 0");
    if ((v = json_object_get(root, "presence_penalty"))) g->sp.presence_penalty = (float)json_number_value(v);
    if ((v = json_object_get(root, "frequency_penalty"))) g->sp.frequency_penalty = (float)json_number_value(v);
    if ((v = json_object_get(root, "seed")))
        g->sp.seed = (uint64_t)json_integer_value(v);
    else
        g->sp.seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)(uintptr_t)r;
    if ((v = json_object_get(root, "stream"))) g->stream = json_is_true(v);
    if ((v = json_object_get(root, "stream_options"))) {
        int inc = 0;
        json_error_t je;
        if (json_unpack_ex(v, &je, JSON_STRICT, "{s?:b}", "include_usage", &inc))
            FAIL(400, "stream_options", "stream_options: %s", je.text);
        if (!g->stream) FAIL(400, "stream_options", "'stream_options' is only allowed when 'stream' is true");
        g->include_usage = inc;
    }
    if ((st = parse_stop(g, json_object_get(root, "stop"), why, cap, param))) return st;
    if ((st = parse_bias(s, g, json_object_get(root, "logit_bias"), why, cap, param))) return st;
    realm_error err = {0};
    if (realm_sampler_params_check(&g->sp, s->n_vocab, &err)) FAIL(400, NULL, "%s", err.message);
    g->greedy = g->sp.temperature == 0 && g->sp.presence_penalty == 0 &&
                g->sp.frequency_penalty == 0 && g->sp.n_logit_bias == 0;
    return 0;
}

static const char *status_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "server_overloaded";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static json_t *parse_body(srv_server *s, srv_req *r)
{
    char why[400];
    json_t *root = srv_json_parse(r->body.p, r->body.n, why, sizeof why);
    srv_buf_free(&r->body);
    if (!root) srv_reply_error(s, r, 400, "invalid_request_error", NULL, "%s", why);
    return root;
}

static void job_generate(srv_server *s, srv_req *r, srv_api api)
{
    if (!srv_auth_tenant(s, r)) return;
    json_t *root = parse_body(s, r);
    if (!root) return;
    char why[600];
    const char *param = NULL;
    int st = srv_parse_gen(s, r, root, api, why, sizeof why, &param);
    char param_copy[64] = "";
    if (param) snprintf(param_copy, sizeof param_copy, "%s", param); /* param may point into root */
    json_decref(root);
    if (st) {
        srv_reply_error(s, r, st, status_type(st), param ? param_copy : NULL, "%s", why);
        return;
    }
    if (!srv_quota_admit(s, r, (int64_t)r->gen.prompt.n + r->gen.max_tokens)) return;
    srv_submit(s, r);
}

void srv_job_chat(srv_server *s, srv_req *r) { job_generate(s, r, SRV_API_CHAT); }
void srv_job_completions(srv_server *s, srv_req *r) { job_generate(s, r, SRV_API_COMPLETIONS); }

void srv_job_models(srv_server *s, srv_req *r)
{
    if (!srv_auth_tenant(s, r)) return;
    srv_buf b = {0};
    srv_buf_printf(&b, "{\"object\":\"list\",\"data\":[{\"id\":%s,\"object\":\"model\",\"created\":0,"
                       "\"owned_by\":\"realm\",\"max_model_len\":%d}]}",
                   s->model_json, s->max_ctx);
    srv_reply(s, r, 200, "application/json", b.p);
}

/* POST /tokenize {"prompt": "text", "add_special_tokens": true} or {"messages": [...]} */
void srv_job_tokenize(srv_server *s, srv_req *r)
{
    if (!srv_auth_tenant(s, r)) return;
    json_t *root = parse_body(s, r);
    if (!root) return;
    const char *prompt = NULL, *model = NULL;
    json_t *msgs = NULL;
    int add_special = 1;
    json_error_t je;
    char why[600];
    const char *param = NULL;
    realm_token_vec ids = {0};
    int st = 0;
    if (json_unpack_ex(root, &je, JSON_STRICT, "{s?:s, s?:s, s?:o, s?:b}", "model", &model, "prompt",
                       &prompt, "messages", &msgs, "add_special_tokens", &add_special)) {
        st = 400;
        snprintf(why, sizeof why, "%s", je.text);
    } else if (!prompt == !msgs) {
        st = 400;
        snprintf(why, sizeof why, "give exactly one of 'prompt' and 'messages'");
    } else if (msgs) {
        st = parse_messages(s, msgs, &ids, why, sizeof why, &param);
    } else {
        realm_error err = {0};
        if (realm_tokenizer_encode(s->tok, prompt, strlen(prompt), add_special ? REALM_TOKENIZE_ADD_SPECIAL : 0,
                                   &ids, &err)) {
            st = 400;
            snprintf(why, sizeof why, "%s", err.message);
        }
    }
    json_decref(root);
    if (st) {
        realm_token_vec_free(&ids);
        srv_reply_error(s, r, st, status_type(st), NULL, "%s", why);
        return;
    }
    srv_buf b = {0};
    srv_buf_str(&b, "{\"tokens\":[");
    for (size_t i = 0; i < ids.n; i++)
        srv_buf_printf(&b, "%s%d", i ? "," : "", ids.ids[i]);
    srv_buf_printf(&b, "],\"count\":%zu,\"max_model_len\":%d}", ids.n, s->max_ctx);
    realm_token_vec_free(&ids);
    srv_reply(s, r, 200, "application/json", b.p);
}

/* POST /detokenize {"tokens": [ids]} */
void srv_job_detokenize(srv_server *s, srv_req *r)
{
    if (!srv_auth_tenant(s, r)) return;
    json_t *root = parse_body(s, r);
    if (!root) return;
    json_t *tokens = NULL;
    const char *model = NULL;
    json_error_t je;
    char why[600] = "";
    realm_token_vec ids = {0};
    if (json_unpack_ex(root, &je, JSON_STRICT, "{s?:s, s:o}", "model", &model, "tokens", &tokens)) {
        snprintf(why, sizeof why, "%s", je.text);
    } else if (!json_is_array(tokens)) {
        snprintf(why, sizeof why, "'tokens' must be an array of token ids");
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(tokens, i, v) {
            json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
            if (id < 0 || id >= s->n_vocab) {
                snprintf(why, sizeof why, "tokens[%zu] is not a token id (vocabulary: %d)", i, s->n_vocab);
                break;
            }
            realm_token_vec_push(&ids, (int32_t)id);
        }
    }
    json_decref(root);
    char *text = NULL;
    size_t len = 0;
    realm_error err = {0};
    if (!why[0] && realm_tokenizer_decode(s->tok, ids.ids, ids.n, 0, &text, &len, &err))
        snprintf(why, sizeof why, "%s", err.message);
    realm_token_vec_free(&ids);
    if (why[0]) {
        realm_free(text);
        srv_reply_error(s, r, 400, "invalid_request_error", "tokens", "%s", why);
        return;
    }
    srv_buf b = {0};
    srv_buf_str(&b, "{\"prompt\":");
    srv_buf_json_str(&b, text, len);
    srv_buf_str(&b, "}");
    realm_free(text);
    srv_reply(s, r, 200, "application/json", b.p);
}
