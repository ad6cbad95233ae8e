/* MNIST: locating the data directory, loading a split, and fetching the official files. */
#ifndef DDPM_MNIST_H
#define DDPM_MNIST_H

#include <stdint.h>

#include "core/progress.h"

#define MNIST_H 28
#define MNIST_W 28
#define MNIST_PIXELS (MNIST_H * MNIST_W)

typedef struct {
    int n;           /* number of images */
    uint8_t *images; /* (N, 28, 28) gray levels 0..255 */
    uint8_t *labels; /* (N) digits 0..9 */
} MnistSplit;

/* The data directory: the option if non-NULL, else $DDPM_DATA, else "./data/mnist". */
const char *mnist_data_dir(const char *option);

/* Load the training (train != 0) or test split from dir, trying NAME.gz then NAME for each
 * of the files (train|t10k)-(images-idx3|labels-idx1)-ubyte. Checks shapes, that the
 * counts agree and that labels are digits. Returns 0 or -1 with err_msg(). */
int mnist_load(const char *dir, int train, MnistSplit *out);
void mnist_free(MnistSplit *s);

/* Download the four official .gz files into dir over HTTPS and verify their sha256;
 * a file already present with the right checksum is kept. Writes atomically. Says what it
 * does, file by file, in log lines on p (NULL: silently).
 * Returns 0 or -1 with err_msg() (saying clearly when there is no network). */
int mnist_fetch(const char *dir, const Progress *p);

#endif
