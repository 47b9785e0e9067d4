/*
 * engine/stop.h — stop strings over streamed text.
 *
 * Generation streams text piece by piece (one detokenized token at a time);
 * a stop string may straddle pieces. The matcher withholds the longest tail
 * that could still grow into a stop string and releases everything before it.
 * When a stop string completes, the text before it is released and matching
 * ends: the stop string itself is never emitted (OpenAI's `stop` semantics).
 *
 * Memory: realm_stop_init copies the stop strings and sizes the buffer for
 * the longest piece it will be fed (max_piece_bytes); feeding never
 * allocates. A piece longer than that is an error (REALM_E_RANGE), not a
 * reallocation. Not thread-safe: one matcher per sequence.
 */
#ifndef REALM_ENGINE_STOP_H
#define REALM_ENGINE_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

#define REALM_STOP_MAX 4         /* OpenAI allows up to 4 stop sequences */
#define REALM_STOP_MAX_BYTES 256 /* per stop string */

typedef struct realm_stop {
    char *stops[REALM_STOP_MAX];
    size_t lens[REALM_STOP_MAX];
    int n_stops;
    size_t max_len;  /* longest stop string */
    char *buf;       /* [0, tail_off): emitted by the last call; [tail_off, buf_len): withheld */
    size_t tail_off, buf_len, buf_cap;
    bool stopped;
} realm_stop;

/* n_stops <= REALM_STOP_MAX non-empty strings of <= REALM_STOP_MAX_BYTES each
 * (REALM_E_INVALID otherwise, naming the problem). n_stops may be 0: then
 * every piece is released as it comes. */
realm_status realm_stop_init(realm_stop *s, const char *const *stops, int n_stops,
                             size_t max_piece_bytes, realm_error *err);
void realm_stop_free(realm_stop *s);

/* Feed one piece. *emit and *emit_len receive the text that is now safe to send
 * (valid until the next call). Returns true when a stop string completed:
 * the emitted text ends just before it and later feeds emit nothing. */
bool realm_stop_feed(realm_stop *s, const char *piece, size_t len, const char **emit,
                     size_t *emit_len, realm_error *err);

/* At the end of generation (no stop string matched): the withheld tail. */
void realm_stop_flush(realm_stop *s, const char **emit, size_t *emit_len);

#endif
