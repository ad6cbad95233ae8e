/* Training: the three objectives of the SPEC (direct denoising, noise prediction with a
 * random timestep, the same with a dropped-out class label), the epoch loop, the run
 * directory (config, loss CSV, weights, figures, metrics) and the throughput benchmark. */
#ifndef DDPM_TRAIN_H
#define DDPM_TRAIN_H

#include <stdint.h>

#include "core/rng.h"
#include "data/dataset.h"
#include "data/mnist.h"
#include "diffusion/schedule.h"
#include "model/unet.h"

#define TRAIN_MAX_FIG_EPOCHS 16

typedef struct {
    UnetKind kind;
    int width, batch, epochs;
    float lr, lr_end;       /* LR decays exponentially per epoch from lr to lr_end */
    uint64_t seed;
    int threads;
    const char *out_dir;    /* run directory */
    const char *data_dir;
    Dataset dataset;        /* MNIST (the SPEC's) or Fashion-MNIST: names of the classes */
    int subset;             /* train on the first `subset` images (0 = all) */
    float sigma;            /* denoiser noise level */
    int T;
    ScheduleKind schedule;  /* linear (the SPEC's) or cosine */
    int time_embedding;     /* 0: the SPEC's scalar t/T; E: E sinusoidal features */
    int residual;           /* 1: residual ConvBlocks (UnetOptions.residual; 0: the SPEC's) */
    int attention;          /* attention layers, UNET_ATTN_DOWN2 | UNET_ATTN_UP1 (0: none, the SPEC's) */
    float beta_start, beta_end;
    float p_uncond;         /* class model: probability of the zero label */
    float guidance;         /* class model: gamma for the sample grids */
    float ema;              /* decay of the weights' exponential moving average (0: none) */
    int fig_epochs[TRAIN_MAX_FIG_EPOCHS]; /* epochs after which figures are drawn */
    int n_fig_epochs;
    int eval_n;             /* test images for the denoiser's per-epoch test MSE */
    int table_n;            /* test images for its per-sigma MSE table at figure epochs (0 = none) */
    int n_grid;             /* samples in the time model's grids */
    int progress;           /* 1 = redraw a status line (terminal), 0 = plain log lines */
    int checkpoint_every;   /* also save the training state every N steps (0: epoch ends only) */
    int resume;             /* continue the run in out_dir from its checkpoint.safetensors */
    long fault_nan_at;      /* test hook: make step N's loss NaN (0: off) */
    long fault_stop_at;     /* test hook: raise SIGSTOP after step N (0: off) */
} TrainConfig;

/* Defaults of the SPEC for a kind (Part 1, 2 or 3). */
void train_config_defaults(TrainConfig *c, UnetKind kind);

/* The full run, or its continuation when c->resume is set. The training state is saved to
 * out_dir/checkpoint.safetensors (train/state.h) at every epoch end, every checkpoint_every
 * steps, and when SIGINT or SIGTERM arrives: the first finishes the current step, saves and
 * returns; a second one ends the process at once. A non-finite loss or gradient stops the run
 * before the optimizer applies it, leaving the last checkpoint as it was.
 * Returns 0 when the run is complete, -1 with err_msg() on an error, or the number of the
 * signal that interrupted it (the checkpoint is then written and a resume hint printed). */
int train_run(const TrainConfig *c);

/* One optimisation step state, shared by train_run and the benchmark. */
typedef struct {
    TrainConfig cfg;
    Unet model;
    Schedule sched;
    float *m, *v;           /* (n_params) Adam moments */
    float *x0;              /* (N, 784) clean batch */
    float *xin;             /* (N, 784) network input */
    float *target;          /* (N, 784) regression target */
    float *noise;           /* (N, 784) */
    float *tn;              /* (N) t / T */
    float *onehot;          /* (N, 10) */
    float *dout;            /* (N, 784) loss gradient */
    int *labels;            /* (N) */
    Rng noise_rng;          /* noise, timesteps and label dropout */
    long step;
    float lr;
    float *ema;             /* (n_params + n_buffers) moving average of params then buffers,
                               NULL without --ema */
} Trainer;

/* Exchange the model's weights and BatchNorm statistics with their moving averages (a
 * no-op without EMA); twice restores them exactly. Evaluation and figures run between. */
void trainer_swap_ema(Trainer *tr);

int trainer_init(Trainer *tr, const TrainConfig *c);
void trainer_free(Trainer *tr);
/* One Adam step on n images (N, 784) in [0, 1] with labels (may be NULL for non-class).
 * Returns the loss. */
float trainer_step(Trainer *tr, const float *images, const uint8_t *labels, int n);
/* The same, but a non-finite loss or gradient is caught before the update: then nothing is
 * changed but the BatchNorm running statistics and the noise generator, and -1 is returned
 * with err_msg() saying what was non-finite. Returns 0 and the loss in *loss otherwise. */
int trainer_step_checked(Trainer *tr, const float *images, const uint8_t *labels, int n,
                         float *loss);

/* Test MSE of a denoiser at noise level sigma over n images (evaluation mode), with noise
 * from a generator seeded by seed; denoised (n, 784) receives the outputs if non-NULL. */
double denoiser_test_mse(Unet *m, const float *images, int n, float sigma, uint64_t seed,
                         float *noisy, float *denoised);

#endif
