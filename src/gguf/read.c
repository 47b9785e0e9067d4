/*
 * gguf/read.c — the validating GGUF reader.
 *
 * The format it parses (every integer little-endian, no implicit padding):
 *
 *   header       "GGUF"  u32 version (2 or 3)  u64 tensor_count  u64 kv_count
 *   kv           string key  u32 kind  value                          × kv_count
 *   tensor info  string name  u32 n_dims  u64 ne[n_dims]  u32 ggml_type
 *                u64 offset                                           × tensor_count
 *   padding      to a multiple of general.alignment (u32, default 32)
 *   data         tensor i occupies [data_start + offset_i, + size_i);
 *                offsets are multiples of the alignment
 *
 *   string       u64 len, len bytes (UTF-8 by convention, no NUL; not checked:
 *                tokenizers judge their own vocabularies)
 *   value        u8 i8 u16 i16 u32 i32 f32 bool(0|1) u64 i64 f64: 1-8 bytes
 *                string: as above
 *                array: u32 elem_kind  u64 count  count × element, where an
 *                element may itself be an array (depth <= REALM__GGUF_MAX_DEPTH)
 *
 * v1 (32-bit counts) is rejected; v2 and v3 are encoded identically (v3 only
 * permitted big-endian files, whose version field then reads byte-swapped and
 * which we reject with their own message).
 *
 * Decisions beyond the format text: a dimension of 0 (an empty tensor) is
 * rejected — ggml's own loader cannot handle it and no model needs it; empty
 * keys and tensor names are rejected (they could never be looked up); bools
 * must be 0 or 1; tensors may leave gaps but may not overlap; bytes after
 * the last tensor are allowed (ggml pads the last tensor).
 *
 * How: one forward pass with a bounds-checked cursor. Every count is checked
 * against the bytes left before anything is sized by it (each kv needs at
 * least 14 bytes, each tensor info 33, each array element its minimum
 * encoding), so a hostile count fails at once and memory stays within a
 * small multiple of the file size (~5x at worst, for files of tiny kvs).
 * Names are then sorted once: duplicates become neighbours and lookups are
 * binary searches with a worst case no input can degrade (a hash table could
 * be flooded with colliding names). The accessors that answer from the
 * result live in query.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "gguf/gguf_impl.h"

typedef unsigned long long ull; /* for printf: uint64_t has no portable C17 length modifier */

const uint8_t realm__gguf_kind_size[REALM_GGUF_KIND_COUNT] = {
    [REALM_GGUF_UINT8] = 1,   [REALM_GGUF_INT8] = 1,    [REALM_GGUF_UINT16] = 2,
    [REALM_GGUF_INT16] = 2,   [REALM_GGUF_UINT32] = 4,  [REALM_GGUF_INT32] = 4,
    [REALM_GGUF_FLOAT32] = 4, [REALM_GGUF_BOOL] = 1,    [REALM_GGUF_UINT64] = 8,
    [REALM_GGUF_INT64] = 8,   [REALM_GGUF_FLOAT64] = 8,
};

const char *const realm__gguf_kind_names[REALM_GGUF_KIND_COUNT] = {
    [REALM_GGUF_UINT8] = "u8",    [REALM_GGUF_INT8] = "i8",    [REALM_GGUF_UINT16] = "u16",
    [REALM_GGUF_INT16] = "i16",   [REALM_GGUF_UINT32] = "u32", [REALM_GGUF_INT32] = "i32",
    [REALM_GGUF_FLOAT32] = "f32", [REALM_GGUF_BOOL] = "bool",  [REALM_GGUF_STRING] = "string",
    [REALM_GGUF_ARRAY] = "array", [REALM_GGUF_UINT64] = "u64", [REALM_GGUF_INT64] = "i64",
    [REALM_GGUF_FLOAT64] = "f64",
};

