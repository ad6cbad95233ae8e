/* Saving and loading a UNet as safetensors (names and layout in docs/WEIGHTS.md), with the
 * model kind and width in the metadata so a file is self-describing, and a sha256 of the
 * contents (metadata ddpm.sha256) so a damaged file is refused instead of half-loaded. */
#ifndef DDPM_CHECKPOINT_H
#define DDPM_CHECKPOINT_H

#include "data/dataset.h"
#include "diffusion/schedule.h"
#include "io/safetensors.h"
#include "model/unet.h"

/* The metadata key of the integrity digest (see safetensors_verify_digest), and of the
 * format tag, whose presence makes the digest mandatory (a damaged digest key must not pass
 * for a file from another tool, which has neither). */
#define CHECKPOINT_DIGEST_KEY "ddpm.sha256"
#define CHECKPOINT_FORMAT_KEY "ddpm.format"
#define CHECKPOINT_WEIGHTS_FORMAT "ddpm-weights/1"

/* Write every tensor of m plus metadata: ddpm.kind, ddpm.width, the extra key/value
 * pairs given (n_extra may be 0), ddpm.format (ddpm-weights/1 unless given) and
 * ddpm.sha256. Atomic. Returns 0 or -1 with err_msg(). */
int checkpoint_save(const Unet *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra);

/* As checkpoint_save, with more tensors after the model's (optimizer state, counters). */
int checkpoint_save_with(const Unet *m, const char *path, const StTensor *extra, int n_extra_t,
                         const char *const *keys, const char *const *values, int n_extra);

/* Open and validate a safetensors file and check its ddpm.sha256 when it has one (files
 * written by other tools have none); require_digest makes a missing digest an error.
 * Returns 0 or -1 with err_msg() naming the file. */
int checkpoint_open(const char *path, StFile *f, int require_digest);
/* The same check on a file already parsed. Returns 0 or -1 with err_msg(). */
int checkpoint_verify(const StFile *f, int require_digest);

/* Read kind and width from a checkpoint's metadata, build a model for max_batch and
 * nthreads, and load every tensor (each must be present with the right shape and finite).
 * Returns 0 or -1 with err_msg() naming the file. */
int checkpoint_load(Unet *m, const char *path, int max_batch, int nthreads);

/* The diffusion schedule a checkpoint was trained with (from the ddpm.config metadata);
 * leaves the arguments unchanged when the file does not say. Returns 0, or -1 with
 * err_msg() when the file is unreadable or the values it gives are invalid. */
int checkpoint_schedule(const char *path, int *T, float *beta_start, float *beta_end);
/* The same with the schedule's kind ("schedule" in ddpm.config; linear when absent). */
int checkpoint_schedule_kind(const char *path, ScheduleKind *kind, int *T, float *beta_start,
                             float *beta_end);

/* The data set a checkpoint was trained on ("dataset" in ddpm.config; MNIST when absent).
 * Returns 0, or -1 with err_msg(). */
int checkpoint_dataset(const char *path, Dataset *d);

/* The moving averages of a model's tensors (ema: params then buffers, as Trainer.ema) as
 * tensors named "ema.NAME", for checkpoint_save_with; names holds m->n_tensors strings.
 * Returns m->n_tensors. */
int checkpoint_ema_tensors(const Unet *m, const float *ema, StTensor *out, char (*names)[64]);
/* Whether a file holds moving averages ("ema." tensors). */
int checkpoint_has_ema(const StFile *f);
/* Read the "ema." tensors into ema (params then buffers). Returns 0 or -1 with err_msg(). */
int checkpoint_read_ema(const Unet *m, float *ema, const StFile *f);

/* Like checkpoint_load, choosing the moving averages of the weights when the file holds
 * them and use_ema is set (*used_ema says which were loaded; may be NULL). checkpoint_load
 * itself prefers them. */
int checkpoint_load_ex(Unet *m, const char *path, int max_batch, int nthreads, int use_ema,
                       int *used_ema);

/* Load tensors into an existing model (names and shapes must match). */
int checkpoint_load_into(Unet *m, const char *path);
/* The same from an opened file. */
int checkpoint_read_model(Unet *m, const StFile *f);

#endif
