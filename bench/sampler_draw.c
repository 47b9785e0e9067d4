/*
 * bench/sampler_draw.c — the time of one realm_sampler_sample draw over a
 * Llama-3-sized vocabulary (128256 logits: sums of four uniforms times
 * `scale`, about normal), median of five runs of 50 draws, and a checksum of
 * the picked ids (equal checksums: the same picks, so a faster sampler that
 * keeps them is the same sampler).
 *
 *   cmake --build build --target realm_core &&
 *   gcc -O2 -std=gnu17 -Isrc bench/sampler_draw.c build/librealm_core.a -lm -lpthread \
 *       $(pkg-config --libs libpcre2-8 jansson sqlite3 libwebsockets) -o /tmp/sampler_draw &&
 *   /tmp/sampler_draw [scale 1] [top_p 1] [temperature 0.8]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/sampler.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    enum { N = 128256, DRAWS = 50, RUNS = 5 };
    const float scale = argc > 1 ? strtof(argv[1], NULL) : 1.0f;
    realm_sampler_params p = realm_sampler_params_default();
    p.top_p = argc > 2 ? strtof(argv[2], NULL) : 1.0f;
    p.temperature = argc > 3 ? strtof(argv[3], NULL) : 0.8f;
    float *l = malloc(N * sizeof *l);
    if (!l) return 1;
    unsigned s = 1;
    for (int i = 0; i < N; i++) {
        float a = 0;
        for (int k = 0; k < 4; k++) {
            s = s * 1664525u + 1013904223u;
            a += (float)(s >> 8) / 16777216.0f - 0.5f;
        }
        l[i] = a * scale * 3.46f;
    }
    double t[RUNS];
    long sum = 0;
    for (int r = 0; r < RUNS; r++) {
        realm_sampler_t *sm;
        realm_error err = {0};
        p.seed = 7;
        if (realm_sampler_init(N, &p, &sm, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t0 = now_s();
        for (int d = 0; d < DRAWS; d++) {
            int32_t tok;
            if (realm_sampler_sample(sm, l, NULL, &tok, &err)) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            if (r == 0) sum += tok;
        }
        t[r] = (now_s() - t0) / DRAWS;
        realm_sampler_free(sm);
    }
    qsort(t, RUNS, sizeof t[0], cmp);
    printf("scale %.1f top_p %.2f temperature %.2f: %.3f ms a draw (median of %d), checksum %ld\n",
           scale, p.top_p, p.temperature, t[RUNS / 2] * 1e3, RUNS, sum);
    free(l);
    return 0;
}