/* Smallest encoding of one value of each kind: what a count is checked against. */
static const uint8_t kind_min_size[REALM_GGUF_KIND_COUNT] = {
    [REALM_GGUF_UINT8] = 1,   [REALM_GGUF_INT8] = 1,   [REALM_GGUF_UINT16] = 2,
    [REALM_GGUF_INT16] = 2,   [REALM_GGUF_UINT32] = 4, [REALM_GGUF_INT32] = 4,
    [REALM_GGUF_FLOAT32] = 4, [REALM_GGUF_BOOL] = 1,   [REALM_GGUF_STRING] = 8,
    [REALM_GGUF_ARRAY] = 12,  [REALM_GGUF_UINT64] = 8, [REALM_GGUF_INT64] = 8,
    [REALM_GGUF_FLOAT64] = 8,
};

#define KV_MIN_BYTES 14 /* u64 key length + 1-byte key + u32 kind + 1-byte value */
#define TENSOR_MIN_BYTES                                                                           \
    33 /* u64 name length + 1-byte name + u32 n_dims + u64 ne + u32 type + u64 offset */
#define NAME_SHOWN_MAX 80 /* longer names are cut in messages */

/* ---- the cursor and its messages ---- */

typedef enum entry_kind { ENTRY_HEADER, ENTRY_KV, ENTRY_TENSOR } entry_kind;

typedef struct parser {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    realm_error *err;
    entry_kind entry; /* what is being parsed, to prefix messages */
    int64_t entry_index;
    uint64_t entry_pos;
    realm_gguf_str entry_name;
} parser;

/* Copy a name for a message: cut long ones, replace control bytes so a
 * hostile name cannot forge log lines. */
