#include "autoscheduled.h"

#include <string.h>

#include "bq_autoscheduled.inc" /* bq_autoscheduled[]: every autoscheduled kernel, then an end marker */

const bq_autoscheduled_kernel *bq_autoscheduled_find(const char *variant, const char *family, size_t index) {
    for (const bq_autoscheduled_kernel *k = bq_autoscheduled; k->variant != NULL; k++) {
        if (strcmp(k->variant, variant) == 0 && strcmp(k->family, family) == 0 && index-- == 0) return k;
    }
    return NULL;
}

static bq_place cpu(void) { return (bq_place){NULL, NULL, NULL, NULL, bq_max_chunk()}; }

bq_status bq_autoscheduled_forward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x, float *y,
                                   size_t n) {
    const bq_place place = cpu();
    const bq_value values[BQ_MAX_ARGS] = {{.host = x}, {.f = q->scalars.forward_p0}, {.f = q->scalars.forward_p1},
                                          {.host = y}};
    return bq_execute_kernel(&place, k->fn, BQ_SIGNATURE_MAP, BQ_F32, BQ_F32, values, 1, n);
}

bq_status bq_autoscheduled_backward(const bq_autoscheduled_kernel *k, const bq_quantizer *q, const float *x,
                                    const float *g, float *dx, size_t n) {
    const bq_place place = cpu();
    const bq_value values[BQ_MAX_ARGS] = {{.host = x}, {.host = g}, {.f = q->scalars.backward_p0},
                                          {.f = q->scalars.threshold}, {.host = dx}};
    return bq_execute_kernel(&place, k->fn, BQ_SIGNATURE_GRAD, BQ_F32, BQ_F32, values, 1, n);
}
