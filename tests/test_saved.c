/* Saved-bit training (bq_saved_words, bq_forward_save, bq_backward_saved, their typed and GPU forms) against
 * the library's own bq_forward_typed and bq_backward_typed on the CPU (which test_conformance and test_typed
 * hold to the reference). For every quantizer of the kernel table that saves bits, at float32, float16 and
 * bfloat16, with cancellation off and at the golden tests' thresholds (0.5, 1, 1.3) and +inf, over a few
 * parameter sets:
 *   - bq_saved_words is the header's rule (planes * ceil(n / 32));
 *   - y is bit for bit bq_forward's (any NaN matching any NaN);
 *   - saved holds exactly the header's layout: plane p, bit i % 32 of word i / 32, [|x_i| <= a_p], padding 0;
 *   - grad_x from saved is bit for bit bq_backward's on the same x;
 *   - nothing is written past y, saved or grad_x;
 * on the spec's edge values and random values around the thresholds for x and grad_y (for 16-bit types also
 * random bit patterns: every NaN, infinity, subnormal and -0 of the type), at lengths around every word and
 * vector width and across the fused kernel's blocks and parallel chunks, aligned and one element off, out of
 * place and in place (y == x, grad_x == grad_y). Then the errors (CPU path): unsupported quantizers and types,
 * NULL pointers, each with a message and every output untouched.
 *
 * Usage: test_saved [cpu|cuda-host|opencl-host|cuda-device|opencl-device]; a GPU path without a device skips
 * (exit 77). BITQUANT_TEST_LARGE=0 leaves out the large length. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "device_memory.h"
#include "test_common.h"

#define GUARD_BYTES 64
#define GUARD 0xA5
#define MAX_PRINTED 20

static int passed, failed, printed;
static test_path path;

static void fail(const char *fmt, const char *a, const char *b, size_t n, size_t i) {
    failed++;
    if (printed++ < MAX_PRINTED) {
        printf("FAIL ");
        printf(fmt, a, b, n, i);
        printf("\n");
    }
}

/* Element i of a float array of type t as its bits, and whether it is a NaN. */
static uint32_t bits_at(bq_dtype t, const void *p, size_t i) {
    if (t == BQ_F32) {
        uint32_t u;
        memcpy(&u, (const char *)p + 4 * i, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return h;
}

static int is_nan_bits(bq_dtype t, uint32_t b) {
    switch (t) {
    case BQ_F32: return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0;
    case BQ_F16: return (b & 0x7c00u) == 0x7c00u && (b & 0x03ffu) != 0;
    default: return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0;
    }
}

static int same_element(bq_dtype t, const void *a, const void *b, size_t i) {
    uint32_t x = bits_at(t, a, i), y = bits_at(t, b, i);
    return x == y || (is_nan_bits(t, x) && is_nan_bits(t, y));
}

/* Element i widened to float32, and v stored as element i, by test_common.h's conversions. */
static float value_at(bq_dtype t, const void *p, size_t i) {
    if (t == BQ_F32) {
        uint32_t b = bits_at(t, p, i);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    return t == BQ_F16 ? test_widen_16((uint16_t)bits_at(t, p, i), 5, 10) : test_widen_16((uint16_t)bits_at(t, p, i), 8, 7);
}

static void put(bq_dtype t, void *p, size_t i, float v) {
    if (t == BQ_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
        return;
    }
    uint16_t h = t == BQ_F16 ? test_round_to_16(v, 5, 10) : test_round_to_16(v, 8, 7);
    memcpy((char *)p + 2 * i, &h, 2);
}

static const float EDGES[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 1.3f, -1.3f, 0x1.000002p0f, 0x1.fffffep-1f,
                              -0x1.000002p0f, 0x1.4cccccp0f, 0x1.4cccccp0f * -1.0f, 0x1.4ccccep0f, 0x1.000002p-1f,
                              0x1.fffffep-2f, 2.0f, -2.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX,
                              FLT_MIN, 1e-40f, -1e-40f, 0.25f, 0.75f, 1e30f};
#define EDGE_COUNT (sizeof EDGES / sizeof EDGES[0])

/* x: edge values, then values in [-2, 2] (every region of every threshold here), and for 16-bit types one in
 * four a raw bit pattern. g likewise from another stream. */
static void fill(bq_dtype t, void *p, size_t n, uint64_t seed) {
    test_rng r = test_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t k = test_rng_below(&r, 8);
        if (i < EDGE_COUNT || k == 0) {
            put(t, p, i, EDGES[i < EDGE_COUNT ? i : test_rng_below(&r, EDGE_COUNT)]);
        } else if (t != BQ_F32 && k == 1) {
            uint16_t h = (uint16_t)test_rng_next(&r);
            memcpy((char *)p + 2 * i, &h, 2);
        } else {
            put(t, p, i, test_rng_uniform(&r, -2.0f, 2.0f));
        }
    }
}

/* The header's rule: the planes' thresholds for a quantizer at cancel_threshold t; returns the plane count. */
static int expected_planes(const char *name, float t, float a[2]) {
    if (strcmp(name, "steheaviside") == 0) {
        if (!(t > 0.0f)) return a[0] = 1.0f, 1;
        if (t <= 1.0f) return a[0] = t, 1;
        return a[0] = 1.0f, a[1] = t, 2;
    }
    if (t > 0.0f) return a[0] = t, 1;
    return 0;
}

/* Whether the table's row of the quantizer has a backward that can run from saved bits (need not VALUE). */
static int saves_bits(const char *name) {
#define BQ_QUANTIZER(q, forward, backward, mapping, fields, save, need) \
    if (strcmp(#q, name) == 0) return strcmp(#need, "VALUE") != 0;
#include "kernels.def"
    return 0;
}

/* A buffer on the path's side: host memory, or a device buffer, with GUARD bytes after `bytes`. */
typedef struct {
    unsigned char *host; /* the host copy, bytes + GUARD_BYTES (+ one element of offset) */
    void *device;
    size_t bytes, offset;
} buffer;

static int make(buffer *b, size_t bytes, size_t offset) {
    b->bytes = bytes;
    b->offset = offset;
    b->host = malloc(offset + bytes + GUARD_BYTES);
    b->device = NULL;
    if (b->host == NULL) return 1;
    memset(b->host, GUARD, offset + bytes + GUARD_BYTES);
    if (path.kind == TEST_PATH_DEVICE && bytes > 0) {
        b->device = test_device_alloc(path.device, bytes + GUARD_BYTES);
        if (b->device == NULL) return 1;
        if (test_device_upload(path.device, b->device, b->host + offset, bytes + GUARD_BYTES) != 0) return 1;
    }
    return 0;
}

static void *data(buffer *b) { return b->host + b->offset; }
/* What the call is given: the host pointer, or the device buffer (NULL for 0 bytes). */
static void *arg(buffer *b) { return path.kind == TEST_PATH_DEVICE ? b->device : data(b); }

static int upload(buffer *b) {
    if (path.kind != TEST_PATH_DEVICE || b->bytes == 0) return 0;
    return test_device_upload(path.device, b->device, data(b), b->bytes);
}

static int download(buffer *b) {
    if (path.kind != TEST_PATH_DEVICE || b->bytes == 0) return 0;
    return test_device_download(path.device, data(b), b->device, b->bytes + GUARD_BYTES);
}

static void drop(buffer *b) {
    if (b->device != NULL) test_device_free(path.device, b->device);
    free(b->host);
}

static int guard_intact(const buffer *b) {
    for (size_t i = 0; i < GUARD_BYTES; i++) {
        if (b->host[b->offset + b->bytes + i] != GUARD) return 0;
    }
    return 1;
}

static bq_status call_forward_save(const bq_quantizer *q, bq_dtype t, void *x, void *y, void *saved, size_t n) {
    switch (path.kind) {
    case TEST_PATH_CPU: return bq_forward_save_typed(q, t, x, y, saved, n);
    case TEST_PATH_HOST: return bq_device_forward_save_host(q, path.backend, t, x, y, saved, n);
    default:
        if (path.backend == BQ_BACKEND_CUDA)
            return bq_cuda_forward_save(q, t, x, y, saved, n, test_device_queue(path.device));
        return bq_opencl_forward_save(q, test_device_context(path.device), test_device_queue(path.device), t, x, y,
                                      saved, n);
    }
}

static bq_status call_backward_saved(const bq_quantizer *q, bq_dtype t, void *saved, void *g, void *dx, size_t n) {
    switch (path.kind) {
    case TEST_PATH_CPU: return bq_backward_saved_typed(q, t, saved, g, dx, n);
    case TEST_PATH_HOST: return bq_device_backward_saved_host(q, path.backend, t, saved, g, dx, n);
    default:
        if (path.backend == BQ_BACKEND_CUDA)
            return bq_cuda_backward_saved(q, t, saved, g, dx, n, test_device_queue(path.device));
        return bq_opencl_backward_saved(q, test_device_context(path.device), test_device_queue(path.device), t, saved,
                                        g, dx, n);
    }
}

/* One case: quantizer q (named, with params p) at type t over n elements, offset by one element if `offset`,
 * out of place or in place. */
static void check_case(const char *name, const bq_params *p, const bq_quantizer *q, bq_dtype t, size_t n, int offset,
                       int in_place, uint64_t seed) {
    char what[200];
    snprintf(what, sizeof what, "%s t=%g bits=%d training=%d %s %s%s", name, (double)p->cancel_threshold,
             p->dorefa_bits, p->training, test_type_name(t), in_place ? "in place" : "out of place",
             offset ? ", offset" : "");
    const size_t es = test_elem_size(t), off = offset ? es : 0;
    float a[2] = {0.0f, 0.0f};
    int planes = expected_planes(name, p->cancel_threshold, a);
    size_t plane = (n + 31) / 32, words = 0;
    if (bq_saved_words(q, n, &words) != BQ_OK || words != (size_t)planes * plane) {
        fail("%s: bq_saved_words %s for n = %zu (%zu)", what, bq_last_error(), n, words);
        return;
    }
    buffer x, y, s, g, dx;
    unsigned char *x0 = malloc(n * es + 1), *g0 = malloc(n * es + 1);
    unsigned char *y_ref = malloc(n * es + 1), *dx_ref = malloc(n * es + 1);
    if (x0 == NULL || g0 == NULL || y_ref == NULL || dx_ref == NULL || make(&x, n * es, off) ||
        make(&y, n * es, off) || make(&s, words * 4, 0) || make(&g, n * es, off) || make(&dx, n * es, off)) {
        printf("[SKIP] %s: out of memory at n = %zu\n", what, n);
        exit(77);
    }
    fill(t, x0, n, seed);
    fill(t, g0, n, seed ^ 0x5bd1e995u);
    if (bq_forward_typed(q, t, x0, t, y_ref, 1, n) != BQ_OK || bq_backward_typed(q, t, x0, g0, dx_ref, n) != BQ_OK) {
        fail("%s: the CPU calls failed: %s (n = %zu, %zu)", what, bq_last_error(), n, 0);
        goto out;
    }
    memcpy(data(&x), x0, n * es);
    memcpy(data(&g), g0, n * es);
    if (upload(&x) || upload(&g)) {
        fail("%s: upload failed %s (n = %zu, %zu)", what, "", n, 0);
        goto out;
    }
    buffer *yb = in_place ? &x : &y, *dxb = in_place ? &g : &dx;
    bq_status st = call_forward_save(q, t, arg(&x), arg(yb), words ? arg(&s) : NULL, n);
    if (st == BQ_OK) st = call_backward_saved(q, t, words ? arg(&s) : NULL, arg(&g), arg(dxb), n);
    if (st != BQ_OK) {
        fail("%s: status %s (n = %zu, %zu)", what, bq_last_error(), n, (size_t)st);
        goto out;
    }
    if (download(yb) || download(&s) || download(dxb)) {
        fail("%s: download failed %s (n = %zu, %zu)", what, "", n, 0);
        goto out;
    }
    size_t bad_y = 0, bad_s = 0, bad_dx = 0, first = n;
    for (size_t i = 0; i < n; i++) {
        if (!same_element(t, data(yb), y_ref, i)) bad_y++, first = first < i ? first : i;
        if (!same_element(t, data(dxb), dx_ref, i)) bad_dx++, first = first < i ? first : i;
    }
    const uint32_t *sw = (const uint32_t *)(const void *)data(&s);
    for (int pl = 0; pl < planes; pl++) {
        for (size_t w = 0; w < plane; w++) {
            uint32_t want = 0;
            for (size_t b = 0; b < 32 && w * 32 + b < n; b++) {
                float v = value_at(t, x0, w * 32 + b);
                if (fabsf(v) <= a[pl]) want |= 1u << b;
            }
            uint32_t got;
            memcpy(&got, &sw[(size_t)pl * plane + w], 4);
            if (got != want) bad_s++;
        }
    }
    if (bad_y || bad_s || bad_dx) {
        char counts[160];
        snprintf(counts, sizeof counts, "%zu y, %zu saved words, %zu grad_x wrong", bad_y, bad_s, bad_dx);
        fail("%s: %s (n = %zu, first element %zu)", what, counts, n, first);
    } else if (!guard_intact(yb) || !guard_intact(&s) || !guard_intact(dxb)) {
        fail("%s: wrote past an output%s (n = %zu, %zu)", what, "", n, 0);
    } else {
        passed++;
    }
out:
    drop(&x), drop(&y), drop(&s), drop(&g), drop(&dx);
    free(x0), free(g0), free(y_ref), free(dx_ref);
}

static void check_errors(void) {
    bq_quantizer *sign = NULL, *approx = NULL, *swish = NULL, *heavi = NULL;
    bq_params p;
    bq_params_init(&p);
    p.cancel_threshold = 1.0f;
    if (bq_create("sign", &p, &sign) != BQ_OK || bq_create("approxsign", &p, &approx) != BQ_OK ||
        bq_create("swishsign", NULL, &swish) != BQ_OK || bq_create("steheaviside", NULL, &heavi) != BQ_OK) {
        printf("FAIL bq_create: %s\n", bq_last_error());
        failed++;
        return;
    }
    float x[40], y[40], g[40], dx[40];
    uint32_t saved[4];
    for (int i = 0; i < 40; i++) x[i] = g[i] = (float)i - 20.0f;
    size_t words = 12345;
    const struct {
        const char *what;
        bq_status want, got;
    } cases[] = {
        {"bq_saved_words(NULL)", BQ_E_INVALID, bq_saved_words(NULL, 40, &words)},
        {"bq_saved_words(words NULL)", BQ_E_INVALID, bq_saved_words(sign, 40, NULL)},
        {"bq_saved_words(approxsign)", BQ_E_UNSUPPORTED, bq_saved_words(approx, 40, &words)},
        {"bq_saved_words(swishsign)", BQ_E_UNSUPPORTED, bq_saved_words(swish, 40, &words)},
        {"bq_forward_save(NULL quantizer)", BQ_E_INVALID, bq_forward_save(NULL, x, y, saved, 40)},
        {"bq_forward_save(approxsign)", BQ_E_UNSUPPORTED, bq_forward_save(approx, x, y, saved, 40)},
        {"bq_forward_save(swishsign)", BQ_E_UNSUPPORTED, bq_forward_save(swish, x, y, saved, 40)},
        {"bq_forward_save(x NULL)", BQ_E_INVALID, bq_forward_save(sign, NULL, y, saved, 40)},
        {"bq_forward_save(y NULL)", BQ_E_INVALID, bq_forward_save(sign, x, NULL, saved, 40)},
        {"bq_forward_save(saved NULL, 2 words)", BQ_E_INVALID, bq_forward_save(sign, x, y, NULL, 40)},
        {"bq_forward_save(steheaviside, saved NULL)", BQ_E_INVALID, bq_forward_save(heavi, x, y, NULL, 40)},
        {"bq_forward_save_typed(I8)", BQ_E_UNSUPPORTED, bq_forward_save_typed(sign, BQ_I8, x, y, saved, 40)},
        {"bq_forward_save_typed(BIT)", BQ_E_UNSUPPORTED, bq_forward_save_typed(sign, BQ_BIT, x, y, saved, 40)},
        {"bq_forward_save_typed(99)", BQ_E_INVALID, bq_forward_save_typed(sign, (bq_dtype)99, x, y, saved, 40)},
        {"bq_backward_saved(NULL quantizer)", BQ_E_INVALID, bq_backward_saved(NULL, saved, g, dx, 40)},
        {"bq_backward_saved(approxsign)", BQ_E_UNSUPPORTED, bq_backward_saved(approx, saved, g, dx, 40)},
        {"bq_backward_saved(saved NULL)", BQ_E_INVALID, bq_backward_saved(sign, NULL, g, dx, 40)},
        {"bq_backward_saved(grad_y NULL)", BQ_E_INVALID, bq_backward_saved(sign, saved, NULL, dx, 40)},
        {"bq_backward_saved(grad_x NULL)", BQ_E_INVALID, bq_backward_saved(sign, saved, g, NULL, 40)},
        {"bq_backward_saved_typed(I8)", BQ_E_UNSUPPORTED, bq_backward_saved_typed(sign, BQ_I8, saved, g, dx, 40)},
        {"bq_backward_saved_typed(-1)", BQ_E_INVALID, bq_backward_saved_typed(sign, (bq_dtype)-1, saved, g, dx, 40)},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].got == cases[c].want) {
            passed++;
        } else {
            failed++;
            printf("FAIL %s: status %d, want %d (%s)\n", cases[c].what, (int)cases[c].got, (int)cases[c].want,
                   bq_last_error());
        }
    }
    /* Every rejected call above left y, saved, dx and words alone (they were never written). */
    int untouched = words == 12345;
    for (int i = 0; i < 40; i++) untouched &= x[i] == (float)i - 20.0f && g[i] == (float)i - 20.0f;
    if (untouched) passed++;
    else failed++, printf("FAIL a rejected call wrote its outputs\n");
    /* A rejected call says why. */
    bq_forward_save(approx, x, y, saved, 40);
    if (strstr(bq_last_error(), "approxsign") != NULL) passed++;
    else failed++, printf("FAIL the message for approxsign: \"%s\"\n", bq_last_error());
    bq_forward_save(sign, x, y, NULL, 40);
    if (strstr(bq_last_error(), "saved is NULL") != NULL) passed++;
    else failed++, printf("FAIL the message for saved NULL: \"%s\"\n", bq_last_error());
    /* n = 0 with every pointer NULL; and saved may be NULL where no bits are kept (sign without cancellation). */
    bq_quantizer *plain = NULL;
    bq_create("sign", NULL, &plain);
    if (bq_forward_save(sign, NULL, NULL, NULL, 0) == BQ_OK && bq_backward_saved(sign, NULL, NULL, NULL, 0) == BQ_OK &&
        bq_saved_words(sign, 0, &words) == BQ_OK && words == 0 && bq_forward_save(plain, x, y, NULL, 40) == BQ_OK &&
        bq_backward_saved(plain, NULL, g, dx, 40) == BQ_OK && dx[3] == g[3] && y[3] == -1.0f) {
        passed++;
    } else {
        failed++, printf("FAIL n = 0, or saved NULL without bits: %s\n", bq_last_error());
    }
    bq_destroy(plain), bq_destroy(sign), bq_destroy(approx), bq_destroy(swish), bq_destroy(heavi);
}

int main(int argc, char **argv) {
    int rc = test_path_choose(argc, argv, "test_saved", &path);
    if (rc != 0) return rc;
    const char *large_env = getenv("BITQUANT_TEST_LARGE");
    int large = large_env == NULL || strcmp(large_env, "0") != 0;
    static const size_t lengths[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 96, 127, 128, 129,
                                     255, 256, 257, 511, 1023, 1024, 1025, 4095, 4096, 4097, 4096 + 31, 8191, 8192,
                                     8193, 100003};
    static const float thresholds[] = {0.0f, 0.5f, 1.0f, 1.3f, INFINITY};
    static const bq_dtype types[] = {BQ_F32, BQ_F16, BQ_BF16};
    uint64_t seed = 1;
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        const char *name = TEST_QUANTIZERS[qi].name;
        if (!saves_bits(name)) continue;
        /* the parameter sets: the defaults, and where read 2 and 8 bits, eval mode, a scale */
        bq_params sets[3];
        int nsets = 1;
        sets[0] = test_default_params();
        if (test_reads(&TEST_QUANTIZERS[qi], "dorefa_bits")) {
            sets[nsets] = sets[0], sets[nsets++].dorefa_bits = 2;
            sets[nsets] = sets[0], sets[nsets++].dorefa_bits = 8;
        }
        if (test_reads(&TEST_QUANTIZERS[qi], "training")) {
            sets[nsets] = sets[0], sets[nsets++].training = 0;
            sets[nsets] = sets[0], sets[nsets++].progressive_scale = 0.5;
        }
        for (int si = 0; si < nsets; si++) {
            for (size_t ti = 0; ti < sizeof thresholds / sizeof thresholds[0]; ti++) {
                bq_params p = sets[si];
                p.cancel_threshold = thresholds[ti];
                bq_quantizer *q = NULL;
                if (bq_create(name, &p, &q) != BQ_OK) {
                    printf("FAIL bq_create(%s): %s\n", name, bq_last_error());
                    return 1;
                }
                for (size_t ty = 0; ty < sizeof types / sizeof types[0]; ty++) {
                    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                        size_t n = lengths[li];
                        check_case(name, &p, q, types[ty], n, 0, 0, seed++);
                        if (li % 4 == 1) check_case(name, &p, q, types[ty], n, 0, 1, seed++);
                        if (li % 4 == 3 && path.kind != TEST_PATH_DEVICE) check_case(name, &p, q, types[ty], n, 1, 0, seed++);
                    }
                    if (large && si == 0 && (ti == 0 || ti == 3)) {
                        check_case(name, &p, q, types[ty], 3000017, 0, 0, seed++);
                        check_case(name, &p, q, types[ty], 3000017, 0, 1, seed++);
                    }
                }
                bq_destroy(q);
            }
        }
    }
    if (path.kind == TEST_PATH_CPU) check_errors();
    printf("%d passed, %d failed\n", passed, failed);
    if (path.device != NULL) test_device_close(path.device);
    return failed != 0;
}
