/*
 * tokenizer/chat_jinja_builtins.c — what a template can call: the globals
 * transformers provides (raise_exception, namespace, strftime_now, dict) and
 * Jinja's range, and the methods of str, dict, list and loop objects that
 * templates use (.strip(), .split(), .items(), .get(), loop.cycle(), ...).
 * Mutating methods (list.append, dict.update, ...) do not exist here, as in
 * Jinja's immutable sandbox.
 */
#include <string.h>
#include <time.h>

#include "tokenizer/chat_jinja_impl.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        realm_status st_ = (x);                                                                    \
        if (st_) return st_;                                                                       \
    } while (0)

const char realm__jarg_missing[] = "(argument not given)";

realm_status realm__jargs_bind(jctx *c, uint32_t line, const char *what, const jargs *a,
                               const char *const *params, size_t n_params, size_t skip_pos,
                               jv *slots)
{
    for (size_t i = 0; i < n_params; i++)
        slots[i] = jv_undef(realm__jarg_missing);
    size_t n_pos = a->n_pos > skip_pos ? a->n_pos - skip_pos : 0;
    if (n_pos > n_params)
        return realm__jerr(c, REALM_E_INVALID, line,
                           "%s() takes at most %zu argument(s), %zu given", what, n_params, n_pos);
    for (size_t i = 0; i < n_pos; i++)
        slots[i] = a->pos[skip_pos + i];
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i;
        for (i = 0; i < n_params && strcmp(params[i], a->kwnames[k]); i++) {
        }
        if (i == n_params)
            return realm__jerr(c, REALM_E_INVALID, line, "%s() got an unexpected argument '%s'",
                               what, a->kwnames[k]);
        if (i < n_pos)
            return realm__jerr(c, REALM_E_INVALID, line, "%s() got multiple values for '%s'", what,
                               a->kwnames[k]);
        slots[i] = a->kw[k];
    }
    return REALM_OK;
}

#define BIND(what, ...)                                                                            \
    static const char *const P_[] = {__VA_ARGS__};                                                 \
    jv p[sizeof P_ / sizeof P_[0]];                                                                \
    TRY(realm__jargs_bind(c, line, what, a, P_, sizeof P_ / sizeof P_[0], 0, p))
#define NOARGS(what) TRY(realm__jargs_bind(c, line, what, a, NULL, 0, 0, NULL))

realm_status realm__jinja_dict_items(jctx *c, jv d, jv *out)
{
    size_t n = d.u.dict->n;
    TRY(realm__jv_list_new(c, n, false, out));
    for (size_t i = 0; i < n; i++) {
        jv pair;
        TRY(realm__jv_list_new(c, 2, true, &pair));
        pair.u.list->items[0] = d.u.dict->keys[i];
        pair.u.list->items[1] = d.u.dict->vals[i];
        out->u.list->items[i] = pair;
    }
    return REALM_OK;
}

/* ---- global functions ---- */

enum { FN_RANGE, FN_NAMESPACE, FN_RAISE, FN_STRFTIME_NOW, FN_DICT, FN_COUNT };
static const char *const FUNCS[FN_COUNT] = {"range", "namespace", "raise_exception", "strftime_now",
                                            "dict"};

int realm__jinja_func_find(const char *name)
{
    for (int i = 0; i < FN_COUNT; i++)
        if (!strcmp(FUNCS[i], name)) return i;
    return -1;
}

/* Jinja's sandbox refuses ranges longer than this. */
#define MAX_RANGE 100000

