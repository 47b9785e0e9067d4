/* Tests for backend/cpu's kernel tables (cpu_kernels.h): every variant this
 * CPU runs against the quant/ reference kernels, on random data and awkward
 * shapes (single rows, rows not a multiple of the tile, K = 14336):
 *  - activation quantizers: the same bytes as the reference from_float;
 *  - gemm: each element within f32 summation-order error of the reference
 *    vec_dot, and bit-identical however the matrix is cut into tiles, and
 *    with the weights packed at load (pack + gemm_packed);
 *  - exp/swiglu/dot/attention helpers against libm and plain loops;
 * plus the thread pool (every task exactly once, repeated jobs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_kernels.h"
#include "base/alloc.h"
#include "quant/fp16.h"

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* Random rows with a spread of magnitudes per 32 elements, so blocks of very
 * different scales meet in one dot product. */
static void fill(float *x, int64_t n, uint32_t *seed)
{
    for (int64_t i = 0; i < n; i++) {
        float scale = (float)(1 << (((i / 32) * 7) % 5));
        x[i] = frand(seed) * scale;
    }
}

static const realm_type weight_types[] = {
    REALM_TYPE_F32,  REALM_TYPE_F16,  REALM_TYPE_BF16, REALM_TYPE_Q4_0,   REALM_TYPE_Q4_1,
    REALM_TYPE_Q5_0, REALM_TYPE_Q5_1, REALM_TYPE_Q8_0, REALM_TYPE_Q2_K,   REALM_TYPE_Q3_K,
    REALM_TYPE_Q4_K, REALM_TYPE_Q5_K, REALM_TYPE_Q6_K, REALM_TYPE_IQ4_NL, REALM_TYPE_IQ4_XS,
};

static void test_quantize_matches_reference(void **state)
{
    (void)state;
    const realm_cpu_kernels *tabs[4];
    int n_tabs = realm__cpu_kernels_all(tabs, 4);
    enum { N = 4096 };
    float *x = realm_malloc(N * sizeof(float));
    char *want = realm_malloc(N * 2), *got = realm_malloc(N * 2);
    const realm_type acts[] = {REALM_TYPE_Q8_0, REALM_TYPE_Q8_1, REALM_TYPE_Q8_K};
    uint32_t seed = 7;
    for (int round = 0; round < 4; round++) {
        fill(x, N, &seed);
        if (round == 1) /* exact halves of the scale: the rounding ties */
            for (int i = 0; i < N; i++)
                x[i] = (float)((i % 255) - 127) * 0.5f;
        if (round == 2) { /* zero blocks, huge, tiny and non-finite values */
            memset(x, 0, 256 * sizeof(float));
            x[300] = INFINITY;
            x[600] = -INFINITY;
            x[900] = NAN;
            x[1200] = 1e30f;
            x[1500] = 1e-40f;
            for (int i = 1600; i < 1900; i++)
                x[i] = 1e-42f * (float)(i % 7);
        }
        if (round == 3) /* all elements of a block equal in magnitude */
            for (int i = 0; i < N; i++)
                x[i] = (i & 1) ? 3.0f : -3.0f;
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            const realm_type_traits *t = realm_type_traits_get(acts[a]);
            size_t bytes = realm_type_row_size(acts[a], N);
            t->from_float(x, want, N);
            for (int k = 0; k < n_tabs; k++) {
                if (!tabs[k]->quantize[acts[a]]) continue;
                memset(got, 0x55, bytes);
                tabs[k]->quantize[acts[a]](x, got, N);
                if (memcmp(got, want, bytes))
                    fail_msg("%s quantize %s differs from the reference (round %d)", tabs[k]->name,
                             t->name, round);
            }
        }
    }
    realm_free(x);
    realm_free(want);
    realm_free(got);
}

typedef struct shape {
    int64_t k, nr, nc;
} shape;

/* One weight type on one table: every element against the reference dot,
 * then the whole product against tile-by-tile and element-by-element runs. */
