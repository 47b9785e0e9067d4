/*
 * server/openai_out.c — OpenAI response bodies and SSE framing, on the loop
 * thread.
 *
 * Streaming (text/event-stream), as OpenAI sends it:
 *   chat:  a first chunk with delta {"role":"assistant","content":""}, one
 *          chunk per piece of text with delta {"content": ...}, a last chunk
 *          with an empty delta and finish_reason, with
 *          stream_options.include_usage one more chunk with "choices": [] and
 *          "usage" (other chunks then carry "usage": null), then
 *          `data: [DONE]`.
 *   completions: the same with "text" instead of delta.
 * An error after the stream started is sent as `data: {"error": {...}}`.
 * The last bytes are written only after the usage ledger has the request.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server_impl.h"

const char *srv_finish_name(const srv_req *r)
{
    if (r->finish == REALM_ENGINE_FINISH_LENGTH && !r->stop_hit) return "length";
    return "stop";
}

static void chunk_head(srv_buf *b, const srv_req *r)
{
    bool chat = r->api == SRV_API_CHAT;
    srv_buf_printf(b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":%s,", r->id,
                   chat ? "chat.completion.chunk" : "text_completion", (long long)r->created,
                   r->srv->model_json);
}

static void usage_obj(srv_buf *b, const srv_req *r)
{
    srv_buf_printf(b,
                   "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                   r->n_prompt, r->n_gen, r->n_prompt + r->n_gen, r->n_cached);
}

/* One chunk: text (may be NULL) and finish_reason (NULL: null). */
static void chunk(srv_buf *b, const srv_req *r, const char *role, const char *text, size_t n,
                  const char *finish)
{
    chunk_head(b, r);
    srv_buf_str(b, "\"choices\":[{\"index\":0,");
    if (r->api == SRV_API_CHAT) {
        srv_buf_str(b, "\"delta\":{");
        if (role) srv_buf_printf(b, "\"role\":\"%s\"%s", role, text ? "," : "");
        if (text) {
            srv_buf_str(b, "\"content\":");
            srv_buf_json_str(b, text, n);
        }
        srv_buf_str(b, "},");
    } else {
        srv_buf_str(b, "\"text\":");
        srv_buf_json_str(b, text ? text : "", text ? n : 0);
        srv_buf_str(b, ",");
    }
    srv_buf_str(b, "\"logprobs\":null,\"finish_reason\":");
    srv_buf_str(b, finish ? finish : "null");
    srv_buf_str(b, r->gen.include_usage ? "}],\"usage\":null}\n\n" : "}]}\n\n");
}

/* Pending output over the cap: the client reads too slowly. Its sequence
 * stops and the connection closes rather than the server buffering without
 * bound. */
static bool too_slow(srv_req *r)
{
    srv_conn *c = r->conn;
    if (c->out.n - c->out_off <= SRV_MAX_OUT_BYTES) return false;
    srv_req_cancel(r->srv, r);
    c->wants_close = true;
    c->body_done = true;
    c->out.n = c->out_off = 0;
    srv_conn_want_write(c);
    return true;
}

void srv_openai_on_text(srv_req *r, const char *text, size_t n)
{
    srv_conn *c = r->conn;
    if (!c || c->body_done) return;
    if (!text) { /* accepted: the stream starts */
        srv_http_respond(c, 200, "text/event-stream", NULL, 0);
        if (r->api == SRV_API_CHAT) chunk(&c->out, r, "assistant", "", 0, NULL);
        srv_conn_want_write(c);
        return;
    }
    chunk(&c->out, r, NULL, text, n, NULL);
    if (!too_slow(r)) srv_conn_want_write(c);
}

static char *whole_response(const srv_req *r)
{
    srv_buf b = {0};
    bool chat = r->api == SRV_API_CHAT;
    srv_buf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":%s,\"choices\":[{\"index\":0,",
                   r->id, chat ? "chat.completion" : "text_completion", (long long)r->created,
                   r->srv->model_json);
    if (chat) {
        srv_buf_str(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
        srv_buf_json_str(&b, r->text.p ? r->text.p : "", r->text.n);
        srv_buf_str(&b, "},");
    } else {
        srv_buf_str(&b, "\"text\":");
        srv_buf_json_str(&b, r->text.p ? r->text.p : "", r->text.n);
        srv_buf_str(&b, ",");
    }
    srv_buf_printf(&b, "\"logprobs\":null,\"finish_reason\":\"%s\"}],\"usage\":", srv_finish_name(r));
    usage_obj(&b, r);
    srv_buf_str(&b, "}");
    return b.p;
}

void srv_openai_on_end(srv_req *r)
{
    srv_conn *c = r->conn;
    if (!c || c->body_done) return;
    bool failed = r->finish == REALM_ENGINE_FINISH_ERROR;
    if (!r->gen.stream) {
        char *body = failed ? srv_error_json(500, "server_error", NULL, r->engine_error) : whole_response(r);
        srv_http_respond(c, failed ? 500 : 200, "application/json", body ? body : "{}",
                         body ? strlen(body) : 2);
        free(body);
        return;
    }
    if (failed) {
        char *e = srv_error_json(500, "server_error", NULL, r->engine_error);
        srv_buf_printf(&c->out, "data: %s\n\n", e ? e : "{}");
        free(e);
    } else {
        char finish[16];
        snprintf(finish, sizeof finish, "\"%s\"", srv_finish_name(r));
        chunk(&c->out, r, NULL, NULL, 0, finish);
        if (r->gen.include_usage) {
            chunk_head(&c->out, r);
            srv_buf_str(&c->out, "\"choices\":[],\"usage\":");
            usage_obj(&c->out, r);
            srv_buf_str(&c->out, "}\n\n");
        }
    }
    srv_buf_str(&c->out, "data: [DONE]\n\n");
    c->body_done = true;
    srv_conn_want_write(c);
}
