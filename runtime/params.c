/* bq_params: bitorch's defaults, validation, and the scalar inputs each kernel family takes
 * (the parameter mappings of generators/kernels.def; spec/SEMANTICS.md sections 0 and 2). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* Checks one value of a parameter against its kind and range. */
static bq_status check_value(const char *fn, const char *quantizer, const bq_param_info *info, double v) {
    switch (info->kind) {
    case BQ_PARAM_REAL:
        if (!isfinite((float)v) || v < info->min_value || v > info->max_value) {
            return bq_fail(BQ_E_INVALID, "%s: %s's %s = %g is outside [%g, %g]", fn, quantizer, info->name, v,
                           info->min_value, info->max_value);
        }
        return BQ_OK;
    case BQ_PARAM_POSITIVE:
        if (!isfinite((float)v) || !((float)v > 0.0f)) {
            return bq_fail(BQ_E_INVALID, "%s: %s's %s = %g must be a finite float32 > 0", fn, quantizer, info->name, v);
        }
        return BQ_OK;
    case BQ_PARAM_INTEGER:
        if (!(v >= info->min_value && v <= info->max_value) || v != floor(v)) {
            return bq_fail(BQ_E_INVALID, "%s: %s's %s = %g is not an integer in %g..%g", fn, quantizer, info->name, v,
                           info->min_value, info->max_value);
        }
        return BQ_OK;
    }
    return bq_fail(BQ_E_INVALID, "%s: %s.%s has no valid kind", fn, quantizer, info->name);
}

bq_status bq_resolve_named(const char *fn, const char *quantizer, const bq_param_info *params, size_t param_count,
                           const bq_named_param *given, size_t count, float named[BQ_MAX_NAMED_PARAMS]) {
    if (count != 0 && given == NULL) return bq_fail(BQ_E_INVALID, "%s: named is NULL with count %zu", fn, count);
    for (size_t g = 0; g < count; g++) {
        if (given[g].name == NULL) return bq_fail(BQ_E_INVALID, "%s: named[%zu].name is NULL", fn, g);
        size_t k = 0;
        while (k < param_count && strcmp(params[k].name, given[g].name) != 0) k++;
        if (k == param_count) {
            char known[256] = "";
            size_t used = 0;
            for (size_t j = 0; j < param_count && used < sizeof known; j++) {
                int w = snprintf(known + used, sizeof known - used, "%s%s", j ? ", " : "", params[j].name);
                if (w < 0) break;
                used += (size_t)w;
            }
            return bq_fail(BQ_E_INVALID, "%s: %s has no parameter \"%.64s\" (it has: %s)", fn, quantizer, given[g].name,
                           param_count ? known : "none");
        }
        for (size_t h = 0; h < g; h++) {
            if (strcmp(given[h].name, given[g].name) == 0) {
                return bq_fail(BQ_E_INVALID, "%s: %s's %s is given twice", fn, quantizer, given[g].name);
            }
        }
    }
    for (size_t k = 0; k < param_count; k++) {
        double v = params[k].default_value;
        for (size_t g = 0; g < count; g++) {
            if (strcmp(params[k].name, given[g].name) == 0) v = given[g].value;
        }
        bq_status status = check_value(fn, quantizer, &params[k], v);
        if (status != BQ_OK) return status;
        named[k] = (float)v;
    }
    return BQ_OK;
}

bq_status bq_scalars_from_params(const bq_params *p, bq_mapping mapping, const float *named, bq_scalars *out) {
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
    case BQ_MAP_PACT: {
        /* named: alpha, bits (kernels.def). bitorch's (2**bits - 1) / alpha is Tensor.__rdiv__:
         * alpha.reciprocal() * L, each step rounded to float32. */
        float alpha = named[0];
        float reciprocal = 1.0f / alpha;
        float levels = (float)((1L << (int)named[1]) - 1);
        s.forward_p0 = reciprocal * levels;
        s.forward_p1 = alpha;
        s.backward_p0 = alpha;
        break;
    }
    }
    *out = s;
    return BQ_OK;
}
