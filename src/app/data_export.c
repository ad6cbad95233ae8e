/* MNIST-format IDX files written as PNG class folders (data_export.h), for trying the folder
 * loader on data anyone can fetch. */
#include "app/data_export.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#include "core/common.h"
#include "data/mnist.h"
#include "io/fileio.h"

/* One 28x28 grey PNG: encoded in memory by libpng, written to a temporary file that is renamed
 * into place. Unlike io/'s writers this does not fsync each file: 70000 fsyncs take minutes,
 * and an export is made again by running it again; a crash still leaves no half-written PNG
 * under a final name. */
static int write_png(const char *path, const uint8_t *pix) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = MNIST_W;
    im.height = MNIST_H;
    im.format = PNG_FORMAT_GRAY;
    unsigned char buf[4096];
    png_alloc_size_t len = sizeof buf;
    if (!png_image_write_to_memory(&im, buf, &len, 0, pix, 0, NULL))
        return err_set("%s: cannot encode the PNG (%s)", path, im.message);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set("%s: cannot create: %s", tmp, strerror(errno));
    int ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return err_set("%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

static int export_split(const char *out_dir, const char *idx_dir, int train, int limit,
                        const Progress *p) {
    MnistSplit m;
    if (mnist_load(idx_dir, train, &m)) return -1;
    const char *split = train ? "train" : "test";
    int n = limit > 0 && limit < m.n ? limit : m.n, rc = 0;
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
        if (len < 0 || (size_t)len >= sizeof path) rc = err_set("%s: path too long", out_dir);
        else rc = write_png(path, m.images + (size_t)i * MNIST_PIXELS);
        if ((i + 1) % 1000 == 0 || i + 1 == n) progress_count(p, "exporting", i + 1, n);
    }
    if (!rc)
        progress_log(p, "%d %s images in %s/%s\n", n, split, out_dir, split);
    mnist_free(&m);
    return rc;
}

int data_export_png(const char *out_dir, const char *idx_dir, int limit, const Progress *p) {
    if (export_split(out_dir, idx_dir, 1, limit, p)) return -1;
    return export_split(out_dir, idx_dir, 0, limit, p);
}
