/* CIFAR-10's binary batches read into an image set. The pixel bytes are already planar per
 * image (R, G, B planes of 32x32), the layout of ImageSet, so each record's 3072 bytes are
 * copied as they are. */
#include "data/cifar.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "io/fileio.h"

/* One batch file is 30,730,000 bytes; anything far above is not CIFAR-10. */
#define CIFAR_MAX_FILE ((size_t)1 << 28)
#define CIFAR_META_MAX 65536

static const char *const CIFAR_NAMES[CIFAR_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

static ImageGeom cifar_geometry(void) {
    ImageGeom g;
    memset(&g, 0, sizeof g);
    g.channels = 3;
    g.height = g.width = CIFAR_SIDE;
    g.classes = CIFAR_CLASSES;
    for (int i = 0; i < CIFAR_CLASSES; i++)
        snprintf(g.class_names[i], GEOMETRY_NAME_LEN, "%s", CIFAR_NAMES[i]);
    return g;
}

/* The folder that holds the batches: dir, or dir/cifar-10-batches-bin (the archive's). */
static void cifar_root(char *buf, size_t cap, const char *dir) {
    char probe[4096];
    static const char *const sub = "cifar-10-batches-bin";
    for (int nested = 1; nested >= 0; nested--) {
        const char *base = dir;
        if (nested) {
            snprintf(buf, cap, "%s/%s", dir, sub);
            base = buf;
        }
        snprintf(probe, sizeof probe, "%s/data_batch_1.bin", base);
        int hit = path_exists(probe);
        snprintf(probe, sizeof probe, "%s/test_batch.bin", base);
        if (hit || path_exists(probe)) {
            if (!nested) snprintf(buf, cap, "%s", dir);
            return;
        }
    }
    snprintf(buf, cap, "%s", dir);
}

int cifar_detect(const char *dir) {
    char root[4096], probe[4200];
    cifar_root(root, sizeof root, dir);
    snprintf(probe, sizeof probe, "%s/data_batch_1.bin", root);
    if (path_exists(probe)) return 1;
    snprintf(probe, sizeof probe, "%s/test_batch.bin", root);
    return path_exists(probe);
}

int cifar_read_mem(ImageSet *out, const unsigned char *buf, size_t size, const char *name) {
    if (size == 0) return err_set("%s: is empty (0 bytes), not a CIFAR-10 batch", name);
    if (size % CIFAR_RECORD)
        return err_set("%s: %zu bytes is not a whole number of CIFAR-10 records of %d bytes "
                       "(1 label byte and 3072 pixel bytes); truncated, or not CIFAR-10?",
                       name, size, CIFAR_RECORD);
    size_t records = size / CIFAR_RECORD;
    if (records > (size_t)0x7fffffff - (size_t)out->n)
        return err_set("%s: too many records", name);
    for (size_t r = 0; r < records; r++)
        if (buf[r * CIFAR_RECORD] >= CIFAR_CLASSES)
            return err_set("%s: record %zu has label %u; CIFAR-10 labels are 0-9 (CIFAR-100's "
                           "format, with two label bytes, is not read)",
                           name, r, buf[r * CIFAR_RECORD]);
    size_t img = CIFAR_RECORD - 1, n = (size_t)out->n + records;
    uint8_t *pixels = xmalloc(n * img);
    uint8_t *labels = xmalloc(n);
    if (out->n) {
        memcpy(pixels, out->pixels, (size_t)out->n * img);
        memcpy(labels, out->labels, (size_t)out->n);
    }
    for (size_t r = 0; r < records; r++) {
        labels[(size_t)out->n + r] = buf[r * CIFAR_RECORD];
        memcpy(pixels + ((size_t)out->n + r) * img, buf + r * CIFAR_RECORD + 1, img);
    }
    xfree(out->pixels);
    xfree(out->labels);
    out->pixels = pixels;
    out->labels = labels;
    out->n = (int)n;
    return 0;
}

/* batches.meta.txt: the class names, one a line (blank lines ignored, spaces trimmed). */
static int cifar_read_names(ImageGeom *g, const char *root) {
    char path[4200];
    snprintf(path, sizeof path, "%s/batches.meta.txt", root);
    if (!path_exists(path)) return 0;
    unsigned char *text;
    size_t len;
    if (read_file(path, CIFAR_META_MAX, &text, &len)) return -1;
    text[len] = 0;
    int k = 0, rc = 0;
    for (char *line = strtok((char *)text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (isspace((unsigned char)*line)) line++;
        size_t l = strlen(line);
        while (l && isspace((unsigned char)line[l - 1])) line[--l] = 0;
        if (!l) continue;
        if (k == CIFAR_CLASSES) {
            rc = err_set("%s: holds more than %d class names", path, CIFAR_CLASSES);
            break;
        }
        if (l >= GEOMETRY_NAME_LEN) {
            rc = err_set("%s: class name '%s' is longer than %d bytes", path, line,
                         GEOMETRY_NAME_LEN - 1);
            break;
        }
        snprintf(g->class_names[k++], GEOMETRY_NAME_LEN, "%s", line);
    }
    xfree(text);
    if (!rc && k != CIFAR_CLASSES)
        rc = err_set("%s: holds %d class names, CIFAR-10 has %d", path, k, CIFAR_CLASSES);
    return rc;
}

static int cifar_read_file(ImageSet *out, const char *path) {
    unsigned char *buf;
    size_t len;
    if (read_file(path, CIFAR_MAX_FILE, &buf, &len)) {
        if (!path_exists(path))
            return err_set("%s: no such file (CIFAR-10's binary version has data_batch_1.bin "
                           "to data_batch_5.bin and test_batch.bin)", path);
        return -1;
    }
    int rc = cifar_read_mem(out, buf, len, path);
    xfree(buf);
    return rc;
}

int cifar_load(ImageSet *out, const char *dir, int train) {
    memset(out, 0, sizeof *out);
    out->geom = cifar_geometry();
    char root[4096], path[4200];
    cifar_root(root, sizeof root, dir);
    if (cifar_read_names(&out->geom, root)) return -1;
    for (int i = 1; i <= (train ? CIFAR_TRAIN_FILES : 1); i++) {
        if (train) snprintf(path, sizeof path, "%s/data_batch_%d.bin", root, i);
        else snprintf(path, sizeof path, "%s/test_batch.bin", root);
        if (cifar_read_file(out, path)) {
            imageset_free(out);
            return -1;
        }
    }
    return 0;
}
