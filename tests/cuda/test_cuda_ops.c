/* Every op of the CUDA backend against the CPU reference backend, on random
 * data and awkward shapes, with a per-op tolerance. Each check prints one
 * table row ("op type shape err/tol verdict"). Skips when no GPU is present
 * (CI) or realm was built without CUDA. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"
#include "backend/registry.h"
#include "base/alloc.h"
#include "quant/fp16.h"

/* gpu: the backend under test (test_mmq points it at a second one while it
 * runs); cpu: the reference */
static realm_backend *gpu, *cpu;
static uint32_t seed = 12345;

enum { MMQ_MAX_ROWS = 512 };

static float frand(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)((seed >> 8) / 16777216.0 * 2.0 - 1.0);
}

static int setup(void **state)
{
    (void)state;
    realm_error err = {0};
    /* the default backend: mat-vec up to 64 rows (the tile kernel is tested
     * on its own backend below); a pass's ops go to the GPU in two launches
     * from 8 ops on (test_fused_layer's layer: 10 and 8) */
    setenv("REALM_CUDA_MMQ", "0", 1);
    setenv("REALM_CUDA_EARLY_OPS", "8", 1);
    realm_status created = realm_backend_create("cuda", NULL, &gpu, &err);
    unsetenv("REALM_CUDA_MMQ");
    unsetenv("REALM_CUDA_EARLY_OPS");
    if (created) {
        fprintf(stderr, "SKIP: %s\n", err.message);
        gpu = NULL;
        return 0;
    }
    realm_backend_options o = {.n_threads = 0};
    if (realm_backend_create("cpu", &o, &cpu, &err)) return -1;
    realm_backend_limits lim = {.max_rows = 80, .max_ctx = 200, .max_ne0 = 14336};
    realm_backend_limits lim_cpu = lim;
    lim_cpu.max_rows = MMQ_MAX_ROWS; /* the reference for the tile kernel's batches too */
    if (gpu->ops->reserve(gpu, &lim, &err) || cpu->ops->reserve(cpu, &lim_cpu, &err)) {
        fprintf(stderr, "reserve: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    realm_backend_free(gpu);
    realm_backend_free(cpu);
    return 0;
}

/* A device copy of host bytes (freed by the caller with gfree). */
static realm_buffer gput(const void *host, size_t bytes)
{
    realm_buffer b;
    realm_error err = {0};
    assert_int_equal(gpu->ops->buffer_alloc(gpu, bytes, &b, &err), REALM_OK);
    gpu->ops->buffer_upload(gpu, &b, 0, host, bytes);
    return b;
}

static void gget(const realm_buffer *b, void *host, size_t bytes)
{
    gpu->ops->buffer_download(gpu, b, 0, host, bytes);
    realm_error err = {0};
    assert_int_equal(gpu->ops->synchronize(gpu, &err), REALM_OK);
}

static void gfree(realm_buffer *b)
{
    gpu->ops->buffer_free(gpu, b);
}

/* rows failed in the running test (each test starts from 0, so one failing
 * row fails its own test only) */
static int n_fail;

static int reset_fails(void **state)
{
    (void)state;
    n_fail = 0;
    return 0;
}

/* max |a - b| / scale against tol; prints the row and counts failures. */
static void verdict(const char *op, const char *type, const char *shape, const float *a,
                    const float *b, size_t n, const float *scale, double tol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double s = scale ? scale[i] : 1.0;
        double e = fabs((double)a[i] - (double)b[i]) / (s > 0 ? s : 1e-30);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    bool ok = worst <= tol;
    printf("| %-10s | %-6s | %-22s | %9.2e | %8.1e | %s |\n", op, type, shape, worst, tol,
           ok ? "PASS" : "FAIL");
    n_fail += !ok;
}

/* scale[i] = the RMS of ref[0 .. n): an error relative to the output's size */
static void rms_scale(const float *ref, size_t n, float *scale)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)ref[i] * ref[i];
    for (size_t i = 0; i < n; i++)
        scale[i] = (float)sqrt(ss / (double)n);
}

/* The K/V pool types every backend takes: f16 (the default) and f32. */
static const realm_type kv_types[2] = {REALM_TYPE_F16, REALM_TYPE_F32};

