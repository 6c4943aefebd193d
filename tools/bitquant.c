/* The bitquant command: `list` shows what the library holds, `bench` measures every kernel against
 * rooflines measured in the same run and against the plain C reference compiled with -O3, on the CPU and
 * on every GPU backend that has a device (OpenCL on PoCL, a CPU device, included and labelled as such). */
#define _POSIX_C_SOURCE 200809L
#include <bitquant.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoscheduled.h"
#include "baseline.h"
#include "device_memory.h"
#include "reference.h"
#include "roofline.h"
#include "timing.h"

static int cmd_list(void) {
    const char *active = NULL;
    bq_status active_status = bq_cpu_variant_active(&active);
    printf("CPU variants (best last):\n");
    for (size_t i = 0; i < bq_cpu_variant_count(); i++) {
        const char *name = bq_cpu_variant_name(i);
        int is_active = active_status == BQ_OK && strcmp(name, active) == 0;
        printf("  %-8s %s%s\n", name,
               bq_cpu_variant_supported(i) ? "supported by this CPU" : "not supported by this CPU",
               is_active ? ", active" : "");
    }
    if (active_status != BQ_OK) printf("  no active variant: %s\n", bq_last_error());
    printf("\nGPU backends:\n");
    for (int b = 0; b < BQ_BACKEND_COUNT; b++) {
        char device[256];
        if (!bq_backend_compiled((bq_backend)b)) {
            printf("  %-8s not compiled in\n", bq_backend_name((bq_backend)b));
        } else if (bq_backend_device((bq_backend)b, device, sizeof device) == BQ_OK) {
            printf("  %-8s compiled in, device: %s\n", bq_backend_name((bq_backend)b), device);
        } else {
            printf("  %-8s compiled in, no device: %s\n", bq_backend_name((bq_backend)b), bq_last_error());
        }
    }
    printf("\n%-17s %-9s %-13s %-13s %s\n", "quantizer", "direction", "kernel", "", "parameters");
    for (size_t i = 0; i < bq_quantizer_count(); i++) {
        bq_quantizer_info info;
        if (bq_quantizer_info_at(i, &info) != BQ_OK) return 1;
        printf("%-17s %-9s %-27s %s\n", info.name, "forward", info.forward_kernel, *info.params ? info.params : "-");
        printf("%-17s %-9s %-27s %s%scancel_threshold\n", "", "backward", info.backward_kernel, info.params,
               *info.params ? "," : "");
    }
    return 0;
}

/* ---- bench ---- */

/* The memory traffic of a kernel, and so the roofline it is timed against: copy (read 1, write 1),
 * read2-write1, read+copy (WeightDoReFa's two passes), pack (read a float, write a bit: AVX-512
 * compare-to-mask intrinsics), narrow (read a float, write an int8), read (16-bit input to bits: the write is
 * 1/16 of the traffic). 16-bit rows use the same float loops over half as many floats: the same bytes. */
typedef enum { SHAPE_MAP, SHAPE_GRAD, SHAPE_REDUCE_MAP, SHAPE_PACK, SHAPE_NARROW, SHAPE_READ } traffic_shape;

typedef struct {
    char label[48];
    const char *quantizer;
    int backward;
    float cancel_threshold;
    int copies_gradient; /* a straight-through backward without cancellation reads g only, never x */
    int bits;            /* its bit width (bench_params says which parameter); 0: the default */
    const char *family;  /* the kernel family that runs it */
    bq_dtype in, out;    /* the element types (bq_forward_typed); the backward's are both `in` */
    int saved;           /* saved-bit training: bq_forward_save (forward) or bq_backward_saved (backward) */
    int planes;          /* its bits kept per element (bq_saved_words) */
    int custom;          /* a registered quantizer (--load): float32 on the CPU only, no scalar reference */
} bench_case;
#define BENCH_MAX_CASES 256

typedef struct {
    int quick, json;
    size_t sizes[8];
    int size_count;
    int threads[4];
    int thread_count;
    const char *only;
    size_t bits[24]; /* --bits: every float32 forward of a quantizer with a bit width, at each of these */
    int bits_count;
    const char *on; /* NULL: the CPU and every GPU with a device; else "cpu" or a backend's name */
} bench_options;

typedef struct {
    float *x, *g, *out;
    size_t n;
    void *x16[2], *g16[2]; /* x and g as float16 and bfloat16 */
    uint32_t *saved;       /* two planes of saved bits, for the saved-bit rows */
} buffers;

static int is_typed(const bench_case *c) { return c->in != BQ_F32 || c->out != BQ_F32; }
static const void *input_of(const buffers *b, bq_dtype t) { return t == BQ_F32 ? (const void *)b->x : b->x16[t - 1]; }
static const void *gradient_of(const buffers *b, bq_dtype t) { return t == BQ_F32 ? (const void *)b->g : b->g16[t - 1]; }

/* What one timed sample runs: a kernel, a roofline or a reference loop; on a GPU, a kernel on device memory
 * or a device-to-device copy of `copy_floats` floats. */
typedef enum {
    RUN_KERNEL,
    RUN_AUTOSCHEDULED,
    RUN_REFERENCE,
    RUN_BASELINE,
    RUN_COPY,
    RUN_ADD,
    RUN_READ,
    RUN_PACK,
    RUN_NARROW,
    RUN_DEVICE_KERNEL,
    RUN_DEVICE_COPY
} run_kind;

/* Device buffers of n floats each, and the device they live on. */
typedef struct {
    test_device *dev;
    bq_backend backend;
    void *x, *g, *out;
} device_buffers;

typedef struct {
    run_kind kind;
    const bench_case *c;
    const bq_quantizer *q;
    const bq_params *params;
    const buffers *b;
    int threads;
    const device_buffers *d; /* device kinds only */
    size_t copy_floats;
    const bq_autoscheduled_kernel *autoscheduled; /* RUN_AUTOSCHEDULED only */
    size_t roof_floats;                           /* rooflines: floats to move (0: n) */
    bq_dtype roof_type;                           /* rooflines: x and g (BQ_F32) or their 16-bit copies */
    bq_baseline_fn baseline;                      /* RUN_BASELINE only */
} runner;

