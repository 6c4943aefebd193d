/* Pact (spec section 4) through bq_pact_forward, bq_pact_backward and the table's "pact" quantizer with named
 * parameters, against the scalar reference, on the CPU variant BITQUANT_CPU selects:
 *   - forward and grad_x bit for bit (NaN, -0 and every tail length included), at alphas and bit widths from
 *     1 to 24, and in place;
 *   - grad_alpha within bitquant.h's bound of a float64 sum, across the 2^18-element slices, and bit for bit
 *     the same at 1 and 2 threads (the order is fixed);
 *   - bq_create_named("pact") equal to bq_pact_forward and bq_pact_backward; its named parameters listed;
 *   - every invalid argument rejected with BQ_E_INVALID and the output untouched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

static const size_t LENGTHS[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 1023, 1025, 4097, 65537};
static const float ALPHAS[] = {10.0f, 1.0f, 3.0f, 0.7f, 1e-3f, 6.5e4f, 1e-38f};
static const int BITS[] = {1, 2, 3, 4, 8, 16, 24};

/* Edge values, values around alpha and 0, and random ones over several scales. */
static void make_inputs(float *x, float *g, size_t n, float alpha, uint64_t seed) {
    const float specials[] = {0.0f,    -0.0f,     NAN,    INFINITY, -INFINITY, 1e-45f, -1e-45f,
                              3e38f,   -3e38f,    alpha,  nextafterf(alpha, 0.0f), nextafterf(alpha, INFINITY),
                              alpha / 2, -alpha, 1.0f, -1.0f};
    const size_t count = sizeof specials / sizeof specials[0];
    test_rng r = test_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(&r, 4);
        x[i] = pick == 0 ? specials[test_rng_below(&r, (uint32_t)count)]
               : pick == 1 ? test_rng_wide(&r)
                           : test_rng_uniform(&r, -0.5f * alpha, 1.5f * alpha);
        g[i] = test_rng_below(&r, 64) == 0 ? specials[test_rng_below(&r, (uint32_t)count)]
                                           : test_rng_uniform(&r, -2.0f, 2.0f);
    }
}

static size_t first_mismatch(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!ref_same(a[i], b[i])) return i;
    return n;
}

static void check_forward(float *x, float *g, float *y, float *ref, size_t most) {
    for (size_t a = 0; a < sizeof ALPHAS / sizeof ALPHAS[0]; a++) {
        for (size_t b = 0; b < sizeof BITS / sizeof BITS[0]; b++) {
            for (size_t l = 0; l < sizeof LENGTHS / sizeof LENGTHS[0] && LENGTHS[l] <= most; l++) {
                size_t n = LENGTHS[l];
                make_inputs(x, g, n, ALPHAS[a], n * 31 + a * 7 + b);
                ref_pact_forward(x, ref, n, ALPHAS[a], BITS[b]);
                bq_status s = bq_pact_forward(x, y, n, ALPHAS[a], BITS[b]);
                size_t i = s == BQ_OK ? first_mismatch(y, ref, n) : 0;
                CHECK(s == BQ_OK && i == n, "forward alpha=%g bits=%d n=%zu: status %d, i=%zu x=%a y=%a ref=%a",
                      ALPHAS[a], BITS[b], n, (int)s, i, i < n ? x[i] : 0.0f, i < n ? y[i] : 0.0f, i < n ? ref[i] : 0.0f);
                if (n == 1025) { /* in place */
                    memcpy(y, x, n * sizeof *y);
                    s = bq_pact_forward(y, y, n, ALPHAS[a], BITS[b]);
                    CHECK(s == BQ_OK && first_mismatch(y, ref, n) == n, "in-place forward alpha=%g bits=%d",
                          ALPHAS[a], BITS[b]);
                }
            }
        }
    }
}

