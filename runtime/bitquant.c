/* The public API (include/bitquant.h): the quantizer registry built from generators/kernels.def,
 * argument checks, and dispatch to the selected CPU variant's kernels. */
#include "internal.h"

#include <HalideRuntime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const bq_entry entries[] = {
#define BQ_QUANTIZER(name, fwd, bwd, mapping, fields) \
    {#name, BQ_FAMILY_##fwd, BQ_FAMILY_##bwd, #fwd, #bwd, BQ_MAP_##mapping, fields},
#include "kernels.def"
};

static const size_t entry_count = sizeof entries / sizeof entries[0];

/* Halide's thread pool only ever grows: a smaller halide_set_num_threads stops new workers being made, but
 * those already made keep taking tasks. So lowering the count shuts the pool down (its next parallel loop
 * starts a new one of the new size), which must not happen under a running kernel: CPU kernels run holding
 * this lock for reading, and bq_set_num_threads takes it for writing. */
static pthread_rwlock_t pool_lock = PTHREAD_RWLOCK_INITIALIZER;

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

static bq_status forward_locked(const bq_quantizer *q, const float *x, float *y, size_t n) {
    if (q->entry->mapping == BQ_MAP_LEVELS_MAX) {
        float absmax, thresholds[BQ_COUNT_THRESHOLDS], levels = q->scalars.forward_p0;
        bq_status status = bq_run_absmax(q->kernels[BQ_FAMILY_absmax].absmax, x, n, &absmax);
        if (status != BQ_OK) return status;
        if (bq_weightdorefa_count_plan(absmax, levels, n, thresholds)) {
            return bq_run_count(q->kernels[BQ_FAMILY_weightdorefa_count].count, x, thresholds, (int)levels, y, n);
        }
        status = bq_weightdorefa_run_estimate(q->kernels[BQ_FAMILY_weightdorefa_estimate].map, x, absmax, levels, y, n);
        if (status != BQ_E_UNSUPPORTED) return status;
        return bq_run_map(q->kernels[BQ_FAMILY_weightdorefa].map, x, levels, absmax, y, n);
    }
    return bq_run_map(q->kernels[q->entry->forward].map, x, q->scalars.forward_p0, q->scalars.forward_p1, y, n);
}

bq_status bq_forward(const bq_quantizer *q, const float *x, float *y, size_t n) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "bq_forward: quantizer is NULL");
    if (n == 0) return BQ_OK;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "bq_forward: x is NULL with n = %zu", n);
    if (y == NULL) return bq_fail(BQ_E_INVALID, "bq_forward: y is NULL with n = %zu", n);
    pthread_rwlock_rdlock(&pool_lock);
    bq_status status = forward_locked(q, x, y, n);
    pthread_rwlock_unlock(&pool_lock);
    return status;
}

bq_status bq_backward(const bq_quantizer *q, const float *x, const float *grad_y, float *grad_x, size_t n) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "bq_backward: quantizer is NULL");
    if (n == 0) return BQ_OK;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "bq_backward: x is NULL with n = %zu", n);
    if (grad_y == NULL) return bq_fail(BQ_E_INVALID, "bq_backward: grad_y is NULL with n = %zu", n);
    if (grad_x == NULL) return bq_fail(BQ_E_INVALID, "bq_backward: grad_x is NULL with n = %zu", n);
    pthread_rwlock_rdlock(&pool_lock);
    bq_status status = bq_run_grad(q->kernels[q->entry->backward].grad, x, grad_y, q->scalars.backward_p0,
                                   q->scalars.threshold, grad_x, n);
    pthread_rwlock_unlock(&pool_lock);
    return status;
}

bq_status bq_set_num_threads(int n) {
    if (n < 1) return bq_fail(BQ_E_INVALID, "bq_set_num_threads: n = %d must be >= 1", n);
    pthread_rwlock_wrlock(&pool_lock);
    /* Before the pool's first use, the previous count reads 0: nothing was made yet to shut down. */
    if (halide_set_num_threads(n) > n) {
        halide_shutdown_thread_pool();
        halide_set_num_threads(n);
    }
    pthread_rwlock_unlock(&pool_lock);
    return BQ_OK;
}
