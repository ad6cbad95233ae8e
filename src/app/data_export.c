/* MNIST-format IDX files written as PNG class folders (data_export.h), for trying the folder
 * loader on data anyone can fetch. */
#include "app/data_export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "core/common.h"
#include "data/mnist.h"
#include "io/fileio.h"

/* One PNG of side x side pixels (channels 1 or 3, interleaved): encoded in memory by libpng,
 * written to a temporary file that is renamed into place. Unlike io/'s writers this does not
 * fsync each file: 70000 fsyncs take minutes, and an export is made again by running it again;
 * a crash still leaves no half-written PNG under a final name. */
static int write_png(const char *path, const uint8_t *pix, int side, int channels) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)side;
    im.height = (png_uint_32)side;
    im.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    png_alloc_size_t len = PNG_IMAGE_PNG_SIZE_MAX(im);
    unsigned char *buf = malloc(len);
    if (!buf) return err_set("%s: out of memory", path);
    if (!png_image_write_to_memory(&im, buf, &len, 0, pix, 0, NULL)) {
        free(buf);
        return err_set("%s: cannot encode the PNG (%s)", path, im.message);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(buf);
        return err_set("%s: cannot create: %s", tmp, strerror(errno));
    }
    int ok = fwrite(buf, 1, len, f) == len;
    free(buf);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return err_set("%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

void data_export_tint(uint8_t rgb[3], int k) {
    /* HSV to RGB at V = 1, S = 0.75: the largest channel is 255, the smallest 64 */
    const double h = (k % 10) * 36.0 / 60.0, lo = 0.25;
    const int sector = (int)h;
    const double f = h - sector, up = lo + (1 - lo) * f, down = 1 - (1 - lo) * f;
    static const int order[6][3] = {{0, 2, 1}, {3, 0, 1}, {1, 0, 2}, {1, 3, 0}, {2, 1, 0},
                                    {0, 1, 3}}; /* per sector: 0 = 1, 1 = lo, 2 = up, 3 = down */
    const double v[4] = {1, lo, up, down};
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lround(255 * v[order[sector][c]]);
}

/* Digit (28, 28) into dst (side, side, channels), centred with zeros around, grey or tinted
 * in the colour of its label. */
static void export_image(uint8_t *dst, const uint8_t *digit, int label, int side, int tint) {
    const int channels = tint ? 3 : 1, off = (side - MNIST_W) / 2;
    uint8_t rgb[3] = {255, 255, 255};
    if (tint) data_export_tint(rgb, label);
    memset(dst, 0, (size_t)side * side * channels);
    for (int y = 0; y < MNIST_H; y++)
        for (int x = 0; x < MNIST_W; x++)
            for (int c = 0; c < channels; c++) {
                const int v = digit[y * MNIST_W + x];
                dst[((size_t)(y + off) * side + x + off) * channels + c] =
                    (uint8_t)((v * rgb[c] + 127) / 255);
            }
}

static int export_split(const char *out_dir, const char *idx_dir, int train,
                        const DataExportOptions *o, const Progress *p) {
    MnistSplit m;
    if (mnist_load(idx_dir, train, &m)) return -1;
    const char *split = train ? "train" : "test";
    const int side = o->pad > 0 ? o->pad : MNIST_W, channels = o->tint ? 3 : 1;
    int n = o->limit > 0 && o->limit < m.n ? o->limit : m.n, rc = 0;
    uint8_t *img = malloc((size_t)side * side * channels);
    if (!img) rc = err_set("out of memory");
    char path[4096];
    int made[256] = {0}; /* class folders are made as their first image comes */
    for (int i = 0; i < n && !rc; i++) {
        if (!made[m.labels[i]]) {
            snprintf(path, sizeof path, "%s/%s/%u", out_dir, split, (unsigned)m.labels[i]);
            rc = make_dirs(path);
            made[m.labels[i]] = 1;
            if (rc) break;
        }
        int len = snprintf(path, sizeof path, "%s/%s/%u/%05d.png", out_dir, split,
                           (unsigned)m.labels[i], i);
        if (len < 0 || (size_t)len >= sizeof path) {
            rc = err_set("%s: path too long", out_dir);
            break;
        }
        export_image(img, m.images + (size_t)i * MNIST_PIXELS, m.labels[i], side, o->tint);
        rc = write_png(path, img, side, channels);
        if ((i + 1) % 1000 == 0 || i + 1 == n) progress_count(p, "exporting", i + 1, n);
    }
    if (!rc)
        progress_log(p, "%d %s images in %s/%s\n", n, split, out_dir, split);
    free(img);
    mnist_free(&m);
    return rc;
}

int data_export_png(const char *out_dir, const char *idx_dir, const DataExportOptions *o,
                    const Progress *p) {
    if (o->pad != 0 && (o->pad < MNIST_W || o->pad > 1024))
        return err_set("padding to %d: the side must be from %d to 1024", o->pad, MNIST_W);
    if (export_split(out_dir, idx_dir, 1, o, p)) return -1;
    return export_split(out_dir, idx_dir, 0, o, p);
}