static volatile float sink;

static int run_once(const runner *r) {
    const buffers *b = r->b;
    /* a roofline reads the same buffers as the kernel it stands beside: the 16-bit ones as floats */
    const float *roof_x = input_of(b, r->roof_type), *roof_g = gradient_of(b, r->roof_type);
    switch (r->kind) {
    case RUN_KERNEL:
        if (r->c->saved) {
            const bench_case *c = r->c;
            return c->backward ? bq_backward_saved_typed(r->q, c->in, b->saved, gradient_of(b, c->in), b->out, b->n)
                               : bq_forward_save_typed(r->q, c->in, input_of(b, c->in), b->out, b->saved, b->n);
        }
        if (is_typed(r->c)) {
            const bench_case *c = r->c;
            return c->backward ? bq_backward_typed(r->q, c->in, input_of(b, c->in), gradient_of(b, c->in), b->out, b->n)
                               : bq_forward_typed(r->q, c->in, input_of(b, c->in), c->out, b->out, 1, b->n);
        }
        return r->c->backward ? bq_backward(r->q, b->x, b->g, b->out, b->n) : bq_forward(r->q, b->x, b->out, b->n);
    case RUN_AUTOSCHEDULED:
        return r->c->backward ? bq_autoscheduled_backward(r->autoscheduled, r->q, b->x, b->g, b->out, b->n)
                              : bq_autoscheduled_forward(r->autoscheduled, r->q, b->x, b->out, b->n);
    case RUN_BASELINE:
        r->baseline(r->params, b->x, b->g, b->out, b->n);
        return 0;
    case RUN_REFERENCE:
        return r->c->backward ? ref_backward(r->c->quantizer, r->params, b->x, b->g, b->out, b->n)
                              : ref_forward(r->c->quantizer, r->params, b->x, b->out, b->n);
    case RUN_COPY:
        roofline_copy(roof_x, b->out, r->roof_floats ? r->roof_floats : b->n, r->threads);
        return 0;
    case RUN_ADD:
        roofline_add(roof_x, roof_g, b->out, r->roof_floats ? r->roof_floats : b->n, r->threads);
        return 0;
    case RUN_READ:
        sink = roofline_read(roof_x, r->roof_floats ? r->roof_floats : b->n, r->threads);
        return 0;
    case RUN_PACK:
        roofline_pack(b->x, (uint32_t *)b->out, b->n, r->threads);
        return 0;
    case RUN_NARROW:
        roofline_narrow(b->x, (int8_t *)b->out, b->n, r->threads);
        return 0;
    case RUN_DEVICE_KERNEL: {
        const device_buffers *d = r->d;
        void *queue = test_device_queue(d->dev), *context = test_device_context(d->dev);
        if (d->backend == BQ_BACKEND_CUDA) {
            return r->c->backward ? bq_cuda_backward(r->q, d->x, d->g, d->out, b->n, queue)
                                  : bq_cuda_forward(r->q, d->x, d->out, b->n, queue);
        }
        return r->c->backward ? bq_opencl_backward(r->q, context, queue, d->x, d->g, d->out, b->n)
                              : bq_opencl_forward(r->q, context, queue, d->x, d->out, b->n);
    }
    case RUN_DEVICE_COPY:
        return test_device_copy(r->d->dev, r->d->out, r->d->x, r->copy_floats * sizeof(float));
    }
    return 1;
}

/* Device work is enqueued: a sample ends when the queue is empty. */
static void finish(const runner *r) {
    if (r->d != NULL) test_device_finish(r->d->dev);
}

/* Calls per timed sample, so that a sample lasts >= ~2 ms; 0 if the runner fails. */
static int calibrate(const runner *r) {
    if (run_once(r) != 0) return 0; // warm-up, and fail fast
    finish(r);
    double start = bq_now_seconds();
    run_once(r);
    finish(r);
    double one = bq_now_seconds() - start;
    return one > 2e-3 ? 1 : (int)(2e-3 / (one > 1e-7 ? one : 1e-7)) + 1;
}

static double sample(const runner *r, int reps) {
    double start = bq_now_seconds();
    for (int k = 0; k < reps; k++)
        run_once(r);
    finish(r);
    return (bq_now_seconds() - start) / reps;
}

/* Median seconds per call of r alone. */
static double time_median(const runner *r, int samples) {
    int reps = calibrate(r);
    if (reps == 0) return -1.0;
    double times[64];
    if (samples > 64) samples = 64;
    for (int s = 0; s < samples; s++)
        times[s] = sample(r, reps);
    return bq_median(times, samples);
}

typedef struct {
    double kernel, roofline, ratio; /* medians: seconds, seconds, roofline time / kernel time */
    double vs_float; /* saved-bit rows: bq_forward's or bq_backward's time / the kernel's (else 0) */
    double vs_baseline, baseline; /* one thread: the plain-C loop's time / the kernel's, its seconds (else 0) */
} paired_times;

/* The kernel and its roofline (roofs[0] plus roofs[1] if given) timed alternately, sample by sample, so
 * that each ratio is taken within one round and drift on a shared machine cancels out. */
static int time_against_roofline(const runner *kernel, const runner *roofs[2], int samples, paired_times *out) {
    int reps = calibrate(kernel), roof_reps[2] = {calibrate(roofs[0]), roofs[1] ? calibrate(roofs[1]) : 0};
    if (reps == 0) return -1;
    double tk[64], tr[64], ratio[64];
    if (samples > 64) samples = 64;
    for (int s = 0; s < samples; s++) {
        tr[s] = sample(roofs[0], roof_reps[0]) + (roofs[1] ? sample(roofs[1], roof_reps[1]) : 0.0);
        tk[s] = sample(kernel, reps);
        ratio[s] = tr[s] / tk[s];
    }
    out->kernel = bq_median(tk, samples);
    out->roofline = bq_median(tr, samples);
    out->ratio = bq_median(ratio, samples);
    out->vs_float = out->vs_baseline = out->baseline = 0.0;
    return 0;
}

