/* Roofline kernels for `bitquant bench`: the fastest plain memory traffic of each shape, measured in the
 * same run as the kernels so that ratios hold on a noisy, shared machine. Built for the host's widest
 * vectors, with regular stores (what Halide 21 emits), never memcpy. Large n runs on a small pool of
 * threads that sleep between calls, so they never spin on a core the kernels timed next would need. */
#ifndef BITQUANT_ROOFLINE_H
#define BITQUANT_ROOFLINE_H

#include <stddef.h>

void roofline_copy(const float *x, float *y, size_t n, int threads);                /* read 1, write 1 */
void roofline_add(const float *x, const float *g, float *y, size_t n, int threads); /* read 2, write 1 */
float roofline_read(const float *x, size_t n, int threads);                         /* read 1 */

#endif
