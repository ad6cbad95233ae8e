/* The sampling job of `ddpm sample`: samples from a time or class model's checkpoint as a
 * PNG grid (one per guidance scale of a sweep), an IDX file (and labels), an animated GIF
 * of the reverse process, or a number written in generated digits. */
#ifndef DDPM_APP_SAMPLE_H
#define DDPM_APP_SAMPLE_H

#include <stdint.h>

#include "core/progress.h"
#include "diffusion/sampler.h"

#define APP_SAMPLE_MAX_SWEEP 16
#define APP_SAMPLE_MAX_TEXT 64

typedef struct {
    const char *ckpt;     /* weights of a time or class model (.safetensors) */
    int n;                /* samples (class models: with `digit`; otherwise set by the grid) */
    uint64_t seed;
    const char *out;      /* PNG grid; with a sweep, one per scale: out with -g<G> inserted */
    const char *idx;      /* also the samples as IDX (and the labels beside it), or NULL */
    const char *gif;      /* also the reverse process as an animated GIF, or NULL */
    int gif_every;        /* steps between GIF frames */
    int digit;            /* class: sample n images of this digit; -1: every digit */
    const char *class_name; /* class: sample n images of the class of this name (or index);
                               NULL: digit says */
    int per_digit;        /* class, every digit: samples of each in the grid */
    const char *text;     /* class: digits to write as one image (at most MAX_TEXT), or NULL */
    float guidance;       /* class: guidance scale gamma */
    float sweep[APP_SAMPLE_MAX_SWEEP]; /* class: one grid per scale (n_sweep 0: none) */
    int n_sweep;
    int use_ema;          /* the moving average of the weights when the file has one */
    SamplerChoice sampler;
    int threads, batch;   /* CPU threads; images per forward pass */
    const char *device;   /* backend (ops/backend.h); NULL: cpu */
} SampleJob;

/* The command line's defaults: 40 samples, seed 1, samples.png, GIF frames every 5 steps,
 * every digit with 4 each, guidance 5, the EMA weights, the DDPM sampler, 2 threads, batch
 * 128, no IDX, GIF, text or sweep. */
void sample_job_defaults(SampleJob *j);

/* Draw and write the files. Reports on p: the lines "wrote FILE" (output), the timing of
 * each draw and the EMA note (log), and counts of the stage "sampling" (a count of 0 starts
 * each draw). Returns 0, or -1 with err_msg(). */
int app_sample(const SampleJob *job, const Progress *p);

#endif
