/* A folder of images into an image set: the listing (readdir, stat, the rules of folder.h),
 * then each file read, decoded (imagefile.c), cropped to its centred square and resized
 * (stb_image_resize) into a slot of the target size at the file's own channel count; the
 * colour mode is settled when every file has been seen, and the slots are turned into the
 * set's planar bytes. */
#include "data/folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <stb/stb_image_resize.h>

#include "core/common.h"
#include "data/imagefile.h"
#include "io/fileio.h"

/* One image file read whole: far above a photo, far below a memory problem. */
#define FOLDER_MAX_FILE ((size_t)1 << 28)
#define FOLDER_AUTO_MAX 64
#define FOLDER_PROGRESS_EVERY 100

/* ---------------------------------------------------------------------------------------
 * Listing. */

typedef struct {
    char **names;
    int n, cap;
} Names;

static void names_add(Names *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **grown = xmalloc((size_t)cap * sizeof *grown);
        if (l->n) memcpy(grown, l->names, (size_t)l->n * sizeof *grown);
        xfree(l->names);
        l->names = grown;
        l->cap = cap;
    }
    l->names[l->n++] = xstrdup(s);
}

static void names_free(Names *l) {
    for (int i = 0; i < l->n; i++) xfree(l->names[i]);
    xfree(l->names);
    memset(l, 0, sizeof *l);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg"));
}

/* The image files (by name) and folders of dir, each sorted; *skipped counts the other files.
 * Names starting with '.' are ignored. */
static int scan_dir(Names *files, Names *dirs, int *skipped, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return err_set("%s: no such folder", dir);
        if (errno == ENOTDIR) return err_set("%s: is a file, not a folder of images", dir);
        return err_set("%s: cannot open the folder: %s", dir, strerror(errno));
    }
    char path[4096];
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            rc = err_set("%s/%s: path too long", dir, e->d_name);
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            rc = err_set("%s: cannot read: %s", path, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (dirs) names_add(dirs, e->d_name);
        } else if (has_image_name(e->d_name)) {
            names_add(files, e->d_name);
        } else {
            (*skipped)++;
        }
    }
    closedir(d);
    if (rc) return -1;
    if (files->n) qsort(files->names, (size_t)files->n, sizeof *files->names, cmp_name);
    if (dirs && dirs->n) qsort(dirs->names, (size_t)dirs->n, sizeof *dirs->names, cmp_name);
    return 0;
}

/* Append the files of names (in folder sub of dir, "" for dir itself) with their label. */
static int listing_add(FolderListing *l, int *cap, const char *dir, const char *sub,
                       const Names *names, int label) {
    for (int i = 0; i < names->n; i++) {
        if (l->n == *cap) {
            *cap = *cap ? 2 * *cap : 256;
            FolderFile *grown = xmalloc((size_t)*cap * sizeof *grown);
            if (l->n) memcpy(grown, l->files, (size_t)l->n * sizeof *grown);
            xfree(l->files);
            l->files = grown;
        }
        size_t len = strlen(dir) + strlen(sub) + strlen(names->names[i]) + 3;
        FolderFile *f = &l->files[l->n];
        f->path = xmalloc(len);
        snprintf(f->path, len, "%s/%s%s%s", dir, sub, *sub ? "/" : "", names->names[i]);
        f->rel = f->path + strlen(dir) + 1;
        f->label = label;
        struct stat st;
        if (stat(f->path, &st) != 0) {
            err_set("%s: cannot read: %s", f->path, strerror(errno));
            xfree(f->path);
            return -1;
        }
        f->bytes = (long long)st.st_size;
        f->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        l->n++;
    }
    return 0;
}

/* The class folders of dir, each with its images. */
static int list_classes(FolderListing *out, int *cap, const char *dir, const Names *dirs,
                        const Progress *p) {
    if (dirs->n > GEOMETRY_MAX_CLASSES)
        return err_set("%s: %d class folders; at most %d classes are supported", dir, dirs->n,
                       GEOMETRY_MAX_CLASSES);
    char sub[4096];
    for (int c = 0; c < dirs->n; c++) {
        const char *name = dirs->names[c];
        snprintf(sub, sizeof sub, "%s/%s", dir, name);
        if (strlen(name) >= GEOMETRY_NAME_LEN)
            return err_set("%s: class folder name is longer than %d bytes; rename it", sub,
                           GEOMETRY_NAME_LEN - 1);
        snprintf(out->class_names[c], GEOMETRY_NAME_LEN, "%s", name);
        Names files = {0};
        int rc = scan_dir(&files, NULL, &out->skipped, sub);
        if (!rc && files.n == 0)
            rc = err_set("%s: class folder holds no images (PNG or JPEG files directly in it)",
                         sub);
        if (!rc && files.n == 1)
            progress_log(p, "warning: %s: class '%s' has a single image (%s)\n", sub, name,
                         files.names[0]);
        if (!rc) rc = listing_add(out, cap, dir, name, &files, c);
        names_free(&files);
        if (rc) return -1;
    }
    out->classes = dirs->n;
    return 0;
}

