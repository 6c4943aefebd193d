/* The typed entry points (bq_forward_typed, bq_backward_typed and their GPU forms) against the scalar
 * reference: every quantizer of the kernel table, forward at every (input type, output type) pair it has and
 * backward at every float type, over a few parameter sets with cancellation off and on. The reference is
 * tests/reference.c's float32 result on the input widened to float32, rounded to the output type by the
 * conversions below, written from the IEEE 754 definitions (not the kernels' own); so every output bit must
 * match (any NaN matching any NaN), SwishSign's backward against the same path's own float32 result (which
 * test_conformance holds to the spec's tolerance) rounded the same way.
 *
 * Inputs: the spec's edge values, random values of several scales and, for 16-bit inputs, random bit
 * patterns of the type (every NaN, infinity, subnormal and -0 of it). Shapes: flat lengths around every
 * vector width and word, a few million elements once per type pair, and for BIT rows > 1 with cols not a
 * multiple of 32 (Larq Compute Engine's bitpack widths among them), thousands of rows across the parallel
 * path. Layouts: aligned, one element (one word) off, and in place where the element sizes agree. Every
 * output element and every bit of a packed word is checked, padding bits included, and the bytes after the
 * output must be untouched. Then the errors: unknown types, unsupported types, NULL, overflow, in place
 * across sizes, each with a message and the output untouched.
 *
 * Usage: test_typed [cpu|cuda-host|opencl-host|cuda-device|opencl-device]; a GPU path without a device
 * skips (exit 77). BITQUANT_TEST_LARGE=0 leaves out the large length. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "device_memory.h"
#include "reference.h"
#include "test_common.h"

#define GUARD_BYTES 64
#define GUARD 0xA5

static int passed, failed, printed;
#define MAX_PRINTED 20

/* ---- the reference conversions (test_common.h), element access ---- */

/* ---- the path under test ---- */

static test_path path; /* how the kernels are called (test_path_choose) */
static const char *path_name = "cpu";

static bq_status call_forward(const bq_quantizer *q, bq_dtype xt, const void *x, bq_dtype yt, void *y, size_t rows,
                              size_t cols) {
    if (path.kind == TEST_PATH_CPU) return bq_forward_typed(q, xt, x, yt, y, rows, cols);
    if (path.kind == TEST_PATH_HOST) return bq_device_forward_typed_host(q, path.backend, xt, x, yt, y, rows, cols);
    size_t xb = test_tensor_bytes(xt, rows, cols), yb = test_tensor_bytes(yt, rows, cols) + GUARD_BYTES;
    int in_place = x == y;
    void *dx = test_device_alloc(path.device, in_place ? (xb > yb ? xb : yb) : xb);
    void *dy = in_place ? dx : test_device_alloc(path.device, yb);
    bq_status s = BQ_E_RUNTIME;
    if (rows * cols > 0 && (dx == NULL || dy == NULL)) {
        printf("FAIL cannot allocate device memory\n");
    } else if ((!in_place && test_device_upload(path.device, dy, y, yb) != 0) ||
               test_device_upload(path.device, dx, x, in_place ? (xb > yb ? xb : yb) : xb) != 0) {
        printf("FAIL cannot upload\n");
    } else {
        void *queue = test_device_queue(path.device), *context = test_device_context(path.device);
        s = path.backend == BQ_BACKEND_CUDA ? bq_cuda_forward_typed(q, xt, dx, yt, dy, rows, cols, queue)
                                            : bq_opencl_forward_typed(q, context, queue, xt, dx, yt, dy, rows, cols);
        if (s == BQ_OK && test_device_download(path.device, y, dy, yb) != 0) s = BQ_E_RUNTIME;
    }
    if (!in_place) test_device_free(path.device, dy);
    test_device_free(path.device, dx);
    return s;
}

