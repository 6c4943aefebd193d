/* The GPU entry points' errors, through the public API only.
 *
 * Always: bad arguments (NULL quantizer, NULL data with n > 0, NULL OpenCL context or queue, an unknown
 * backend, a NULL name buffer) give BQ_E_INVALID with a message naming the entry point, and a backend not
 * compiled in gives BQ_E_UNSUPPORTED naming its CMake option; outputs stay untouched.
 *
 * Usage: test_gpu_errors [no-device BACKEND]. With no-device, every entry point of BACKEND (cuda or opencl)
 * must also return BQ_E_NO_DEVICE with a message, for every quantizer, forward and backward, n = 0 included,
 * and leave its outputs untouched: ctest runs it for CUDA where there is no CUDA driver, and for OpenCL with
 * OCL_ICD_VENDORS pointing at an empty directory (no platform). The process must not abort. Where the
 * backend finds a device, the no-device check cannot be made, and exits 77 (skipped). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bitquant.h"
#include "test_common.h"

#define N 37
static int failures, checks;

static float x[N], g[N], out[N];
static const float SENTINEL = -1234.5f;

static void reset_output(void) {
    for (int i = 0; i < N; i++)
        out[i] = SENTINEL;
}

static int output_untouched(void) {
    for (int i = 0; i < N; i++) {
        if (out[i] != SENTINEL) return 0;
    }
    return 1;
}

/* One call's outcome: the status wanted, a message containing `needle`, the output untouched. */
static void expect(const char *what, bq_status got, bq_status want, const char *needle) {
    checks++;
    const char *message = bq_last_error();
    if (got != want) {
        printf("FAIL %s: status %d, want %d (%s)\n", what, (int)got, (int)want, message);
        failures++;
    } else if (needle != NULL && strstr(message, needle) == NULL) {
        printf("FAIL %s: message \"%s\" lacks \"%s\"\n", what, message, needle);
        failures++;
    } else if (!output_untouched()) {
        printf("FAIL %s: the output was written\n", what);
        failures++;
    }
    reset_output();
}

/* Device handles that must never be touched: the calls under test fail before using them. */
static void *const FAKE_A = (void *)(uintptr_t)0x1000, *const FAKE_B = (void *)(uintptr_t)0x2000;

/* Every entry point of a backend with valid-looking arguments, expecting `want` from each. */
static void every_entry_point(const bq_quantizer *q, const char *qname, bq_backend b, size_t n, bq_status want,
                              const char *needle) {
    char what[160];
    const char *bn = bq_backend_name(b);
    snprintf(what, sizeof what, "%s %s forward_host n=%zu", bn, qname, n);
    expect(what, bq_device_forward_host(q, b, x, out, n), want, needle);
    snprintf(what, sizeof what, "%s %s backward_host n=%zu", bn, qname, n);
    expect(what, bq_device_backward_host(q, b, x, g, out, n), want, needle);
    snprintf(what, sizeof what, "%s %s forward_typed_host n=%zu", bn, qname, n);
    expect(what, bq_device_forward_typed_host(q, b, BQ_F16, x, BQ_BF16, out, 1, n), want, needle);
    snprintf(what, sizeof what, "%s %s backward_typed_host n=%zu", bn, qname, n);
    expect(what, bq_device_backward_typed_host(q, b, BQ_BF16, x, g, out, n), want, needle);
    if (b == BQ_BACKEND_CUDA) {
        snprintf(what, sizeof what, "cuda %s bq_cuda_forward_typed n=%zu", qname, n);
        expect(what, bq_cuda_forward_typed(q, BQ_F32, FAKE_A, BQ_F16, FAKE_B, 1, n, NULL), want, needle);
        snprintf(what, sizeof what, "cuda %s bq_cuda_backward_typed n=%zu", qname, n);
        expect(what, bq_cuda_backward_typed(q, BQ_F16, FAKE_A, FAKE_A, FAKE_B, n, NULL), want, needle);
        snprintf(what, sizeof what, "cuda %s bq_cuda_forward n=%zu", qname, n);
        expect(what, bq_cuda_forward(q, FAKE_A, FAKE_B, n, NULL), want, needle);
        snprintf(what, sizeof what, "cuda %s bq_cuda_backward n=%zu", qname, n);
        expect(what, bq_cuda_backward(q, FAKE_A, FAKE_A, FAKE_B, n, NULL), want, needle);
    } else {
        snprintf(what, sizeof what, "opencl %s bq_opencl_forward_typed n=%zu", qname, n);
        expect(what, bq_opencl_forward_typed(q, FAKE_A, FAKE_B, BQ_BF16, FAKE_A, BQ_F32, FAKE_B, 1, n), want, needle);
        snprintf(what, sizeof what, "opencl %s bq_opencl_backward_typed n=%zu", qname, n);
        expect(what, bq_opencl_backward_typed(q, FAKE_A, FAKE_B, BQ_F16, FAKE_A, FAKE_A, FAKE_B, n), want, needle);
        snprintf(what, sizeof what, "opencl %s bq_opencl_forward n=%zu", qname, n);
        expect(what, bq_opencl_forward(q, FAKE_A, FAKE_B, FAKE_A, FAKE_B, n), want, needle);
        snprintf(what, sizeof what, "opencl %s bq_opencl_backward n=%zu", qname, n);
        expect(what, bq_opencl_backward(q, FAKE_A, FAKE_B, FAKE_A, FAKE_A, FAKE_B, n), want, needle);
    }
}

