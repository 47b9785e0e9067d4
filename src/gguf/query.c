/*
 * gguf/query.c — the reader's accessors: every answer is a lookup in the
 * tables read.c built and validated at open (see gguf_impl.h), so nothing
 * here re-checks the file's bytes, allocates or fails except on arguments.
 */
#include <math.h>
#include <string.h>

#include "gguf/gguf_impl.h"

typedef unsigned long long ull; /* for printf */

/* 1: unsigned integer, -1: signed integer, 0: not an integer. */
static const int8_t kind_int[REALM_GGUF_KIND_COUNT] = {
    [REALM_GGUF_UINT8] = 1,  [REALM_GGUF_UINT16] = 1, [REALM_GGUF_UINT32] = 1,
    [REALM_GGUF_UINT64] = 1, [REALM_GGUF_INT8] = -1,  [REALM_GGUF_INT16] = -1,
    [REALM_GGUF_INT32] = -1, [REALM_GGUF_INT64] = -1,
};

uint32_t realm_gguf_version(const realm_gguf_t *g)
{
    return g->version;
}
uint32_t realm_gguf_alignment(const realm_gguf_t *g)
{
    return g->alignment;
}
uint64_t realm_gguf_data_offset(const realm_gguf_t *g)
{
    return g->data_offset;
}
uint64_t realm_gguf_file_size(const realm_gguf_t *g)
{
    return g->size;
}
int64_t realm_gguf_kv_count(const realm_gguf_t *g)
{
    return g->n_kv;
}
int64_t realm_gguf_tensor_count(const realm_gguf_t *g)
{
    return g->n_tensors;
}

static const realm__gguf_kv *kv_at(const realm_gguf_t *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? &g->kv[i] : NULL;
}

realm_gguf_str realm_gguf_kv_key(const realm_gguf_t *g, int64_t i)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : (realm_gguf_str){0};
}

realm_gguf_kind realm_gguf_kv_kind(const realm_gguf_t *g, int64_t i)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    return kv ? kv->kind : REALM_GGUF_KIND_COUNT;
}

realm_status realm__gguf_kv_raw(const realm_gguf_t *g, int64_t i, realm_gguf_kind *kind,
                                const uint8_t **raw, uint64_t *raw_size)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv) return REALM_E_RANGE;
    *kind = kv->kind;
    *raw = kv->raw;
    *raw_size = kv->raw_size;
    return REALM_OK;
}

int64_t realm_gguf_find_key(const realm_gguf_t *g, const char *key)
{
    realm_gguf_str s = {key, strlen(key)};
    int64_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = realm__gguf_str_cmp(g->kv_by_key[mid]->key, s);
        if (c == 0) return g->kv_by_key[mid] - g->kv;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const realm_gguf_tensor *realm_gguf_find_tensor(const realm_gguf_t *g, const char *name)
{
    realm_gguf_str s = {name, strlen(name)};
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = realm__gguf_str_cmp(g->tensor_by_name[mid]->t.name, s);
        if (c == 0) return &g->tensor_by_name[mid]->t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const realm_gguf_tensor *realm_gguf_tensor_at(const realm_gguf_t *g, int64_t i)
{
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i].t : NULL;
}

/* Integer value of kv widened to 64 bits; false when kv is not an integer. */
static bool kv_int(const realm__gguf_kv *kv, uint64_t *bits, bool *is_signed)
{
    if (kv->kind >= REALM_GGUF_KIND_COUNT || !kind_int[kv->kind]) return false;
    unsigned n = realm__gguf_kind_size[kv->kind];
    uint64_t v = realm__gguf_ld_le(kv->raw, n);
    *is_signed = kind_int[kv->kind] < 0;
    if (*is_signed && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
    *bits = v;
    return true;
}

realm_status realm_gguf_kv_u64(const realm_gguf_t *g, int64_t i, uint64_t *out)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    uint64_t v;
    bool sgn;
    if (!kv) return REALM_E_RANGE;
    if (!kv_int(kv, &v, &sgn)) return REALM_E_INVALID;
    if (sgn && v >> 63) return REALM_E_RANGE;
    *out = v;
    return REALM_OK;
}

realm_status realm_gguf_kv_i64(const realm_gguf_t *g, int64_t i, int64_t *out)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    uint64_t v;
    bool sgn;
    if (!kv) return REALM_E_RANGE;
    if (!kv_int(kv, &v, &sgn)) return REALM_E_INVALID;
    if (!sgn && v > INT64_MAX) return REALM_E_RANGE;
    memcpy(out, &v, sizeof v); /* two's complement reinterpretation */
    return REALM_OK;
}

realm_status realm_gguf_kv_f64(const realm_gguf_t *g, int64_t i, double *out)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv) return REALM_E_RANGE;
    if (kv->kind == REALM_GGUF_FLOAT32) {
        float f;
        memcpy(&f, kv->raw, sizeof f);
        *out = f;
    } else if (kv->kind == REALM_GGUF_FLOAT64) {
        memcpy(out, kv->raw, sizeof *out);
    } else {
        return REALM_E_INVALID;
    }
    return REALM_OK;
}

