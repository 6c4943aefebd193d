/* The runtime splits n into chunks of at most 2^30 elements (Halide extents are int32); BITQUANT_MAX_CHUNK
 * lowers that chunk for testing. With a chunk of 1000 (ctest sets it; so does this program if it is unset,
 * before the library reads it), every quantizer runs forward and backward at lengths around and across chunk
 * boundaries against the reference, and WeightDoReFa's max must stay global: the largest |x|, or a NaN,
 * sits only in the last chunk (or only in the first, with the output overwriting the input). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"
#include "test_common.h"

static const size_t LENGTHS[] = {999, 1000, 1001, 4321, 100003};
#define LENGTH_COUNT (sizeof LENGTHS / sizeof LENGTHS[0])
#define MAX_LENGTH 100003u
#define MAX_PRINTED 8

static int passed, failed, printed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    if (printed++ < MAX_PRINTED) printf("FAIL %s\n", what);
}

static int outputs_match(const char *name, const bq_params *p, int backward, const float *x, const float *g,
                         const float *ours, const float *ref, size_t n, size_t *first) {
    for (size_t i = 0; i < n; i++) {
        if (!test_output_matches(name, p, backward, x[i], backward ? g[i] : 0.0f, ours[i], ref[i])) {
            *first = i;
            return 0;
        }
    }
    return 1;
}

typedef struct {
    float *x, *g, *out, *ref;
} buffers;

/* x holds no NaN if asked (a NaN would make every WeightDoReFa output NaN). */
static void fill(test_rng *r, float *x, float *g, size_t n, int nan_free) {
    static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, INFINITY, -INFINITY, 1.3f, 3e38f, NAN};
    uint32_t x_specials = nan_free ? 9 : 10;
    for (size_t i = 0; i < n; i++) {
        x[i] = test_rng_below(r, 16) == 0 ? specials[test_rng_below(r, x_specials)] : test_rng_uniform(r, -3.0f, 3.0f);
        g[i] = test_rng_below(r, 16) == 0 ? specials[test_rng_below(r, 10)] : test_rng_uniform(r, -2.0f, 2.0f);
    }
}

/* One quantizer and parameter set, forward and backward, at every length. */
static void check_quantizer(const char *name, const bq_params *p, const char *label, buffers *b, test_rng *r) {
    bq_quantizer *q = NULL;
    char what[256];
    if (bq_create(name, p, &q) != BQ_OK) {
        snprintf(what, sizeof what, "bq_create(%s): %s", label, bq_last_error());
        check(0, what);
        return;
    }
    for (size_t li = 0; li < LENGTH_COUNT; li++) {
        size_t n = LENGTHS[li];
        fill(r, b->x, b->g, n, strcmp(name, "weightdorefa") == 0);
        for (int backward = 0; backward <= 1; backward++) {
            bq_status s = backward ? bq_backward(q, b->x, b->g, b->out, n) : bq_forward(q, b->x, b->out, n);
            bq_status rs =
                backward ? ref_backward(name, p, b->x, b->g, b->ref, n) : ref_forward(name, p, b->x, b->ref, n);
            size_t i = 0;
            int ok = s == BQ_OK && rs == BQ_OK && outputs_match(name, p, backward, b->x, b->g, b->out, b->ref, n, &i);
            snprintf(what, sizeof what, "%s %s n=%zu: status %d, i=%zu x=%a g=%a ours=%a ref=%a", label,
                     backward ? "bwd" : "fwd", n, (int)s, i, b->x[i], b->g[i], b->out[i], b->ref[i]);
            check(ok, what);
        }
    }
    bq_destroy(q);
}

/* WeightDoReFa with a special value at `where`; in place if asked. */
static void check_weightdorefa_at(int bits, size_t n, size_t where, float special, int in_place, buffers *b,
                                  test_rng *r, const char *label) {
    bq_params p = test_default_params();
    p.dorefa_bits = bits;
    for (size_t i = 0; i < n; i++)
        b->x[i] = test_rng_uniform(r, -0.5f, 0.5f);
    b->x[where] = special;
    ref_forward("weightdorefa", &p, b->x, b->ref, n);
    bq_quantizer *q = NULL;
    bq_status s = bq_create("weightdorefa", &p, &q);
    float *out = in_place ? b->x : b->out;
    float x_where = b->x[where];
    if (s == BQ_OK) s = bq_forward(q, b->x, out, n);
    bq_destroy(q);
    size_t i = 0;
    int ok = s == BQ_OK && outputs_match("weightdorefa", &p, 0, b->ref, b->ref, out, b->ref, n, &i);
    char what[256];
    snprintf(what, sizeof what, "weightdorefa %db n=%zu, %s (x[%zu]=%g)%s: status %d, i=%zu ours=%a ref=%a", bits, n,
             label, where, x_where, in_place ? " in place" : "", (int)s, i, out[i], b->ref[i]);
    check(ok, what);
}

