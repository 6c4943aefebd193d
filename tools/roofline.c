#include "roofline.h"

#include <pthread.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdint.h>
#include <string.h>

/* Small n runs on the calling thread, as the kernels do: waking threads costs microseconds. */
#define PARALLEL_MIN ((size_t)1 << 18)
#define MAX_THREADS 64

typedef enum { OP_COPY, OP_ADD, OP_READ, OP_PACK, OP_NARROW } roofline_op;

typedef struct {
    roofline_op op;
    const float *x, *g;
    float *y;
    size_t n;
    int parts;
    float partial[MAX_THREADS];
} job;

/* Words [begin, end) of the packed signs of x (n a multiple of 32 here: the bench's sizes are): an
 * AVX-512 compare into a mask register per 16 floats where the compiler targets it, AVX2's movemask per 8,
 * else a plain loop. */
static void pack_words(const float *restrict x, uint32_t *restrict words, size_t begin, size_t end) {
#if defined(__AVX512F__)
    const __m512 zero = _mm512_setzero_ps();
    for (size_t w = begin; w < end; w++) {
        __mmask16 lo = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + 32 * w), zero, _CMP_LT_OQ);
        __mmask16 hi = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + 32 * w + 16), zero, _CMP_LT_OQ);
        words[w] = (uint32_t)lo | (uint32_t)hi << 16;
    }
#elif defined(__AVX2__)
    const __m256 zero = _mm256_setzero_ps();
    for (size_t w = begin; w < end; w++) {
        uint32_t word = 0;
        for (int k = 0; k < 4; k++) {
            __m256 lt = _mm256_cmp_ps(_mm256_loadu_ps(x + 32 * w + 8 * k), zero, _CMP_LT_OQ);
            word |= (uint32_t)_mm256_movemask_ps(lt) << (8 * k);
        }
        words[w] = word;
    }
#else
    for (size_t w = begin; w < end; w++) {
        uint32_t word = 0;
        for (int b = 0; b < 32; b++)
            word |= (uint32_t)(x[32 * w + b] < 0.0f) << b;
        words[w] = word;
    }
#endif
}

static void run_part(job *j, int part) {
    size_t begin = j->n * (size_t)part / (size_t)j->parts, end = j->n * (size_t)(part + 1) / (size_t)j->parts;
    const float *restrict x = j->x, *restrict g = j->g;
    float *restrict y = j->y;
    float best = 0.0f;
    switch (j->op) {
    case OP_COPY:
        for (size_t i = begin; i < end; i++)
            y[i] = x[i];
        break;
    case OP_ADD:
        for (size_t i = begin; i < end; i++)
            y[i] = x[i] + g[i];
        break;
    case OP_READ: {
        /* An integer max of |x|'s bits, as the abs-max kernel computes it: vectorizes without fast-math. */
        const uint32_t *restrict bits = (const uint32_t *)x;
        uint32_t top = 0;
        for (size_t i = begin; i < end; i++) {
            uint32_t b = bits[i] & 0x7fffffffu;
            top = top > b ? top : b;
        }
        memcpy(&best, &top, sizeof best);
        break;
    }
    case OP_PACK:
        pack_words(x, (uint32_t *)y, begin / 32, end / 32);
        break;
    case OP_NARROW: {
        int8_t *restrict bytes = (int8_t *)y;
        for (size_t i = begin; i < end; i++)
            bytes[i] = x[i] < 0.0f ? -1 : 1;
        break;
    }
    }
    j->partial[part] = best;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static job *current;
static unsigned long generation;
static int started, pending;

static void *worker(void *arg) {
    int part = (int)(size_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (generation == seen)
            pthread_cond_wait(&wake, &lock);
        seen = generation;
        job *j = current;
        if (part >= j->parts) continue;
        pthread_mutex_unlock(&lock);
        run_part(j, part);
        pthread_mutex_lock(&lock);
        if (--pending == 0) pthread_cond_signal(&done);
    }
    return NULL;
}

static void run(job *j, int threads) {
    j->parts = j->n >= PARALLEL_MIN && threads > 1 ? (threads < MAX_THREADS ? threads : MAX_THREADS) : 1;
    if (j->parts == 1) {
        run_part(j, 0);
        return;
    }
    pthread_mutex_lock(&lock);
    while (started < j->parts - 1) {
        pthread_t t;
        if (pthread_create(&t, NULL, worker, (void *)(size_t)(started + 1)) != 0) break;
        pthread_detach(t);
        started++;
    }
    if (started < j->parts - 1) j->parts = started + 1;
    current = j;
    pending = j->parts - 1;
    generation++;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    run_part(j, 0);
    pthread_mutex_lock(&lock);
    while (pending > 0)
        pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
}

void roofline_copy(const float *x, float *y, size_t n, int threads) {
    job j = {.op = OP_COPY, .x = x, .y = y, .n = n};
    run(&j, threads);
}

void roofline_add(const float *x, const float *g, float *y, size_t n, int threads) {
    job j = {.op = OP_ADD, .x = x, .g = g, .y = y, .n = n};
    run(&j, threads);
}

float roofline_read(const float *x, size_t n, int threads) {
    job j = {.op = OP_READ, .x = x, .n = n};
    run(&j, threads);
    float best = 0.0f;
    for (int p = 0; p < j.parts; p++)
        best = best > j.partial[p] ? best : j.partial[p];
    return best; /* only to keep the loads alive */
}

void roofline_pack(const float *x, uint32_t *words, size_t n, int threads) {
    job j = {.op = OP_PACK, .x = x, .y = (float *)words, .n = n};
    run(&j, threads);
}

void roofline_narrow(const float *x, int8_t *y, size_t n, int threads) {
    job j = {.op = OP_NARROW, .x = x, .y = (float *)y, .n = n};
    run(&j, threads);
}
