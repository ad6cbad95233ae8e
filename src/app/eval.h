/* The evaluation job of `ddpm eval`: samples drawn from a checkpoint (one set per guidance
 * scale for a class model) or read from an IDX file or a PNG grid, judged by the MNIST
 * classifier (loaded from its cache, or trained there once) against the test set; for a
 * denoiser, its test MSE and PSNR per noise level. The results as a table and as JSON. */
#ifndef DDPM_APP_EVAL_H
#define DDPM_APP_EVAL_H

#include <stdint.h>

#include "core/progress.h"
#include "diffusion/sampler.h"
#include "eval/judge.h"

#define APP_EVAL_MAX_GUIDANCE 16
#define APP_EVAL_MAX_SIGMAS 32

typedef struct {
    /* exactly one of ckpt, samples and judge_only */
    const char *ckpt;         /* a time, class or denoiser checkpoint to draw from */
    const char *samples;      /* images (N, 28, 28) as an IDX file, or a PNG grid of them */
    const char *labels;       /* with samples: the requested digits (N), or NULL */
    int samples_n;            /* with samples: judge the first N images; 0: all */
    int judge_only;           /* only make sure the judge exists */
    /* ckpt */
    int n;                    /* samples per guidance scale */
    float guidance[APP_EVAL_MAX_GUIDANCE]; /* class models: the scales */
    int n_guidance;
    int guidance_given;       /* the scales were asked for: refused for other models */
    float sigmas[APP_EVAL_MAX_SIGMAS];     /* denoisers: noise levels */
    int n_sigmas;
    const char *save_idx;     /* also the samples as IDX (-g<G> per scale), or NULL */
    int use_ema;
    SamplerChoice sampler;
    int batch;                /* images per forward pass */
    /* every kind */
    const char *json;         /* the results as JSON, or NULL */
    const char *judge_path;   /* judge weights, or NULL: judge_default_path */
    JudgeConfig judge;        /* training of the judge when it is missing */
    int n_test, n_train;      /* reference test images; training images searched */
    const char *data;         /* MNIST directory, or NULL: mnist_data_dir's default */
    uint64_t seed;
    int threads;
    const char *device;       /* backend of the sampled model (ops/backend.h); NULL: cpu */
} EvalJob;

/* The command line's defaults: 1000 samples, guidance 5, the noise levels 0, 0.2, 0.4, 0.5,
 * 0.6, 0.8 and 1, the EMA weights, the DDPM sampler, batch 128, the judge's defaults and its
 * cache, 10000 test and 60000 training images, seed 1, 2 threads; no input chosen. */
void eval_job_defaults(EvalJob *j);

/* Reports on p: the judge's, the sampler's and the sampling times' log lines; the table and
 * "wrote JSON" as output lines; counts of the stage "sampling". Returns 0, or -1 with
 * err_msg(). */
int app_eval(const EvalJob *job, const Progress *p);

#endif
