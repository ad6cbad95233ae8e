/* The job of `ddpm denoise`: a trained denoiser on test digits at several noise levels, the
 * test MSE and PSNR per level as JSON and a PNG grid of noisy and denoised rows. */
#ifndef DDPM_APP_DENOISE_H
#define DDPM_APP_DENOISE_H

#include <stdint.h>

#include "core/progress.h"

#define APP_DENOISE_MAX_SIGMAS 32

typedef struct {
    const char *ckpt;       /* denoiser weights (.safetensors) */
    float sigmas[APP_DENOISE_MAX_SIGMAS]; /* noise levels, 0..100 */
    int n_sigmas;
    int n;                  /* test images for the MSE (at most the test set's) */
    int show;               /* digits drawn in the grid (at most n) */
    const char *out, *json; /* grid PNG, MSE per sigma as JSON */
    const char *data;       /* MNIST directory, or NULL: mnist_data_dir's default */
    uint64_t seed;
    int threads, batch;
    const char *device;     /* backend (ops/backend.h); NULL: cpu */
} DenoiseJob;

/* Reports the table (a header, then one line per sigma) and "wrote OUT and JSON" as output
 * lines on p. Returns 0, or -1 with err_msg(). */
int app_denoise(const DenoiseJob *job, const Progress *p);

#endif
