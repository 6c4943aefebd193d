/* The library against the scalar reference, through the public API only: every quantizer of the kernel
 * table, forward and backward, over its parameter sets, with cancellation off and on, on the spec's edge
 * values and on random inputs of several scales, at lengths around every vector width and tile, with
 * unaligned and in-place buffers. Every result bit must match (spec section 7; SwishSign's backward within
 * 1e-6*|beta|*|g| with the same NaN positions, see ref_swish_backward_close), and nothing outside the output
 * range may be written.
 *
 * A check is one (case, length, layout): it passes when the status is BQ_OK, every element matches, the
 * guard zones are intact and the inputs are unchanged. BITQUANT_TEST_LARGE=0 skips the 3,000,017 length.
 *
 * Usage: test_conformance [PATH], where PATH is how the kernels are called:
 *   cpu            bq_forward / bq_backward (the default), on the CPU variant BITQUANT_CPU selects
 *   cuda-host      bq_device_forward_host / _backward_host on CUDA: host memory, copied in and out
 *   opencl-host    the same on OpenCL
 *   cuda-device    bq_cuda_forward / _backward on device memory the test allocates (a non-blocking stream)
 *   opencl-device  bq_opencl_forward / _backward on the test's own context, queue and buffers
 * A GPU path without a compiled backend or a device skips (exit 77) with the reason. On device memory,
 * in-place layouts pass the same buffer twice; the offsets of the other layouts apply to host memory. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitquant.h"
#include "device_memory.h"
#include "reference.h"
#include "test_common.h"

#define LARGE_LENGTH 3000017u
#define MAX_PRINTED 12

static const size_t LENGTHS[] = {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 1023, 1024, 1025};
#define LENGTH_COUNT (sizeof LENGTHS / sizeof LENGTHS[0])

static const float THRESHOLDS[] = {0.0f, 0.5f, 1.0f, 1.3f, INFINITY};
#define THRESHOLD_COUNT (sizeof THRESHOLDS / sizeof THRESHOLDS[0])
static const float SWISH_BETAS[] = {0.3f, 1.0f, 5.0f, 10.0f, 0.0f /* the default 5 */, -1.0f};
#define SWISH_BETA_COUNT (sizeof SWISH_BETAS / sizeof SWISH_BETAS[0])
static const int DOREFA_BITS[] = {1, 2, 4, 6, 8, 10, 24}; /* count kernel to 4, estimate kernel to 10 (large n) */
#define DOREFA_BITS_COUNT (sizeof DOREFA_BITS / sizeof DOREFA_BITS[0])

typedef struct {
    double scale, alpha, beta;
    int training;
} progressive_case;
static const progressive_case PROGRESSIVE[] = {
    {0.0, 4, 10, 1},
    {0.05, 4, 10, 1},
    {0.1, 4, 10, 1},
    {0.02, 4, 10, 1} /* T ~ 0.2 */,
    {0.5, 4, 10, 1},
    {1.0, 4, 10, 1},
    {3.0, 4, 10, 1} /* T = 1 */,
    {0.1, 4, 10, 0} /* eval */,
    {0.3, 2.5, 0 /* the default 10 */, 1},
    {0.25, 3, 7, 1},
    {-0.01, 4, 10, 1} /* d > 1 */,
};
#define PROGRESSIVE_COUNT (sizeof PROGRESSIVE / sizeof PROGRESSIVE[0])

/* Buffer layouts: offsets in floats from a 64-byte aligned start, and aliasing. */
typedef enum { SEPARATE, OUT_IS_X, OUT_IS_G } aliasing;
typedef struct {
    const char *name;
    size_t off_x, off_g, off_out;
    aliasing alias;
    int large; /* also used at the large length */
} layout;
static const layout LAYOUTS[] = {
    {"aligned", 0, 0, 0, SEPARATE, 1}, {"off1", 1, 1, 1, SEPARATE, 1},  {"off2", 2, 2, 2, SEPARATE, 0},
    {"off3", 3, 3, 3, SEPARATE, 0},    {"mixed", 1, 3, 2, SEPARATE, 0}, {"out=x", 0, 0, 0, OUT_IS_X, 1},
    {"out=x+3", 3, 1, 3, OUT_IS_X, 0}, {"out=g", 0, 0, 0, OUT_IS_G, 1}, {"out=g+2", 1, 2, 2, OUT_IS_G, 0},
};
#define LAYOUT_COUNT (sizeof LAYOUTS / sizeof LAYOUTS[0])

