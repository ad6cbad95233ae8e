/* ddpm sample: options -> SampleJob -> app_sample (src/app/sample.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "app/sample.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/sampler_opts.h"
#include "core/common.h"
#include "train/trained_with.h"

static const char *HEAD =
    "Usage: ddpm sample --ckpt FILE [--n N] [--seed S] [--out FILE.png] [--idx FILE] [--gif FILE]\n"
    "                   [--digit K | --class NAME | --per-digit K | --text DIGITS] [--guidance G]\n"
    "                   [--sweep G,G,..]\n"
    "                   [--sampler ddpm|ddim|dpmpp2m|dpmpp2m-sde|dpmpp3m] [--steps K] [--spacing S]\n"
    "\n"
    "Runs the reverse process from pure noise: the SPEC's DDPM over all T steps, or in K\n"
    "steps DDIM or a DPM-Solver++ (each step one network pass: NFE = K per image; with\n"
    "guidance the conditional and unconditional pass are one batched pass, counted once).\n"
    "Time models: N samples in a grid.\n"
    "Class models: --digit K draws N samples of digit K (--class NAME, or --digit NAME, of the\n"
    "class of that name, e.g. cat); otherwise a grid with --per-digit samples of every class\n"
    "(one row each, labelled with its name); --text 2026 writes that number in generated\n"
    "digits as one image. Guidance: eps = eps_u + G (eps_c - eps_u). --sweep writes one grid\n"
    "per guidance scale (FILE-g<G>.png). --idx writes the images as an IDX file (MNIST format,\n"
    "unsigned bytes) and, for class models, the labels beside it (FILE with -labels).";

/* --text: at most APP_SAMPLE_MAX_TEXT digits, and a number is written in digits (a model
 * trained on another data set cannot). Returns 0, or the exit status after the message. */
static int check_text(const char *text, const char *ckpt) {
    size_t len = strlen(text);
    if (len > APP_SAMPLE_MAX_TEXT) {
        fprintf(stderr, "ddpm sample: --text: at most %d digits\n", APP_SAMPLE_MAX_TEXT);
        return 2;
    }
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)text[i])) {
            fprintf(stderr, "ddpm sample: --text: '%s' is not a string of digits\n", text);
            return 2;
        }
    Dataset ds;
    if (trained_dataset(ckpt, &ds) == 0 && ds != DATASET_MNIST) {
        fprintf(stderr, "ddpm sample: --text writes digits; %s was trained on %s\n", ckpt,
                dataset_name(ds));
        return 1;
    }
    return 0;
}

static int sample_main(int argc, char **argv, const char *digit_name);

/* --digit NAME (not a number) is --class NAME: argv without it, the name in *name. */
static int digit_by_name(char **args, int argc, char **argv, const char **name) {
    int n = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        int skip = 0;
        if (strcmp(argv[i], "--digit") == 0 && i + 1 < argc) v = argv[i + 1], skip = 1;
        else if (strncmp(argv[i], "--digit=", 8) == 0) v = argv[i] + 8;
        if (v && *v && strspn(v, "0123456789+-") != strlen(v)) {
            *name = v;
            i += skip;
            continue;
        }
        args[n++] = argv[i];
    }
    return n;
}

int cmd_sample(int argc, char **argv) {
    const char *digit_name = NULL;
    char **args = xmalloc((size_t)(argc + 1) * sizeof *args);
    argc = digit_by_name(args, argc, argv, &digit_name);
    args[argc] = NULL;
    int rc = sample_main(argc, args, digit_name);
    xfree(args);
    return rc;
}

static int sample_main(int argc, char **argv, const char *digit_name) {
    SampleJob j;
    sample_job_defaults(&j);
    const char *sweep_s = NULL;
    int no_ema = 0;
    SamplerWords w = {"ddpm", 0, -1.0f, 0, NULL};
    Opt opts[] = {
        {"ckpt", OPT_STR, &j.ckpt, "weights of a time or class model (.safetensors), required", 0, -1, 0},
        {"n", OPT_INT, &j.n, "number of samples (default 40)", 1, 1000000, 0},
        {"seed", OPT_U64, &j.seed, "random seed (default 1)", 0, -1, 0},
        {"out", OPT_STR, &j.out, "PNG grid (default samples.png)", 0, -1, 0},
        {"idx", OPT_STR, &j.idx, "also write the samples as an IDX file", 0, -1, 0},
        {"gif", OPT_STR, &j.gif, "also write the reverse process as an animated GIF", 0, -1, 0},
        {"gif-every", OPT_INT, &j.gif_every, "steps between GIF frames (default 5)", 1, 100000, 0},
        {"digit", OPT_INT, &j.digit, "class: sample N images of this digit", 0, 9, 0},
        {"class", OPT_STR, &j.class_name, "class: sample N images of this class, by name (cat) or index (any model's classes)", 0, -1, 0},
        {"per-digit", OPT_INT, &j.per_digit, "class: samples of every digit in the grid (default 4)", 1, 1000, 0},
        {"text", OPT_STR, &j.text, "class: a string of digits to write as one image", 0, -1, 0},
        {"guidance", OPT_FLOAT, &j.guidance, "class: guidance scale gamma (default 5)", -100, 100, 0},
        {"sweep", OPT_STR, &sweep_s, "class: one grid per guidance scale, e.g. 0,1,2,3,5", 0, -1, 0},
        {"no-ema", OPT_FLAG, &no_ema, "use the trained weights, not their moving average (when the file has one)", 0, -1, 0},
        CLI_SAMPLER_OPTS(w, ""),
        {"steps", OPT_INT, &w.steps, CLI_SAMPLER_STEPS_HELP, 1, 100000, 0},
        {"threads", OPT_INT, &j.threads, "CPU threads (default 2)", 1, 1024, 0},
        {"device", OPT_STR, &j.device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"batch", OPT_INT, &j.batch, "images per forward pass (default 128)", 2, 65536, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("sample", 2);
    if (cli_check_device("sample", j.device) != 0) return 2;
    if (!j.ckpt) {
        fprintf(stderr, "ddpm sample: --ckpt is required (see --help)\n");
        return 2;
    }
    if (j.text && (r = check_text(j.text, j.ckpt)) != 0) return r;
    if (sweep_s && (j.n_sweep = parse_float_list("--sweep", sweep_s, j.sweep, APP_SAMPLE_MAX_SWEEP)) < 0)
        return cli_fail("sample", 2);
    if (sampler_words_parse(&j.sampler, &w) != 0) return cli_fail("sample", 1);
    j.use_ema = !no_ema;
    if (digit_name && !j.class_name) j.class_name = digit_name;
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_sample(&j, &out) != 0) return cli_fail("sample", 1);
    return 0;
}
