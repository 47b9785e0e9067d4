/*
 * tokenizer/chat_jinja_eval.c — compile and run a template: the tree-walking
 * evaluator of the Jinja subset.
 *
 * Scoping follows Jinja2: a for loop's body gets a fresh scope on every
 * iteration (a `set` there is invisible to the next iteration and after the
 * loop; namespace() objects are how templates carry state out), `if` blocks
 * open no scope, and a macro sees its parameters over the template-level
 * variables. Names nobody defined are `Undefined`: empty when printed, false
 * when tested, an error when used as a value (attribute, arithmetic).
 */
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/chat_jinja_impl.h"
#include "tokenizer/utf8.h"

struct realm__jinja_program {
    jarena arena;
    jnode *root;
};

#define TRY(x)                                                                                     \
    do {                                                                                           \
        realm_status st_ = (x);                                                                    \
        if (st_) return st_;                                                                       \
    } while (0)

/* ---- scopes ---- */

static jv *lookup(jctx *c, const char *name)
{
    for (jframe *f = c->top; f; f = f->parent)
        for (size_t i = 0; i < f->n; i++)
            if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

static realm_status assign(jctx *c, jframe *f, const char *name, jv v)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return REALM_OK;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **names = realm__ja_alloc(&c->arena, cap * sizeof *names);
        jv *vals = realm__ja_alloc(&c->arena, cap * sizeof *vals);
        if (!names || !vals) return realm__jerr_alloc(c);
        if (f->n) {
            memcpy(names, f->names, f->n * sizeof *names);
            memcpy(vals, f->vals, f->n * sizeof *vals);
        }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
    return REALM_OK;
}

static jframe *push_frame(jctx *c, jframe *parent)
{
    jframe *f = realm__ja_alloc(&c->arena, sizeof *f);
    if (f) f->parent = parent;
    return f;
}

/* Bind v to one name, or unpack it over several (for k, v in ...). */
static realm_status bind(jctx *c, uint32_t line, jframe *f, const char *const *names, size_t n,
                         jv v)
{
    if (n == 1) return assign(c, f, names[0], v);
    const jv *items;
    size_t k;
    if (v.kind != JV_LIST && v.kind != JV_STR)
        return realm__jerr(c, REALM_E_INVALID, line, "cannot unpack a %s", realm__jv_type_name(v));
    TRY(realm__jv_iterate(c, line, v, &items, &k));
    if (k != n)
        return realm__jerr(c, REALM_E_INVALID, line, "cannot unpack %zu values into %zu names", k,
                           n);
    for (size_t i = 0; i < n; i++)
        TRY(assign(c, f, names[i], items[i]));
    return REALM_OK;
}

/* ---- expressions ---- */

static realm_status eval_args(jctx *c, const jnode *n, jv **pos, jv **kw)
{
    *pos = realm__ja_alloc(&c->arena, (n->n_args + 1) * sizeof **pos);
    *kw = realm__ja_alloc(&c->arena, (n->n_kwargs + 1) * sizeof **kw);
    if (!*pos || !*kw) return realm__jerr_alloc(c);
    for (size_t i = 0; i < n->n_args; i++)
        TRY(realm__jinja_eval(c, n->args[i], &(*pos)[i]));
    for (size_t i = 0; i < n->n_kwargs; i++)
        TRY(realm__jinja_eval(c, n->kwargs[i], &(*kw)[i]));
    return REALM_OK;
}

static realm_status compare(jctx *c, uint32_t line, jop op, jv a, jv b, bool *res)
{
    int r;
    switch (op) {
    case JO_EQ:
        *res = realm__jv_equal(a, b);
        return REALM_OK;
    case JO_NE:
        *res = !realm__jv_equal(a, b);
        return REALM_OK;
    case JO_IN:
        return realm__jv_contains(c, line, b, a, res);
    case JO_NOTIN:
        TRY(realm__jv_contains(c, line, b, a, res));
        *res = !*res;
        return REALM_OK;
    default:
        break;
    }
    TRY(realm__jv_order(c, line, a, b, &r));
    if (r == 2) { /* NaN */
        *res = false;
        return REALM_OK;
    }
    *res = op == JO_LT ? r < 0 : op == JO_LE ? r <= 0 : op == JO_GT ? r > 0 : r >= 0;
    return REALM_OK;
}

