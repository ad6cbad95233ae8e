/* PNG input through libpng's simplified API (png_image), which does the conversions to
 * 8-bit grey itself and reports errors as a message instead of a longjmp. */
#include "io/png_read.h"

#include <stdio.h>
#include <string.h>

#include <png.h>

#include "core/common.h"

/* The largest image read: far above any grid of samples, far below a memory problem. */
#define PNG_READ_MAX_PIXELS (1 << 28)

int png_is_png(const char *path) {
    unsigned char sig[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(sig, 1, sizeof sig, f);
    fclose(f);
    return got == sizeof sig && png_sig_cmp(sig, 0, sizeof sig) == 0;
}

int png_read_gray(const char *path, uint8_t **pix, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    *pix = NULL;
    if (!png_image_begin_read_from_file(&im, path))
        return err_set("%s: cannot read as PNG (%s)", path, im.message);
    if ((uint64_t)im.width * im.height > PNG_READ_MAX_PIXELS) {
        png_image_free(&im);
        return err_set("%s: %ux%u pixels is more than this program reads", path, im.width,
                       im.height);
    }
    im.format = PNG_FORMAT_GRAY;
    uint8_t *buf = xmalloc(PNG_IMAGE_SIZE(im));
    if (!png_image_finish_read(&im, NULL, buf, 0, NULL)) {
        xfree(buf);
        return err_set("%s: damaged PNG (%s)", path, im.message);
    }
    *pix = buf;
    *w = (int)im.width;
    *h = (int)im.height;
    return 0;
}
