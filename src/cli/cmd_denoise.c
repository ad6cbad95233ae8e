/* ddpm denoise: a trained denoiser on test digits at several noise levels: a PNG grid
 * (noisy and denoised rows per sigma) and the test MSE per sigma as JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/common.h"
#include "data/mnist.h"
#include "io/image.h"
#include "io/jsonio.h"
#include "model/checkpoint.h"
#include "train/train.h"

#define MAX_SIGMAS 32

static const char *HEAD =
    "Usage: ddpm denoise --ckpt FILE [--sigmas 0,0.2,0.4,0.5,0.6,0.8,1.0] [--n N] [--show K]\n"
    "                    [--out FILE.png] [--json FILE.json] [--data DIR] [--seed S] [--threads N]\n"
    "\n"
    "Adds Gaussian noise of each sigma to the first N test digits, denoises them with the\n"
    "checkpoint (a denoiser model), prints and saves the test MSE per sigma, and draws the\n"
    "first K digits: a noisy and a denoised row for each sigma.";

int cmd_denoise(int argc, char **argv) {
    const char *ckpt = NULL, *sig_s = "0,0.2,0.4,0.5,0.6,0.8,1.0", *out = "denoise.png";
    const char *json = "denoise.json", *data = NULL;
    int n = 10000, show = 8, threads = 2, batch = 256;
    uint64_t seed = 1;
    Opt opts[] = {
        {"ckpt", OPT_STR, &ckpt, "denoiser weights (.safetensors), required", 0, -1, 0},
        {"sigmas", OPT_STR, &sig_s, "comma-separated noise levels", 0, -1, 0},
        {"n", OPT_INT, &n, "test images for the MSE (default 10000)", 1, 10000, 0},
        {"show", OPT_INT, &show, "digits drawn in the grid (default 8)", 1, 64, 0},
        {"out", OPT_STR, &out, "grid PNG (default denoise.png)", 0, -1, 0},
        {"json", OPT_STR, &json, "MSE per sigma as JSON (default denoise.json)", 0, -1, 0},
        {"data", OPT_STR, &data, "MNIST directory", 0, -1, 0},
        {"seed", OPT_U64, &seed, "noise seed", 0, -1, 0},
        {"threads", OPT_INT, &threads, "CPU threads", 1, 1024, 0},
        {"batch", OPT_INT, &batch, "images per forward pass", 1, 4096, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("denoise", 2);
    if (!ckpt) {
        fprintf(stderr, "ddpm denoise: --ckpt is required (see --help)\n");
        return 2;
    }
    float sig[MAX_SIGMAS];
    int ns = parse_float_list("--sigmas", sig_s, sig, MAX_SIGMAS);
    if (ns < 0) return cli_fail("denoise", 2);
    for (int i = 0; i < ns; i++)
        if (sig[i] < 0 || sig[i] > 100) {
            fprintf(stderr, "ddpm denoise: --sigmas: %g is out of range (0..100)\n", (double)sig[i]);
            return 2;
        }
    if (show > n) show = n;
    Unet m;
    const CheckpointLoadOptions lo = {.max_batch = batch, .nthreads = threads, .use_ema = 1};
    if (checkpoint_load(&m, NULL, ckpt, &lo) != 0) return cli_fail("denoise", 1);
    int rc = 1;
    MnistSplit test = {0};
    float *imgs = NULL, *grid = NULL, *noisy = NULL, *den = NULL;
    cJSON *doc = NULL;
    if (m.kind != UNET_DENOISER) {
        err_set("%s is a %s model; denoise needs a denoiser (use ddpm sample for time and class models)", ckpt, unet_kind_name(m.kind));
        goto done;
    }
    if (mnist_load(mnist_data_dir(data), 0, &test) != 0) goto done;
    if (n > test.n) n = test.n;
    imgs = xmalloc((size_t)n * MNIST_PIXELS * sizeof(float));
    for (size_t i = 0; i < (size_t)n * MNIST_PIXELS; i++) imgs[i] = test.images[i] / 255.0f;
    grid = xmalloc((size_t)(1 + 2 * ns) * show * MNIST_PIXELS * sizeof(float));
    noisy = xmalloc((size_t)show * MNIST_PIXELS * sizeof(float));
    den = xmalloc((size_t)show * MNIST_PIXELS * sizeof(float));
    memcpy(grid, imgs, (size_t)show * MNIST_PIXELS * sizeof(float));
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "checkpoint", ckpt);
    cJSON_AddNumberToObject(doc, "n", n);
    cJSON *arr = cJSON_AddArrayToObject(doc, "results");
    char labels[1 + 2 * MAX_SIGMAS][32];
    const char *rowl[1 + 2 * MAX_SIGMAS];
    snprintf(labels[0], sizeof labels[0], "clean");
    printf("sigma    test MSE    PSNR (dB)\n");
    for (int i = 0; i < ns; i++) {
        double mse = denoiser_test_mse(&m, imgs, n, sig[i], seed + (uint64_t)i, NULL, NULL);
        denoiser_test_mse(&m, imgs, show, sig[i], seed + (uint64_t)i, noisy, den);
        double psnr = 10.0 * log10(1.0 / mse);
        printf("%-8.3g %-11.5f %.2f\n", (double)sig[i], mse, psnr);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sigma", sig[i]);
        cJSON_AddNumberToObject(o, "mse", mse);
        cJSON_AddNumberToObject(o, "psnr_db", psnr);
        cJSON_AddItemToArray(arr, o);
        memcpy(grid + (size_t)(1 + 2 * i) * show * MNIST_PIXELS, noisy, (size_t)show * MNIST_PIXELS * sizeof(float));
        memcpy(grid + (size_t)(2 + 2 * i) * show * MNIST_PIXELS, den, (size_t)show * MNIST_PIXELS * sizeof(float));
        snprintf(labels[1 + 2 * i], sizeof labels[0], "noisy %.2g", (double)sig[i]);
        snprintf(labels[2 + 2 * i], sizeof labels[0], "denoised");
    }
    for (int i = 0; i < 1 + 2 * ns; i++) rowl[i] = labels[i];
    if (figure_grid_png(out, grid, 1 + 2 * ns, show, 28, 28, "Denoising test digits", rowl, NULL) != 0) goto done;
    if (json_save(json, doc) != 0) goto done;
    printf("wrote %s and %s\n", out, json);
    rc = 0;
done:
    if (rc) cli_fail("denoise", 1);
    cJSON_Delete(doc);
    xfree(imgs);
    xfree(grid);
    xfree(noisy);
    xfree(den);
    mnist_free(&test);
    unet_free(&m);
    return rc;
}
