/* The measuring half of `bitquant tune` (tools/tune.py is the driver): loads one candidate kernel, a shared
 * object made from a generated kernel object, checks it bit for bit against the scalar reference on every
 * quantizer of the kernel table that uses its family, and times it.
 *
 * Usage: bq_tune_harness FAMILY THREADS SAMPLES CANDIDATE_LIBRARY SYMBOL BASELINE_LIBRARY SYMBOL N...
 * Checks the candidate and prints "exact" or "inexact: <first mismatch>"; if exact, times candidate and
 * baseline alternately, sample by sample (so that drift on a shared machine cancels out), and prints per N
 * "time <n> <median candidate/baseline ratio> <candidate median s> <baseline median s>"; exits 0 if exact.
 * The kernels' Halide runtime calls resolve to this program's runtime (it is linked with exported symbols),
 * so THREADS applies to them. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "test_common.h"
#include "timing.h"

typedef struct {
    const char *name, *forward, *backward;
    bq_mapping mapping;
} quantizer_row;

static const quantizer_row QUANTIZERS[] = {
#define BQ_QUANTIZER(name, forward, backward, mapping, fields, save, need) {#name, #forward, #backward, BQ_MAP_##mapping},
#include "kernels.def"
};
#define QUANTIZER_COUNT (sizeof QUANTIZERS / sizeof QUANTIZERS[0])

/* Lengths around every vector width and past every parallel threshold the tuner tries (2^19). */
static const size_t CHECK_LENGTHS[] = {0,  1,  2,   3,   5,    7,    8,    9,     15,     16,     17,     31,    33,
                                       63, 65, 127, 129, 1023, 1025, 4097, 65537, 262147, 524287, 524289, 600001};
/* The count kernel applies from 512 elements per level (runtime/weightdorefa.c). */
static const size_t COUNT_LENGTHS[] = {8191, 8192, 100003, 600001};

static uint32_t max_bits(const float *x, size_t n) {
    uint32_t best = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        b &= 0x7fffffffu;
        if (b > best) best = b;
    }
    return best;
}

/* One call of the candidate on x (and g) into out, as its signature takes it, through the library's executor
 * (on the calling thread's CPU, in chunks of at most 2^28 elements). */
typedef struct {
    bq_signature signature;
    bq_kernel_fn fn; /* the candidate's _argv entry point (float32 in and out) */
    float p0, p1;
    const float *thresholds;
    int levels;
} call;

static int run(const call *c, const float *x, const float *g, float *out, size_t n, uint32_t *bits) {
    const bq_place place = {NULL, NULL, NULL, NULL, (size_t)1 << 28};
    bq_value values[BQ_MAX_ARGS] = {{.host = x}};
    switch (c->signature) {
    case BQ_SIGNATURE_MAP:
        values[1].f = c->p0, values[2].f = c->p1, values[3].host = out;
        break;
    case BQ_SIGNATURE_GRAD:
        values[1].host = g, values[2].f = c->p0, values[3].f = c->p1, values[4].host = out;
        break;
    case BQ_SIGNATURE_COUNT:
        values[1].host = c->thresholds, values[2].i = c->levels, values[3].host = out;
        break;
    default: /* ABSMAX */
        values[1].host = bits;
        break;
    }
    return bq_execute_kernel(&place, c->fn, c->signature, BQ_F32, BQ_F32, values, 1, n) == BQ_OK ? 0 : 1;
}

/* Edge values and random ones of every scale, deterministic per length. */
static void make_inputs(float *x, float *g, size_t n) {
    static const float specials[] = {0.0f,      -0.0f,  1.0f,    -1.0f, 0.5f,       -0.5f,       NAN,  INFINITY,
                                     -INFINITY, 1e-40f, -1e-40f, 3e38f, 1.0000001f, 0.99999994f, 1.3f, -1.3f};
    test_rng r = test_rng_seed(n);
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(&r, 8);
        x[i] = pick == 0  ? specials[test_rng_below(&r, 16)]
               : pick < 4 ? test_rng_uniform(&r, -3.0f, 3.0f)
                          : test_rng_wide(&r);
        g[i] = test_rng_uniform(&r, -2.0f, 2.0f);
    }
}

static int mismatches;

static void report(const char *what, size_t n, size_t i, float x, float ours, float ref) {
    if (mismatches++ == 0) printf("inexact: %s n=%zu i=%zu x=%a ours=%a ref=%a\n", what, n, i, x, ours, ref);
}

