/* WeightDoReFa's forward at 5 to 10 bits on every float: the estimate kernel (generators/elementwise_generator.cpp,
 * WeightDoReFaEstimate) settles an output from a float tanh with an error bound and leaves the rest open for the
 * runtime (runtime/weightdorefa.c). A bound too small shows as a wrong level next to a level boundary, which
 * random data almost never reaches; here every float x in [2^-24, 22] (every `stride`-th one, argv[1], default 1)
 * runs, alternately negated, in calls of 2^24 elements, so M = tanh(max |x|) takes the values of each call, from
 * 2^-21 up to 1, and every output is compared bit for bit with the spec's reference (tests/reference.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitquant.h"
#include "reference.h"
#include "test_common.h"

#define CALL ((size_t)1 << 24) /* elements per call: the estimate runs from 2^15 up */

int main(int argc, char **argv) {
    uint32_t stride = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1;
    if (stride == 0) stride = 1;
    const uint32_t first = 0x33800000u, last = 0x41b00000u; /* 2^-24 and 22, as bits */
    float *x = malloc(CALL * sizeof *x), *y = malloc(CALL * sizeof *y), *ref = malloc(CALL * sizeof *ref);
    CHECK(x && y && ref, "out of memory");
    if (test_failures()) return 1;
    for (int bits = 5; bits <= 10; bits++) {
        bq_params p = test_default_params();
        p.dorefa_bits = bits;
        bq_quantizer *q = NULL;
        bq_status status = bq_create("weightdorefa", &p, &q);
        if (status == BQ_E_UNSUPPORTED) {
            printf("SKIP: %s\n", bq_last_error());
            return 77;
        }
        CHECK(status == BQ_OK, "bq_create: %s", bq_last_error());
        if (status != BQ_OK) break;
        size_t differ = 0, total = 0;
        uint64_t bits_of = first;
        while (bits_of < last) {
            size_t n = 0;
            for (; n < CALL && bits_of < last; n++, bits_of += stride) {
                uint32_t u = (uint32_t)bits_of | (n & 1 ? 0x80000000u : 0u);
                memcpy(&x[n], &u, sizeof u);
            }
            status = bq_forward(q, x, y, n);
            CHECK(status == BQ_OK, "bq_forward: %s", bq_last_error());
            if (status != BQ_OK) break;
            status = ref_forward("weightdorefa", &p, x, ref, n);
            CHECK(status == BQ_OK, "the reference refused the call");
            if (status != BQ_OK) break;
            for (size_t i = 0; i < n; i++) {
                if (ref_same(y[i], ref[i])) continue;
                if (differ < 5) printf("FAIL: %d bits, x = %a: %a, the spec's %a\n", bits, x[i], y[i], ref[i]);
                differ++;
            }
            total += n;
        }
        printf("%d bits: %zu of %zu outputs differ\n", bits, differ, total);
        CHECK(differ == 0, "%d bits: %zu outputs differ from the spec's", bits, differ);
        bq_destroy(q);
    }
    free(x);
    free(y);
    free(ref);
    return test_failures() == 0 ? 0 : 1;
}
