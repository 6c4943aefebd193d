/* The public API (include/bitquant.h): the quantizer registry built from generators/kernels.def,
 * argument checks, and dispatch to the selected CPU variant's kernels. */
#include "internal.h"

#include <HalideRuntime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const bq_entry entries[] = {
#define BQ_QUANTIZER(name, fwd, bwd, mapping, fields, save, need) \
    {#name, BQ_FAMILY_##fwd, BQ_FAMILY_##bwd, #fwd, #bwd, BQ_MAP_##mapping, fields, BQ_FAMILY_##save, BQ_NEED_##need},
#include "kernels.def"
};

static const size_t entry_count = sizeof entries / sizeof entries[0];

size_t bq_quantizer_count(void) { return entry_count; }

bq_status bq_quantizer_info_at(size_t index, bq_quantizer_info *out) {
    if (out == NULL) return bq_fail(BQ_E_INVALID, "bq_quantizer_info_at: out is NULL");
    if (index >= entry_count) {
        return bq_fail(BQ_E_INVALID, "bq_quantizer_info_at: index %zu >= %zu quantizers", index, entry_count);
    }
    const bq_entry *e = &entries[index];
    *out = (bq_quantizer_info){e->name, e->forward_name, e->backward_name, e->fields};
    return BQ_OK;
}

bq_status bq_create(const char *name, const bq_params *p, bq_quantizer **out) {
    if (out == NULL) return bq_fail(BQ_E_INVALID, "bq_create: out is NULL");
    if (name == NULL) return bq_fail(BQ_E_INVALID, "bq_create: name is NULL");
    const bq_entry *entry = NULL;
    for (size_t i = 0; i < entry_count && entry == NULL; i++) {
        if (strcmp(entries[i].name, name) == 0) entry = &entries[i];
    }
    if (entry == NULL) return bq_fail(BQ_E_UNKNOWN, "bq_create: no quantizer named \"%s\"", name);
    bq_params defaults;
    if (p == NULL) {
        bq_params_init(&defaults);
        p = &defaults;
    }
    bq_scalars scalars;
    bq_status status = bq_scalars_from_params(p, entry->mapping, &scalars);
    if (status != BQ_OK) return status;
    const bq_variant *variant = NULL;
    status = bq_variant_select(&variant);
    if (status != BQ_OK) return status;
    bq_quantizer *q = malloc(sizeof *q);
    if (q == NULL) return bq_fail(BQ_E_NOMEM, "bq_create: out of memory");
    *q = (bq_quantizer){entry, variant->kernels, scalars};
    *out = q;
    return BQ_OK;
}

void bq_destroy(bq_quantizer *q) { free(q); }

static int is_float(bq_dtype t) { return t == BQ_F32 || t == BQ_F16 || t == BQ_BF16; }

static const char *type_name(bq_dtype t) { return bq_dtypes[t].name; }

/* The family that computes q's forward into out_type, or BQ_FAMILY_COUNT after setting the message. */
static bq_family forward_family(const char *fn, const bq_quantizer *q, bq_dtype x_type, bq_dtype y_type) {
    bq_family family = q->entry->forward;
    /* ProgressiveSign in eval mode is sign exactly: its I8 and BIT outputs are sign's. */
    if (!is_float(y_type) && q->entry->mapping == BQ_MAP_PROGRESSIVE) {
        if (q->scalars.forward_p1 != 0.0f) {
            bq_fail(BQ_E_UNSUPPORTED, "%s: progressive_sign with training = 1 has outputs other than -1 and +1, so no %s "
                    "output (set training = 0 for sign's)", fn, type_name(y_type));
            return BQ_FAMILY_COUNT;
        }
        family = BQ_FAMILY_sign;
    }
    if ((*q->kernels)[family][x_type][y_type] == NULL) {
        bq_fail(BQ_E_UNSUPPORTED, "%s: %s has no %s output%s", fn, q->entry->name, type_name(y_type),
                is_float(y_type) ? "" : " (only the quantizers whose outputs are -1 and +1 have)");
        return BQ_FAMILY_COUNT;
    }
    return family;
}

size_t bq_extent_bytes(bq_dtype type, size_t rows, size_t cols) {
    const bq_dtype_info *t = &bq_dtypes[type];
    size_t units = bq_units(cols, t);
    if (rows != 0 && units > SIZE_MAX / t->unit_bytes / rows) return SIZE_MAX;
    return rows * units * t->unit_bytes;
}