static traffic_shape shape_of(const bench_case *c) {
    if (c->backward) return c->copies_gradient ? SHAPE_MAP : SHAPE_GRAD;
    if (c->out == BQ_BIT) return c->in == BQ_F32 ? SHAPE_PACK : SHAPE_READ;
    if (c->out == BQ_I8) return SHAPE_NARROW;
    return strcmp(c->quantizer, "weightdorefa") == 0 ? SHAPE_REDUCE_MAP : SHAPE_MAP;
}

static double element_bytes(bq_dtype t) { return t == BQ_F32 ? 4.0 : t == BQ_I8 ? 1.0 : t == BQ_BIT ? 0.125 : 2.0; }

/* The bytes a kernel must move: its inputs read (x twice for WeightDoReFa) and its output written; the saved
 * bits (1/8 byte per plane and element) written by bq_forward_save, read by bq_backward_saved instead of x. */
static double bytes_of(const bench_case *c, size_t n) {
    double in = element_bytes(c->in), out = element_bytes(c->backward ? c->in : c->out);
    traffic_shape shape = shape_of(c);
    if (c->saved) return (double)n * ((shape == SHAPE_REDUCE_MAP ? 2.0 : 1.0) * in + out + c->planes / 8.0);
    double reads = shape == SHAPE_GRAD || shape == SHAPE_REDUCE_MAP ? 2.0 : 1.0;
    return (double)n * (reads * in + out);
}

static const char *roofline_name(const bench_case *c, traffic_shape shape) {
    if (c->saved) return c->backward ? "copy+read" : shape == SHAPE_REDUCE_MAP ? "read+copy" : "copy+copy";
    static const char *const names[] = {"copy", "read2-write1", "read+copy", "pack", "narrow", "read"};
    return names[shape];
}

/* Where a quantizer's bit width lives, read from the kernel table through bq_quantizer_info_at: bq_params's
 * dorefa_bits (InputDoReFa, WeightDoReFa) or a named integer parameter "bits" (Pact); none for the rest. */
typedef enum { BITS_NONE, BITS_DOREFA, BITS_NAMED } bits_param;

static bits_param bits_param_of(const char *quantizer) {
    for (size_t i = 0; i < bq_quantizer_count(); i++) {
        bq_quantizer_info info;
        if (bq_quantizer_info_at(i, &info) != BQ_OK || strcmp(info.name, quantizer) != 0) continue;
        for (size_t k = 0; k < bq_quantizer_param_count(i); k++) {
            bq_param_info param;
            if (bq_quantizer_param_at(i, k, &param) == BQ_OK && strcmp(param.name, "bits") == 0 &&
                param.kind == BQ_PARAM_INTEGER)
                return BITS_NAMED;
        }
        return strstr(info.params, "dorefa_bits") != NULL ? BITS_DOREFA : BITS_NONE;
    }
    return BITS_NONE;
}

static void bench_params(const bench_case *c, bq_params *p) {
    bq_params_init(p);
    p->cancel_threshold = c->cancel_threshold;
    if (c->bits && bits_param_of(c->quantizer) == BITS_DOREFA) p->dorefa_bits = c->bits;
}

/* The plain-C loop and the scalar reference run a named bit width at its default only (Pact's 4). */
static int default_bits_only(const bench_case *c) { return c->bits && bits_param_of(c->quantizer) == BITS_NAMED; }

/* The case's quantizer (its parameters in *p), or NULL after saying why. */
static bq_quantizer *create_quantizer(const bench_case *c, bq_params *p) {
    bench_params(c, p);
    bq_quantizer *q = NULL;
    const bq_named_param bits = {"bits", c->bits};
    if (bq_create_named(c->quantizer, p, &bits, default_bits_only(c) ? 1 : 0, &q) != BQ_OK) {
        fprintf(stderr, "bitquant bench: %s\n", bq_last_error());
        return NULL;
    }
    return q;
}

