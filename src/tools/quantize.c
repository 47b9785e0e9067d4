#include "tools/quantize.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/parallel.h"
#include "gguf/gguf.h"
#include "tools/convert.h"
#include "tools/quant_mix.h"

typedef struct row_source {
    const realm_type_traits *tr;
    const unsigned char *data;
    size_t row_bytes;
} row_source;

static void dequant_row(void *ctx, int64_t row, float *dst, int64_t ne0)
{
    const row_source *s = ctx;
    s->tr->to_float(s->data + (size_t)row * s->row_bytes, dst, ne0);
}

static int n_layers(const realm_gguf_t *g)
{
    int n = 0;
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        int layer;
        if (t->name.len > 4 && !memcmp(t->name.ptr, "blk.", 4) && sscanf(t->name.ptr + 4, "%d", &layer) == 1 &&
            layer + 1 > n)
            n = layer + 1;
    }
    return n;
}

realm_status realm_quantize_file(const char *in_path, const char *out_path, const char *scheme,
                                 int n_threads, realm_error *err)
{
    realm_quant_mix mix_value;
    const realm_quant_mix *mix = &mix_value;
    if (!realm_quant_mix_find(scheme, &mix_value))
        return realm_error_set(err, REALM_E_INVALID, "unknown type or scheme '%s' (known: %s)",
                               scheme, realm_quant_mix_list());
    if (n_threads <= 0) n_threads = realm_cpu_count();
    realm_gguf_t *g = NULL;
    realm_gguf_writer_t *w = NULL;
    realm_type *types = NULL;
    void *buf = NULL;
    int begun = 0;
    realm_status st = realm_gguf_open(in_path, &g, err);
    if (st) return st;
    if ((st = realm_gguf_writer_init(&w))) {
        realm_error_set(err, st, "out of memory creating a GGUF writer");
        goto done;
    }
    for (int64_t i = 0; i < realm_gguf_kv_count(g) && !st; i++) st = realm_gguf_writer_copy_kv(w, g, i);
    if (!st && mix->file_type != REALM_FILE_TYPE_NONE)
        st = realm_gguf_writer_set_u32(w, "general.file_type", mix->file_type);
    if (st) {
        realm_error_set(err, st, "cannot copy metadata");
        goto done;
    }

    int64_t n_t = realm_gguf_tensor_count(g);
    int layers = n_layers(g);
    size_t max_bytes = 0;
    types = realm_calloc((size_t)n_t + 1, sizeof *types);
    if (!types) {
        st = realm_error_set(err, REALM_E_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        types[i] = realm_quant_mix_type(mix, name, t->n_dims, t->ne[0], layers);
        const realm_type_traits *src = realm_type_traits_get(t->type);
        if (types[i] != t->type && !src->to_float) {
            st = realm_error_set(err, REALM_E_UNSUPPORTED,
                                 "tensor '%s' is %s, which Realm cannot dequantize", name, src->name);
            goto done;
        }
        if ((st = realm_gguf_writer_add_tensor(w, name, types[i], t->n_dims, t->ne, err))) goto done;
        size_t bytes = realm_type_row_size(types[i], t->ne[0]) * (size_t)(t->n_elements / t->ne[0]);
        if (types[i] != t->type && bytes > max_bytes) max_bytes = bytes;
    }
    if ((st = realm_gguf_writer_begin(w, out_path, err))) goto done;
    begun = 1;
    if (max_bytes && !(buf = realm_malloc(max_bytes))) {
        st = realm_error_set(err, REALM_E_NOMEM, "out of memory: %zu bytes for one tensor", max_bytes);
        goto done;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        if (types[i] == t->type) {
            st = realm_gguf_writer_write_tensor(w, t->data, t->size_bytes, err);
        } else {
            int64_t rows = t->n_elements / t->ne[0];
            row_source src = {realm_type_traits_get(t->type), t->data,
                              realm_type_row_size(t->type, t->ne[0])};
            st = realm_convert_rows(types[i], t->ne[0], rows, dequant_row, &src, n_threads, buf, err);
            if (!st)
                st = realm_gguf_writer_write_tensor(
                    w, buf, realm_type_row_size(types[i], t->ne[0]) * (size_t)rows, err);
        }
        if (st) goto done;
    }
    st = realm_gguf_writer_finish(w, err);

done:
    realm_gguf_writer_free(w);
    if (st && begun) unlink(out_path);
    realm_free(buf);
    realm_free(types);
    realm_gguf_close(g);
    return st;
}
