/*
 * tests/gguf/test_gguf.c — the GGUF reader and writer.
 *
 * Files are crafted byte by byte with a tiny builder (independent of the
 * writer) so every validation rule gets its own bad file and asserts the
 * status and a fragment of the message. Images are always copied into a
 * heap block of exactly their size so ASan reports any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "gguf/gguf_impl.h"

/* ---- byte builder ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le(buf *b, uint64_t v, unsigned n)
{
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, n);
}

static void put_str(buf *b, const char *s)
{
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}

static void put_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    put_le(b, version, 4);
    put_le(b, n_tensors, 8);
    put_le(b, n_kv, 8);
}

static void put_kv_head(buf *b, const char *key, realm_gguf_kind kind)
{
    put_str(b, key);
    put_le(b, kind, 4);
}

static void put_kv_u32(buf *b, const char *key, uint32_t v)
{
    put_kv_head(b, key, REALM_GGUF_UINT32);
    put_le(b, v, 4);
}

static void put_tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset)
{
    put_str(b, name);
    put_le(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++)
        put_le(b, ne[d], 8);
    put_le(b, type, 4);
    put_le(b, offset, 8);
}

static void put_pad(buf *b, size_t align)
{
    while (b->n % align)
        put_le(b, 0, 1);
}

static void put_zeros(buf *b, size_t n)
{
    while (n--)
        put_le(b, 0, 1);
}

/* An array nested depth levels deep around one u8. */
static void put_nested(buf *b, int depth)
{
    if (depth == 1) {
        put_le(b, REALM_GGUF_UINT8, 4);
        put_le(b, 1, 8);
        put_le(b, 7, 1);
        return;
    }
    put_le(b, REALM_GGUF_ARRAY, 4);
    put_le(b, 1, 8);
    put_nested(b, depth - 1);
}

/* A file with every value kind, nested arrays and three tensors. */
static void make_rich(buf *b)
{
    put_header(b, 3, 3, 17);
    put_kv_head(b, "k.u8", REALM_GGUF_UINT8), put_le(b, 200, 1);
    put_kv_head(b, "k.i8", REALM_GGUF_INT8), put_le(b, (uint8_t)-5, 1);
    put_kv_head(b, "k.u16", REALM_GGUF_UINT16), put_le(b, 60000, 2);
    put_kv_head(b, "k.i16", REALM_GGUF_INT16), put_le(b, (uint16_t)-300, 2);
    put_kv_u32(b, "k.u32", 4000000000u);
    put_kv_head(b, "k.i32", REALM_GGUF_INT32), put_le(b, (uint32_t)-70000, 4);
    put_kv_head(b, "k.f32", REALM_GGUF_FLOAT32), put_le(b, 0x3fc00000u, 4); /* 1.5 */
    put_kv_head(b, "k.bool", REALM_GGUF_BOOL), put_le(b, 1, 1);
    put_kv_head(b, "k.str", REALM_GGUF_STRING), put_str(b, "hello");
    put_kv_head(b, "k.u64", REALM_GGUF_UINT64), put_le(b, UINT64_MAX, 8);
    put_kv_head(b, "k.i64", REALM_GGUF_INT64), put_le(b, (uint64_t)INT64_MIN, 8);
    put_kv_head(b, "k.f64", REALM_GGUF_FLOAT64), put_le(b, 0xc004000000000000ull, 8); /* -2.5 */
    put_kv_head(b, "k.arr_i32", REALM_GGUF_ARRAY);
    put_le(b, REALM_GGUF_INT32, 4), put_le(b, 3, 8);
    put_le(b, 1, 4), put_le(b, (uint32_t)-2, 4), put_le(b, 3, 4);
    put_kv_head(b, "k.arr_str", REALM_GGUF_ARRAY);
    put_le(b, REALM_GGUF_STRING, 4), put_le(b, 3, 8);
    put_str(b, "a"), put_str(b, ""), put_str(b, "ccc");
    /* [[1, 2], ["x", "yz"], []] */
    put_kv_head(b, "k.nested", REALM_GGUF_ARRAY);
    put_le(b, REALM_GGUF_ARRAY, 4), put_le(b, 3, 8);
    put_le(b, REALM_GGUF_UINT16, 4), put_le(b, 2, 8), put_le(b, 1, 2), put_le(b, 2, 2);
    put_le(b, REALM_GGUF_STRING, 4), put_le(b, 2, 8), put_str(b, "x"), put_str(b, "yz");
    put_le(b, REALM_GGUF_FLOAT32, 4), put_le(b, 0, 8);
    put_kv_head(b, "k.deep", REALM_GGUF_ARRAY), put_nested(b, REALM__GGUF_MAX_DEPTH);
    put_kv_u32(b, "general.alignment", 64);
    uint64_t ne_a[2] = {4, 2}, ne_b[1] = {64}, ne_c[3] = {2, 3, 2};
    put_tinfo(b, "a.f32", 2, ne_a, REALM_TYPE_F32, 0);     /* 32 bytes */
    put_tinfo(b, "b.q8_0", 1, ne_b, REALM_TYPE_Q8_0, 128); /* 68 bytes */
    put_tinfo(b, "c.f16", 3, ne_c, REALM_TYPE_F16, 64);    /* 24 bytes */
    put_pad(b, 64);
    for (int i = 0; i < 128 + 68; i++)
        put_le(b, (uint8_t)i, 1);
}

/* ---- helpers ---- */

