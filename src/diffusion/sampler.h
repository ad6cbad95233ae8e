/* DDPM ancestral sampling from pure noise, batched, with classifier-free guidance for
 * class models (conditional and unconditional predictions in one batched forward). */
#ifndef DDPM_SAMPLER_H
#define DDPM_SAMPLER_H

#include <stddef.h>

#include "core/rng.h"
#include "diffusion/schedule.h"
#include "model/unet.h"

/* Called after every reverse step with the step just finished (t) and the current images
 * of the chunk (count x 784); may be NULL. */
typedef void (*SampleProgress)(void *user, int done_steps, int total_steps);

typedef struct {
    int n;              /* number of samples */
    const int *labels;  /* (n) requested digits for a class model; -1 or NULL = unconditional */
    float guidance;     /* gamma: eps = eps_u + gamma (eps_c - eps_u) */
    int frame_every;    /* record a frame every this many steps (0 = no frames) */
    float *frames;      /* (n_frames, n, 784) when frame_every > 0, see sampler_n_frames */
    SampleProgress progress;
    void *progress_user;
} SampleRequest;

/* Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) over count values. */
void guidance_combine(float *eps, const float *eps_c, const float *eps_u, float gamma, size_t count);

/* Frames recorded for T steps: the start noise, every frame_every-th step, and the end. */
int sampler_n_frames(int T, int frame_every);

/* Draw req->n samples into out (N, 784), images in data scale (not clamped).
 * The model runs in evaluation mode in chunks of max_batch (max_batch / 2 with guidance). */
void ddpm_sample(Unet *m, const Schedule *s, Rng *rng, const SampleRequest *req, float *out);

#endif
