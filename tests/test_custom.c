/* Users' quantizers: tests/custom/test_quantizers.cpp compiled by bitquant_add_quantizers, registered through
 * its generated bq_test_quantizers_register(), on the CPU variant BITQUANT_CPU selects:
 *   - bq_register_quantizers rejects, registering nothing, another kernel ABI, bad or colliding names (a
 *     built-in's, another in the same call, an earlier registration's), bad parameter declarations, unknown
 *     variants and NULL kernels, and kernels for no variant this process runs;
 *   - the registered quantizers are listed after the built-ins with their named parameters;
 *   - their forward and backward (gradient cancellation off and on) equal a scalar reference bit for bit, on
 *     edge values, at every tail length, above the parallel threshold, and in place;
 *   - named parameters are checked as the built-ins' are, and the entry points they do not support (other
 *     types, saved bits, GPUs) say BQ_E_UNSUPPORTED;
 *   - while the registration runs, other threads list the quantizers and create and run the new ones as
 *     soon as they appear, and always see whole entries (the tsan preset runs this too). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bq_test_quantizers.h"
#include "test_common.h"

/* The references of test_quantizers.cpp's quantizers. */
static float user_forward(int which, float x, float scale, float bias) {
    if (which == 0) return (x < 0.0f ? -1.0f : 1.0f) * scale + bias;
    return nearbyintf(x); /* round half to even in the default rounding mode */
}

static float user_backward(int which, float x, float g, float scale, float threshold) {
    float dx = which == 0 ? g * (fabsf(x) <= scale ? 1.0f : 0.0f) : g;
    if (threshold > 0.0f && !(fabsf(x) <= threshold)) dx = 0.0f;
    return dx;
}

static int dummy_kernel(void **args) {
    (void)args;
    return -1; /* never run: only registrations that fail use it */
}

/* One registration that must fail with `want` and register nothing. */
static void expect_rejected(const char *what, const bq_custom_quantizer *q, size_t count, bq_status want, int abi) {
    size_t before = bq_quantizer_count();
    bq_status s = bq_register_quantizers(abi, q, count);
    CHECK(s == want, "%s: status %d, expected %d (%s)", what, s, want, bq_last_error());
    CHECK(strlen(bq_last_error()) > 0, "%s: no message", what);
    CHECK(bq_quantizer_count() == before, "%s: %zu quantizers after a failed registration, %zu before", what,
          bq_quantizer_count(), before);
}

