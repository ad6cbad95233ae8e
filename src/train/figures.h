/* The figures a training run draws into its directory (PNG grids with titles and labels). */
#ifndef DDPM_TRAIN_FIGURES_H
#define DDPM_TRAIN_FIGURES_H

#include <stdint.h>

#include "model/unet.h"
#include "diffusion/schedule.h"
#include "train/config.h"

/* The noise levels of Part 1's figures and of its per-sigma test table. */
#define N_FIG_SIGMAS 7
extern const float TRAIN_FIG_SIGMAS[N_FIG_SIGMAS];

/* Part 1: five training images (of geometry geom) at each noise level (noising.png). The
 * figures of a model draw its geometry's images, in colour when it has three channels. */
int train_fig_noising(const char *dir, const float *train_imgs, const ImageGeom *geom);
/* Part 1: eight test digits clean, noised at sigma and denoised (denoise_epochN.png). */
int train_fig_denoise(const char *dir, Unet *m, const float *test, int epoch, float sigma,
                      uint64_t seed);
/* Part 1: one test digit at every noise level of the figures, denoised (ood_epochN.png). */
int train_fig_ood(const char *dir, Unet *m, const float *test, int epoch, uint64_t seed);
/* Parts 2 and 3: a grid of samples from model m of configuration c (samples_epochN.png). */
int train_fig_samples(const char *dir, Unet *m, const Schedule *sched, const TrainConfig *c,
                      int epoch);

#endif
