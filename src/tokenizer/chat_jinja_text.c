/*
 * tokenizer/chat_jinja_text.c — values as text, the way Python writes them:
 * str() (what {{ }} prints), repr() (lists and dicts print their items with
 * it) and json.dumps (the tojson filter). Byte-identical output to CPython is
 * the point, so floats use the shortest round-tripping digits and strings are
 * escaped by Python's own rules.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/chat_jinja_impl.h"
#include "tokenizer/utf8.h"

/* ---- str(), repr() ---- */

/* float.__repr__: the shortest digits that read back to the same double, in
 * fixed notation for exponents -4..15 and scientific notation otherwise. */
static void float_repr(double f, char out[40])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* buf is [-]d[.ddd]e[+-]XX: split into sign, digits and exponent. */
    const char *p = buf;
    char *o = out;
    if (*p == '-') *o++ = *p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -exp - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = digits[i];
        } else {
            for (int i = 0; i <= exp; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++)
                    *o++ = digits[i];
            else
                *o++ = '0';
        }
        *o = '\0';
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = digits[i];
        }
        int e = exp < 0 ? -exp : exp; /* |exp| <= 324 */
        *o++ = 'e';
        *o++ = exp < 0 ? '-' : '+';
        if (e >= 100) *o++ = (char)('0' + e / 100);
        *o++ = (char)('0' + e / 10 % 10);
        *o++ = (char)('0' + e % 10);
        *o = '\0';
    }
}

/* Python's str.isprintable() for the characters likely in chat text: controls,
 * separators other than space, and format characters are not printable. */
static bool py_printable(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202F) ||
        (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF)
        return false;
    if ((cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000) return false;
    return true;
}

static realm_status str_repr_to(jctx *c, const char *s, size_t n, jbuf *b)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    JPUT(b, &q, 1);
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = realm__utf8_cp_at(s + i, n - i, &l);
        char esc[12];
        if (cp == (uint32_t)q || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            JPUT(b, esc, 2);
        } else if (cp == '\n') {
            JPUTS(b, "\\n");
        } else if (cp == '\r') {
            JPUTS(b, "\\r");
        } else if (cp == '\t') {
            JPUTS(b, "\\t");
        } else if (!py_printable(cp)) {
            if (cp <= 0xFF)
                snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
            else if (cp <= 0xFFFF)
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else
                snprintf(esc, sizeof esc, "\\U%08x", (unsigned)cp);
            JPUTS(b, esc);
        } else {
            JPUT(b, s + i, l);
        }
        i += l;
    }
    JPUT(b, &q, 1);
    return REALM_OK;
}

static realm_status repr_to(jctx *c, uint32_t line, jv v, jbuf *b, int depth);

static realm_status str_to(jctx *c, uint32_t line, jv v, jbuf *b, int depth)
{
    char tmp[40];
    switch (v.kind) {
    case JV_UNDEF:
        return REALM_OK;
    case JV_NONE:
        JPUTS(b, "None");
        return REALM_OK;
    case JV_BOOL:
        JPUTS(b, v.u.b ? "True" : "False");
        return REALM_OK;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        JPUTS(b, tmp);
        return REALM_OK;
    case JV_FLOAT:
        float_repr(v.u.f, tmp);
        JPUTS(b, tmp);
        return REALM_OK;
    case JV_STR:
        JPUT(b, v.u.s.p, v.u.s.n);
        return REALM_OK;
    case JV_LIST:
    case JV_DICT:
        return repr_to(c, line, v, b, depth);
    case JV_NS:
        JPUTS(b, "<Namespace ");
        {
            jv d = v;
            d.kind = JV_DICT;
            realm_status st = repr_to(c, line, d, b, depth);
            if (st) return st;
        }
        JPUTS(b, ">");
        return REALM_OK;
    default:
        return realm__jerr(c, REALM_E_UNSUPPORTED, line, "cannot convert a %s to text",
                           realm__jv_type_name(v));
    }
}