/* out = the n elements of a pool half of type t (f16 or f32), exactly */
static void kv_floats(realm_type t, const void *p, size_t n, float *out)
{
    if (t == REALM_TYPE_F32) {
        memcpy(out, p, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = realm_fp16_to_fp32(((const realm_fp16 *)p)[i]);
}

static void skip_without_gpu(void)
{
    if (!gpu) skip();
}

/* A weight matrix of type t on the host and on `gpu`, reused across batch
 * sizes (quantizing a 14336 x 4096 matrix takes seconds). */
struct mm_weights {
    realm_type type;
    int ne0, ne1;
    void *wq;    /* (ne1, row bytes) quantized, host */
    float *wabs; /* (ne1, ne0) |dequantized weights|, for the error scale */
    float *bias; /* (ne1) */
    realm_buffer gw, gb;
};

static void mmw_init(struct mm_weights *m, realm_type type, int ne0, int ne1)
{
    const realm_type_traits *t = realm_type_traits_get(type);
    size_t nw = (size_t)ne0 * ne1, rb = realm_type_row_size(type, ne0);
    float *wf = realm_malloc(nw * 4);
    *m = (struct mm_weights){.type = type, .ne0 = ne0, .ne1 = ne1};
    m->wq = realm_malloc(rb * ne1);
    m->wabs = realm_malloc(nw * 4);
    m->bias = realm_malloc((size_t)ne1 * 4);
    for (size_t i = 0; i < nw; i++)
        wf[i] = frand();
    for (int i = 0; i < ne1; i++)
        m->bias[i] = frand();
    t->from_float(wf, m->wq, (int64_t)nw);
    t->to_float(m->wq, m->wabs, (int64_t)nw);
    for (size_t i = 0; i < nw; i++)
        m->wabs[i] = fabsf(m->wabs[i]);
    m->gw = gput(m->wq, rb * ne1);
    m->gb = gput(m->bias, (size_t)ne1 * 4);
    realm_free(wf);
}

static void mmw_free(struct mm_weights *m)
{
    gfree(&m->gw);
    gfree(&m->gb);
    realm_free(m->wq);
    realm_free(m->wabs);
    realm_free(m->bias);
}

/* n random activation rows through m on both backends; the error is scaled
 * by each output's mass sum |x||w| (the CPU's F32 matmul of |x| and |w|).
 * pinned: the GPU's output is downloaded into the backend's page-locked
 * memory (the logits' way: the download joins the pass). */
static void mmw_check_to(const struct mm_weights *m, const char *op, int n, bool with_bias,
                         double tol, bool pinned)
{
    const realm_type_traits *t = realm_type_traits_get(m->type);
    const int ne0 = m->ne0, ne1 = m->ne1;
    float *x = realm_malloc((size_t)n * ne0 * 4), *xabs = realm_malloc((size_t)n * ne0 * 4);
    float *oc = realm_malloc((size_t)n * ne1 * 4), *mass = realm_malloc((size_t)n * ne1 * 4);
    float *og =
        pinned ? gpu->ops->host_alloc(gpu, (size_t)n * ne1 * 4) : realm_malloc((size_t)n * ne1 * 4);
    assert_non_null(og);
    for (int64_t i = 0; i < (int64_t)n * ne0; i++) {
        x[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
        xabs[i] = fabsf(x[i]);
    }
    realm_weight wa = {.type = REALM_TYPE_F32, .ne0 = ne0, .ne1 = ne1, .data = m->wabs};
    cpu->ops->matmul(cpu, &wa, NULL, xabs, n, mass);
    realm_weight w = {.type = m->type, .ne0 = ne0, .ne1 = ne1, .data = m->wq};
    realm_weight b = {.type = REALM_TYPE_F32, .ne0 = ne1, .ne1 = 1, .data = m->bias};
    cpu->ops->matmul(cpu, &w, with_bias ? &b : NULL, x, n, oc);
    realm_buffer gx = gput(x, (size_t)n * ne0 * 4), go = gput(og, (size_t)n * ne1 * 4);
    w.data = m->gw.data;
    b.data = m->gb.data;
    gpu->ops->matmul(gpu, &w, with_bias ? &b : NULL, gx.data, n, go.data);
    gget(&go, og, (size_t)n * ne1 * 4);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d n=%d%s", ne1, ne0, n, with_bias ? " +b" : "");
    verdict(op, t->name, shape, og, oc, (size_t)n * ne1, mass, tol);
    gfree(&gx);
    gfree(&go);
    realm_free(x);
    realm_free(xabs);
    realm_free(oc);
    if (pinned)
        gpu->ops->host_free(gpu, og);
    else
        realm_free(og);
    realm_free(mass);
}

static void mmw_check(const struct mm_weights *m, const char *op, int n, bool with_bias, double tol)
{
    mmw_check_to(m, op, n, with_bias, tol, false);
}

/* One matmul of type t, (ne1 x ne0) weights, n activation rows, against the
 * CPU. n <= 64: same activation quantization as the CPU, only the sum order
 * differs; larger n: f16 cuBLAS against int8 activations. */
static void check_matmul(realm_type type, int ne0, int ne1, int n, bool with_bias)
{
    struct mm_weights m;
    mmw_init(&m, type, ne0, ne1);
    mmw_check(&m, "matmul", n, with_bias, n <= 64 ? 1e-5 : 1e-2);
    mmw_free(&m);
}

static void test_matmul(void **state)
{
    (void)state;
    skip_without_gpu();
    const realm_type types[] = {REALM_TYPE_F32,  REALM_TYPE_F16,   REALM_TYPE_BF16, REALM_TYPE_Q4_0,
                                REALM_TYPE_Q4_1, REALM_TYPE_Q5_0,  REALM_TYPE_Q5_1, REALM_TYPE_Q8_0,
                                REALM_TYPE_Q2_K, REALM_TYPE_Q3_K,  REALM_TYPE_Q4_K, REALM_TYPE_Q5_K,
                                REALM_TYPE_Q6_K, REALM_TYPE_IQ4_NL, REALM_TYPE_IQ4_XS};
    const struct { int ne0, ne1, n; } shapes[] = {
        {256, 1, 1},    {2816, 37, 1},   {768, 301, 3}, {1280, 65, 8},
        {512, 129, 13}, {1024, 96, 70}, {1056, 33, 1}}; /* 1056: 33 blocks of 32, odd */
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const realm_type_traits *t = realm_type_traits_get(types[ti]);
        assert_true(gpu->ops->supports(gpu, types[ti]));
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            if (shapes[si].ne0 % t->block_size == 0)
                check_matmul(types[ti], shapes[si].ne0, shapes[si].ne1, shapes[si].n, si % 2);
        /* get_rows: dequantization is bit-exact with the CPU's */
        int ne0 = 512, ne1 = 9, n = 5;
        if (ne0 % t->block_size) continue;
        size_t rb = realm_type_row_size(types[ti], ne0);
        float wf[512 * 9], oc[5 * 512], og[5 * 512];
        static char wq[512 * 9 * 4];
        for (int i = 0; i < ne0 * ne1; i++)
            wf[i] = frand();
        t->from_float(wf, wq, ne0 * ne1);
        int32_t tok[5] = {3, 0, 8, 3, 5};
        realm_weight w = {.type = types[ti], .ne0 = ne0, .ne1 = ne1, .data = wq};
        cpu->ops->get_rows(cpu, &w, tok, n, oc);
        realm_buffer gw = gput(wq, rb * ne1), go = gput(og, sizeof og);
        w.data = gw.data;
        gpu->ops->get_rows(gpu, &w, tok, n, go.data);
        gget(&go, og, sizeof og);
        verdict("get_rows", t->name, "5 of 9x512", og, oc, 5 * 512, NULL, 0.0);
        gfree(&gw);
        gfree(&go);
    }
    assert_int_equal(n_fail, 0);
}

/* The widths and batch sizes the Llama-3 1B/8B and SmolLM2 models use, in
 * the types their Q4_K_M, Q8_0 and Q4_0 files hold: a 20-row prefill chunk and
 * a decode row (the per-op shapes above stop at 2816 columns). */
static void test_matmul_model_shapes(void **state)
{
    (void)state;
    skip_without_gpu();
    const struct { realm_type type; int ne0, ne1, n; } cases[] = {
        {REALM_TYPE_Q4_K, 4096, 14336, 20}, {REALM_TYPE_Q4_K, 4096, 14336, 1},
        {REALM_TYPE_Q4_K, 14336, 4096, 20}, {REALM_TYPE_Q4_K, 2048, 8192, 20},
        {REALM_TYPE_Q6_K, 14336, 4096, 20}, {REALM_TYPE_Q6_K, 14336, 1024, 1},
        {REALM_TYPE_Q6_K, 4096, 1024, 20},  {REALM_TYPE_Q6_K, 2048, 8192, 20},
        {REALM_TYPE_Q8_0, 2048, 8192, 20},  {REALM_TYPE_Q8_0, 8192, 2048, 20},
        {REALM_TYPE_Q8_0, 8192, 2048, 1},   {REALM_TYPE_Q8_0, 576, 1536, 20},
        {REALM_TYPE_Q4_0, 4096, 1024, 20},  {REALM_TYPE_Q4_0, 14336, 512, 20},
        {REALM_TYPE_Q5_0, 576, 1536, 20},   {REALM_TYPE_F16, 4096, 1024, 20},
        {REALM_TYPE_F16, 14336, 256, 1},    {REALM_TYPE_Q4_K, 4096, 1024, 64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_matmul(cases[i].type, cases[i].ne0, cases[i].ne1, cases[i].n, false);
    assert_int_equal(n_fail, 0);
}

/* The ring mat-vec (k_mmv_ring: Q4_K/Q5_K/Q6_K at one row) on its own, so
 * the sanitizers can take it alone: 2048 or 4096 columns with a last tile of
 * fewer than its 8 rows, then rows split over four warps (8192 and 14336
 * columns) with a last tile of one row, and the bias of each. */
static void test_matmul_ring(void **state)
{
    (void)state;
    skip_without_gpu();
    const struct { realm_type type; int ne0, ne1; } cases[] = {
        {REALM_TYPE_Q4_K, 2048, 8192},  {REALM_TYPE_Q5_K, 4096, 1029}, {REALM_TYPE_Q6_K, 4096, 1029},
        {REALM_TYPE_Q6_K, 2048, 300},   {REALM_TYPE_Q4_K, 14336, 1029}, {REALM_TYPE_Q4_K, 8192, 301},
        {REALM_TYPE_Q6_K, 8192, 77},    {REALM_TYPE_Q5_K, 14336, 37},
        /* enough tiles that every block reuses its stages */
        {REALM_TYPE_Q4_K, 4096, 8192},  {REALM_TYPE_Q6_K, 2048, 8192}, {REALM_TYPE_Q4_K, 14336, 4096},
        {REALM_TYPE_Q6_K, 8192, 4096},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_matmul(cases[i].type, cases[i].ne0, cases[i].ne1, 1, false);
    check_matmul(REALM_TYPE_Q5_K, 2048, 77, 1, true);
    check_matmul(REALM_TYPE_Q6_K, 14336, 33, 1, true);
    assert_int_equal(n_fail, 0);
}

/* bytes on backend be: a copy of host (or zeros when host is NULL) */
static realm_buffer be_put(realm_backend *be, const void *host, size_t bytes)
{
    realm_buffer b;
    realm_error err = {0};
    assert_int_equal(be->ops->buffer_alloc(be, bytes, &b, &err), REALM_OK);
    if (host) be->ops->buffer_upload(be, &b, 0, host, bytes);
    return b;
}

static void be_get(realm_backend *be, const realm_buffer *b, void *host, size_t bytes)
{
    realm_error err = {0};
    be->ops->buffer_download(be, b, 0, host, bytes);
    assert_int_equal(be->ops->synchronize(be, &err), REALM_OK);
}

/* (rmsnorm x into xb by gn, where gn is not NULL) matmul q, k, v, rope q,
 * rope k, kv_store: model/forward.c's order */
static void run_qkv_rope(realm_backend *be, const realm_weight *w, const float *x, float *const *o,
                         int nq, int nk, int hd, int n_rot, const float *inv,
                         const realm_kv_pool *kv, const realm_batch *b, const realm_weight *gn,
                         float *xb)
{
    if (gn) {
        be->ops->rmsnorm(be, x, gn, 1, 1e-5f, xb);
        x = xb;
    }
    for (int i = 0; i < 3; i++)
        be->ops->matmul(be, &w[i], NULL, x, 1, o[i]);
    be->ops->rope(be, o[0], 1, nq, hd, n_rot, REALM_ROPE_NORMAL, inv, b->pos);
    be->ops->rope(be, o[1], 1, nk, hd, n_rot, REALM_ROPE_NORMAL, inv, b->pos);
    be->ops->kv_store(be, kv, 0, b, o[1], o[2]);
}

/* The ring's q/k/v set with rope(q), rope(k) and kv_store in its epilogue
 * (one activation row, 2048 and 4096 columns; one type, and Q4_K_M's and
 * Q5_K_M's Q6_K v; rope over whole heads and over half of each): on `gpu`
 * and on a backend with fusion off (three mat-vecs, two ropes, a
 * kv_store), q, k, v and the K/V pool must agree to the bit (the same sums,
 * k_rope_kv's arithmetic); against the CPU, q, k and v within 1e-3 of
 * their RMS (a wrong pair or angle errs by O(1)), an f16 pool within that
 * plus a step of f16 at its largest value (GPU and CPU values a hair apart
 * may round to neighbouring halves). Then again after an rmsnorm, which the
 * ring's blocks do themselves ($REALM_CUDA_RING_NORM): q, k, v, the pool,
 * the normed row it writes and a pair set after another rmsnorm (as
 * gate/up) to the bit, and the counter proving the fused launches ran.
 * Each into an f16 pool and an f32 one. */
static void test_ring_rope(void **state)
{
    (void)state;
    skip_without_gpu();
    realm_error err = {0};
    realm_backend *plain = NULL;
    realm_backend_options bo = {.mem_budget_bytes = (size_t)2 << 30};
    setenv("REALM_CUDA_NO_FUSE", "1", 1);
    setenv("REALM_CUDA_MMQ", "0", 1);
    realm_status st = realm_backend_create("cuda", &bo, &plain, &err);
    unsetenv("REALM_CUDA_NO_FUSE");
    unsetenv("REALM_CUDA_MMQ");
    assert_int_equal(st, REALM_OK);
    realm_backend_limits lim = {.max_rows = 8, .max_ctx = 200, .max_ne0 = 4096};
    assert_int_equal(plain->ops->reserve(plain, &lim, &err), REALM_OK);
    const struct {
        realm_type tqk, tv;
        int ne0, hd, nq, nk, n_rot;
    } cases[] = {
        {REALM_TYPE_Q4_K, REALM_TYPE_Q4_K, 2048, 64, 32, 8, 64},
        {REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, 4096, 128, 32, 8, 128},
        {REALM_TYPE_Q4_K, REALM_TYPE_Q4_K, 4096, 128, 32, 8, 128},
        {REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, 2048, 64, 32, 8, 32},
        {REALM_TYPE_Q6_K, REALM_TYPE_Q6_K, 2048, 128, 16, 4, 64},
        {REALM_TYPE_Q8_0, REALM_TYPE_Q8_0, 4096, 128, 32, 8, 128}, /* k_mmv_q */
        {REALM_TYPE_Q8_0, REALM_TYPE_Q8_0, 2048, 64, 32, 8, 32},
    };
    enum { BS = 16, NB = 4 };
    int32_t table[NB] = {2, 0, 3, 1}, pos[1] = {37}, sq[1] = {0}, tok[1] = {0};
    realm_batch_seq seq = {table, NB};
    realm_batch b = {.n_rows = 1, .token = tok, .pos = pos, .seq = sq, .n_seqs = 1, .seqs = &seq};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int ne0 = cases[ci].ne0, hd = cases[ci].hd, nq = cases[ci].nq, nk = cases[ci].nk;
        const int rows[3] = {nq * hd, nk * hd, nk * hd}, kvd = nk * hd;
        const realm_type types[3] = {cases[ci].tqk, cases[ci].tqk, cases[ci].tv};
        realm_weight wc[3], wg[3], wp[3];
        void *host[3];
        realm_buffer gw[3], pw[3];
        for (int i = 0; i < 3; i++) {
            const size_t nw = (size_t)ne0 * rows[i],
                         bytes = realm_type_row_size(types[i], ne0) * rows[i];
            float *f = realm_malloc(nw * 4);
            for (size_t j = 0; j < nw; j++)
                f[j] = frand();
            host[i] = realm_malloc(bytes);
            realm_type_traits_get(types[i])->from_float(f, host[i], (int64_t)nw);
            realm_free(f);
            gw[i] = be_put(gpu, host[i], bytes);
            pw[i] = be_put(plain, host[i], bytes);
            wc[i] = (realm_weight){.type = types[i], .ne0 = ne0, .ne1 = rows[i], .data = host[i]};
            wg[i] = wc[i];
            wg[i].data = gw[i].data;
            wp[i] = wc[i];
            wp[i].data = pw[i].data;
        }
        /* without, then with the rmsnorm ahead; into each pool type */
        for (int run = 0; run < 4; run++) {
            const int nm = run / 2;
            const realm_type kt = kv_types[run % 2];
            const char *kname = realm_type_traits_get(kt)->name;
            float inv[64], x[4096], gn[4096];
            for (int i = 0; i < cases[ci].n_rot / 2; i++)
                inv[i] = powf(500000.0f, -2.0f * i / cases[ci].n_rot);
            for (int i = 0; i < ne0; i++) {
                x[i] = frand();
                gn[i] = 1.0f + 0.1f * frand();
            }
            realm_buffer ggn = be_put(gpu, gn, ne0 * 4), pgn = be_put(plain, gn, ne0 * 4),
                         gxb = be_put(gpu, NULL, ne0 * 4), pxb = be_put(plain, NULL, ne0 * 4);
            float xb[4096];
            realm_weight wn[3] = {{.type = REALM_TYPE_F32, .ne0 = ne0, .ne1 = 1, .data = gn}};
            wn[1] = wn[0], wn[2] = wn[0];
            wn[1].data = ggn.data, wn[2].data = pgn.data;
            const size_t pool = (size_t)NB * BS * kvd,
                         pool_bytes = realm_kv_pool_bytes(1, NB, BS, kvd, kt);
            void *hp[2] = {realm_calloc(pool_bytes, 1), realm_calloc(pool_bytes, 1)};
            realm_buffer gx = be_put(gpu, x, ne0 * 4), px = be_put(plain, x, ne0 * 4);
            realm_buffer gi = be_put(gpu, inv, sizeof inv), pi = be_put(plain, inv, sizeof inv);
            realm_buffer go[3], po[3],
                gk = be_put(gpu, hp[0], pool_bytes), gv = be_put(gpu, hp[0], pool_bytes),
                pk = be_put(plain, hp[0], pool_bytes), pv = be_put(plain, hp[0], pool_bytes);
            float *hc[3], *cg[3], *cp[3];
            for (int i = 0; i < 3; i++) {
                go[i] = be_put(gpu, NULL, (size_t)rows[i] * 4);
                po[i] = be_put(plain, NULL, (size_t)rows[i] * 4);
                hc[i] = realm_malloc((size_t)rows[i] * 4);
                cg[i] = realm_malloc((size_t)rows[i] * 4);
                cp[i] = realm_malloc((size_t)rows[i] * 4);
            }
            realm_kv_pool kvc = {.n_layer = 1,
                                 .n_blocks = NB,
                                 .block_size = BS,
                                 .kv_dim = kvd,
                                 .type = kt,
                                 .k = hp[0],
                                 .v = hp[1]};
            realm_kv_pool kvg = kvc, kvp = kvc;
            kvg.k = gk.data, kvg.v = gv.data, kvp.k = pk.data, kvp.v = pv.data;
            const int nr = cases[ci].n_rot;
            run_qkv_rope(cpu, wc, x, hc, nq, nk, hd, nr, inv, &kvc, &b, nm ? &wn[0] : NULL, xb);
            const realm_backend_cuda_counts before = realm_backend_cuda_counts_of(gpu);
            const uint64_t fused = before.qkv_rope;
            run_qkv_rope(gpu, wg, gx.data, (float *const[]){go[0].data, go[1].data, go[2].data}, nq,
                         nk, hd, nr, gi.data, &kvg, &b, nm ? &wn[1] : NULL, gxb.data);
            run_qkv_rope(plain, wp, px.data, (float *const[]){po[0].data, po[1].data, po[2].data},
                         nq, nk, hd, nr, pi.data, &kvp, &b, nm ? &wn[2] : NULL, pxb.data);
            /* the K-quant sets do the rmsnorm in the ring (Q8_0: k_mmv_q, no ring) */
            const bool ring = cases[ci].tqk != REALM_TYPE_Q8_0;
            const char *names[3] = {"q", "k", "v"};
            for (int i = 0; i < 3; i++) {
                be_get(gpu, &go[i], cg[i], (size_t)rows[i] * 4);
                if (i == 0) { /* the first download ran the pass: one fused launch */
                    assert_int_equal(realm_backend_cuda_counts_of(gpu).qkv_rope, fused + 1);
                    assert_int_equal(realm_backend_cuda_counts_of(gpu).ring_norm,
                                     before.ring_norm + (nm && ring));
                }
                be_get(plain, &po[i], cp[i], (size_t)rows[i] * 4);
                float *scale = realm_malloc((size_t)rows[i] * 4);
                rms_scale(hc[i], (size_t)rows[i], scale);
                char shape[48];
                snprintf(shape, sizeof shape, "%s %dx%d hd%d rot%d %s pool", names[i], rows[i], ne0,
                         hd, nr, kname);
                verdict("ring-rope", realm_type_traits_get(types[i])->name, shape, cg[i], cp[i],
                        (size_t)rows[i], NULL, 0.0);
                verdict("rrope-cpu", realm_type_traits_get(types[i])->name, shape, cg[i], hc[i],
                        (size_t)rows[i], scale, 1e-3);
                realm_free(scale);
            }
            void *raw = realm_malloc(pool_bytes);
            float *pg = realm_malloc(pool * 4), *pp = realm_malloc(pool * 4),
                  *pc = realm_malloc(pool * 4), *scale = realm_malloc(pool * 4);
            for (int kv = 0; kv < 2; kv++) {
                be_get(gpu, kv ? &gv : &gk, raw, pool_bytes);
                kv_floats(kt, raw, pool, pg);
                be_get(plain, kv ? &pv : &pk, raw, pool_bytes);
                kv_floats(kt, raw, pool, pp);
                kv_floats(kt, hp[kv], pool, pc);
                char shape[48];
                snprintf(shape, sizeof shape, "%s %s pool %dx%d", kv ? "v" : "k", kname, kvd, ne0);
                verdict("ring-rope", realm_type_traits_get(types[1 + kv])->name, shape, pg, pp,
                        pool, NULL, 0.0);
                rms_scale(pc, pool, scale);
                /* f16: a step of 2^-10 of the largest value on top */
                double step = 0.0;
                for (size_t j = 0; kt == REALM_TYPE_F16 && j < pool; j++)
                    step = fmax(step, fabs((double)pc[j]) / 1024.0 / scale[j]);
                verdict("rrope-cpu", realm_type_traits_get(types[1 + kv])->name, shape, pg, pc,
                        pool, scale, 1e-3 + step);
            }
            realm_free(raw);
            realm_free(pg);
            realm_free(pp);
            realm_free(pc);
            realm_free(scale);
            if (nm) {
                /* the normed row the set's blocks wrote, and a pair set (as
                 * gate/up): q's and k's weights on it, without rope */
                float *ng = realm_malloc(ne0 * 4), *np = realm_malloc(ne0 * 4);
                be_get(gpu, &gxb, ng, ne0 * 4);
                be_get(plain, &pxb, np, ne0 * 4);
                char shape[48];
                snprintf(shape, sizeof shape, "normed row, %s pool", kname);
                verdict("ring-norm", "f32", shape, ng, np, ne0, NULL, 0.0);
                const uint64_t n0 = realm_backend_cuda_counts_of(gpu).ring_norm;
                for (int i = 0; i < 2; i++) {
                    realm_backend *be = i ? plain : gpu;
                    const realm_weight *w = i ? wp : wg;
                    be->ops->rmsnorm(be, (i ? px : gx).data, &wn[1 + i], 1, 1e-5f,
                                     (i ? pxb : gxb).data);
                    for (int j = 0; j < 2; j++)
                        be->ops->matmul(be, &w[j], NULL, (i ? pxb : gxb).data, 1,
                                        (i ? po : go)[j].data);
                }
                for (int j = 0; j < 2; j++) {
                    be_get(gpu, &go[j], cg[j], (size_t)rows[j] * 4);
                    be_get(plain, &po[j], cp[j], (size_t)rows[j] * 4);
                    snprintf(shape, sizeof shape, "pair %s %dx%d, %s pool", names[j], rows[j], ne0,
                             kname);
                    verdict("ring-norm", realm_type_traits_get(types[j])->name, shape, cg[j], cp[j],
                            (size_t)rows[j], NULL, 0.0);
                }
                assert_int_equal(realm_backend_cuda_counts_of(gpu).ring_norm, n0 + ring);
                realm_free(ng);
                realm_free(np);
            }
            for (int i = 0; i < 3; i++) {
                gfree(&go[i]);
                plain->ops->buffer_free(plain, &po[i]);
                realm_free(hc[i]);
                realm_free(cg[i]);
                realm_free(cp[i]);
            }
            gfree(&gx), gfree(&gi), gfree(&gk), gfree(&gv), gfree(&ggn), gfree(&gxb);
            plain->ops->buffer_free(plain, &px);
            plain->ops->buffer_free(plain, &pi);
            plain->ops->buffer_free(plain, &pk);
            plain->ops->buffer_free(plain, &pv);
            plain->ops->buffer_free(plain, &pgn);
            plain->ops->buffer_free(plain, &pxb);
            realm_free(hp[0]);
            realm_free(hp[1]);
        }
        for (int i = 0; i < 3; i++) {
            gfree(&gw[i]);
            plain->ops->buffer_free(plain, &pw[i]);
            realm_free(host[i]);
        }
    }
    assert_int_equal(realm_backend_cuda_counts_of(plain).qkv_rope, 0);
    realm_backend_free(plain);
    assert_int_equal(n_fail, 0);
}

/* A second CUDA backend with the int8 tile kernel on for 2..MMQ_MAX_ROWS
 * rows ($REALM_CUDA_MMQ=1, $REALM_CUDA_MMQ_MIN, $REALM_CUDA_MMQ_ROWS and the
 * super-block path's _SB_MIN, _SB_ROWS, read at creation; by default they
 * serve 9..64 and 2..96), reserved for MMQ_MAX_ROWS rows, on a budget of
 * `gib` GiB beside the first; no_fuse: fusion off ($REALM_CUDA_NO_FUSE). */
static realm_backend *mmq_backend_of(size_t gib, bool no_fuse)
{
    realm_error err = {0};
    realm_backend *be = NULL;
    realm_backend_options o = {.mem_budget_bytes = gib << 30};
    if (no_fuse) setenv("REALM_CUDA_NO_FUSE", "1", 1);
    setenv("REALM_CUDA_MMQ", "1", 1);
    setenv("REALM_CUDA_MMQ_MIN", "2", 1);
    setenv("REALM_CUDA_MMQ_ROWS", "512", 1);
    setenv("REALM_CUDA_MMQ_SB_MIN", "2", 1);
    setenv("REALM_CUDA_MMQ_SB_ROWS", "512", 1);
    realm_status st = realm_backend_create("cuda", &o, &be, &err);
    unsetenv("REALM_CUDA_NO_FUSE");
    unsetenv("REALM_CUDA_MMQ");
    unsetenv("REALM_CUDA_MMQ_MIN");
    unsetenv("REALM_CUDA_MMQ_ROWS");
    unsetenv("REALM_CUDA_MMQ_SB_MIN");
    unsetenv("REALM_CUDA_MMQ_SB_ROWS");
    if (st) fprintf(stderr, "mmq backend: %s\n", err.message);
    assert_int_equal(st, REALM_OK);
    realm_backend_limits lim = {.max_rows = MMQ_MAX_ROWS, .max_ctx = 200, .max_ne0 = 14336};
    st = be->ops->reserve(be, &lim, &err);
    if (st) fprintf(stderr, "mmq backend reserve: %s\n", err.message);
    assert_int_equal(st, REALM_OK);
    return be;
}

static realm_backend *mmq_backend(void)
{
    return mmq_backend_of(4, false);
}

/* The tile kernel (cuda_mmq.cu) against the CPU. It reads the same int8
 * activations as the CPU at every batch size, so the tolerance is the
 * mat-vec's 1e-5 of the mass at all n (cuBLAS's f16 path needs 1e-2 above
 * 64 rows). Shapes: the 8B model's widths at batch sizes that hit each tile
 * height (8/16/32/64 activation rows) and its edges (7, 33, 200 = 3 x 64 + 8),
 * with K split over blocks (few weight tiles, small n) and not (512 rows);
 * 576 output rows (4.5 weight tiles), 576 and 1056 inputs (18 and 33 groups:
 * a partial K step); the odd shapes of test_matmul for every type, with and
 * without bias. */
static void test_mmq(void **state)
{
    (void)state;
    skip_without_gpu();
    realm_backend *saved = gpu;
    gpu = mmq_backend();
    const int rows[] = {2, 7, 8, 33, 64, 200, 512};
    const realm_type main_types[] = {REALM_TYPE_Q4_K, REALM_TYPE_Q6_K, REALM_TYPE_Q8_0};
    const struct { int ne0, ne1; } widths[] = {{4096, 1024}, {4096, 14336}, {14336, 4096},
                                               {4096, 576}, {576, 1536}};
    for (size_t ti = 0; ti < sizeof main_types / sizeof main_types[0]; ti++) {
        const realm_type_traits *t = realm_type_traits_get(main_types[ti]);
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            if (widths[wi].ne0 % t->block_size) continue;
            struct mm_weights m;
            mmw_init(&m, main_types[ti], widths[wi].ne0, widths[wi].ne1);
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                mmw_check(&m, "mmq", rows[ri], ri == 3, 1e-5);
            mmw_free(&m);
        }
    }
    const realm_type all[] = {REALM_TYPE_Q4_0, REALM_TYPE_Q4_1, REALM_TYPE_Q5_0,  REALM_TYPE_Q5_1,
                              REALM_TYPE_Q8_0, REALM_TYPE_Q2_K, REALM_TYPE_Q3_K,  REALM_TYPE_Q4_K,
                              REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, REALM_TYPE_IQ4_NL, REALM_TYPE_IQ4_XS};
    const struct { int ne0, ne1, n; } odd[] = {{768, 301, 3},  {1280, 65, 8},  {512, 129, 13},
                                               {1024, 96, 70}, {1056, 200, 5}, {4096, 576, 33},
                                               {576, 1536, 200}};
    for (size_t ti = 0; ti < sizeof all / sizeof all[0]; ti++) {
        const realm_type_traits *t = realm_type_traits_get(all[ti]);
        for (size_t si = 0; si < sizeof odd / sizeof odd[0]; si++) {
            if (odd[si].ne0 % t->block_size) continue;
            struct mm_weights m;
            mmw_init(&m, all[ti], odd[si].ne0, odd[si].ne1);
            mmw_check(&m, "mmq", odd[si].n, si % 2, 1e-5);
            mmw_free(&m);
        }
    }
    realm_backend_free(gpu);
    gpu = saved;
    assert_int_equal(n_fail, 0);
}

/* Matmuls recorded back to back on one input (q, k, v; gate, up) run as one
 * launch: of the tile kernel's super-block path, each member with the K
 * splits it would have alone, or at one row of the staged or unstaged
 * (Q8_0) mat-vec, Q4_K_M's Q4_K q and k with a Q6_K v included, each member
 * with the slabs it would have alone. The set must
 * give the bits of the same matmuls one by one (a second backend with
 * fusion off). The widths make the members split K differently (at 1024
 * columns on an H100: 25600 rows in one split, 128 and 576 rows in four),
 * at the 64-row and the 8-row tile height; the first member is also checked
 * against the CPU. */
static void set_upload(realm_backend *be, const void *host, size_t bytes, realm_buffer *b)
{
    realm_error err = {0};
    assert_int_equal(be->ops->buffer_alloc(be, bytes, b, &err), REALM_OK);
    be->ops->buffer_upload(be, b, 0, host, bytes);
}

static void test_matmul_sets(void **state)
{
    (void)state;
    skip_without_gpu();
    realm_backend *saved = gpu;
    /* two beside the default backend: 2 GiB each (test_mmq's one takes 4) */
    realm_backend *one = mmq_backend_of(2, true), *set = mmq_backend_of(2, false);
    gpu = set;
    realm_backend *be[2] = {set, one};
    enum { NM = 3 };
    const int rows[] = {33, 5, 1};
    const realm_type Q4K = REALM_TYPE_Q4_K, Q6K = REALM_TYPE_Q6_K, Q80 = REALM_TYPE_Q8_0;
    /* the fifth: rows of two slabs, where the first member's 4096 rows take
     * smaller slabs than the others' 1024 alone (mms_fit), so at one row
     * the set must go one by one. The sixth: the 8B's Q8_0 q/k/v, whose
     * set at one row loads two groups a lane before its wait on a 132-SM
     * GPU (too many blocks for one wave), each member alone four
     * (launch_mmv_q8). The last three: the ring mat-vec's sets at one row
     * (one type; Q4_K_M's mix at the 8B's and the 1B's widths), the last
     * member ending in a partial tile. */
    const struct {
        realm_type types[NM];
        int ne0, ne1s[NM];
    } sets[] = {
        {{Q4K, Q4K, Q4K}, 1024, {25600, 128, 576}},   {{Q80, Q80, Q80}, 1024, {25600, 128, 576}},
        {{Q6K, Q6K, Q6K}, 1024, {25600, 128, 576}},   {{Q4K, Q4K, Q6K}, 1024, {25600, 128, 576}},
        {{Q4K, Q4K, Q4K}, 14336, {4096, 1024, 1024}}, {{Q80, Q80, Q80}, 4096, {4096, 1024, 1024}},
        {{Q4K, Q4K, Q4K}, 4096, {4096, 1024, 1027}},  {{Q4K, Q4K, Q6K}, 4096, {4096, 1024, 1027}},
        {{Q4K, Q4K, Q6K}, 2048, {2048, 512, 515}},
    };
    realm_error err = {0};
    for (size_t si = 0; si < sizeof sets / sizeof sets[0]; si++) {
        const realm_type *types = sets[si].types;
        const int ne0 = sets[si].ne0, *ne1s = sets[si].ne1s;
        void *wq[NM];
        realm_buffer gw[2][NM];
        for (int m = 0; m < NM; m++) {
            const size_t rb = realm_type_row_size(types[m], ne0);
            float *wf = realm_malloc((size_t)ne0 * ne1s[m] * 4);
            for (size_t i = 0; i < (size_t)ne0 * ne1s[m]; i++)
                wf[i] = frand();
            wq[m] = realm_malloc(rb * ne1s[m]);
            realm_type_traits_get(types[m])->from_float(wf, wq[m], (int64_t)ne0 * ne1s[m]);
            realm_free(wf);
            for (int b = 0; b < 2; b++)
                set_upload(be[b], wq[m], rb * ne1s[m], &gw[b][m]);
        }
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            const int n = rows[ri];
            float *x = realm_malloc((size_t)n * ne0 * 4), *o[2][NM];
            for (int i = 0; i < n * ne0; i++)
                x[i] = frand();
            realm_buffer gx[2], go[2][NM];
            for (int b = 0; b < 2; b++) {
                set_upload(be[b], x, (size_t)n * ne0 * 4, &gx[b]);
                for (int m = 0; m < NM; m++) {
                    o[b][m] = realm_malloc((size_t)n * ne1s[m] * 4);
                    assert_int_equal(
                        be[b]->ops->buffer_alloc(be[b], (size_t)n * ne1s[m] * 4, &go[b][m], &err),
                        REALM_OK);
                }
                for (int m = 0; m < NM; m++) {
                    realm_weight w = {
                        .type = types[m], .ne0 = ne0, .ne1 = ne1s[m], .data = gw[b][m].data};
                    be[b]->ops->matmul(be[b], &w, NULL, gx[b].data, n, go[b][m].data);
                }
                for (int m = 0; m < NM; m++)
                    be[b]->ops->buffer_download(be[b], &go[b][m], 0, o[b][m],
                                                (size_t)n * ne1s[m] * 4);
                assert_int_equal(be[b]->ops->synchronize(be[b], &err), REALM_OK);
            }
            for (int m = 0; m < NM; m++) {
                char shape[48];
                snprintf(shape, sizeof shape, "%dx%d n=%d of 3", ne1s[m], ne0, n);
                verdict("mm-set-one", realm_type_traits_get(types[m])->name, shape, o[0][m],
                        o[1][m], (size_t)n * ne1s[m], NULL, 0.0);
            }
            /* the first member against the CPU, scaled by the output's RMS */
            float *oc = realm_malloc((size_t)n * ne1s[0] * 4),
                  *sc = realm_malloc((size_t)n * ne1s[0] * 4);
            realm_weight wc = {.type = types[0], .ne0 = ne0, .ne1 = ne1s[0], .data = wq[0]};
            cpu->ops->matmul(cpu, &wc, NULL, x, n, oc);
            rms_scale(oc, (size_t)n * ne1s[0], sc);
            char shape[48];
            snprintf(shape, sizeof shape, "%dx%d n=%d of 3", ne1s[0], ne0, n);
            verdict("mm-set-cpu", realm_type_traits_get(types[0])->name, shape, o[0][0], oc,
                    (size_t)n * ne1s[0], sc, 1e-4);
            realm_free(oc);
            realm_free(sc);
            for (int b = 0; b < 2; b++) {
                be[b]->ops->buffer_free(be[b], &gx[b]);
                for (int m = 0; m < NM; m++) {
                    be[b]->ops->buffer_free(be[b], &go[b][m]);
                    realm_free(o[b][m]);
                }
            }
            realm_free(x);
        }
        for (int m = 0; m < NM; m++) {
            for (int b = 0; b < 2; b++)
                be[b]->ops->buffer_free(be[b], &gw[b][m]);
            realm_free(wq[m]);
        }
    }
    realm_backend_free(gpu);
    realm_backend_free(one);
    gpu = saved;
    assert_int_equal(n_fail, 0);
}

/* The LM head's way: a matmul whose whole output is then downloaded into
 * page-locked memory runs in column chunks, each chunk's copy beside the
 * next chunk's matmul (cuda_pass.cu, issue_head_chunks). Against the CPU
 * like any matmul: through a graph (<= 64 rows) and without (70 rows), on
 * the mat-vec and the tile kernel, at 3000 outputs (a partial last chunk),
 * below the chunking threshold (7 rows) and with a bias (not chunked: the
 * download alone joins the pass). */
static void test_head_download(void **state)
{
    (void)state;
    skip_without_gpu();
    const realm_type types[] = {REALM_TYPE_Q6_K, REALM_TYPE_Q8_0, REALM_TYPE_Q4_K};
    const int rows[] = {7, 8, 33, 64, 70};
    realm_backend *saved = gpu;
    for (int tile = 0; tile < 2; tile++) {
        if (tile) gpu = mmq_backend();
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            struct mm_weights m;
            mmw_init(&m, types[ti], 1024, 3000);
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                mmw_check_to(&m, tile ? "head mmq" : "head", rows[ri], ri == 2,
                             rows[ri] <= 64 || tile ? 1e-5 : 1e-2, true);
            mmw_free(&m);
        }
        if (tile) realm_backend_free(gpu);
    }
    gpu = saved;
    assert_int_equal(n_fail, 0);
}

static void test_elementwise(void **state)
{
    (void)state;
    skip_without_gpu();
    enum { N = 5, D = 1000, HD = 64, NH = 3 };
    float x[N * D], y[N * D], g[D], oc[N * D], og[N * D];
    for (int i = 0; i < N * D; i++) {
        x[i] = frand() * 3;
        y[i] = frand();
    }
    for (int i = 0; i < D; i++)
        g[i] = frand();
    realm_buffer bx = gput(x, sizeof x), by = gput(y, sizeof y), bg = gput(g, sizeof g),
                 bo = gput(og, sizeof og);
    realm_weight wc = {.type = REALM_TYPE_F32, .ne0 = D, .ne1 = 1, .data = g};
    realm_weight wg = wc;
    wg.data = bg.data;
    cpu->ops->rmsnorm(cpu, x, &wc, N, 1e-5f, oc);
    gpu->ops->rmsnorm(gpu, bx.data, &wg, N, 1e-5f, bo.data);
    gget(&bo, og, sizeof og);
    verdict("rmsnorm", "f32", "5x1000", og, oc, N * D, NULL, 1e-5);

    memcpy(oc, x, sizeof x);
    cpu->ops->swiglu(cpu, oc, y, N * D);
    gpu->ops->swiglu(gpu, bx.data, by.data, N * D);
    gget(&bx, og, sizeof og);
    verdict("swiglu", "f32", "5000", og, oc, N * D, NULL, 1e-6);

    gpu->ops->buffer_upload(gpu, &bx, 0, x, sizeof x);
    memcpy(oc, x, sizeof x);
    cpu->ops->add(cpu, oc, y, N * D);
    gpu->ops->add(gpu, bx.data, by.data, N * D);
    gget(&bx, og, sizeof og);
    verdict("add", "f32", "5000", og, oc, N * D, NULL, 0.0);

    int32_t rows[3] = {4, 0, 2};
    gpu->ops->buffer_upload(gpu, &bx, 0, x, sizeof x);
    cpu->ops->copy_rows(cpu, x, D, rows, 3, oc);
    gpu->ops->copy_rows(gpu, bx.data, D, rows, 3, bo.data);
    gget(&bo, og, 3 * D * 4);
    verdict("copy_rows", "f32", "3 of 5x1000", og, oc, 3 * D, NULL, 0.0);

    /* rope: both modes, partial rotation, large positions */
    float inv[HD / 2];
    for (int i = 0; i < HD / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * i / HD);
    realm_buffer binv = gput(inv, sizeof inv);
    int32_t pos[N] = {0, 1, 17, 999, 4095};
    for (int mode = 0; mode < 2; mode++)
        for (int n_rot = HD; n_rot >= HD / 2; n_rot -= HD / 2) {
            gpu->ops->buffer_upload(gpu, &bx, 0, x, N * NH * HD * 4);
            memcpy(oc, x, N * NH * HD * 4);
            cpu->ops->rope(cpu, oc, N, NH, HD, n_rot, (realm_rope_mode)mode, inv, pos);
            gpu->ops->rope(gpu, bx.data, N, NH, HD, n_rot, (realm_rope_mode)mode, binv.data, pos);
            gget(&bx, og, N * NH * HD * 4);
            char shape[48];
            snprintf(shape, sizeof shape, "%s rot=%d 5x3x64", mode ? "neox" : "normal", n_rot);
            verdict("rope", "f32", shape, og, oc, N * NH * HD, NULL, 1e-5);
        }
    gfree(&binv);
    gfree(&bx);
    gfree(&by);
    gfree(&bg);
    gfree(&bo);
    assert_int_equal(n_fail, 0);
}

/* argmax against the CPU's (base/rowmath.h) exactly: few distinct values (so
 * ties are everywhere), NaN and -inf among them, a row with no finite value,
 * a row whose maximum is its last element; widths around the kernel's 256
 * threads and vocabulary sizes. */
static void test_argmax(void **state)
{
    (void)state;
    skip_without_gpu();
    const int64_t widths[] = {1, 7, 255, 256, 1000, 49152, 128256};
    enum { R = 9 };
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const int64_t w = widths[wi];
        float *x = malloc((size_t)(R * w) * sizeof *x);
        assert_non_null(x);
        for (int64_t i = 0; i < R * w; i++) {
            seed = seed * 1664525u + 1013904223u;
            uint32_t u = seed >> 8;
            x[i] = u % 97 == 0 ? NAN : u % 89 == 0 ? -INFINITY : (float)(u % 5) - 2.0f;
        }
        for (int64_t i = 0; i < w; i++)
            x[3 * w + i] = i % 2 ? NAN : -INFINITY;
        x[5 * w + w - 1] = 10.0f;
        int32_t ic[R], ig[R];
        float fc[R], fg[R];
        realm_buffer bx = gput(x, (size_t)(R * w) * sizeof *x), bo = gput(ig, sizeof ig);
        cpu->ops->argmax(cpu, x, R, w, ic);
        gpu->ops->argmax(gpu, bx.data, R, w, bo.data);
        gget(&bo, ig, sizeof ig);
        for (int r = 0; r < R; r++) {
            fc[r] = (float)ic[r];
            fg[r] = (float)ig[r];
        }
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%lld", R, (long long)w);
        verdict("argmax", "f32", shape, fg, fc, R, NULL, 0.0);
        gfree(&bx);
        gfree(&bo);
        free(x);
    }
    assert_int_equal(n_fail, 0);
}