/* Input families. The general ones serve every quantizer; WeightDoReFa's global max needs its own. */
typedef enum {
    F_EDGE,
    F_UNIFORM,
    F_SMALL,
    F_WIDE,
    F_GENERAL_END,
    W_NANFREE = F_GENERAL_END,
    W_ONE_NAN,
    W_ZEROS,
    W_UNIFORM,
    W_SMALL,
    W_WIDE,
    F_END
} family;
static const char *const FAMILY_NAMES[] = {"edge",   "uniform3", "small",    "wide",  "nanfree",
                                           "onenan", "zeros",    "uniform3", "small", "wide"};

static int passed, failed, printed;
/* Failed checks per quantizer and direction; at most PRINTED_PER_KIND lines for each. */
#define PRINTED_PER_KIND 2
static int failed_by[TEST_QUANTIZER_COUNT][2], printed_by[TEST_QUANTIZER_COUNT][2];
/* The distinct parameter sets that failed, per quantizer and direction, for the summary. */
#define LISTED_CASES 4
static char failed_cases[TEST_QUANTIZER_COUNT][2][LISTED_CASES][160];
static const char *variant_name = "?";

/* ---- the path under test ---- */

static test_path path; /* how the kernels are called (test_path_choose) */

/* Through device memory: upload, run, download; out may alias x or g, and then so do the device buffers. */
static bq_status call_on_device(const bq_quantizer *lib, int backward, const float *x, const float *g, float *out,
                                size_t n) {
    size_t bytes = n * sizeof(float);
    void *dx = test_device_alloc(path.device, bytes);
    void *dg = backward ? test_device_alloc(path.device, bytes) : NULL;
    void *dout = out == x ? dx : out == g ? dg : test_device_alloc(path.device, bytes);
    bq_status s = BQ_E_RUNTIME;
    if (n > 0 && (dx == NULL || dout == NULL || (backward && dg == NULL))) {
        printf("FAIL cannot allocate %zu bytes on the device\n", bytes);
    } else if (test_device_upload(path.device, dx, x, bytes) != 0 ||
               (backward && test_device_upload(path.device, dg, g, bytes) != 0)) {
        printf("FAIL cannot upload %zu bytes to the device\n", bytes);
    } else {
        void *queue = test_device_queue(path.device), *context = test_device_context(path.device);
        if (path.backend == BQ_BACKEND_CUDA) {
            s = backward ? bq_cuda_backward(lib, dx, dg, dout, n, queue) : bq_cuda_forward(lib, dx, dout, n, queue);
        } else {
            s = backward ? bq_opencl_backward(lib, context, queue, dx, dg, dout, n)
                         : bq_opencl_forward(lib, context, queue, dx, dout, n);
        }
        if (s == BQ_OK && test_device_download(path.device, out, dout, bytes) != 0) {
            printf("FAIL cannot download %zu bytes from the device\n", bytes);
            s = BQ_E_RUNTIME;
        }
    }
    if (dout != dx && dout != dg) test_device_free(path.device, dout);
    test_device_free(path.device, dx);
    test_device_free(path.device, dg);
    return s;
}

static bq_status call_kernel(const bq_quantizer *lib, int backward, const float *x, const float *g, float *out,
                             size_t n) {
    switch (path.kind) {
    case TEST_PATH_HOST:
        return backward ? bq_device_backward_host(lib, path.backend, x, g, out, n)
                        : bq_device_forward_host(lib, path.backend, x, out, n);
    case TEST_PATH_DEVICE:
        return call_on_device(lib, backward, x, g, out, n);
    default:
        return backward ? bq_backward(lib, x, g, out, n) : bq_forward(lib, x, out, n);
    }
}


/* ---- inputs ---- */

#define MAX_EDGES 2048
static float edges[MAX_EDGES];
static size_t edge_count;
static float nanfree_edges[MAX_EDGES];
static size_t nanfree_edge_count;

static void add_edge(float v) {
    if (edge_count < MAX_EDGES) edges[edge_count++] = v;
}

/* v and its float neighbours, both signs. */
static void add_edge_near(float v, int ulps) {
    float up = v, down = v;
    add_edge(v);
    add_edge(-v);
    for (int i = 0; i < ulps; i++) {
        up = nextafterf(up, INFINITY);
        down = nextafterf(down, -INFINITY);
        add_edge(up);
        add_edge(down);
        add_edge(-up);
        add_edge(-down);
    }
}

