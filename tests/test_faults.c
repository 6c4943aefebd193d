/* Failure injection: allocations and thread start-ups that fail, one at a time.
 *
 * This program is linked with -Wl,--wrap=malloc,--wrap=pthread_create: every malloc and pthread_create that
 * the static library's objects make (bitquant's runtime and its bundled Halide runtime, whose halide_malloc
 * is malloc) comes here; the C library's and the OpenCL driver's own do not.
 * 1. For bq_create and, for every quantizer, each CPU entry point (f32 forward and backward, with the
 *    cancellation; typed f16, bf16, packed bits and int8; forward_save and backward_saved) and the OpenCL
 *    host-memory forward and backward where PoCL has a device, at a serial and a parallel length: the call's
 *    allocations are counted, then the call is repeated with the k-th one failing, for every k. Each such call
 *    returns BQ_OK with the result of the call without failure, or BQ_E_NOMEM with a message and its outputs
 *    untouched (guard bytes). Before each parallel call the pool is emptied, so that its workers start inside
 *    the call. Under the asan-ubsan preset LeakSanitizer checks that nothing leaks.
 * 2. With every pthread_create failing, a parallel kernel returns BQ_OK with the exact result on its caller's
 *    thread alone, and starts no thread; once thread creation works again, the next one starts workers.
 *    (Halide's own pool wrote through a failed malloc here and ignored pthread_create's status.) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "test_common.h"

void *__real_malloc(size_t size);
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);

static atomic_long allocations; /* malloc calls since the last reset */
static atomic_long fail_at;     /* the allocation (1-based) to fail; 0: none */
static atomic_int refuse_threads;

void *__wrap_malloc(size_t size) {
    long k = atomic_fetch_add(&allocations, 1) + 1;
    if (k == atomic_load(&fail_at)) return NULL;
    return __real_malloc(size);
}

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
    if (atomic_load(&refuse_threads)) return EAGAIN;
    return __real_pthread_create(thread, attr, start, arg);
}

static int failures;
static long injected, nomem, recovered;

static void check(int ok, const char *what) {
    if (!ok) {
        failures++;
        printf("FAIL %s\n", what);
    }
}

#define SERIAL_N ((size_t)1000)
#define PARALLEL_N ((size_t)1 << 19) /* past the kernels' serial limit of 2^18 */
#define GUARD 0xA5

enum op { FORWARD, BACKWARD, BACKWARD_CANCEL, FORWARD_F16, BACKWARD_BF16, FORWARD_BIT, FORWARD_I8, FORWARD_SAVE,
          BACKWARD_SAVED, OPENCL_FORWARD, OPENCL_BACKWARD, OP_COUNT };
static const char *const OP_NAMES[] = {"forward", "backward", "backward+cancel", "forward[f16]", "backward[bf16]",
                                       "forward[f32->bit]", "forward[f32->i8]", "forward_save", "backward_saved",
                                       "opencl forward", "opencl backward"};

static float *x, *g;
static uint16_t *x16, *g16;
static uint32_t *saved_in;
/* The outputs: one block, guard-filled before each call; its size per op and n. */
static unsigned char *out;
static size_t out_bytes;

static size_t op_output_bytes(enum op op, size_t n, const bq_quantizer *q) {
    switch (op) {
    case FORWARD_F16:
    case BACKWARD_BF16: return n * 2;
    case FORWARD_BIT: return (n + 31) / 32 * 4;
    case FORWARD_I8: return n;
    case FORWARD_SAVE: {
        size_t words = 0;
        bq_saved_words(q, n, &words);
        return n * 4 + words * 4;
    }
    default: return n * 4;
    }
}