static bq_status call_backward(const bq_quantizer *q, bq_dtype t, const void *x, const void *g, void *dx, size_t n) {
    if (path.kind == TEST_PATH_CPU) return bq_backward_typed(q, t, x, g, dx, n);
    if (path.kind == TEST_PATH_HOST) return bq_device_backward_typed_host(q, path.backend, t, x, g, dx, n);
    size_t bytes = n * test_elem_size(t) + GUARD_BYTES;
    void *d_x = test_device_alloc(path.device, bytes), *d_g = test_device_alloc(path.device, bytes);
    void *d_dx = dx == g ? d_g : test_device_alloc(path.device, bytes);
    bq_status s = BQ_E_RUNTIME;
    if (n > 0 && (d_x == NULL || d_g == NULL || d_dx == NULL)) {
        printf("FAIL cannot allocate device memory\n");
    } else if (test_device_upload(path.device, d_x, x, bytes) != 0 || test_device_upload(path.device, d_g, g, bytes) != 0 ||
               (dx != g && test_device_upload(path.device, d_dx, dx, bytes) != 0)) {
        printf("FAIL cannot upload\n");
    } else {
        void *queue = test_device_queue(path.device), *context = test_device_context(path.device);
        s = path.backend == BQ_BACKEND_CUDA ? bq_cuda_backward_typed(q, t, d_x, d_g, d_dx, n, queue)
                                            : bq_opencl_backward_typed(q, context, queue, t, d_x, d_g, d_dx, n);
        if (s == BQ_OK && test_device_download(path.device, dx, d_dx, bytes) != 0) s = BQ_E_RUNTIME;
    }
    if (d_dx != d_g) test_device_free(path.device, d_dx);
    test_device_free(path.device, d_x);
    test_device_free(path.device, d_g);
    return s;
}

/* ---- inputs ---- */

static const float EDGES[] = {0.0f,        -0.0f,     1.0f,      -1.0f,    0.5f,      -0.5f,      NAN,      -NAN,
                              INFINITY,    -INFINITY, 1e-40f,    -1e-40f,  3e38f,     -3e38f,     FLT_MAX,  FLT_MIN,
                              1.00000012f, 0.99999994f, 1.3f,    -1.3f,    65504.0f,  65520.0f,   65519.0f, -65536.0f,
                              6.1e-5f,     5.96e-8f,  2.98e-8f,  1e-8f,    0.16666667f, 0.8333333f, 2.4f,   -17.6f,
                              89.41599f,   -1.4e37f,  0x1p-133f, 0x1p-134f, 0x1.01p-126f, 0.0625f,  0.1875f,  0.3125f};
#define EDGE_COUNT (sizeof EDGES / sizeof EDGES[0])

/* n inputs of type t: edges (rounded to t), uniform in [-3, 3], small, wide and, for 16-bit types, raw bits. */
static void make_inputs(test_rng *r, bq_dtype t, void *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(r, 10);
        float v = pick < 3   ? EDGES[test_rng_below(r, EDGE_COUNT)]
                  : pick < 6 ? test_rng_uniform(r, -3.0f, 3.0f)
                  : pick < 7 ? test_rng_uniform(r, -0.01f, 0.01f)
                             : test_rng_wide(r);
        if (pick >= 8 && t != BQ_F32) {
            uint16_t h = (uint16_t)test_rng_next(r);
            memcpy((char *)x + 2 * i, &h, 2);
        } else {
            test_store(t, x, i, v);
        }
    }
}

/* ---- checks ---- */

typedef struct {
    const test_quantizer *q;
    bq_params p;
    char desc[96];
} test_case;

static void fail(const char *what, const test_case *c, const char *dir, bq_dtype in, bq_dtype out, size_t rows,
                 size_t cols, const char *layout) {
    failed++;
    if (printed++ < MAX_PRINTED) {
        printf("FAIL %s %s %s->%s [%s] %zux%zu %s: %s\n", c->desc, dir, test_type_name(in), test_type_name(out), path_name, rows,
               cols, layout, what);
    }
}

/* Compares element or word i of got and want; a NaN matches any NaN. */

typedef enum { ALIGNED, OFFSET, IN_PLACE } layout;
static const char *const LAYOUT_NAMES[] = {"aligned", "offset", "in-place"};

/* Storage: inputs and outputs with room for an offset and a guard. */
typedef struct {
    unsigned char *x, *g, *out, *want;
    float *wide_x, *wide_g, *ref;
    size_t capacity;
} workspace;

