/* Four threads at once, each with its own quantizers, buffers and lengths, checked against the reference on
 * every iteration. Two of them also provoke errors of different kinds: bq_last_error must be thread-local,
 * so each thread sees only its own message (and a thread that never failed sees "").
 *
 * Usage: test_threads [cpu|cuda|opencl]: the kernels run on the CPU (bq_forward, the default) or on a GPU
 * backend's host-memory entry points, all threads at once on its one device (skipped, exit 77, without). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"
#include "test_common.h"

#define THREADS 4
#define ITERATIONS 150
#define PRINT_PER_THREAD 3

typedef struct {
    const char *name;
    bq_params p;
    size_t n;
} job;

/* The error a thread provokes, and the word its message must contain. */
typedef enum { PROVOKES_NOTHING, PROVOKES_BITS, PROVOKES_BETA } provokes;
static const char *const ERROR_WORDS[] = {"", "dorefa_bits", "swish_beta"};

typedef struct {
    int id;
    provokes errors;
    job jobs[2];
    int passed, failed, printed;
} worker;

static pthread_barrier_t start_line;
static int on_gpu;
static bq_backend gpu;

static bq_status run(const bq_quantizer *q, int backward, const float *x, const float *g, float *out, size_t n) {
    if (on_gpu) {
        return backward ? bq_device_backward_host(q, gpu, x, g, out, n) : bq_device_forward_host(q, gpu, x, out, n);
    }
    return backward ? bq_backward(q, x, g, out, n) : bq_forward(q, x, out, n);
}

static void record(worker *w, int ok, const char *fmt, const char *detail) {
    if (ok) {
        w->passed++;
        return;
    }
    w->failed++;
    if (w->printed++ < PRINT_PER_THREAD) {
        char line[320];
        snprintf(line, sizeof line, fmt, detail);
        printf("FAIL thread %d: %s\n", w->id, line); /* one printf, so lines of threads do not mix */
    }
}

/* bq_last_error after a successful call: "" or this thread's own last message, never another thread's. */
static int message_is_own(const worker *w) {
    const char *msg = bq_last_error();
    if (msg == NULL) return 0;
    if (w->errors == PROVOKES_NOTHING) return msg[0] == '\0';
    const char *other = ERROR_WORDS[w->errors == PROVOKES_BITS ? PROVOKES_BETA : PROVOKES_BITS];
    return strstr(msg, other) == NULL && (msg[0] == '\0' || strstr(msg, ERROR_WORDS[w->errors]) != NULL);
}

static void provoke(worker *w) {
    bq_params p = test_default_params();
    const char *name = "inputdorefa";
    if (w->errors == PROVOKES_BITS) {
        p.dorefa_bits = 25;
    } else {
        p.swish_beta = NAN;
        name = "swishsign";
    }
    bq_quantizer *q = NULL;
    bq_status s = bq_create(name, &p, &q);
    record(w, s == BQ_E_INVALID, "%s: bad parameter accepted", name);
    if (s == BQ_OK) bq_destroy(q);
    const char *msg = bq_last_error();
    const char *own = ERROR_WORDS[w->errors];
    const char *other = ERROR_WORDS[w->errors == PROVOKES_BITS ? PROVOKES_BETA : PROVOKES_BITS];
    record(w, msg != NULL && strstr(msg, own) != NULL && strstr(msg, other) == NULL,
           "bq_last_error is not this thread's: \"%s\"", msg != NULL ? msg : "(NULL)");
}

static void fill(test_rng *r, float *x, float *g, size_t n) {
    static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, NAN, INFINITY, -INFINITY, 1.3f, 3e38f};
    for (size_t i = 0; i < n; i++) {
        x[i] = test_rng_below(r, 10) == 0 ? specials[test_rng_below(r, 10)] : test_rng_uniform(r, -3.0f, 3.0f);
        g[i] = test_rng_below(r, 20) == 0 ? specials[test_rng_below(r, 10)] : test_rng_uniform(r, -2.0f, 2.0f);
    }
}

/* Whether every element matches; if not, the first mismatch in `detail`. */
static int same_all(const job *j, int backward, const float *x, const float *g, const float *ours, const float *ref,
                    char *detail, size_t size) {
    for (size_t i = 0; i < j->n; i++) {
        float gi = backward ? g[i] : 0.0f;
        if (!test_output_matches(j->name, &j->p, backward, x[i], gi, ours[i], ref[i])) {
            snprintf(detail, size, "%s %s n=%zu t=%g: i=%zu x=%a g=%a ours=%a ref=%a", j->name,
                     backward ? "bwd" : "fwd", j->n, j->p.cancel_threshold, i, x[i], gi, ours[i], ref[i]);
            return 0;
        }
    }
    return 1;
}