/* kv_store + attention on gpu: two sequences with scattered block tables,
 * a prefill batch (3 rows of sequence 1, 70 of sequence 0, 30 more of
 * sequence 1: the tiled kernel's tiles and, for the 3-row run, the one-row
 * kernel beside it), one decode row per sequence (the split kernel), then
 * 12 rows of sequence 0 (a pass a graph may capture: the one-row kernel),
 * then 5 rows of sequence 1 (the split kernel with rows whose K/V the
 * kernel ahead stores in the same pass); two head sizes, 1 to 4 query heads
 * per K/V head; f16 and f32 pools, whose contents must match the CPU's to
 * the bit (both round each value to nearest even). */
static void check_attention(const char *tag)
{
    /* head dim, query heads, K/V heads: query heads per K/V head 2, 3, 4, 1 */
    const int shapes[5][3] = {{64, 4, 2}, {128, 4, 2}, {64, 6, 2}, {128, 4, 1}, {64, 3, 3}};
    for (int run = 0; run < 10; run++) {
        const int hi = run / 2;
        const realm_type kt = kv_types[run % 2];
        const char *kname = realm_type_traits_get(kt)->name;
        const int HD = shapes[hi][0], NH = shapes[hi][1], NKV = shapes[hi][2], BS = 16, NB = 24,
                  L = 2, KVD = NKV * HD;
        const size_t pool = (size_t)L * NB * BS * KVD,
                     pool_bytes = realm_kv_pool_bytes(L, NB, BS, KVD, kt);
        void *kc = realm_calloc(pool_bytes, 1), *vc = realm_calloc(pool_bytes, 1);
        realm_buffer gk = gput(kc, pool_bytes), gv = gput(vc, pool_bytes);
        realm_kv_pool kvc = {.n_layer = L,
                             .n_blocks = NB,
                             .block_size = BS,
                             .kv_dim = KVD,
                             .type = kt,
                             .k = kc,
                             .v = vc};
        realm_kv_pool kvg = kvc;
        kvg.k = gk.data;
        kvg.v = gv.data;
        int32_t t0[8] = {5, 17, 2, 9, 20, 11, 0, 1}, t1[8] = {3, 14, 7, 22, 6, 4, 8, 10};
        realm_batch_seq seqs[2] = {{t0, 8}, {t1, 8}};
        enum { P0 = 70, P1 = 33, P1A = 3, NR = P0 + P1 };
        int32_t pos[NR], sq[NR], tok[NR];
        for (int r = 0; r < NR; r++) {
            sq[r] = r < P1A || r >= P1A + P0 ? 1 : 0;
            pos[r] = r < P1A ? r : r < P1A + P0 ? r - P1A : r - P0;
            tok[r] = 0;
        }
        float *q = realm_malloc((size_t)NR * NH * HD * 4), *k = realm_malloc((size_t)NR * KVD * 4),
              *v = realm_malloc((size_t)NR * KVD * 4), *oc = realm_malloc((size_t)NR * NH * HD * 4),
              *og = realm_malloc((size_t)NR * NH * HD * 4);
        for (int i = 0; i < NR * NH * HD; i++)
            q[i] = frand();
        for (int i = 0; i < NR * KVD; i++) {
            k[i] = frand();
            v[i] = frand();
        }
        realm_buffer bq = gput(q, (size_t)NR * NH * HD * 4), bk = gput(k, (size_t)NR * KVD * 4),
                     bv = gput(v, (size_t)NR * KVD * 4), bo = gput(og, (size_t)NR * NH * HD * 4);
        realm_attn_params ap = {.n_head = NH, .n_head_kv = NKV, .head_dim = HD,
                                .scale = 1.0f / sqrtf((float)HD)};
        int32_t dpos[2] = {P0, P1}, dsq[2] = {0, 1}, cpos[12], csq[12], spos[5], ssq[5];
        for (int r = 0; r < 12; r++) {
            cpos[r] = P0 + 1 + r;
            csq[r] = 0;
        }
        for (int r = 0; r < 5; r++) {
            spos[r] = P1 + 1 + r;
            ssq[r] = 1;
        }
        const int32_t nrs[4] = {NR, 2, 12, 5}, *poss[4] = {pos, dpos, cpos, spos},
                      *sqs[4] = {sq, dsq, csq, ssq};
        const char *names[4] = {"prefill 3+70+30", "decode 2 seqs", "12 rows of seq 0",
                                "5 rows of seq 1"};
        for (int step = 0; step < 4; step++) {
            int nr = nrs[step];
            realm_batch b = {.n_rows = nr,
                             .token = tok,
                             .pos = poss[step],
                             .seq = sqs[step],
                             .n_seqs = 2,
                             .seqs = seqs};
            cpu->ops->kv_store(cpu, &kvc, 1, &b, k, v);
            cpu->ops->attention(cpu, &kvc, 1, &b, &ap, q, oc);
            gpu->ops->kv_store(gpu, &kvg, 1, &b, bk.data, bv.data);
            gpu->ops->attention(gpu, &kvg, 1, &b, &ap, bq.data, bo.data);
            gget(&bo, og, (size_t)nr * NH * HD * 4);
            char shape[80];
            snprintf(shape, sizeof shape, "%s hd=%d gqa=%d%s", names[step], HD, NH / NKV, tag);
            verdict("attention", kname, shape, og, oc, (size_t)nr * NH * HD, NULL, 1e-5);
        }
        void *raw = realm_malloc(pool_bytes);
        float *pg = realm_malloc(pool * 4), *pc = realm_malloc(pool * 4);
        for (int kv = 0; kv < 2; kv++) {
            gget(kv ? &gv : &gk, raw, pool_bytes);
            kv_floats(kt, raw, pool, pg);
            kv_floats(kt, kv ? vc : kc, pool, pc);
            char shape[48];
            snprintf(shape, sizeof shape, "%s pool after both hd=%d%s", kv ? "v" : "k", HD, tag);
            verdict("kv_store", kname, shape, pg, pc, pool, NULL, 0.0);
        }
        realm_free(raw);
        realm_free(pg);
        realm_free(pc);
        gfree(&gk);
        gfree(&gv);
        gfree(&bq);
        gfree(&bk);
        gfree(&bv);
        gfree(&bo);
        realm_free(kc);
        realm_free(vc);
        realm_free(q);
        realm_free(k);
        realm_free(v);
        realm_free(oc);
        realm_free(og);
    }
}