/* The spec's edge values (sections 2 and 5) and the points where each formula changes behaviour. */
static void build_edges(void) {
    const float singles[] = {INFINITY, 3e38f,   2.0f,    1.00000012f, 1.0f,  0.5f,    0.0f,  5e-8f,    1.3f,
                             FLT_MAX,  FLT_MIN, 1e-40f,  1e-45f,      1e-7f, 5.9e-8f, 6e-8f, 0x1p-24f, 0x1p-25f,
                             9.0f,     9.01f,   9.02f,   17.0f,       17.4f, 17.5f,   17.6f, 17.74f,   18.0f,
                             1e37f,    2e37f,   1.4e37f, 88.0f,       89.0f, 89.5f};
    for (size_t i = 0; i < sizeof singles / sizeof singles[0]; i++)
        add_edge_near(singles[i], 1);
    add_edge(NAN);
    add_edge(copysignf(NAN, -1.0f));             /* a NaN with its sign bit set */
    add_edge(test_float_from_bits(0x7fc12345u)); /* a NaN with a payload */
    add_edge_near(0x1p127f, 2);                  /* |x| >= 2^127: 2|x| overflows in approxsign */
    add_edge_near(1.0f, 2);
    /* Every InputDoReFa tie point (2k+1)/(2L), L = 1, 3, 15, 255, and its neighbours. */
    const int levels[] = {1, 3, 15, 255};
    for (int l = 0; l < 4; l++) {
        for (int k = 0; k < levels[l]; k++) {
            float tie = (float)((2.0 * k + 1.0) / (2.0 * levels[l]));
            add_edge(tie);
            add_edge(nextafterf(tie, 0.0f));
            add_edge(nextafterf(tie, 1.0f));
        }
    }
    /* SwishSign: cosh(bx) overflows near |bx| = 89.4 (exp near 88.72); b*(b*x) overflows near FLT_MAX/b^2. */
    const float betas[] = {0.3f, 1.0f, 5.0f, 10.0f};
    const double turning[] = {88.0, 88.72, 88.7228, 89.0, 89.4, 89.41598, 89.415985, 89.416, 89.5, 90.0};
    for (int b = 0; b < 4; b++) {
        for (size_t t = 0; t < sizeof turning / sizeof turning[0]; t++) {
            add_edge_near((float)(turning[t] / betas[b]), 1);
        }
        add_edge_near((float)(FLT_MAX / ((double)betas[b] * betas[b])), 1);
        if (betas[b] > 1.0f) add_edge_near((float)(FLT_MAX / betas[b]), 1);
        add_edge_near((float)(2.4 / betas[b]), 1); /* the derivative changes sign near |bx| = 2.4 */
    }
    /* ProgressiveSign: x = ±d and its neighbours give exactly ±1 or just inside; ±d/2. */
    for (size_t c = 0; c < PROGRESSIVE_COUNT; c++) {
        bq_params p = test_default_params();
        p.progressive_scale = PROGRESSIVE[c].scale;
        p.progressive_alpha = PROGRESSIVE[c].alpha;
        p.progressive_beta = PROGRESSIVE[c].beta;
        float d = ref_progressive_divisor(&p);
        add_edge_near(d, 1);
        add_edge(0.5f * d);
    }
    for (size_t i = 0; i < edge_count; i++) {
        if (!isnan(edges[i])) nanfree_edges[nanfree_edge_count++] = edges[i];
    }
}

/* Gradients: mostly ordinary values, with ±0, ±inf, NaN, huge and tiny ones among them. */
static void make_gradients(test_rng *r, float *g, size_t n) {
    static const float specials[] = {0.0f,  -0.0f,  INFINITY, -INFINITY, NAN,      -1.0f, 1.0f,
                                     3e38f, -3e38f, 1e-30f,   -1e-40f,   65504.0f, 0.5f,  -2.0f};
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(r, 100);
        if (pick < 12) {
            g[i] = specials[test_rng_below(r, sizeof specials / sizeof specials[0])];
        } else if (pick < 20) {
            g[i] = test_rng_wide(r);
        } else {
            g[i] = test_rng_uniform(r, -2.0f, 2.0f);
        }
    }
}

static float random_of_scale(test_rng *r, int scale) {
    switch (scale) {
    case 0:
        return test_rng_uniform(r, -3.0f, 3.0f);
    case 1:
        return test_rng_uniform(r, -0.01f, 0.01f);
    default:
        return test_rng_wide(r);
    }
}

