/* Concurrency under load: 8 threads run a mix of quantizers, directions and types (float32 forward and
 * backward, float16 forward and backward, bit-packed forward, saved-bit forward and backward), each on the
 * shared quantizers and on quantizers of its own, for a bounded time, while the main thread keeps changing
 * bq_set_num_threads. Every result must equal, byte for byte, the same call made alone on one thread before
 * the run, and no call may fail. n is past the kernels' serial limit, so calls run in parallel in the pool. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitquant.h"
#include "test_common.h"
#include "timing.h" /* tools/: the clock the benchmarks use */

#define N ((size_t)(1 << 18) + 77)
#define THREADS 8
#define SECONDS 3.0

typedef enum { FORWARD, BACKWARD, FORWARD_F16, BACKWARD_F16, FORWARD_BITS, SAVED, OPS } op;

static const struct {
    const char *name;
    float threshold;
    int bits;
} QUANTIZERS[] = {{"sign", 1.0f, 1}, {"approxsign", 1.0f, 1}, {"steheaviside", 1.3f, 1}, {"swishsign", 0.0f, 1},
                  {"inputdorefa", 1.0f, 2}, {"weightdorefa", 0.0f, 3}, {"progressive_sign", 1.0f, 1}};
#define QUANTIZER_COUNT (sizeof QUANTIZERS / sizeof QUANTIZERS[0])

static float x[N], g[N];
static uint16_t x16[N], g16[N];
static void *expected[QUANTIZER_COUNT][OPS];
static size_t expected_bytes[QUANTIZER_COUNT][OPS];
static bq_quantizer *shared[QUANTIZER_COUNT];
static atomic_int stop;

static bq_status make(size_t k, bq_quantizer **q) {
    bq_params p;
    bq_params_init(&p);
    p.cancel_threshold = QUANTIZERS[k].threshold;
    p.dorefa_bits = QUANTIZERS[k].bits;
    return bq_create(QUANTIZERS[k].name, &p, q);
}

/* One call of op with q into out (out_bytes big: the expected result's size, 0 where q has no such op);
 * saved work space for the saved-bit op. */
static bq_status run(bq_quantizer *q, op o, void *out, uint32_t *saved) {
    switch (o) {
    case FORWARD: return bq_forward(q, x, out, N);
    case BACKWARD: return bq_backward(q, x, g, out, N);
    case FORWARD_F16: return bq_forward_typed(q, BQ_F16, x16, BQ_F16, out, 1, N);
    case BACKWARD_F16: return bq_backward_typed(q, BQ_F16, x16, g16, out, N);
    case FORWARD_BITS: return bq_forward_typed(q, BQ_F32, x, BQ_BIT, out, 1, N);
    case SAVED: {
        float *y = out;
        bq_status s = bq_forward_save(q, x, y, saved, N);
        return s != BQ_OK ? s : bq_backward_saved(q, saved, g, y + N, N);
    }
    default: return BQ_E_INVALID;
    }
}

static size_t out_bytes(op o) {
    switch (o) {
    case FORWARD_F16:
    case BACKWARD_F16: return N * sizeof(uint16_t);
    case FORWARD_BITS: return (N + 31) / 32 * sizeof(uint32_t);
    case SAVED: return 2 * N * sizeof(float); /* y, then grad_x */
    default: return N * sizeof(float);
    }
}

typedef struct {
    int index;
    long calls, wrong, failed;
} worker;

