/* WeightDoReFa's forward (spec section 2): M = max |tanh x| over the whole tensor, then
 * y = 2 (round_half_even((tanh(x) / 2M + 1/2) L) / L) - 1. Its whole plan, on the CPU or a GPU, for every
 * input and output type, is bq_weightdorefa_forward below.
 *
 * The max comes first (an ABSMAX pass; M = tanh(max |x|) as tanh is monotonic), so y == x works. Then one of
 * three kernels, with the same results: the weightdorefa kernel
 * evaluates a correctly rounded tanh per element; at 1 to 4 bits on large inputs, the count kernel instead
 * counts how many of the L level thresholds each x reaches. The level is a non-decreasing function of x
 * (every step, the correctly rounded tanh included, is monotonic), so the thresholds, found here by
 * bisection over the floats, reproduce it exactly. At 5 to 10 bits on large host inputs, the estimate
 * kernel computes every output whose level a float tanh settles, and marks the rest (about 4e-6 L of
 * them), which bq_weightdorefa_output computes here, piece by piece while the piece is in cache.
 */
#include "internal.h"

#include <HalideRuntime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Each threshold costs a bisection of 32 tanh evaluations (about 1 us); the tanh kernel costs about 2 ns
 * per element on one core. Below this many elements per threshold, the tanh kernel is cheaper. */
#define COUNT_MIN_N_PER_LEVEL 512

/* The spec's level of x: round_half_even((tanh(x) / 2M + 1/2) L), each step in float32, tanh correctly
 * rounded (libm's double tanh, then rounded once), as the kernels compute it. */
static float level_of(float x, float m, float levels) {
    float t = (float)tanh((double)x);
    float u = t / (2.0f * m) + 0.5f;
    return rintf(u * levels);
}

/* Floats in increasing order as int32 keys: -inf < ... < -0 < +0 < ... < +inf. */
static int32_t key_of(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits >= 0 ? bits : bits ^ INT32_MAX;
}

static float float_of(int32_t key) {
    int32_t bits = key >= 0 ? key : key ^ INT32_MAX;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* thresholds[j] = the smallest float x whose level is >= j + 1. level(-inf) <= 0 < j + 1 and
 * level(+inf) >= L (M <= 1), so each bisection has its answer in (-inf, +inf]. */
static void find_thresholds(float m, int levels, float thresholds[BQ_TABLE_LENGTH]) {
    for (int j = 0; j < BQ_TABLE_LENGTH; j++) {
        if (j >= levels) {
            thresholds[j] = INFINITY; /* never read: the kernel counts only the first L */
            continue;
        }
        int64_t below = key_of(-INFINITY), at = key_of(INFINITY); /* 64-bit: the span exceeds INT32_MAX */
        while (at - below > 1) {
            int64_t mid = below + (at - below) / 2;
            if (level_of(float_of((int32_t)mid), m, (float)levels) >= (float)(j + 1))
                at = mid;
            else
                below = mid;
        }
        thresholds[j] = float_of((int32_t)at);
    }
}

float bq_weightdorefa_m(float absmax) { return (float)tanh((double)absmax); }

int bq_weightdorefa_count_plan(float absmax, float levels, size_t n, float thresholds[BQ_TABLE_LENGTH]) {
    float m = bq_weightdorefa_m(absmax);
    /* NaN or an all-zero input makes every output NaN: the tanh kernel computes exactly that. */
    if (levels > BQ_TABLE_LENGTH || n < COUNT_MIN_N_PER_LEVEL * (size_t)levels || !(m > 0.0f)) return 0;
    find_thresholds(m, (int)levels, thresholds);
    return 1;
}

float bq_weightdorefa_output(float x, float m, float levels) { return 2.0f * (level_of(x, m, levels) / levels) - 1.0f; }

/* The estimate kernel (5 to 10 bits) and the exact fix-up of what it leaves open. */
/* The estimate kernel's marker for an output it leaves open (outside [-1, 1], so never a real output). */
#define ESTIMATE_OPEN 2.0f
#define ESTIMATE_OPEN_BIT 0x40000000u
#define ESTIMATE_MIN_LEVELS 31   /* 5 bits; below, the count kernel */
#define ESTIMATE_MAX_LEVELS 1023 /* 10 bits: about 0.4% of outputs open; above, the fix-ups cost too much */
/* Pieces of 2^15 elements: x and y of one piece stay in a core's L2 between the kernel and the fix-up. */
#define ESTIMATE_PIECE ((size_t)1 << 15)
#define ESTIMATE_BLOCK 64
/* Below this, the pieces run on the calling thread, as the kernels run serially below 2^18 elements: waking a
 * worker costs more than it saves (2^16 elements took 80 us on two threads, 58 us on one). */
#define ESTIMATE_PARALLEL_MIN ((size_t)1 << 18)

/* x and y as bytes, read and written with memcpy: the API takes arrays at any alignment. */
typedef struct {
    const bq_place *place;
    const unsigned char *x;
    unsigned char *y;
    size_t n;
    float m, levels;
    atomic_int failed; /* the first failing piece's status wins */
    bq_status status;
    char message[512];
} estimate_job;

static void fix_open(const estimate_job *j, const unsigned char *x, unsigned char *y, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) {
        float xi, yi;
        memcpy(&yi, y + 4 * i, sizeof yi);
        if (yi != ESTIMATE_OPEN) continue;
        memcpy(&xi, x + 4 * i, sizeof xi);
        yi = bq_weightdorefa_output(xi, j->m, j->levels);
        memcpy(y + 4 * i, &yi, sizeof yi);
    }
}

