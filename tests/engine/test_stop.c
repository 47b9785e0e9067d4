/* Tests for engine/stop.h: stop strings over streamed pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/stop.h"

/* Feed pieces; collect what is emitted; return whether a stop matched. */
static bool run(const char *const *stops, int n_stops, const char *const *pieces, int n_pieces,
                char *out)
{
    realm_stop s;
    realm_error err = {0};
    assert_int_equal(realm_stop_init(&s, stops, n_stops, 64, &err), REALM_OK);
    size_t o = 0;
    bool stopped = false;
    for (int i = 0; i < n_pieces && !stopped; i++) {
        const char *e;
        size_t n;
        stopped = realm_stop_feed(&s, pieces[i], strlen(pieces[i]), &e, &n, &err);
        memcpy(out + o, e, n);
        o += n;
    }
    if (!stopped) {
        const char *e;
        size_t n;
        realm_stop_flush(&s, &e, &n);
        memcpy(out + o, e, n);
        o += n;
    }
    out[o] = '\0';
    realm_stop_free(&s);
    return stopped;
}

static void test_no_stops_passes_everything(void **state)
{
    (void)state;
    const char *pieces[] = {"Hello", ", ", "world"};
    char out[64];
    assert_false(run(NULL, 0, pieces, 3, out));
    assert_string_equal(out, "Hello, world");
}

static void test_stop_across_pieces(void **state)
{
    (void)state;
    const char *stops[] = {"\nUser:"};
    const char *pieces[] = {"The answer", " is 4.\n", "Us", "er:", " more"};
    char out[64];
    assert_true(run(stops, 1, pieces, 5, out));
    assert_string_equal(out, "The answer is 4.");
}

static void test_partial_match_held_then_matched_or_released(void **state)
{
    (void)state;
    const char *stops[] = {"STOP"};
    const char *pieces[] = {"ST", "O", "P!", "x"}; /* STOP completes in the third piece */
    char out[64];
    assert_true(run(stops, 1, pieces, 4, out));
    assert_string_equal(out, "");
    const char *pieces2[] = {"ST", "O", "X", " end"};
    assert_false(run(stops, 1, pieces2, 4, out));
    assert_string_equal(out, "STOX end");
}

static void test_earliest_of_several_wins(void **state)
{
    (void)state;
    const char *stops[] = {"world", "lo, w"};
    const char *pieces[] = {"Hello, world"};
    char out[64];
    assert_true(run(stops, 2, pieces, 1, out));
    assert_string_equal(out, "Hel");
}

static void test_withheld_tail_is_flushed_at_end(void **state)
{
    (void)state;
    const char *stops[] = {"</s>"};
    const char *pieces[] = {"abc</"};
    char out[64];
    assert_false(run(stops, 1, pieces, 1, out));
    assert_string_equal(out, "abc</");
}

static void test_emits_incrementally(void **state)
{
    (void)state;
    const char *stops[] = {"##"};
    realm_stop s;
    realm_error err = {0};
    assert_int_equal(realm_stop_init(&s, stops, 1, 16, &err), REALM_OK);
    const char *e;
    size_t n;
    assert_false(realm_stop_feed(&s, "ab#", 3, &e, &n, &err));
    assert_int_equal(n, 2); /* '#' withheld */
    assert_memory_equal(e, "ab", 2);
    assert_false(realm_stop_feed(&s, "c", 1, &e, &n, &err));
    assert_int_equal(n, 2); /* "#c" released */
    assert_memory_equal(e, "#c", 2);
    assert_true(realm_stop_feed(&s, "d##e", 4, &e, &n, &err));
    assert_int_equal(n, 1);
    assert_memory_equal(e, "d", 1);
    assert_true(realm_stop_feed(&s, "more", 4, &e, &n, &err)); /* stays stopped */
    assert_int_equal(n, 0);
    /* a piece larger than the buffer is an error, not an overflow */
    realm_stop s2;
    assert_int_equal(realm_stop_init(&s2, stops, 1, 4, &err), REALM_OK);
    assert_false(realm_stop_feed(&s2, "0123456789", 10, &e, &n, &err));
    assert_int_equal(err.status, REALM_E_RANGE);
    realm_stop_free(&s2);
    realm_stop_free(&s);
}

static void test_bad_stop_lists(void **state)
{
    (void)state;
    realm_stop s;
    realm_error err = {0};
    const char *empty[] = {""};
    assert_int_equal(realm_stop_init(&s, empty, 1, 16, &err), REALM_E_INVALID);
    const char *five[] = {"a", "b", "c", "d", "e"};
    assert_int_equal(realm_stop_init(&s, five, 5, 16, &err), REALM_E_INVALID);
    char *big = malloc(REALM_STOP_MAX_BYTES + 2);
    memset(big, 'x', REALM_STOP_MAX_BYTES + 1);
    big[REALM_STOP_MAX_BYTES + 1] = '\0';
    const char *bigs[] = {big};
    assert_int_equal(realm_stop_init(&s, bigs, 1, 16, &err), REALM_E_INVALID);
    free(big);
    const char *two[] = {"a", "bb"};
    for (long k = 0;; k++) { /* allocation failures: an error, no leak */
        realm_alloc_fail_after(k);
        realm_status st = realm_stop_init(&s, two, 2, 16, &err);
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) break;
        assert_int_equal(st, REALM_E_NOMEM);
    }
    realm_stop_free(&s);
}

/* Randomized: the streamed result equals cutting the whole text at the
 * earliest stop, for any split into pieces. */
static void test_random_splits_match_whole_text(void **state)
{
    (void)state;
    const char *stops[] = {"aba", "bb"};
    srand(7);
    for (int iter = 0; iter < 2000; iter++) {
        char text[40];
        int len = rand() % 30;
        for (int i = 0; i < len; i++) text[i] = "abc"[rand() % 3];
        text[len] = '\0';
        /* expected: earliest match of any stop */
        int cut = len;
        for (int p = 0; p < len && cut == len; p++)
            for (int k = 0; k < 2; k++)
                if (!strncmp(text + p, stops[k], strlen(stops[k]))) cut = p;
        const char *pieces[40];
        char store[40][40];
        int n = 0;
        for (int p = 0; p < len;) {
            int l = 1 + rand() % 4;
            if (p + l > len) l = len - p;
            memcpy(store[n], text + p, (size_t)l);
            store[n][l] = '\0';
            pieces[n] = store[n];
            n++;
            p += l;
        }
        char out[64];
        bool stopped = run(stops, 2, pieces, n, out);
        assert_int_equal(stopped, cut < len);
        assert_int_equal((int)strlen(out), cut);
        assert_memory_equal(out, text, (size_t)cut);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_stops_passes_everything),
        cmocka_unit_test(test_stop_across_pieces),
        cmocka_unit_test(test_partial_match_held_then_matched_or_released),
        cmocka_unit_test(test_earliest_of_several_wins),
        cmocka_unit_test(test_withheld_tail_is_flushed_at_end),
        cmocka_unit_test(test_emits_incrementally),
        cmocka_unit_test(test_bad_stop_lists),
        cmocka_unit_test(test_random_splits_match_whole_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
