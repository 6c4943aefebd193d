/* See device_memory.h. The few driver types and constants needed are declared here, as cuda.h and
 * CL/cl.h define them. */
#define _POSIX_C_SOURCE 200809L
#include "device_memory.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef int32_t cl_int;
typedef uint32_t cl_uint;
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFFull
#define CL_PLATFORM_NAME 0x0902
#define CL_DEVICE_TYPE 0x1000
#define CL_DEVICE_NAME 0x102B
#define CL_DEVICE_PLATFORM 0x1031
#define CL_MEM_READ_WRITE 1ull
#define CU_STREAM_NON_BLOCKING 1u

struct test_device {
    bq_backend backend;
    char name[256];
    void *context, *queue;
    union {
        struct {
            CUresult (*init)(unsigned);
            CUresult (*device_get)(int *, int);
            CUresult (*device_name)(char *, int, int);
            CUresult (*primary_retain)(void **, int);
            CUresult (*ctx_set_current)(void *);
            CUresult (*stream_create)(void **, unsigned);
            CUresult (*stream_destroy)(void *);
            CUresult (*stream_sync)(void *);
            CUresult (*mem_alloc)(CUdeviceptr *, size_t);
            CUresult (*mem_free)(CUdeviceptr);
            CUresult (*htod)(CUdeviceptr, const void *, size_t, void *);
            CUresult (*dtoh)(void *, CUdeviceptr, size_t, void *);
            CUresult (*dtod)(CUdeviceptr, CUdeviceptr, size_t, void *);
        } cu;
        struct {
            cl_int (*platform_ids)(cl_uint, void **, cl_uint *);
            cl_int (*platform_info)(void *, cl_uint, size_t, void *, size_t *);
            cl_int (*device_ids)(void *, uint64_t, cl_uint, void **, cl_uint *);
            cl_int (*device_info)(void *, cl_uint, size_t, void *, size_t *);
            void *(*create_context)(const intptr_t *, cl_uint, void **, void *, void *, cl_int *);
            void *(*create_queue)(void *, void *, uint64_t, cl_int *);
            void *(*create_buffer)(void *, uint64_t, size_t, void *, cl_int *);
            cl_int (*write)(void *, void *, cl_uint, size_t, size_t, const void *, cl_uint, const void *, void *);
            cl_int (*read)(void *, void *, cl_uint, size_t, size_t, void *, cl_uint, const void *, void *);
            cl_int (*copy)(void *, void *, void *, size_t, size_t, size_t, cl_uint, const void *, void *);
            cl_int (*finish)(void *);
            cl_int (*release_mem)(void *);
            cl_int (*release_queue)(void *);
            cl_int (*release_context)(void *);
        } cl;
    } api;
};

/* Fills fns (an array of function pointers) from lib, in the order of names; 0 if one is missing. */
static int load_symbols(void *lib, const char *const *names, size_t count, void *fns, char *why, size_t why_size) {
    for (size_t i = 0; i < count; i++) {
        void *fn = dlsym(lib, names[i]);
        if (fn == NULL) {
            snprintf(why, why_size, "%s not found", names[i]);
            return 0;
        }
        memcpy((char *)fns + i * sizeof fn, &fn, sizeof fn);
    }
    return 1;
}

static void *open_library(const char *soname, const char *fallback) {
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    return lib != NULL ? lib : dlopen(fallback, RTLD_NOW | RTLD_LOCAL);
}

static int open_cuda(test_device *d, char *why, size_t why_size) {
    static const char *const names[] = {"cuInit",
                                        "cuDeviceGet",
                                        "cuDeviceGetName",
                                        "cuDevicePrimaryCtxRetain",
                                        "cuCtxSetCurrent",
                                        "cuStreamCreate",
                                        "cuStreamDestroy_v2",
                                        "cuStreamSynchronize",
                                        "cuMemAlloc_v2",
                                        "cuMemFree_v2",
                                        "cuMemcpyHtoDAsync_v2",
                                        "cuMemcpyDtoHAsync_v2",
                                        "cuMemcpyDtoDAsync_v2"};
    void *lib = open_library("libcuda.so.1", "libcuda.so");
    if (lib == NULL) {
        snprintf(why, why_size, "no CUDA driver (libcuda.so.1)");
        return 0;
    }
    if (!load_symbols(lib, names, sizeof names / sizeof names[0], &d->api.cu, why, why_size)) return 0;
    int device = 0;
    CUresult e = d->api.cu.init(0);
    if (e == 0) e = d->api.cu.device_get(&device, 0);
    if (e == 0) e = d->api.cu.device_name(d->name, sizeof d->name, device);
    if (e == 0) e = d->api.cu.primary_retain(&d->context, device);
    if (e == 0) e = d->api.cu.ctx_set_current(d->context);
    if (e == 0) e = d->api.cu.stream_create(&d->queue, CU_STREAM_NON_BLOCKING);
    if (e != 0) snprintf(why, why_size, "no usable CUDA device (driver error %d)", e);
    return e == 0;
}