bq_status bq_check_overlaps(const char *fn, const bq_extent *a, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (!a[i].output || a[i].bytes == 0) continue;
        for (size_t j = 0; j < count; j++) {
            if (j == i || (a[j].output && j < i) || a[j].bytes == 0) continue; /* each pair of outputs once */
            uintptr_t out = (uintptr_t)a[i].p, other = (uintptr_t)a[j].p;
            if (out == other && a[i].group != 0 && a[i].group == a[j].group) continue; /* exactly in place */
            if (out <= other ? other - out >= a[i].bytes : out - other >= a[j].bytes) continue;
            if (out == other) {
                return bq_fail(BQ_E_INVALID, "%s: %s and %s are the same memory, and this call cannot run with them "
                               "in place", fn, a[i].name, a[j].name);
            }
            return bq_fail(BQ_E_INVALID, "%s: %s and %s overlap without being the same memory (only exactly in place "
                           "is allowed)", fn, a[i].name, a[j].name);
        }
    }
    return BQ_OK;
}

bq_status bq_check_forward(const char *fn, const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type,
                           const void *y, size_t rows, size_t cols, int addressed, bq_family *family) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "%s: quantizer is NULL", fn);
    if ((unsigned)x_type >= BQ_DTYPE_COUNT) return bq_fail(BQ_E_INVALID, "%s: x_type %d is not a bq_dtype", fn, (int)x_type);
    if ((unsigned)y_type >= BQ_DTYPE_COUNT) return bq_fail(BQ_E_INVALID, "%s: y_type %d is not a bq_dtype", fn, (int)y_type);
    if (!is_float(x_type)) {
        return bq_fail(BQ_E_UNSUPPORTED, "%s: x_type %s is not an input type (BQ_F32, BQ_F16 or BQ_BF16)", fn,
                       type_name(x_type));
    }
    *family = forward_family(fn, q, x_type, y_type);
    if (*family == BQ_FAMILY_COUNT) return BQ_E_UNSUPPORTED;
    if (cols != 0 && rows > SIZE_MAX / cols) {
        return bq_fail(BQ_E_INVALID, "%s: rows * cols = %zu * %zu overflows size_t", fn, rows, cols);
    }
    size_t n = rows * cols;
    if (n == 0) return BQ_OK;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "%s: x is NULL with %zu elements", fn, n);
    if (y == NULL) return bq_fail(BQ_E_INVALID, "%s: y is NULL with %zu elements", fn, n);
    const bq_dtype_info *xt = &bq_dtypes[x_type], *yt = &bq_dtypes[y_type];
    if (x == y && (xt->unit_bytes != yt->unit_bytes || xt->unit_elements != yt->unit_elements)) {
        return bq_fail(BQ_E_INVALID, "%s: y == x, but %s and %s elements differ in size (in place needs one size)", fn,
                       type_name(x_type), type_name(y_type));
    }
    if (!addressed) return BQ_OK;
    const bq_extent arrays[] = {{"x", x, bq_extent_bytes(x_type, 1, n), 0, 1},
                                {"y", y, bq_extent_bytes(y_type, rows, cols), 1, 1}};
    return bq_check_overlaps(fn, arrays, 2);
}

bq_status bq_check_gradient_type(const char *fn, bq_dtype type) {
    if ((unsigned)type >= BQ_DTYPE_COUNT) return bq_fail(BQ_E_INVALID, "%s: type %d is not a bq_dtype", fn, (int)type);
    if (!is_float(type)) {
        return bq_fail(BQ_E_UNSUPPORTED, "%s: gradients are BQ_F32, BQ_F16 or BQ_BF16, not %s", fn, type_name(type));
    }
    return BQ_OK;
}

