/*
 * tokenizer/chat_jinja_parse_expr.c — the expression half of the Jinja parser:
 * one function per precedence level, lowest first (see chat_jinja_parse.c for
 * the grammar). Every level bounds its recursion with enter() and records
 * subtree heights with done(), so neither this parser nor the evaluator can
 * be driven into a stack overflow.
 */
#include "tokenizer/chat_jinja_parser.h"

static jnode *parse_unary(parser *P, bool with_filter);

static bool parse_call_args(parser *P, jnode *n)
{
    vec args = {0}, kwn = {0}, kwv = {0};
    if (!expect_op(P, JO_LPAREN, "(")) return false;
    bool need_comma = false;
    while (!is_op(cur(P), JO_RPAREN)) {
        if (need_comma) {
            if (!expect_op(P, JO_COMMA, ",")) return false;
            if (is_op(cur(P), JO_RPAREN)) break;
        }
        if (is_op(cur(P), JO_MUL) || is_op(cur(P), JO_POW))
            return fail(P, cur(P), REALM_E_UNSUPPORTED, "*args and **kwargs in calls"), false;
        if (cur(P)->kind == JT_NAME && is_op(peek(P, 1), JO_ASSIGN)) {
            char *key = copy_name(P, cur(P)->p, cur(P)->n);
            next(P);
            next(P);
            jnode *v = realm__jp_expression(P, true);
            if (!key || !v || !VPUSH(P, kwn, key) || !VPUSH(P, kwv, v)) return false;
        } else {
            if (kwn.n)
                return fail(P, cur(P), REALM_E_FORMAT,
                            "positional argument after keyword argument"),
                       false;
            jnode *v = realm__jp_expression(P, true);
            if (!v || !VPUSH(P, args, v)) return false;
        }
        need_comma = true;
    }
    next(P);
    n->args = (jnode **)args.v;
    n->n_args = args.n;
    n->kwnames = (const char **)kwn.v;
    n->kwargs = (jnode **)kwv.v;
    n->n_kwargs = kwv.n;
    return true;
}

/* name[.name...] of a filter or test, into buf. */
static bool dotted_name(parser *P, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        const jtok *t = cur(P);
        if (t->kind != JT_NAME) return fail(P, t, REALM_E_FORMAT, "expected a name"), false;
        if (len + t->n + 2 > cap) return fail(P, t, REALM_E_FORMAT, "name too long"), false;
        memcpy(buf + len, t->p, t->n);
        len += t->n;
        buf[len] = '\0';
        next(P);
        if (!is_op(cur(P), JO_DOT)) return true;
        buf[len++] = '.';
        next(P);
    }
}

jnode *realm__jp_filter(parser *P, jnode *input)
{
    while (is_op(cur(P), JO_PIPE)) {
        next(P);
        const jtok *at = cur(P);
        char name[64];
        if (!dotted_name(P, name, sizeof name)) return NULL;
        jnode *f = mk(P, JN_FILTER, at);
        if (!f) return NULL;
        f->fn = realm__jinja_filter_find(name, strlen(name));
        if (f->fn < 0)
            return fail(P, at, REALM_E_UNSUPPORTED, "filter '%s' is not supported", name);
        f->str = copy_name(P, name, strlen(name));
        f->a = input;
        if (is_op(cur(P), JO_LPAREN) && !parse_call_args(P, f)) return NULL;
        if (!(input = done(P, f))) return NULL;
    }
    return input;
}

static jnode *parse_postfix(parser *P, jnode *n);
static jnode *parse_primary(parser *P);

static jnode *parse_test(parser *P, jnode *input)
{
    const jtok *at = cur(P);
    next(P); /* is */
    bool negated = is_name(cur(P), "not");
    if (negated) next(P);
    char name[64];
    const jtok *name_at = cur(P);
    if (!dotted_name(P, name, sizeof name)) return NULL;
    jnode *t = mk(P, JN_TEST, at);
    if (!t) return NULL;
    t->fn = realm__jinja_test_find(name, strlen(name));
    if (t->fn < 0) return fail(P, name_at, REALM_E_UNSUPPORTED, "test '%s' is not supported", name);
    t->str = copy_name(P, name, strlen(name));
    t->a = input;
    const jtok *c = cur(P);
    static const char *const not_args[] = {"else", "or", "and", NULL};
    if (is_op(c, JO_LPAREN)) {
        if (!parse_call_args(P, t)) return NULL;
    } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT ||
                c->kind == JT_FLOAT || is_op(c, JO_LBRACKET) || is_op(c, JO_LBRACE)) &&
               !is_name_in(c, not_args)) {
        if (is_name(c, "is"))
            return fail(P, c, REALM_E_FORMAT, "cannot chain multiple tests with is");
        jnode *arg = parse_primary(P);
        if (!arg || !(arg = parse_postfix(P, arg))) return NULL;
        t->args = realm__ja_alloc(P->a, sizeof *t->args);
        if (!t->args) return oom(P);
        t->args[0] = arg;
        t->n_args = 1;
    }
    if (!done(P, t)) return NULL;
    if (!negated) return t;
    jnode *n = mk(P, JN_NOT, at);
    if (!n) return NULL;
    n->a = t;
    return done(P, n);
}

