/* The figures of a training run: Part 1's noising, denoising and out-of-distribution grids,
 * and the sample grids of Parts 2 and 3, written as PNG into the run directory. */
#include "train/figures.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "diffusion/sampler.h"
#include "io/fileio.h"
#include "io/image.h"
#include "train/denoiser_eval.h"

const float TRAIN_FIG_SIGMAS[N_FIG_SIGMAS] = {0.0f, 0.2f, 0.4f, 0.5f, 0.6f, 0.8f, 1.0f};

/* Part 1 figures. */
int train_fig_noising(const char *dir, const float *train_imgs, const ImageGeom *geom) {
    const int rows = 5;
    const int P = (int)geometry_pixels(geom);
    float *g = xmalloc((size_t)rows * N_FIG_SIGMAS * P * sizeof(float));
    Rng r;
    rng_seed(&r, 12345);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < N_FIG_SIGMAS; j++) {
            float *dst = g + ((size_t)i * N_FIG_SIGMAS + j) * P;
            for (int p = 0; p < P; p++) dst[p] = train_imgs[(size_t)i * P + p] + TRAIN_FIG_SIGMAS[j] * rng_normal(&r);
        }
    char lab[N_FIG_SIGMAS][24];
    const char *labs[N_FIG_SIGMAS];
    for (int j = 0; j < N_FIG_SIGMAS; j++) {
        snprintf(lab[j], sizeof lab[j], "sigma %.1f", (double)TRAIN_FIG_SIGMAS[j]);
        labs[j] = lab[j];
    }
    char path[1024];
    path_join(path, sizeof path, dir, "noising.png");
    int rc = figure_grid_png_c(path, g, rows, N_FIG_SIGMAS, geom->channels, geom->height,
                               geom->width, "Noising: z = x + sigma * eps", NULL, labs);
    xfree(g);
    return rc;
}

int train_fig_denoise(const char *dir, Unet *m, const float *test, int epoch, float sigma,
                       uint64_t seed) {
    const int cols = 8;
    const ImageGeom *geom = &m->geom;
    const size_t P = geometry_pixels(geom);
    float *g = xmalloc((size_t)3 * cols * P * sizeof(float));
    float *noisy = xmalloc((size_t)cols * P * sizeof(float));
    float *den = xmalloc((size_t)cols * P * sizeof(float));
    denoiser_test_mse(m, test, cols, sigma, seed, noisy, den);
    memcpy(g, test, (size_t)cols * P * sizeof(float));
    memcpy(g + (size_t)cols * P, noisy, (size_t)cols * P * sizeof(float));
    memcpy(g + (size_t)2 * cols * P, den, (size_t)cols * P * sizeof(float));
    const char *rows[3] = {"clean", "noisy", "denoised"};
    char title[128], name[64], path[1024];
    snprintf(title, sizeof title, "Test digits, sigma %.2g, after epoch %d", (double)sigma, epoch);
    snprintf(name, sizeof name, "denoise_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png_c(path, g, 3, cols, geom->channels, geom->height, geom->width, title,
                               rows, NULL);
    xfree(g);
    xfree(noisy);
    xfree(den);
    return rc;
}

int train_fig_ood(const char *dir, Unet *m, const float *test, int epoch, uint64_t seed) {
    const ImageGeom *geom = &m->geom;
    const size_t P = geometry_pixels(geom);
    float *g = xmalloc((size_t)2 * N_FIG_SIGMAS * P * sizeof(float));
    for (int j = 0; j < N_FIG_SIGMAS; j++)
        denoiser_test_mse(m, test, 1, TRAIN_FIG_SIGMAS[j], seed + (uint64_t)j, g + (size_t)j * P,
                          g + (size_t)(N_FIG_SIGMAS + j) * P);
    char lab[N_FIG_SIGMAS][24];
    const char *labs[N_FIG_SIGMAS];
    for (int j = 0; j < N_FIG_SIGMAS; j++) {
        snprintf(lab[j], sizeof lab[j], "sigma %.1f", (double)TRAIN_FIG_SIGMAS[j]);
        labs[j] = lab[j];
    }
    const char *rows[2] = {"noisy", "denoised"};
    char title[128], name[64], path[1024];
    snprintf(title, sizeof title, "Out-of-distribution noise levels, after epoch %d", epoch);
    snprintf(name, sizeof name, "ood_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png_c(path, g, 2, N_FIG_SIGMAS, geom->channels, geom->height,
                               geom->width, title, rows, labs);
    xfree(g);
    return rc;
}

/* Sample grids for Parts 2 and 3. */
int train_fig_samples(const char *dir, Unet *m, const Schedule *sched, const TrainConfig *c,
                      int epoch) {
    Rng r;
    rng_seed(&r, c->seed + 1000);
    int rows, cols, n;
    int *labels = NULL;
    const ImageGeom *geom = &m->geom;
    if (c->kind == UNET_CLASS) {
        rows = geom->classes;
        cols = 4;
        n = rows * cols;
        labels = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) labels[i] = i / cols;
    } else {
        n = c->n_grid;
        cols = 10;
        rows = (n + cols - 1) / cols;
    }
    float *out = xcalloc((size_t)rows * cols * geometry_pixels(geom), sizeof(float));
    SampleRequest req = {.n = n, .labels = labels, .guidance = c->guidance};
    sampler_draw(m, sched, &r, &req, out);
    char title[128], name[64], path[1024];
    const char *row_labels[GEOMETRY_MAX_CLASSES];
    for (int k = 0; k < geom->classes; k++) row_labels[k] = geom->class_names[k];
    if (c->kind == UNET_CLASS)
        snprintf(title, sizeof title, "Class-conditioned samples, guidance %.3g, epoch %d", (double)c->guidance, epoch);
    else
        snprintf(title, sizeof title, "Samples from pure noise (T=%d), epoch %d", c->T, epoch);
    snprintf(name, sizeof name, "samples_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png_c(path, out, rows, cols, geom->channels, geom->height, geom->width,
                               title, c->kind == UNET_CLASS ? row_labels : NULL, NULL);
    xfree(out);
    xfree(labels);
    return rc;
}

