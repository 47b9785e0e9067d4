/*
 * tokenizer/chat_jinja_impl.h — private to the chat_jinja_*.c files: the
 * arena, values, tokens, syntax tree and render context of the Jinja subset.
 *
 * Memory: a compiled program owns one arena (syntax tree, string literals, the
 * normalised template text); a render owns another (every value it creates).
 * Values are never freed one by one: they die with their arena, so sharing
 * them needs no reference counts. Only namespaces are mutable, as in Jinja's
 * immutable sandbox.
 */
#ifndef REALM_TOKENIZER_CHAT_JINJA_IMPL_H
#define REALM_TOKENIZER_CHAT_JINJA_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "tokenizer/chat_jinja.h"

/* ---- arena ---- */

typedef struct jchunk jchunk;
typedef struct jarena {
    jchunk *head;
    size_t used_bytes; /* sum of chunk sizes */
    size_t cap_bytes;  /* allocation beyond this fails with over_cap set */
    bool over_cap;
} jarena;

void realm__ja_init(jarena *a, size_t cap_bytes);
void realm__ja_free(jarena *a);
/* 16-byte aligned, zeroed; NULL on failure (a->over_cap tells a limit from OOM). */
void *realm__ja_alloc(jarena *a, size_t size);

/* ---- growable byte buffer (realm_malloc'ed) with a size cap ---- */

typedef struct jbuf {
    char *p;
    size_t n, cap, max;
} jbuf;

/* Returns false when out of memory or past max (check b->n + len > b->max). */
bool realm__jb_put(jbuf *b, const char *s, size_t len);
bool realm__jb_putc(jbuf *b, char c);
void realm__jb_free(jbuf *b);

/* ---- values ---- */

typedef enum jv_kind {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,   /* list or tuple */
    JV_DICT,   /* immutable mapping, insertion-ordered */
    JV_NS,     /* namespace(): the one mutable object */
    JV_LOOP,   /* the `loop` variable of a for loop */
    JV_FUNC,   /* a global function (range, namespace, ...) */
    JV_METHOD, /* a method bound to its receiver ('x'.strip) */
    JV_MACRO,
    JV_KIND_COUNT
} jv_kind;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmethod jmethod;
typedef struct jnode jnode;

typedef struct jv {
    jv_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        jlist *list;
        jdict *dict; /* DICT and NS */
        jloop *loop;
        int func;
        jmethod *method;
        const jnode *macro;
        const char *undef_name; /* what was looked up, for messages; may be NULL */
    } u;
} jv;

struct jlist {
    size_t n;
    bool tuple;
    jv *items;
};

struct jdict {
    size_t n, cap;
    jv *keys;
    jv *vals;
};

struct jloop {
    const jv *items;
    size_t n, index0;
};

struct jmethod {
    jv self;
    const char *name;
};

static inline jv jv_undef(const char *name)
{
    return (jv){.kind = JV_UNDEF, .u.undef_name = name};
}
static inline jv jv_none(void)
{
    return (jv){.kind = JV_NONE};
}
static inline jv jv_bool(bool b)
{
    return (jv){.kind = JV_BOOL, .u.b = b};
}
static inline jv jv_int(int64_t i)
{
    return (jv){.kind = JV_INT, .u.i = i};
}
static inline jv jv_float(double f)
{
    return (jv){.kind = JV_FLOAT, .u.f = f};
}
static inline jv jv_str(const char *p, size_t n)
{
    return (jv){.kind = JV_STR, .u.s = {p, n}};
}

static inline bool jv_is_num(jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}
static inline bool jv_is_intlike(jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT;
}
/* Python: bool is an int subclass, so True + 1 == 2. */
static inline int64_t jv_as_int(jv v)
{
    return v.kind == JV_BOOL ? (int64_t)v.u.b : v.u.i;
}
static inline double jv_as_float(jv v)
{
    return v.kind == JV_FLOAT ? v.u.f : (double)jv_as_int(v);
}

/* ---- tokens ---- */

typedef enum jtok_kind {
    JT_DATA = 0,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
    JT_EOF
} jtok_kind;

