/* Images out: PNG (libpng), animated GIF (giflib), and labelled figure grids and line
 * plots drawn with cairo. Pixel inputs are floats in [0, 1] (clamped) unless stated. */
#ifndef DDPM_IMAGE_H
#define DDPM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/pixel.h"

/* 8-bit grayscale PNG of w x h pixels, written atomically. Returns 0 or -1 + err_msg(). */
int png_write_gray(const char *path, const uint8_t *pix, int w, int h);
/* 8-bit RGB PNG of w x h pixels (h rows of w interleaved r, g, b bytes), atomically. */
int png_write_rgb(const char *path, const uint8_t *pix, int w, int h);

/* Tile n images (each h x w floats) into a grid of `cols` columns with `pad` pixels of
 * padding, scaled up by an integer `scale`; writes a grayscale PNG. */
int png_write_grid(const char *path, const float *imgs, int n, int h, int w, int cols, int pad,
                   int scale);

/* A figure: rows x cols images (each h x w floats, row-major over the grid) with an optional
 * title, a label left of each row and above each column (any label array may be NULL).
 * Drawn with cairo, written as PNG. */
int figure_grid_png(const char *path, const float *imgs, int rows, int cols, int h, int w,
                    const char *title, const char *const *row_labels,
                    const char *const *col_labels);
/* The same for images of ch planes each (1: grey, 3: R, G, B planes, each h x w). */
int figure_grid_png_c(const char *path, const float *imgs, int rows, int cols, int ch, int h,
                      int w, const char *title, const char *const *row_labels,
                      const char *const *col_labels);

/* Line plot of y[0..n-1] against the index (1-based step), with axes, ticks, axis labels and
 * title; draws a moving average (window smooth, 0 = none) over the raw curve; log_y selects
 * a logarithmic y axis. PNG via cairo. */
int plot_curve_png(const char *path, const float *y, int n, const char *title,
                   const char *xlabel, const char *ylabel, int smooth, int log_y);

/* Animated GIF of nframes grayscale frames (each h x w bytes), delay in 1/100 s per frame,
 * the last frame held for last_delay_cs; loops forever. Written atomically. */
int gif_write_gray(const char *path, const uint8_t *frames, int nframes, int w, int h,
                   int delay_cs, int last_delay_cs);
/* The same from float images: frame f is the grid g of the g->n images (each g->h x g->w, in
 * the data scale) starting at frames + f * frame_stride. */
int gif_write_grid(const char *path, const float *frames, size_t frame_stride, int nframes,
                   const PixelGrid *g, int delay_cs, int last_delay_cs);

#endif
