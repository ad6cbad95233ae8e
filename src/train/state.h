/* What a run needs to continue bit for bit after a stop: the training-state checkpoint
 * RUN/checkpoint.safetensors, with the configuration's JSON (train/config.h) in its metadata
 * ddpm.config. The checkpoint holds, beside the model's tensors (weights and
 * BatchNorm running statistics, as in model.safetensors):
 *   adam.m.<param>, adam.v.<param>  F32  Adam moments, shaped as the parameter
 *   train.counters  I64 (7)  epoch in progress, steps done in it, steps done in all, Adam's
 *                            step count, training images, steps per epoch, exact seed (bits)
 *   train.rng.noise I64 (6)  noise generator: xoshiro state s[0..3], has_spare, spare (bits)
 *   train.rng.data  I64 (6)  data-order generator as at the start of the epoch in progress
 *   train.loss, train.lr  F32 (step)  every step's loss and learning rate so far
 * and metadata ddpm.format, ddpm.config, ddpm.epoch, ddpm.step, ddpm.metrics (metrics.json so
 * far), ddpm.seconds (train, wall, current epoch) and ddpm.sha256 over all of it. */
#ifndef DDPM_TRAIN_STATE_H
#define DDPM_TRAIN_STATE_H

#include <stddef.h>

#include "core/rng.h"
#include "model/unet.h"
#include "train/config.h"

#define TRAIN_STATE_FILE "checkpoint.safetensors"
#define TRAIN_STATE_FORMAT "ddpm-train-state/1"

/* What the checkpoint holds of a trainer (train.h's trainer_state_refs fills it): saved
 * from, and loaded into, these. */
typedef struct {
    const TrainConfig *cfg; /* the configuration the trainer was built with */
    Unet *model;            /* weights and BatchNorm running statistics */
    float *m, *v;           /* (n_params) Adam moments */
    float *ema;             /* (n_params + n_buffers) moving average, NULL without EMA */
    Rng *noise_rng;         /* noise, timesteps and label dropout */
    long *step;             /* Adam's step count */
} TrainStateRefs;

typedef struct {
    int epoch;           /* epoch in progress, 1-based; epochs + 1 once the run is complete */
    int epoch_step;      /* steps done in it, 0..steps_per_epoch */
    long step;           /* steps done in all */
    int n_train;         /* training images */
    int steps_per_epoch;
    Rng data_rng;        /* the data-order generator as at the start of `epoch` */
    float *loss, *lr;    /* (capacity) every step's loss and learning rate, `step` of them set */
    long capacity;       /* steps_per_epoch * epochs */
    char *metrics;       /* metrics.json so far as JSON text (owned; may be NULL) */
    double train_seconds, wall_seconds, epoch_seconds;
    int ranks;           /* processes of the data-parallel run that saved (or saves) it */
} TrainProgress;

/* Allocate the loss history for a run of n_train images (zeroed counters, epoch 1). */
void train_progress_init(TrainProgress *p, const TrainConfig *c, int n_train);
void train_progress_free(TrainProgress *p);

/* Write the training state atomically (temporary file, flush, fsync, rename).
 * cfg_text is the configuration JSON. Returns 0 or -1 with err_msg(). */
int train_state_save(const char *path, TrainStateRefs tr, const TrainProgress *p,
                     const char *cfg_text);
/* Read the configuration of a training-state checkpoint (after checking its digest and
 * format), into c as train_config_from_json does. Returns 0 or -1 with err_msg(). */
int train_state_read_config(const char *path, TrainConfig *c, char *data_buf, size_t cap);
/* Load a training state into tr (a trainer built with the checkpoint's configuration) and p (prepared
 * by train_progress_init for the current data): every tensor must be present with its
 * shape, every value finite, every counter consistent with the configuration and the data.
 * Returns 0 or -1 with err_msg() naming the file and the problem. */
int train_state_load(const char *path, TrainStateRefs tr, TrainProgress *p);

#endif
