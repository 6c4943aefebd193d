#include "roofline.h"

/* Small n runs on one thread, as the kernels do: a parallel region costs microseconds. */
#define PARALLEL_MIN ((size_t)1 << 18)

void roofline_copy(const float *restrict x, float *restrict y, size_t n, int threads) {
    int t = n >= PARALLEL_MIN ? threads : 1;
#pragma omp parallel for simd num_threads(t) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}

void roofline_add(const float *restrict x, const float *restrict g, float *restrict y, size_t n, int threads) {
    int t = n >= PARALLEL_MIN ? threads : 1;
#pragma omp parallel for simd num_threads(t) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] + g[i];
}

float roofline_read(const float *restrict x, size_t n, int threads) {
    int t = n >= PARALLEL_MIN ? threads : 1;
    float best = 0.0f;
#pragma omp parallel for simd num_threads(t) schedule(static) reduction(max : best)
    for (size_t i = 0; i < n; i++) best = best > x[i] ? best : x[i];
    return best;
}
