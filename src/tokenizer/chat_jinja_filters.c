/*
 * tokenizer/chat_jinja_filters.c — the filters (|f) and tests (is t) of the
 * Jinja subset: the ones chat templates use, with Jinja 3.1's semantics and
 * transformers' tojson (json.dumps with ensure_ascii=False, no key sorting).
 * Tables drive lookup, so the parser can reject a name the subset lacks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/chat_jinja_impl.h"

#define TRY(x)                                                                                     \
    do {                                                                                           \
        realm_status st_ = (x);                                                                    \
        if (st_) return st_;                                                                       \
    } while (0)

/* Bind a builtin's named parameters into p[] (absent ones: jarg missing). */
#define BIND(what, ...)                                                                            \
    static const char *const P_[] = {__VA_ARGS__};                                                 \
    jv p[sizeof P_ / sizeof P_[0]];                                                                \
    TRY(realm__jargs_bind(c, line, what, a, P_, sizeof P_ / sizeof P_[0], 0, p))
#define NOARGS(what) TRY(realm__jargs_bind(c, line, what, a, NULL, 0, 0, NULL))

/* ---- filters ---- */

static realm_status f_trim(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("trim", "chars");
    TRY(realm__jv_to_str(c, line, in, &in));
    return realm__js_strip(c, line, in, realm__jarg_given(p[0]) ? p[0] : jv_none(), JS_BOTH, out);
}

static realm_status case_filter(jctx *c, uint32_t line, const char *what, jv in, const jargs *a,
                                js_case mode, jv *out)
{
    NOARGS(what);
    TRY(realm__jv_to_str(c, line, in, &in));
    return realm__js_case(c, in, mode, out);
}

static realm_status f_upper(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return case_filter(c, line, "upper", in, a, JS_UPPER, out);
}
static realm_status f_lower(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return case_filter(c, line, "lower", in, a, JS_LOWER, out);
}
static realm_status f_capitalize(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return case_filter(c, line, "capitalize", in, a, JS_CAPITALIZE, out);
}
static realm_status f_title(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return case_filter(c, line, "title", in, a, JS_JINJA_TITLE, out);
}

static realm_status f_string(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("string");
    return realm__jv_to_str(c, line, in, out);
}

static realm_status f_replace(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("replace", "old", "new", "count");
    int64_t count = -1;
    if (realm__jarg_given(p[2]) && p[2].kind != JV_NONE) {
        if (p[2].kind != JV_INT)
            return realm__jerr(c, REALM_E_INVALID, line, "replace count must be an int");
        count = p[2].u.i;
    }
    TRY(realm__jv_to_str(c, line, in, &in));
    TRY(realm__jv_to_str(c, line, p[0], &p[0]));
    TRY(realm__jv_to_str(c, line, p[1], &p[1]));
    return realm__js_replace(c, line, in, p[0], p[1], count, out);
}

static realm_status f_length(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("length");
    int64_t n;
    TRY(realm__jv_len(c, line, in, &n));
    *out = jv_int(n);
    return REALM_OK;
}

static realm_status f_list(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("list");
    const jv *items;
    size_t n;
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    TRY(realm__jv_list_new(c, n, false, out));
    if (n) memcpy(out->u.list->items, items, n * sizeof *items);
    return REALM_OK;
}

static realm_status f_first(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("first");
    const jv *items;
    size_t n;
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    *out = n ? items[0] : jv_undef("first");
    return REALM_OK;
}

static realm_status f_last(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("last");
    const jv *items;
    size_t n;
    if (in.kind == JV_DICT)
        return realm__jerr(c, REALM_E_INVALID, line, "'dict' object is not reversible");
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    *out = n ? items[n - 1] : jv_undef("last");
    return REALM_OK;
}

static realm_status f_reverse(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("reverse");
    const jv *items;
    size_t n;
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    if (in.kind == JV_STR) {
        char *s = realm__ja_alloc(&c->arena, in.u.s.n + 1);
        if (!s) return realm__jerr_alloc(c);
        for (size_t i = 0, o = 0; i < n; i++) {
            memcpy(s + o, items[n - 1 - i].u.s.p, items[n - 1 - i].u.s.n);
            o += items[n - 1 - i].u.s.n;
        }
        *out = jv_str(s, in.u.s.n);
        return REALM_OK;
    }
    TRY(realm__jv_list_new(c, n, false, out));
    for (size_t i = 0; i < n; i++)
        out->u.list->items[i] = items[n - 1 - i];
    return REALM_OK;
}