/* x for one family; edge families hold the whole edge list once where it fits, at a random position. */
static void make_inputs(test_rng *r, family f, float *x, size_t n) {
    const float *pool = f == W_NANFREE ? nanfree_edges : edges;
    size_t pool_count = f == W_NANFREE ? nanfree_edge_count : edge_count;
    for (size_t i = 0; i < n; i++) {
        switch (f) {
        case F_EDGE:
        case W_NANFREE:
            x[i] = test_rng_below(r, 100) < 40 ? pool[test_rng_below(r, (uint32_t)pool_count)]
                                               : random_of_scale(r, (int)test_rng_below(r, 3));
            break;
        case F_UNIFORM:
        case W_UNIFORM:
        case W_ONE_NAN:
            x[i] = random_of_scale(r, 0);
            break;
        case F_SMALL:
        case W_SMALL:
            x[i] = random_of_scale(r, 1);
            break;
        case F_WIDE:
        case W_WIDE:
            x[i] = random_of_scale(r, 2);
            break;
        case W_ZEROS:
            x[i] = test_rng_below(r, 2) ? 0.0f : -0.0f;
            break;
        default:
            x[i] = 0.0f;
            break;
        }
    }
    if ((f == F_EDGE || f == W_NANFREE) && n >= pool_count) {
        size_t at = test_rng_below(r, (uint32_t)(n - pool_count + 1));
        memcpy(x + at, pool, pool_count * sizeof(float));
    }
    if (f == W_ONE_NAN && n > 0) x[test_rng_below(r, (uint32_t)n)] = NAN;
}

/* ---- cases ---- */

typedef struct {
    const test_quantizer *q;
    bq_params p;
    int large; /* also run at the large length */
} test_case;

static void describe(const test_case *c, char *out, size_t size) {
    const bq_params *p = &c->p;
    char fields[96] = "";
    if (test_reads(c->q, "swish_beta")) snprintf(fields, sizeof fields, " beta=%g", p->swish_beta);
    if (test_reads(c->q, "dorefa_bits")) snprintf(fields, sizeof fields, " bits=%d", p->dorefa_bits);
    if (test_reads(c->q, "progressive_scale")) {
        snprintf(fields, sizeof fields, " scale=%g alpha=%g pbeta=%g train=%d", p->progressive_scale,
                 p->progressive_alpha, p->progressive_beta, p->training);
    }
    snprintf(out, size, "%s%s t=%g", c->q->name, fields, p->cancel_threshold);
}

/* The parameter sets of one quantizer, each with every cancellation threshold. A few go to the large length. */
static size_t make_cases(const test_quantizer *q, test_case *cases, size_t max) {
    size_t count = 0;
    size_t sets = test_reads(q, "swish_beta")          ? SWISH_BETA_COUNT
                  : test_reads(q, "dorefa_bits")       ? DOREFA_BITS_COUNT
                  : test_reads(q, "progressive_scale") ? PROGRESSIVE_COUNT
                                                       : 1;
    for (size_t s = 0; s < sets; s++) {
        for (size_t t = 0; t < THRESHOLD_COUNT && count < max; t++) {
            test_case c = {q, test_default_params(), 0};
            c.p.cancel_threshold = THRESHOLDS[t];
            if (test_reads(q, "swish_beta")) {
                c.p.swish_beta = SWISH_BETAS[s];
                c.large = (SWISH_BETAS[s] == 5.0f && t == 0) || (SWISH_BETAS[s] == 0.3f && t == 2);
            } else if (test_reads(q, "dorefa_bits")) {
                c.p.dorefa_bits = DOREFA_BITS[s];
                c.large = (DOREFA_BITS[s] == 1 && t == 0) || (DOREFA_BITS[s] == 4 && t == 1) ||
                          (DOREFA_BITS[s] == 8 && t == 2); /* 1 and 4 bits: WeightDoReFa's count kernel */
            } else if (test_reads(q, "progressive_scale")) {
                c.p.progressive_scale = PROGRESSIVE[s].scale;
                c.p.progressive_alpha = PROGRESSIVE[s].alpha;
                c.p.progressive_beta = PROGRESSIVE[s].beta;
                c.p.training = PROGRESSIVE[s].training;
                c.large = (s == 3 && t == 0) || (s == 7 && t == 2);
            } else {
                c.large = t == 0 || t == 2;
            }
            cases[count++] = c;
        }
    }
    return count;
}

/* ---- one check ---- */