static bq_status run_op(enum op op, const bq_quantizer *q, const bq_quantizer *cancelling, size_t n) {
    switch (op) {
    case FORWARD: return bq_forward(q, x, (float *)out, n);
    case BACKWARD: return bq_backward(q, x, g, (float *)out, n);
    case BACKWARD_CANCEL: return bq_backward(cancelling, x, g, (float *)out, n);
    case FORWARD_F16: return bq_forward_typed(q, BQ_F16, x16, BQ_F16, out, 1, n);
    case BACKWARD_BF16: return bq_backward_typed(q, BQ_BF16, x16, g16, out, n);
    case FORWARD_BIT: return bq_forward_typed(q, BQ_F32, x, BQ_BIT, out, 1, n);
    case FORWARD_I8: return bq_forward_typed(q, BQ_F32, x, BQ_I8, out, 1, n);
    case FORWARD_SAVE: return bq_forward_save(q, x, (float *)out, (uint32_t *)(out + n * 4), n);
    case BACKWARD_SAVED: return bq_backward_saved(q, saved_in, g, (float *)out, n);
    case OPENCL_FORWARD: return bq_device_forward_host(q, BQ_BACKEND_OPENCL, x, (float *)out, n);
    case OPENCL_BACKWARD: return bq_device_backward_host(q, BQ_BACKEND_OPENCL, x, g, (float *)out, n);
    default: return BQ_E_INVALID;
    }
}

/* Whether the op applies to q here: the library says so by succeeding without failures injected. */
static void check_op(const char *name, enum op op, const bq_quantizer *q, const bq_quantizer *cancelling, size_t n,
                     unsigned char *clean) {
    char what[256];
    size_t bytes = op_output_bytes(op, n, q);
    memset(out, GUARD, bytes);
    if (n == PARALLEL_N) bq_set_num_threads(1), bq_set_num_threads(2);
    atomic_store(&allocations, 0);
    bq_status status = run_op(op, q, cancelling, n);
    long count = atomic_load(&allocations);
    if (status == BQ_E_UNSUPPORTED) return; /* this quantizer has no such entry point (saved bits, types) */
    snprintf(what, sizeof what, "%s %s n=%zu: runs without injected failures (%s)", name, OP_NAMES[op], n,
             bq_last_error());
    check(status == BQ_OK, what);
    if (status != BQ_OK) return;
    memcpy(clean, out, bytes);
    for (long k = 1; k <= count; k++) {
        memset(out, GUARD, bytes);
        if (n == PARALLEL_N) bq_set_num_threads(1), bq_set_num_threads(2);
        atomic_store(&allocations, 0);
        atomic_store(&fail_at, k);
        status = run_op(op, q, cancelling, n);
        atomic_store(&fail_at, 0);
        injected++;
        snprintf(what, sizeof what, "%s %s n=%zu, allocation %ld of %ld failing: BQ_OK with the same result or "
                 "BQ_E_NOMEM with a message and the outputs untouched (got %d: %s)",
                 name, OP_NAMES[op], n, k, count, (int)status, bq_last_error());
        if (status == BQ_OK) {
            recovered++;
            check(memcmp(out, clean, bytes) == 0, what);
        } else {
            nomem++;
            check(status == BQ_E_NOMEM && bq_last_error()[0] != '\0' && test_bytes_are(out, bytes, GUARD), what);
        }
    }
}

static void check_create(void) {
    char what[256];
    atomic_store(&allocations, 0);
    bq_quantizer *q = NULL;
    bq_status status = bq_create("sign", NULL, &q);
    long count = atomic_load(&allocations);
    check(status == BQ_OK && count >= 1, "bq_create allocates");
    bq_destroy(q);
    for (long k = 1; k <= count; k++) {
        bq_quantizer *sentinel = (bq_quantizer *)(uintptr_t)0x5A5A5A50u;
        q = sentinel;
        atomic_store(&allocations, 0);
        atomic_store(&fail_at, k);
        status = bq_create("sign", NULL, &q);
        atomic_store(&fail_at, 0);
        injected++;
        snprintf(what, sizeof what, "bq_create, allocation %ld of %ld failing: BQ_E_NOMEM, a message, out untouched",
                 k, count);
        check(status == BQ_E_NOMEM && bq_last_error()[0] != '\0' && q == sentinel, what);
        nomem += status == BQ_E_NOMEM;
    }
}

static int count_threads(void) {
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL) return -1;
    int count = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        count += e->d_name[0] != '.';
    closedir(dir);
    return count;
}

