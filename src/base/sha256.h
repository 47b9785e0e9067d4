/*
 * base/sha256.h — SHA-256 (FIPS 180-4) and a constant-time byte comparison.
 *
 * Contract: realm_sha256 hashes a whole buffer; the init/update/final trio
 * hashes a stream (the context is caller-owned, no allocation). realm_ct_equal
 * compares two buffers in time that depends only on n, never on where they
 * differ, for comparing secrets' hashes. Thread-safe: no shared state.
 */
#ifndef REALM_BASE_SHA256_H
#define REALM_BASE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REALM_SHA256_SIZE 32

typedef struct realm_sha256_ctx {
    uint32_t h[8];
    uint64_t n_bytes;  /* total bytes hashed so far */
    uint8_t block[64]; /* partial block */
    size_t block_len;
} realm_sha256_ctx;

void realm_sha256_init(realm_sha256_ctx *ctx);
void realm_sha256_update(realm_sha256_ctx *ctx, const void *data, size_t len);
void realm_sha256_final(realm_sha256_ctx *ctx, uint8_t out[REALM_SHA256_SIZE]);
void realm_sha256(const void *data, size_t len, uint8_t out[REALM_SHA256_SIZE]);

/* true when a and b are equal over n bytes; runs in time independent of the
 * contents. */
bool realm_ct_equal(const void *a, const void *b, size_t n);

#endif
