/* The scalar reference, literally from spec/SEMANTICS.md. Each float32 step is its own assignment, so it
 * is rounded to float even where FLT_EVAL_METHOD != 0; with -ffp-contract=off nothing is fused. */
#include "reference.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    REF_IDENTITY,
    REF_SIGN,
    REF_APPROXSIGN,
    REF_STEHEAVISIDE,
    REF_SWISHSIGN,
    REF_INPUTDOREFA,
    REF_WEIGHTDOREFA,
    REF_PROGRESSIVE_SIGN,
    REF_PACT,
    REF_UNKNOWN
} ref_kind;

/* Only names in the kernel table are known, so the reference and the library agree on the registry. */
static const char *const table_names[] = {
#define BQ_QUANTIZER(name, forward, backward, mapping, fields, save, need) #name,
#include "kernels.def"
};

static ref_kind kind_of(const char *name) {
    static const struct {
        const char *name;
        ref_kind kind;
    } kinds[] = {
        {"identity", REF_IDENTITY},         {"sign", REF_SIGN},
        {"approxsign", REF_APPROXSIGN},     {"steheaviside", REF_STEHEAVISIDE},
        {"swishsign", REF_SWISHSIGN},       {"inputdorefa", REF_INPUTDOREFA},
        {"weightdorefa", REF_WEIGHTDOREFA}, {"progressive_sign", REF_PROGRESSIVE_SIGN},
        {"pact", REF_PACT},
    };
    int in_table = 0;
    for (size_t i = 0; i < sizeof table_names / sizeof table_names[0]; i++) {
        if (strcmp(name, table_names[i]) == 0) in_table = 1;
    }
    if (!in_table) return REF_UNKNOWN;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(name, kinds[i].name) == 0) return kinds[i].kind;
    }
    return REF_UNKNOWN;
}

/* bq_params after bitorch's `or` fallbacks (spec section 0), as the kernels consume them. */
typedef struct {
    float swish_beta;
    float levels;  /* L = 2^bits - 1 */
    float divisor; /* ProgressiveSign's (float)d */
    int training;
    float threshold; /* cancellation threshold; only read if cancel */
    int cancel;
} ref_resolved;

static void default_params(bq_params *p) {
    p->swish_beta = 5.0f;
    p->dorefa_bits = 1;
    p->progressive_scale = 0.0;
    p->progressive_alpha = 4.0;
    p->progressive_beta = 10.0;
    p->training = 1;
    p->cancel_threshold = 0.0f;
}

float ref_swish_beta(const bq_params *p) {
    if (p == NULL || p->swish_beta == 0.0f) return 5.0f; /* `beta or config.beta` */
    return p->swish_beta;
}

float ref_progressive_divisor(const bq_params *p) {
    bq_params d;
    if (p == NULL) {
        default_params(&d);
        p = &d;
    }
    double alpha = p->progressive_alpha != 0.0 ? p->progressive_alpha : 4.0; /* `alpha or 4` */
    double beta = p->progressive_beta != 0.0 ? p->progressive_beta : 10.0;   /* `beta or 10` */
    double temperature = 1.0 - pow(alpha, -beta * p->progressive_scale);
    double divisor = 1.0 - temperature;
    /* Python's max(a, b) keeps a unless b > a, so a NaN divisor stays NaN (fmax would drop it). */
    if (1e-7 > divisor) divisor = 1e-7;
    return (float)divisor;
}

static bq_status resolve(const bq_params *p, ref_resolved *r) {
    bq_params d;
    if (p == NULL) {
        default_params(&d);
        p = &d;
    }
    int bits = p->dorefa_bits != 0 ? p->dorefa_bits : 1; /* `bits or config.dorefa_bits` */
    if (bits < 1 || bits > 24) return BQ_E_INVALID;      /* 2^bits - 1 must be exact in float32 */
    if (isnan(p->progressive_alpha) || p->progressive_alpha < 0.0) return BQ_E_INVALID; /* Python raises */
    r->swish_beta = ref_swish_beta(p);
    r->levels = (float)((1L << bits) - 1);
    r->divisor = ref_progressive_divisor(p);
    r->training = p->training != 0;
    r->threshold = p->cancel_threshold;
    r->cancel = p->cancel_threshold > 0.0f; /* QActivation: `if t > 0` (NaN and negative are off) */
    return BQ_OK;
}

/* tanh and cosh of a float32, correctly rounded to float32 (up to a double rounding once in ~2^28 cases).
 * torch's float32 tanh and cosh are within an ulp or so of that; glibc 2.36's tanhf and coshf are off by up
 * to 2 ulps on a quarter of all floats, which changes WeightDoReFa from about 11 bits up (at 24 bits, 986 of
 * 40,000 random inputs differ from torch with tanhf, 4 with this). It also makes the reference the same on
 * every libc. */
static float tanh32(float x) { return (float)tanh((double)x); }
static float cosh32(float x) { return (float)cosh((double)x); }

