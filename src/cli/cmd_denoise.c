/* ddpm denoise: options -> DenoiseJob -> app_denoise (src/app/denoise.h). */
#include <stdio.h>

#include "app/denoise.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"

static const char *HEAD =
    "Usage: ddpm denoise --ckpt FILE [--sigmas 0,0.2,0.4,0.5,0.6,0.8,1.0] [--n N] [--show K]\n"
    "                    [--out FILE.png] [--json FILE.json] [--data DIR] [--seed S] [--threads N]\n"
    "\n"
    "Adds Gaussian noise of each sigma to the first N test digits, denoises them with the\n"
    "checkpoint (a denoiser model), prints and saves the test MSE per sigma, and draws the\n"
    "first K digits: a noisy and a denoised row for each sigma.";

int cmd_denoise(int argc, char **argv) {
    DenoiseJob j = {.ckpt = NULL, .n = 10000, .show = 8, .out = "denoise.png",
                    .json = "denoise.json", .data = NULL, .seed = 1, .threads = 2, .batch = 256};
    const char *sig_s = "0,0.2,0.4,0.5,0.6,0.8,1.0";
    Opt opts[] = {
        {"ckpt", OPT_STR, &j.ckpt, "denoiser weights (.safetensors), required", 0, -1, 0},
        {"sigmas", OPT_STR, &sig_s, "comma-separated noise levels", 0, -1, 0},
        {"n", OPT_INT, &j.n, "test images for the MSE (default 10000)", 1, 10000, 0},
        {"show", OPT_INT, &j.show, "digits drawn in the grid (default 8)", 1, 64, 0},
        {"out", OPT_STR, &j.out, "grid PNG (default denoise.png)", 0, -1, 0},
        {"json", OPT_STR, &j.json, "MSE per sigma as JSON (default denoise.json)", 0, -1, 0},
        {"data", OPT_STR, &j.data, "MNIST directory", 0, -1, 0},
        {"seed", OPT_U64, &j.seed, "noise seed", 0, -1, 0},
        {"threads", OPT_INT, &j.threads, "CPU threads", 1, 1024, 0},
        {"device", OPT_STR, &j.device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"batch", OPT_INT, &j.batch, "images per forward pass", 1, 4096, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("denoise", 2);
    if (cli_check_device("denoise", j.device) != 0) return 2;
    if (!j.ckpt) {
        fprintf(stderr, "ddpm denoise: --ckpt is required (see --help)\n");
        return 2;
    }
    j.n_sigmas = parse_float_list("--sigmas", sig_s, j.sigmas, APP_DENOISE_MAX_SIGMAS);
    if (j.n_sigmas < 0) return cli_fail("denoise", 2);
    for (int i = 0; i < j.n_sigmas; i++)
        if (j.sigmas[i] < 0 || j.sigmas[i] > 100) {
            fprintf(stderr, "ddpm denoise: --sigmas: %g is out of range (0..100)\n", (double)j.sigmas[i]);
            return 2;
        }
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_denoise(&j, &out) != 0) return cli_fail("denoise", 1);
    return 0;
}