static realm_status f_join(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("join", "d", "attribute");
    jv sep = jv_str("", 0);
    if (realm__jarg_given(p[0])) TRY(realm__jv_to_str(c, line, p[0], &sep));
    const jv *items;
    size_t n;
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    jbuf b = {.max = c->lim->max_output_bytes};
    realm_status st = REALM_OK;
    for (size_t i = 0; i < n && !st; i++) {
        jv v = items[i];
        if (realm__jarg_given(p[1]) && p[1].kind != JV_NONE)
            st = realm__jv_getitem(c, line, v, p[1], &v);
        if (!st && i && !realm__jb_put(&b, sep.u.s.p, sep.u.s.n))
            st = realm__jerr(c, REALM_E_RANGE, line, "join result too large");
        if (!st) st = realm__jv_str_to(c, line, v, &b);
    }
    if (!st) st = realm__jv_from_buf(c, &b, out);
    realm__jb_free(&b);
    return st;
}

static realm_status f_default(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("default", "default_value", "boolean");
    bool boolean = realm__jarg_given(p[1]) && realm__jv_truthy(p[1]);
    if (in.kind == JV_UNDEF || (boolean && !realm__jv_truthy(in)))
        *out = realm__jarg_given(p[0]) ? p[0] : jv_str("", 0);
    else
        *out = in;
    return REALM_OK;
}

static realm_status f_items(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("items");
    if (in.kind == JV_UNDEF) return realm__jv_list_new(c, 0, false, out);
    if (in.kind != JV_DICT)
        return realm__jerr(c, REALM_E_INVALID, line, "can only get item pairs from a mapping");
    return realm__jinja_dict_items(c, in, out);
}

static realm_status f_tojson(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    int indent = -1;
    if (realm__jarg_given(p[1]) && p[1].kind != JV_NONE) {
        if (p[1].kind != JV_INT || p[1].u.i < 0 || p[1].u.i > 64)
            return realm__jerr(c, REALM_E_UNSUPPORTED, line, "tojson indent must be an int 0..64");
        indent = (int)p[1].u.i;
    }
    char seps[2][64] = {"", ""};
    const char *item_sep = NULL, *key_sep = NULL;
    if (realm__jarg_given(p[2]) && p[2].kind != JV_NONE) {
        jv s = p[2];
        if (s.kind != JV_LIST || s.u.list->n != 2)
            return realm__jerr(c, REALM_E_INVALID, line, "tojson separators must be a pair");
        for (int k = 0; k < 2; k++) {
            jv e = s.u.list->items[k];
            if (e.kind != JV_STR || e.u.s.n >= sizeof seps[k])
                return realm__jerr(c, REALM_E_INVALID, line,
                                   "tojson separators must be short strings");
            memcpy(seps[k], e.u.s.p, e.u.s.n);
        }
        item_sep = seps[0];
        key_sep = seps[1];
    }
    jbuf b = {.max = c->lim->max_output_bytes};
    realm_status st =
        realm__jv_json_to(c, line, in, realm__jarg_given(p[0]) && realm__jv_truthy(p[0]), indent,
                          item_sep, key_sep, realm__jarg_given(p[3]) && realm__jv_truthy(p[3]), &b);
    if (!st) st = realm__jv_from_buf(c, &b, out);
    realm__jb_free(&b);
    return st;
}

static realm_status f_abs(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    NOARGS("abs");
    if (in.kind == JV_INT && in.u.i != INT64_MIN)
        *out = jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
    else if (in.kind == JV_BOOL)
        *out = jv_int(in.u.b);
    else if (in.kind == JV_FLOAT)
        *out = jv_float(in.u.f < 0 ? -in.u.f : in.u.f);
    else
        return realm__jerr(c, REALM_E_INVALID, line, "bad operand type for abs(): '%s'",
                           realm__jv_type_name(in));
    return REALM_OK;
}

/* Parse all of s[0..n) (surrounding whitespace allowed) as an int / a float. */
static bool parse_number(jv s, bool want_int, int64_t *i, double *f)
{
    char buf[64];
    jv t = s;
    size_t l;
    while (t.u.s.n && (l = realm__py_space_len(t.u.s.p, t.u.s.n)))
        t.u.s.p += l, t.u.s.n -= l;
    while (t.u.s.n && (l = realm__py_space_len_back(t.u.s.p, t.u.s.n)))
        t.u.s.n -= l;
    size_t k = 0;
    for (size_t j = 0; j < t.u.s.n; j++)
        if (t.u.s.p[j] != '_' && k + 1 < sizeof buf) buf[k++] = t.u.s.p[j];
    if (k == 0 || k + 1 >= sizeof buf) return false;
    buf[k] = '\0';
    char *end;
    if (want_int) {
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end || errno) return false;
        *i = v;
        return true;
    }
    *f = strtod(buf, &end);
    return *end == '\0';
}

