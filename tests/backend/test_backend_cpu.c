/* Tests for backend/cpu: each op against a direct computation of its
 * formula (matmul against dequantized weights, NORMAL vs NEOX RoPE). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "base/alloc.h"
#include "quant/fp16.h"

static realm_backend *make(int rows, int ctx, int ne0)
{
    realm_backend *be = NULL;
    realm_error err = {0};
    realm_backend_cpu_params p = {.n_threads = 2};
    assert_int_equal(realm_backend_cpu_create(&p, &be, &err), REALM_OK);
    realm_backend_limits lim = {.max_rows = rows, .max_ctx = ctx, .max_ne0 = ne0};
    assert_int_equal(be->ops->reserve(be, &lim, &err), REALM_OK);
    return be;
}

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* matmul = activations (after their own Q8 rounding) · dequantized weights.
 * Checked against f64 dots with the unrounded activations: the bound is the
 * activation rounding (~1 % of the row's |x|·|w| mass), per weight type. */
static void test_matmul_types(void **state)
{
    (void)state;
    enum { NE0 = 512, NE1 = 40, N = 3 };
    realm_backend *be = make(N, 1, NE0);
    const realm_type types[] = {REALM_TYPE_F32,  REALM_TYPE_F16,  REALM_TYPE_Q8_0,
                                REALM_TYPE_Q4_1, REALM_TYPE_Q4_K, REALM_TYPE_Q6_K};
    uint32_t seed = 1;
    float *wf = realm_malloc(NE0 * NE1 * sizeof(float)),
          *wd = realm_malloc(NE0 * NE1 * sizeof(float));
    float x[N * NE0], out[N * NE1], bias[NE1];
    for (int i = 0; i < NE0 * NE1; i++)
        wf[i] = frand(&seed);
    for (int i = 0; i < N * NE0; i++)
        x[i] = frand(&seed);
    for (int i = 0; i < NE1; i++)
        bias[i] = frand(&seed);
    void *wq = realm_malloc(NE0 * NE1 * sizeof(float));
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const realm_type_traits *t = realm_type_traits_get(types[ti]);
        assert_true(be->ops->supports(be, types[ti]));
        t->from_float(wf, wq, NE0 * NE1);
        t->to_float(wq, wd, NE0 * NE1);
        realm_weight w = {.type = types[ti], .ne0 = NE0, .ne1 = NE1, .data = wq};
        realm_weight b = {.type = REALM_TYPE_F32, .ne0 = NE1, .ne1 = 1, .data = bias};
        be->ops->matmul(be, &w, &b, x, N, out);
        bool exact = t->vec_dot_type == REALM_TYPE_F32;
        for (int r = 0; r < N; r++)
            for (int o = 0; o < NE1; o++) {
                double ref = bias[o], mass = 0;
                for (int i = 0; i < NE0; i++) {
                    ref += (double)x[r * NE0 + i] * wd[o * NE0 + i];
                    mass += fabs((double)x[r * NE0 + i] * wd[o * NE0 + i]);
                }
                double tol = exact ? 1e-5 * mass : 1e-2 * mass;
                assert_true(fabs(out[r * NE1 + o] - ref) <= tol);
            }
    }
    realm_free(wq);
    realm_free(wf);
    realm_free(wd);
    realm_backend_free(be);
}

/* NORMAL on a head whose dims are interleaved (2i, 2i+1) equals NEOX on the
 * same values laid out as halves (i, i + d/2): the GGUF llama permutation. */
