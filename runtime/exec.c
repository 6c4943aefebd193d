/* The one executor: every generated kernel, on the CPU and on the GPUs, runs through bq_execute, which builds
 * the call from the kernel's signature (kernels.def): it cuts the tensor into chunks, describes each operand
 * of each chunk as a halide_buffer_t (over the caller's host memory, with no copy, any alignment, in place
 * allowed; or, on a GPU, over device memory sliced out of the caller's buffer, or host memory that Halide's
 * device runtime copies in and out), and calls the kernel's _argv entry point. */
#include "internal.h"

#include <HalideRuntime.h>
#include <string.h>

#define BQ_HALIDE_float32 halide_type_float, 32
#define BQ_HALIDE_uint16 halide_type_uint, 16
#define BQ_HALIDE_int8 halide_type_int, 8
#define BQ_HALIDE_uint32 halide_type_uint, 32

const bq_dtype_info bq_dtypes[BQ_DTYPE_COUNT] = {
#define BQ_DTYPE(name, spelling, halide_type, unit_bytes, unit_elements)                                              \
    [BQ_##name] = {"BQ_" #name, #spelling, BQ_HALIDE_##halide_type, unit_bytes, unit_elements, unit_elements == 32 ? 5 : 0},
#include "kernels.def"
};

const bq_role bq_signature_roles[BQ_SIGNATURES][BQ_MAX_ARGS] = {
#define BQ_SIGNATURE(signature, names, r0, r1, r2, r3, r4, r5, r6)                                                   \
    [BQ_SIGNATURE_##signature] = {BQ_ROLE_##r0, BQ_ROLE_##r1, BQ_ROLE_##r2, BQ_ROLE_##r3,                             \
                                  BQ_ROLE_##r4, BQ_ROLE_##r5, BQ_ROLE_##r6},
#include "kernels.def"
};

/* Signatures whose arguments are arrays and scalars alone (no RESULT, SUM or saved planes): a call of one of
 * them on host memory on the CPU, in one flat chunk, takes run_host_flat. */
#define BQ_PLAIN_NONE 1
#define BQ_PLAIN_IN 1
#define BQ_PLAIN_OUT 1
#define BQ_PLAIN_TABLE 1
#define BQ_PLAIN_F32 1
#define BQ_PLAIN_I32 1
#define BQ_PLAIN_RESULT 0
#define BQ_PLAIN_SUM 0
#define BQ_PLAIN_SAVED_IN 0
#define BQ_PLAIN_SAVED_OUT 0
static const unsigned char plain_signature[BQ_SIGNATURES] = {
#define BQ_SIGNATURE(signature, names, r0, r1, r2, r3, r4, r5, r6)                                                   \
    [BQ_SIGNATURE_##signature] = BQ_PLAIN_##r0 && BQ_PLAIN_##r1 && BQ_PLAIN_##r2 && BQ_PLAIN_##r3 && BQ_PLAIN_##r4 && \
                                 BQ_PLAIN_##r5 && BQ_PLAIN_##r6,
#include "kernels.def"
};

const bq_signature bq_family_signatures[BQ_FAMILY_COUNT] = {
#define BQ_FAMILY(family, signature, types) [BQ_FAMILY_##family] = BQ_SIGNATURE_##signature,
#include "kernels.def"
};

const char *const bq_family_names[BQ_FAMILY_COUNT] = {
#define BQ_FAMILY(family, signature, types) [BQ_FAMILY_##family] = #family,
#include "kernels.def"
};

/* Device memory is sliced at chunk boundaries, and Halide's OpenCL runtime passes a slice as a sub-buffer,
 * whose offset must be a multiple of the device's base address alignment (CL_DEVICE_MEM_BASE_ADDR_ALIGN,
 * at most a few KiB in practice): GPU chunks are whole multiples of 4096 elements (16 KiB of float32; 32
 * times that for packed output, 16 KiB of words), and packed rows are cut in blocks of rows whose every
 * operand's offset is a multiple of GPU_ALIGN bytes. */
#define GPU_CHUNK_MULTIPLE ((size_t)4096)
#define GPU_ALIGN ((size_t)4096)

bq_status bq_kernel_status(int result, const bq_call_context *call) {
    if (result == halide_error_code_success) return BQ_OK;
    const char *message = atomic_load(&call->failed) ? call->message : "no message";
    if (result == halide_error_code_out_of_memory) return bq_fail(BQ_E_NOMEM, "out of memory in kernel: %s", message);
    /* Halide's GPU runtimes return this without a message when a host or device buffer cannot be allocated. */
    if (result == halide_error_code_device_malloc_failed) {
        return bq_fail(BQ_E_NOMEM, "out of memory: a host or device buffer for the kernel could not be allocated (%s)",
                       message);
    }
    return bq_fail(BQ_E_RUNTIME, "kernel failed (Halide error %d): %s", result, message);
}

/* One call's shape: a tensor of rows x cols elements, cut into chunks of whole rows (packed rows) or of a
 * flat range of `chunk` elements. */
typedef struct {
    const bq_place *place;
    bq_dtype in, out;
    const bq_role *roles;
    const bq_value *values;
    size_t rows, cols, chunk;
    int two_d; /* the kernel's arrays are columns x rows (BIT output) */
} shape;

/* Columns [c0, c0 + ncols) of rows [r0, r0 + nrows). */
typedef struct {
    size_t r0, nrows, c0, ncols;
} piece;

/* A kernel argument for one piece: buf, and for device memory the whole buffer it is cut from. */
typedef struct {
    halide_buffer_t buf, whole;
    halide_dimension_t dim[2], whole_dim[2];
    uint32_t result;
    double sum;
    int output, on_device, bound;
} slot;

/* Field by field, not memset: this is on every call's path (small calls cost tens of nanoseconds). */
static void describe(halide_buffer_t *buf, halide_dimension_t *dims, int dimensions, const void *host,
                     const bq_dtype_info *t) {
    buf->device = 0;
    buf->device_interface = NULL;
    buf->host = (uint8_t *)(uintptr_t)host;
    buf->flags = 0;
    buf->type.code = t->code;
    buf->type.bits = t->bits;
    buf->type.lanes = 1;
    buf->dimensions = dimensions;
    buf->dim = dims;
    buf->padding = NULL;
}

/* Array operand v of type t for piece p, as s->buf. Host memory is described in place (GPU inputs marked
 * dirty, so that Halide copies them to the device); device memory is wrapped whole, as [chunk x chunks]
 * for flat calls or [row x rows] for packed rows, and the piece sliced (1-D kernels) or cropped out of it. */
static int bind_array(const shape *sh, bq_call_context *call, slot *s, bq_value v, bq_dtype type, const piece *p,
                      int output) {
    const bq_dtype_info *t = &bq_dtypes[type];
    int dims = sh->two_d ? 2 : 1;
    size_t row_units = bq_units(sh->cols, t);
    s->output = output;
    s->dim[0] = (halide_dimension_t){.min = 0, .extent = (int32_t)bq_units(p->ncols, t), .stride = 1};
    if (dims == 2) s->dim[1] = (halide_dimension_t){.min = 0, .extent = (int32_t)p->nrows, .stride = (int32_t)row_units};
    if (v.host != NULL) {
        size_t offset = (p->r0 * row_units + (p->c0 >> t->unit_shift)) * t->unit_bytes;
        describe(&s->buf, s->dim, dims, (const uint8_t *)v.host + offset, t);
        if (!output && sh->place->gpu != NULL) s->buf.flags = halide_buffer_flag_host_dirty;
        s->bound = 1;
        return halide_error_code_success;
    }
    const bq_gpu_device *device = sh->place->gpu->device;
    int flat = sh->rows == 1;
    size_t whole_units = flat ? sh->chunk >> t->unit_shift : row_units;
    size_t whole_rows = flat ? (sh->cols + sh->chunk - 1) / sh->chunk : sh->rows;
    s->whole_dim[0] = (halide_dimension_t){.min = 0, .extent = (int32_t)whole_units, .stride = 1};
    s->whole_dim[1] = (halide_dimension_t){.min = 0, .extent = (int32_t)whole_rows, .stride = (int32_t)whole_units};
    describe(&s->whole, s->whole_dim, 2, NULL, t);
    int result = device->wrap(call, &s->whole, v.device);
    if (result != halide_error_code_success) return result;
    s->on_device = 1;
    size_t row = flat ? p->c0 / sh->chunk : p->r0;
    if (dims == 1) {
        describe(&s->buf, s->dim, 1, NULL, t);
        result = halide_device_slice(call, &s->whole, 1, (int)row, &s->buf);
    } else {
        /* The crop's mins place it in the whole buffer; the kernel then sees it from 0. */
        s->dim[0].min = (int32_t)((flat ? 0 : p->c0) >> t->unit_shift);
        s->dim[1].min = (int32_t)row;
        s->dim[1].stride = (int32_t)whole_units;
        describe(&s->buf, s->dim, 2, NULL, t);
        result = halide_device_crop(call, &s->whole, &s->buf);
        s->dim[0].min = s->dim[1].min = 0;
    }
    s->bound = result == halide_error_code_success;
    return result;
}

/* The saved planes (SAVED_IN, SAVED_OUT) for the elements of piece p of a flat call: v.i planes of
 * ceil(n / 32) words each (n = sh->cols), seen by the kernel as words x planes, cropped out of the whole
 * planes on device memory. */
static int bind_saved(const shape *sh, bq_call_context *call, slot *s, bq_value v, const piece *p, int output) {
    const bq_dtype_info *t = &bq_dtypes[BQ_BIT];
    size_t plane = bq_units(sh->cols, t);
    s->output = output;
    s->dim[0] = (halide_dimension_t){.min = 0, .extent = (int32_t)bq_units(p->ncols, t), .stride = 1};
    s->dim[1] = (halide_dimension_t){.min = 0, .extent = v.i, .stride = (int32_t)plane};
    if (v.host != NULL) {
        describe(&s->buf, s->dim, 2, (const uint8_t *)v.host + 4 * (p->c0 >> t->unit_shift), t);
        if (!output && sh->place->gpu != NULL) s->buf.flags = halide_buffer_flag_host_dirty;
        s->bound = 1;
        return halide_error_code_success;
    }
    s->whole_dim[0] = (halide_dimension_t){.min = 0, .extent = (int32_t)plane, .stride = 1};
    s->whole_dim[1] = s->dim[1];
    describe(&s->whole, s->whole_dim, 2, NULL, t);
    int result = sh->place->gpu->device->wrap(call, &s->whole, v.device);
    if (result != halide_error_code_success) return result;
    s->on_device = 1;
    s->dim[0].min = (int32_t)(p->c0 >> t->unit_shift);
    describe(&s->buf, s->dim, 2, NULL, t);
    result = halide_device_crop(call, &s->whole, &s->buf);
    s->dim[0].min = 0;
    s->bound = result == halide_error_code_success;
    return result;
}

/* After the kernel (result): GPU outputs on host memory are copied back and waited for, and every device
 * allocation, crop and wrapper is let go. Returns the first error. */
static int release(const shape *sh, bq_call_context *call, slot *slots, int count, int result) {
    if (sh->place->gpu == NULL) return result; /* host memory on the CPU: nothing was allocated */
    for (int i = 0; i < count; i++) {
        slot *s = &slots[i];
        int r = halide_error_code_success;
        if (s->on_device) {
            if (s->bound) r = halide_device_release_crop(call, &s->buf);
            int detached = sh->place->gpu->device->detach(call, &s->whole);
            if (r == halide_error_code_success) r = detached;
        } else if (s->bound && s->buf.device != 0) {
            if (s->output && result == halide_error_code_success) {
                r = halide_copy_to_host(call, &s->buf);
                if (r == halide_error_code_success) r = halide_device_sync(call, &s->buf);
            }
            int freed = halide_device_free(call, &s->buf);
            if (r == halide_error_code_success) r = freed;
        }
        if (result == halide_error_code_success) result = r;
    }
    return result;
}

/* One kernel call on piece p; RESULT arguments are folded into their uint32_t by max, SUM ones added to their
 * double. */
static int run_piece(const shape *sh, bq_kernel_fn fn, const piece *p, bq_call_context *call) {
    slot slots[BQ_MAX_ARGS];
    void *args[BQ_MAX_ARGS + 1];
    const void *uc = call;
    args[0] = &uc;
    int bound = 0, result = halide_error_code_success;
    for (int a = 0; a < BQ_MAX_ARGS && result == halide_error_code_success; a++) {
        const bq_value *v = &sh->values[a];
        slot *s = &slots[a];
        s->on_device = s->bound = 0; /* what release() reads, scalars' slots included */
        bound = a + 1;
        switch (sh->roles[a]) {
        case BQ_ROLE_IN:
        case BQ_ROLE_OUT:
            result = bind_array(sh, call, s, *v, sh->roles[a] == BQ_ROLE_IN ? sh->in : sh->out, p,
                                sh->roles[a] == BQ_ROLE_OUT);
            args[a + 1] = &s->buf;
            break;
        case BQ_ROLE_SAVED_IN:
        case BQ_ROLE_SAVED_OUT:
            result = bind_saved(sh, call, s, *v, p, sh->roles[a] == BQ_ROLE_SAVED_OUT);
            args[a + 1] = &s->buf;
            break;
        case BQ_ROLE_TABLE: {
            const shape table = {sh->place, BQ_F32, BQ_F32, sh->roles, sh->values, 1, BQ_TABLE_LENGTH,
                                 BQ_TABLE_LENGTH, 0};
            const piece all = {0, 1, 0, BQ_TABLE_LENGTH};
            result = bind_array(&table, call, s, *v, BQ_F32, &all, 0);
            args[a + 1] = &s->buf;
            break;
        }
        case BQ_ROLE_RESULT:
            describe(&s->buf, s->dim, 0, &s->result, &bq_dtypes[BQ_BIT]); /* a uint32, as BIT's words are */
            s->output = s->bound = 1;
            args[a + 1] = &s->buf;
            break;
        case BQ_ROLE_SUM:
            describe(&s->buf, s->dim, 0, &s->sum, &bq_dtypes[BQ_F32]);
            s->buf.type.bits = 64; /* a float64 */
            s->output = s->bound = 1;
            args[a + 1] = &s->buf;
            break;
        case BQ_ROLE_F32:
            args[a + 1] = (void *)&v->f;
            break;
        case BQ_ROLE_I32:
            args[a + 1] = (void *)&v->i;
            break;
        case BQ_ROLE_NONE:
            bound = a;
            a = BQ_MAX_ARGS;
            break;
        }
    }
    if (result == halide_error_code_success) result = fn(args);
    result = release(sh, call, slots, bound, result);
    for (int a = 0; a < bound && result == halide_error_code_success; a++) {
        uint32_t *total = (uint32_t *)(uintptr_t)sh->values[a].host;
        if (sh->roles[a] == BQ_ROLE_RESULT && slots[a].result > *total) *total = slots[a].result;
        if (sh->roles[a] == BQ_ROLE_SUM) *(double *)(uintptr_t)sh->values[a].host += slots[a].sum;
    }
    return result;
}

static size_t gcd(size_t a, size_t b) {
    while (b != 0) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The fewest rows whose bytes, in every array operand, are a multiple of GPU_ALIGN. */
static size_t aligned_rows(const shape *sh) {
    size_t rows = 1;
    for (int a = 0; a < BQ_MAX_ARGS; a++) {
        if (sh->roles[a] != BQ_ROLE_IN && sh->roles[a] != BQ_ROLE_OUT) continue;
        const bq_dtype_info *t = &bq_dtypes[sh->roles[a] == BQ_ROLE_IN ? sh->in : sh->out];
        size_t need = GPU_ALIGN / gcd(GPU_ALIGN, bq_units(sh->cols, t) * t->unit_bytes);
        rows = rows / gcd(rows, need) * need;
    }
    return rows;
}

/* A call's user context, before the kernel: no failure yet, and the device context and queue it runs in. */
static void call_init(bq_call_context *call, void *device_context, void *device_queue) {
    atomic_init(&call->failed, 0);
    call->message[0] = '\0';
    call->device_context = device_context;
    call->device_queue = device_queue;
}

/* The common call, host memory on the CPU in one flat chunk of n elements (1-D arrays: no BIT output), for a
 * plain signature: each operand described once, straight into the argument list (no slots: nothing to
 * release or fold). Small calls are dominated by this path's cost, so it does no more than the kernel needs. */
static bq_status run_host_flat(bq_kernel_fn fn, const bq_role *roles, const bq_value *values, bq_dtype in,
                               bq_dtype out, size_t n) {
    halide_buffer_t bufs[BQ_MAX_ARGS];
    halide_dimension_t dims[BQ_MAX_ARGS];
    void *args[BQ_MAX_ARGS + 1];
    bq_call_context call;
    call_init(&call, NULL, NULL);
    const void *uc = &call;
    args[0] = &uc;
    for (int a = 0; a < BQ_MAX_ARGS && roles[a] != BQ_ROLE_NONE; a++) {
        bq_role role = roles[a];
        if (role == BQ_ROLE_F32 || role == BQ_ROLE_I32) {
            args[a + 1] = role == BQ_ROLE_F32 ? (void *)&values[a].f : (void *)&values[a].i;
            continue;
        }
        const bq_dtype_info *t = &bq_dtypes[role == BQ_ROLE_IN ? in : role == BQ_ROLE_OUT ? out : BQ_F32];
        size_t extent = role == BQ_ROLE_TABLE ? BQ_TABLE_LENGTH : bq_units(n, t);
        dims[a] = (halide_dimension_t){.min = 0, .extent = (int32_t)extent, .stride = 1};
        describe(&bufs[a], &dims[a], 1, values[a].host, t);
        args[a + 1] = &bufs[a];
    }
    int result = fn(args);
    return result == halide_error_code_success ? BQ_OK : bq_kernel_status(result, &call);
}

static bq_status run_one(const shape *sh, bq_kernel_fn fn, const piece *p) {
    bq_call_context call;
    call_init(&call, sh->place->context, sh->place->queue);
    return bq_kernel_status(run_piece(sh, fn, p, &call), &call);
}

bq_status bq_execute(const bq_place *place, bq_family family, bq_dtype in, bq_dtype out, const bq_value *values,
                     size_t rows, size_t cols) {
    bq_kernel_fn fn = (*place->kernels)[family][in][out];
    if (fn == NULL) {
        return bq_fail(BQ_E_UNSUPPORTED, "no %s kernel from %s to %s in the kernel table", bq_family_names[family],
                       bq_dtypes[in].spelling, bq_dtypes[out].spelling);
    }
    return bq_execute_kernel(place, fn, bq_family_signatures[family], in, out, values, rows, cols);
}

bq_status bq_execute_kernel(const bq_place *place, bq_kernel_fn fn, bq_signature signature, bq_dtype in, bq_dtype out,
                            const bq_value *values, size_t rows, size_t cols) {
    if (plain_signature[signature] && place->gpu == NULL && out != BQ_BIT && rows * cols <= place->max_chunk &&
        rows * cols != 0) { /* (a BIT output's arrays are 2-D: the general path) */
        return run_host_flat(fn, bq_signature_roles[signature], values, in, out, rows * cols);
    }
    shape sh = {place, in, out, bq_signature_roles[signature], values, rows, cols, 0, out == BQ_BIT};
    size_t multiple = out == BQ_BIT ? 32 : 1;
    for (int a = 0; a < BQ_MAX_ARGS; a++) {
        if (sh.roles[a] == BQ_ROLE_SAVED_IN || sh.roles[a] == BQ_ROLE_SAVED_OUT) multiple = 32; /* whole words */
    }
    if (place->gpu != NULL) multiple *= GPU_CHUNK_MULTIPLE;
    sh.chunk = place->max_chunk & ~(multiple - 1); /* multiple is a power of two */
    if (sh.chunk == 0) sh.chunk = multiple;
    for (int a = 0; a < BQ_MAX_ARGS; a++) {
        if (sh.roles[a] == BQ_ROLE_RESULT) *(uint32_t *)(uintptr_t)values[a].host = 0;
        if (sh.roles[a] == BQ_ROLE_SUM) *(double *)(uintptr_t)values[a].host = 0.0;
    }
    if (rows * cols == 0) return BQ_OK;
    if (!sh.two_d || cols % 32 == 0 || rows == 1) { /* one flat array of rows * cols elements */
        sh.cols = rows * cols;
        sh.rows = 1;
        for (size_t start = 0; start < sh.cols; start += sh.chunk) {
            piece p = {0, 1, start, sh.cols - start < sh.chunk ? sh.cols - start : sh.chunk};
            bq_status status = run_one(&sh, fn, &p);
            if (status != BQ_OK) return status;
        }
        return BQ_OK;
    }
    if (cols > sh.chunk) { /* each row in pieces of whole words */
        for (size_t r = 0; r < rows; r++) {
            for (size_t c0 = 0; c0 < cols; c0 += sh.chunk) {
                piece p = {r, 1, c0, cols - c0 < sh.chunk ? cols - c0 : sh.chunk};
                bq_status status = run_one(&sh, fn, &p);
                if (status != BQ_OK) return status;
            }
        }
        return BQ_OK;
    }
    size_t per_chunk = sh.chunk / cols;
    if (place->gpu != NULL) {
        size_t rows_aligned = aligned_rows(&sh);
        per_chunk = per_chunk < rows_aligned ? rows_aligned : per_chunk / rows_aligned * rows_aligned;
    }
    for (size_t r0 = 0; r0 < rows; r0 += per_chunk) {
        piece p = {r0, rows - r0 < per_chunk ? rows - r0 : per_chunk, 0, cols};
        bq_status status = run_one(&sh, fn, &p);
        if (status != BQ_OK) return status;
    }
    return BQ_OK;
}
