/* The clock and the median the benchmark and the tuning harness share. */
#ifndef BITQUANT_TOOLS_TIMING_H
#define BITQUANT_TOOLS_TIMING_H

#include <stdlib.h>
#include <time.h>

static inline double bq_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bq_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts values. */
static inline double bq_median(double *values, int count) {
    qsort(values, (size_t)count, sizeof *values, bq_compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

#endif
