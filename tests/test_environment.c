/* Hostile environments: the library's environment variables set to junk, zero, negative, huge and empty values.
 * ctest runs this program once per variable and value, with the variable set, as
 *   test_environment VARIABLE EXPECTATION
 * and it checks the documented behaviour (README, "Environment"):
 * - BITQUANT_CPU: "fail": every call that needs a variant (bq_create, bq_cpu_variant_active) returns
 *   BQ_E_UNSUPPORTED with a message naming the variable, the same at every call; "best": the empty value is
 *   unset, so the best variant this CPU supports is active.
 * - BITQUANT_MAX_CHUNK: "default": ignored, chunks stay 2^28 elements; a number: that chunk. A call cut by
 *   it or not is exact against the reference.
 * - BITQUANT_OPENCL_PLATFORM: "none": BQ_E_NO_DEVICE with a message naming the variable from
 *   bq_backend_device and the OpenCL host-memory calls; "any": the empty value matches every platform (a
 *   device where there is one, else the test skips).
 * (HL_NUM_THREADS is the pool test's: tests/test_pool.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "internal.h" /* bq_max_chunk: the chunk in force */
#include "test_common.h"

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

static int names(const char *message, const char *variable) { return strstr(message, variable) != NULL; }

/* sign's forward at n = 3001 (three chunks of 1000 and one more where the chunk is 1000), against the reference. */
static int forward_exact(void) {
    enum { N = 3001 };
    static float x[N], y[N], want[N];
    test_rng r = test_rng_seed(7);
    for (size_t i = 0; i < N; i++)
        x[i] = test_rng_uniform(&r, -2.0f, 2.0f);
    bq_params p;
    bq_params_init(&p);
    bq_quantizer *q = NULL;
    if (bq_create("inputdorefa", &p, &q) != BQ_OK) return 0;
    int ok = bq_forward(q, x, y, N) == BQ_OK && ref_forward("inputdorefa", &p, x, want, N) == BQ_OK;
    for (size_t i = 0; ok && i < N; i++)
        ok = ref_same(y[i], want[i]);
    bq_destroy(q);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_environment VARIABLE EXPECTATION\n");
        return 2;
    }
    const char *variable = argv[1], *expect = argv[2], *value = getenv(variable);
    printf("%s=\"%.60s%s\" (%zu characters), expecting %s\n", variable, value ? value : "(unset)",
           value && strlen(value) > 60 ? "..." : "", value ? strlen(value) : 0, expect);
    if (strcmp(variable, "BITQUANT_CPU") == 0) {
        const char *active = NULL;
        if (strcmp(expect, "fail") == 0) {
            for (int round = 0; round < 2; round++) {
                bq_quantizer *q = NULL;
                bq_status s = bq_create("sign", NULL, &q);
                check(s == BQ_E_UNSUPPORTED && q == NULL && names(bq_last_error(), "BITQUANT_CPU"),
                      "bq_create: BQ_E_UNSUPPORTED, naming BITQUANT_CPU (each time)");
                s = bq_cpu_variant_active(&active);
                check(s == BQ_E_UNSUPPORTED && active == NULL && names(bq_last_error(), "BITQUANT_CPU"),
                      "bq_cpu_variant_active: the same");
            }
            check(bq_set_num_threads(2) == BQ_OK, "bq_set_num_threads still works");
        } else {
            check(bq_cpu_variant_active(&active) == BQ_OK, "a variant is active");
            const char *best = NULL;
            for (size_t i = 0; i < bq_cpu_variant_count(); i++)
                if (bq_cpu_variant_supported(i) == 1) best = bq_cpu_variant_name(i);
            check(active != NULL && best != NULL && strcmp(active, best) == 0, "it is the best this CPU supports");
            check(forward_exact(), "a call is exact");
        }
    } else if (strcmp(variable, "BITQUANT_MAX_CHUNK") == 0) {
        size_t want = strcmp(expect, "default") == 0 ? (size_t)1 << 28 : (size_t)strtoull(expect, NULL, 10);
        check(forward_exact(), "a call is exact");
        check(bq_max_chunk() == want, "the chunk in force is the expected one");
    } else if (strcmp(variable, "BITQUANT_OPENCL_PLATFORM") == 0) {
        if (!bq_backend_compiled(BQ_BACKEND_OPENCL)) {
            printf("[SKIP] OpenCL is not compiled into this library\n");
            return 77;
        }
        char device[256];
        bq_status s = bq_backend_device(BQ_BACKEND_OPENCL, device, sizeof device);
        const char *message = bq_last_error();
        if (s == BQ_E_NO_DEVICE && !names(message, variable) &&
            (strstr(message, "no OpenCL:") || strstr(message, "no OpenCL platform") || strstr(message, "OpenCL loader"))) {
            printf("[SKIP] no OpenCL here at all, whatever the variable holds: %s\n", message); /* qemu-aarch64 */
            return 77;
        }
        if (strcmp(expect, "none") == 0) {
            check(s == BQ_E_NO_DEVICE && names(bq_last_error(), "BITQUANT_OPENCL_PLATFORM"),
                  "bq_backend_device: BQ_E_NO_DEVICE, naming BITQUANT_OPENCL_PLATFORM");
            bq_quantizer *q = NULL;
            float x[4] = {1, -1, 0, 2}, y[4] = {0};
            check(bq_create("sign", NULL, &q) == BQ_OK, "the CPU is unaffected");
            s = bq_device_forward_host(q, BQ_BACKEND_OPENCL, x, y, 4);
            check(s == BQ_E_NO_DEVICE && names(bq_last_error(), "BITQUANT_OPENCL_PLATFORM"),
                  "bq_device_forward_host: the same");
            bq_destroy(q);
        } else {
            if (s == BQ_E_NO_DEVICE) {
                printf("[SKIP] no OpenCL device here: %s\n", bq_last_error());
                return 77;
            }
            check(s == BQ_OK, "a device on any platform");
        }
    } else {
        fprintf(stderr, "test_environment: no checks for %s\n", variable);
        return 2;
    }
    return failures ? 1 : 0;
}
