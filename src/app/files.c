/* The model a job draws from, and derived file names of the sampling jobs' outputs. */
#include "app/files.h"

#include <stdio.h>
#include <string.h>

#include "api/handle.h"
#include "core/common.h"
#include "data/mnist.h"
#include "model/checkpoint.h"

/* The jobs' images are MNIST's. Returns 0, or -1 with err_msg(). */
static int mnist_only(const ImageGeom *g, const char *ckpt) {
    if (g->channels == 1 && g->height == MNIST_H && g->width == MNIST_W && g->classes == 10)
        return 0;
    return err_set("%s: a model of %dx%dx%d images with %d classes; only 1x28x28 with 10 "
                   "classes can be used here", ckpt, g->channels, g->height, g->width, g->classes);
}

int app_load_model(Unet *m, int *used_ema, const char *ckpt, int max_batch, int nthreads,
                   int use_ema, const char *device) {
    const CheckpointLoadOptions lo = {.max_batch = max_batch, .nthreads = nthreads,
                                      .use_ema = use_ema, .device = device};
    if (checkpoint_load(m, used_ema, ckpt, &lo) != 0) return -1;
    if (mnist_only(&m->geom, ckpt) == 0) return 0;
    unet_free(m);
    return -1;
}

int app_open_any_model(ddpm_model **h, const char *ckpt, int max_batch, int nthreads,
                       int use_ema, const char *device) {
    const ddpm_open_options o = {.threads = nthreads, .max_batch = max_batch,
                                 .no_ema = !use_ema, .device = device};
    return ddpm_open(ckpt, &o, h) == DDPM_OK ? 0 : -1;
}

int app_open_model(ddpm_model **h, const char *ckpt, int max_batch, int nthreads, int use_ema,
                   const char *device) {
    if (app_open_any_model(h, ckpt, max_batch, nthreads, use_ema, device) != 0) return -1;
    if (mnist_only(&(*h)->net.geom, ckpt) == 0) return 0;
    ddpm_close(*h);
    *h = NULL;
    return -1;
}

void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path)
        snprintf(dst, cap, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
    else
        snprintf(dst, cap, "%s%s", path, suffix);
}