typedef struct {
    test_buffer x, g, out;
    float *x_src, *g_src, *ref;
} workspace;

static void note_failed_case(size_t qi, int backward, const char *desc) {
    for (int k = 0; k < LISTED_CASES; k++) {
        char *slot = failed_cases[qi][backward][k];
        if (strcmp(slot, desc) == 0) return;
        if (slot[0] == '\0') {
            snprintf(slot, sizeof failed_cases[qi][backward][k], "%s", desc);
            return;
        }
    }
}

static void report(const test_case *c, const char *what, const char *desc, int backward, const char *fam, size_t n,
                   const layout *l) {
    size_t qi = (size_t)(c->q - TEST_QUANTIZERS);
    note_failed_case(qi, backward, desc);
    if (printed_by[qi][backward]++ < PRINTED_PER_KIND && printed++ < MAX_PRINTED) {
        printf("FAIL %s %s [%s] family=%s n=%zu layout=%s: %s\n", desc, backward ? "bwd" : "fwd", variant_name, fam, n,
               l->name, what);
    }
}

static void run_check(const bq_quantizer *lib, const test_case *c, const char *desc, int backward, family fam, size_t n,
                      const layout *l, workspace *w) {
    float *x = test_buffer_at(&w->x, l->off_x);
    float *g = test_buffer_at(&w->g, l->off_g);
    float *out;
    size_t off_out = l->off_out;
    test_buffer *out_buffer = &w->out;
    test_buffer_fill(&w->x, l->off_x, w->x_src, n);
    if (backward) test_buffer_fill(&w->g, l->off_g, w->g_src, n);
    if (l->alias == OUT_IS_X) {
        out = x;
        out_buffer = &w->x;
        off_out = l->off_x;
    } else if (l->alias == OUT_IS_G) {
        out = g;
        out_buffer = &w->g;
        off_out = l->off_g;
    } else {
        test_buffer_fill(&w->out, l->off_out, NULL, n);
        out = test_buffer_at(&w->out, l->off_out);
    }

    bq_status s = call_kernel(lib, backward, x, g, out, n);
    const char *fam_name = FAMILY_NAMES[fam];
    char what[320];
    if (s != BQ_OK) {
        snprintf(what, sizeof what, "status %d (%s)", (int)s, bq_last_error());
        report(c, what, desc, backward, fam_name, n, l);
        failed++;
        failed_by[c->q - TEST_QUANTIZERS][backward]++;
        return;
    }
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = backward ? w->g_src[i] : 0.0f;
        if (!test_output_matches(c->q->name, &c->p, backward, w->x_src[i], gi, out[i], w->ref[i])) {
            if (bad++ == 0) first = i;
        }
    }
    int ok = bad == 0;
    if (bad > 0) {
        snprintf(what, sizeof what, "%zu mismatches, first i=%zu x=%a g=%a ours=%a ref=%a", bad, first, w->x_src[first],
                 backward ? w->g_src[first] : 0.0f, out[first], w->ref[first]);
        report(c, what, desc, backward, fam_name, n, l);
    }
    if (!test_guards_intact(out_buffer, off_out, n)) {
        ok = 0;
        report(c, "wrote outside the output range", desc, backward, fam_name, n, l);
    }
    /* Inputs that are not the output must come back unchanged, guards included. */
    if (l->alias != OUT_IS_X &&
        (memcmp(x, w->x_src, n * sizeof(float)) != 0 || !test_guards_intact(&w->x, l->off_x, n))) {
        ok = 0;
        report(c, "changed x", desc, backward, fam_name, n, l);
    }
    if (backward && l->alias != OUT_IS_G &&
        (memcmp(g, w->g_src, n * sizeof(float)) != 0 || !test_guards_intact(&w->g, l->off_g, n))) {
        ok = 0;
        report(c, "changed grad_y", desc, backward, fam_name, n, l);
    }
    if (ok) {
        passed++;
    } else {
        failed++;
        failed_by[c->q - TEST_QUANTIZERS][backward]++;
    }
}