realm_status realm_gguf_kv_bool(const realm_gguf_t *g, int64_t i, bool *out)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv) return REALM_E_RANGE;
    if (kv->kind != REALM_GGUF_BOOL) return REALM_E_INVALID;
    *out = kv->raw[0] != 0;
    return REALM_OK;
}

realm_status realm_gguf_kv_str(const realm_gguf_t *g, int64_t i, realm_gguf_str *out)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv) return REALM_E_RANGE;
    if (kv->kind != REALM_GGUF_STRING) return REALM_E_INVALID;
    out->len = realm__gguf_ld_le(kv->raw, 8);
    out->ptr = (const char *)kv->raw + 8;
    return REALM_OK;
}

realm_status realm_gguf_kv_arr(const realm_gguf_t *g, int64_t i, realm_gguf_kind *elem_kind,
                               uint64_t *count)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv) return REALM_E_RANGE;
    if (kv->kind != REALM_GGUF_ARRAY) return REALM_E_INVALID;
    if (elem_kind) *elem_kind = kv->elem_kind;
    if (count) *count = kv->count;
    return REALM_OK;
}

const void *realm_gguf_arr_data(const realm_gguf_t *g, int64_t i)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->kind != REALM_GGUF_ARRAY || !realm__gguf_kind_size[kv->elem_kind]) return NULL;
    return kv->raw + 12; /* after u32 elem_kind + u64 count */
}

realm_gguf_str realm_gguf_arr_str(const realm_gguf_t *g, int64_t i, uint64_t j)
{
    const realm__gguf_kv *kv = kv_at(g, i);
    if (!kv || !kv->str_offsets || j >= kv->count) return (realm_gguf_str){0};
    const uint8_t *p = g->base + kv->str_offsets[j];
    return (realm_gguf_str){(const char *)p + 8, realm__gguf_ld_le(p, 8)};
}

/* ---- convenience getters by key ---- */

/* The entry for key, or NULL with a NOT_FOUND message in err. */
static const realm__gguf_kv *find_for_get(const realm_gguf_t *g, const char *key, realm_error *err)
{
    int64_t i = realm_gguf_find_key(g, key);
    if (i >= 0) return &g->kv[i];
    realm_error_set(err, REALM_E_NOT_FOUND, "GGUF key '%s' not found", key);
    return NULL;
}

static realm_status wrong_kind(const realm__gguf_kv *kv, const char *key, const char *want,
                               realm_error *err)
{
    return realm_error_set(err, REALM_E_INVALID, "GGUF key '%s' is %s, expected %s", key,
                           realm__gguf_kind_names[kv->kind], want);
}

realm_status realm_gguf_get_u32(const realm_gguf_t *g, const char *key, uint32_t *out,
                                realm_error *err)
{
    const realm__gguf_kv *kv = find_for_get(g, key, err);
    uint64_t v;
    bool sgn;
    if (!kv) return REALM_E_NOT_FOUND;
    if (!kv_int(kv, &v, &sgn)) return wrong_kind(kv, key, "an integer", err);
    if (v > UINT32_MAX) /* also catches negative values, sign-extended */
        return realm_error_set(err, REALM_E_RANGE, "GGUF key '%s': %s%llu does not fit u32", key,
                               sgn && v >> 63 ? "-" : "", sgn && v >> 63 ? (ull)-v : (ull)v);
    *out = (uint32_t)v;
    return REALM_OK;
}

realm_status realm_gguf_get_f32(const realm_gguf_t *g, const char *key, float *out,
                                realm_error *err)
{
    const realm__gguf_kv *kv = find_for_get(g, key, err);
    double d;
    if (!kv) return REALM_E_NOT_FOUND;
    if (realm_gguf_kv_f64(g, kv - g->kv, &d)) return wrong_kind(kv, key, "f32 or f64", err);
    float f = (float)d;
    if (isfinite(d) && !isfinite(f))
        return realm_error_set(err, REALM_E_RANGE, "GGUF key '%s': %g does not fit f32", key, d);
    *out = f;
    return REALM_OK;
}

realm_status realm_gguf_get_bool(const realm_gguf_t *g, const char *key, bool *out,
                                 realm_error *err)
{
    const realm__gguf_kv *kv = find_for_get(g, key, err);
    if (!kv) return REALM_E_NOT_FOUND;
    if (kv->kind != REALM_GGUF_BOOL) return wrong_kind(kv, key, "bool", err);
    *out = kv->raw[0] != 0;
    return REALM_OK;
}

realm_status realm_gguf_get_str(const realm_gguf_t *g, const char *key, realm_gguf_str *out,
                                realm_error *err)
{
    const realm__gguf_kv *kv = find_for_get(g, key, err);
    if (!kv) return REALM_E_NOT_FOUND;
    if (kv->kind != REALM_GGUF_STRING) return wrong_kind(kv, key, "string", err);
    return realm_gguf_kv_str(g, kv - g->kv, out);
}

const char *realm_gguf_kind_name(realm_gguf_kind k)
{
    return ((unsigned)k < REALM_GGUF_KIND_COUNT) ? realm__gguf_kind_names[k] : "invalid";
}

bool realm_gguf_str_eq(realm_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}