/* An exact-size heap copy: ASan sees any read past the image. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n) memcpy(c, p, n);
    return c;
}

static realm_gguf_t *open_ok(const buf *b, uint8_t **image)
{
    realm_error err = {0};
    realm_gguf_t *g = NULL;
    *image = exact_copy(b->p, b->n);
    realm_status st = realm_gguf_open_memory(*image, b->n, &g, &err);
    if (st) fail_msg("open failed: %s", err.message);
    return g;
}

static void expect_fail(buf *b, realm_status want, const char *fragment)
{
    realm_error err = {0};
    realm_gguf_t *g = (realm_gguf_t *)1;
    uint8_t *image = exact_copy(b->p, b->n);
    realm_status st = realm_gguf_open_memory(image, b->n, &g, &err);
    if (st != want || err.status != want || !strstr(err.message, fragment))
        fail_msg("want %s containing \"%s\", got %s: %s", realm_status_name(want), fragment,
                 realm_status_name(st), err.message);
    assert_null(g);
    free(image);
    free(b->p);
    *b = (buf){0};
}

/* Every accessor on every entry; asserts what must hold for any valid file. */
static uint64_t walk(const realm_gguf_t *g)
{
    uint64_t sum = realm_gguf_version(g) + realm_gguf_alignment(g) + realm_gguf_data_offset(g);
    char name[256];
    for (int64_t i = 0; i < realm_gguf_kv_count(g); i++) {
        realm_gguf_str k = realm_gguf_kv_key(g, i), s;
        realm_gguf_kind kind = realm_gguf_kv_kind(g, i), ek;
        uint64_t u, count;
        int64_t v;
        double d;
        bool bo;
        assert_true(k.len > 0 && kind < REALM_GGUF_KIND_COUNT);
        sum += (unsigned char)k.ptr[0] + (unsigned char)k.ptr[k.len - 1];
        if (k.len < sizeof name && !memchr(k.ptr, 0, k.len)) {
            memcpy(name, k.ptr, k.len);
            name[k.len] = '\0';
            assert_int_equal(realm_gguf_find_key(g, name), i);
        }
        if (!realm_gguf_kv_u64(g, i, &u)) sum += u;
        if (!realm_gguf_kv_i64(g, i, &v)) sum += (uint64_t)v;
        if (!realm_gguf_kv_f64(g, i, &d)) sum += d == d;
        if (!realm_gguf_kv_bool(g, i, &bo)) sum += bo;
        if (!realm_gguf_kv_str(g, i, &s) && s.len) sum += (unsigned char)s.ptr[s.len - 1];
        if (realm_gguf_kv_arr(g, i, &ek, &count)) continue;
        const uint8_t *data = realm_gguf_arr_data(g, i);
        if (data)
            for (uint64_t j = 0; j < count * realm__gguf_kind_size[ek]; j++)
                sum += data[j];
        for (uint64_t j = 0; ek == REALM_GGUF_STRING && j < count; j++) {
            s = realm_gguf_arr_str(g, i, j);
            assert_non_null(s.ptr);
            if (s.len) sum += (unsigned char)s.ptr[0] + (unsigned char)s.ptr[s.len - 1];
        }
        assert_null(realm_gguf_arr_str(g, i, count).ptr);
    }
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        const uint8_t *data = t->data;
        assert_true(t->size_bytes > 0 && t->n_elements > 0);
        assert_int_equal(t->offset % realm_gguf_alignment(g), 0);
        sum += data[0] + data[t->size_bytes - 1];
        if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            assert_ptr_equal(realm_gguf_find_tensor(g, name), t);
        }
    }
    return sum;
}

static char *temp_path(const char *tag)
{
    static char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/realm_gguf_%s_%d.gguf", dir ? dir : "/tmp", tag, (int)getpid());
    return path;
}

/* ---- reading ---- */