static realm_status f_int(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("int", "default", "base");
    jv def = realm__jarg_given(p[0]) ? p[0] : jv_int(0);
    int64_t i;
    double f;
    if (realm__jarg_given(p[1]) && !(p[1].kind == JV_INT && p[1].u.i == 10))
        return realm__jerr(c, REALM_E_UNSUPPORTED, line, "int filter with a base other than 10");
    if (in.kind == JV_INT)
        *out = in;
    else if (in.kind == JV_BOOL)
        *out = jv_int(in.u.b);
    else if (in.kind == JV_FLOAT && in.u.f > -9.2e18 && in.u.f < 9.2e18)
        *out = jv_int((int64_t)in.u.f);
    else if (in.kind == JV_STR && parse_number(in, true, &i, &f))
        *out = jv_int(i);
    else if (in.kind == JV_STR && parse_number(in, false, &i, &f) && f > -9.2e18 && f < 9.2e18)
        *out = jv_int((int64_t)f);
    else
        *out = def;
    return REALM_OK;
}

static realm_status f_float(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    BIND("float", "default");
    int64_t i;
    double f;
    if (in.kind == JV_FLOAT)
        *out = in;
    else if (in.kind == JV_INT || in.kind == JV_BOOL)
        *out = jv_float(in.kind == JV_INT ? (double)in.u.i : in.u.b);
    else if (in.kind == JV_STR && parse_number(in, false, &i, &f))
        *out = jv_float(f);
    else
        *out = realm__jarg_given(p[0]) ? p[0] : jv_float(0.0);
    return REALM_OK;
}

/* Jinja's attribute getter: "a.b.0" is getitem by each part in turn. */
static realm_status get_path(jctx *c, uint32_t line, jv item, jv path, jv *out)
{
    if (path.kind != JV_STR) return realm__jv_getitem(c, line, item, path, out);
    const char *s = path.u.s.p, *end = s + path.u.s.n;
    while (true) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        size_t len = dot ? (size_t)(dot - s) : (size_t)(end - s);
        jv key = jv_str(s, len);
        bool digits = len > 0 && len < 18;
        for (size_t i = 0; i < len && digits; i++)
            digits = s[i] >= '0' && s[i] <= '9';
        if (digits) key = jv_int(strtoll(s, NULL, 10));
        TRY(realm__jv_getitem(c, line, item, key, &item));
        if (!dot) break;
        s = dot + 1;
    }
    *out = item;
    return REALM_OK;
}

/* select / reject / selectattr / rejectattr. */
static realm_status select_common(jctx *c, uint32_t line, jv in, const jargs *a, bool by_attr,
                                  bool keep_if, jv *out)
{
    size_t first = by_attr ? 1 : 0;
    if (by_attr && a->n_pos < 1)
        return realm__jerr(c, REALM_E_INVALID, line, "selectattr/rejectattr need an attribute");
    int test = -1;
    if (a->n_pos > first) {
        jv name = a->pos[first];
        if (name.kind != JV_STR || (test = realm__jinja_test_find(name.u.s.p, name.u.s.n)) < 0)
            return realm__jerr(c, REALM_E_UNSUPPORTED, line, "no test named '%.*s'",
                               name.kind == JV_STR ? (int)name.u.s.n : 1,
                               name.kind == JV_STR ? name.u.s.p : "?");
    }
    jargs targs = {a->pos + first + 1, a->n_pos > first ? a->n_pos - first - 1 : 0, a->kwnames,
                   a->kw, a->n_kw};
    const jv *items;
    size_t n, k = 0;
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    TRY(realm__jv_list_new(c, n, false, out));
    for (size_t i = 0; i < n; i++) {
        jv v = items[i];
        bool r;
        TRY(realm__jstep(c, line));
        if (by_attr) TRY(get_path(c, line, v, a->pos[0], &v));
        if (test >= 0)
            TRY(realm__jinja_test(c, line, test, v, &targs, &r));
        else
            r = realm__jv_truthy(v);
        if (r == keep_if) out->u.list->items[k++] = items[i];
    }
    out->u.list->n = k;
    return REALM_OK;
}

static realm_status f_select(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return select_common(c, line, in, a, false, true, out);
}
static realm_status f_reject(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return select_common(c, line, in, a, false, false, out);
}
static realm_status f_selectattr(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return select_common(c, line, in, a, true, true, out);
}
static realm_status f_rejectattr(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    return select_common(c, line, in, a, true, false, out);
}