static realm_status repr_to(jctx *c, uint32_t line, jv v, jbuf *b, int depth)
{
    if (depth > c->lim->max_depth)
        return realm__jerr(c, REALM_E_RANGE, line, "value nested too deeply to print");
    realm_status st;
    switch (v.kind) {
    case JV_UNDEF:
        JPUTS(b, "Undefined");
        return REALM_OK;
    case JV_STR:
        return str_repr_to(c, v.u.s.p, v.u.s.n, b);
    case JV_LIST: {
        const jlist *l = v.u.list;
        JPUTS(b, l->tuple ? "(" : "[");
        for (size_t i = 0; i < l->n; i++) {
            if (i) JPUTS(b, ", ");
            if ((st = repr_to(c, line, l->items[i], b, depth + 1))) return st;
        }
        if (l->tuple && l->n == 1) JPUTS(b, ",");
        JPUTS(b, l->tuple ? ")" : "]");
        return REALM_OK;
    }
    case JV_DICT: {
        const jdict *d = v.u.dict;
        JPUTS(b, "{");
        for (size_t i = 0; i < d->n; i++) {
            if (i) JPUTS(b, ", ");
            if ((st = repr_to(c, line, d->keys[i], b, depth + 1))) return st;
            JPUTS(b, ": ");
            if ((st = repr_to(c, line, d->vals[i], b, depth + 1))) return st;
        }
        JPUTS(b, "}");
        return REALM_OK;
    }
    default:
        return str_to(c, line, v, b, depth);
    }
}

realm_status realm__jv_str_to(jctx *c, uint32_t line, jv v, jbuf *b)
{
    return str_to(c, line, v, b, 0);
}

realm_status realm__jv_to_str(jctx *c, uint32_t line, jv v, jv *out)
{
    if (v.kind == JV_STR) {
        *out = v;
        return REALM_OK;
    }
    if (v.kind == JV_UNDEF) {
        *out = jv_str("", 0);
        return REALM_OK;
    }
    jbuf b = {.max = c->lim->max_output_bytes};
    realm_status st = str_to(c, line, v, &b, 0);
    if (!st) st = realm__jv_from_buf(c, &b, out);
    realm__jb_free(&b);
    return st;
}

/* ---- json.dumps ---- */

static realm_status json_str_to(jctx *c, const char *s, size_t n, bool ensure_ascii, jbuf *b)
{
    JPUTS(b, "\"");
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = realm__utf8_cp_at(s + i, n - i, &l);
        char esc[16];
        switch (cp) {
        case '"':
            JPUTS(b, "\\\"");
            break;
        case '\\':
            JPUTS(b, "\\\\");
            break;
        case '\n':
            JPUTS(b, "\\n");
            break;
        case '\r':
            JPUTS(b, "\\r");
            break;
        case '\t':
            JPUTS(b, "\\t");
            break;
        case '\b':
            JPUTS(b, "\\b");
            break;
        case '\f':
            JPUTS(b, "\\f");
            break;
        default:
            if (cp < 0x20 || (ensure_ascii && cp > 0x7E)) {
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (unsigned)(v >> 10),
                             0xDC00 + (unsigned)(v & 0x3FF));
                } else {
                    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
                }
                JPUTS(b, esc);
            } else {
                JPUT(b, s + i, l);
            }
        }
        i += l;
    }
    JPUTS(b, "\"");
    return REALM_OK;
}

typedef struct json_opts {
    bool ensure_ascii, sort_keys;
    int indent;
    const char *item_sep, *key_sep;
} json_opts;

static realm_status json_newline(jctx *c, const json_opts *o, int level, jbuf *b)
{
    JPUTS(b, "\n");
    for (long i = 0; i < (long)o->indent * level; i++)
        JPUTS(b, " ");
    return REALM_OK;
}

