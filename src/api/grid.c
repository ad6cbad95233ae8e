/* The public API's PNG writer (include/ddpm.h): images side by side in a plain grid, no
 * gaps and no titles, so that a reader finds image i at cell (i / cols, i % cols). */
#include <stdio.h>
#include <string.h>

#include "ddpm.h"
#include "core/common.h"
#include "core/pixel.h"
#include "io/image.h"

/* PNG's limit is far above this; a grid beyond it is a caller's mistake. */
#define GRID_MAX_SIDE 32768

/* out (rows H, cols W, C interleaved) = the planar images, unused cells black. */
static void grid_tile(uint8_t *out, const float *images, int n, int cols, int C, int H, int W) {
    const int rows = (n + cols - 1) / cols;
    const size_t row_bytes = (size_t)cols * W * C, plane = (size_t)H * W;
    memset(out, 0, row_bytes * (size_t)rows * H);
    for (int i = 0; i < n; i++) {
        const float *img = images + (size_t)i * C * plane;
        uint8_t *cell = out + (size_t)(i / cols) * H * row_bytes + (size_t)(i % cols) * W * C;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    cell[(size_t)y * row_bytes + (size_t)x * C + c] =
                        pixel_to_u8(img[(size_t)c * plane + (size_t)y * W + x]);
    }
}

ddpm_status ddpm_write_png(const char *path, const float *images, int n, int cols,
                           const ddpm_info *info) {
    if (!path || !images || !info) {
        err_set("ddpm_write_png: path, images or info is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    const int C = info->channels, H = info->height, W = info->width;
    if (C != 1 && C != 3) {
        err_set("%s: images of %d channels; a PNG is written from 1 (grey) or 3 (RGB)", path, C);
        return DDPM_ERR_ARGUMENT;
    }
    if (n < 1 || cols < 1 || H < 1 || W < 1) {
        err_set("%s: %d images of %d x %d in %d columns: every count must be at least 1", path,
                n, H, W, cols);
        return DDPM_ERR_ARGUMENT;
    }
    const int64_t rows = ((int64_t)n + cols - 1) / cols;
    if ((int64_t)cols * W > GRID_MAX_SIDE || rows * H > GRID_MAX_SIDE) {
        err_set("%s: a grid of %lld x %lld pixels is too large (at most %d a side)", path,
                (long long)cols * W, (long long)rows * H, GRID_MAX_SIDE);
        return DDPM_ERR_ARGUMENT;
    }
    uint8_t *pix = xmalloc((size_t)rows * H * (size_t)cols * W * C);
    grid_tile(pix, images, n, cols, C, H, W);
    int rc = C == 3 ? png_write_rgb(path, pix, cols * W, (int)rows * H)
                    : png_write_gray(path, pix, cols * W, (int)rows * H);
    xfree(pix);
    return rc == 0 ? DDPM_OK : DDPM_ERR_IO;
}
