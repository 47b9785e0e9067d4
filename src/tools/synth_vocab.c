#include "tools/synth_vocab.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

/* Token types as GGUF stores them (tokenizer.ggml.token_type). */
enum { TOKEN_NORMAL = 1, TOKEN_CONTROL = 3, TOKEN_UNUSED = 5 };

#define MAX_TOKEN_BYTES 16

static const char *const smollm_specials[] = {
    "<|endoftext|>", "<|im_start|>",    "<|im_end|>",       "<repo_name>",     "<reponame>",
    "<file_sep>",    "<filename>",      "<gh_stars>",       "<issue_start>",   "<issue_comment>",
    "<issue_closed>", "<jupyter_start>", "<jupyter_text>",  "<jupyter_code>",  "<jupyter_output>",
    "<jupyter_script>", "<empty_output>"};

/* Chat templates of the families the synthetic vocabularies imitate; the
 * template texts are those the models publish. */
static const char chatml_smollm[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char chatml_qwen2[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
static const char llama3_template[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}";

static char *spell(const unsigned char *bytes, size_t n)
{
    char *s = realm_malloc(2 * n + 4); /* each byte spells as 1 or 2 UTF-8 bytes; +4: encode may write 4 */
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += realm_utf8_encode(realm_tokenizer_gpt2_byte_char(bytes[i]), s + o);
    s[o] = '\0';
    return s;
}

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Index in [0, n) biased towards small values, so early (short) tokens are
 * reused more often, as in a trained vocabulary. */
static size_t biased_index(uint64_t *state, size_t n)
{
    double u = (double)(next_rand(state) >> 11) * 0x1p-53;
    size_t i = (size_t)(u * u * (double)n);
    return i < n ? i : n - 1;
}

typedef struct word {
    unsigned char bytes[MAX_TOKEN_BYTES];
    uint8_t len;
} word;

static uint64_t hash_word(const unsigned char *b, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Open-addressing set of word indices. */
typedef struct word_set {
    int64_t *slots;
    size_t mask;
} word_set;

static int64_t *set_slot(word_set *s, const word *words, const unsigned char *b, size_t n)
{
    for (size_t i = hash_word(b, n) & s->mask;; i = (i + 1) & s->mask) {
        int64_t w = s->slots[i];
        if (w < 0 || (words[w].len == n && memcmp(words[w].bytes, b, n) == 0)) return &s->slots[i];
    }
}

realm_status realm_synth_vocab_write(realm_gguf_writer_t *w, const char *style, int n_vocab,
                                     uint64_t seed, realm_error *err)
{
    int is_smollm = !strcmp(style, "smollm"), is_llama3 = !strcmp(style, "llama3"),
        is_qwen2 = !strcmp(style, "qwen2");
    if (!is_smollm && !is_llama3 && !is_qwen2)
        return realm_error_set(err, REALM_E_INVALID, "unknown vocabulary style '%s'", style);
    /* Layout: [specials_lo) control tokens, then normal tokens (256 bytes +
     * merges) up to normal_end, then the family's high special block. */
    int specials_lo = is_smollm ? 17 : 0;
    int specials_hi = is_llama3 ? 256 : is_qwen2 ? 293 : 0;
    int normal_end = n_vocab - specials_hi;
    if (normal_end - specials_lo < 256 + 64)
        return realm_error_set(err, REALM_E_INVALID, "vocabulary of %d tokens is too small",
                               n_vocab);
    int n_merges = normal_end - specials_lo - 256;

    realm_status st = REALM_E_NOMEM;
    char **tokens = realm_calloc((size_t)n_vocab, sizeof *tokens);
    char **merges = realm_calloc((size_t)n_merges, sizeof *merges);
    int32_t *types = realm_calloc((size_t)n_vocab, sizeof *types);
    word *words = realm_calloc((size_t)n_merges + 256, sizeof *words);
    size_t n_slots = 1;
    while (n_slots < 2 * ((size_t)n_merges + 256)) n_slots <<= 1;
    word_set set = {realm_malloc(n_slots * sizeof(int64_t)), n_slots - 1};
    /* word tokens usable on the left (any) and on the right (no leading space) */
    int64_t *left = realm_calloc((size_t)n_merges + 64, sizeof *left);
    int64_t *right = realm_calloc((size_t)n_merges + 64, sizeof *right);
    if (!tokens || !merges || !types || !words || !set.slots || !left || !right) goto done;
    for (size_t i = 0; i < n_slots; i++) set.slots[i] = -1;

    char name[64];
    for (int i = 0; i < specials_lo; i++) {
        if (!(tokens[i] = realm_strdup(smollm_specials[i]))) goto done;
        types[i] = TOKEN_CONTROL;
    }
    for (int i = 0; i < specials_hi; i++) {
        int id = normal_end + i;
        if (is_llama3) {
            static const char *const named[] = {
                "<|begin_of_text|>", "<|end_of_text|>", NULL, NULL, "<|finetune_right_pad_id|>",
                NULL, "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                "<|python_tag|>"};
            static const int reserved_before[] = {0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0};
            if (i < 11 && named[i]) snprintf(name, sizeof name, "%s", named[i]);
            else if (i < 11) snprintf(name, sizeof name, "<|reserved_special_token_%d|>", reserved_before[i]);
            else snprintf(name, sizeof name, "<|reserved_special_token_%d|>", i - 11 + 3);
            types[id] = TOKEN_CONTROL;
        } else {
            static const char *const named[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
            if (i < 3) snprintf(name, sizeof name, "%s", named[i]);
            else snprintf(name, sizeof name, "[PAD%d]", id);
            types[id] = i < 3 ? TOKEN_CONTROL : TOKEN_UNUSED;
        }
        if (!(tokens[id] = realm_strdup(name))) goto done;
    }

    /* 256 byte tokens; the letters seed the word lists. */
    size_t n_words = 0, n_left = 0, n_right = 0;
    for (int b = 0; b < 256; b++) {
        unsigned char byte = (unsigned char)b;
        int id = specials_lo + b;
        if (!(tokens[id] = spell(&byte, 1))) goto done;
        types[id] = TOKEN_NORMAL;
        words[n_words].bytes[0] = byte;
        words[n_words].len = 1;
        *set_slot(&set, words, &byte, 1) = (int64_t)n_words;
        if (byte >= 'a' && byte <= 'z') left[n_left++] = right[n_right++] = (int64_t)n_words;
        n_words++;
    }
    /* A space joins a word only at its start, as GPT-2-style vocabularies do. */
    uint64_t rng = seed ^ 0x5eed0f70c0ab5ull;
    for (int m = 0; m < n_merges; m++) {
        const word *a, *b;
        unsigned char joined[MAX_TOKEN_BYTES];
        size_t n;
        for (;;) {
            if (next_rand(&rng) % 8 == 0) { /* " " + word start */
                a = &words[' '];
                b = &words[right[biased_index(&rng, n_right)]];
            } else {
                a = &words[left[biased_index(&rng, n_left)]];
                b = &words[right[biased_index(&rng, n_right)]];
            }
            n = (size_t)a->len + b->len;
            if (n > MAX_TOKEN_BYTES) continue;
            memcpy(joined, a->bytes, a->len);
            memcpy(joined + a->len, b->bytes, b->len);
            if (*set_slot(&set, words, joined, n) < 0) break;
        }
        word *nw = &words[n_words];
        memcpy(nw->bytes, joined, n);
        nw->len = (uint8_t)n;
        *set_slot(&set, words, joined, n) = (int64_t)n_words;
        left[n_left++] = (int64_t)n_words;
        if (joined[0] != ' ') right[n_right++] = (int64_t)n_words;
        n_words++;

        int id = specials_lo + 256 + m;
        char *sa = spell(a->bytes, a->len), *sb = spell(b->bytes, b->len);
        tokens[id] = spell(joined, n);
        merges[m] = sa && sb ? realm_malloc(strlen(sa) + strlen(sb) + 2) : NULL;
        if (merges[m]) sprintf(merges[m], "%s %s", sa, sb);
        realm_free(sa);
        realm_free(sb);
        if (!tokens[id] || !merges[m]) goto done;
        types[id] = TOKEN_NORMAL;
    }

    uint32_t bos, eos, pad;
    const char *pre, *tmpl;
    if (is_smollm) bos = 1, eos = 2, pad = 2, pre = "smollm", tmpl = chatml_smollm;
    else if (is_llama3)
        bos = (uint32_t)normal_end, eos = (uint32_t)normal_end + 9, pad = eos, pre = "llama-bpe",
        tmpl = llama3_template;
    else bos = (uint32_t)normal_end, eos = (uint32_t)normal_end + 2, pad = bos, pre = "qwen2",
        tmpl = chatml_qwen2;

    if ((st = realm_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (st = realm_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre)) ||
        (st = realm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens,
                                            (uint64_t)n_vocab)) ||
        (st = realm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", REALM_GGUF_INT32, types,
                                        (uint64_t)n_vocab)) ||
        (st = realm_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges,
                                            (uint64_t)n_merges)) ||
        (st = realm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", bos)) ||
        (st = realm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", eos)) ||
        (st = realm_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", pad)) ||
        (st = realm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", is_llama3)) ||
        (st = realm_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false)) ||
        (st = realm_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl)))
        goto done;
    if (is_llama3 &&
        (st = realm_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)normal_end + 9)))
        goto done;
    st = REALM_OK;

done:
    if (st == REALM_E_NOMEM) realm_error_set(err, st, "out of memory building a synthetic vocabulary");
    else if (st != REALM_OK) realm_error_set(err, st, "cannot write tokenizer metadata");
    for (int i = 0; tokens && i < n_vocab; i++) realm_free(tokens[i]);
    for (int i = 0; merges && i < n_merges; i++) realm_free(merges[i]);
    realm_free(tokens);
    realm_free(merges);
    realm_free(types);
    realm_free(words);
    realm_free(set.slots);
    realm_free(left);
    realm_free(right);
    return st;
}