/* The device bitquant's host-memory entry points pick: the first GPU, else the first device of any type, on
 * platforms whose name contains BITQUANT_OPENCL_PLATFORM (all if unset). */
static void *find_opencl_device(test_device *d, uint64_t type) {
    void *platforms[16];
    cl_uint count = 0;
    if (d->api.cl.platform_ids(16, platforms, &count) != 0) return NULL;
    const char *wanted = getenv("BITQUANT_OPENCL_PLATFORM");
    for (cl_uint i = 0; i < count && i < 16; i++) {
        char name[256] = "";
        d->api.cl.platform_info(platforms[i], CL_PLATFORM_NAME, sizeof name - 1, name, NULL);
        if (wanted != NULL && strstr(name, wanted) == NULL) continue;
        void *device = NULL;
        cl_uint found = 0;
        if (d->api.cl.device_ids(platforms[i], type, 1, &device, &found) == 0 && found > 0) return device;
    }
    return NULL;
}

static int open_opencl(test_device *d, char *why, size_t why_size) {
    static const char *const names[] = {
        "clGetPlatformIDs",      "clGetPlatformInfo",    "clGetDeviceIDs", "clGetDeviceInfo",
        "clCreateContext",       "clCreateCommandQueue", "clCreateBuffer", "clEnqueueWriteBuffer",
        "clEnqueueReadBuffer",   "clEnqueueCopyBuffer",  "clFinish",       "clReleaseMemObject",
        "clReleaseCommandQueue", "clReleaseContext"};
    void *lib = open_library("libOpenCL.so.1", "libOpenCL.so");
    if (lib == NULL) {
        snprintf(why, why_size, "no OpenCL ICD loader (libOpenCL.so.1)");
        return 0;
    }
    if (!load_symbols(lib, names, sizeof names / sizeof names[0], &d->api.cl, why, why_size)) return 0;
    void *device = find_opencl_device(d, 1ull << 2 /* CL_DEVICE_TYPE_GPU */);
    if (device == NULL) device = find_opencl_device(d, CL_DEVICE_TYPE_ALL);
    if (device == NULL) {
        snprintf(why, why_size, "no OpenCL device");
        return 0;
    }
    char name[128] = "", platform_name[128] = "";
    void *platform = NULL;
    uint64_t type = 0;
    cl_int e = d->api.cl.device_info(device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    if (e == 0) e = d->api.cl.device_info(device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (e == 0) e = d->api.cl.device_info(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (e == 0) e = d->api.cl.platform_info(platform, CL_PLATFORM_NAME, sizeof platform_name - 1, platform_name, NULL);
    snprintf(d->name, sizeof d->name, "%s (%s, %s device)", name, platform_name,
             type & (1u << 2)   ? "GPU"
             : type & (1u << 1) ? "CPU"
                                : "other");
    if (e == 0) d->context = d->api.cl.create_context(NULL, 1, &device, NULL, NULL, &e);
    if (e == 0) d->queue = d->api.cl.create_queue(d->context, device, 0, &e);
    if (e != 0) snprintf(why, why_size, "no usable OpenCL device (error %d)", (int)e);
    return e == 0;
}

test_device *test_device_open(bq_backend backend, char *why, size_t why_size) {
    test_device *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    d->backend = backend;
    int ok = backend == BQ_BACKEND_CUDA ? open_cuda(d, why, why_size) : open_opencl(d, why, why_size);
    if (!ok) {
        free(d);
        return NULL;
    }
    return d;
}

void test_device_close(test_device *d) {
    if (d == NULL) return;
    if (d->backend == BQ_BACKEND_CUDA) {
        d->api.cu.stream_destroy(d->queue);
    } else {
        d->api.cl.release_queue(d->queue);
        d->api.cl.release_context(d->context);
    }
    free(d);
}

const char *test_device_name(const test_device *d) { return d->name; }
void *test_device_queue(const test_device *d) { return d->queue; }
void *test_device_context(const test_device *d) { return d->context; }

void *test_device_alloc(test_device *d, size_t bytes) {
    if (bytes == 0) return NULL;
    if (d->backend == BQ_BACKEND_CUDA) {
        CUdeviceptr p = 0;
        return d->api.cu.mem_alloc(&p, bytes) == 0 ? (void *)(uintptr_t)p : NULL;
    }
    cl_int e = 0;
    void *mem = d->api.cl.create_buffer(d->context, CL_MEM_READ_WRITE, bytes, NULL, &e);
    return e == 0 ? mem : NULL;
}

void test_device_free(test_device *d, void *buffer) {
    if (buffer == NULL) return;
    if (d->backend == BQ_BACKEND_CUDA) {
        d->api.cu.mem_free((CUdeviceptr)(uintptr_t)buffer);
    } else {
        d->api.cl.release_mem(buffer);
    }
}

int test_device_upload(test_device *d, void *buffer, const void *host, size_t bytes) {
    if (bytes == 0) return 0;
    if (d->backend == BQ_BACKEND_CUDA) {
        return d->api.cu.htod((CUdeviceptr)(uintptr_t)buffer, host, bytes, d->queue);
    }
    return d->api.cl.write(d->queue, buffer, 1 /* blocking */, 0, bytes, host, 0, NULL, NULL);
}

int test_device_download(test_device *d, void *host, void *buffer, size_t bytes) {
    if (bytes == 0) return 0;
    if (d->backend == BQ_BACKEND_CUDA) {
        CUresult e = d->api.cu.dtoh(host, (CUdeviceptr)(uintptr_t)buffer, bytes, d->queue);
        return e != 0 ? e : d->api.cu.stream_sync(d->queue);
    }
    return d->api.cl.read(d->queue, buffer, 1 /* blocking */, 0, bytes, host, 0, NULL, NULL);
}

int test_device_copy(test_device *d, void *dst, void *src, size_t bytes) {
    if (d->backend == BQ_BACKEND_CUDA) {
        return d->api.cu.dtod((CUdeviceptr)(uintptr_t)dst, (CUdeviceptr)(uintptr_t)src, bytes, d->queue);
    }
    return d->api.cl.copy(d->queue, src, dst, 0, 0, bytes, 0, NULL, NULL);
}

int test_device_finish(test_device *d) {
    return d->backend == BQ_BACKEND_CUDA ? d->api.cu.stream_sync(d->queue) : d->api.cl.finish(d->queue);
}

int test_path_choose(int argc, char **argv, const char *program, test_path *path) {
    static const test_path paths[] = {{"cpu", TEST_PATH_CPU, BQ_BACKEND_CUDA, NULL},
                                      {"cuda-host", TEST_PATH_HOST, BQ_BACKEND_CUDA, NULL},
                                      {"opencl-host", TEST_PATH_HOST, BQ_BACKEND_OPENCL, NULL},
                                      {"cuda-device", TEST_PATH_DEVICE, BQ_BACKEND_CUDA, NULL},
                                      {"opencl-device", TEST_PATH_DEVICE, BQ_BACKEND_OPENCL, NULL}};
    const char *wanted = argc > 1 ? argv[1] : "cpu";
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (strcmp(paths[i].name, wanted) != 0) continue;
        *path = paths[i];
        if (path->kind == TEST_PATH_CPU) return 0;
        char name[256];
        if (!bq_backend_compiled(path->backend)) {
            printf("[SKIP] %s: this library was built without it\n", wanted);
            return 77;
        }
        bq_status s = bq_backend_device(path->backend, name, sizeof name);
        if (s == BQ_E_NO_DEVICE) {
            printf("[SKIP] %s: %s\n", wanted, bq_last_error());
            return 77;
        }
        if (s != BQ_OK) {
            printf("FAIL bq_backend_device: status %d (%s)\n", (int)s, bq_last_error());
            return 1;
        }
        printf("device: %s\n", name);
        if (path->kind == TEST_PATH_DEVICE) {
            char why[256];
            path->device = test_device_open(path->backend, why, sizeof why);
            if (path->device == NULL) {
                printf("[SKIP] %s: %s\n", wanted, why);
                return 77;
            }
        }
        return 0;
    }
    printf("usage: %s [cpu|cuda-host|opencl-host|cuda-device|opencl-device]\n", program);
    return 2;
}