static int build_cases(bench_case *cases, int max, const bench_options *o) {
    const char *only = o->only;
    int count = 0;
    for (size_t i = 0; i < bq_quantizer_count(); i++) {
        bq_quantizer_info info;
        bq_quantizer_info_at(i, &info);
        if (only && strcmp(only, info.name) != 0) continue;
        int custom = strcmp(info.forward_kernel, "custom_forward") == 0;
        const float thresholds[] = {0.0f, 1.0f};
        for (int dir = 0; dir < 2 && count + 3 <= max; dir++) { /* float32 */
            for (int t = 0; t < (dir ? 2 : 1); t++) {
                bench_case *c = &cases[count++];
                snprintf(c->label, sizeof c->label, "%s.%s%s", info.name, dir ? "backward" : "forward",
                         t ? "+cancel" : "");
                c->quantizer = info.name;
                c->backward = dir;
                c->cancel_threshold = thresholds[t];
                c->copies_gradient = dir && !t && strcmp(info.backward_kernel, "ste") == 0;
                c->bits = 0;
                c->family = dir ? info.backward_kernel : info.forward_kernel;
                c->in = c->out = BQ_F32;
                c->saved = c->planes = 0;
                c->custom = custom;
            }
        }
        if (custom) continue; /* its kernels are float32 only */
        /* --bits: the float32 forward again at each width (the backwards do not depend on it). */
        for (int k = 0; k < o->bits_count && bits_param_of(info.name) != BITS_NONE && count < max; k++) {
            bench_case *c = &cases[count++];
            *c = (bench_case){.quantizer = info.name, .bits = (int)o->bits[k], .family = info.forward_kernel,
                              .in = BQ_F32, .out = BQ_F32};
            snprintf(c->label, sizeof c->label, "%s.forward[%zu bit%s]", info.name, o->bits[k],
                     o->bits[k] > 1 ? "s" : "");
        }
        /* The half-precision forms of its forward and its backward, and sign's packed and int8 outputs. */
        static const bq_dtype halves[] = {BQ_F16, BQ_BF16};
        for (int dir = 0; dir < 2 && count + 2 <= max; dir++) {
            for (int h = 0; h < 2; h++) {
                bench_case *c = &cases[count++];
                *c = (bench_case){.quantizer = info.name, .backward = dir, .in = halves[h], .out = halves[h],
                                  .family = dir ? info.backward_kernel : info.forward_kernel};
                c->copies_gradient = dir && strcmp(info.backward_kernel, "ste") == 0;
                snprintf(c->label, sizeof c->label, "%s.%s[%s]", info.name, dir ? "backward" : "forward",
                         h ? "bf16" : "f16");
            }
        }
        /* Saved-bit training, where the backward needs bits of x: with cancellation at 1 (1 bit), and for
         * steheaviside without it (1 bit) and at 1.3 (2 bits). */
        const float save_thresholds[] = {1.0f, 0.0f, 1.3f};
        for (int k = 0; k < (strcmp(info.name, "steheaviside") == 0 ? 3 : 1); k++) {
            bq_params p;
            bq_params_init(&p);
            p.cancel_threshold = save_thresholds[k];
            bq_quantizer *q = NULL;
            size_t words = 0;
            int saves = bq_create(info.name, &p, &q) == BQ_OK && bq_saved_words(q, 32, &words) == BQ_OK;
            bq_destroy(q);
            for (int dir = 0; dir < 2 && saves && count < max; dir++) {
                bench_case *c = &cases[count++];
                *c = (bench_case){.quantizer = info.name, .backward = dir, .cancel_threshold = save_thresholds[k],
                                  .family = dir ? "backward_saved" : info.forward_kernel, .in = BQ_F32, .out = BQ_F32,
                                  .saved = 1, .planes = (int)words};
                snprintf(c->label, sizeof c->label, "%s.%s[t=%g,%zub]", info.name, dir ? "bwd_saved" : "fwd_save",
                         (double)save_thresholds[k], words);
            }
        }
        static const bq_dtype packed[][2] = {{BQ_F32, BQ_BIT}, {BQ_F16, BQ_BIT}, {BQ_F32, BQ_I8}};
        for (int k = 0; k < 3 && strcmp(info.name, "sign") == 0 && count < max; k++) {
            bench_case *c = &cases[count++];
            *c = (bench_case){.quantizer = info.name, .in = packed[k][0], .out = packed[k][1],
                              .family = info.forward_kernel};
            snprintf(c->label, sizeof c->label, "%s.forward[%s->%s]", info.name, packed[k][0] == BQ_F32 ? "f32" : "f16",
                     packed[k][1] == BQ_BIT ? "b1" : "i8");
        }
        /* WeightDoReFa runs a different kernel above 4 bits: show both (unless --bits shows them all). */
        if (strcmp(info.name, "weightdorefa") == 0 && o->bits_count == 0 && count < max) {
            bench_case *c = &cases[count++];
            *c = (bench_case){.quantizer = info.name, .bits = 8, .family = info.forward_kernel, .in = BQ_F32,
                              .out = BQ_F32};
            snprintf(c->label, sizeof c->label, "%s.forward[8 bits]", info.name);
        }
    }
    return count;
}

static void fill(buffers *b, size_t n) {
    uint32_t state = 0x9e3779b9u;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13, state ^= state >> 17, state ^= state << 5;
        b->x[i] = ((float)(state >> 8) / 16777216.0f) * 6.0f - 3.0f;
        b->g[i] = ((float)(state & 0xffff) / 65536.0f) - 0.5f;
        b->out[i] = 0.0f; // touches every page before timing
    }
}

/* x and g as float16 and bfloat16, converted by the library (identity's typed forward). */
static int fill_halves(buffers *b) {
    bq_quantizer *identity = NULL;
    if (bq_create("identity", NULL, &identity) != BQ_OK) return 1;
    int failed = 0;
    for (int h = 0; h < 2; h++) {
        b->x16[h] = aligned_alloc(64, (b->n * 2 + 63) / 64 * 64);
        b->g16[h] = aligned_alloc(64, (b->n * 2 + 63) / 64 * 64);
        failed |= b->x16[h] == NULL || b->g16[h] == NULL ||
                  bq_forward_typed(identity, BQ_F32, b->x, (bq_dtype)(BQ_F16 + h), b->x16[h], 1, b->n) != BQ_OK ||
                  bq_forward_typed(identity, BQ_F32, b->g, (bq_dtype)(BQ_F16 + h), b->g16[h], 1, b->n) != BQ_OK;
    }
    bq_destroy(identity);
    return failed;
}

/* Progress on long runs: "bitquant bench: done/total cases" on stderr, where it is a terminal and the output
 * is not --json; cleared before each row is printed, so that the rows stay whole. */
static struct {
    int enabled, shown, done, total;
} progress;

static void progress_clear(void) {
    if (progress.shown) fputs("\r\033[K", stderr);
    progress.shown = 0;
}

static void progress_step(void) {
    progress.done++;
    if (!progress.enabled) return;
    fprintf(stderr, "\rbitquant bench: %d/%d cases", progress.done, progress.total);
    fflush(stderr);
    progress.shown = 1;
}

/* One result, as a table row or a JSON object; `where` is the CPU variant or the GPU backend, threads 0 for
 * a GPU. */
