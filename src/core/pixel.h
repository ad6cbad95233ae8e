/* Gray pixels between the data scale (floats, 0 black .. 1 white) and bytes (0..255), and
 * tiling images into a grid: the one conversion every writer (PNG, GIF, IDX, figures) and
 * every reader of MNIST bytes uses, so a sample holds the same gray levels in every file. */
#ifndef DDPM_PIXEL_H
#define DDPM_PIXEL_H

#include <stddef.h>
#include <stdint.h>

/* A byte as a float in the data scale: b / 255, exactly as training has always seen it. */
static inline float pixel_from_u8(uint8_t b) { return (float)b / 255.0f; }

/* A float in the data scale as a byte: clamp to [0, 1], scale by 255, round half to even
 * (NaN gives 0). See pixel.c for why this rounding. */
uint8_t pixel_to_u8(float v);

/* out (n) = pixel_to_u8(in (n)) and out (n) = pixel_from_u8(in (n)). */
void pixels_to_u8(uint8_t *out, const float *in, size_t n);
void pixels_from_u8(float *out, const uint8_t *in, size_t n);

/* n images of h x w pixels in a grid of `cols` columns (fewer when n < cols), each scaled up
 * by an integer `scale` (nearest neighbour), with `pad` pixels of `background` around and
 * between them. */
typedef struct {
    int n, h, w;
    int cols;
    int pad;
    int scale;
    uint8_t background;
} PixelGrid;

/* The grid's size in pixels (64-bit, so callers can check it against their format's limit
 * before allocating). Returns 0, or -1 when a field is out of range (n, h, w, cols, scale
 * < 1 or pad < 0); no error message is set. */
int pixel_grid_size(const PixelGrid *g, int64_t *W, int64_t *H);
/* out (H, W) bytes = the grid of imgs (n, h, w) in the data scale; W and H as
 * pixel_grid_size gives them for a valid g. */
void pixel_grid_tile(uint8_t *out, const PixelGrid *g, const float *imgs);

#endif
