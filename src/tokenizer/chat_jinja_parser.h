/*
 * tokenizer/chat_jinja_parser.h — private to chat_jinja_parse*.c: the parser
 * state and the token/node helpers the statement parser (chat_jinja_parse.c)
 * and the expression parser (chat_jinja_parse_expr.c) share. Errors are
 * sticky: the first one is recorded in P->err and every later helper returns
 * NULL/false, so callers just propagate failure.
 */
#ifndef REALM_TOKENIZER_CHAT_JINJA_PARSER_H
#define REALM_TOKENIZER_CHAT_JINJA_PARSER_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer/chat_jinja_impl.h"

typedef struct parser {
    const jtok *t;
    size_t n, i;
    jarena *a;
    realm_error *err;
    bool failed;
    realm_status status;
    int depth, max_guard; /* C recursion of the parser */
    int max_node_depth;   /* height of a subtree, i.e. the evaluator's recursion */
    int loop_depth;
} parser;

static inline const jtok *cur(const parser *P)
{
    return &P->t[P->i];
}
static inline const jtok *peek(const parser *P, size_t k)
{
    return &P->t[P->i + k < P->n ? P->i + k : P->n - 1];
}
static inline void next(parser *P)
{
    if (P->i + 1 < P->n) P->i++;
}
static inline bool is_op(const jtok *t, jop op)
{
    return t->kind == JT_OP && t->op == op;
}
static inline bool is_name(const jtok *t, const char *s)
{
    return t->kind == JT_NAME && t->n == strlen(s) && !memcmp(t->p, s, t->n);
}
static inline bool is_name_in(const jtok *t, const char *const *names)
{
    for (; names && *names; names++)
        if (is_name(t, *names)) return true;
    return false;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline void *
fail(parser *P, const jtok *t, realm_status st, const char *fmt, ...)
{
    if (P->failed) return NULL;
    char msg[REALM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    realm_error_set(P->err, st, "template line %u: %s", (unsigned)t->line, msg);
    P->failed = true;
    P->status = st;
    return NULL;
}

static inline void *oom(parser *P)
{
    if (!P->failed) realm_error_set(P->err, REALM_E_NOMEM, "out of memory parsing the template");
    if (!P->failed) P->status = REALM_E_NOMEM;
    P->failed = true;
    return NULL;
}

static inline const char *describe(const jtok *t)
{
    switch (t->kind) {
    case JT_DATA:
        return "template data";
    case JT_VAR_BEGIN:
        return "'{{'";
    case JT_VAR_END:
        return "end of print statement";
    case JT_BLOCK_BEGIN:
        return "'{%'";
    case JT_BLOCK_END:
        return "end of statement block";
    case JT_NAME:
        return "name";
    case JT_STRING:
        return "string";
    case JT_INT:
        return "integer";
    case JT_FLOAT:
        return "float";
    case JT_OP:
        return "operator";
    default:
        return "end of template";
    }
}

static inline bool expect_op(parser *P, jop op, const char *what)
{
    if (is_op(cur(P), op)) {
        next(P);
        return true;
    }
    fail(P, cur(P), REALM_E_FORMAT, "expected '%s', got %s", what, describe(cur(P)));
    return false;
}

static inline bool expect_kind(parser *P, jtok_kind k, const char *what)
{
    if (cur(P)->kind == k) {
        next(P);
        return true;
    }
    fail(P, cur(P), REALM_E_FORMAT, "expected %s, got %s", what, describe(cur(P)));
    return false;
}

static inline char *copy_name(parser *P, const char *p, size_t n)
{
    char *s = realm__ja_alloc(P->a, n + 1);
    if (!s) return oom(P);
    memcpy(s, p, n);
    return s;
}

static inline jnode *mk(parser *P, jn_kind kind, const jtok *at)
{
    jnode *n = realm__ja_alloc(P->a, sizeof *n);
    if (!n) return oom(P);
    n->kind = kind;
    n->line = at->line;
    return n;
}

/* Append x to a growable array in the arena. */
static inline bool push(parser *P, void ***arr, size_t *n, size_t *cap, void *x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        void **p = realm__ja_alloc(P->a, c * sizeof *p);
        if (!p) return oom(P), false;
        if (*n) memcpy(p, *arr, *n * sizeof *p);
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = x;
    return true;
}

typedef struct vec {
    void **v;
    size_t n, cap;
} vec;
#define VPUSH(P, vv, x) push((P), &(vv).v, &(vv).n, &(vv).cap, (void *)(x))

static inline int depth_of(const jnode *n)
{
    return n ? n->depth : 0;
}

/* Record the subtree height; fails past the limit. */
static inline jnode *done(parser *P, jnode *n)
{
    if (!n) return NULL;
    int d = depth_of(n->a);
    if (depth_of(n->b) > d) d = depth_of(n->b);
    if (depth_of(n->c) > d) d = depth_of(n->c);
    for (size_t i = 0; i < n->n_list; i++)
        if (depth_of(n->list[i]) > d) d = depth_of(n->list[i]);
    for (size_t i = 0; i < n->n_args; i++)
        if (depth_of(n->args[i]) > d) d = depth_of(n->args[i]);
    for (size_t i = 0; i < n->n_kwargs; i++)
        if (depth_of(n->kwargs[i]) > d) d = depth_of(n->kwargs[i]);
    n->depth = d + 1;
    if (n->depth > P->max_node_depth) {
        const jtok at = {.line = n->line};
        return fail(P, &at, REALM_E_RANGE, "template nested more than %d levels deep",
                    P->max_node_depth);
    }
    return n;
}

static inline bool enter(parser *P)
{
    if (++P->depth > P->max_guard) {
        fail(P, cur(P), REALM_E_RANGE, "template nested more than %d levels deep",
             P->max_node_depth);
        return false;
    }
    return true;
}

/* Expressions (chat_jinja_parse_expr.c), as Jinja2's parser names them. */
jnode *realm__jp_expression(parser *P, bool with_condexpr);
jnode *realm__jp_tuple(parser *P, bool simplified, bool with_condexpr, const char *const *extra_end,
                       bool explicit_parens);
/* The filter chain `| f(args) | g` applied to input (NULL in a set block). */
jnode *realm__jp_filter(parser *P, jnode *input);

#endif
