/* The GPU entry points of include/bitquant.h. The kernel table is compiled for each GPU backend (the
 * registry is generated from generators/kernels.def by the build); this file opens a backend and hands the
 * call to the plans the CPU uses (bitquant.c), which run the kernels through the one executor (exec.c) over
 * host memory, which Halide's runtime copies in and out, or over the caller's device memory, which it wraps. */
#include "internal.h"

#include <HalideRuntime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "bq_gpu_registry.inc" /* bq_gpu_backends[]: the compiled backends, then an end marker */

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

/* A GPU call's place: the backend with its driver loaded, in chunks of a multiple of 4096 elements (exec.c).
 * host: the default device's context and queue (host-memory entry points); else the caller's. */
static bq_status gpu_place(const char *fn, bq_backend backend, bq_place *place) {
    memset(place, 0, sizeof *place);
    bq_status status = open_backend(fn, backend, &place->gpu);
    if (status != BQ_OK) return status;
    place->kernels = place->gpu->kernels;
    place->max_chunk = bq_max_chunk();
    return BQ_OK;
}

/* The three ways in: host memory on the default device, CUDA pointers on the caller's context and stream,
 * cl_mem buffers on the caller's context and queue. */
typedef enum { ON_HOST, ON_CUDA, ON_OPENCL } memory;

/* An array argument: host memory, or a device handle (a CUdeviceptr or cl_mem). */
static bq_value array(memory where, const void *p) {
    return where == ON_HOST ? (bq_value){.host = p} : (bq_value){.device = (uint64_t)(uintptr_t)p};
}

/* The OpenCL entry points' first check, before their data's: a NULL context or queue. */
static bq_status check_handles(const char *fn, memory where, const void *context, const void *queue) {
    if (where != ON_OPENCL || (context != NULL && queue != NULL)) return BQ_OK;
    return bq_fail(BQ_E_INVALID, "%s: %s is NULL", fn, context == NULL ? "context" : "queue");
}

static bq_status enter(const char *fn, memory where, bq_backend backend, void *context, void *queue, bq_place *place) {
    bq_status status = gpu_place(fn, backend, place);
    if (status != BQ_OK) return status;
    if (where == ON_HOST) return place->gpu->device->default_device(&place->context, &place->queue, NULL, 0);
    if (where == ON_CUDA) {
        place->queue = queue;
        return place->gpu->device->caller_context(&place->context);
    }
    place->context = context;
    place->queue = queue;
    return BQ_OK;
}

static bq_status forward(const char *fn, memory where, const bq_quantizer *q, bq_backend backend, void *context,
                         void *queue, bq_dtype x_type, const void *x, bq_dtype y_type, void *y, size_t rows,
                         size_t cols) {
    bq_family family;
    bq_status status = check_handles(fn, where, context, queue);
    if (status == BQ_OK) status = bq_check_cpu_only(fn, q);
    if (status == BQ_OK) {
        status = bq_check_forward(fn, q, x_type, x, y_type, y, rows, cols, where != ON_OPENCL, &family);
    }
    if (status != BQ_OK) return status;
    bq_place place;
    status = enter(fn, where, backend, context, queue, &place);
    if (status != BQ_OK || rows * cols == 0) return status;
    return bq_run_forward(&place, q, family, x_type, array(where, x), y_type, array(where, y), rows, cols);
}

static bq_status backward(const char *fn, memory where, const bq_quantizer *q, bq_backend backend, void *context,
                          void *queue, bq_dtype type, const void *x, const void *g, void *dx, size_t n) {
    bq_status status = check_handles(fn, where, context, queue);
    if (status == BQ_OK) status = bq_check_cpu_only(fn, q);
    if (status == BQ_OK) status = bq_check_backward(fn, q, type, x, g, dx, n, where != ON_OPENCL);
    if (status != BQ_OK) return status;
    bq_place place;
    status = enter(fn, where, backend, context, queue, &place);
    if (status != BQ_OK || n == 0) return status;
    return bq_run_backward(&place, q, type, array(where, x), array(where, g), array(where, dx), n);
}

static bq_status forward_save(const char *fn, memory where, const bq_quantizer *q, bq_backend backend, void *context,
                              void *queue, bq_dtype type, const void *x, void *y, const void *saved, size_t n) {
    bq_saved_plan plan;
    bq_status status = check_handles(fn, where, context, queue);
    if (status == BQ_OK) status = bq_check_save(fn, q, type, x, y, saved, n, where != ON_OPENCL, &plan);
    if (status != BQ_OK) return status;
    bq_place place;
    status = enter(fn, where, backend, context, queue, &place);
    if (status != BQ_OK || n == 0) return status;
    return bq_run_forward_save(&place, q, &plan, type, array(where, x), array(where, y), array(where, saved), n);
}

static bq_status backward_saved(const char *fn, memory where, const bq_quantizer *q, bq_backend backend,
                                void *context, void *queue, bq_dtype type, const void *saved, const void *g, void *dx,
                                size_t n) {
    bq_saved_plan plan;
    bq_status status = check_handles(fn, where, context, queue);
    if (status == BQ_OK) status = bq_check_saved_backward(fn, q, type, saved, g, dx, n, where != ON_OPENCL, &plan);
    if (status != BQ_OK) return status;
    bq_place place;
    status = enter(fn, where, backend, context, queue, &place);
    if (status != BQ_OK || n == 0) return status;
    return bq_run_backward_saved(&place, &plan, type, array(where, saved), array(where, g), array(where, dx), n);
}

