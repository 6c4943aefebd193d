/* bq_params: bitorch's defaults, validation, and the scalar inputs each kernel family takes
 * (the parameter mappings of generators/kernels.def; spec/SEMANTICS.md sections 0 and 2). */
#include "internal.h"

#include <math.h>

void bq_params_init(bq_params *p) {
    if (p == NULL) return;
    p->swish_beta = 5.0f;
    p->dorefa_bits = 1;
    p->progressive_scale = 0.0;
    p->progressive_alpha = 4.0;
    p->progressive_beta = 10.0;
    p->training = 1;
    p->cancel_threshold = 0.0f;
}

static bq_status validate(const bq_params *p) {
    if (p->dorefa_bits < 1 || p->dorefa_bits > 24) {
        return bq_fail(BQ_E_INVALID, "dorefa_bits = %d is outside 1..24", p->dorefa_bits);
    }
    if (!isfinite(p->swish_beta)) return bq_fail(BQ_E_INVALID, "swish_beta = %g is not finite", p->swish_beta);
    if (isnan(p->cancel_threshold)) return bq_fail(BQ_E_INVALID, "cancel_threshold is NaN");
    if (!isfinite(p->progressive_alpha) || !(p->progressive_alpha > 0.0)) {
        return bq_fail(BQ_E_INVALID, "progressive_alpha = %g must be finite and > 0", p->progressive_alpha);
    }
    if (!isfinite(p->progressive_beta)) {
        return bq_fail(BQ_E_INVALID, "progressive_beta = %g is not finite", p->progressive_beta);
    }
    if (!isfinite(p->progressive_scale)) {
        return bq_fail(BQ_E_INVALID, "progressive_scale = %g is not finite", p->progressive_scale);
    }
    return BQ_OK;
}

/* ProgressiveSign's divisor: T = 1 - alpha^(-beta*scale) and d = max(1 - T, 1e-7), in double as bitorch
 * computes them in Python; torch then divides float32 x by (float)d. A beta of 0 falls back to bitorch's
 * default 10 (`beta or 10`). */
static float progressive_divisor(const bq_params *p) {
    double beta = p->progressive_beta != 0.0 ? p->progressive_beta : 10.0;
    double temperature = 1.0 - pow(p->progressive_alpha, -beta * p->progressive_scale);
    double d = fmax(1.0 - temperature, 1e-7);
    return (float)d;
}

bq_status bq_scalars_from_params(const bq_params *p, bq_mapping mapping, bq_scalars *out) {
    bq_status status = validate(p);
    if (status != BQ_OK) return status;
    bq_scalars s = {0.0f, 0.0f, 0.0f, p->cancel_threshold > 0.0f ? p->cancel_threshold : 0.0f};
    switch (mapping) {
    case BQ_MAP_NONE:
        break;
    case BQ_MAP_BETA:
        /* SwishSign(beta=0) means the default 5.0 in bitorch (`beta or config.beta`). */
        s.backward_p0 = p->swish_beta != 0.0f ? p->swish_beta : 5.0f;
        break;
    case BQ_MAP_LEVELS:
    case BQ_MAP_LEVELS_MAX:
        s.forward_p0 = (float)((1L << p->dorefa_bits) - 1);
        break;
    case BQ_MAP_PROGRESSIVE:
        s.forward_p0 = progressive_divisor(p);
        s.forward_p1 = p->training ? 1.0f : 0.0f;
        break;
    }
    *out = s;
    return BQ_OK;
}
