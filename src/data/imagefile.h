/* One image file decoded from memory: PNG through libpng, JPEG through libjpeg(-turbo), told
 * apart by their first bytes, into 8-bit grey or RGB as the file holds it. */
#ifndef DDPM_IMAGEFILE_H
#define DDPM_IMAGEFILE_H

#include <stddef.h>
#include <stdint.h>

/* The largest image decoded (width x height): far above any picture a small-image model is
 * trained on, far below a memory problem on a header that lies. */
#define IMAGEFILE_MAX_PIXELS ((uint64_t)1 << 25)

typedef struct {
    int width, height;
    int channels;    /* 1 (grey) or 3 (RGB), what the file holds */
    uint8_t *pixels; /* (H, W, channels) interleaved, 0..255 (xfree) */
    int had_alpha;   /* an alpha channel (or PNG transparency) was composited onto black */
    int deep;        /* the file held 16 bits per sample, reduced to 8 */
} DecodedImage;

/* 1 when buf starts like a PNG or JPEG file, else 0. */
int imagefile_sniff(const unsigned char *buf, size_t size);

/* Decode the PNG or JPEG file in buf (name: for messages). Transparency is composited onto
 * black (the background of MNIST-like data); 16-bit PNG samples are read as sRGB-encoded and
 * rounded to 8 bits; palette PNGs come out as grey or RGB; CMYK JPEGs are refused. An empty,
 * truncated or damaged file, or one that is neither PNG nor JPEG, is one sentence naming it.
 * An image of more than max_pixels (width x height; IMAGEFILE_MAX_PIXELS for the folder
 * loader) is refused before its pixels are decoded.
 * Returns 0, or -1 with err_msg() (out->pixels NULL). */
int imagefile_decode(DecodedImage *out, const unsigned char *buf, size_t size, const char *name,
                     uint64_t max_pixels);
void imagefile_free(DecodedImage *im);

#endif
