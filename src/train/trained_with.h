/* What a weights file says about the run that trained it, read from its ddpm.config metadata
 * (train/config.c's JSON): the diffusion schedule to sample with and the data set whose
 * classes its labels name. Files from other tools, without that metadata, read as the
 * SPEC's: the linear schedule and MNIST. */
#ifndef DDPM_TRAINED_WITH_H
#define DDPM_TRAINED_WITH_H

#include "data/dataset.h"
#include "diffusion/schedule.h"
#include "io/safetensors.h"

/* The schedule's kind ("schedule"; linear when absent), T and betas, leaving those unchanged
 * when the file does not say. Returns 0, or -1 with err_msg() when the file is unreadable or
 * the values it gives are invalid. */
int trained_schedule(const char *path, ScheduleKind *kind, int *T, float *beta_start,
                     float *beta_end);

/* The data set ("dataset"; MNIST when absent). Returns 0, or -1 with err_msg(). */
int trained_dataset(const char *path, Dataset *d);

/* The same from a file already opened (messages name f->path). */
int trained_schedule_st(const StFile *f, ScheduleKind *kind, int *T, float *beta_start,
                        float *beta_end);
int trained_dataset_st(const StFile *f, Dataset *d);

#endif