static void print_row(const bench_options *o, const char *where, const char *schedule, const bench_case *c, size_t n,
                      int threads, const paired_times *t, const char *roof_name, double reference_seconds,
                      int *first) {
    double bytes = bytes_of(c, n);
    double gbps = bytes / t->kernel * 1e-9, roof_gbps = bytes / t->roofline * 1e-9;
    double vs_c = reference_seconds > 0 ? reference_seconds / t->kernel : NAN;
    progress_clear();
    if (o->json) {
        printf("%s  {\"kernel\": \"%s\", \"on\": \"%s\", \"schedule\": \"%s\", \"n\": %zu, \"threads\": %d, "
               "\"median_us\": %.3f, \"gbps\": %.2f, \"roofline\": \"%s\", \"roofline_gbps\": %.2f, "
               "\"ratio_roofline\": %.3f, ",
               *first ? "" : ",\n", c->label, where, schedule, n, threads, t->kernel * 1e6, gbps, roof_name, roof_gbps,
               t->ratio);
        if (c->saved) {
            printf("\"kept_bytes_per_element\": %.3f, \"speedup_vs_float_path\": %.3f, ", c->planes / 8.0,
                   t->vs_float);
        }
        if (t->vs_baseline > 0)
            printf("\"baseline_us\": %.3f, \"ratio_baseline\": %.3f, ", t->baseline * 1e6, t->vs_baseline);
        else
            printf("\"baseline_us\": null, \"ratio_baseline\": null, ");
        if (isnan(vs_c))
            printf("\"reference_us\": null, \"speedup_vs_reference\": null}");
        else
            printf("\"reference_us\": %.3f, \"speedup_vs_reference\": %.2f}", reference_seconds * 1e6, vs_c);
        *first = 0;
    } else {
        char thr[16] = "-", label[64];
        if (threads > 0) snprintf(thr, sizeof thr, "%d", threads);
        if (strcmp(schedule, "hand") == 0) {
            snprintf(label, sizeof label, "%s", c->label);
        } else {
            snprintf(label, sizeof label, "  [%s]", schedule); /* under the hand-scheduled row */
        }
        printf("%-32s %9zu %3s %10.3f %7.2f %13s %8.2f %6.2f ", label, n, thr, t->kernel * 1e6, gbps, roof_name,
               roof_gbps, t->ratio);
        if (t->vs_baseline > 0)
            printf("%6.2f ", t->vs_baseline);
        else
            printf("%6s ", "-");
        if (isnan(vs_c))
            printf("%7s", "-");
        else
            printf("%7.1f", vs_c);
        if (t->vs_float > 0)
            printf(" %6.2f\n", t->vs_float);
        else
            printf(" %6s\n", "-");
    }
    fflush(stdout);
}

/* Every case on each GPU backend that has a device, on device memory, against a device-to-device copy
 * moving the same bytes. Returns nonzero if a kernel fails. */
static int bench_gpus(const bench_options *o, bench_case *cases, int case_count, const buffers *b,
                      const double *reference_seconds, int samples, int *first) {
    for (int bi = 0; bi < BQ_BACKEND_COUNT; bi++) {
        bq_backend backend = (bq_backend)bi;
        char device_name[256], why[256];
        if (o->on != NULL && strcmp(o->on, bq_backend_name(backend)) != 0) continue;
        if (!bq_backend_compiled(backend) || bq_backend_device(backend, device_name, sizeof device_name) != BQ_OK) {
            if (o->on != NULL) {
                fprintf(stderr, "bitquant bench: --on %s: %s\n", o->on,
                        bq_backend_compiled(backend) ? bq_last_error() : "not compiled into this library");
                return 1;
            }
            continue;
        }
        test_device *dev = test_device_open(backend, why, sizeof why);
        if (dev == NULL) {
            fprintf(stderr, "bitquant bench: %s: %s\n", bq_backend_name(backend), why);
            continue;
        }
        size_t bytes = b->n * sizeof(float);
        device_buffers d = {dev, backend, test_device_alloc(dev, bytes), test_device_alloc(dev, bytes),
                            test_device_alloc(dev, bytes)};
        int failed = d.x == NULL || d.g == NULL || d.out == NULL || test_device_upload(dev, d.x, b->x, bytes) != 0 ||
                     test_device_upload(dev, d.g, b->g, bytes) != 0;
        if (failed)
            fprintf(stderr, "bitquant bench: %s: cannot set up %zu bytes x 3\n", bq_backend_name(backend), bytes);
        if (!o->json && !failed)
            printf("%s on %s, device memory; roofline: a device copy moving the same bytes\n", bq_backend_name(backend),
                   device_name);
        runner copy_all = {.kind = RUN_DEVICE_COPY, .b = b, .d = &d, .copy_floats = b->n};
        runner copy_half = {.kind = RUN_DEVICE_COPY, .b = b, .d = &d, .copy_floats = b->n / 2};
        for (int ci = 0; ci < case_count && !failed; ci++) {
            const bench_case *c = &cases[ci];
            /* the GPUs are timed on float32, without saved bits; registered quantizers run on the CPU only */
            if (is_typed(c) || c->saved || c->custom) continue;
            bq_params params;
            bq_quantizer *q = create_quantizer(c, &params);
            if (q == NULL) {
                failed = 1;
                break;
            }
            traffic_shape shape = shape_of(c);
            const runner *roofs[2] = {&copy_all, shape == SHAPE_MAP ? NULL : &copy_half};
            runner r = {.kind = RUN_DEVICE_KERNEL, .c = c, .q = q, .params = &params, .b = b, .d = &d};
            paired_times t;
            failed = time_against_roofline(&r, roofs, samples, &t);
            bq_destroy(q);
            if (failed) {
                fprintf(stderr, "bitquant bench: %s on %s failed: %s\n", c->label, bq_backend_name(backend),
                        bq_last_error());
                break;
            }
            print_row(o, bq_backend_name(backend), "hand", c, b->n, 0, &t, "device copy", reference_seconds[ci],
                      first);
            progress_step();
        }
        test_device_free(dev, d.x);
        test_device_free(dev, d.g);
        test_device_free(dev, d.out);
        test_device_close(dev);
        if (failed) return 1;
    }
    return 0;
}

