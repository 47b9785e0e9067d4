/*
 * realm generate — answer one prompt with one model on the CPU, streaming the
 * text to stdout as tokens are produced.
 *
 * Raw mode tokenizes the prompt as plain text (control-token text in it stays
 * text; BOS is added when the model asks for it). --chat renders a
 * conversation (optional --system, then the prompt as the user's message)
 * with the model's chat template plus the assistant header, and tokenizes the
 * result with control tokens parsed, as HF apply_chat_template does. The
 * prompt is prefilled in chunks of --chunk rows, then one token per forward
 * pass is sampled (engine/sampler.h) until EOS/EOT, -n tokens or the end of
 * the context. Timing goes to stderr: prompt tokens/s, generation tokens/s
 * (decode forward passes + sampling) and time to first token (tokenizing,
 * prefill and the first sample). --show-ids adds the generated ids to stderr
 * ("ids: 504,3575,..."), which the golden test compares.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/registry.h"
#include "base/alloc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

#define USAGE                                                                                      \
    "usage: realm generate [MODEL.gguf | -m MODEL.gguf] -p|--prompt TEXT [--chat] [--system "      \
    "TEXT]\n"                                                                                      \
    "         [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"        \
    "         [--presence-penalty X] [--frequency-penalty X] [--seed S] [--max-ctx N]\n"           \
    "         [--stop STR]... [--chunk N] [--threads N] [--device auto|cpu|cuda] [--show-ids]\n"   \
    "         [--kv-type auto|f16|f32]\n"                                                          \
    "  without a model: $REALM_MODEL_PATH, else ~/.cache/realm/models/" DEFAULT_MODEL "\n"         \
    "  defaults: -n 256, --temp 0.8, --top-k 40, --top-p 0.95, --seed from the clock\n"

#define DEFAULT_MODEL "SmolLM2-135M-Instruct.Q4_1.gguf"

typedef struct gen_opts {
    const char *model, *prompt, *system, *device;
    realm_kv_choice kv_type;
    bool chat, show_ids;
    int n_predict, max_ctx, chunk, threads;
    const char *stops[REALM_STOP_MAX]; /* --stop, up to 4 */
    int n_stops;
    realm_sampler_params sp;
    bool seed_given;
} gen_opts;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(const char *why)
{
    if (why) fprintf(stderr, "realm generate: %s\n", why);
    fputs(USAGE, stderr);
    return 2;
}

static int parse_args(int argc, char **argv, gen_opts *o)
{
    *o = (gen_opts){.n_predict = 256, .sp = realm_sampler_params_default()};
    o->sp.temperature = 0.8f;
    o->sp.top_k = 40;
    o->sp.top_p = 0.95f;
    o->device = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "--chat")) {
            o->chat = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            return -1; /* done, exit status 0 */
        }
        if (!strcmp(a, "--show-ids")) {
            o->show_ids = true;
            continue;
        }
        if (a[0] != '-') {
            if (o->model) return usage("more than one model given");
            o->model = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "realm generate: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt"))
            o->prompt = v;
        else if (!strcmp(a, "--system"))
            o->system = v;
        else if (!strcmp(a, "--stop")) {
            if (o->n_stops == REALM_STOP_MAX) return usage("at most 4 --stop strings");
            o->stops[o->n_stops++] = v;
        }
        else if (!strcmp(a, "-n"))
            ok = realm_cli_int(v, 0, 1 << 20, &o->n_predict);
        else if (!strcmp(a, "--max-ctx"))
            ok = realm_cli_int(v, 1, 1 << 20, &o->max_ctx);
        else if (!strcmp(a, "--chunk"))
            ok = realm_cli_int(v, 1, 4096, &o->chunk);
        else if (!strcmp(a, "--threads"))
            ok = realm_cli_int(v, 0, 1024, &o->threads);
        else if (!strcmp(a, "--device"))
            o->device = v;
        else if (!strcmp(a, "--kv-type"))
            ok = realm_cli_kv_type(v, &o->kv_type);
        else if (!strcmp(a, "--temp"))
            ok = realm_cli_float(v, &o->sp.temperature);
        else if (!strcmp(a, "--top-k"))
            ok = realm_cli_int(v, 0, 1 << 30, &o->sp.top_k);
        else if (!strcmp(a, "--top-p"))
            ok = realm_cli_float(v, &o->sp.top_p);
        else if (!strcmp(a, "--min-p"))
            ok = realm_cli_float(v, &o->sp.min_p);
        else if (!strcmp(a, "--repeat-penalty"))
            ok = realm_cli_float(v, &o->sp.repeat_penalty);
        else if (!strcmp(a, "--presence-penalty"))
            ok = realm_cli_float(v, &o->sp.presence_penalty);
        else if (!strcmp(a, "--frequency-penalty"))
            ok = realm_cli_float(v, &o->sp.frequency_penalty);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->sp.seed = strtoull(v, &end, 10);
            ok = !errno && end != v && !*end && v[0] != '-';
            o->seed_given = true;
        } else {
            fprintf(stderr, "realm generate: unknown option %s\n", a);
            return usage(NULL);
        }
        if (!ok) {
            fprintf(stderr, "realm generate: bad value '%s' for %s\n", v, a);
            return 2;
        }
        i++;
    }
    if (!o->prompt) return usage("--prompt is required");
    if (!o->seed_given) o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    return 0;
}