static void check_thread_failures(void) {
    bq_quantizer *q = NULL;
    check(bq_create("sign", NULL, &q) == BQ_OK, "create sign");
    size_t n = PARALLEL_N;
    float *want = malloc(n * sizeof *want);
    check(want != NULL, "memory");
    if (q == NULL || want == NULL) return;
    bq_params p;
    bq_params_init(&p);
    check(ref_forward("sign", &p, x, want, n) == BQ_OK, "the reference");
    bq_set_num_threads(1);
    int before = count_threads();
    atomic_store(&refuse_threads, 1);
    bq_set_num_threads(4);
    memset(out, GUARD, n * 4);
    bq_status status = bq_forward(q, x, (float *)out, n);
    int during = count_threads();
    atomic_store(&refuse_threads, 0);
    check(status == BQ_OK, "no thread can start: a parallel kernel still succeeds");
    check(memcmp(out, want, n * 4) == 0, "no thread can start: the result is exact");
    check(before < 0 || during == before, "no thread can start: none was started");
    memset(out, GUARD, n * 4);
    status = bq_forward(q, x, (float *)out, n);
    int after = count_threads();
    check(status == BQ_OK && memcmp(out, want, n * 4) == 0, "threads start again: the result is exact");
    check(before < 0 || after > before, "threads start again: the next parallel kernel starts workers");
    bq_set_num_threads(2);
    free(want);
    bq_destroy(q);
}

int main(void) {
    size_t n = PARALLEL_N;
    x = malloc(n * sizeof *x);
    g = malloc(n * sizeof *g);
    x16 = malloc(n * sizeof *x16);
    g16 = malloc(n * sizeof *g16);
    saved_in = malloc(n * sizeof *saved_in);
    out_bytes = n * 8 + 64;
    out = malloc(out_bytes);
    unsigned char *clean = malloc(out_bytes);
    if (!x || !g || !x16 || !g16 || !saved_in || !out || !clean) return 1;
    test_rng r = test_rng_seed(13);
    for (size_t i = 0; i < n; i++) {
        x[i] = test_rng_uniform(&r, -2.0f, 2.0f);
        g[i] = test_rng_uniform(&r, -1.0f, 1.0f);
        x16[i] = (uint16_t)test_rng_next(&r);
        g16[i] = (uint16_t)test_rng_next(&r);
        saved_in[i] = (uint32_t)test_rng_next(&r);
    }
    char device[128];
    int opencl = bq_backend_device(BQ_BACKEND_OPENCL, device, sizeof device) == BQ_OK;
    if (!opencl) printf("[note] no OpenCL device: the OpenCL host-memory calls are left out (%s)\n", bq_last_error());

    check_create();
    for (size_t i = 0; i < TEST_QUANTIZER_COUNT; i++) {
        const char *name = TEST_QUANTIZERS[i].name;
        bq_params p = test_default_params(), pc = p;
        pc.cancel_threshold = 1.0f;
        bq_quantizer *q = NULL, *cancelling = NULL;
        check(bq_create(name, &p, &q) == BQ_OK && bq_create(name, &pc, &cancelling) == BQ_OK, name);
        if (q == NULL || cancelling == NULL) continue;
        for (int op = 0; op < OP_COUNT; op++) {
            if (!opencl && (op == OPENCL_FORWARD || op == OPENCL_BACKWARD)) continue;
            check_op(name, (enum op)op, q, cancelling, SERIAL_N, clean);
            if (op != OPENCL_FORWARD && op != OPENCL_BACKWARD) check_op(name, (enum op)op, q, cancelling, PARALLEL_N, clean);
        }
        bq_destroy(q);
        bq_destroy(cancelling);
    }
    check(injected > 0 && nomem > 0, "failures were injected and some were reported as BQ_E_NOMEM");
    check_thread_failures();

    free(x), free(g), free(x16), free(g16), free(saved_in), free(out), free(clean);
    printf("%ld allocation failures injected: %ld reported BQ_E_NOMEM, %ld recovered with the exact result\n",
           injected, nomem, recovered);
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all fault-injection checks passed\n");
    return 0;
}
