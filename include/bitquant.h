/* bitquant: bitorch's quantizations (forward and backward) as generated, vectorized, multithreaded kernels.
 *
 * Numbers match bitorch 0.4.1 bit for bit, but where torch's float tanh is not correctly rounded: swishsign's
 * backward (within 1e-6*beta*|g|) and, rarely, weightdorefa's forward at 8 bits and more; see the README.
 * Every function is safe to call from several threads at once. No function aborts, exits or prints:
 * errors come back as a status, with a message in bq_last_error(), and outputs are left untouched when
 * an argument is rejected.
 *
 * Aliasing: an output may be exactly an input of the same element size (in place), where a call says so; an
 * output that overlaps another array of the call in any other way (a few elements ahead or behind, ending
 * inside it, saved bits on top of x or y) is rejected with BQ_E_INVALID, before anything is written. Host
 * memory and CUDA pointers are checked; OpenCL cl_mem buffers are handles, and must not overlap either. */
#ifndef BITQUANT_H
#define BITQUANT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    BQ_OK = 0,
    BQ_E_INVALID = 1,     /* a bad argument: NULL pointer, parameter out of range */
    BQ_E_UNKNOWN = 2,     /* no quantizer of that name */
    BQ_E_UNSUPPORTED = 3, /* the CPU lacks what was asked for (BITQUANT_CPU) */
    BQ_E_NO_DEVICE = 4,   /* no GPU device or driver */
    BQ_E_RUNTIME = 5,     /* the kernel runtime reported an error */
    BQ_E_NOMEM = 6        /* out of memory */
} bq_status;

typedef struct bq_params {
    float swish_beta;         /* swishsign; default 5.0; 0 means the default, as in bitorch */
    int dorefa_bits;          /* inputdorefa, weightdorefa; default 1; 1..24 */
    double progressive_scale; /* progressive_sign; default 0.0 */
    double progressive_alpha; /* default 4; must be finite and > 0 */
    double progressive_beta;  /* default 10; 0 means the default, as in bitorch */
    int training;             /* progressive_sign: 1 = train formula (default), 0 = eval (sign) */
    float cancel_threshold;   /* QActivation gradient cancellation in backward: applied iff > 0;
                                 default 0 = off */
} bq_params;

typedef struct bq_quantizer bq_quantizer;

/* Element types of the typed entry points (bq_forward_typed and the rest).
 *   BQ_F32   IEEE binary32.
 *   BQ_F16   IEEE binary16, in a uint16_t's bits.
 *   BQ_BF16  bfloat16: the upper 16 bits of a binary32, in a uint16_t.
 *   BQ_I8    int8_t: -1 or +1, the outputs of the sign-valued quantizers (below).
 *   BQ_BIT   bit-packed signs, in Larq Compute Engine's layout: each row of cols elements is packed into
 *            ceil(cols / 32) uint32_t words (native byte order); element c of a row is bit c % 32 (LSB first) of
 *            the row's word c / 32; a bit is 1 if and only if the output is -1; the padding bits of a row's
 *            last word are 0.
 * Numerics: an F16 or BF16 input is widened exactly to float32, the quantization is computed exactly as the
 * float32 kernels compute it, and the result is rounded once to the output type, to nearest even (a NaN
 * stays a NaN, the sign of a zero is kept, a value beyond the type's range becomes an infinity). So for every
 * input, typed(x) == round_to_type(bq_forward(widen(x))) bit for bit (any NaN matching any NaN), and the same
 * for the backward pass. This is stricter than torch's half-precision autograd, which rounds after every
 * operation: on the same half-precision inputs the two can differ in the last bit of a result that takes
 * several operations (approxsign's and swishsign's gradients, inputdorefa's and progressive_sign's
 * divisions); sign-valued outputs and straight-through gradients never differ.
 * I8 and BIT are outputs of the quantizers whose every output is -1 or +1: sign, approxsign, steheaviside,
 * swishsign, and progressive_sign with training = 0. NaN, -0 and 0 follow each quantizer's float32 rule
 * (sign(-0) = +1 gives bit 0; steheaviside(0) = -1 gives bit 1). */