static void test_read_rich(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t *image;
    make_rich(&b);
    realm_gguf_t *g = open_ok(&b, &image);
    uint64_t u;
    int64_t v;
    double d;
    bool bo;
    realm_gguf_str s;
    realm_gguf_kind ek;
    uint64_t count;

    assert_int_equal(realm_gguf_version(g), 3);
    assert_int_equal(realm_gguf_alignment(g), 64);
    assert_int_equal(realm_gguf_data_offset(g) % 64, 0);
    assert_int_equal(realm_gguf_file_size(g), b.n);
    assert_int_equal(realm_gguf_kv_count(g), 17);
    assert_int_equal(realm_gguf_find_key(g, "k.u8"), 0);
    assert_int_equal(realm_gguf_find_key(g, "general.alignment"), 16);
    assert_int_equal(realm_gguf_find_key(g, "k.u"), -1);
    assert_int_equal(realm_gguf_find_key(g, "k.u80"), -1);
    assert_true(realm_gguf_str_eq(realm_gguf_kv_key(g, 2), "k.u16"));
    assert_int_equal(realm_gguf_kv_kind(g, 99), REALM_GGUF_KIND_COUNT);
    assert_null(realm_gguf_kv_key(g, -1).ptr);

    /* integer widening and range checks */
    assert_int_equal(realm_gguf_kv_u64(g, 0, &u), 0), assert_int_equal(u, 200);
    assert_int_equal(realm_gguf_kv_u64(g, 1, &u), REALM_E_RANGE);
    assert_int_equal(realm_gguf_kv_i64(g, 1, &v), 0), assert_int_equal(v, -5);
    assert_int_equal(realm_gguf_kv_i64(g, 3, &v), 0), assert_int_equal(v, -300);
    assert_int_equal(realm_gguf_kv_i64(g, 5, &v), 0), assert_int_equal(v, -70000);
    assert_int_equal(realm_gguf_kv_u64(g, 4, &u), 0), assert_int_equal(u, 4000000000u);
    assert_int_equal(realm_gguf_kv_u64(g, 9, &u), 0), assert_true(u == UINT64_MAX);
    assert_int_equal(realm_gguf_kv_i64(g, 9, &v), REALM_E_RANGE);
    assert_int_equal(realm_gguf_kv_i64(g, 10, &v), 0), assert_true(v == INT64_MIN);
    assert_int_equal(realm_gguf_kv_u64(g, 8, &u), REALM_E_INVALID);
    assert_int_equal(realm_gguf_kv_u64(g, 17, &u), REALM_E_RANGE);
    assert_int_equal(realm_gguf_kv_f64(g, 6, &d), 0), assert_true(d == 1.5);
    assert_int_equal(realm_gguf_kv_f64(g, 11, &d), 0), assert_true(d == -2.5);
    assert_int_equal(realm_gguf_kv_f64(g, 4, &d), REALM_E_INVALID);
    assert_int_equal(realm_gguf_kv_bool(g, 7, &bo), 0), assert_true(bo);
    assert_int_equal(realm_gguf_kv_bool(g, 0, &bo), REALM_E_INVALID);
    assert_int_equal(realm_gguf_kv_str(g, 8, &s), 0), assert_true(realm_gguf_str_eq(s, "hello"));
    assert_int_equal(realm_gguf_kv_str(g, 7, &s), REALM_E_INVALID);

    /* arrays */
    assert_int_equal(realm_gguf_kv_arr(g, 12, &ek, &count), 0);
    assert_int_equal(ek, REALM_GGUF_INT32), assert_int_equal(count, 3);
    int32_t i32[3];
    memcpy(i32, realm_gguf_arr_data(g, 12), sizeof i32);
    assert_int_equal(i32[0], 1), assert_int_equal(i32[1], -2), assert_int_equal(i32[2], 3);
    assert_int_equal(realm_gguf_kv_arr(g, 13, &ek, &count), 0);
    assert_int_equal(ek, REALM_GGUF_STRING), assert_int_equal(count, 3);
    assert_null(realm_gguf_arr_data(g, 13));
    assert_true(realm_gguf_str_eq(realm_gguf_arr_str(g, 13, 0), "a"));
    assert_true(realm_gguf_str_eq(realm_gguf_arr_str(g, 13, 1), ""));
    assert_true(realm_gguf_str_eq(realm_gguf_arr_str(g, 13, 2), "ccc"));
    assert_null(realm_gguf_arr_str(g, 13, 3).ptr);
    assert_null(realm_gguf_arr_str(g, 12, 0).ptr);
    assert_int_equal(realm_gguf_kv_arr(g, 14, &ek, &count), 0);
    assert_int_equal(ek, REALM_GGUF_ARRAY), assert_int_equal(count, 3);
    assert_null(realm_gguf_arr_data(g, 14));
    assert_int_equal(realm_gguf_kv_arr(g, 0, &ek, &count), REALM_E_INVALID);

    /* getters by key */
    realm_error err = {0};
    uint32_t u32;
    float f;
    assert_int_equal(realm_gguf_get_u32(g, "k.u16", &u32, &err), 0), assert_int_equal(u32, 60000);
    assert_int_equal(realm_gguf_get_u32(g, "k.i8", &u32, &err), REALM_E_RANGE);
    assert_non_null(strstr(err.message, "-5 does not fit u32"));
    assert_int_equal(realm_gguf_get_u32(g, "k.u64", &u32, &err), REALM_E_RANGE);
    assert_int_equal(realm_gguf_get_u32(g, "k.str", &u32, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "'k.str' is string, expected an integer"));
    assert_int_equal(realm_gguf_get_u32(g, "nope", &u32, &err), REALM_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "'nope' not found"));
    assert_int_equal(realm_gguf_get_f32(g, "k.f64", &f, &err), 0), assert_true(f == -2.5f);
    assert_int_equal(realm_gguf_get_f32(g, "k.u8", &f, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_get_bool(g, "k.bool", &bo, &err), 0), assert_true(bo);
    assert_int_equal(realm_gguf_get_bool(g, "k.u8", &bo, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_get_str(g, "k.str", &s, &err), 0);
    assert_true(realm_gguf_str_eq(s, "hello"));
    assert_int_equal(realm_gguf_get_str(g, "k.nested", &s, &err), REALM_E_INVALID);

    /* tensors: declared out of offset order on purpose */
    assert_int_equal(realm_gguf_tensor_count(g), 3);
    const realm_gguf_tensor *t = realm_gguf_find_tensor(g, "b.q8_0");
    assert_ptr_equal(t, realm_gguf_tensor_at(g, 1));
    assert_int_equal(t->type, REALM_TYPE_Q8_0);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[0], 64), assert_int_equal(t->ne[1], 1), assert_int_equal(t->ne[3], 1);
    assert_int_equal(t->n_elements, 64), assert_int_equal(t->size_bytes, 68);
    assert_ptr_equal(t->data, image + realm_gguf_data_offset(g) + 128);
    assert_int_equal(((const uint8_t *)t->data)[0], 128);
    t = realm_gguf_find_tensor(g, "c.f16");
    assert_int_equal(t->n_elements, 12), assert_int_equal(t->size_bytes, 24);
    assert_int_equal(t->ne[2], 2);
    assert_null(realm_gguf_find_tensor(g, "c.f1"));
    assert_null(realm_gguf_find_tensor(g, "d"));
    assert_null(realm_gguf_tensor_at(g, 3));
    walk(g);

    assert_string_equal(realm_gguf_kind_name(REALM_GGUF_STRING), "string");
    assert_string_equal(realm_gguf_kind_name(REALM_GGUF_KIND_COUNT), "invalid");
    realm_gguf_close(g);
    free(image);
    free(b.p);
}

static void test_read_minimal_and_v2(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t *image;
    put_header(&b, 2, 0, 0); /* no padding: a file without tensors needs no data section */
    realm_gguf_t *g = open_ok(&b, &image);
    assert_int_equal(realm_gguf_version(g), 2);
    assert_int_equal(realm_gguf_kv_count(g), 0);
    assert_int_equal(realm_gguf_tensor_count(g), 0);
    assert_int_equal(realm_gguf_find_key(g, "x"), -1);
    assert_null(realm_gguf_find_tensor(g, "x"));
    realm_gguf_close(g);
    free(image);
    free(b.p);
}

/* ---- validation: one bad file per rule ---- */

static void one_tensor(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_bytes)
{
    put_header(b, 3, 1, 0);
    put_tinfo(b, name, n_dims, ne, type, offset);
    put_pad(b, 32);
    put_zeros(b, data_bytes);
}

static void test_reject_header(void **state)
{
    (void)state;
    buf b = {0};
    put(&b, "GGU", 3);
    expect_fail(&b, REALM_E_FORMAT, "truncated: magic at byte 0 needs 4 bytes, 3 left");
    put(&b, "GGML", 4), put_le(&b, 3, 4), put_zeros(&b, 16);
    expect_fail(&b, REALM_E_FORMAT, "bad magic 47 47 4d 4c");
    put_header(&b, 1, 0, 0);
    expect_fail(&b, REALM_E_UNSUPPORTED, "GGUF header: GGUF v1");
    put_header(&b, 4, 0, 0);
    expect_fail(&b, REALM_E_UNSUPPORTED, "version 4 is not supported");
    put_header(&b, 0x03000000u, 0, 0);
    expect_fail(&b, REALM_E_UNSUPPORTED, "big-endian");
    put(&b, "GGUF", 4), put_le(&b, 3, 4), put_le(&b, 0, 8);
    expect_fail(&b, REALM_E_FORMAT, "truncated: kv_count at byte 16");
    /* 2^60 entries must fail before any allocation is sized by them */
    put_header(&b, 3, 0, 1ull << 60), put_zeros(&b, 100);
    expect_fail(&b, REALM_E_FORMAT, "kv_count 1152921504606846976 cannot fit");
    put_header(&b, 3, UINT64_MAX, 0), put_zeros(&b, 100);
    expect_fail(&b, REALM_E_FORMAT, "tensor_count 18446744073709551615 cannot fit");
    put_header(&b, 3, 3, 0), put_zeros(&b, 98); /* 3 × 33 > 98 */
    expect_fail(&b, REALM_E_FORMAT, "tensor_count 3 cannot fit");
}

