/* ddpm bench: options -> BenchJob -> app_bench (src/app/bench.h). */
#include <stdio.h>

#include "app/bench.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/sampler_opts.h"
#include "core/common.h"
#include "diffusion/schedule.h"

static const char *HEAD =
    "Usage: ddpm bench --model denoiser|time|class [--width D] [--batch B] [--threads N]\n"
    "                  [--steps S] [--warmup W] [--profile]\n"
    "       ddpm bench --sample [--sampler ddpm|ddim|dpmpp2m|dpmpp2m-sde|dpmpp3m] [--steps K]\n"
    "                  [--spacing SP] [--repeats R] [--sample-steps P] [--profile] ...\n"
    "\n"
    "Times full training steps (forward, backward, Adam) on random images and prints the\n"
    "median throughput as a last line '<number> img/s'. Width and batch default to the\n"
    "model's SPEC defaults. --sample times a sampler instead (default the SPEC's DDPM over\n"
    "all T = 300 steps; --sampler and --steps K as in ddpm sample; batch B; for a class\n"
    "model guided, with conditional and unconditional passes in one forward of 2B): each of\n"
    "R repeats times P network passes (or all of them when the chain has fewer) and scales\n"
    "the time per pass to the chain's NFE (network passes per image: T for DDPM, K for the\n"
    "others; a guided pair counts as one), img/s = B / (time per pass x NFE). --profile\n"
    "adds a table of every layer's time per step (training step, or network pass with\n"
    "--sample), forward and backward, with the convolutions' GFLOP/s and share of the\n"
    "machine's SGEMM peak (measured first, same thread count); layers marked W run Winograd\n"
    "F(2x2,3x3), W4 F(4x4,3x3), Wt sub-pixel F(2x2,2x2), whose rates count direct-convolution\n"
    "FLOPs.";

/* The sampler's options go with --sample, and --repeats too; with --sample, --steps is the
 * sampler's K and --repeats the timed repeats. Returns 0, or the exit status after the
 * message: 2 for an option out of place, 1 for a sampler that cannot be (as ddpm sample). */
static int sample_options(BenchJob *j, Opt *opts, int no, SamplerWords *w, int steps, int repeats) {
    const char *only[] = {"sampler", "eta", "clip", "spacing", "repeats", "sample-steps"};
    if (!j->sample) {
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (args_find(opts, no, only[i])->seen) {
                fprintf(stderr, "ddpm bench: --%s goes with --sample\n", only[i]);
                return 2;
            }
        if (args_find(opts, no, "steps")->seen) j->steps = steps;
        return 0;
    }
    j->steps = repeats;
    if (args_find(opts, no, "steps")->seen && !args_find(opts, no, "sampler")->seen) {
        /* before the samplers, --steps counted the repeats of --sample */
        fprintf(stderr, "ddpm bench: --steps %d: with --sample, --steps is the sampler's K (the "
                        "DDPM sampler takes all T); the timed repeats are --repeats\n", steps);
        return 2;
    }
    w->steps = args_find(opts, no, "steps")->seen ? steps : 0;
    if (sampler_words_parse(&j->sampler, w) != 0) return cli_fail("bench", 1);
    /* K against the T of the model's SPEC schedule, with the option named */
    Schedule s;
    if (schedule_init(&s, SCHEDULE_DEFAULT_T, SCHEDULE_DEFAULT_BETA_START, SCHEDULE_DEFAULT_BETA_END) != 0)
        return cli_fail("bench", 1);
    SampleRequest req = {0};
    int rc = sampler_words_choose(&req, &s, w);
    schedule_free(&s);
    return rc != 0 ? cli_fail("bench", 1) : 0;
}

int cmd_bench(int argc, char **argv) {
    const char *model = "time";
    BenchJob j = {.threads = 2, .steps = 5, .warmup = 1, .sample_steps = 10};
    int steps = 5, repeats = 5;
    SamplerWords w = {"ddpm", 0, -1.0f, 0, NULL};
    const char *attention = "none";
    Opt opts[] = {
        {"model", OPT_STR, &model, "denoiser, time or class (default time)", 0, -1, 0},
        {"width", OPT_INT, &j.width, "UNet width D", 1, 1024, 0},
        {"batch", OPT_INT, &j.batch, "batch size", 1, 65536, 0},
        {"threads", OPT_INT, &j.threads, "CPU threads (default 2; per process under mpirun: the cores shared among them)", 1, 1024, 0},
        {"device", OPT_STR, &j.device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"steps", OPT_INT, &steps, "training: timed steps (default 5); --sample: the sampler's K, as in ddpm sample", 1, 100000, 0},
        {"warmup", OPT_INT, &j.warmup, "untimed steps first (default 1)", 0, 100000, 0},
        {"sample", OPT_FLAG, &j.sample, "time a sampler (default the SPEC's DDPM) instead of training", 0, -1, 0},
        CLI_SAMPLER_OPTS(w, "--sample, "),
        {"repeats", OPT_INT, &repeats, "--sample: timed repeats (default 5)", 1, 100000, 0},
        {"sample-steps", OPT_INT, &j.sample_steps, "--sample: network passes timed per repeat (default 10, at most the chain's NFE)", 1, 100000, 0},
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
    if ((r = sample_options(&j, opts, n, &w, steps, repeats)) != 0) return r;
    if (unet_attention_parse(attention, &j.attention) != 0) {
        fprintf(stderr, "ddpm bench: --attention %.40s: the attention layers' places are down2, up1 or down2,up1 (or none; 7 and 14 are their old names)\n", attention);
        return 2;
    }
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_bench(&j, &out) != 0) return cli_fail("bench", 1);
    return 0;
}