static int cmd_bench(const bench_options *o) {
    const char *active = "?";
    if (bq_cpu_variant_active(&active) != BQ_OK) {
        fprintf(stderr, "bitquant bench: %s\n", bq_last_error());
        return 1;
    }
    bench_case cases[BENCH_MAX_CASES];
    int case_count = build_cases(cases, (int)(sizeof cases / sizeof cases[0]), o);
    if (case_count == 0) {
        fprintf(stderr, "bitquant bench: no quantizer named %s\n", o->only);
        return 2;
    }
    const int samples = o->quick ? 5 : 15;
    int on_cpu = o->on == NULL || strcmp(o->on, "cpu") == 0, gpu_cases = 0, gpus = 0;
    for (int ci = 0; ci < case_count; ci++)
        gpu_cases += !is_typed(&cases[ci]) && !cases[ci].saved && !cases[ci].custom;
    for (int bi = 0; bi < BQ_BACKEND_COUNT; bi++) {
        char device[256];
        gpus += (o->on == NULL || strcmp(o->on, bq_backend_name((bq_backend)bi)) == 0) &&
                bq_backend_compiled((bq_backend)bi) && bq_backend_device((bq_backend)bi, device, sizeof device) == BQ_OK;
    }
    progress.enabled = !o->json && isatty(STDERR_FILENO);
    progress.total = o->size_count * ((on_cpu ? o->thread_count * case_count : 0) + gpus * gpu_cases);
    if (o->json)
        printf("{\"variant\": \"%s\", \"samples\": %d, \"results\": [\n", active, samples);
    else {
        printf("bitquant bench: variant %s, median of %d samples; GB/s counts bytes read + written;\n", active,
               samples);
        printf("xroof = median over rounds of roofline time / kernel time, the two timed alternately;\n"
               "xbase = the same against the plain-C loop a user would write (tools/baseline.c, -O3 -march=native, "
               "exact), on 1 thread;\nxref = the scalar conformance reference's time / kernel time (1 thread; not a "
               "fair baseline: one call per element, no vectors)\n\n");
        printf("fwd_save / bwd_saved: bq_forward_save / bq_backward_saved keeping the bits shown (1 bit = 1/8 byte per "
               "element, instead of x's 4); xfloat = bq_forward's / bq_backward's time / theirs\n\n");
        printf("%-32s %9s %3s %10s %7s %13s %8s %6s %6s %7s %6s\n", "kernel", "n", "thr", "median us", "GB/s",
               "roofline", "roof GB/s", "xroof", "xbase", "xref", "xfloat");
    }
    int first = 1;
    for (int si = 0; si < o->size_count; si++) {
        size_t n = o->sizes[si];
        buffers b = {aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64),
                     aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64),
                     aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64), n, {NULL, NULL}, {NULL, NULL},
                     calloc(2 * ((n + 31) / 32) + 1, sizeof(uint32_t))};
        if (!b.x || !b.g || !b.out || !b.saved) {
            fprintf(stderr, "bitquant bench: cannot allocate 3 x %zu floats\n", n);
            return 1;
        }
        fill(&b, n);
        if (fill_halves(&b) != 0) {
            fprintf(stderr, "bitquant bench: cannot make the half-precision inputs: %s\n", bq_last_error());
            return 1;
        }
        /* The plain C loop is single-threaded and slow on big n: time it once per case and size. */
        double reference_seconds[BENCH_MAX_CASES];
        int reference_samples = n > ((size_t)1 << 20) ? 3 : samples;
        for (int ci = 0; ci < case_count; ci++) {
            bq_params params;
            bench_params(&cases[ci], &params);
            runner r = {.kind = RUN_REFERENCE, .c = &cases[ci], .params = &params, .b = &b, .threads = 1};
            /* the reference is float32, has no registered quantizers, and runs Pact at its default bits */
            int skip = is_typed(&cases[ci]) || cases[ci].custom || default_bits_only(&cases[ci]) ||
                       (o->quick && n > ((size_t)1 << 20));
            reference_seconds[ci] = skip ? -1.0 : time_median(&r, reference_samples);
        }
        for (int ti = 0; ti < o->thread_count && on_cpu; ti++) {
            int threads = o->threads[ti];
            bq_set_num_threads(threads);
            /* by the kernel's input type: x and g (BQ_F32), or their 16-bit copies moved as n / 2 floats */
            runner roof_copy[BQ_BF16 + 1], roof_add[BQ_BF16 + 1], roof_read[BQ_BF16 + 1];
            for (int t = BQ_F32; t <= BQ_BF16; t++) {
                roof_copy[t] = (runner){.kind = RUN_COPY, .b = &b, .threads = threads,
                                        .roof_floats = t == BQ_F32 ? 0 : n / 2, .roof_type = (bq_dtype)t};
                roof_add[t] = roof_copy[t], roof_add[t].kind = RUN_ADD;
                roof_read[t] = roof_copy[t], roof_read[t].kind = RUN_READ;
            }
            runner roof_pack = {.kind = RUN_PACK, .b = &b, .threads = threads};
            runner roof_narrow = {.kind = RUN_NARROW, .b = &b, .threads = threads};
            /* the saved bits' traffic, 1/8 byte per plane and element: written as a copy of that many bytes
             * (half read, half written), read as a read */
            runner roof_copy_bits[3], roof_read_bits[3];
            for (int planes = 1; planes <= 2; planes++) {
                roof_copy_bits[planes] = (runner){.kind = RUN_COPY, .b = &b, .threads = threads,
                                                  .roof_floats = n * planes / 64 + 1};
                roof_read_bits[planes] = (runner){.kind = RUN_READ, .b = &b, .threads = threads,
                                                  .roof_floats = n * planes / 32 + 1};
            }
            for (int ci = 0; ci < case_count; ci++) {
                const bench_case *c = &cases[ci];
                bq_params params;
                bq_quantizer *q = create_quantizer(c, &params);
                if (q == NULL) return 1;
                traffic_shape shape = shape_of(c);
                const runner *roofs[2] = {shape == SHAPE_GRAD     ? &roof_add[c->in]
                                          : shape == SHAPE_PACK   ? &roof_pack
                                          : shape == SHAPE_NARROW ? &roof_narrow
                                          : shape == SHAPE_READ   ? &roof_read[c->in]
                                                                  : &roof_copy[c->in],
                                          shape == SHAPE_REDUCE_MAP ? &roof_read[c->in] : NULL};
                if (c->saved && shape != SHAPE_REDUCE_MAP) { /* WeightDoReFa's forward keeps its read+copy */
                    roofs[0] = &roof_copy[c->in];
                    roofs[1] = c->backward ? &roof_read_bits[c->planes] : &roof_copy_bits[c->planes];
                }
                runner r = {.kind = RUN_KERNEL, .c = c, .q = q, .params = &params, .b = &b, .threads = threads};
                paired_times t;
                int failed = c->saved && c->backward &&
                             bq_forward_save_typed(q, c->in, input_of(&b, c->in), b.out, b.saved, n) != BQ_OK;
                if (failed || time_against_roofline(&r, roofs, samples, &t) != 0) {
                    fprintf(stderr, "bitquant bench: %s failed: %s\n", c->label, bq_last_error());
                    bq_destroy(q);
                    return 1;
                }
                if (c->saved) { /* against bq_forward or bq_backward on the same data, timed alternately */
                    bench_case plain = *c;
                    plain.saved = 0;
                    runner rp = r;
                    rp.c = &plain;
                    const runner *against[2] = {&rp, NULL};
                    paired_times vs;
                    if (time_against_roofline(&r, against, samples, &vs) != 0) {
                        fprintf(stderr, "bitquant bench: %s failed: %s\n", plain.label, bq_last_error());
                        bq_destroy(q);
                        return 1;
                    }
                    t.vs_float = vs.ratio;
                }
                bq_baseline_fn baseline = bq_baseline_find(c->quantizer, c->backward);
                if (threads == 1 && baseline != NULL && !c->saved && !is_typed(c) && !default_bits_only(c)) {
                    runner rb = {.kind = RUN_BASELINE, .c = c, .params = &params, .b = &b, .baseline = baseline};
                    const runner *against[2] = {&rb, NULL};
                    paired_times vb;
                    if (time_against_roofline(&r, against, samples, &vb) != 0) {
                        fprintf(stderr, "bitquant bench: %s failed: %s\n", c->label, bq_last_error());
                        bq_destroy(q);
                        return 1;
                    }
                    t.vs_baseline = vb.ratio;
                    t.baseline = vb.roofline;
                }
                print_row(o, active, "hand", c, n, threads, &t, roofline_name(c, shape), reference_seconds[ci],
                          &first);
                /* Halide's autoschedulers beside the hand schedule, for the quantizer their family is named after. */
                const bq_autoscheduled_kernel *k;
                for (size_t a = 0;
                     !c->saved && !is_typed(c) && strcmp(c->family, c->quantizer) == 0 &&
                     (k = bq_autoscheduled_find(active, c->family, a)) != NULL;
                     a++) {
                    runner ra = r;
                    ra.kind = RUN_AUTOSCHEDULED;
                    ra.autoscheduled = k;
                    if (time_against_roofline(&ra, roofs, samples, &t) != 0) {
                        fprintf(stderr, "bitquant bench: %s [%s] failed: %s\n", c->label, k->scheduler,
                                bq_last_error());
                        bq_destroy(q);
                        return 1;
                    }
                    print_row(o, active, k->scheduler, c, n, threads, &t, roofline_name(c, shape),
                              reference_seconds[ci], &first);
                }
                bq_destroy(q);
                fflush(stdout);
                progress_step();
            }
        }
        int gpu_failed = bench_gpus(o, cases, case_count, &b, reference_seconds, samples, &first);
        free(b.x);
        free(b.g);
        free(b.out);
        free(b.saved);
        for (int h = 0; h < 2; h++)
            free(b.x16[h]), free(b.g16[h]);
        if (gpu_failed) return 1;
    }
    progress_clear();
    if (o->json) printf("\n]}\n");
    return 0;
}

