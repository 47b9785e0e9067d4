#include "engine/stop.h"

#include <string.h>

#include "base/alloc.h"

realm_status realm_stop_init(realm_stop *s, const char *const *stops, int n_stops,
                             size_t max_piece_bytes, realm_error *err)
{
    memset(s, 0, sizeof *s);
    if (n_stops < 0 || n_stops > REALM_STOP_MAX)
        return realm_error_set(err, REALM_E_INVALID, "at most %d stop strings are allowed",
                               REALM_STOP_MAX);
    for (int i = 0; i < n_stops; i++) {
        size_t len = strlen(stops[i]);
        if (len == 0 || len > REALM_STOP_MAX_BYTES) {
            realm_stop_free(s);
            return realm_error_set(err, REALM_E_INVALID,
                                   "stop string %d must be 1 to %d bytes long (it is %zu)", i,
                                   REALM_STOP_MAX_BYTES, len);
        }
        if (!(s->stops[i] = realm_strdup(stops[i]))) {
            realm_stop_free(s);
            return realm_error_set(err, REALM_E_NOMEM, "out of memory");
        }
        s->lens[i] = len;
        s->n_stops = i + 1;
        if (len > s->max_len) s->max_len = len;
    }
    /* The withheld tail is shorter than the longest stop string. */
    s->buf_cap = s->max_len + max_piece_bytes;
    if (!(s->buf = realm_malloc(s->buf_cap ? s->buf_cap : 1))) {
        realm_stop_free(s);
        return realm_error_set(err, REALM_E_NOMEM, "out of memory");
    }
    return REALM_OK;
}

void realm_stop_free(realm_stop *s)
{
    for (int i = 0; i < s->n_stops; i++) realm_free(s->stops[i]);
    realm_free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Length of the longest proper suffix of buf[0..n) that is a prefix of some
 * stop string: those bytes may still grow into a match. */
static size_t partial_tail(const realm_stop *s, const char *buf, size_t n)
{
    size_t best = 0;
    for (int i = 0; i < s->n_stops; i++) {
        size_t k = s->lens[i] - 1 < n ? s->lens[i] - 1 : n;
        for (; k > best; k--)
            if (!memcmp(buf + n - k, s->stops[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

bool realm_stop_feed(realm_stop *s, const char *piece, size_t len, const char **emit,
                     size_t *emit_len, realm_error *err)
{
    /* The last call emitted buf[0..tail_off); the withheld tail follows it.
     * Move the tail to the front now that the caller is done with the text. */
    memmove(s->buf, s->buf + s->tail_off, s->buf_len - s->tail_off);
    s->buf_len -= s->tail_off;
    s->tail_off = 0;
    *emit = s->buf;
    *emit_len = 0;
    if (s->stopped) return true;
    if (s->buf_len + len > s->buf_cap) {
        realm_error_set(err, REALM_E_RANGE, "a %zu-byte piece exceeds the stop matcher's buffer",
                        len);
        return false;
    }
    memcpy(s->buf + s->buf_len, piece, len);
    size_t old = s->buf_len, n = old + len;
    s->buf_len = n;
    /* The earliest complete match wins. The withheld tail alone holds none,
     * so a match must end inside the new bytes. */
    size_t cut = n + 1;
    for (int i = 0; i < s->n_stops; i++) {
        size_t l = s->lens[i];
        if (l > n) continue;
        size_t from = old >= l ? old - l + 1 : 0;
        for (size_t p = from; p + l <= n && p < cut; p++)
            if (!memcmp(s->buf + p, s->stops[i], l)) {
                cut = p;
                break;
            }
    }
    if (cut <= n) {
        s->stopped = true;
        *emit_len = cut;
        s->tail_off = s->buf_len = 0;
        return true;
    }
    s->tail_off = n - partial_tail(s, s->buf, n);
    *emit_len = s->tail_off;
    return false;
}

void realm_stop_flush(realm_stop *s, const char **emit, size_t *emit_len)
{
    *emit = s->buf + s->tail_off;
    *emit_len = s->stopped ? 0 : s->buf_len - s->tail_off;
    s->tail_off = s->buf_len;
}
