/* ddpm eval: options -> EvalJob -> app_eval (src/app/eval.h). */
#include <stdio.h>
#include <unistd.h>

#include "app/eval.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/sampler_opts.h"
#include "core/common.h"
#include "eval/evaluate.h"

static const char *HEAD =
    "Usage: ddpm eval --ckpt FILE [--n N] [--guidance G,G,..] [--sigmas S,S,..] [--json FILE]\n"
    "                 [--sampler ddpm|ddim|dpmpp2m|dpmpp2m-sde|dpmpp3m] [--steps K] [--spacing S]\n"
    "       ddpm eval --samples FILE.idx|FILE.png [--n N] [--labels FILE.idx] [--json FILE]\n"
    "       ddpm eval --judge-only\n"
    "\n"
    "Judges digits with an MNIST classifier trained by this program (the judge; trained on\n"
    "first use, a few minutes on 2 cores, and cached with a sha256 checksum in\n"
    "$XDG_CACHE_HOME/ddpm or ~/.cache/ddpm, or at --judge FILE). Metrics, against the MNIST\n"
    "test set in the judge's 128-d feature space: FID, precision and recall (k=3), accuracy\n"
    "per requested digit (class samples), the histogram and entropy of judged digits,\n"
    "diversity within each digit relative to real digits, and memorisation (distance to the\n"
    "nearest training image); beside them the real-data floor (training images in place of\n"
    "samples). --ckpt draws N samples from a time or class model (class: digits 0-9 in turn,\n"
    "one column per guidance scale) with --sampler (DDPM over all T steps by default; the\n"
    "others in K steps, NFE = K network passes per image, a guided pair counted once); for a\n"
    "denoiser it reports the test MSE and PSNR per sigma. The JSON records the sampler, steps,\n"
    "NFE, spacing and the seconds each column's sampling took.\n"
    "--samples reads images (N, 28, 28) from an IDX file, or from a PNG grid of 28x28 cells\n"
    "without gaps (as ddpm_write_png writes them; colour is turned grey), row by row: every\n"
    "cell, or the first N with --n; --labels the requested digits (N).\n"
    "Definitions: docs/EVAL.md.";

/* Which input: exactly one, and no sampling option without --ckpt (it would be silently
 * ignored). Returns 0, or 2 after the message. */
