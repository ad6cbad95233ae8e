/* The configuration of a training run to continue. */
#include "app/train_job.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "train/state.h"

int app_train_resume_config(TrainConfig *c, char *data_buf, size_t cap, const char *dir,
                            const char *data, int threads, const Progress *p) {
    size_t len = strlen(dir) + sizeof TRAIN_STATE_FILE + 1;
    char *state_path = xmalloc(len);
    snprintf(state_path, len, "%s/%s", dir, TRAIN_STATE_FILE);
    int rc = train_state_read_config(state_path, c, data_buf, cap);
    xfree(state_path);
    if (rc != 0) return -1;
    if (threads > 0 && threads != c->threads) {
        progress_log(p, "ddpm: note: the run used %d threads and resumes with %d: the result "
                     "will not be bit-identical to an uninterrupted run\n", c->threads, threads);
        c->threads = threads;
    }
    c->data_dir = data ? data : data_buf[0] ? data_buf : dataset_dir(NULL, c->dataset);
    c->out_dir = dir;
    c->resume = 1;
    c->fault_nan_at = 0;
    c->fault_stop_at = 0;
    return 0;
}
