/* bitquant: bitorch's quantizations (forward and backward) as generated, vectorized, multithreaded kernels.
 *
 * Numbers match bitorch 0.4.1 bit for bit (swishsign's backward within 1e-6*beta*|g|); see the README.
 * Every function is safe to call from several threads at once. No function aborts, exits or prints:
 * errors come back as a status, with a message in bq_last_error(), and outputs are left untouched when
 * an argument is rejected. */
#ifndef BITQUANT_H
#define BITQUANT_H

#include <stddef.h>

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

/* The contract (DESIGN.md): these signatures never change. */
void bq_params_init(bq_params *p); /* bitorch's defaults */
bq_status bq_create(const char *name, const bq_params *p /* NULL = defaults */, bq_quantizer **out);
void bq_destroy(bq_quantizer *q); /* NULL is a no-op */
bq_status bq_forward(const bq_quantizer *q, const float *x, float *y, size_t n);
bq_status bq_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n);
const char *bq_last_error(void); /* this thread's last message; "" if none; never NULL */

/* Introspection. Quantizers are numbered 0 .. bq_quantizer_count()-1 in the kernel table's order. */
typedef struct bq_quantizer_info {
    const char *name;            /* bitorch's registry name */
    const char *forward_kernel;  /* the generated kernel family that runs the forward pass */
    const char *backward_kernel; /* the same for the backward pass (cancellation fused in) */
    const char *params;          /* the bq_params fields it reads, comma-separated ("" if none) */
} bq_quantizer_info;

size_t bq_quantizer_count(void);
bq_status bq_quantizer_info_at(size_t index, bq_quantizer_info *out);

/* CPU variants compiled into this library, best last ("sse41", "avx2", "avx512" on x86-64). */
size_t bq_cpu_variant_count(void);
const char *bq_cpu_variant_name(size_t index); /* NULL past the end */
/* Whether this CPU can run a compiled variant (1) or not (0); -1 past the end. */
int bq_cpu_variant_supported(size_t index);
/* The variant the kernels run: the best this CPU supports, or the one named by the environment variable
 * BITQUANT_CPU (read once). BQ_E_UNSUPPORTED if BITQUANT_CPU names one this CPU lacks or one not compiled
 * in; then bq_create fails the same way. */
bq_status bq_cpu_variant_active(const char **name);

/* Worker threads the kernels may use (default: one per core, or HL_NUM_THREADS). n >= 1. */
bq_status bq_set_num_threads(int n);

#ifdef __cplusplus
}
#endif

#endif
