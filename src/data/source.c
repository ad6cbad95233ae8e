/* The data sources of a training run: detection from a path, and loading the two splits
 * (a folder through its decoded-image cache, named by the folder's real path and options). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "data/source.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "core/common.h"
#include "data/cifar.h"
#include "data/imagecache.h"
#include "data/mnist.h"
#include "io/fileio.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int holds_idx(const char *dir) {
    static const char *const names[] = {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                        "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) return 0;
        if (path_exists(path)) return 1;
    }
    return 0;
}

Dataset source_detect(const char *dir) {
    if (holds_idx(dir)) return DATASET_MNIST;
    if (cifar_detect(dir)) return DATASET_CIFAR10;
    if (is_dir(dir)) return DATASET_FOLDER;
    return DATASET_MNIST;
}

/* The cache file of folder dir with options opt: images/<16 hex of sha256(real path, size,
 * channels)>.cache, so that each folder and option keeps its own file (the file's own key
 * still checks the listing). NULL path (no cache) when there is no cache directory. */
static int cache_path_for(char *dst, size_t cap, const char *dir, const FolderOptions *opt) {
    char real[PATH_MAX], what[PATH_MAX + 64];
    if (!realpath(dir, real)) snprintf(real, sizeof real, "%s", dir);
    int n = snprintf(what, sizeof what, "%s\n%d\n%d", real, opt->size, opt->channels);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    DDPM_CHECK(EVP_Digest(what, (size_t)n, md, &len, EVP_sha256(), NULL) == 1);
    char name[64];
    int k = snprintf(name, sizeof name, "images/");
    for (int i = 0; i < 8; i++) k += snprintf(name + k, sizeof name - (size_t)k, "%02x", md[i]);
    snprintf(name + k, sizeof name - (size_t)k, ".cache");
    return cache_file_path(dst, cap, name);
}

static int load_folder_cached(ImageSet *out, const char *dir, const FolderOptions *opt,
                              const Progress *p) {
    char cache[PATH_MAX + 64];
    const char *cp = cache_path_for(cache, sizeof cache, dir, opt) == 0 ? cache : NULL;
    return folder_load_cached(out, dir, opt, cp, p);
}

/* The test folder's classes are the training folder's or some of them (a small test set may
 * lack a class): its labels are renumbered as the training set's, and its geometry becomes
 * the training set's. */
static int match_classes(ImageSet *test, const ImageSet *train, const char *te_dir) {
    if ((test->geom.classes == 0) != (train->geom.classes == 0))
        return err_set("%s: is %slabelled, and the training folder is %s", te_dir,
                       test->geom.classes ? "" : "not ", train->geom.classes ? "" : "not");
    int map[GEOMETRY_MAX_CLASSES];
    for (int k = 0; k < test->geom.classes; k++) {
        map[k] = -1;
        for (int j = 0; j < train->geom.classes; j++)
            if (strcmp(test->geom.class_names[k], train->geom.class_names[j]) == 0) map[k] = j;
        if (map[k] < 0)
            return err_set("%s: its class %s is not among the training folder's classes", te_dir,
                           test->geom.class_names[k]);
    }
    for (int i = 0; i < test->n && test->labels; i++) test->labels[i] = (uint8_t)map[test->labels[i]];
    test->geom = train->geom;
    return 0;
}

/* A folder: its train/ and test/ subfolders, or the whole folder split by seed. */
static int load_folder(ImageSet *train, ImageSet *test, const DataSource *s, const Progress *p) {
    char tr_dir[PATH_MAX], te_dir[PATH_MAX];
    int n1 = snprintf(tr_dir, sizeof tr_dir, "%s/train", s->dir);
    int n2 = snprintf(te_dir, sizeof te_dir, "%s/test", s->dir);
    if (n1 < (int)sizeof tr_dir && n2 < (int)sizeof te_dir && is_dir(tr_dir) && is_dir(te_dir)) {
        if (load_folder_cached(train, tr_dir, &s->folder, p) != 0) return -1;
        FolderOptions same = {.size = train->geom.height, .channels = train->geom.channels};
        if (load_folder_cached(test, te_dir, &same, p) != 0) return -1;
        return match_classes(test, train, te_dir);
    }
    ImageSet all;
    if (load_folder_cached(&all, s->dir, &s->folder, p) != 0) return -1;
    double f = s->test_fraction > 0 ? s->test_fraction : SOURCE_TEST_FRACTION;
    int rc = imageset_split(train, test, &all, f, s->seed);
    imageset_free(&all);
    if (rc != 0) return err_set("%s: %s", s->dir, err_msg());
    return 0;
}

static int load_idx(ImageSet *train, ImageSet *test, const DataSource *s) {
    const ImageGeom g = s->dataset == DATASET_FASHION ? geometry_fashion() : geometry_mnist();
    MnistSplit m;
    if (mnist_load(s->dir, 1, &m) != 0) return -1;
    imageset_from_mnist(train, &m, &g);
    if (mnist_load(s->dir, 0, &m) != 0) return -1;
    imageset_from_mnist(test, &m, &g);
    return 0;
}

int source_load(ImageSet *train, ImageSet *test, const DataSource *s, const Progress *p) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    int rc;
    if (s->dataset == DATASET_FOLDER) {
        rc = load_folder(train, test, s, p);
    } else if (s->folder.size || s->folder.channels) {
        rc = err_set("%s: --image-size and --channels apply to a folder of images, not to %s's "
                     "files", s->dir, dataset_name(s->dataset));
    } else if (s->dataset == DATASET_CIFAR10) {
        rc = cifar_load(train, s->dir, 1);
        if (rc == 0) rc = cifar_load(test, s->dir, 0);
    } else {
        rc = load_idx(train, test, s);
    }
    if (rc == 0 && train->n > 0 && test->n > 0) return 0;
    if (rc == 0) rc = err_set("%s: no %s images", s->dir, train->n ? "test" : "training");
    imageset_free(train);
    imageset_free(test);
    return rc;
}
