/*
 * tokenizer/merge_queue.h — the priority queue both BPE variants merge with.
 *
 * A candidate merge of one symbol with its right neighbour. key orders the
 * queue (smallest first): the priority in the high 32 bits and the left
 * symbol's index in the low 32, so equal priorities resolve leftmost, the
 * rule of every reference implementation. a, b, c are the algorithm's own
 * (ids or sizes to detect a stale entry). The queue grows in a scratch
 * buffer owned by the caller; a pure data structure, no shared state.
 */
#ifndef REALM_TOKENIZER_MERGE_QUEUE_H
#define REALM_TOKENIZER_MERGE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct realm__cand {
    uint64_t key;
    int32_t a, b, c;
} realm__cand;

/* Lower is merged first: a BPE rank as it is. */
static inline uint64_t realm__cand_key(uint32_t priority, uint32_t left)
{
    return (uint64_t)priority << 32 | left;
}

/* A SentencePiece score, higher first, as a priority: the float's bits mapped
 * to an order-preserving integer, then inverted. */
static inline uint32_t realm__score_priority(float score)
{
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ~u;
}

static inline uint32_t realm__cand_left(const realm__cand *c)
{
    return (uint32_t)c->key;
}

static inline void realm__queue_push(realm__cand *h, size_t *n, realm__cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= c.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static inline realm__cand realm__queue_pop(realm__cand *h, size_t *n)
{
    realm__cand top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1].key < h[c].key) c++;
        if (h[c].key >= last.key) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

#endif
