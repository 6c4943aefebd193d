/* Device memory for the tests and the benchmark, through the CUDA driver API or OpenCL, loaded with dlopen
 * (as the library loads them), so the tests build on machines without either. A test_device is what a
 * caller of bitquant's device-memory entry points has: a CUDA context current on this thread and a
 * non-blocking stream, or an OpenCL context and in-order queue of its own (not the library's default). */
#ifndef BITQUANT_TESTS_DEVICE_MEMORY_H
#define BITQUANT_TESTS_DEVICE_MEMORY_H

#include <stddef.h>

#include "bitquant.h"

typedef struct test_device test_device;

/* Opens the device bitquant's host-memory entry points use (include/bitquant.h); NULL with the reason in
 * why if there is none. */
test_device *test_device_open(bq_backend backend, char *why, size_t why_size);
void test_device_close(test_device *d);
const char *test_device_name(const test_device *d);

/* The queue to pass to bitquant (a CUstream or cl_command_queue) and, for OpenCL, the context. */
void *test_device_queue(const test_device *d);
void *test_device_context(const test_device *d);

/* Device buffers (a CUdeviceptr or cl_mem as void *); NULL when out of memory or bytes == 0. Copies are
 * ordered on the queue; download and finish wait for it. Each returns 0 on success. */
void *test_device_alloc(test_device *d, size_t bytes);
void test_device_free(test_device *d, void *buffer);
int test_device_upload(test_device *d, void *buffer, const void *host, size_t bytes);
int test_device_download(test_device *d, void *host, void *buffer, size_t bytes);
int test_device_copy(test_device *d, void *dst, void *src, size_t bytes); /* enqueued, not waited for */
int test_device_finish(test_device *d);

/* How a test calls the kernels, from its first argument: "cpu" (the default), "cuda-host" or "opencl-host"
 * (the host-memory GPU entry points), "cuda-device" or "opencl-device" (device memory the test allocates on
 * its own context and queue: device is opened). */
typedef enum { TEST_PATH_CPU, TEST_PATH_HOST, TEST_PATH_DEVICE } test_path_kind;
typedef struct {
    const char *name;
    test_path_kind kind;
    bq_backend backend;
    test_device *device;
} test_path;

/* Sets *path from argv; returns 0 to go on, else the exit code: 77 (skipped, with the reason printed) for a
 * GPU path without a compiled backend or a device, 2 for an unknown path, 1 on an unexpected error. */
int test_path_choose(int argc, char **argv, const char *program, test_path *path);

#endif
