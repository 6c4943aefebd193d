/* Runs generated kernels over host arrays of any length: Halide extents are int32, so n is cut into
 * chunks of at most bq_max_chunk() elements, each described by 1-D halide_buffer_t's over the caller's
 * memory (no copy, any alignment, in place allowed). */
#include "internal.h"

#include <HalideRuntime.h>
#include <stdint.h>
#include <string.h>

void bq_describe(struct halide_buffer_t *buf, struct halide_dimension_t *dims, int dimensions, const void *host,
                 int type_code) {
    memset(buf, 0, sizeof *buf);
    buf->host = (uint8_t *)(uintptr_t)host;
    buf->type.code = (uint8_t)type_code;
    buf->type.bits = 32;
    buf->type.lanes = 1;
    buf->dimensions = dimensions;
    buf->dim = dims;
}

static void describe_floats(halide_buffer_t *buf, halide_dimension_t *dim, const float *data, size_t n) {
    *dim = (halide_dimension_t){.min = 0, .extent = (int32_t)n, .stride = 1};
    bq_describe(buf, dim, 1, data, halide_type_float);
}

bq_status bq_kernel_status(int result, const bq_call_context *call) {
    if (result == halide_error_code_success) return BQ_OK;
    const char *message = atomic_load(&call->failed) ? call->message : "no message";
    if (result == halide_error_code_out_of_memory) return bq_fail(BQ_E_NOMEM, "out of memory in kernel: %s", message);
    return bq_fail(BQ_E_RUNTIME, "kernel failed (Halide error %d): %s", result, message);
}

/* One kernel call on elements [start, start + len), with Halide's error handler reporting into call. */
typedef int (*chunk_fn)(const void *job, size_t start, size_t len, bq_call_context *call);

static bq_status for_each_chunk(size_t n, chunk_fn fn, const void *job) {
    const size_t chunk = bq_max_chunk();
    for (size_t start = 0; start < n; start += chunk) {
        size_t len = n - start < chunk ? n - start : chunk;
        bq_call_context call = {0};
        bq_status status = bq_kernel_status(fn(job, start, len, &call), &call);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}

typedef struct {
    bq_map_fn fn;
    const float *x;
    float p0, p1;
    float *y;
} map_job;

static int map_chunk(const void *job, size_t start, size_t len, bq_call_context *call) {
    const map_job *j = job;
    halide_buffer_t xb, yb;
    halide_dimension_t xd, yd;
    describe_floats(&xb, &xd, j->x + start, len);
    describe_floats(&yb, &yd, j->y + start, len);
    return j->fn(call, &xb, j->p0, j->p1, &yb);
}

bq_status bq_run_map(bq_map_fn fn, const float *x, float p0, float p1, float *y, size_t n) {
    map_job job = {fn, x, p0, p1, y};
    return for_each_chunk(n, map_chunk, &job);
}

typedef struct {
    bq_grad_fn fn;
    const float *x, *g;
    float p0, threshold;
    float *dx;
} grad_job;

static int grad_chunk(const void *job, size_t start, size_t len, bq_call_context *call) {
    const grad_job *j = job;
    halide_buffer_t xb, gb, dxb;
    halide_dimension_t xd, gd, dxd;
    describe_floats(&xb, &xd, j->x + start, len);
    describe_floats(&gb, &gd, j->g + start, len);
    describe_floats(&dxb, &dxd, j->dx + start, len);
    return j->fn(call, &xb, &gb, j->p0, j->threshold, &dxb);
}

bq_status bq_run_grad(bq_grad_fn fn, const float *x, const float *g, float p0, float threshold, float *dx, size_t n) {
    grad_job job = {fn, x, g, p0, threshold, dx};
    return for_each_chunk(n, grad_chunk, &job);
}

typedef struct {
    bq_absmax_fn fn;
    const float *x;
    uint32_t *best; /* combined across chunks as the kernel combines lanes */
} absmax_job;

static int absmax_chunk(const void *job, size_t start, size_t len, bq_call_context *call) {
    const absmax_job *j = job;
    halide_buffer_t xb, bitsb;
    halide_dimension_t xd;
    describe_floats(&xb, &xd, j->x + start, len);
    uint32_t bits = 0;
    bq_describe(&bitsb, NULL, 0, &bits, halide_type_uint);
    int result = j->fn(call, &xb, &bitsb);
    if (bits > *j->best) *j->best = bits;
    return result;
}

/* The abs-max over all chunks: an integer max of |x|'s bits, so a NaN anywhere makes the result NaN (spec
 * section 2, weightdorefa). n must be > 0. */
bq_status bq_run_absmax(bq_absmax_fn fn, const float *x, size_t n, float *absmax) {
    uint32_t best = 0;
    absmax_job job = {fn, x, &best};
    bq_status status = for_each_chunk(n, absmax_chunk, &job);
    if (status == BQ_OK) memcpy(absmax, &best, sizeof best);
    return status;
}

typedef struct {
    bq_count_fn fn;
    const float *x;
    const float *thresholds;
    int levels;
    float *y;
} count_job;

static int count_chunk(const void *job, size_t start, size_t len, bq_call_context *call) {
    const count_job *j = job;
    halide_buffer_t xb, tb, yb;
    halide_dimension_t xd, td, yd;
    describe_floats(&xb, &xd, j->x + start, len);
    describe_floats(&tb, &td, j->thresholds, BQ_COUNT_THRESHOLDS);
    describe_floats(&yb, &yd, j->y + start, len);
    return j->fn(call, &xb, &tb, j->levels, &yb);
}

bq_status bq_run_count(bq_count_fn fn, const float *x, const float thresholds[BQ_COUNT_THRESHOLDS], int levels,
                       float *y, size_t n) {
    count_job job = {fn, x, thresholds, levels, y};
    return for_each_chunk(n, count_chunk, &job);
}

/* WeightDoReFa at 5 to 10 bits (runtime/weightdorefa.c has the rest). */
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

typedef struct {
    bq_map_fn fn;
    const float *x;
    float *y;
    size_t n;
    float m, levels;
    bq_call_context call; /* shared: the first failing piece's message wins */
} estimate_job;

static void fix_open(const estimate_job *j, const float *x, float *y, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) {
        if (y[i] == ESTIMATE_OPEN) y[i] = bq_weightdorefa_output(x[i], j->m, j->levels);
    }
}

