/* MNIST: where the data lives and loading one split (images and labels) from its IDX files,
 * gzip-compressed or not, with the checks that turn a wrong or damaged file into a clear
 * sentence. Fetching the files over the network is in fetch.c. */
#include "data/mnist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/idx.h"
#include "io/fileio.h"

const char *mnist_data_dir(const char *option) {
    if (option && *option) return option;
    const char *env = getenv("DDPM_DATA");
    if (env && *env) return env;
    return "./data/mnist";
}

/* Pick dir/NAME.gz, else dir/NAME. Writes the chosen path into buf; if neither exists,
 * sets the error (naming both) and returns -1. */
static int find_file(const char *dir, const char *name, char *buf, size_t cap) {
    for (int plain = 0; plain <= 1; plain++) {
        int n = snprintf(buf, cap, "%s/%s%s", dir, name, plain ? "" : ".gz");
        if (n < 0 || (size_t)n >= cap) return err_set("%s: data directory path too long", dir);
        if (path_exists(buf)) return 0;
    }
    return err_set("%s/%s.gz: no such file (nor %s without .gz); set DDPM_DATA to a "
                   "directory holding MNIST, or fetch it first",
                   dir, name, name);
}

int mnist_load(const char *dir, int train, MnistSplit *out) {
    memset(out, 0, sizeof *out);
    const char *prefix = train ? "train" : "t10k";
    char name[64], img_path[4096], lab_path[4096];

    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (find_file(dir, name, img_path, sizeof img_path)) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if (find_file(dir, name, lab_path, sizeof lab_path)) return -1;

    IdxArray img, lab;
    const uint32_t img_dims[3] = {0, MNIST_H, MNIST_W};
    if (idx_read_expect(img_path, &img, 3, img_dims)) return -1;
    if (idx_read_expect(lab_path, &lab, 1, NULL)) {
        idx_free(&img);
        return -1;
    }
    int rc = -1;
    if (img.dims[0] == 0) {
        err_set("%s: contains no images", img_path);
    } else if (img.dims[0] > (uint32_t)0x7fffffff) {
        err_set("%s: too many images (%u)", img_path, img.dims[0]);
    } else if (lab.dims[0] != img.dims[0]) {
        err_set("%s: has %u labels but %s has %u images; the two files do not belong together",
                lab_path, lab.dims[0], img_path, img.dims[0]);
    } else {
        rc = 0;
        for (size_t i = 0; i < lab.count; i++) {
            if (lab.data[i] > 9) {
                rc = err_set("%s: label %u at index %zu is not a digit 0-9", lab_path,
                             lab.data[i], i);
                break;
            }
        }
    }
    if (rc) {
        idx_free(&img);
        idx_free(&lab);
        return -1;
    }
    out->n = (int)img.dims[0];
    out->images = img.data;
    out->labels = lab.data;
    return 0;
}

void mnist_free(MnistSplit *s) {
    if (!s) return;
    xfree(s->images);
    xfree(s->labels);
    memset(s, 0, sizeof *s);
}
