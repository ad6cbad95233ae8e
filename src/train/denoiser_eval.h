/* The denoiser's mean squared error on noised test images. */
#ifndef DDPM_TRAIN_DENOISER_EVAL_H
#define DDPM_TRAIN_DENOISER_EVAL_H

#include <stdint.h>

#include "model/unet.h"

/* Test MSE of a denoiser at noise level sigma over n images (evaluation mode), with noise
 * from a generator seeded by seed; denoised (n, 784) receives the outputs if non-NULL. */
double denoiser_test_mse(Unet *m, const float *images, int n, float sigma, uint64_t seed,
                         float *noisy, float *denoised);

#endif
