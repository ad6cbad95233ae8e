/* The sampler as the options of `ddpm sample` and `ddpm eval` spell it (--sampler, --steps,
 * --eta, --clip, --spacing), turned into a typed SamplerChoice. The messages of this file
 * name those options: they are the words it reads. */
#ifndef DDPM_APP_SAMPLER_WORDS_H
#define DDPM_APP_SAMPLER_WORDS_H

#include "diffusion/sampler.h"

typedef struct {
    const char *name;    /* "ddpm" or "ddim" */
    int steps;           /* ddim: 1..T; 0 = not given: min(50, T) */
    float eta;           /* ddim: 0..1; negative = not given: 0 */
    int clip;            /* ddim: clip the predicted clean image */
    const char *spacing; /* ddim: "uniform", "quadratic" or "trailing"; NULL = not given: uniform */
} SamplerWords;

/* The choice the words make: "ddpm" takes none of the DDIM options; "ddim" takes them all.
 * What depends on T (the number of steps) is checked by sampler_choose. Returns 0, or -1
 * with err_msg() naming the option. */
int sampler_words_parse(SamplerChoice *out, const SamplerWords *w);

/* sampler_words_parse, then sampler_choose with the schedule; an error of the latter about
 * the steps is prefixed with "--steps N: ". */
int sampler_words_choose(SampleRequest *req, const Schedule *s, const SamplerWords *w);

#endif
