/* Which 28x28, ten-class image set a run trains on: MNIST (the SPEC's) or Fashion-MNIST,
 * which comes in the same four IDX files. */
#ifndef DDPM_DATASET_H
#define DDPM_DATASET_H

typedef enum { DATASET_MNIST = 0, DATASET_FASHION = 1 } Dataset;

/* "mnist" or "fashion" -> d; returns 0, or -1 with err_msg(). */
int dataset_parse(const char *s, Dataset *d);
const char *dataset_name(Dataset d);
/* The data directory: the option if non-empty, else $DDPM_DATA (MNIST) or
 * $DDPM_FASHION_DATA (Fashion-MNIST), else ./data/mnist or Debian's dataset-fashion-mnist
 * directory /usr/share/datasets/fashion-mnist. */
const char *dataset_dir(const char *option, Dataset d);
/* Short names of the ten classes ("0".."9" for MNIST), for figure labels. */
const char *const *dataset_class_names(Dataset d);

#endif
