/* realm inspect — what a user wants to see when a model misbehaves: the file's
 * header, every metadata key with its value (long arrays abbreviated unless
 * --all), and a tensor table with name, type, shape, bytes and offset. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "gguf/gguf.h"

#define STR_PREVIEW 72   /* characters of a string value shown without --all */
#define ARRAY_PREVIEW 6  /* elements of an array shown without --all */

/* Print s with control characters and quotes escaped, at most max bytes
 * (max < 0: all). */
static void print_escaped(realm_gguf_str s, int64_t max)
{
    putchar('"');
    uint64_t n = (max >= 0 && s.len > (uint64_t)max) ? (uint64_t)max : s.len;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
    if (n < s.len) printf("... (%" PRIu64 " bytes)", s.len);
}

static size_t kind_size(realm_gguf_kind k)
{
    static const size_t sizes[REALM_GGUF_KIND_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return k < REALM_GGUF_KIND_COUNT ? sizes[k] : 0;
}

/* One element of a fixed-size kind at p (unaligned, little-endian host). */
static void print_scalar(realm_gguf_kind k, const unsigned char *p)
{
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
        uint64_t u64; int64_t i64; float f32; double f64;
    } v;
    memcpy(&v, p, kind_size(k));
    switch (k) {
    case REALM_GGUF_UINT8: printf("%" PRIu8, v.u8); break;
    case REALM_GGUF_INT8: printf("%" PRId8, v.i8); break;
    case REALM_GGUF_UINT16: printf("%" PRIu16, v.u16); break;
    case REALM_GGUF_INT16: printf("%" PRId16, v.i16); break;
    case REALM_GGUF_UINT32: printf("%" PRIu32, v.u32); break;
    case REALM_GGUF_INT32: printf("%" PRId32, v.i32); break;
    case REALM_GGUF_FLOAT32: printf("%.9g", v.f32); break;
    case REALM_GGUF_BOOL: fputs(v.u8 ? "true" : "false", stdout); break;
    case REALM_GGUF_UINT64: printf("%" PRIu64, v.u64); break;
    case REALM_GGUF_INT64: printf("%" PRId64, v.i64); break;
    case REALM_GGUF_FLOAT64: printf("%.17g", v.f64); break;
    default: fputs("?", stdout); break;
    }
}

static void print_value(const realm_gguf_t *g, int64_t i, int all)
{
    realm_gguf_kind k = realm_gguf_kv_kind(g, i);
    if (k == REALM_GGUF_STRING) {
        realm_gguf_str s;
        realm_gguf_kv_str(g, i, &s);
        print_escaped(s, all ? -1 : STR_PREVIEW);
        return;
    }
    if (k != REALM_GGUF_ARRAY) {
        realm_gguf_kind scalar = k;
        uint64_t u;
        int64_t s;
        double f;
        bool b;
        if (scalar == REALM_GGUF_FLOAT32 || scalar == REALM_GGUF_FLOAT64) {
            realm_gguf_kv_f64(g, i, &f);
            printf(scalar == REALM_GGUF_FLOAT32 ? "%.9g" : "%.17g", f);
        } else if (scalar == REALM_GGUF_BOOL) {
            realm_gguf_kv_bool(g, i, &b);
            fputs(b ? "true" : "false", stdout);
        } else if (realm_gguf_kv_u64(g, i, &u) == REALM_OK) {
            printf("%" PRIu64, u);
        } else if (realm_gguf_kv_i64(g, i, &s) == REALM_OK) {
            printf("%" PRId64, s);
        }
        return;
    }
    realm_gguf_kind ek;
    uint64_t n;
    realm_gguf_kv_arr(g, i, &ek, &n);
    printf("[%s x %" PRIu64 "]", realm_gguf_kind_name(ek), n);
    if (ek == REALM_GGUF_ARRAY) return;
    uint64_t shown = (!all && n > ARRAY_PREVIEW) ? ARRAY_PREVIEW : n;
    const unsigned char *data = realm_gguf_arr_data(g, i);
    for (uint64_t j = 0; j < shown; j++) {
        fputs(j ? ", " : " ", stdout);
        if (ek == REALM_GGUF_STRING) print_escaped(realm_gguf_arr_str(g, i, j), all ? -1 : 40);
        else print_scalar(ek, data + j * kind_size(ek));
    }
    if (shown < n) fputs(", ...", stdout);
}

int realm_cmd_inspect(int argc, char **argv)
{
    int all = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) all = 1;
        else if (!path && argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: realm inspect [--all] FILE.gguf\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: realm inspect [--all] FILE.gguf\n");
        return 2;
    }
    realm_error err = {0};
    realm_gguf_t *g = NULL;
    if (realm_gguf_open(path, &g, &err) != REALM_OK) {
        fprintf(stderr, "realm inspect: %s\n", err.message);
        return 1;
    }
    printf("file: %s\n", path);
    printf("gguf version %" PRIu32 ", %" PRIu64 " bytes, alignment %" PRIu32
           ", data at offset %" PRIu64 "\n",
           realm_gguf_version(g), realm_gguf_file_size(g), realm_gguf_alignment(g),
           realm_gguf_data_offset(g));

    int64_t n_kv = realm_gguf_kv_count(g);
    printf("\nmetadata (%" PRId64 " keys)\n", n_kv);
    for (int64_t i = 0; i < n_kv; i++) {
        realm_gguf_str key = realm_gguf_kv_key(g, i);
        printf("  %-44.*s %-7s ", (int)key.len, key.ptr,
               realm_gguf_kind_name(realm_gguf_kv_kind(g, i)));
        print_value(g, i, all);
        putchar('\n');
    }

    int64_t n_t = realm_gguf_tensor_count(g);
    uint64_t type_bytes[REALM_TYPE_COUNT] = {0};
    int64_t type_count[REALM_TYPE_COUNT] = {0};
    int64_t n_params = 0;
    printf("\ntensors (%" PRId64 ")\n", n_t);
    printf("  %-5s %-36s %-7s %-24s %12s %12s\n", "#", "name", "type", "shape", "bytes", "offset");
    for (int64_t i = 0; i < n_t; i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i);
        char shape[64];
        int off = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            off += snprintf(shape + off, sizeof shape - (size_t)off, "%s%" PRId64, d ? " x " : "",
                            t->ne[d]);
        printf("  %-5" PRId64 " %-36.*s %-7s %-24s %12" PRIu64 " %12" PRIu64 "\n", i,
               (int)t->name.len, t->name.ptr, realm_type_name(t->type), shape, t->size_bytes,
               t->offset);
        type_bytes[t->type] += t->size_bytes;
        type_count[t->type]++;
        n_params += t->n_elements;
    }
    printf("\nsummary: %" PRId64 " parameters (%.1f M)\n", n_params, (double)n_params / 1e6);
    for (int t = 0; t < REALM_TYPE_COUNT; t++)
        if (type_count[t])
            printf("  %-7s %4" PRId64 " tensors %12" PRIu64 " bytes (%.2f bits/weight)\n",
                   realm_type_name(t), type_count[t], type_bytes[t],
                   8.0 * (double)realm_type_traits_get(t)->type_size /
                       (double)realm_type_traits_get(t)->block_size);
    realm_gguf_close(g);
    return 0;
}