static void check_gemm(const realm_cpu_kernels *tab, realm_type type, shape s, uint32_t *seed)
{
    const realm_type_traits *t = realm_type_traits_get(type);
    realm_type at = t->vec_dot_type;
    size_t ws = realm_type_row_size(type, s.k);
    size_t as = at == REALM_TYPE_F32 ? (size_t)s.k * sizeof(float) : realm_type_row_size(at, s.k);
    float *wf = realm_malloc((size_t)(s.nr * s.k) * sizeof(float));
    float *af = realm_malloc((size_t)(s.nc * s.k) * sizeof(float));
    float *wd = realm_malloc((size_t)s.k * sizeof(float)), *ad = realm_malloc((size_t)s.k * sizeof(float));
    char *w = realm_malloc(ws * (size_t)s.nr), *a = realm_malloc(as * (size_t)s.nc);
    float *out = realm_malloc((size_t)(s.nr * s.nc) * sizeof(float));
    float *out2 = realm_malloc((size_t)(s.nr * s.nc) * sizeof(float));
    fill(wf, s.nr * s.k, seed);
    fill(af, s.nc * s.k, seed);
    for (int64_t r = 0; r < s.nr; r++)
        t->from_float(wf + r * s.k, w + (size_t)r * ws, s.k);
    for (int64_t c = 0; c < s.nc; c++) {
        if (at == REALM_TYPE_F32)
            memcpy(a + (size_t)c * as, af + c * s.k, as);
        else
            realm_type_traits_get(at)->from_float(af + c * s.k, a + (size_t)c * as, s.k);
    }
    tab->gemm[type](s.k, w, ws, s.nr, a, as, s.nc, out, (size_t)s.nr);
    for (int64_t r = 0; r < s.nr; r++) {
        t->to_float(w + (size_t)r * ws, wd, s.k);
        for (int64_t c = 0; c < s.nc; c++) {
            if (at == REALM_TYPE_F32)
                memcpy(ad, a + (size_t)c * as, as);
            else
                realm_type_traits_get(at)->to_float(a + (size_t)c * as, ad, s.k);
            double mass = 0;
            for (int64_t i = 0; i < s.k; i++)
                mass += fabs((double)wd[i] * ad[i]);
            float want = t->vec_dot(s.k, w + (size_t)r * ws, a + (size_t)c * as);
            float got = out[c * s.nr + r];
            /* f32 accumulation over k terms; K-quant min terms add one more
             * rounding of a product of the same size */
            double tol = 4e-6 * mass + 1e-30;
            if (!(fabs((double)got - want) <= tol))
                fail_msg("%s %s k=%lld (%lld x %lld) element (%lld,%lld): got %.9g want %.9g "
                         "(tol %.3g)",
                         tab->name, t->name, (long long)s.k, (long long)s.nr, (long long)s.nc,
                         (long long)r, (long long)c, got, want, tol);
        }
    }
    /* Element by element, then in odd-sized blocks: bit-identical. */
    for (int64_t r = 0; r < s.nr; r++)
        for (int64_t c = 0; c < s.nc; c++)
            tab->gemm[type](s.k, w + (size_t)r * ws, ws, 1, a + (size_t)c * as, as, 1,
                            out2 + c * s.nr + r, (size_t)s.nr);
    assert_memory_equal(out, out2, (size_t)(s.nr * s.nc) * sizeof(float));
    for (int64_t r0 = 0; r0 < s.nr; r0 += 3)
        for (int64_t c0 = 0; c0 < s.nc; c0 += 5) {
            int64_t nr = s.nr - r0 < 3 ? s.nr - r0 : 3, nc = s.nc - c0 < 5 ? s.nc - c0 : 5;
            tab->gemm[type](s.k, w + (size_t)r0 * ws, ws, nr, a + (size_t)c0 * as, as, nc,
                            out2 + c0 * s.nr + r0, (size_t)s.nr);
        }
    assert_memory_equal(out, out2, (size_t)(s.nr * s.nc) * sizeof(float));
    if (tab->pack[type]) {
        /* Packed at load: the same bits, whole and in panel-aligned slices
         * against odd column blocks (as the thread split cuts it). */
        int64_t tr = tab->tile_rows, padded = (s.nr + tr - 1) / tr * tr;
        char *p = realm_malloc(ws * (size_t)padded);
        assert_non_null(tab->gemm_packed[type]);
        tab->pack[type](s.k, w, ws, s.nr, p);
        memset(out2, 0xff, (size_t)(s.nr * s.nc) * sizeof(float));
        tab->gemm_packed[type](s.k, p, ws, s.nr, a, as, s.nc, out2, (size_t)s.nr);
        assert_memory_equal(out, out2, (size_t)(s.nr * s.nc) * sizeof(float));
        memset(out2, 0xff, (size_t)(s.nr * s.nc) * sizeof(float));
        for (int64_t r0 = 0; r0 < s.nr; r0 += tr)
            for (int64_t c0 = 0; c0 < s.nc; c0 += 3) {
                int64_t nr = s.nr - r0 < tr ? s.nr - r0 : tr, nc = s.nc - c0 < 3 ? s.nc - c0 : 3;
                tab->gemm_packed[type](s.k, p + (size_t)r0 * ws, ws, nr, a + (size_t)c0 * as, as,
                                       nc, out2 + c0 * s.nr + r0, (size_t)s.nr);
            }
        assert_memory_equal(out, out2, (size_t)(s.nr * s.nc) * sizeof(float));
        realm_free(p);
    }
    realm_free(wf);
    realm_free(af);
    realm_free(wd);
    realm_free(ad);
    realm_free(w);
    realm_free(a);
    realm_free(out);
    realm_free(out2);
}

