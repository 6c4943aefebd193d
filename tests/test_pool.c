/* bq_set_num_threads: the CPU kernels use at most the number of threads it sets, lowering it works after
 * the pool has grown, and changing it while other threads run kernels neither crashes nor changes a result.
 *
 * Threads are counted in /proc/self/task, relative to the count before the first kernel (qemu-user and
 * the C library may hold threads of their own), at a length the kernels split into parallel tasks.
 * 0. Before any bq_set_num_threads, a parallel kernel uses the default: HL_NUM_THREADS where it is a decimal
 *    integer from 1 to 256, else one thread per core (ctest runs this with HL_NUM_THREADS unset, empty,
 *    junk, above 256, and 3).
 * 1. n = 2 after a parallel kernel: one worker beside the caller.
 * 2. n = 1: the worker is gone, and a parallel kernel makes none.
 * 3. n = 3: two workers.
 * 4. Three threads run kernels (checked against the reference) while the main thread keeps changing n.
 * 5. Eight threads call kernels back to back while the main thread changes n twenty times: each change
 *    returns once the workers above the new count finish the task they run (the kernels go on with the
 *    others). A liveness bound, not a timing: the twenty take milliseconds alone (seconds at most with other
 *    tests on the cores), and must take under 30 s, where the kernel threads stop by themselves after 60 s
 *    (when the count was changed under a reader-preferring rwlock, the changes waited for them, the whole 60 s).
 * 6. n above 256 (the pool's most) and below 1 are BQ_E_INVALID with a message; 256 is accepted. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitquant.h"
#include "reference.h"
#include "test_common.h"
#include "timing.h" /* tools/: the clock the benchmarks use */

#define PARALLEL_N ((size_t)1 << 20) /* past the kernels' serial limit of 2^18 */
#define RUNNERS 3
#define ROUNDS 40

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) failures++;
}

static int task_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    int count = 0;
    for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir)) {
        if (e->d_name[0] != '.') count++;
    }
    closedir(dir);
    return count;
}

/* The thread count once it equals `expected`, or after 2 s the last one read: a joined thread can stay listed
 * for a moment after pthread_join returns (seen under qemu-user, whose own bookkeeping ends the host thread). */
static int task_count_settled(int expected) {
    int count = task_count();
    for (int tries = 0; count != expected && tries < 200; tries++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        count = task_count();
    }
    return count;
}

typedef struct {
    bq_quantizer *q;
    const float *x, *expected;
    size_t n;
    int rounds, wrong;
} runner;

/* One sign forward at n, compared with the reference's output element by element. */
static int run_once(bq_quantizer *q, const float *x, const float *expected, float *y, size_t n) {
    if (bq_forward(q, x, y, n) != BQ_OK) return 0;
    return memcmp(y, expected, n * sizeof(float)) == 0;
}

typedef struct {
    bq_quantizer *q;
    const float *x;
    atomic_int *stop;
    double deadline; /* stop by then anyway, so that a starved bq_set_num_threads fails the check, not hangs */
    int calls, errors;
} hammer;

/* Short serial kernels back to back until told to stop. */
static void *hammer_kernels(void *arg) {
    hammer *h = (hammer *)arg;
    float y[4096];
    while (!*h->stop && bq_now_seconds() < h->deadline) {
        if (bq_forward(h->q, h->x, y, 4096) != BQ_OK) h->errors++;
        h->calls++;
    }
    return NULL;
}

static void *run_many(void *arg) {
    runner *r = (runner *)arg;
    float *y = malloc(r->n * sizeof(float));
    for (int i = 0; i < r->rounds; i++) {
        if (y == NULL || !run_once(r->q, r->x, r->expected, y, r->n)) r->wrong++;
    }
    free(y);
    return NULL;
}

static void *nothing(void *arg) { return arg; }

