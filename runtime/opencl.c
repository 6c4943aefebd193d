/* OpenCL glue. Halide's OpenCL runtime gets its context and command queue from halide_acquire_cl_context,
 * a weak function that this file replaces: each call's user_context carries the caller's context and
 * queue (device memory) or the default device's (host memory), which this file creates once. The ICD
 * loader (libOpenCL) is loaded on demand, as Halide's runtime loads it: no OpenCL header or library is
 * needed to build or link bitquant. */
#include "internal.h"

#include <HalideRuntime.h>
#include <HalideRuntimeOpenCL.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The OpenCL API's types and constants, as CL/cl.h defines them. */
typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_device_type;
typedef void *cl_platform_id, *cl_device_id, *cl_context, *cl_command_queue;
#define CL_DEVICE_TYPE_GPU ((cl_device_type)1 << 2)
#define CL_DEVICE_TYPE_ALL ((cl_device_type)0xFFFFFFFF)
#define CL_PLATFORM_NAME 0x0902
#define CL_DEVICE_TYPE 0x1000
#define CL_DEVICE_NAME 0x102B
#define CL_DEVICE_PLATFORM 0x1031
#define CL_DEVICE_TYPE_CPU ((cl_device_type)1 << 1)

/* The loader functions used, in the order bq_load_driver fills them. */
static struct {
    cl_int (*platform_ids)(cl_uint count, cl_platform_id *platforms, cl_uint *found);
    cl_int (*platform_info)(cl_platform_id platform, cl_uint what, size_t size, void *value, size_t *written);
    cl_int (*device_ids)(cl_platform_id platform, cl_device_type type, cl_uint count, cl_device_id *devices,
                         cl_uint *found);
    cl_int (*device_info)(cl_device_id device, cl_uint what, size_t size, void *value, size_t *written);
    cl_context (*create_context)(const intptr_t *properties, cl_uint count, const cl_device_id *devices,
                                 void (*notify)(const char *, const void *, size_t, void *), void *user_data,
                                 cl_int *error);
    cl_command_queue (*create_queue)(cl_context context, cl_device_id device, uint64_t properties, cl_int *error);
} cl;

/* Correctly rounded float division, as the CPU kernels divide (OpenCL allows 2.5 ulp without it). */
static const char build_options[] = "-cl-fp32-correctly-rounded-divide-sqrt";

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bq_status load_status;
static char load_message[256];

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static bq_status default_status;
static char default_message[256];
static cl_device_id default_id;
static cl_context default_context;
static cl_command_queue default_queue;

static void load_driver(void) {
    static const char *const names[] = {"clGetPlatformIDs", "clGetPlatformInfo", "clGetDeviceIDs",
                                        "clGetDeviceInfo",  "clCreateContext",   "clCreateCommandQueue"};
    const char *missing = NULL;
    int loaded = bq_load_driver("libOpenCL.so.1", "libOpenCL.so", names, sizeof names / sizeof names[0], &cl, &missing);
    if (loaded != 0) {
        load_status = BQ_E_NO_DEVICE;
        if (loaded == 1)
            snprintf(load_message, sizeof load_message, "no OpenCL: libOpenCL.so.1 (an ICD loader) cannot be loaded");
        else
            snprintf(load_message, sizeof load_message, "the OpenCL loader lacks %s", missing);
        return;
    }
    cl_uint platforms = 0;
    cl_int error = cl.platform_ids(0, NULL, &platforms);
    if (error != 0 || platforms == 0) {
        load_status = BQ_E_NO_DEVICE;
        snprintf(load_message, sizeof load_message,
                 "no OpenCL platform (clGetPlatformIDs: error %d); is an ICD such as pocl-opencl-icd installed?",
                 (int)error);
        return;
    }
    halide_opencl_set_build_options(build_options);
}

static bq_status load(void) {
    pthread_once(&load_once, load_driver);
    if (load_status != BQ_OK) return bq_fail(load_status, "%s", load_message);
    return BQ_OK;
}

/* The first device of `type` on a platform whose name contains BITQUANT_OPENCL_PLATFORM (any if unset). */
static cl_device_id find_device(cl_device_type type) {
    cl_platform_id platforms[16];
    cl_uint count = 0;
    if (cl.platform_ids(16, platforms, &count) != 0) return NULL;
    const char *wanted = getenv("BITQUANT_OPENCL_PLATFORM");
    for (cl_uint i = 0; i < count && i < 16; i++) {
        char name[256] = "";
        cl.platform_info(platforms[i], CL_PLATFORM_NAME, sizeof name - 1, name, NULL);
        if (wanted != NULL && strstr(name, wanted) == NULL) continue;
        cl_device_id device = NULL;
        cl_uint found = 0;
        if (cl.device_ids(platforms[i], type, 1, &device, &found) == 0 && found > 0) return device;
    }
    return NULL;
}

