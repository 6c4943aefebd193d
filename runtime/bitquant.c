/* The public API (include/bitquant.h): the quantizer registry built from generators/kernels.def,
 * argument checks, and dispatch to the selected CPU variant's kernels. */
#include "internal.h"

#include <HalideRuntime.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The named parameters of the built-ins (BQ_PARAM rows), grouped by quantizer as the table lists them, and the
 * quantizer each belongs to. */
static const bq_param_info builtin_params[] = {
#define BQ_PARAM(quantizer, name, default_value, min_value, max_value, kind) \
    {#name, default_value, min_value, max_value, BQ_PARAM_##kind},
#include "kernels.def"
};
static const char *const builtin_param_owners[] = {
#define BQ_PARAM(quantizer, name, default_value, min_value, max_value, kind) #quantizer,
#include "kernels.def"
};
#define BQ_BUILTIN_PARAMS (sizeof builtin_param_owners / sizeof builtin_param_owners[0])

/* The number of built-in quantizers: the table's rows. */
enum {
#define BQ_QUANTIZER(name, fwd, bwd, mapping, fields, save, need) BQ_BUILTIN_##name,
#include "kernels.def"
    BQ_BUILTINS
};

/* The quantizers: the built-ins, filled once from the table (with their named parameters), then the registered
 * ones (bq_register_quantizers). An entry is written before the count that publishes it (release; readers
 * acquire), under registry_lock, and never changes after. */
#define BQ_MAX_REGISTERED 64
_Static_assert(BQ_MAX_NAMED_PARAMS == BQ_TABLE_LENGTH, "a custom kernel's params are a TABLE argument");
static bq_entry entries[BQ_BUILTINS + BQ_MAX_REGISTERED];
static _Atomic size_t registered;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t builtins_once = PTHREAD_ONCE_INIT;

static void fill_builtins(void) {
    static const bq_entry rows[] = {
#define BQ_QUANTIZER(name, fwd, bwd, mapping, fields, save, need)                                                     \
    {#name, BQ_FAMILY_##fwd, BQ_FAMILY_##bwd, #fwd, #bwd, BQ_MAP_##mapping, fields, BQ_FAMILY_##save, BQ_NEED_##need, \
     NULL, 0, NULL, NULL},
#include "kernels.def"
    };
    for (size_t i = 0; i < BQ_BUILTINS; i++) {
        entries[i] = rows[i];
        for (size_t k = 0; k < BQ_BUILTIN_PARAMS; k++) {
            if (strcmp(builtin_param_owners[k], rows[i].name) != 0) continue;
            if (entries[i].params == NULL) entries[i].params = &builtin_params[k];
            entries[i].param_count++;
        }
    }
}

static size_t entry_count(void) {
    pthread_once(&builtins_once, fill_builtins);
    return BQ_BUILTINS + atomic_load_explicit(&registered, memory_order_acquire);
}

const bq_entry *bq_find_entry(const char *name) {
    size_t count = entry_count();
    for (size_t i = 0; i < count; i++) {
        if (strcmp(entries[i].name, name) == 0) return &entries[i];
    }
    return NULL;
}

size_t bq_quantizer_count(void) { return entry_count(); }

bq_status bq_quantizer_info_at(size_t index, bq_quantizer_info *out) {
    if (out == NULL) return bq_fail(BQ_E_INVALID, "bq_quantizer_info_at: out is NULL");
    size_t count = entry_count();
    if (index >= count) {
        return bq_fail(BQ_E_INVALID, "bq_quantizer_info_at: index %zu >= %zu quantizers", index, count);
    }
    const bq_entry *e = &entries[index];
    *out = (bq_quantizer_info){e->name, e->forward_name, e->backward_name, e->fields};
    return BQ_OK;
}

size_t bq_quantizer_param_count(size_t index) { return index < entry_count() ? entries[index].param_count : 0; }

bq_status bq_quantizer_param_at(size_t index, size_t param, bq_param_info *out) {
    if (out == NULL) return bq_fail(BQ_E_INVALID, "bq_quantizer_param_at: out is NULL");
    size_t count = entry_count();
    if (index >= count) {
        return bq_fail(BQ_E_INVALID, "bq_quantizer_param_at: index %zu >= %zu quantizers", index, count);
    }
    if (param >= entries[index].param_count) {
        return bq_fail(BQ_E_INVALID, "bq_quantizer_param_at: %s has %zu named parameters, not %zu",
                       entries[index].name, entries[index].param_count, param + 1);
    }
    *out = entries[index].params[param];
    return BQ_OK;
}

/* A name bq_register_quantizers accepts: 1 to 63 of a-z, 0-9 and _, starting with a letter. */
static int valid_name(const char *name) {
    if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z')) return 0;
    size_t len = 0;
    for (; name[len] != '\0' && len < 64; len++) {
        char c = name[len];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return len < 64;
}

static int compiled_variant(const char *name) {
    for (size_t v = 0; v < bq_cpu_variant_count(); v++) {
        if (strcmp(bq_cpu_variant_name(v), name) == 0) return 1;
    }
    return 0;
}

/* Checks quantizer q (number i of the call) and fills *e from it, its kernels those of variant `active`; the
 * comma-separated names of its parameters are malloc'ed into *fields. */
static bq_status check_custom(const char *fn, const bq_custom_quantizer *q, size_t i, const char *active,
                              bq_entry *e, char **fields) {
    if (!valid_name(q->name)) {
        return bq_fail(BQ_E_INVALID, "%s: quantizers[%zu].name \"%.64s\" is not 1 to 63 characters of a-z, 0-9 and _ "
                       "starting with a letter", fn, i, q->name ? q->name : "(NULL)");
    }
    if (bq_find_entry(q->name) != NULL) {
        return bq_fail(BQ_E_INVALID, "%s: a quantizer named \"%s\" exists already (a built-in or registered earlier)",
                       fn, q->name);
    }
    if (q->param_count > BQ_MAX_NAMED_PARAMS || (q->param_count != 0 && q->params == NULL)) {
        return bq_fail(BQ_E_INVALID, "%s: %s declares %zu parameters%s (at most %d)", fn, q->name, q->param_count,
                       q->params == NULL ? " with params NULL" : "", BQ_MAX_NAMED_PARAMS);
    }
    size_t bytes = 1;
    for (size_t k = 0; k < q->param_count; k++) {
        const char *name = q->params[k].name;
        if (!valid_name(name)) {
            return bq_fail(BQ_E_INVALID, "%s: %s's parameter %zu has no valid name (1 to 63 of a-z, 0-9 and _, "
                           "starting with a letter)", fn, q->name, k);
        }
        for (size_t j = 0; j < k; j++) {
            if (strcmp(q->params[j].name, name) == 0) {
                return bq_fail(BQ_E_INVALID, "%s: %s declares the parameter %s twice", fn, q->name, name);
            }
        }
        bytes += strlen(name) + 1;
    }
    float defaults[BQ_MAX_NAMED_PARAMS];
    bq_status status = bq_resolve_named(fn, q->name, q->params, q->param_count, NULL, 0, defaults);
    if (status != BQ_OK) return status; /* a kind that is not one, or a default outside its range */
    if (q->kernel_count != 0 && q->kernels == NULL) {
        return bq_fail(BQ_E_INVALID, "%s: %s has kernel_count %zu with kernels NULL", fn, q->name, q->kernel_count);
    }
    const bq_custom_kernels *chosen = NULL;
    for (size_t k = 0; k < q->kernel_count; k++) {
        const bq_custom_kernels *kk = &q->kernels[k];
        if (kk->variant == NULL || !compiled_variant(kk->variant)) {
            return bq_fail(BQ_E_INVALID, "%s: %s's kernels[%zu] are for variant \"%.32s\", which this library does "
                           "not have (bq_cpu_variant_name)", fn, q->name, k, kk->variant ? kk->variant : "(NULL)");
        }
        if (kk->forward == NULL || kk->backward == NULL) {
            return bq_fail(BQ_E_INVALID, "%s: %s's %s kernels include a NULL entry point", fn, q->name, kk->variant);
        }
        if (strcmp(kk->variant, active) == 0) chosen = kk;
    }
    if (chosen == NULL) {
        return bq_fail(BQ_E_UNSUPPORTED, "%s: %s has no kernels for the CPU variant this process runs (%s): build it "
                       "for the installed library's variants", fn, q->name, active);
    }
    char *list = malloc(bytes);
    if (list == NULL) return bq_fail(BQ_E_NOMEM, "%s: out of memory", fn);
    list[0] = '\0';
    for (size_t k = 0; k < q->param_count; k++) {
        if (k) strcat(list, ",");
        strcat(list, q->params[k].name);
    }
    *fields = list;
    *e = (bq_entry){q->name, BQ_FAMILY_NONE, BQ_FAMILY_NONE, "custom_forward", "custom_backward", BQ_MAP_NONE, list,
                    BQ_FAMILY_NONE, BQ_NEED_VALUE, q->params, q->param_count, chosen->forward, chosen->backward};
    return BQ_OK;
}

bq_status bq_register_quantizers(int abi_version, const bq_custom_quantizer *quantizers, size_t count) {
    const char *fn = "bq_register_quantizers";
    if (abi_version != BQ_KERNEL_ABI_VERSION) {
        return bq_fail(BQ_E_INVALID, "%s: the quantizers were built for kernel ABI %d, and this library has ABI %d: "
                       "rebuild them against this bitquant", fn, abi_version, BQ_KERNEL_ABI_VERSION);
    }
    if (count != 0 && quantizers == NULL) return bq_fail(BQ_E_INVALID, "%s: quantizers is NULL with count %zu", fn, count);
    const bq_variant *variant = NULL;
    bq_status status = bq_variant_select(&variant);
    if (status != BQ_OK) return status;
    entry_count(); /* the built-ins */
    pthread_mutex_lock(&registry_lock);
    size_t first = BQ_BUILTINS + atomic_load_explicit(&registered, memory_order_relaxed);
    if (count > BQ_MAX_REGISTERED - (first - BQ_BUILTINS)) {
        status = bq_fail(BQ_E_NOMEM, "%s: %zu more quantizers would pass the %d that can be registered (%zu are)", fn,
                         count, BQ_MAX_REGISTERED, first - BQ_BUILTINS);
    }
    char *fields[BQ_MAX_REGISTERED] = {NULL};
    size_t made = 0;
    for (; status == BQ_OK && made < count; made++) {
        const bq_custom_quantizer *q = &quantizers[made];
        for (size_t j = 0; j < made && status == BQ_OK; j++) {
            if (q->name != NULL && strcmp(quantizers[j].name, q->name) == 0) {
                status = bq_fail(BQ_E_INVALID, "%s: quantizers[%zu] and [%zu] are both named \"%s\"", fn, j, made,
                                 q->name);
            }
        }
        if (status == BQ_OK) status = check_custom(fn, q, made, variant->name, &entries[first + made], &fields[made]);
    }
    if (status == BQ_OK) {
        atomic_store_explicit(&registered, first - BQ_BUILTINS + count, memory_order_release);
    } else {
        for (size_t k = 0; k < made; k++) free(fields[k]);
    }
    pthread_mutex_unlock(&registry_lock);
    return status;
}

/* A quantizer of entry e with p and the named parameters, for the selected CPU variant, into *q. */
static bq_status make_quantizer(const char *fn, const bq_entry *e, const bq_params *p, const bq_named_param *named,
                                size_t count, bq_quantizer *q) {
    bq_params defaults;
    if (p == NULL) {
        bq_params_init(&defaults);
        p = &defaults;
    }
    *q = (bq_quantizer){.entry = e};
    bq_status status = bq_resolve_named(fn, e->name, e->params, e->param_count, named, count, q->named);
    if (status != BQ_OK) return status;
    status = bq_scalars_from_params(p, e->mapping, q->named, &q->scalars);
    if (status != BQ_OK) return status;
    const bq_variant *variant = NULL;
    status = bq_variant_select(&variant);
    if (status != BQ_OK) return status;
    q->kernels = variant->kernels;
    return BQ_OK;
}

static bq_status create(const char *fn, const char *name, const bq_params *p, const bq_named_param *named,
                        size_t count, bq_quantizer **out) {
    if (out == NULL) return bq_fail(BQ_E_INVALID, "%s: out is NULL", fn);
    if (name == NULL) return bq_fail(BQ_E_INVALID, "%s: name is NULL", fn);
    const bq_entry *entry = bq_find_entry(name);
    if (entry == NULL) return bq_fail(BQ_E_UNKNOWN, "%s: no quantizer named \"%.64s\"", fn, name);
    bq_quantizer made;
    bq_status status = make_quantizer(fn, entry, p, named, count, &made);
    if (status != BQ_OK) return status;
    bq_quantizer *q = malloc(sizeof *q);
    if (q == NULL) return bq_fail(BQ_E_NOMEM, "%s: out of memory", fn);
    *q = made;
    *out = q;
    return BQ_OK;
}

bq_status bq_create(const char *name, const bq_params *p, bq_quantizer **out) {
    return create("bq_create", name, p, NULL, 0, out);
}

bq_status bq_create_named(const char *name, const bq_params *p, const bq_named_param *named, size_t count,
                          bq_quantizer **out) {
    return create("bq_create_named", name, p, named, count, out);
}

void bq_destroy(bq_quantizer *q) { free(q); }

static int is_float(bq_dtype t) { return t == BQ_F32 || t == BQ_F16 || t == BQ_BF16; }

static const char *type_name(bq_dtype t) { return bq_dtypes[t].name; }

/* The family that computes q's forward into y_type, or a status after setting the message. */
static bq_status forward_family(const char *fn, const bq_quantizer *q, bq_dtype x_type, bq_dtype y_type,
                                bq_family *out) {
    if (q->entry->custom_forward != NULL) {
        if (x_type != BQ_F32 || y_type != BQ_F32) {
            return bq_fail(BQ_E_UNSUPPORTED, "%s: %s is a registered quantizer, whose kernels are float32 only (not %s "
                           "to %s)", fn, q->entry->name, type_name(x_type), type_name(y_type));
        }
        *out = BQ_FAMILY_NONE;
        return BQ_OK;
    }
    bq_family family = q->entry->forward;
    /* ProgressiveSign in eval mode is sign exactly: its I8 and BIT outputs are sign's. */
    if (!is_float(y_type) && q->entry->mapping == BQ_MAP_PROGRESSIVE) {
        if (q->scalars.forward_p1 != 0.0f) {
            return bq_fail(BQ_E_UNSUPPORTED, "%s: progressive_sign with training = 1 has outputs other than -1 and +1, "
                           "so no %s output (set training = 0 for sign's)", fn, type_name(y_type));
        }
        family = BQ_FAMILY_sign;
    }
    if ((*q->kernels)[family][x_type][y_type] == NULL) {
        return bq_fail(BQ_E_UNSUPPORTED, "%s: %s has no %s output%s", fn, q->entry->name, type_name(y_type),
                       is_float(y_type) ? "" : " (only the quantizers whose outputs are -1 and +1 have)");
    }
    *out = family;
    return BQ_OK;
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

/* Whether two byte ranges are disjoint: the common case of a call's arrays, decided here without the general
 * bq_check_overlaps (which then only sees arrays that touch, and says how). */
static inline int apart(const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return pa <= pb ? pb - pa >= a_bytes : pa - pb >= b_bytes;
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
    bq_status status = forward_family(fn, q, x_type, y_type, family);
    if (status != BQ_OK) return status;
    size_t n;
    if (__builtin_mul_overflow(rows, cols, &n)) { /* a multiply, not a division, on every call's path */
        return bq_fail(BQ_E_INVALID, "%s: rows * cols = %zu * %zu overflows size_t", fn, rows, cols);
    }
    if (n == 0) return BQ_OK;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "%s: x is NULL with %zu elements", fn, n);
    if (y == NULL) return bq_fail(BQ_E_INVALID, "%s: y is NULL with %zu elements", fn, n);
    const bq_dtype_info *xt = &bq_dtypes[x_type], *yt = &bq_dtypes[y_type];
    if (x == y && (xt->unit_bytes != yt->unit_bytes || xt->unit_elements != yt->unit_elements)) {
        return bq_fail(BQ_E_INVALID, "%s: y == x, but %s and %s elements differ in size (in place needs one size)", fn,
                       type_name(x_type), type_name(y_type));
    }
    if (!addressed) return BQ_OK;
    size_t x_bytes = bq_extent_bytes(x_type, 1, n), y_bytes = bq_extent_bytes(y_type, rows, cols);
    if (x != y && apart(x, x_bytes, y, y_bytes)) return BQ_OK;
    const bq_extent arrays[] = {{"x", x, x_bytes, 0, 1}, {"y", y, y_bytes, 1, 1}};
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
    if (status == BQ_OK && q->entry->custom_backward != NULL && type != BQ_F32) {
        status = bq_fail(BQ_E_UNSUPPORTED, "%s: %s is a registered quantizer, whose kernels are float32 only (not %s)",
                         fn, q->entry->name, type_name(type));
    }
    if (status != BQ_OK || n == 0) return status;
    if (x == NULL) return bq_fail(BQ_E_INVALID, "%s: x is NULL with n = %zu", fn, n);
    if (grad_y == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_y is NULL with n = %zu", fn, n);
    if (grad_x == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_x is NULL with n = %zu", fn, n);
    if (!addressed) return BQ_OK;
    size_t bytes = bq_extent_bytes(type, 1, n);
    if (grad_x != x && grad_x != grad_y && apart(grad_x, bytes, x, bytes) && apart(grad_x, bytes, grad_y, bytes)) {
        return BQ_OK;
    }
    const bq_extent arrays[] = {{"x", x, bytes, 0, 1}, {"grad_y", grad_y, bytes, 0, 1}, {"grad_x", grad_x, bytes, 1, 1}};
    return bq_check_overlaps(fn, arrays, 3);
}

bq_status bq_check_cpu_only(const char *fn, const bq_quantizer *q) {
    if (q == NULL || q->entry->custom_forward == NULL) return BQ_OK;
    return bq_fail(BQ_E_UNSUPPORTED, "%s: %s is a registered quantizer: its kernels run on the CPU only (bq_forward, "
                   "bq_backward)", fn, q->entry->name);
}

bq_status bq_run_forward(const bq_place *place, const bq_quantizer *q, bq_family family, bq_dtype x_type, bq_value x,
                         bq_dtype y_type, bq_value y, size_t rows, size_t cols) {
    const bq_scalars *sc = &q->scalars;
    if (q->entry->custom_forward != NULL) {
        if (place->gpu != NULL) return bq_check_cpu_only("bq_run_forward", q);
        const bq_value values[BQ_MAX_ARGS] = {x, {.host = q->named}, y};
        return bq_execute_kernel(place, q->entry->custom_forward, BQ_SIGNATURE_CUSTOM_MAP, x_type, y_type, values, rows,
                                 cols);
    }
    if (family == BQ_FAMILY_weightdorefa) {
        return bq_weightdorefa_forward(place, sc->forward_p0, x_type, x, y_type, y, rows * cols);
    }
    const bq_value values[BQ_MAX_ARGS] = {x, {.f = sc->forward_p0}, {.f = sc->forward_p1}, y};
    return bq_execute(place, family, x_type, y_type, values, rows, cols);
}

bq_status bq_run_backward(const bq_place *place, const bq_quantizer *q, bq_dtype type, bq_value x, bq_value g,
                          bq_value dx, size_t n) {
    if (q->entry->custom_backward != NULL) {
        if (place->gpu != NULL) return bq_check_cpu_only("bq_run_backward", q);
        const bq_value values[BQ_MAX_ARGS] = {x, g, {.host = q->named}, {.f = q->scalars.threshold}, dx};
        return bq_execute_kernel(place, q->entry->custom_backward, BQ_SIGNATURE_CUSTOM_GRAD, type, type, values, 1, n);
    }
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

/* Pact's backward runs in slices of this many elements, the sum for alpha over a slice and then grad_x over it,
 * so that the second pass reads x and g from the cache (and in place, before grad_x overwrites them). The
 * slice is part of the stated summation order (bitquant.h), so it is fixed, not tuned. */
#define PACT_SLICE ((size_t)1 << 18)

/* A Pact quantizer on the stack for the given alpha (and bits, for the forward). */
static bq_status pact_quantizer(const char *fn, float alpha, int bits, bq_quantizer *q) {
    const bq_named_param named[] = {{"alpha", alpha}, {"bits", bits}};
    return make_quantizer(fn, bq_find_entry("pact"), NULL, named, 2, q);
}

bq_status bq_pact_forward(const float *x, float *y, size_t n, float alpha, int bits) {
    bq_quantizer q;
    bq_status status = pact_quantizer("bq_pact_forward", alpha, bits, &q);
    if (status != BQ_OK) return status;
    return forward("bq_pact_forward", &q, BQ_F32, x, BQ_F32, y, 1, n);
}

bq_status bq_pact_backward(const float *x, const float *grad_y, float *grad_x, float *grad_alpha, size_t n,
                           float alpha) {
    const char *fn = "bq_pact_backward";
    bq_quantizer q;
    bq_status status = pact_quantizer(fn, alpha, 4, &q);
    if (status != BQ_OK) return status;
    if (grad_alpha == NULL) return bq_fail(BQ_E_INVALID, "%s: grad_alpha is NULL", fn);
    /* The arrays' overlaps are checked here, grad_alpha's with them, once. */
    status = bq_check_backward(fn, &q, BQ_F32, x, grad_y, grad_x, n, 0);
    if (status != BQ_OK) return status;
    size_t bytes = bq_extent_bytes(BQ_F32, 1, n);
    const bq_extent arrays[] = {{"x", x, bytes, 0, 1},
                                {"grad_y", grad_y, bytes, 0, 1},
                                {"grad_x", grad_x, bytes, 1, 1},
                                {"grad_alpha", grad_alpha, sizeof *grad_alpha, 1, 0}};
    status = bq_check_overlaps(fn, arrays, 4);
    if (status != BQ_OK) return status;
    bq_place place = cpu_place(&q);
    double total = 0.0;
    for (size_t start = 0; start < n; start += PACT_SLICE) {
        size_t len = n - start < PACT_SLICE ? n - start : PACT_SLICE;
        double part;
        const bq_value values[BQ_MAX_ARGS] = {{.host = x + start}, {.host = grad_y + start}, {.f = alpha},
                                              {.host = &part}};
        status = bq_execute(&place, BQ_FAMILY_pact_alpha, BQ_F32, BQ_F32, values, 1, len);
        if (status != BQ_OK) return status;
        total += part;
        status = bq_run_backward(&place, &q, BQ_F32, (bq_value){.host = x + start}, (bq_value){.host = grad_y + start},
                                 (bq_value){.host = grad_x + start}, len);
        if (status != BQ_OK) return status;
    }
    *grad_alpha = (float)total;
    return BQ_OK;
}
