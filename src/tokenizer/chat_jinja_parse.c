/*
 * tokenizer/chat_jinja_parse.c — tokens → syntax tree, following Jinja2's
 * grammar and operator precedence (lowest first):
 *
 *   a if b else c  |  or  |  and  |  not  |  == != < <= > >= in, not in (chained)
 *   + -  |  ~  |  * / // %  |  ** (left-associative, as in Jinja)  |  unary - +
 *   primary: name, literal, (tuple), [list], {dict}
 *   postfix: .attr  [index or slice]  (call)   then filters |f(args) and tests `is [not] t`
 *
 * Statements: if/elif/else, for (tuple targets, `if` filter, else), set (name,
 * tuple, namespace attribute, block form with filters), macro, break/continue
 * (transformers loads the loopcontrols extension) and transformers' own
 * {% generation %}. Other tags (include, extends, call, filter, ...) are
 * rejected here, as are filters and tests the subset lacks. Depth limits keep
 * both this recursive parser and the evaluator's recursion bounded.
 */
#include "tokenizer/chat_jinja_parser.h"

/* ---- statements ---- */

static jnode *parse_statement(parser *P);

/* Statements up to one of the end tags; the stream stops on that tag's name. */
static jnode *subparse(parser *P, const char *const *ends)
{
    jnode *blk = mk(P, JN_BLOCK, cur(P));
    vec body = {0};
    if (!blk) return NULL;
    for (;;) {
        const jtok *t = cur(P);
        jnode *s = NULL;
        if (t->kind == JT_EOF) break;
        if (t->kind == JT_DATA) {
            if ((s = mk(P, JN_TEXT, t))) {
                s->str = t->p;
                s->len = t->n;
            }
            next(P);
        } else if (t->kind == JT_VAR_BEGIN) {
            next(P);
            jnode *e = realm__jp_tuple(P, false, true, NULL, false);
            if (!e || !expect_kind(P, JT_VAR_END, "'}}'")) return NULL;
            if ((s = mk(P, JN_OUTPUT, t))) s->a = e;
        } else if (t->kind == JT_BLOCK_BEGIN) {
            next(P);
            if (ends && is_name_in(cur(P), ends)) break;
            s = parse_statement(P);
            if (!s || !expect_kind(P, JT_BLOCK_END, "'%}'")) return NULL;
        } else {
            return fail(P, t, REALM_E_FORMAT, "unexpected %s", describe(t));
        }
        if (s && (s->kind == JN_TEXT || s->kind == JN_OUTPUT)) s = done(P, s);
        if (!s || !VPUSH(P, body, s)) return NULL;
    }
    blk->list = (jnode **)body.v;
    blk->n_list = body.n;
    return done(P, blk);
}

static jnode *parse_statements(parser *P, const char *const *ends, bool drop_needle)
{
    if (is_op(cur(P), JO_COLON)) next(P);
    if (!expect_kind(P, JT_BLOCK_END, "'%}'")) return NULL;
    jnode *blk = subparse(P, ends);
    if (!blk) return NULL;
    if (cur(P)->kind == JT_EOF) {
        char want[128] = "";
        for (const char *const *e = ends; *e; e++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'",
                     e == ends ? "" : " or ", *e);
        return fail(P, cur(P), REALM_E_FORMAT, "unexpected end of template, expected %s", want);
    }
    if (drop_needle) next(P);
    return blk;
}

static jnode *parse_if(parser *P)
{
    static const char *const body_end[] = {"elif", "else", "endif", NULL};
    static const char *const else_end[] = {"endif", NULL};
    jnode *res = mk(P, JN_IF, cur(P)), *n = res;
    if (!res) return NULL;
    next(P);
    int d = 0;
    for (;;) {
        jnode *body;
        if (!(n->a = realm__jp_tuple(P, false, false, NULL, false)) ||
            !(body = parse_statements(P, body_end, false)))
            return NULL;
        n->list = body->list;
        n->n_list = body->n_list;
        if (n->a->depth > d) d = n->a->depth;
        if (body->depth > d) d = body->depth;
        bool elif = is_name(cur(P), "elif"), els = is_name(cur(P), "else");
        next(P);
        if (elif) {
            if (!(n->b = mk(P, JN_IF, cur(P)))) return NULL;
            n = n->b;
            continue;
        }
        if (els) {
            if (!(res->c = parse_statements(P, else_end, true))) return NULL;
            if (res->c->depth > d) d = res->c->depth;
        }
        break;
    }
    /* the elif chain runs as a loop, so only the deepest branch counts */
    res->depth = d + 1;
    if (res->depth > P->max_node_depth)
        return fail(P, cur(P), REALM_E_RANGE, "template nested more than %d levels deep",
                    P->max_node_depth);
    return res;
}