typedef enum { BQ_F32 = 0, BQ_F16 = 1, BQ_BF16 = 2, BQ_I8 = 3, BQ_BIT = 4 } bq_dtype;

/* The contract (DESIGN.md): these signatures never change. */
void bq_params_init(bq_params *p); /* bitorch's defaults */
bq_status bq_create(const char *name, const bq_params *p /* NULL = defaults */, bq_quantizer **out);
void bq_destroy(bq_quantizer *q); /* NULL is a no-op */
bq_status bq_forward(const bq_quantizer *q, const float *x, float *y, size_t n);
bq_status bq_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n);
const char *bq_last_error(void); /* this thread's last message; "" if none; never NULL */

/* y = forward(x) over rows x cols elements, row-major and contiguous (a flat tensor: rows = 1).
 * x_type: BQ_F32, BQ_F16 or BQ_BF16; y_type: any bq_dtype the quantizer has (see bq_dtype). Rows matter only
 * for BIT, whose rows are packed separately. Any rows and cols, 0 included, and totals past 2^31 elements;
 * any alignment; in place (y == x) where x and y have one element size. BQ_E_UNSUPPORTED with a message for a
 * type the quantizer does not have; BQ_E_INVALID for an unknown type, NULL with a non-zero size, rows * cols
 * overflowing size_t, or y == x with different element sizes; y is untouched then. */
bq_status bq_forward_typed(const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type, void *y,
                           size_t rows, size_t cols);
/* grad_x = backward(x, grad_y); x, grad_y and grad_x all of one float type (F32, F16 or BF16). In place as
 * bq_backward (grad_x == grad_y or grad_x == x). */
bq_status bq_backward_typed(const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y, void *grad_x,
                            size_t n);

/* Saved-bit training: a forward pass that keeps, in one pass over x, only what the backward pass needs of x,
 * and a backward pass that reads that instead of x. Per element, by quantizer and cancel_threshold t (the
 * gradient cancellation of bq_params, applied iff t > 0):
 *   identity, sign, inputdorefa, weightdorefa, progressive_sign (straight-through gradients):
 *       t = 0: 0 bits (saved is not read or written, and may be NULL); t > 0: 1 bit, [|x| <= t]
 *   steheaviside (g * [|x| <= 1], a multiply-mask):
 *       t = 0: 1 bit, [|x| <= 1]; 0 < t <= 1: 1 bit, [|x| <= t]; t > 1: 2 bits, [|x| <= 1] and [|x| <= t]
 *   approxsign, swishsign: their gradients need x's value: BQ_E_UNSUPPORTED.
 * A NaN x is outside every region. Layout of saved (the library's own; callers only keep it): one or two planes
 * of ceil(n / 32) uint32_t words, the second after the first; in plane p, element i is bit i % 32 (LSB first)
 * of word i / 32; padding bits past n are 0. For every input (NaN, infinities and -0 of x and grad_y included),
 * bq_forward_save's y equals bq_forward's bit for bit, and bq_backward_saved's grad_x equals bq_backward's on
 * the same x. Any n, 0 included, past 2^31; any alignment; in place (y == x: the bits are taken before x is
 * overwritten; grad_x == grad_y). A rejected call writes nothing.
 *
 * Words bq_forward_save writes for n elements with q (0 when the backward needs nothing of x);
 * BQ_E_UNSUPPORTED where the backward needs x's value (approxsign, swishsign). */
bq_status bq_saved_words(const bq_quantizer *q, size_t n, size_t *words);
/* y = forward(x), and into saved what backward needs of x, in one pass over x. */
bq_status bq_forward_save(const bq_quantizer *q, const float *x, float *y, uint32_t *saved, size_t n);
/* grad_x = backward(x, grad_y), reading saved instead of x. */
bq_status bq_backward_saved(const bq_quantizer *q, const uint32_t *saved, const float *grad_y,
                            float *grad_x, size_t n);
