/* n > 2^31 - 1 for real: one 8 GiB tensor of 2^31 + 17 floats, in place. Halide extents are int32, so the
 * runtime must cut it into chunks; WeightDoReFa's max must still be global. Checks:
 *   sign forward: -3 -> -1, and 0, -0 and NaN -> +1, at the start, across 2^31 and at the very end;
 *   weightdorefa forward (4 bits) of the result with a 2 in the last element: every +-1 takes the level
 *   that M = tanh(2) gives (the reference on a 3-element tensor with the same max), not tanh(1).
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
    free(x);
    printf("huge: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
