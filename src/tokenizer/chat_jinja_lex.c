/*
 * tokenizer/chat_jinja_lex.c — the Jinja2 lexer, with the whitespace rules
 * Hugging Face turns on (trim_blocks, lstrip_blocks).
 *
 * Format: template data, interrupted by tags
 *   {{ expression }}   {% statement %}   {# comment #}   {% raw %}...{% endraw %}
 * A '-' just inside a delimiter ({{- -}} {%- -%} {#- -#}) strips all
 * whitespace on that side; '+' ({%+ +%}) keeps it. Otherwise trim_blocks
 * removes one newline after a block or comment tag, and lstrip_blocks removes
 * spaces and tabs from the start of a line up to a block or comment tag (not a
 * variable tag). Before lexing, CRLF and CR become LF and one trailing newline
 * is dropped (keep_trailing_newline is off). Inside tags: names, numbers
 * (decimal, 0x/0o/0b, floats with '_' separators), strings in '...' or "..."
 * with Python escapes, and operators; a tag ends only where (), [] and {} are
 * balanced. "Whitespace" is Python's (str.isspace), as Jinja's regexes use it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/chat_jinja_impl.h"
#include "tokenizer/utf8.h"

typedef struct lexer {
    const char *s;
    size_t n, pos;
    size_t line_pos; /* position up to which lines were counted */
    uint32_t line;
    bool line_starting; /* did the previous match end a line (lstrip_blocks) */
    jtok *toks;
    size_t n_toks, cap;
    jarena *a;
    realm_error *err;
    int max_depth;
} lexer;