static void test_reject_kv(void **state)
{
    (void)state;
    buf b = {0};
    put_header(&b, 3, 0, 1), put_le(&b, UINT64_MAX, 8), put_zeros(&b, 20);
    expect_fail(&b, REALM_E_FORMAT,
                "kv #0 (header byte 24): key at byte 24: length 18446744073709551615 exceeds "
                "the 20 bytes left");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "", REALM_GGUF_UINT8), put_zeros(&b, 8);
    expect_fail(&b, REALM_E_FORMAT, "empty key");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "k", 13), put_le(&b, 0, 8);
    expect_fail(&b, REALM_E_FORMAT, "kv 'k' (#0, header byte 24): value kind 13 at byte 33");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "k", REALM_GGUF_UINT64), put_le(&b, 0, 4);
    expect_fail(&b, REALM_E_FORMAT, "truncated: u64 at byte 37 needs 8 bytes, 4 left");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "k", REALM_GGUF_STRING), put_le(&b, 1ull << 63, 8);
    put_zeros(&b, 16);
    expect_fail(&b, REALM_E_FORMAT, "string value at byte 37: length 9223372036854775808");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "k", REALM_GGUF_BOOL), put_le(&b, 2, 1);
    expect_fail(&b, REALM_E_FORMAT, "bool at byte 37 is 2, not 0 or 1");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "k", REALM_GGUF_ARRAY);
    put_le(&b, REALM_GGUF_BOOL, 4), put_le(&b, 3, 8), put_le(&b, 0x000501, 3);
    expect_fail(&b, REALM_E_FORMAT, "bool at byte 50 is 5, not 0 or 1");
    put_header(&b, 3, 0, 3), put_kv_u32(&b, "a", 1), put_kv_u32(&b, "b", 2), put_kv_u32(&b, "a", 3);
    expect_fail(&b, REALM_E_FORMAT,
                "kv 'a' (#2, header byte 58): duplicate key (first defined by kv #0 at byte 24)");
}

static void test_reject_array(void **state)
{
    (void)state;
    buf b = {0};
    put_header(&b, 3, 0, 1), put_kv_head(&b, "arr", REALM_GGUF_ARRAY), put_le(&b, 77, 4);
    put_le(&b, 0, 8);
    expect_fail(&b, REALM_E_FORMAT, "array element kind 77 at byte 39 is unknown");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "arr", REALM_GGUF_ARRAY);
    put_le(&b, REALM_GGUF_UINT32, 4), put_le(&b, 1ull << 62, 8), put_zeros(&b, 64);
    expect_fail(&b, REALM_E_FORMAT, "array of 4611686018427387904 u32 at byte 39 cannot fit");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "arr", REALM_GGUF_ARRAY);
    put_le(&b, REALM_GGUF_STRING, 4), put_le(&b, 2, 8), put_str(&b, "ok");
    put_le(&b, 100, 8), put_zeros(&b, 20);
    expect_fail(&b, REALM_E_FORMAT, "array string at byte 61: length 100 exceeds the 20 bytes");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "arr", REALM_GGUF_ARRAY);
    put_le(&b, REALM_GGUF_ARRAY, 4), put_le(&b, 1, 8), put_le(&b, REALM_GGUF_UINT8, 4);
    put_le(&b, 5, 8), put_zeros(&b, 4);
    expect_fail(&b, REALM_E_FORMAT, "array of 5 u8 at byte 51 cannot fit");
    put_header(&b, 3, 0, 1), put_kv_head(&b, "deep", REALM_GGUF_ARRAY);
    put_nested(&b, REALM__GGUF_MAX_DEPTH + 1);
    expect_fail(&b, REALM_E_FORMAT, "arrays nested deeper than 8 levels");
}

static void test_reject_alignment(void **state)
{
    (void)state;
    buf b = {0};
    put_header(&b, 3, 0, 1), put_kv_head(&b, "general.alignment", REALM_GGUF_UINT64);
    put_le(&b, 32, 8);
    expect_fail(&b, REALM_E_FORMAT,
                "kv 'general.alignment' (#0, header byte 24): must be u32, is u64");
    put_header(&b, 3, 0, 1), put_kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, REALM_E_FORMAT, "0 is not a power of two");
    put_header(&b, 3, 0, 1), put_kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, REALM_E_FORMAT, "48 is not a power of two");
    /* the offset check uses the declared alignment */
    uint64_t ne[1] = {8};
    put_header(&b, 3, 1, 1), put_kv_u32(&b, "general.alignment", 64);
    put_tinfo(&b, "t", 1, ne, REALM_TYPE_F32, 32), put_pad(&b, 64), put_zeros(&b, 128);
    expect_fail(&b, REALM_E_FORMAT, "data offset 32 is not a multiple of the alignment 64");
}

