/* CUDA glue. Halide's CUDA runtime asks for a context and a stream through hooks; ours answer with the
 * ones each call's user_context carries (the caller's, for device memory), so the kernels compose with the
 * caller's own CUDA work. The driver (libcuda) is loaded on demand, as Halide's runtime loads it: no CUDA
 * header or library is needed to build or link bitquant. */
#include "internal.h"

#include <HalideRuntime.h>
#include <HalideRuntimeCuda.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

/* The driver API's types, as cuda.h defines them. */
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;

/* The driver functions used, in the order bq_load_driver fills them. */
static struct {
    CUresult (*init)(unsigned int flags);
    CUresult (*device_count)(int *count);
    CUresult (*device_get)(CUdevice *device, int ordinal);
    CUresult (*device_name)(char *name, int size, CUdevice device);
    CUresult (*primary_retain)(CUcontext *context, CUdevice device);
    CUresult (*ctx_current)(CUcontext *context);
    CUresult (*ctx_push)(CUcontext context);
    CUresult (*ctx_pop)(CUcontext *context);
    CUresult (*ctx_device)(CUdevice *device);
    CUresult (*error_string)(CUresult error, const char **text);
} cu;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bq_status load_status;
static char load_message[256];

static pthread_mutex_t primary_lock = PTHREAD_MUTEX_INITIALIZER;
static CUcontext primary; /* device 0's primary context, retained on first need and kept */

static const char *error_text(CUresult error) {
    const char *text = NULL;
    if (cu.error_string == NULL || cu.error_string(error, &text) != 0 || text == NULL) return "unknown error";
    return text;
}

/* Halide's hooks. Every kernel call of ours names its context; Halide's own calls without one (its
 * clean-up at exit) get none, so that it touches no context it did not create. */
static int acquire_context(void *user_context, void **context, bool create) {
    const bq_call_context *call = user_context;
    *context = call != NULL ? call->device_context : NULL;
    return *context != NULL || !create ? halide_error_code_success : halide_error_code_gpu_device_error;
}

static int release_context(void *user_context) {
    (void)user_context;
    return halide_error_code_success;
}

static int get_stream(void *user_context, void *context, void **stream) {
    (void)context;
    const bq_call_context *call = user_context;
    *stream = call != NULL ? call->device_queue : NULL;
    return halide_error_code_success;
}

static void load_driver(void) {
    static const char *const names[] = {
        "cuInit",          "cuDeviceGetCount",    "cuDeviceGet",        "cuDeviceGetName", "cuDevicePrimaryCtxRetain",
        "cuCtxGetCurrent", "cuCtxPushCurrent_v2", "cuCtxPopCurrent_v2", "cuCtxGetDevice",  "cuGetErrorString"};
    const char *missing = NULL;
    int loaded = bq_load_driver("libcuda.so.1", "libcuda.so", names, sizeof names / sizeof names[0], &cu, &missing);
    if (loaded != 0) {
        load_status = BQ_E_NO_DEVICE;
        if (loaded == 1)
            snprintf(load_message, sizeof load_message, "no CUDA driver: libcuda.so.1 cannot be loaded");
        else
            snprintf(load_message, sizeof load_message, "the CUDA driver lacks %s: too old?", missing);
        return;
    }
    CUresult error = cu.init(0);
    int count = 0;
    if (error == 0) error = cu.device_count(&count);
    if (error != 0 || count <= 0) {
        load_status = BQ_E_NO_DEVICE;
        snprintf(load_message, sizeof load_message, "no CUDA device: %s",
                 error != 0 ? error_text(error) : "the driver reports none");
        return;
    }
    halide_set_cuda_acquire_context(acquire_context);
    halide_set_cuda_release_context(release_context);
    halide_set_cuda_get_stream(get_stream);
}

static bq_status load(void) {
    pthread_once(&load_once, load_driver);
    if (load_status != BQ_OK) return bq_fail(load_status, "%s", load_message);
    return BQ_OK;
}

static bq_status caller_context(void **context) {
    CUcontext current = NULL;
    CUresult error = cu.ctx_current(&current);
    if (error != 0) return bq_fail(BQ_E_RUNTIME, "cuCtxGetCurrent failed: %s", error_text(error));
    if (current != NULL) {
        *context = current;
        return BQ_OK;
    }
    pthread_mutex_lock(&primary_lock);
    if (primary == NULL) {
        CUdevice device;
        error = cu.device_get(&device, 0);
        if (error == 0) error = cu.primary_retain(&primary, device);
    }
    *context = primary;
    pthread_mutex_unlock(&primary_lock);
    if (error != 0) return bq_fail(BQ_E_NO_DEVICE, "cannot use CUDA device 0: %s", error_text(error));
    return BQ_OK;
}

static bq_status default_device(void **context, void **queue, char *name, size_t size) {
    bq_status status = caller_context(context);
    if (status != BQ_OK || size == 0) return status;
    *queue = NULL; /* the context's default stream */
    CUdevice device;
    CUcontext popped;
    CUresult error = cu.ctx_push(*context);
    if (error == 0) {
        error = cu.ctx_device(&device);
        cu.ctx_pop(&popped);
    }
    if (error == 0) error = cu.device_name(name, size > INT_MAX ? INT_MAX : (int)size, device);
    if (error != 0) return bq_fail(BQ_E_RUNTIME, "cannot name the CUDA device: %s", error_text(error));
    name[size - 1] = '\0';
    return BQ_OK;
}

static int wrap(bq_call_context *call, struct halide_buffer_t *buf, uint64_t handle) {
    return halide_cuda_wrap_device_ptr(call, buf, handle);
}

static int detach(bq_call_context *call, struct halide_buffer_t *buf) {
    return halide_cuda_detach_device_ptr(call, buf);
}

const bq_gpu_device bq_cuda_device = {load, default_device, caller_context, wrap, detach};