static void create_default(void) {
    default_id = find_device(CL_DEVICE_TYPE_GPU);
    if (default_id == NULL) default_id = find_device(CL_DEVICE_TYPE_ALL);
    if (default_id == NULL) {
        const char *wanted = getenv("BITQUANT_OPENCL_PLATFORM");
        default_status = BQ_E_NO_DEVICE;
        if (wanted == NULL) {
            snprintf(default_message, sizeof default_message, "no OpenCL device");
        } else { /* the variable named first: a long value is cut at 64 characters */
            snprintf(default_message, sizeof default_message,
                     "no OpenCL device on a platform whose name contains BITQUANT_OPENCL_PLATFORM=\"%.64s%s\"", wanted,
                     strlen(wanted) > 64 ? "..." : "");
        }
        return;
    }
    cl_int error = 0;
    default_context = cl.create_context(NULL, 1, &default_id, NULL, NULL, &error);
    if (error == 0) default_queue = cl.create_queue(default_context, default_id, 0, &error);
    if (error != 0) {
        default_status = BQ_E_RUNTIME;
        snprintf(default_message, sizeof default_message, "cannot open the OpenCL device: error %d", (int)error);
    }
}

static bq_status default_device(void **context, void **queue, char *name, size_t size) {
    pthread_once(&default_once, create_default);
    if (default_status != BQ_OK) return bq_fail(default_status, "%s", default_message);
    *context = default_context;
    *queue = default_queue;
    if (size == 0) return BQ_OK;
    /* "device (platform, CPU|GPU|other device)": a CPU device such as PoCL's says so. */
    char device[128] = "", platform_name[128] = "";
    cl_platform_id platform = NULL;
    cl_device_type type = 0;
    cl_int error = cl.device_info(default_id, CL_DEVICE_NAME, sizeof device - 1, device, NULL);
    if (error == 0) error = cl.device_info(default_id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (error == 0) error = cl.device_info(default_id, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (error == 0) error = cl.platform_info(platform, CL_PLATFORM_NAME, sizeof platform_name - 1, platform_name, NULL);
    if (error != 0) return bq_fail(BQ_E_RUNTIME, "cannot name the OpenCL device: error %d", (int)error);
    const char *kind = type & CL_DEVICE_TYPE_GPU ? "GPU" : type & CL_DEVICE_TYPE_CPU ? "CPU" : "other";
    snprintf(name, size, "%s (%s, %s device)", device, platform_name, kind);
    return BQ_OK;
}

/* Halide's runtime expects each acquire to wait until the previous one is released, and may release after
 * a failed acquire: the lock is taken once per thread and given back only by the thread that holds it. */
static pthread_mutex_t context_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool holding;

int halide_acquire_cl_context(void *user_context, cl_context *context, cl_command_queue *queue, bool create);
int halide_release_cl_context(void *user_context);

int halide_acquire_cl_context(void *user_context, cl_context *context, cl_command_queue *queue, bool create) {
    /* Every kernel call of ours names its context; Halide's own calls without one (its clean-up at exit)
     * get none, so that it touches no context it did not create. */
    const bq_call_context *call = user_context;
    *context = call != NULL ? call->device_context : NULL;
    *queue = call != NULL ? call->device_queue : NULL;
    if (*context == NULL) return create ? halide_error_code_gpu_device_error : halide_error_code_success;
    pthread_mutex_lock(&context_lock);
    holding = true;
    return halide_error_code_success;
}

int halide_release_cl_context(void *user_context) {
    (void)user_context;
    if (holding) {
        holding = false;
        pthread_mutex_unlock(&context_lock);
    }
    return halide_error_code_success;
}

static int wrap(bq_call_context *call, struct halide_buffer_t *buf, uint64_t handle) {
    return halide_opencl_wrap_cl_mem(call, buf, handle);
}

static int detach(bq_call_context *call, struct halide_buffer_t *buf) { return halide_opencl_detach_cl_mem(call, buf); }

const bq_gpu_device bq_opencl_device = {load, default_device, NULL, wrap, detach};