static realm_status fn_range(jctx *c, uint32_t line, const jargs *a, jv *out)
{
    int64_t v[3] = {0, 0, 1};
    if (a->n_kw || a->n_pos < 1 || a->n_pos > 3)
        return realm__jerr(c, REALM_E_INVALID, line, "range() takes 1 to 3 positional arguments");
    for (size_t i = 0; i < a->n_pos; i++) {
        jv x = a->pos[i];
        if (x.kind != JV_INT && x.kind != JV_BOOL)
            return realm__jerr(c, REALM_E_INVALID, line,
                               "'%s' object cannot be interpreted as an integer",
                               realm__jv_type_name(x));
        v[a->n_pos == 1 ? 1 : i] = x.kind == JV_INT ? x.u.i : x.u.b;
    }
    if (v[2] == 0) return realm__jerr(c, REALM_E_INVALID, line, "range() arg 3 must not be zero");
    /* the length in unsigned arithmetic, so extreme bounds cannot overflow */
    uint64_t n = 0;
    if (v[2] > 0 && v[0] < v[1]) n = ((uint64_t)v[1] - (uint64_t)v[0] - 1) / (uint64_t)v[2] + 1;
    if (v[2] < 0 && v[0] > v[1])
        n = ((uint64_t)v[0] - (uint64_t)v[1] - 1) / (0 - (uint64_t)v[2]) + 1;
    if (n > MAX_RANGE)
        return realm__jerr(c, REALM_E_RANGE, line, "range too big (the sandbox allows %d items)",
                           MAX_RANGE);
    TRY(realm__jv_list_new(c, (size_t)n, false, out));
    for (uint64_t i = 0; i < n; i++)
        out->u.list->items[i] = jv_int(v[0] + (int64_t)i * v[2]);
    return REALM_OK;
}

/* namespace(...) and dict(...): an optional mapping, then keyword entries. */
static realm_status fn_mapping(jctx *c, uint32_t line, const jargs *a, jv_kind kind, jv *out)
{
    if (a->n_pos > 1 || (a->n_pos == 1 && a->pos[0].kind != JV_DICT))
        return realm__jerr(c, REALM_E_UNSUPPORTED, line, "%s() takes a dict and keyword arguments",
                           kind == JV_NS ? "namespace" : "dict");
    TRY(realm__jv_dict_new(c, a->n_kw + (a->n_pos ? a->pos[0].u.dict->n : 0), kind, out));
    if (a->n_pos)
        for (size_t i = 0; i < a->pos[0].u.dict->n; i++)
            TRY(realm__jv_dict_set(c, *out, a->pos[0].u.dict->keys[i], a->pos[0].u.dict->vals[i]));
    for (size_t k = 0; k < a->n_kw; k++)
        TRY(realm__jv_dict_set(c, *out, jv_str(a->kwnames[k], strlen(a->kwnames[k])), a->kw[k]));
    return REALM_OK;
}

static realm_status fn_raise(jctx *c, uint32_t line, const jargs *a)
{
    jv msg = jv_str("", 0);
    if (a->n_pos) TRY(realm__jv_to_str(c, line, a->pos[0], &msg));
    return realm__jerr(c, REALM_E_INVALID, line, "template raised an error: %.*s",
                       (int)(msg.u.s.n > 400 ? 400 : msg.u.s.n), msg.u.s.p);
}

static realm_status fn_strftime_now(jctx *c, uint32_t line, const jargs *a, jv *out)
{
    BIND("strftime_now", "format");
    if (p[0].kind != JV_STR || p[0].u.s.n > 200)
        return realm__jerr(c, REALM_E_INVALID, line, "strftime_now() needs a short format string");
    char fmt[256], buf[512];
    memcpy(fmt, p[0].u.s.p, p[0].u.s.n);
    fmt[p[0].u.s.n] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) return realm__jerr(c, REALM_E_INTERNAL, line, "localtime failed");
    size_t n = strftime(buf, sizeof buf, fmt, &tm);
    return realm__jv_str_new(c, buf, n, out);
}

/* ---- methods ---- */

static const char *const STR_METHODS[] = {
    "strip",      "lstrip",   "rstrip",  "upper",   "lower",   "title",   "capitalize",
    "startswith", "endswith", "split",   "replace", "find",    "count",   "join",
    "isdigit",    "isspace",  "isalpha", "isalnum", "islower", "isupper", NULL};
static const char *const DICT_METHODS[] = {"items", "keys", "values", "get", NULL};
static const char *const LIST_METHODS[] = {"index", "count", NULL};
static const char *const LOOP_METHODS[] = {"cycle", NULL};

static const char *const *methods_of(jv self)
{
    switch (self.kind) {
    case JV_STR:
        return STR_METHODS;
    case JV_DICT:
        return DICT_METHODS;
    case JV_LIST:
        return LIST_METHODS;
    case JV_LOOP:
        return LOOP_METHODS;
    default:
        return NULL;
    }
}