static void check_rejections(const char *active) {
    const bq_custom_kernels kernels[] = {{active, dummy_kernel, dummy_kernel}};
    const bq_param_info one[] = {{"t", 0.5, 0.0, 0.0, BQ_PARAM_POSITIVE}};
    bq_custom_quantizer q = {"fresh_name", one, 1, kernels, 1};
    expect_rejected("another kernel ABI", &q, 1, BQ_E_INVALID, BQ_KERNEL_ABI_VERSION + 1);
    expect_rejected("NULL quantizers", NULL, 1, BQ_E_INVALID, BQ_KERNEL_ABI_VERSION);
    const char *bad_names[] = {NULL, "", "Upper", "1digit", "has-dash", "_under",
                               "a234567890123456789012345678901234567890123456789012345678901234", "sign", "pact"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        bq_custom_quantizer bad = q;
        bad.name = bad_names[i];
        char what[96];
        snprintf(what, sizeof what, "name %s", bad_names[i] ? bad_names[i] : "NULL");
        expect_rejected(what, &bad, 1, BQ_E_INVALID, BQ_KERNEL_ABI_VERSION);
    }
    const bq_custom_quantizer twice[] = {q, q};
    expect_rejected("one name twice in a call", twice, 2, BQ_E_INVALID, BQ_KERNEL_ABI_VERSION);
    const bq_param_info repeated[] = {{"t", 0.5, 0.0, 0.0, BQ_PARAM_POSITIVE}, {"t", 1.0, 0.0, 0.0, BQ_PARAM_POSITIVE}};
    const bq_param_info bad_kind[] = {{"t", 0.5, 0.0, 0.0, (bq_param_kind)7}};
    const bq_param_info bad_default[] = {{"t", 5.0, 0.0, 1.0, BQ_PARAM_REAL}};
    const bq_param_info bad_integer[] = {{"t", 0.5, 0.0, 1.0, BQ_PARAM_INTEGER}};
    const bq_param_info bad_positive[] = {{"t", 0.0, 0.0, 0.0, BQ_PARAM_POSITIVE}};
    const bq_param_info unnamed[] = {{NULL, 0.5, 0.0, 1.0, BQ_PARAM_REAL}};
    bq_param_info many[BQ_MAX_NAMED_PARAMS + 1];
    static char names[BQ_MAX_NAMED_PARAMS + 1][8];
    for (int k = 0; k <= BQ_MAX_NAMED_PARAMS; k++) {
        snprintf(names[k], sizeof names[k], "p%d", k);
        many[k] = (bq_param_info){names[k], 0.0, -1.0, 1.0, BQ_PARAM_REAL};
    }
    const struct {
        const char *what;
        const bq_param_info *params;
        size_t count;
    } decls[] = {{"a parameter twice", repeated, 2},   {"a kind that is none", bad_kind, 1},
                 {"a default above max", bad_default, 1}, {"a default that is no integer", bad_integer, 1},
                 {"a positive default of 0", bad_positive, 1}, {"a NULL parameter name", unnamed, 1},
                 {"16 parameters", many, BQ_MAX_NAMED_PARAMS + 1}, {"params NULL with a count", NULL, 1}};
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++) {
        bq_custom_quantizer bad = q;
        bad.params = decls[i].params;
        bad.param_count = decls[i].count;
        expect_rejected(decls[i].what, &bad, 1, BQ_E_INVALID, BQ_KERNEL_ABI_VERSION);
    }
    const bq_custom_kernels unknown[] = {{"avx1024", dummy_kernel, dummy_kernel}, {active, dummy_kernel, dummy_kernel}};
    const bq_custom_kernels null_forward[] = {{active, NULL, dummy_kernel}};
    const bq_custom_kernels null_variant[] = {{NULL, dummy_kernel, dummy_kernel}};
    const struct {
        const char *what;
        const bq_custom_kernels *kernels;
        size_t count;
        bq_status want;
    } kernel_cases[] = {{"an unknown variant", unknown, 2, BQ_E_INVALID}, {"a NULL forward", null_forward, 1, BQ_E_INVALID},
                        {"a NULL variant", null_variant, 1, BQ_E_INVALID}, {"no kernels", NULL, 0, BQ_E_UNSUPPORTED},
                        {"kernels NULL with a count", NULL, 1, BQ_E_INVALID}};
    for (size_t i = 0; i < sizeof kernel_cases / sizeof kernel_cases[0]; i++) {
        bq_custom_quantizer bad = q;
        bad.kernels = kernel_cases[i].kernels;
        bad.kernel_count = kernel_cases[i].count;
        expect_rejected(kernel_cases[i].what, &bad, 1, kernel_cases[i].want, BQ_KERNEL_ABI_VERSION);
    }
    /* Kernels only for another compiled variant than the one this process runs. */
    for (size_t v = 0; v < bq_cpu_variant_count(); v++) {
        if (strcmp(bq_cpu_variant_name(v), active) == 0) continue;
        const bq_custom_kernels other[] = {{bq_cpu_variant_name(v), dummy_kernel, dummy_kernel}};
        bq_custom_quantizer bad = q;
        bad.kernels = other;
        expect_rejected("only another variant's kernels", &bad, 1, BQ_E_UNSUPPORTED, BQ_KERNEL_ABI_VERSION);
    }
}

static void make_inputs(float *x, float *g, size_t n, float scale, uint64_t seed) {
    const float specials[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e-45f, -1e-45f, 3e38f, -3e38f, scale,
                              -scale, nextafterf(scale, INFINITY), 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.75f};
    const size_t count = sizeof specials / sizeof specials[0];
    test_rng r = test_rng_seed(seed);
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(&r, 3);
        x[i] = pick == 0 ? specials[test_rng_below(&r, (uint32_t)count)]
                         : pick == 1 ? test_rng_uniform(&r, -4.0f, 4.0f) : test_rng_wide(&r);
        uint32_t gp = test_rng_below(&r, 8);
        g[i] = gp == 0 ? specials[test_rng_below(&r, (uint32_t)count)] : test_rng_uniform(&r, -2.0f, 2.0f);
    }
}

