/* WeightDoReFa's forward (spec section 2): M = max |tanh x| over the whole tensor, then
 * y = 2 (round_half_even((tanh(x) / 2M + 1/2) L) / L) - 1.
 *
 * The max comes first (an ABSMAX pass, run by the caller, on the CPU or a GPU; M = tanh(max |x|) as tanh is
 * monotonic), so y == x works. Then one of three kernels, with the same results: the weightdorefa kernel
 * evaluates a correctly rounded tanh per element; at 1 to 4 bits on large inputs, the count kernel instead
 * counts how many of the L level thresholds each x reaches. The level is a non-decreasing function of x
 * (every step, the correctly rounded tanh included, is monotonic), so the thresholds, found here by
 * bisection over the floats, reproduce it exactly. At 5 to 10 bits on large host inputs, the estimate
 * kernel computes every output whose level a float tanh settles, and marks the rest (about 4e-6 L of
 * them), which bq_weightdorefa_output computes here for runtime/run.c, piece by piece while the piece is
 * in cache.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Each threshold costs a bisection of 32 tanh evaluations (about 1 us); the tanh kernel costs about 2 ns
 * per element on one core. Below this many elements per threshold, the tanh kernel is cheaper. */
#define COUNT_MIN_N_PER_LEVEL 512

/* The spec's level of x: round_half_even((tanh(x) / 2M + 1/2) L), each step in float32, tanh correctly
 * rounded (libm's double tanh, then rounded once), as the kernels compute it. */
static float level_of(float x, float m, float levels) {
    float t = (float)tanh((double)x);
    float u = t / (2.0f * m) + 0.5f;
    return rintf(u * levels);
}

/* Floats in increasing order as int32 keys: -inf < ... < -0 < +0 < ... < +inf. */
static int32_t key_of(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits >= 0 ? bits : bits ^ INT32_MAX;
}

static float float_of(int32_t key) {
    int32_t bits = key >= 0 ? key : key ^ INT32_MAX;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* thresholds[j] = the smallest float x whose level is >= j + 1. level(-inf) <= 0 < j + 1 and
 * level(+inf) >= L (M <= 1), so each bisection has its answer in (-inf, +inf]. */
static void find_thresholds(float m, int levels, float thresholds[BQ_COUNT_THRESHOLDS]) {
    for (int j = 0; j < BQ_COUNT_THRESHOLDS; j++) {
        if (j >= levels) {
            thresholds[j] = INFINITY; /* never read: the kernel counts only the first L */
            continue;
        }
        int64_t below = key_of(-INFINITY), at = key_of(INFINITY); /* 64-bit: the span exceeds INT32_MAX */
        while (at - below > 1) {
            int64_t mid = below + (at - below) / 2;
            if (level_of(float_of((int32_t)mid), m, (float)levels) >= (float)(j + 1))
                at = mid;
            else
                below = mid;
        }
        thresholds[j] = float_of((int32_t)at);
    }
}

float bq_weightdorefa_m(float absmax) { return (float)tanh((double)absmax); }

int bq_weightdorefa_count_plan(float absmax, float levels, size_t n, float thresholds[BQ_COUNT_THRESHOLDS]) {
    float m = bq_weightdorefa_m(absmax);
    /* NaN or an all-zero input makes every output NaN: the tanh kernel computes exactly that. */
    if (levels > BQ_COUNT_THRESHOLDS || n < COUNT_MIN_N_PER_LEVEL * (size_t)levels || !(m > 0.0f)) return 0;
    find_thresholds(m, (int)levels, thresholds);
    return 1;
}

float bq_weightdorefa_output(float x, float m, float levels) { return 2.0f * (level_of(x, m, levels) / levels) - 1.0f; }