bool realm__jinja_has_method(jv self, const char *name)
{
    for (const char *const *m = methods_of(self); m && *m; m++)
        if (!strcmp(*m, name)) return true;
    return false;
}

static bool ascii_class(jv s, const char *method)
{
    bool any = false, cased = false;
    for (size_t i = 0; i < s.u.s.n; i++) {
        unsigned char ch = (unsigned char)s.u.s.p[i];
        bool digit = ch >= '0' && ch <= '9', lo = ch >= 'a' && ch <= 'z',
             up = ch >= 'A' && ch <= 'Z';
        bool ok = !strcmp(method, "isdigit")   ? digit
                  : !strcmp(method, "isalpha") ? lo || up
                  : !strcmp(method, "isalnum") ? lo || up || digit
                  : !strcmp(method, "isspace") ? realm__py_space_len(s.u.s.p + i, s.u.s.n - i) > 0
                  : !strcmp(method, "islower") ? !up
                                               : !lo;
        cased |= lo || up;
        if (!ok) return false;
        any = true;
    }
    if (!strcmp(method, "islower") || !strcmp(method, "isupper")) return cased;
    return any;
}

static realm_status need_str(jctx *c, uint32_t line, const char *method, jv v)
{
    if (v.kind == JV_STR) return REALM_OK;
    return realm__jerr(c, REALM_E_INVALID, line, "%s() argument must be str, not %s", method,
                       realm__jv_type_name(v));
}

/* prefix (or any of a tuple of prefixes) at the start / end of s. */
static realm_status affix(jctx *c, uint32_t line, const char *m, jv s, jv x, bool end, bool *out)
{
    const jv *opts = &x;
    size_t n = 1;
    if (x.kind == JV_LIST && x.u.list->tuple) {
        opts = x.u.list->items;
        n = x.u.list->n;
    }
    *out = false;
    for (size_t i = 0; i < n && !*out; i++) {
        TRY(need_str(c, line, m, opts[i]));
        size_t l = opts[i].u.s.n;
        *out = l <= s.u.s.n && !memcmp(s.u.s.p + (end ? s.u.s.n - l : 0), opts[i].u.s.p, l);
    }
    return REALM_OK;
}

static realm_status str_method(jctx *c, uint32_t line, jv s, const char *m, const jargs *a, jv *out)
{
    bool b;
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        BIND(m, "chars");
        int sides = m[0] == 'l' ? JS_LEFT : m[0] == 'r' ? JS_RIGHT : JS_BOTH;
        return realm__js_strip(c, line, s, realm__jarg_given(p[0]) ? p[0] : jv_none(), sides, out);
    }
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        BIND(m, "prefix");
        if (!realm__jarg_given(p[0]))
            return realm__jerr(c, REALM_E_INVALID, line, "%s() needs an argument", m);
        TRY(affix(c, line, m, s, p[0], m[0] == 'e', &b));
        *out = jv_bool(b);
        return REALM_OK;
    }
    if (!strcmp(m, "split")) {
        BIND(m, "sep", "maxsplit");
        int64_t max = -1;
        if (realm__jarg_given(p[1])) {
            if (p[1].kind != JV_INT)
                return realm__jerr(c, REALM_E_INVALID, line, "maxsplit must be an int");
            max = p[1].u.i;
        }
        return realm__js_split(c, line, s, realm__jarg_given(p[0]) ? p[0] : jv_none(), max, out);
    }
    if (!strcmp(m, "replace")) {
        BIND(m, "old", "new", "count");
        int64_t count = -1;
        if (realm__jarg_given(p[2])) {
            if (p[2].kind != JV_INT)
                return realm__jerr(c, REALM_E_INVALID, line, "count must be an int");
            count = p[2].u.i;
        }
        return realm__js_replace(c, line, s, p[0], p[1], count, out);
    }
    if (!strcmp(m, "find") || !strcmp(m, "count")) {
        BIND(m, "sub");
        TRY(need_str(c, line, m, p[0]));
        *out = jv_int(m[0] == 'f' ? realm__js_find(s, p[0]) : realm__js_count(s, p[0]));
        return REALM_OK;
    }
    if (!strcmp(m, "join")) {
        BIND(m, "iterable");
        const jv *items;
        size_t n;
        TRY(realm__jv_iterate(c, line, p[0], &items, &n));
        jbuf buf = {.max = c->lim->max_output_bytes};
        realm_status st = REALM_OK;
        for (size_t i = 0; i < n && !st; i++) {
            st = need_str(c, line, "join", items[i]);
            if (!st && ((i && !realm__jb_put(&buf, s.u.s.p, s.u.s.n)) ||
                        !realm__jb_put(&buf, items[i].u.s.p, items[i].u.s.n)))
                st = realm__jerr(c, REALM_E_RANGE, line, "join() result too large");
        }
        if (!st) st = realm__jv_from_buf(c, &buf, out);
        realm__jb_free(&buf);
        return st;
    }
    NOARGS(m);
    if (!strncmp(m, "is", 2)) {
        *out = jv_bool(ascii_class(s, m));
        return REALM_OK;
    }
    js_case mode = !strcmp(m, "upper")   ? JS_UPPER
                   : !strcmp(m, "lower") ? JS_LOWER
                   : !strcmp(m, "title") ? JS_PY_TITLE
                                         : JS_CAPITALIZE;
    return realm__js_case(c, s, mode, out);
}

