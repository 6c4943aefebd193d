/* Every bad argument gets its status and a message naming the problem, and leaves the outputs untouched
 * (DESIGN.md, "The C API"); NULL pointers with n == 0 are fine; the library keeps working after a failure.
 * Partial overlaps of outputs and inputs are rejected the same way. Also the parameter conventions that are
 * not errors: swish_beta 0 means 5, a negative cancel_threshold means no cancellation. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"
#include "test_common.h"

#define N 8
static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s (last error: \"%s\")\n", what, bq_last_error() != NULL ? bq_last_error() : "(NULL)");
    }
}

/* Whether msg holds `word` (case-insensitive) with no letter, digit or '_' right before or after it. */
static int has_word(const char *msg, const char *word) {
    size_t m = strlen(msg), w = strlen(word);
    for (size_t i = 0; i + w <= m; i++) {
        size_t k = 0;
        while (k < w && tolower((unsigned char)msg[i + k]) == tolower((unsigned char)word[k]))
            k++;
        if (k < w) continue;
        int before = i > 0 && (isalnum((unsigned char)msg[i - 1]) || msg[i - 1] == '_');
        int after = i + w < m && (isalnum((unsigned char)msg[i + w]) || msg[i + w] == '_');
        if (!before && !after) return 1;
    }
    return 0;
}

/* The message is non-empty and names the problem: one of the '|'-separated words. */
static int names_problem(const char *words) {
    const char *msg = bq_last_error();
    if (msg == NULL || msg[0] == '\0') return 0;
    char copy[128];
    snprintf(copy, sizeof copy, "%s", words);
    for (char *w = strtok(copy, "|"); w != NULL; w = strtok(NULL, "|")) {
        if (has_word(msg, w)) return 1;
    }
    return 0;
}

static bq_quantizer *const SENTINEL_Q = (bq_quantizer *)(uintptr_t)0x5A5A5A50u;

static void expect_create_fails(const char *label, const char *name, const bq_params *p, bq_status want,
                                const char *words) {
    char what[160];
    bq_quantizer *q = SENTINEL_Q;
    bq_status s = bq_create(name, p, &q);
    snprintf(what, sizeof what, "%s: status %d, want %d", label, (int)s, (int)want);
    check(s == want, what);
    snprintf(what, sizeof what, "%s: message should name %s", label, words);
    check(names_problem(words), what);
    snprintf(what, sizeof what, "%s: *out was written", label);
    check(q == SENTINEL_Q, what);
    if (s == BQ_OK && q != SENTINEL_Q) bq_destroy(q);
}

static void check_create_errors(void) {
    bq_params p;
    expect_create_fails("bq_create(NULL name)", NULL, NULL, BQ_E_INVALID, "null|name");
    expect_create_fails("bq_create(unknown name)", "nosuchquantizer", NULL, BQ_E_UNKNOWN,
                        "nosuchquantizer|unknown|not found|no quantizer");
    expect_create_fails("bq_create(\"\")", "", NULL, BQ_E_UNKNOWN, "unknown|not found|no quantizer|empty");
    expect_create_fails("bq_create(\"Sign\")", "Sign", NULL, BQ_E_UNKNOWN, "Sign|unknown|not found|no quantizer");

    bq_status s = bq_create("sign", NULL, NULL);
    check(s == BQ_E_INVALID, "bq_create(out NULL): status");
    check(names_problem("null|out"), "bq_create(out NULL): message should name null|out");

    const int bad_bits[] = {0, -1, 25};
    const char *dorefa[] = {"inputdorefa", "weightdorefa"};
    for (int d = 0; d < 2; d++) {
        for (int b = 0; b < 3; b++) {
            char label[64];
            p = test_default_params();
            p.dorefa_bits = bad_bits[b];
            snprintf(label, sizeof label, "%s dorefa_bits=%d", dorefa[d], bad_bits[b]);
            expect_create_fails(label, dorefa[d], &p, BQ_E_INVALID, "dorefa_bits");
        }
    }
    const float bad_betas[] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++) {
        char label[64];
        p = test_default_params();
        p.swish_beta = bad_betas[b];
        snprintf(label, sizeof label, "swishsign swish_beta=%g", bad_betas[b]);
        expect_create_fails(label, "swishsign", &p, BQ_E_INVALID, "swish_beta");
    }
    const char *any[] = {"sign", "swishsign", "identity"};
    for (int k = 0; k < 3; k++) {
        char label[64];
        p = test_default_params();
        p.cancel_threshold = NAN;
        snprintf(label, sizeof label, "%s cancel_threshold=NaN", any[k]);
        expect_create_fails(label, any[k], &p, BQ_E_INVALID, "cancel_threshold");
    }
    const double bad_alphas[] = {0.0, -1.0, NAN, INFINITY};
    for (int a = 0; a < 4; a++) {
        char label[64];
        p = test_default_params();
        p.progressive_alpha = bad_alphas[a];
        snprintf(label, sizeof label, "progressive_sign progressive_alpha=%g", bad_alphas[a]);
        expect_create_fails(label, "progressive_sign", &p, BQ_E_INVALID, "progressive_alpha");
    }
}