static realm_status eval_unary(jctx *c, const jnode *n, jv v, jv *out)
{
    if (v.kind == JV_BOOL) v = jv_int(v.u.b);
    if (v.kind == JV_INT) {
        if (n->kind == JN_NEG && v.u.i == INT64_MIN)
            return realm__jerr(c, REALM_E_RANGE, n->line, "integer overflow");
        *out = n->kind == JN_NEG ? jv_int(-v.u.i) : v;
        return REALM_OK;
    }
    if (v.kind == JV_FLOAT) {
        *out = n->kind == JN_NEG ? jv_float(-v.u.f) : v;
        return REALM_OK;
    }
    if (v.kind == JV_UNDEF)
        return realm__jerr(c, REALM_E_INVALID, n->line, "'%s' is undefined",
                           v.u.undef_name ? v.u.undef_name : "value");
    return realm__jerr(c, REALM_E_INVALID, n->line, "bad operand type for unary %c: '%s'",
                       n->kind == JN_NEG ? '-' : '+', realm__jv_type_name(v));
}

realm_status realm__jinja_eval(jctx *c, const jnode *n, jv *out)
{
    jv a, b;
    switch (n->kind) {
    case JN_CONST:
        *out = n->value;
        return REALM_OK;
    case JN_NAME: {
        const jv *v = lookup(c, n->str);
        int fn;
        if (v)
            *out = *v;
        else if ((fn = realm__jinja_func_find(n->str)) >= 0)
            *out = (jv){.kind = JV_FUNC, .u.func = fn};
        else
            *out = jv_undef(n->str);
        return REALM_OK;
    }
    case JN_GETATTR:
        TRY(realm__jinja_eval(c, n->a, &a));
        return realm__jv_getattr(c, n->line, a, n->str, out);
    case JN_GETITEM:
        TRY(realm__jinja_eval(c, n->a, &a));
        if (n->b->kind == JN_SLICE) {
            jv part[3];
            const jnode *bounds[3] = {n->b->a, n->b->b, n->b->c};
            for (int i = 0; i < 3; i++) {
                part[i] = jv_none();
                if (bounds[i]) TRY(realm__jinja_eval(c, bounds[i], &part[i]));
            }
            return realm__jv_slice(c, n->line, a, part[0], part[1], part[2], out);
        }
        TRY(realm__jinja_eval(c, n->b, &b));
        return realm__jv_getitem(c, n->line, a, b, out);
    case JN_CALL:
    case JN_FILTER:
    case JN_TEST: {
        jv *pos, *kw;
        if (n->kind == JN_FILTER && !n->a)
            a = *c->filter_input;
        else
            TRY(realm__jinja_eval(c, n->a, &a));
        TRY(eval_args(c, n, &pos, &kw));
        jargs args = {pos, n->n_args, n->kwnames, kw, n->n_kwargs};
        if (n->kind == JN_FILTER) return realm__jinja_filter(c, n->line, n->fn, a, &args, out);
        if (n->kind == JN_CALL) return realm__jinja_call(c, n->line, a, &args, out);
        bool r;
        TRY(realm__jinja_test(c, n->line, n->fn, a, &args, &r));
        *out = jv_bool(r);
        return REALM_OK;
    }
    case JN_NOT:
        TRY(realm__jinja_eval(c, n->a, &a));
        *out = jv_bool(!realm__jv_truthy(a));
        return REALM_OK;
    case JN_NEG:
    case JN_POS:
        TRY(realm__jinja_eval(c, n->a, &a));
        return eval_unary(c, n, a, out);
    case JN_BINOP:
        TRY(realm__jinja_eval(c, n->a, &a));
        TRY(realm__jinja_eval(c, n->b, &b));
        return realm__jv_binop(c, n->line, n->op, a, b, out);
    case JN_AND:
    case JN_OR:
        TRY(realm__jinja_eval(c, n->a, &a));
        if (realm__jv_truthy(a) == (n->kind == JN_OR)) {
            *out = a;
            return REALM_OK;
        }
        return realm__jinja_eval(c, n->b, out);
    case JN_COMPARE: {
        TRY(realm__jinja_eval(c, n->a, &a));
        bool r = true;
        for (size_t i = 0; i < n->n_args && r; i++) {
            TRY(realm__jinja_eval(c, n->args[i], &b));
            TRY(compare(c, n->line, n->ops[i], a, b, &r));
            a = b;
        }
        *out = jv_bool(r);
        return REALM_OK;
    }
    case JN_CONCAT: {
        jbuf buf = {.max = c->lim->max_output_bytes};
        realm_status st = REALM_OK;
        for (size_t i = 0; i < n->n_args && !st; i++) {
            st = realm__jinja_eval(c, n->args[i], &a);
            if (!st) st = realm__jv_str_to(c, n->line, a, &buf);
        }
        if (!st) st = realm__jv_from_buf(c, &buf, out);
        realm__jb_free(&buf);
        return st;
    }
    case JN_COND:
        TRY(realm__jinja_eval(c, n->a, &a));
        if (realm__jv_truthy(a)) return realm__jinja_eval(c, n->b, out);
        if (n->c) return realm__jinja_eval(c, n->c, out);
        *out = jv_undef(NULL);
        return REALM_OK;
    case JN_LIST:
    case JN_TUPLE:
        TRY(realm__jv_list_new(c, n->n_args, n->kind == JN_TUPLE, out));
        for (size_t i = 0; i < n->n_args; i++)
            TRY(realm__jinja_eval(c, n->args[i], &out->u.list->items[i]));
        return REALM_OK;
    case JN_DICT:
        TRY(realm__jv_dict_new(c, n->n_args, JV_DICT, out));
        for (size_t i = 0; i < n->n_args; i++) {
            TRY(realm__jinja_eval(c, n->args[i], &a));
            TRY(realm__jinja_eval(c, n->kwargs[i], &b));
            TRY(realm__jv_dict_set(c, *out, a, b));
        }
        return REALM_OK;
    default:
        return realm__jerr(c, REALM_E_INTERNAL, n->line, "not an expression");
    }
}