static const char *show_name(realm_gguf_str s, char *buf, size_t buf_size)
{
    size_t n = s.len < NAME_SHOWN_MAX ? (size_t)s.len : NAME_SHOWN_MAX;
    if (n > buf_size - 4) n = buf_size - 4;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    strcpy(buf + n, s.len > n ? "..." : "");
    return buf;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static realm_status
fail(const parser *p, realm_status st, const char *fmt, ...)
{
    char msg[REALM_ERROR_MESSAGE_MAX], name[NAME_SHOWN_MAX + 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *what = p->entry == ENTRY_KV ? "kv" : "tensor";
    if (p->entry == ENTRY_HEADER) return realm_error_set(p->err, st, "GGUF header: %s", msg);
    if (!p->entry_name.ptr)
        return realm_error_set(p->err, st, "%s #%lld (header byte %llu): %s", what,
                               (long long)p->entry_index, (ull)p->entry_pos, msg);
    return realm_error_set(p->err, st, "%s '%s' (#%lld, header byte %llu): %s", what,
                           show_name(p->entry_name, name, sizeof name), (long long)p->entry_index,
                           (ull)p->entry_pos, msg);
}

static void enter(parser *p, entry_kind e, int64_t index, uint64_t pos, realm_gguf_str name)
{
    p->entry = e;
    p->entry_index = index;
    p->entry_pos = pos;
    p->entry_name = name;
}

static uint64_t left(const parser *p)
{
    return p->size - p->pos;
}

static realm_status need(const parser *p, uint64_t n, const char *what)
{
    if (n <= left(p)) return REALM_OK;
    return fail(p, REALM_E_FORMAT, "truncated: %s at byte %llu needs %llu bytes, %llu left", what,
                (ull)p->pos, (ull)n, (ull)left(p));
}

static realm_status read_u32(parser *p, uint32_t *v, const char *what)
{
    realm_status st = need(p, 4, what);
    if (st) return st;
    *v = (uint32_t)realm__gguf_ld_le(p->base + p->pos, 4);
    p->pos += 4;
    return REALM_OK;
}

static realm_status read_u64(parser *p, uint64_t *v, const char *what)
{
    realm_status st = need(p, 8, what);
    if (st) return st;
    *v = realm__gguf_ld_le(p->base + p->pos, 8);
    p->pos += 8;
    return REALM_OK;
}

static realm_status read_str(parser *p, realm_gguf_str *s, const char *what)
{
    uint64_t len;
    realm_status st = read_u64(p, &len, what);
    if (st) return st;
    if (len > left(p))
        return fail(p, REALM_E_FORMAT, "%s at byte %llu: length %llu exceeds the %llu bytes left",
                    what, (ull)(p->pos - 8), (ull)len, (ull)left(p));
    s->ptr = (const char *)(p->base + p->pos);
    s->len = len;
    p->pos += len;
    return REALM_OK;
}

static realm_status check_bools(const parser *p, uint64_t count)
{
    for (uint64_t j = 0; j < count; j++)
        if (p->base[p->pos + j] > 1)
            return fail(p, REALM_E_FORMAT, "bool at byte %llu is %u, not 0 or 1", (ull)(p->pos + j),
                        p->base[p->pos + j]);
    return REALM_OK;
}

static realm_status read_kind(parser *p, realm_gguf_kind *k, const char *what)
{
    uint32_t v;
    realm_status st = read_u32(p, &v, what);
    if (st) return st;
    if (v >= REALM_GGUF_KIND_COUNT)
        return fail(p, REALM_E_FORMAT, "%s %u at byte %llu is unknown (valid: 0..%d)", what, v,
                    (ull)(p->pos - 4), REALM_GGUF_KIND_COUNT - 1);
    *k = (realm_gguf_kind)v;
    return REALM_OK;
}

/* Validate one array starting at its element kind. kv is the top-level entry
 * (its string arrays get an offset index) or NULL for nested arrays. The work
 * is linear in bytes: every element consumes at least one byte. */
static realm_status parse_array(parser *p, int depth, realm__gguf_kv *kv)
{
    realm_gguf_kind ek;
    uint64_t count;
    realm_status st;
    if (depth > REALM__GGUF_MAX_DEPTH)
        return fail(p, REALM_E_FORMAT, "arrays nested deeper than %d levels at byte %llu",
                    REALM__GGUF_MAX_DEPTH, (ull)p->pos);
    if ((st = read_kind(p, &ek, "array element kind"))) return st;
    if ((st = read_u64(p, &count, "array count"))) return st;
    if (count > left(p) / kind_min_size[ek])
        return fail(p, REALM_E_FORMAT,
                    "array of %llu %s at byte %llu cannot fit: %u+ bytes each, %llu bytes left",
                    (ull)count, realm__gguf_kind_names[ek], (ull)(p->pos - 12), kind_min_size[ek],
                    (ull)left(p));
    if (kv) {
        kv->elem_kind = ek;
        kv->count = count;
    }
    if (realm__gguf_kind_size[ek]) {
        if (ek == REALM_GGUF_BOOL && (st = check_bools(p, count))) return st;
        p->pos += count * realm__gguf_kind_size[ek]; /* fits: checked against left() */
        return REALM_OK;
    }
    if (ek == REALM_GGUF_STRING) {
        uint64_t *offs = NULL;
        if (kv) {
            /* count <= file size / 8, so the index is at most the file's size */
            offs = realm_calloc((size_t)count, sizeof *offs);
            if (!offs) return fail(p, REALM_E_NOMEM, "no memory to index %llu strings", (ull)count);
            kv->str_offsets = offs;
        }
        for (uint64_t j = 0; j < count; j++) {
            realm_gguf_str s;
            if (offs) offs[j] = p->pos;
            if ((st = read_str(p, &s, "array string"))) return st;
        }
        return REALM_OK;
    }
    for (uint64_t j = 0; j < count; j++)
        if ((st = parse_array(p, depth + 1, NULL))) return st;
    return REALM_OK;
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static realm_status parse_kv(parser *p, realm_gguf_t *g, int64_t i)
{
    realm__gguf_kv *kv = &g->kv[i];
    realm_status st;
    realm_gguf_str key;
    enter(p, ENTRY_KV, i, p->pos, (realm_gguf_str){0});
    kv->header_pos = p->pos;
    if ((st = read_str(p, &key, "key"))) return st;
    if (key.len == 0) return fail(p, REALM_E_FORMAT, "empty key");
    kv->key = p->entry_name = key;
    if ((st = read_kind(p, &kv->kind, "value kind"))) return st;
    kv->raw = p->base + p->pos;
    uint64_t raw_pos = p->pos;
    if (kv->kind == REALM_GGUF_ARRAY) {
        if ((st = parse_array(p, 1, kv))) return st;
    } else if (kv->kind == REALM_GGUF_STRING) {
        realm_gguf_str s;
        if ((st = read_str(p, &s, "string value"))) return st;
    } else {
        if ((st = need(p, realm__gguf_kind_size[kv->kind], realm__gguf_kind_names[kv->kind])))
            return st;
        if (kv->kind == REALM_GGUF_BOOL && (st = check_bools(p, 1))) return st;
        p->pos += realm__gguf_kind_size[kv->kind];
    }
    kv->raw_size = p->pos - raw_pos;

    if (realm_gguf_str_eq(key, "general.alignment")) {
        if (kv->kind != REALM_GGUF_UINT32)
            return fail(p, REALM_E_FORMAT, "must be u32, is %s", realm__gguf_kind_names[kv->kind]);
        uint32_t a = (uint32_t)realm__gguf_ld_le(kv->raw, 4);
        if (!is_pow2(a)) return fail(p, REALM_E_FORMAT, "%u is not a power of two", a);
        g->alignment = a;
    }
    return REALM_OK;
}

/* "[576, 49152]" */
static void format_shape(char *buf, size_t size, uint32_t n_dims, const int64_t *ne)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < n_dims && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

realm_status realm__gguf_tensor_geometry(int64_t type, uint32_t n_dims, const int64_t *ne,
                                         int64_t *n_elements, uint64_t *size_bytes, char *why,
                                         size_t why_size)
{
    const realm_type_traits *tr = realm_type_traits_get(type);
    char shape[128];
    if (n_dims < 1 || n_dims > REALM_GGUF_MAX_DIMS) {
        snprintf(why, why_size, "n_dims %u is not in 1..%d", n_dims, REALM_GGUF_MAX_DIMS);
        return REALM_E_FORMAT;
    }
    format_shape(shape, sizeof shape, n_dims, ne);
    if (!tr) {
        snprintf(why, why_size, "type id %lld is unknown", (long long)type);
        return REALM_E_UNSUPPORTED;
    }
    int64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1) {
            snprintf(why, why_size, "shape %s: dimension %u is %lld (must be >= 1)", shape, d,
                     (long long)ne[d]);
            return REALM_E_FORMAT;
        }
        if (n > INT64_MAX / ne[d]) {
            snprintf(why, why_size, "shape %s: element count overflows int64", shape);
            return REALM_E_FORMAT;
        }
        n *= ne[d];
    }
    if (ne[0] % tr->block_size != 0) {
        snprintf(why, why_size, "shape %s: ne[0] %lld is not a multiple of %s's block size %lld",
                 shape, (long long)ne[0], tr->name, (long long)tr->block_size);
        return REALM_E_FORMAT;
    }
    /* blocks <= n_elements < 2^63 and type_size is small, so only the final
     * product can overflow */
    uint64_t blocks = (uint64_t)(n / tr->block_size);
    if (blocks > UINT64_MAX / tr->type_size) {
        snprintf(why, why_size, "shape %s: byte size overflows", shape);
        return REALM_E_FORMAT;
    }
    *n_elements = n;
    *size_bytes = blocks * tr->type_size;
    return REALM_OK;
}

static realm_status parse_tensor_info(parser *p, realm_gguf_t *g, int64_t i)
{
    realm__gguf_tensor *te = &g->tensors[i];
    realm_gguf_tensor *t = &te->t;
    realm_status st;
    uint32_t type;
    char why[256];
    enter(p, ENTRY_TENSOR, i, p->pos, (realm_gguf_str){0});
    te->header_pos = p->pos;
    if ((st = read_str(p, &t->name, "name"))) return st;
    if (t->name.len == 0) return fail(p, REALM_E_FORMAT, "empty name");
    p->entry_name = t->name;
    if ((st = read_u32(p, &t->n_dims, "n_dims"))) return st;
    if (t->n_dims < 1 || t->n_dims > REALM_GGUF_MAX_DIMS)
        return fail(p, REALM_E_FORMAT, "n_dims %u is not in 1..%d", t->n_dims, REALM_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < REALM_GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < t->n_dims && (st = read_u64(p, &v, "dimension"))) return st;
        if (v > INT64_MAX)
            return fail(p, REALM_E_FORMAT, "dimension %u is %llu (> INT64_MAX)", d, (ull)v);
        t->ne[d] = (int64_t)v;
    }
    if ((st = read_u32(p, &type, "type"))) return st;
    st = realm__gguf_tensor_geometry(type, t->n_dims, t->ne, &t->n_elements, &t->size_bytes, why,
                                     sizeof why);
    if (st) return fail(p, st, "%s", why);
    t->type = (realm_type)type;
    if ((st = read_u64(p, &t->offset, "data offset"))) return st;
    if (t->offset % g->alignment)
        return fail(p, REALM_E_FORMAT, "data offset %llu is not a multiple of the alignment %u",
                    (ull)t->offset, g->alignment);
    return REALM_OK;
}

