/* Helpers shared by the sampling subcommands: a percentage line for the sampler's progress
 * callback, and (from core/pixel.h) the conversion of a pixel in [0, 1] to a gray level. */
#ifndef DDPM_CLI_PROGRESS_H
#define DDPM_CLI_PROGRESS_H

#include <stdint.h>

#include "core/pixel.h"

typedef struct {
    double t0;    /* start time (now_seconds) */
    int last_pct; /* last percentage printed; start at -1 */
} SampleProgressLine;

/* A SampleProgress callback (user = SampleProgressLine *): redraws "sampling: NN%" on stderr
 * every 10%. Meant for terminals. */
void cli_sample_progress(void *user, int done, int total);

#endif