static void check_forward(const test_case *c, const bq_quantizer *q, bq_dtype in, bq_dtype out, size_t rows,
                          size_t cols, layout l, workspace *w, uint64_t seed) {
    size_t n = rows * cols;
    if (l == IN_PLACE && (out == BQ_BIT || test_elem_size(in) != test_elem_size(out))) return;
    if (l == IN_PLACE && path.kind == TEST_PATH_DEVICE && out != in) return;
    test_rng r = test_rng_seed(seed);
    size_t off_x = l == OFFSET ? test_elem_size(in) : 0, off_y = l == OFFSET ? test_elem_size(out) : 0;
    unsigned char *x = w->x + off_x;
    make_inputs(&r, in, x, n);
    for (size_t i = 0; i < n; i++)
        w->wide_x[i] = test_load(in, x, i);
    if (ref_forward(c->q->name, &c->p, w->wide_x, w->ref, n) != BQ_OK) {
        fail("the reference failed", c, "fwd", in, out, rows, cols, LAYOUT_NAMES[l]);
        return;
    }
    size_t ybytes = test_tensor_bytes(out, rows, cols);
    test_pack_reference(out, w->ref, w->want, rows, cols);
    unsigned char *y = l == IN_PLACE ? x : w->out + off_y;
    unsigned char *x_copy = w->g; /* the input, to check it comes back unchanged */
    memcpy(x_copy, x, n * test_elem_size(in));
    if (l != IN_PLACE) memset(y, GUARD, ybytes + GUARD_BYTES);
    else memset(y + ybytes, GUARD, GUARD_BYTES);
    bq_status s = call_forward(q, in, x, out, y, rows, cols);
    char what[256];
    if (s != BQ_OK) {
        snprintf(what, sizeof what, "status %d (%s)", (int)s, bq_last_error());
        fail(what, c, "fwd", in, out, rows, cols, LAYOUT_NAMES[l]);
        return;
    }
    size_t count = out == BQ_BIT ? ybytes / 4 : n, bad = 0, first = 0;
    for (size_t i = 0; i < count; i++) {
        if (!test_same_element(out, y, w->want, i) && bad++ == 0) first = i;
    }
    int ok = bad == 0;
    if (!ok) {
        if (out == BQ_BIT) {
            uint32_t got, want;
            memcpy(&got, y + 4 * first, 4);
            memcpy(&want, w->want + 4 * first, 4);
            snprintf(what, sizeof what, "%zu words differ, first %zu: %08x, want %08x", bad, first, got, want);
        } else {
            snprintf(what, sizeof what, "%zu mismatches, first i=%zu x=%a got=%a want=%a (ref f32 %a)", bad, first,
                     (double)w->wide_x[first], (double)test_load(out, y, first), (double)test_load(out, w->want, first),
                     (double)w->ref[first]);
        }
        fail(what, c, "fwd", in, out, rows, cols, LAYOUT_NAMES[l]);
    }
    if (!test_bytes_are(y + ybytes, GUARD_BYTES, GUARD)) {
        ok = 0;
        fail("wrote past the output", c, "fwd", in, out, rows, cols, LAYOUT_NAMES[l]);
    }
    if (l != IN_PLACE && memcmp(x_copy, x, n * test_elem_size(in)) != 0) {
        ok = 0;
        fail("changed x", c, "fwd", in, out, rows, cols, LAYOUT_NAMES[l]);
    }
    if (ok) passed++;
}