static realm_status dict_method(jctx *c, uint32_t line, jv d, const char *m, const jargs *a,
                                jv *out)
{
    if (!strcmp(m, "get")) {
        BIND(m, "key", "default");
        if (!realm__jv_dict_get(d, p[0], out)) *out = realm__jarg_given(p[1]) ? p[1] : jv_none();
        return REALM_OK;
    }
    NOARGS(m);
    if (!strcmp(m, "items")) return realm__jinja_dict_items(c, d, out);
    size_t n = d.u.dict->n;
    TRY(realm__jv_list_new(c, n, false, out));
    memcpy(out->u.list->items, m[0] == 'k' ? d.u.dict->keys : d.u.dict->vals, n * sizeof(jv));
    return REALM_OK;
}

static realm_status other_method(jctx *c, uint32_t line, jv self, const char *m, const jargs *a,
                                 jv *out)
{
    if (self.kind == JV_LOOP) { /* loop.cycle(a, b, ...) */
        if (a->n_pos == 0 || a->n_kw)
            return realm__jerr(c, REALM_E_INVALID, line, "loop.cycle() needs positional arguments");
        *out = a->pos[self.u.loop->index0 % a->n_pos];
        return REALM_OK;
    }
    BIND(m, "value");
    const jlist *l = self.u.list;
    int64_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!realm__jv_equal(l->items[i], p[0])) continue;
        if (m[0] == 'i') {
            *out = jv_int((int64_t)i);
            return REALM_OK;
        }
        k++;
    }
    if (m[0] == 'i') return realm__jerr(c, REALM_E_INVALID, line, "value is not in list");
    *out = jv_int(k);
    return REALM_OK;
}

realm_status realm__jinja_call(jctx *c, uint32_t line, jv fn, const jargs *a, jv *out)
{
    switch (fn.kind) {
    case JV_FUNC:
        switch (fn.u.func) {
        case FN_RANGE:
            return fn_range(c, line, a, out);
        case FN_NAMESPACE:
            return fn_mapping(c, line, a, JV_NS, out);
        case FN_DICT:
            return fn_mapping(c, line, a, JV_DICT, out);
        case FN_RAISE:
            return fn_raise(c, line, a);
        case FN_STRFTIME_NOW:
            return fn_strftime_now(c, line, a, out);
        default:
            return realm__jerr(c, REALM_E_INTERNAL, line, "bad function id");
        }
    case JV_METHOD: {
        jv self = fn.u.method->self;
        const char *m = fn.u.method->name;
        if (self.kind == JV_STR) return str_method(c, line, self, m, a, out);
        if (self.kind == JV_DICT) return dict_method(c, line, self, m, a, out);
        return other_method(c, line, self, m, a, out);
    }
    case JV_MACRO:
        return realm__jinja_call_macro(c, line, fn.u.macro, a, out);
    case JV_UNDEF:
        return realm__jerr(c, REALM_E_INVALID, line, "'%s' is undefined (called as a function)",
                           fn.u.undef_name ? fn.u.undef_name : "value");
    default:
        return realm__jerr(c, REALM_E_INVALID, line, "'%s' object is not callable",
                           realm__jv_type_name(fn));
    }
}
