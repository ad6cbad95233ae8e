/* The denoiser's mean squared error on noised test images. */
#ifndef DDPM_TRAIN_DENOISER_EVAL_H
#define DDPM_TRAIN_DENOISER_EVAL_H

#include <stdint.h>

#include "model/unet.h"

/* Test MSE of a denoiser at noise level sigma over n images (evaluation mode), with noise
 * from a generator seeded by seed; denoised (n, 784) receives the outputs if non-NULL. */
double denoiser_test_mse(Unet *m, const float *images, int n, float sigma, uint64_t seed,
                         float *noisy, float *denoised);

/* The network's part of it: out (c, P) = the denoising of noisy (c, P), both in ctx's
 * memory, c at most the batch given. */
typedef void (*DenoiserFn)(void *user, float *out, const float *noisy, int c);

/* The same with the network behind fn (a model reached through another interface: the
 * public API's handle), in batches of B images of P values on ctx; the noise, the batches
 * and the error sum are those of denoiser_test_mse, so both give the same bits. */
double denoiser_test_mse_fn(const OpsCtx *ctx, DenoiserFn fn, void *user, int B, size_t P,
                            const float *images, int n, float sigma, uint64_t seed, float *noisy,
                            float *denoised);

#endif