/* The prompt's token ids: raw text, or the chat template's rendering. */
static realm_status tokenize_prompt(const gen_opts *o, const realm_gguf_t *g,
                                    const realm_tokenizer_t *tok, realm_token_vec *ids,
                                    realm_error *err)
{
    if (!o->chat)
        return realm_tokenizer_encode(tok, o->prompt, strlen(o->prompt), REALM_TOKENIZE_ADD_SPECIAL,
                                      ids, err);
    realm_gguf_str tmpl = {0};
    (void)realm_gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL); /* absent: built-in */
    /* bos/eos as the template sees them: the tokens' spelling. */
    char *names[2] = {NULL, NULL};
    const realm_special_token which[2] = {REALM_SPECIAL_BOS, REALM_SPECIAL_EOS};
    realm_status st = REALM_OK;
    for (int i = 0; i < 2 && !st; i++) {
        const char *p;
        size_t len;
        int32_t id = realm_tokenizer_special(tok, which[i]);
        if (id < 0 || realm_tokenizer_token_text(tok, id, &p, &len)) continue;
        names[i] = realm_malloc(len + 1);
        if (!names[i]) {
            st = realm_error_set(err, REALM_E_NOMEM, "out of memory");
            break;
        }
        memcpy(names[i], p, len);
        names[i][len] = '\0';
    }
    realm_chat_template_t *t = NULL;
    char *text = NULL;
    size_t len = 0;
    if (!st)
        st = realm_chat_template_init(tmpl.len ? tmpl.ptr : NULL, tmpl.len, names[0], names[1], &t,
                                      err);
    if (!st) {
        realm_chat_message msgs[2];
        size_t n = 0;
        if (o->system) msgs[n++] = (realm_chat_message){"system", o->system};
        msgs[n++] = (realm_chat_message){"user", o->prompt};
        st = realm_chat_render(t, msgs, n, true, &text, &len, err);
    }
    if (!st) st = realm_tokenizer_encode(tok, text, len, REALM_TOKENIZE_PARSE_SPECIAL, ids, err);
    realm_free(text);
    realm_chat_template_free(t);
    realm_free(names[0]);
    realm_free(names[1]);
    return st;
}

typedef struct gen_state {
    realm_gguf_t *g;
    realm_backend *be;
    realm_model_t *m;
    realm_kv_cache_t *kv;
    realm_tokenizer_t *tok;
    realm_sampler_t *smp;
    realm_token_vec prompt;
    int32_t *gen, n_gen; /* generated ids */
    float *logits;
    int32_t *pos, *seq;
    char *text;
    realm_stop stop; /* --stop strings over the streamed text */
} gen_state;

/* Stream text through the stop matcher to stdout; true when a stop string
 * ended generation or the matcher failed (then *failed is set and err says why). */
static bool emit(realm_stop *st, const char *text, size_t n, bool *failed, realm_error *err)
{
    const char *out;
    size_t n_out;
    realm_error e = {0};
    bool stopped = realm_stop_feed(st, text, n, &out, &n_out, &e);
    fwrite(out, 1, n_out, stdout);
    fflush(stdout);
    if (e.status != REALM_OK) {
        *err = e;
        *failed = true;
        return true;
    }
    return stopped;
}

static void gen_free(gen_state *s)
{
    realm_free(s->text);
    realm_stop_free(&s->stop);
    realm_free(s->pos);
    realm_free(s->seq);
    realm_model_logits_free(s->m, s->logits);
    realm_token_vec_free(&s->prompt);
    realm_free(s->gen);
    realm_sampler_free(s->smp);
    realm_tokenizer_free(s->tok);
    realm_kv_cache_free(s->kv);
    realm_model_free(s->m);
    realm_backend_free(s->be);
    realm_gguf_close(s->g);
}

