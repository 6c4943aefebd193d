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
#define BQ_FAMILY(family, signature, types) BQ_FAMILY_##family,
#include "kernels.def"
    BQ_FAMILY_COUNT
} bq_family;
#define BQ_FAMILY_NONE BQ_FAMILY_COUNT /* kernels.def: no such family (a quantizer's save family) */

/* The element types of kernels.def (bq_dtype, bitquant.h): how one stored unit is described to Halide, its
 * size, and how many elements it holds (32 for BIT). */
#define BQ_DTYPE_COUNT 5
typedef struct {
    const char *name, *spelling; /* "BQ_F16", "f16" */
    uint8_t code, bits; /* halide_type_code_t and bits of the stored unit */
    size_t unit_bytes, unit_elements;
    unsigned unit_shift; /* log2(unit_elements): 1 or 32 */
} bq_dtype_info;
extern const bq_dtype_info bq_dtypes[BQ_DTYPE_COUNT];
/* Units of t holding elements (1 or 32 elements a unit: a power of two, so shifts, not divisions, on every
 * call's path; no overflow near SIZE_MAX). */
static inline size_t bq_units(size_t elements, const bq_dtype_info *t) {
    return (elements >> t->unit_shift) + ((elements & (t->unit_elements - 1)) != 0);
}

/* The signatures of kernels.def, and the roles of their arguments. */
typedef enum {
#define BQ_SIGNATURE(signature, names, r0, r1, r2, r3, r4, r5, r6) BQ_SIGNATURE_##signature,
#include "kernels.def"
    BQ_SIGNATURES
} bq_signature;

typedef enum {
    BQ_ROLE_NONE,
    BQ_ROLE_IN,
    BQ_ROLE_OUT,
    BQ_ROLE_TABLE,
    BQ_ROLE_F32,
    BQ_ROLE_I32,
    BQ_ROLE_RESULT,
    BQ_ROLE_SUM,
    BQ_ROLE_SAVED_IN,
    BQ_ROLE_SAVED_OUT
} bq_role;
#define BQ_MAX_ARGS 7
#define BQ_TABLE_LENGTH 15 /* TABLE arguments: the COUNT kernels' thresholds, WeightDoReFa up to 4 bits */
extern const bq_role bq_signature_roles[BQ_SIGNATURES][BQ_MAX_ARGS];
extern const bq_signature bq_family_signatures[BQ_FAMILY_COUNT];
extern const char *const bq_family_names[BQ_FAMILY_COUNT];

/* A generated kernel's _argv entry point: args[0] points to the user_context (every kernel is compiled with
 * Halide's user_context feature, so it reaches our error handler), then one entry per argument of the
 * signature: a halide_buffer_t * for arrays and results, a pointer to the value for scalars. */
typedef int (*bq_kernel_fn)(void **args);
/* A target's kernels (bq_registry.inc, bq_gpu_registry.inc): [family][input type][output type], NULL where
 * the table has no such kernel. */
typedef bq_kernel_fn bq_kernel_table[BQ_FAMILY_COUNT][BQ_DTYPE_COUNT][BQ_DTYPE_COUNT];

