/* ddpm bench: training throughput on synthetic MNIST-shaped data (no data files needed),
 * the median over timed steps after warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/common.h"
#include "diffusion/sampler.h"
#include "train/train.h"

static const char *HEAD =
    "Usage: ddpm bench --model denoiser|time|class [--width D] [--batch B] [--threads N]\n"
    "                  [--steps S] [--warmup W] [--sample [--sample-steps K]]\n"
    "\n"
    "Times full training steps (forward, backward, Adam) on random images and prints the\n"
    "median throughput as a last line '<number> img/s'. Width and batch default to the\n"
    "model's SPEC defaults. --sample times the 300-step DDPM sampler instead (batch B; for\n"
    "a class model guided, with conditional and unconditional passes in one forward of 2B),\n"
    "timing K reverse steps per repeat and extrapolating to all T steps.";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Sampling throughput: `steps` repeats of k reverse steps on a batch of B samples, each
 * repeat extrapolated to the schedule's T steps. */
static int bench_sample(const TrainConfig *c, UnetKind kind, int steps, int warmup, int k) {
    Unet m;
    Rng rng;
    rng_seed(&rng, 7);
    int guided = kind == UNET_CLASS;
    if (unet_init(&m, kind, c->width, guided ? 2 * c->batch : c->batch, c->threads, &rng) != 0)
        return cli_fail("bench", 1);
    Schedule full, s;
    if (schedule_init(&full, c->T, c->beta_start, c->beta_end) != 0) return cli_fail("bench", 1);
    if (k > c->T) k = c->T;
    /* a schedule of k steps costs exactly k reverse steps of the full sampler */
    if (schedule_init(&s, k, c->beta_start, c->beta_end) != 0) return cli_fail("bench", 1);
    int *labels = xmalloc((size_t)c->batch * sizeof(int));
    for (int i = 0; i < c->batch; i++) labels[i] = i % 10;
    float *out = xmalloc((size_t)c->batch * MNIST_PIXELS * sizeof(float));
    SampleRequest req = {.n = c->batch, .labels = guided ? labels : NULL, .guidance = 5.0f};
    printf("bench: sampling, %s model, width %d, batch %d%s, %d threads, %d of %d steps timed per repeat\n",
           unet_kind_name(kind), c->width, c->batch, guided ? " (guided: 2B per forward)" : "", c->threads, k, c->T);
    for (int i = 0; i < warmup; i++) ddpm_sample(&m, &s, &rng, &req, out);
    double *ips = xmalloc((size_t)steps * sizeof(double));
    for (int i = 0; i < steps; i++) {
        double t0 = now_seconds();
        ddpm_sample(&m, &s, &rng, &req, out);
        double per_step = (now_seconds() - t0) / k;
        ips[i] = c->batch / (per_step * c->T);
        printf("repeat %d: %.4f s per reverse step, %.3f img/s for %d steps\n", i + 1, per_step, ips[i], c->T);
        fflush(stdout);
    }
    printf("%.3f img/s\n", median(ips, steps));
    xfree(ips);
    xfree(labels);
    xfree(out);
    schedule_free(&s);
    schedule_free(&full);
    unet_free(&m);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *model = "time";
    int width = 0, batch = 0, threads = 2, steps = 5, warmup = 1, sample = 0, sample_steps = 10;
    Opt opts[] = {
        {"model", OPT_STR, &model, "denoiser, time or class (default time)", 0, -1, 0},
        {"width", OPT_INT, &width, "UNet width D", 1, 1024, 0},
        {"batch", OPT_INT, &batch, "batch size", 1, 65536, 0},
        {"threads", OPT_INT, &threads, "CPU threads (default 2)", 1, 1024, 0},
        {"steps", OPT_INT, &steps, "timed steps (default 5)", 1, 100000, 0},
        {"warmup", OPT_INT, &warmup, "untimed steps first (default 1)", 0, 100000, 0},
        {"sample", OPT_FLAG, &sample, "time the DDPM sampler instead of training", 0, -1, 0},
        {"sample-steps", OPT_INT, &sample_steps, "reverse steps timed per repeat (default 10)", 1, 100000, 0},
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
    printf("BLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    if (sample) return bench_sample(&c, kind, steps, warmup, sample_steps);
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
    double med = median(dt, steps);
    double gflops = 6.0 * unet_forward_macs(&tr.model) * c.batch / med / 1e9;
    printf("median step %.3f s, %.1f GFLOP/s\n", med, gflops);
    printf("%.1f img/s\n", c.batch / med);
    xfree(dt);
    xfree(imgs);
    xfree(labels);
    trainer_free(&tr);
    return 0;
}
