/* Helpers the test programs share: the kernel table as data, a deterministic generator, guarded buffers.
 * Header-only (static functions), so each test stays one source file plus the reference. */
#ifndef BITQUANT_TESTS_COMMON_H
#define BITQUANT_TESTS_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"

/* CHECK(cond, printf arguments): a failed check prints its line and counts in test_failures() (the test
 * reports the count and fails if it is not 0). */
static inline int *test_failure_count(void) {
    static int count;
    return &count;
}
static inline int test_failures(void) { return *test_failure_count(); }
#define CHECK(cond, ...)                                                                                             \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            (*test_failure_count())++;                                                                               \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                              \
            printf(__VA_ARGS__);                                                                                     \
            printf("\n");                                                                                            \
        }                                                                                                            \
    } while (0)

/* Every quantizer of the kernel table, with the bq_params fields it reads. */
typedef struct {
    const char *name;
    const char *fields;
} test_quantizer;

static const test_quantizer TEST_QUANTIZERS[] = {
#define BQ_QUANTIZER(name, forward, backward, mapping, fields, save, need) {#name, fields},
#include "kernels.def"
};
#define TEST_QUANTIZER_COUNT (sizeof TEST_QUANTIZERS / sizeof TEST_QUANTIZERS[0])

static inline int test_reads(const test_quantizer *q, const char *field) { return strstr(q->fields, field) != NULL; }

static inline bq_params test_default_params(void) {
    bq_params p;
    p.swish_beta = 5.0f;
    p.dorefa_bits = 1;
    p.progressive_scale = 0.0;
    p.progressive_alpha = 4.0;
    p.progressive_beta = 10.0;
    p.training = 1;
    p.cancel_threshold = 0.0f;
    return p;
}

/* Whether one output element matches the reference's: bit for bit (spec section 7), except SwishSign's
 * backward inside the cancellation mask, which is within tolerance (outside it is an exact +0). */
static inline int test_output_matches(const char *name, const bq_params *p, int backward, float x, float g, float ours,
                                      float ref) {
    int cancelled = p->cancel_threshold > 0.0f && !(fabsf(x) <= p->cancel_threshold);
    if (backward && !cancelled && strcmp(name, "swishsign") == 0) {
        return ref_swish_backward_close(x, g, ref_swish_beta(p), ours, ref);
    }
    return ref_same(ours, ref);
}

/* The 16-bit float conversions the typed tests check against, written from the IEEE 754 definitions (not the
 * kernels' own), and the element types' sizes and spellings. */
static inline uint32_t test_bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* binary16: 1 sign, 5 exponent (bias 15), 10 fraction bits; bfloat16: 1, 8 (bias 127), 7. A finite value is
 * rounded to the nearest representable one, ties to the one with an even last fraction bit; past the
 * largest finite value (beyond its half-way point to the next power of two) it is infinity. */
static inline uint16_t test_round_to_16(float f, int exponent_bits, int fraction_bits) {
    const int bias = (1 << (exponent_bits - 1)) - 1, max_exponent = (1 << exponent_bits) - 1;
    uint16_t sign = (uint16_t)((test_bits_of(f) >> 31) << 15);
    if (isnan(f)) return (uint16_t)(sign | (max_exponent << fraction_bits) | (1u << (fraction_bits - 1)));
    double a = fabs((double)f);
    if (isinf(f)) return (uint16_t)(sign | (max_exponent << fraction_bits));
    if (a == 0.0) return sign;
    int e;
    frexp(a, &e); /* a = m 2^e, m in [0.5, 1): the unbiased exponent is e - 1 */
    int exponent = e - 1;
    if (exponent < 1 - bias) exponent = 1 - bias; /* subnormal: the fixed scale of the smallest exponent */
    double scaled = ldexp(a, fraction_bits - exponent); /* exact: a power-of-two scaling */
    double q = rint(scaled);                             /* to nearest, ties to even */
    if (q >= ldexp(1.0, fraction_bits + 1)) {            /* rounded up to the next power of two */
        q /= 2.0;
        exponent++;
    }
    if (exponent + bias >= max_exponent) return (uint16_t)(sign | (max_exponent << fraction_bits));
    unsigned fraction = (unsigned)q;
    unsigned biased = fraction >= (1u << fraction_bits) ? (unsigned)(exponent + bias) : 0u; /* else subnormal */
    return (uint16_t)(sign | (biased << fraction_bits) | (fraction & ((1u << fraction_bits) - 1)));
}