/* One compiled CPU variant: its name and its kernels. */
typedef struct {
    const char *name;
    const bq_kernel_table *kernels;
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
typedef enum { BQ_MAP_NONE, BQ_MAP_BETA, BQ_MAP_LEVELS, BQ_MAP_LEVELS_MAX, BQ_MAP_PROGRESSIVE, BQ_MAP_PACT } bq_mapping;

/* What a quantizer's backward needs of x (kernels.def, runtime/saved.c). */
typedef enum { BQ_NEED_NOTHING, BQ_NEED_MASK, BQ_NEED_VALUE } bq_need;

/* params.c: validates a bq_params for a quantizer and derives the kernels' scalar inputs; named[] holds the
 * quantizer's named parameters in declared order, already checked (bq_resolve_named). */
typedef struct {
    float forward_p0, forward_p1, backward_p0, threshold;
} bq_scalars;
bq_status bq_scalars_from_params(const bq_params *p, bq_mapping mapping, const float *named, bq_scalars *out);
/* named[k] = the value given for params[k] in given[0 .. count), else its default; checked against its kind
 * and range (fn and quantizer name the messages). */
bq_status bq_resolve_named(const char *fn, const char *quantizer, const bq_param_info *params, size_t param_count,
                           const bq_named_param *given, size_t count, float named[BQ_MAX_NAMED_PARAMS]);

/* bitquant.c: a quantizer of the table, and one made by bq_create. */
typedef struct {
    const char *name;
    bq_family forward, backward;
    const char *forward_name, *backward_name;
    bq_mapping mapping;
    const char *fields;
    bq_family save; /* the SAVE or SAVE_BITS family, BQ_FAMILY_NONE for need VALUE */
    bq_need need;
    const bq_param_info *params; /* its named parameters */
    size_t param_count;
    /* A registered quantizer's kernels (bq_register_quantizers) for the selected CPU variant, of the
     * CUSTOM_MAP and CUSTOM_GRAD signatures; NULL for the built-ins. Its forward and backward are then
     * BQ_FAMILY_NONE. */
    bq_kernel_fn custom_forward, custom_backward;
} bq_entry;

struct bq_quantizer {
    const bq_entry *entry;
    const bq_kernel_table *kernels; /* the selected CPU variant's */
    bq_scalars scalars;
    float named[BQ_MAX_NAMED_PARAMS]; /* the named parameters, in declared order */
};
/* The quantizer's entry of that name, NULL if none. */
const bq_entry *bq_find_entry(const char *name);

/* exec.c: the one way a kernel runs. */
typedef struct bq_gpu_backend bq_gpu_backend;

/* Where a call runs: on the CPU (gpu NULL), or on a GPU backend in a device context and queue; with which
 * kernels, and in chunks of at most max_chunk elements (Halide extents are int32). */
typedef struct {
    const bq_kernel_table *kernels;
    const bq_gpu_backend *gpu;
    void *context, *queue;
    size_t max_chunk;
} bq_place;

/* One argument's value, as its role in the signature takes it. Arrays (IN, OUT, TABLE) live in host memory
 * (host) or, on a GPU, in device memory (host NULL, device: a CUdeviceptr or cl_mem). RESULT: host points to
 * a uint32_t that holds the maximum over the chunks when the call returns; SUM: to a double that holds the
 * chunks' sum, added in chunk order. SAVED_IN, SAVED_OUT: host or device
 * as arrays, and i the number of planes. */
typedef struct {
    const void *host;
    uint64_t device;
    float f;
    int32_t i;
} bq_value;

/* Runs kernel [family][in][out] of place over a tensor of rows x cols elements (row-major, contiguous;
 * values[] in the signature's order). The call is cut into chunks: whole rows where the output is BIT and
 * cols is not a multiple of 32 (each row is packed into whole words, and a row longer than a chunk is cut
 * at multiples of 32 columns), else the rows x cols elements as one flat array, cut at multiples of every
 * operand's unit (32 elements for BIT) and on GPUs of 4096 elements. BQ_E_UNSUPPORTED if the table has no
 * such kernel. Sets the error message on failure. */
bq_status bq_execute(const bq_place *place, bq_family family, bq_dtype in, bq_dtype out, const bq_value *values,
                     size_t rows, size_t cols);
/* The same with a given kernel of that signature (place->kernels unused): the tuner's candidates, the
 * autoscheduled kernels. */
bq_status bq_execute_kernel(const bq_place *place, bq_kernel_fn fn, bq_signature signature, bq_dtype in, bq_dtype out,
                            const bq_value *values, size_t rows, size_t cols);

bq_status bq_kernel_status(int result, const bq_call_context *call); /* a kernel's result as a status (and message) */

#define BQ_MAX_THREADS 256 /* the kernels' thread pool (pool.c): the caller and at most 255 workers */

/* pool.c: the CPU kernels' thread pool. bq_pool_install makes it Halide's do_par_for (once; before any kernel
 * runs); bq_pool_set_threads sets the threads a parallel loop uses, its caller included (1..BQ_MAX_THREADS),
 * and returns once the workers above it are gone. */
void bq_pool_install(void);
void bq_pool_set_threads(int n);

/* bitquant.c: the typed calls' argument checks, with the entry point's name fn in the messages (the forward
 * one also picks the family that computes the output type), and the plans that the CPU and the GPU entry
 * points share. addressed: the arrays are addresses in one address space (host memory, CUDA pointers), so
 * an output that overlaps another array without being exactly it (in place) is rejected; 0 for OpenCL's
 * cl_mem handles. */
bq_status bq_check_forward(const char *fn, const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type,
                           const void *y, size_t rows, size_t cols, int addressed, bq_family *family);
bq_status bq_check_backward(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y,
                            const void *grad_x, size_t n, int addressed);
/* One array of a call for bq_check_overlaps: its name for the message, address and bytes, whether the call
 * writes it, and its alias group: arrays of one nonzero group may be exactly the same memory (in place). */
typedef struct {
    const char *name;
    const void *p;
    size_t bytes;
    int output, group;
} bq_extent;
/* BQ_E_INVALID with a message if an output overlaps another array, other than exactly in place. */
bq_status bq_check_overlaps(const char *fn, const bq_extent *arrays, size_t count);
/* Bytes of rows x cols elements of type (BIT rows padded to whole words); SIZE_MAX where that overflows.
 * Overflow-checked multiplies, not divisions, inline: this is on every call's path. */
static inline size_t bq_extent_bytes(bq_dtype type, size_t rows, size_t cols) {
    const bq_dtype_info *t = &bq_dtypes[type];
    size_t row_bytes, bytes;
    if (__builtin_mul_overflow(bq_units(cols, t), t->unit_bytes, &row_bytes) ||
        __builtin_mul_overflow(row_bytes, rows, &bytes)) {
        return SIZE_MAX;
    }
    return bytes;
}
/* The gradients' type of a backward call: BQ_E_INVALID for no bq_dtype, BQ_E_UNSUPPORTED for I8 and BIT. */
bq_status bq_check_gradient_type(const char *fn, bq_dtype type);
/* BQ_E_UNSUPPORTED with a message for a registered quantizer (its kernels are CPU code), for the GPU entry points. */
bq_status bq_check_cpu_only(const char *fn, const bq_quantizer *q);
bq_status bq_run_forward(const bq_place *place, const bq_quantizer *q, bq_family family, bq_dtype x_type, bq_value x,
                         bq_dtype y_type, bq_value y, size_t rows, size_t cols);
bq_status bq_run_backward(const bq_place *place, const bq_quantizer *q, bq_dtype type, bq_value x, bq_value g,
                          bq_value dx, size_t n);

/* saved.c: the saved planes a quantizer's backward needs (planes 0, 1 or 2, their thresholds a0 and a1, the
 * GRAD_SAVED mode), the family that computes the forward (bq_check_forward's) and the one that saves. */
typedef struct {
    int planes;
    float a0, a1;
    int32_t mode;
    bq_family save, forward;
} bq_saved_plan;
/* The argument checks of the saved-bit calls (x, y, gradients of one float type), with fn in the messages. */
bq_status bq_check_save(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, const void *y,
                        const void *saved, size_t n, int addressed, bq_saved_plan *plan);
bq_status bq_check_saved_backward(const char *fn, const bq_quantizer *q, bq_dtype type, const void *saved,
                                  const void *g, const void *dx, size_t n, int addressed, bq_saved_plan *plan);
bq_status bq_run_forward_save(const bq_place *place, const bq_quantizer *q, const bq_saved_plan *plan, bq_dtype type,
                              bq_value x, bq_value y, bq_value saved, size_t n);
bq_status bq_run_backward_saved(const bq_place *place, const bq_saved_plan *plan, bq_dtype type, bq_value saved,
                                bq_value g, bq_value dx, size_t n);

/* weightdorefa.c: WeightDoReFa's forward, its plan in one place: the ABSMAX pass over x, then the COUNT kernel
 * (1 to 4 bits, large n), the estimate kernel with its exact fix-up (5 to 10 bits, float32 on host memory,
 * not in place), or the tanh kernel, on any place. x and y are MAP's values[0] and values[3]. */
bq_status bq_weightdorefa_forward(const bq_place *place, float levels, bq_dtype in, bq_value x, bq_dtype out, bq_value y,
                                  size_t n);
/* The pieces of it that the tuning harness checks kernels against: returns 1 and fills the thresholds if the
 * count kernel should run, else 0; M = max |tanh x| = tanh(max |x|), correctly rounded; one output exactly
 * as the spec computes it. */
int bq_weightdorefa_count_plan(float absmax, float levels, size_t n, float thresholds[BQ_TABLE_LENGTH]);
float bq_weightdorefa_m(float absmax);
float bq_weightdorefa_output(float x, float m, float levels);

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

struct bq_gpu_backend {
    bq_backend backend;
    const bq_kernel_table *kernels;
    const bq_gpu_device *device;
};

extern const bq_gpu_device bq_cuda_device, bq_opencl_device;

/* Loads a driver: dlopen(soname), else dlopen(fallback), then symbols names[0 .. count) into fns, a struct of
 * as many function pointers in the same order. Returns 0; 1 if there is no library; 2 if a symbol is
 * missing (*missing names it). */
int bq_load_driver(const char *soname, const char *fallback, const char *const *names, size_t count, void *fns,
                   const char **missing);

#endif