/* ---- statements ---- */

static realm_status exec(jctx *c, const jnode *s);

static realm_status exec_body(jctx *c, jnode *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        TRY(exec(c, list[i]));
        if (c->loop_ctl) return REALM_OK; /* break/continue unwinds to its loop */
    }
    return REALM_OK;
}

/* Run a body with output captured into a string value. */
static realm_status capture(jctx *c, jnode *const *list, size_t n, jv *out)
{
    jbuf buf = {.max = c->lim->max_output_bytes}, *saved = c->out;
    c->out = &buf;
    realm_status st = exec_body(c, list, n);
    c->out = saved;
    if (!st) st = realm__jv_from_buf(c, &buf, out);
    realm__jb_free(&buf);
    return st;
}

static realm_status exec_for(jctx *c, const jnode *s)
{
    jv iter;
    const jv *items;
    size_t n;
    TRY(realm__jinja_eval(c, s->a, &iter));
    TRY(realm__jv_iterate(c, s->line, iter, &items, &n));
    jframe *f = push_frame(c, c->top);
    if (!f) return realm__jerr_alloc(c);
    c->top = f;
    realm_status st = REALM_OK;
    if (s->b) { /* `for x in xs if test`: filter first, so loop.length counts what runs */
        jv *kept = realm__ja_alloc(&c->arena, (n ? n : 1) * sizeof *kept);
        size_t k = 0;
        if (!kept) st = realm__jerr_alloc(c);
        for (size_t i = 0; i < n && !st; i++) {
            jv t;
            f->n = 0;
            st = realm__jstep(c, s->line);
            if (!st) st = bind(c, s->line, f, s->names, s->n_names, items[i]);
            if (!st) st = realm__jinja_eval(c, s->b, &t);
            if (!st && realm__jv_truthy(t)) kept[k++] = items[i];
        }
        items = kept;
        n = k;
    }
    jloop *loop = st ? NULL : realm__ja_alloc(&c->arena, sizeof *loop);
    if (!st && !loop) st = realm__jerr_alloc(c);
    if (loop) {
        loop->items = items;
        loop->n = n;
    }
    for (size_t i = 0; i < n && !st; i++) {
        f->n = 0;
        loop->index0 = i;
        st = realm__jstep(c, s->line);
        if (!st) st = assign(c, f, "loop", (jv){.kind = JV_LOOP, .u.loop = loop});
        if (!st) st = bind(c, s->line, f, s->names, s->n_names, items[i]);
        if (!st) st = exec_body(c, s->list, s->n_list);
        if (c->loop_ctl == JN_BREAK) {
            c->loop_ctl = 0;
            break;
        }
        c->loop_ctl = 0;
    }
    c->top = f->parent;
    if (!st && n == 0 && s->c) st = exec_body(c, s->c->list, s->c->n_list);
    return st;
}

