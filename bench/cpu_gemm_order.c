/*
 * bench/cpu_gemm_order.c — one float matmul (F16 weights, f32 activations)
 * split into the CPU backend's prefill tasks (40 weight rows x 64 activation
 * rows), run on one thread in both task orders that cpu_matmul.c's plan can
 * pick: row slices fastest (0) or a slice's column tiles one after the other
 * (1). Best of 3, GFLOP/s. Shows where a large matrix's weights come back
 * from DRAM for every column tile.
 *
 *   gcc -O2 -Isrc bench/cpu_gemm_order.c build/librealm_core.a -lm -lpthread -o /tmp/gemm_order
 *   /tmp/gemm_order K N ROWS    e.g. 2048 8192 512 (Llama-3.2-1B gate at pp512)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/cpu/cpu_kernels.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s K N ROWS\n", argv[0]);
        return 2;
    }
    const int k = atoi(argv[1]), N = atoi(argv[2]), n = atoi(argv[3]), RT = 40, CT = 64;
    if (k <= 0 || k % 8 || N <= 0 || n <= 0) return 2;
    const realm_cpu_kernels *K = realm__cpu_kernels();
    const size_t ws = (size_t)k * 2, as = (size_t)k * 4;
    unsigned short *w = malloc(ws * N);
    float *a = malloc(as * n), *out = malloc((size_t)N * n * 4);
    if (!w || !a || !out) return 1;
    for (size_t i = 0; i < (size_t)k * N; i++)
        w[i] = (unsigned short)(0x3800 + (rand() & 0xff)); /* F16 in [0.5, 0.62) */
    for (size_t i = 0; i < (size_t)k * n; i++)
        a[i] = (float)(rand() % 100) * 0.01f;
    const int nrt = (N + RT - 1) / RT, nct = (n + CT - 1) / CT;
    for (int order = 0; order < 2; order++) {
        double best = 1e30;
        for (int it = 0; it < 3; it++) {
            double t = now_s();
            for (int task = 0; task < nrt * nct; task++) {
                const int r = order ? task / nct : task % nrt, c = order ? task % nct : task / nrt;
                const int r0 = r * RT, c0 = c * CT;
                const int nr = N - r0 < RT ? N - r0 : RT, nc = n - c0 < CT ? n - c0 : CT;
                K->gemm[REALM_TYPE_F16](k, (const char *)w + (size_t)r0 * ws, ws, nr,
                                        (const char *)a + (size_t)c0 * as, as, nc,
                                        out + (size_t)c0 * N + r0, (size_t)N);
            }
            t = now_s() - t;
            if (t < best) best = t;
        }
        printf("order %d (%s): k %d N %d rows %d: %.1f ms, %.1f GFLOP/s\n", order,
               order ? "column tiles of a slice together" : "row slices fastest", k, N, n,
               best * 1e3, 2.0 * k * N * n / best / 1e9);
    }
    free(w);
    free(a);
    free(out);
    return 0;
}
