/* A libFuzzer harness over the public API (include/bitquant.h): each input is read as one call.
 *
 * The input picks, in order: a thread count to set first (or none); a quantizer name (a real one, a near-miss
 * of one, a very long one, or raw bytes); every bq_params field (its default, an edge value: NaN, infinities,
 * -0, subnormals, huge, negative, ints out of range; or raw bits); an entry point (f32 forward and backward,
 * typed forward and backward with their types and rows x cols, forward_save and backward_saved, saved_words,
 * or the listings with indices and buffer sizes from the input) and where it runs (the CPU, or the OpenCL or
 * CUDA host-memory entry points);
 * a length (around every vector width, word and chunk edge, the parallel limit, or small and random); a
 * layout (out of place, in place, the output a few elements ahead of or behind the input, NULL arrays, byte
 * offsets 0 to 3); and the inputs (edge values, random values, raw bits).
 *
 * What it asserts (any failure aborts, which libFuzzer reports with the input):
 * - every status is a bq_status, bq_last_error() is never NULL and is NUL-terminated, and a failed call has
 *   a message;
 * - a rejected call leaves its outputs byte for byte as they were (canary-filled), and a rejected bq_create
 *   its out pointer;
 * - a successful call equals the scalar reference (tests/reference.c; SwishSign's backward within the spec's
 *   tolerance), writes nothing past its outputs, and gives the same bytes in place as out of place;
 * - a partial overlap of an output with an input is BQ_E_INVALID (the header's rule).
 * ctest runs it once per CPU variant (BITQUANT_CPU), so every variant is held to the same reference, and once
 * with BITQUANT_MAX_CHUNK=1000, so that calls are cut into chunks. AddressSanitizer and UBSan watch it all. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "test_common.h"

/* ---- reading the input ---- */

typedef struct {
    const uint8_t *data;
    size_t size, at;
} reader;

static uint8_t byte(reader *r) { return r->at < r->size ? r->data[r->at++] : 0; }

