/* Tests for model/: a batch of several sequences gives exactly the logits of
 * each sequence run alone; bad files and bad batches fail with clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "base/rowmath.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "tools/synth.h"

static char tiny_path[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tiny_path, sizeof tiny_path, "/tmp/realm_test_model_%d.gguf", (int)getpid());
    realm_synth_options o = {
        .shape = "tiny", .scheme = "q4_k", .out_path = tiny_path, .seed = 3, .n_threads = 1};
    realm_error err = {0};
    if (realm_synth_write(&o, &err) != REALM_OK) {
        fprintf(stderr, "synth: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(tiny_path);
    return 0;
}

typedef struct fixture {
    realm_gguf_t *g;
    realm_backend *be;
    realm_model_t *m;
    realm_kv_cache_t *kv;
    int32_t n_vocab;
} fixture;

static void open_tiny(fixture *f, int n_seqs)
{
    realm_error err = {0};
    assert_int_equal(realm_gguf_open(tiny_path, &f->g, &err), REALM_OK);
    realm_backend_cpu_params bp = {.n_threads = 2};
    assert_int_equal(realm_backend_cpu_create(&bp, &f->be, &err), REALM_OK);
    realm_model_params mp = {.max_rows = 32, .max_ctx = 64, .max_logit_rows = 32};
    assert_int_equal(realm_model_load(f->g, f->be, &mp, &f->m, &err), REALM_OK);
    assert_int_equal(realm_kv_cache_init(f->be, realm_model_hparams(f->m), n_seqs, 64,
                                         REALM_TYPE_F16, &f->kv, &err),
                     REALM_OK);
    f->n_vocab = realm_model_hparams(f->m)->n_vocab;
}

static void close_fixture(fixture *f)
{
    realm_kv_cache_free(f->kv);
    realm_model_free(f->m);
    realm_backend_free(f->be);
    realm_gguf_close(f->g);
}

enum { N_SEQ = 3, MAX_LEN = 7 };
static const int32_t prompts[N_SEQ][MAX_LEN] = {
    {5, 77, 300, 12, 900, 0, 0}, {1000, 3, 3, 0, 0, 0, 0}, {42, 43, 44, 45, 46, 47, 48}};
static const int32_t lens[N_SEQ] = {5, 3, 7};

/* Logits of every position of every prompt, each sequence alone, one prefill. */
static void run_alone(float *out /* (N_SEQ, MAX_LEN, n_vocab) */)
{
    fixture f = {0};
    open_tiny(&f, 1);
    realm_error err = {0};
    bool want[MAX_LEN] = {1, 1, 1, 1, 1, 1, 1};
    int32_t pos[MAX_LEN] = {0, 1, 2, 3, 4, 5, 6}, seq[MAX_LEN] = {0};
    for (int s = 0; s < N_SEQ; s++) {
        realm_batch b = {.n_rows = lens[s],
                         .token = prompts[s],
                         .pos = pos,
                         .seq = seq,
                         .want_logits = want,
                         .n_seqs = 1,
                         .seqs = realm_kv_cache_seq(f.kv, 0)};
        assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b,
                                             out + (size_t)s * MAX_LEN * f.n_vocab, &err),
                         REALM_OK);
    }
    close_fixture(&f);
}

/* The same prompts interleaved across two batches, rows shuffled, sequences
 * in other KV slots: every row's logits must be bit-identical. */