static uint32_t line_at(lexer *lx, size_t pos)
{
    for (; lx->line_pos < pos && lx->line_pos < lx->n; lx->line_pos++)
        if (lx->s[lx->line_pos] == '\n') lx->line++;
    return lx->line;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static realm_status
lex_fail(lexer *lx, size_t pos, realm_status st, const char *fmt, ...)
{
    char msg[REALM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return realm_error_set(lx->err, st, "template line %u: %s", (unsigned)line_at(lx, pos), msg);
}

static realm_status emit(lexer *lx, jtok t, size_t pos)
{
    if (lx->n_toks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jtok *p = realm_realloc_array(lx->toks, cap, sizeof *p);
        if (!p) return realm_error_set(lx->err, REALM_E_NOMEM, "out of memory lexing the template");
        lx->toks = p;
        lx->cap = cap;
    }
    t.line = line_at(lx, pos);
    lx->toks[lx->n_toks++] = t;
    return REALM_OK;
}

static bool at(const lexer *lx, size_t pos, const char *lit)
{
    size_t l = strlen(lit);
    return pos <= lx->n && lx->n - pos >= l && !memcmp(lx->s + pos, lit, l);
}

static size_t skip_ws(const lexer *lx, size_t pos)
{
    size_t l;
    while (pos < lx->n && (l = realm__py_space_len(lx->s + pos, lx->n - pos)))
        pos += l;
    return pos;
}

/* Data before a tag, after the strip its sign (or lstrip_blocks) asks for. */
static size_t stripped_len(const lexer *lx, const char *text, size_t len, char sign, bool is_var)
{
    if (sign == '-') {
        size_t l;
        while (len && (l = realm__py_space_len_back(text, len)))
            len -= l;
        return len;
    }
    if (sign == '+' || is_var) return len;
    size_t l_pos = len;
    while (l_pos > 0 && text[l_pos - 1] != '\n')
        l_pos--;
    if ((l_pos == 0 && !lx->line_starting) || l_pos == len) return len;
    for (size_t i = l_pos, l; i < len; i += l)
        if (!(l = realm__py_space_len(text + i, len - i))) return len;
    return l_pos;
}

static realm_status emit_data(lexer *lx, size_t start, size_t len, char sign, bool is_var)
{
    len = stripped_len(lx, lx->s + start, len, sign, is_var);
    if (len == 0) return REALM_OK;
    return emit(lx, (jtok){.kind = JT_DATA, .p = lx->s + start, .n = len}, start);
}

/* The end of a block tag at pos ("+%}", "-%}" + whitespace, "%}" + one
 * newline), or 0 when there is none there. */
static size_t block_end(const lexer *lx, size_t pos)
{
    if (at(lx, pos, "+%}")) return pos + 3;
    if (at(lx, pos, "-%}")) return skip_ws(lx, pos + 3);
    if (at(lx, pos, "%}")) return pos + 2 + (pos + 2 < lx->n && lx->s[pos + 2] == '\n');
    return 0;
}

/* {% raw %} at pos: its end in *end. */
static bool raw_begin(const lexer *lx, size_t pos, size_t *end)
{
    size_t p = pos + 2;
    if (p < lx->n && (lx->s[p] == '-' || lx->s[p] == '+')) p++;
    p = skip_ws(lx, p);
    if (!at(lx, p, "raw")) return false;
    p = skip_ws(lx, p + 3);
    if (at(lx, p, "-%}"))
        *end = skip_ws(lx, p + 3);
    else if (at(lx, p, "%}"))
        *end = p + 2;
    else
        return false;
    return true;
}

static realm_status lex_raw(lexer *lx, size_t start)
{
    for (size_t q = start; q + 1 < lx->n; q++) {
        if (lx->s[q] != '{' || lx->s[q + 1] != '%') continue;
        size_t p = q + 2;
        char sign = 0;
        if (p < lx->n && (lx->s[p] == '-' || lx->s[p] == '+')) sign = lx->s[p++];
        p = skip_ws(lx, p);
        if (!at(lx, p, "endraw")) continue;
        size_t e = block_end(lx, skip_ws(lx, p + 6));
        if (!e) continue;
        realm_status st = emit_data(lx, start, q - start, sign, false);
        if (st) return st;
        lx->pos = e;
        lx->line_starting = lx->s[e - 1] == '\n';
        return REALM_OK;
    }
    return lex_fail(lx, start, REALM_E_FORMAT, "missing end of raw directive");
}

static realm_status lex_comment(lexer *lx, size_t start, size_t open)
{
    for (size_t q = start; q < lx->n; q++) {
        size_t e = 0;
        if (at(lx, q, "+#}"))
            e = q + 3;
        else if (at(lx, q, "-#}"))
            e = skip_ws(lx, q + 3);
        else if (at(lx, q, "#}"))
            e = q + 2 + (q + 2 < lx->n && lx->s[q + 2] == '\n');
        if (!e) continue;
        lx->pos = e;
        lx->line_starting = lx->s[e - 1] == '\n';
        return REALM_OK;
    }
    return lex_fail(lx, open, REALM_E_FORMAT, "missing end of comment tag");
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

/* End of `(\d+_)*\d+` at p (p itself when there is no digit). */
static size_t scan_digits(const lexer *lx, size_t p)
{
    if (p >= lx->n || !is_digit(lx->s[p])) return p;
    for (;;) {
        while (p < lx->n && is_digit(lx->s[p]))
            p++;
        if (p + 1 < lx->n && lx->s[p] == '_' && is_digit(lx->s[p + 1])) {
            p++;
            continue;
        }
        return p;
    }
}

/* A float literal at p: its end, or 0. */
static size_t scan_float(const lexer *lx, size_t p)
{
    if (p > 0 && lx->s[p - 1] == '.') return 0;
    size_t q = scan_digits(lx, p);
    if (q == p) return 0;
    size_t frac = 0;
    if (q + 1 < lx->n && lx->s[q] == '.' && is_digit(lx->s[q + 1])) frac = scan_digits(lx, q + 1);
    size_t e = frac ? frac : q;
    if (e < lx->n && (lx->s[e] == 'e' || lx->s[e] == 'E')) {
        size_t k = e + 1;
        if (k < lx->n && (lx->s[k] == '+' || lx->s[k] == '-')) k++;
        size_t d = scan_digits(lx, k);
        if (d > k) return d;
    }
    return frac;
}

static int digit_value(char c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 99;
}

/* An integer literal at p: its end and value, or 0 (and an error on overflow). */
static realm_status scan_int(lexer *lx, size_t p, size_t *end, int64_t *val)
{
    const char *s = lx->s;
    int base = 10;
    size_t q = p;
    *end = 0;
    if (p + 1 < lx->n && s[p] == '0' && strchr("bBoOxX", s[p + 1])) {
        base = (s[p + 1] | 0x20) == 'b' ? 2 : (s[p + 1] | 0x20) == 'o' ? 8 : 16;
        q = p + 2;
        for (;;) {
            size_t k = q + (q < lx->n && s[q] == '_');
            if (k < lx->n && digit_value(s[k]) < base)
                q = k + 1;
            else
                break;
        }
        if (q == p + 2) base = 10, q = p; /* just "0" then a name */
    }
    if (base == 10) {
        if (p >= lx->n || !is_digit(s[p])) return REALM_OK;
        char want = s[p] == '0' ? '0' : 0; /* `0(_?0)*` or `[1-9](_?\d)*` */
        q = p + 1;
        for (;;) {
            size_t k = q + (q < lx->n && s[q] == '_');
            if (k < lx->n && (want ? s[k] == want : is_digit(s[k])))
                q = k + 1;
            else
                break;
        }
    }
    uint64_t v = 0;
    for (size_t i = (base == 10 ? p : p + 2); i < q; i++) {
        if (s[i] == '_') continue;
        if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - (uint64_t)digit_value(s[i])) / (uint64_t)base)
            return lex_fail(lx, p, REALM_E_UNSUPPORTED, "integer literal does not fit in 64 bits");
        v = v * (uint64_t)base + (uint64_t)digit_value(s[i]);
    }
    *end = q;
    *val = (int64_t)v;
    return REALM_OK;
}

/* Python's unicode-escape decoding of a string literal's body (after Jinja's
 * backslashreplace, so a backslash before a non-ASCII character stays a
 * backslash followed by that character's \x/\u/\U spelling). */
static realm_status unescape(lexer *lx, size_t start, size_t end, jtok *t)
{
    char *out = realm__ja_alloc(lx->a, end - start + 1);
    if (!out) return realm_error_set(lx->err, REALM_E_NOMEM, "out of memory lexing the template");
    size_t o = 0;
    const char *s = lx->s;
    for (size_t i = start; i < end;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        char e = s[i + 1]; /* the lexer guarantees a character after a backslash */
        uint32_t cp = 0;
        int hex = 0;
        i += 2;
        switch (e) {
        case '\n':
            continue;
        case '\\':
            out[o++] = '\\';
            continue;
        case '\'':
            out[o++] = '\'';
            continue;
        case '"':
            out[o++] = '"';
            continue;
        case 'a':
            out[o++] = '\a';
            continue;
        case 'b':
            out[o++] = '\b';
            continue;
        case 'f':
            out[o++] = '\f';
            continue;
        case 'n':
            out[o++] = '\n';
            continue;
        case 'r':
            out[o++] = '\r';
            continue;
        case 't':
            out[o++] = '\t';
            continue;
        case 'v':
            out[o++] = '\v';
            continue;
        case 'x':
            hex = 2;
            break;
        case 'u':
            hex = 4;
            break;
        case 'U':
            hex = 8;
            break;
        case 'N':
            return lex_fail(lx, start, REALM_E_UNSUPPORTED, "\\N{...} escapes are not supported");
        default:
            if (e >= '0' && e <= '7') {
                cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i < end && s[i] >= '0' && s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                o += realm_utf8_encode(cp, out + o);
                continue;
            }
            if ((unsigned char)e >= 0x80) {
                size_t l = realm_utf8_seq_len((const unsigned char *)s + i - 1, end - i + 1);
                if (!l) l = 1;
                uint32_t v = l > 1 ? realm_utf8_decode((const unsigned char *)s + i - 1, l)
                                   : (unsigned char)e;
                char tmp[12];
                int k = snprintf(tmp, sizeof tmp,
                                 v <= 0xFF     ? "\\x%02x"
                                 : v <= 0xFFFF ? "\\u%04x"
                                               : "\\U%08x",
                                 (unsigned)v);
                /* the spelling is at most 10 bytes for a 2..4-byte character */
                char *grown = realm__ja_alloc(lx->a, (size_t)(o + (size_t)k + (end - i) + 8));
                if (!grown)
                    return realm_error_set(lx->err, REALM_E_NOMEM,
                                           "out of memory lexing the template");
                memcpy(grown, out, o);
                out = grown;
                memcpy(out + o, tmp, (size_t)k);
                o += (size_t)k;
                i += l - 1;
                continue;
            }
            out[o++] = '\\';
            out[o++] = e;
            continue;
        }
        for (int k = 0; k < hex; k++, i++) {
            if (i >= end || digit_value(s[i]) > 15)
                return lex_fail(lx, start, REALM_E_FORMAT, "truncated \\%c escape in a string", e);
            cp = cp * 16 + (uint32_t)digit_value(s[i]);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return lex_fail(lx, start, REALM_E_UNSUPPORTED, "escape \\%c for U+%X is not text", e,
                            (unsigned)cp);
        o += realm_utf8_encode(cp, out + o);
    }
    out[o] = '\0';
    t->p = out;
    t->n = o;
    return REALM_OK;
}

static const struct {
    const char *text;
    jop op;
} OPERATORS[] = {
    {"//", JO_FLOORDIV}, {"**", JO_POW},   {"==", JO_EQ},      {"!=", JO_NE},      {">=", JO_GE},
    {"<=", JO_LE},       {"+", JO_ADD},    {"-", JO_SUB},      {"/", JO_DIV},      {"*", JO_MUL},
    {"%", JO_MOD},       {"~", JO_TILDE},  {"[", JO_LBRACKET}, {"]", JO_RBRACKET}, {"(", JO_LPAREN},
    {")", JO_RPAREN},    {"{", JO_LBRACE}, {"}", JO_RBRACE},   {">", JO_GT},       {"<", JO_LT},
    {"=", JO_ASSIGN},    {".", JO_DOT},    {":", JO_COLON},    {"|", JO_PIPE},     {",", JO_COMMA},
    {";", JO_SEMI},
};

static realm_status lex_tag(lexer *lx, size_t open, bool is_block)
{
    char balance[REALM_CHAT_MAX_DEPTH];
    int n_bal = 0;
    realm_status st;
    for (;;) {
        size_t p = lx->pos;
        if (p >= lx->n)
            return lex_fail(lx, open, REALM_E_FORMAT,
                            "unexpected end of template: the %s tag is not closed",
                            is_block ? "{%" : "{{");
        if (n_bal == 0) {
            size_t e = is_block           ? block_end(lx, p)
                       : at(lx, p, "-}}") ? skip_ws(lx, p + 3)
                       : at(lx, p, "}}")  ? p + 2
                                          : 0;
            if (e) {
                if ((st = emit(lx, (jtok){.kind = is_block ? JT_BLOCK_END : JT_VAR_END}, p)))
                    return st;
                lx->pos = e;
                lx->line_starting = lx->s[e - 1] == '\n';
                return REALM_OK;
            }
        }
        size_t l = realm__py_space_len(lx->s + p, lx->n - p);
        if (l) {
            lx->pos = p + l;
            continue;
        }
        char c = lx->s[p];
        jtok t = {0};
        size_t e;
        if ((e = scan_float(lx, p))) {
            char num[64];
            size_t k = 0;
            for (size_t i = p; i < e && k + 1 < sizeof num; i++)
                if (lx->s[i] != '_') num[k++] = lx->s[i];
            num[k] = '\0';
            t.kind = JT_FLOAT;
            t.f = strtod(num, NULL);
        } else if (is_digit(c)) {
            if ((st = scan_int(lx, p, &e, &t.i))) return st;
            t.kind = JT_INT;
        } else if (is_name_start(c)) {
            for (e = p + 1; e < lx->n && is_name_char(lx->s[e]); e++) {
            }
            t.kind = JT_NAME;
            t.p = lx->s + p;
            t.n = e - p;
        } else if (c == '\'' || c == '"') {
            for (e = p + 1; e < lx->n && lx->s[e] != c; e++)
                if (lx->s[e] == '\\') e++;
            if (e >= lx->n) return lex_fail(lx, p, REALM_E_FORMAT, "unterminated string literal");
            t.kind = JT_STRING;
            if ((st = unescape(lx, p + 1, e, &t))) return st;
            e++;
        } else {
            size_t k;
            for (k = 0; k < sizeof OPERATORS / sizeof OPERATORS[0]; k++)
                if (at(lx, p, OPERATORS[k].text)) break;
            if (k == sizeof OPERATORS / sizeof OPERATORS[0])
                return lex_fail(lx, p, REALM_E_FORMAT, "unexpected character '%c' in a tag",
                                c >= 0x20 && c < 0x7F ? c : '?');
            t.kind = JT_OP;
            t.op = OPERATORS[k].op;
            e = p + strlen(OPERATORS[k].text);
            if (t.op == JO_LPAREN || t.op == JO_LBRACKET || t.op == JO_LBRACE) {
                if (n_bal >= lx->max_depth || n_bal >= REALM_CHAT_MAX_DEPTH)
                    return lex_fail(lx, p, REALM_E_RANGE, "brackets nested too deeply");
                balance[n_bal++] = t.op == JO_LPAREN ? ')' : t.op == JO_LBRACKET ? ']' : '}';
            } else if (t.op == JO_RPAREN || t.op == JO_RBRACKET || t.op == JO_RBRACE) {
                if (n_bal == 0) return lex_fail(lx, p, REALM_E_FORMAT, "unexpected '%c'", c);
                if (balance[--n_bal] != c)
                    return lex_fail(lx, p, REALM_E_FORMAT, "unexpected '%c', expected '%c'", c,
                                    balance[n_bal]);
            }
        }
        if ((st = emit(lx, t, p))) return st;
        lx->pos = e;
    }
}

/* CRLF/CR → LF and one trailing newline dropped, into the arena. */
static char *normalise(jarena *a, const char *src, size_t len, size_t *out_len)
{
    char *s = realm__ja_alloc(a, len + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[o++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[o++] = src[i];
        }
    }
    if (o && s[o - 1] == '\n') o--;
    s[o] = '\0';
    *out_len = o;
    return s;
}

static realm_status lex_all(lexer *lx)
{
    realm_status st;
    while (lx->pos < lx->n) {
        size_t pos = lx->pos, t = pos;
        for (;;) {
            const char *b = memchr(lx->s + t, '{', lx->n - t);
            if (!b) {
                t = lx->n;
                break;
            }
            t = (size_t)(b - lx->s);
            if (t + 1 < lx->n && lx->s[t + 1] && strchr("{%#", lx->s[t + 1])) break;
            t++;
        }
        if (t >= lx->n) {
            /* trailing data: no tag follows, so nothing strips it */
            if ((st = emit(lx, (jtok){.kind = JT_DATA, .p = lx->s + pos, .n = lx->n - pos}, pos)))
                return st;
            lx->pos = lx->n;
            break;
        }
        char kind = lx->s[t + 1];
        char sign =
            t + 2 < lx->n && (lx->s[t + 2] == '-' || lx->s[t + 2] == '+') ? lx->s[t + 2] : 0;
        size_t raw_end = 0;
        bool raw = kind == '%' && raw_begin(lx, t, &raw_end);
        if ((st = emit_data(lx, pos, t - pos, sign, kind == '{'))) return st;
        lx->line_starting = false;
        size_t inner = t + 2 + (sign != 0);
        if (raw) {
            lx->line_starting = lx->s[raw_end - 1] == '\n';
            st = lex_raw(lx, raw_end);
        } else if (kind == '#') {
            st = lex_comment(lx, inner, t);
        } else {
            if ((st = emit(lx, (jtok){.kind = kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN}, t)))
                return st;
            lx->pos = inner;
            st = lex_tag(lx, t, kind == '%');
        }
        if (st) return st;
    }
    return emit(lx, (jtok){.kind = JT_EOF}, lx->n);
}

realm_status realm__jinja_lex(jarena *a, const char *src, size_t len, int max_depth, jtok **toks,
                              size_t *n_toks, realm_error *err)
{
    lexer lx = {.line = 1, .line_starting = true, .a = a, .err = err, .max_depth = max_depth};
    lx.s = normalise(a, src, len, &lx.n);
    if (!lx.s) return realm_error_set(err, REALM_E_NOMEM, "out of memory lexing the template");
    realm_status st = lex_all(&lx);
    if (st) {
        realm_free(lx.toks);
        return st;
    }
    *toks = lx.toks;
    *n_toks = lx.n_toks;
    return REALM_OK;
}