static void test_reject_tensor(void **state)
{
    (void)state;
    buf b = {0};
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    one_tensor(&b, "", 1, ne, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "tensor #0 (header byte 24): empty name");
    one_tensor(&b, "t", 0, ne, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "tensor 't' (#0, header byte 24): n_dims 0 is not in 1..4");
    one_tensor(&b, "t", 5, ne, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "n_dims 5 is not in 1..4");
    uint64_t zero[2] = {32, 0};
    one_tensor(&b, "t", 2, zero, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "shape [32, 0]: dimension 1 is 0 (must be >= 1)");
    uint64_t neg[2] = {32, 1ull << 63};
    one_tensor(&b, "t", 2, neg, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "dimension 1 is 9223372036854775808 (> INT64_MAX)");
    uint64_t big[3] = {1ull << 32, 1ull << 31, 2};
    one_tensor(&b, "t", 3, big, REALM_TYPE_F32, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "element count overflows int64");
    uint64_t huge[2] = {1ull << 32, 1ull << 30};
    one_tensor(&b, "t", 2, huge, REALM_TYPE_F64, 0, 128);
    expect_fail(&b, REALM_E_FORMAT, "shape [4294967296, 1073741824]: byte size overflows");
    one_tensor(&b, "t", 1, ne, 4, 0, 128); /* id 4 was Q4_2, retired */
    expect_fail(&b, REALM_E_UNSUPPORTED, "type id 4 is unknown");
    one_tensor(&b, "t", 1, ne, 1000, 0, 128);
    expect_fail(&b, REALM_E_UNSUPPORTED, "type id 1000 is unknown");
    uint64_t odd[2] = {48, 2};
    one_tensor(&b, "t", 2, odd, REALM_TYPE_Q4_0, 0, 128);
    expect_fail(&b, REALM_E_FORMAT,
                "shape [48, 2]: ne[0] 48 is not a multiple of Q4_0's block size 32");
    one_tensor(&b, "t", 1, ne, REALM_TYPE_F32, 16, 256);
    expect_fail(&b, REALM_E_FORMAT, "data offset 16 is not a multiple of the alignment 32");
    put_header(&b, 3, 1, 0), put_str(&b, "tt.name"), put_le(&b, 1, 4), put_le(&b, 8, 8);
    put_le(&b, REALM_TYPE_F32, 4), put_le(&b, 0, 4);
    expect_fail(&b, REALM_E_FORMAT,
                "tensor 'tt.name' (#0, header byte 24): truncated: data offset at byte 55 needs 8 "
                "bytes, 4 left");

    /* the message names the tensor, the entry, the byte range and the file size */
    uint64_t q[2] = {4096, 1};
    put_header(&b, 3, 2, 0);
    put_tinfo(&b, "blk.0.attn_k.weight", 2, q, REALM_TYPE_F32, 0);
    size_t at = b.n;
    put_tinfo(&b, "blk.0.attn_q.weight", 2, q, REALM_TYPE_F32, 16384);
    put_pad(&b, 32);
    size_t data_start = b.n;
    put_zeros(&b, 16384 + 16000);
    char want[256];
    snprintf(want, sizeof want,
             "tensor 'blk.0.attn_q.weight' (#1, header byte %zu): data [offset %zu, +16384) "
             "extends past end of file (%zu bytes)",
             at, data_start + 16384, b.n);
    expect_fail(&b, REALM_E_FORMAT, want);
}

static void test_reject_tensor_set(void **state)
{
    (void)state;
    buf b = {0};
    uint64_t ne[1] = {16};
    put_header(&b, 3, 3, 0);
    put_tinfo(&b, "a", 1, ne, REALM_TYPE_F32, 0);
    put_tinfo(&b, "b", 1, ne, REALM_TYPE_F32, 64);
    put_tinfo(&b, "a", 1, ne, REALM_TYPE_F32, 128);
    put_pad(&b, 32), put_zeros(&b, 192);
    expect_fail(&b, REALM_E_FORMAT,
                "tensor 'a' (#2, header byte 90): duplicate name (first used by tensor #0 at "
                "byte 24)");
    uint64_t ne2[1] = {24}; /* 96 bytes from 0 reaches into [64, ...) */
    put_header(&b, 3, 3, 0);
    put_tinfo(&b, "late", 1, ne, REALM_TYPE_F32, 128);
    put_tinfo(&b, "b", 1, ne, REALM_TYPE_F32, 64);
    put_tinfo(&b, "a", 1, ne2, REALM_TYPE_F32, 0);
    put_pad(&b, 32);
    size_t ds = b.n;
    put_zeros(&b, 192);
    char want[200];
    snprintf(want, sizeof want,
             "tensor 'b' (#1, header byte 60): data [offset %zu, +64) overlaps tensor 'a' (#2) "
             "at [offset %zu, +96)",
             ds + 64, ds);
    expect_fail(&b, REALM_E_FORMAT, want);
    put_header(&b, 3, 2, 0);
    put_tinfo(&b, "x", 1, ne, REALM_TYPE_F32, 32);
    put_tinfo(&b, "y", 1, ne, REALM_TYPE_F32, 32);
    put_pad(&b, 32), put_zeros(&b, 192);
    expect_fail(&b, REALM_E_FORMAT, "tensor 'y' (#1, header byte 57): data [offset");
    /* control bytes in names are neutralised in messages */
    put_header(&b, 3, 1, 0);
    put_tinfo(&b, "evil\nname", 1, ne, REALM_TYPE_F32, 0);
    put_pad(&b, 32);
    expect_fail(&b, REALM_E_FORMAT, "tensor 'evil?name'");
}

/* ---- hostile images ---- */

static void test_truncation_every_offset(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t *full;
    make_rich(&b);
    realm_gguf_t *g = open_ok(&b, &full);
    /* past the last tensor byte only alignment padding remains */
    uint64_t end = 0;
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        uint64_t e = realm_gguf_data_offset(g) + t->offset + t->size_bytes;
        if (e > end) end = e;
    }
    realm_gguf_close(g);
    free(full);
    for (size_t n = 0; n < b.n; n++) {
        realm_error err = {0};
        uint8_t *image = exact_copy(b.p, n);
        realm_status st = realm_gguf_open_memory(image, n, &g, &err);
        if (n < end) {
            if (st != REALM_E_FORMAT) fail_msg("size %zu: %d %s", n, st, err.message);
            assert_true(err.message[0] != '\0');
        } else {
            assert_int_equal(st, REALM_OK);
            realm_gguf_close(g);
        }
        free(image);
    }
    free(b.p);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_corruption(void **state)
{
    (void)state;
    buf b = {0};
    make_rich(&b);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int n_ok = 0;
    static const uint8_t interesting[] = {0, 1, 2, 7, 8, 9, 12, 13, 0x7f, 0x80, 0xff};
    for (int it = 0; it < 5000; it++) {
        uint8_t *image = exact_copy(b.p, b.n);
        size_t size = b.n;
        int flips = 1 + (int)(rng_next(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)(rng_next(&seed) % size);
            uint64_t r = rng_next(&seed);
            image[at] = (r & 1) ? (uint8_t)(r >> 8) : interesting[(r >> 8) % sizeof interesting];
        }
        if (rng_next(&seed) % 8 == 0) size = (size_t)(rng_next(&seed) % size);
        realm_gguf_t *g = NULL;
        realm_error err = {0};
        if (realm_gguf_open_memory(image, size, &g, &err) == REALM_OK) {
            walk(g);
            realm_gguf_close(g);
            n_ok++;
        } else {
            assert_null(g);
            assert_true(err.status < 0 && err.message[0]);
        }
        free(image);
    }
    /* flips in tensor data and padding keep the file valid: both paths ran */
    assert_true(n_ok > 100 && n_ok < 4900);
    free(b.p);
}