bq_status bq_device_forward_host(const bq_quantizer *q, bq_backend backend, const float *x, float *y, size_t n) {
    return forward("bq_device_forward_host", ON_HOST, q, backend, NULL, NULL, BQ_F32, x, BQ_F32, y, 1, n);
}

bq_status bq_device_backward_host(const bq_quantizer *q, bq_backend backend, const float *x, const float *grad_y,
                                  float *grad_x, size_t n) {
    return backward("bq_device_backward_host", ON_HOST, q, backend, NULL, NULL, BQ_F32, x, grad_y, grad_x, n);
}

bq_status bq_cuda_forward(const bq_quantizer *q, const float *x, float *y, size_t n, void *stream) {
    return forward("bq_cuda_forward", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, BQ_F32, x, BQ_F32, y, 1, n);
}

bq_status bq_cuda_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n,
                           void *stream) {
    return backward("bq_cuda_backward", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, BQ_F32, x, grad_y, grad_x, n);
}

bq_status bq_opencl_forward(const bq_quantizer *q, void *context, void *queue, void *x, void *y, size_t n) {
    return forward("bq_opencl_forward", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, BQ_F32, x, BQ_F32, y, 1, n);
}

bq_status bq_opencl_backward(const bq_quantizer *q, void *context, void *queue, void *x, void *grad_y, void *grad_x,
                             size_t n) {
    return backward("bq_opencl_backward", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, BQ_F32, x, grad_y, grad_x,
                    n);
}

bq_status bq_device_forward_typed_host(const bq_quantizer *q, bq_backend backend, bq_dtype x_type, const void *x,
                                       bq_dtype y_type, void *y, size_t rows, size_t cols) {
    return forward("bq_device_forward_typed_host", ON_HOST, q, backend, NULL, NULL, x_type, x, y_type, y, rows, cols);
}

bq_status bq_device_backward_typed_host(const bq_quantizer *q, bq_backend backend, bq_dtype type, const void *x,
                                        const void *grad_y, void *grad_x, size_t n) {
    return backward("bq_device_backward_typed_host", ON_HOST, q, backend, NULL, NULL, type, x, grad_y, grad_x, n);
}

bq_status bq_cuda_forward_typed(const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type, void *y,
                                size_t rows, size_t cols, void *stream) {
    return forward("bq_cuda_forward_typed", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, x_type, x, y_type, y, rows, cols);
}

bq_status bq_cuda_backward_typed(const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y, void *grad_x,
                                 size_t n, void *stream) {
    return backward("bq_cuda_backward_typed", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, type, x, grad_y, grad_x, n);
}

bq_status bq_opencl_forward_typed(const bq_quantizer *q, void *context, void *queue, bq_dtype x_type, void *x,
                                  bq_dtype y_type, void *y, size_t rows, size_t cols) {
    return forward("bq_opencl_forward_typed", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, x_type, x, y_type, y,
                   rows, cols);
}

bq_status bq_opencl_backward_typed(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *x,
                                   void *grad_y, void *grad_x, size_t n) {
    return backward("bq_opencl_backward_typed", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, type, x, grad_y,
                    grad_x, n);
}

bq_status bq_device_forward_save_host(const bq_quantizer *q, bq_backend backend, bq_dtype type, const void *x, void *y,
                                      uint32_t *saved, size_t n) {
    return forward_save("bq_device_forward_save_host", ON_HOST, q, backend, NULL, NULL, type, x, y, saved, n);
}

bq_status bq_device_backward_saved_host(const bq_quantizer *q, bq_backend backend, bq_dtype type,
                                        const uint32_t *saved, const void *grad_y, void *grad_x, size_t n) {
    return backward_saved("bq_device_backward_saved_host", ON_HOST, q, backend, NULL, NULL, type, saved, grad_y,
                          grad_x, n);
}

bq_status bq_cuda_forward_save(const bq_quantizer *q, bq_dtype type, const void *x, void *y, void *saved, size_t n,
                               void *stream) {
    return forward_save("bq_cuda_forward_save", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, type, x, y, saved, n);
}

bq_status bq_cuda_backward_saved(const bq_quantizer *q, bq_dtype type, const void *saved, const void *grad_y,
                                 void *grad_x, size_t n, void *stream) {
    return backward_saved("bq_cuda_backward_saved", ON_CUDA, q, BQ_BACKEND_CUDA, NULL, stream, type, saved, grad_y,
                          grad_x, n);
}

bq_status bq_opencl_forward_save(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *x, void *y,
                                 void *saved, size_t n) {
    return forward_save("bq_opencl_forward_save", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, type, x, y, saved,
                        n);
}

bq_status bq_opencl_backward_saved(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *saved,
                                   void *grad_y, void *grad_x, size_t n) {
    return backward_saved("bq_opencl_backward_saved", ON_OPENCL, q, BQ_BACKEND_OPENCL, context, queue, type, saved,
                          grad_y, grad_x, n);
}
