/* Preparing a training run for train_run (train/train.h) beyond the defaults: the
 * configuration of a run to continue, read from its checkpoint. */
#ifndef DDPM_APP_TRAIN_JOB_H
#define DDPM_APP_TRAIN_JOB_H

#include <stddef.h>

#include "core/progress.h"
#include "train/train.h"

/* c = the configuration saved in dir's training checkpoint, set to resume there: data is
 * the data directory (NULL: the one the run recorded, kept in data_buf (cap bytes), else the
 * data set's default); threads > 0 replaces the run's thread count (with a note on p when it
 * differs: the result is then not bit-identical). The caller sets progress and report.
 * Returns 0, or -1 with err_msg(). */
int app_train_resume_config(TrainConfig *c, char *data_buf, size_t cap, const char *dir,
                            const char *data, int threads, const Progress *p);

#endif
