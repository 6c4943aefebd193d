/* n > 2^31 - 1 for real: one 8 GiB tensor of 2^31 + 17 floats, in place. Halide extents are int32, so the
 * runtime must cut it into chunks; WeightDoReFa's max must still be global. Checks:
 *   sign forward: -3 -> -1, and 0, -0 and NaN -> +1, at the start, across 2^31 and at the very end;
 *   weightdorefa forward (4 bits) of the result with a 2 in the last element: every +-1 takes the level
 *   that M = tanh(2) gives (the reference on a 3-element tensor with the same max), not tanh(1);
 *   saved-bit training, steheaviside with cancellation at 1.3 (two planes of 2^26 + 1 words each), in place:
 *   x = 1.2 (g * 0 = +0), 0.5 (g), NaN and 2 (cancelled: +0) at the start, across 2^31 and at the end, 0
 *   elsewhere (g); the forward's -1 / +1 as the gradient.
 * Skips (exit 77) if the memory cannot be had. */
#include <bitquant.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "reference.h"

int main(void) {
    const size_t n = ((size_t)1 << 31) + 17;
    float *x = calloc(n, sizeof *x); /* untouched pages read as zero and cost nothing until written */
    if (x == NULL) {
        printf("[SKIP] cannot allocate %zu floats\n", n);
        return 77;
    }
    int passed = 0, failed = 0;
    const size_t edge = (size_t)1 << 31;
    x[0] = -3.0f;
    x[edge - 1] = -0.0f;
    x[edge] = NAN;
    x[n - 1] = 0.5f;

    bq_quantizer *sign = NULL;
    if (bq_create("sign", NULL, &sign) != BQ_OK || bq_forward(sign, x, x, n) != BQ_OK) {
        printf("FAIL sign forward: %s\n", bq_last_error());
        return 1;
    }
    bq_destroy(sign);
    size_t plus = 0;
    for (size_t i = 0; i < n; i++)
        plus += x[i] == 1.0f;
    if (x[0] == -1.0f && plus == n - 1)
        passed++;
    else {
        failed++;
        printf("FAIL sign forward over %zu elements: x[0] = %g, %zu of %zu are +1\n", n, x[0], plus, n - 1);
    }

    x[n - 1] = 2.0f;
    bq_params p;
    bq_params_init(&p);
    p.dorefa_bits = 4;
    const float probe[3] = {1.0f, -1.0f, 2.0f};
    float want[3];
    bq_quantizer *wd = NULL;
    if (ref_forward("weightdorefa", &p, probe, want, 3) != BQ_OK || bq_create("weightdorefa", &p, &wd) != BQ_OK ||
        bq_forward(wd, x, x, n) != BQ_OK) {
        printf("FAIL weightdorefa forward: %s\n", bq_last_error());
        return 1;
    }
    bq_destroy(wd);
    size_t right = 0;
    for (size_t i = 1; i + 1 < n; i++)
        right += ref_same(x[i], want[0]);
    if (ref_same(x[0], want[1]) && ref_same(x[n - 1], want[2]) && right == n - 2)
        passed++;
    else {
        failed++;
        printf("FAIL weightdorefa forward over %zu elements: %zu of %zu are %a (x[0] = %a, want %a)\n", n, right, n - 2,
               want[0], x[0], want[1]);
    }
    bq_params_init(&p);
    p.cancel_threshold = 1.3f;
    bq_quantizer *heaviside = NULL;
    size_t words = 0;
    if (bq_create("steheaviside", &p, &heaviside) != BQ_OK || bq_saved_words(heaviside, n, &words) != BQ_OK) {
        printf("FAIL steheaviside: %s\n", bq_last_error());
        return 1;
    }
    uint32_t *saved = malloc(words * sizeof *saved);
    if (saved == NULL) {
        printf("[SKIP] cannot allocate %zu saved words\n", words);
        return 77;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = 0.0f;
    const size_t at[4] = {0, edge - 1, edge, n - 1};
    const float xs[4] = {1.2f, 0.5f, NAN, 2.0f};
    for (int k = 0; k < 4; k++)
        x[at[k]] = xs[k];
    if (bq_forward_save(heaviside, x, x, saved, n) != BQ_OK || bq_backward_saved(heaviside, saved, x, x, n) != BQ_OK) {
        printf("FAIL steheaviside saved: %s\n", bq_last_error());
        return 1;
    }
    /* forward: 1.2, 0.5, 2 -> +1; NaN, 0 -> -1. backward of that g: 1.2 -> +1 * 0 = +0; 0.5 -> +1; NaN, 2 -> +0;
     * 0 -> -1. */
    const float want_dx[4] = {0.0f, 1.0f, 0.0f, 0.0f};
    size_t minus = 0;
    for (size_t i = 0; i < n; i++)
        minus += x[i] == -1.0f;
    int ok = words == 2 * (((size_t)1 << 26) + 1) && minus == n - 4;
    for (int k = 0; k < 4; k++)
        ok &= ref_same(x[at[k]], want_dx[k]);
    if (ok)
        passed++;
    else {
        failed++;
        printf("FAIL steheaviside saved over %zu elements (%zu words): %zu of %zu are -1; %a %a %a %a\n", n, words,
               minus, n - 4, x[at[0]], x[at[1]], x[at[2]], x[at[3]]);
    }
    free(saved);
    bq_destroy(heaviside);
    free(x);
    printf("huge: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
