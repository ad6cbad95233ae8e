/* ddpm train: options -> TrainConfig -> train_run, or a checkpoint's configuration ->
 * train_run for --resume. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/train_job.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"
#include "data/source.h"
#include "train/train.h"

static const char *HEAD =
    "Usage: ddpm train --model denoiser|time|class [options]\n"
    "\n"
    "Trains a UNet with the SPEC's protocol for the model and writes a run directory:\n"
    "config.json, loss.csv (every step), loss.png, epoch_NNN.safetensors and model.safetensors\n"
    "(weights after every epoch), metrics.json and the figures of the model's part.\n"
    "--data names MNIST's IDX files (the default), CIFAR-10's binary batches or a folder of\n"
    "PNG/JPEG images (DIR/<class>/*.png, or DIR/train and DIR/test holding such folders);\n"
    "a folder is decoded once into $XDG_CACHE_HOME/ddpm/images (else ~/.cache/ddpm/images).\n"
    "Defaults: denoiser D 128, batch 256, 5 epochs, lr 1e-4 constant, sigma 0.5;\n"
    "time/class D 64, batch 128, 20 epochs, lr 1e-3 decaying per epoch to 1e-4, T 300.\n"
    "\n"
    "The training state (weights, BatchNorm statistics, Adam moments, counters, random\n"
    "generators, loss history) is saved to RUN/checkpoint.safetensors after every epoch, every\n"
    "--checkpoint-every steps, and on Ctrl-C or SIGTERM (the first one finishes the current\n"
    "step, saves and exits; a second one stops at once). `ddpm train --resume RUN` continues\n"
    "the run, bit for bit as if it had never stopped when the thread count is the same; it\n"
    "takes the configuration from the checkpoint and accepts only --threads, --data,\n"
    "--checkpoint-every and --no-progress beside it.\n"
    "\n"
    "Under mpirun (MPI builds) the processes split each batch and train one model together,\n"
    "the model one process would train on the whole batch (docs/DISTRIBUTED.md):\n"
    "  mpirun -np 2 ddpm train --model time --threads 1 --out RUN";

/* The options that may accompany --resume: they do not change what is computed (but a
 * different thread count changes the rounding of the sums). */
static int resume_compatible(const char *name) {
    static const char *const ok[] = {"resume", "threads", "device", "data", "checkpoint-every", "no-progress",
                                     "fault-nan-at", "fault-stop-at"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(name, ok[i]) == 0) return 1;
    return 0;
}

/* The option words of a fresh run, turned into TrainConfig fields by fresh_config. */
typedef struct {
    const char *fig, *schedule, *attention, *dataset, *data, *out;
} TrainWords;

/* The options of a fresh run (not --resume) into c: figure epochs, the learning rate's
 * end, the schedule, attention and data set, the run directory (outbuf when not given).
 * Returns 0, or the exit status after the message. */
static int fresh_config(TrainConfig *c, const TrainWords *w, Opt *opts, int nopts, char *outbuf,
                        size_t cap) {
    const UnetKind kind = c->kind;
    const char *fig = w->fig, *schedule = w->schedule, *attention = w->attention;
    const char *dataset = w->dataset, *data = w->data, *out = w->out;
    if (fig) {
        int k = parse_int_list("--figure-epochs", fig, c->fig_epochs, TRAIN_MAX_FIG_EPOCHS, 1, 100000);
        if (k < 0) return cli_fail("train", 2);
        c->n_fig_epochs = k;
    }
    if (!args_find(opts, nopts, "lr-end")->seen && args_find(opts, nopts, "lr")->seen)
        c->lr_end = kind == UNET_DENOISER ? c->lr : c->lr * 0.1f;
    if (c->beta_start > c->beta_end) {
        fprintf(stderr, "ddpm train: --beta-start %g is larger than --beta-end %g\n", (double)c->beta_start, (double)c->beta_end);
        return 2;
    }
    if (schedule_kind_parse(schedule, &c->schedule) != 0) return cli_fail("train", 2);
    if (c->time_embedding && (c->time_embedding % 2 || kind == UNET_DENOISER)) {
        fprintf(stderr, "ddpm train: --time-embedding %d: %s\n", c->time_embedding,
                kind == UNET_DENOISER ? "the denoiser has no time input"
                                      : "the number of features must be even");
        return 2;
    }
    if (unet_attention_parse(attention, &c->attention) != 0) {
        fprintf(stderr, "ddpm train: --attention %.40s: the attention layers' places are down2, up1 or down2,up1 (or none; 7 and 14 are their old names)\n", attention);
        return 2;
    }
    if (dataset && dataset_parse(dataset, &c->dataset) != 0) {
        fprintf(stderr, "ddpm train: --dataset: %s\n", err_msg());
        return 2;
    }
    if (!dataset) c->dataset = DATASET_MNIST;
    c->data_dir = dataset_dir(data, c->dataset);
    /* without --dataset, what the data directory holds says what it is */
    if (!dataset) c->dataset = source_detect(c->data_dir);
    if (c->image_size % 4) {
        fprintf(stderr, "ddpm train: --image-size %d: the side must be a multiple of 4\n",
                c->image_size);
        return 2;
    }
    if (c->channels == 2) {
        fprintf(stderr, "ddpm train: --channels 2: images are grey (1) or colour (3)\n");
        return 2;
    }
    if (!out) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(outbuf, cap, "runs/%s-%s", unet_kind_name(kind), stamp);
        out = outbuf;
    }
    c->out_dir = out;
    return 0;
}

