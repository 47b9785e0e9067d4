/*
 * Reading a tokenizer from a GGUF file's metadata (llama.cpp's key names):
 *   tokenizer.ggml.model        "gpt2" (byte-level BPE) | "llama" (SentencePiece)
 *   tokenizer.ggml.pre          pre-tokenizer name (BPE)
 *   tokenizer.ggml.tokens       [string]   the vocabulary, id = index
 *   tokenizer.ggml.token_type   [int32]    realm_token_type per token (optional)
 *   tokenizer.ggml.scores       [float32]  SPM merge priority (optional)
 *   tokenizer.ggml.merges       [string]   BPE "left right", rank = index
 *   tokenizer.ggml.{bos,eos,eot,unknown,padding}_token_id  u32 (optional)
 *   tokenizer.ggml.add_{bos,eos}_token, tokenizer.ggml.add_space_prefix  bool (optional)
 * The strings are borrowed from the mapping only while the tokenizer copies
 * them, so the file may be closed after init.
 */
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/tokenizer_impl.h"

/* An array key of the given element kind: its index and count, or -1. */
static realm_status find_array(const realm_gguf_t *g, const char *key, realm_gguf_kind kind,
                               bool required, int64_t *idx, uint64_t *count, realm_error *err)
{
    *idx = realm_gguf_find_key(g, key);
    *count = 0;
    if (*idx < 0)
        return required ? realm_error_set(err, REALM_E_FORMAT, "tokenizer: missing key %s", key)
                        : REALM_OK;
    realm_gguf_kind ek;
    if (realm_gguf_kv_arr(g, *idx, &ek, count) != REALM_OK || ek != kind)
        return realm_error_set(err, REALM_E_FORMAT, "tokenizer: %s is not an array of %s", key,
                               realm_gguf_kind_name(kind));
    return REALM_OK;
}

/* Optional scalar keys: absent keeps the default, a wrong kind is an error. */
static realm_status opt_bool(const realm_gguf_t *g, const char *key, bool *v, realm_error *err)
{
    realm_status st = realm_gguf_get_bool(g, key, v, err);
    return st == REALM_E_NOT_FOUND ? REALM_OK : st;
}

static realm_status opt_id(const realm_gguf_t *g, const char *key, int32_t *v, realm_error *err)
{
    uint32_t u;
    realm_status st = realm_gguf_get_u32(g, key, &u, err);
    if (st == REALM_E_NOT_FOUND) return REALM_OK;
    if (st) return st;
    *v = u > INT32_MAX ? -1 : (int32_t)u;
    return REALM_OK;
}

