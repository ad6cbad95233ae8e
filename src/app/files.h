/* What the jobs share: the model a job draws from, and the names of the files the sampling
 * jobs write beside their PNG grids, derived from the one given ("a/b.png" -> "a/b-g2.png"). */
#ifndef DDPM_APP_FILES_H
#define DDPM_APP_FILES_H

#include <stddef.h>

#include "ddpm.h"
#include "model/unet.h"

/* Load the weights at ckpt on device (NULL: cpu) for batches of max_batch with nthreads,
 * the moving averages when use_ema and the file has them (*used_ema says; may be NULL). The
 * jobs' grids, IDX files, judge and data are MNIST's, so a model of other images (not
 * 1 x 28 x 28 with 10 classes) is refused here. Returns 0, or -1 with err_msg() (m is then
 * not allocated). */
int app_load_model(Unet *m, int *used_ema, const char *ckpt, int max_batch, int nthreads,
                   int use_ema, const char *device);

/* The same as a handle of the public API (ddpm.h; ddpm_close it), for the jobs built on it:
 * the moving averages unless use_ema is 0 (the handle's used_ema says whether the file had
 * them). Returns 0, or -1 with err_msg() (*h is then NULL). */
int app_open_model(ddpm_model **h, const char *ckpt, int max_batch, int nthreads, int use_ema,
                   const char *device);

/* The same for a model of any geometry (the sampling job, whose grids follow it). */
int app_open_any_model(ddpm_model **h, const char *ckpt, int max_batch, int nthreads,
                       int use_ema, const char *device);

/* path with suffix inserted before its extension (appended when it has none). */
void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix);

#endif
