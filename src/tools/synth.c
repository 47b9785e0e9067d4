#include "tools/synth.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/parallel.h"
#include "gguf/gguf.h"
#include "tools/convert.h"
#include "tools/quant_mix.h"
#include "tools/synth_vocab.h"

/* Published shapes of the models we measure against. "tiny" is ours: a
 * minimal Llama for fast tests (rows of 256 so every type applies). */
static const realm_synth_shape shapes[] = {
    {"tiny", "llama", "smollm", 2, 256, 4, 2, 512, 1024, 512, 10000.0f, 1e-5f, true, false, 0, 0},
    {"smollm2-135m", "llama", "smollm", 30, 576, 9, 3, 1536, 49152, 8192, 100000.0f, 1e-5f, true,
     false, 0, 0},
    {"llama-3.2-1b", "llama", "llama3", 16, 2048, 32, 8, 8192, 128256, 131072, 500000.0f, 1e-5f,
     true, false, 32.0f, 8192},
    {"llama-3-8b", "llama", "llama3", 32, 4096, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f,
     false, false, 0, 0},
    {"qwen2-0.5b", "qwen2", "qwen2", 24, 896, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, true,
     true, 0, 0},
    {NULL},
};

const realm_synth_shape *realm_synth_shapes(void)
{
    return shapes;
}