static void test_rope_modes(void **state)
{
    (void)state;
    enum { HD = 8, H = 2 };
    realm_backend *be = make(1, 1, HD);
    float inv[HD / 2], a[H * HD], b[H * HD];
    for (int i = 0; i < HD / 2; i++)
        inv[i] = powf(10000.0f, -2.0f * i / HD);
    uint32_t seed = 5;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < HD / 2; i++) {
            float u = frand(&seed), v = frand(&seed);
            a[h * HD + 2 * i] = u, a[h * HD + 2 * i + 1] = v;
            b[h * HD + i] = u, b[h * HD + i + HD / 2] = v;
        }
    int32_t pos = 7;
    be->ops->rope(be, a, 1, H, HD, HD, REALM_ROPE_NORMAL, inv, &pos);
    be->ops->rope(be, b, 1, H, HD, HD, REALM_ROPE_NEOX, inv, &pos);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < HD / 2; i++) {
            assert_float_equal(a[h * HD + 2 * i], b[h * HD + i], 0);
            assert_float_equal(a[h * HD + 2 * i + 1], b[h * HD + i + HD / 2], 0);
        }
    /* position 0 is the identity; rotation preserves each pair's norm */
    float c[HD] = {1, 2, 3, 4, 5, 6, 7, 8}, d[HD];
    memcpy(d, c, sizeof c);
    pos = 0;
    be->ops->rope(be, d, 1, 1, HD, HD, REALM_ROPE_NORMAL, inv, &pos);
    assert_memory_equal(c, d, sizeof c);
    realm_backend_free(be);
}

static void test_rmsnorm_swiglu(void **state)
{
    (void)state;
    realm_backend *be = make(1, 1, 4);
    float x[4] = {1, -2, 3, -4}, g[4] = {1, 1, 2, 0.5f}, out[4];
    realm_weight w = {.type = REALM_TYPE_F32, .ne0 = 4, .ne1 = 1, .data = g};
    be->ops->rmsnorm(be, x, &w, 1, 0.0f, out);
    float rms = sqrtf((1 + 4 + 9 + 16) / 4.0f);
    for (int i = 0; i < 4; i++)
        assert_float_equal(out[i], x[i] / rms * g[i], 1e-6);
    float gate[2] = {0, 2}, up[2] = {3, 0.5f};
    be->ops->swiglu(be, gate, up, 2);
    assert_float_equal(gate[0], 0, 0);
    assert_float_equal(gate[1], 2 / (1 + expf(-2)) * 0.5f, 1e-6);
    realm_backend_free(be);
}

/* Attention over a GQA pool (6 query heads on 2 KV heads) with block sizes
 * that do and do not divide the softmax chunk: each row against an f64
 * softmax, and bit-identical whether it comes in one big batch mixed with
 * another sequence (tasks of several rows x a KV head's query group) or
 * alone (one task per head). The K/V values are f16-representable, and an
 * f16 pool of them gives the f32 pool's bits. */