realm_status realm_tokenizer_init_gguf(const realm_gguf_t *g, realm_tokenizer_t **out,
                                       realm_error *err)
{
    *out = NULL;
    realm_gguf_str model;
    realm_status st = realm_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st) return st;
    realm_tokenizer_kind kind;
    if (realm_gguf_str_eq(model, "gpt2"))
        kind = REALM_TOKENIZER_KIND_BPE;
    else if (realm_gguf_str_eq(model, "llama"))
        kind = REALM_TOKENIZER_KIND_SPM;
    else
        return realm_error_set(
            err, REALM_E_UNSUPPORTED,
            "tokenizer: tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)",
            (int)(model.len > 64 ? 64 : model.len), model.ptr);

    realm_tokenizer_desc d;
    realm_tokenizer_desc_defaults(&d, kind);
    int64_t ktok, ktype, kscore, kmerge;
    uint64_t ntok, ntype, nscore, nmerge;
    if ((st = find_array(g, "tokenizer.ggml.tokens", REALM_GGUF_STRING, true, &ktok, &ntok, err)) ||
        (st = find_array(g, "tokenizer.ggml.token_type", REALM_GGUF_INT32, false, &ktype, &ntype,
                         err)) ||
        (st = find_array(g, "tokenizer.ggml.scores", REALM_GGUF_FLOAT32, false, &kscore, &nscore,
                         err)) ||
        (st = find_array(g, "tokenizer.ggml.merges", REALM_GGUF_STRING,
                         kind == REALM_TOKENIZER_KIND_BPE, &kmerge, &nmerge, err)))
        return st;
    if (ntok == 0 || ntok > INT32_MAX)
        return realm_error_set(err, REALM_E_FORMAT, "tokenizer: %llu tokens",
                               (unsigned long long)ntok);
    if ((ktype >= 0 && ntype != ntok) || (kscore >= 0 && nscore != ntok))
        return realm_error_set(err, REALM_E_FORMAT,
                               "tokenizer: token_type/scores length differs from tokens (%llu)",
                               (unsigned long long)ntok);
    if (nmerge > INT32_MAX)
        return realm_error_set(err, REALM_E_FORMAT, "tokenizer: too many merges");

    d.n_tokens = (int32_t)ntok;
    d.n_merges = (int64_t)nmerge;
    const char **tokens = realm_calloc(ntok, sizeof *tokens);
    size_t *token_lens = realm_calloc(ntok, sizeof *token_lens);
    int32_t *types = ktype >= 0 ? realm_calloc(ntok, sizeof *types) : NULL;
    float *scores = kscore >= 0 ? realm_calloc(ntok, sizeof *scores) : NULL;
    const char **merges = nmerge ? realm_calloc(nmerge, sizeof *merges) : NULL;
    size_t *merge_lens = nmerge ? realm_calloc(nmerge, sizeof *merge_lens) : NULL;
    if (!tokens || !token_lens || (ktype >= 0 && !types) || (kscore >= 0 && !scores) ||
        (nmerge && (!merges || !merge_lens))) {
        st = realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < ntok; i++) {
        realm_gguf_str s = realm_gguf_arr_str(g, ktok, i);
        tokens[i] = s.ptr ? s.ptr : "";
        token_lens[i] = s.len;
    }
    for (uint64_t i = 0; i < nmerge; i++) {
        realm_gguf_str s = realm_gguf_arr_str(g, kmerge, i);
        merges[i] = s.ptr ? s.ptr : "";
        merge_lens[i] = s.len;
    }
    /* Values inside the mapping may be unaligned: copy them out. */
    if (types) memcpy(types, realm_gguf_arr_data(g, ktype), ntok * sizeof *types);
    if (scores) memcpy(scores, realm_gguf_arr_data(g, kscore), ntok * sizeof *scores);
    d.tokens = tokens;
    d.token_lens = token_lens;
    d.types = types;
    d.scores = scores;
    d.merges = merges;
    d.merge_lens = merge_lens;

    char pre[64] = "default";
    realm_gguf_str ps;
    if (realm_gguf_get_str(g, "tokenizer.ggml.pre", &ps, NULL) == REALM_OK && ps.len < sizeof pre) {
        memcpy(pre, ps.ptr, ps.len);
        pre[ps.len] = 0;
    }
    d.pre = pre;
    if ((st = opt_id(g, "tokenizer.ggml.bos_token_id", &d.special[REALM_SPECIAL_BOS], err)) ||
        (st = opt_id(g, "tokenizer.ggml.eos_token_id", &d.special[REALM_SPECIAL_EOS], err)) ||
        (st = opt_id(g, "tokenizer.ggml.eot_token_id", &d.special[REALM_SPECIAL_EOT], err)) ||
        (st = opt_id(g, "tokenizer.ggml.unknown_token_id", &d.special[REALM_SPECIAL_UNK], err)) ||
        (st = opt_id(g, "tokenizer.ggml.padding_token_id", &d.special[REALM_SPECIAL_PAD], err)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_bos_token", &d.add_bos, err)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_eos_token", &d.add_eos, err)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &d.add_space_prefix, err)))
        goto done;
    st = realm_tokenizer_init(&d, out, err);
done:
    realm_free(tokens);
    realm_free(token_lens);
    realm_free(types);
    realm_free(scores);
    realm_free(merges);
    realm_free(merge_lens);
    return st;
}