static void *work(void *arg) {
    worker *w = (worker *)arg;
    bq_quantizer *own[QUANTIZER_COUNT] = {0};
    for (size_t k = 0; k < QUANTIZER_COUNT; k++) {
        if (make(k, &own[k]) != BQ_OK) w->failed++;
    }
    void *out = malloc(2 * N * sizeof(float));
    uint32_t *saved = malloc(2 * ((N + 31) / 32) * sizeof(uint32_t));
    if (out == NULL || saved == NULL) w->failed++;
    for (long i = w->index; out != NULL && saved != NULL && !stop; i++) {
        size_t k = (size_t)i % QUANTIZER_COUNT;
        op o = (op)((size_t)(i / (long)QUANTIZER_COUNT) % OPS);
        if (expected[k][o] == NULL) continue; /* q has no such op (an output type, or saved bits) */
        bq_quantizer *q = i % 2 ? shared[k] : own[k];
        if (q == NULL) continue;
        bq_status s = run(q, o, out, saved);
        w->calls++;
        if (s != BQ_OK) {
            w->failed++;
        } else if (memcmp(out, expected[k][o], expected_bytes[k][o]) != 0) {
            w->wrong++;
        }
    }
    for (size_t k = 0; k < QUANTIZER_COUNT; k++) bq_destroy(own[k]);
    free(out);
    free(saved);
    return NULL;
}

int main(void) {
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    test_rng rng = test_rng_seed(17);
    for (size_t i = 0; i < N; i++) {
        x[i] = i % 9 == 0 ? test_rng_wide(&rng) : test_rng_uniform(&rng, -2.0f, 2.0f);
        g[i] = test_rng_uniform(&rng, -1.0f, 1.0f);
        x16[i] = test_round_to_16(x[i], 5, 10);
        g16[i] = test_round_to_16(g[i], 5, 10);
    }
    /* The expected results: each call alone, on one thread. */
    int failures = 0;
    if (bq_set_num_threads(1) != BQ_OK) failures++;
    uint32_t *saved = malloc(2 * ((N + 31) / 32) * sizeof(uint32_t));
    int ops_run = 0;
    for (size_t k = 0; k < QUANTIZER_COUNT; k++) {
        if (make(k, &shared[k]) != BQ_OK) {
            printf("FAIL bq_create(%s): %s\n", QUANTIZERS[k].name, bq_last_error());
            return 1;
        }
        for (int o = 0; o < OPS; o++) {
            void *out = malloc(out_bytes((op)o));
            if (out == NULL || saved == NULL) return 1;
            bq_status s = run(shared[k], (op)o, out, saved);
            if (s == BQ_E_UNSUPPORTED) { /* no BIT output, or no saved bits: not part of the mix */
                free(out);
                continue;
            }
            if (s != BQ_OK) {
                printf("FAIL %s op %d alone: %s\n", QUANTIZERS[k].name, o, bq_last_error());
                failures++;
            }
            expected[k][o] = out;
            expected_bytes[k][o] = out_bytes((op)o);
            ops_run++;
        }
    }

    worker workers[THREADS];
    pthread_t ids[THREADS];
    int started = 0;
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker){t, 0, 0, 0};
        if (pthread_create(&ids[t], NULL, work, &workers[t]) == 0) started++;
    }
    double end = bq_now_seconds() + SECONDS;
    long changes = 0, change_failures = 0;
    while (bq_now_seconds() < end) {
        if (bq_set_num_threads(1 + (int)(changes % 3)) != BQ_OK) change_failures++;
        changes++;
        struct timespec pause = {0, 2000000}; /* 2 ms */
        nanosleep(&pause, NULL);
    }
    stop = 1;
    long calls = 0, wrong = 0, failed = 0;
    for (int t = 0; t < started; t++) {
        pthread_join(ids[t], NULL);
        calls += workers[t].calls;
        wrong += workers[t].wrong;
        failed += workers[t].failed;
    }
    int ok = started == THREADS && wrong == 0 && failed == 0 && change_failures == 0 && failures == 0 && calls > 0;
    printf("%s %d threads, %d quantizer/op pairs, %ld calls in %.0f s while n changed %ld times: %ld wrong, %ld failed\n",
           ok ? "ok  " : "FAIL", started, ops_run, calls, SECONDS, changes, wrong, failed);
    for (size_t k = 0; k < QUANTIZER_COUNT; k++) {
        bq_destroy(shared[k]);
        for (int o = 0; o < OPS; o++) free(expected[k][o]);
    }
    free(saved);
    return ok ? 0 : 1;
}