int folder_list(FolderListing *out, const char *dir, const Progress *p) {
    memset(out, 0, sizeof *out);
    Names files = {0}, dirs = {0};
    int cap = 0;
    int rc = scan_dir(&files, &dirs, &out->skipped, dir);
    if (!rc && dirs.n > 0 && files.n > 0)
        rc = err_set("%s/%s: an image beside the class folders of %s; move it into one, or "
                     "remove it", dir, files.names[0], dir);
    if (!rc && dirs.n == 0 && files.n == 0)
        rc = err_set("%s: holds no images (PNG or JPEG files, or class folders of them)", dir);
    if (!rc && dirs.n > 0) rc = list_classes(out, &cap, dir, &dirs, p);
    if (!rc && dirs.n == 0) rc = listing_add(out, &cap, dir, "", &files, -1);
    names_free(&files);
    names_free(&dirs);
    if (rc) {
        folder_listing_free(out);
        return -1;
    }
    if (out->skipped)
        progress_log(p, "%s: %d file%s without a .png, .jpg or .jpeg name skipped\n", dir,
                     out->skipped, out->skipped == 1 ? "" : "s");
    return 0;
}

void folder_listing_free(FolderListing *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) xfree(l->files[i].path);
    xfree(l->files);
    memset(l, 0, sizeof *l);
}