static int untouched(const float *buf, size_t n) { return test_bytes_are(buf, n * sizeof(float), TEST_GUARD_BYTE); }

static void check_call_errors(const char *name) {
    float x[N], g[N], out[N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)i - 3.5f;
        g[i] = 1.0f;
    }
    bq_quantizer *q = NULL;
    if (bq_create(name, NULL, &q) != BQ_OK) {
        check(0, "bq_create for the call checks");
        return;
    }
    char what[160];
#define EXPECT_CALL(call, words, label)                                                           \
    do {                                                                                          \
        memset(out, TEST_GUARD_BYTE, sizeof out);                                                 \
        bq_status s_ = (call);                                                                    \
        snprintf(what, sizeof what, "%s %s: status %d, want BQ_E_INVALID", name, label, (int)s_); \
        check(s_ == BQ_E_INVALID, what);                                                          \
        snprintf(what, sizeof what, "%s %s: message should name %s", name, label, words);         \
        check(names_problem(words), what);                                                        \
        snprintf(what, sizeof what, "%s %s: output was written", name, label);                    \
        check(untouched(out, N), what);                                                           \
    } while (0)
    EXPECT_CALL(bq_forward(NULL, x, out, N), "null|quantizer|q", "bq_forward(NULL quantizer)");
    EXPECT_CALL(bq_forward(q, NULL, out, N), "null|x", "bq_forward(x NULL)");
    EXPECT_CALL(bq_forward(q, x, NULL, N), "null|y", "bq_forward(y NULL)");
    EXPECT_CALL(bq_backward(NULL, x, g, out, N), "null|quantizer|q", "bq_backward(NULL quantizer)");
    EXPECT_CALL(bq_backward(q, NULL, g, out, N), "null|x", "bq_backward(x NULL)");
    EXPECT_CALL(bq_backward(q, x, NULL, out, N), "null|grad_y|g", "bq_backward(grad_y NULL)");
    EXPECT_CALL(bq_backward(q, x, g, NULL, N), "null|grad_x|dx", "bq_backward(grad_x NULL)");
#undef EXPECT_CALL

    /* n == 0: NULL data pointers are fine and nothing is written. */
    snprintf(what, sizeof what, "%s bq_forward(q, NULL, NULL, 0) is BQ_OK", name);
    check(bq_forward(q, NULL, NULL, 0) == BQ_OK, what);
    snprintf(what, sizeof what, "%s bq_backward(q, NULL, NULL, NULL, 0) is BQ_OK", name);
    check(bq_backward(q, NULL, NULL, NULL, 0) == BQ_OK, what);
    memset(out, TEST_GUARD_BYTE, sizeof out);
    snprintf(what, sizeof what, "%s n == 0 with buffers: BQ_OK and nothing written", name);
    check(bq_forward(q, x, out, 0) == BQ_OK && bq_backward(q, x, g, out, 0) == BQ_OK && untouched(out, N), what);
    bq_destroy(q);
}

/* Arrays that overlap without being the same memory (an output a few elements ahead of or behind an input, or
 * ending inside it), and saved planes on top of x, y or grad_x, are rejected before anything is written; exactly
 * in place still runs. buf holds every array of a call, so "untouched" is the whole buffer unchanged. */
