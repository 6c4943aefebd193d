/* Saved-bit training (bq_forward_save, bq_backward_saved): what a backward pass keeps of x, by the rule of
 * its quantizer's row in kernels.def (the backward's need), and the plans that run the SAVE, SAVE_BITS and
 * GRAD_SAVED kernels through the executor, on any place.
 *
 * The rule, for gradient cancellation at t (applied iff t > 0, bq_params.cancel_threshold):
 *   NOTHING (the straight-through backward, dx = g; cancelled: [|x| <= t] ? g : +0)
 *     t = 0: no planes, and the backward is a copy of g
 *     t > 0: one plane [|x| <= t], mode 0 (a select)
 *   MASK (SteHeaviside: dx = g * [|x| <= 1], then cancelled)
 *     t = 0: one plane [|x| <= 1], mode 1 (a multiply-mask: -0 for negative g, NaN for infinite g outside)
 *     0 < t <= 1: one plane [|x| <= t], mode 0 ([|x| <= t] implies [|x| <= 1], where g * 1 = g)
 *     t > 1: two planes, [|x| <= 1] and [|x| <= t], mode 2 (three regions: g, g * 0, +0)
 *   VALUE (approxsign, swishsign): their gradients depend on x's value; BQ_E_UNSUPPORTED. */
#include "internal.h"

enum { MODE_SELECT = 0, MODE_MASK = 1, MODE_BOTH = 2 };

static const char *const need_names[] = {"NOTHING", "MASK", "VALUE"};

static bq_status plan_of(const char *fn, const bq_quantizer *q, bq_saved_plan *plan) {
    if (q == NULL) return bq_fail(BQ_E_INVALID, "%s: quantizer is NULL", fn);
    const bq_entry *e = q->entry;
    float t = q->scalars.threshold;
    *plan = (bq_saved_plan){0, 0.0f, 0.0f, MODE_SELECT, e->save, BQ_FAMILY_NONE};
    switch (e->need) {
    case BQ_NEED_NOTHING:
        if (t > 0.0f) plan->planes = 1, plan->a0 = t;
        return BQ_OK;
    case BQ_NEED_MASK:
        plan->planes = 1;
        if (t <= 0.0f) {
            plan->a0 = 1.0f, plan->mode = MODE_MASK;
        } else if (t <= 1.0f) {
            plan->a0 = t;
        } else {
            plan->planes = 2, plan->a0 = 1.0f, plan->a1 = t, plan->mode = MODE_BOTH;
        }
        return BQ_OK;
    case BQ_NEED_VALUE:
        break;
    }
    return bq_fail(BQ_E_UNSUPPORTED, "%s: %s's backward needs the value of x (need %s in kernels.def), not bits: use "
                   "bq_forward and bq_backward", fn, e->name, need_names[e->need]);
}

/* The words of plan's planes for n elements: ceil(n / 32) a plane, without overflow. */
static size_t saved_words(const bq_saved_plan *plan, size_t n) {
    return (size_t)plan->planes * ((n >> 5) + ((n & 31) != 0));
}

bq_status bq_saved_words(const bq_quantizer *q, size_t n, size_t *words) {
    bq_saved_plan plan;
    bq_status status = plan_of("bq_saved_words", q, &plan);
    if (status != BQ_OK) return status;
    if (words == NULL) return bq_fail(BQ_E_INVALID, "bq_saved_words: words is NULL");
    *words = saved_words(&plan, n);
    return BQ_OK;
}