static bool parse_names(parser *P, jnode *n, const char *const *extra_end)
{
    vec names = {0};
    for (;;) {
        const jtok *t = cur(P);
        if (t->kind != JT_NAME)
            return fail(P, t, REALM_E_FORMAT, "expected a variable name"), false;
        char *s = copy_name(P, t->p, t->n);
        if (!s || !VPUSH(P, names, s)) return false;
        next(P);
        if (!is_op(cur(P), JO_COMMA)) break;
        next(P);
        if (is_name_in(cur(P), extra_end) || is_op(cur(P), JO_ASSIGN)) break;
    }
    n->names = (const char **)names.v;
    n->n_names = names.n;
    return true;
}

static jnode *parse_for(parser *P)
{
    static const char *const in_end[] = {"in", NULL}, *const rec_end[] = {"recursive", NULL};
    static const char *const body_end[] = {"endfor", "else", NULL}, *const else_end[] = {"endfor",
                                                                                         NULL};
    jnode *n = mk(P, JN_FOR, cur(P));
    if (!n) return NULL;
    next(P);
    if (!parse_names(P, n, in_end)) return NULL;
    if (!is_name(cur(P), "in")) return fail(P, cur(P), REALM_E_FORMAT, "expected 'in'");
    next(P);
    if (!(n->a = realm__jp_tuple(P, false, false, rec_end, false))) return NULL;
    if (is_name(cur(P), "if")) {
        next(P);
        if (!(n->b = realm__jp_expression(P, true))) return NULL;
    }
    if (is_name(cur(P), "recursive"))
        return fail(P, cur(P), REALM_E_UNSUPPORTED, "recursive for loops are not supported");
    P->loop_depth++;
    jnode *body = parse_statements(P, body_end, false);
    P->loop_depth--;
    if (!body) return NULL;
    n->list = body->list;
    n->n_list = body->n_list;
    bool els = is_name(cur(P), "else");
    next(P);
    if (els && !(n->c = parse_statements(P, else_end, true))) return NULL;
    return n;
}

static jnode *parse_set(parser *P)
{
    static const char *const end[] = {"endset", NULL};
    const jtok *at = cur(P);
    next(P);
    jnode *n = mk(P, JN_SET, at);
    if (!n) return NULL;
    if (cur(P)->kind == JT_NAME && is_op(peek(P, 1), JO_DOT)) {
        /* namespace attribute: set ns.attr = value */
        n->kind = JN_NSSET;
        if (!(n->str = copy_name(P, cur(P)->p, cur(P)->n))) return NULL;
        next(P);
        next(P);
        if (cur(P)->kind != JT_NAME) return fail(P, cur(P), REALM_E_FORMAT, "expected a name");
        if (!(n->names = realm__ja_alloc(P->a, sizeof *n->names))) return oom(P);
        if (!(n->names[0] = copy_name(P, cur(P)->p, cur(P)->n))) return NULL;
        n->n_names = 1;
        next(P);
        if (!is_op(cur(P), JO_ASSIGN))
            return fail(P, cur(P), REALM_E_UNSUPPORTED,
                        "block assignment to a namespace attribute");
    } else if (!parse_names(P, n, NULL)) {
        return NULL;
    }
    if (is_op(cur(P), JO_ASSIGN)) {
        next(P);
        n->a = realm__jp_tuple(P, false, true, NULL, false);
        return n->a ? n : NULL;
    }
    n->kind = JN_SETBLOCK;
    if (is_op(cur(P), JO_PIPE) && !(n->b = realm__jp_filter(P, NULL))) return NULL;
    jnode *body = parse_statements(P, end, true);
    if (!body) return NULL;
    n->list = body->list;
    n->n_list = body->n_list;
    return n;
}