static jnode *parse_subscribed(parser *P)
{
    const jtok *at = cur(P);
    jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(P), JO_COLON)) {
        next(P);
    } else {
        jnode *e = realm__jp_expression(P, true);
        if (!e || !is_op(cur(P), JO_COLON)) return e;
        next(P);
        parts[0] = e;
    }
    if (!is_op(cur(P), JO_COLON) && !is_op(cur(P), JO_RBRACKET) && !is_op(cur(P), JO_COMMA))
        if (!(parts[1] = realm__jp_expression(P, true))) return NULL;
    if (is_op(cur(P), JO_COLON)) {
        next(P);
        if (!is_op(cur(P), JO_RBRACKET) && !is_op(cur(P), JO_COMMA))
            if (!(parts[2] = realm__jp_expression(P, true))) return NULL;
    }
    jnode *s = mk(P, JN_SLICE, at);
    if (!s) return NULL;
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    return done(P, s);
}

static jnode *parse_subscript(parser *P, jnode *obj)
{
    const jtok *at = cur(P);
    if (is_op(at, JO_DOT)) {
        next(P);
        const jtok *t = cur(P);
        if (t->kind == JT_NAME) {
            next(P);
            jnode *n = mk(P, JN_GETATTR, at);
            if (!n || !(n->str = copy_name(P, t->p, t->n))) return NULL;
            n->a = obj;
            return done(P, n);
        }
        if (t->kind != JT_INT) return fail(P, t, REALM_E_FORMAT, "expected name or number");
        next(P);
        jnode *k = mk(P, JN_CONST, t), *n = mk(P, JN_GETITEM, at);
        if (!k || !n) return NULL;
        k->value = jv_int(t->i);
        n->a = obj;
        n->b = done(P, k);
        return done(P, n);
    }
    next(P); /* [ */
    vec idx = {0};
    while (!is_op(cur(P), JO_RBRACKET)) {
        if (idx.n && !expect_op(P, JO_COMMA, ",")) return NULL;
        jnode *e = parse_subscribed(P);
        if (!e || !VPUSH(P, idx, e)) return NULL;
    }
    next(P);
    jnode *n = mk(P, JN_GETITEM, at);
    if (!n) return NULL;
    n->a = obj;
    if (idx.n == 1) {
        n->b = idx.v[0];
    } else {
        jnode *t = mk(P, JN_TUPLE, at);
        if (!t) return NULL;
        t->args = (jnode **)idx.v;
        t->n_args = idx.n;
        if (!(n->b = done(P, t))) return NULL;
    }
    return done(P, n);
}

static jnode *parse_postfix(parser *P, jnode *n)
{
    while (n) {
        const jtok *t = cur(P);
        if (is_op(t, JO_DOT) || is_op(t, JO_LBRACKET)) {
            n = parse_subscript(P, n);
        } else if (is_op(t, JO_LPAREN)) {
            jnode *call = mk(P, JN_CALL, t);
            if (!call) return NULL;
            call->a = n;
            if (!parse_call_args(P, call)) return NULL;
            n = done(P, call);
        } else {
            break;
        }
    }
    return n;
}

static jnode *parse_filter_expr(parser *P, jnode *n)
{
    while (n) {
        const jtok *t = cur(P);
        if (is_op(t, JO_PIPE)) {
            n = realm__jp_filter(P, n);
        } else if (is_name(t, "is")) {
            n = parse_test(P, n);
        } else if (is_op(t, JO_LPAREN)) {
            jnode *call = mk(P, JN_CALL, t);
            if (!call) return NULL;
            call->a = n;
            if (!parse_call_args(P, call)) return NULL;
            n = done(P, call);
        } else {
            break;
        }
    }
    return n;
}

static jnode *parse_list_or_dict(parser *P, bool dict)
{
    const jtok *at = cur(P);
    jop close = dict ? JO_RBRACE : JO_RBRACKET;
    next(P);
    vec keys = {0}, vals = {0};
    while (!is_op(cur(P), close)) {
        if (keys.n && !expect_op(P, JO_COMMA, ",")) return NULL;
        if (is_op(cur(P), close)) break;
        jnode *k = realm__jp_expression(P, true);
        if (!k || !VPUSH(P, keys, k)) return NULL;
        if (dict) {
            if (!expect_op(P, JO_COLON, ":")) return NULL;
            jnode *v = realm__jp_expression(P, true);
            if (!v || !VPUSH(P, vals, v)) return NULL;
        }
    }
    next(P);
    jnode *n = mk(P, dict ? JN_DICT : JN_LIST, at);
    if (!n) return NULL;
    n->args = (jnode **)keys.v;
    n->n_args = keys.n;
    n->kwargs = (jnode **)vals.v;
    n->n_kwargs = vals.n;
    return done(P, n);
}

