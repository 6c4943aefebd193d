/* bitquant's runtime: what its C files share. Sees the generated kernel headers and HalideRuntime.h,
 * never Halide.h. */
#ifndef BITQUANT_INTERNAL_H
#define BITQUANT_INTERNAL_H

#include <bitquant.h>
#include <stdint.h>

struct halide_buffer_t;

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

/* run.c: runs a kernel over any n, in chunks of at most bq_max_chunk() elements. */
bq_status bq_run_map(bq_map_fn fn, const float *x, float p0, float p1, float *y, size_t n);
bq_status bq_run_grad(bq_grad_fn fn, const float *x, const float *g, float p0, float threshold, float *dx, size_t n);
bq_status bq_run_absmax(bq_absmax_fn fn, const float *x, size_t n, float *absmax);
#define BQ_COUNT_THRESHOLDS 15 /* the COUNT kernels' threshold table: WeightDoReFa up to 4 bits */
bq_status bq_run_count(bq_count_fn fn, const float *x, const float thresholds[BQ_COUNT_THRESHOLDS], int levels,
                       float *y, size_t n);

/* weightdorefa.c: WeightDoReFa's forward, choosing between its two kernels. */
bq_status bq_weightdorefa_forward(const bq_kernel *kernels, const float *x, float levels, float *y, size_t n);

#endif