typedef enum jop {
    JO_ADD = 0,
    JO_SUB,
    JO_DIV,
    JO_FLOORDIV,
    JO_MUL,
    JO_MOD,
    JO_POW,
    JO_TILDE,
    JO_LBRACKET,
    JO_RBRACKET,
    JO_LPAREN,
    JO_RPAREN,
    JO_LBRACE,
    JO_RBRACE,
    JO_EQ,
    JO_NE,
    JO_GT,
    JO_GE,
    JO_LT,
    JO_LE,
    JO_ASSIGN,
    JO_DOT,
    JO_COLON,
    JO_PIPE,
    JO_COMMA,
    JO_SEMI,
    /* comparison operators that are names, not symbols */
    JO_IN,
    JO_NOTIN,
    JO_COUNT
} jop;

typedef struct jtok {
    jtok_kind kind;
    jop op;
    uint32_t line;
    const char *p; /* DATA, NAME, STRING (unescaped, in the program arena) */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Tokens of src (normalised first: CRLF/CR → LF, one trailing newline
 * dropped). *toks is realm_malloc'ed; strings live in the arena. */
realm_status realm__jinja_lex(jarena *a, const char *src, size_t len, int max_depth, jtok **toks,
                              size_t *n_toks, realm_error *err);

/* ---- syntax tree ---- */

typedef enum jn_kind {
    /* statements */
    JN_BLOCK = 0, /* list: statements */
    JN_TEXT,      /* str/len: data */
    JN_OUTPUT,    /* a: expression */
    JN_IF,        /* a: test, list: body, b: next elif (JN_IF) or NULL, c: else block */
    JN_FOR,       /* names: targets, a: iterable, b: filter or NULL, list: body, c: else */
    JN_SET,       /* names: targets, a: value */
    JN_NSSET,     /* str: namespace variable, names[0]: attribute, a: value */
    JN_SETBLOCK,  /* names: targets, list: body, b: filter chain (input NULL) or NULL */
    JN_MACRO,     /* str: name, names: params, args: defaults (NULL entries), list: body */
    JN_BREAK,
    JN_CONTINUE,
    /* expressions */
    JN_CONST,   /* value */
    JN_NAME,    /* str */
    JN_GETATTR, /* a: object, str: attribute */
    JN_GETITEM, /* a: object, b: index (JN_SLICE for slices) */
    JN_SLICE,   /* a, b, c: start, stop, step (each may be NULL) */
    JN_CALL,    /* a: callee, args, kwnames/kwargs */
    JN_FILTER,  /* a: input (NULL in a set block), fn: filter id, args, kwargs */
    JN_TEST,    /* a: input, fn: test id, args, kwargs */
    JN_NOT,     /* a */
    JN_NEG,     /* a */
    JN_POS,     /* a */
    JN_BINOP,   /* op, a, b */
    JN_AND,     /* a, b */
    JN_OR,      /* a, b */
    JN_COMPARE, /* a: first, args: operands, ops */
    JN_CONCAT,  /* args */
    JN_COND,    /* a: test, b: then, c: else or NULL */
    JN_LIST,    /* args */
    JN_TUPLE,   /* args */
    JN_DICT,    /* args: keys, kwargs: values (kwnames unused) */
    JN_KIND_COUNT
} jn_kind;

struct jnode {
    jn_kind kind;
    jop op;
    int fn;
    uint32_t line;
    int depth; /* height of this subtree, bounded by the depth limit */
    const char *str;
    size_t len;
    jv value;
    jnode *a, *b, *c;
    jnode **list;
    size_t n_list;
    jnode **args;
    size_t n_args;
    const char **kwnames;
    jnode **kwargs;
    size_t n_kwargs;
    const char **names;
    size_t n_names;
    jop *ops;
};

/* Parse tokens into a JN_BLOCK (nodes in the arena). Unknown filters, tests
 * and tags are errors here, as in Jinja. */
realm_status realm__jinja_parse(jarena *a, const jtok *toks, size_t n_toks, int max_depth,
                                jnode **out, realm_error *err);

/* ---- render context ---- */

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
};