static realm_status exec(jctx *c, const jnode *s)
{
    jv v;
    TRY(realm__jstep(c, s->line));
    switch (s->kind) {
    case JN_TEXT:
        if (!realm__jb_put(c->out, s->str, s->len))
            return realm__jerr(c, c->out->n + s->len > c->out->max ? REALM_E_RANGE : REALM_E_NOMEM,
                               s->line, "template output exceeds %zu bytes", c->out->max);
        return REALM_OK;
    case JN_OUTPUT:
        TRY(realm__jinja_eval(c, s->a, &v));
        return realm__jv_str_to(c, s->line, v, c->out);
    case JN_IF:
        for (const jnode *branch = s; branch; branch = branch->b) {
            TRY(realm__jinja_eval(c, branch->a, &v));
            if (realm__jv_truthy(v)) return exec_body(c, branch->list, branch->n_list);
        }
        return s->c ? exec_body(c, s->c->list, s->c->n_list) : REALM_OK;
    case JN_FOR:
        return exec_for(c, s);
    case JN_SET:
        TRY(realm__jinja_eval(c, s->a, &v));
        return bind(c, s->line, c->top, s->names, s->n_names, v);
    case JN_NSSET: {
        const jv *ns = lookup(c, s->str);
        if (!ns || ns->kind != JV_NS)
            return realm__jerr(c, REALM_E_INVALID, s->line,
                               "cannot assign attribute on non-namespace object '%s'", s->str);
        jv target = *ns;
        TRY(realm__jinja_eval(c, s->a, &v));
        return realm__jv_dict_set(c, target, jv_str(s->names[0], strlen(s->names[0])), v);
    }
    case JN_SETBLOCK:
        TRY(capture(c, s->list, s->n_list, &v));
        if (s->b) {
            const jv *saved = c->filter_input;
            c->filter_input = &v;
            realm_status st = realm__jinja_eval(c, s->b, &v);
            c->filter_input = saved;
            TRY(st);
        }
        return bind(c, s->line, c->top, s->names, s->n_names, v);
    case JN_MACRO:
        return assign(c, c->top, s->str, (jv){.kind = JV_MACRO, .u.macro = s});
    case JN_BREAK:
    case JN_CONTINUE:
        c->loop_ctl = s->kind;
        return REALM_OK;
    case JN_BLOCK:
        return exec_body(c, s->list, s->n_list);
    default:
        return realm__jerr(c, REALM_E_INTERNAL, s->line, "not a statement");
    }
}

realm_status realm__jinja_call_macro(jctx *c, uint32_t line, const jnode *m, const jargs *a,
                                     jv *out)
{
    if (a->n_pos > m->n_names)
        return realm__jerr(c, REALM_E_INVALID, line,
                           "macro '%s' takes not more than %zu argument(s)", m->str, m->n_names);
    if (c->call_depth >= c->lim->max_depth)
        return realm__jerr(c, REALM_E_RANGE, line, "macro calls nested more than %d deep",
                           c->lim->max_depth);
    jframe *f = push_frame(c, c->root);
    if (!f) return realm__jerr_alloc(c);
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i;
        for (i = 0; i < m->n_names && strcmp(m->names[i], a->kwnames[k]); i++) {
        }
        if (i == m->n_names || i < a->n_pos)
            return realm__jerr(c, REALM_E_INVALID, line,
                               "macro '%s' got an unexpected argument '%s'", m->str, a->kwnames[k]);
    }
    jframe *saved = c->top;
    realm_status st = REALM_OK;
    for (size_t i = 0; i < m->n_names && !st; i++) {
        jv v = jv_undef(m->names[i]);
        bool given = i < a->n_pos;
        if (given) v = a->pos[i];
        for (size_t k = 0; k < a->n_kw && !given; k++)
            if (!strcmp(m->names[i], a->kwnames[k])) v = a->kw[k], given = true;
        if (!given && m->args[i]) {
            c->top = f; /* defaults see the parameters bound before them */
            st = realm__jinja_eval(c, m->args[i], &v);
            c->top = saved;
        }
        if (!st) st = assign(c, f, m->names[i], v);
    }
    if (st) return st;
    c->call_depth++;
    c->top = f;
    st = capture(c, m->list, m->n_list, out);
    c->top = saved;
    c->call_depth--;
    c->loop_ctl = 0;
    return st;
}

