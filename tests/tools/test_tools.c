/* Tests for tools/: quantization mixes, synth and quantize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "gguf/gguf.h"
#include "tools/quant_mix.h"
#include "tools/quantize.h"
#include "tools/synth.h"

static char tmpdir[] = "/tmp/realm-test-tools-XXXXXX";

static void path_in_tmp(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void test_mix_rules(void **state)
{
    (void)state;
    realm_quant_mix m;
    assert_true(realm_quant_mix_find("q4_k_m", &m));
    assert_string_equal(m.name, "Q4_K_M");
    assert_int_equal(m.file_type, 15);
    /* 1-D tensors stay F32 */
    assert_int_equal(realm_quant_mix_type(&m, "blk.0.attn_norm.weight", 1, 4096, 32), REALM_TYPE_F32);
    /* output and the "more bits" layers get Q6_K: first/last eighth, every third between */
    assert_int_equal(realm_quant_mix_type(&m, "output.weight", 2, 4096, 32), REALM_TYPE_Q6_K);
    assert_int_equal(realm_quant_mix_type(&m, "blk.0.attn_v.weight", 2, 4096, 32), REALM_TYPE_Q6_K);
    assert_int_equal(realm_quant_mix_type(&m, "blk.31.ffn_down.weight", 2, 14336, 32), REALM_TYPE_Q6_K);
    assert_int_equal(realm_quant_mix_type(&m, "blk.6.attn_v.weight", 2, 4096, 32), REALM_TYPE_Q6_K);
    assert_int_equal(realm_quant_mix_type(&m, "blk.5.attn_v.weight", 2, 4096, 32), REALM_TYPE_Q4_K);
    assert_int_equal(realm_quant_mix_type(&m, "blk.5.attn_q.weight", 2, 4096, 32), REALM_TYPE_Q4_K);
    /* rows that are not a multiple of 256 fall back like llama.cpp */
    assert_int_equal(realm_quant_mix_type(&m, "blk.5.attn_q.weight", 2, 576, 30), REALM_TYPE_Q5_0);
    assert_int_equal(realm_quant_mix_type(&m, "output.weight", 2, 576, 30), REALM_TYPE_Q8_0);
    /* plain types apply everywhere; aliases; unknown names */
    assert_true(realm_quant_mix_find("Q8_K", &m));
    assert_int_equal(m.file_type, REALM_FILE_TYPE_NONE);
    assert_int_equal(realm_quant_mix_type(&m, "output.weight", 2, 512, 2), REALM_TYPE_Q8_K);
    assert_true(realm_quant_mix_find("q4_k", &m));
    assert_string_equal(m.name, "Q4_K_M");
    assert_false(realm_quant_mix_find("q4_z", &m));
    assert_false(realm_quant_mix_find("IQ2_XXS", &m)); /* no quantizer for it */
}

