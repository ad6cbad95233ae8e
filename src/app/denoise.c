/* The denoising job: checkpoint (the public API's handle, ddpm.h) + test digits -> MSE per
 * sigma, figure, JSON. */
#include "app/denoise.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api/handle.h"
#include "app/files.h"
#include "core/common.h"
#include "core/pixel.h"
#include "data/mnist.h"
#include "io/image.h"
#include "io/jsonio.h"
#include "train/denoiser_eval.h"

#define P MNIST_PIXELS
#define MAX_ROWS (1 + 2 * APP_DENOISE_MAX_SIGMAS)

/* The network's part of the test MSE (train/denoiser_eval.h) through the handle
 * (ddpm_denoise): the noisy images come down to host memory and the outputs go back. */
typedef struct {
    ddpm_model *h;
    const OpsCtx *ctx;
    float *host; /* (max_batch, P) */
} ApiDenoiser;

static void api_denoise(void *user, float *out, const float *noisy, int c) {
    ApiDenoiser *a = user;
    const size_t bytes = (size_t)c * P * sizeof(float);
    dev_download(a->ctx, a->host, noisy, bytes);
    /* the job checked the model's kind: nothing else can fail */
    DDPM_CHECK(ddpm_denoise(a->h, a->host, c, a->host) == DDPM_OK);
    dev_upload(a->ctx, out, a->host, bytes);
}

/* The test MSE at noise level sigma over n images, noise from a generator seeded by seed;
 * noisy and denoised (n, P) receive the images when not NULL. The noise is made, and the
 * error summed, by ctx, the model's backend with its threads. */
static double denoise_mse(ddpm_model *h, const OpsCtx *ctx, const float *images, int n,
                          float sigma, uint64_t seed, float *noisy, float *denoised) {
    const int B = h->net.max_batch;
    ApiDenoiser a = {.h = h, .ctx = ctx, .host = xmalloc((size_t)B * P * sizeof(float))};
    double mse = denoiser_test_mse_fn(ctx, api_denoise, &a, B, P, images, n, sigma, seed, noisy,
                                      denoised);
    xfree(a.host);
    return mse;
}

/* The MSE table and the grid's rows: clean, then a noisy and a denoised row per sigma. */
static void denoise_levels(const DenoiseJob *j, const Progress *p, ddpm_model *h,
                           const OpsCtx *ctx, const float *imgs, int n, int show, float *grid,
                           cJSON *arr, char (*labels)[32]) {
    float *noisy = xmalloc((size_t)show * P * sizeof(float));
    float *den = xmalloc((size_t)show * P * sizeof(float));
    snprintf(labels[0], 32, "clean");
    progress_out(p, "sigma    test MSE    PSNR (dB)\n");
    for (int i = 0; i < j->n_sigmas; i++) {
        const float sig = j->sigmas[i];
        double mse = denoise_mse(h, ctx, imgs, n, sig, j->seed + (uint64_t)i, NULL, NULL);
        denoise_mse(h, ctx, imgs, show, sig, j->seed + (uint64_t)i, noisy, den);
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
    ddpm_model *h;
    if (app_open_model(&h, job->ckpt, job->batch, job->threads, 1, job->device) != 0) return -1;
    int rc = -1;
    MnistSplit test = {0};
    float *imgs = NULL, *grid = NULL;
    cJSON *doc = NULL;
    OpsCtx ctx; /* the model's backend and threads, for the noise and the error sums */
    if (h->net.kind != UNET_DENOISER) {
        err_set("%s is a %s model; denoising needs a denoiser (time and class models are sampled)",
                job->ckpt, unet_kind_name(h->net.kind));
        goto done;
    }
    if (ops_ctx_init(&ctx, job->device, job->threads) != 0) goto done;
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
    denoise_levels(job, p, h, &ctx, imgs, n, show, grid, arr, labels);
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
    ddpm_close(h);
    return rc;
}