/* Quantizer `which` (0: scaled_sign with scale, bias; 1: round_ste) at threshold t over n elements. */
static void check_kernels(int which, float scale, float bias, float t, size_t n, uint64_t seed) {
    const char *name = which == 0 ? "scaled_sign" : "round_ste";
    bq_params p;
    bq_params_init(&p);
    p.cancel_threshold = t;
    const bq_named_param named[] = {{"scale", scale}, {"bias", bias}};
    bq_quantizer *q = NULL;
    bq_status s = bq_create_named(name, &p, which == 0 ? named : NULL, which == 0 ? 2 : 0, &q);
    CHECK(s == BQ_OK, "bq_create_named(%s): %s", name, bq_last_error());
    if (s != BQ_OK) return;
    float *x = malloc((n + 1) * sizeof *x), *g = malloc((n + 1) * sizeof *g);
    float *y = malloc((n + 1) * sizeof *y), *dx = malloc((n + 1) * sizeof *dx);
    if (!x || !g || !y || !dx) {
        CHECK(0, "out of memory");
        free(x), free(g), free(y), free(dx);
        bq_destroy(q);
        return;
    }
    make_inputs(x, g, n, scale, seed);
    y[n] = dx[n] = 12345.0f; /* past the end: must stay */
    s = bq_forward(q, x, y, n);
    CHECK(s == BQ_OK, "%s forward n=%zu: %s", name, n, bq_last_error());
    s = bq_backward(q, x, g, dx, n);
    CHECK(s == BQ_OK, "%s backward n=%zu: %s", name, n, bq_last_error());
    size_t bad_y = 0, bad_dx = 0;
    for (size_t i = 0; i < n; i++) {
        float want_y = user_forward(which, x[i], scale, bias), want_dx = user_backward(which, x[i], g[i], scale, t);
        if (!test_output_matches(name, &p, 0, x[i], g[i], y[i], want_y) && bad_y++ < 3) {
            CHECK(0, "%s(scale %g, bias %g) forward n=%zu: y[%zu] = %a for x = %a, expected %a", name, scale, bias, n, i,
                  y[i], x[i], want_y);
        }
        if (!test_output_matches(name, &p, 1, x[i], g[i], dx[i], want_dx) && bad_dx++ < 3) {
            CHECK(0, "%s(scale %g) backward t=%g n=%zu: dx[%zu] = %a for x = %a, g = %a, expected %a", name, scale, t, n,
                  i, dx[i], x[i], g[i], want_dx);
        }
    }
    CHECK(bad_y == 0 && bad_dx == 0, "%s n=%zu t=%g: %zu forward and %zu backward mismatches", name, n, t, bad_y, bad_dx);
    CHECK(y[n] == 12345.0f && dx[n] == 12345.0f, "%s n=%zu: wrote past the end", name, n);
    /* In place: y over x, then dx over g. */
    memcpy(dx, x, n * sizeof *x);
    s = bq_forward(q, dx, dx, n);
    CHECK(s == BQ_OK && memcmp(dx, y, n * sizeof *y) == 0, "%s n=%zu: in-place forward differs", name, n);
    free(x), free(g), free(y), free(dx);
    bq_destroy(q);
}

static void check_unsupported(void) {
    bq_quantizer *q = NULL;
    if (bq_create("scaled_sign", NULL, &q) != BQ_OK) {
        CHECK(0, "bq_create(scaled_sign): %s", bq_last_error());
        return;
    }
    uint16_t h[4] = {0};
    float f[4] = {1.0f, -1.0f, 0.5f, 2.0f}, out[4];
    uint32_t saved[1];
    size_t words = 0;
    CHECK(bq_forward_typed(q, BQ_F16, h, BQ_F16, h, 1, 4) == BQ_E_UNSUPPORTED, "float16 forward: %s", bq_last_error());
    CHECK(bq_forward_typed(q, BQ_F32, f, BQ_I8, h, 1, 4) == BQ_E_UNSUPPORTED, "int8 forward: %s", bq_last_error());
    CHECK(bq_backward_typed(q, BQ_BF16, h, h, h, 4) == BQ_E_UNSUPPORTED, "bfloat16 backward: %s", bq_last_error());
    CHECK(bq_saved_words(q, 4, &words) == BQ_E_UNSUPPORTED, "saved words: %s", bq_last_error());
    CHECK(bq_forward_save(q, f, out, saved, 4) == BQ_E_UNSUPPORTED, "forward_save: %s", bq_last_error());
    for (int b = 0; b < BQ_BACKEND_COUNT; b++) {
        bq_status s = bq_device_forward_host(q, (bq_backend)b, f, out, 4);
        CHECK(s == BQ_E_UNSUPPORTED && strstr(bq_last_error(), "CPU only"), "%s forward: %d %s",
              bq_backend_name((bq_backend)b), s, bq_last_error());
        s = bq_device_backward_host(q, (bq_backend)b, f, f, out, 4);
        CHECK(s == BQ_E_UNSUPPORTED, "%s backward: %d %s", bq_backend_name((bq_backend)b), s, bq_last_error());
    }
    bq_destroy(q);
    const bq_named_param bad[] = {{"scale", -1.0}};
    const bq_named_param unknown[] = {{"alpha", 1.0}};
    const bq_named_param range[] = {{"bias", 11.0}};
    q = NULL;
    CHECK(bq_create_named("scaled_sign", NULL, bad, 1, &q) == BQ_E_INVALID && q == NULL, "scale -1 accepted");
    CHECK(bq_create_named("scaled_sign", NULL, unknown, 1, &q) == BQ_E_INVALID && q == NULL, "alpha accepted");
    CHECK(bq_create_named("scaled_sign", NULL, range, 1, &q) == BQ_E_INVALID && q == NULL, "bias 11 accepted");
}