const realm_synth_shape *realm_synth_shape_find(const char *name)
{
    for (const realm_synth_shape *s = shapes; s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

/* ---- random rows ---- */

typedef struct row_gen {
    uint64_t seed;   /* per tensor */
    float mean, std; /* N(mean, std) elements */
} row_gen;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Gaussian rows by Box-Muller; the stream depends only on (tensor, row), so
 * the output is the same for any thread count. */
static void random_row(void *ctx, int64_t row, float *dst, int64_t ne0)
{
    const row_gen *g = ctx;
    uint64_t s = g->seed ^ ((uint64_t)row * 0xd1b54a32d192ed03ull);
    for (int64_t i = 0; i < ne0; i += 2) {
        double u1 = ((double)(splitmix(&s) >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
        double u2 = (double)(splitmix(&s) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1));
        dst[i] = g->mean + g->std * (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < ne0) dst[i + 1] = g->mean + g->std * (float)(r * sin(2.0 * M_PI * u2));
    }
}

/* ---- the tensor list of a shape ---- */

typedef struct tensor_spec {
    char name[64];
    uint32_t n_dims;
    int64_t ne[2];
    realm_type type;
    float mean, std;
    const float *fixed; /* exact F32 contents instead of random (rope factors) */
} tensor_spec;

/* Llama 3.1-style RoPE frequency factors (divisors per rotary pair), the
 * published formula with low/high frequency factors 1 and 4. */
static void rope_factors(const realm_synth_shape *s, float *out, int n)
{
    int head_dim = s->n_embd / s->n_head;
    double low_wavelen = s->rope_orig_ctx / 1.0, high_wavelen = s->rope_orig_ctx / 4.0;
    for (int i = 0; i < n; i++) {
        double freq = pow(s->rope_base, -2.0 * i / head_dim);
        double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_wavelen) out[i] = 1.0f;
        else if (wavelen > low_wavelen) out[i] = s->rope_scale;
        else {
            double smooth = (s->rope_orig_ctx / wavelen - 1.0) / (4.0 - 1.0);
            out[i] = (float)(1.0 / ((1.0 - smooth) / s->rope_scale + smooth));
        }
    }
}

static int add_spec(tensor_spec *specs, int n, const char *name, uint32_t n_dims, int64_t ne0,
                    int64_t ne1, float mean, float std)
{
    tensor_spec *t = &specs[n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->mean = mean;
    t->std = std;
    t->fixed = NULL;
    return n + 1;
}

/* Fills specs (capacity 16 * n_layer + 8) in GGUF order; returns the count. */
static int list_tensors(const realm_synth_shape *s, int n_layer, tensor_spec *specs,
                        const float *rope)
{
    int hd = s->n_embd / s->n_head, n = 0;
    int64_t q_dim = (int64_t)s->n_head * hd, kv_dim = (int64_t)s->n_head_kv * hd;
    char name[64];
    /* Weight scale ~ 1/sqrt(fan_in) keeps activations O(1) through the layers. */
    float w_std = 1.0f / sqrtf((float)s->n_embd), ff_std = 1.0f / sqrtf((float)s->n_ff);
    n = add_spec(specs, n, "token_embd.weight", 2, s->n_embd, s->n_vocab, 0, 0.02f);
    if (s->rope_scale > 0) {
        n = add_spec(specs, n, "rope_freqs.weight", 1, hd / 2, 1, 0, 0);
        specs[n - 1].fixed = rope;
    }
    for (int l = 0; l < n_layer; l++) {
#define LAYER(suffix, dims, a, b, mean, std)                                                       \
    snprintf(name, sizeof name, "blk.%d.%s", l, suffix);                                           \
    n = add_spec(specs, n, name, dims, a, b, mean, std)
        LAYER("attn_norm.weight", 1, s->n_embd, 1, 1.0f, 0.05f);
        LAYER("attn_q.weight", 2, s->n_embd, q_dim, 0, w_std);
        LAYER("attn_k.weight", 2, s->n_embd, kv_dim, 0, w_std);
        LAYER("attn_v.weight", 2, s->n_embd, kv_dim, 0, w_std);
        if (s->qkv_bias) {
            LAYER("attn_q.bias", 1, q_dim, 1, 0, 0.02f);
            LAYER("attn_k.bias", 1, kv_dim, 1, 0, 0.02f);
            LAYER("attn_v.bias", 1, kv_dim, 1, 0, 0.02f);
        }
        LAYER("attn_output.weight", 2, q_dim, s->n_embd, 0, w_std);
        LAYER("ffn_norm.weight", 1, s->n_embd, 1, 1.0f, 0.05f);
        LAYER("ffn_gate.weight", 2, s->n_embd, s->n_ff, 0, w_std);
        LAYER("ffn_up.weight", 2, s->n_embd, s->n_ff, 0, w_std);
        LAYER("ffn_down.weight", 2, s->n_ff, s->n_embd, 0, ff_std);
#undef LAYER
    }
    n = add_spec(specs, n, "output_norm.weight", 1, s->n_embd, 1, 1.0f, 0.05f);
    if (!s->tied_embeddings) n = add_spec(specs, n, "output.weight", 2, s->n_embd, s->n_vocab, 0, w_std);
    return n;
}

/* ---- metadata ---- */

static realm_status write_hparams(realm_gguf_writer_t *w, const realm_synth_shape *s,
                                  int n_layer, const realm_quant_mix *mix)
{
    char key[96], name[96];
    realm_status st;
#define KEY(k) (snprintf(key, sizeof key, "%s.%s", s->arch, k), key)
    snprintf(name, sizeof name, "realm synth %s %s", s->name, mix->name);
    if ((st = realm_gguf_writer_set_str(w, "general.architecture", s->arch)) ||
        (st = realm_gguf_writer_set_str(w, "general.name", name)) ||
        (st = realm_gguf_writer_set_u32(w, "general.quantization_version", 2)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)n_layer)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)s->n_ctx)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv)) ||
        (st = realm_gguf_writer_set_f32(w, KEY("rope.freq_base"), s->rope_base)) ||
        (st = realm_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->norm_eps)) ||
        (st = realm_gguf_writer_set_u32(w, KEY("rope.dimension_count"),
                                        (uint32_t)(s->n_embd / s->n_head))) ||
        (st = realm_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)s->n_vocab)))
        return st;
    if (mix->file_type != REALM_FILE_TYPE_NONE &&
        (st = realm_gguf_writer_set_u32(w, "general.file_type", mix->file_type)))
        return st;
    /* Llama 3.1-style frequency scaling travels as rope_freqs.weight only,
     * as llama.cpp's converter writes it (llama.cpp rejects rope.scaling.type
     * "llama3"). */
#undef KEY
    return REALM_OK;
}

/* Copies every tokenizer.* key of another model; returns its vocabulary size. */
static realm_status copy_vocab(realm_gguf_writer_t *w, const char *path, int *n_vocab,
                               realm_error *err)
{
    realm_gguf_t *src = NULL;
    realm_status st = realm_gguf_open(path, &src, err);
    if (st) return st;
    int64_t tok = realm_gguf_find_key(src, "tokenizer.ggml.tokens");
    realm_gguf_kind kind;
    uint64_t count = 0;
    if (tok < 0 || realm_gguf_kv_arr(src, tok, &kind, &count) || kind != REALM_GGUF_STRING) {
        realm_gguf_close(src);
        return realm_error_set(err, REALM_E_FORMAT, "%s: no tokenizer.ggml.tokens string array", path);
    }
    for (int64_t i = 0; i < realm_gguf_kv_count(src) && !st; i++) {
        realm_gguf_str key = realm_gguf_kv_key(src, i);
        if (key.len > 10 && !memcmp(key.ptr, "tokenizer.", 10)) st = realm_gguf_writer_copy_kv(w, src, i);
    }
    realm_gguf_close(src);
    *n_vocab = (int)count;
    return st ? realm_error_set(err, st, "cannot copy tokenizer metadata from %s", path) : REALM_OK;
}

