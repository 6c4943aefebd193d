/* Halide's autoscheduled variants of a few kernel families (cmake/BitquantKernels.cmake builds them), for
 * comparison with the hand schedules: `bitquant bench` times them and tests/test_autoscheduled.c checks
 * them. Build tree only; they run through the library's one executor (runtime/exec.c). */
#ifndef BITQUANT_AUTOSCHEDULED_H
#define BITQUANT_AUTOSCHEDULED_H

#include "internal.h"

typedef struct {
    const char *variant, *family, *scheduler;
    bq_kernel_fn fn; /* float32 in and out, of the family's signature (MAP or GRAD) */
} bq_autoscheduled_kernel;

/* The autoscheduled kernels of a CPU variant and family, one per autoscheduler; NULL past the last. */
const bq_autoscheduled_kernel *bq_autoscheduled_find(const char *variant, const char *family, size_t index);

/* Quantizer q's forward (backward) with kernel k in place of its own, on host arrays: the same scalar
 * inputs, the same chunking. k's family must be q's forward (backward) family. */
bq_status bq_autoscheduled_forward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x, float *y,
                                   size_t n);
bq_status bq_autoscheduled_backward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x,
                                    const float *g, float *dx, size_t n);

#endif
