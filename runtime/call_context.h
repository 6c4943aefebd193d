/* The user_context passed to every kernel call: where Halide's error handler leaves its message. */
#ifndef BITQUANT_CALL_CONTEXT_H
#define BITQUANT_CALL_CONTEXT_H

#include <stdatomic.h>

typedef struct {
    atomic_int failed;
    char message[384];
    void *device_context; /* GPU kernels: the CUcontext or cl_context they run in, */
    void *device_queue;   /* and the CUstream or cl_command_queue they are enqueued on */
} bq_call_context;

#endif