static void test_alloc_failure_open(void **state)
{
    (void)state;
    buf b = {0};
    make_rich(&b);
    uint8_t *image = exact_copy(b.p, b.n);
    long n;
    for (n = 0;; n++) {
        realm_gguf_t *g = NULL;
        realm_error err = {0};
        realm_alloc_fail_after(n);
        realm_status st = realm_gguf_open_memory(image, b.n, &g, &err);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) {
            walk(g);
            realm_gguf_close(g);
            break;
        }
        assert_int_equal(st, REALM_E_NOMEM);
        assert_non_null(strstr(err.message, "no memory"));
        assert_null(g);
    }
    assert_true(n >= 5); /* handle, 4 tables, the string index, the offset sort */
    free(image);
    free(b.p);
}

/* ---- files ---- */

static void test_open_file(void **state)
{
    (void)state;
    realm_gguf_t *g = NULL;
    realm_error err = {0};
    assert_int_equal(realm_gguf_open("/nonexistent/x.gguf", &g, &err), REALM_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent/x.gguf: No such file"));
    assert_int_equal(realm_gguf_open("/tmp", &g, &err), REALM_E_IO);
    const char *path = temp_path("file");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(realm_gguf_open(path, &g, &err), REALM_E_FORMAT);
    buf b = {0};
    put_header(&b, 1, 0, 0);
    f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    assert_int_equal(realm_gguf_open(path, &g, &err), REALM_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, ": GGUF header: GGUF v1"));
    b.n = 0;
    make_rich(&b);
    f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    for (long n = 0;; n++) { /* the mapping must be released on every failure */
        realm_alloc_fail_after(n);
        realm_status st = realm_gguf_open(path, &g, &err);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) break;
        assert_int_equal(st, REALM_E_NOMEM);
    }
    assert_int_equal(realm_gguf_tensor_count(g), 3);
    walk(g);
    realm_gguf_close(g);
    unlink(path);
    free(b.p);
}

/* ---- writing ---- */

/* Deterministic tensor bytes: tensor k, byte i. */
static uint8_t pattern(int k, uint64_t i)
{
    return (uint8_t)(i * 31 + (uint64_t)k * 7 + (i >> 8));
}

typedef struct tspec {
    const char *name;
    realm_type type;
    uint32_t n_dims;
    int64_t ne[4];
    uint64_t size_bytes;
} tspec;

static const tspec specs[] = {
    {"t.f32", REALM_TYPE_F32, 2, {3, 2}, 24},
    {"t.q4_0", REALM_TYPE_Q4_0, 2, {64, 2}, 4 * 18},
    {"t.q8_0", REALM_TYPE_Q8_0, 4, {32, 1, 1, 3}, 3 * 34},
    {"t.f16", REALM_TYPE_F16, 1, {5}, 10},
    {"t.q4_k", REALM_TYPE_Q4_K, 1, {256}, 144},
    {"t.i8", REALM_TYPE_I8, 3, {7, 1, 2}, 14},
};
#define N_SPECS (int)(sizeof specs / sizeof specs[0])

static char *tokens[1000];
static char token_store[1000][12];

/* Declare everything the round trip checks. Stops at the first error. */
static realm_status declare_all(realm_gguf_writer_t *w, const realm_gguf_t *src)
{
    static const uint8_t raw[3 * 8] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                       13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
    static const uint8_t bools[3] = {1, 0, 2};
    realm_status st;
    realm_error err;
#define TRY(x)                                                                                     \
    if ((st = (x))) return st
    TRY(realm_gguf_writer_set_u32(w, "w.u32", 1));
    TRY(realm_gguf_writer_set_i32(w, "w.i32", -7));
    TRY(realm_gguf_writer_set_u64(w, "w.u64", 1ull << 40));
    TRY(realm_gguf_writer_set_f32(w, "w.f32", 0.25f));
    TRY(realm_gguf_writer_set_bool(w, "w.bool", true));
    TRY(realm_gguf_writer_set_str(w, "w.str", "h\xc3\xa9llo"));
    for (int k = 0; k < REALM_GGUF_KIND_COUNT; k++) {
        char key[32];
        if (!realm__gguf_kind_size[k]) continue;
        snprintf(key, sizeof key, "w.arr.%s", realm_gguf_kind_name(k));
        TRY(realm_gguf_writer_set_arr(w, key, k, k == REALM_GGUF_BOOL ? bools : raw, 3));
    }
    TRY(realm_gguf_writer_set_arr(w, "w.arr.empty", REALM_GGUF_UINT8, NULL, 0));
    TRY(realm_gguf_writer_set_arr_str(w, "w.tokens", (const char *const *)tokens, 1000));
    for (int64_t i = 0; src && i < realm_gguf_kv_count(src); i++)
        TRY(realm_gguf_writer_copy_kv(w, src, i));
    TRY(realm_gguf_writer_set_u32(w, "w.u32", 42)); /* replaces, keeps its place */
    for (int k = 0; k < N_SPECS; k++)
        TRY(realm_gguf_writer_add_tensor(w, specs[k].name, specs[k].type, specs[k].n_dims,
                                         specs[k].ne, &err));
#undef TRY
    return REALM_OK;
}

/* Stream every tensor in pieces of 1, 7 and the rest. */
static realm_status write_all(realm_gguf_writer_t *w, const char *path, realm_error *err)
{
    realm_status st = realm_gguf_writer_begin(w, path, err);
    for (int k = 0; !st && k < N_SPECS; k++) {
        uint8_t data[256];
        uint64_t n = specs[k].size_bytes, piece[3] = {1, 7, n - 8};
        for (uint64_t i = 0; i < n; i++)
            data[i] = pattern(k, i);
        for (int p = 0, at = 0; !st && p < 3; at += (int)piece[p], p++)
            st = realm_gguf_writer_write_tensor(w, data + at, piece[p], err);
    }
    return st ? st : realm_gguf_writer_finish(w, err);
}

