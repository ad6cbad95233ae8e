/* Pixel conversion and grid tiling (see pixel.h). */
#include "core/pixel.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

/* Round half to even (lrintf in the default rounding mode, which nothing here changes),
 * chosen over round-half-up for two reasons: it is what the IDX and GIF files have always
 * held, so every exported sample and every evaluation number (computed from the IDX bytes)
 * stays as it was, and only PNG pixels at an exact half move; and it has no bias and no
 * double rounding, where v * 255 + 0.5f can itself round up (0.49999997f + 0.5f is 1). A byte
 * b makes the round trip pixel_to_u8(pixel_from_u8(b)) == b under either rule. */
uint8_t pixel_to_u8(float v) {
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 1.0f) return 255;
    return (uint8_t)lrintf(v * 255.0f);
}

void pixels_to_u8(uint8_t *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = pixel_to_u8(in[i]);
}

void pixels_from_u8(float *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = pixel_from_u8(in[i]);
}

int pixel_grid_size(const PixelGrid *g, int64_t *W, int64_t *H) {
    if (g->n < 1 || g->h < 1 || g->w < 1 || g->cols < 1 || g->pad < 0 || g->scale < 1) return -1;
    int64_t cols = g->cols < g->n ? g->cols : g->n;
    int64_t rows = (g->n + cols - 1) / cols;
    *W = g->pad + cols * ((int64_t)g->w * g->scale + g->pad);
    *H = g->pad + rows * ((int64_t)g->h * g->scale + g->pad);
    return 0;
}

void pixel_grid_tile(uint8_t *out, const PixelGrid *g, const float *imgs) {
    int64_t W, H;
    DDPM_CHECK(pixel_grid_size(g, &W, &H) == 0);
    memset(out, g->background, (size_t)W * (size_t)H);
    int cols = g->cols < g->n ? g->cols : g->n;
    int64_t cw = (int64_t)g->w * g->scale, ch = (int64_t)g->h * g->scale;
    for (int i = 0; i < g->n; i++) {
        const float *img = imgs + (size_t)i * (size_t)g->h * (size_t)g->w;
        int64_t x0 = g->pad + (int64_t)(i % cols) * (cw + g->pad);
        int64_t y0 = g->pad + (int64_t)(i / cols) * (ch + g->pad);
        for (int64_t y = 0; y < ch; y++) {
            uint8_t *row = out + (size_t)(y0 + y) * (size_t)W + (size_t)x0;
            const float *src = img + (size_t)(y / g->scale) * (size_t)g->w;
            for (int64_t x = 0; x < cw; x++) row[x] = pixel_to_u8(src[x / g->scale]);
        }
    }
}
