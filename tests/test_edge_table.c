/* The edge-value tables of spec/SEMANTICS.md section 5 (g = 1), and the exact values its section 2 states in
 * prose, typed in from the spec. Without arguments it checks the scalar reference; with "lib" it checks the
 * library (bq_create/bq_forward/bq_backward, the variant BITQUANT_CPU selects) as well.
 *
 * The tables print values to 7 significant digits, which does not always name one float32 (approxsign's dx
 * at x = 5e-8 is 2 - 1e-7 = 1.99999988, printed as 2): a finite nonzero expected value also matches a result
 * of its sign that prints the same with %.7g. Zeros (with their sign), infinities and NaN match exactly; the
 * conformance test compares every bit against the reference. SwishSign's backward uses the spec's tolerance
 * 1e-6*beta*|g|. Pact (section 4), no registry quantization in bitorch, is checked through bq_pact_forward and
 * bq_pact_backward, whose alpha and bits bq_params does not hold. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"

#define ROWS 17
#define MAXN 32

/* The x column of section 5. The tables print ±1.00000012 as ±1 where y = x. */
static const float X[ROWS] = {-INFINITY, -3e38f, -2.0f,       -1.00000012f, -1.0f, -0.5f, -0.0f,    0.0f, 5e-08f,
                              0.5f,      1.0f,   1.00000012f, 1.3f,         2.0f,  3e38f, INFINITY, NAN};

typedef struct {
    const char *label;
    const char *name;
    float swish_beta;       /* 0: default */
    int dorefa_bits;        /* 0: default */
    float cancel_threshold; /* 0: off */
    float y[ROWS];
    float dx[ROWS];
} column;