static void check_backward(const test_case *c, const bq_quantizer *q, bq_dtype t, size_t n, layout l, workspace *w,
                           uint64_t seed) {
    test_rng r = test_rng_seed(seed);
    size_t es = test_elem_size(t), off = l == OFFSET ? es : 0;
    unsigned char *x = w->x + off, *g = w->g + off;
    make_inputs(&r, t, x, n);
    make_inputs(&r, t, g, n);
    for (size_t i = 0; i < n; i++) {
        w->wide_x[i] = test_load(t, x, i);
        w->wide_g[i] = test_load(t, g, i);
    }
    int swish = strcmp(c->q->name, "swishsign") == 0;
    bq_status s;
    if (swish) { /* the same path's float32 result, within the spec's tolerance of the reference */
        s = path.kind == TEST_PATH_CPU    ? bq_backward(q, w->wide_x, w->wide_g, w->ref, n)
            : path.kind == TEST_PATH_HOST ? bq_device_backward_host(q, path.backend, w->wide_x, w->wide_g, w->ref, n)
                                : BQ_OK;
        if (path.kind == TEST_PATH_DEVICE) s = call_backward(q, BQ_F32, w->wide_x, w->wide_g, w->ref, n);
    } else {
        s = ref_backward(c->q->name, &c->p, w->wide_x, w->wide_g, w->ref, n);
    }
    if (s != BQ_OK) {
        fail("the float32 result failed", c, "bwd", t, t, 1, n, LAYOUT_NAMES[l]);
        return;
    }
    for (size_t i = 0; i < n; i++)
        test_store(t, w->want, i, w->ref[i]);
    unsigned char *dx = l == IN_PLACE ? g : w->out + off;
    unsigned char *x_copy = malloc(n * es + 1);
    memcpy(x_copy, x, n * es);
    memset(dx + n * es, GUARD, GUARD_BYTES);
    if (l != IN_PLACE) memset(dx, GUARD, n * es);
    s = call_backward(q, t, x, g, dx, n);
    char what[256];
    if (s != BQ_OK) {
        snprintf(what, sizeof what, "status %d (%s)", (int)s, bq_last_error());
        fail(what, c, "bwd", t, t, 1, n, LAYOUT_NAMES[l]);
        free(x_copy);
        return;
    }
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (!test_same_element(t, dx, w->want, i) && bad++ == 0) first = i;
    }
    int ok = bad == 0;
    if (!ok) {
        snprintf(what, sizeof what, "%zu mismatches, first i=%zu x=%a g=%a got=%a want=%a", bad, first,
                 (double)w->wide_x[first], (double)w->wide_g[first], (double)test_load(t, dx, first),
                 (double)test_load(t, w->want, first));
        fail(what, c, "bwd", t, t, 1, n, LAYOUT_NAMES[l]);
    }
    if (!test_bytes_are(dx + n * es, GUARD_BYTES, GUARD)) {
        ok = 0;
        fail("wrote past the output", c, "bwd", t, t, 1, n, LAYOUT_NAMES[l]);
    }
    if (memcmp(x_copy, x, n * es) != 0) {
        ok = 0;
        fail("changed x", c, "bwd", t, t, 1, n, LAYOUT_NAMES[l]);
    }
    free(x_copy);
    if (ok) passed++;
}

/* ---- cases ---- */

static size_t make_cases(const test_quantizer *q, test_case *cases) {
    size_t count = 0;
    const float thresholds[] = {0.0f, 1.0f, 1.3f};
    int sets = test_reads(q, "swish_beta") ? 2 : test_reads(q, "dorefa_bits") ? 5 : test_reads(q, "training") ? 3 : 1;
    for (int s = 0; s < sets; s++) {
        for (int t = 0; t < 3; t++) {
            test_case *c = &cases[count++];
            c->q = q;
            c->p = test_default_params();
            c->p.cancel_threshold = thresholds[t];
            char fields[48] = "";
            if (test_reads(q, "swish_beta")) {
                c->p.swish_beta = s ? 0.3f : 5.0f;
                snprintf(fields, sizeof fields, " beta=%g", c->p.swish_beta);
            } else if (test_reads(q, "dorefa_bits")) {
                const int bits[] = {1, 2, 4, 8, 24};
                c->p.dorefa_bits = bits[s];
                snprintf(fields, sizeof fields, " bits=%d", bits[s]);
            } else if (test_reads(q, "training")) {
                c->p.progressive_scale = s == 1 ? 0.05 : 0.0;
                c->p.training = s != 2;
                snprintf(fields, sizeof fields, " scale=%g train=%d", c->p.progressive_scale, c->p.training);
            }
            snprintf(c->desc, sizeof c->desc, "%s%s t=%g", q->name, fields, c->p.cancel_threshold);
        }
    }
    return count;
}

/* Whether the quantizer's forward has outputs of type out (I8 and BIT: only the sign-valued ones). */
static int has_output(const test_case *c, bq_dtype out) {
    if (out != BQ_I8 && out != BQ_BIT) return 1;
    const char *name = c->q->name;
    if (strcmp(name, "progressive_sign") == 0) return !c->p.training;
    return strcmp(name, "sign") == 0 || strcmp(name, "approxsign") == 0 || strcmp(name, "steheaviside") == 0 ||
           strcmp(name, "swishsign") == 0;
}

