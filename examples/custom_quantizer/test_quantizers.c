/* The example's quantizers against a scalar C reference, on the CPU variant BITQUANT_CPU forces (ctest runs it
 * once per variant): registration and listing; forward and backward, gradient cancellation off and on, bit for
 * bit on edge values and every length up to 130 and beyond the kernels' parallel threshold, and in place; and
 * parameters outside their range rejected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_quantizers.h"

static int failures;

#define CHECK(cond, ...)                                                                                             \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            failures++;                                                                                              \
            printf("FAIL line %d: ", __LINE__);                                                                      \
            printf(__VA_ARGS__);                                                                                     \
            printf("\n");                                                                                            \
        }                                                                                                            \
    } while (0)

/* The reference: quantizer 0 is ternary (p = threshold), 1 is sign_blend (p = factor). */
static float forward_ref(int which, float x, float p) {
    if (which == 0) return x > p ? 1.0f : x < -p ? -1.0f : 0.0f;
    float sign = x < 0.0f ? -1.0f : 1.0f;
    return sign * p + x * (1.0f - p);
}

static float backward_ref(int which, float x, float g, float p, float threshold) {
    float dx = which == 0 ? g : g * p + g * (1.0f - p);
    return threshold > 0.0f && !(fabsf(x) <= threshold) ? 0.0f : dx;
}

/* Bit for bit, any NaN matching any NaN. */
static int same(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static uint32_t state = 12345;
static float next_input(void) {
    static const float edges[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 0.5f, -0.5f, 0.49999997f, 1e-45f, -3e38f,
                                  1.0f, -1.0f, 0.25f, 2.0f};
    state ^= state << 13, state ^= state >> 17, state ^= state << 5;
    if (state % 4 == 0) return edges[(state >> 8) % (sizeof edges / sizeof edges[0])];
    return ((float)(state >> 8) / 16777216.0f) * 4.0f - 2.0f;
}

static void check(const char *name, int which, float p, float threshold, size_t n) {
    bq_params params;
    bq_params_init(&params);
    params.cancel_threshold = threshold;
    const bq_named_param named[] = {{which == 0 ? "threshold" : "factor", p}};
    bq_quantizer *q = NULL;
    bq_status s = bq_create_named(name, &params, named, 1, &q);
    CHECK(s == BQ_OK, "bq_create_named(%s, %g): %s", name, p, bq_last_error());
    if (s != BQ_OK) return;
    float *x = malloc(n * sizeof *x + 4), *g = malloc(n * sizeof *g + 4);
    float *y = malloc(n * sizeof *y + 4), *dx = malloc(n * sizeof *dx + 4);
    for (size_t i = 0; i < n; i++) x[i] = next_input(), g[i] = next_input();
    CHECK(bq_forward(q, x, y, n) == BQ_OK, "%s forward: %s", name, bq_last_error());
    CHECK(bq_backward(q, x, g, dx, n) == BQ_OK, "%s backward: %s", name, bq_last_error());
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want_y = forward_ref(which, x[i], p), want_dx = backward_ref(which, x[i], g[i], p, threshold);
        if ((!same(y[i], want_y) || !same(dx[i], want_dx)) && bad++ < 3) {
            CHECK(0, "%s(%g) t=%g n=%zu: x = %a, g = %a gives y = %a, dx = %a; the reference %a, %a", name, p, threshold,
                  n, x[i], g[i], y[i], dx[i], want_y, want_dx);
        }
    }
    CHECK(bad == 0, "%s(%g) t=%g n=%zu: %zu mismatches", name, p, threshold, n, bad);
    CHECK(bq_forward(q, x, x, n) == BQ_OK && (n == 0 || memcmp(x, y, n * sizeof *x) == 0), "%s in place", name);
    free(x), free(g), free(y), free(dx);
    bq_destroy(q);
}

int main(void) {
    const char *forced = getenv("BITQUANT_CPU"), *active = NULL;
    if (bq_cpu_variant_active(&active) != BQ_OK) {
        for (size_t v = 0; forced && v < bq_cpu_variant_count(); v++) {
            if (strcmp(bq_cpu_variant_name(v), forced) == 0 && !bq_cpu_variant_supported(v)) {
                printf("SKIP: this CPU cannot run %s\n", forced);
                return 77;
            }
        }
        printf("FAIL: %s\n", bq_last_error());
        return 1;
    }
    size_t builtins = bq_quantizer_count();
    bq_status s = example_quantizers_register();
    if (s != BQ_OK) {
        printf("FAIL: example_quantizers_register: %s\n", bq_last_error());
        return 1;
    }
    bq_quantizer_info info;
    CHECK(bq_quantizer_count() == builtins + 2 && bq_quantizer_info_at(builtins, &info) == BQ_OK &&
              strcmp(info.name, "ternary") == 0 && strcmp(info.params, "threshold") == 0,
          "ternary is not listed after the %zu built-ins", builtins);
    const float thresholds[] = {0.5f, 0.0f, 1.0f, 3e38f}, factors[] = {0.0f, 0.1f, 0.5f, 1.0f, 0.3333333f};
    for (size_t n = 0; n <= 130; n++) {
        for (size_t k = 0; k < 4; k++) check("ternary", 0, thresholds[k], k == 2 ? 1.0f : 0.0f, n);
        for (size_t k = 0; k < 5; k++) check("sign_blend", 1, factors[k], k % 2 ? 1.5f : 0.0f, n);
    }
    check("ternary", 0, 0.5f, 1.0f, 1u << 20);
    check("sign_blend", 1, 0.25f, 0.0f, (1u << 20) + 7);
    bq_quantizer *q = NULL;
    const bq_named_param above[] = {{"factor", 1.5}}, negative[] = {{"threshold", -1.0}};
    CHECK(bq_create_named("sign_blend", NULL, above, 1, &q) == BQ_E_INVALID, "factor 1.5 accepted");
    CHECK(bq_create_named("ternary", NULL, negative, 1, &q) == BQ_E_INVALID, "threshold -1 accepted");
    printf("%s: %d failures on %s\n", failures ? "FAIL" : "ok", failures, active);
    return failures != 0;
}