/* A reader racing the registration: every listed entry is whole, and a registered quantizer, once listed,
 * is created and runs. Counts its failures in *arg (an atomic_int). */
static atomic_int registering_done;

static void *reader(void *arg) {
    atomic_int *bad = arg;
    const float x[4] = {-2.0f, -0.0f, 0.5f, NAN};
    int seen_after = 0;
    while (seen_after < 200) {
        int done = atomic_load(&registering_done);
        size_t count = bq_quantizer_count();
        for (size_t i = 0; i < count; i++) {
            bq_quantizer_info info;
            if (bq_quantizer_info_at(i, &info) != BQ_OK || info.name == NULL || info.params == NULL ||
                info.forward_kernel == NULL) {
                atomic_fetch_add(bad, 1);
            }
        }
        bq_quantizer *q = NULL;
        if (bq_create("round_ste", NULL, &q) == BQ_OK) {
            float y[4];
            if (bq_forward(q, x, y, 4) != BQ_OK || y[0] != -2.0f || !signbit(y[1]) || y[2] != 0.0f || !isnan(y[3])) {
                atomic_fetch_add(bad, 1);
            }
            bq_destroy(q);
        }
        if (done) seen_after++;
    }
    return NULL;
}

int main(void) {
    const char *active = NULL;
    if (bq_cpu_variant_active(&active) != BQ_OK) {
        printf("SKIP: %s\n", bq_last_error());
        return 77;
    }
    size_t builtins = bq_quantizer_count();
    bq_quantizer *q = NULL;
    CHECK(bq_create("scaled_sign", NULL, &q) == BQ_E_UNKNOWN, "scaled_sign exists before it is registered");
    check_rejections(active);

    atomic_int bad_reads = 0;
    pthread_t readers[3];
    int started = 0;
    for (; started < 3; started++) {
        if (pthread_create(&readers[started], NULL, reader, &bad_reads) != 0) break;
    }
    bq_status s = bq_test_quantizers_register();
    atomic_store(&registering_done, 1);
    for (int t = 0; t < started; t++) pthread_join(readers[t], NULL);
    CHECK(atomic_load(&bad_reads) == 0, "%d bad reads by threads racing the registration", atomic_load(&bad_reads));
    CHECK(s == BQ_OK, "bq_test_quantizers_register: %s", bq_last_error());
    if (s != BQ_OK) return 1;
    CHECK(bq_test_quantizers_register() == BQ_E_INVALID && bq_quantizer_count() == builtins + 2,
          "a second registration of the same names was not rejected");
    CHECK(bq_quantizer_count() == builtins + 2, "%zu quantizers, expected %zu", bq_quantizer_count(), builtins + 2);
    bq_quantizer_info info;
    CHECK(bq_quantizer_info_at(builtins, &info) == BQ_OK && strcmp(info.name, "scaled_sign") == 0 &&
              strcmp(info.params, "scale,bias") == 0 && strcmp(info.forward_kernel, "custom_forward") == 0 &&
              strcmp(info.backward_kernel, "custom_backward") == 0,
          "the first registered quantizer is listed as %s (%s)", info.name, info.params);
    CHECK(bq_quantizer_info_at(builtins + 1, &info) == BQ_OK && strcmp(info.name, "round_ste") == 0 &&
              strcmp(info.params, "") == 0, "the second registered quantizer is listed as %s", info.name);
    bq_param_info param;
    CHECK(bq_quantizer_param_count(builtins) == 2 && bq_quantizer_param_at(builtins, 1, &param) == BQ_OK &&
              strcmp(param.name, "bias") == 0 && param.kind == BQ_PARAM_REAL && param.max_value == 10.0,
          "scaled_sign's parameters");
    CHECK(bq_quantizer_param_count(builtins + 1) == 0, "round_ste has parameters");
    CHECK(bq_quantizer_info_at(builtins + 2, &info) == BQ_E_INVALID, "an entry past the registered ones");

    static const size_t lengths[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 4097};
    static const float thresholds[] = {0.0f, 0.75f, 2.0f};
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        for (size_t t = 0; t < 3; t++) {
            check_kernels(0, 1.0f, 0.0f, thresholds[t], lengths[l], 10 * l + t);
            check_kernels(0, 0.75f, -0.25f, thresholds[t], lengths[l], 10 * l + t + 1000);
            check_kernels(1, 1.0f, 0.0f, thresholds[t], lengths[l], 10 * l + t + 2000);
        }
    }
    check_kernels(0, 2.5f, 0.5f, 0.75f, 300001, 7); /* above every variant's parallel_min */
    check_kernels(1, 1.0f, 0.0f, 0.0f, 300001, 8);
    check_unsupported();
    printf("%s: %d failures (variant %s)\n", test_failures() ? "FAIL" : "ok", test_failures(), active);
    return test_failures() ? 1 : 0;
}
