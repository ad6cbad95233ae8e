/* PNG output with libpng: 8-bit grayscale and RGB images and tiled grids of float images, written
 * through an AtomicFile so a failed write never replaces a good picture. libpng reports
 * errors by longjmp; they are turned into err_set messages here. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "core/common.h"
#include "core/pixel.h"
#include "io/fileio.h"
#include "io/image.h"

/* PNG allows 2^31-1 per side; anything near that is a bug in the caller. */
#define PNG_MAX_SIDE 32768

typedef struct {
    AtomicFile *af;
    int failed;       /* an atomic_write failed; err_msg() has why */
    char msg[200];    /* libpng's own error text */
} PngSink;

static void on_png_error(png_structp png, png_const_charp msg) {
    PngSink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_png_write(png_structp png, png_bytep data, size_t n) {
    PngSink *s = png_get_io_ptr(png);
    if (atomic_write(s->af, data, n)) {
        s->failed = 1;
        png_error(png, "write failed");
    }
}

static void on_png_flush(png_structp png) { (void)png; }

/* Encode with libpng into sink. The setjmp lives here and sink in the caller, so nothing
 * this function changes after setjmp is read after the longjmp (which C would leave
 * indeterminate). Returns 0, or -1 with sink->msg or sink->failed saying why. */
static int png_encode(PngSink *sink, const uint8_t *pix, int w, int h, int channels) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, on_png_error,
                                              on_png_warning);
    if (!png) return -1;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, sink, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pix + (size_t)y * (size_t)w * (size_t)channels));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* An 8-bit PNG of 1 (gray) or 3 (RGB, interleaved) channels, atomically. */
static int png_write_channels(const char *path, const uint8_t *pix, int w, int h, int channels) {
    if (w <= 0 || h <= 0 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE)
        return err_set("%s: cannot write a %d x %d image", path, w, h);
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    PngSink sink = {.af = &af, .msg = "cannot initialise libpng"};
    if (png_encode(&sink, pix, w, h, channels)) {
        atomic_abort(&af);
        if (sink.failed) return -1;
        return err_set("%s: PNG encoding failed: %s", path, sink.msg);
    }
    return atomic_commit(&af);
}

int png_write_gray(const char *path, const uint8_t *pix, int w, int h) {
    return png_write_channels(path, pix, w, h, 1);
}

int png_write_rgb(const char *path, const uint8_t *pix, int w, int h) {
    return png_write_channels(path, pix, w, h, 3);
}

int png_write_grid(const char *path, const float *imgs, int n, int h, int w, int cols, int pad,
                   int scale) {
    /* Mid-gray padding keeps tiles apart whether the digits are dark or light. */
    const PixelGrid g = {.n = n, .h = h, .w = w, .cols = cols, .pad = pad, .scale = scale,
                         .background = 128};
    int64_t W, H;
    if (pixel_grid_size(&g, &W, &H) != 0)
        return err_set("%s: invalid grid (%d images of %d x %d, %d columns, pad %d, scale %d)",
                       path, n, h, w, cols, pad, scale);
    if (W > PNG_MAX_SIDE || H > PNG_MAX_SIDE)
        return err_set("%s: grid of %lld x %lld pixels is too large", path, (long long)W,
                       (long long)H);
    uint8_t *pix = xmalloc((size_t)W * (size_t)H);
    pixel_grid_tile(pix, &g, imgs);
    int rc = png_write_gray(path, pix, (int)W, (int)H);
    xfree(pix);
    return rc;
}