typedef struct jctx {
    jarena arena;
    jbuf *out;
    realm_error *err;
    const realm__jinja_limits *lim;
    unsigned long steps;
    int call_depth;
    jframe *top;
    jframe *root;           /* template-level variables (macros resolve free names here) */
    int loop_ctl;           /* 0, or JN_BREAK / JN_CONTINUE while one propagates */
    const jv *filter_input; /* the captured text a set block's filters apply to */
} jctx;

/* Record an error prefixed with the template line; returns st. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
realm_status
realm__jerr(jctx *c, realm_status st, uint32_t line, const char *fmt, ...);
/* The error for using an undefined value where Jinja raises. */
realm_status realm__jerr_undefined(jctx *c, uint32_t line, jv v);
/* The error for a failed arena allocation (limit or OOM). */
realm_status realm__jerr_alloc(jctx *c);
/* Count one step; fails past the limit. */
realm_status realm__jstep(jctx *c, uint32_t line);
/* The error for a failed jbuf write of len bytes: the output limit or memory. */
realm_status realm__jbuf_fail(jctx *c, const jbuf *b, size_t len);
/* Append to a jbuf or return that error (needs a jctx *c in scope). */
#define JPUT(b, s, n)                                                                              \
    do {                                                                                           \
        if (!realm__jb_put((b), (s), (n))) return realm__jbuf_fail(c, (b), (n));                   \
    } while (0)
#define JPUTS(b, s) JPUT(b, s, strlen(s))

/* ---- value operations (chat_jinja_value.c) ---- */

/* Python type name, for messages: 'str', 'int', 'NoneType', 'dict', ... */
const char *realm__jv_type_name(jv v);
bool realm__jv_truthy(jv v);
bool realm__jv_equal(jv a, jv b);
/* a < b etc. as Python orders them; *res is <0, 0 or >0. */
realm_status realm__jv_order(jctx *c, uint32_t line, jv a, jv b, int *res);
/* str(v) appended to b (undefined → ""); false when b is full or OOM. */
realm_status realm__jv_str_to(jctx *c, uint32_t line, jv v, jbuf *b);
/* str(v) as a value in the render arena. */
realm_status realm__jv_to_str(jctx *c, uint32_t line, jv v, jv *out);
/* json.dumps(v, ensure_ascii, indent (<0: None), separators, sort_keys). */
realm_status realm__jv_json_to(jctx *c, uint32_t line, jv v, bool ensure_ascii, int indent,
                               const char *item_sep, const char *key_sep, bool sort_keys, jbuf *b);
/* Copy a jbuf's bytes into the render arena as a string value. */
realm_status realm__jv_from_buf(jctx *c, const jbuf *b, jv *out);
realm_status realm__jv_str_new(jctx *c, const char *p, size_t n, jv *out);
realm_status realm__jv_list_new(jctx *c, size_t n, bool tuple, jv *out);
realm_status realm__jv_dict_new(jctx *c, size_t cap, jv_kind kind, jv *out);
/* Set key in a dict or namespace (replaces an existing key). */
realm_status realm__jv_dict_set(jctx *c, jv dict, jv key, jv val);
/* Look up key; false when absent. */
bool realm__jv_dict_get(jv dict, jv key, jv *out);
/* Code point at s (valid UTF-8 assumed; a broken byte reads as itself). */
uint32_t realm__utf8_cp_at(const char *s, size_t n, size_t *len);
/* Code points in s[0..n). */
size_t realm__utf8_count(const char *s, size_t n);
/* Byte offset of code point index cp (0..count) in s[0..n). */
size_t realm__utf8_offset(const char *s, size_t n, size_t cp);
/* Length of the Python whitespace character at s (0 when s is not one). */
size_t realm__py_space_len(const char *s, size_t n);
/* Length of the Python whitespace character ending at s[n-1], or 0. */
size_t realm__py_space_len_back(const char *s, size_t n);
/* Offset of needle in hay (memmem without _GNU_SOURCE), or -1. */
ptrdiff_t realm__find(const char *hay, size_t n, const char *needle, size_t m);
/* Elements to iterate over: list items, dict keys, string characters;
 * undefined gives none. */