/* One forward pass of rows [from, from + n) of seq 0 whose ids are at tokens. */
static realm_status forward(gen_state *s, const int32_t *tokens, int32_t from, int32_t n,
                            realm_error *err)
{
    realm_batch b = {.n_rows = n,
                     .token = tokens,
                     .pos = s->pos + from,
                     .seq = s->seq,
                     .want_logits = NULL, /* last row only */
                     .n_seqs = 1,
                     .seqs = realm_kv_cache_seq(s->kv, 0)};
    return realm_model_forward(s->m, realm_kv_cache_pool(s->kv), &b, s->logits, err);
}

static int run(const gen_opts *o)
{
    gen_state s = {0};
    realm_error err = {0};
    int rc = 1;
    double t_start = now_s();
    realm_backend_options bo = {.n_threads = o->threads};
    if (realm_gguf_open(o->model, &s.g, &err) || realm_tokenizer_init_gguf(s.g, &s.tok, &err) ||
        realm_backend_create(o->device, &bo, &s.be, &err))
        goto done;
    double t_tok = now_s();
    if (tokenize_prompt(o, s.g, s.tok, &s.prompt, &err)) goto done;
    t_tok = now_s() - t_tok;
    int32_t n_prompt = (int32_t)s.prompt.n;
    if (n_prompt == 0) {
        realm_error_set(&err, REALM_E_INVALID, "the prompt has no tokens");
        goto done;
    }
    /* The context: --max-ctx, else what the prompt and -n need, capped by
     * the model's training context. */
    realm_gguf_str arch;
    uint32_t n_ctx_train = 0;
    char key[96];
    if (!realm_gguf_get_str(s.g, "general.architecture", &arch, NULL) && arch.len < 64) {
        snprintf(key, sizeof key, "%.*s.context_length", (int)arch.len, arch.ptr);
        (void)realm_gguf_get_u32(s.g, key, &n_ctx_train, NULL);
    }
    int64_t want_ctx = (int64_t)n_prompt + (o->n_predict > 0 ? o->n_predict : 1);
    int32_t max_ctx =
        o->max_ctx > 0
            ? o->max_ctx
            : (int32_t)(n_ctx_train > 0 && want_ctx > n_ctx_train ? n_ctx_train : want_ctx);
    if (n_prompt >= max_ctx) {
        realm_error_set(&err, REALM_E_RANGE,
                        "the prompt has %d tokens but the context holds %d (%s): shorten the "
                        "prompt or raise --max-ctx",
                        n_prompt, max_ctx,
                        o->max_ctx > 0 ? "--max-ctx" : "the model's context length");
        goto done;
    }
    int32_t chunk = o->chunk > 0 ? o->chunk : 256;
    if (chunk > n_prompt) chunk = n_prompt;
    realm_model_params mp = {.max_rows = chunk, .max_ctx = max_ctx, .max_logit_rows = 1};
    if (realm_model_load(s.g, s.be, &mp, &s.m, &err)) goto done;
    const realm_hparams *hp = realm_model_hparams(s.m);
    if (hp->n_vocab < realm_tokenizer_n_vocab(s.tok)) {
        realm_error_set(&err, REALM_E_FORMAT, "the tokenizer has %d tokens, the model only %d",
                        realm_tokenizer_n_vocab(s.tok), hp->n_vocab);
        goto done;
    }
    if (realm_kv_cache_init(s.be, hp, 1, max_ctx, realm_kv_type_pick(s.be, o->kv_type), &s.kv,
                            &err) ||
        realm_sampler_init(hp->n_vocab, &o->sp, &s.smp, &err) ||
        realm_sampler_accept_prompt(s.smp, s.prompt.ids, n_prompt, &err))
        goto done;
    size_t text_cap = realm_detok_max_output(s.tok);
    if (text_cap < 12) text_cap = 12;
    s.logits = realm_model_logits_alloc(s.m, 1);
    s.pos = realm_calloc((size_t)max_ctx, sizeof *s.pos);
    s.seq = realm_calloc((size_t)chunk, sizeof *s.seq);
    s.text = realm_malloc(text_cap);
    if (realm_stop_init(&s.stop, o->stops, o->n_stops, text_cap, &err)) goto done;
    if (!s.logits || !s.pos || !s.seq || !s.text) {
        realm_error_set(&err, REALM_E_NOMEM, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < max_ctx; i++)
        s.pos[i] = i;
    int32_t n_gen_max = o->n_predict;
    bool ctx_cut = false;
    if (n_gen_max > max_ctx - n_prompt) {
        n_gen_max = max_ctx - n_prompt;
        ctx_cut = true;
    }
    /* Room for every generated id up front: no allocation per token. */
    s.gen = realm_calloc((size_t)n_gen_max + 1, sizeof *s.gen);
    if (!s.gen) {
        realm_error_set(&err, REALM_E_NOMEM, "out of memory");
        goto done;
    }

    double t_prefill = now_s();
    for (int32_t i = 0; i < n_prompt; i += chunk) {
        int32_t rows = n_prompt - i < chunk ? n_prompt - i : chunk;
        if (forward(&s, s.prompt.ids + i, i, rows, &err)) goto done;
    }
    double t_prefill_end = now_s(), t_first = 0.0, t_decode = 0.0;
    int32_t n_decode = 0;
    const int32_t eos = realm_tokenizer_special(s.tok, REALM_SPECIAL_EOS),
                  eot = realm_tokenizer_special(s.tok, REALM_SPECIAL_EOT);
    realm_detok dt;
    realm_detok_init(&dt, s.tok, 0);
    bool stop_failed = false;
    const char *stop = n_gen_max == 0 ? "-n 0" : NULL;
    for (int32_t i = 0; i < n_gen_max; i++) {
        double t0 = now_s();
        if (i > 0) {
            if (forward(&s, &s.gen[i - 1], n_prompt + i - 1, 1, &err)) goto done;
            n_decode++;
        }
        int32_t id;
        if (realm_sampler_sample(s.smp, s.logits, NULL, &id, &err) ||
            realm_sampler_accept(s.smp, id, &err))
            goto done;
        double t1 = now_s();
        if (i == 0)
            t_first = t1;
        else
            t_decode += t1 - t0;
        s.gen[s.n_gen++] = id;
        if (id == eos || id == eot) {
            stop = id == eos ? "EOS" : "EOT";
            break;
        }
        size_t n_text = 0;
        if (realm_detok_feed(&dt, id, s.text, text_cap, &n_text, &err)) goto done;
        if (emit(&s.stop, s.text, n_text, &stop_failed, &err)) {
            if (stop_failed) goto done;
            stop = "stop string";
            break;
        }
    }
    if (!stop) stop = ctx_cut && n_gen_max < o->n_predict ? "context full" : "-n tokens";
    size_t n_tail = realm_detok_flush(&dt, s.text, text_cap);
    if (!s.stop.stopped && !emit(&s.stop, s.text, n_tail, &stop_failed, &err)) {
        const char *tail;
        size_t n;
        realm_stop_flush(&s.stop, &tail, &n);
        fwrite(tail, 1, n, stdout);
    }
    if (stop_failed) goto done;
    fputc('\n', stdout);
    fflush(stdout);

    double pp_s = t_prefill_end - t_prefill;
    fprintf(stderr,
            "\nrealm generate: prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens, "
            "%d decode steps in %.3f s (%.1f tok/s); time to first token %.3f s; load %.3f s; "
            "stop: %s; seed %llu; backend %s\n",
            n_prompt, pp_s, pp_s > 0 ? n_prompt / pp_s : 0.0, s.n_gen, n_decode, t_decode,
            t_decode > 0 ? n_decode / t_decode : 0.0,
            t_first > 0 ? t_first - t_prefill + t_tok : 0.0, t_prefill - t_start - t_tok, stop,
            (unsigned long long)o->sp.seed, s.be->ops->name);
    if (o->show_ids) {
        fprintf(stderr, "prompt_tokens: %d\nids: ", n_prompt);
        for (int32_t i = 0; i < s.n_gen; i++)
            fprintf(stderr, "%s%d", i ? "," : "", s.gen[i]);
        fputc('\n', stderr);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "realm generate: %s\n", err.message);
    gen_free(&s);
    return rc;
}

int realm_cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char def[4096];
    if (!o.model) {
        const char *env = getenv("REALM_MODEL_PATH"), *home = getenv("HOME");
        if (env && *env)
            o.model = env;
        else {
            snprintf(def, sizeof def, "%s/.cache/realm/models/" DEFAULT_MODEL, home ? home : ".");
            o.model = def;
        }
    }
    realm_error err = {0};
    if (realm_sampler_params_check(&o.sp, 1, &err)) {
        fprintf(stderr, "realm generate: %s\n", err.message);
        return 2;
    }
    return run(&o);
}
