/* PNG input with libpng: any PNG (grey, RGB, palette, with alpha, 16-bit) read as 8-bit grey,
 * for judging images written by ddpm or by another tool. */
#ifndef DDPM_PNG_READ_H
#define DDPM_PNG_READ_H

#include <stdint.h>

/* 1 when the file starts with the PNG signature, 0 when not (or unreadable). */
int png_is_png(const char *path);

/* *pix (h x w bytes, row-major, xfree) from path: grey as stored; colour turned grey by
 * libpng (its sRGB luminance); alpha composited onto black. Returns 0 or -1 + err_msg(). */
int png_read_gray(const char *path, uint8_t **pix, int *w, int *h);

#endif
