/* What a weights file says about the run that trained it: the diffusion schedule to sample
 * with and the data set whose classes its labels name. Inference weights (ddpm export) state
 * them in metadata keys of their own, which are read first; other files in their ddpm.config
 * metadata (train/config.c's JSON). Files from other tools, with neither, read as the SPEC's:
 * the linear schedule and MNIST. */
#ifndef DDPM_TRAINED_WITH_H
#define DDPM_TRAINED_WITH_H

#include "data/dataset.h"
#include "diffusion/schedule.h"
#include "io/safetensors.h"

/* The keys of the resolved values: "linear" or "cosine", T in decimal, the betas with nine
 * significant digits (float exactly), the data set's name. */
#define TRAINED_SCHEDULE_KEY "ddpm.schedule"
#define TRAINED_T_KEY "ddpm.T"
#define TRAINED_BETA_START_KEY "ddpm.beta_start"
#define TRAINED_BETA_END_KEY "ddpm.beta_end"
#define TRAINED_DATASET_KEY "ddpm.dataset"

/* The schedule's kind (linear when not stated), T and betas, leaving T and the betas unchanged
 * when the file does not say. Returns 0, or -1 with err_msg() when the file is unreadable or
 * the values it gives are invalid. */
int trained_schedule(const char *path, ScheduleKind *kind, int *T, float *beta_start,
                     float *beta_end);

/* The data set (MNIST when not stated). Returns 0, or -1 with err_msg(). */
int trained_dataset(const char *path, Dataset *d);

/* The same from a file already opened (messages name f->path). */
int trained_schedule_st(const StFile *f, ScheduleKind *kind, int *T, float *beta_start,
                        float *beta_end);
int trained_dataset_st(const StFile *f, Dataset *d);

#endif