/* One piece: the kernel, then the outputs it left open, computed as the spec does. */
static int estimate_piece(void *user_context, int piece, uint8_t *closure) {
    (void)user_context;
    estimate_job *j = (estimate_job *)closure;
    size_t start = (size_t)piece * ESTIMATE_PIECE;
    size_t len = j->n - start < ESTIMATE_PIECE ? j->n - start : ESTIMATE_PIECE;
    const float *x = j->x + start;
    float *y = j->y + start;
    map_job kernel = {j->fn, x, j->levels, j->m, y};
    int result = map_chunk(&kernel, 0, len, &j->call);
    if (result != 0) return result;
    /* Open outputs are rare: a block holds one if the OR of its bit patterns has bit 30 set, which the
     * marker 2 = 0x40000000 has and no value in [-1, 1] has (|y| <= 0x3f800000). One vectorized OR per
     * element; only the blocks that hold one are searched. */
    size_t block = 0;
    for (; block + ESTIMATE_BLOCK <= len; block += ESTIMATE_BLOCK) {
        uint32_t any = 0;
        for (size_t i = 0; i < ESTIMATE_BLOCK; i++) {
            uint32_t bits;
            memcpy(&bits, &y[block + i], sizeof bits);
            any |= bits;
        }
        if (any & ESTIMATE_OPEN_BIT) fix_open(j, x, y, block, block + ESTIMATE_BLOCK);
    }
    fix_open(j, x, y, block, len);
    return 0;
}

bq_status bq_weightdorefa_run_estimate(bq_map_fn fn, const float *x, float absmax, float levels, float *y, size_t n) {
    float m = bq_weightdorefa_m(absmax);
    /* In place, the fix-up would no longer see x; NaN or all zeros: the tanh kernel gives the NaNs. */
    if (x == y || levels < ESTIMATE_MIN_LEVELS || levels > ESTIMATE_MAX_LEVELS || !(m > 0.0f) || n < ESTIMATE_PIECE ||
        n / ESTIMATE_PIECE >= INT32_MAX) {
        return BQ_E_UNSUPPORTED;
    }
    estimate_job job = {fn, x, y, n, m, levels, {0}};
    int pieces = (int)((n + ESTIMATE_PIECE - 1) / ESTIMATE_PIECE);
    int result = 0;
    if (n < ESTIMATE_PARALLEL_MIN) {
        for (int piece = 0; piece < pieces && result == 0; piece++)
            result = estimate_piece(&job.call, piece, (uint8_t *)&job);
    } else {
        result = halide_do_par_for(&job.call, estimate_piece, 0, pieces, (uint8_t *)&job);
    }
    return bq_kernel_status(result, &job.call);
}