static void test_write_roundtrip(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t *image;
    realm_error err = {0};
    for (int i = 0; i < 1000; i++) {
        token_store[i][0] = '\0'; /* every 100th token is empty */
        if (i % 100) snprintf(token_store[i], sizeof token_store[i], "tok%d", i);
        tokens[i] = token_store[i];
    }
    make_rich(&b);
    realm_gguf_t *src = open_ok(&b, &image), *g = NULL;
    realm_gguf_writer_t *w = NULL;
    const char *path = temp_path("rt");
    assert_int_equal(realm_gguf_writer_init(&w), 0);
    assert_int_equal(declare_all(w, src), 0);
    if (write_all(w, path, &err)) fail_msg("write: %s", err.message);
    realm_gguf_writer_free(w);
    if (realm_gguf_open(path, &g, &err)) fail_msg("reopen: %s", err.message);

    /* 6 scalars + 11 fixed arrays + empty + tokens, then the 17 copied */
    assert_int_equal(realm_gguf_version(g), 3);
    assert_int_equal(realm_gguf_kv_count(g), 19 + 17);
    assert_int_equal(realm_gguf_alignment(g), 64); /* copied general.alignment */
    uint32_t u32;
    uint64_t u64, count;
    float f;
    bool bo;
    int64_t i64;
    realm_gguf_str s;
    realm_gguf_kind ek;
    assert_int_equal(realm_gguf_find_key(g, "w.u32"), 0);
    assert_int_equal(realm_gguf_get_u32(g, "w.u32", &u32, &err), 0), assert_int_equal(u32, 42);
    assert_int_equal(realm_gguf_kv_kind(g, 1), REALM_GGUF_INT32);
    assert_int_equal(realm_gguf_kv_i64(g, 1, &i64), 0), assert_int_equal(i64, -7);
    assert_int_equal(realm_gguf_kv_u64(g, 2, &u64), 0), assert_true(u64 == 1ull << 40);
    assert_int_equal(realm_gguf_get_f32(g, "w.f32", &f, &err), 0), assert_true(f == 0.25f);
    assert_int_equal(realm_gguf_get_bool(g, "w.bool", &bo, &err), 0), assert_true(bo);
    assert_int_equal(realm_gguf_get_str(g, "w.str", &s, &err), 0);
    assert_true(realm_gguf_str_eq(s, "h\xc3\xa9llo"));
    for (int k = 0; k < REALM_GGUF_KIND_COUNT; k++) {
        char key[32];
        if (!realm__gguf_kind_size[k]) continue;
        snprintf(key, sizeof key, "w.arr.%s", realm_gguf_kind_name(k));
        int64_t i = realm_gguf_find_key(g, key);
        assert_int_equal(realm_gguf_kv_arr(g, i, &ek, &count), 0);
        assert_int_equal(ek, k), assert_int_equal(count, 3);
        const uint8_t *d = realm_gguf_arr_data(g, i);
        for (unsigned j = 0; j < 3 * realm__gguf_kind_size[k]; j++)
            assert_int_equal(d[j], k == REALM_GGUF_BOOL ? (j != 1) : j + 1);
    }
    int64_t ti = realm_gguf_find_key(g, "w.arr.empty");
    assert_int_equal(realm_gguf_kv_arr(g, ti, &ek, &count), 0), assert_int_equal(count, 0);
    ti = realm_gguf_find_key(g, "w.tokens");
    assert_int_equal(realm_gguf_kv_arr(g, ti, &ek, &count), 0);
    assert_int_equal(ek, REALM_GGUF_STRING), assert_int_equal(count, 1000);
    for (uint64_t j = 0; j < 1000; j++)
        assert_true(realm_gguf_str_eq(realm_gguf_arr_str(g, ti, j), tokens[j]));
    /* copied kvs keep their exact encoding, nested arrays included */
    for (int64_t i = 0; i < realm_gguf_kv_count(src); i++) {
        realm_gguf_kind ka, kb;
        const uint8_t *ra, *rb;
        uint64_t na, nb;
        realm_gguf_str key = realm_gguf_kv_key(src, i);
        int64_t j = realm_gguf_kv_count(g) - realm_gguf_kv_count(src) + i;
        assert_true(key.len == realm_gguf_kv_key(g, j).len);
        assert_memory_equal(key.ptr, realm_gguf_kv_key(g, j).ptr, key.len);
        assert_int_equal(realm__gguf_kv_raw(src, i, &ka, &ra, &na), 0);
        assert_int_equal(realm__gguf_kv_raw(g, j, &kb, &rb, &nb), 0);
        assert_int_equal(ka, kb), assert_int_equal(na, nb);
        assert_memory_equal(ra, rb, na);
    }

    assert_int_equal(realm_gguf_tensor_count(g), N_SPECS);
    uint64_t expect_off = 0;
    for (int k = 0; k < N_SPECS; k++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, k);
        assert_ptr_equal(t, realm_gguf_find_tensor(g, specs[k].name));
        assert_int_equal(t->type, specs[k].type);
        assert_int_equal(t->n_dims, specs[k].n_dims);
        int64_t n = 1;
        for (int d = 0; d < 4; d++) {
            int64_t want = d < (int)specs[k].n_dims ? specs[k].ne[d] : 1;
            assert_int_equal(t->ne[d], want);
            n *= want;
        }
        assert_int_equal(t->n_elements, n);
        assert_int_equal(t->size_bytes, specs[k].size_bytes);
        assert_int_equal(t->offset, expect_off);
        expect_off = (t->offset + t->size_bytes + 63) / 64 * 64;
        for (uint64_t i = 0; i < t->size_bytes; i++)
            assert_int_equal(((const uint8_t *)t->data)[i], pattern(k, i));
    }
    /* the last tensor is padded too, as ggml expects */
    assert_int_equal(realm_gguf_file_size(g), realm_gguf_data_offset(g) + expect_off);
    walk(g);
    realm_gguf_close(g);
    realm_gguf_close(src);
    unlink(path);
    free(image);
    free(b.p);
}

