/* The measurement of `ddpm bench`: training throughput on synthetic MNIST-shaped data (no
 * data files needed), or the sampler's (any of them, for its whole chain of NFE network
 * passes), the median over timed steps after warm-up, with an optional per-layer profile. */
#ifndef DDPM_APP_BENCH_H
#define DDPM_APP_BENCH_H

#include "core/progress.h"
#include "diffusion/sampler.h"
#include "model/unet.h"

typedef struct {
    UnetKind kind;
    int width, batch;  /* 0: the model's SPEC default */
    int threads;
    const char *device; /* backend (ops/backend.h); NULL: cpu */
    int steps, warmup; /* timed steps (repeats when sampling) and untimed ones first */
    int sample;        /* time the sampler instead of training */
    SamplerChoice sampler; /* sampling: the sampler whose whole chain is timed (zero: DDPM) */
    int sample_steps;  /* sampling: network passes timed per repeat (at most the chain's) */
    int profile;       /* also the per-layer table of the timed steps */
    int residual, attention; /* as TrainConfig */
} BenchJob;

/* Runs the measurement and reports every line of it as output on out (flushed after each
 * timed step), the last one "<number> img/s". Returns 0, or -1 with err_msg(). */
int app_bench(const BenchJob *job, const Progress *out);

#endif