static jnode *parse_primary(parser *P)
{
    const jtok *t = cur(P);
    jnode *n;
    switch (t->kind) {
    case JT_NAME:
        next(P);
        if (!(n = mk(P, JN_CONST, t))) return NULL;
        if (is_name(t, "true") || is_name(t, "True"))
            n->value = jv_bool(true);
        else if (is_name(t, "false") || is_name(t, "False"))
            n->value = jv_bool(false);
        else if (is_name(t, "none") || is_name(t, "None"))
            n->value = jv_none();
        else {
            n->kind = JN_NAME;
            if (!(n->str = copy_name(P, t->p, t->n))) return NULL;
        }
        return done(P, n);
    case JT_STRING: {
        /* adjacent literals concatenate, as in Python */
        size_t len = 0, k;
        for (k = P->i; P->t[k].kind == JT_STRING; k++)
            len += P->t[k].n;
        char *s = realm__ja_alloc(P->a, len + 1);
        if (!s || !(n = mk(P, JN_CONST, t))) return oom(P);
        for (len = 0; cur(P)->kind == JT_STRING; next(P)) {
            memcpy(s + len, cur(P)->p, cur(P)->n);
            len += cur(P)->n;
        }
        n->value = jv_str(s, len);
        return done(P, n);
    }
    case JT_INT:
    case JT_FLOAT:
        next(P);
        if (!(n = mk(P, JN_CONST, t))) return NULL;
        n->value = t->kind == JT_INT ? jv_int(t->i) : jv_float(t->f);
        return done(P, n);
    case JT_OP:
        if (t->op == JO_LPAREN) {
            next(P);
            n = realm__jp_tuple(P, false, true, NULL, true);
            if (!n || !expect_op(P, JO_RPAREN, ")")) return NULL;
            return n;
        }
        if (t->op == JO_LBRACKET) return parse_list_or_dict(P, false);
        if (t->op == JO_LBRACE) return parse_list_or_dict(P, true);
        break;
    default:
        break;
    }
    return fail(P, t, REALM_E_FORMAT, "unexpected %s", describe(t));
}

