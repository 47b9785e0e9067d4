/*
 * tokenizer/chat_jinja_value.c — memory and values of the Jinja subset, with
 * the Python semantics Jinja inherits: truthiness, ==, ordering, len(),
 * iteration, attribute and item lookup, slicing. Strings are UTF-8 and indexed
 * by code point, as Python indexes str. Values as text are in
 * chat_jinja_text.c, operators in chat_jinja_arith.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/chat_jinja_impl.h"
#include "tokenizer/utf8.h"

/* ---- arena ---- */

struct jchunk {
    jchunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK_BYTES (64u << 10)

void realm__ja_init(jarena *a, size_t cap_bytes)
{
    *a = (jarena){.cap_bytes = cap_bytes};
}

void realm__ja_free(jarena *a)
{
    for (jchunk *c = a->head, *next; c; c = next) {
        next = c->next;
        realm_free(c);
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void *realm__ja_alloc(jarena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    jchunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
        if (want > a->cap_bytes || a->used_bytes > a->cap_bytes - want) {
            a->over_cap = true;
            return NULL;
        }
        c = realm_malloc(sizeof *c + want);
        if (!c) return NULL;
        c->size = want;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->used_bytes += want;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

/* ---- byte buffer ---- */

bool realm__jb_put(jbuf *b, const char *s, size_t len)
{
    if (len > b->max || b->n > b->max - len) return false;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap = cap > (SIZE_MAX / 2) ? SIZE_MAX : cap * 2;
        char *p = realm_realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
    return true;
}

bool realm__jb_putc(jbuf *b, char c)
{
    return realm__jb_put(b, &c, 1);
}

void realm__jb_free(jbuf *b)
{
    realm_free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- errors ---- */

realm_status realm__jerr(jctx *c, realm_status st, uint32_t line, const char *fmt, ...)
{
    char msg[REALM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return realm_error_set(c->err, st, "template line %u: %s", (unsigned)line, msg);
}

realm_status realm__jerr_alloc(jctx *c)
{
    if (c->arena.over_cap)
        return realm_error_set(c->err, REALM_E_RANGE,
                               "template render needs more than %zu bytes of memory",
                               c->arena.cap_bytes);
    return realm_error_set(c->err, REALM_E_NOMEM, "out of memory rendering the template");
}

realm_status realm__jstep(jctx *c, uint32_t line)
{
    if (++c->steps > c->lim->max_steps)
        return realm__jerr(c, REALM_E_RANGE, line, "more than %lu steps executed (loop too long?)",
                           c->lim->max_steps);
    return REALM_OK;
}

realm_status realm__jbuf_fail(jctx *c, const jbuf *b, size_t len)
{
    if (len > b->max || b->n > b->max - len)
        return realm_error_set(c->err, REALM_E_RANGE, "template output exceeds %zu bytes", b->max);
    return realm_error_set(c->err, REALM_E_NOMEM, "out of memory rendering the template");
}

/* ---- UTF-8 and Python whitespace ---- */

size_t realm__utf8_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

size_t realm__utf8_offset(const char *s, size_t n, size_t cp)
{
    size_t i = 0;
    while (i < n && cp > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        cp--;
    }
    return i;
}

uint32_t realm__utf8_cp_at(const char *s, size_t n, size_t *len)
{
    size_t l = realm_utf8_seq_len((const unsigned char *)s, n);
    if (l == 0) {
        *len = 1;
        return (unsigned char)s[0];
    }
    *len = l;
    return realm_utf8_decode((const unsigned char *)s, l);
}

/* str.isspace() / regex \s for str patterns. */
static bool py_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t realm__py_space_len(const char *s, size_t n)
{
    if (n == 0) return 0;
    size_t l;
    uint32_t cp = realm__utf8_cp_at(s, n, &l);
    return py_space(cp) ? l : 0;
}

size_t realm__py_space_len_back(const char *s, size_t n)
{
    if (n == 0) return 0;
    size_t start = n - 1;
    while (start > 0 && n - start < 4 && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    size_t l;
    uint32_t cp = realm__utf8_cp_at(s + start, n - start, &l);
    return (start + l == n && py_space(cp)) ? l : 0;
}

/* ---- basic values ---- */

const char *realm__jv_type_name(jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        return v.u.list->tuple ? "tuple" : "list";
    case JV_DICT:
        return "dict";
    case JV_NS:
        return "Namespace";
    case JV_LOOP:
        return "LoopContext";
    case JV_FUNC:
        return "function";
    case JV_METHOD:
        return "method";
    case JV_MACRO:
        return "Macro";
    default:
        return "?";
    }
}

bool realm__jv_truthy(jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v.u.b;
    case JV_INT:
        return v.u.i != 0;
    case JV_FLOAT:
        return v.u.f != 0.0;
    case JV_STR:
        return v.u.s.n != 0;
    case JV_LIST:
        return v.u.list->n != 0;
    case JV_DICT:
        return v.u.dict->n != 0;
    default:
        return true;
    }
}

bool realm__jv_equal(jv a, jv b)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (jv_is_intlike(a) && jv_is_intlike(b)) return jv_as_int(a) == jv_as_int(b);
        return jv_as_float(a) == jv_as_float(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JV_UNDEF:
    case JV_NONE:
        return true;
    case JV_STR:
        return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.list->tuple != b.u.list->tuple || a.u.list->n != b.u.list->n) return false;
        for (size_t i = 0; i < a.u.list->n; i++)
            if (!realm__jv_equal(a.u.list->items[i], b.u.list->items[i])) return false;
        return true;
    case JV_DICT: {
        if (a.u.dict->n != b.u.dict->n) return false;
        for (size_t i = 0; i < a.u.dict->n; i++) {
            jv other;
            if (!realm__jv_dict_get(b, a.u.dict->keys[i], &other) ||
                !realm__jv_equal(a.u.dict->vals[i], other))
                return false;
        }
        return true;
    }
    case JV_NS:
        return a.u.dict == b.u.dict;
    case JV_LOOP:
        return a.u.loop == b.u.loop;
    case JV_FUNC:
        return a.u.func == b.u.func;
    case JV_METHOD:
        return a.u.method == b.u.method;
    case JV_MACRO:
        return a.u.macro == b.u.macro;
    default:
        return false;
    }
}

realm_status realm__jv_order(jctx *c, uint32_t line, jv a, jv b, int *res)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (jv_is_intlike(a) && jv_is_intlike(b)) {
            int64_t x = jv_as_int(a), y = jv_as_int(b);
            *res = (x > y) - (x < y);
        } else {
            double x = jv_as_float(a), y = jv_as_float(b);
            *res = (x > y) - (x < y); /* NaN compares as equal: every comparison false */
            if (isnan(x) || isnan(y)) *res = 2;
        }
        return REALM_OK;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        /* UTF-8 byte order is code point order. */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        if (r == 0) r = (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        *res = (r > 0) - (r < 0);
        return REALM_OK;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.list->tuple == b.u.list->tuple) {
        size_t n = a.u.list->n < b.u.list->n ? a.u.list->n : b.u.list->n;
        for (size_t i = 0; i < n; i++) {
            if (realm__jv_equal(a.u.list->items[i], b.u.list->items[i])) continue;
            return realm__jv_order(c, line, a.u.list->items[i], b.u.list->items[i], res);
        }
        *res = (a.u.list->n > b.u.list->n) - (a.u.list->n < b.u.list->n);
        return REALM_OK;
    }
    if (a.kind == JV_UNDEF || b.kind == JV_UNDEF)
        return realm__jerr(c, REALM_E_INVALID, line, "'%s' is undefined",
                           (a.kind == JV_UNDEF ? a : b).u.undef_name
                               ? (a.kind == JV_UNDEF ? a : b).u.undef_name
                               : "value");
    return realm__jerr(c, REALM_E_INVALID, line,
                       "comparison not supported between instances of '%s' and '%s'",
                       realm__jv_type_name(a), realm__jv_type_name(b));
}

/* ---- construction ---- */

realm_status realm__jv_str_new(jctx *c, const char *p, size_t n, jv *out)
{
    char *s = realm__ja_alloc(&c->arena, n + 1);
    if (!s) return realm__jerr_alloc(c);
    if (n) memcpy(s, p, n);
    *out = jv_str(s, n);
    return REALM_OK;
}

realm_status realm__jv_from_buf(jctx *c, const jbuf *b, jv *out)
{
    return realm__jv_str_new(c, b->p ? b->p : "", b->n, out);
}

realm_status realm__jv_list_new(jctx *c, size_t n, bool tuple, jv *out)
{
    jlist *l = realm__ja_alloc(&c->arena, sizeof *l);
    if (!l) return realm__jerr_alloc(c);
    if (n > SIZE_MAX / sizeof(jv)) return realm__jerr_alloc(c);
    l->items = realm__ja_alloc(&c->arena, n * sizeof(jv));
    if (!l->items) return realm__jerr_alloc(c);
    l->n = n;
    l->tuple = tuple;
    *out = (jv){.kind = JV_LIST, .u.list = l};
    return REALM_OK;
}

realm_status realm__jv_dict_new(jctx *c, size_t cap, jv_kind kind, jv *out)
{
    jdict *d = realm__ja_alloc(&c->arena, sizeof *d);
    if (!d) return realm__jerr_alloc(c);
    if (cap < 4) cap = 4;
    d->keys = realm__ja_alloc(&c->arena, cap * sizeof(jv));
    d->vals = realm__ja_alloc(&c->arena, cap * sizeof(jv));
    if (!d->keys || !d->vals) return realm__jerr_alloc(c);
    d->cap = cap;
    *out = (jv){.kind = kind, .u.dict = d};
    return REALM_OK;
}

bool realm__jv_dict_get(jv dict, jv key, jv *out)
{
    const jdict *d = dict.u.dict;
    for (size_t i = 0; i < d->n; i++)
        if (realm__jv_equal(d->keys[i], key)) {
            *out = d->vals[i];
            return true;
        }
    return false;
}

realm_status realm__jv_dict_set(jctx *c, jv dict, jv key, jv val)
{
    jdict *d = dict.u.dict;
    for (size_t i = 0; i < d->n; i++)
        if (realm__jv_equal(d->keys[i], key)) {
            d->vals[i] = val;
            return REALM_OK;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        jv *k = realm__ja_alloc(&c->arena, cap * sizeof(jv));
        jv *v = realm__ja_alloc(&c->arena, cap * sizeof(jv));
        if (!k || !v) return realm__jerr_alloc(c);
        memcpy(k, d->keys, d->n * sizeof(jv));
        memcpy(v, d->vals, d->n * sizeof(jv));
        d->keys = k;
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return REALM_OK;
}

/* ---- containers ---- */

realm_status realm__jerr_undefined(jctx *c, uint32_t line, jv v)
{
    if (v.u.undef_name)
        return realm__jerr(c, REALM_E_INVALID, line, "'%s' is undefined", v.u.undef_name);
    return realm__jerr(c, REALM_E_INVALID, line, "value is undefined");
}

realm_status realm__jv_iterate(jctx *c, uint32_t line, jv v, const jv **items, size_t *n)
{
    switch (v.kind) {
    case JV_UNDEF:
        *items = NULL;
        *n = 0;
        return REALM_OK;
    case JV_LIST:
        *items = v.u.list->items;
        *n = v.u.list->n;
        return REALM_OK;
    case JV_DICT:
        *items = v.u.dict->keys;
        *n = v.u.dict->n;
        return REALM_OK;
    case JV_STR: {
        size_t k = realm__utf8_count(v.u.s.p, v.u.s.n);
        jv *out = realm__ja_alloc(&c->arena, (k ? k : 1) * sizeof *out);
        if (!out) return realm__jerr_alloc(c);
        for (size_t i = 0, j = 0; i < v.u.s.n; j++) {
            size_t l;
            realm__utf8_cp_at(v.u.s.p + i, v.u.s.n - i, &l);
            out[j] = jv_str(v.u.s.p + i, l);
            i += l;
        }
        *items = out;
        *n = k;
        return REALM_OK;
    }
    default:
        return realm__jerr(c, REALM_E_INVALID, line, "'%s' object is not iterable",
                           realm__jv_type_name(v));
    }
}

realm_status realm__jv_len(jctx *c, uint32_t line, jv v, int64_t *out)
{
    switch (v.kind) {
    case JV_UNDEF:
        *out = 0;
        return REALM_OK;
    case JV_STR:
        *out = (int64_t)realm__utf8_count(v.u.s.p, v.u.s.n);
        return REALM_OK;
    case JV_LIST:
        *out = (int64_t)v.u.list->n;
        return REALM_OK;
    case JV_DICT:
        *out = (int64_t)v.u.dict->n;
        return REALM_OK;
    case JV_LOOP:
        *out = (int64_t)v.u.loop->n;
        return REALM_OK;
    default:
        return realm__jerr(c, REALM_E_INVALID, line, "object of type '%s' has no len()",
                           realm__jv_type_name(v));
    }
}

static realm_status bind_method(jctx *c, jv self, const char *name, jv *out)
{
    jmethod *m = realm__ja_alloc(&c->arena, sizeof *m);
    if (!m) return realm__jerr_alloc(c);
    m->self = self;
    m->name = name;
    *out = (jv){.kind = JV_METHOD, .u.method = m};
    return REALM_OK;
}

static bool loop_attr(jv v, const char *name, jv *out)
{
    const jloop *l = v.u.loop;
    int64_t n = (int64_t)l->n, i = (int64_t)l->index0;
    if (!strcmp(name, "index0"))
        *out = jv_int(i);
    else if (!strcmp(name, "index"))
        *out = jv_int(i + 1);
    else if (!strcmp(name, "revindex0"))
        *out = jv_int(n - i - 1);
    else if (!strcmp(name, "revindex"))
        *out = jv_int(n - i);
    else if (!strcmp(name, "first"))
        *out = jv_bool(i == 0);
    else if (!strcmp(name, "last"))
        *out = jv_bool(i == n - 1);
    else if (!strcmp(name, "length"))
        *out = jv_int(n);
    else if (!strcmp(name, "depth"))
        *out = jv_int(1);
    else if (!strcmp(name, "depth0"))
        *out = jv_int(0);
    else if (!strcmp(name, "previtem"))
        *out = i > 0 ? l->items[i - 1] : jv_undef("previtem");
    else if (!strcmp(name, "nextitem"))
        *out = i + 1 < n ? l->items[i + 1] : jv_undef("nextitem");
    else
        return false;
    return true;
}

realm_status realm__jv_getattr(jctx *c, uint32_t line, jv obj, const char *name, jv *out)
{
    switch (obj.kind) {
    case JV_UNDEF:
        return realm__jerr_undefined(c, line, obj);
    case JV_DICT:
        if (realm__jinja_has_method(obj, name)) return bind_method(c, obj, name, out);
        /* fall through */
    case JV_NS:
        if (!realm__jv_dict_get(obj, jv_str(name, strlen(name)), out)) *out = jv_undef(name);
        return REALM_OK;
    case JV_LOOP:
        if (loop_attr(obj, name, out)) return REALM_OK;
        break;
    default:
        break;
    }
    if (realm__jinja_has_method(obj, name)) return bind_method(c, obj, name, out);
    *out = jv_undef(name);
    return REALM_OK;
}

/* Python index i into a sequence of n: false when out of range. */
static bool norm_index(int64_t i, size_t n, size_t *out)
{
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return false;
    *out = (size_t)i;
    return true;
}

realm_status realm__jv_getitem(jctx *c, uint32_t line, jv obj, jv key, jv *out)
{
    size_t i;
    switch (obj.kind) {
    case JV_UNDEF:
        return realm__jerr_undefined(c, line, obj);
    case JV_LIST:
        if (jv_is_intlike(key)) {
            *out = norm_index(jv_as_int(key), obj.u.list->n, &i) ? obj.u.list->items[i]
                                                                 : jv_undef("item");
            return REALM_OK;
        }
        break;
    case JV_STR:
        if (jv_is_intlike(key)) {
            size_t n = realm__utf8_count(obj.u.s.p, obj.u.s.n);
            if (!norm_index(jv_as_int(key), n, &i)) {
                *out = jv_undef("item");
                return REALM_OK;
            }
            size_t a = realm__utf8_offset(obj.u.s.p, obj.u.s.n, i);
            size_t b = realm__utf8_offset(obj.u.s.p + a, obj.u.s.n - a, 1);
            *out = jv_str(obj.u.s.p + a, b);
            return REALM_OK;
        }
        break;
    case JV_DICT:
        if (realm__jv_dict_get(obj, key, out)) return REALM_OK;
        break;
    default:
        break;
    }
    /* Jinja falls back to the attribute of that name for string keys. */
    if (key.kind == JV_STR) {
        char *name = realm__ja_alloc(&c->arena, key.u.s.n + 1);
        if (!name) return realm__jerr_alloc(c);
        memcpy(name, key.u.s.p, key.u.s.n);
        if (strlen(name) == key.u.s.n) return realm__jv_getattr(c, line, obj, name, out);
    }
    *out = jv_undef("item");
    return REALM_OK;
}

/* Python slice bounds for a sequence of n: fills start, step and count. */
static realm_status slice_bounds(jctx *c, uint32_t line, jv start, jv stop, jv step, size_t n,
                                 int64_t *o_start, int64_t *o_step, size_t *o_count)
{
    int64_t st = 1, len = (int64_t)n;
    if (step.kind != JV_NONE) {
        if (!jv_is_intlike(step))
            return realm__jerr(c, REALM_E_INVALID, line, "slice indices must be integers");
        st = jv_as_int(step);
        if (st == 0) return realm__jerr(c, REALM_E_INVALID, line, "slice step cannot be zero");
    }
    int64_t lo = st < 0 ? -1 : 0, hi = st < 0 ? len - 1 : len;
    int64_t a = st < 0 ? hi : lo, b = st < 0 ? lo : hi;
    const jv *bounds[2] = {&start, &stop};
    int64_t *outs[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        jv v = *bounds[k];
        if (v.kind == JV_NONE) continue;
        if (!jv_is_intlike(v))
            return realm__jerr(c, REALM_E_INVALID, line, "slice indices must be integers");
        int64_t x = jv_as_int(v);
        if (x < 0) {
            x += len;
            if (x < lo) x = lo;
        } else if (x > hi) {
            x = hi;
        }
        *outs[k] = x;
    }
    int64_t count = 0;
    if (st > 0 && a < b) count = (b - a + st - 1) / st;
    if (st < 0 && a > b) count = (a - b + (-st) - 1) / (-st);
    *o_start = a;
    *o_step = st;
    *o_count = (size_t)count;
    return REALM_OK;
}

realm_status realm__jv_slice(jctx *c, uint32_t line, jv obj, jv start, jv stop, jv step, jv *out)
{
    if (obj.kind == JV_UNDEF) return realm__jerr_undefined(c, line, obj);
    if (obj.kind != JV_LIST && obj.kind != JV_STR) {
        *out = jv_undef("slice");
        return REALM_OK;
    }
    size_t n = obj.kind == JV_LIST ? obj.u.list->n : realm__utf8_count(obj.u.s.p, obj.u.s.n);
    /* Initialised only to quiet gcc -O2, which cannot see that slice_bounds
     * sets all three whenever it returns REALM_OK. */
    int64_t a = 0, st = 1;
    size_t count = 0;
    realm_status s = slice_bounds(c, line, start, stop, step, n, &a, &st, &count);
    if (s) return s;
    if (obj.kind == JV_LIST) {
        if ((s = realm__jv_list_new(c, count, obj.u.list->tuple, out))) return s;
        for (size_t k = 0; k < count; k++)
            out->u.list->items[k] = obj.u.list->items[a + (int64_t)k * st];
        return REALM_OK;
    }
    if (st == 1) {
        size_t x = realm__utf8_offset(obj.u.s.p, obj.u.s.n, (size_t)a);
        size_t y = realm__utf8_offset(obj.u.s.p + x, obj.u.s.n - x, count);
        *out = jv_str(obj.u.s.p + x, y);
        return REALM_OK;
    }
    const jv *chars;
    size_t nc;
    if ((s = realm__jv_iterate(c, line, obj, &chars, &nc))) return s;
    jbuf b = {.max = c->lim->max_output_bytes};
    for (size_t k = 0; k < count; k++) {
        jv ch = chars[a + (int64_t)k * st];
        if (!realm__jb_put(&b, ch.u.s.p, ch.u.s.n)) {
            s = realm__jbuf_fail(c, &b, ch.u.s.n);
            realm__jb_free(&b);
            return s;
        }
    }
    s = realm__jv_from_buf(c, &b, out);
    realm__jb_free(&b);
    return s;
}

ptrdiff_t realm__find(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m == 0) return 0;
    for (size_t i = 0; m <= n && i <= n - m; i++) {
        const char *p = memchr(hay + i, needle[0], n - m + 1 - i);
        if (!p) return -1;
        i = (size_t)(p - hay);
        if (!memcmp(p, needle, m)) return (ptrdiff_t)i;
    }
    return -1;
}