static realm_gguf_t *synth(const char *name, const char *shape, const char *scheme, uint64_t seed,
                           int threads, char *path, size_t n)
{
    path_in_tmp(path, n, name);
    realm_synth_options opt = {.shape = shape, .scheme = scheme, .out_path = path, .seed = seed,
                               .n_threads = threads};
    realm_error err = {0};
    if (realm_synth_write(&opt, &err) != REALM_OK) fail_msg("synth: %s", err.message);
    realm_gguf_t *g = NULL;
    if (realm_gguf_open(path, &g, &err) != REALM_OK) fail_msg("open: %s", err.message);
    return g;
}

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*size);
    assert_int_equal(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

static void test_synth_tiny_structure(void **state)
{
    (void)state;
    char path[256];
    realm_gguf_t *g = synth("tiny.gguf", "tiny", "q4_k_m", 7, 2, path, sizeof path);
    realm_gguf_str s;
    assert_int_equal(realm_gguf_get_str(g, "general.architecture", &s, NULL), REALM_OK);
    assert_true(realm_gguf_str_eq(s, "llama"));
    uint32_t u;
    assert_int_equal(realm_gguf_get_u32(g, "llama.block_count", &u, NULL), REALM_OK);
    assert_int_equal(u, 2);
    assert_int_equal(realm_gguf_get_u32(g, "general.file_type", &u, NULL), REALM_OK);
    assert_int_equal(u, 15);
    /* 9 tensors per layer + embeddings + output norm, tied (no output.weight) */
    assert_int_equal(realm_gguf_tensor_count(g), 2 * 9 + 2);
    assert_null(realm_gguf_find_tensor(g, "output.weight"));
    const realm_gguf_tensor *t = realm_gguf_find_tensor(g, "blk.1.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 512);
    assert_int_equal(t->ne[1], 256);
    assert_int_equal(t->type, REALM_TYPE_Q6_K);
    t = realm_gguf_find_tensor(g, "blk.0.attn_q.weight");
    assert_int_equal(t->type, REALM_TYPE_Q4_K);
    /* random weights look like N(0, 1/sqrt(256)) after dequantization */
    float *x = malloc((size_t)t->n_elements * sizeof *x);
    realm_type_traits_get(t->type)->to_float(t->data, x, t->n_elements);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < t->n_elements; i++) sum += x[i], sq += (double)x[i] * x[i];
    double mean = sum / (double)t->n_elements, sd = sqrt(sq / (double)t->n_elements - mean * mean);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sd - 1.0 / 16) < 0.003);
    free(x);

    /* the vocabulary is valid BPE: each merge joins two tokens into a third */
    int64_t ti = realm_gguf_find_key(g, "tokenizer.ggml.tokens");
    int64_t mi = realm_gguf_find_key(g, "tokenizer.ggml.merges");
    realm_gguf_kind k;
    uint64_t n_tok, n_merge;
    assert_int_equal(realm_gguf_kv_arr(g, ti, &k, &n_tok), REALM_OK);
    assert_int_equal(n_tok, 1024);
    assert_int_equal(realm_gguf_kv_arr(g, mi, &k, &n_merge), REALM_OK);
    for (uint64_t m = 0; m < n_merge; m++) {
        realm_gguf_str ms = realm_gguf_arr_str(g, mi, m);
        const char *sp = memchr(ms.ptr, ' ', ms.len);
        assert_non_null(sp);
        size_t la = (size_t)(sp - ms.ptr), lb = ms.len - la - 1;
        int found_a = 0, found_b = 0, found_ab = 0;
        for (uint64_t j = 0; j < n_tok; j++) {
            realm_gguf_str tok = realm_gguf_arr_str(g, ti, j);
            found_a |= tok.len == la && !memcmp(tok.ptr, ms.ptr, la);
            found_b |= tok.len == lb && !memcmp(tok.ptr, sp + 1, lb);
            found_ab |= tok.len == la + lb && !memcmp(tok.ptr, ms.ptr, la) && !memcmp(tok.ptr + la, sp + 1, lb);
        }
        assert_true(found_a && found_b && found_ab);
    }
    realm_gguf_close(g);
}