realm_status realm__jv_iterate(jctx *c, uint32_t line, jv v, const jv **items, size_t *n);
/* len(v). */
realm_status realm__jv_len(jctx *c, uint32_t line, jv v, int64_t *out);
/* Jinja's getattr (attribute, then item) and getitem (item, then attribute). */
realm_status realm__jv_getattr(jctx *c, uint32_t line, jv obj, const char *name, jv *out);
realm_status realm__jv_getitem(jctx *c, uint32_t line, jv obj, jv key, jv *out);
/* obj[start:stop:step]; absent bounds are JV_NONE. */
realm_status realm__jv_slice(jctx *c, uint32_t line, jv obj, jv start, jv stop, jv step, jv *out);
/* Arithmetic with Python semantics (op: JO_ADD .. JO_POW). */
realm_status realm__jv_binop(jctx *c, uint32_t line, jop op, jv a, jv b, jv *out);
/* `a in b`. */
realm_status realm__jv_contains(jctx *c, uint32_t line, jv container, jv item, bool *out);

/* ---- Python str operations (chat_jinja_str.c) ---- */

enum { JS_LEFT = 1, JS_RIGHT = 2, JS_BOTH = 3 };
typedef enum js_case { JS_UPPER, JS_LOWER, JS_CAPITALIZE, JS_PY_TITLE, JS_JINJA_TITLE } js_case;

/* s.strip(chars) on the given sides; chars NONE/UNDEF: whitespace. */
realm_status realm__js_strip(jctx *c, uint32_t line, jv s, jv chars, int sides, jv *out);
realm_status realm__js_case(jctx *c, jv s, js_case mode, jv *out);
/* s.replace(old, rep, count) (count < 0: all). */
realm_status realm__js_replace(jctx *c, uint32_t line, jv s, jv old, jv rep, int64_t count,
                               jv *out);
/* s.split(sep, maxsplit) (sep NONE: runs of whitespace; maxsplit < 0: all). */
realm_status realm__js_split(jctx *c, uint32_t line, jv s, jv sep, int64_t maxsplit, jv *out);
/* s.find(sub) in code points, s.count(sub). */
int64_t realm__js_find(jv s, jv sub);
int64_t realm__js_count(jv s, jv sub);

/* ---- builtins (chat_jinja_builtins.c) ---- */

/* Filter / test ids by name, or -1. */
int realm__jinja_filter_find(const char *name, size_t len);
int realm__jinja_test_find(const char *name, size_t len);
/* Global function ids by name (range, namespace, ...), or -1. */
int realm__jinja_func_find(const char *name);
/* True when type `kind` has a method `name` (so getattr yields it). */
bool realm__jinja_has_method(jv self, const char *name);

typedef struct jargs {
    const jv *pos;
    size_t n_pos;
    const char *const *kwnames;
    const jv *kw;
    size_t n_kw;
} jargs;

/* Bind a builtin's arguments (after skip_pos positional ones) to named
 * parameters: slots[i] gets the value, or realm__jarg_missing's undefined. */
extern const char realm__jarg_missing[];
static inline bool realm__jarg_given(jv v)
{
    return !(v.kind == JV_UNDEF && v.u.undef_name == realm__jarg_missing);
}
realm_status realm__jargs_bind(jctx *c, uint32_t line, const char *what, const jargs *a,
                               const char *const *params, size_t n_params, size_t skip_pos,
                               jv *slots);
/* dict.items(): a list of (key, value) tuples. */
realm_status realm__jinja_dict_items(jctx *c, jv d, jv *out);

realm_status realm__jinja_filter(jctx *c, uint32_t line, int id, jv in, const jargs *a, jv *out);
realm_status realm__jinja_test(jctx *c, uint32_t line, int id, jv in, const jargs *a, bool *out);
/* Call a function, a bound method or (through the evaluator) a macro. */
realm_status realm__jinja_call(jctx *c, uint32_t line, jv fn, const jargs *a, jv *out);

/* ---- evaluator (chat_jinja_eval.c) ---- */

realm_status realm__jinja_eval(jctx *c, const jnode *n, jv *out);
realm_status realm__jinja_call_macro(jctx *c, uint32_t line, const jnode *m, const jargs *a,
                                     jv *out);

#endif
