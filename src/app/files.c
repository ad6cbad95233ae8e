/* Derived file names and the IDX output of samples. */
#include "app/files.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/pixel.h"
#include "data/idx.h"
#include "data/mnist.h"

void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path)
        snprintf(dst, cap, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
    else
        snprintf(dst, cap, "%s%s", path, suffix);
}

void app_labels_path(char *dst, size_t cap, const char *path) {
    app_path_suffixed(dst, cap, path, "-labels");
}

int app_write_idx(const char *path, const float *imgs, const int *labels, int n) {
    uint8_t *b = xmalloc((size_t)n * MNIST_PIXELS);
    for (size_t i = 0; i < (size_t)n * MNIST_PIXELS; i++) b[i] = pixel_to_u8(imgs[i]);
    uint32_t dims[3] = {(uint32_t)n, 28, 28};
    int rc = idx_write_u8(path, b, 3, dims);
    if (rc == 0 && labels) {
        size_t cap = strlen(path) + 8;
        char *lp = xmalloc(cap);
        app_labels_path(lp, cap, path);
        for (int i = 0; i < n; i++) b[i] = (uint8_t)labels[i];
        uint32_t ld[1] = {(uint32_t)n};
        rc = idx_write_u8(lp, b, 1, ld);
        xfree(lp);
    }
    xfree(b);
    return rc;
}