/* The same for x, y, grad_y and grad_x of one float type (BQ_F32, BQ_F16 or BQ_BF16), as bq_forward_typed and
 * bq_backward_typed compute them; saved is the same for every type. */
bq_status bq_forward_save_typed(const bq_quantizer *q, bq_dtype type, const void *x, void *y, uint32_t *saved,
                                size_t n);
bq_status bq_backward_saved_typed(const bq_quantizer *q, bq_dtype type, const uint32_t *saved, const void *grad_y,
                                  void *grad_x, size_t n);

/* Pact (bitorch.layers.pact), a learnable-clip activation quantizer (spec section 4), on the CPU:
 * y = round_half_even(clamp(x, 0, alpha) * s) / s with s = (1 / alpha) * (2^bits - 1), computed as bitorch
 * computes it (reciprocal, then multiply: two float32 roundings). bits 1..24, alpha finite and > 0. NaN gives
 * NaN, -0 gives -0. In place (y == x) allowed. The same quantizer is "pact" in the table (bq_create_named with
 * the named parameters alpha and bits; default 10 and 4, as bitorch's), for every other entry point. */
bq_status bq_pact_forward(const float *x, float *y, size_t n, float alpha, int bits);
/* grad_x = g * [!(x < 0 || x > alpha)] (a multiply-mask; a NaN x counts as inside, so grad_x = g there);
 * *grad_alpha = sum of g * [x >= alpha] (x == alpha counts in both). The sum is taken in float64 in a fixed
 * order, the same on every CPU variant and thread count: in slices of 2^18 elements, in order; in a slice,
 * element i goes to lane i % 8 of block i / 4096, each lane summed in increasing order, the lanes summed over
 * the blocks in order, then the 8 lanes in order; the float64 total is rounded once to float32. So
 * |*grad_alpha - S| <= ulp(*grad_alpha) / 2 + (n - 1) 2^-53 sum|g_i| for the exact sum S (torch's float32
 * sum, in its own order, is within about log2(n) 2^-24 sum|g_i|). grad_alpha must not be NULL; in place
 * (grad_x == grad_y or grad_x == x) allowed. */
bq_status bq_pact_backward(const float *x, const float *grad_y, float *grad_x, float *grad_alpha, size_t n,
                           float alpha);

/* Named parameters: the parameters of a quantizer that bq_params does not hold (Pact's alpha and bits), so that
 * bq_params never changes for compiled callers. Each has a default, used where bq_create_named is not given it
 * (and by bq_create). */
typedef enum {
    BQ_PARAM_REAL = 0,     /* a finite float32 value in [min_value, max_value] */
    BQ_PARAM_POSITIVE = 1, /* a finite float32 value > 0 (min_value and max_value are 0) */
    BQ_PARAM_INTEGER = 2   /* an integer in [min_value, max_value] */
} bq_param_kind;
typedef struct bq_param_info {
    const char *name;
    double default_value;
    double min_value;
    double max_value;
    bq_param_kind kind;
} bq_param_info;
typedef struct bq_named_param {
    const char *name;
    double value;
} bq_named_param;
/* bq_create with named parameters: named[0 .. count) set the quantizer's parameters of those names (NULL
 * with count 0 for none). BQ_E_INVALID with a message for a name the quantizer does not declare, one given
 * twice, or a value outside its kind and range. */
bq_status bq_create_named(const char *name, const bq_params *p /* NULL = defaults */, const bq_named_param *named,
                          size_t count, bq_quantizer **out);