static void check_backward(float *x, float *g, float *dx, float *ref, size_t most) {
    const size_t long_lengths[] = {(size_t)1 << 18, ((size_t)1 << 18) + 5, ((size_t)1 << 19) + 77};
    for (size_t a = 0; a < sizeof ALPHAS / sizeof ALPHAS[0]; a++) {
        for (size_t l = 0; l < sizeof LENGTHS / sizeof LENGTHS[0] + 3; l++) {
            size_t n = l < sizeof LENGTHS / sizeof LENGTHS[0] ? LENGTHS[l] : long_lengths[l - sizeof LENGTHS / sizeof LENGTHS[0]];
            if (n > most) continue;
            make_inputs(x, g, n, ALPHAS[a], n * 17 + a);
            double sum, abs_sum;
            ref_pact_backward(x, g, ref, &sum, &abs_sum, n, ALPHAS[a]);
            float alpha_grad = -123.0f;
            bq_status s = bq_pact_backward(x, g, dx, &alpha_grad, n, ALPHAS[a]);
            size_t i = s == BQ_OK ? first_mismatch(dx, ref, n) : 0;
            CHECK(s == BQ_OK && i == n, "backward alpha=%g n=%zu: status %d, i=%zu", ALPHAS[a], n, (int)s, i);
            CHECK(s == BQ_OK && ref_pact_alpha_close(alpha_grad, sum, abs_sum, n),
                  "grad_alpha alpha=%g n=%zu: %.9g, the float64 sum %.17g", ALPHAS[a], n, alpha_grad, sum);
            if (n == 65537) { /* in place on g, then on x */
                float in_place;
                memcpy(dx, g, n * sizeof *dx);
                s = bq_pact_backward(x, dx, dx, &in_place, n, ALPHAS[a]);
                CHECK(s == BQ_OK && first_mismatch(dx, ref, n) == n && ref_same(in_place, alpha_grad),
                      "backward in place (grad_x == grad_y) alpha=%g", ALPHAS[a]);
                float *x_copy = malloc(n * sizeof *x_copy);
                memcpy(x_copy, x, n * sizeof *x_copy);
                s = bq_pact_backward(x_copy, g, x_copy, &in_place, n, ALPHAS[a]);
                CHECK(s == BQ_OK && first_mismatch(x_copy, ref, n) == n && ref_same(in_place, alpha_grad),
                      "backward in place (grad_x == x) alpha=%g", ALPHAS[a]);
                free(x_copy);
            }
        }
    }
}

/* The sum's order does not depend on the threads: two thread counts give the same bits, on many slices. */
static void check_deterministic(float *x, float *g, float *dx, size_t n) {
    float at[2];
    for (int t = 0; t < 2; t++) {
        make_inputs(x, g, n, 1.0f, 99);
        bq_set_num_threads(t + 1);
        CHECK(bq_pact_backward(x, g, dx, &at[t], n, 1.0f) == BQ_OK, "backward at %d threads: %s", t + 1,
              bq_last_error());
    }
    bq_set_num_threads(2);
    CHECK(ref_same(at[0], at[1]), "grad_alpha at 1 thread %a, at 2 threads %a", at[0], at[1]);
}

/* The table's "pact" with named parameters is bq_pact_forward's and bq_pact_backward's grad_x. */
static void check_named(float *x, float *g, float *y, float *ref, size_t n) {
    size_t index = 0;
    while (index < bq_quantizer_count()) {
        bq_quantizer_info info;
        bq_quantizer_info_at(index, &info);
        if (strcmp(info.name, "pact") == 0) break;
        index++;
    }
    CHECK(index < bq_quantizer_count(), "no pact in the table");
    CHECK(bq_quantizer_param_count(index) == 2, "pact has %zu named parameters", bq_quantizer_param_count(index));
    bq_param_info alpha, bits;
    CHECK(bq_quantizer_param_at(index, 0, &alpha) == BQ_OK && strcmp(alpha.name, "alpha") == 0 &&
              alpha.default_value == 10.0 && alpha.kind == BQ_PARAM_POSITIVE,
          "pact's first parameter is not alpha, default 10, positive");
    CHECK(bq_quantizer_param_at(index, 1, &bits) == BQ_OK && strcmp(bits.name, "bits") == 0 &&
              bits.default_value == 4.0 && bits.min_value == 1.0 && bits.max_value == 24.0 &&
              bits.kind == BQ_PARAM_INTEGER,
          "pact's second parameter is not bits, default 4, integer 1..24");
    CHECK(bq_quantizer_param_at(index, 2, &bits) == BQ_E_INVALID, "a third parameter of pact");

    const bq_named_param named[] = {{"bits", 3}, {"alpha", 3.0}};
    bq_quantizer *q = NULL;
    CHECK(bq_create_named("pact", NULL, named, 2, &q) == BQ_OK, "bq_create_named: %s", bq_last_error());
    if (q == NULL) return;
    make_inputs(x, g, n, 3.0f, 5);
    ref_pact_forward(x, ref, n, 3.0f, 3);
    CHECK(bq_forward(q, x, y, n) == BQ_OK && first_mismatch(y, ref, n) == n, "named pact forward");
    ref_pact_backward(x, g, ref, NULL, NULL, n, 3.0f);
    CHECK(bq_backward(q, x, g, y, n) == BQ_OK && first_mismatch(y, ref, n) == n, "named pact backward");
    bq_destroy(q);

    /* Without named parameters, bitorch's defaults. */
    CHECK(bq_create("pact", NULL, &q) == BQ_OK, "bq_create pact: %s", bq_last_error());
    ref_pact_forward(x, ref, n, 10.0f, 4);
    CHECK(bq_forward(q, x, y, n) == BQ_OK && first_mismatch(y, ref, n) == n, "default pact forward");
    bq_destroy(q);
}