int main(void) {
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) == BQ_E_UNSUPPORTED) {
        printf("[SKIP] %s\n", bq_last_error());
        return 77;
    }
    /* The baseline after one thread has come and gone: a sanitizer's runtime (TSan's) starts a helper thread
     * of its own with the process's first thread. Under qemu-user the joined thread can stay listed for a
     * while, so the count is let settle back to the one before it (which TSan's helper keeps it above). */
    int before = task_count();
    pthread_t first;
    if (pthread_create(&first, NULL, nothing, NULL) == 0) pthread_join(first, NULL);
    int base = task_count_settled(before);
    if (before < 1 || base < 1) {
        printf("[SKIP] /proc/self/task cannot be read here\n");
        return 77;
    }
    size_t n = PARALLEL_N;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)), *expected = malloc(n * sizeof(float));
    bq_quantizer *q = NULL;
    bq_params p = test_default_params();
    if (x == NULL || y == NULL || expected == NULL || bq_create("sign", &p, &q) != BQ_OK) {
        printf("FAIL setup: %s\n", bq_last_error());
        return 1;
    }
    test_rng rng = test_rng_seed(7);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_uniform(&rng, -2.0f, 2.0f);
    check(ref_forward("sign", &p, x, expected, n) == BQ_OK, "reference");

    char what[160];
    /* 0: the default, by the header's rule, written out again here. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int expected_default = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    const char *env = getenv("HL_NUM_THREADS");
    if (env != NULL) {
        char *end = NULL;
        long value = strtol(env, &end, 10);
        if (end != env && *end == '\0' && value >= 1 && value <= 256) expected_default = (int)value;
    }
    check(run_once(q, x, expected, y, n), "a parallel kernel before any bq_set_num_threads");
    int after_default = task_count_settled(base + expected_default - 1);
    snprintf(what, sizeof what, "HL_NUM_THREADS %s%s%s: %d threads beside the caller (%d)", env ? "\"" : "unset",
             env ? env : "", env ? "\"" : "", expected_default - 1, after_default - base);
    check(after_default - base == expected_default - 1, what);

    const int counts[] = {2, 1, 3};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int threads = counts[k];
        check(bq_set_num_threads(threads) == BQ_OK, "bq_set_num_threads");
        if (threads == 1) {
            int after_set = task_count_settled(base);
            snprintf(what, sizeof what, "n = 1 after 2: the worker is gone before any kernel runs (%d)",
                     after_set - base);
            check(after_set == base, what);
        }
        check(run_once(q, x, expected, y, n), "a parallel kernel's output equals the reference");
        int after_run = task_count_settled(base + threads - 1);
        snprintf(what, sizeof what, "n = %d: %d threads beside the caller after a parallel kernel (%d)", threads,
                 threads - 1, after_run - base);
        check(after_run - base == threads - 1, what);
    }

    runner runners[RUNNERS];
    pthread_t ids[RUNNERS];
    int started = 0;
    for (int t = 0; t < RUNNERS; t++) {
        runners[t] = (runner){q, x, expected, n, ROUNDS, 0};
        if (pthread_create(&ids[t], NULL, run_many, &runners[t]) == 0) started++;
    }
    check(started == RUNNERS, "runner threads started");
    int set_failures = 0;
    for (int i = 0; i < 4 * ROUNDS; i++) {
        if (bq_set_num_threads(1 + i % 3) != BQ_OK) set_failures++;
    }
    int wrong = 0;
    for (int t = 0; t < started; t++) {
        pthread_join(ids[t], NULL);
        wrong += runners[t].wrong;
    }
    check(set_failures == 0, "bq_set_num_threads while kernels run");
    snprintf(what, sizeof what, "%d runs on %d threads while n changed: %d wrong", RUNNERS * ROUNDS, RUNNERS, wrong);
    check(wrong == 0, what);

    enum { HAMMERS = 8, CHANGES = 20 };
    hammer hammers[HAMMERS];
    pthread_t hammer_ids[HAMMERS];
    atomic_int stop = 0;
    int hammering = 0;
    for (int t = 0; t < HAMMERS; t++) {
        hammers[t] = (hammer){q, x, &stop, bq_now_seconds() + 60.0, 0, 0};
        if (pthread_create(&hammer_ids[t], NULL, hammer_kernels, &hammers[t]) == 0) hammering++;
    }
    check(hammering == HAMMERS, "eight kernel threads started");
    /* Start changing n once every kernel thread is calling. */
    for (int t = 0; t < hammering; t++) {
        while (hammers[t].calls < 10 && bq_now_seconds() < hammers[t].deadline) sched_yield();
    }
    double start = bq_now_seconds(), longest = 0.0;
    for (int i = 0; i < CHANGES; i++) {
        double before = bq_now_seconds();
        if (bq_set_num_threads(1 + i % 2) != BQ_OK) set_failures++;
        double took = bq_now_seconds() - before;
        if (took > longest) longest = took;
    }
    double total = bq_now_seconds() - start;
    stop = 1;
    int calls = 0, errors = 0;
    for (int t = 0; t < hammering; t++) {
        pthread_join(hammer_ids[t], NULL);
        calls += hammers[t].calls;
        errors += hammers[t].errors;
    }
    snprintf(what, sizeof what, "%d changes of n beside %d calls on 8 threads: %.3f s, longest %.3f s (bound 30 s; "
             "the callers stop at 60 s); %d failed", CHANGES, calls, total, longest, errors);
    check(total < 30.0 && errors == 0 && set_failures == 0, what);

    check(bq_set_num_threads(257) == BQ_E_INVALID && strstr(bq_last_error(), "256") != NULL,
          "n = 257 is BQ_E_INVALID, and the message names the most, 256");
    check(bq_set_num_threads(1 << 30) == BQ_E_INVALID, "n = 2^30 is BQ_E_INVALID");
    check(bq_set_num_threads(0) == BQ_E_INVALID && bq_set_num_threads(-5) == BQ_E_INVALID, "n = 0 and -5 are BQ_E_INVALID");
    check(bq_set_num_threads(256) == BQ_OK && run_once(q, x, expected, y, n), "n = 256 is accepted and kernels run");
    check(bq_set_num_threads(2) == BQ_OK, "back to 2");

    bq_destroy(q);
    free(x);
    free(y);
    free(expected);
    printf("pool: %s\n", failures == 0 ? "all passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