/* Introspection. Quantizers are numbered 0 .. bq_quantizer_count()-1 in the kernel table's order. */
typedef struct bq_quantizer_info {
    const char *name;            /* bitorch's registry name */
    const char *forward_kernel;  /* the generated kernel family that runs the forward pass */
    const char *backward_kernel; /* the same for the backward pass (cancellation fused in) */
    const char *params;          /* the bq_params fields it reads, comma-separated ("" if none), or the
                                    names of its named parameters (bq_quantizer_param_at) */
} bq_quantizer_info;

size_t bq_quantizer_count(void);
bq_status bq_quantizer_info_at(size_t index, bq_quantizer_info *out);
/* The named parameters of quantizer `index`, in their declared order (0 past the end). */
size_t bq_quantizer_param_count(size_t index);
bq_status bq_quantizer_param_at(size_t index, size_t param, bq_param_info *out);

#define BQ_MAX_NAMED_PARAMS 15 /* named parameters a quantizer can have */

/* Users' own quantizers: kernels compiled ahead of time by the installed CMake function
 * bitquant_add_quantizers (README, "Writing your own quantizer"), registered at run time. A registered
 * quantizer is then one of bq_quantizer_count's, after the built-ins in the order registered: bq_create and
 * bq_create_named make it (its parameters are named parameters), and bq_forward, bq_backward (gradient
 * cancellation fused in, as for the built-ins) and their _typed forms with BQ_F32 run it on the selected CPU
 * variant. Other types, the GPU entry points and saved-bit training are BQ_E_UNSUPPORTED for it (its
 * backward needs x itself).
 *
 * The kernel ABI, which BQ_KERNEL_ABI_VERSION numbers: a kernel is a Halide _argv entry point (generated with
 * Halide 21, the user_context and no_runtime target features, sharing this library's Halide runtime, whose
 * halide_* functions libbitquant exports for it); args[0] points to the bq call's user context, then come
 * halide_buffer_t pointers for arrays (host memory, 1-D, min 0, stride 1; the runtime has checked them, so
 * bitquant_add_quantizers compiles the kernels without Halide's own checks) and pointers to scalars:
 *   forward   x (float32, 1-D), params (float32, BQ_MAX_NAMED_PARAMS elements, the named parameters in declared
 *             order, the rest 0), y (float32, 1-D, x's extent)
 *   backward  x, g (float32, 1-D), params, threshold (float: the cancellation threshold, 0 for none), dx
 * with y and dx possibly the same memory as x or g (in place). */
#define BQ_KERNEL_ABI_VERSION 1
typedef int (*bq_kernel_entry)(void **args);
typedef struct bq_custom_kernels {
    const char *variant;      /* a CPU variant's name (bq_cpu_variant_name) */
    bq_kernel_entry forward;  /* y = f(x; params) */
    bq_kernel_entry backward; /* dx = f(x, g; params), cancelled where threshold > 0 */
} bq_custom_kernels;
typedef struct bq_custom_quantizer {
    const char *name; /* 1 to 63 characters of a-z, 0-9 and _, starting with a letter */
    const bq_param_info *params;
    size_t param_count; /* at most BQ_MAX_NAMED_PARAMS */
    const bq_custom_kernels *kernels; /* one per CPU variant compiled */
    size_t kernel_count;
} bq_custom_quantizer;
/* Registers quantizers[0 .. count), all or none: BQ_E_INVALID with a message for an abi_version other than
 * BQ_KERNEL_ABI_VERSION (a library built against another bitquant release), a name that is not valid or that
 * a built-in, an earlier registration or another of these has, invalid parameter declarations (a NULL or
 * repeated name, a kind that is not a bq_param_kind, a default outside its range), a variant this library
 * does not have or a NULL kernel; BQ_E_UNSUPPORTED if none of a quantizer's kernels is for the CPU variant
 * this process runs (bq_cpu_variant_active); BQ_E_NOMEM past 64 registered quantizers. Thread-safe; what
 * the structures point to must stay valid for the life of the process (static data of the library that
 * bitquant_add_quantizers generates). */
bq_status bq_register_quantizers(int abi_version, const bq_custom_quantizer *quantizers, size_t count);

