/*
 * gguf/gguf.h — validated, zero-copy reader and a streaming writer for GGUF v2/v3.
 *
 * Format (little-endian): magic "GGUF", u32 version (2 or 3), u64 tensor_count,
 * u64 kv_count; kv_count × (string key, u32 value_type, value); tensor_count ×
 * (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset);
 * padding to `general.alignment` (u32 key, default 32, a power of two); the
 * data section, where each tensor starts at data_start + offset, offset a
 * multiple of the alignment. A string is u64 length + bytes (no NUL). An array
 * is u32 element type + u64 count + elements (arrays of arrays are allowed).
 *
 * Reader contract: realm_gguf_open maps the file read-only and validates the
 * whole header before returning — magic, version, counts against the file
 * size, every string and array length, value types, key uniqueness, tensor
 * name uniqueness, n_dims (1..4), dimensions (> 0, element count and byte
 * size overflow-checked), known type ids, rows a multiple of the block size,
 * alignment of every offset, and that every tensor's bytes lie inside the
 * file, and that no two tensors share bytes. Also rejected: empty keys and
 * tensor names, a dimension of 0 (empty tensors: ggml cannot load them
 * either), bools other than 0/1, arrays nested deeper than 8. Statuses:
 * REALM_E_FORMAT for malformed files, REALM_E_UNSUPPORTED for v1, big-endian
 * files and unknown tensor type ids, REALM_E_IO, REALM_E_NOMEM. The message
 * names what is wrong, the entry (key or tensor name, index, header byte)
 * and the byte offset; the reader never reads outside the mapping, and its
 * memory is bounded by a small multiple of the file's size whatever the
 * counts claim. After success, every accessor is a cheap lookup (names:
 * binary search over a sorted index; string array elements: an offset
 * index) and every pointer handed out points into the mapping and stays
 * valid until realm_gguf_close. A realm_gguf_t is immutable after open and
 * safe to share between threads.
 *
 * Writer contract: declare key/values and tensors (name, type, shape) first,
 * then realm_gguf_writer_begin writes the header; tensor data follows with
 * realm_gguf_writer_write_tensor in declaration order (so multi-GB models
 * stream to disk without being held in memory); realm_gguf_writer_finish
 * checks everything was written and closes the file. The writer copies every
 * key, string and shape it is given. Always GGUF v3, alignment 32 unless
 * `general.alignment` is set (a power-of-two u32, else begin fails); every
 * tensor, the last included, is padded to the alignment as ggml expects.
 * Misuse (wrong order, bad shapes, duplicate tensor names, a piece crossing a
 * tensor's end) is REALM_E_INVALID and leaves the writer usable; write
 * errors are REALM_E_IO. Not thread-safe.
 */
#ifndef REALM_GGUF_GGUF_H
#define REALM_GGUF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "quant/types.h"

#define REALM_GGUF_MAX_DIMS 4
#define REALM_GGUF_DEFAULT_ALIGNMENT 32

typedef enum realm_gguf_kind {
    REALM_GGUF_UINT8 = 0,
    REALM_GGUF_INT8 = 1,
    REALM_GGUF_UINT16 = 2,
    REALM_GGUF_INT16 = 3,
    REALM_GGUF_UINT32 = 4,
    REALM_GGUF_INT32 = 5,
    REALM_GGUF_FLOAT32 = 6,
    REALM_GGUF_BOOL = 7,
    REALM_GGUF_STRING = 8,
    REALM_GGUF_ARRAY = 9,
    REALM_GGUF_UINT64 = 10,
    REALM_GGUF_INT64 = 11,
    REALM_GGUF_FLOAT64 = 12,
    REALM_GGUF_KIND_COUNT
} realm_gguf_kind;

/* A string inside the mapping: not NUL-terminated. */
typedef struct realm_gguf_str {
    const char *ptr;
    uint64_t len;
} realm_gguf_str;

typedef struct realm_gguf_tensor {
    realm_gguf_str name;
    realm_type type;
    uint32_t n_dims;
    int64_t ne[REALM_GGUF_MAX_DIMS]; /* ne[0] is the row length (fastest); unused dims are 1 */
    int64_t n_elements;
    uint64_t offset;     /* from the start of the data section */
    uint64_t size_bytes; /* exact bytes of the tensor */
    const void *data;    /* points into the mapping */
} realm_gguf_tensor;

typedef struct realm_gguf realm_gguf_t;

/* ---- reader ---- */

realm_status realm_gguf_open(const char *path, realm_gguf_t **out, realm_error *err);
/* Validate and read a GGUF image already in memory (borrowed: data must
 * outlive the handle). Used by the fuzzer and tests. */
realm_status realm_gguf_open_memory(const void *data, size_t size, realm_gguf_t **out,
                                    realm_error *err);
void realm_gguf_close(realm_gguf_t *g);

uint32_t realm_gguf_version(const realm_gguf_t *g);
uint32_t realm_gguf_alignment(const realm_gguf_t *g);
/* File offset of the data section: the header's end rounded up to the
 * alignment (past the end of a file without tensors that omits the padding). */
uint64_t realm_gguf_data_offset(const realm_gguf_t *g);
uint64_t realm_gguf_file_size(const realm_gguf_t *g);

int64_t realm_gguf_kv_count(const realm_gguf_t *g);
realm_gguf_str realm_gguf_kv_key(const realm_gguf_t *g, int64_t i);
realm_gguf_kind realm_gguf_kv_kind(const realm_gguf_t *g, int64_t i);
/* Index of key, or -1. */
int64_t realm_gguf_find_key(const realm_gguf_t *g, const char *key);

