/* The denoising job: checkpoint + test digits -> MSE per sigma, figure, JSON. */
#include "app/denoise.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "app/files.h"
#include "core/common.h"
#include "core/pixel.h"
#include "data/mnist.h"
#include "io/image.h"
#include "io/jsonio.h"
#include "train/train.h"

#define P MNIST_PIXELS
#define MAX_ROWS (1 + 2 * APP_DENOISE_MAX_SIGMAS)

/* The MSE table and the grid's rows: clean, then a noisy and a denoised row per sigma. */
static void denoise_levels(const DenoiseJob *j, const Progress *p, Unet *m, const float *imgs,
                           int n, int show, float *grid, cJSON *arr, char (*labels)[32]) {
    float *noisy = xmalloc((size_t)show * P * sizeof(float));
    float *den = xmalloc((size_t)show * P * sizeof(float));
    snprintf(labels[0], 32, "clean");
    progress_out(p, "sigma    test MSE    PSNR (dB)\n");
    for (int i = 0; i < j->n_sigmas; i++) {
        const float sig = j->sigmas[i];
        double mse = denoiser_test_mse(m, imgs, n, sig, j->seed + (uint64_t)i, NULL, NULL);
        denoiser_test_mse(m, imgs, show, sig, j->seed + (uint64_t)i, noisy, den);
        double psnr = 10.0 * log10(1.0 / mse);
        progress_out(p, "%-8.3g %-11.5f %.2f\n", (double)sig, mse, psnr);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sigma", sig);
        cJSON_AddNumberToObject(o, "mse", mse);
        cJSON_AddNumberToObject(o, "psnr_db", psnr);
        cJSON_AddItemToArray(arr, o);
        memcpy(grid + (size_t)(1 + 2 * i) * show * P, noisy, (size_t)show * P * sizeof(float));
        memcpy(grid + (size_t)(2 + 2 * i) * show * P, den, (size_t)show * P * sizeof(float));
        snprintf(labels[1 + 2 * i], 32, "noisy %.2g", (double)sig);
        snprintf(labels[2 + 2 * i], 32, "denoised");
    }
    xfree(noisy);
    xfree(den);
}

int app_denoise(const DenoiseJob *job, const Progress *p) {
    const int ns = job->n_sigmas;
    if (ns < 1 || ns > APP_DENOISE_MAX_SIGMAS)
        return err_set("%d noise levels: 1 to %d can be evaluated", ns, APP_DENOISE_MAX_SIGMAS);
    Unet m;
    if (app_load_model(&m, NULL, job->ckpt, job->batch, job->threads, 1, job->device) != 0)
        return -1;
    int rc = -1;
    MnistSplit test = {0};
    float *imgs = NULL, *grid = NULL;
    cJSON *doc = NULL;
    if (m.kind != UNET_DENOISER) {
        err_set("%s is a %s model; denoising needs a denoiser (time and class models are sampled)",
                job->ckpt, unet_kind_name(m.kind));
        goto done;
    }
    if (mnist_load(mnist_data_dir(job->data), 0, &test) != 0) goto done;
    int n = job->n < test.n ? job->n : test.n;
    int show = job->show < n ? job->show : n;
    imgs = xmalloc((size_t)n * P * sizeof(float));
    pixels_from_u8(imgs, test.images, (size_t)n * P);
    grid = xmalloc((size_t)(1 + 2 * ns) * show * P * sizeof(float));
    memcpy(grid, imgs, (size_t)show * P * sizeof(float));
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "checkpoint", job->ckpt);
    cJSON_AddNumberToObject(doc, "n", n);
    cJSON *arr = cJSON_AddArrayToObject(doc, "results");
    char labels[MAX_ROWS][32];
    const char *rowl[MAX_ROWS];
    denoise_levels(job, p, &m, imgs, n, show, grid, arr, labels);
    for (int i = 0; i < 1 + 2 * ns; i++) rowl[i] = labels[i];
    if (figure_grid_png(job->out, grid, 1 + 2 * ns, show, 28, 28, "Denoising test digits", rowl, NULL) != 0)
        goto done;
    if (json_save(job->json, doc) != 0) goto done;
    progress_out(p, "wrote %s and %s\n", job->out, job->json);
    rc = 0;
done:
    cJSON_Delete(doc);
    xfree(imgs);
    xfree(grid);
    mnist_free(&test);
    unet_free(&m);
    return rc;
}
