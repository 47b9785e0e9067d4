/*
 * gguf/gguf_impl.h — what read.c and write.c share and nobody else needs.
 *
 * Both sides encode integers little-endian with explicit byte loads/stores,
 * but array payloads are copied raw (realm_gguf_arr_data hands out the file's
 * bytes, the writer copies the caller's values), which is only correct on a
 * little-endian host — the only hosts Realm targets.
 */
#ifndef REALM_GGUF_GGUF_IMPL_H
#define REALM_GGUF_GGUF_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf/: GGUF array payloads are handed out raw; a big-endian host needs byte swapping"
#endif

#define REALM__GGUF_MAGIC   "GGUF"
#define REALM__GGUF_VERSION 3
/* Arrays of arrays deeper than this are rejected: nothing real nests more
 * than twice, and the validator recurses once per level. */
#define REALM__GGUF_MAX_DEPTH 8

/* Bytes of one value of a fixed-size kind; 0 for STRING and ARRAY. */
extern const uint8_t realm__gguf_kind_size[REALM_GGUF_KIND_COUNT];
/* "u32", "string", ... */
extern const char *const realm__gguf_kind_names[REALM_GGUF_KIND_COUNT];

/* ---- the open file (read.c builds it, query.c answers from it) ---- */

typedef struct realm__gguf_kv {
    realm_gguf_str key;
    uint64_t header_pos; /* file offset where the entry starts, for messages */
    const uint8_t *raw;  /* the value's encoding, just after the u32 kind */
    uint64_t raw_size;
    realm_gguf_kind kind;
    realm_gguf_kind elem_kind; /* arrays */
    uint64_t count;            /* arrays */
    uint64_t *str_offsets;     /* string arrays: file offset of each element, (count) */
} realm__gguf_kv;

typedef struct realm__gguf_tensor {
    realm_gguf_tensor t;
    uint64_t header_pos;
} realm__gguf_tensor;

struct realm_gguf {
    const uint8_t *base; /* the image, (size) bytes */
    uint64_t size;
    bool mapped; /* munmap on close */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    realm__gguf_kv *kv;               /* (n_kv) in file order */
    const realm__gguf_kv **kv_by_key; /* (n_kv) sorted by key */
    int64_t n_tensors;
    realm__gguf_tensor *tensors;               /* (n_tensors) in file order */
    const realm__gguf_tensor **tensor_by_name; /* (n_tensors) sorted by name */
};

/* Little-endian load of n <= 8 bytes. */
static inline uint64_t realm__gguf_ld_le(const uint8_t *b, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* Byte order, then length: the order both name indexes are sorted in. */
static inline int realm__gguf_str_cmp(realm_gguf_str a, realm_gguf_str b)
{
    size_t n = (size_t)(a.len < b.len ? a.len : b.len);
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* Shape rules shared by the reader and the writer: n_dims in 1..4, every
 * ne >= 1, a known type, ne[0] a multiple of the block size, element count
 * and byte size without overflow. On failure returns REALM_E_UNSUPPORTED (an
 * unknown type id) or REALM_E_FORMAT and writes the reason into why. */
realm_status realm__gguf_tensor_geometry(int64_t type, uint32_t n_dims, const int64_t *ne,
                                         int64_t *n_elements, uint64_t *size_bytes, char *why,
                                         size_t why_size);

/* The encoded value of kv i exactly as stored in the file (the bytes after
 * its u32 kind), for realm_gguf_writer_copy_kv. REALM_E_RANGE on a bad i. */
realm_status realm__gguf_kv_raw(const realm_gguf_t *g, int64_t i, realm_gguf_kind *kind,
                                const uint8_t **raw, uint64_t *raw_size);

#endif
