/* The GPU entry points of include/bitquant.h. The kernel table is compiled for each GPU backend (the
 * registry is generated from generators/kernels.def by the build); this file runs those kernels over host
 * memory, which Halide's runtime copies in and out, or over the caller's device memory, which it wraps.
 * Either way n is cut into chunks of at most bq_max_chunk() elements (Halide extents are int32), rounded
 * down to a multiple of GPU_CHUNK_MULTIPLE: device memory is described as a 2-D buffer of whole chunks and
 * sliced, so no chunk needs its own allocation. */
#include "internal.h"

#include <HalideRuntime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "bq_gpu_registry.inc" /* bq_gpu_backends[]: the compiled backends, then an end marker */

/* Device memory is sliced at chunk boundaries, and Halide's OpenCL runtime passes a slice as a sub-buffer,
 * whose offset must be a multiple of the device's base address alignment (CL_DEVICE_MEM_BASE_ADDR_ALIGN,
 * at most a few KiB in practice): GPU chunks are whole multiples of 4096 elements (16 KiB). */
#define GPU_CHUNK_MULTIPLE ((size_t)4096)

static const char *const backend_names[BQ_BACKEND_COUNT] = {"cuda", "opencl"};
static const char *const backend_options[BQ_BACKEND_COUNT] = {"BITQUANT_CUDA", "BITQUANT_OPENCL"};

static const bq_gpu_backend *find_backend(bq_backend backend) {
    for (const bq_gpu_backend *b = bq_gpu_backends; b->kernels != NULL; b++) {
        if (b->backend == backend) return b;
    }
    return NULL;
}

int bq_load_driver(const char *soname, const char *fallback, const char *const *names, size_t count, void *fns,
                   const char **missing) {
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) lib = dlopen(fallback, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) return 1;
    for (size_t i = 0; i < count; i++) {
        void *fn = dlsym(lib, names[i]);
        if (fn == NULL) {
            *missing = names[i];
            return 2;
        }
        memcpy((char *)fns + i * sizeof fn, &fn, sizeof fn);
    }
    return 0;
}

const char *bq_backend_name(bq_backend backend) {
    return (unsigned)backend < BQ_BACKEND_COUNT ? backend_names[backend] : NULL;
}

int bq_backend_compiled(bq_backend backend) { return find_backend(backend) != NULL; }

/* The backend with its driver loaded, or the reason why not, prefixed with the entry point's name. */
static bq_status open_backend(const char *fn, bq_backend backend, const bq_gpu_backend **out) {
    bq_runtime_init();
    if ((unsigned)backend >= BQ_BACKEND_COUNT) return bq_fail(BQ_E_INVALID, "%s: no backend %d", fn, (int)backend);
    const bq_gpu_backend *b = find_backend(backend);
    if (b == NULL) {
        return bq_fail(BQ_E_UNSUPPORTED, "%s: this library was built without %s (CMake option %s=OFF)", fn,
                       backend_names[backend], backend_options[backend]);
    }
    bq_status status = b->device->load();
    if (status != BQ_OK) {
        char reason[384];
        snprintf(reason, sizeof reason, "%s", bq_last_error());
        return bq_fail(status, "%s: %s", fn, reason);
    }
    *out = b;
    return BQ_OK;
}

bq_status bq_backend_device(bq_backend backend, char *name, size_t size) {
    if (name == NULL && size > 0) return bq_fail(BQ_E_INVALID, "bq_backend_device: name is NULL with size %zu", size);
    const bq_gpu_backend *b = NULL;
    bq_status status = open_backend("bq_backend_device", backend, &b);
    if (status != BQ_OK) return status;
    void *context = NULL, *queue = NULL;
    return b->device->default_device(&context, &queue, name, size);
}

/* One call's view of the data: where it lives, and the device context and queue the kernels run on. */
typedef struct {
    const bq_gpu_backend *backend;
    void *context, *queue;
    size_t n, chunk;
} gpu_run;

/* An array of floats: host memory (host != NULL) or a device handle (a CUdeviceptr or cl_mem). */
typedef struct {
    const float *host;
    uint64_t device;
} operand;

/* A kernel argument for one chunk: `buf`, and for device memory the `whole` it is sliced from. */
typedef struct {
    halide_buffer_t buf, whole;
    halide_dimension_t dim, whole_dim[2];
    int output, on_device, bound;
} slot;

/* Elements [start, start + len) of op as s->buf. Host inputs are marked dirty so that Halide copies them
 * to the device; device memory is wrapped as [chunk x chunks] and chunk start / chunk sliced out. */
