/*
 * base/rowmath.h — the index of a row's largest value: the greedy pick of the
 * engine and the sampler, and the reference for the backends' argmax op.
 *
 * Contract: ties go to the lowest index; NaN and -inf never win; -1 when
 * nothing can (every value NaN or -inf, or n <= 0). Reads x only.
 */
#ifndef REALM_BASE_ARGMAX_H
#define REALM_BASE_ARGMAX_H

#include <stdint.h>

int32_t realm_argmax_f32(const float *x, int32_t n);

/* x[i] = e^((x[i] - sub) * mul) in place, for arguments <= 0 (-inf included):
 * within 1 ulp of the correctly rounded value where the argument is >= -87,
 * 0 below (e^-87 ~ 2^-125: a weight nothing draws). */
void realm_exp_scaled_f32(float *x, int32_t n, float sub, float mul);

#endif