static void test_gemm_matches_reference(void **state)
{
    (void)state;
    const realm_cpu_kernels *tabs[4];
    int n_tabs = realm__cpu_kernels_all(tabs, 4);
    const shape shapes[] = {{256, 1, 1}, {256, 7, 5}, {512, 4, 2}, {768, 13, 3}, {1280, 17, 9}, {14336, 5, 2}};
    uint32_t seed = 11;
    int checked = 0;
    for (int k = 0; k < n_tabs; k++)
        for (size_t ti = 0; ti < sizeof weight_types / sizeof weight_types[0]; ti++) {
            if (!tabs[k]->gemm[weight_types[ti]]) continue;
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                check_gemm(tabs[k], weight_types[ti], shapes[si], &seed);
            checked++;
        }
    /* On x86 with AVX2 every weight type has a kernel. */
    if (n_tabs > 1) assert_int_equal(checked, (int)(sizeof weight_types / sizeof weight_types[0]));
}

/* Float weights with k not a multiple of the vector width: the tail path;
 * and k past one L1 chunk with 4+ activation rows (the chunked 3 x 4 path:
 * more weight rows than one accumulator block, 2 and 1 leftover rows). */
static void test_gemm_float_tail(void **state)
{
    (void)state;
    const realm_cpu_kernels *tabs[4];
    int n_tabs = realm__cpu_kernels_all(tabs, 4);
    uint32_t seed = 5;
    for (int k = 0; k < n_tabs; k++)
        if (tabs[k]->gemm[REALM_TYPE_F16]) {
            check_gemm(tabs[k], REALM_TYPE_F16, (shape){77, 6, 3}, &seed);
            check_gemm(tabs[k], REALM_TYPE_F32, (shape){13, 5, 1}, &seed);
            check_gemm(tabs[k], REALM_TYPE_BF16, (shape){3, 1, 2}, &seed);
            check_gemm(tabs[k], REALM_TYPE_F16, (shape){8203, 50, 6}, &seed);
            check_gemm(tabs[k], REALM_TYPE_F32, (shape){4100, 7, 4}, &seed);
            check_gemm(tabs[k], REALM_TYPE_BF16, (shape){2056, 4, 5}, &seed);
        }
}

static void test_helpers(void **state)
{
    (void)state;
    const realm_cpu_kernels *tabs[4];
    int n_tabs = realm__cpu_kernels_all(tabs, 4);
    enum { N = 203 };
    float x[N], y[N], g[N], u[N];
    uint32_t seed = 3;
    for (int k = 0; k < n_tabs; k++) {
        for (int i = 0; i < N; i++) {
            x[i] = frand(&seed) * 90.0f; /* covers exp underflow and both tails */
            y[i] = frand(&seed);
            g[i] = x[i];
            u[i] = y[i];
        }
        double dot = 0, mass = 0;
        for (int i = 0; i < N; i++) {
            dot += (double)x[i] * y[i];
            mass += fabs((double)x[i] * y[i]);
        }
        assert_true(fabs(tabs[k]->f32_dot(N, x, y) - dot) <= 1e-6 * mass);
        float e[N];
        memcpy(e, x, sizeof e);
        double sum = 0;
        for (int i = 0; i < N; i++)
            sum += exp((double)(x[i] - 5.0f));
        float s = tabs[k]->exp_sum(N, e, 5.0f);
        assert_true(fabs(s - sum) <= 1e-5 * sum);
        for (int i = 0; i < N; i++) {
            double want = exp((double)(x[i] - 5.0f));
            if (!(fabs(e[i] - want) <= 2e-6 * want + 1e-37))
                fail_msg("%s exp(%g) = %g, want %g", tabs[k]->name, x[i] - 5.0, e[i], want);
        }
        tabs[k]->swiglu(N, g, u);
        for (int i = 0; i < N; i++) {
            double want = x[i] / (1.0 + exp(-(double)x[i])) * y[i];
            if (!(fabs(g[i] - want) <= 2e-6 * fabs(want) + 1e-30))
                fail_msg("%s swiglu(%g, %g) = %g, want %g", tabs[k]->name, x[i], y[i], g[i], want);
        }
        float acc[N] = {0};
        tabs[k]->f32_axpy(N, 0.5f, y, acc);
        for (int i = 0; i < N; i++)
            assert_true(acc[i] == 0.5f * y[i]);
    }
}

/* Attention helpers against plain loops, with hd not a multiple of 8 and
 * runs of positions not a multiple of 8; several queries scored at once
 * against each alone (bit for bit); rows in f16 give the bits of the same
 * rows widened to f32. */