static int bind(const gpu_run *run, bq_call_context *call, slot *s, operand op, size_t start, size_t len, int output) {
    memset(s, 0, sizeof *s);
    s->output = output;
    s->dim = (halide_dimension_t){.min = 0, .extent = (int32_t)len, .stride = 1};
    if (op.host != NULL) {
        bq_describe(&s->buf, &s->dim, 1, op.host + start, halide_type_float);
        if (!output) s->buf.flags = halide_buffer_flag_host_dirty;
        s->bound = 1;
        return halide_error_code_success;
    }
    size_t chunks = (run->n + run->chunk - 1) / run->chunk;
    s->whole_dim[0] = (halide_dimension_t){.min = 0, .extent = (int32_t)run->chunk, .stride = 1};
    s->whole_dim[1] = (halide_dimension_t){.min = 0, .extent = (int32_t)chunks, .stride = (int32_t)run->chunk};
    bq_describe(&s->whole, s->whole_dim, 2, NULL, halide_type_float);
    int result = run->backend->device->wrap(call, &s->whole, op.device);
    if (result != halide_error_code_success) return result;
    s->on_device = 1;
    bq_describe(&s->buf, &s->dim, 1, NULL, halide_type_float);
    result = halide_device_slice(call, &s->whole, 1, (int)(start / run->chunk), &s->buf);
    s->bound = result == halide_error_code_success;
    return result;
}

/* A host scalar the kernel writes (the abs-max's bits). */
static void bind_scalar_output(slot *s, uint32_t *value) {
    memset(s, 0, sizeof *s);
    bq_describe(&s->buf, &s->dim, 0, value, halide_type_uint);
    s->output = 1;
    s->bound = 1;
}

/* After the kernel (result): host outputs are copied back and waited for, and every device allocation,
 * slice and wrapper is let go. Returns the first error. */
static int release(const gpu_run *run, bq_call_context *call, slot *slots, int count, int result) {
    for (int i = 0; i < count; i++) {
        slot *s = &slots[i];
        int r = halide_error_code_success;
        if (s->on_device) {
            if (s->bound) r = halide_device_release_crop(call, &s->buf);
            int detached = run->backend->device->detach(call, &s->whole);
            if (r == halide_error_code_success) r = detached;
        } else if (s->bound && s->buf.device != 0) {
            if (s->output && result == halide_error_code_success) {
                r = halide_copy_to_host(call, &s->buf);
                if (r == halide_error_code_success) r = halide_device_sync(call, &s->buf);
            }
            int freed = halide_device_free(call, &s->buf);
            if (r == halide_error_code_success) r = freed;
        }
        if (result == halide_error_code_success) result = r;
    }
    return result;
}

/* One kernel call on elements [start, start + len). */
typedef int (*chunk_fn)(const gpu_run *run, const void *job, size_t start, size_t len, bq_call_context *call);

