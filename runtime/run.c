/* Runs generated kernels over host arrays of any length: Halide extents are int32, so n is cut into
 * chunks of at most bq_max_chunk() elements, each described by a 1-D halide_buffer_t over the caller's
 * memory (no copy, any alignment, in place allowed). */
#include "call_context.h"
#include "internal.h"

#include <HalideRuntime.h>
#include <string.h>

static void describe_floats(halide_buffer_t *buf, halide_dimension_t *dim, const float *data, size_t n) {
    memset(buf, 0, sizeof *buf);
    memset(dim, 0, sizeof *dim);
    dim->extent = (int32_t)n;
    dim->stride = 1;
    buf->host = (uint8_t *)(uintptr_t)data;
    buf->type.code = halide_type_float;
    buf->type.bits = 32;
    buf->type.lanes = 1;
    buf->dimensions = 1;
    buf->dim = dim;
}

static bq_status kernel_status(int result, const bq_call_context *call) {
    if (result == halide_error_code_success) return BQ_OK;
    const char *message = atomic_load(&call->failed) ? call->message : "no message";
    if (result == halide_error_code_out_of_memory) return bq_fail(BQ_E_NOMEM, "out of memory in kernel: %s", message);
    return bq_fail(BQ_E_RUNTIME, "kernel failed (Halide error %d): %s", result, message);
}

bq_status bq_run_map(bq_map_fn fn, const float *x, float p0, float p1, float *y, size_t n) {
    const size_t chunk = bq_max_chunk();
    for (size_t start = 0; start < n; start += chunk) {
        size_t len = n - start < chunk ? n - start : chunk;
        halide_buffer_t xb, yb;
        halide_dimension_t xd, yd;
        describe_floats(&xb, &xd, x + start, len);
        describe_floats(&yb, &yd, y + start, len);
        bq_call_context call = {0};
        bq_status status = kernel_status(fn(&call, &xb, p0, p1, &yb), &call);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}

bq_status bq_run_grad(bq_grad_fn fn, const float *x, const float *g, float p0, float threshold, float *dx,
                      size_t n) {
    const size_t chunk = bq_max_chunk();
    for (size_t start = 0; start < n; start += chunk) {
        size_t len = n - start < chunk ? n - start : chunk;
        halide_buffer_t xb, gb, dxb;
        halide_dimension_t xd, gd, dxd;
        describe_floats(&xb, &xd, x + start, len);
        describe_floats(&gb, &gd, g + start, len);
        describe_floats(&dxb, &dxd, dx + start, len);
        bq_call_context call = {0};
        bq_status status = kernel_status(fn(&call, &xb, &gb, p0, threshold, &dxb), &call);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}

/* The abs-max over all chunks, combined as the kernel combines lanes: integer max of |x|'s bits, so a
 * NaN anywhere makes the result NaN (spec section 2, weightdorefa). n must be > 0. */
bq_status bq_run_absmax(bq_absmax_fn fn, const float *x, size_t n, float *absmax) {
    const size_t chunk = bq_max_chunk();
    uint32_t best = 0;
    for (size_t start = 0; start < n; start += chunk) {
        size_t len = n - start < chunk ? n - start : chunk;
        halide_buffer_t xb, bitsb;
        halide_dimension_t xd;
        describe_floats(&xb, &xd, x + start, len);
        uint32_t bits = 0;
        memset(&bitsb, 0, sizeof bitsb);
        bitsb.host = (uint8_t *)&bits;
        bitsb.type.code = halide_type_uint;
        bitsb.type.bits = 32;
        bitsb.type.lanes = 1;
        bq_call_context call = {0};
        bq_status status = kernel_status(fn(&call, &xb, &bitsb), &call);
        if (status != BQ_OK) return status;
        if (bits > best) best = bits;
    }
    memcpy(absmax, &best, sizeof best);
    return BQ_OK;
}

bq_status bq_run_count(bq_count_fn fn, const float *x, const float thresholds[BQ_COUNT_THRESHOLDS], int levels,
                       float *y, size_t n) {
    const size_t chunk = bq_max_chunk();
    halide_buffer_t tb;
    halide_dimension_t td;
    describe_floats(&tb, &td, thresholds, BQ_COUNT_THRESHOLDS);
    for (size_t start = 0; start < n; start += chunk) {
        size_t len = n - start < chunk ? n - start : chunk;
        halide_buffer_t xb, yb;
        halide_dimension_t xd, yd;
        describe_floats(&xb, &xd, x + start, len);
        describe_floats(&yb, &yd, y + start, len);
        bq_call_context call = {0};
        bq_status status = kernel_status(fn(&call, &xb, &tb, levels, &yb), &call);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}
