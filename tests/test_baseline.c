/* `bitquant bench`'s plain-C baselines (tools/baseline.c) against the scalar reference: every quantizer of the
 * kernel table has one for each direction, and each gives the reference's results under the spec's
 * conformance rule (bit for bit; SwishSign's backward within its tolerance), with cancellation off and on, at
 * parameter values across their ranges, on edge values and random ones, at lengths around every vector width
 * -- so that the bench compares the kernels with loops that compute the same thing. */
#include <stdio.h>

#include "baseline.h"
#include "test_common.h"

static void check_case(const char *name, int backward, const bq_params *p, size_t n, uint64_t seed) {
    bq_baseline_fn fn = bq_baseline_find(name, backward);
    CHECK(fn != NULL, "%s has no %s baseline", name, backward ? "backward" : "forward");
    if (fn == NULL) return;
    float *x = malloc(n * sizeof *x + 4), *g = malloc(n * sizeof *g + 4);
    float *ours = malloc(n * sizeof *ours + 4), *want = malloc(n * sizeof *want + 4);
    if (!x || !g || !ours || !want) {
        CHECK(0, "out of memory");
        free(x), free(g), free(ours), free(want);
        return;
    }
    static const float edges[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1.0f, -1.0f, 0.5f, -0.5f, 1e-45f,
                                  3e38f, -3e38f, 10.0f, 9.999999f, 20.0f, 0.25f, 89.5f, 17.9f, 1.00000012f};
    test_rng r = test_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(&r, 4);
        x[i] = pick == 0 ? edges[test_rng_below(&r, sizeof edges / sizeof edges[0])]
               : pick == 1 ? test_rng_wide(&r) : test_rng_uniform(&r, -3.0f, 12.0f);
        g[i] = test_rng_below(&r, 8) == 0 ? edges[test_rng_below(&r, sizeof edges / sizeof edges[0])]
                                          : test_rng_uniform(&r, -2.0f, 2.0f);
    }
    fn(p, x, g, ours, n);
    bq_status s = backward ? ref_backward(name, p, x, g, want, n) : ref_forward(name, p, x, want, n);
    CHECK(s == BQ_OK, "the reference of %s failed", name);
    size_t bad = 0;
    for (size_t i = 0; i < n && s == BQ_OK; i++) {
        if (!test_output_matches(name, p, backward, x[i], g[i], ours[i], want[i]) && bad++ < 3) {
            CHECK(0, "%s %s n=%zu t=%g: x = %a, g = %a gives %a, the reference %a", name,
                  backward ? "backward" : "forward", n, p->cancel_threshold, x[i], g[i], ours[i], want[i]);
        }
    }
    free(x), free(g), free(ours), free(want);
}

int main(void) {
    static const size_t lengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 65, 1000, 4099};
    static const float thresholds[] = {0.0f, 1.0f, 0.5f};
    for (size_t q = 0; q < TEST_QUANTIZER_COUNT; q++) {
        const test_quantizer *tq = &TEST_QUANTIZERS[q];
        bq_params variants[8];
        size_t count = 0;
        variants[count++] = test_default_params();
        for (int k = 0; test_reads(tq, "dorefa_bits") && k < 4; k++) {
            static const int bits[] = {2, 4, 8, 24};
            variants[count] = test_default_params();
            variants[count++].dorefa_bits = bits[k];
        }
        for (int k = 0; test_reads(tq, "swish_beta") && k < 3; k++) {
            static const float betas[] = {0.3f, 10.0f, -1.0f};
            variants[count] = test_default_params();
            variants[count++].swish_beta = betas[k];
        }
        if (test_reads(tq, "progressive_scale")) {
            variants[count] = test_default_params();
            variants[count++].progressive_scale = 0.1;
            variants[count] = test_default_params();
            variants[count++].training = 0;
        }
        for (size_t v = 0; v < count; v++) {
            for (size_t t = 0; t < 3; t++) {
                for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
                    bq_params p = variants[v];
                    p.cancel_threshold = thresholds[t];
                    uint64_t seed = 1000 * q + 100 * v + 10 * t + l;
                    if (t == 0) check_case(tq->name, 0, &p, lengths[l], seed);
                    check_case(tq->name, 1, &p, lengths[l], seed + 7);
                }
            }
        }
    }
    printf("baseline: %d failures\n", test_failures());
    return test_failures() ? 1 : 0;
}