/* The chunked max differs from a global one on these inputs, so the checks above can fail. */
static int per_chunk_would_differ(int bits, size_t n, size_t chunk, buffers *b) {
    bq_params p = test_default_params();
    p.dorefa_bits = bits;
    for (size_t at = 0; at < n; at += chunk) {
        size_t len = n - at < chunk ? n - at : chunk;
        ref_forward("weightdorefa", &p, b->x + at, b->out + at, len);
    }
    ref_forward("weightdorefa", &p, b->x, b->ref, n);
    for (size_t i = 0; i < n; i++) {
        if (!ref_same(b->out[i], b->ref[i])) return 1;
    }
    return 0;
}

static void check_weightdorefa_global(size_t chunk, buffers *b, test_rng *r) {
    const int bits[] = {2, 4, 8};
    for (int k = 0; k < 3; k++) {
        for (size_t li = 0; li < LENGTH_COUNT; li++) {
            size_t n = LENGTHS[li];
            size_t last_chunk = (n - 1) / chunk * chunk;
            size_t inside_last = last_chunk + test_rng_below(r, (uint32_t)(n - last_chunk));
            check_weightdorefa_at(bits[k], n, n - 1, 2.5f, 0, b, r, "max at the end");
            check_weightdorefa_at(bits[k], n, inside_last, -2.5f, 0, b, r, "max in the last chunk");
            check_weightdorefa_at(bits[k], n, inside_last, 2.5f, 1, b, r, "max in the last chunk");
            check_weightdorefa_at(bits[k], n, 0, -2.5f, 1, b, r, "max in the first chunk");
            check_weightdorefa_at(bits[k], n, n - 1, NAN, 0, b, r, "NaN at the end");
            check_weightdorefa_at(bits[k], n, inside_last, NAN, 1, b, r, "NaN in the last chunk");
        }
        /* Self-check on the longest length: the data tells a per-chunk max from the global one. */
        size_t n = LENGTHS[LENGTH_COUNT - 1];
        for (size_t i = 0; i < n; i++)
            b->x[i] = test_rng_uniform(r, -0.5f, 0.5f);
        b->x[n - 1] = 2.5f;
        char what[96];
        snprintf(what, sizeof what, "self-check: a per-chunk max would change weightdorefa %db", bits[k]);
        check(chunk >= n || per_chunk_would_differ(bits[k], n, chunk, b), what);
    }
}

int main(void) {
    setenv("BITQUANT_MAX_CHUNK", "1000", 0); /* before the library's first use; ctest sets it already */
    const char *chunk_env = getenv("BITQUANT_MAX_CHUNK");
    long chunk = strtol(chunk_env, NULL, 10);
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    printf("split: variant %s, BITQUANT_MAX_CHUNK=%s\n", variant != NULL ? variant : "?", chunk_env);
    if (chunk < 1) {
        printf("FAIL BITQUANT_MAX_CHUNK must be an integer >= 1\n");
        return 1;
    }
    buffers b = {malloc(MAX_LENGTH * sizeof(float)), malloc(MAX_LENGTH * sizeof(float)),
                 malloc(MAX_LENGTH * sizeof(float)), malloc(MAX_LENGTH * sizeof(float))};
    if (b.x == NULL || b.g == NULL || b.out == NULL || b.ref == NULL) {
        printf("FAIL out of memory\n");
        return 1;
    }
    test_rng r = test_rng_seed(4321);
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        const test_quantizer *tq = &TEST_QUANTIZERS[qi];
        bq_params sets[3];
        const char *labels[3] = {"defaults", "t=1", "params"};
        size_t count = 2;
        sets[0] = test_default_params();
        sets[1] = test_default_params();
        sets[1].cancel_threshold = 1.0f;
        sets[2] = test_default_params();
        sets[2].cancel_threshold = 1.3f;
        if (test_reads(tq, "swish_beta")) {
            sets[2].swish_beta = 0.3f;
            count = 3;
        } else if (test_reads(tq, "dorefa_bits")) {
            sets[2].dorefa_bits = 8;
            count = 3;
        } else if (test_reads(tq, "progressive_scale")) {
            sets[2].progressive_scale = 0.02;
            count = 3;
        }
        for (size_t k = 0; k < count; k++) {
            char label[96];
            snprintf(label, sizeof label, "%s %s", tq->name, labels[k]);
            check_quantizer(tq->name, &sets[k], label, &b, &r);
        }
    }
    check_weightdorefa_global((size_t)chunk, &b, &r);
    if (printed > MAX_PRINTED) printf("(%d more failure lines not shown)\n", printed - MAX_PRINTED);
    printf("split: %d passed, %d failed\n", passed, failed);
    free(b.x);
    free(b.g);
    free(b.out);
    free(b.ref);
    return failed == 0 ? 0 : 1;
}
