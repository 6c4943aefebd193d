/* Halide's autoscheduled kernels (Adams2019, Mullapudi2016; tools/autoscheduled.h) against the scalar
 * reference, for every quantizer whose forward or backward family has them, on each CPU variant this
 * machine runs: at lengths below, at and above the autoschedule's smallest length (the hand schedule
 * takes the shorter ones), 0 included, with cancellation off and on, and nothing written outside the
 * output. Every result must match as in the conformance suite. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "autoscheduled.h"
#include "test_common.h"

static const size_t LENGTHS[] = {0,    1,    3,     7,     8,     9,     15,    16,    17,     31,    33,
                                 1023, 1025, 16383, 16384, 32767, 32768, 32769, 65536, 100003, 300007};
#define LENGTH_COUNT (sizeof LENGTHS / sizeof LENGTHS[0])
#define MOST 300007

static int checks, failures;

static void check(const bq_autoscheduled_kernel *k, const char *name, const bq_params *p, int backward) {
    static float x[MOST], g[MOST], ref[MOST];
    static test_buffer out;
    if (out.base == NULL && !test_buffer_alloc(&out, MOST)) return;
    bq_quantizer *q = NULL;
    if (bq_create(name, p, &q) != BQ_OK) {
        printf("FAIL bq_create %s: %s\n", name, bq_last_error());
        failures++;
        return;
    }
    for (size_t li = 0; li < LENGTH_COUNT; li++) {
        size_t n = LENGTHS[li];
        test_rng r = test_rng_seed(n * 7 + (size_t)backward);
        for (size_t i = 0; i < n; i++) {
            x[i] = test_rng_below(&r, 4) == 0 ? test_rng_wide(&r) : test_rng_uniform(&r, -3.0f, 3.0f);
            g[i] = test_rng_uniform(&r, -2.0f, 2.0f);
        }
        test_buffer_fill(&out, 1, NULL, n);
        float *y = test_buffer_at(&out, 1);
        bq_status s = backward ? bq_autoscheduled_backward(k, q, x, g, y, n) : bq_autoscheduled_forward(k, q, x, y, n);
        if (backward) {
            ref_backward(name, p, x, g, ref, n);
        } else {
            ref_forward(name, p, x, ref, n);
        }
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n && s == BQ_OK; i++) {
            if (!test_output_matches(name, p, backward, x[i], backward ? g[i] : 0.0f, y[i], ref[i]) && bad++ == 0)
                first = i;
        }
        checks++;
        if (s != BQ_OK || bad > 0 || !test_guards_intact(&out, 1, n)) {
            failures++;
            printf("FAIL %s %s %s [%s, %s] t=%g n=%zu: status %d, %zu mismatches (first i=%zu), guards %s\n", name,
                   backward ? "bwd" : "fwd", k->family, k->variant, k->scheduler, p->cancel_threshold, n, (int)s, bad,
                   first, test_guards_intact(&out, 1, n) ? "intact" : "overwritten");
        }
    }
    bq_destroy(q);
}

int main(void) {
    int kernels = 0;
    for (size_t v = 0; v < bq_cpu_variant_count(); v++) {
        if (bq_cpu_variant_supported(v) != 1) continue;
        const char *variant = bq_cpu_variant_name(v);
        for (size_t qi = 0; qi < bq_quantizer_count(); qi++) {
            bq_quantizer_info info;
            bq_quantizer_info_at(qi, &info);
            for (int backward = 0; backward <= 1; backward++) {
                const char *family = backward ? info.backward_kernel : info.forward_kernel;
                const bq_autoscheduled_kernel *k;
                for (size_t a = 0; (k = bq_autoscheduled_find(variant, family, a)) != NULL; a++) {
                    bq_params p;
                    bq_params_init(&p);
                    if (strstr(info.params, "dorefa_bits")) p.dorefa_bits = 2;
                    check(k, info.name, &p, backward);
                    if (backward) {
                        p.cancel_threshold = 1.0f;
                        check(k, info.name, &p, backward);
                    }
                    kernels++;
                }
            }
        }
    }
    if (kernels == 0) {
        printf("[SKIP] no autoscheduled kernel for a variant this CPU runs\n");
        return 77;
    }
    printf("autoscheduled: %d quantizer-kernel pairs, %d checks, %d failed\n", kernels, checks, failures);
    return failures == 0 ? 0 : 1;
}
