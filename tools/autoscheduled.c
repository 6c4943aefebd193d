#include "autoscheduled.h"

#include <string.h>

#include "bq_autoscheduled.inc" /* bq_autoscheduled[]: every autoscheduled kernel, then an end marker */

const bq_autoscheduled_kernel *bq_autoscheduled_find(const char *variant, const char *family, size_t index) {
    for (const bq_autoscheduled_kernel *k = bq_autoscheduled; k->variant != NULL; k++) {
        if (strcmp(k->variant, variant) == 0 && strcmp(k->family, family) == 0 && index-- == 0) return k;
    }
    return NULL;
}

bq_status bq_autoscheduled_forward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x, float *y,
                                   size_t n) {
    return bq_run_map(k->fn.map, x, q->scalars.forward_p0, q->scalars.forward_p1, y, n);
}

bq_status bq_autoscheduled_backward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x,
                                    const float *g, float *dx, size_t n) {
    return bq_run_grad(k->fn.grad, x, g, q->scalars.backward_p0, q->scalars.threshold, dx, n);
}
