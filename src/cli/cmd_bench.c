/* ddpm bench: training throughput on synthetic MNIST-shaped data (no data files needed),
 * the median over timed steps after warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/common.h"
#include "train/train.h"

static const char *HEAD =
    "Usage: ddpm bench --model denoiser|time|class [--width D] [--batch B] [--threads N]\n"
    "                  [--steps S] [--warmup W]\n"
    "\n"
    "Times full training steps (forward, backward, Adam) on random images and prints the\n"
    "median throughput as a last line '<number> img/s'. Width and batch default to the\n"
    "model's SPEC defaults.";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv) {
    const char *model = "time";
    int width = 0, batch = 0, threads = 2, steps = 5, warmup = 1;
    Opt opts[] = {
        {"model", OPT_STR, &model, "denoiser, time or class (default time)", 0, -1, 0},
        {"width", OPT_INT, &width, "UNet width D", 1, 1024, 0},
        {"batch", OPT_INT, &batch, "batch size", 1, 65536, 0},
        {"threads", OPT_INT, &threads, "CPU threads (default 2)", 1, 1024, 0},
        {"steps", OPT_INT, &steps, "timed steps (default 5)", 1, 100000, 0},
        {"warmup", OPT_INT, &warmup, "untimed steps first (default 1)", 0, 100000, 0},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, n, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("bench", 2);
    UnetKind kind;
    if (unet_kind_parse(model, &kind) != 0) return cli_fail("bench", 2);
    TrainConfig c;
    train_config_defaults(&c, kind);
    if (width) c.width = width;
    if (batch) c.batch = batch;
    c.threads = threads;
    Trainer tr;
    if (trainer_init(&tr, &c) != 0) return cli_fail("bench", 1);
    Rng rng;
    rng_seed(&rng, 42);
    float *imgs = xmalloc((size_t)c.batch * MNIST_PIXELS * sizeof(float));
    uint8_t *labels = xmalloc((size_t)c.batch);
    rng_fill_uniform(&rng, imgs, (size_t)c.batch * MNIST_PIXELS, 0.0f, 1.0f);
    for (int i = 0; i < c.batch; i++) labels[i] = (uint8_t)rng_below(&rng, 10);
    double *dt = xmalloc((size_t)steps * sizeof(double));
    printf("bench: %s model, width %d, batch %d, %d threads, %zu parameters, %.3g GFLOP per image per step (3x forward)\n",
           model, c.width, c.batch, threads, tr.model.n_params, 6.0 * unet_forward_macs(&tr.model) / 1e9);
    for (int i = 0; i < warmup; i++) trainer_step(&tr, imgs, labels, c.batch);
    for (int i = 0; i < steps; i++) {
        double t0 = now_seconds();
        trainer_step(&tr, imgs, labels, c.batch);
        dt[i] = now_seconds() - t0;
        printf("step %d: %.3f s, %.1f img/s\n", i + 1, dt[i], c.batch / dt[i]);
        fflush(stdout);
    }
    qsort(dt, (size_t)steps, sizeof(double), cmp_double);
    double med = steps % 2 ? dt[steps / 2] : 0.5 * (dt[steps / 2 - 1] + dt[steps / 2]);
    double gflops = 6.0 * unet_forward_macs(&tr.model) * c.batch / med / 1e9;
    printf("median step %.3f s, %.1f GFLOP/s\n", med, gflops);
    printf("%.1f img/s\n", c.batch / med);
    xfree(dt);
    xfree(imgs);
    xfree(labels);
    trainer_free(&tr);
    return 0;
}
