/* ddpm bench: options -> BenchJob -> app_bench (src/app/bench.h). */
#include <stdio.h>

#include "app/bench.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"

static const char *HEAD =
    "Usage: ddpm bench --model denoiser|time|class [--width D] [--batch B] [--threads N]\n"
    "                  [--steps S] [--warmup W] [--sample [--sample-steps K]] [--profile]\n"
    "\n"
    "Times full training steps (forward, backward, Adam) on random images and prints the\n"
    "median throughput as a last line '<number> img/s'. Width and batch default to the\n"
    "model's SPEC defaults. --sample times the 300-step DDPM sampler instead (batch B; for\n"
    "a class model guided, with conditional and unconditional passes in one forward of 2B),\n"
    "timing K reverse steps per repeat and extrapolating to all T steps. --profile adds a\n"
    "table of every layer's time per step (training step, or reverse step with --sample),\n"
    "forward and backward, with the convolutions' GFLOP/s and share of the machine's SGEMM\n"
    "peak (measured first, same thread count); layers marked W run Winograd F(2x2,3x3), W4\n"
    "F(4x4,3x3), Wt sub-pixel F(2x2,2x2), whose rates count direct-convolution FLOPs.";

int cmd_bench(int argc, char **argv) {
    const char *model = "time";
    BenchJob j = {.threads = 2, .steps = 5, .warmup = 1, .sample_steps = 10};
    const char *attention = "none";
    Opt opts[] = {
        {"model", OPT_STR, &model, "denoiser, time or class (default time)", 0, -1, 0},
        {"width", OPT_INT, &j.width, "UNet width D", 1, 1024, 0},
        {"batch", OPT_INT, &j.batch, "batch size", 1, 65536, 0},
        {"threads", OPT_INT, &j.threads, "CPU threads (default 2; per process under mpirun: the cores shared among them)", 1, 1024, 0},
        {"device", OPT_STR, &j.device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"steps", OPT_INT, &j.steps, "timed steps (default 5)", 1, 100000, 0},
        {"warmup", OPT_INT, &j.warmup, "untimed steps first (default 1)", 0, 100000, 0},
        {"sample", OPT_FLAG, &j.sample, "time the DDPM sampler instead of training", 0, -1, 0},
        {"sample-steps", OPT_INT, &j.sample_steps, "reverse steps timed per repeat (default 10)", 1, 100000, 0},
        {"profile", OPT_FLAG, &j.profile, "also print the per-layer time table of the timed steps (training or sampling)", 0, -1, 0},
        {"residual", OPT_FLAG, &j.residual, "residual ConvBlocks (as ddpm train --residual)", 0, -1, 0},
        {"attention", OPT_STR, &attention, "attention layers at down2, up1 or down2,up1 (as ddpm train --attention; default none)", 0, -1, 0},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, n, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("bench", 2);
    if (cli_check_device("bench", j.device) != 0) return 2;
    j.threads = cli_rank_threads(j.threads, args_find(opts, n, "threads")->seen);
    if (unet_kind_parse(model, &j.kind) != 0) return cli_fail("bench", 2);
    if (unet_attention_parse(attention, &j.attention) != 0) {
        fprintf(stderr, "ddpm bench: --attention %.40s: the attention layers' places are down2, up1 or down2,up1 (or none; 7 and 14 are their old names)\n", attention);
        return 2;
    }
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_bench(&j, &out) != 0) return cli_fail("bench", 1);
    return 0;
}