static int parse_list(const char *text, size_t *out, int max) {
    int count = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && count < max; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        unsigned long long v = strtoull(tok, &end, 0);
        if (*end == '^') v = 1ull << strtoull(end + 1, &end, 10); // "2^24"
        if (*end != '\0' || v == 0) {
            free(copy);
            return -1;
        }
        out[count++] = (size_t)v;
    }
    free(copy);
    return count;
}

/* --bits "1-8" or "2,4,8" (ranges and single widths, comma-separated), each in 1..24: the count, or -1. */
static int parse_bits(const char *text, size_t *out, int max) {
    int count = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        long first = strtol(tok, &end, 10), last = first;
        if (end != tok && *end == '-') {
            char *from = end + 1;
            last = strtol(from, &end, 10);
            if (end == from) end = from - 1; /* "3-": not a range */
        }
        if (end == tok || *end != '\0' || first < 1 || last > 24 || first > last || count + (last - first) >= max) {
            free(copy);
            return -1;
        }
        for (long b = first; b <= last; b++)
            out[count++] = (size_t)b;
    }
    free(copy);
    return count;
}

/* `bitquant tune`: tools/tune.py does the work, in the build tree this command was built in (it needs the
 * generators); this passes it the build's configuration and the CPU variants this machine runs. */
