/* Links bitquant from an installed package and runs one quantizer each way: exits 0 only if the library
 * loads, dispatches, and computes sign's forward (spec: 0 and -0 give +1) and backward (g passes), on the
 * CPU and on every GPU backend that finds a device (none is fine: then each must say BQ_E_NO_DEVICE or,
 * if not compiled in, BQ_E_UNSUPPORTED). */
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
    const float want[4] = {-1.0f, 1.0f, 1.0f, 1.0f};
    if (bq_forward(q, x, y, 4) != BQ_OK || bq_backward(q, x, g, dx, 4) != BQ_OK) return 3;
    for (int i = 0; i < 4; i++) {
        if (y[i] != want[i] || dx[i] != 0.5f) return 4;
    }
    printf("consumer: ok (%s)", variant);
    for (int b = 0; b < BQ_BACKEND_COUNT; b++) {
        float gy[4] = {0}, gdx[4] = {0};
        bq_status s = bq_device_forward_host(q, (bq_backend)b, x, gy, 4);
        if (s == BQ_E_NO_DEVICE || s == BQ_E_UNSUPPORTED) continue;
        if (s != BQ_OK || bq_device_backward_host(q, (bq_backend)b, x, g, gdx, 4) != BQ_OK) {
            printf("\nconsumer: %s: %s\n", bq_backend_name((bq_backend)b), bq_last_error());
            return 5;
        }
        for (int i = 0; i < 4; i++) {
            if (gy[i] != want[i] || gdx[i] != 0.5f) return 6;
        }
        printf(", %s", bq_backend_name((bq_backend)b));
    }
    printf("\n");
    bq_destroy(q);
    return 0;
}