int cmd_train(int argc, char **argv) {
    const char *model = NULL;
    int resume = 0;
    /* the model picks the defaults, so find it first */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[i + 1];
        else if (strncmp(argv[i], "--model=", 8) == 0) model = argv[i] + 8;
        if (strcmp(argv[i], "--resume") == 0 || strncmp(argv[i], "--resume=", 9) == 0) resume = 1;
    }
    UnetKind kind = UNET_DENOISER;
    int help = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) help = 1;
    if (!model && !help && !resume) {
        fprintf(stderr, "ddpm train: --model is required (denoiser, time or class; see --help)\n");
        return 2;
    }
    if (model && unet_kind_parse(model, &kind) != 0) return cli_fail("train", 2);
    TrainConfig c;
    train_config_defaults(&c, kind);
    TrainWords w = {.schedule = "linear", .attention = "none"};
    const char *model_s = NULL, *resume_dir = NULL, *device = NULL;
    int no_progress = 0, checkpoint_every = 0;
    long fault_nan_at = 0, fault_stop_at = 0;
    Opt opts[] = {
        {"model", OPT_STR, &model_s, "denoiser, time or class (required unless --resume)", 0, -1, 0},
        {"width", OPT_INT, &c.width, "UNet width D", 1, 1024, 0},
        {"batch", OPT_INT, &c.batch, "batch size", 1, 65536, 0},
        {"epochs", OPT_INT, &c.epochs, "number of epochs", 1, 100000, 0},
        {"lr", OPT_FLOAT, &c.lr, "Adam learning rate (first epoch)", 1e-12, 10, 0},
        {"lr-end", OPT_FLOAT, &c.lr_end, "learning rate reached after the last epoch (lr x gamma^epochs, gamma applied per epoch)", 1e-12, 10, 0},
        {"seed", OPT_U64, &c.seed, "random seed (same seed + threads = same run, bit for bit)", 0, -1, 0},
        {"threads", OPT_INT, &c.threads, "CPU threads (per process under mpirun; default: the cores shared among the machine's processes)", 1, 1024, 0},
        {"device", OPT_STR, &device, "backend that runs the model: cpu (default) or ref (the plain reference operators, slow)", 0, -1, 0},
        {"out", OPT_STR, &w.out, "run directory (default runs/<model>-<date>-<time>)", 0, -1, 0},
        {"data", OPT_STR, &w.data, "data directory (default $DDPM_DATA or ./data/mnist; fashion: $DDPM_FASHION_DATA or /usr/share/datasets/fashion-mnist)", 0, -1, 0},
        {"dataset", OPT_STR, &w.dataset, "mnist, fashion (Fashion-MNIST, same IDX files; Debian package dataset-fashion-mnist), cifar10 (its binary batches) or folder (PNG/JPEG files, DIR/<class>/*.png or unlabelled); default: what --data holds", 0, -1, 0},
        {"image-size", OPT_INT, &c.image_size, "a folder's images: resize to S x S (a multiple of 4; default: the first image's side, at most 64)", 8, 1024, 0},
        {"channels", OPT_INT, &c.channels, "a folder's images: 1 (grey) or 3 (colour); default: 3 when any image is in colour", 1, 3, 0},
        {"test-fraction", OPT_FLOAT, &c.test_fraction, "a folder without train/ and test/ subfolders: the share held out for testing, drawn with the seed (default 0.1)", 0.001, 0.9, 0},
        {"subset", OPT_INT, &c.subset, "train on the first N training images only (quick runs)", 1, 60000, 0},
        {"sigma", OPT_FLOAT, &c.sigma, "denoiser: noise level", 0, 100, 0},
        {"T", OPT_INT, &c.T, "diffusion steps", 1, SCHEDULE_MAX_T, 0},
        {"ema", OPT_FLOAT, &c.ema, "keep a moving average of the weights with this decay, e.g. 0.999 (default 0: none); evaluation, figures and sampling use it", 0, 0.999999, 0},
        {"time-embedding", OPT_INT, &c.time_embedding, "time/class: E sinusoidal features of t in place of the scalar t/T (even; default 0: scalar)", 0, 1024, 0},
        {"residual", OPT_FLAG, &c.residual, "residual ConvBlocks: the blocks after each down/up sampling step return x + block(x) (beyond the SPEC; no new parameters)", 0, -1, 0},
        {"attention", OPT_STR, &w.attention, "self-attention layers at these places: down2 (after the second DownBlock), up1 (after the first UpBlock) or down2,up1; 7 and 14 are their old names (default none: the SPEC's UNet)", 0, -1, 0},
        {"schedule", OPT_STR, &w.schedule, "noise schedule: linear (the SPEC's, default) or cosine", 0, -1, 0},
        {"beta-start", OPT_FLOAT, &c.beta_start, "first beta of the linear schedule", 1e-12, 0.999999, 0},
        {"beta-end", OPT_FLOAT, &c.beta_end, "last beta of the linear schedule", 1e-12, 0.999999, 0},
        {"p-uncond", OPT_FLOAT, &c.p_uncond, "class: probability of training without the label", 0, 1, 0},
        {"guidance", OPT_FLOAT, &c.guidance, "class: guidance scale gamma of the sample grids", -100, 100, 0},
        {"figure-epochs", OPT_STR, &w.fig, "epochs after which figures are drawn, e.g. 1,5", 0, -1, 0},
        {"eval-n", OPT_INT, &c.eval_n, "denoiser: test images for the per-epoch test MSE", 1, 10000, 0},
        {"sigma-table-n", OPT_INT, &c.table_n, "denoiser: test images for the MSE-per-sigma table (0 = skip)", 0, 10000, 0},
        {"no-progress", OPT_FLAG, &no_progress, "plain log lines instead of a status line", 0, -1, 0},
        {"checkpoint-every", OPT_INT, &checkpoint_every, "also save the training state every N steps (0: at epoch ends only)", 0, 1000000000, 0},
        {"resume", OPT_STR, &resume_dir, "continue the run in this directory from its checkpoint", 0, -1, 0},
        /* test hooks, not in --help: make step N's loss NaN; stop the process after step N */
        {"fault-nan-at", OPT_LONG, &fault_nan_at, NULL, 1, 1e15, 0},
        {"fault-stop-at", OPT_LONG, &fault_stop_at, NULL, 1, 1e15, 0},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    /* the configuration's fields take their ranges from its table (train/config.c) */
    for (int i = 0; i < n; i++) train_config_option_range(opts[i].name, &opts[i].min, &opts[i].max);
    int r = args_parse(argc, argv, 2, opts, n, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("train", 2);
    if (cli_check_device("train", device) != 0) return 2;
    char data_buf[4096], outbuf[256];
    CliOutput co;
    const Progress report = cli_output(&co);
    if (resume_dir) {
        for (int i = 0; i < n; i++)
            if (opts[i].seen && !resume_compatible(opts[i].name)) {
                fprintf(stderr, "ddpm train: --%s cannot be combined with --resume: a resumed run "
                        "keeps the configuration saved in its checkpoint\n", opts[i].name);
                return 2;
            }
        if (strlen(resume_dir) > 4000) {
            fprintf(stderr, "ddpm train: --resume: the directory name is too long\n");
            return 2;
        }
        int threads = args_find(opts, n, "threads")->seen ? c.threads : 0;
        if (app_train_resume_config(&c, data_buf, sizeof data_buf, resume_dir, w.data, threads,
                                    &report) != 0)
            return cli_fail("train", 1);
    } else if ((r = fresh_config(&c, &w, opts, n, outbuf, sizeof outbuf)) != 0) {
        return r;
    } else {
        c.threads = cli_rank_threads(c.threads, args_find(opts, n, "threads")->seen);
    }
    if (!resume_dir && train_dir_holds_run(c.out_dir)) {
        fprintf(stderr, "ddpm train: %s: already holds a training run (%s): continue it with "
                "--resume %s, or choose another --out\n", c.out_dir, TRAIN_STATE_FILE, c.out_dir);
        return 1;
    }
    if (!resume_dir || args_find(opts, n, "checkpoint-every")->seen) c.checkpoint_every = checkpoint_every;
    c.fault_nan_at = fault_nan_at;
    c.fault_stop_at = fault_stop_at;
    c.progress = !no_progress && isatty(2);
    c.report = report;
    c.device = device;
    int rc = train_run(&c);
    if (rc < 0) return cli_fail("train", 1);
    /* interrupted: the conventional status of a process ended by that signal */
    if (rc > 0) return 128 + rc;
    return 0;
}
