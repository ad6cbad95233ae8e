/* Where a training run's images come from: MNIST's or Fashion-MNIST's IDX files, CIFAR-10's
 * binary batches or a folder of images, detected from what a path holds (or named), loaded
 * as a train and a test ImageSet. A folder goes through the decoded-image cache in
 * $XDG_CACHE_HOME/ddpm/images (else ~/.cache/ddpm/images). */
#ifndef DDPM_SOURCE_H
#define DDPM_SOURCE_H

#include <stdint.h>

#include "core/progress.h"
#include "data/dataset.h"
#include "data/folder.h"
#include "data/imageset.h"

#define SOURCE_TEST_FRACTION 0.1 /* a folder's held-out share when none is given */

typedef struct {
    Dataset dataset;
    const char *dir;
    FolderOptions folder;  /* a folder's size and channels (0: from the images) */
    double test_fraction;  /* a folder without train/ and test/: held-out share (0: 0.1) */
    uint64_t seed;         /* draws that held-out slice */
} DataSource;

/* What dir holds: MNIST's IDX files (DATASET_MNIST), CIFAR-10's batches, else a folder of
 * images when dir is a directory; a path that is none of these stays MNIST, whose loader
 * then says what is missing. */
Dataset source_detect(const char *dir);

/* The train and test sets of s. A folder with train/ and test/ subfolders gives the two
 * (the test folder at the train folder's size and channels, with the same classes); any
 * other folder is split with imageset_split. Returns 0, or -1 with err_msg() naming the
 * path, and both sets empty. */
int source_load(ImageSet *train, ImageSet *test, const DataSource *s, const Progress *p);

#endif