static void check_errors(void) {
    float x[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, y[4] = {7, 7, 7, 7}, alpha_grad = 7.0f;
    const float bad_alphas[] = {0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad_alphas / sizeof bad_alphas[0]; k++) {
        CHECK(bq_pact_forward(x, y, 4, bad_alphas[k], 4) == BQ_E_INVALID, "forward alpha=%g accepted", bad_alphas[k]);
        CHECK(bq_pact_backward(x, g, y, &alpha_grad, 4, bad_alphas[k]) == BQ_E_INVALID, "backward alpha=%g accepted",
              bad_alphas[k]);
    }
    CHECK(bq_pact_forward(x, y, 4, 1.0f, 0) == BQ_E_INVALID, "bits 0 accepted");
    CHECK(bq_pact_forward(x, y, 4, 1.0f, 25) == BQ_E_INVALID, "bits 25 accepted");
    CHECK(bq_pact_forward(NULL, y, 4, 1.0f, 4) == BQ_E_INVALID, "x NULL accepted");
    CHECK(bq_pact_backward(x, g, y, NULL, 4, 1.0f) == BQ_E_INVALID, "grad_alpha NULL accepted");
    CHECK(bq_pact_backward(x, g, y, (float *)&y[1], 4, 1.0f) == BQ_E_INVALID, "grad_alpha inside grad_x accepted");
    CHECK(bq_pact_backward(x, g, x + 1, &alpha_grad, 3, 1.0f) == BQ_E_INVALID, "grad_x overlapping x accepted");
    CHECK(y[0] == 7.0f && y[3] == 7.0f && alpha_grad == 7.0f, "a rejected call wrote y or grad_alpha");
    CHECK(bq_pact_backward(x, x + 1, y, &alpha_grad, 3, 1.0f) == BQ_OK, "overlapping inputs refused");
    CHECK(bq_pact_backward(NULL, NULL, NULL, &alpha_grad, 0, 1.0f) == BQ_OK && alpha_grad == 0.0f,
          "n = 0 gives grad_alpha 0");

    bq_quantizer *q = NULL;
    const bq_named_param unknown[] = {{"beta", 1.0}}, twice[] = {{"alpha", 1.0}, {"alpha", 2.0}},
                         fractional[] = {{"bits", 2.5}}, negative[] = {{"alpha", -2.0}}, nameless[] = {{NULL, 1.0}};
    CHECK(bq_create_named("pact", NULL, unknown, 1, &q) == BQ_E_INVALID && strstr(bq_last_error(), "alpha") != NULL,
          "an unknown parameter accepted, or the message does not list the known ones: %s", bq_last_error());
    CHECK(bq_create_named("pact", NULL, twice, 2, &q) == BQ_E_INVALID, "a parameter given twice accepted");
    CHECK(bq_create_named("pact", NULL, fractional, 1, &q) == BQ_E_INVALID, "bits 2.5 accepted");
    CHECK(bq_create_named("pact", NULL, negative, 1, &q) == BQ_E_INVALID, "alpha -2 accepted");
    CHECK(bq_create_named("pact", NULL, nameless, 1, &q) == BQ_E_INVALID, "a NULL name accepted");
    CHECK(bq_create_named("pact", NULL, NULL, 1, &q) == BQ_E_INVALID, "NULL named with count 1 accepted");
    CHECK(bq_create_named("sign", NULL, twice, 1, &q) == BQ_E_INVALID, "sign took a named parameter");
    CHECK(q == NULL, "a rejected bq_create_named wrote out");
}

int main(void) {
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) != BQ_OK) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    printf("variant: %s\n", variant);
    size_t most = 3 * ((size_t)1 << 18) + 1001;
    float *x = malloc(most * sizeof *x), *g = malloc(most * sizeof *g);
    float *y = malloc(most * sizeof *y), *ref = malloc(most * sizeof *ref);
    if (x == NULL || g == NULL || y == NULL || ref == NULL) return 2;
    check_forward(x, g, y, ref, 65537);
    check_backward(x, g, y, ref, most);
    check_deterministic(x, g, y, 3 * ((size_t)1 << 18) + 1001);
    check_named(x, g, y, ref, 4099);
    check_errors();
    free(x);
    free(g);
    free(y);
    free(ref);
    printf("pact: %d failures\n", test_failures());
    return test_failures() == 0 ? 0 : 1;
}
