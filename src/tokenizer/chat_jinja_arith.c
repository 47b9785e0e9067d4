/*
 * tokenizer/chat_jinja_arith.c — Jinja's operators on values with Python's
 * semantics: + - * / // % ** on ints and floats (floor division and modulo
 * round toward negative infinity, as Python's do), + on strings and lists,
 * repetition with *, and `in`. Python ints are unbounded; ours are 64-bit, so
 * overflow is an error rather than a wrong number.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "tokenizer/chat_jinja_impl.h"

static realm_status overflow(jctx *c, uint32_t line)
{
    return realm__jerr(c, REALM_E_RANGE, line, "integer overflow (Python would use a big int)");
}

/* s repeated k times (k <= 0: empty). */
static realm_status repeat(jctx *c, uint32_t line, jv s, int64_t k, jv *out)
{
    if (k <= 0) {
        if (s.kind == JV_STR)
            *out = jv_str("", 0);
        else
            return realm__jv_list_new(c, 0, s.u.list->tuple, out);
        return REALM_OK;
    }
    size_t unit = s.kind == JV_STR ? s.u.s.n : s.u.list->n * sizeof(jv);
    if (unit && (uint64_t)k > c->arena.cap_bytes / unit) {
        c->arena.over_cap = true;
        return realm__jerr_alloc(c);
    }
    realm_status st;
    if (s.kind == JV_STR) {
        char *p = realm__ja_alloc(&c->arena, unit * (size_t)k + 1);
        if (!p) return realm__jerr_alloc(c);
        for (int64_t i = 0; i < k; i++)
            memcpy(p + unit * (size_t)i, s.u.s.p, unit);
        *out = jv_str(p, unit * (size_t)k);
        return REALM_OK;
    }
    size_t n = s.u.list->n;
    if ((st = realm__jv_list_new(c, n * (size_t)k, s.u.list->tuple, out))) return st;
    for (int64_t i = 0; i < k; i++)
        memcpy(out->u.list->items + n * (size_t)i, s.u.list->items, n * sizeof(jv));
    (void)line;
    return REALM_OK;
}

static const char *op_name(jop op)
{
    static const char *const names[] = {
        [JO_ADD] = "+", [JO_SUB] = "-", [JO_DIV] = "/", [JO_FLOORDIV] = "//",
        [JO_MUL] = "*", [JO_MOD] = "%", [JO_POW] = "**"};
    return op <= JO_POW ? names[op] : "?";
}

static realm_status int_binop(jctx *c, uint32_t line, jop op, int64_t x, int64_t y, jv *out)
{
    int64_t r;
    switch (op) {
    case JO_ADD:
        if (__builtin_add_overflow(x, y, &r)) return overflow(c, line);
        break;
    case JO_SUB:
        if (__builtin_sub_overflow(x, y, &r)) return overflow(c, line);
        break;
    case JO_MUL:
        if (__builtin_mul_overflow(x, y, &r)) return overflow(c, line);
        break;
    case JO_DIV:
        if (y == 0) return realm__jerr(c, REALM_E_INVALID, line, "division by zero");
        *out = jv_float((double)x / (double)y);
        return REALM_OK;
    case JO_FLOORDIV:
    case JO_MOD:
        if (y == 0)
            return realm__jerr(c, REALM_E_INVALID, line, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) return overflow(c, line);
        {
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q -= 1;
                m += y;
            }
            r = op == JO_FLOORDIV ? q : m;
        }
        break;
    case JO_POW:
        if (y < 0) {
            *out = jv_float(pow((double)x, (double)y));
            return REALM_OK;
        }
        if (x == 0 || x == 1)
            r = (x == 0 && y != 0) ? 0 : 1;
        else if (x == -1)
            r = (y % 2) ? -1 : 1;
        else /* |x| >= 2 overflows within 63 rounds, so y cannot make this loop long */
            for (r = 1; y > 0; y--)
                if (__builtin_mul_overflow(r, x, &r)) return overflow(c, line);
        break;
    default:
        return realm__jerr(c, REALM_E_INTERNAL, line, "bad operator");
    }
    *out = jv_int(r);
    return REALM_OK;
}