/* The parameter sets each quantizer is checked with: bitorch's defaults and the variations that change
 * a kernel's inputs (more DoReFa bits, ProgressiveSign's scale and eval mode). */
static int param_sets(const quantizer_row *q, bq_params out[4]) {
    int count = 1;
    bq_params_init(&out[0]);
    if (q->mapping == BQ_MAP_LEVELS || q->mapping == BQ_MAP_LEVELS_MAX) {
        for (int bits = 2; bits <= 8; bits *= 4) {
            out[count] = out[0];
            out[count++].dorefa_bits = bits;
        }
    } else if (q->mapping == BQ_MAP_PROGRESSIVE) {
        out[count] = out[0];
        out[count++].progressive_scale = 0.05;
        out[count] = out[1];
        out[count++].training = 0;
    }
    return count;
}

/* The named parameters' defaults of a quantizer (kernels.def's BQ_PARAM rows), in declared order. */
static void named_defaults(const char *quantizer, float named[BQ_MAX_NAMED_PARAMS]) {
    size_t k = 0;
#define BQ_PARAM(q, name, default_value, min_value, max_value, kind) \
    if (strcmp(#q, quantizer) == 0) named[k++] = (float)(default_value);
#include "kernels.def"
    (void)k;
}

static void check_elementwise(const char *family, bq_signature signature, bq_kernel_fn fn, float *x, float *g,
                              float *out, float *ref) {
    int backward = signature == BQ_SIGNATURE_GRAD;
    for (size_t qi = 0; qi < QUANTIZER_COUNT; qi++) {
        const quantizer_row *q = &QUANTIZERS[qi];
        if (strcmp(backward ? q->backward : q->forward, family) != 0) continue;
        bq_params sets[4];
        int set_count = param_sets(q, sets);
        for (int si = 0; si < set_count * (backward ? 2 : 1); si++) {
            bq_params p = sets[si % set_count];
            p.cancel_threshold = si >= set_count ? 1.0f : 0.0f;
            float named[BQ_MAX_NAMED_PARAMS];
            named_defaults(q->name, named);
            bq_scalars s;
            if (bq_scalars_from_params(&p, q->mapping, named, &s) != BQ_OK) continue;
            for (size_t li = 0; li < sizeof CHECK_LENGTHS / sizeof CHECK_LENGTHS[0]; li++) {
                size_t n = CHECK_LENGTHS[li];
                make_inputs(x, g, n);
                call c = {signature, fn, backward ? s.backward_p0 : s.forward_p0, backward ? s.threshold : s.forward_p1,
                          NULL,      0};
                if (!backward && q->mapping == BQ_MAP_LEVELS_MAX) { /* p1 = the abs-max */
                    uint32_t bits = max_bits(x, n);
                    memcpy(&c.p1, &bits, sizeof bits);
                }
                if (run(&c, x, g, out, n, NULL) != 0) {
                    report("kernel error", n, 0, 0.0f, 0.0f, 0.0f);
                    return;
                }
                if (backward) {
                    ref_backward(q->name, &p, x, g, ref, n);
                } else {
                    ref_forward(q->name, &p, x, ref, n);
                }
                for (size_t i = 0; i < n; i++) {
                    if (!test_output_matches(q->name, &p, backward, x[i], backward ? g[i] : 0.0f, out[i], ref[i])) {
                        report(q->name, n, i, x[i], out[i], ref[i]);
                        break;
                    }
                }
            }
        }
    }
}

/* Inputs for WeightDoReFa's forward without NaN (a NaN would make the runtime use the tanh kernel), and
 * their abs-max. */
static float weightdorefa_inputs(float *x, float *g, size_t n) {
    make_inputs(x, g, n);
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) x[i] = 0.25f;
    uint32_t bits = max_bits(x, n);
    float absmax;
    memcpy(&absmax, &bits, sizeof absmax);
    return absmax;
}

/* WeightDoReFa's estimate kernel (5 to 10 bits): every output it does not leave open (the marker 2) must be
 * the spec's; the runtime computes the open ones. */
static void check_estimate(bq_kernel_fn fn, float *x, float *g, float *out, float *ref) {
    for (int bits = 5; bits <= 10; bits++) {
        bq_params p;
        bq_params_init(&p);
        p.dorefa_bits = bits;
        for (size_t li = 0; li < sizeof CHECK_LENGTHS / sizeof CHECK_LENGTHS[0]; li++) {
            size_t n = CHECK_LENGTHS[li];
            float m = bq_weightdorefa_m(weightdorefa_inputs(x, g, n));
            if (n == 0 || !(m > 0.0f)) continue;
            call c = {BQ_SIGNATURE_MAP, fn, (float)((1 << bits) - 1), m, NULL, 0};
            ref_forward("weightdorefa", &p, x, ref, n);
            if (run(&c, x, g, out, n, NULL) != 0) report("kernel error", n, 0, 0.0f, 0.0f, 0.0f);
            for (size_t i = 0; i < n && mismatches == 0; i++) {
                if (out[i] != 2.0f && !ref_same(out[i], ref[i]))
                    report("weightdorefa (estimate)", n, i, x[i], out[i], ref[i]);
            }
        }
    }
}

static void check_absmax(bq_kernel_fn fn, float *x, float *g) {
    for (size_t li = 0; li < sizeof CHECK_LENGTHS / sizeof CHECK_LENGTHS[0]; li++) {
        size_t n = CHECK_LENGTHS[li] > 0 ? CHECK_LENGTHS[li] : 1;
        make_inputs(x, g, n);
        uint32_t bits = 0;
        call c = {BQ_SIGNATURE_ABSMAX, fn, 0, 0, NULL, 0};
        if (run(&c, x, g, NULL, n, &bits) != 0 || bits != max_bits(x, n)) {
            report("absmax", n, 0, 0.0f, (float)bits, (float)max_bits(x, n));
        }
    }
}

static void check_count(bq_kernel_fn fn, float *x, float *g, float *out, float *ref) {
    for (int bits = 1; bits <= 4; bits++) {
        bq_params p;
        bq_params_init(&p);
        p.dorefa_bits = bits;
        for (size_t li = 0; li < sizeof COUNT_LENGTHS / sizeof COUNT_LENGTHS[0]; li++) {
            size_t n = COUNT_LENGTHS[li];
            float thresholds[BQ_TABLE_LENGTH], absmax = weightdorefa_inputs(x, g, n);
            float levels = (float)((1 << bits) - 1);
            if (!bq_weightdorefa_count_plan(absmax, levels, n, thresholds)) continue;
            call c = {BQ_SIGNATURE_COUNT, fn, 0, 0, thresholds, (int)levels};
            ref_forward("weightdorefa", &p, x, ref, n);
            if (run(&c, x, g, out, n, NULL) != 0) {
                report("kernel error", n, 0, 0.0f, 0.0f, 0.0f);
                return;
            }
            for (size_t i = 0; i < n; i++) {
                if (!ref_same(out[i], ref[i])) {
                    report("weightdorefa (count)", n, i, x[i], out[i], ref[i]);
                    break;
                }
            }
        }
    }
}

/* One call, or for a backward family two: without cancellation and with it (threshold 1), since the kernel
 * specializes on threshold > 0 and a schedule must not win on one path by losing on the other. */
static void run_timed(const call *c, const float *x, const float *g, float *out, size_t n, uint32_t *bits) {
    run(c, x, g, out, n, bits);
    if (c->signature == BQ_SIGNATURE_GRAD) {
        call cancel = *c;
        cancel.p1 = 1.0f;
        run(&cancel, x, g, out, n, bits);
    }
}

/* Calls per timed sample of c, so that a sample lasts >= ~2 ms. */
static int calibrate(const call *c, const float *x, const float *g, float *out, size_t n, uint32_t *bits) {
    run_timed(c, x, g, out, n, bits); /* warm-up: page faults, thread pool */
    double start = bq_now_seconds();
    run_timed(c, x, g, out, n, bits);
    double one = bq_now_seconds() - start;
    return one > 2e-3 ? 1 : (int)(2e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
}

static double sample(const call *c, int reps, const float *x, const float *g, float *out, size_t n, uint32_t *bits) {
    double start = bq_now_seconds();
    for (int k = 0; k < reps; k++)
        run_timed(c, x, g, out, n, bits);
    return (bq_now_seconds() - start) / reps;
}

/* Inputs to time on: uniform in [-3, 3] (gradients in [-2, 2]), as `bitquant bench` times. Not the checks'
 * inputs: their subnormal and wide-range values reach subnormal intermediates, which cost a microcode assist
 * per operation on Intel CPUs and would decide the timing by a rare case. */
static void timing_inputs(float *x, float *g, size_t n) {
    test_rng r = test_rng_seed(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = test_rng_uniform(&r, -3.0f, 3.0f);
        g[i] = test_rng_uniform(&r, -2.0f, 2.0f);
    }
}

/* Candidate against baseline at n, on representative inputs; prints one "time" line. */
static void compare_at(const char *family, bq_signature signature, bq_kernel_fn cand, bq_kernel_fn base, size_t n,
                       int samples) {
    float *x = malloc(n * sizeof *x), *g = malloc(n * sizeof *g), *out = malloc(n * sizeof *out);
    float thresholds[BQ_TABLE_LENGTH];
    if (x == NULL || g == NULL || out == NULL) {
        printf("time %zu nan nan nan\n", n);
    } else {
        timing_inputs(x, g, n);
        uint32_t bits = max_bits(x, n);
        float absmax;
        memcpy(&absmax, &bits, sizeof absmax);
        for (int i = 0; i < BQ_TABLE_LENGTH; i++) /* any increasing thresholds time the same */
            thresholds[i] = -1.0f + 0.125f * (float)i;
        call c = {signature, cand, 5.0f, 0.0f, thresholds, 1};
        if (strcmp(family, "weightdorefa") == 0) c.p0 = 1.0f, c.p1 = absmax;
        if (strcmp(family, "weightdorefa_estimate") == 0) c.p0 = 255.0f, c.p1 = bq_weightdorefa_m(absmax);
        if (strcmp(family, "inputdorefa") == 0) c.p0 = 1.0f;
        if (strcmp(family, "progressive") == 0) c.p0 = 0.5f, c.p1 = 1.0f;
        call b = c;
        b.fn = base;
        int cand_reps = calibrate(&c, x, g, out, n, &bits), base_reps = calibrate(&b, x, g, out, n, &bits);
        double tc[64], tb[64], ratio[64];
        if (samples > 64) samples = 64;
        for (int s = 0; s < samples; s++) {
            tb[s] = sample(&b, base_reps, x, g, out, n, &bits);
            tc[s] = sample(&c, cand_reps, x, g, out, n, &bits);
            ratio[s] = tc[s] / tb[s];
        }
        printf("time %zu %.6g %.6g %.6g\n", n, bq_median(ratio, samples), bq_median(tc, samples),
               bq_median(tb, samples));
    }
    free(x);
    free(g);
    free(out);
}

static void *load(const char *library, const char *symbol) {
    char argv_symbol[256];
    snprintf(argv_symbol, sizeof argv_symbol, "%s_argv", symbol);
    void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    void *fn = lib != NULL ? dlsym(lib, argv_symbol) : NULL;
    if (fn == NULL) fprintf(stderr, "bq_tune_harness: cannot load %s from %s: %s\n", argv_symbol, library, dlerror());
    return fn;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: bq_tune_harness FAMILY THREADS SAMPLES CANDIDATE SYMBOL BASELINE SYMBOL N...\n");
        return 2;
    }
    const char *family = argv[1];
    size_t index = 0;
    while (index < BQ_FAMILY_COUNT && strcmp(bq_family_names[index], family) != 0)
        index++;
    if (index == BQ_FAMILY_COUNT) {
        fprintf(stderr, "bq_tune_harness: no kernel family %s\n", family);
        return 2;
    }
    bq_signature signature = bq_family_signatures[index];
    bq_kernel_fn fn = (bq_kernel_fn)load(argv[4], argv[5]), base = (bq_kernel_fn)load(argv[6], argv[7]);
    if (fn == NULL || base == NULL) return 2;
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > BQ_MAX_THREADS) {
        fprintf(stderr, "bq_tune_harness: THREADS must be 1..%d\n", BQ_MAX_THREADS);
        return 2;
    }
    bq_install_halide_error_handler();
    bq_pool_install(); /* the library's pool, which the kernels run on there */
    bq_pool_set_threads(threads);
    int samples = atoi(argv[3]);

    size_t most = 600001;
    float *x = malloc(most * sizeof *x), *g = malloc(most * sizeof *g);
    float *out = malloc(most * sizeof *out), *ref = malloc(most * sizeof *ref);
    if (x == NULL || g == NULL || out == NULL || ref == NULL) return 2;
    if (signature == BQ_SIGNATURE_ABSMAX) {
        check_absmax(fn, x, g);
    } else if (strcmp(family, "weightdorefa_estimate") == 0) {
        check_estimate(fn, x, g, out, ref);
    } else if (signature == BQ_SIGNATURE_COUNT) {
        check_count(fn, x, g, out, ref);
    } else {
        check_elementwise(family, signature, fn, x, g, out, ref);
    }
    free(x);
    free(g);
    free(out);
    free(ref);
    if (mismatches > 0) return 1;
    printf("exact\n");
    for (int a = 8; a < argc; a++)
        compare_at(family, signature, fn, base, strtoull(argv[a], NULL, 0), samples);
    return 0;
}