static int check_inputs(const EvalJob *j, Opt *opts, int no) {
    if (j->labels && !j->samples) {
        fprintf(stderr, "ddpm eval: --labels goes with --samples\n");
        return 2;
    }
    if (!!j->ckpt + !!j->samples + !!j->judge_only != 1) {
        fprintf(stderr, "ddpm eval: give exactly one of --ckpt, --samples or --judge-only (see --help)\n");
        return 2;
    }
    if (!j->ckpt) {
        if (j->judge_only && args_find(opts, no, "n")->seen) {
            fprintf(stderr, "ddpm eval: --n goes with --ckpt or --samples\n");
            return 2;
        }
        const char *only[] = {"guidance", "sigmas", "save-idx", "batch", "no-ema",
                              "sampler", "steps", "eta", "clip", "spacing"};
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (args_find(opts, no, only[i])->seen) {
                fprintf(stderr, "ddpm eval: --%s goes with --ckpt\n", only[i]);
                return 2;
            }
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    EvalJob j;
    eval_job_defaults(&j);
    const char *guid_s = "5", *sig_s = "0,0.2,0.4,0.5,0.6,0.8,1.0";
    int no_ema = 0;
    SamplerWords w = {"ddpm", 0, -1.0f, 0, NULL};
    Opt opts[] = {
        {"ckpt", OPT_STR, &j.ckpt, "a time, class or denoiser checkpoint to evaluate", 0, -1, 0},
        {"samples", OPT_STR, &j.samples, "images to evaluate: an IDX file (N, 28, 28) or a PNG grid of 28x28 cells", 0, -1, 0},
        {"labels", OPT_STR, &j.labels, "with --samples: the requested digits, an IDX file (N)", 0, -1, 0},
        {"n", OPT_INT, &j.n, "--ckpt: samples to draw per guidance scale (default 1000); --samples: the first N (default all)", EVAL_MIN_SAMPLES, 1000000, 0},
        {"guidance", OPT_STR, &guid_s, "--ckpt, class model: guidance scales, e.g. 0,1,2,3,5 (default 5)", 0, -1, 0},
        {"sigmas", OPT_STR, &sig_s, "--ckpt, denoiser: noise levels (default 0,0.2,0.4,0.5,0.6,0.8,1.0)", 0, -1, 0},
        {"save-idx", OPT_STR, &j.save_idx, "--ckpt: also write the samples as IDX (and FILE-labels.idx; -g<G> per scale)", 0, -1, 0},
        {"json", OPT_STR, &j.json, "write the results as JSON", 0, -1, 0},
        {"judge", OPT_STR, &j.judge_path, "judge weights (trained and saved there if absent)", 0, -1, 0},
        {"judge-only", OPT_FLAG, &j.judge_only, "only make sure the judge exists (train it if needed)", 0, -1, 0},
        {"judge-epochs", OPT_INT, &j.judge.epochs, "judge training: epochs (default 4)", 1, 1000, 0},
        {"judge-seed", OPT_U64, &j.judge.seed, "judge training: seed (default 1)", 0, -1, 0},
        {"judge-subset", OPT_INT, &j.judge.subset, "judge training: first N training images (default all)", 0, 60000, 0},
        {"n-test", OPT_INT, &j.n_test, "test images of the reference and of the judge's accuracy (default 10000)", EVAL_MIN_SAMPLES, 10000, 0},
        {"n-train", OPT_INT, &j.n_train, "training images searched for nearest neighbours (default 60000)", 1, 60000, 0},
        {"data", OPT_STR, &j.data, "MNIST directory", 0, -1, 0},
        {"seed", OPT_U64, &j.seed, "seed of sampling and of the reference subsets (default 1)", 0, -1, 0},
        {"threads", OPT_INT, &j.threads, "CPU threads (default 2)", 1, 1024, 0},
        {"device", OPT_STR, &j.device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"batch", OPT_INT, &j.batch, "--ckpt: images per forward pass (default 128)", 2, 65536, 0},
        {"no-ema", OPT_FLAG, &no_ema, "--ckpt: the trained weights, not their moving average", 0, -1, 0},
        CLI_SAMPLER_OPTS(w, "--ckpt, "),
        {"steps", OPT_INT, &w.steps, "--ckpt, " CLI_SAMPLER_STEPS_HELP, 1, 100000, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("eval", 2);
    if (cli_check_device("eval", j.device) != 0) return 2;
    if ((r = check_inputs(&j, opts, no)) != 0) return r;
    j.n_guidance = parse_float_list("--guidance", guid_s, j.guidance, APP_EVAL_MAX_GUIDANCE);
    if (j.n_guidance < 0) return cli_fail("eval", 2);
    j.n_sigmas = parse_float_list("--sigmas", sig_s, j.sigmas, APP_EVAL_MAX_SIGMAS);
    if (j.n_sigmas < 0) return cli_fail("eval", 2);
    for (int i = 0; i < j.n_sigmas; i++)
        if (j.sigmas[i] < 0 || j.sigmas[i] > 100) {
            fprintf(stderr, "ddpm eval: --sigmas: %g is out of range (0..100)\n", (double)j.sigmas[i]);
            return 2;
        }
    j.guidance_given = args_find(opts, no, "guidance")->seen;
    if (j.samples && args_find(opts, no, "n")->seen) j.samples_n = j.n;
    j.use_ema = !no_ema;
    j.judge.threads = j.threads;
    j.judge.progress = isatty(2);
    if (sampler_words_parse(&j.sampler, &w) != 0) return cli_fail("eval", 1);
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_eval(&j, &out) != 0) return cli_fail("eval", 1);
    return 0;
}