static void test_batched_equals_alone(void **state)
{
    (void)state;
    fixture f = {0};
    open_tiny(&f, 4);
    size_t per = (size_t)MAX_LEN * f.n_vocab;
    float *alone = realm_calloc(N_SEQ * per, sizeof(float));
    float *got = realm_calloc(16 * (size_t)f.n_vocab, sizeof(float));
    assert_non_null(alone);
    assert_non_null(got);
    run_alone(alone);

    /* batch seq index -> cache sequence: 0->3, 1->0, 2->2 */
    realm_batch_seq seqs[N_SEQ] = {*realm_kv_cache_seq(f.kv, 3), *realm_kv_cache_seq(f.kv, 0),
                                   *realm_kv_cache_seq(f.kv, 2)};
    /* (seq, pos) rows: batch 1 = prefill chunks of all three, shuffled;
     * batch 2 = the rest, like decode steps plus a prefill tail. */
    static const int32_t rows1[][2] = {{2, 0}, {0, 0}, {2, 1}, {1, 0}, {0, 1},
                                       {2, 2}, {1, 1}, {0, 2}, {1, 2}, {2, 3}};
    static const int32_t rows2[][2] = {{2, 6}, {0, 3}, {2, 4}, {0, 4}, {2, 5}};
    const int32_t(*batches[2])[2] = {rows1, rows2};
    int n_rows[2] = {10, 5};
    realm_error err = {0};
    for (int bi = 0; bi < 2; bi++) {
        int32_t tok[16], pos[16], seq[16];
        bool want[16];
        for (int r = 0; r < n_rows[bi]; r++) {
            seq[r] = batches[bi][r][0];
            pos[r] = batches[bi][r][1];
            tok[r] = prompts[seq[r]][pos[r]];
            want[r] = true;
        }
        realm_batch b = {.n_rows = n_rows[bi],
                         .token = tok,
                         .pos = pos,
                         .seq = seq,
                         .want_logits = want,
                         .n_seqs = N_SEQ,
                         .seqs = seqs};
        assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b, got, &err),
                         REALM_OK);
        for (int r = 0; r < n_rows[bi]; r++) {
            const float *want_l = alone + seq[r] * per + (size_t)pos[r] * f.n_vocab;
            assert_memory_equal(got + (size_t)r * f.n_vocab, want_l, f.n_vocab * sizeof(float));
        }
        /* the same batch again (its K/V rewritten with the same values), the
         * backend picking: each row's id is the arg-max of its logits */
        int32_t ids[16];
        memset(ids, 0x7f, sizeof ids);
        assert_int_equal(realm_model_forward_argmax(f.m, realm_kv_cache_pool(f.kv), &b, ids, &err),
                         REALM_OK);
        for (int r = 0; r < n_rows[bi]; r++)
            assert_int_equal(ids[r], realm_argmax_f32(got + (size_t)r * f.n_vocab, f.n_vocab));
    }
    /* only the rows that want logits come back, in row order */
    int32_t tok[2] = {7, 8}, pos[2] = {5, 6}, seq[2] = {1, 1};
    assert_int_equal(realm_batch_n_logits(&(realm_batch){.n_rows = 2}), 1);
    bool want[2] = {false, true};
    realm_batch b = {.n_rows = 2,
                     .token = tok,
                     .pos = pos,
                     .seq = seq,
                     .want_logits = want,
                     .n_seqs = N_SEQ,
                     .seqs = seqs};
    assert_int_equal(realm_batch_n_logits(&b), 1);
    assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b, got, &err), REALM_OK);
    realm_free(alone);
    realm_free(got);
    close_fixture(&f);
}

static void test_bad_batches(void **state)
{
    (void)state;
    fixture f = {0};
    open_tiny(&f, 1);
    realm_error err = {0};
    float *logits = realm_calloc((size_t)f.n_vocab, sizeof(float));
    int32_t tok = 1, pos = 64, seq = 0;
    realm_batch b = {.n_rows = 1,
                     .token = &tok,
                     .pos = &pos,
                     .seq = &seq,
                     .n_seqs = 1,
                     .seqs = realm_kv_cache_seq(f.kv, 0)};
    assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b, logits, &err),
                     REALM_E_RANGE);
    assert_non_null(strstr(err.message, "beyond the context"));
    pos = 0;
    tok = f.n_vocab;
    assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b, logits, &err),
                     REALM_E_RANGE);
    assert_non_null(strstr(err.message, "vocabulary"));
    tok = 1;
    seq = 1;
    assert_int_equal(realm_model_forward(f.m, realm_kv_cache_pool(f.kv), &b, logits, &err),
                     REALM_E_RANGE);
    realm_free(logits);
    close_fixture(&f);
}

static int n_host_alloc, n_host_free;

/* a backend's host_alloc that has room for one block only */
static void *one_host_alloc(realm_backend *be, size_t size_bytes)
{
    (void)be;
    return ++n_host_alloc == 1 ? malloc(size_bytes) : NULL;
}

static void count_host_free(realm_backend *be, void *p)
{
    (void)be;
    n_host_free++;
    free(p);
}

static void check_zero_then_fill(float *l, size_t n)
{
    assert_non_null(l);
    for (size_t i = 0; i < n; i++)
        assert_true(l[i] == 0.0f);
    for (size_t i = 0; i < n; i++)
        l[i] = (float)i;
}

/* Logits memory comes from the backend's host_alloc when it has one (and goes
 * back through its host_free), from plain memory when it has none or none is
 * left; zeroed, n_rows x n_vocab floats (ASan checks the bounds). */
static void test_logits_alloc(void **state)
{
    (void)state;
    fixture f = {0};
    open_tiny(&f, 1);
    const size_t nv = (size_t)f.n_vocab;
    float *a = realm_model_logits_alloc(f.m, 3); /* the CPU backend has no host_alloc */
    check_zero_then_fill(a, 3 * nv);
    realm_model_logits_free(f.m, a);
    realm_backend_ops ops = *f.be->ops;
    ops.host_alloc = one_host_alloc;
    ops.host_free = count_host_free;
    const realm_backend_ops *saved = f.be->ops;
    f.be->ops = &ops;
    float *b = realm_model_logits_alloc(f.m, 2), *c = realm_model_logits_alloc(f.m, 2);
    check_zero_then_fill(b, 2 * nv);
    check_zero_then_fill(c, 2 * nv);
    realm_model_logits_free(f.m, b);
    realm_model_logits_free(f.m, c);
    realm_model_logits_free(f.m, NULL);
    assert_int_equal(n_host_alloc, 2);
    assert_int_equal(n_host_free, 1); /* c came from plain memory */
    f.be->ops = saved;
    close_fixture(&f);
}

