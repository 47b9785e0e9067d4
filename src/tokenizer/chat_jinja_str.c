/*
 * tokenizer/chat_jinja_str.c — Python str operations the templates use through
 * both filters (|trim, |upper, |replace) and methods (.strip(), .split(), ...):
 * stripping, case mapping, replace, split, find and count, by code point.
 *
 * Case mapping covers ASCII only: non-ASCII letters pass through unchanged
 * (Python would map 'é' to 'É'). Templates apply case changes to roles and
 * fixed words, not to message text, so this has not mattered in practice.
 */
#include <string.h>

#include "tokenizer/chat_jinja_impl.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        realm_status st_ = (x);                                                                    \
        if (st_) return st_;                                                                       \
    } while (0)

static size_t cp_len(const char *s, size_t n)
{
    size_t l = 1;
    while (l < n && ((unsigned char)s[l] & 0xC0) == 0x80)
        l++;
    return l;
}

/* Is the code point at s[0..l) one of chars' code points? */
static bool in_set(const char *s, size_t l, jv chars)
{
    for (size_t i = 0; i < chars.u.s.n;) {
        size_t k = cp_len(chars.u.s.p + i, chars.u.s.n - i);
        if (k == l && !memcmp(chars.u.s.p + i, s, l)) return true;
        i += k;
    }
    return false;
}

static size_t last_cp_len(const char *s, size_t n)
{
    size_t start = n - 1;
    while (start > 0 && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    return n - start;
}

realm_status realm__js_strip(jctx *c, uint32_t line, jv s, jv chars, int sides, jv *out)
{
    if (s.kind != JV_STR) return realm__jerr(c, REALM_E_INTERNAL, line, "strip of a non-string");
    bool ws = chars.kind == JV_NONE || chars.kind == JV_UNDEF;
    if (!ws && chars.kind != JV_STR)
        return realm__jerr(c, REALM_E_INVALID, line, "strip arg must be None or str");
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, l;
    if (sides & JS_LEFT)
        while (n) {
            l = ws ? realm__py_space_len(p, n)
                   : (in_set(p, cp_len(p, n), chars) ? cp_len(p, n) : 0);
            if (!l) break;
            p += l;
            n -= l;
        }
    if (sides & JS_RIGHT)
        while (n) {
            l = ws ? realm__py_space_len_back(p, n)
                   : (in_set(p + n - last_cp_len(p, n), last_cp_len(p, n), chars)
                          ? last_cp_len(p, n)
                          : 0);
            if (!l) break;
            n -= l;
        }
    *out = jv_str(p, n);
    return REALM_OK;
}

static bool is_lower(char ch)
{
    return ch >= 'a' && ch <= 'z';
}
static bool is_upper(char ch)
{
    return ch >= 'A' && ch <= 'Z';
}
static char to_upper(char ch)
{
    return is_lower(ch) ? (char)(ch - 32) : ch;
}
static char to_lower(char ch)
{
    return is_upper(ch) ? (char)(ch + 32) : ch;
}

/* Jinja's |title starts a word after whitespace, '-', '(', '{', '[' or '<'. */
static bool jinja_word_break(char ch)
{
    return ch == '-' || ch == '(' || ch == '{' || ch == '[' || ch == '<' || ch == ' ' ||
           (ch >= '\t' && ch <= '\r');
}

realm_status realm__js_case(jctx *c, jv s, js_case mode, jv *out)
{
    char *p = realm__ja_alloc(&c->arena, s.u.s.n + 1);
    if (!p) return realm__jerr_alloc(c);
    bool prev_cased = false, at_start = true;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        switch (mode) {
        case JS_UPPER:
            ch = to_upper(ch);
            break;
        case JS_LOWER:
            ch = to_lower(ch);
            break;
        case JS_CAPITALIZE:
            ch = i == 0 ? to_upper(ch) : to_lower(ch);
            break;
        case JS_PY_TITLE: /* str.title(): a cased letter after an uncased character starts a word */
            ch = prev_cased ? to_lower(ch) : to_upper(ch);
            prev_cased = is_lower(ch) || is_upper(ch);
            break;
        case JS_JINJA_TITLE:
            if (jinja_word_break(ch))
                at_start = true;
            else {
                ch = at_start ? to_upper(ch) : to_lower(ch);
                at_start = false;
            }
            break;
        }
        p[i] = ch;
    }
    *out = jv_str(p, s.u.s.n);
    return REALM_OK;
}

