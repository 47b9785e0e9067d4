/*
 * tests/fuzz/fuzz_gguf.c — libFuzzer driver for the GGUF reader.
 *
 * Opens the input with realm_gguf_open_memory (libFuzzer hands us an
 * exact-size heap copy, so ASan sees any read past the image) and, when it is
 * accepted, walks every accessor over every entry and touches every byte the
 * reader hands out — a validated file must be safe to use blindly. It also
 * copies every kv into a writer, which re-reads the raw encodings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_impl.h"

static volatile uint64_t sink;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static uint64_t touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++)
        s += b[i];
    return s;
}

/* NUL-terminated copy of s, or NULL if s holds a NUL (then no C-string lookup can match it). */
static char *cstr(realm_gguf_str s)
{
    if (memchr(s.ptr, 0, (size_t)s.len)) return NULL;
    char *c = malloc((size_t)s.len + 1);
    CHECK(c);
    memcpy(c, s.ptr, (size_t)s.len);
    c[s.len] = '\0';
    return c;
}

static uint64_t walk_kv(const realm_gguf_t *g, int64_t i)
{
    realm_gguf_str k = realm_gguf_kv_key(g, i), s;
    realm_gguf_kind kind = realm_gguf_kv_kind(g, i), ek;
    uint64_t sum = touch(k.ptr, k.len) + kind, u, count;
    int64_t v;
    double d;
    bool b;
    uint32_t u32;
    float f;
    realm_error err;
    CHECK(k.len > 0 && kind < REALM_GGUF_KIND_COUNT);
    char *name = cstr(k);
    if (name) {
        CHECK(realm_gguf_find_key(g, name) == i);
        sum += realm_gguf_get_u32(g, name, &u32, &err) == REALM_OK ? u32 : 0;
        sum += realm_gguf_get_f32(g, name, &f, &err) == REALM_OK ? (f == f) : 0;
        sum += realm_gguf_get_bool(g, name, &b, &err) == REALM_OK ? b : 0;
        sum += realm_gguf_get_str(g, name, &s, &err) == REALM_OK ? touch(s.ptr, s.len) : 0;
        free(name);
    }
    if (!realm_gguf_kv_u64(g, i, &u)) sum += u;
    if (!realm_gguf_kv_i64(g, i, &v)) sum += (uint64_t)v;
    if (!realm_gguf_kv_f64(g, i, &d)) sum += d == d;
    if (!realm_gguf_kv_bool(g, i, &b)) sum += b;
    if (!realm_gguf_kv_str(g, i, &s)) sum += touch(s.ptr, s.len);
    sum += (uintptr_t)realm_gguf_kind_name(kind);
    if (realm_gguf_kv_arr(g, i, &ek, &count) != REALM_OK) return sum;
    CHECK(ek < REALM_GGUF_KIND_COUNT);
    const void *data = realm_gguf_arr_data(g, i);
    CHECK((data != NULL) == (realm__gguf_kind_size[ek] != 0));
    if (data) sum += touch(data, count * realm__gguf_kind_size[ek]);
    for (uint64_t j = 0; ek == REALM_GGUF_STRING && j < count; j++) {
        s = realm_gguf_arr_str(g, i, j);
        CHECK(s.ptr != NULL);
        sum += touch(s.ptr, s.len);
    }
    CHECK(realm_gguf_arr_str(g, i, count).ptr == NULL);
    return sum;
}

static uint64_t walk_tensor(const realm_gguf_t *g, int64_t i)
{
    const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
    CHECK(t && t->name.len > 0 && t->n_dims >= 1 && t->n_dims <= REALM_GGUF_MAX_DIMS);
    CHECK(t->size_bytes > 0 && t->offset % realm_gguf_alignment(g) == 0);
    CHECK(realm_type_traits_get(t->type) != NULL);
    uint64_t sum = touch(t->name.ptr, t->name.len);
    const uint8_t *data = t->data;
    sum += data[0] + data[t->size_bytes - 1]; /* first and last byte: ASan checks both ends */
    char *name = cstr(t->name);
    if (name) {
        CHECK(realm_gguf_find_tensor(g, name) == t);
        free(name);
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    realm_gguf_t *g = NULL;
    realm_error err = {0};
    if (realm_gguf_open_memory(data, size, &g, &err) != REALM_OK) {
        CHECK(g == NULL && err.status < 0 && err.message[0] != '\0');
        return 0;
    }
    uint64_t sum = realm_gguf_version(g) + realm_gguf_alignment(g) + realm_gguf_data_offset(g);
    CHECK(realm_gguf_file_size(g) == size);
    /* names the seeds do not define: the lookups' miss paths */
    sum += (uint64_t)realm_gguf_find_key(g, "tokenizer.ggml.scores");
    sum += realm_gguf_find_tensor(g, "output.weight") != NULL;
    for (int64_t i = 0; i < realm_gguf_kv_count(g); i++)
        sum += walk_kv(g, i);
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++)
        sum += walk_tensor(g, i);
    CHECK(realm_gguf_kv_kind(g, realm_gguf_kv_count(g)) == REALM_GGUF_KIND_COUNT);
    CHECK(realm_gguf_tensor_at(g, realm_gguf_tensor_count(g)) == NULL);

    realm_gguf_writer_t *w = NULL;
    if (realm_gguf_writer_init(&w) == REALM_OK) {
        for (int64_t i = 0; i < realm_gguf_kv_count(g); i++)
            CHECK(realm_gguf_writer_copy_kv(w, g, i) == REALM_OK);
        realm_gguf_writer_free(w);
    }
    sink = sum;
    realm_gguf_close(g);
    return 0;
}