int folder_options_check(const FolderOptions *opt) {
    if (opt->size != 0 && (opt->size % 4 || opt->size < 8 || opt->size > GEOMETRY_MAX_SIDE))
        return err_set("image size %d is not a multiple of 4 from 8 to %d (the model halves "
                       "the image twice)", opt->size, GEOMETRY_MAX_SIDE);
    if (opt->channels != 0 && opt->channels != 1 && opt->channels != 3)
        return err_set("%d channels: expected 1 (grey) or 3 (RGB)", opt->channels);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Decoding. */

/* What was done to the images, for one line per kind. */
typedef struct {
    int resized, cropped, to_grey, to_rgb, alpha, deep, colour;
    int min_side, max_side;
} Conversions;

int folder_auto_size(const DecodedImage *im) {
    int s = im->width < im->height ? im->width : im->height;
    s -= s % 4;
    if (s < 8) s = 8;
    if (s > FOLDER_AUTO_MAX) s = FOLDER_AUTO_MAX;
    return s;
}

/* im's centred square, resized to S x S, into slot (S, S, im->channels) interleaved; cv (or
 * NULL) counts what was done. */
static int place(uint8_t *slot, const DecodedImage *im, int S, const char *name,
                 Conversions *cv) {
    int c = im->channels;
    int m = im->width < im->height ? im->width : im->height;
    int x0 = (im->width - m) / 2, y0 = (im->height - m) / 2;
    size_t stride = (size_t)im->width * (size_t)c;
    const uint8_t *src = im->pixels + (size_t)y0 * stride + (size_t)x0 * (size_t)c;
    if (cv && im->width != im->height) cv->cropped++;
    if (m == S) {
        for (int y = 0; y < S; y++)
            memcpy(slot + (size_t)y * (size_t)S * (size_t)c, src + (size_t)y * stride,
                   (size_t)S * (size_t)c);
        return 0;
    }
    if (cv) cv->resized++;
    if (!stbir_resize_uint8_generic(src, m, m, (int)stride, slot, S, S, S * c, c,
                                    STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                    STBIR_FILTER_DEFAULT, STBIR_COLORSPACE_LINEAR, NULL))
        return err_set("%s: resizing from %dx%d to %dx%d failed", name, m, m, S, S);
    return 0;
}

int folder_place(uint8_t *slot, const DecodedImage *im, int S, const char *name) {
    return place(slot, im, S, name, NULL);
}

/* Read, decode and place file f into slot; *S is set from the first image when 0. */
static int decode_one(uint8_t **slots, uint8_t *colour, int i, int n, const FolderFile *f,
                      int *S, Conversions *cv) {
    unsigned char *buf;
    size_t len;
    if (read_file(f->path, FOLDER_MAX_FILE, &buf, &len)) return -1;
    DecodedImage im;
    int rc = imagefile_decode(&im, buf, len, f->path, IMAGEFILE_MAX_PIXELS);
    xfree(buf);
    if (rc) return -1;
    if (*S == 0) *S = folder_auto_size(&im);
    if (!*slots) *slots = xmalloc((size_t)n * 3 * (size_t)*S * (size_t)*S);
    uint8_t *slot = *slots + (size_t)i * 3 * (size_t)*S * (size_t)*S;
    rc = place(slot, &im, *S, f->path, cv);
    int side = im.width < im.height ? im.width : im.height;
    if (cv->min_side == 0 || side < cv->min_side) cv->min_side = side;
    if (side > cv->max_side) cv->max_side = side;
    colour[i] = im.channels == 3;
    cv->colour += colour[i];
    cv->alpha += im.had_alpha;
    cv->deep += im.deep;
    imagefile_free(&im);
    return rc;
}

/* Slot i (S, S, 3 or 1 interleaved) into image i of out, planar, at out's channel count. */
static void slot_to_set(ImageSet *out, int i, const uint8_t *slot, int colour, Conversions *cv) {
    size_t hw = (size_t)out->geom.height * (size_t)out->geom.width;
    uint8_t *dst = out->pixels + (size_t)i * imageset_image_bytes(out);
    if (out->geom.channels == 1 && colour) {
        cv->to_grey++;
        for (size_t k = 0; k < hw; k++) {
            const uint8_t *px = slot + 3 * k;
            dst[k] = (uint8_t)((299 * px[0] + 587 * px[1] + 114 * px[2] + 500) / 1000);
        }
    } else if (out->geom.channels == 1) {
        memcpy(dst, slot, hw);
    } else if (colour) {
        for (size_t k = 0; k < hw; k++)
            for (int ch = 0; ch < 3; ch++) dst[(size_t)ch * hw + k] = slot[3 * k + (size_t)ch];
    } else {
        cv->to_rgb++;
        for (int ch = 0; ch < 3; ch++) memcpy(dst + (size_t)ch * hw, slot, hw);
    }
}

static void state_conversions(const Progress *p, const Conversions *cv, int n, int S) {
    if (cv->resized)
        progress_log(p, "%d of %d images resized to %dx%d (their shorter sides: %d to %d)\n",
                     cv->resized, n, S, S, cv->min_side, cv->max_side);
    if (cv->cropped)
        progress_log(p, "%d of %d images are not square: cropped to their centred square\n",
                     cv->cropped, n);
    if (cv->to_grey)
        progress_log(p, "%d of %d images are in colour: turned grey (luma)\n", cv->to_grey, n);
    if (cv->to_rgb)
        progress_log(p, "%d of %d images are grey: given three equal channels\n", cv->to_rgb, n);
    if (cv->alpha)
        progress_log(p, "%d of %d images have transparency: composited onto black\n", cv->alpha,
                     n);
    if (cv->deep)
        progress_log(p, "%d of %d images have 16 bits per sample: rounded to 8\n", cv->deep, n);
}

int folder_decode(ImageSet *out, const FolderListing *l, const FolderOptions *opt,
                  const Progress *p) {
    memset(out, 0, sizeof *out);
    if (folder_options_check(opt)) return -1;
    DDPM_CHECK(l->n > 0);
    int S = opt->size, rc = 0;
    uint8_t *slots = NULL, *colour = xcalloc((size_t)l->n, 1);
    Conversions cv = {0};
    for (int i = 0; i < l->n && !rc; i++) {
        rc = decode_one(&slots, colour, i, l->n, &l->files[i], &S, &cv);
        if ((i + 1) % FOLDER_PROGRESS_EVERY == 0 || i + 1 == l->n)
            progress_count(p, "decoding", i + 1, l->n);
    }
    if (!rc) {
        ImageGeom g;
        memset(&g, 0, sizeof g);
        g.channels = opt->channels ? opt->channels : cv.colour ? 3 : 1;
        g.height = g.width = S;
        g.classes = l->classes;
        memcpy(g.class_names, l->class_names, sizeof g.class_names);
        imageset_alloc(out, &g, l->n);
        for (int i = 0; i < l->n; i++) {
            slot_to_set(out, i, slots + (size_t)i * 3 * (size_t)S * (size_t)S, colour[i], &cv);
            if (out->labels) out->labels[i] = (uint8_t)l->files[i].label;
        }
        state_conversions(p, &cv, l->n, S);
    }
    xfree(slots);
    xfree(colour);
    return rc;
}

int folder_load(ImageSet *out, const char *dir, const FolderOptions *opt, const Progress *p) {
    memset(out, 0, sizeof *out);
    if (folder_options_check(opt)) return -1;
    FolderListing l;
    if (folder_list(&l, dir, p)) return -1;
    int rc = folder_decode(out, &l, opt, p);
    folder_listing_free(&l);
    return rc;
}