static const size_t LENGTHS[] = {0, 1, 7, 31, 32, 33, 63, 64, 65, 1023, 1025};
#define LENGTH_COUNT (sizeof LENGTHS / sizeof LENGTHS[0])
#define LARGE_LENGTH ((size_t)2000003)
/* Rows x cols: Larq Compute Engine's bitpack widths (1, 3, 16, 32, 33, 63, 64, 128), longer rows, a row
 * longer than the chunked tests' chunks, and enough rows for the parallel path of blocks of rows. */
static const size_t SHAPES[][2] = {{3, 1},  {5, 3},   {4, 16},   {4, 32},   {3, 33},    {7, 63},
                                   {2, 64}, {3, 128}, {9, 65},   {2, 1025}, {3, 2500},  {12000, 33}};
#define SHAPE_COUNT (sizeof SHAPES / sizeof SHAPES[0])

static void run_case(const test_case *c, int large, workspace *w, uint64_t *seed) {
    bq_quantizer *q = NULL;
    if (bq_create(c->q->name, &c->p, &q) != BQ_OK) {
        fail(bq_last_error(), c, "create", BQ_F32, BQ_F32, 0, 0, "");
        return;
    }
    const bq_dtype floats[] = {BQ_F32, BQ_F16, BQ_BF16};
    for (int xi = 0; xi < 3; xi++) {
        bq_dtype in = floats[xi];
        for (bq_dtype out = BQ_F32; out <= BQ_BIT; out++) {
            if (!has_output(c, out)) continue;
            int first_pair_case = c->p.cancel_threshold == 0.0f; /* the forward ignores the threshold */
            if (!first_pair_case) continue;
            for (size_t li = 0; li < LENGTH_COUNT; li++) {
                for (layout l = ALIGNED; l <= IN_PLACE; l++) {
                    if (path.kind == TEST_PATH_DEVICE && l == OFFSET) continue;
                    check_forward(c, q, in, out, 1, LENGTHS[li], l, w, ++*seed);
                }
            }
            for (size_t si = 0; si < SHAPE_COUNT; si++)
                check_forward(c, q, in, out, SHAPES[si][0], SHAPES[si][1], path.kind == TEST_PATH_DEVICE ? ALIGNED : OFFSET, w,
                              ++*seed);
            if (large) check_forward(c, q, in, out, 1, LARGE_LENGTH, ALIGNED, w, ++*seed);
        }
        for (size_t li = 0; li < LENGTH_COUNT; li++) {
            for (layout l = ALIGNED; l <= IN_PLACE; l++) {
                if (path.kind == TEST_PATH_DEVICE && l == OFFSET) continue;
                check_backward(c, q, in, LENGTHS[li], l, w, ++*seed);
            }
        }
        if (large) check_backward(c, q, in, LARGE_LENGTH, ALIGNED, w, ++*seed);
    }
    bq_destroy(q);
}

/* ---- errors ---- */

static void expect(const char *label, bq_status got, bq_status want, const unsigned char *out, size_t bytes) {
    int untouched = out == NULL || test_bytes_are(out, bytes, GUARD);
    if (got == want && *bq_last_error() != '\0' && untouched) {
        passed++;
        return;
    }
    failed++;
    if (printed++ < MAX_PRINTED) {
        printf("FAIL %s: status %d (want %d), message \"%s\"%s\n", label, (int)got, (int)want, bq_last_error(),
               untouched ? "" : ", output written");
    }
}