/* The same on a backend reserved for 40000 positions, where the one-row
 * kernel's per-position scores no longer fit in shared memory: the tiled
 * kernel then takes every row (one tile per row in passes a graph may
 * capture). */
static void test_attention(void **state)
{
    (void)state;
    skip_without_gpu();
    check_attention("");
    realm_error err = {0};
    realm_backend *saved = gpu, *lng = NULL;
    realm_backend_options o = {.mem_budget_bytes = (size_t)1 << 30};
    assert_int_equal(realm_backend_create("cuda", &o, &lng, &err), REALM_OK);
    realm_backend_limits lim = {.max_rows = 128, .max_ctx = 40000, .max_ne0 = 512};
    assert_int_equal(lng->ops->reserve(lng, &lim, &err), REALM_OK);
    gpu = lng;
    check_attention(" ctx 40000");
    gpu = saved;
    realm_backend_free(lng);
    assert_int_equal(n_fail, 0);
}

/* One decoder layer as model/forward.c records it (rmsnorm, q/k/v, rope q,
 * rope k, kv_store, attention, wo, add, rmsnorm, gate/up, swiglu, down, add)
 * in one pass, so the CUDA backend's fused kernels run (rmsnorm, swiglu and
 * the split attention writing the next matmul's quantized input, matmul+add,
 * rope+rope+kv_store) at few rows; then the next layer's rmsnorm and q, so
 * both matmul+add+rmsnorm chains run. On `gpu` the pass goes to the GPU in two
 * launches (the ops up to the second rmsnorm while the host records the rest:
 * REALM_CUDA_EARLY_OPS=8). Checked twice: against a second CUDA backend with
 * fusion off (REALM_CUDA_NO_FUSE=1) and the pass in one launch: neither may
 * change a bit, tolerance 0; and against the CPU, error relative to the RMS of
 * the output, tolerance 5e-2, each step starting from the CPU's x. An
 * activation code rounded the other way (the GPU sums in another order, so a
 * value at a rounding tie may land on either side) moves an output by |w|·d, d
 * = amax/127 of its group: ~1e-3 of the RMS with these weights, more where it
 * lands in the swiglu output (measured: Q4_K 8e-4; Q4_1 on the tile kernel
 * 1.1e-2 in x and 2.3e-2 in the next q, whose input carries x's flips; fused
 * and unfused agreed to the bit). 5e-2 leaves room for a few flips, while a
 * wrong fusion errs by O(1). */
