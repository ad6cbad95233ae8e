/* Which kind of image set a run trains on: MNIST (the SPEC's) or Fashion-MNIST, which come
 * in the same four IDX files; CIFAR-10's binary batches; or a folder of images. */
#ifndef DDPM_DATASET_H
#define DDPM_DATASET_H

typedef enum { DATASET_MNIST = 0, DATASET_FASHION = 1, DATASET_CIFAR10 = 2, DATASET_FOLDER = 3 } Dataset;

/* "mnist", "fashion", "cifar10" or "folder" -> d; returns 0, or -1 with err_msg(). */
int dataset_parse(const char *s, Dataset *d);
const char *dataset_name(Dataset d);
/* The data directory: the option if non-empty, else $DDPM_DATA (MNIST) or
 * $DDPM_FASHION_DATA (Fashion-MNIST), else ./data/mnist or Debian's dataset-fashion-mnist
 * directory /usr/share/datasets/fashion-mnist; ./data/cifar10 for CIFAR-10 and "." for a
 * folder. */
const char *dataset_dir(const char *option, Dataset d);
/* Short names of the ten classes ("0".."9" for MNIST, also for the other kinds, whose names
 * come with their images), for figure labels. */
const char *const *dataset_class_names(Dataset d);

#endif
