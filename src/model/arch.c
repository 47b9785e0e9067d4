/*
 * model/arch.c — the architecture table and hyperparameters from GGUF
 * metadata (`<arch>.block_count`, `<arch>.attention.head_count`, ...).
 *
 * A new llama-like architecture is one row here plus whatever real
 * difference it has in the forward pass. RoPE modes follow llama.cpp's
 * per-architecture rope type: llama is NORMAL (its converter permutes Q/K
 * rows for it), qwen2 is NEOX.
 */
#include <stdio.h>
#include <string.h>

#include "model/model_impl.h"

static const realm__arch archs[] = {
    {.name = "llama", .rope_mode = REALM_ROPE_NORMAL, .qkv_bias = false},
    {.name = "qwen2", .rope_mode = REALM_ROPE_NEOX, .qkv_bias = true},
};

const realm__arch *realm__arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

/* `<arch>.<suffix>` as a positive int32; def when absent and def > 0. */
static realm_status get_int(const realm_gguf_t *g, const char *arch, const char *suffix,
                            int32_t def, int32_t *out, realm_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = realm_gguf_find_key(g, key);
    if (i < 0) {
        if (def > 0) {
            *out = def;
            return REALM_OK;
        }
        return realm_error_set(err, REALM_E_NOT_FOUND, "model: missing metadata key '%s'", key);
    }
    uint64_t v;
    if (realm_gguf_kv_u64(g, i, &v) != REALM_OK)
        return realm_error_set(err, REALM_E_FORMAT,
                               "model: metadata key '%s' must be a non-negative integer, not %s",
                               key, realm_gguf_kind_name(realm_gguf_kv_kind(g, i)));
    if (v == 0 || v > (1u << 30))
        return realm_error_set(err, REALM_E_RANGE,
                               "model: metadata key '%s' = %llu is out of range", key,
                               (unsigned long long)v);
    *out = (int32_t)v;
    return REALM_OK;
}

static realm_status get_float(const realm_gguf_t *g, const char *arch, const char *suffix,
                              float def, float *out, realm_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t i = realm_gguf_find_key(g, key);
    if (i < 0) {
        *out = def;
        return REALM_OK;
    }
    double v;
    if (realm_gguf_kv_f64(g, i, &v) != REALM_OK || !(v > 0) || v > 1e30)
        return realm_error_set(err, REALM_E_FORMAT,
                               "model: metadata key '%s' must be a positive float", key);
    *out = (float)v;
    return REALM_OK;
}

/* RoPE scaling: "linear" (and a bare factor, as llama.cpp reads it) scales
 * positions; "llama3" is carried entirely by rope_freqs.weight, so its factor
 * key is informational; anything else (yarn, longrope) we do not run. */
static realm_status read_rope_scaling(const realm_gguf_t *g, const char *arch, realm_hparams *hp,
                                      realm_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    char type[32] = "";
    int64_t i = realm_gguf_find_key(g, key);
    if (i >= 0) {
        realm_gguf_str s;
        if (realm_gguf_kv_str(g, i, &s) != REALM_OK || s.len >= sizeof type)
            return realm_error_set(err, REALM_E_FORMAT, "model: '%s' must be a short string", key);
        memcpy(type, s.ptr, s.len);
        type[s.len] = '\0';
    }
    float factor = 0.0f; /* set by get_float on success; initialised for -Wmaybe-uninitialized */
    realm_status st = get_float(g, arch, "rope.scaling.factor", 0.0f, &factor, err);
    if (st) return st;
    hp->rope_freq_scale = 1.0f;
    if (!strcmp(type, "") || !strcmp(type, "none") || !strcmp(type, "linear")) {
        if (factor > 0 && strcmp(type, "none")) hp->rope_freq_scale = 1.0f / factor;
        return REALM_OK;
    }
    if (!strcmp(type, "llama3")) return REALM_OK;
    return realm_error_set(err, REALM_E_UNSUPPORTED,
                           "model: RoPE scaling type '%s' is not supported", type);
}

realm_status realm__model_read_hparams(const realm_gguf_t *g, realm_hparams *hp,
                                       const realm__arch **arch_out, realm_error *err)
{
    memset(hp, 0, sizeof *hp);
    realm_gguf_str a;
    realm_status st = realm_gguf_get_str(g, "general.architecture", &a, err);
    if (st) return st;
    if (a.len >= sizeof hp->arch) a.len = sizeof hp->arch - 1;
    memcpy(hp->arch, a.ptr, a.len);
    hp->arch[a.len] = '\0';
    const realm__arch *arch = realm__arch_find(hp->arch);
    if (!arch)
        return realm_error_set(err, REALM_E_UNSUPPORTED,
                               "model: unsupported architecture '%s' (supported: llama, qwen2)",
                               hp->arch);
    *arch_out = arch;
    const char *n = hp->arch;
    if ((st = get_int(g, n, "block_count", 0, &hp->n_layer, err)) ||
        (st = get_int(g, n, "embedding_length", 0, &hp->n_embd, err)) ||
        (st = get_int(g, n, "feed_forward_length", 0, &hp->n_ff, err)) ||
        (st = get_int(g, n, "attention.head_count", 0, &hp->n_head, err)) ||
        (st = get_int(g, n, "attention.head_count_kv", hp->n_head, &hp->n_head_kv, err)) ||
        (st = get_int(g, n, "context_length", 2048, &hp->n_ctx_train, err)) ||
        (st = get_float(g, n, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, err)) ||
        (st = get_float(g, n, "rope.freq_base", 10000.0f, &hp->rope_base, err)))
        return st;
    int32_t def_head = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : 0, v_dim;
    if ((st = get_int(g, n, "attention.key_length", def_head, &hp->head_dim, err)) ||
        (st = get_int(g, n, "attention.value_length", hp->head_dim, &v_dim, err)) ||
        (st = get_int(g, n, "rope.dimension_count", hp->head_dim, &hp->n_rot, err)) ||
        (st = read_rope_scaling(g, n, hp, err)))
        return st;
    if (v_dim != hp->head_dim)
        return realm_error_set(err, REALM_E_UNSUPPORTED,
                               "model: key_length %d != value_length %d is not supported",
                               hp->head_dim, v_dim);
    if (hp->head_dim > 1024)
        return realm_error_set(err, REALM_E_UNSUPPORTED, "model: head size %d is above 1024",
                               hp->head_dim);
    if (hp->n_head % hp->n_head_kv != 0)
        return realm_error_set(err, REALM_E_FORMAT,
                               "model: head_count %d is not a multiple of head_count_kv %d",
                               hp->n_head, hp->n_head_kv);
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return realm_error_set(err, REALM_E_FORMAT,
                               "model: rope.dimension_count %d must be even and <= head size %d",
                               hp->n_rot, hp->head_dim);
    hp->rope_mode = arch->rope_mode;
    hp->qkv_bias = arch->qkv_bias;
    return REALM_OK;
}