enum { FD = 512, FNH = 4, FNKV = 2, FHD = 128, FFF = 768, FKVD = FNKV * FHD, FR = 3 };

struct layer_w {
    realm_weight wq, wk, wv, wo, wg, wu, wd, n1, n2;
};

static void run_layer(realm_backend *be, const struct layer_w *L, const realm_kv_pool *kv,
                      const realm_batch *b, const float *inv, float *x, float *xb, float *q,
                      float *k, float *v, float *att, float *hb, float *hb2)
{
    const realm_backend_ops *o = be->ops;
    const realm_attn_params ap = {.n_head = FNH, .n_head_kv = FNKV, .head_dim = FHD,
                                  .scale = 1.0f / sqrtf((float)FHD)};
    int32_t n = b->n_rows;
    o->rmsnorm(be, x, &L->n1, n, 1e-5f, xb);
    o->matmul(be, &L->wq, NULL, xb, n, q);
    o->matmul(be, &L->wk, NULL, xb, n, k);
    o->matmul(be, &L->wv, NULL, xb, n, v);
    o->rope(be, q, n, FNH, FHD, FHD, REALM_ROPE_NORMAL, inv, b->pos);
    o->rope(be, k, n, FNKV, FHD, FHD, REALM_ROPE_NORMAL, inv, b->pos);
    o->kv_store(be, kv, 0, b, k, v);
    o->attention(be, kv, 0, b, &ap, q, att);
    o->matmul(be, &L->wo, NULL, att, n, xb);
    o->add(be, x, xb, (int64_t)n * FD);
    o->rmsnorm(be, x, &L->n2, n, 1e-5f, xb);
    o->matmul(be, &L->wg, NULL, xb, n, hb);
    o->matmul(be, &L->wu, NULL, xb, n, hb2);
    o->swiglu(be, hb, hb2, (int64_t)n * FFF);
    o->matmul(be, &L->wd, NULL, hb, n, xb);
    o->add(be, x, xb, (int64_t)n * FD);
    /* the next layer's start: down+add+rmsnorm+matmul, as wo+add+rmsnorm+gate
     * above (its q into att, so this layer's rotated q and k stay to be
     * compared) */
    o->rmsnorm(be, x, &L->n1, n, 1e-5f, xb);
    o->matmul(be, &L->wq, NULL, xb, n, att);
}