/* CPU variants compiled into this library, best last ("sse41", "avx2", "avx512" on x86-64). */
size_t bq_cpu_variant_count(void);
const char *bq_cpu_variant_name(size_t index); /* NULL past the end */
/* Whether this CPU can run a compiled variant (1) or not (0); -1 past the end. */
int bq_cpu_variant_supported(size_t index);
/* The variant the kernels run: the best this CPU supports, or the one named by the environment variable
 * BITQUANT_CPU (read once). BQ_E_UNSUPPORTED if BITQUANT_CPU names one this CPU lacks or one not compiled
 * in; then bq_create fails the same way. */
bq_status bq_cpu_variant_active(const char **name);

/* Worker threads the CPU kernels may use, the calling thread included (default: one per core, or the
 * environment variable HL_NUM_THREADS where it is a decimal integer from 1 to 256; any other value of it,
 * empty included, is ignored, read once). 1 <= n <= 256 (the kernels' thread pool runs at most 256); BQ_E_INVALID
 * otherwise. The pool is the library's own: it starts workers when a parallel kernel first needs them, and
 * a worker the system cannot start is no error (the kernel runs on the threads there are, at least the
 * caller's). Lowering n stops the workers above it, each after the task it runs, before returning; kernels
 * running on other threads meanwhile go on with the rest. */
bq_status bq_set_num_threads(int n);

/* GPU backends. The same kernel table, compiled for CUDA (PTX for sm_80 and newer) and OpenCL, with the
 * same numbers as the CPU kernels (README, "GPU"). Drivers are loaded when first needed: without one, every
 * entry point below returns BQ_E_NO_DEVICE with a message; for a backend not compiled into this library
 * (CMake options BITQUANT_CUDA, BITQUANT_OPENCL), BQ_E_UNSUPPORTED. */
typedef enum { BQ_BACKEND_CUDA = 0, BQ_BACKEND_OPENCL = 1, BQ_BACKEND_COUNT = 2 } bq_backend;

const char *bq_backend_name(bq_backend backend); /* "cuda", "opencl"; NULL for an unknown value */
int bq_backend_compiled(bq_backend backend);     /* 1 if this library holds its kernels, else 0 */
/* Whether a device can run the backend's kernels now: BQ_OK with the device's name written to name
 * (truncated to size bytes, NUL-terminated; name may be NULL if size is 0), else BQ_E_NO_DEVICE or
 * BQ_E_UNSUPPORTED. The device is the one the *_host entry points use (see below). */
bq_status bq_backend_device(bq_backend backend, char *name, size_t size);

/* Host memory in and out: x is copied to the device, the kernel runs there, the result is copied back;
 * returns when y (grad_x) is written. Any n, in place allowed, as bq_forward. The device: CUDA, the calling
 * thread's current context or else the primary context of device 0 (as the CUDA runtime API does);
 * OpenCL, the first GPU of the first platform that has one, else its first device of any type (the
 * environment variable BITQUANT_OPENCL_PLATFORM, a substring of a platform's name, restricts the
 * platforms). */
bq_status bq_device_forward_host(const bq_quantizer *q, bq_backend backend, const float *x, float *y, size_t n);
bq_status bq_device_backward_host(const bq_quantizer *q, bq_backend backend, const float *x, const float *grad_y,
                                  float *grad_x, size_t n);

/* CUDA, device memory: x, y, grad_y, grad_x are device pointers (CUdeviceptr, or from cudaMalloc or
 * torch's data_ptr()) valid in the calling thread's current CUDA context (else the primary context of
 * device 0), holding n floats each; stream is a CUstream / cudaStream_t of that context, or NULL for its
 * default stream. The kernels are enqueued on stream and the call returns without waiting for them, so
 * they order with the caller's other work on that stream. WeightDoReFa's forward is the exception: it
 * reads its global abs-max (4 bytes) back to the host, which waits for the stream once. */
