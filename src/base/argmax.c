/* base/argmax.c — see argmax.h. */
#include "base/argmax.h"

#include <math.h>

int32_t realm_argmax_f32(const float *x, int32_t n)
{
    /* The maximum in eight independent lanes (no branch carried from one
     * element to the next, so it vectorizes; NaN fails every comparison and
     * drops out), then the first index holding it. */
    enum { L = 8 };
    float m[L];
    for (int k = 0; k < L; k++)
        m[k] = -INFINITY;
    int32_t i = 0;
    for (; i + L <= n; i += L)
        for (int k = 0; k < L; k++)
            m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++)
        m[0] = x[i] > m[0] ? x[i] : m[0];
    float best = m[0];
    for (int k = 1; k < L; k++)
        best = m[k] > best ? m[k] : best;
    if (!(best > -INFINITY)) return -1;
    i = 0;
    while (x[i] != best)
        i++;
    return i;
}
