/* Tests for base/sha256: the FIPS 180-4 example vectors (NIST CSRC "SHA256"
 * examples), padding boundaries against a streaming split, and the
 * constant-time comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/sha256.h"

static void hex(const uint8_t d[REALM_SHA256_SIZE], char out[65])
{
    for (int i = 0; i < REALM_SHA256_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *msg, size_t len, const char *want)
{
    uint8_t d[REALM_SHA256_SIZE];
    char got[65];
    realm_sha256(msg, len, d);
    hex(d, got);
    assert_string_equal(got, want);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_streamed(void **state)
{
    (void)state;
    /* One million 'a' fed in uneven pieces exercises the partial-block path. */
    char buf[1000];
    memset(buf, 'a', sizeof buf);
    realm_sha256_ctx ctx;
    realm_sha256_init(&ctx);
    size_t left = 1000000, step = 1;
    while (left > 0) {
        size_t n = step < left ? step : left;
        realm_sha256_update(&ctx, buf, n);
        left -= n;
        step = step % 977 + 13; /* stays below sizeof buf */
    }
    uint8_t d[REALM_SHA256_SIZE];
    char got[65];
    realm_sha256_final(&ctx, d);
    hex(d, got);
    assert_string_equal(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_padding_boundaries(void **state)
{
    (void)state;
    /* Lengths around the 56- and 64-byte padding boundaries: streaming byte
     * by byte equals one shot, and neighbouring lengths differ. */
    char msg[130];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('0' + i % 43);
    uint8_t prev[REALM_SHA256_SIZE] = {0};
    for (size_t len = 50; len <= 130; len++) {
        uint8_t one[REALM_SHA256_SIZE], two[REALM_SHA256_SIZE];
        realm_sha256(msg, len, one);
        realm_sha256_ctx ctx;
        realm_sha256_init(&ctx);
        for (size_t i = 0; i < len; i++)
            realm_sha256_update(&ctx, msg + i, 1);
        realm_sha256_final(&ctx, two);
        assert_memory_equal(one, two, REALM_SHA256_SIZE);
        assert_memory_not_equal(one, prev, REALM_SHA256_SIZE);
        memcpy(prev, one, sizeof prev);
    }
    /* 55 bytes fits the length in the same block; 56 needs a second one. */
    memset(msg, 'a', 64);
    check(msg, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    check(msg, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    check(msg, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_ct_equal(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    assert_true(realm_ct_equal(a, b, sizeof a));
    assert_true(realm_ct_equal(a, b, 0));
    for (size_t i = 0; i < sizeof a; i++) {
        b[i] ^= 0x80;
        assert_false(realm_ct_equal(a, b, sizeof a));
        b[i] ^= 0x80;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_million_a_streamed),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