static bq_status for_each_chunk(const gpu_run *run, chunk_fn fn, const void *job) {
    for (size_t start = 0; start < run->n; start += run->chunk) {
        size_t len = run->n - start < run->chunk ? run->n - start : run->chunk;
        bq_call_context call = {0};
        call.device_context = run->context;
        call.device_queue = run->queue;
        bq_status status = bq_kernel_status(fn(run, job, start, len, &call), &call);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}

/* Binds ops[0 .. count) for the chunk, the ones from first_output on as outputs; *bound counts the slots
 * that need releasing. */
static int bind_all(const gpu_run *run, bq_call_context *call, slot *slots, const operand *ops, int count,
                    int first_output, size_t start, size_t len, int *bound) {
    int result = halide_error_code_success;
    for (int i = 0; i < count && result == halide_error_code_success; i++) {
        result = bind(run, call, &slots[i], ops[i], start, len, i >= first_output);
        *bound = i + 1;
    }
    return result;
}

typedef struct {
    bq_map_fn fn;
    operand x, y;
    float p0, p1;
} map_job;

static int map_chunk(const gpu_run *run, const void *job, size_t start, size_t len, bq_call_context *call) {
    const map_job *j = job;
    const operand ops[2] = {j->x, j->y};
    slot s[2];
    int bound = 0;
    int result = bind_all(run, call, s, ops, 2, 1, start, len, &bound);
    if (result == halide_error_code_success) result = j->fn(call, &s[0].buf, j->p0, j->p1, &s[1].buf);
    return release(run, call, s, bound, result);
}

typedef struct {
    bq_grad_fn fn;
    operand x, g, dx;
    float p0, threshold;
} grad_job;

static int grad_chunk(const gpu_run *run, const void *job, size_t start, size_t len, bq_call_context *call) {
    const grad_job *j = job;
    const operand ops[3] = {j->x, j->g, j->dx};
    slot s[3];
    int bound = 0;
    int result = bind_all(run, call, s, ops, 3, 2, start, len, &bound);
    if (result == halide_error_code_success) result = j->fn(call, &s[0].buf, &s[1].buf, j->p0, j->threshold, &s[2].buf);
    return release(run, call, s, bound, result);
}

typedef struct {
    bq_absmax_fn fn;
    operand x;
    uint32_t *best; /* combined across chunks as the kernel combines lanes */
} absmax_job;

static int absmax_chunk(const gpu_run *run, const void *job, size_t start, size_t len, bq_call_context *call) {
    const absmax_job *j = job;
    slot s[2];
    int bound = 0;
    uint32_t bits = 0;
    int result = bind_all(run, call, s, &j->x, 1, 1, start, len, &bound);
    if (result == halide_error_code_success) {
        bind_scalar_output(&s[1], &bits);
        bound = 2;
        result = j->fn(call, &s[0].buf, &s[1].buf);
    }
    result = release(run, call, s, bound, result);
    if (result == halide_error_code_success && bits > *j->best) *j->best = bits;
    return result;
}

typedef struct {
    bq_count_fn fn;
    operand x, y;
    const float *thresholds;
    int levels;
} count_job;

static int count_chunk(const gpu_run *run, const void *job, size_t start, size_t len, bq_call_context *call) {
    const count_job *j = job;
    const operand ops[2] = {j->x, j->y};
    slot s[3];
    int bound = 0;
    int result = bind_all(run, call, s, ops, 2, 1, start, len, &bound);
    if (result == halide_error_code_success) {
        result = bind(run, call, &s[2], (operand){j->thresholds, 0}, 0, BQ_COUNT_THRESHOLDS, 0);
        bound = 3;
    }
    if (result == halide_error_code_success) result = j->fn(call, &s[0].buf, &s[2].buf, j->levels, &s[1].buf);
    return release(run, call, s, bound, result);
}

static bq_status run_forward(const gpu_run *run, const bq_quantizer *q, operand x, operand y) {
    const bq_kernel *kernels = run->backend->kernels;
    const bq_scalars *sc = &q->scalars;
    if (q->entry->mapping != BQ_MAP_LEVELS_MAX) {
        map_job job = {kernels[q->entry->forward].map, x, y, sc->forward_p0, sc->forward_p1};
        return for_each_chunk(run, map_chunk, &job);
    }
    /* WeightDoReFa: the abs-max on the device, then the count or the tanh kernel (runtime/weightdorefa.c). */
    uint32_t best = 0;
    absmax_job absmax = {kernels[BQ_FAMILY_absmax].absmax, x, &best};
    bq_status status = for_each_chunk(run, absmax_chunk, &absmax);
    if (status != BQ_OK) return status;
    float m, thresholds[BQ_COUNT_THRESHOLDS];
    memcpy(&m, &best, sizeof m);
    if (bq_weightdorefa_count_plan(m, sc->forward_p0, run->n, thresholds)) {
        count_job job = {kernels[BQ_FAMILY_weightdorefa_count].count, x, y, thresholds, (int)sc->forward_p0};
        return for_each_chunk(run, count_chunk, &job);
    }
    map_job job = {kernels[BQ_FAMILY_weightdorefa].map, x, y, sc->forward_p0, m};
    return for_each_chunk(run, map_chunk, &job);
}

static bq_status run_backward(const gpu_run *run, const bq_quantizer *q, operand x, operand g, operand dx) {
    grad_job job = {
        run->backend->kernels[q->entry->backward].grad, x, g, dx, q->scalars.backward_p0, q->scalars.threshold};
    return for_each_chunk(run, grad_chunk, &job);
}

/* Checks an entry point's arguments (the data pointers matter only when n > 0) and opens its backend. */
static bq_status enter(const char *fn, const bq_quantizer *q, bq_backend backend, size_t n, const void *const *data,
                       const char *const *names, int count, gpu_run *run) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "%s: quantizer is NULL", fn);
    for (int i = 0; i < count && n > 0; i++) {
        if (data[i] == NULL) return bq_fail(BQ_E_INVALID, "%s: %s is NULL with n = %zu", fn, names[i], n);
    }
    memset(run, 0, sizeof *run);
    bq_status status = open_backend(fn, backend, &run->backend);
    if (status != BQ_OK) return status;
    run->n = n;
    run->chunk = bq_max_chunk() / GPU_CHUNK_MULTIPLE * GPU_CHUNK_MULTIPLE;
    if (run->chunk == 0) run->chunk = GPU_CHUNK_MULTIPLE;
    return BQ_OK;
}