static uint32_t word(reader *r) {
    uint32_t w = 0;
    for (int i = 0; i < 4; i++)
        w = w << 8 | byte(r);
    return w;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const float FLOAT_EDGES[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 3.0f, 5.0f,
                                    1e-45f, -1e-45f, 1e-38f, FLT_MAX, -FLT_MAX, 1e30f, -1e30f, 0.1f, 1.3f, 100.0f,
                                    1e-7f, 0x1p-126f, 0x1.fffffep-1f, 1.0000001f};
static const double DOUBLE_EDGES[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0, 0.5, 4.0, 10.0, 1e300,
                                      -1e300, 5e-324, DBL_MAX, 1e-10, 1e10, 0.999999, 3.4e38, 3.5e38};
static const int INT_EDGES[] = {0, 1, 2, 3, 7, 8, 16, 23, 24, 25, 31, 32, 33, -1, -24, 255, 256, INT32_MAX, INT32_MIN};
static const int THREAD_EDGES[] = {1, 2, 3, 4, 0, -1, 256, 257, INT32_MIN};
/* Lengths around the vector widths (4 to 64 floats), the 32-bit words, the typed blocks, the chunk of 1000
 * that ctest's chunked run uses, and the kernels' parallel limit of 2^18. */
static const size_t LENGTHS[] = {0,   1,   2,   3,   4,   5,    7,    8,    9,    15,   16,    17,    31,    32,
                                 33,  47,  48,  63,  64,  65,   96,   127,  128,  129,  255,   256,   257,   511,
                                 512, 513, 999, 1000, 1001, 1023, 1024, 1025, 1999, 2000, 2001, 4095, 4096, 4097,
                                 65535, 65536, 65537, 262143, 262144, 262145, 300001};

static float pick_float(reader *r, float normal) {
    uint8_t how = byte(r);
    if (how < 128) return normal;
    if (how < 240) return FLOAT_EDGES[how % COUNT(FLOAT_EDGES)];
    uint32_t bits = word(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static double pick_double(reader *r, double normal) {
    uint8_t how = byte(r);
    if (how < 128) return normal;
    if (how < 240) return DOUBLE_EDGES[how % COUNT(DOUBLE_EDGES)];
    uint64_t bits = (uint64_t)word(r) << 32 | word(r);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static int pick_int(reader *r, int normal) {
    uint8_t how = byte(r);
    if (how < 128) return normal;
    if (how < 240) return INT_EDGES[how % COUNT(INT_EDGES)];
    return (int)word(r);
}

/* ---- assertions ---- */

static void require(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_api: %s (last error: \"%s\")\n", what, bq_last_error());
        abort();
    }
}

static void check_status(bq_status s) {
    require(s == BQ_OK || s == BQ_E_INVALID || s == BQ_E_UNKNOWN || s == BQ_E_UNSUPPORTED || s == BQ_E_NOMEM ||
                s == BQ_E_RUNTIME || s == BQ_E_NO_DEVICE,
            "a status outside bq_status");
    const char *message = bq_last_error();
    require(message != NULL, "bq_last_error() is NULL");
    require(memchr(message, '\0', 4096) != NULL, "bq_last_error() is not NUL-terminated");
    if (s != BQ_OK) require(message[0] != '\0', "a failed call left no message");
}

/* ---- the call ---- */

enum entry { FORWARD, BACKWARD, FORWARD_TYPED, BACKWARD_TYPED, FORWARD_SAVE, BACKWARD_SAVED, SAVED_WORDS, INTROSPECT,
             ENTRIES };
/* Where a call runs: the CPU, or a GPU backend's host-memory entry points (OpenCL on PoCL here; CUDA returns
 * BQ_E_NO_DEVICE without a driver, which is checked as any other refusal). */
enum place { CPU, OPENCL_HOST, CUDA_HOST };
enum layout { APART, IN_PLACE, AHEAD, BEHIND, NULL_INPUT, NULL_OUTPUT, LAYOUTS };

#define GUARD 0xA5
#define SLACK 256 /* bytes checked before and after an output; every array has twice that either side */

typedef struct {
    enum entry entry;
    enum place place;
    bq_dtype in, out;
    size_t rows, cols, n;
} call;

/* Bytes of a call's output. */
static size_t out_bytes(const call *c) { return test_tensor_bytes(c->out, c->rows, c->cols); }

static void make_inputs(reader *r, bq_dtype t, unsigned char *p, size_t n) {
    test_rng rng = test_rng_seed(word(r));
    uint8_t mix = byte(r);
    for (size_t i = 0; i < n; i++) {
        uint32_t pick = test_rng_below(&rng, 16);
        float v = pick < (mix & 7)  ? FLOAT_EDGES[test_rng_below(&rng, COUNT(FLOAT_EDGES))]
                  : pick < 10       ? test_rng_uniform(&rng, -3.0f, 3.0f)
                  : pick < 12       ? test_rng_uniform(&rng, -0.01f, 0.01f)
                                    : test_rng_wide(&rng);
        if (pick == 15 && t != BQ_F32) {
            uint16_t h = (uint16_t)test_rng_next(&rng);
            memcpy(p + 2 * i, &h, 2);
        } else {
            test_store(t, p, i, v);
        }
    }
}

/* Runs the entry point on x (and g, saved) into out (and out2, the saved words of forward_save). */
static bq_status run(const call *c, const bq_quantizer *q, const void *x, const void *g, void *out, void *out2) {
    if (c->place != CPU) {
        bq_backend b = c->place == OPENCL_HOST ? BQ_BACKEND_OPENCL : BQ_BACKEND_CUDA;
        switch (c->entry) {
        case FORWARD: return bq_device_forward_host(q, b, x, out, c->n);
        case BACKWARD: return bq_device_backward_host(q, b, x, g, out, c->n);
        case FORWARD_TYPED: return bq_device_forward_typed_host(q, b, c->in, x, c->out, out, c->rows, c->cols);
        case BACKWARD_TYPED: return bq_device_backward_typed_host(q, b, c->in, x, g, out, c->n);
        case FORWARD_SAVE: return bq_device_forward_save_host(q, b, c->in, x, out, out2, c->n);
        case BACKWARD_SAVED: return bq_device_backward_saved_host(q, b, c->in, x, g, out, c->n);
        default: return BQ_E_INVALID;
        }
    }
    switch (c->entry) {
    case FORWARD: return bq_forward(q, x, out, c->n);
    case BACKWARD: return bq_backward(q, x, g, out, c->n);
    case FORWARD_TYPED: return bq_forward_typed(q, c->in, x, c->out, out, c->rows, c->cols);
    case BACKWARD_TYPED: return bq_backward_typed(q, c->in, x, g, out, c->n);
    case FORWARD_SAVE: return bq_forward_save_typed(q, c->in, x, out, out2, c->n);
    case BACKWARD_SAVED: return bq_backward_saved_typed(q, c->in, x, g, out, c->n);
    default: return BQ_E_INVALID;
    }
}

/* The listings, with indices and sizes from the input: statuses, and strings NUL-terminated inside their
 * buffers, nothing written past them. */
static void introspect(reader *r) {
    uint32_t index = word(r);
    bq_quantizer_info info;
    bq_status s = bq_quantizer_info_at(index, byte(r) & 1 ? NULL : &info);
    check_status(s);
    if (s == BQ_OK) require(index < bq_quantizer_count() && info.name != NULL, "bq_quantizer_info_at: a bad entry");
    const char *name = bq_cpu_variant_name(index);
    require((name != NULL) == (index < bq_cpu_variant_count()), "bq_cpu_variant_name: NULL exactly past the end");
    int supported = bq_cpu_variant_supported(index);
    require(index < bq_cpu_variant_count() ? supported == 0 || supported == 1 : supported == -1,
            "bq_cpu_variant_supported: 0 or 1, -1 past the end");
    bq_backend backend = (bq_backend)(int)(byte(r) % 5) - 1;
    int known = backend == BQ_BACKEND_CUDA || backend == BQ_BACKEND_OPENCL;
    require((bq_backend_name(backend) != NULL) == known, "bq_backend_name: NULL exactly for an unknown backend");
    int compiled = bq_backend_compiled(backend);
    require(compiled == 0 || compiled == 1, "bq_backend_compiled: 0 or 1");
    static const size_t SIZES[] = {0, 1, 2, 7, 16, 256};
    size_t size = SIZES[byte(r) % COUNT(SIZES)];
    char buffer[256 + SLACK];
    memset(buffer, GUARD, sizeof buffer);
    s = bq_backend_device(backend, buffer, size);
    check_status(s);
    require(test_bytes_are(buffer + size, SLACK, GUARD), "bq_backend_device wrote past its buffer");
    if (s == BQ_OK && size > 0) require(memchr(buffer, '\0', size) != NULL, "bq_backend_device: no NUL in the buffer");
}

static int is_backward(enum entry e) { return e == BACKWARD || e == BACKWARD_TYPED || e == BACKWARD_SAVED; }

/* The reference's result for a successful call, into want (type c->out), from the widened inputs. */
static int reference(const call *c, const char *name, const bq_params *p, const float *wx, const float *wg,
                     float *ref, unsigned char *want) {
    bq_status s = is_backward(c->entry) ? ref_backward(name, p, wx, wg, ref, c->n) : ref_forward(name, p, wx, ref, c->n);
    if (s != BQ_OK) return 0;
    test_pack_reference(c->out, ref, want, c->rows, c->cols);
    return 1;
}

static unsigned char *arena(size_t bytes) {
    unsigned char *p = malloc(bytes + 4 * SLACK);
    require(p != NULL, "the harness is out of memory");
    memset(p, GUARD, bytes + 4 * SLACK);
    return p;
}

static void one_call(reader *r, const char *name, const bq_params *p, const bq_quantizer *q) {
    call c = {(enum entry)(byte(r) % ENTRIES), CPU, BQ_F32, BQ_F32, 1, 0, 0};
    if (c.entry == INTROSPECT) {
        introspect(r);
        return;
    }
    uint8_t where = byte(r);
    c.place = where < 216 ? CPU : where < 252 ? OPENCL_HOST : CUDA_HOST;
    uint8_t types = byte(r);
    size_t length = byte(r) < 200 ? LENGTHS[byte(r) % COUNT(LENGTHS)] : (size_t)(word(r) % 5000);
    enum layout layout = (enum layout)(byte(r) % LAYOUTS);
    size_t offset = byte(r) % 4, shift = 1 + byte(r) % 9;
    if (c.entry == SAVED_WORDS) {
        size_t words = 0;
        bq_status s = bq_saved_words(q, length, &words);
        check_status(s);
        size_t plane = (length + 31) / 32;
        if (s == BQ_OK) require(words == 0 || words == plane || words == 2 * plane, "bq_saved_words: not 0, 1 or 2 planes");
        return;
    }
    static const bq_dtype FLOATS[] = {BQ_F32, BQ_F16, BQ_BF16}, ALL[] = {BQ_F32, BQ_F16, BQ_BF16, BQ_I8, BQ_BIT};
    if (c.entry != FORWARD && c.entry != BACKWARD) {
        c.in = FLOATS[types % 3];
        c.out = c.entry == FORWARD_TYPED ? ALL[(types >> 2) % 5] : c.in;
    }
    if (c.entry == FORWARD_TYPED && (types & 0x80)) c.rows = 1 + byte(r) % 9;
    c.cols = c.rows > 1 ? length / c.rows + length % 7 : length;
    c.n = c.rows * c.cols;
    size_t words = 0; /* saved words of n elements; one plane where the quantizer keeps none (then refused) */
    if (c.entry == FORWARD_SAVE || c.entry == BACKWARD_SAVED) {
        if (bq_saved_words(q, c.n, &words) != BQ_OK || words == 0) words = (c.n + 31) / 32;
    }
    size_t es = test_elem_size(c.in), fb = c.n * es, yb = out_bytes(&c), sb = words * 4;
    /* xf: the float inputs; x: what the call takes as its first array (the saved words for backward_saved). */
    size_t most = yb > fb ? yb : fb; /* an output may be put over either input */
    unsigned char *xfa = arena(most), *ga = arena(most), *ya = arena(most), *sa = arena(sb);
    unsigned char *xf = xfa + 2 * SLACK + offset, *g = ga + 2 * SLACK + offset, *y = ya + 2 * SLACK + offset;
    unsigned char *s = sa + 2 * SLACK;
    unsigned char *x = c.entry == BACKWARD_SAVED ? s : xf;
    float *wx = malloc((c.n + 1) * sizeof *wx), *wg = malloc((c.n + 1) * sizeof *wg), *ref = malloc((c.n + 1) * 4);
    unsigned char *want = malloc(yb + 1), *first = malloc(yb + 1);
    unsigned char *before = malloc(yb + 2 * SLACK + 1), *saved_before = malloc(sb + 2 * SLACK + 1);
    require(wx && wg && ref && want && first && before && saved_before, "the harness is out of memory");
    make_inputs(r, c.in, xf, c.n);
    make_inputs(r, c.in, g, c.n);
    for (size_t i = 0; i < c.n; i++) {
        wx[i] = test_load(c.in, xf, i);
        wg[i] = test_load(c.in, g, i);
    }
    if (c.entry == BACKWARD_SAVED) { /* the saved words of xf, from the call that makes them */
        unsigned char *scratch = arena(fb);
        bq_status made = bq_forward_save_typed(q, c.in, xf, scratch + 2 * SLACK, (uint32_t *)(void *)s, c.n);
        check_status(made);
        free(scratch);
        if (made != BQ_OK) memset(s, 0x3C, sb); /* no such words: the call below must refuse */
    }

    /* Where the output goes: apart, in place, a few elements ahead of or behind its input; or a NULL. */
    unsigned char *out = y, *base = is_backward(c.entry) ? g : xf;
    const void *in_x = x;
    int in_place = 0, partial = 0;
    switch (layout) {
    case IN_PLACE:
        if (is_backward(c.entry) || (c.entry != FORWARD_SAVE && es == test_elem_size(c.out) && c.out != BQ_BIT)) {
            out = base;
            in_place = 1;
        }
        break;
    case AHEAD:
    case BEHIND:
        if (fb > 0 && yb > 0) { /* where the two would not overlap, the output stays apart */
            size_t step = shift * (c.out == BQ_BIT ? 4 : test_elem_size(c.out));
            partial = layout == AHEAD ? step < fb : step < yb;
            if (partial) out = layout == AHEAD ? base + step : base - step;
        }
        break;
    case NULL_INPUT: in_x = NULL; break;
    case NULL_OUTPUT: out = NULL; break;
    default: break;
    }
    /* The output's bytes and SLACK either side, and the saved words, as they were before the call. */
    if (out != NULL) memcpy(before, out - SLACK, yb + 2 * SLACK);
    memcpy(saved_before, s - SLACK, sb + 2 * SLACK);

    bq_status st = run(&c, q, in_x, g, out, s);
    check_status(st);
    if (partial) require(st != BQ_OK, "a partial overlap of the output and an input was accepted");
    if (st != BQ_OK) {
        if (out != NULL) require(memcmp(before, out - SLACK, yb + 2 * SLACK) == 0, "a rejected call wrote its output");
        if (c.entry != BACKWARD_SAVED) {
            require(memcmp(saved_before, s - SLACK, sb + 2 * SLACK) == 0, "a rejected call wrote its saved words");
        }
    } else if (c.n > 0 && in_x != NULL && out != NULL) {
        require(reference(&c, name, p, wx, wg, ref, want), "the reference refused a call the library ran");
        int swish_backward = strcmp(name, "swishsign") == 0 && is_backward(c.entry);
        size_t count = c.out == BQ_BIT ? yb / 4 : c.n;
        for (size_t i = 0; i < count; i++) {
            if (!swish_backward) {
                require(test_same_element(c.out, out, want, i), "a result differs from the reference");
            } else if (c.out == BQ_F32) { /* 16-bit SwishSign gradients: in place against out of place only */
                float got;
                memcpy(&got, out + 4 * i, 4);
                require(test_output_matches(name, p, 1, wx[i], wg[i], got, ref[i]), "SwishSign's backward is off");
            }
        }
        require(test_bytes_are(out + yb, SLACK, GUARD) || in_place, "wrote past the output");
        require(test_bytes_are(out - SLACK, SLACK, GUARD) || in_place, "wrote before the output");
        int can_in_place = is_backward(c.entry) || (c.entry != FORWARD_SAVE && es == test_elem_size(c.out) &&
                                                    c.out != BQ_BIT);
        if (!in_place && can_in_place) { /* the same call in place: the same bytes */
            memcpy(first, out, yb);
            unsigned char *copy = arena(fb), *at = copy + 2 * SLACK + offset;
            memcpy(at, base, fb);
            bq_status again = is_backward(c.entry) ? run(&c, q, x, at, at, s) : run(&c, q, at, g, at, s);
            check_status(again);
            require(again == BQ_OK, "in place refused what out of place ran");
            require(memcmp(at, first, yb) == 0, "in place differs from out of place");
            free(copy);
        }
    }
    free(before), free(saved_before), free(xfa), free(ga), free(ya), free(sa);
    free(wx), free(wg), free(ref), free(want), free(first);
}

static const char *pick_name(reader *r, char *buffer, size_t size) {
    const char *real = TEST_QUANTIZERS[byte(r) % TEST_QUANTIZER_COUNT].name;
    uint8_t how = byte(r);
    size_t len = strlen(real);
    switch (how % 8) {
    case 0:
    case 1:
    case 2: return real;
    case 3: snprintf(buffer, size, "%.*s", (int)(len > 1 ? len - 1 : 0), real); return buffer; /* one short */
    case 4: snprintf(buffer, size, "%s%c", real, (char)(byte(r) | 1)); return buffer;             /* one more */
    case 5:                                                                                       /* one changed */
        snprintf(buffer, size, "%s", real);
        buffer[byte(r) % len] ^= (char)(1 + byte(r) % 127);
        return buffer;
    case 6: /* very long */
        for (size_t i = 0; i + 1 < size; i++)
            buffer[i] = real[i % len];
        buffer[size - 1] = '\0';
        return buffer;
    default: { /* raw bytes */
        size_t n = byte(r) % 64;
        for (size_t i = 0; i < n; i++)
            buffer[i] = (char)byte(r);
        buffer[n] = '\0';
        return buffer;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size, 0};
    uint8_t threads = byte(&r);
    if (threads >= 200) {
        bq_status s = bq_set_num_threads(THREAD_EDGES[threads % COUNT(THREAD_EDGES)]);
        check_status(s);
    }
    static char name_buffer[5000];
    const char *name = pick_name(&r, name_buffer, sizeof name_buffer);
    bq_params p;
    bq_params_init(&p);
    if (byte(&r) & 1) {
        p.swish_beta = pick_float(&r, p.swish_beta);
        p.dorefa_bits = pick_int(&r, p.dorefa_bits);
        p.progressive_scale = pick_double(&r, p.progressive_scale);
        p.progressive_alpha = pick_double(&r, p.progressive_alpha);
        p.progressive_beta = pick_double(&r, p.progressive_beta);
        p.training = pick_int(&r, p.training);
        p.cancel_threshold = pick_float(&r, p.cancel_threshold);
    }
    bq_quantizer *const sentinel = (bq_quantizer *)(uintptr_t)0x5A5A5A50u;
    bq_quantizer *q = sentinel;
    int defaults = byte(&r) == 255;
    if (defaults) bq_params_init(&p);
    bq_status s = bq_create(name, defaults ? NULL : &p, &q);
    check_status(s);
    int known = 0;
    for (size_t i = 0; i < TEST_QUANTIZER_COUNT; i++)
        known |= strcmp(TEST_QUANTIZERS[i].name, name) == 0;
    if (s != BQ_OK) {
        require(q == sentinel, "a rejected bq_create wrote its out pointer");
        require(known || s == BQ_E_UNKNOWN, "an unknown name was not BQ_E_UNKNOWN");
        return 0;
    }
    require(known, "bq_create accepted a name not in the table");
    /* The reference checks every field; the library only those the quantizer reads (and the cancellation). */
    bq_params used = test_default_params();
    const test_quantizer *tq = NULL;
    for (size_t i = 0; i < TEST_QUANTIZER_COUNT; i++)
        if (strcmp(TEST_QUANTIZERS[i].name, name) == 0) tq = &TEST_QUANTIZERS[i];
    if (defaults) used = p;
    else {
        used.cancel_threshold = p.cancel_threshold;
        if (test_reads(tq, "swish_beta")) used.swish_beta = p.swish_beta;
        if (test_reads(tq, "dorefa_bits")) used.dorefa_bits = p.dorefa_bits;
        if (test_reads(tq, "progressive_scale")) used.progressive_scale = p.progressive_scale;
        if (test_reads(tq, "progressive_alpha")) used.progressive_alpha = p.progressive_alpha;
        if (test_reads(tq, "progressive_beta")) used.progressive_beta = p.progressive_beta;
        if (test_reads(tq, "training")) used.training = p.training;
    }
    one_call(&r, name, &used, q);
    bq_destroy(q);
    return 0;
}