/* Scalar getters by index: fail with REALM_E_INVALID when the kind differs,
 * REALM_E_RANGE when i is out of range or the value does not fit. */
realm_status realm_gguf_kv_u64(const realm_gguf_t *g, int64_t i, uint64_t *out); /* any unsigned or non-negative signed integer kind */
realm_status realm_gguf_kv_i64(const realm_gguf_t *g, int64_t i, int64_t *out); /* any integer kind that fits */
realm_status realm_gguf_kv_f64(const realm_gguf_t *g, int64_t i, double *out);  /* FLOAT32/FLOAT64 */
realm_status realm_gguf_kv_bool(const realm_gguf_t *g, int64_t i, bool *out);
realm_status realm_gguf_kv_str(const realm_gguf_t *g, int64_t i, realm_gguf_str *out);

/* Arrays: element kind and count; elements of a fixed-size kind are read with
 * realm_gguf_arr_data (raw little-endian values inside the mapping, possibly
 * unaligned: copy with memcpy), strings with realm_gguf_arr_str (O(1) after
 * open: the reader indexes string arrays). Nested arrays: kind ARRAY, and the
 * elements are not accessible through this API (they are validated). */
realm_status realm_gguf_kv_arr(const realm_gguf_t *g, int64_t i, realm_gguf_kind *elem_kind,
                               uint64_t *count);
const void *realm_gguf_arr_data(const realm_gguf_t *g, int64_t i);
realm_gguf_str realm_gguf_arr_str(const realm_gguf_t *g, int64_t i, uint64_t j);

/* Convenience by key: REALM_E_NOT_FOUND if absent, REALM_E_INVALID on kind
 * mismatch, REALM_E_RANGE when the value does not fit; err names the key.
 * get_u32 accepts any integer kind whose value fits, get_f32 f32 or f64. */
realm_status realm_gguf_get_u32(const realm_gguf_t *g, const char *key, uint32_t *out,
                                realm_error *err);
realm_status realm_gguf_get_f32(const realm_gguf_t *g, const char *key, float *out,
                                realm_error *err);
realm_status realm_gguf_get_bool(const realm_gguf_t *g, const char *key, bool *out,
                                 realm_error *err);
realm_status realm_gguf_get_str(const realm_gguf_t *g, const char *key, realm_gguf_str *out,
                                realm_error *err);

int64_t realm_gguf_tensor_count(const realm_gguf_t *g);
const realm_gguf_tensor *realm_gguf_tensor_at(const realm_gguf_t *g, int64_t i);
/* Tensor by name, or NULL. */
const realm_gguf_tensor *realm_gguf_find_tensor(const realm_gguf_t *g, const char *name);

/* Name of a value kind ("u32", "string", ...). */
const char *realm_gguf_kind_name(realm_gguf_kind k);
/* true when s equals the NUL-terminated c. */
bool realm_gguf_str_eq(realm_gguf_str s, const char *c);

/* ---- writer ---- */

typedef struct realm_gguf_writer realm_gguf_writer_t;

realm_status realm_gguf_writer_init(realm_gguf_writer_t **out);
void realm_gguf_writer_free(realm_gguf_writer_t *w); /* also closes an unfinished file */

/* Setting a key twice replaces the earlier value. */
realm_status realm_gguf_writer_set_u32(realm_gguf_writer_t *w, const char *key, uint32_t v);
realm_status realm_gguf_writer_set_i32(realm_gguf_writer_t *w, const char *key, int32_t v);
realm_status realm_gguf_writer_set_u64(realm_gguf_writer_t *w, const char *key, uint64_t v);
realm_status realm_gguf_writer_set_f32(realm_gguf_writer_t *w, const char *key, float v);
realm_status realm_gguf_writer_set_bool(realm_gguf_writer_t *w, const char *key, bool v);
realm_status realm_gguf_writer_set_str(realm_gguf_writer_t *w, const char *key, const char *v);
/* Array of a fixed-size kind: count elements of that kind's size from data. */
realm_status realm_gguf_writer_set_arr(realm_gguf_writer_t *w, const char *key,
                                       realm_gguf_kind elem_kind, const void *data,
                                       uint64_t count);
realm_status realm_gguf_writer_set_arr_str(realm_gguf_writer_t *w, const char *key,
                                           const char *const *strs, uint64_t count);
/* Copy one key/value (any kind, including nested arrays) from an open file. */
realm_status realm_gguf_writer_copy_kv(realm_gguf_writer_t *w, const realm_gguf_t *src,
                                       int64_t i);

/* Declare a tensor; ne[0] must be a multiple of the type's block size. */
realm_status realm_gguf_writer_add_tensor(realm_gguf_writer_t *w, const char *name,
                                          realm_type type, uint32_t n_dims, const int64_t *ne,
                                          realm_error *err);

realm_status realm_gguf_writer_begin(realm_gguf_writer_t *w, const char *path, realm_error *err);
/* Append size bytes to the current tensor (declaration order). A tensor may
 * come in several pieces; the writer moves to the next tensor (padding as
 * needed) when one is complete. A piece may not cross a tensor's end. */
realm_status realm_gguf_writer_write_tensor(realm_gguf_writer_t *w, const void *data,
                                            size_t size, realm_error *err);
realm_status realm_gguf_writer_finish(realm_gguf_writer_t *w, realm_error *err);

#endif
