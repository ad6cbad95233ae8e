/* The sampler as the options of `ddpm sample`, `eval`, `bench --sample` and `reproduce` spell
 * it (--sampler, --steps, --eta, --clip, --spacing), and the public API's sampler fields
 * with it (include/ddpm.h), turned into a typed SamplerChoice, and the words of a chosen
 * sampler for logs and JSON. The messages of this file name those options: they are the
 * words it reads. */
#ifndef DDPM_SAMPLER_WORDS_H
#define DDPM_SAMPLER_WORDS_H

#include <stddef.h>

#include "diffusion/sampler.h"

/* The words --sampler takes, for help and error texts. */
#define SAMPLER_WORDS_LIST "ddpm, ddim, dpmpp2m, dpmpp2m-sde or dpmpp3m"
#define SAMPLER_WORDS_SPACINGS "uniform, quadratic, trailing or logsnr"

typedef struct {
    const char *name;    /* "ddpm", "ddim", "dpmpp2m", "dpmpp2m-sde" or "dpmpp3m" */
    int steps;           /* ddim, solvers: 1..T; 0 = not given: min(50, T) (ddim) or
                            min(20, T) (solvers) */
    float eta;           /* ddim: 0..1; negative = not given: 0 */
    int clip;            /* ddim, solvers: clip the predicted clean image */
    const char *spacing; /* ddim, solvers: "uniform", "quadratic", "trailing" or "logsnr";
                            NULL = not given: uniform (ddim), logsnr (solvers, the spacing
                            of the DPM-Solver papers) */
} SamplerWords;

/* The choice the words make: "ddpm" takes none of the other options, "ddim" takes them all,
 * the solvers all but --eta (dpmpp2m-sde is the stochastic one). What depends on T (the
 * number of steps) is checked by sampler_choose. Returns 0, or -1 with err_msg() naming the
 * option. */
int sampler_words_parse(SamplerChoice *out, const SamplerWords *w);

/* sampler_words_parse, then sampler_choose with the schedule; an error of the latter about
 * the steps is prefixed with "--steps N: ". */
int sampler_words_choose(SampleRequest *req, const Schedule *s, const SamplerWords *w);

/* The --sampler word of a kind ("ddpm", "dpmpp2m", ...), and of a chosen request. */
const char *sampler_words_kind(SamplerKind kind);
const char *sampler_words_name(const SampleRequest *req);
/* The --spacing word of a chosen request ("uniform", ..., "logsnr"); NULL for DDPM, which
 * visits every step. */
const char *sampler_words_spacing(const SampleRequest *req);
/* The --spacing word of a spacing ("uniform", ..., "logsnr"). */
const char *sampler_words_spacing_kind(DdimSpacing spacing);

/* The sampler's line for logs: sampler_describe with the network passes after the steps,
 * e.g. "DPM-Solver++(2M), 20 steps (20 NFE), log-SNR spacing". */
void sampler_words_describe(const SampleRequest *req, const Schedule *s, char *buf, size_t size);

#endif