static void run_case(const test_case *c, size_t case_index, int large, workspace *w) {
    char desc[160];
    describe(c, desc, sizeof desc);
    bq_quantizer *lib = NULL;
    if (bq_create(c->q->name, &c->p, &lib) != BQ_OK) {
        if (printed++ < MAX_PRINTED) printf("FAIL %s: bq_create: %s\n", desc, bq_last_error());
        failed++;
        return;
    }
    int weightdorefa = strcmp(c->q->name, "weightdorefa") == 0;
    family first = weightdorefa ? W_NANFREE : F_EDGE;
    family last = weightdorefa ? F_END : F_GENERAL_END;
    for (int backward = 0; backward <= 1; backward++) {
        for (family f = first; f < last; f++) {
            if (large && f != first) break;
            size_t length_count = large ? 1 : LENGTH_COUNT;
            for (size_t li = 0; li < length_count; li++) {
                size_t n = large ? LARGE_LENGTH : LENGTHS[li];
                uint64_t seed = (uint64_t)case_index * 1000003u + (uint64_t)f * 7919u + n * 31u + (uint64_t)backward;
                test_rng r = test_rng_seed(seed);
                make_inputs(&r, f, w->x_src, n);
                make_gradients(&r, w->g_src, n);
                bq_status rs = backward ? ref_backward(c->q->name, &c->p, w->x_src, w->g_src, w->ref, n)
                                        : ref_forward(c->q->name, &c->p, w->x_src, w->ref, n);
                if (rs != BQ_OK) {
                    if (printed++ < MAX_PRINTED) printf("FAIL %s: the reference returned %d\n", desc, (int)rs);
                    failed++;
                    continue;
                }
                for (size_t k = 0; k < LAYOUT_COUNT; k++) {
                    const layout *l = &LAYOUTS[k];
                    if (!backward && l->alias == OUT_IS_G) continue;
                    if (large && !l->large) continue;
                    run_check(lib, c, desc, backward, f, n, l, w);
                }
            }
        }
    }
    bq_destroy(lib);
}

static int alloc_workspace(workspace *w, size_t n) {
    w->x_src = malloc(n * sizeof(float));
    w->g_src = malloc(n * sizeof(float));
    w->ref = malloc(n * sizeof(float));
    return w->x_src && w->g_src && w->ref && test_buffer_alloc(&w->x, n) && test_buffer_alloc(&w->g, n) &&
           test_buffer_alloc(&w->out, n);
}

int main(int argc, char **argv) {
    int chosen = test_path_choose(argc, argv, "test_conformance", &path);
    if (chosen != 0) return chosen;
    variant_name = path.name;
    const char *variant = NULL;
    bq_status s = bq_cpu_variant_active(&variant);
    if (s == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    if (s != BQ_OK || variant == NULL) {
        printf("FAIL bq_cpu_variant_active: status %d (%s)\n", (int)s, bq_last_error());
        return 1;
    }
    if (path.kind == TEST_PATH_CPU) variant_name = variant;
    const char *large_env = getenv("BITQUANT_TEST_LARGE");
    int run_large = large_env == NULL || strcmp(large_env, "0") != 0;
    printf("conformance: %s, %zu quantizers%s\n", variant_name, TEST_QUANTIZER_COUNT,
           run_large ? "" : ", large length skipped");

    build_edges();
    workspace w;
    if (!alloc_workspace(&w, run_large ? LARGE_LENGTH : LENGTHS[LENGTH_COUNT - 1])) {
        printf("FAIL out of memory\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    test_case cases[128];
    size_t case_index = 0;
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        size_t count = make_cases(&TEST_QUANTIZERS[qi], cases, sizeof cases / sizeof cases[0]);
        for (size_t c = 0; c < count; c++, case_index++) {
            run_case(&cases[c], case_index, 0, &w);
            if (run_large && cases[c].large) run_case(&cases[c], case_index, 1, &w);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (size_t qi = 0; qi < TEST_QUANTIZER_COUNT; qi++) {
        for (int backward = 0; backward <= 1; backward++) {
            if (failed_by[qi][backward] == 0) continue;
            printf("failed: %s %s, %d checks, in:", TEST_QUANTIZERS[qi].name, backward ? "bwd" : "fwd",
                   failed_by[qi][backward]);
            for (int k = 0; k < LISTED_CASES && failed_cases[qi][backward][k][0] != '\0'; k++) {
                printf("%s [%s]", k > 0 ? "," : "", failed_cases[qi][backward][k]);
            }
            printf("\n");
        }
    }
    printf("time: %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    printf("conformance[%s]: %d passed, %d failed\n", variant_name, passed, failed);
    test_device_close(path.device);
    test_buffer_free(&w.x);
    test_buffer_free(&w.g);
    test_buffer_free(&w.out);
    free(w.x_src);
    free(w.g_src);
    free(w.ref);
    return failed == 0 ? 0 : 1;
}