static jnode *parse_macro(parser *P)
{
    static const char *const end[] = {"endmacro", NULL};
    jnode *n = mk(P, JN_MACRO, cur(P));
    if (!n) return NULL;
    next(P);
    if (cur(P)->kind != JT_NAME) return fail(P, cur(P), REALM_E_FORMAT, "expected a macro name");
    if (!(n->str = copy_name(P, cur(P)->p, cur(P)->n))) return NULL;
    next(P);
    if (!expect_op(P, JO_LPAREN, "(")) return NULL;
    vec names = {0}, defaults = {0};
    while (!is_op(cur(P), JO_RPAREN)) {
        if (names.n && !expect_op(P, JO_COMMA, ",")) return NULL;
        if (cur(P)->kind != JT_NAME)
            return fail(P, cur(P), REALM_E_FORMAT, "expected a parameter name");
        char *s = copy_name(P, cur(P)->p, cur(P)->n);
        next(P);
        jnode *def = NULL;
        if (is_op(cur(P), JO_ASSIGN)) {
            next(P);
            if (!(def = realm__jp_expression(P, true))) return NULL;
        } else if (defaults.n && defaults.v[defaults.n - 1]) {
            return fail(P, cur(P), REALM_E_FORMAT, "non-default argument follows default argument");
        }
        if (!s || !VPUSH(P, names, s) || !push(P, &defaults.v, &defaults.n, &defaults.cap, def))
            return NULL;
    }
    next(P);
    int loops = P->loop_depth;
    P->loop_depth = 0;
    jnode *body = parse_statements(P, end, true);
    P->loop_depth = loops;
    if (!body) return NULL;
    n->names = (const char **)names.v;
    n->n_names = names.n;
    n->args = (jnode **)defaults.v;
    n->n_args = defaults.n;
    n->list = body->list;
    n->n_list = body->n_list;
    return n;
}

static jnode *parse_statement(parser *P)
{
    static const char *const gen_end[] = {"endgeneration", NULL};
    static const char *const unsupported[] = {"include",    "import", "from",   "extends",
                                              "block",      "call",   "filter", "with",
                                              "autoescape", "do",     "trans",  NULL};
    const jtok *t = cur(P);
    if (t->kind != JT_NAME) return fail(P, t, REALM_E_FORMAT, "tag name expected");
    if (!enter(P)) return NULL;
    jnode *n;
    if (is_name(t, "if"))
        n = parse_if(P);
    else if (is_name(t, "for"))
        n = parse_for(P);
    else if (is_name(t, "set"))
        n = parse_set(P);
    else if (is_name(t, "macro"))
        n = parse_macro(P);
    else if (is_name(t, "break") || is_name(t, "continue")) {
        if (P->loop_depth == 0)
            return fail(P, t, REALM_E_FORMAT, "'%.*s' outside a loop", (int)t->n, t->p);
        n = mk(P, is_name(t, "break") ? JN_BREAK : JN_CONTINUE, t);
        next(P);
    } else if (is_name(t, "generation")) {
        /* transformers' marker for assistant tokens: renders its body */
        next(P);
        n = parse_statements(P, gen_end, true);
    } else if (is_name_in(t, unsupported)) {
        return fail(P, t, REALM_E_UNSUPPORTED, "the '%.*s' tag is not supported", (int)t->n, t->p);
    } else {
        return fail(P, t, REALM_E_FORMAT, "unknown tag '%.*s'", (int)t->n, t->p);
    }
    /* if computes its own height (its elif chain runs as a loop) */
    if (n && n->kind != JN_IF && n->kind != JN_BLOCK) n = done(P, n);
    P->depth--;
    return n;
}

realm_status realm__jinja_parse(jarena *a, const jtok *toks, size_t n_toks, int max_depth,
                                jnode **out, realm_error *err)
{
    /* Each nesting level costs a few parser frames; the syntax tree's height
     * (what the evaluator recurses on) gets twice the budget of plain nesting
     * so that long left-deep chains like a + b + c ... stay legal. */
    parser P = {.t = toks,
                .n = n_toks,
                .a = a,
                .err = err,
                .max_guard = 4 * max_depth,
                .max_node_depth = 2 * max_depth};
    jnode *root = subparse(&P, NULL);
    if (!root || P.failed) {
        if (!P.failed)
            return realm_error_set(err, REALM_E_INTERNAL, "template parser failed silently");
        return P.status;
    }
    *out = root;
    return REALM_OK;
}
