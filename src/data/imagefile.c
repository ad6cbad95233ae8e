/* PNG and JPEG decoding from memory. libpng's simplified API (png_image) does the conversions
 * and reports errors as a message; libjpeg reports by longjmp, caught in jpeg_run, whose
 * caller holds every value that must survive the jump. libjpeg's warnings of damaged data
 * (it would pad a cut-short file with grey and decode on) are errors here. */
#include "data/imagefile.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "core/common.h"

static int is_png(const unsigned char *buf, size_t size) {
    return size >= 8 && png_sig_cmp(buf, 0, 8) == 0;
}

static int is_jpeg(const unsigned char *buf, size_t size) {
    return size >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff;
}

int imagefile_sniff(const unsigned char *buf, size_t size) {
    return is_png(buf, size) || is_jpeg(buf, size);
}

void imagefile_free(DecodedImage *im) {
    if (!im) return;
    xfree(im->pixels);
    memset(im, 0, sizeof *im);
}

static int too_large(const char *name, uint64_t w, uint64_t h, uint64_t max_pixels) {
    return err_set("%s: %llux%llu pixels is more than this program decodes (%llu)", name,
                   (unsigned long long)w, (unsigned long long)h, (unsigned long long)max_pixels);
}

static int png_decode(DecodedImage *out, const unsigned char *buf, size_t size,
                      const char *name, uint64_t max_pixels) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, buf, size))
        return err_set("%s: damaged PNG (%s)", name, im.message);
    /* 16-bit files without gamma information hold sRGB values like 8-bit ones (libpng's
     * default would take them as linear light and brighten them) */
    im.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    if ((uint64_t)im.width * im.height > max_pixels) {
        png_image_free(&im);
        return too_large(name, im.width, im.height, max_pixels);
    }
    out->channels = im.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    out->had_alpha = (im.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    out->deep = (im.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    im.format = out->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    /* zeroed: with no background given, libpng composites the alpha onto the buffer */
    uint8_t *pix = xcalloc(PNG_IMAGE_SIZE(im), 1);
    if (!png_image_finish_read(&im, NULL, pix, 0, NULL)) {
        xfree(pix);
        return err_set("%s: damaged or truncated PNG (%s)", name, im.message);
    }
    out->width = (int)im.width;
    out->height = (int)im.height;
    out->pixels = pix;
    return 0;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} JpegError;

static void on_jpeg_error(j_common_ptr c) {
    JpegError *e = (JpegError *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* level -1: a warning. Those that mean damaged image data (libjpeg would go on and fill the
 * picture with grey or garbage) are errors; the others (junk between markers, an odd JFIF
 * version or ICC profile) leave the image intact and are ignored. */
static void on_jpeg_message(j_common_ptr c, int level) {
    if (level != -1) return;
    switch (c->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_BOGUS_PROGRESSION:
        on_jpeg_error(c);
        break;
    default:
        break;
    }
}

/* The decode between the setjmp and its longjmp: out and e live in the caller. */
static int jpeg_run(struct jpeg_decompress_struct *d, JpegError *e, DecodedImage *out,
                    const unsigned char *buf, size_t size, const char *name,
                    uint64_t max_pixels) {
    if (setjmp(e->jump)) return -1;
    jpeg_create_decompress(d);
    jpeg_mem_src(d, buf, (unsigned long)size);
    jpeg_read_header(d, TRUE);
    if (d->num_components != 1 && d->num_components != 3) {
        snprintf(e->msg, sizeof e->msg, "%d colour components (CMYK?) are not read; save it "
                 "as grey or RGB", d->num_components);
        return -1;
    }
    if ((uint64_t)d->image_width * d->image_height > max_pixels) {
        too_large(name, d->image_width, d->image_height, max_pixels);
        e->msg[0] = 0;
        return -1;
    }
    d->out_color_space = d->num_components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(d);
    size_t row = (size_t)d->output_width * (size_t)d->output_components;
    out->pixels = xmalloc(row * d->output_height);
    out->width = (int)d->output_width;
    out->height = (int)d->output_height;
    out->channels = d->output_components;
    while (d->output_scanline < d->output_height) {
        JSAMPROW r = out->pixels + row * d->output_scanline;
        jpeg_read_scanlines(d, &r, 1);
    }
    jpeg_finish_decompress(d);
    return 0;
}

static int jpeg_decode(DecodedImage *out, const unsigned char *buf, size_t size,
                       const char *name, uint64_t max_pixels) {
    struct jpeg_decompress_struct d;
    JpegError e;
    memset(&d, 0, sizeof d);
    memset(&e, 0, sizeof e);
    d.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = on_jpeg_error;
    e.mgr.emit_message = on_jpeg_message;
    int rc = jpeg_run(&d, &e, out, buf, size, name, max_pixels);
    jpeg_destroy_decompress(&d);
    if (rc) {
        imagefile_free(out);
        if (!e.msg[0]) return -1; /* err_msg() already says why */
        return err_set("%s: damaged or truncated JPEG (%s)", name, e.msg);
    }
    return 0;
}

int imagefile_decode(DecodedImage *out, const unsigned char *buf, size_t size, const char *name,
                     uint64_t max_pixels) {
    memset(out, 0, sizeof *out);
    if (size == 0) return err_set("%s: is empty (0 bytes), not an image", name);
    if (is_png(buf, size)) return png_decode(out, buf, size, name, max_pixels);
    if (is_jpeg(buf, size)) return jpeg_decode(out, buf, size, name, max_pixels);
    return err_set("%s: is not a PNG or JPEG image (its first bytes say otherwise)", name);
}