/* ---- name indexes ---- */

/* Ties break by position in the file so the later duplicate is reported. */
static int cmp_kv_key(const void *a, const void *b)
{
    const realm__gguf_kv *x = *(const realm__gguf_kv *const *)a,
                         *y = *(const realm__gguf_kv *const *)b;
    int c = realm__gguf_str_cmp(x->key, y->key);
    return c ? c : (x > y) - (x < y);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const realm__gguf_tensor *x = *(const realm__gguf_tensor *const *)a,
                             *y = *(const realm__gguf_tensor *const *)b;
    int c = realm__gguf_str_cmp(x->t.name, y->t.name);
    return c ? c : (x > y) - (x < y);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const realm__gguf_tensor *x = *(const realm__gguf_tensor *const *)a,
                             *y = *(const realm__gguf_tensor *const *)b;
    if (x->t.offset != y->t.offset) return (x->t.offset > y->t.offset) ? 1 : -1;
    return (x > y) - (x < y);
}

static realm_status index_keys(parser *p, realm_gguf_t *g)
{
    for (int64_t i = 0; i < g->n_kv; i++)
        g->kv_by_key[i] = &g->kv[i];
    if (g->n_kv) qsort(g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, cmp_kv_key);
    for (int64_t i = 1; i < g->n_kv; i++) {
        const realm__gguf_kv *a = g->kv_by_key[i - 1], *b = g->kv_by_key[i];
        if (realm__gguf_str_cmp(a->key, b->key)) continue;
        enter(p, ENTRY_KV, b - g->kv, b->header_pos, b->key);
        return fail(p, REALM_E_FORMAT, "duplicate key (first defined by kv #%lld at byte %llu)",
                    (long long)(a - g->kv), (ull)a->header_pos);
    }
    return REALM_OK;
}

