/* Tests for engine/kv_pages: refcounts, free vs cached blocks, prefix lookup
 * (hit, miss, collision safety, tenant seeds) and LRU eviction order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/cpu/cpu.h"
#include "engine/kv_pages.h"

enum { BS = 4, NB = 6 };

static realm_kv_pages_t *make(realm_backend **be)
{
    realm_error err = {0};
    assert_int_equal(realm_backend_cpu_create(NULL, be, &err), REALM_OK);
    realm_hparams hp = {.n_layer = 2, .n_head_kv = 2, .head_dim = 8};
    realm_kv_pages_t *p = NULL;
    assert_int_equal(realm_kv_pages_init(*be, &hp, NB, BS, REALM_TYPE_F16, &p, &err), REALM_OK);
    const realm_kv_pool *pool = realm_kv_pages_pool(p);
    assert_int_equal(pool->n_blocks, NB);
    assert_int_equal(pool->kv_dim, 16);
    return p;
}

static void test_alloc_ref_free(void **state)
{
    (void)state;
    realm_backend *be;
    realm_kv_pages_t *p = make(&be);
    int32_t b[NB];
    for (int i = 0; i < NB; i++) {
        b[i] = realm_kv_pages_alloc(p);
        assert_true(b[i] >= 0 && b[i] < NB);
    }
    assert_int_equal(realm_kv_pages_alloc(p), -1);
    assert_int_equal(realm_kv_pages_available(p), 0);
    for (int i = 0; i < NB; i++)
        realm_kv_pages_unref(p, b[i]);
    realm_kv_pages_stats s = realm_kv_pages_stats_get(p);
    assert_int_equal(s.n_free, NB);
    assert_int_equal(s.n_cached, 0);
    realm_kv_pages_free(p);
    realm_backend_free(be);
}

static void test_prefix_lookup_and_lru(void **state)
{
    (void)state;
    realm_backend *be;
    realm_kv_pages_t *p = make(&be);
    int32_t t[3][BS] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    uint64_t seed_a = realm_kv_pages_seed(1, 0, 0), seed_b = realm_kv_pages_seed(2, 0, 0);
    assert_true(seed_a != seed_b);
    assert_true(seed_a != realm_kv_pages_seed(1, 1, 0));
    assert_true(seed_a != realm_kv_pages_seed(1, 0, 1));
    /* Publish a chain of three blocks for tenant a, then drop the references:
     * they become cached, oldest first in the order released. */
    uint64_t key[3], parent = seed_a;
    int32_t blk[3];
    for (int i = 0; i < 3; i++) {
        key[i] = realm_kv_pages_hash(parent, t[i], BS);
        blk[i] = realm_kv_pages_alloc(p);
        realm_kv_pages_publish(p, blk[i], key[i], parent, t[i]);
        parent = key[i];
    }
    /* The same key published again from another block is ignored. */
    int32_t dup = realm_kv_pages_alloc(p);
    realm_kv_pages_publish(p, dup, key[0], seed_a, t[0]);
    realm_kv_pages_unref(p, dup);
    for (int i = 0; i < 3; i++)
        realm_kv_pages_unref(p, blk[i]);
    realm_kv_pages_stats s = realm_kv_pages_stats_get(p);
    assert_int_equal(s.n_cached, 3);
    assert_int_equal(s.n_free, NB - 3);
    assert_int_equal(realm_kv_pages_available(p), NB);
    /* Hit for tenant a; miss for tenant b with the same tokens; a key with the
     * wrong tokens (a forged collision) misses. */
    int32_t h = realm_kv_pages_lookup(p, key[0], seed_a, t[0]);
    assert_int_equal(h, blk[0]);
    assert_int_equal(realm_kv_pages_lookup(p, realm_kv_pages_hash(seed_b, t[0], BS), seed_b, t[0]),
                     -1);
    assert_int_equal(realm_kv_pages_lookup(p, key[1], key[0], t[2]), -1);
    s = realm_kv_pages_stats_get(p);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.n_cached, 2);
    realm_kv_pages_unref(p, h); /* blk[0] is now the most recently used */
    /* Allocating everything: free blocks first, then cached ones evicted
     * oldest first: blk[1], blk[2], then blk[0]. */
    int32_t got[NB];
    for (int i = 0; i < NB; i++)
        got[i] = realm_kv_pages_alloc(p);
    assert_int_equal(got[NB - 3], blk[1]);
    assert_int_equal(got[NB - 2], blk[2]);
    assert_int_equal(got[NB - 1], blk[0]);
    s = realm_kv_pages_stats_get(p);
    assert_int_equal(s.evictions, 3);
    assert_int_equal(realm_kv_pages_lookup(p, key[0], seed_a, t[0]), -1);
    for (int i = 0; i < NB; i++)
        realm_kv_pages_unref(p, got[i]);
    assert_int_equal(realm_kv_pages_stats_get(p).n_free, NB);
    realm_kv_pages_free(p);
    realm_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_ref_free),
        cmocka_unit_test(test_prefix_lookup_and_lru),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