/* sign_pm1: -1 if x < 0, else +1 (so +0, -0 and NaN give +1; spec section 1). */
static float sign_pm1(float x) { return x < 0.0f ? -1.0f : 1.0f; }

/* torch.clamp(x, lo, hi): NaN stays NaN, -0 stays -0 inside the range. */
static float clamp_keep(float x, float lo, float hi) {
    if (x < lo) return lo;
    if (x > hi) return hi;
    return x;
}

/* InputDoReFa: round_half_even(clamp(x, 0, 1) * L) / L; nearbyintf rounds ties to even in the default mode. */
static float inputdorefa(float x, float levels) {
    float c = clamp_keep(x, 0.0f, 1.0f);
    float s = c * levels;
    float r = nearbyintf(s);
    float y = r / levels;
    return y;
}

/* WeightDoReFa's elementwise stage: u = t / (2.0*M) + 0.5; y = 2.0 * (round(u*L) / L) - 1.0. */
static float weightdorefa(float x, float max_abs, float levels) {
    float t = tanh32(x);
    float two_m = 2.0f * max_abs;
    float q = t / two_m;
    float u = q + 0.5f;
    float s = u * levels;
    float r = nearbyintf(s);
    float k = r / levels;
    float w = 2.0f * k;
    float y = w - 1.0f;
    return y;
}

/* ProgressiveSign train: hardtanh(x / (float)d) = clamp(x / d, -1, 1). */
static float progressive_train(float x, float divisor) {
    float q = x / divisor;
    return clamp_keep(q, -1.0f, 1.0f);
}

/* ApproxSign: a=|x|; slope = 2 - 2a; w = slope * [a <= 1]; dx = w * g (a multiply mask). */
static float approxsign_grad(float x, float g) {
    float a = fabsf(x);
    float two_a = 2.0f * a;
    float slope = 2.0f - two_a;
    float mask = a <= 1.0f ? 1.0f : 0.0f;
    float w = slope * mask;
    float dx = w * g;
    return dx;
}

/* SteHeaviside: dx = g * [|x| <= 1] (a multiply mask). */
static float steheaviside_grad(float x, float g) {
    float mask = fabsf(x) <= 1.0f ? 1.0f : 0.0f;
    float dx = g * mask;
    return dx;
}

/* SwishSign: bx = b*x; num = b * (2 - bx * tanh(bx / 2)); den = 1 + cosh(bx); dx = (num / den) * g. */
static float swishsign_grad(float x, float g, float b) {
    float bx = b * x;
    float half = bx / 2.0f;
    float th = tanh32(half);
    float p = bx * th;
    float m = 2.0f - p;
    float num = b * m;
    float ch = cosh32(bx);
    float den = 1.0f + ch;
    float ratio = num / den;
    float dx = ratio * g;
    return dx;
}

/* Pact (spec section 4): s = alpha.reciprocal() * L, two float32 roundings (Tensor.__rdiv__); then
 * round_half_even(clamp(x, 0, alpha) * s) / s. */
static float pact_scale(float alpha, int bits) {
    float reciprocal = 1.0f / alpha;
    float levels = (float)((1L << bits) - 1);
    float scale = reciprocal * levels;
    return scale;
}

static float pact(float x, float alpha, float scale) {
    float c = clamp_keep(x, 0.0f, alpha);
    float t = c * scale;
    float r = nearbyintf(t);
    float y = r / scale;
    return y;
}

/* dx = g * [!(x < 0 || x > alpha)]: a multiply-mask, NaN inside. */
static float pact_grad(float x, float g, float alpha) {
    float mask = (x < 0.0f || x > alpha) ? 0.0f : 1.0f;
    float dx = g * mask;
    return dx;
}

bq_status ref_pact_forward(const float *x, float *y, size_t n, float alpha, int bits) {
    if (!(alpha > 0.0f) || isinf(alpha) || bits < 1 || bits > 24) return BQ_E_INVALID;
    if (n > 0 && (x == NULL || y == NULL)) return BQ_E_INVALID;
    float scale = pact_scale(alpha, bits);
    for (size_t i = 0; i < n; i++) y[i] = pact(x[i], alpha, scale);
    return BQ_OK;
}

bq_status ref_pact_backward(const float *x, const float *g, float *dx, double *alpha_sum, double *abs_sum, size_t n,
                            float alpha) {
    if (!(alpha > 0.0f) || isinf(alpha)) return BQ_E_INVALID;
    if (n > 0 && (x == NULL || g == NULL || dx == NULL)) return BQ_E_INVALID;
    double sum = 0.0, magnitude = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] >= alpha) {
            sum += (double)g[i];
            magnitude += fabs((double)g[i]);
        }
        dx[i] = pact_grad(x[i], g[i], alpha);
    }
    if (alpha_sum != NULL) *alpha_sum = sum;
    if (abs_sum != NULL) *abs_sum = magnitude;
    return BQ_OK;
}