static void check_errors(void) {
    bq_quantizer *sign = NULL, *dorefa = NULL, *progressive = NULL;
    bq_params train = test_default_params();
    if (bq_create("sign", NULL, &sign) != BQ_OK || bq_create("inputdorefa", NULL, &dorefa) != BQ_OK ||
        bq_create("progressive_sign", &train, &progressive) != BQ_OK) {
        printf("FAIL bq_create: %s\n", bq_last_error());
        failed++;
        return;
    }
    float x[64] = {0};
    unsigned char y[256];
    memset(y, GUARD, sizeof y);
    expect("unknown x_type", bq_forward_typed(sign, (bq_dtype)7, x, BQ_F32, y, 1, 8), BQ_E_INVALID, y, sizeof y);
    expect("unknown y_type", bq_forward_typed(sign, BQ_F32, x, (bq_dtype)-1, y, 1, 8), BQ_E_INVALID, y, sizeof y);
    expect("int8 input", bq_forward_typed(sign, BQ_I8, x, BQ_F32, y, 1, 8), BQ_E_UNSUPPORTED, y, sizeof y);
    expect("bit input", bq_forward_typed(sign, BQ_BIT, x, BQ_BIT, y, 1, 8), BQ_E_UNSUPPORTED, y, sizeof y);
    expect("inputdorefa to int8", bq_forward_typed(dorefa, BQ_F32, x, BQ_I8, y, 1, 8), BQ_E_UNSUPPORTED, y, sizeof y);
    expect("inputdorefa to bits", bq_forward_typed(dorefa, BQ_F16, x, BQ_BIT, y, 2, 8), BQ_E_UNSUPPORTED, y, sizeof y);
    expect("progressive training to bits", bq_forward_typed(progressive, BQ_F32, x, BQ_BIT, y, 1, 8),
           BQ_E_UNSUPPORTED, y, sizeof y);
    if (strstr(bq_last_error(), "progressive_sign") == NULL || strstr(bq_last_error(), "BQ_BIT") == NULL) {
        printf("FAIL the message should name the quantizer and the type: %s\n", bq_last_error());
        failed++;
    }
    expect("NULL quantizer", bq_forward_typed(NULL, BQ_F32, x, BQ_F32, y, 1, 8), BQ_E_INVALID, y, sizeof y);
    expect("NULL x", bq_forward_typed(sign, BQ_F32, NULL, BQ_F32, y, 1, 8), BQ_E_INVALID, y, sizeof y);
    expect("NULL y", bq_forward_typed(sign, BQ_F32, x, BQ_BIT, NULL, 3, 5), BQ_E_INVALID, NULL, 0);
    expect("overflow", bq_forward_typed(sign, BQ_F32, x, BQ_F32, y, SIZE_MAX / 2, 3), BQ_E_INVALID, y, sizeof y);
    expect("in place across sizes", bq_forward_typed(sign, BQ_F32, x, BQ_F16, x, 1, 8), BQ_E_INVALID, NULL, 0);
    expect("in place to bits", bq_forward_typed(sign, BQ_F32, x, BQ_BIT, x, 1, 64), BQ_E_INVALID, NULL, 0);
    expect("backward unknown type", bq_backward_typed(sign, (bq_dtype)5, x, x, y, 8), BQ_E_INVALID, y, sizeof y);
    expect("backward int8", bq_backward_typed(sign, BQ_I8, x, x, y, 8), BQ_E_UNSUPPORTED, y, sizeof y);
    expect("backward NULL grad_y", bq_backward_typed(sign, BQ_F16, x, NULL, y, 8), BQ_E_INVALID, y, sizeof y);
    expect("backward NULL grad_x", bq_backward_typed(sign, BQ_BF16, x, x, NULL, 8), BQ_E_INVALID, NULL, 0);
    /* Empty tensors are fine with NULL pointers, rows or cols 0. */
    bq_status s0 = bq_forward_typed(sign, BQ_F16, NULL, BQ_BIT, NULL, 0, 100);
    bq_status s1 = bq_forward_typed(sign, BQ_F16, NULL, BQ_BIT, NULL, 100, 0);
    bq_status s2 = bq_backward_typed(sign, BQ_BF16, NULL, NULL, NULL, 0);
    if (s0 == BQ_OK && s1 == BQ_OK && s2 == BQ_OK) {
        passed++;
    } else {
        printf("FAIL empty tensors: %d %d %d (%s)\n", (int)s0, (int)s1, (int)s2, bq_last_error());
        failed++;
    }
    bq_destroy(sign);
    bq_destroy(dorefa);
    bq_destroy(progressive);
}

/* ---- main ---- */


