/*
 * Pre-tokenizer: the regexes that cut text into the pieces BPE merges within.
 * The patterns are facts of each model family's tokenizer (its tokenizer.json
 * and llama.cpp agree on them); `tokenizer.ggml.pre` names the family.
 *
 * Text between matches becomes a piece too (HF "isolated" behaviour), so no
 * byte is ever dropped.
 *
 * PCRE2 with PCRE2_UTF|PCRE2_UCP gives \s, \p{L}, \p{N} their Unicode meaning;
 * the caller validated the UTF-8 once, so every match runs with
 * PCRE2_NO_UTF_CHECK (re-validating per match would be quadratic).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "tokenizer/tokenizer_impl.h"

/* GPT-2 (and HF ByteLevel's built-in regex). The trailing \s+ only catches a
 * single whitespace character before a non-space, which the gap rule would
 * isolate the same way. */
#define PAT_GPT2                                                                                   \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* SmolLM/StarCoder: HF's Digits(individual_digits) then GPT-2's regex on each
 * stretch between digits, folded into one pass (half the matching work):
 * a digit is its own piece, no other alternative can cross a digit, and
 * since a stretch ended at a digit, GPT-2's \s+(?!\S) treats "followed by a
 * digit" like the end of the text. The splits are checked against HF's
 * two-stage pre-tokenizer by the unit fixture and the oracle test. */
#define PAT_SMOLLM                                                                                 \
    "\\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?![^\\s\\p{N}])|\\s+"
#define PAT_LLAMA3                                                                                 \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"                       \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define PAT_QWEN2                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                            \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct pre_family {
    const char *canonical;
    const char *const *aliases; /* NULL-terminated */
    const char *pattern;
    bool ignore_merges;
} pre_family;

static const char *const gpt2_names[] = {"default", "gpt2", "gpt-2", "mpt", "olmo", "jais", NULL};
static const char *const smollm_names[] = {"smollm",    "starcoder", "refact",  "command-r",
                                           "codeshell", "exaone",    "minerva", NULL};
static const char *const llama3_names[] = {
    "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", NULL};
static const char *const llama3m_names[] = {"dbrx", "smaug-bpe", NULL};
static const char *const qwen2_names[] = {"qwen2", "deepseek-r1-qwen", "megrez", NULL};

/* One row per family; the first row is the fallback for unknown names. */
static const pre_family families[] = {
    {"gpt2", gpt2_names, PAT_GPT2, false},
    {"smollm", smollm_names, PAT_SMOLLM, false},
    {"llama-bpe", llama3_names, PAT_LLAMA3, true},
    /* Same split as Llama 3, but these vocabularies keep merging whole words. */
    {"dbrx", llama3m_names, PAT_LLAMA3, false},
    {"qwen2", qwen2_names, PAT_QWEN2, false},
};

struct realm__pretok {
    pcre2_code *code;
    bool jit;
};

void realm__pretok_free(realm__pretok *p)
{
    if (!p) return;
    pcre2_code_free(p->code);
    realm_free(p);
}

static const pre_family *find_family(const char *pre)
{
    if (!pre || !*pre) return &families[0];
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const char *const *a = families[f].aliases; *a; a++)
            if (!strcmp(*a, pre)) return &families[f];
    realm_log(REALM_LOG_WARN,
              "tokenizer: unknown pre-tokenizer '%s', using the GPT-2 split (ids may differ "
              "from the model's tokenizer)",
              pre);
    return &families[0];
}

realm_status realm__pretok_init(const char *pre, realm__pretok **out, const char **canonical,
                                bool *ignore_merges, realm_error *err)
{
    *out = NULL;
    const pre_family *fam = find_family(pre);
    realm__pretok *p = realm_calloc(1, sizeof *p);
    if (!p) return realm_error_set(err, REALM_E_NOMEM, "tokenizer: out of memory");
    int code;
    PCRE2_SIZE at;
    p->code = pcre2_compile((PCRE2_SPTR)fam->pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                            &code, &at, NULL);
    if (!p->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        realm__pretok_free(p);
        return realm_error_set(err, REALM_E_INTERNAL,
                               "tokenizer: pre-tokenizer regex of '%s' at %zu: %s", fam->canonical,
                               (size_t)at, (const char *)msg);
    }
    /* Without JIT (a platform that lacks it) the interpreter gives the same
     * matches, only slower. */
    p->jit = pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE) == 0;
    *canonical = fam->canonical;
    *ignore_merges = fam->ignore_merges;
    *out = p;
    return REALM_OK;
}

void *realm__pretok_match_data(const realm__pretok *p)
{
    (void)p;
    /* Only ovector[0..1] (the whole match) is read; groups are not used. */
    return pcre2_match_data_create(1, NULL);
}

void realm__pretok_match_data_free(void *md)
{
    pcre2_match_data_free(md);
}

realm_status realm__pretok_split(const realm__pretok *p, void *match_data, const char *text,
                                 size_t len, realm__piece_fn fn, void *ctx, realm_error *err)
{
    pcre2_match_data *md = match_data;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t gap = 0; /* start of text not yet handed on */
    size_t pos = 0; /* where the next match is searched from */
    realm_status st;
    while (pos < len) {
        int rc =
            p->jit
                ? pcre2_jit_match(p->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL)
                : pcre2_match(p->code, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return realm_error_set(err, REALM_E_INTERNAL, "tokenizer: regex match at %zu: %s", pos,
                                   (const char *)msg);
        }
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {
            /* None of our patterns can match empty; if one did, search on from
             * the next character and leave this one to the gap. */
            pos = ms + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (ms > gap && (st = fn(ctx, text + gap, ms - gap))) return st;
        if ((st = fn(ctx, text + ms, me - ms))) return st;
        gap = pos = me;
    }
    if (gap < len) return fn(ctx, text + gap, len - gap);
    return REALM_OK;
}