static void test_write_errors(void **state)
{
    (void)state;
    realm_gguf_writer_t *w = NULL;
    realm_error err = {0};
    const char *path = temp_path("err");
    int64_t ne[2] = {32, 2}, odd[1] = {31}, zero[2] = {32, 0};
    uint8_t data[256] = {0};
    assert_int_equal(realm_gguf_writer_init(&w), 0);

    assert_int_equal(realm_gguf_writer_set_u32(w, "", 1), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_str(w, "k", NULL), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_arr(w, "k", REALM_GGUF_STRING, data, 1),
                     REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_arr(w, "k", REALM_GGUF_KIND_COUNT, data, 1),
                     REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_arr(w, "k", REALM_GGUF_UINT8, NULL, 1), REALM_E_INVALID);
    const char *with_null[2] = {"a", NULL};
    assert_int_equal(realm_gguf_writer_set_arr_str(w, "k", with_null, 2), REALM_E_INVALID);

    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_F32, 0, ne, &err),
                     REALM_E_INVALID);
    assert_non_null(strstr(err.message, "tensor 't': n_dims 0 is not in 1..4"));
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_Q8_0, 1, odd, &err),
                     REALM_E_INVALID);
    assert_non_null(strstr(err.message, "not a multiple of Q8_0's block size 32"));
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_F32, 2, zero, &err),
                     REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", 4, 2, ne, &err), REALM_E_UNSUPPORTED);
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_F32, 2, ne, &err), 0);
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_F16, 1, ne, &err),
                     REALM_E_INVALID);
    assert_non_null(strstr(err.message, "'t' declared twice"));
    assert_int_equal(realm_gguf_writer_add_tensor(w, "u", REALM_TYPE_F16, 1, ne, &err), 0);

    assert_int_equal(realm_gguf_writer_set_u64(w, "general.alignment", 64), 0);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "power-of-two u32"));
    assert_int_equal(realm_gguf_writer_set_u32(w, "general.alignment", 48), 0);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_u32(w, "general.alignment", 16), 0);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 1, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_finish(w, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_begin(w, "/nonexistent/dir/x.gguf", &err), REALM_E_IO);
    assert_non_null(strstr(err.message, "/nonexistent/dir/x.gguf: No such file"));

    assert_int_equal(realm_gguf_writer_begin(w, path, &err), 0);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_set_u32(w, "late", 1), REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_add_tensor(w, "late", REALM_TYPE_F32, 1, ne, &err),
                     REALM_E_INVALID);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 200, &err), 0);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 0, &err), 0);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 100, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "tensor 't' (#0): a piece of 100 bytes crosses its end "
                                        "(200 of 256 bytes written)"));
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 56, &err), 0);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 60, &err), 0);
    assert_int_equal(realm_gguf_writer_finish(w, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "tensor 'u' (#1) has 60 of 64 bytes"));
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 4, &err), 0);
    assert_int_equal(realm_gguf_writer_write_tensor(w, data, 1, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "after the last tensor"));
    assert_int_equal(realm_gguf_writer_finish(w, &err), 0);
    assert_int_equal(realm_gguf_writer_finish(w, &err), REALM_E_INVALID);
    realm_gguf_writer_free(w);

    realm_gguf_t *g = NULL;
    if (realm_gguf_open(path, &g, &err)) fail_msg("%s", err.message);
    assert_int_equal(realm_gguf_alignment(g), 16);
    assert_int_equal(realm_gguf_kv_count(g), 1);
    assert_int_equal(realm_gguf_tensor_at(g, 1)->offset, 256);
    realm_gguf_close(g);

    /* an abandoned writer closes its file; an empty one writes a valid file */
    assert_int_equal(realm_gguf_writer_init(&w), 0);
    assert_int_equal(realm_gguf_writer_add_tensor(w, "t", REALM_TYPE_F32, 2, ne, &err), 0);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), 0);
    realm_gguf_writer_free(w);
    assert_int_equal(realm_gguf_writer_init(&w), 0);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), 0);
    assert_int_equal(realm_gguf_writer_finish(w, &err), 0);
    realm_gguf_writer_free(w);
    if (realm_gguf_open(path, &g, &err)) fail_msg("%s", err.message);
    assert_int_equal(realm_gguf_file_size(g), 32);
    realm_gguf_close(g);
    unlink(path);
}

static void test_write_alloc_failure(void **state)
{
    (void)state;
    buf b = {0};
    uint8_t *image;
    make_rich(&b);
    realm_gguf_t *src = open_ok(&b, &image), *g = NULL;
    const char *path = temp_path("oom");
    long n;
    for (n = 0;; n++) {
        realm_gguf_writer_t *w = NULL;
        realm_error err = {0};
        realm_alloc_fail_after(n);
        realm_status st = realm_gguf_writer_init(&w);
        if (!st) st = declare_all(w, src);
        if (!st) st = write_all(w, path, &err);
        realm_gguf_writer_free(w);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) break;
        assert_int_equal(st, REALM_E_NOMEM);
    }
    assert_true(n > 40);
    realm_error err = {0};
    if (realm_gguf_open(path, &g, &err)) fail_msg("%s", err.message);
    assert_int_equal(realm_gguf_tensor_count(g), N_SPECS);
    realm_gguf_close(g);
    realm_gguf_close(src);
    unlink(path);
    free(image);
    free(b.p);
}

/* ---- the real default model ---- */

static void test_real_model(void **state)
{
    (void)state;
    char path[1024];
    const char *env = getenv("REALM_MODEL_PATH"), *home = getenv("HOME");
    struct stat sb;
    if (env)
        snprintf(path, sizeof path, "%s", env);
    else
        snprintf(path, sizeof path, "%s/.cache/realm/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                 home ? home : "");
    if (stat(path, &sb) != 0) {
        print_message("skipping: %s not found\n", path);
        skip();
    }
    realm_gguf_t *g = NULL;
    realm_error err = {0};
    realm_gguf_str s;
    uint32_t u32;
    realm_gguf_kind ek;
    uint64_t count;
    if (realm_gguf_open(path, &g, &err)) fail_msg("%s", err.message);
    assert_int_equal(realm_gguf_version(g), 3);
    assert_int_equal(realm_gguf_kv_count(g), 33);
    assert_int_equal(realm_gguf_tensor_count(g), 272);
    assert_int_equal(realm_gguf_get_str(g, "general.architecture", &s, &err), 0);
    assert_true(realm_gguf_str_eq(s, "llama"));
    assert_int_equal(realm_gguf_get_u32(g, "llama.block_count", &u32, &err), 0);
    assert_int_equal(u32, 30);
    assert_int_equal(realm_gguf_get_u32(g, "llama.embedding_length", &u32, &err), 0);
    assert_int_equal(u32, 576);
    int64_t ti = realm_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_int_equal(realm_gguf_kv_arr(g, ti, &ek, &count), 0);
    assert_int_equal(ek, REALM_GGUF_STRING), assert_int_equal(count, 49152);
    assert_true(realm_gguf_str_eq(realm_gguf_arr_str(g, ti, 0), "<|endoftext|>"));
    const realm_gguf_tensor *t = realm_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, REALM_TYPE_Q8_0);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 576), assert_int_equal(t->ne[1], 49152);
    assert_int_equal(t->size_bytes, 576 / 32 * 34 * 49152);
    walk(g);
    realm_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_rich),
        cmocka_unit_test(test_read_minimal_and_v2),
        cmocka_unit_test(test_reject_header),
        cmocka_unit_test(test_reject_kv),
        cmocka_unit_test(test_reject_array),
        cmocka_unit_test(test_reject_alignment),
        cmocka_unit_test(test_reject_tensor),
        cmocka_unit_test(test_reject_tensor_set),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_alloc_failure_open),
        cmocka_unit_test(test_open_file),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_write_alloc_failure),
        cmocka_unit_test(test_real_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