/* mmq: both CUDA backends with the tile kernel on (the 3-row step then runs
 * it, split over K, fed by the fused quantizing producers and adding into
 * the residual, q/k/v and gate/up as sets of one launch on its super-block
 * path, Q4_K and Q6_K); gpu is then the MMQ backend. */
static void check_fused_layer(realm_type type, bool mmq)
{
    const realm_type_traits *t = realm_type_traits_get(type);
    realm_error err = {0};
    setenv("REALM_CUDA_NO_FUSE", "1", 1);
    setenv("REALM_CUDA_MMQ", mmq ? "1" : "0", 1);
    setenv("REALM_CUDA_MMQ_MIN", "2", 1);
    realm_backend *plain = NULL;
    realm_status st = realm_backend_create("cuda", NULL, &plain, &err);
    unsetenv("REALM_CUDA_NO_FUSE");
    unsetenv("REALM_CUDA_MMQ");
    unsetenv("REALM_CUDA_MMQ_MIN");
    assert_int_equal(st, REALM_OK);
    realm_backend_limits lim = {.max_rows = 80, .max_ctx = 200, .max_ne0 = 14336};
    assert_int_equal(plain->ops->reserve(plain, &lim, &err), REALM_OK);
    /* weights: host (CPU) and device copies on both GPU backends */
    const int dims[7][2] = {{FD, FNH * FHD}, {FD, FKVD}, {FD, FKVD}, {FNH * FHD, FD},
                            {FD, FFF},       {FD, FFF},  {FFF, FD}};
    struct layer_w Lc, Lg, Lp;
    realm_weight *wc = &Lc.wq, *wg = &Lg.wq, *wp = &Lp.wq;
    void *host[9];
    realm_buffer gb[9], pb[9];
    for (int i = 0; i < 9; i++) {
        int ne0 = i < 7 ? dims[i][0] : FD, ne1 = i < 7 ? dims[i][1] : 1;
        realm_type ty = i < 7 ? type : REALM_TYPE_F32;
        size_t bytes = realm_type_row_size(ty, ne0) * ne1;
        float *f = realm_malloc((size_t)ne0 * ne1 * 4);
        for (int j = 0; j < ne0 * ne1; j++)
            f[j] = i < 7 ? frand() * 0.05f : 1.0f + 0.1f * frand();
        host[i] = realm_malloc(bytes);
        if (i < 7) t->from_float(f, host[i], (int64_t)ne0 * ne1);
        else memcpy(host[i], f, bytes);
        realm_free(f);
        wc[i] = (realm_weight){.type = ty, .ne0 = ne0, .ne1 = ne1, .data = host[i]};
        gb[i] = gput(host[i], bytes);
        assert_int_equal(plain->ops->buffer_alloc(plain, bytes, &pb[i], &err), REALM_OK);
        plain->ops->buffer_upload(plain, &pb[i], 0, host[i], bytes);
        wg[i] = wc[i];
        wg[i].data = gb[i].data;
        wp[i] = wc[i];
        wp[i].data = pb[i].data;
    }
    float inv[FHD / 2];
    for (int i = 0; i < FHD / 2; i++)
        inv[i] = powf(500000.0f, -2.0f * i / FHD);
    /* activations: x, xb, q, k, v, att, hb, hb2 */
    const size_t sz[8] = {FR * FD, FR * FD, FR * FD, FR * FKVD, FR * FKVD, FR * FD, FR * FFF, FR * FFF};
    float *hc[8];
    realm_buffer ga[8], pa[8];
    for (int i = 0; i < 8; i++) {
        hc[i] = realm_calloc(sz[i], 4);
        ga[i] = gput(hc[i], sz[i] * 4);
        assert_int_equal(plain->ops->buffer_alloc(plain, sz[i] * 4, &pa[i], &err), REALM_OK);
    }
    /* the K/V pool: f16, the caches' default */
    const int BS = 16, NB = 4;
    const size_t pool = (size_t)NB * BS * FKVD,
                 pool_bytes = realm_kv_pool_bytes(1, NB, BS, FKVD, REALM_TYPE_F16);
    void *kc = realm_calloc(pool_bytes, 1), *vc = realm_calloc(pool_bytes, 1);
    realm_buffer gk = gput(kc, pool_bytes), gv = gput(vc, pool_bytes), ginv = gput(inv, sizeof inv),
                 pk, pv, pinv;
    assert_int_equal(plain->ops->buffer_alloc(plain, pool_bytes, &pk, &err), REALM_OK);
    assert_int_equal(plain->ops->buffer_alloc(plain, pool_bytes, &pv, &err), REALM_OK);
    assert_int_equal(plain->ops->buffer_alloc(plain, sizeof inv, &pinv, &err), REALM_OK);
    plain->ops->buffer_upload(plain, &pinv, 0, inv, sizeof inv);
    realm_kv_pool kvc = {.n_layer = 1,
                         .n_blocks = NB,
                         .block_size = BS,
                         .kv_dim = FKVD,
                         .type = REALM_TYPE_F16,
                         .k = kc,
                         .v = vc};
    realm_kv_pool kvg = kvc, kvp = kvc;
    kvg.k = gk.data;
    kvg.v = gv.data;
    kvp.k = pk.data;
    kvp.v = pv.data;
    int32_t table[4] = {2, 0, 3, 1};
    realm_batch_seq seq = {table, 4};
    float x0[FR * FD];
    for (int i = 0; i < FR * FD; i++)
        x0[i] = frand();
    memcpy(hc[0], x0, sizeof x0);
    gpu->ops->buffer_upload(gpu, &ga[0], 0, x0, sizeof x0);
    plain->ops->buffer_upload(plain, &pa[0], 0, x0, sizeof x0);
    /* step 0: 3 rows at positions 0..2; steps 1..2: one row at 3, 4 */
    for (int step = 0; step < 3; step++) {
        int32_t n = step == 0 ? FR : 1;
        /* each step from the CPU's x: a code flip (below) must not compound */
        gpu->ops->buffer_upload(gpu, &ga[0], 0, hc[0], sizeof x0);
        plain->ops->buffer_upload(plain, &pa[0], 0, hc[0], sizeof x0);
        int32_t pos[FR] = {0, 1, 2}, sq[FR] = {0, 0, 0}, tok[FR] = {0, 0, 0};
        if (step) pos[0] = FR - 1 + step;
        realm_batch b = {.n_rows = n, .token = tok, .pos = pos, .seq = sq, .n_seqs = 1, .seqs = &seq};
        run_layer(cpu, &Lc, &kvc, &b, inv, hc[0], hc[1], hc[2], hc[3], hc[4], hc[5], hc[6], hc[7]);
        run_layer(gpu, &Lg, &kvg, &b, ginv.data, ga[0].data, ga[1].data, ga[2].data, ga[3].data,
                  ga[4].data, ga[5].data, ga[6].data, ga[7].data);
        run_layer(plain, &Lp, &kvp, &b, pinv.data, pa[0].data, pa[1].data, pa[2].data, pa[3].data,
                  pa[4].data, pa[5].data, pa[6].data, pa[7].data);
        /* the layer's output x, the next layer's q (in att), and the rotated
         * q and k (the decode attention rotates them itself and writes
         * them back: NOTES round 16) */
        const int bis[4] = {0, 5, 2, 3}, widths[4] = {FD, FD, FD, FKVD};
        const char *names[4] = {"layer", "next q", "rope q", "rope k"};
        for (int j = 0; j < 4; j++) {
            const int bi = bis[j];
            const size_t m = (size_t)n * widths[j];
            float og[FR * FD], op[FR * FD], scale[FR * FD];
            gget(&ga[bi], og, m * 4);
            plain->ops->buffer_download(plain, &pa[bi], 0, op, m * 4);
            assert_int_equal(plain->ops->synchronize(plain, &err), REALM_OK);
            rms_scale(hc[bi], m, scale);
            char shape[48];
            snprintf(shape, sizeof shape, "%s step %d (%d rows)", names[j], step, n);
            verdict(mmq ? "mmq-fus-un" : "fused-vs-un", t->name, shape, og, op, m, NULL, 0.0);
            verdict(mmq ? "mmq-vs-cpu" : "fused-vs-cpu", t->name, shape, og, hc[bi], m, scale,
                    5e-2);
        }
    }
    {
        /* the K/V pool the fused kernel stored, against the unfused one */
        void *raw = realm_malloc(pool_bytes);
        float *kg = realm_malloc(pool * 4), *kp = realm_malloc(pool * 4);
        for (int kvi = 0; kvi < 2; kvi++) {
            gget(kvi ? &gv : &gk, raw, pool_bytes);
            kv_floats(REALM_TYPE_F16, raw, pool, kg);
            plain->ops->buffer_download(plain, kvi ? &pv : &pk, 0, raw, pool_bytes);
            assert_int_equal(plain->ops->synchronize(plain, &err), REALM_OK);
            kv_floats(REALM_TYPE_F16, raw, pool, kp);
            verdict(mmq ? "mmq-fus-un" : "fused-vs-un", t->name,
                    kvi ? "v pool (f16)" : "k pool (f16)", kg, kp, pool, NULL, 0.0);
        }
        realm_free(raw);
        realm_free(kg);
        realm_free(kp);
    }
    for (int i = 0; i < 9; i++) {
        gfree(&gb[i]);
        plain->ops->buffer_free(plain, &pb[i]);
        realm_free(host[i]);
    }
    for (int i = 0; i < 8; i++) {
        gfree(&ga[i]);
        plain->ops->buffer_free(plain, &pa[i]);
        realm_free(hc[i]);
    }
    gfree(&gk);
    gfree(&gv);
    gfree(&ginv);
    plain->ops->buffer_free(plain, &pk);
    plain->ops->buffer_free(plain, &pv);
    plain->ops->buffer_free(plain, &pinv);
    realm_free(kc);
    realm_free(vc);
    realm_backend_free(plain);
}

