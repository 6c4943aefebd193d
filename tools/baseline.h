/* The plain-C baselines that `bitquant bench` times each kernel against: per quantization and direction, the
 * float32 loop a competent engineer writes without bitquant (restrict pointers, branch-free selects that
 * vectorize, nearbyintf for round-half-even, SwishSign's backward with one expf), compiled by the build with
 * -O3 and -march=native where the compiler has it, and exact: tests/test_baseline.c checks each against the
 * scalar reference, bit for bit (SwishSign's backward under the same tolerance as the kernels). */
#ifndef BITQUANT_BASELINE_H
#define BITQUANT_BASELINE_H

#include <bitquant.h>
#include <stddef.h>

/* out = forward(x) or backward(x, g), with p's parameters and cancellation (Pact at its defaults, alpha 10 and
 * 4 bits, as the bench runs it). g is unused by forwards; out may not alias x or g. */
typedef void (*bq_baseline_fn)(const bq_params *p, const float *x, const float *g, float *out, size_t n);

/* The baseline of a table quantizer's forward or backward; NULL for a name it does not know (a registered
 * quantizer). */
bq_baseline_fn bq_baseline_find(const char *quantizer, int backward);

#endif