/* Place every tensor in the data section, then check names are unique and
 * no two tensors share bytes (sorted by offset, neighbours must not meet). */
static realm_status check_tensors(parser *p, realm_gguf_t *g)
{
    realm_status st = REALM_OK;
    char name[NAME_SHOWN_MAX + 4];
    uint64_t avail = g->data_offset <= g->size ? g->size - g->data_offset : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        realm__gguf_tensor *te = &g->tensors[i];
        realm_gguf_tensor *t = &te->t;
        if (g->data_offset > g->size || t->offset > avail || t->size_bytes > avail - t->offset) {
            uint64_t at =
                t->offset > UINT64_MAX - g->data_offset ? UINT64_MAX : g->data_offset + t->offset;
            enter(p, ENTRY_TENSOR, i, te->header_pos, t->name);
            return fail(p, REALM_E_FORMAT,
                        "data [offset %llu, +%llu) extends past end of file (%llu bytes)", (ull)at,
                        (ull)t->size_bytes, (ull)g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
    }

    for (int64_t i = 0; i < g->n_tensors; i++)
        g->tensor_by_name[i] = &g->tensors[i];
    if (g->n_tensors)
        qsort(g->tensor_by_name, (size_t)g->n_tensors, sizeof *g->tensor_by_name, cmp_tensor_name);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const realm__gguf_tensor *a = g->tensor_by_name[i - 1], *b = g->tensor_by_name[i];
        if (realm__gguf_str_cmp(a->t.name, b->t.name)) continue;
        enter(p, ENTRY_TENSOR, b - g->tensors, b->header_pos, b->t.name);
        return fail(p, REALM_E_FORMAT, "duplicate name (first used by tensor #%lld at byte %llu)",
                    (long long)(a - g->tensors), (ull)a->header_pos);
    }

    if (g->n_tensors < 2) return REALM_OK;
    const realm__gguf_tensor **by_off = realm_calloc((size_t)g->n_tensors, sizeof *by_off);
    if (!by_off) {
        enter(p, ENTRY_HEADER, 0, 0, (realm_gguf_str){0});
        return fail(p, REALM_E_NOMEM, "no memory to sort %lld tensors", (long long)g->n_tensors);
    }
    for (int64_t i = 0; i < g->n_tensors; i++)
        by_off[i] = &g->tensors[i];
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_tensor_offset);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const realm__gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (b->t.offset - a->t.offset >= a->t.size_bytes) continue;
        enter(p, ENTRY_TENSOR, b - g->tensors, b->header_pos, b->t.name);
        st = fail(p, REALM_E_FORMAT,
                  "data [offset %llu, +%llu) overlaps tensor '%s' (#%lld) at [offset %llu, +%llu)",
                  (ull)(g->data_offset + b->t.offset), (ull)b->t.size_bytes,
                  show_name(a->t.name, name, sizeof name), (long long)(a - g->tensors),
                  (ull)(g->data_offset + a->t.offset), (ull)a->t.size_bytes);
        break;
    }
    realm_free(by_off);
    return st;
}