static void test_synth_deterministic_across_threads(void **state)
{
    (void)state;
    char p1[256], p2[256], p3[256];
    realm_gguf_close(synth("a.gguf", "tiny", "q8_0", 42, 1, p1, sizeof p1));
    realm_gguf_close(synth("b.gguf", "tiny", "q8_0", 42, 3, p2, sizeof p2));
    size_t n1, n2;
    void *a = read_file(p1, &n1), *b = read_file(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    /* another seed: other weights (and another synthetic vocabulary) */
    realm_gguf_t *g1 = synth("a.gguf", "tiny", "q8_0", 42, 1, p1, sizeof p1);
    realm_gguf_t *g3 = synth("c.gguf", "tiny", "q8_0", 43, 2, p3, sizeof p3);
    const realm_gguf_tensor *t1 = realm_gguf_find_tensor(g1, "blk.0.attn_q.weight");
    const realm_gguf_tensor *t3 = realm_gguf_find_tensor(g3, "blk.0.attn_q.weight");
    assert_int_equal(t1->size_bytes, t3->size_bytes);
    assert_memory_not_equal(t1->data, t3->data, t1->size_bytes);
    realm_gguf_close(g1);
    realm_gguf_close(g3);
}

static void test_synth_rejects_bad_options(void **state)
{
    (void)state;
    char path[256];
    path_in_tmp(path, sizeof path, "bad.gguf");
    realm_error err = {0};
    realm_synth_options opt = {.shape = "llama-9000", .scheme = "q8_0", .out_path = path};
    assert_int_equal(realm_synth_write(&opt, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "llama-9000"));
    opt.shape = "tiny";
    opt.scheme = "q9_9";
    assert_int_equal(realm_synth_write(&opt, &err), REALM_E_INVALID);
    assert_non_null(strstr(err.message, "q9_9"));
    opt.scheme = "q8_0";
    opt.out_path = "/nonexistent-dir/x.gguf";
    assert_int_not_equal(realm_synth_write(&opt, &err), REALM_OK);
    assert_int_equal(access(path, F_OK), -1);
}

/* Quantizing to F32 reproduces the source's dequantization exactly; to Q8_0
 * stays within Q8_0's error. */
static void test_quantize_round_trip(void **state)
{
    (void)state;
    char src[256], f32[256], q8[256];
    realm_gguf_t *g = synth("src.gguf", "tiny", "q4_k_m", 3, 2, src, sizeof src);
    path_in_tmp(f32, sizeof f32, "f32.gguf");
    path_in_tmp(q8, sizeof q8, "q8.gguf");
    realm_error err = {0};
    assert_int_equal(realm_quantize_file(src, f32, "f32", 2, &err), REALM_OK);
    assert_int_equal(realm_quantize_file(f32, q8, "q8_0", 2, &err), REALM_OK);
    realm_gguf_t *gf = NULL, *gq = NULL;
    assert_int_equal(realm_gguf_open(f32, &gf, &err), REALM_OK);
    assert_int_equal(realm_gguf_open(q8, &gq, &err), REALM_OK);
    assert_int_equal(realm_gguf_kv_count(gf), realm_gguf_kv_count(g));
    uint32_t ft;
    assert_int_equal(realm_gguf_get_u32(gq, "general.file_type", &ft, NULL), REALM_OK);
    assert_int_equal(ft, 7);
    for (int64_t i = 0; i < realm_gguf_tensor_count(g); i++) {
        const realm_gguf_tensor *t = realm_gguf_tensor_at(g, i), *tf = realm_gguf_tensor_at(gf, i),
                                *tq = realm_gguf_tensor_at(gq, i);
        assert_int_equal(tf->type, REALM_TYPE_F32);
        float *x = malloc((size_t)t->n_elements * sizeof *x), *y = malloc((size_t)t->n_elements * sizeof *y);
        realm_type_traits_get(t->type)->to_float(t->data, x, t->n_elements);
        assert_memory_equal(x, tf->data, (size_t)t->n_elements * sizeof *x);
        realm_type_traits_get(tq->type)->to_float(tq->data, y, t->n_elements);
        double err2 = 0, ref2 = 0;
        for (int64_t j = 0; j < t->n_elements; j++)
            err2 += (double)(x[j] - y[j]) * (x[j] - y[j]), ref2 += (double)x[j] * x[j];
        assert_true(err2 <= 1e-4 * ref2); /* NRMSE <= 1 % */
        free(x);
        free(y);
    }
    realm_gguf_close(g);
    realm_gguf_close(gf);
    realm_gguf_close(gq);
}

static void test_quantize_errors_leave_no_file(void **state)
{
    (void)state;
    char src[256], out[256];
    realm_gguf_close(synth("src2.gguf", "tiny", "q8_0", 3, 1, src, sizeof src));
    path_in_tmp(out, sizeof out, "out.gguf");
    realm_error err = {0};
    assert_int_equal(realm_quantize_file(src, out, "nope", 1, &err), REALM_E_INVALID);
    assert_int_not_equal(realm_quantize_file("/nonexistent.gguf", out, "q8_0", 1, &err), REALM_OK);
    assert_int_equal(access(out, F_OK), -1);
    /* allocation failures at every point: an error, never a crash or a partial file */
    for (long n = 0;; n++) {
        realm_alloc_fail_after(n);
        realm_status st = realm_quantize_file(src, out, "q4_0", 1, &err);
        long failed = realm_alloc_failures();
        realm_alloc_fail_after(-1);
        if (st == REALM_OK) {
            assert_int_equal(failed, 0);
            break;
        }
        assert_int_equal(access(out, F_OK), -1);
        assert_true(n < 100000);
    }
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mix_rules),
        cmocka_unit_test(test_synth_tiny_structure),
        cmocka_unit_test(test_synth_deterministic_across_threads),
        cmocka_unit_test(test_synth_rejects_bad_options),
        cmocka_unit_test(test_quantize_round_trip),
        cmocka_unit_test(test_quantize_errors_leave_no_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