static int cmd_tune(int argc, char **argv) {
#ifdef BITQUANT_TUNE_SCRIPT
    if (access(BITQUANT_TUNE_CONFIG, R_OK) != 0 || access(BITQUANT_TUNE_SCRIPT, R_OK) != 0) {
        fprintf(stderr, "bitquant tune: runs from the build tree it was built in (%s is gone)\n", BITQUANT_TUNE_CONFIG);
        return 1;
    }
    char runnable[256] = "";
    for (size_t i = 0; i < bq_cpu_variant_count(); i++) {
        if (bq_cpu_variant_supported(i) != 1) continue;
        if (runnable[0] != '\0') strncat(runnable, ",", sizeof runnable - strlen(runnable) - 1);
        strncat(runnable, bq_cpu_variant_name(i), sizeof runnable - strlen(runnable) - 1);
    }
    char **args = calloc((size_t)argc + 6, sizeof *args);
    if (args == NULL) return 1;
    int k = 0;
    args[k++] = BITQUANT_PYTHON;
    args[k++] = BITQUANT_TUNE_SCRIPT;
    args[k++] = "--config";
    args[k++] = BITQUANT_TUNE_CONFIG;
    args[k++] = "--runnable";
    args[k++] = runnable;
    for (int i = 2; i < argc; i++)
        args[k++] = argv[i];
    execv(BITQUANT_PYTHON, args);
    fprintf(stderr, "bitquant tune: cannot run %s: %s\n", BITQUANT_PYTHON, strerror(errno));
    free(args);
    return 1;
#else
    (void)argc;
    (void)argv;
    fprintf(stderr, "bitquant tune: not available in a cross build (candidates must run on this machine)\n");
    return 1;
#endif
}

/* --load PATH: a shared library that bitquant_add_quantizers made (SHARED): loaded, and its <name>_register()
 * called, <name> being its file name's without "lib" and the suffix (the CMake target's). The library's
 * references to bq_register_quantizers and the Halide runtime resolve to this program's (it exports them). */
static int load_quantizers(const char *path) {
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(stderr, "bitquant: cannot load %s: %s\n", path, dlerror());
        return 1;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "lib", 3) == 0) base += 3;
    char symbol[256];
    size_t k = 0;
    for (; base[k] != '\0' && base[k] != '.' && k < sizeof symbol - 16; k++)
        symbol[k] = isalnum((unsigned char)base[k]) ? base[k] : '_';
    strcpy(symbol + k, "_register");
    bq_status (*register_all)(void);
    *(void **)&register_all = dlsym(handle, symbol);
    if (register_all == NULL) {
        fprintf(stderr, "bitquant: %s has no %s (not a library that bitquant_add_quantizers made?)\n", path, symbol);
        return 1;
    }
    if (register_all() != BQ_OK) {
        fprintf(stderr, "bitquant: %s from %s: %s\n", symbol, path, bq_last_error());
        return 1;
    }
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: bitquant list [--load LIB]...\n"
                    "       bitquant bench [--quick] [--json] [--sizes 2^16,2^24] [--threads 1,2] [--quantizer NAME]\n"
                    "                      [--bits 1-8] [--on cpu|cuda|opencl] [--load LIB]...\n"
                    "       bitquant tune [--variant V] [--families a,b] [--sizes ...] [--threads N] [--dry-run]\n"
                    "  list   quantizers, their kernels and parameters, CPU variants and the active one, GPU backends\n"
                    "  bench  median time, GB/s, ratio to same-run rooflines and speedup over plain C, per kernel,\n"
                    "         on the CPU and on each GPU backend with a device (device memory), or --on one of them\n"
                    "         (default sizes 2^16 and 2^24, threads 1 and 2; --quick: 2^16 and 2^20, 5 samples;\n"
                    "         --bits: each float32 forward with a bit width also at these, xbase and xref\n"
                    "         at Pact's default bits only)\n"
                    "  tune   sweep schedules/<variant>.sched on this machine, keep exact and faster values\n"
                    "         (from the build tree; then rebuild and bench; bitquant tune --help for more)\n"
                    "  --load LIB  register the quantizers of LIB, a SHARED library of bitquant_add_quantizers\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    if (strcmp(argv[1], "tune") == 0) return cmd_tune(argc, argv);
    /* --load LIB, for list and bench: taken out of argv here. */
    int kept = 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--load") == 0 && i + 1 < argc) {
            if (load_quantizers(argv[++i]) != 0) return 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    if (strcmp(argv[1], "list") == 0 && argc == 2) return cmd_list();
    if (strcmp(argv[1], "bench") != 0) return usage();
    bench_options o = {0};
    o.sizes[0] = (size_t)1 << 16, o.sizes[1] = (size_t)1 << 24, o.size_count = 2;
    o.threads[0] = 1, o.threads[1] = 2, o.thread_count = 2;
    int sizes_given = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            o.quick = 1;
        else if (strcmp(argv[i], "--json") == 0)
            o.json = 1;
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            o.size_count = parse_list(argv[++i], o.sizes, 8);
            sizes_given = 1;
            if (o.size_count <= 0) return usage();
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            size_t t[4];
            o.thread_count = parse_list(argv[++i], t, 4);
            if (o.thread_count <= 0) return usage();
            for (int k = 0; k < o.thread_count; k++)
                o.threads[k] = (int)t[k];
        } else if (strcmp(argv[i], "--quantizer") == 0 && i + 1 < argc) {
            o.only = argv[++i];
        } else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
            o.bits_count = parse_bits(argv[++i], o.bits, (int)(sizeof o.bits / sizeof o.bits[0]));
            if (o.bits_count <= 0) return usage();
        } else if (strcmp(argv[i], "--on") == 0 && i + 1 < argc) {
            o.on = argv[++i];
            if (strcmp(o.on, "cpu") != 0 && strcmp(o.on, "cuda") != 0 && strcmp(o.on, "opencl") != 0) return usage();
        } else {
            return usage();
        }
    }
    if (o.quick && !sizes_given) o.sizes[1] = (size_t)1 << 20;
    return cmd_bench(&o);
}