static jnode *parse_unary(parser *P, bool with_filter)
{
    if (!enter(P)) return NULL;
    const jtok *t = cur(P);
    jnode *n;
    if (is_op(t, JO_SUB) || is_op(t, JO_ADD)) {
        next(P);
        jnode *operand = parse_unary(P, false);
        if (!operand || !(n = mk(P, is_op(t, JO_SUB) ? JN_NEG : JN_POS, t))) return NULL;
        n->a = operand;
        n = done(P, n);
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static jnode *binop(parser *P, jn_kind kind, jop op, const jtok *at, jnode *a, jnode *b)
{
    if (!a || !b) return NULL;
    jnode *n = mk(P, kind, at);
    if (!n) return NULL;
    n->op = op;
    n->a = a;
    n->b = b;
    return done(P, n);
}

static jnode *parse_pow(parser *P)
{
    jnode *n = parse_unary(P, true);
    while (n && is_op(cur(P), JO_POW)) {
        const jtok *at = cur(P);
        next(P);
        n = binop(P, JN_BINOP, JO_POW, at, n, parse_unary(P, true));
    }
    return n;
}

static jnode *parse_math2(parser *P)
{
    jnode *n = parse_pow(P);
    while (n) {
        const jtok *at = cur(P);
        if (!(is_op(at, JO_MUL) || is_op(at, JO_DIV) || is_op(at, JO_FLOORDIV) ||
              is_op(at, JO_MOD)))
            break;
        next(P);
        n = binop(P, JN_BINOP, at->op, at, n, parse_pow(P));
    }
    return n;
}

static jnode *parse_concat(parser *P)
{
    const jtok *at = cur(P);
    jnode *first = parse_math2(P);
    if (!first || !is_op(cur(P), JO_TILDE)) return first;
    vec parts = {0};
    if (!VPUSH(P, parts, first)) return NULL;
    while (is_op(cur(P), JO_TILDE)) {
        next(P);
        jnode *e = parse_math2(P);
        if (!e || !VPUSH(P, parts, e)) return NULL;
    }
    jnode *n = mk(P, JN_CONCAT, at);
    if (!n) return NULL;
    n->args = (jnode **)parts.v;
    n->n_args = parts.n;
    return done(P, n);
}

static jnode *parse_math1(parser *P)
{
    jnode *n = parse_concat(P);
    while (n && (is_op(cur(P), JO_ADD) || is_op(cur(P), JO_SUB))) {
        const jtok *at = cur(P);
        next(P);
        n = binop(P, JN_BINOP, at->op, at, n, parse_concat(P));
    }
    return n;
}

static jnode *parse_compare(parser *P)
{
    const jtok *at = cur(P);
    jnode *first = parse_math1(P);
    vec operands = {0};
    jop ops[64];
    while (first) {
        const jtok *t = cur(P);
        jop op;
        if (t->kind == JT_OP && (t->op == JO_EQ || t->op == JO_NE || t->op == JO_LT ||
                                 t->op == JO_LE || t->op == JO_GT || t->op == JO_GE)) {
            op = t->op;
            next(P);
        } else if (is_name(t, "in")) {
            op = JO_IN;
            next(P);
        } else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = JO_NOTIN;
            next(P);
            next(P);
        } else {
            break;
        }
        if (operands.n == sizeof ops / sizeof ops[0])
            return fail(P, t, REALM_E_RANGE, "comparison chain too long");
        ops[operands.n] = op;
        jnode *e = parse_math1(P);
        if (!e || !VPUSH(P, operands, e)) return NULL;
    }
    if (!first || operands.n == 0) return first;
    jnode *n = mk(P, JN_COMPARE, at);
    if (!n || !(n->ops = realm__ja_alloc(P->a, operands.n * sizeof *n->ops))) return oom(P);
    memcpy(n->ops, ops, operands.n * sizeof *n->ops);
    n->a = first;
    n->args = (jnode **)operands.v;
    n->n_args = operands.n;
    return done(P, n);
}

static jnode *parse_not(parser *P)
{
    if (!is_name(cur(P), "not")) return parse_compare(P);
    if (!enter(P)) return NULL;
    const jtok *at = cur(P);
    next(P);
    jnode *operand = parse_not(P), *n = NULL;
    if (operand && (n = mk(P, JN_NOT, at))) {
        n->a = operand;
        n = done(P, n);
    }
    P->depth--;
    return n;
}

static jnode *parse_and(parser *P)
{
    jnode *n = parse_not(P);
    while (n && is_name(cur(P), "and")) {
        const jtok *at = cur(P);
        next(P);
        n = binop(P, JN_AND, JO_COUNT, at, n, parse_not(P));
    }
    return n;
}

static jnode *parse_or(parser *P)
{
    jnode *n = parse_and(P);
    while (n && is_name(cur(P), "or")) {
        const jtok *at = cur(P);
        next(P);
        n = binop(P, JN_OR, JO_COUNT, at, n, parse_and(P));
    }
    return n;
}

static jnode *parse_condexpr(parser *P)
{
    if (!enter(P)) return NULL;
    jnode *n = parse_or(P);
    while (n && is_name(cur(P), "if")) {
        const jtok *at = cur(P);
        next(P);
        jnode *test = parse_or(P), *alt = NULL;
        if (!test) return NULL;
        if (is_name(cur(P), "else")) {
            next(P);
            if (!(alt = parse_condexpr(P))) return NULL;
        }
        jnode *c = mk(P, JN_COND, at);
        if (!c) return NULL;
        c->a = test;
        c->b = n;
        c->c = alt;
        n = done(P, c);
    }
    P->depth--;
    return n;
}

jnode *realm__jp_expression(parser *P, bool with_condexpr)
{
    return with_condexpr ? parse_condexpr(P) : parse_or(P);
}

static bool is_tuple_end(const parser *P, const char *const *extra_end)
{
    const jtok *t = cur(P);
    return t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || is_op(t, JO_RPAREN) ||
           is_name_in(t, extra_end);
}

jnode *realm__jp_tuple(parser *P, bool simplified, bool with_condexpr, const char *const *extra_end,
                       bool explicit_parens)
{
    const jtok *at = cur(P);
    vec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n && !expect_op(P, JO_COMMA, ",")) return NULL;
        if (is_tuple_end(P, extra_end)) break;
        jnode *e = simplified ? parse_primary(P) : realm__jp_expression(P, with_condexpr);
        if (!e || !VPUSH(P, items, e)) return NULL;
        if (!is_op(cur(P), JO_COMMA)) break;
        is_tuple = true;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens)
            return fail(P, cur(P), REALM_E_FORMAT, "expected an expression, got %s",
                        describe(cur(P)));
    }
    jnode *n = mk(P, JN_TUPLE, at);
    if (!n) return NULL;
    n->args = (jnode **)items.v;
    n->n_args = items.n;
    return done(P, n);
}