realm_status realm_synth_write(const realm_synth_options *opt, realm_error *err)
{
    const realm_synth_shape *base = realm_synth_shape_find(opt->shape);
    if (!base) return realm_error_set(err, REALM_E_INVALID, "unknown shape '%s'", opt->shape);
    realm_quant_mix mix_value;
    const realm_quant_mix *mix = &mix_value;
    if (!realm_quant_mix_find(opt->scheme, &mix_value))
        return realm_error_set(err, REALM_E_INVALID, "unknown type or scheme '%s' (known: %s)",
                               opt->scheme, realm_quant_mix_list());
    realm_synth_shape s = *base;
    int n_layer = opt->n_layer_override > 0 ? opt->n_layer_override : s.n_layer;
    int n_threads = opt->n_threads > 0 ? opt->n_threads : realm_cpu_count();

    realm_status st;
    realm_gguf_writer_t *w = NULL;
    tensor_spec *specs = NULL;
    void *buf = NULL;
    int begun = 0;
    float rope[256];
    if ((st = realm_gguf_writer_init(&w)))
        return realm_error_set(err, st, "out of memory creating a GGUF writer");
    if ((st = write_hparams(w, &s, n_layer, mix))) {
        realm_error_set(err, st, "cannot set model metadata");
        goto done;
    }
    if (opt->vocab_from) {
        if ((st = copy_vocab(w, opt->vocab_from, &s.n_vocab, err))) goto done;
        char key[96];
        snprintf(key, sizeof key, "%s.vocab_size", s.arch);
        if ((st = realm_gguf_writer_set_u32(w, key, (uint32_t)s.n_vocab))) goto done;
    } else if ((st = realm_synth_vocab_write(w, s.tokenizer, s.n_vocab, opt->seed, err))) {
        goto done;
    }

    if (s.rope_scale > 0) rope_factors(&s, rope, s.n_embd / s.n_head / 2);
    specs = realm_calloc((size_t)(16 * n_layer + 8), sizeof *specs);
    if (!specs) {
        st = realm_error_set(err, REALM_E_NOMEM, "out of memory listing tensors");
        goto done;
    }
    int n_tensors = list_tensors(&s, n_layer, specs, rope);
    size_t max_bytes = 0;
    for (int i = 0; i < n_tensors; i++) {
        tensor_spec *t = &specs[i];
        t->type = realm_quant_mix_type(mix, t->name, t->n_dims, t->ne[0], n_layer);
        if ((st = realm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, err))) goto done;
        size_t bytes = realm_type_row_size(t->type, t->ne[0]) * (size_t)t->ne[1];
        if (bytes > max_bytes) max_bytes = bytes;
    }
    if ((st = realm_gguf_writer_begin(w, opt->out_path, err))) goto done;
    begun = 1;
    if (!(buf = realm_malloc(max_bytes))) {
        st = realm_error_set(err, REALM_E_NOMEM, "out of memory: %zu bytes for one tensor", max_bytes);
        goto done;
    }
    for (int i = 0; i < n_tensors; i++) {
        tensor_spec *t = &specs[i];
        size_t bytes = realm_type_row_size(t->type, t->ne[0]) * (size_t)t->ne[1];
        if (t->fixed) {
            memcpy(buf, t->fixed, bytes);
        } else {
            row_gen g = {.seed = opt->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0xa0761d6478bd642full,
                         .mean = t->mean, .std = t->std};
            if ((st = realm_convert_rows(t->type, t->ne[0], t->ne[1], random_row, &g, n_threads,
                                         buf, err)))
                goto done;
        }
        if ((st = realm_gguf_writer_write_tensor(w, buf, bytes, err))) goto done;
        realm_log(REALM_LOG_DEBUG, "synth: %s %s done", t->name, realm_type_name(t->type));
    }
    st = realm_gguf_writer_finish(w, err);

done:
    realm_free(buf);
    realm_free(specs);
    realm_gguf_writer_free(w);
    if (st && begun) unlink(opt->out_path); /* never leave a truncated model behind */
    return st;
}