static inline float test_widen_16(uint16_t h, int exponent_bits, int fraction_bits) {
    const int bias = (1 << (exponent_bits - 1)) - 1, max_exponent = (1 << exponent_bits) - 1;
    int sign = h >> 15;
    int biased = (h >> fraction_bits) & max_exponent;
    unsigned fraction = h & ((1u << fraction_bits) - 1);
    double v;
    if (biased == max_exponent) {
        v = fraction ? NAN : INFINITY;
    } else if (biased == 0) {
        v = ldexp((double)fraction, 1 - bias - fraction_bits);
    } else {
        v = ldexp((double)(fraction | (1u << fraction_bits)), biased - bias - fraction_bits);
    }
    return (float)(sign ? -v : v);
}

static inline size_t test_elem_size(bq_dtype t) { return t == BQ_F32 ? 4 : t == BQ_I8 ? 1 : t == BQ_BIT ? 4 : 2; }
static inline const char *test_type_name(bq_dtype t) {
    static const char *const names[] = {"f32", "f16", "bf16", "i8", "bit"};
    return names[t];
}

/* Element i of an array of type t (not BIT), widened to float32. */
static inline float test_load(bq_dtype t, const void *p, size_t i) {
    uint16_t h;
    switch (t) {
    case BQ_F32: {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    case BQ_I8:
        return (float)((const int8_t *)p)[i];
    default:
        memcpy(&h, (const char *)p + 2 * i, 2);
        return t == BQ_F16 ? test_widen_16(h, 5, 10) : test_widen_16(h, 8, 7);
    }
}

/* v stored as element i of type t (not BIT), rounded by the reference conversion. */
static inline void test_store(bq_dtype t, void *p, size_t i, float v) {
    uint16_t h;
    switch (t) {
    case BQ_F32:
        memcpy((char *)p + 4 * i, &v, 4);
        return;
    case BQ_I8:
        ((int8_t *)p)[i] = (int8_t)v;
        return;
    default:
        h = t == BQ_F16 ? test_round_to_16(v, 5, 10) : test_round_to_16(v, 8, 7);
        memcpy((char *)p + 2 * i, &h, 2);
        return;
    }
}

/* Bytes of a rows x cols tensor of type t. */
static inline size_t test_tensor_bytes(bq_dtype t, size_t rows, size_t cols) {
    return t == BQ_BIT ? rows * ((cols + 31) / 32) * 4 : rows * cols * test_elem_size(t);
}

/* The reference's rows x cols output of type t from its float32 results f: BIT packed row by row. */
static inline void test_pack_reference(bq_dtype t, const float *f, void *out, size_t rows, size_t cols) {
    if (t != BQ_BIT) {
        for (size_t i = 0; i < rows * cols; i++)
            test_store(t, out, i, f[i]);
        return;
    }
    size_t words = (cols + 31) / 32;
    uint32_t *w = out;
    memset(w, 0, rows * words * 4);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            if (f[r * cols + c] < 0.0f) w[r * words + c / 32] |= 1u << (c % 32);
        }
    }
}

/* Whether element i of got and want (type t) is the same: bit for bit, or both NaN. */
static inline int test_same_element(bq_dtype t, const void *got, const void *want, size_t i) {
    if (t == BQ_BIT || t == BQ_I8) {
        size_t s = test_elem_size(t);
        return memcmp((const char *)got + s * i, (const char *)want + s * i, s) == 0;
    }
    float a = test_load(t, got, i), b = test_load(t, want, i);
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp((const char *)got + test_elem_size(t) * i, (const char *)want + test_elem_size(t) * i, test_elem_size(t)) == 0;
}