static void *work(void *arg) {
    worker *w = (worker *)arg;
    size_t max_n = w->jobs[0].n > w->jobs[1].n ? w->jobs[0].n : w->jobs[1].n;
    float *x = malloc(max_n * sizeof(float)), *g = malloc(max_n * sizeof(float));
    float *out = malloc(max_n * sizeof(float)), *ref = malloc(max_n * sizeof(float));
    bq_quantizer *q[2] = {NULL, NULL};
    pthread_barrier_wait(&start_line);
    if (x == NULL || g == NULL || out == NULL || ref == NULL) {
        record(w, 0, "%s", "out of memory");
        goto done;
    }
    for (int k = 0; k < 2; k++) {
        bq_status s = bq_create(w->jobs[k].name, &w->jobs[k].p, &q[k]);
        record(w, s == BQ_OK, "bq_create(%s) failed", w->jobs[k].name);
        if (s != BQ_OK) goto done;
    }
    test_rng r = test_rng_seed(1000u + (uint64_t)w->id);
    for (int it = 0; it < ITERATIONS; it++) {
        for (int k = 0; k < 2; k++) {
            const job *j = &w->jobs[k];
            fill(&r, x, g, j->n);
            for (int backward = 0; backward <= 1; backward++) {
                if (w->errors != PROVOKES_NOTHING && (it + k + backward) % 3 == 0) provoke(w);
                bq_status s = run(q[k], backward, x, g, out, j->n);
                bq_status rs = backward ? ref_backward(j->name, &j->p, x, g, ref, j->n)
                                        : ref_forward(j->name, &j->p, x, ref, j->n);
                char detail[256];
                snprintf(detail, sizeof detail, "%s %s: status %d", j->name, backward ? "bwd" : "fwd", (int)s);
                record(w, s == BQ_OK && rs == BQ_OK && same_all(j, backward, x, g, out, ref, detail, sizeof detail),
                       "%s", detail);
                record(w, message_is_own(w), "bq_last_error after a success: \"%s\"",
                       bq_last_error() != NULL ? bq_last_error() : "(NULL)");
            }
        }
    }
done:
    bq_destroy(q[0]);
    bq_destroy(q[1]);
    free(x);
    free(g);
    free(out);
    free(ref);
    return NULL;
}

static bq_params params(float swish_beta, int bits, double scale, float cancel) {
    bq_params p = test_default_params();
    p.swish_beta = swish_beta;
    p.dorefa_bits = bits;
    p.progressive_scale = scale;
    p.cancel_threshold = cancel;
    return p;
}

int main(int argc, char **argv) {
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    const char *where = argc > 1 ? argv[1] : "cpu";
    if (strcmp(where, "cpu") != 0) {
        on_gpu = 1;
        gpu = strcmp(where, "cuda") == 0 ? BQ_BACKEND_CUDA : BQ_BACKEND_OPENCL;
        char device[256];
        if (strcmp(where, bq_backend_name(gpu)) != 0) {
            printf("usage: test_threads [cpu|cuda|opencl]\n");
            return 2;
        }
        if (bq_backend_device(gpu, device, sizeof device) != BQ_OK) {
            printf("[SKIP] %s\n", bq_last_error());
            return 77;
        }
        printf("threads on %s: %s\n", where, device);
    }
    worker workers[THREADS] = {
        {.id = 0,
         .errors = PROVOKES_NOTHING,
         .jobs = {{"sign", params(5, 1, 0, 0), 1000}, {"swishsign", params(5, 1, 0, 1.0f), 777}}},
        {.id = 1,
         .errors = PROVOKES_BITS,
         .jobs = {{"weightdorefa", params(5, 4, 0, 0), 4099}, {"approxsign", params(5, 1, 0, 1.0f), 33}}},
        {.id = 2,
         .errors = PROVOKES_NOTHING,
         .jobs = {{"inputdorefa", params(5, 2, 0, 0), 100000}, {"progressive_sign", params(5, 1, 0.02, 1.3f), 65}}},
        {.id = 3,
         .errors = PROVOKES_BETA,
         .jobs = {{"steheaviside", params(5, 1, 0, 0), 12345}, {"identity", params(5, 1, 0, 0.5f), 1}}},
    };
    pthread_t threads[THREADS];
    pthread_barrier_init(&start_line, NULL, THREADS);
    int started = 0;
    for (int t = 0; t < THREADS; t++) {
        if (pthread_create(&threads[t], NULL, work, &workers[t]) != 0) break;
        started++;
    }
    if (started < THREADS) {
        printf("FAIL could not start %d threads\n", THREADS);
        return 1; /* the started ones wait at the barrier forever; exit ends them */
    }
    int passed = 0, failed = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        passed += workers[t].passed;
        failed += workers[t].failed;
    }
    pthread_barrier_destroy(&start_line);
    printf("threads: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