static void test_fused_layer(void **state)
{
    (void)state;
    skip_without_gpu();
    check_fused_layer(REALM_TYPE_Q4_K, false);
    check_fused_layer(REALM_TYPE_Q8_0, false);
    check_fused_layer(REALM_TYPE_Q4_1, false);
    realm_backend *saved = gpu;
    gpu = mmq_backend();
    check_fused_layer(REALM_TYPE_Q4_K, true);
    check_fused_layer(REALM_TYPE_Q6_K, true);
    check_fused_layer(REALM_TYPE_Q4_1, true);
    realm_backend_free(gpu);
    gpu = saved;
    assert_int_equal(n_fail, 0);
}

/* A K/V pool of a type the kernels do not take (the caches never make one):
 * kv_store and attention on it fail the pass with an error from
 * synchronize, nothing launched, and the next pass (an f16 pool) runs,
 * storing quant/fp16.h's bits. */
static void test_kv_bad_type(void **state)
{
    (void)state;
    skip_without_gpu();
    enum { KVD = 64 };
    /* and quant/fp16.h's rounding at its edges: overflow to inf, the
     * largest half, subnormals, a tie at the smallest one */
    float k[KVD] = {70000.0f, -65520.0f, 65519.0f, 1e-6f, -0x1p-25f, 3e-8f, 0x1.8p-24f};
    for (int i = 7; i < KVD; i++)
        k[i] = frand();
    realm_buffer bk = gput(k, sizeof k), bp = gput(k, sizeof k), bo = gput(k, sizeof k);
    int32_t table[1] = {0}, pos[1] = {0}, sq[1] = {0}, tok[1] = {0};
    realm_batch_seq seq = {table, 1};
    realm_batch b = {.n_rows = 1, .token = tok, .pos = pos, .seq = sq, .n_seqs = 1, .seqs = &seq};
    realm_kv_pool kv = {.n_layer = 1,
                        .n_blocks = 1,
                        .block_size = 1,
                        .kv_dim = KVD,
                        .type = REALM_TYPE_Q8_0,
                        .k = bp.data,
                        .v = bp.data};
    realm_attn_params ap = {.n_head = 1, .n_head_kv = 1, .head_dim = KVD, .scale = 0.125f};
    realm_error err = {0};
    gpu->ops->kv_store(gpu, &kv, 0, &b, bk.data, bk.data);
    gpu->ops->attention(gpu, &kv, 0, &b, &ap, bk.data, bo.data);
    assert_int_not_equal(gpu->ops->synchronize(gpu, &err), REALM_OK);
    kv.type = REALM_TYPE_F16;
    gpu->ops->kv_store(gpu, &kv, 0, &b, bk.data, bk.data);
    realm_fp16 h[KVD];
    float got[KVD], want[KVD]; /* the bits as numbers: inf compares */
    gget(&bp, h, sizeof h);
    for (int i = 0; i < KVD; i++) {
        got[i] = h[i];
        want[i] = realm_fp32_to_fp16(k[i]);
    }
    verdict("kv_store", "F16", "bits after refused pass", got, want, KVD, NULL, 0.0);
    gfree(&bk);
    gfree(&bp);
    gfree(&bo);
    assert_int_equal(n_fail, 0);
}

