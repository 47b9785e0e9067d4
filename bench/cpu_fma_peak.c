/*
 * bench/cpu_fma_peak.c — the FMA ceiling of one core: twelve independent
 * chains of 256-bit fused multiply-adds (enough to cover the FMA latency on
 * two pipes), best of 5, GFLOP/s. The compute roofline of float-weight
 * prefill: every F16/BF16/F32 weight is converted to f32 and costs one FMA
 * lane per activation row, whatever the activations are stored as.
 *
 *   gcc -O2 -mavx2 -mfma bench/cpu_fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define F(a) a = _mm256_fmadd_ps(a, x, y)

int main(void)
{
    const __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.999999f);
    __m256 a0 = x, a1 = y, a2 = x, a3 = y, a4 = x, a5 = y, a6 = x, a7 = y, a8 = x, a9 = y,
           a10 = x, a11 = y;
    const long n = 50000000L;
    double best = 0.0;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            F(a0), F(a1), F(a2), F(a3), F(a4), F(a5), F(a6), F(a7), F(a8), F(a9), F(a10), F(a11);
            /* keeps the chains in registers and the loop from being folded */
            __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),
                             "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
        }
        double g = (double)n * 12 * 16 / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float v[8];
    _mm256_storeu_ps(v, s);
    printf("one core: %.1f GFLOP/s of 256-bit FMA (checksum %g)\n", best, (double)v[0]);
    return 0;
}