static realm_status json_to(jctx *c, uint32_t line, jv v, const json_opts *o, int level, jbuf *b)
{
    if (level > c->lim->max_depth)
        return realm__jerr(c, REALM_E_RANGE, line, "value nested too deeply for tojson");
    char tmp[40];
    realm_status st;
    switch (v.kind) {
    case JV_NONE:
        JPUTS(b, "null");
        return REALM_OK;
    case JV_BOOL:
        JPUTS(b, v.u.b ? "true" : "false");
        return REALM_OK;
    case JV_INT:
        return str_to(c, line, v, b, 0);
    case JV_FLOAT:
        if (isnan(v.u.f))
            JPUTS(b, "NaN");
        else if (isinf(v.u.f))
            JPUTS(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else {
            float_repr(v.u.f, tmp);
            JPUTS(b, tmp);
        }
        return REALM_OK;
    case JV_STR:
        return json_str_to(c, v.u.s.p, v.u.s.n, o->ensure_ascii, b);
    case JV_LIST: {
        const jlist *l = v.u.list;
        if (l->n == 0) {
            JPUTS(b, "[]");
            return REALM_OK;
        }
        JPUTS(b, "[");
        for (size_t i = 0; i < l->n; i++) {
            if (i) JPUTS(b, o->item_sep);
            if (o->indent >= 0 && (st = json_newline(c, o, level + 1, b))) return st;
            if ((st = json_to(c, line, l->items[i], o, level + 1, b))) return st;
        }
        if (o->indent >= 0 && (st = json_newline(c, o, level, b))) return st;
        JPUTS(b, "]");
        return REALM_OK;
    }
    case JV_DICT: {
        const jdict *d = v.u.dict;
        if (d->n == 0) {
            JPUTS(b, "{}");
            return REALM_OK;
        }
        /* Keys become strings as json.dumps makes them; sort_keys orders them. */
        size_t *order = realm__ja_alloc(&c->arena, d->n * sizeof *order);
        jv *keys = realm__ja_alloc(&c->arena, d->n * sizeof *keys);
        if (!order || !keys) return realm__jerr_alloc(c);
        for (size_t i = 0; i < d->n; i++) {
            jv k = d->keys[i];
            order[i] = i;
            if (k.kind == JV_STR)
                keys[i] = k;
            else if (k.kind == JV_NONE)
                keys[i] = jv_str("null", 4);
            else if (k.kind == JV_BOOL)
                keys[i] = k.u.b ? jv_str("true", 4) : jv_str("false", 5);
            else if (k.kind == JV_INT || k.kind == JV_FLOAT) {
                if ((st = realm__jv_to_str(c, line, k, &keys[i]))) return st;
            } else
                return realm__jerr(c, REALM_E_INVALID, line,
                                   "keys must be str, int, float, bool or None, not %s",
                                   realm__jv_type_name(k));
        }
        if (o->sort_keys) /* insertion sort: stable, and dicts here are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    int r;
                    if ((st = realm__jv_order(c, line, keys[order[j - 1]], keys[order[j]], &r)))
                        return st;
                    if (r <= 0) break;
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        JPUTS(b, "{");
        for (size_t i = 0; i < d->n; i++) {
            if (i) JPUTS(b, o->item_sep);
            if (o->indent >= 0 && (st = json_newline(c, o, level + 1, b))) return st;
            jv k = keys[order[i]];
            if ((st = json_str_to(c, k.u.s.p, k.u.s.n, o->ensure_ascii, b))) return st;
            JPUTS(b, o->key_sep);
            if ((st = json_to(c, line, d->vals[order[i]], o, level + 1, b))) return st;
        }
        if (o->indent >= 0 && (st = json_newline(c, o, level, b))) return st;
        JPUTS(b, "}");
        return REALM_OK;
    }
    default:
        return realm__jerr(c, REALM_E_INVALID, line, "Object of type %s is not JSON serializable",
                           realm__jv_type_name(v));
    }
}

realm_status realm__jv_json_to(jctx *c, uint32_t line, jv v, bool ensure_ascii, int indent,
                               const char *item_sep, const char *key_sep, bool sort_keys, jbuf *b)
{
    json_opts o = {ensure_ascii, sort_keys, indent, item_sep, key_sep};
    if (!o.item_sep) o.item_sep = indent >= 0 ? "," : ", ";
    if (!o.key_sep) o.key_sep = ": ";
    return json_to(c, line, v, &o, 0, b);
}
