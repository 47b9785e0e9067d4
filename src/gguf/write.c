/*
 * gguf/write.c — the streaming GGUF v3 writer (format: see read.c).
 *
 * Every key/value is encoded into its own byte blob when it is set (exactly
 * the bytes that follow its u32 kind in the file), so replacing a key, copying
 * a kv verbatim from another file (nested arrays included) and writing the
 * header are all plain byte copies. Tensor offsets are fixed at begin, once
 * the alignment is known; tensor data then streams through a FILE buffer and
 * every tensor — the last one too, as ggml expects — is padded to the
 * alignment.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "gguf/gguf_impl.h"

typedef unsigned long long ull;

typedef struct wkv {
    char *key; /* may hold NUL bytes when copied from a file */
    uint64_t key_len;
    realm_gguf_kind kind;
    uint8_t *val; /* encoded value */
    uint64_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    realm_type type;
    uint32_t n_dims;
    int64_t ne[REALM_GGUF_MAX_DIMS];
    uint64_t size_bytes;
    uint64_t offset; /* set by begin */
} wtensor;

typedef enum wstate { W_DECLARE, W_DATA, W_DONE, W_FAILED } wstate;

struct realm_gguf_writer {
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *tensors;
    int64_t n_tensors, cap_tensors;
    wstate state;
    FILE *f;
    uint32_t alignment;
    uint64_t pos;      /* bytes written so far */
    int64_t cur;       /* tensor being written */
    uint64_t cur_done; /* its bytes written */
};

realm_status realm_gguf_writer_init(realm_gguf_writer_t **out)
{
    realm_gguf_writer_t *w = realm_calloc(1, sizeof *w);
    if (!w) return REALM_E_NOMEM;
    w->alignment = REALM_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return REALM_OK;
}

void realm_gguf_writer_free(realm_gguf_writer_t *w)
{
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        realm_free(w->kv[i].key);
        realm_free(w->kv[i].val);
    }
    for (int64_t i = 0; i < w->n_tensors; i++)
        realm_free(w->tensors[i].name);
    realm_free(w->kv);
    realm_free(w->tensors);
    if (w->f) fclose(w->f);
    realm_free(w);
}