int ref_pact_alpha_close(float ours, double sum, double abs_sum, size_t n) {
    if (isnan(sum) || isnan(ours)) return isnan(sum) && isnan(ours);
    float rounded = (float)sum;
    if (isinf(rounded) || isinf(ours)) return rounded == ours;
    /* Both the library's float64 sum and this one are within (n - 1) 2^-53 abs_sum of the exact sum; then
     * each rounds once to float32 (half an ulp, and one ulp between two roundings of nearby values). */
    double ulp = nextafterf(fabsf(rounded), INFINITY) - fabsf(rounded);
    double bound = ulp + 2.0 * (double)(n ? n - 1 : 0) * 0x1p-53 * abs_sum;
    return fabs((double)ours - sum) <= bound;
}

float ref_weightdorefa_max(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(tanh32(x[i]));
        if (isnan(a)) return a; /* torch.max propagates NaN */
        if (a > m) m = a;
    }
    return m;
}

/* The checks ref_forward and ref_backward share: the name, the parameters, and n. */
static bq_status prepare(const char *name, const bq_params *p, ref_kind *kind, ref_resolved *r) {
    if (name == NULL) return BQ_E_INVALID;
    *kind = kind_of(name);
    if (*kind == REF_UNKNOWN) return BQ_E_UNKNOWN;
    return resolve(p, r);
}

bq_status ref_forward(const char *name, const bq_params *p, const float *x, float *y, size_t n) {
    ref_kind kind;
    ref_resolved r;
    bq_status status = prepare(name, p, &kind, &r);
    if (status != BQ_OK || n == 0) return status;
    if (x == NULL || y == NULL) return BQ_E_INVALID;

    /* The global max is taken before any output is written, so y == x works. */
    float max_abs = kind == REF_WEIGHTDOREFA ? ref_weightdorefa_max(x, n) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float out;
        switch (kind) {
        case REF_IDENTITY:
            out = v;
            break;
        case REF_SIGN:
        case REF_APPROXSIGN:
        case REF_SWISHSIGN:
            out = sign_pm1(v);
            break;
        case REF_STEHEAVISIDE:
            out = v > 0.0f ? 1.0f : -1.0f;
            break;
        case REF_INPUTDOREFA:
            out = inputdorefa(v, r.levels);
            break;
        case REF_WEIGHTDOREFA:
            out = weightdorefa(v, max_abs, r.levels);
            break;
        case REF_PROGRESSIVE_SIGN:
            out = r.training ? progressive_train(v, r.divisor) : sign_pm1(v);
            break;
        case REF_PACT:
            out = pact(v, REF_PACT_ALPHA, pact_scale(REF_PACT_ALPHA, REF_PACT_BITS));
            break;
        default:
            return BQ_E_UNKNOWN;
        }
        y[i] = out;
    }
    return BQ_OK;
}

bq_status ref_backward(const char *name, const bq_params *p, const float *x, const float *g, float *dx, size_t n) {
    ref_kind kind;
    ref_resolved r;
    bq_status status = prepare(name, p, &kind, &r);
    if (status != BQ_OK || n == 0) return status;
    if (x == NULL || g == NULL || dx == NULL) return BQ_E_INVALID;

    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float gi = g[i];
        float out;
        switch (kind) {
        case REF_APPROXSIGN:
            out = approxsign_grad(v, gi);
            break;
        case REF_STEHEAVISIDE:
            out = steheaviside_grad(v, gi);
            break;
        case REF_SWISHSIGN:
            out = swishsign_grad(v, gi, r.swish_beta);
            break;
        case REF_PACT:
            out = pact_grad(v, gi, REF_PACT_ALPHA);
            break;
        default:
            out = gi;
            break; /* STE: identity, sign, DoReFa, ProgressiveSign (train and eval) */
        }
        /* GradientCancellation: where(|x| <= t, act_bwd, 0.0), a select, so +0 outside whatever g is. */
        if (r.cancel && !(fabsf(v) <= r.threshold)) out = 0.0f;
        dx[i] = out;
    }
    return BQ_OK;
}

int ref_same(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    return ua == ub;
}

int ref_swish_close(float ours, float ref, float beta, float g) {
    if (isnan(ours) || isnan(ref)) return isnan(ours) && isnan(ref);
    if (ours == ref) return 1; /* also equal infinities, and zeros where g is not finite */
    if (isinf(ours) || isinf(ref)) return 0;
    /* Plus one subnormal ulp: where (num/den)*g is subnormal, its rounding alone can differ by 2^-149. */
    double tolerance = 1e-6 * fabs((double)beta) * fabs((double)g) + 0x1p-149;
    return fabs((double)ours - (double)ref) <= tolerance;
}

int ref_swish_backward_close(float x, float g, float beta, float ours, float ref) {
    if (ref_swish_close(ours, ref, beta, g)) return 1;
    const double cosh_overflow = 89.4159862326283; /* acosh(FLT_MAX) */
    float bx = beta * x;
    int nan_vs_inf = (isnan(ours) && isinf(ref)) || (isinf(ours) && isnan(ref));
    return isinf(g) && nan_vs_inf && fabs(fabs((double)bx) - cosh_overflow) <= 1e-4;
}
