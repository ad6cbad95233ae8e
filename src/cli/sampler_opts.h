/* The sampler's options (diffusion/sampler_words.h) as rows of an option table, the same words
 * and help in `ddpm sample`, `eval`, `bench --sample` and `reproduce`. PRE starts each help
 * text (e.g. "--ckpt, " for eval). --steps is each command's own row (bench has another
 * --steps), with CLI_SAMPLER_STEPS_HELP. */
#ifndef DDPM_CLI_SAMPLER_OPTS_H
#define DDPM_CLI_SAMPLER_OPTS_H

#include "diffusion/sampler_words.h"
#include "cli/args.h"

#define CLI_SAMPLER_STEPS_HELP                                                                  \
    "ddim, dpmpp*: reverse steps K (default 50 for ddim, 20 for the solvers); NFE = network "   \
    "passes per image = K (a guided pair counts as one)"

#define CLI_SAMPLER_OPTS(w, PRE)                                                                \
    {"sampler", OPT_STR, &(w).name, PRE "ddpm (the SPEC's, all T steps; default), ddim, "       \
     "dpmpp2m (DPM-Solver++(2M)), dpmpp2m-sde (its stochastic variant) or dpmpp3m "             \
     "(third order)", 0, -1, 0},                                                                \
    {"eta", OPT_FLOAT, &(w).eta, PRE "ddim: noise per step, 0 deterministic (default) to 1",   \
     0, 1, 0},                                                                                  \
    {"clip", OPT_FLAG, &(w).clip, PRE "ddim, dpmpp*: clip the predicted clean image to [0, 1] " \
     "at each step", 0, -1, 0},                                                                 \
    {"spacing", OPT_STR, &(w).spacing, PRE "ddim, dpmpp*: uniform (ddim's default), quadratic " \
     "(denser near the clean end), trailing (no step at t = 0) or logsnr (uniform in log-SNR; "  \
     "the solvers' default)", 0, -1, 0}

#endif