static void test_attention_helpers(void **state)
{
    (void)state;
    const realm_cpu_kernels *tabs[4];
    int n_tabs = realm__cpu_kernels_all(tabs, 4);
    enum { STRIDE = 200, NPOS = 21 };
    static float kv[NPOS * STRIDE], q[STRIDE], w[NPOS], acc[STRIDE], w32[NPOS], acc32[STRIDE];
    static realm_fp16 kv16[NPOS * STRIDE];
    uint32_t seed = 9;
    for (int i = 0; i < NPOS * STRIDE; i++) {
        kv16[i] = realm_fp32_to_fp16(frand(&seed));
        kv[i] = realm_fp16_to_fp32(kv16[i]);
    }
    for (int i = 0; i < STRIDE; i++)
        q[i] = frand(&seed);
    const int64_t hds[] = {64, 128, 72, 13, 100};
    for (int k = 0; k < n_tabs; k++)
        for (int f16 = 0; f16 < 2; f16++)
            for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
                int64_t hd = hds[h];
                const void *src = f16 ? (const void *)kv16 : kv;
                for (int n = 1; n <= NPOS; n += 5) {
                    tabs[k]->attn_scores(n, hd, 1, q, 0, src, STRIDE, f16, 0.125f, w, 0);
                    tabs[k]->attn_scores(n, hd, 1, q, 0, kv, STRIDE, false, 0.125f, w32, 0);
                    assert_memory_equal(w, w32, (size_t)n * sizeof(float));
                    for (int t = 0; t < n; t++) {
                        double want = 0, mass = 0;
                        for (int64_t i = 0; i < hd; i++) {
                            want += (double)q[i] * kv[t * STRIDE + i];
                            mass += fabs((double)q[i] * kv[t * STRIDE + i]);
                        }
                        assert_true(fabs(w[t] - 0.125 * want) <= 1e-6 * mass);
                    }
                    /* 1..5 queries at once (the grouped heads of one KV head):
                     * each query's scores bit-identical to it alone */
                    for (int nq = 1; nq <= 5; nq++) {
                        static float qm[5 * STRIDE], wm[5 * NPOS], w1[NPOS];
                        for (int i = 0; i < nq * STRIDE; i++)
                            qm[i] = frand(&seed);
                        tabs[k]->attn_scores(n, hd, nq, qm, STRIDE, src, STRIDE, f16, 0.125f, wm,
                                             NPOS);
                        for (int hq = 0; hq < nq; hq++) {
                            tabs[k]->attn_scores(n, hd, 1, qm + hq * STRIDE, 0, src, STRIDE, f16,
                                                 0.125f, w1, 0);
                            assert_memory_equal(wm + hq * NPOS, w1, (size_t)n * sizeof(float));
                        }
                    }
                    for (int64_t i = 0; i < hd; i++)
                        acc[i] = acc32[i] = 1.0f;
                    tabs[k]->attn_values(n, hd, 1, w, 0, src, STRIDE, f16, acc, 0);
                    tabs[k]->attn_values(n, hd, 1, w, 0, kv, STRIDE, false, acc32, 0);
                    assert_memory_equal(acc, acc32, (size_t)hd * sizeof(float));
                    for (int64_t i = 0; i < hd; i++) {
                        double want = 1.0, mass = 1.0;
                        for (int t = 0; t < n; t++) {
                            want += (double)w[t] * kv[t * STRIDE + i];
                            mass += fabs((double)w[t] * kv[t * STRIDE + i]);
                        }
                        assert_true(fabs(acc[i] - want) <= 1e-6 * mass);
                    }
                    /* 1..5 queries' values at once, each bit-identical to it alone */
                    for (int nq = 1; nq <= 5; nq++) {
                        static float wm[5 * NPOS], am[5 * STRIDE], a1[5 * STRIDE];
                        for (int i = 0; i < nq * NPOS; i++)
                            wm[i] = frand(&seed);
                        for (int i = 0; i < nq * STRIDE; i++)
                            am[i] = a1[i] = frand(&seed);
                        for (int hq = 0; hq < nq; hq++)
                            tabs[k]->attn_values(n, hd, 1, wm + hq * NPOS, 0, src, STRIDE, f16,
                                                 a1 + hq * STRIDE, 0);
                        tabs[k]->attn_values(n, hd, nq, wm, NPOS, src, STRIDE, f16, am, STRIDE);
                        assert_memory_equal(am, a1, (size_t)nq * STRIDE * sizeof(float));
                    }
                }
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_matches_reference),
        cmocka_unit_test(test_gemm_matches_reference),
        cmocka_unit_test(test_gemm_float_tail),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_attention_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