bq_status bq_cuda_forward(const bq_quantizer *q, const float *x, float *y, size_t n, void *stream);
bq_status bq_cuda_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n,
                           void *stream);

/* OpenCL, device memory: x, y, grad_y, grad_x are cl_mem buffers of at least n floats in context (a
 * cl_context), and queue is an in-order cl_command_queue of that context. The kernels are enqueued on queue
 * and the call returns without waiting for them; WeightDoReFa's forward reads its abs-max back (one wait).
 * Over 2^28 elements the buffers are cut into slices, which Halide's OpenCL runtime passes as sub-buffers:
 * then they must not be sub-buffers themselves. Programs are built with
 * -cl-fp32-correctly-rounded-divide-sqrt, which the device must support. */
bq_status bq_opencl_forward(const bq_quantizer *q, void *context, void *queue, void *x, void *y, size_t n);
bq_status bq_opencl_backward(const bq_quantizer *q, void *context, void *queue, void *x, void *grad_y, void *grad_x,
                             size_t n);

/* The typed calls on GPUs, as bq_forward_typed and bq_backward_typed (the same types, shapes and rules), on
 * host memory (copied in and out, either backend) and on device memory (CUDA pointers on a stream; OpenCL
 * cl_mem buffers on a queue), as the float32 entry points above. On device memory, a BIT output whose cols
 * is not a multiple of 32 and whose rows are longer than a chunk (2^28 elements) is sliced at row offsets
 * that OpenCL sub-buffers may refuse (CL_DEVICE_MEM_BASE_ADDR_ALIGN): the call then fails with BQ_E_RUNTIME. */
bq_status bq_device_forward_typed_host(const bq_quantizer *q, bq_backend backend, bq_dtype x_type, const void *x,
                                       bq_dtype y_type, void *y, size_t rows, size_t cols);
bq_status bq_device_backward_typed_host(const bq_quantizer *q, bq_backend backend, bq_dtype type, const void *x,
                                        const void *grad_y, void *grad_x, size_t n);
bq_status bq_cuda_forward_typed(const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type, void *y,
                                size_t rows, size_t cols, void *stream);
bq_status bq_cuda_backward_typed(const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y, void *grad_x,
                                 size_t n, void *stream);
bq_status bq_opencl_forward_typed(const bq_quantizer *q, void *context, void *queue, bq_dtype x_type, void *x,
                                  bq_dtype y_type, void *y, size_t rows, size_t cols);
bq_status bq_opencl_backward_typed(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *x,
                                   void *grad_y, void *grad_x, size_t n);

/* Saved-bit training on GPUs, as bq_forward_save_typed and bq_backward_saved_typed: on host memory (either
 * backend) and on device memory (CUDA pointers on a stream; OpenCL cl_mem buffers on a queue, saved of at least
 * bq_saved_words words), as the entry points above. */
bq_status bq_device_forward_save_host(const bq_quantizer *q, bq_backend backend, bq_dtype type, const void *x, void *y,
                                      uint32_t *saved, size_t n);
bq_status bq_device_backward_saved_host(const bq_quantizer *q, bq_backend backend, bq_dtype type,
                                        const uint32_t *saved, const void *grad_y, void *grad_x, size_t n);
bq_status bq_cuda_forward_save(const bq_quantizer *q, bq_dtype type, const void *x, void *y, void *saved, size_t n,
                               void *stream);
bq_status bq_cuda_backward_saved(const bq_quantizer *q, bq_dtype type, const void *saved, const void *grad_y,
                                 void *grad_x, size_t n, void *stream);
bq_status bq_opencl_forward_save(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *x, void *y,
                                 void *saved, size_t n);
bq_status bq_opencl_backward_saved(const bq_quantizer *q, void *context, void *queue, bq_dtype type, void *saved,
                                   void *grad_y, void *grad_x, size_t n);

#ifdef __cplusplus
}
#endif

#endif
