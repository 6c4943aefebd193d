/* Links bitquant from an installed package and runs one quantizer each way: exits 0 only if the library
 * loads, dispatches, and computes sign's forward (spec: 0 and -0 give +1) and backward (g passes). */
#include <bitquant.h>
#include <stdio.h>

int main(void) {
    const char *variant = NULL;
    if (bq_cpu_variant_active(&variant) != BQ_OK) {
        printf("consumer: %s\n", bq_last_error());
        return 1;
    }
    bq_quantizer *q = NULL;
    if (bq_create("sign", NULL, &q) != BQ_OK) return 2;
    float x[4] = {-2.0f, -0.0f, 0.0f, 3.0f}, y[4], g[4] = {0.5f, 0.5f, 0.5f, 0.5f}, dx[4];
    if (bq_forward(q, x, y, 4) != BQ_OK || bq_backward(q, x, g, dx, 4) != BQ_OK) return 3;
    bq_destroy(q);
    const float want[4] = {-1.0f, 1.0f, 1.0f, 1.0f};
    for (int i = 0; i < 4; i++) {
        if (y[i] != want[i] || dx[i] != 0.5f) return 4;
    }
    printf("consumer: ok (%s)\n", variant);
    return 0;
}
