/* bitquant's runtime: what its C files share. Sees the generated kernel headers and HalideRuntime.h,
 * never Halide.h. */
#ifndef BITQUANT_INTERNAL_H
#define BITQUANT_INTERNAL_H

#include "call_context.h"

#include <bitquant.h>
#include <stdint.h>

struct halide_buffer_t;
struct halide_dimension_t;

/* The kernel families of generators/kernels.def, numbered. */
typedef enum {
#define BQ_FAMILY(family, signature) BQ_FAMILY_##family,
#include "kernels.def"
    BQ_FAMILY_COUNT
} bq_family;

/* The C signatures of the three kinds of generated kernel (kernels.def, "Signatures"). Every kernel is
 * compiled with Halide's user_context feature, so its first argument reaches our error handler. */
typedef int (*bq_map_fn)(void const *uc, struct halide_buffer_t *x, float p0, float p1, struct halide_buffer_t *y);
typedef int (*bq_grad_fn)(void const *uc, struct halide_buffer_t *x, struct halide_buffer_t *g, float p0,
                          float threshold, struct halide_buffer_t *dx);
typedef int (*bq_absmax_fn)(void const *uc, struct halide_buffer_t *x, struct halide_buffer_t *bits);
typedef int (*bq_count_fn)(void const *uc, struct halide_buffer_t *x, struct halide_buffer_t *thresholds,
                           int32_t levels, struct halide_buffer_t *y);

typedef union {
    bq_map_fn map;
    bq_grad_fn grad;
    bq_absmax_fn absmax;
    bq_count_fn count;
} bq_kernel;

/* One compiled CPU variant: its name and a kernel per family. */
typedef struct {
    const char *name;
    const bq_kernel *kernels;
} bq_variant;

/* dispatch.c: the compiled variants, and the one chosen for this process (once). */
bq_status bq_variant_select(const bq_variant **out); /* sets the error message on failure */
int bq_cpu_supports(const char *variant);            /* runtime/cpu.c: 1 if this CPU can run it */
size_t bq_max_chunk(void);                           /* elements per kernel call (Halide extents are int32) */
void bq_runtime_init(void);                          /* once: the error handler and the environment */

/* errors.c */
bq_status bq_fail(bq_status status, const char *fmt, ...);
void bq_install_halide_error_handler(void);

/* The parameter mapping of kernels.def. */
typedef enum { BQ_MAP_NONE, BQ_MAP_BETA, BQ_MAP_LEVELS, BQ_MAP_LEVELS_MAX, BQ_MAP_PROGRESSIVE } bq_mapping;

/* params.c: validates a bq_params for a quantizer and derives the kernels' scalar inputs. */
typedef struct {
    float forward_p0, forward_p1, backward_p0, threshold;
} bq_scalars;
bq_status bq_scalars_from_params(const bq_params *p, bq_mapping mapping, bq_scalars *out);

/* bitquant.c: a quantizer of the table, and one made by bq_create. */
typedef struct {
    const char *name;
    bq_family forward, backward;
    const char *forward_name, *backward_name;
    bq_mapping mapping;
    const char *fields;
} bq_entry;

struct bq_quantizer {
    const bq_entry *entry;
    const bq_kernel *kernels; /* the selected CPU variant's */
    bq_scalars scalars;
};

/* run.c: runs a kernel over any n, in chunks of at most bq_max_chunk() elements. */
bq_status bq_run_map(bq_map_fn fn, const float *x, float p0, float p1, float *y, size_t n);
bq_status bq_run_grad(bq_grad_fn fn, const float *x, const float *g, float p0, float threshold, float *dx, size_t n);
bq_status bq_run_absmax(bq_absmax_fn fn, const float *x, size_t n, float *absmax);
#define BQ_COUNT_THRESHOLDS 15 /* the COUNT kernels' threshold table: WeightDoReFa up to 4 bits */
bq_status bq_run_count(bq_count_fn fn, const float *x, const float thresholds[BQ_COUNT_THRESHOLDS], int levels,
                       float *y, size_t n);

bq_status bq_kernel_status(int result, const bq_call_context *call); /* a kernel's result as a status (and message) */
/* buf over host memory (or none, for device memory) of 32-bit elements of a halide_type_code_t, with
 * dimensions dims[0 .. dimensions), which the caller fills. */
void bq_describe(struct halide_buffer_t *buf, struct halide_dimension_t *dims, int dimensions, const void *host,
                 int type_code);

/* weightdorefa.c: WeightDoReFa's forward after its abs-max pass, on any device. Returns 1 and fills the
 * thresholds if the count kernel should run (at 1 to 4 bits on large inputs), else 0. */
int bq_weightdorefa_count_plan(float absmax, float levels, size_t n, float thresholds[BQ_COUNT_THRESHOLDS]);
/* M = max |tanh x| = tanh(max |x|), correctly rounded; and one output exactly as the spec computes it. */
float bq_weightdorefa_m(float absmax);
float bq_weightdorefa_output(float x, float m, float levels);
/* run.c: on host memory (x != y) at 5 to 10 bits, the estimate kernel and the exact fix-up of what it
 * leaves open: BQ_E_UNSUPPORTED if that does not apply here (then run the tanh kernel), else the outcome. */
bq_status bq_weightdorefa_run_estimate(bq_map_fn fn, const float *x, float absmax, float levels, float *y, size_t n);

/* gpu.c, cuda.c, opencl.c: a GPU backend's glue to Halide's device runtime. The call context (the
 * kernels' user_context, call_context.h) carries the device context and queue to the acquire hooks. */
typedef struct {
    /* Loads the driver and checks that a device is there; sets the error message on failure. */
    bq_status (*load)(void);
    /* The device the host-memory entry points use: its context and queue, and its name (if size > 0). */
    bq_status (*default_device)(void **context, void **queue, char *name, size_t size);
    /* CUDA: the context of the caller's device pointers (the current one, else device 0's primary). */
    bq_status (*caller_context)(void **context);
    /* Describes device memory `handle` (a CUdeviceptr or cl_mem) as buf, and forgets it again. */
    int (*wrap)(bq_call_context *call, struct halide_buffer_t *buf, uint64_t handle);
    int (*detach)(bq_call_context *call, struct halide_buffer_t *buf);
} bq_gpu_device;

typedef struct {
    bq_backend backend;
    const bq_kernel *kernels;
    const bq_gpu_device *device;
} bq_gpu_backend;

extern const bq_gpu_device bq_cuda_device, bq_opencl_device;

/* Loads a driver: dlopen(soname), else dlopen(fallback), then symbols names[0 .. count) into fns, a struct of
 * as many function pointers in the same order. Returns 0; 1 if there is no library; 2 if a symbol is
 * missing (*missing names it). */
int bq_load_driver(const char *soname, const char *fallback, const char *const *names, size_t count, void *fns,
                   const char **missing);

#endif