bq_status bq_check_save(const char *fn, const bq_quantizer *q, bq_dtype type, const void *x, const void *y,
                        const void *saved, size_t n, int addressed, bq_saved_plan *plan) {
    bq_status status = plan_of(fn, q, plan); /* then bq_check_forward checks the type, x and y */
    if (status == BQ_OK) status = bq_check_forward(fn, q, type, x, type, y, 1, n, addressed, &plan->forward);
    if (status != BQ_OK || n == 0) return status;
    if (plan->planes > 0 && saved == NULL) {
        return bq_fail(BQ_E_INVALID, "%s: saved is NULL, and %s needs %zu words for n = %zu (bq_saved_words)", fn,
                       q->entry->name, saved_words(plan, n), n);
    }
    if (!addressed || plan->planes == 0) return BQ_OK;
    size_t bytes = bq_extent_bytes(type, 1, n); /* saved may be neither x nor y */
    const bq_extent arrays[] = {{"x", x, bytes, 0, 1}, {"y", y, bytes, 1, 1},
                                {"saved", saved, saved_words(plan, n) * sizeof(uint32_t), 1, 0}};
    return bq_check_overlaps(fn, arrays, 3);
}

bq_status bq_check_saved_backward(const char *fn, const bq_quantizer *q, bq_dtype type, const void *saved,
                                  const void *g, const void *dx, size_t n, int addressed, bq_saved_plan *plan) {
    bq_status status = plan_of(fn, q, plan);
    if (status == BQ_OK) status = bq_check_gradient_type(fn, type);
    if (status != BQ_OK || n == 0) return status;
    if (plan->planes > 0 && saved == NULL) {
        return bq_fail(BQ_E_INVALID, "%s: saved is NULL, and %s reads %zu words for n = %zu (bq_saved_words)", fn,
                       q->entry->name, saved_words(plan, n), n);
    }
    if (g == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_y is NULL with n = %zu", fn, n);
    if (dx == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_x is NULL with n = %zu", fn, n);
    if (!addressed) return BQ_OK;
    size_t bytes = bq_extent_bytes(type, 1, n);
    const bq_extent arrays[] = {{"saved", saved, saved_words(plan, n) * sizeof(uint32_t), 0, 0},
                                {"grad_y", g, bytes, 0, 1}, {"grad_x", dx, bytes, 1, 1}};
    return bq_check_overlaps(fn, arrays, 3);
}

bq_status bq_run_forward_save(const bq_place *place, const bq_quantizer *q, const bq_saved_plan *plan, bq_dtype type,
                              bq_value x, bq_value y, bq_value saved, size_t n) {
    if (plan->planes == 0) return bq_run_forward(place, q, plan->forward, type, x, type, y, 1, n);
    saved.i = plan->planes;
    const bq_scalars *sc = &q->scalars;
    if (bq_family_signatures[plan->save] == BQ_SIGNATURE_SAVE_BITS) { /* before the forward, which may overwrite x */
        const bq_value values[BQ_MAX_ARGS] = {x, {.f = plan->a0}, {.f = plan->a1}, saved};
        bq_status status = bq_execute(place, plan->save, type, type, values, 1, n);
        return status != BQ_OK ? status : bq_run_forward(place, q, plan->forward, type, x, type, y, 1, n);
    }
    const bq_value values[BQ_MAX_ARGS] = {x, {.f = sc->forward_p0}, {.f = sc->forward_p1}, {.f = plan->a0},
                                          {.f = plan->a1}, saved, y};
    return bq_execute(place, plan->save, type, type, values, 1, n);
}

bq_status bq_run_backward_saved(const bq_place *place, const bq_saved_plan *plan, bq_dtype type, bq_value saved,
                                bq_value g, bq_value dx, size_t n) {
    if (plan->planes == 0) { /* dx = g: the straight-through gradient, uncancelled */
        const bq_value values[BQ_MAX_ARGS] = {g, {.f = 0.0f}, {.f = 0.0f}, dx};
        return bq_execute(place, BQ_FAMILY_copy, type, type, values, 1, n);
    }
    saved.i = plan->planes;
    const bq_value values[BQ_MAX_ARGS] = {saved, g, {.i = plan->mode}, dx};
    return bq_execute(place, BQ_FAMILY_backward_saved, type, type, values, 1, n);
}