bq_status bq_check_backward(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y,
                            const void *grad_x, size_t n, int addressed) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "%s: quantizer is NULL", fn);
    bq_status status = bq_check_gradient_type(fn, type);
    if (status != BQ_OK || n == 0) return status;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "%s: x is NULL with n = %zu", fn, n);
    if (grad_y == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_y is NULL with n = %zu", fn, n);
    if (grad_x == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_x is NULL with n = %zu", fn, n);
    if (!addressed) return BQ_OK;
    size_t bytes = bq_extent_bytes(type, 1, n);
    const bq_extent arrays[] = {{"x", x, bytes, 0, 1}, {"grad_y", grad_y, bytes, 0, 1}, {"grad_x", grad_x, bytes, 1, 1}};
    return bq_check_overlaps(fn, arrays, 3);
}

bq_status bq_run_forward(const bq_place *place, const bq_quantizer *q, bq_family family, bq_dtype x_type, bq_value x,
                         bq_dtype y_type, bq_value y, size_t rows, size_t cols) {
    const bq_scalars *sc = &q->scalars;
    if (family == BQ_FAMILY_weightdorefa) {
        return bq_weightdorefa_forward(place, sc->forward_p0, x_type, x, y_type, y, rows * cols);
    }
    const bq_value values[BQ_MAX_ARGS] = {x, {.f = sc->forward_p0}, {.f = sc->forward_p1}, y};
    return bq_execute(place, family, x_type, y_type, values, rows, cols);
}

bq_status bq_run_backward(const bq_place *place, const bq_quantizer *q, bq_dtype type, bq_value x, bq_value g,
                          bq_value dx, size_t n) {
    const bq_value values[BQ_MAX_ARGS] = {x, g, {.f = q->scalars.backward_p0}, {.f = q->scalars.threshold}, dx};
    return bq_execute(place, q->entry->backward, type, type, values, 1, n);
}

static bq_place cpu_place(const bq_quantizer *q) {
    return (bq_place){q->kernels, NULL, NULL, NULL, bq_max_chunk()};
}

static bq_status forward(const char *fn, const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type, void *y,
                         size_t rows, size_t cols) {
    bq_family family;
    bq_status status = bq_check_forward(fn, q, x_type, x, y_type, y, rows, cols, 1, &family);
    if (status != BQ_OK || rows * cols == 0) return status;
    bq_place place = cpu_place(q);
    status = bq_run_forward(&place, q, family, x_type, (bq_value){.host = x}, y_type, (bq_value){.host = y}, rows, cols);
    return status;
}

static bq_status backward(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y,
                          void *grad_x, size_t n) {
    bq_status status = bq_check_backward(fn, q, type, x, grad_y, grad_x, n, 1);
    if (status != BQ_OK || n == 0) return status;
    bq_place place = cpu_place(q);
    status = bq_run_backward(&place, q, type, (bq_value){.host = x}, (bq_value){.host = grad_y},
                             (bq_value){.host = grad_x}, n);
    return status;
}

bq_status bq_forward(const bq_quantizer *q, const float *x, float *y, size_t n) {
    return forward("bq_forward", q, BQ_F32, x, BQ_F32, y, 1, n);
}

bq_status bq_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n) {
    return backward("bq_backward", q, BQ_F32, x, grad_y, grad_x, n);
}

bq_status bq_forward_typed(const bq_quantizer *q, bq_dtype x_type, const void *x, bq_dtype y_type, void *y,
                           size_t rows, size_t cols) {
    return forward("bq_forward_typed", q, x_type, x, y_type, y, rows, cols);
}

bq_status bq_backward_typed(const bq_quantizer *q, bq_dtype type, const void *x, const void *grad_y, void *grad_x,
                            size_t n) {
    return backward("bq_backward_typed", q, type, x, grad_y, grad_x, n);
}

static bq_status forward_save(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, void *y,
                              uint32_t *saved, size_t n) {
    bq_saved_plan plan;
    bq_status status = bq_check_save(fn, q, type, x, y, saved, n, 1, &plan);
    if (status != BQ_OK || n == 0) return status;
    bq_place place = cpu_place(q);
    status = bq_run_forward_save(&place, q, &plan, type, (bq_value){.host = x}, (bq_value){.host = y},
                                 (bq_value){.host = saved}, n);
    return status;
}

static bq_status backward_saved(const char *fn, const bq_quantizer *q, bq_dtype type, const uint32_t *saved,
                                const void *grad_y, void *grad_x, size_t n) {
    bq_saved_plan plan;
    bq_status status = bq_check_saved_backward(fn, q, type, saved, grad_y, grad_x, n, 1, &plan);
    if (status != BQ_OK || n == 0) return status;
    bq_place place = cpu_place(q);
    status = bq_run_backward_saved(&place, &plan, type, (bq_value){.host = saved}, (bq_value){.host = grad_y},
                                   (bq_value){.host = grad_x}, n);
    return status;
}

bq_status bq_forward_save(const bq_quantizer *q, const float *x, float *y, uint32_t *saved, size_t n) {
    return forward_save("bq_forward_save", q, BQ_F32, x, y, saved, n);
}

bq_status bq_backward_saved(const bq_quantizer *q, const uint32_t *saved, const float *grad_y, float *grad_x,
                            size_t n) {
    return backward_saved("bq_backward_saved", q, BQ_F32, saved, grad_y, grad_x, n);
}

bq_status bq_forward_save_typed(const bq_quantizer *q, bq_dtype type, const void *x, void *y, uint32_t *saved,
                                size_t n) {
    return forward_save("bq_forward_save_typed", q, type, x, y, saved, n);
}

bq_status bq_backward_saved_typed(const bq_quantizer *q, bq_dtype type, const uint32_t *saved, const void *grad_y,
                                  void *grad_x, size_t n) {
    return backward_saved("bq_backward_saved_typed", q, type, saved, grad_y, grad_x, n);
}

bq_status bq_set_num_threads(int n) {
    if (n < 1) return bq_fail(BQ_E_INVALID, "bq_set_num_threads: n = %d must be >= 1", n);
    if (n > BQ_MAX_THREADS) {
        return bq_fail(BQ_E_INVALID, "bq_set_num_threads: n = %d is above %d, the most threads the kernels' pool runs",
                       n, BQ_MAX_THREADS);
    }
    bq_runtime_init(); /* which reads HL_NUM_THREADS: before, so that it cannot undo this call */
    bq_pool_set_threads(n);
    return BQ_OK;
}