static void check_overlaps(void) {
    enum { M = 16, LEN = 64 };
    float buf[LEN], before[LEN], other[LEN];
    uint32_t saved[4];
    bq_params p;
    bq_params_init(&p);
    p.cancel_threshold = 1.3f; /* steheaviside keeps two planes: 2 words for 16 elements */
    bq_quantizer *q = NULL;
    if (bq_create("steheaviside", &p, &q) != BQ_OK) {
        check(0, "bq_create(steheaviside) for the overlap checks");
        return;
    }
    float *x = buf + 16;
    char what[200];
#define EXPECT_OVERLAP(call, label)                                                                  \
    do {                                                                                             \
        for (int i_ = 0; i_ < LEN; i_++) buf[i_] = (float)(i_ % 7) - 2.5f;                           \
        memcpy(before, buf, sizeof buf);                                                             \
        bq_status s_ = (call);                                                                       \
        snprintf(what, sizeof what, "%s: status %d, want BQ_E_INVALID", label, (int)s_);             \
        check(s_ == BQ_E_INVALID, what);                                                             \
        snprintf(what, sizeof what, "%s: message should say overlap or same memory", label);         \
        check(names_problem("overlap|same"), what);                                                  \
        snprintf(what, sizeof what, "%s: memory was written", label);                                \
        check(memcmp(before, buf, sizeof buf) == 0, what);                                           \
    } while (0)
    EXPECT_OVERLAP(bq_forward(q, x, x + 1, M), "bq_forward(y = x + 1)");
    EXPECT_OVERLAP(bq_forward(q, x, x - 3, M), "bq_forward(y = x - 3)");
    EXPECT_OVERLAP(bq_forward(q, x, x - M + 1, M), "bq_forward(y ending in x's first element)");
    EXPECT_OVERLAP(bq_forward_typed(q, BQ_F32, x, BQ_F16, (uint16_t *)x + 1, 1, M), "bq_forward_typed(F16 y inside x)");
    EXPECT_OVERLAP(bq_forward_typed(q, BQ_F16, x, BQ_F32, x - 1, 1, M), "bq_forward_typed(F32 y over F16 x)");
    EXPECT_OVERLAP(bq_forward_typed(q, BQ_F32, x, BQ_BIT, (uint32_t *)x + 3, 2, M / 2), "bq_forward_typed(BIT inside x)");
    EXPECT_OVERLAP(bq_backward(q, x, x + M, x + M + 2, M), "bq_backward(grad_x = grad_y + 2)");
    EXPECT_OVERLAP(bq_backward(q, x, x + M, x + 5, M), "bq_backward(grad_x across x and grad_y)");
    EXPECT_OVERLAP(bq_forward_save(q, x, x + M, (uint32_t *)x, M), "bq_forward_save(saved == x)");
    EXPECT_OVERLAP(bq_forward_save(q, x, x, (uint32_t *)x + M - 1, M), "bq_forward_save(saved in y == x)");
    EXPECT_OVERLAP(bq_forward_save(q, x, x + M, (uint32_t *)x + 2 * M - 1, M), "bq_forward_save(saved over y's end)");
    EXPECT_OVERLAP(bq_backward_saved(q, (uint32_t *)x, x + M, x, M), "bq_backward_saved(grad_x == saved)");
    EXPECT_OVERLAP(bq_backward_saved(q, saved, x, x + 1, M), "bq_backward_saved(grad_x = grad_y + 1)");
    EXPECT_OVERLAP(bq_device_forward_host(q, BQ_BACKEND_OPENCL, x, x + 1, M), "bq_device_forward_host(y = x + 1)");
    EXPECT_OVERLAP(bq_cuda_forward(q, x, x + 2, M, NULL), "bq_cuda_forward(y = x + 2)");
#undef EXPECT_OVERLAP

    /* Exactly in place, and arrays side by side (touching, not overlapping), still run. */
    for (int i = 0; i < LEN; i++) buf[i] = (float)(i % 7) - 2.5f;
    check(bq_forward(q, x, x, M) == BQ_OK, "bq_forward in place");
    check(bq_forward(q, x, x + M, M) == BQ_OK && bq_forward(q, x, x - M, M) == BQ_OK, "bq_forward beside x");
    check(bq_backward(q, x, x + M, x + M, M) == BQ_OK && bq_backward(q, x, x + M, x, M) == BQ_OK,
          "bq_backward in place on grad_y and on x");
    check(bq_forward_save(q, other, other, saved, M) == BQ_OK, "bq_forward_save in place, saved apart");
    check(bq_backward_saved(q, saved, other, other, M) == BQ_OK, "bq_backward_saved in place, saved apart");
    check(bq_forward_typed(q, BQ_F32, x, BQ_BIT, (uint32_t *)(x + M), 2, M / 2) == BQ_OK, "BIT words beside x");
    bq_destroy(q);
}

/* Introspection arguments that are out of range (the header's documented answers). */
static void check_introspection(void) {
    size_t count = bq_quantizer_count();
    check(count == TEST_QUANTIZER_COUNT, "bq_quantizer_count() is the kernel table's length");
    for (size_t i = 0; i < count && i < TEST_QUANTIZER_COUNT; i++) {
        bq_quantizer_info info;
        int ok = bq_quantizer_info_at(i, &info) == BQ_OK && info.name != NULL && info.params != NULL &&
                 strcmp(info.name, TEST_QUANTIZERS[i].name) == 0 && strcmp(info.params, TEST_QUANTIZERS[i].fields) == 0;
        char what[96];
        snprintf(what, sizeof what, "bq_quantizer_info_at(%zu) names %s and its fields", i, TEST_QUANTIZERS[i].name);
        check(ok, what);
    }
    bq_quantizer_info info;
    memset(&info, TEST_GUARD_BYTE, sizeof info);
    check(bq_quantizer_info_at(count, &info) == BQ_E_INVALID, "bq_quantizer_info_at(count): BQ_E_INVALID");
    check(test_bytes_are(&info, sizeof info, TEST_GUARD_BYTE), "bq_quantizer_info_at(count): info untouched");
    check(bq_quantizer_info_at(0, NULL) == BQ_E_INVALID, "bq_quantizer_info_at(0, NULL): BQ_E_INVALID");
    check(bq_cpu_variant_name(bq_cpu_variant_count()) == NULL, "bq_cpu_variant_name(count) is NULL");
    check(bq_cpu_variant_supported(bq_cpu_variant_count()) == -1, "bq_cpu_variant_supported(count) is -1");
    for (size_t v = 0; v < bq_cpu_variant_count(); v++) {
        int supported = bq_cpu_variant_supported(v);
        check(supported == 0 || supported == 1, "bq_cpu_variant_supported(i) is 0 or 1"); /* the builtin's bit leaked */
    }
    check(bq_set_num_threads(0) == BQ_E_INVALID, "bq_set_num_threads(0): BQ_E_INVALID");
    check(bq_set_num_threads(-3) == BQ_E_INVALID, "bq_set_num_threads(-3): BQ_E_INVALID");
}