static realm_status f_map(jctx *c, uint32_t line, jv in, const jargs *a, jv *out)
{
    const jv *items;
    size_t n;
    jv attr = jv_none(), def = jv_undef(NULL);
    int filter = -1;
    for (size_t k = 0; k < a->n_kw; k++) {
        if (!strcmp(a->kwnames[k], "attribute"))
            attr = a->kw[k];
        else if (!strcmp(a->kwnames[k], "default"))
            def = a->kw[k];
        else if (a->n_pos == 0)
            return realm__jerr(c, REALM_E_INVALID, line, "map() got an unexpected argument '%s'",
                               a->kwnames[k]);
    }
    if (attr.kind == JV_NONE) {
        jv name = a->n_pos ? a->pos[0] : jv_none();
        if (name.kind != JV_STR || (filter = realm__jinja_filter_find(name.u.s.p, name.u.s.n)) < 0)
            return realm__jerr(c, REALM_E_UNSUPPORTED, line,
                               "map() needs attribute= or a known filter name");
    }
    jargs fargs = {a->n_pos ? a->pos + 1 : NULL, a->n_pos ? a->n_pos - 1 : 0, a->kwnames, a->kw,
                   a->n_kw};
    TRY(realm__jv_iterate(c, line, in, &items, &n));
    TRY(realm__jv_list_new(c, n, false, out));
    for (size_t i = 0; i < n; i++) {
        jv v;
        TRY(realm__jstep(c, line));
        if (filter >= 0) {
            TRY(realm__jinja_filter(c, line, filter, items[i], &fargs, &v));
        } else {
            TRY(get_path(c, line, items[i], attr, &v));
            if (v.kind == JV_UNDEF && def.kind != JV_UNDEF) v = def;
        }
        out->u.list->items[i] = v;
    }
    return REALM_OK;
}

typedef realm_status (*filter_fn)(jctx *c, uint32_t line, jv in, const jargs *a, jv *out);

static const struct {
    const char *name;
    filter_fn fn;
} FILTERS[] = {
    {"abs", f_abs},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"first", f_first},
    {"float", f_float},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"safe", f_string},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"string", f_string},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"upper", f_upper},
};

int realm__jinja_filter_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
        if (strlen(FILTERS[i].name) == len && !memcmp(FILTERS[i].name, name, len)) return (int)i;
    return -1;
}

realm_status realm__jinja_filter(jctx *c, uint32_t line, int id, jv in, const jargs *a, jv *out)
{
    return FILTERS[id].fn(c, line, in, a, out);
}

/* ---- tests ---- */

typedef enum test_id {
    T_DEFINED,
    T_UNDEFINED,
    T_NONE,
    T_BOOLEAN,
    T_TRUE,
    T_FALSE,
    T_INTEGER,
    T_FLOAT,
    T_NUMBER,
    T_STRING,
    T_MAPPING,
    T_ITERABLE,
    T_SEQUENCE,
    T_CALLABLE,
    T_ODD,
    T_EVEN,
    T_DIVISIBLEBY,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_IN,
    T_LOWER,
    T_UPPER,
    T_SAMEAS,
    T_COUNT
} test_id;

static const struct {
    const char *name;
    test_id id;
} TESTS[] = {
    {"defined", T_DEFINED},
    {"undefined", T_UNDEFINED},
    {"none", T_NONE},
    {"boolean", T_BOOLEAN},
    {"true", T_TRUE},
    {"false", T_FALSE},
    {"integer", T_INTEGER},
    {"float", T_FLOAT},
    {"number", T_NUMBER},
    {"string", T_STRING},
    {"mapping", T_MAPPING},
    {"iterable", T_ITERABLE},
    {"sequence", T_SEQUENCE},
    {"callable", T_CALLABLE},
    {"odd", T_ODD},
    {"even", T_EVEN},
    {"divisibleby", T_DIVISIBLEBY},
    {"eq", T_EQ},
    {"equalto", T_EQ},
    {"==", T_EQ},
    {"ne", T_NE},
    {"!=", T_NE},
    {"lt", T_LT},
    {"lessthan", T_LT},
    {"<", T_LT},
    {"le", T_LE},
    {"<=", T_LE},
    {"gt", T_GT},
    {"greaterthan", T_GT},
    {">", T_GT},
    {"ge", T_GE},
    {">=", T_GE},
    {"in", T_IN},
    {"lower", T_LOWER},
    {"upper", T_UPPER},
    {"sameas", T_SAMEAS},
};

int realm__jinja_test_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        if (strlen(TESTS[i].name) == len && !memcmp(TESTS[i].name, name, len)) return (int)i;
    return -1;
}

