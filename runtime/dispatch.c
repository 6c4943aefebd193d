/* The compiled CPU variants (the registry is generated from generators/kernels.def by the build) and the
 * choice among them, made once per process: the best variant the CPU supports, or the one the
 * environment variable BITQUANT_CPU names. */
#include "internal.h"

#include <HalideRuntime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bq_registry.inc" /* bq_variants[]: every compiled variant, best last */

/* Halide's extents are int32 and, without its large_buffers feature, a buffer stays under 2^31 bytes. */
#define BQ_DEFAULT_MAX_CHUNK ((size_t)1 << 28)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const bq_variant *selected;
static bq_status select_status;
static char select_message[256];
static size_t max_chunk = BQ_DEFAULT_MAX_CHUNK;

static const size_t variant_count = sizeof bq_variants / sizeof bq_variants[0];

static void read_max_chunk(void) {
    const char *text = getenv("BITQUANT_MAX_CHUNK");
    if (text == NULL || *text == '\0') return;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end == '\0' && value >= 1 && value <= BQ_DEFAULT_MAX_CHUNK) max_chunk = (size_t)value;
}

/* HL_NUM_THREADS (the variable Halide's own pool reads, which took an empty or malformed value for 1 thread),
 * read once for the library's pool (pool.c): a decimal integer in 1..BQ_MAX_THREADS is the default thread
 * count; any other value (empty, junk, 0, negative, above the most) is
 * ignored for one per core, as when it is unset. */
static void read_num_threads(void) {
    const char *text = getenv("HL_NUM_THREADS");
    char *end = NULL;
    long value = text == NULL ? 0 : strtol(text, &end, 10);
    if (text == NULL || end == text || *end != '\0' || value < 1 || value > BQ_MAX_THREADS) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        value = cores < 1 ? 1 : cores > BQ_MAX_THREADS ? BQ_MAX_THREADS : cores;
    }
    bq_pool_set_threads((int)value);
}

static void choose_variant(void) {
    bq_install_halide_error_handler();
    bq_pool_install();
    read_max_chunk();
    read_num_threads();
    const char *forced = getenv("BITQUANT_CPU");
    if (forced != NULL && *forced != '\0') {
        for (size_t i = 0; i < variant_count; i++) {
            if (strcmp(bq_variants[i].name, forced) != 0) continue;
            if (bq_cpu_supports(forced)) {
                selected = &bq_variants[i];
                return;
            }
            select_status = BQ_E_UNSUPPORTED;
            snprintf(select_message, sizeof select_message,
                     "BITQUANT_CPU=%s: this CPU lacks the instructions that variant needs", forced);
            return;
        }
        select_status = BQ_E_UNSUPPORTED;
        int used = snprintf(select_message, sizeof select_message,
                            "BITQUANT_CPU=%s: no such variant in this build (compiled:", forced);
        for (size_t i = 0; i < variant_count && used > 0 && (size_t)used < sizeof select_message; i++) {
            used += snprintf(select_message + used, sizeof select_message - (size_t)used, " %s", bq_variants[i].name);
        }
        if (used > 0 && (size_t)used < sizeof select_message) {
            snprintf(select_message + used, sizeof select_message - (size_t)used, ")");
        }
        return;
    }
    for (size_t i = variant_count; i-- > 0;) {
        if (bq_cpu_supports(bq_variants[i].name)) {
            selected = &bq_variants[i];
            return;
        }
    }
    select_status = BQ_E_UNSUPPORTED;
    snprintf(select_message, sizeof select_message, "this CPU supports none of the compiled variants");
}

bq_status bq_variant_select(const bq_variant **out) {
    pthread_once(&once, choose_variant);
    if (selected == NULL) return bq_fail(select_status, "%s", select_message);
    *out = selected;
    return BQ_OK;
}

void bq_runtime_init(void) { pthread_once(&once, choose_variant); }

size_t bq_max_chunk(void) {
    pthread_once(&once, choose_variant);
    return max_chunk;
}

size_t bq_cpu_variant_count(void) { return variant_count; }

const char *bq_cpu_variant_name(size_t index) { return index < variant_count ? bq_variants[index].name : NULL; }

int bq_cpu_variant_supported(size_t index) {
    return index < variant_count ? bq_cpu_supports(bq_variants[index].name) : -1;
}

bq_status bq_cpu_variant_active(const char **name) {
    if (name == NULL) return bq_fail(BQ_E_INVALID, "bq_cpu_variant_active: name is NULL");
    const bq_variant *variant = NULL;
    bq_status status = bq_variant_select(&variant);
    if (status != BQ_OK) return status;
    *name = variant->name;
    return BQ_OK;
}
