/* DDPM ancestral sampling from pure noise, batched, with classifier-free guidance for
 * class models (conditional and unconditional predictions in one batched forward). */
#ifndef DDPM_SAMPLER_H
#define DDPM_SAMPLER_H

#include <stddef.h>

#include "core/rng.h"
#include "diffusion/schedule.h"
#include "diffusion/solver.h"
#include "model/unet.h"

/* Called after every reverse step with the steps done and the steps of the whole draw (all
 * chunks); may be NULL. Returns 0 to go on, anything else to stop the draw there. */
typedef int (*SampleProgress)(void *user, int done_steps, int total_steps);

typedef struct {
    int n;              /* number of samples */
    const int *labels;  /* (n) requested digits for a class model; -1 or NULL = unconditional */
    float guidance;     /* gamma: eps = eps_u + gamma (eps_c - eps_u) */
    int frame_every;    /* record a frame every this many steps (0 = no frames) */
    float *frames;      /* (n_frames, n, P) when frame_every > 0, see sampler_n_frames */
    SampleProgress progress;
    void *progress_user;
    int ddim_steps; /* 0: the SPEC's DDPM sampler over all T steps; K > 0: DDIM, or the solver
                       of `solver`, over K steps */
    float ddim_eta; /* DDIM: 0 deterministic, 1 ancestral-like */
    int ddim_clip;  /* DDIM and solvers: clip the predicted clean image to [0, 1] */
    DdimSpacing ddim_spacing; /* DDIM and solvers: how the K steps spread over 0..T-1 */
    int solver;     /* 0: DDPM or DDIM as above; 1 + SolverKind: that DPM-Solver++ (K steps) */
} SampleRequest;

typedef enum {
    SAMPLER_DDPM = 0,
    SAMPLER_DDIM = 1,
    SAMPLER_DPMPP_2M = 2,     /* DPM-Solver++(2M), diffusion/solver.h */
    SAMPLER_DPMPP_2M_SDE = 3, /* its stochastic variant */
    SAMPLER_DPMPP_3M = 4,     /* third-order multistep */
} SamplerKind;

/* Which sampler a draw uses. The DDPM sampler takes all T steps and no DDIM setting. */
typedef struct {
    SamplerKind kind;
    int steps;           /* DDIM: 1..T, 0 = min(50, T); solvers: 1..T, 0 = min(20, T);
                            DDPM: 0 or T */
    float eta;           /* DDIM: noise per step, 0 (deterministic) to 1 */
    int clip;            /* DDIM, solvers: clip the predicted clean image to [0, 1] */
    DdimSpacing spacing; /* DDIM, solvers: how the steps spread over 0..T-1 */
} SamplerChoice;

/* Frames recorded for a sampler of `steps` reverse steps (T for DDPM, K for DDIM): the
 * start noise, every frame_every-th step, and the end. */
int sampler_n_frames(int steps, int frame_every);
/* Reverse steps the request takes with this schedule. */
int sampler_steps(const Schedule *s, const SampleRequest *req);
/* Network evaluations per image: one per step, for every sampler (with guidance the
 * conditional and unconditional predictions are one batched pass, counted once). */
int sampler_nfe(const Schedule *s, const SampleRequest *req);
/* The sampler's name for titles: "DDPM", "DDIM", "DPM-Solver++(2M)", ... */
const char *sampler_title(const SampleRequest *req);

/* Sets req's sampler from the choice, checked against the schedule's T. Returns 0, or -1
 * with err_msg() naming the quantity at fault. */
int sampler_choose(SampleRequest *req, const Schedule *s, const SamplerChoice *c);
/* One line for reports, e.g. "DDIM, 50 steps, eta 0, quadratic spacing" or
 * "DPM-Solver++(2M), 20 steps, log-SNR spacing". */
void sampler_describe(const SampleRequest *req, const Schedule *s, char *buf, size_t size);

/* Draw req->n samples into out (N, P) on the host, P the floats of one image of the model's
 * geometry, images in data scale (not clamped), with DDPM or, when req->ddim_steps > 0, DDIM.
 * The model runs in evaluation mode in chunks of max_batch (max_batch / 2 with guidance:
 * a class model with gamma other than 0 and 1; gamma 0 runs the unconditional prediction
 * alone and gamma 1 the conditional one, a single pass each). Returns 0, or 1 when the
 * progress callback stopped it (out and the frames are then partial). */
int sampler_draw(Unet *m, const Schedule *s, Rng *rng, const SampleRequest *req, float *out);

#endif