static const column COLUMNS[] = {
    {"sign",
     "sign",
     0,
     0,
     0,
     {-1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"approxsign",
     "approxsign",
     0,
     0,
     0,
     {-1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     {NAN, NAN, -0.0f, -0.0f, 0, 1, 2, 2, 2, 1, 0, -0.0f, -0.0f, -0.0f, NAN, NAN, NAN}},
    {"steheaviside",
     "steheaviside",
     0,
     0,
     0,
     {-1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1, -1},
     {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}},
    {"swishsign b=5",
     "swishsign",
     5.0f,
     0,
     0,
     {-1, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     {NAN, NAN, -0.003631252f, -0.1949922f, -0.1949923f, -0.08462162f, 5, 5, 5, -0.08462162f, -0.1949923f, -0.1949922f,
      -0.06715927f, -0.003631252f, NAN, NAN, NAN}},
    {"inputdorefa 1b",
     "inputdorefa",
     0,
     1,
     0,
     {0, 0, 0, 0, 0, 0, -0.0f, 0, 0, 0, 1, 1, 1, 1, 1, 1, NAN},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"inputdorefa 2b",
     "inputdorefa",
     0,
     2,
     0,
     {0, 0, 0, 0, 0, 0, -0.0f, 0, 0, 0.6666667f, 1, 1, 1, 1, 1, 1, NAN},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"progsign train T=0",
     "progressive_sign",
     0,
     0,
     0,
     {-1, -1, -1, -1, -1, -0.5f, -0.0f, 0, 5e-08f, 0.5f, 1, 1, 1, 1, 1, 1, NAN},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* GradientCancellation t=1 is QActivation over identity: y = x, dx = where(|x| <= 1, g, 0). */
    {"GC t=1",
     "identity",
     0,
     0,
     1.0f,
     {-INFINITY, -3e38f, -2, -1.00000012f, -1, -0.5f, -0.0f, 0, 5e-08f, 0.5f, 1, 1.00000012f, 1.3f, 2, 3e38f, INFINITY,
      NAN},
     {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}},
};

/* The WeightDoReFa table: applied to the NaN-free x column (M = 1); rows the spec lists. */
typedef struct {
    float x;
    float y[4]; /* 1, 2, 4, 8 bits */
} wd_row;

static const int WD_BITS[4] = {1, 2, 4, 8};
static const wd_row WD_ROWS[] = {
    {-INFINITY, {-1, -1, -1, -1}},
    {INFINITY, {1, 1, 1, 1}},
    {-3e38f, {-1, -1, -1, -1}},
    {3e38f, {1, 1, 1, 1}},
    {-2, {-1, -1, -1, -0.9607843f}},
    {2, {1, 1, 1, 0.9607843f}},
    {-1, {-1, -1, -0.7333333f, -0.7647059f}},
    {1, {1, 1, 0.7333333f, 0.7647059f}},
    {-0.5f, {-1, -0.3333333f, -0.4666666f, -0.4588235f}},
    {0.5f, {1, 0.3333334f, 0.4666667f, 0.4588236f}},
    {-0.0f, {-1, 0.3333334f, 0.06666672f, 0.003921628f}},
    {0.0f, {-1, 0.3333334f, 0.06666672f, 0.003921628f}},
    {5e-08f, {-1, 0.3333334f, 0.06666672f, 0.003921628f}},
};

static int passed, failed;
static int use_lib;

/* One implementation under test: the reference or the library. */
typedef enum { IMPL_REF, IMPL_LIB } impl;
static const char *impl_name(impl which) { return which == IMPL_REF ? "ref" : "lib"; }

static bq_params make_params(float swish_beta, int dorefa_bits, float cancel_threshold) {
    bq_params p;
    p.swish_beta = swish_beta != 0.0f ? swish_beta : 5.0f;
    p.dorefa_bits = dorefa_bits != 0 ? dorefa_bits : 1;
    p.progressive_scale = 0.0;
    p.progressive_alpha = 4.0;
    p.progressive_beta = 10.0;
    p.training = 1;
    p.cancel_threshold = cancel_threshold;
    return p;
}

#ifndef BITQUANT_TESTS_REFERENCE_ONLY
static bq_status lib_run(const char *name, const bq_params *p, const float *x, const float *g, float *y, float *dx,
                         size_t n) {
    bq_quantizer *q = NULL;
    bq_status s = bq_create(name, p, &q);
    if (s == BQ_OK) s = bq_forward(q, x, y, n);
    if (s == BQ_OK) s = bq_backward(q, x, g, dx, n);
    bq_destroy(q);
    return s;
}
#endif

/* y = forward(x) and dx = backward(x, g) with one implementation; 0 and a failure line if it errs. */
static int run(impl which, const char *name, const bq_params *p, const float *x, const float *g, float *y, float *dx,
               size_t n) {
    bq_status s;
    if (which == IMPL_REF) {
        s = ref_forward(name, p, x, y, n);
        if (s == BQ_OK) s = ref_backward(name, p, x, g, dx, n);
    } else {
#ifndef BITQUANT_TESTS_REFERENCE_ONLY
        s = lib_run(name, p, x, g, y, dx, n);
#else
        s = BQ_E_UNSUPPORTED;
#endif
    }
    if (s != BQ_OK) {
        failed++;
        printf("FAIL %s %s: status %d\n", impl_name(which), name, (int)s);
        return 0;
    }
    return 1;
}

/* Exact, or (for a finite nonzero spec value) the same value at the table's 7 significant digits. */
static int matches_display(float got, float want) {
    if (ref_same(got, want)) return 1;
    if (isnan(want) || isinf(want) || want == 0.0f || isnan(got) || isinf(got)) return 0;
    if (signbit(got) != signbit(want)) return 0;
    char a[32], b[32];
    snprintf(a, sizeof a, "%.7g", got);
    snprintf(b, sizeof b, "%.7g", want);
    return strcmp(a, b) == 0;
}

static void expect(impl which, const char *what, float x, float g, float got, float want, float swish_beta) {
    int ok = swish_beta != 0.0f ? ref_swish_close(got, want, swish_beta, g) : matches_display(got, want);
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL %s %s x=%.9g g=%g: got %.9g (%a), want %.9g\n", impl_name(which), what, x, g, got, got, want);
}

static void check_columns(impl which) {
    float g[ROWS], y[ROWS], dx[ROWS];
    for (int i = 0; i < ROWS; i++)
        g[i] = 1.0f;
    for (size_t c = 0; c < sizeof COLUMNS / sizeof COLUMNS[0]; c++) {
        const column *col = &COLUMNS[c];
        bq_params p = make_params(col->swish_beta, col->dorefa_bits, col->cancel_threshold);
        if (!run(which, col->name, &p, X, g, y, dx, ROWS)) continue;
        int swish = strcmp(col->name, "swishsign") == 0;
        char what[64];
        for (int i = 0; i < ROWS; i++) {
            snprintf(what, sizeof what, "%s y", col->label);
            expect(which, what, X[i], g[i], y[i], col->y[i], 0.0f);
            snprintf(what, sizeof what, "%s dx", col->label);
            expect(which, what, X[i], g[i], dx[i], col->dx[i], swish ? p.swish_beta : 0.0f);
        }
    }
}

static void check_weightdorefa_table(impl which) {
    float x[ROWS - 1], g[ROWS - 1], y[ROWS - 1], dx[ROWS - 1];
    for (int i = 0; i < ROWS - 1; i++) { /* the column without its NaN row (the last) */
        x[i] = X[i];
        g[i] = 1.0f;
    }
    for (int b = 0; b < 4; b++) {
        bq_params p = make_params(0, WD_BITS[b], 0);
        if (!run(which, "weightdorefa", &p, x, g, y, dx, ROWS - 1)) continue;
        char what[64];
        snprintf(what, sizeof what, "weightdorefa %db", WD_BITS[b]);
        for (size_t r = 0; r < sizeof WD_ROWS / sizeof WD_ROWS[0]; r++) {
            for (int i = 0; i < ROWS - 1; i++) {
                if (ref_same(x[i], WD_ROWS[r].x)) expect(which, what, x[i], 1.0f, y[i], WD_ROWS[r].y[b], 0.0f);
            }
        }
        snprintf(what, sizeof what, "weightdorefa %db dx", WD_BITS[b]);
        for (int i = 0; i < ROWS - 1; i++)
            expect(which, what, x[i], 1.0f, dx[i], 1.0f, 0.0f);
    }
}

/* The table's "pact α=1 2b" column, and section 4's trap: alpha = 3 at 3 bits gives s = 2.3333335 (the
 * reciprocal, then the multiply), so x >= alpha gives 2.99999976, not 3. */
static const float PACT_Y[ROWS] = {0, 0, 0, 0, 0, 0, -0.0f, 0, 0, 0.6666667f, 1, 1, 1, 1, 1, 1, NAN};
static const float PACT_DX[ROWS] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1};

static void check_pact(impl which) {
    float g[ROWS], y[ROWS], dx[ROWS], big[2] = {3.0f, 5.0f}, big_y[2];
    for (int i = 0; i < ROWS; i++)
        g[i] = 1.0f;
    bq_status s;
    if (which == IMPL_REF) {
        s = ref_pact_forward(X, y, ROWS, 1.0f, 2);
        if (s == BQ_OK) s = ref_pact_backward(X, g, dx, NULL, NULL, ROWS, 1.0f);
        if (s == BQ_OK) s = ref_pact_forward(big, big_y, 2, 3.0f, 3);
    } else {
        float alpha_grad;
        s = bq_pact_forward(X, y, ROWS, 1.0f, 2);
        if (s == BQ_OK) s = bq_pact_backward(X, g, dx, &alpha_grad, ROWS, 1.0f);
        if (s == BQ_OK) s = bq_pact_forward(big, big_y, 2, 3.0f, 3);
    }
    if (s != BQ_OK) {
        failed++;
        printf("FAIL %s pact: status %d\n", impl_name(which), (int)s);
        return;
    }
    for (int i = 0; i < ROWS; i++) {
        expect(which, "pact a=1 2b y", X[i], 1.0f, y[i], PACT_Y[i], 0.0f);
        expect(which, "pact a=1 2b dx", X[i], 1.0f, dx[i], PACT_DX[i], 0.0f);
    }
    for (int i = 0; i < 2; i++) { /* bit for bit: at 7 digits 2.99999976 prints as 3 */
        if (ref_same(big_y[i], 0x1.7ffffep+1f)) {
            passed++;
        } else {
            failed++;
            printf("FAIL %s pact a=3 3b x=%g: got %.9g, want 2.99999976\n", impl_name(which), big[i], big_y[i]);
        }
    }
}

/* One prose statement of spec sections 2 and 3: forward and backward of a short array, with expectations on
 * its elements (UNCHECKED: not checked). */
#define UNCHECKED 12345.0f
typedef struct {
    const char *what;
    const char *name;
    bq_params p;
    size_t n;
    float x[8], g[8];
    float y[8], dx[8]; /* UNCHECKED: not checked */
    int swish;         /* dx within the SwishSign tolerance */
} statement;

static bq_params params_with(float swish_beta, int dorefa_bits, double scale, int training, float cancel) {
    bq_params p = make_params(swish_beta, dorefa_bits, cancel);
    p.swish_beta = swish_beta; /* 0 stays 0: the fallback is under test */
    p.progressive_scale = scale;
    p.training = training;
    return p;
}

#define U UNCHECKED
static void check_statements(impl which) {
    const float below_2p127 = 0x1.fffffep126f; /* 2^127 - 1 ulp: 2|x| is still finite */
    const float two_p127 = 0x1p127f;
    const float d_t1 = 1.00000001e-07f; /* float32(1e-7): d at T >= 1 */
    statement s[] = {
        /* section 2, inputdorefa: ties go to even; float32(1/6) at 2 bits gives 0.5 -> 0. */
        {"inputdorefa 2b ties",
         "inputdorefa",
         params_with(0, 2, 0, 1, 0),
         3,
         {1.0f / 6.0f, 0.5f, 5.0f / 6.0f},
         {1, 1, 1},
         {0, 0.6666667f, 0.6666667f},
         {1, 1, 1},
         0},
        {"inputdorefa -0 and NaN",
         "inputdorefa",
         params_with(0, 8, 0, 1, 0),
         3,
         {-0.0f, NAN, -INFINITY},
         {-2, NAN, INFINITY},
         {-0.0f, NAN, 0},
         {-2, NAN, INFINITY},
         0},
        /* weightdorefa 1 bit with M = 1: 5.9e-8 -> -1, 6e-8 -> +1. */
        {"weightdorefa 1b tiny",
         "weightdorefa",
         params_with(0, 1, 0, 1, 0),
         4,
         {INFINITY, 5.9e-8f, 6e-8f, 0.0f},
         {1, 1, 1, 1},
         {1, -1, 1, -1},
         {1, 1, 1, 1},
         0},
        /* weightdorefa x = 0 exactly: 0.33333337 (2b), 0.06666672 (4b), 0.003921628 (8b). */
        {"weightdorefa 2b zero",
         "weightdorefa",
         params_with(0, 2, 0, 1, 0),
         2,
         {-3e38f, 0.0f},
         {1, 1},
         {-1, 0.33333337f},
         {1, 1},
         0},
        {"weightdorefa 4b zero",
         "weightdorefa",
         params_with(0, 4, 0, 1, 0),
         4,
         {3e38f, 0.0f, 0.5f, -0.5f},
         {1, 1, 1, 1},
         {1, 0.06666672f, 0.4666667f, -0.4666666f},
         {1, 1, 1, 1},
         0},
        {"weightdorefa 8b zero",
         "weightdorefa",
         params_with(0, 8, 0, 1, 0),
         2,
         {INFINITY, 0.0f},
         {1, 1},
         {1, 0.003921628f},
         {1, 1},
         0},
        /* weightdorefa: one NaN poisons everything; all zeros give 0/0; dx = g regardless. */
        {"weightdorefa NaN",
         "weightdorefa",
         params_with(0, 2, 0, 1, 0),
         3,
         {0.5f, NAN, -1},
         {3, -1, 0},
         {NAN, NAN, NAN},
         {3, -1, 0},
         0},
        {"weightdorefa zeros",
         "weightdorefa",
         params_with(0, 4, 0, 1, 0),
         3,
         {0.0f, -0.0f, 0.0f},
         {1, 1, 1},
         {NAN, NAN, NAN},
         {1, 1, 1},
         0},
        /* progressive_sign (alpha 4, beta 10): scale 0.05 -> d 0.5; 0.1 -> 0.25; 0.5 -> 2^-10; 1 -> 2^-20.
         * x = ±d gives ±1 exactly, x = 0.375d gives 0.375; no hardtanh' in the backward. */
        {"progsign scale 0.05",
         "progressive_sign",
         params_with(0, 0, 0.05, 1, 0),
         4,
         {0.5f, -0.5f, 0.1875f, 2.0f},
         {1, 1, 1, -3},
         {1, -1, 0.375f, 1},
         {1, 1, 1, -3},
         0},
        {"progsign scale 0.1",
         "progressive_sign",
         params_with(0, 0, 0.1, 1, 0),
         3,
         {0.25f, -0.25f, 0.09375f},
         {1, 1, 1},
         {1, -1, 0.375f},
         {1, 1, 1},
         0},
        {"progsign scale 0.5",
         "progressive_sign",
         params_with(0, 0, 0.5, 1, 0),
         3,
         {0x1p-10f, -0x1p-10f, 0x1.8p-12f},
         {1, 1, 1},
         {1, -1, 0.375f},
         {1, 1, 1},
         0},
        {"progsign scale 1.0",
         "progressive_sign",
         params_with(0, 0, 1.0, 1, 0),
         3,
         {0x1p-20f, -0x1p-20f, 0x1.8p-22f},
         {1, 1, 1},
         {1, -1, 0.375f},
         {1, 1, 1},
         0},
        /* T >= 1: d = 1e-7, 0 -> 0, -0 -> -0, |x| < 1e-7 gives |y| < 1, NaN -> NaN. */
        {"progsign T>=1",
         "progressive_sign",
         params_with(0, 0, 3.0, 1, 0),
         6,
         {0.0f, -0.0f, d_t1, -d_t1, 0.5f * d_t1, NAN},
         {1, 1, 1, 1, 1, NAN},
         {0.0f, -0.0f, 1, -1, 0.5f, NAN},
         {1, 1, 1, 1, 1, NAN},
         0},
        {"progsign eval",
         "progressive_sign",
         params_with(0, 0, 0.1, 0, 0),
         4,
         {NAN, -0.0f, -0.1f, 0.1f},
         {2, 2, 2, 2},
         {1, 1, -1, 1},
         {2, 2, 2, 2},
         0},
        /* approxsign, a multiply mask: outside, dx = -0*g (so +0 for g<0, NaN for g=±inf); |x| >= 2^127 -> NaN. */
        {"approxsign outside",
         "approxsign",
         params_with(0, 0, 0, 1, 0),
         7,
         {1.3f, 1.3f, -2.0f, below_2p127, two_p127, -two_p127, 0.0f},
         {-1, INFINITY, NAN, 1, 1, -1, -1},
         {1, 1, -1, 1, 1, -1, 1},
         {0.0f, NAN, NAN, -0.0f, NAN, NAN, -2},
         0},
        /* steheaviside, a multiply mask as well: negative g gives -0 outside, inf gives NaN. */
        {"steheaviside outside",
         "steheaviside",
         params_with(0, 0, 0, 1, 0),
         4,
         {2.0f, 2.0f, -INFINITY, 1.0f},
         {-1, INFINITY, 1, -1},
         {1, 1, -1, 1},
         {-0.0f, NAN, 0.0f, -1},
         0},
        /* GradientCancellation, a select: +0 outside whatever g is; t is inclusive and float32. */
        {"GC t=1.3",
         "sign",
         params_with(0, 0, 0, 1, 1.3f),
         6,
         {1.3f, 1.30000007f, -1.3f, 2.0f, 2.0f, NAN},
         {1, 1, -1, NAN, -INFINITY, 1},
         {1, 1, -1, 1, 1, 1},
         {1, 0.0f, -1, 0.0f, 0.0f, 0.0f},
         0},
        {"GC t=inf",
         "sign",
         params_with(0, 0, 0, 1, INFINITY),
         3,
         {INFINITY, -INFINITY, NAN},
         {-3, NAN, 1},
         {1, -1, 1},
         {-3, NAN, 0.0f},
         0},
        /* GC composes with the activation's own backward: approxsign inside, +0 outside. */
        {"GC t=0.5 approxsign",
         "approxsign",
         params_with(0, 0, 0, 1, 0.5f),
         3,
         {0.5f, -0.25f, 0.75f},
         {1, -1, -1},
         {1, -1, 1},
         {1, -1.5f, 0.0f},
         0},
        /* swishsign: dx(0) = beta*g; beta 0 means 5; NaN once b*(b*x) overflows (beta 5: |x| >~ 1.4e37);
         * beta <= 1: only ±inf give NaN. */
        {"swishsign b=0.3",
         "swishsign",
         params_with(0.3f, 0, 0, 1, 0),
         4,
         {0.0f, 3e38f, -INFINITY, NAN},
         {1, 1, 1, 1},
         {1, 1, -1, 1},
         {0.3f, 0.0f, NAN, NAN},
         1},
        {"swishsign b=0 (=5)",
         "swishsign",
         params_with(0.0f, 0, 0, 1, 0),
         3,
         {0.0f, 1e37f, -2e37f},
         {-1, 1, 1},
         {1, 1, -1},
         {-5, 0.0f, NAN},
         1},
        {"swishsign b=1",
         "swishsign",
         params_with(1.0f, 0, 0, 1, 0),
         3,
         {0.0f, -3e38f, INFINITY},
         {2, 1, 1},
         {1, -1, 1},
         {2, 0.0f, NAN},
         1},
        /* identity: y = x, dx = g, bit for bit. */
        {"identity",
         "identity",
         params_with(0, 0, 0, 1, 0),
         4,
         {-0.0f, NAN, 1e-45f, -FLT_MAX},
         {-0.0f, NAN, INFINITY, 1e-45f},
         {-0.0f, NAN, 1e-45f, -FLT_MAX},
         {-0.0f, NAN, INFINITY, 1e-45f},
         0},
    };
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
        float y[8], dx[8];
        if (!run(which, s[k].name, &s[k].p, s[k].x, s[k].g, y, dx, s[k].n)) continue;
        float beta = s[k].swish ? ref_swish_beta(&s[k].p) : 0.0f;
        char what[80];
        for (size_t i = 0; i < s[k].n; i++) {
            snprintf(what, sizeof what, "%s y[%zu]", s[k].what, i);
            if (s[k].y[i] != U) expect(which, what, s[k].x[i], s[k].g[i], y[i], s[k].y[i], 0.0f);
            snprintf(what, sizeof what, "%s dx[%zu]", s[k].what, i);
            if (s[k].dx[i] != U) expect(which, what, s[k].x[i], s[k].g[i], dx[i], s[k].dx[i], beta);
        }
    }
}
#undef U

int main(int argc, char **argv) {
    use_lib = argc > 1 && strcmp(argv[1], "lib") == 0;
    if (argc > 1 && !use_lib) {
        fprintf(stderr, "usage: %s [lib]\n", argv[0]);
        return 2;
    }
    check_columns(IMPL_REF);
    check_weightdorefa_table(IMPL_REF);
    check_statements(IMPL_REF);
    check_pact(IMPL_REF);
    if (use_lib) {
#ifdef BITQUANT_TESTS_REFERENCE_ONLY
        fprintf(stderr, "built without the library (BITQUANT_TESTS_REFERENCE_ONLY)\n");
        return 2;
#else
        const char *variant = NULL;
        if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
            printf("[SKIP] %s\n", bq_last_error());
            return 77;
        }
        printf("variant: %s\n", variant != NULL ? variant : "(null)");
        check_columns(IMPL_LIB);
        check_weightdorefa_table(IMPL_LIB);
        check_statements(IMPL_LIB);
        check_pact(IMPL_LIB);
#endif
    }
    printf("edge_table: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