static void test_attention_batch(void **state)
{
    (void)state;
    enum { NH = 6, NKV = 2, LEN0 = 80, LEN1 = 40, NB = 40, NROWS = LEN0 + LEN1 };
    const int32_t hds[] = {64, 13}, bss[] = {16, 5};
    realm_backend *be = make(NROWS, 128, 64);
    uint32_t seed = 21;
    for (int cfg = 0; cfg < 2; cfg++) {
        int32_t hd = hds[cfg], bs = bss[cfg], kv_dim = NKV * hd, q_dim = NH * hd;
        float *k = realm_malloc((size_t)NB * bs * kv_dim * sizeof(float));
        float *v = realm_malloc((size_t)NB * bs * kv_dim * sizeof(float));
        float *q = realm_malloc((size_t)NROWS * q_dim * sizeof(float));
        float *out = realm_malloc((size_t)NROWS * q_dim * sizeof(float));
        float *one = realm_malloc((size_t)q_dim * sizeof(float));
        float *out16 = realm_malloc((size_t)NROWS * q_dim * sizeof(float));
        realm_fp16 *k16 = realm_malloc((size_t)NB * bs * kv_dim * sizeof(realm_fp16));
        realm_fp16 *v16 = realm_malloc((size_t)NB * bs * kv_dim * sizeof(realm_fp16));
        double *sc = realm_malloc(LEN0 * sizeof(double));
        for (int i = 0; i < NB * bs * kv_dim; i++) {
            k16[i] = realm_fp32_to_fp16(frand(&seed) * 3.0f);
            v16[i] = realm_fp32_to_fp16(frand(&seed));
            k[i] = realm_fp16_to_fp32(k16[i]);
            v[i] = realm_fp16_to_fp32(v16[i]);
        }
        for (int i = 0; i < NROWS * q_dim; i++)
            q[i] = frand(&seed);
        realm_kv_pool kv = {.n_layer = 1,
                            .n_blocks = NB,
                            .block_size = bs,
                            .kv_dim = kv_dim,
                            .type = REALM_TYPE_F32,
                            .k = k,
                            .v = v};
        realm_kv_pool kv16 = kv;
        kv16.type = REALM_TYPE_F16;
        kv16.k = k16;
        kv16.v = v16;
        int32_t bt0[NB], bt1[NB]; /* the two sequences' blocks, interleaved backwards */
        for (int i = 0; i < NB / 2; i++) {
            bt0[i] = NB - 1 - 2 * i;
            bt1[i] = NB - 2 - 2 * i;
        }
        realm_batch_seq seqs[2] = {{bt0, NB / 2}, {bt1, NB / 2}};
        int32_t pos[NROWS], seq[NROWS];
        for (int r = 0; r < NROWS; r++) /* seq 1's rows between seq 0's */
            seq[r] = r % 3 == 1 && r / 3 < LEN1;
        int32_t next[2] = {0, 0}; /* positions in order within each sequence */
        for (int r = 0; r < NROWS; r++)
            pos[r] = next[seq[r]]++;
        assert_int_equal(next[0], LEN0);
        assert_int_equal(next[1], LEN1);
        realm_attn_params ap = {
            .n_head = NH, .n_head_kv = NKV, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd)};
        realm_batch b = {.n_rows = NROWS, .pos = pos, .seq = seq, .n_seqs = 2, .seqs = seqs};
        be->ops->attention(be, &kv, 0, &b, &ap, q, out);
        be->ops->attention(be, &kv16, 0, &b, &ap, q, out16);
        assert_memory_equal(out16, out, (size_t)NROWS * q_dim * sizeof(float));
        for (int r = 0; r < NROWS; r++) {
            realm_batch b1 = {
                .n_rows = 1, .pos = &pos[r], .seq = &seq[r], .n_seqs = 2, .seqs = seqs};
            be->ops->attention(be, &kv, 0, &b1, &ap, q + r * q_dim, one);
            assert_memory_equal(one, out + r * q_dim, (size_t)q_dim * sizeof(float));
            be->ops->attention(be, &kv16, 0, &b1, &ap, q + r * q_dim, one);
            assert_memory_equal(one, out + r * q_dim, (size_t)q_dim * sizeof(float));
            const int32_t *bt = seqs[seq[r]].block_table;
            for (int h = 0; h < NH; h++) {
                int kvh = h / (NH / NKV);
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t <= pos[r]; t++) {
                    const float *kt = k + ((size_t)bt[t / bs] * bs + t % bs) * kv_dim + kvh * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += (double)q[r * q_dim + h * hd + i] * kt[i];
                    sc[t] = d * ap.scale;
                    if (sc[t] > mx) mx = sc[t];
                }
                for (int t = 0; t <= pos[r]; t++)
                    sum += sc[t] = exp(sc[t] - mx);
                for (int i = 0; i < hd; i++) {
                    double want = 0;
                    for (int t = 0; t <= pos[r]; t++)
                        want += sc[t] / sum *
                                v[((size_t)bt[t / bs] * bs + t % bs) * kv_dim + kvh * hd + i];
                    float got = out[r * q_dim + h * hd + i];
                    if (!(fabs(got - want) <= 1e-5))
                        fail_msg("hd %d row %d head %d [%d]: got %.9g want %.9g", hd, r, h, i, got,
                                 want);
                }
            }
        }
        realm_free(k);
        realm_free(v);
        realm_free(q);
        realm_free(out);
        realm_free(one);
        realm_free(out16);
        realm_free(k16);
        realm_free(v16);
        realm_free(sc);
    }
    realm_backend_free(be);
}

/* kv_store into f32 and f16 pools: each row lands in its sequence's slot
 * for its position, f32 as given, f16 rounded as quant/fp16.h (nearest even,
 * past 65504 to inf, subnormals kept); other slots are left alone. */