static void check_arguments(const bq_quantizer *q) {
    for (int b = 0; b < BQ_BACKEND_COUNT; b++) {
        bq_backend backend = (bq_backend)b;
        expect("forward_host q=NULL", bq_device_forward_host(NULL, backend, x, out, N), BQ_E_INVALID,
               "bq_device_forward_host: quantizer is NULL");
        expect("forward_host x=NULL", bq_device_forward_host(q, backend, NULL, out, N), BQ_E_INVALID, "x is NULL");
        expect("backward_host grad_y=NULL", bq_device_backward_host(q, backend, x, NULL, out, N), BQ_E_INVALID,
               "grad_y is NULL");
        expect("backward_host grad_x=NULL", bq_device_backward_host(q, backend, x, g, NULL, N), BQ_E_INVALID,
               "grad_x is NULL");
    }
    expect("forward_host backend=7", bq_device_forward_host(q, (bq_backend)7, x, out, N), BQ_E_INVALID, "no backend 7");
    expect("backend_device backend=-1", bq_backend_device((bq_backend)-1, NULL, 0), BQ_E_INVALID, "no backend -1");
    expect("backend_device name=NULL", bq_backend_device(BQ_BACKEND_OPENCL, NULL, 8), BQ_E_INVALID, "name is NULL");
    expect("cuda_forward q=NULL", bq_cuda_forward(NULL, FAKE_A, FAKE_B, N, NULL), BQ_E_INVALID, "quantizer is NULL");
    expect("cuda_forward y=NULL", bq_cuda_forward(q, FAKE_A, NULL, N, NULL), BQ_E_INVALID, "y is NULL");
    expect("cuda_backward x=NULL", bq_cuda_backward(q, NULL, FAKE_A, FAKE_B, N, NULL), BQ_E_INVALID, "x is NULL");
    expect("opencl_forward context=NULL", bq_opencl_forward(q, NULL, FAKE_B, FAKE_A, FAKE_B, N), BQ_E_INVALID,
           "context is NULL");
    expect("opencl_backward queue=NULL", bq_opencl_backward(q, FAKE_A, NULL, FAKE_A, FAKE_A, FAKE_B, N), BQ_E_INVALID,
           "queue is NULL");
    expect("opencl_forward y=NULL", bq_opencl_forward(q, FAKE_A, FAKE_B, FAKE_A, NULL, N), BQ_E_INVALID, "y is NULL");
    /* The typed forms check their types first, on every backend, compiled in or not. */
    expect("forward_typed_host y_type=9", bq_device_forward_typed_host(q, BQ_BACKEND_OPENCL, BQ_F32, x, (bq_dtype)9, out,
                                                                        1, N),
           BQ_E_INVALID, "not a bq_dtype");
    expect("cuda_forward_typed identity to bits", bq_cuda_forward_typed(q, BQ_F32, FAKE_A, BQ_BIT, FAKE_B, 1, N, NULL),
           BQ_E_UNSUPPORTED, "identity has no BQ_BIT output");
    expect("opencl_backward_typed int8", bq_opencl_backward_typed(q, FAKE_A, FAKE_B, BQ_I8, FAKE_A, FAKE_A, FAKE_B, N),
           BQ_E_UNSUPPORTED, "BQ_I8");
    expect("opencl_forward_typed queue=NULL", bq_opencl_forward_typed(q, FAKE_A, NULL, BQ_F16, FAKE_A, BQ_F16, FAKE_B, 1, N),
           BQ_E_INVALID, "queue is NULL");
    checks++;
    if (bq_backend_name(BQ_BACKEND_CUDA) == NULL || strcmp(bq_backend_name(BQ_BACKEND_OPENCL), "opencl") != 0 ||
        bq_backend_name(BQ_BACKEND_COUNT) != NULL) {
        printf("FAIL bq_backend_name\n");
        failures++;
    }
    /* A backend this build lacks: every entry point says which CMake option would bring it. */
    for (int b = 0; b < BQ_BACKEND_COUNT; b++) {
        if (bq_backend_compiled((bq_backend)b)) continue;
        every_entry_point(q, "identity", (bq_backend)b, N, BQ_E_UNSUPPORTED, "CMake option");
    }
}

