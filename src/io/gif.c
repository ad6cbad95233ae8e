/* Animated grayscale GIF with giflib: a 256-level gray palette (pixel value = palette index),
 * the NETSCAPE2.0 extension so viewers loop forever, and a graphics control extension per
 * frame for its delay. Output goes through an AtomicFile via giflib's output callback. */
#include <stdio.h>
#include <string.h>

#include <gif_lib.h>

#include "core/common.h"
#include "core/pixel.h"
#include "io/fileio.h"
#include "io/image.h"

typedef struct {
    AtomicFile *af;
    int failed; /* atomic_write failed; err_msg() says why */
} GifSink;

static int on_gif_write(GifFileType *gif, const GifByteType *data, int n) {
    GifSink *s = gif->UserData;
    if (n <= 0) return n;
    if (s->failed || atomic_write(s->af, data, (size_t)n)) {
        s->failed = 1;
        return 0; /* giflib sees a short write and reports E_GIF_ERR_WRITE_FAILED */
    }
    return n;
}

/* The frames, through giflib's low-level API. Returns 0 or a giflib error code (> 0). */
static int gif_encode(GifFileType *gif, const uint8_t *frames, int nframes, int w, int h,
                      int delay_cs, int last_delay_cs) {
    GifColorType colors[256];
    for (int i = 0; i < 256; i++) colors[i].Red = colors[i].Green = colors[i].Blue = (GifByteType)i;
    ColorMapObject *cmap = GifMakeMapObject(256, colors);
    if (!cmap) return E_GIF_ERR_NOT_ENOUGH_MEM;
    /* Without this giflib writes "GIF87a", which has no extensions. */
    EGifSetGifVersion(gif, true);
    int ok = EGifPutScreenDesc(gif, w, h, 8, 0, cmap) == GIF_OK;
    GifFreeMapObject(cmap);
    if (!ok) return gif->Error;

    /* NETSCAPE2.0 application extension: sub-block {1, loop count lo, hi}, 0 = forever. */
    static const GifByteType loop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
        EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") != GIF_OK ||
        EGifPutExtensionBlock(gif, 3, loop) != GIF_OK || EGifPutExtensionTrailer(gif) != GIF_OK)
        return gif->Error;

    for (int f = 0; f < nframes; f++) {
        int delay = f == nframes - 1 ? last_delay_cs : delay_cs;
        GraphicsControlBlock gcb = {
            .DisposalMode = DISPOSAL_UNSPECIFIED,
            .UserInputFlag = false,
            .DelayTime = delay,
            .TransparentColor = NO_TRANSPARENT_COLOR,
        };
        GifByteType ext[4];
        size_t len = EGifGCBToExtension(&gcb, ext);
        if (EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, (int)len, ext) != GIF_OK ||
            EGifPutImageDesc(gif, 0, 0, w, h, false, NULL) != GIF_OK)
            return gif->Error;
        const uint8_t *img = frames + (size_t)f * (size_t)w * (size_t)h;
        for (int y = 0; y < h; y++)
            if (EGifPutLine(gif, (GifPixelType *)(img + (size_t)y * (size_t)w), w) != GIF_OK)
                return gif->Error;
    }
    return 0;
}

int gif_write_gray(const char *path, const uint8_t *frames, int nframes, int w, int h,
                   int delay_cs, int last_delay_cs) {
    /* The GIF header stores sizes and delays as unsigned 16-bit numbers. */
    if (nframes <= 0 || w <= 0 || h <= 0 || w > 65535 || h > 65535)
        return err_set("%s: cannot write %d frames of %d x %d as a GIF", path, nframes, w, h);
    if (delay_cs < 0 || delay_cs > 65535 || last_delay_cs < 0 || last_delay_cs > 65535)
        return err_set("%s: GIF frame delays must be 0 to 65535 hundredths of a second", path);
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    GifSink sink = {.af = &af};
    int err = 0;
    GifFileType *gif = EGifOpen(&sink, on_gif_write, &err);
    if (!gif) {
        atomic_abort(&af);
        return err_set("%s: cannot start GIF encoding: %s", path, GifErrorString(err));
    }
    int enc_err = gif_encode(gif, frames, nframes, w, h, delay_cs, last_delay_cs);
    int close_err = 0;
    /* EGifCloseFile writes the trailer and frees gif whatever happens. */
    if (EGifCloseFile(gif, &close_err) != GIF_OK && !enc_err) enc_err = close_err;
    if (enc_err || sink.failed) {
        atomic_abort(&af);
        if (sink.failed) return -1;
        const char *why = GifErrorString(enc_err);
        return err_set("%s: GIF encoding failed: %s", path, why ? why : "unknown giflib error");
    }
    return atomic_commit(&af);
}

int gif_write_grid(const char *path, const float *frames, size_t frame_stride, int nframes,
                   const PixelGrid *g, int delay_cs, int last_delay_cs) {
    int64_t W, H;
    if (nframes <= 0 || pixel_grid_size(g, &W, &H) != 0)
        return err_set("%s: invalid GIF grid (%d frames of %d images of %d x %d)", path, nframes,
                       g->n, g->h, g->w);
    if (W > 65535 || H > 65535)
        return err_set("%s: grid of %lld x %lld pixels is too large for a GIF", path,
                       (long long)W, (long long)H);
    const size_t fb = (size_t)W * (size_t)H;
    uint8_t *pix = xmalloc((size_t)nframes * fb);
    for (int f = 0; f < nframes; f++)
        pixel_grid_tile(pix + (size_t)f * fb, g, frames + (size_t)f * frame_stride);
    int rc = gif_write_gray(path, pix, nframes, (int)W, (int)H, delay_cs, last_delay_cs);
    xfree(pix);
    return rc;
}
