/* Roofline kernels for `bitquant bench`: the fastest plain memory traffic of each shape, measured in the
 * same run as the kernels so that ratios hold on a noisy, shared machine. Built for the host's widest
 * vectors, with regular stores (what Halide 21 emits), never memcpy. Large n runs on a small pool of
 * threads that sleep between calls, so they never spin on a core the kernels timed next would need. */
#ifndef BITQUANT_ROOFLINE_H
#define BITQUANT_ROOFLINE_H

#include <stddef.h>
#include <stdint.h>

void roofline_copy(const float *x, float *y, size_t n, int threads);                /* read 1, write 1 */
void roofline_add(const float *x, const float *g, float *y, size_t n, int threads); /* read 2, write 1 */
float roofline_read(const float *x, size_t n, int threads);                         /* read 1 */
/* read 4 bytes, write 1 bit: the signs of n floats (n a multiple of 32) packed as bitquant's BIT output, with
 * AVX-512 compare-to-mask (else AVX2 movemask) intrinsics */
void roofline_pack(const float *x, uint32_t *words, size_t n, int threads);
void roofline_narrow(const float *x, int8_t *y, size_t n, int threads); /* read 4 bytes, write 1: the int8 signs */

#endif
