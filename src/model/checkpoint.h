/* Saving and loading a UNet as safetensors (names and layout in docs/WEIGHTS.md), with the
 * model kind and width in the metadata so a file is self-describing. */
#ifndef DDPM_CHECKPOINT_H
#define DDPM_CHECKPOINT_H

#include "model/unet.h"

/* Write every tensor of m plus metadata: ddpm.kind, ddpm.width, and the extra key/value
 * pairs given (n_extra may be 0). Atomic. Returns 0 or -1 with err_msg(). */
int checkpoint_save(const Unet *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra);

/* Read kind and width from a checkpoint's metadata, build a model for max_batch and
 * nthreads, and load every tensor (each must be present with the right shape).
 * Returns 0 or -1 with err_msg() naming the file. */
int checkpoint_load(Unet *m, const char *path, int max_batch, int nthreads);

/* The diffusion schedule a checkpoint was trained with (from the ddpm.config metadata);
 * leaves the arguments unchanged when the file does not say. Returns 0 or -1. */
int checkpoint_schedule(const char *path, int *T, float *beta_start, float *beta_end);

/* Load tensors into an existing model (names and shapes must match). */
int checkpoint_load_into(Unet *m, const char *path);

#endif