/* ---- entry points ---- */

realm_status realm__jinja_compile(const char *src, size_t len, const realm__jinja_limits *lim,
                                  realm__jinja_program **out, realm_error *err)
{
    if (len > lim->max_template_bytes)
        return realm_error_set(err, REALM_E_RANGE,
                               "template is %zu bytes, more than the %zu allowed", len,
                               lim->max_template_bytes);
    size_t bad = realm_utf8_invalid_offset(src, len);
    if (bad < len)
        return realm_error_set(err, REALM_E_FORMAT, "template is not valid UTF-8 (byte %zu)", bad);
    realm__jinja_program *p = realm_calloc(1, sizeof *p);
    if (!p) return realm_error_set(err, REALM_E_NOMEM, "out of memory compiling the template");
    realm__ja_init(&p->arena, lim->max_memory_bytes);
    jtok *toks = NULL;
    size_t n_toks = 0;
    realm_status st = realm__jinja_lex(&p->arena, src, len, lim->max_depth, &toks, &n_toks, err);
    if (!st) st = realm__jinja_parse(&p->arena, toks, n_toks, lim->max_depth, &p->root, err);
    realm_free(toks);
    if (st && p->arena.over_cap)
        st = realm_error_set(err, REALM_E_RANGE, "template needs more than %zu bytes to compile",
                             lim->max_memory_bytes);
    if (st) {
        realm__jinja_free(p);
        return st;
    }
    *out = p;
    return REALM_OK;
}

void realm__jinja_free(realm__jinja_program *p)
{
    if (!p) return;
    realm__ja_free(&p->arena);
    realm_free(p);
}

static realm_status make_messages(jctx *c, const realm__jinja_inputs *in, jv *out)
{
    TRY(realm__jv_list_new(c, in->n_messages, false, out));
    for (size_t i = 0; i < in->n_messages; i++) {
        const realm_chat_message *m = &in->messages[i];
        jv d;
        TRY(realm__jv_dict_new(c, 2, JV_DICT, &d));
        TRY(realm__jv_dict_set(c, d, jv_str("role", 4), jv_str(m->role, strlen(m->role))));
        TRY(realm__jv_dict_set(c, d, jv_str("content", 7), jv_str(m->content, strlen(m->content))));
        out->u.list->items[i] = d;
    }
    return REALM_OK;
}

static jv opt_str(const char *s, const char *name)
{
    return s ? jv_str(s, strlen(s)) : jv_undef(name);
}

realm_status realm__jinja_render(const realm__jinja_program *p, const realm__jinja_inputs *in,
                                 const realm__jinja_limits *lim, char **out, size_t *out_len,
                                 realm_error *err)
{
    jbuf buf = {.max = lim->max_output_bytes};
    jctx c = {.out = &buf, .err = err, .lim = lim};
    realm__ja_init(&c.arena, lim->max_memory_bytes);
    jv messages;
    jframe *globals = NULL;
    realm_status st = make_messages(&c, in, &messages);
    if (!st && !(globals = push_frame(&c, NULL))) st = realm__jerr_alloc(&c);
    /* what transformers' render() is given */
    if (!st) st = assign(&c, globals, "messages", messages);
    if (!st) st = assign(&c, globals, "add_generation_prompt", jv_bool(in->add_generation_prompt));
    if (!st) st = assign(&c, globals, "bos_token", opt_str(in->bos_token, "bos_token"));
    if (!st) st = assign(&c, globals, "eos_token", opt_str(in->eos_token, "eos_token"));
    if (!st) st = assign(&c, globals, "tools", jv_none());
    if (!st) st = assign(&c, globals, "documents", jv_none());
    if (!st && !(c.root = push_frame(&c, globals))) st = realm__jerr_alloc(&c);
    c.top = c.root;
    if (!st) st = exec_body(&c, p->root->list, p->root->n_list);
    if (!st && !buf.p && !realm__jb_put(&buf, "", 0))
        st = realm_error_set(err, REALM_E_NOMEM, "out of memory rendering the template");
    realm__ja_free(&c.arena);
    if (st) {
        realm__jb_free(&buf);
        return st;
    }
    *out = buf.p;
    *out_len = buf.n;
    return REALM_OK;
}
