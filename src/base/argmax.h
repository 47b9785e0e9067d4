/*
 * base/argmax.h — the index of a row's largest value: the greedy pick of the
 * engine and the sampler, and the reference for the backends' argmax op.
 *
 * Contract: ties go to the lowest index; NaN and -inf never win; -1 when
 * nothing can (every value NaN or -inf, or n <= 0). Reads x only.
 */
#ifndef REALM_BASE_ARGMAX_H
#define REALM_BASE_ARGMAX_H

#include <stdint.h>

int32_t realm_argmax_f32(const float *x, int32_t n);

#endif
