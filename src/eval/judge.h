/* The judge of the evaluation: training the MNIST classifier of model/classifier.h with Adam,
 * caching its weights (safetensors + a sha256 file beside them, verified on every load), and
 * running it over image sets to get features, predicted digits and accuracy. */
#ifndef DDPM_JUDGE_H
#define DDPM_JUDGE_H

#include <stdint.h>

#include "core/progress.h"
#include "data/mnist.h"
#include "model/classifier.h"

typedef struct {
    int epochs;       /* default 4 */
    int batch;        /* default 128 */
    double lr;        /* Adam, default 1e-3, cosine decay to lr_end over all steps */
    double lr_end;    /* default 1e-5 */
    uint64_t seed;    /* init and shuffling, default 1 */
    int threads;
    int subset;       /* train on the first `subset` training images (0 = all) */
    int shift;        /* augmentation: move each digit by up to +-shift pixels (default 2) */
    int progress;     /* 1 = redraw a status line (terminal), 0 = a log line per epoch */
} JudgeConfig;

void judge_config_defaults(JudgeConfig *c);

/* The default cache file: $XDG_CACHE_HOME/ddpm/judge.safetensors, else
 * $HOME/.cache/ddpm/judge.safetensors. Returns 0 or -1 with err_msg() (neither variable
 * set). */
int judge_default_path(char *dst, size_t cap);

/* Train a judge on train and measure it on test; m is initialised here (max_batch
 * c->batch, or more for evaluation) and accuracy (0..1) receives the test accuracy. Log
 * lines on p (NULL: silent) give the settings and each epoch's loss and accuracy (with
 * c->progress, a status line redrawn during the epoch too). Deterministic for a fixed seed
 * and thread count. Returns 0. */
int judge_train(Classifier *m, const JudgeConfig *c, const MnistSplit *train,
                const MnistSplit *test, double *accuracy, const Progress *p);

/* Save with metadata (test accuracy on test_images images, training settings) and write
 * PATH.sha256 beside it (sha256sum format). Both atomic. Returns 0 or -1 with err_msg(). */
int judge_save(const Classifier *m, const char *path, const JudgeConfig *c, double accuracy,
               int test_images);

/* Load a judge: verify the file against PATH.sha256, then read the weights into a model
 * built for max_batch and nthreads. accuracy (may be NULL) gets the stored test accuracy.
 * Returns 0, or -1 with err_msg() (missing checksum, mismatch, wrong architecture...). */
int judge_load(Classifier *m, const char *path, int max_batch, int nthreads, double *accuracy);

/* sha256 of a file as 64 lowercase hex digits (+ NUL). Returns 0 or -1 with err_msg(). */
int file_sha256_hex(const char *path, char hex[65]);

/* Run the judge over n images (N, 784) in [0, 1]: features (N, 128) and predicted digits
 * (N) (either may be NULL), in chunks of m->max_batch. */
void judge_apply(Classifier *m, const float *images, int n, float *features, int *pred);

/* Images of a split as floats in [0, 1]: the rows idx[0..n) (or the first n if idx NULL). */
float *mnist_to_float(const MnistSplit *s, const int *idx, int n);

#endif