realm_status realm__js_replace(jctx *c, uint32_t line, jv s, jv old, jv rep, int64_t count, jv *out)
{
    if (old.kind != JV_STR || rep.kind != JV_STR)
        return realm__jerr(c, REALM_E_INVALID, line, "replace() arguments must be str");
    jbuf b = {.max = c->lim->max_output_bytes};
    bool ok = true;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (old.u.s.n == 0) { /* Python inserts rep before every character and at the end */
        for (size_t i = 0; ok;) {
            if (count != 0) {
                ok = realm__jb_put(&b, rep.u.s.p, rep.u.s.n);
                if (count > 0) count--;
            }
            if (i >= n) break;
            size_t l = cp_len(p + i, n - i);
            ok = ok && realm__jb_put(&b, p + i, l);
            i += l;
        }
    } else {
        while (ok && count != 0) {
            ptrdiff_t at = realm__find(p, n, old.u.s.p, old.u.s.n);
            if (at < 0) break;
            ok = realm__jb_put(&b, p, (size_t)at) && realm__jb_put(&b, rep.u.s.p, rep.u.s.n);
            p += (size_t)at + old.u.s.n;
            n -= (size_t)at + old.u.s.n;
            if (count > 0) count--;
        }
        ok = ok && realm__jb_put(&b, p, n);
    }
    realm_status st;
    if (!ok) {
        st = b.n > b.max - rep.u.s.n - 4
                 ? realm__jerr(c, REALM_E_RANGE, line, "replace() result too large")
                 : realm__jerr_alloc(c);
    } else {
        st = realm__jv_from_buf(c, &b, out);
    }
    realm__jb_free(&b);
    return st;
}

/* Append s[0..n) as a string item to a growing list in the arena. */
static realm_status push_str(jctx *c, jv **items, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        jv *p = realm__ja_alloc(&c->arena, nc * sizeof *p);
        if (!p) return realm__jerr_alloc(c);
        if (*n) memcpy(p, *items, *n * sizeof *p);
        *items = p;
        *cap = nc;
    }
    (*items)[(*n)++] = jv_str(s, len);
    return REALM_OK;
}

realm_status realm__js_split(jctx *c, uint32_t line, jv s, jv sep, int64_t maxsplit, jv *out)
{
    jv *items = NULL;
    size_t n = 0, cap = 0;
    const char *p = s.u.s.p;
    size_t len = s.u.s.n;
    if (sep.kind == JV_NONE || sep.kind == JV_UNDEF) {
        /* runs of whitespace separate; leading/trailing whitespace gives nothing */
        size_t i = 0, l;
        for (;;) {
            while (i < len && (l = realm__py_space_len(p + i, len - i)))
                i += l;
            if (i >= len) break;
            size_t start = i;
            if (maxsplit >= 0 && (int64_t)n >= maxsplit) { /* the rest, trailing space kept */
                TRY(push_str(c, &items, &n, &cap, p + start, len - start));
                break;
            }
            while (i < len && !realm__py_space_len(p + i, len - i))
                i += cp_len(p + i, len - i);
            TRY(push_str(c, &items, &n, &cap, p + start, i - start));
        }
    } else {
        if (sep.kind != JV_STR)
            return realm__jerr(c, REALM_E_INVALID, line, "must be str or None, not %s",
                               realm__jv_type_name(sep));
        if (sep.u.s.n == 0) return realm__jerr(c, REALM_E_INVALID, line, "empty separator");
        for (;;) {
            TRY(realm__jstep(c, line));
            ptrdiff_t at = maxsplit >= 0 && (int64_t)n >= maxsplit
                               ? -1
                               : realm__find(p, len, sep.u.s.p, sep.u.s.n);
            if (at < 0) {
                TRY(push_str(c, &items, &n, &cap, p, len));
                break;
            }
            TRY(push_str(c, &items, &n, &cap, p, (size_t)at));
            p += (size_t)at + sep.u.s.n;
            len -= (size_t)at + sep.u.s.n;
        }
    }
    TRY(realm__jv_list_new(c, n, false, out));
    if (n) memcpy(out->u.list->items, items, n * sizeof *items);
    return REALM_OK;
}

int64_t realm__js_find(jv s, jv sub)
{
    ptrdiff_t at = realm__find(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n);
    return at < 0 ? -1 : (int64_t)realm__utf8_count(s.u.s.p, (size_t)at);
}

int64_t realm__js_count(jv s, jv sub)
{
    if (sub.u.s.n == 0) return (int64_t)realm__utf8_count(s.u.s.p, s.u.s.n) + 1;
    int64_t k = 0;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    for (ptrdiff_t at; (at = realm__find(p, n, sub.u.s.p, sub.u.s.n)) >= 0; k++) {
        p += (size_t)at + sub.u.s.n;
        n -= (size_t)at + sub.u.s.n;
    }
    return k;
}