/* One piece: the kernel, then the outputs it left open, computed as the spec does. */
static int estimate_piece(void *user_context, int piece, uint8_t *closure) {
    (void)user_context;
    estimate_job *j = (estimate_job *)closure;
    size_t start = (size_t)piece * ESTIMATE_PIECE;
    size_t len = j->n - start < ESTIMATE_PIECE ? j->n - start : ESTIMATE_PIECE;
    const unsigned char *x = j->x + 4 * start;
    unsigned char *y = j->y + 4 * start;
    const bq_value values[BQ_MAX_ARGS] = {{.host = x}, {.f = j->levels}, {.f = j->m}, {.host = y}};
    bq_status status = bq_execute(j->place, BQ_FAMILY_weightdorefa_estimate, BQ_F32, BQ_F32, values, 1, len);
    if (status != BQ_OK) {
        if (atomic_exchange(&j->failed, 1) == 0) {
            j->status = status;
            snprintf(j->message, sizeof j->message, "%s", bq_last_error());
        }
        return 1;
    }
    /* Open outputs are rare: a block holds one if the OR of its bit patterns has bit 30 set, which the
     * marker 2 = 0x40000000 has and no value in [-1, 1] has (|y| <= 0x3f800000). One vectorized OR per
     * element; only the blocks that hold one are searched. */
    size_t block = 0;
    for (; block + ESTIMATE_BLOCK <= len; block += ESTIMATE_BLOCK) {
        uint32_t any = 0;
        for (size_t i = 0; i < ESTIMATE_BLOCK; i++) {
            uint32_t bits;
            memcpy(&bits, y + 4 * (block + i), sizeof bits);
            any |= bits;
        }
        if (any & ESTIMATE_OPEN_BIT) fix_open(j, x, y, block, block + ESTIMATE_BLOCK);
    }
    fix_open(j, x, y, block, len);
    return 0;
}

/* BQ_E_UNSUPPORTED if the estimate does not apply here (then the tanh kernel runs), else the outcome. */
static bq_status run_estimate(const bq_place *place, float absmax, float levels, bq_dtype in, bq_value x, bq_dtype out,
                              bq_value y, size_t n) {
    float m = bq_weightdorefa_m(absmax);
    /* In place, the fix-up would no longer see x; NaN or all zeros: the tanh kernel gives the NaNs. */
    if (place->gpu != NULL || in != BQ_F32 || out != BQ_F32 || x.host == y.host || levels < ESTIMATE_MIN_LEVELS ||
        levels > ESTIMATE_MAX_LEVELS || !(m > 0.0f) || n < ESTIMATE_PIECE || n / ESTIMATE_PIECE >= INT32_MAX) {
        return BQ_E_UNSUPPORTED;
    }
    estimate_job job = {place, x.host, (unsigned char *)(uintptr_t)y.host, n, m, levels, 0, BQ_OK, ""};
    int pieces = (int)((n + ESTIMATE_PIECE - 1) / ESTIMATE_PIECE);
    if (n < ESTIMATE_PARALLEL_MIN) {
        for (int piece = 0; piece < pieces && !atomic_load(&job.failed); piece++)
            estimate_piece(NULL, piece, (uint8_t *)&job);
    } else {
        bq_call_context call = {0};
        int result = halide_do_par_for(&call, estimate_piece, 0, pieces, (uint8_t *)&job);
        if (result != 0 && !atomic_load(&job.failed)) return bq_kernel_status(result, &call);
    }
    return atomic_load(&job.failed) ? bq_fail(job.status, "%s", job.message) : BQ_OK;
}

bq_status bq_weightdorefa_forward(const bq_place *place, float levels, bq_dtype in, bq_value x, bq_dtype out, bq_value y,
                                  size_t n) {
    if (n == 0) return BQ_OK;
    uint32_t bits = 0;
    const bq_value absmax_values[BQ_MAX_ARGS] = {x, {.host = &bits}};
    bq_status status = bq_execute(place, BQ_FAMILY_absmax, in, in, absmax_values, 1, n);
    if (status != BQ_OK) return status;
    float absmax, thresholds[BQ_TABLE_LENGTH];
    memcpy(&absmax, &bits, sizeof absmax);
    if (bq_weightdorefa_count_plan(absmax, levels, n, thresholds)) {
        const bq_value values[BQ_MAX_ARGS] = {x, {.host = thresholds}, {.i = (int32_t)levels}, y};
        return bq_execute(place, BQ_FAMILY_weightdorefa_count, in, out, values, 1, n);
    }
    status = run_estimate(place, absmax, levels, in, x, out, y, n);
    if (status != BQ_E_UNSUPPORTED) return status;
    const bq_value values[BQ_MAX_ARGS] = {x, {.f = levels}, {.f = absmax}, y};
    return bq_execute(place, BQ_FAMILY_weightdorefa, in, out, values, 1, n);
}
