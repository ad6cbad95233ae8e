/* Training: the three objectives of the SPEC (direct denoising, noise prediction with a
 * random timestep, the same with a dropped-out class label), the epoch loop, the run
 * directory (config, loss CSV, weights, figures, metrics) and the throughput benchmark. */
#ifndef DDPM_TRAIN_H
#define DDPM_TRAIN_H

#include <stdint.h>

#include "core/progress.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/geometry.h"
#include "data/mnist.h"
#include "diffusion/schedule.h"
#include "model/unet.h"
#include "train/config.h"
#include "train/denoiser_eval.h"
#include "train/state.h"

/* The full run, or its continuation when c->resume is set. The training state is saved to
 * out_dir/checkpoint.safetensors (train/state.h) at every epoch end, every checkpoint_every
 * steps, and when SIGINT or SIGTERM arrives: the first finishes the current step, saves and
 * returns; a second one ends the process at once. A non-finite loss or gradient stops the run
 * before the optimizer applies it, leaving the last checkpoint as it was.
 * Returns 0 when the run is complete, -1 with err_msg() on an error, or the number of the
 * signal that interrupted it (the checkpoint is then written and the "interrupted" event sent). */
int train_run(const TrainConfig *c);

/* 1 when dir holds a training run (its TRAIN_STATE_FILE): train_run refuses to start a fresh
 * run there, and resumes it when asked. 0 for a name too long for a run directory. */
int train_dir_holds_run(const char *dir);

/* One optimisation step state, shared by train_run and the benchmark. */
typedef struct {
    TrainConfig cfg;
    Unet model;
    Schedule sched;
    int P, K;               /* floats per image (C H W of the model's geometry), classes */
    float *m, *v;           /* (n_params) Adam moments */
    float *x0;              /* (N, P) clean batch */
    float *xin;             /* (N, P) network input */
    const float *target;    /* (N, P) regression target: x0 (denoiser) or noise */
    float *noise;           /* (N, P) */
    float *tn;              /* (N) t / T */
    float *onehot;          /* (N, K) */
    float *dout;            /* (N, P) loss gradient */
    float *coef;            /* (2N) noising coefficients per image: sqrt(abar_t) (N), then
                               sqrt(1 - abar_t) (N) */
    /* the above live in the backend's memory (dev_alloc); these host buffers stage what is
     * drawn or built on the host: noise (N, P), t / T (N), one-hot (N, K), coef (2N) */
    float *h_noise, *h_tn, *h_onehot, *h_coef;
    int *labels;            /* (N) */
    Rng noise_rng;          /* noise, timesteps and label dropout */
    long step;
    float lr;
    float *ema;             /* (n_params + n_buffers) moving average of params then buffers,
                               NULL without --ema (backend memory) */
    /* Data parallel (core/dist.h): this process computes rows [lo, lo + n) of each global
     * batch, the slice trainer_slice gives it; the random draws are made for the whole batch
     * on every process, the gradients and BatchNorm's sums are summed over the processes,
     * and every process takes the same Adam step. One process: rank 0 of 1. */
    int rank, ranks;
    float *h_grads;         /* (n_params) host copy of the gradients for the sum; NULL alone */
} Trainer;

/* Rows [*lo, *lo + *n) of a global batch of `batch` images are rank's of ranks: the fixed
 * split rank * batch / ranks .. (rank + 1) * batch / ranks. */
void trainer_slice(int batch, int rank, int ranks, int *lo, int *n);

/* Exchange the model's weights and BatchNorm statistics with their moving averages (a
 * no-op without EMA); twice restores them exactly. Evaluation and figures run between. */
void trainer_swap_ema(Trainer *tr);

/* The trainer of c's model for the images of c's dataset (MNIST's or Fashion-MNIST's
 * geometry), or of geom. */
int trainer_init(Trainer *tr, const TrainConfig *c);
int trainer_init_geom(Trainer *tr, const TrainConfig *c, const ImageGeom *geom);
void trainer_free(Trainer *tr);
/* What the training-state checkpoint (train/state.h) saves and restores of tr. */
TrainStateRefs trainer_state_refs(Trainer *tr);
/* One Adam step on n images (N, P) in [0, 1] with labels (may be NULL for non-class):
 * the global batch, of which this process computes its slice. Returns the loss of the whole
 * batch. */
float trainer_step(Trainer *tr, const float *images, const uint8_t *labels, int n);
/* The same, but a non-finite loss or gradient is caught before the update: then nothing is
 * changed but the BatchNorm running statistics and the noise generator, and -1 is returned
 * with err_msg() saying what was non-finite. Returns 0 and the loss in *loss otherwise. */
int trainer_step_checked(Trainer *tr, const float *images, const uint8_t *labels, int n,
                         float *loss);

#endif