static int check_no_device(const char *backend_name) {
    bq_backend b = strcmp(backend_name, "cuda") == 0 ? BQ_BACKEND_CUDA : BQ_BACKEND_OPENCL;
    if (!bq_backend_compiled(b)) {
        printf("[SKIP] %s is not compiled into this library\n", backend_name);
        return 77;
    }
    char name[64] = "untouched";
    bq_status s = bq_backend_device(b, name, sizeof name);
    if (s == BQ_OK) {
        printf("[SKIP] %s has a device here (%s): the no-device behaviour needs a machine without one\n", backend_name,
               name);
        return 77;
    }
    expect("bq_backend_device", s, BQ_E_NO_DEVICE, "bq_backend_device");
    if (strcmp(name, "untouched") != 0) {
        printf("FAIL bq_backend_device wrote its name buffer\n");
        failures++;
    }
    printf("no device (%s): %s\n", backend_name, bq_last_error());
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        bq_quantizer *q = NULL;
        if (bq_create(TEST_QUANTIZERS[qi].name, NULL, &q) != BQ_OK) {
            printf("FAIL bq_create %s: %s\n", TEST_QUANTIZERS[qi].name, bq_last_error());
            failures++;
            continue;
        }
        every_entry_point(q, TEST_QUANTIZERS[qi].name, b, N, BQ_E_NO_DEVICE, b == BQ_BACKEND_CUDA ? "CUDA" : "OpenCL");
        every_entry_point(q, TEST_QUANTIZERS[qi].name, b, 0, BQ_E_NO_DEVICE, b == BQ_BACKEND_CUDA ? "CUDA" : "OpenCL");
        bq_destroy(q);
    }
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 0; i < N; i++) {
        x[i] = (float)i - 18.0f;
        g[i] = 1.0f;
    }
    reset_output();
    bq_quantizer *q = NULL;
    if (bq_create("identity", NULL, &q) != BQ_OK) {
        printf("[SKIP] bq_create: %s\n", bq_last_error());
        return 77;
    }
    check_arguments(q);
    bq_destroy(q);
    if (argc == 3 && strcmp(argv[1], "no-device") == 0) {
        int skipped = check_no_device(argv[2]);
        if (skipped != 0 && failures == 0) return skipped;
    } else if (argc != 1) {
        printf("usage: test_gpu_errors [no-device cuda|opencl]\n");
        return 2;
    }
    printf("gpu errors: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