/* Uploads are ordered before the kernels that follow them: 64 MiB uploaded
 * from pageable memory, then at once an `add` reading it, eight times with
 * a new pattern each time. (Uploads once went through the legacy stream and
 * returned before their DMA landed: the kernel then read part of the
 * previous pattern.) */
static void test_upload_order(void **state)
{
    (void)state;
    skip_without_gpu();
    const size_t n = (size_t)16 << 20;
    float *x = realm_malloc(n * 4), *y = realm_malloc(n * 4), *got = realm_malloc(n * 4);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(got);
    for (size_t i = 0; i < n; i++)
        y[i] = (float)(i % 977);
    realm_buffer bx = gput(y, n * 4), by = gput(y, n * 4);
    size_t bad = 0;
    for (int it = 0; it < 8; it++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i + (size_t)it * 7919) % 1009);
        gpu->ops->buffer_upload(gpu, &bx, 0, x, n * 4);
        gpu->ops->add(gpu, bx.data, by.data, (int64_t)n);
        gget(&bx, got, n * 4);
        for (size_t i = 0; i < n; i++)
            bad += got[i] != x[i] + y[i];
    }
    printf("| %-10s | %-6s | %-22s | %9zu | %8s | %s |\n", "upload", "f32", "64 MiB then add x8",
           bad, "0", bad ? "FAIL" : "PASS");
    n_fail += bad != 0;
    gfree(&bx);
    gfree(&by);
    realm_free(x);
    realm_free(y);
    realm_free(got);
    assert_int_equal(n_fail, 0);
}

/* A model-sized request beyond the budget fails with a clear error. */
static void test_budget(void **state)
{
    (void)state;
    skip_without_gpu();
    realm_buffer b;
    realm_error err = {0};
    realm_status st = gpu->ops->buffer_alloc(gpu, (size_t)1 << 50, &b, &err);
    printf("| %-10s | %-6s | %-22s | %9s | %8s | %s |\n", "budget", "-", "1 PiB alloc", "-", "-",
           st == REALM_E_NOMEM ? "PASS" : "FAIL");
    assert_int_equal(st, REALM_E_NOMEM);
    assert_non_null(strstr(err.message, "budget"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_matmul, reset_fails),
        cmocka_unit_test_setup(test_matmul_model_shapes, reset_fails),
        cmocka_unit_test_setup(test_matmul_ring, reset_fails),
        cmocka_unit_test_setup(test_ring_rope, reset_fails),
        cmocka_unit_test_setup(test_mmq, reset_fails),
        cmocka_unit_test_setup(test_matmul_sets, reset_fails),
        cmocka_unit_test_setup(test_head_download, reset_fails),
        cmocka_unit_test_setup(test_elementwise, reset_fails),
        cmocka_unit_test_setup(test_argmax, reset_fails),
        cmocka_unit_test_setup(test_attention, reset_fails),
        cmocka_unit_test_setup(test_fused_layer, reset_fails),
        cmocka_unit_test_setup(test_kv_bad_type, reset_fails),
        cmocka_unit_test_setup(test_upload_order, reset_fails),
        cmocka_unit_test_setup(test_budget, reset_fails),
    };
    /* $REALM_TEST_FILTER: only the tests matching this cmocka pattern
     * (device_run.sh's sanitize phase runs the slow tools on a few) */
    const char *filter = getenv("REALM_TEST_FILTER");
    if (filter) cmocka_set_test_filter(filter);
    printf("| op         | type   | shape                  | max err   | tol      | ok   |\n");
    return cmocka_run_group_tests(tests, setup, teardown);
}
