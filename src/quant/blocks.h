/*
 * quant/blocks.h — in-memory layout of every block-quantized format.
 *
 * These layouts are facts of the GGUF/GGML file format: a tensor's bytes are
 * an array of these structs, row after row. Shared by C and CUDA code; the
 * static_asserts pin the sizes the file format requires. Scales stored as
 * realm_fp16 are IEEE binary16 bits.
 *
 * Element order inside a block (what dequantization must reproduce) is
 * documented per type in the .c file that implements it.
 */
#ifndef REALM_QUANT_BLOCKS_H
#define REALM_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#include "quant/fp16.h"

#define REALM_QK4_0 32
#define REALM_QK4_1 32
#define REALM_QK5_0 32
#define REALM_QK5_1 32
#define REALM_QK8_0 32
#define REALM_QK8_1 32
#define REALM_QK4_NL 32
#define REALM_QK_K 256
#define REALM_K_SCALE_SIZE 12

/* Q4_0: x = d * (q - 8), q in [0,15]; qs[j] low nibble = element j, high = j+16 */
typedef struct {
    realm_fp16 d;
    uint8_t qs[REALM_QK4_0 / 2];
} realm_block_q4_0;
static_assert(sizeof(realm_block_q4_0) == 18, "q4_0 block size");

/* Q4_1: x = d * q + m */
typedef struct {
    realm_fp16 d;
    realm_fp16 m;
    uint8_t qs[REALM_QK4_1 / 2];
} realm_block_q4_1;
static_assert(sizeof(realm_block_q4_1) == 20, "q4_1 block size");

/* Q5_0: x = d * (q - 16), q = nibble | (bit j of qh) << 4 */
typedef struct {
    realm_fp16 d;
    uint8_t qh[4];
    uint8_t qs[REALM_QK5_0 / 2];
} realm_block_q5_0;
static_assert(sizeof(realm_block_q5_0) == 22, "q5_0 block size");

/* Q5_1: x = d * q + m */
typedef struct {
    realm_fp16 d;
    realm_fp16 m;
    uint8_t qh[4];
    uint8_t qs[REALM_QK5_1 / 2];
} realm_block_q5_1;
static_assert(sizeof(realm_block_q5_1) == 24, "q5_1 block size");

/* Q8_0: x = d * q */
typedef struct {
    realm_fp16 d;
    int8_t qs[REALM_QK8_0];
} realm_block_q8_0;
static_assert(sizeof(realm_block_q8_0) == 34, "q8_0 block size");

/* Q8_1: x = d * q; s = d * sum(q) (activation format paired with Q4_1/Q5_1).
 * GGML's layout is 36 bytes (two halves); gguf-py's size table still says 40. */
typedef struct {
    realm_fp16 d;
    realm_fp16 s;
    int8_t qs[REALM_QK8_1];
} realm_block_q8_1;
static_assert(sizeof(realm_block_q8_1) == 36, "q8_1 block size");

/* IQ4_NL: x = d * kvalues_iq4nl[nibble], nibble order as Q4_0 */
typedef struct {
    realm_fp16 d;
    uint8_t qs[REALM_QK4_NL / 2];
} realm_block_iq4_nl;
static_assert(sizeof(realm_block_iq4_nl) == 18, "iq4_nl block size");

/* Q2_K: 16 sub-blocks of 16; scales[i] low nibble = scale, high = min */
typedef struct {
    uint8_t scales[REALM_QK_K / 16];
    uint8_t qs[REALM_QK_K / 4];
    realm_fp16 d;
    realm_fp16 dmin;
} realm_block_q2_k;
static_assert(sizeof(realm_block_q2_k) == 84, "q2_k block size");

/* Q3_K: 16 sub-blocks of 16; 6-bit signed scales packed in 12 bytes */
typedef struct {
    uint8_t hmask[REALM_QK_K / 8];
    uint8_t qs[REALM_QK_K / 4];
    uint8_t scales[12];
    realm_fp16 d;
} realm_block_q3_k;
static_assert(sizeof(realm_block_q3_k) == 110, "q3_k block size");

/* Q4_K: 8 sub-blocks of 32; 6-bit scales and mins packed in 12 bytes */
typedef struct {
    realm_fp16 d;
    realm_fp16 dmin;
    uint8_t scales[REALM_K_SCALE_SIZE];
    uint8_t qs[REALM_QK_K / 2];
} realm_block_q4_k;
static_assert(sizeof(realm_block_q4_k) == 144, "q4_k block size");

/* Q5_K: as Q4_K plus one high bit per element */
typedef struct {
    realm_fp16 d;
    realm_fp16 dmin;
    uint8_t scales[REALM_K_SCALE_SIZE];
    uint8_t qh[REALM_QK_K / 8];
    uint8_t qs[REALM_QK_K / 2];
} realm_block_q5_k;
static_assert(sizeof(realm_block_q5_k) == 176, "q5_k block size");

/* Q6_K: 16 sub-blocks of 16; 8-bit signed scales; x = d * scale * (q - 32) */
typedef struct {
    uint8_t ql[REALM_QK_K / 2];
    uint8_t qh[REALM_QK_K / 4];
    int8_t scales[REALM_QK_K / 16];
    realm_fp16 d;
} realm_block_q6_k;
static_assert(sizeof(realm_block_q6_k) == 210, "q6_k block size");

/* Q8_K: activation format for the K-quants; bsums[i] = sum of qs[16i..16i+15] */
typedef struct {
    float d;
    int8_t qs[REALM_QK_K];
    int16_t bsums[REALM_QK_K / 16];
} realm_block_q8_k;
static_assert(sizeof(realm_block_q8_k) == 292, "q8_k block size");

/* IQ4_XS: 8 sub-blocks of 32; 6-bit scales (low 4 bits in scales_l, high 2 in
 * scales_h), x = d * (scale - 32) * kvalues_iq4nl[nibble] */
typedef struct {
    realm_fp16 d;
    uint16_t scales_h;
    uint8_t scales_l[REALM_QK_K / 64];
    uint8_t qs[REALM_QK_K / 2];
} realm_block_iq4_xs;
static_assert(sizeof(realm_block_iq4_xs) == 136, "iq4_xs block size");

#endif