/* xorshift64*: small, deterministic, good enough to spread test inputs. */
typedef struct {
    uint64_t state;
} test_rng;

static inline test_rng test_rng_seed(uint64_t seed) {
    test_rng r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
    if (r.state == 0) r.state = 1;
    return r;
}

static inline uint64_t test_rng_next(test_rng *r) {
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545F4914F6CDD1Dull;
}

static inline uint32_t test_rng_below(test_rng *r, uint32_t bound) {
    return (uint32_t)((test_rng_next(r) >> 32) % bound);
}

/* Uniform in [lo, hi), from 24 random bits. */
static inline float test_rng_uniform(test_rng *r, float lo, float hi) {
    float unit = (float)(test_rng_next(r) >> 40) * 0x1p-24f;
    return lo + (hi - lo) * unit;
}

/* Random sign, exponent uniform over the normal range (so magnitudes are log-uniform), random mantissa;
 * one in 32 is subnormal. Always finite. */
static inline float test_rng_wide(test_rng *r) {
    uint64_t bits = test_rng_next(r);
    uint32_t sign = (uint32_t)(bits >> 63) << 31;
    uint32_t mantissa = (uint32_t)(bits >> 8) & 0x7fffffu;
    uint32_t exponent = (bits & 31) == 0 ? 0u : 1u + (uint32_t)((bits >> 40) % 254u);
    uint32_t u = sign | exponent << 23 | mantissa;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float test_float_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A buffer with guard zones: `floats` usable elements after up to 3 floats of offset, inside an allocation
 * aligned to 64 bytes. The guard zones (everything before the range, TEST_GUARD_FLOATS after it) are filled
 * with GUARD_BYTE and checked; the rest of the allocation is not touched, so short checks stay cheap. */
#define TEST_GUARD_FLOATS 64
#define TEST_GUARD_BYTE 0x5A
typedef struct {
    float *base;
} test_buffer;

static inline int test_buffer_alloc(test_buffer *b, size_t floats) {
    size_t total = TEST_GUARD_FLOATS + 3 + floats + TEST_GUARD_FLOATS;
    size_t bytes = (total * sizeof(float) + 63) / 64 * 64;
    b->base = (float *)aligned_alloc(64, bytes);
    return b->base != NULL;
}

static inline void test_buffer_free(test_buffer *b) {
    free(b->base);
    b->base = NULL;
}

/* The element range [offset, offset+n) of the buffer; offset 0 is 64-byte aligned. */
static inline float *test_buffer_at(const test_buffer *b, size_t offset) {
    return b->base + TEST_GUARD_FLOATS + offset;
}

/* Fills the guards and the range with GUARD_BYTE, then copies src (if any) into the range. */
static inline void test_buffer_fill(test_buffer *b, size_t offset, const float *src, size_t n) {
    float *at = test_buffer_at(b, offset);
    memset(b->base, TEST_GUARD_BYTE, (size_t)(at - b->base) * sizeof(float));
    if (src != NULL && n > 0) {
        memcpy(at, src, n * sizeof(float));
    } else {
        memset(at, TEST_GUARD_BYTE, n * sizeof(float));
    }
    memset(at + n, TEST_GUARD_BYTE, TEST_GUARD_FLOATS * sizeof(float));
}

static inline int test_bytes_are(const void *p, size_t bytes, unsigned char value) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < bytes; i++) {
        if (c[i] != value) return 0;
    }
    return 1;
}

/* Whether the guard zones around [offset, offset+n) still hold GUARD_BYTE. */
static inline int test_guards_intact(const test_buffer *b, size_t offset, size_t n) {
    float *at = test_buffer_at(b, offset);
    return test_bytes_are(b->base, (size_t)(at - b->base) * sizeof(float), TEST_GUARD_BYTE) &&
           test_bytes_are(at + n, TEST_GUARD_FLOATS * sizeof(float), TEST_GUARD_BYTE);
}

#endif