static realm_status case_test(jctx *c, uint32_t line, jv in, bool upper, bool *out)
{
    TRY(realm__jv_to_str(c, line, in, &in));
    bool cased = false, ok = true;
    for (size_t i = 0; i < in.u.s.n; i++) {
        char ch = in.u.s.p[i];
        bool lo = ch >= 'a' && ch <= 'z', up = ch >= 'A' && ch <= 'Z';
        cased |= lo || up;
        if (upper ? lo : up) ok = false;
    }
    *out = cased && ok;
    return REALM_OK;
}

realm_status realm__jinja_test(jctx *c, uint32_t line, int idx, jv in, const jargs *a, bool *out)
{
    test_id id = TESTS[idx].id;
    bool one_arg = id == T_DIVISIBLEBY || (id >= T_EQ && id <= T_IN) || id == T_SAMEAS;
    jv p[1];
    static const char *const arg[] = {"other"};
    TRY(realm__jargs_bind(c, line, TESTS[idx].name, a, arg, one_arg ? 1 : 0, 0, p));
    if (one_arg && !realm__jarg_given(p[0]))
        return realm__jerr(c, REALM_E_INVALID, line, "test '%s' needs an argument",
                           TESTS[idx].name);
    int r;
    switch (id) {
    case T_DEFINED:
        *out = in.kind != JV_UNDEF;
        break;
    case T_UNDEFINED:
        *out = in.kind == JV_UNDEF;
        break;
    case T_NONE:
        *out = in.kind == JV_NONE;
        break;
    case T_BOOLEAN:
        *out = in.kind == JV_BOOL;
        break;
    case T_TRUE:
        *out = in.kind == JV_BOOL && in.u.b;
        break;
    case T_FALSE:
        *out = in.kind == JV_BOOL && !in.u.b;
        break;
    case T_INTEGER:
        *out = in.kind == JV_INT;
        break;
    case T_FLOAT:
        *out = in.kind == JV_FLOAT;
        break;
    case T_NUMBER:
        *out = in.kind == JV_INT || in.kind == JV_FLOAT || in.kind == JV_BOOL;
        break;
    case T_STRING:
        *out = in.kind == JV_STR;
        break;
    case T_MAPPING:
        *out = in.kind == JV_DICT;
        break;
    case T_ITERABLE:
        *out = in.kind == JV_UNDEF || in.kind == JV_STR || in.kind == JV_LIST ||
               in.kind == JV_DICT || in.kind == JV_LOOP;
        break;
    case T_SEQUENCE:
        *out = in.kind == JV_UNDEF || in.kind == JV_STR || in.kind == JV_LIST || in.kind == JV_DICT;
        break;
    case T_CALLABLE:
        *out = in.kind == JV_FUNC || in.kind == JV_METHOD || in.kind == JV_MACRO;
        break;
    case T_ODD:
    case T_EVEN:
    case T_DIVISIBLEBY: {
        jv n = id == T_DIVISIBLEBY ? p[0] : jv_int(2), m;
        if ((in.kind != JV_INT && in.kind != JV_BOOL) || (n.kind != JV_INT && n.kind != JV_BOOL))
            return realm__jerr(c, REALM_E_INVALID, line, "test '%s' needs integers",
                               TESTS[idx].name);
        TRY(realm__jv_binop(c, line, JO_MOD, in, n, &m));
        *out = (m.u.i == 0) == (id != T_ODD);
        break;
    }
    case T_EQ:
        *out = realm__jv_equal(in, p[0]);
        break;
    case T_NE:
        *out = !realm__jv_equal(in, p[0]);
        break;
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE:
        TRY(realm__jv_order(c, line, in, p[0], &r));
        *out = r != 2 && (id == T_LT ? r < 0 : id == T_LE ? r <= 0 : id == T_GT ? r > 0 : r >= 0);
        break;
    case T_IN:
        return realm__jv_contains(c, line, p[0], in, out);
    case T_LOWER:
        return case_test(c, line, in, false, out);
    case T_UPPER:
        return case_test(c, line, in, true, out);
    case T_SAMEAS:
        /* `is`: singletons compare by value, everything else by identity */
        if (in.kind != p[0].kind)
            *out = false;
        else if (in.kind == JV_NONE || in.kind == JV_UNDEF)
            *out = true;
        else if (in.kind == JV_BOOL)
            *out = in.u.b == p[0].u.b;
        else
            *out = !memcmp(&in.u, &p[0].u, sizeof in.u);
        break;
    default:
        return realm__jerr(c, REALM_E_INTERNAL, line, "bad test id");
    }
    return REALM_OK;
}