static operand host(const float *p) { return (operand){p, 0}; }
static operand device(const void *p) { return (operand){NULL, (uint64_t)(uintptr_t)p}; }

bq_status bq_device_forward_host(const bq_quantizer *q, bq_backend backend, const float *x, float *y, size_t n) {
    static const char *const names[] = {"x", "y"};
    const void *data[] = {x, y};
    gpu_run run;
    bq_status status = enter("bq_device_forward_host", q, backend, n, data, names, 2, &run);
    if (status != BQ_OK || n == 0) return status;
    status = run.backend->device->default_device(&run.context, &run.queue, NULL, 0);
    if (status != BQ_OK) return status;
    return run_forward(&run, q, host(x), host(y));
}

bq_status bq_device_backward_host(const bq_quantizer *q, bq_backend backend, const float *x, const float *grad_y,
                                  float *grad_x, size_t n) {
    static const char *const names[] = {"x", "grad_y", "grad_x"};
    const void *data[] = {x, grad_y, grad_x};
    gpu_run run;
    bq_status status = enter("bq_device_backward_host", q, backend, n, data, names, 3, &run);
    if (status != BQ_OK || n == 0) return status;
    status = run.backend->device->default_device(&run.context, &run.queue, NULL, 0);
    if (status != BQ_OK) return status;
    return run_backward(&run, q, host(x), host(grad_y), host(grad_x));
}

bq_status bq_cuda_forward(const bq_quantizer *q, const float *x, float *y, size_t n, void *stream) {
    static const char *const names[] = {"x", "y"};
    const void *data[] = {x, y};
    gpu_run run;
    bq_status status = enter("bq_cuda_forward", q, BQ_BACKEND_CUDA, n, data, names, 2, &run);
    if (status != BQ_OK || n == 0) return status;
    status = run.backend->device->caller_context(&run.context);
    if (status != BQ_OK) return status;
    run.queue = stream;
    return run_forward(&run, q, device(x), device(y));
}

bq_status bq_cuda_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n,
                           void *stream) {
    static const char *const names[] = {"x", "grad_y", "grad_x"};
    const void *data[] = {x, grad_y, grad_x};
    gpu_run run;
    bq_status status = enter("bq_cuda_backward", q, BQ_BACKEND_CUDA, n, data, names, 3, &run);
    if (status != BQ_OK || n == 0) return status;
    status = run.backend->device->caller_context(&run.context);
    if (status != BQ_OK) return status;
    run.queue = stream;
    return run_backward(&run, q, device(x), device(grad_y), device(grad_x));
}

bq_status bq_opencl_forward(const bq_quantizer *q, void *context, void *queue, void *x, void *y, size_t n) {
    static const char *const names[] = {"context", "queue", "x", "y"};
    const void *data[] = {context, queue, x, y};
    if (context == NULL || queue == NULL) {
        return bq_fail(BQ_E_INVALID, "bq_opencl_forward: %s is NULL", context == NULL ? "context" : "queue");
    }
    gpu_run run;
    bq_status status = enter("bq_opencl_forward", q, BQ_BACKEND_OPENCL, n, data, names, 4, &run);
    if (status != BQ_OK || n == 0) return status;
    run.context = context;
    run.queue = queue;
    return run_forward(&run, q, device(x), device(y));
}

bq_status bq_opencl_backward(const bq_quantizer *q, void *context, void *queue, void *x, void *grad_y, void *grad_x,
                             size_t n) {
    static const char *const names[] = {"context", "queue", "x", "grad_y", "grad_x"};
    const void *data[] = {context, queue, x, grad_y, grad_x};
    if (context == NULL || queue == NULL) {
        return bq_fail(BQ_E_INVALID, "bq_opencl_backward: %s is NULL", context == NULL ? "context" : "queue");
    }
    gpu_run run;
    bq_status status = enter("bq_opencl_backward", q, BQ_BACKEND_OPENCL, n, data, names, 5, &run);
    if (status != BQ_OK || n == 0) return status;
    run.context = context;
    run.queue = queue;
    return run_backward(&run, q, device(x), device(grad_y), device(grad_x));
}