static void test_kv_store_types(void **state)
{
    (void)state;
    enum { KVD = 12, BS = 4, NB = 6, ROWS = 3 };
    realm_backend *be = make(ROWS, 64, 64);
    const float special[KVD] = {0.0f,  -0.0f,  1.0f / 3.0f,   65504.0f, 65520.0f, -1e9f,
                                6e-8f, -3e-6f, 1.0009765625f, 2049.0f,  0.1f,     -7.5f};
    float k[ROWS * KVD], v[ROWS * KVD];
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < KVD; i++) {
            k[r * KVD + i] = special[i] * (float)(r + 1);
            v[r * KVD + i] = -special[(i + 5) % KVD] / (float)(r + 1);
        }
    int32_t bt0[3] = {5, 1, 3}, bt1[3] = {0, 2, 4};
    realm_batch_seq seqs[2] = {{bt0, 3}, {bt1, 3}};
    int32_t pos[ROWS] = {9, 0, 4}, seq[ROWS] = {0, 1, 1};
    realm_batch b = {.n_rows = ROWS, .pos = pos, .seq = seq, .n_seqs = 2, .seqs = seqs};
    for (int f16 = 0; f16 < 2; f16++) {
        size_t es = f16 ? 2 : 4, n = (size_t)2 * NB * BS * KVD; /* two layers */
        unsigned char *pk = realm_malloc(n * es), *pv = realm_malloc(n * es);
        memset(pk, 0x5a, n * es);
        memset(pv, 0x5a, n * es);
        realm_kv_pool kv = {.n_layer = 2,
                            .n_blocks = NB,
                            .block_size = BS,
                            .kv_dim = KVD,
                            .type = f16 ? REALM_TYPE_F16 : REALM_TYPE_F32,
                            .k = pk,
                            .v = pv};
        assert_int_equal(realm_kv_pool_bytes(2, NB, BS, KVD, kv.type), n * es);
        be->ops->kv_store(be, &kv, 1, &b, k, v);
        size_t written = 0;
        for (size_t slot = 0; slot < (size_t)2 * NB * BS; slot++) {
            int row = -1;
            for (int r = 0; r < ROWS; r++) {
                const int32_t *bt = seqs[seq[r]].block_table;
                if (slot == (size_t)(NB + bt[pos[r] / BS]) * BS + (size_t)(pos[r] % BS)) row = r;
            }
            for (int i = 0; i < KVD; i++)
                for (int half = 0; half < 2; half++) {
                    const unsigned char *got = (half ? pv : pk) + (slot * KVD + (size_t)i) * es;
                    if (row < 0) {
                        for (size_t byte = 0; byte < es; byte++)
                            assert_int_equal(got[byte], 0x5a);
                        continue;
                    }
                    float x = (half ? v : k)[row * KVD + i];
                    if (f16) {
                        realm_fp16 want = realm_fp32_to_fp16(x), h;
                        memcpy(&h, got, 2);
                        assert_int_equal(h, want);
                    } else {
                        assert_memory_equal(got, &x, 4);
                    }
                    written++;
                }
        }
        assert_int_equal(written, (size_t)ROWS * KVD * 2);
        realm_free(pk);
        realm_free(pv);
    }
    /* the rounding the contract names, on the values above */
    assert_int_equal(realm_fp32_to_fp16(65520.0f), 0x7c00); /* past the largest: inf */
    assert_int_equal(realm_fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(realm_fp32_to_fp16(1.0009765625f), 0x3c01);
    assert_int_equal(realm_fp32_to_fp16(2049.0f), 0x6800); /* a tie to even: 2048 */
    assert_int_equal(realm_fp32_to_fp16(6e-8f), 0x0001);   /* the smallest subnormal */
    realm_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_types),   cmocka_unit_test(test_rope_modes),
        cmocka_unit_test(test_rmsnorm_swiglu), cmocka_unit_test(test_attention_batch),
        cmocka_unit_test(test_kv_store_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
