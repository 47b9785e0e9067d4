/*
 * tokenizer/utf8.h — the few UTF-8 facts the tokenizer needs.
 *
 * Validity is RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), no
 * code points above U+10FFFF — the same rules PCRE2 applies, so text that
 * passes here may be matched with PCRE2_NO_UTF_CHECK. Pure functions,
 * thread-safe.
 */
#ifndef REALM_TOKENIZER_UTF8_H
#define REALM_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Offset of the first byte that is not part of a valid UTF-8 sequence, or len
 * when all of s[0..len) is valid. */
size_t realm_utf8_invalid_offset(const char *s, size_t len);

/* Length of the valid UTF-8 sequence at s[0..len) (1..4), or 0 when the bytes
 * there are not one (including a sequence cut short by len). */
size_t realm_utf8_seq_len(const unsigned char *s, size_t len);

/* Length a sequence announces by its lead byte (1..4), 0 for a byte that cannot
 * start one. */
static inline size_t realm_utf8_lead_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    if (c < 0xF5) return 4;
    return 0;
}

/* Whether b may follow lead as the second byte: its range carries the
 * overlong, surrogate and > U+10FFFF rules. */
static inline int realm_utf8_second_ok(unsigned char lead, unsigned char b)
{
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead == 0xE0)
        lo = 0xA0;
    else if (lead == 0xED)
        hi = 0x9F;
    else if (lead == 0xF0)
        lo = 0x90;
    else if (lead == 0xF4)
        hi = 0x8F;
    return b >= lo && b <= hi;
}

/* Write code point cp (< 0x110000, not a surrogate) to out; returns 1..4. */
size_t realm_utf8_encode(uint32_t cp, char out[4]);

/* Decode the valid sequence at s (as checked by realm_utf8_seq_len). */
uint32_t realm_utf8_decode(const unsigned char *s, size_t n);

#endif