/* ---- open / close ---- */

static realm_status parse_header(parser *p, realm_gguf_t *g, uint64_t *n_tensors, uint64_t *n_kv)
{
    realm_status st;
    if ((st = need(p, 4, "magic"))) return st;
    if (memcmp(p->base, REALM__GGUF_MAGIC, 4) != 0)
        return fail(p, REALM_E_FORMAT, "bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                    p->base[0], p->base[1], p->base[2], p->base[3]);
    p->pos = 4;
    if ((st = read_u32(p, &g->version, "version"))) return st;
    if (g->version == 1)
        return fail(p, REALM_E_UNSUPPORTED,
                    "GGUF v1 (32-bit lengths) is not supported; re-convert the model to v3");
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fail(p, REALM_E_UNSUPPORTED, "big-endian GGUF is not supported");
    if (g->version != 2 && g->version != 3)
        return fail(p, REALM_E_UNSUPPORTED, "version %u is not supported (only 2 and 3)",
                    g->version);
    if ((st = read_u64(p, n_tensors, "tensor_count"))) return st;
    if ((st = read_u64(p, n_kv, "kv_count"))) return st;
    /* Both counts against the bytes left, before anything is sized by them. */
    if (*n_kv > left(p) / KV_MIN_BYTES)
        return fail(p, REALM_E_FORMAT,
                    "kv_count %llu cannot fit: %d+ bytes each, %llu bytes follow the header",
                    (ull)*n_kv, KV_MIN_BYTES, (ull)left(p));
    if (*n_tensors > left(p) / TENSOR_MIN_BYTES ||
        *n_tensors * TENSOR_MIN_BYTES > left(p) - *n_kv * KV_MIN_BYTES)
        return fail(p, REALM_E_FORMAT,
                    "tensor_count %llu cannot fit: %d+ bytes each, %llu bytes follow the header "
                    "and its %llu kvs",
                    (ull)*n_tensors, TENSOR_MIN_BYTES, (ull)left(p), (ull)*n_kv);
    return REALM_OK;
}

static realm_status open_image(const uint8_t *base, uint64_t size, bool mapped, realm_gguf_t **out,
                               realm_error *err)
{
    parser p = {.base = base, .size = size, .err = err};
    uint64_t n_tensors = 0, n_kv = 0;
    realm_status st;
    realm_gguf_t *g = realm_calloc(1, sizeof *g);
    if (!g) {
        if (mapped) munmap((void *)base, (size_t)size);
        return realm_error_set(err, REALM_E_NOMEM, "GGUF: no memory for the handle");
    }
    g->base = base;
    g->size = size;
    g->mapped = mapped;
    g->alignment = REALM_GGUF_DEFAULT_ALIGNMENT;
    if ((st = parse_header(&p, g, &n_tensors, &n_kv))) goto fail;
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    g->kv = realm_calloc((size_t)n_kv, sizeof *g->kv);
    g->kv_by_key = realm_calloc((size_t)n_kv, sizeof *g->kv_by_key);
    g->tensors = realm_calloc((size_t)n_tensors, sizeof *g->tensors);
    g->tensor_by_name = realm_calloc((size_t)n_tensors, sizeof *g->tensor_by_name);
    if (!g->kv || !g->kv_by_key || !g->tensors || !g->tensor_by_name) {
        st = fail(&p, REALM_E_NOMEM, "no memory for %llu kvs and %llu tensors", (ull)n_kv,
                  (ull)n_tensors);
        goto fail;
    }
    for (int64_t i = 0; i < g->n_kv; i++)
        if ((st = parse_kv(&p, g, i))) goto fail;
    if ((st = index_keys(&p, g))) goto fail;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((st = parse_tensor_info(&p, g, i))) goto fail;
    /* p.pos <= size and alignment <= 2^31: no overflow */
    g->data_offset = (p.pos + g->alignment - 1) / g->alignment * g->alignment;
    if ((st = check_tensors(&p, g))) goto fail;
    *out = g;
    return REALM_OK;
fail:
    realm_gguf_close(g);
    return st;
}

realm_status realm_gguf_open_memory(const void *data, size_t size, realm_gguf_t **out,
                                    realm_error *err)
{
    if (!out || (!data && size)) return realm_error_set(err, REALM_E_INVALID, "GGUF: no image");
    *out = NULL;
    return open_image(data, size, false, out, err);
}

realm_status realm_gguf_open(const char *path, realm_gguf_t **out, realm_error *err)
{
    struct stat sb;
    if (!out || !path) return realm_error_set(err, REALM_E_INVALID, "GGUF: no path");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return realm_error_set(err, REALM_E_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return realm_error_set(err, REALM_E_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || (uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        if (!S_ISREG(sb.st_mode)) return realm_error_set(err, REALM_E_IO, "%s: not a file", path);
        return realm_error_set(err, REALM_E_FORMAT, "%s: %lld bytes is not a GGUF file", path,
                               (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (base == MAP_FAILED)
        return realm_error_set(err, REALM_E_IO, "%s: mmap: %s", path, strerror(e));
    realm_status st = open_image(base, size, true, out, err);
    if (st && err) {
        char msg[REALM_ERROR_MESSAGE_MAX];
        memcpy(msg, err->message, sizeof msg);
        realm_error_set(err, st, "%s: %s", path, msg);
    }
    return st;
}

void realm_gguf_close(realm_gguf_t *g)
{
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++)
        realm_free(g->kv[i].str_offsets);
    realm_free(g->kv);
    realm_free(g->kv_by_key);
    realm_free(g->tensors);
    realm_free(g->tensor_by_name);
    if (g->mapped) munmap((void *)g->base, (size_t)g->size);
    realm_free(g);
}