/* The reference conversions themselves, on values whose results the IEEE definitions fix. */
static void check_conversions(void) {
    const struct {
        float v;
        uint16_t f16, bf16;
    } known[] = {
        {1.0f, 0x3c00, 0x3f80},         {-2.0f, 0xc000, 0xc000},      {65504.0f, 0x7bff, 0x4780},
        {65519.99f, 0x7bff, 0x4780},    {65520.0f, 0x7c00, 0x4780},   {0x1p-24f, 0x0001, 0x3380},
        {0x1p-25f, 0x0000, 0x3300},     {0x1.8p-25f, 0x0001, 0x3340}, {-0.0f, 0x8000, 0x8000},
        {1.00048828125f, 0x3c00, 0x3f80} /* a tie: to even */, {1.001953125f, 0x3c02, 0x3f80},
        {0x1.01p0f, 0x3c04, 0x3f80} /* bf16 tie 1 + 2^-8: to even */, {0x1.03p0f, 0x3c0c, 0x3f82},
        {0x1p-133f, 0x0000, 0x0001},    {3e38f, 0x7c00, 0x7f62},      {INFINITY, 0x7c00, 0x7f80},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uint16_t h = test_round_to_16(known[i].v, 5, 10), b = test_round_to_16(known[i].v, 8, 7);
        if (h != known[i].f16 || b != known[i].bf16) {
            printf("FAIL reference conversion of %a: f16 %04x (want %04x), bf16 %04x (want %04x)\n",
                   (double)known[i].v, h, known[i].f16, b, known[i].bf16);
            failed++;
        } else {
            passed++;
        }
    }
    /* Every 16-bit pattern widens and rounds back to itself (NaNs to a NaN). */
    for (uint32_t u = 0; u < 65536; u++) {
        for (int bf = 0; bf < 2; bf++) {
            float v = bf ? test_widen_16((uint16_t)u, 8, 7) : test_widen_16((uint16_t)u, 5, 10);
            uint16_t back = bf ? test_round_to_16(v, 8, 7) : test_round_to_16(v, 5, 10);
            uint32_t bf_bits = u << 16;
            float direct;
            memcpy(&direct, &bf_bits, 4);
            if ((!isnan(v) && back != u) || (bf && !isnan(v) && memcmp(&v, &direct, 4) != 0)) {
                printf("FAIL reference round trip of %s %04x\n", bf ? "bf16" : "f16", u);
                failed++;
                return;
            }
        }
    }
    passed++;
}

int main(int argc, char **argv) {
    int chosen = test_path_choose(argc, argv, "test_typed", &path);
    if (chosen != 0) return chosen;
    path_name = path.name;
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) != BQ_OK) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    if (path.kind == TEST_PATH_CPU) path_name = variant;
    const char *large_env = getenv("BITQUANT_TEST_LARGE");
    int large = large_env == NULL || strcmp(large_env, "0") != 0;
    size_t most = LARGE_LENGTH > 12000 * 33 ? LARGE_LENGTH : 12000 * 33;
    workspace w;
    w.capacity = most;
    size_t bytes = most * 4 + 2 * GUARD_BYTES;
    w.x = malloc(bytes), w.g = malloc(bytes), w.out = malloc(bytes), w.want = malloc(bytes);
    /* The float32 arrays get the guard's room too: SwishSign's float32 result goes through call_backward, whose
     * device path uploads and downloads the guard bytes after each array (ASan saw PoCL read past them). */
    w.wide_x = malloc(bytes), w.wide_g = malloc(bytes), w.ref = malloc(bytes);
    if (!w.x || !w.g || !w.out || !w.want || !w.wide_x || !w.wide_g || !w.ref) {
        printf("FAIL out of memory\n");
        return 1;
    }
    check_conversions();
    uint64_t seed = 1;
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        test_case cases[16];
        size_t count = make_cases(&TEST_QUANTIZERS[qi], cases);
        for (size_t ci = 0; ci < count; ci++)
            run_case(&cases[ci], large && ci == 0, &w, &seed);
    }
    if (path.kind == TEST_PATH_CPU) check_errors();
    printf("typed[%s]: %d passed, %d failed\n", path_name, passed, failed);
    test_device_close(path.device);
    free(w.x), free(w.g), free(w.out), free(w.want), free(w.wide_x), free(w.wide_g), free(w.ref);
    return failed == 0 ? 0 : 1;
}