static realm_status float_binop(jctx *c, uint32_t line, jop op, double x, double y, jv *out)
{
    double r;
    switch (op) {
    case JO_ADD:
        r = x + y;
        break;
    case JO_SUB:
        r = x - y;
        break;
    case JO_MUL:
        r = x * y;
        break;
    case JO_DIV:
        if (y == 0) return realm__jerr(c, REALM_E_INVALID, line, "float division by zero");
        r = x / y;
        break;
    case JO_FLOORDIV:
    case JO_MOD:
        if (y == 0) return realm__jerr(c, REALM_E_INVALID, line, "float modulo by zero");
        {
            /* CPython's float_divmod, so results match to the last bit. */
            double mod = fmod(x, y), div = (x - mod) / y, fdiv;
            if (mod != 0) {
                if ((y < 0) != (mod < 0)) {
                    mod += y;
                    div -= 1.0;
                }
            } else {
                mod = copysign(0.0, y);
            }
            if (div != 0) {
                fdiv = floor(div);
                if (div - fdiv > 0.5) fdiv += 1.0;
            } else {
                fdiv = copysign(0.0, x / y);
            }
            r = op == JO_MOD ? mod : fdiv;
        }
        break;
    case JO_POW:
        r = pow(x, y);
        break;
    default:
        return realm__jerr(c, REALM_E_INTERNAL, line, "bad operator");
    }
    *out = jv_float(r);
    return REALM_OK;
}

realm_status realm__jv_binop(jctx *c, uint32_t line, jop op, jv a, jv b, jv *out)
{
    if (a.kind == JV_UNDEF) return realm__jerr_undefined(c, line, a);
    if (b.kind == JV_UNDEF) return realm__jerr_undefined(c, line, b);
    if (jv_is_num(a) && jv_is_num(b)) {
        if (jv_is_intlike(a) && jv_is_intlike(b))
            return int_binop(c, line, op, jv_as_int(a), jv_as_int(b), out);
        return float_binop(c, line, op, jv_as_float(a), jv_as_float(b), out);
    }
    if (op == JO_ADD && a.kind == JV_STR && b.kind == JV_STR) {
        if (a.u.s.n == 0) {
            *out = b;
            return REALM_OK;
        }
        if (b.u.s.n == 0) {
            *out = a;
            return REALM_OK;
        }
        char *p = realm__ja_alloc(&c->arena, a.u.s.n + b.u.s.n + 1);
        if (!p) return realm__jerr_alloc(c);
        memcpy(p, a.u.s.p, a.u.s.n);
        memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        *out = jv_str(p, a.u.s.n + b.u.s.n);
        return REALM_OK;
    }
    if (op == JO_ADD && a.kind == JV_LIST && b.kind == JV_LIST &&
        a.u.list->tuple == b.u.list->tuple) {
        realm_status st = realm__jv_list_new(c, a.u.list->n + b.u.list->n, a.u.list->tuple, out);
        if (st) return st;
        memcpy(out->u.list->items, a.u.list->items, a.u.list->n * sizeof(jv));
        memcpy(out->u.list->items + a.u.list->n, b.u.list->items, b.u.list->n * sizeof(jv));
        return REALM_OK;
    }
    if (op == JO_MUL && (a.kind == JV_STR || a.kind == JV_LIST) && jv_is_intlike(b))
        return repeat(c, line, a, jv_as_int(b), out);
    if (op == JO_MUL && (b.kind == JV_STR || b.kind == JV_LIST) && jv_is_intlike(a))
        return repeat(c, line, b, jv_as_int(a), out);
    if (op == JO_MOD && a.kind == JV_STR)
        return realm__jerr(c, REALM_E_UNSUPPORTED, line, "printf-style '%%' formatting");
    return realm__jerr(c, REALM_E_INVALID, line,
                       "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op),
                       realm__jv_type_name(a), realm__jv_type_name(b));
}

realm_status realm__jv_contains(jctx *c, uint32_t line, jv container, jv item, bool *out)
{
    switch (container.kind) {
    case JV_UNDEF:
        *out = false;
        return REALM_OK;
    case JV_STR:
        if (item.kind != JV_STR)
            return realm__jerr(c, REALM_E_INVALID, line,
                               "'in <string>' requires string as left operand, not %s",
                               realm__jv_type_name(item));
        *out = item.u.s.n == 0 ||
               realm__find(container.u.s.p, container.u.s.n, item.u.s.p, item.u.s.n) >= 0;
        return REALM_OK;
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < container.u.list->n && !*out; i++)
            *out = realm__jv_equal(container.u.list->items[i], item);
        return REALM_OK;
    case JV_DICT: {
        jv ignored;
        *out = realm__jv_dict_get(container, item, &ignored);
        return REALM_OK;
    }
    default:
        return realm__jerr(c, REALM_E_INVALID, line, "argument of type '%s' is not iterable",
                           realm__jv_type_name(container));
    }
}