/* Writes a GGUF with architecture arch, llama-style keys and only the given
 * F32 tensors (ne0 x ne1, zeros). */
static void write_partial(const char *path, const char *arch, int n_tensors, const char **names,
                          const int64_t (*ne)[2])
{
    realm_gguf_writer_t *w;
    realm_error err = {0};
    assert_int_equal(realm_gguf_writer_init(&w), REALM_OK);
    char key[64];
    assert_int_equal(realm_gguf_writer_set_str(w, "general.architecture", arch), REALM_OK);
    const char *ks[] = {"block_count", "embedding_length", "feed_forward_length",
                        "attention.head_count"};
    uint32_t vs[] = {1, 32, 64, 2};
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, ks[i]);
        assert_int_equal(realm_gguf_writer_set_u32(w, key, vs[i]), REALM_OK);
    }
    for (int i = 0; i < n_tensors; i++)
        assert_int_equal(realm_gguf_writer_add_tensor(w, names[i], REALM_TYPE_F32, 2, ne[i], &err),
                         REALM_OK);
    assert_int_equal(realm_gguf_writer_begin(w, path, &err), REALM_OK);
    for (int i = 0; i < n_tensors; i++) {
        size_t n = (size_t)(ne[i][0] * ne[i][1]);
        float *z = realm_calloc(n, sizeof(float));
        assert_int_equal(realm_gguf_writer_write_tensor(w, z, n * sizeof(float), &err), REALM_OK);
        realm_free(z);
    }
    assert_int_equal(realm_gguf_writer_finish(w, &err), REALM_OK);
    realm_gguf_writer_free(w);
}

static realm_status load_path(const char *path, realm_error *err)
{
    realm_gguf_t *g = NULL;
    realm_backend *be = NULL;
    realm_model_t *m = NULL;
    assert_int_equal(realm_gguf_open(path, &g, err), REALM_OK);
    assert_int_equal(realm_backend_cpu_create(NULL, &be, err), REALM_OK);
    realm_status st = realm_model_load(g, be, NULL, &m, err);
    realm_model_free(m);
    realm_backend_free(be);
    realm_gguf_close(g);
    return st;
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/realm_test_model_bad_%d.gguf", (int)getpid());
    realm_error err = {0};
    const char *names[] = {"token_embd.weight", "output_norm.weight"};
    const int64_t ne[][2] = {{32, 10}, {32, 1}};
    const int64_t bad_ne[][2] = {{32, 10}, {31, 1}};

    write_partial(path, "mamba", 1, names, ne);
    assert_int_equal(load_path(path, &err), REALM_E_UNSUPPORTED);
    assert_non_null(strstr(err.message, "unsupported architecture 'mamba'"));

    write_partial(path, "llama", 1, names, ne);
    assert_int_equal(load_path(path, &err), REALM_E_NOT_FOUND);
    assert_non_null(
        strstr(err.message, "missing tensor 'output_norm.weight' (expected shape [32])"));

    write_partial(path, "llama", 2, names, ne);
    assert_int_equal(load_path(path, &err), REALM_E_NOT_FOUND);
    assert_non_null(strstr(err.message, "'blk.0.attn_norm.weight'"));

    write_partial(path, "llama", 2, names, bad_ne);
    assert_int_equal(load_path(path, &err), REALM_E_FORMAT);
    assert_non_null(strstr(err.message, "'output_norm.weight' has shape [31, 1, 1, 1]"));
    unlink(path);
}

/* Every allocation the load makes can fail and is reported, never crashes or leaks. */
static void test_load_oom(void **state)
{
    (void)state;
    realm_gguf_t *g = NULL;
    realm_backend *be = NULL;
    realm_error err = {0};
    assert_int_equal(realm_gguf_open(tiny_path, &g, &err), REALM_OK);
    assert_int_equal(realm_backend_cpu_create(NULL, &be, &err), REALM_OK);
    for (long n = 0;; n++) {
        realm_model_t *m = NULL;
        realm_kv_cache_t *kv = NULL;
        realm_alloc_fail_after(n);
        realm_status st = realm_model_load(g, be, NULL, &m, &err);
        if (st == REALM_OK)
            st = realm_kv_cache_init(be, realm_model_hparams(m), 2, 32, REALM_TYPE_F16, &kv, &err);
        realm_alloc_fail_after(-1);
        realm_kv_cache_free(kv);
        realm_model_free(m);
        if (st == REALM_OK) break;
        assert_int_equal(st, REALM_E_NOMEM);
        assert_true(n < 100);
    }
    realm_backend_free(be);
    realm_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_alone),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_logits_alloc),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_load_oom),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
