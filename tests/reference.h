/* The scalar reference: every quantization of generators/kernels.def, forward and backward, written
 * literally from spec/SEMANTICS.md (float32, one rounding per step, the spec's operation order). Every
 * kernel is tested against it, and the tools use it as their plain-C baseline.
 *
 * tanh and cosh are correctly rounded to float32 (computed in double), the closest a C library gets to
 * torch's own; everything else is IEEE float32 arithmetic. It must be compiled with -ffp-contract=off and
 * without fast-math (tests/CMakeLists.txt does that): a contracted a*b+c changes bits the spec fixes. */
#ifndef BITQUANT_TESTS_REFERENCE_H
#define BITQUANT_TESTS_REFERENCE_H

#include <stddef.h>

#include "bitquant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = quantize(x) for the registry name `name`; p NULL means bitorch's defaults (bq_params_init's).
 * y may equal x. BQ_E_UNKNOWN for a name not in the kernel table, BQ_E_INVALID for a NULL pointer with
 * n > 0 or a parameter that bitorch cannot evaluate (dorefa_bits outside 0..24, progressive_alpha < 0 or
 * NaN). Like bitorch, a 0 swish_beta, dorefa_bits, progressive_alpha or progressive_beta means its default. */
bq_status ref_forward(const char *name, const bq_params *p, const float *x, float *y, size_t n);

/* dx = d quantize / dx applied to the upstream gradient g, with QActivation's gradient cancellation
 * (spec section 3) iff p->cancel_threshold > 0. dx may equal x or g. */
bq_status ref_backward(const char *name, const bq_params *p, const float *x, const float *g, float *dx, size_t n);

/* Pact (spec section 4) at alpha and bits; ref_forward and ref_backward take "pact" at bitorch's defaults
 * (alpha 10, bits 4), which bq_params cannot change. BQ_E_INVALID for alpha not finite and > 0, bits outside
 * 1..24, NULL arrays with n > 0. */
#define REF_PACT_ALPHA 10.0f
#define REF_PACT_BITS 4
bq_status ref_pact_forward(const float *x, float *y, size_t n, float alpha, int bits);
/* dx = g * [!(x < 0 || x > alpha)]; *alpha_sum = sum of g * [x >= alpha] in double, in index order, and
 * *abs_sum = sum of |g| over the same elements (either may be NULL). */
bq_status ref_pact_backward(const float *x, const float *g, float *dx, double *alpha_sum, double *abs_sum, size_t n,
                            float alpha);
/* Whether a float32 grad_alpha is within bitquant.h's bound of the double sum (NaN against NaN; infinities
 * equal to the rounded sum's). */
int ref_pact_alpha_close(float ours, double sum, double abs_sum, size_t n);

/* ProgressiveSign's divisor (float)max(1 - T, 1e-7), T = 1 - alpha^(-beta*scale), after the fallbacks. */
float ref_progressive_divisor(const bq_params *p);

/* WeightDoReFa's M = max_i |tanh(x_i)| (tanh correctly rounded to float32); NaN if any is NaN; 0 if n == 0. */
float ref_weightdorefa_max(const float *x, size_t n);

/* The swish beta that bitorch uses for p (0 means 5.0). */
float ref_swish_beta(const bq_params *p);

/* Bitwise equal (so +0 and -0 differ), or both NaN (any payload, any sign). */
int ref_same(float a, float b);

/* SwishSign's backward tolerance (spec section 7): both NaN, or neither NaN and
 * |ours - ref| <= 1e-6 * |beta| * |g| + 2^-149 (one subnormal ulp: the final product's rounding);
 * infinities must be equal. */
int ref_swish_close(float ours, float ref, float beta, float g);

/* ref_swish_close, and also NaN against ±inf for an infinite g where cosh(beta*x) is within about 10 ulps of
 * overflowing (|beta*x| ~ 89.41599): there (num/den)*g is 0*inf or tiny*inf depending on the last bit of
 * cosh, and torch's own cosh overflows a float earlier than the correctly rounded one. */
int ref_swish_backward_close(float x, float g, float beta, float ours, float ref);

#ifdef __cplusplus
}
#endif

#endif
