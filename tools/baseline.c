/* The plain-C baselines (baseline.h): one loop per quantization and direction, as its formula in
 * shared/spec/SEMANTICS.md reads, written to vectorize. Compiled with -O3, -march=native where available, and
 * -ffp-contract=off: a fused multiply-add would change bits the spec fixes. */
#include "baseline.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "reference.h"

/* QActivation's gradient cancellation after a backward: +0 where |x| > t or x is NaN, iff t > 0. */
static inline float cancel(float x, float dx, float t) { return t > 0.0f && !(fabsf(x) <= t) ? 0.0f : dx; }

static void identity_forward(const bq_params *p, const float *restrict x, const float *restrict g,
                             float *restrict y, size_t n) {
    (void)p, (void)g;
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}

static void sign_forward(const bq_params *p, const float *restrict x, const float *restrict g, float *restrict y,
                         size_t n) {
    (void)p, (void)g;
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? -1.0f : 1.0f;
}

static void heaviside_forward(const bq_params *p, const float *restrict x, const float *restrict g,
                              float *restrict y, size_t n) {
    (void)p, (void)g;
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? 1.0f : -1.0f;
}

static void inputdorefa_forward(const bq_params *p, const float *restrict x, const float *restrict g,
                                float *restrict y, size_t n) {
    (void)g;
    const float levels = (float)((1L << (p->dorefa_bits ? p->dorefa_bits : 1)) - 1);
    for (size_t i = 0; i < n; i++) {
        float c = x[i] < 0.0f ? 0.0f : x[i] > 1.0f ? 1.0f : x[i];
        y[i] = nearbyintf(c * levels) / levels;
    }
}

/* The global max |tanh x| is tanh(max |x|) (tanh is monotonic): an integer max over |x|'s bits first, NaN
 * winning as torch.max's does (its bits are above infinity's), then one double tanh per element, the
 * correctly rounded float32 tanh the spec's numbers take. */
static void weightdorefa_forward(const bq_params *p, const float *restrict x, const float *restrict g,
                                 float *restrict y, size_t n) {
    (void)g;
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bits &= 0x7fffffffu;
        top = bits > top ? bits : top;
    }
    float max_abs;
    memcpy(&max_abs, &top, sizeof max_abs);
    const float two_m = 2.0f * (float)tanh((double)max_abs);
    const float levels = (float)((1L << (p->dorefa_bits ? p->dorefa_bits : 1)) - 1);
    for (size_t i = 0; i < n; i++) {
        float u = (float)tanh((double)x[i]) / two_m + 0.5f;
        y[i] = 2.0f * (nearbyintf(u * levels) / levels) - 1.0f;
    }
}

static void progressive_forward(const bq_params *p, const float *restrict x, const float *restrict g,
                                float *restrict y, size_t n) {
    if (!p->training) {
        sign_forward(p, x, g, y, n);
        return;
    }
    const float divisor = ref_progressive_divisor(p);
    for (size_t i = 0; i < n; i++) {
        float q = x[i] / divisor;
        y[i] = q < -1.0f ? -1.0f : q > 1.0f ? 1.0f : q;
    }
}

/* Pact at alpha 10 and 4 bits; s = (1 / alpha) * L in two roundings, as bitorch's int / Tensor. */
static void pact_forward(const bq_params *p, const float *restrict x, const float *restrict g, float *restrict y,
                         size_t n) {
    (void)p, (void)g;
    const float alpha = REF_PACT_ALPHA, scale = (1.0f / alpha) * (float)((1 << REF_PACT_BITS) - 1);
    for (size_t i = 0; i < n; i++) {
        float c = x[i] < 0.0f ? 0.0f : x[i] > alpha ? alpha : x[i];
        y[i] = nearbyintf(c * scale) / scale;
    }
}

static void ste_backward(const bq_params *p, const float *restrict x, const float *restrict g, float *restrict dx,
                         size_t n) {
    const float t = p->cancel_threshold;
    for (size_t i = 0; i < n; i++) dx[i] = cancel(x[i], g[i], t);
}

static void approxsign_backward(const bq_params *p, const float *restrict x, const float *restrict g,
                                float *restrict dx, size_t n) {
    const float t = p->cancel_threshold;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        float d = ((2.0f - 2.0f * a) * (a <= 1.0f ? 1.0f : 0.0f)) * g[i];
        dx[i] = cancel(x[i], d, t);
    }
}

static void steheaviside_backward(const bq_params *p, const float *restrict x, const float *restrict g,
                                  float *restrict dx, size_t n) {
    const float t = p->cancel_threshold;
    for (size_t i = 0; i < n; i++) dx[i] = cancel(x[i], g[i] * (fabsf(x[i]) <= 1.0f ? 1.0f : 0.0f), t);
}

/* With a = |beta x|, e = exp(-a) and s = 1 / (1 + e): tanh(a / 2) = 2 s - 1 and 1 / (1 + cosh a) =
 * 2 s (e s), one expf per element; where torch's cosh overflows (a > 89.41599) its num / inf. */
static void swishsign_backward(const bq_params *p, const float *restrict x, const float *restrict g,
                               float *restrict dx, size_t n) {
    const float beta = ref_swish_beta(p), t = p->cancel_threshold;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(beta * x[i]);
        float e = expf(-a);
        float s = 1.0f / (1.0f + e);
        float num = beta * (2.0f - a * (2.0f * s - 1.0f));
        float core = a > 89.41599f ? num / INFINITY : num * (2.0f * s * (e * s));
        dx[i] = cancel(x[i], core * g[i], t);
    }
}

static void pact_backward(const bq_params *p, const float *restrict x, const float *restrict g,
                          float *restrict dx, size_t n) {
    const float alpha = REF_PACT_ALPHA, t = p->cancel_threshold;
    for (size_t i = 0; i < n; i++) {
        float inside = x[i] < 0.0f || x[i] > alpha ? 0.0f : 1.0f;
        dx[i] = cancel(x[i], g[i] * inside, t);
    }
}

static const struct {
    const char *name;
    bq_baseline_fn forward, backward;
} baselines[] = {
    {"identity", identity_forward, ste_backward},
    {"sign", sign_forward, ste_backward},
    {"approxsign", sign_forward, approxsign_backward},
    {"steheaviside", heaviside_forward, steheaviside_backward},
    {"swishsign", sign_forward, swishsign_backward},
    {"inputdorefa", inputdorefa_forward, ste_backward},
    {"weightdorefa", weightdorefa_forward, ste_backward},
    {"progressive_sign", progressive_forward, ste_backward},
    {"pact", pact_forward, pact_backward},
};

bq_baseline_fn bq_baseline_find(const char *quantizer, int backward) {
    for (size_t i = 0; i < sizeof baselines / sizeof baselines[0]; i++) {
        if (strcmp(baselines[i].name, quantizer) == 0) return backward ? baselines[i].backward : baselines[i].forward;
    }
    return NULL;
}