/* Parameters that look odd but are valid: swish_beta 0 is bitorch's default 5; cancel_threshold < 0 is off. */
static void check_parameter_conventions(void) {
    const float x[N] = {0.0f, 0.3f, -0.7f, 1.5f, -2.5f, 17.0f, NAN, INFINITY};
    const float g[N] = {1.0f, -2.0f, 0.5f, 3.0f, -1.0f, 1.0f, 1.0f, -4.0f};
    float dx0[N], dx5[N], want[N];
    bq_params p = test_default_params();
    bq_quantizer *q0 = NULL, *q5 = NULL;
    p.swish_beta = 0.0f;
    int ok = bq_create("swishsign", &p, &q0) == BQ_OK;
    p.swish_beta = 5.0f;
    ok = ok && bq_create("swishsign", &p, &q5) == BQ_OK;
    ok = ok && bq_backward(q0, x, g, dx0, N) == BQ_OK && bq_backward(q5, x, g, dx5, N) == BQ_OK;
    ok = ok && ref_backward("swishsign", &p, x, g, want, N) == BQ_OK;
    for (int i = 0; ok && i < N; i++)
        ok = ref_same(dx0[i], dx5[i]) && ref_swish_close(dx0[i], want[i], 5.0f, g[i]);
    check(ok, "swish_beta 0 behaves as 5");
    bq_destroy(q0);
    bq_destroy(q5);

    const float thresholds[] = {-1.0f, -INFINITY, -0.0f};
    for (int t = 0; t < 3; t++) {
        bq_quantizer *q = NULL;
        float dx[N];
        p = test_default_params();
        p.cancel_threshold = thresholds[t];
        ok = bq_create("sign", &p, &q) == BQ_OK && bq_backward(q, x, g, dx, N) == BQ_OK;
        for (int i = 0; ok && i < N; i++)
            ok = ref_same(dx[i], g[i]); /* sign's STE: dx = g everywhere */
        char what[80];
        snprintf(what, sizeof what, "cancel_threshold %g means no cancellation", thresholds[t]);
        check(ok, what);
        bq_destroy(q);
    }
}

/* After failures the library still works, and bq_last_error is the last message or "", never NULL. */
static void check_recovery(void) {
    bq_quantizer *q = SENTINEL_Q;
    bq_create("nosuchquantizer", NULL, &q);
    char previous[256];
    snprintf(previous, sizeof previous, "%s", bq_last_error() != NULL ? bq_last_error() : "");
    const float x[4] = {-1.5f, -0.0f, NAN, 2.0f};
    const float want[4] = {-1.0f, 1.0f, 1.0f, 1.0f};
    float y[4];
    q = NULL;
    int ok = bq_create("sign", NULL, &q) == BQ_OK && bq_forward(q, x, y, 4) == BQ_OK;
    for (int i = 0; ok && i < 4; i++)
        ok = ref_same(y[i], want[i]);
    check(ok, "a successful call after a failure works");
    const char *msg = bq_last_error();
    check(msg != NULL && (msg[0] == '\0' || strcmp(msg, previous) == 0),
          "after a success bq_last_error is \"\" or the previous message");
    bq_destroy(q);
}

int main(void) {
    const char *first = bq_last_error();
    check(first != NULL && first[0] == '\0', "bq_last_error() is \"\" before any call");
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    bq_destroy(NULL);
    check(1, "bq_destroy(NULL) is a no-op");
    check_create_errors();
    check_call_errors("sign");
    check_call_errors("weightdorefa");
    check_call_errors("swishsign");
    check_overlaps();
    check_introspection();
    check_parameter_conventions();
    check_recovery();
    check(bq_last_error() != NULL, "bq_last_error() is never NULL");
    printf("errors: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