static void st_le(uint8_t *b, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* Grow *arr (of *cap elements of size) to hold one more than n. */
static realm_status reserve(void **arr, int64_t *cap, int64_t n, size_t size)
{
    if (n < *cap) return REALM_OK;
    int64_t c = *cap ? *cap * 2 : 16;
    void *p = realm_realloc_array(*arr, (size_t)c, size);
    if (!p) return REALM_E_NOMEM;
    *arr = p;
    *cap = c;
    return REALM_OK;
}

/* Install an encoded value under key, replacing an earlier one. Takes
 * ownership of val in every case (frees it on failure). */
static realm_status put_kv(realm_gguf_writer_t *w, const char *key, uint64_t key_len,
                           realm_gguf_kind kind, uint8_t *val, uint64_t val_len)
{
    if (w->state != W_DECLARE || key_len == 0) {
        realm_free(val);
        return REALM_E_INVALID;
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        wkv *kv = &w->kv[i];
        if (kv->key_len == key_len && memcmp(kv->key, key, (size_t)key_len) == 0) {
            realm_free(kv->val);
            kv->kind = kind;
            kv->val = val;
            kv->val_len = val_len;
            return REALM_OK;
        }
    }
    char *k = realm_malloc((size_t)key_len + 1);
    if (!k || reserve((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
        realm_free(k);
        realm_free(val);
        return REALM_E_NOMEM;
    }
    memcpy(k, key, (size_t)key_len);
    k[key_len] = '\0';
    w->kv[w->n_kv++] = (wkv){k, key_len, kind, val, val_len};
    return REALM_OK;
}

static realm_status put_scalar(realm_gguf_writer_t *w, const char *key, realm_gguf_kind kind,
                               uint64_t bits)
{
    if (!w || !key) return REALM_E_INVALID;
    unsigned n = realm__gguf_kind_size[kind];
    uint8_t *val = realm_malloc(n);
    if (!val) return REALM_E_NOMEM;
    st_le(val, bits, n);
    return put_kv(w, key, strlen(key), kind, val, n);
}

realm_status realm_gguf_writer_set_u32(realm_gguf_writer_t *w, const char *key, uint32_t v)
{
    return put_scalar(w, key, REALM_GGUF_UINT32, v);
}

realm_status realm_gguf_writer_set_i32(realm_gguf_writer_t *w, const char *key, int32_t v)
{
    return put_scalar(w, key, REALM_GGUF_INT32, (uint32_t)v);
}

realm_status realm_gguf_writer_set_u64(realm_gguf_writer_t *w, const char *key, uint64_t v)
{
    return put_scalar(w, key, REALM_GGUF_UINT64, v);
}

realm_status realm_gguf_writer_set_f32(realm_gguf_writer_t *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_scalar(w, key, REALM_GGUF_FLOAT32, bits);
}

realm_status realm_gguf_writer_set_bool(realm_gguf_writer_t *w, const char *key, bool v)
{
    return put_scalar(w, key, REALM_GGUF_BOOL, v ? 1 : 0);
}

realm_status realm_gguf_writer_set_str(realm_gguf_writer_t *w, const char *key, const char *v)
{
    if (!w || !key || !v) return REALM_E_INVALID;
    size_t n = strlen(v);
    uint8_t *val = realm_malloc(8 + n);
    if (!val) return REALM_E_NOMEM;
    st_le(val, n, 8);
    memcpy(val + 8, v, n);
    return put_kv(w, key, strlen(key), REALM_GGUF_STRING, val, 8 + n);
}

realm_status realm_gguf_writer_set_arr(realm_gguf_writer_t *w, const char *key,
                                       realm_gguf_kind elem_kind, const void *data, uint64_t count)
{
    if (!w || !key || (unsigned)elem_kind >= REALM_GGUF_KIND_COUNT) return REALM_E_INVALID;
    size_t es = realm__gguf_kind_size[elem_kind];
    if (!es || (count && !data)) return REALM_E_INVALID;
    if (count > (SIZE_MAX - 12) / es) return REALM_E_NOMEM;
    uint8_t *val = realm_malloc(12 + (size_t)count * es);
    if (!val) return REALM_E_NOMEM;
    st_le(val, elem_kind, 4);
    st_le(val + 4, count, 8);
    if (count) memcpy(val + 12, data, (size_t)count * es);
    /* the format allows only 0 and 1; a C bool array could hold other bytes */
    if (elem_kind == REALM_GGUF_BOOL)
        for (uint64_t j = 0; j < count; j++)
            val[12 + j] = val[12 + j] != 0;
    return put_kv(w, key, strlen(key), REALM_GGUF_ARRAY, val, 12 + count * es);
}

realm_status realm_gguf_writer_set_arr_str(realm_gguf_writer_t *w, const char *key,
                                           const char *const *strs, uint64_t count)
{
    if (!w || !key || (count && !strs)) return REALM_E_INVALID;
    size_t total = 12;
    for (uint64_t j = 0; j < count; j++) {
        if (!strs[j]) return REALM_E_INVALID;
        size_t n = strlen(strs[j]);
        if (n > SIZE_MAX - 8 - total) return REALM_E_NOMEM;
        total += 8 + n;
    }
    uint8_t *val = realm_malloc(total), *p;
    if (!val) return REALM_E_NOMEM;
    st_le(val, REALM_GGUF_STRING, 4);
    st_le(val + 4, count, 8);
    p = val + 12;
    for (uint64_t j = 0; j < count; j++) {
        size_t n = strlen(strs[j]);
        st_le(p, n, 8);
        memcpy(p + 8, strs[j], n);
        p += 8 + n;
    }
    return put_kv(w, key, strlen(key), REALM_GGUF_ARRAY, val, total);
}

realm_status realm_gguf_writer_copy_kv(realm_gguf_writer_t *w, const realm_gguf_t *src, int64_t i)
{
    realm_gguf_kind kind;
    const uint8_t *raw;
    uint64_t raw_size;
    if (!w || !src) return REALM_E_INVALID;
    realm_status st = realm__gguf_kv_raw(src, i, &kind, &raw, &raw_size);
    if (st) return st;
    realm_gguf_str key = realm_gguf_kv_key(src, i);
    /* the source validated it, and v2/v3 values encode identically: copy verbatim */
    uint8_t *val = realm_malloc((size_t)raw_size);
    if (!val) return REALM_E_NOMEM;
    memcpy(val, raw, (size_t)raw_size);
    return put_kv(w, key.ptr, key.len, kind, val, raw_size);
}

realm_status realm_gguf_writer_add_tensor(realm_gguf_writer_t *w, const char *name, realm_type type,
                                          uint32_t n_dims, const int64_t *ne, realm_error *err)
{
    int64_t full[REALM_GGUF_MAX_DIMS] = {1, 1, 1, 1}, n_elements;
    uint64_t size_bytes;
    char why[256];
    if (!w || !name || !*name || !ne)
        return realm_error_set(err, REALM_E_INVALID, "GGUF writer: tensor needs a name and shape");
    if (w->state != W_DECLARE)
        return realm_error_set(err, REALM_E_INVALID,
                               "GGUF writer: tensor '%s' declared after begin", name);
    for (uint32_t d = 0; d < n_dims && d < REALM_GGUF_MAX_DIMS; d++)
        full[d] = ne[d];
    realm_status st =
        realm__gguf_tensor_geometry(type, n_dims, full, &n_elements, &size_bytes, why, sizeof why);
    if (st)
        return realm_error_set(err, st == REALM_E_UNSUPPORTED ? st : REALM_E_INVALID,
                               "GGUF writer: tensor '%s': %s", name, why);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return realm_error_set(err, REALM_E_INVALID, "GGUF writer: tensor '%s' declared twice",
                                   name);
    char *copy = realm_strdup(name);
    if (!copy || reserve((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors)) {
        realm_free(copy);
        return realm_error_set(err, REALM_E_NOMEM, "GGUF writer: no memory for tensor '%s'", name);
    }
    wtensor *t = &w->tensors[w->n_tensors++];
    *t = (wtensor){.name = copy, .type = type, .n_dims = n_dims, .size_bytes = size_bytes};
    memcpy(t->ne, full, sizeof full);
    return REALM_OK;
}

/* ---- output ---- */

static realm_status io_fail(realm_gguf_writer_t *w, realm_error *err, const char *what)
{
    w->state = W_FAILED;
    return realm_error_set(err, REALM_E_IO, "GGUF writer: %s at byte %llu: %s", what, (ull)w->pos,
                           strerror(errno ? errno : EIO));
}

static bool out(realm_gguf_writer_t *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n) return false;
    w->pos += n;
    return true;
}

static bool out_le(realm_gguf_writer_t *w, uint64_t v, unsigned n)
{
    uint8_t b[8];
    st_le(b, v, n);
    return out(w, b, n);
}

static bool pad(realm_gguf_writer_t *w)
{
    static const uint8_t zeros[256];
    uint64_t n = (w->alignment - w->pos % w->alignment) % w->alignment;
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (!out(w, zeros, k)) return false;
        n -= k;
    }
    return true;
}

/* The alignment the header will declare, checked like the reader would. */
static realm_status find_alignment(realm_gguf_writer_t *w, realm_error *err)
{
    for (int64_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        if (kv->key_len != 17 || memcmp(kv->key, "general.alignment", 17) != 0) continue;
        uint32_t a = 0;
        if (kv->kind == REALM_GGUF_UINT32)
            for (unsigned b = 0; b < 4; b++)
                a |= (uint32_t)kv->val[b] << (8 * b);
        if (!a || (a & (a - 1)))
            return realm_error_set(err, REALM_E_INVALID,
                                   "GGUF writer: general.alignment must be a power-of-two u32");
        w->alignment = a;
    }
    return REALM_OK;
}

realm_status realm_gguf_writer_begin(realm_gguf_writer_t *w, const char *path, realm_error *err)
{
    if (!w || !path || w->state != W_DECLARE)
        return realm_error_set(err, REALM_E_INVALID, "GGUF writer: begin called twice");
    realm_status st = find_alignment(w, err);
    if (st) return st;
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        t->offset = off;
        uint64_t end = off + t->size_bytes;
        if (end < off || end > UINT64_MAX - w->alignment)
            return realm_error_set(err, REALM_E_INVALID, "GGUF writer: data exceeds 2^64 bytes");
        off = (end + w->alignment - 1) / w->alignment * w->alignment;
    }
    errno = 0;
    w->f = fopen(path, "wb");
    if (!w->f)
        return realm_error_set(err, REALM_E_IO, "GGUF writer: %s: %s", path, strerror(errno));
    w->state = W_DATA;
    errno = 0;
    bool ok = out(w, REALM__GGUF_MAGIC, 4) && out_le(w, REALM__GGUF_VERSION, 4) &&
              out_le(w, (uint64_t)w->n_tensors, 8) && out_le(w, (uint64_t)w->n_kv, 8);
    for (int64_t i = 0; ok && i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        ok = out_le(w, kv->key_len, 8) && out(w, kv->key, (size_t)kv->key_len) &&
             out_le(w, kv->kind, 4) && out(w, kv->val, (size_t)kv->val_len);
    }
    for (int64_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        size_t n = strlen(t->name);
        ok = out_le(w, n, 8) && out(w, t->name, n) && out_le(w, t->n_dims, 4);
        for (uint32_t d = 0; ok && d < t->n_dims; d++)
            ok = out_le(w, (uint64_t)t->ne[d], 8);
        ok = ok && out_le(w, (uint32_t)t->type, 4) && out_le(w, t->offset, 8);
    }
    if (!ok || !pad(w)) return io_fail(w, err, "writing the header");
    w->cur = 0;
    w->cur_done = 0;
    return REALM_OK;
}

realm_status realm_gguf_writer_write_tensor(realm_gguf_writer_t *w, const void *data, size_t size,
                                            realm_error *err)
{
    if (!w || w->state != W_DATA || (size && !data))
        return realm_error_set(err, REALM_E_INVALID, "GGUF writer: not writing tensor data");
    if (size == 0) return REALM_OK;
    if (w->cur >= w->n_tensors)
        return realm_error_set(err, REALM_E_INVALID,
                               "GGUF writer: %zu bytes of data after the last tensor", size);
    wtensor *t = &w->tensors[w->cur];
    if (size > t->size_bytes - w->cur_done)
        return realm_error_set(err, REALM_E_INVALID,
                               "GGUF writer: tensor '%s' (#%lld): a piece of %zu bytes crosses "
                               "its end (%llu of %llu bytes written)",
                               t->name, (long long)w->cur, size, (ull)w->cur_done,
                               (ull)t->size_bytes);
    errno = 0;
    if (!out(w, data, size)) return io_fail(w, err, "writing tensor data");
    w->cur_done += size;
    if (w->cur_done == t->size_bytes) {
        if (!pad(w)) return io_fail(w, err, "padding tensor data");
        w->cur++;
        w->cur_done = 0;
    }
    return REALM_OK;
}

realm_status realm_gguf_writer_finish(realm_gguf_writer_t *w, realm_error *err)
{
    if (!w || w->state != W_DATA)
        return realm_error_set(err, REALM_E_INVALID, "GGUF writer: finish without begin");
    if (w->cur < w->n_tensors) {
        const wtensor *t = &w->tensors[w->cur];
        return realm_error_set(err, REALM_E_INVALID,
                               "GGUF writer: tensor '%s' (#%lld) has %llu of %llu bytes; %lld "
                               "of %lld tensors complete",
                               t->name, (long long)w->cur, (ull)w->cur_done, (ull)t->size_bytes,
                               (long long)w->cur, (long long)w->n_tensors);
    }
    errno = 0;
    int flush_failed = fflush(w->f) != 0;
    int close_failed = fclose(w->f) != 0;
    w->f = NULL;
    if (flush_failed || close_failed) return io_fail(w, err, "closing the file");
    w->state = W_DONE;
    return REALM_OK;
}
