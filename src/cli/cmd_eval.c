/* ddpm eval: judge generated digits with an MNIST classifier trained by this program (FID in
 * its feature space, precision/recall, accuracy per requested digit, judged-digit histogram,
 * diversity, memorisation), for samples drawn from a checkpoint or read from an IDX file;
 * for a denoiser checkpoint, the test MSE and PSNR per noise level. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "core/common.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "diffusion/sampler.h"
#include "eval/evaluate.h"
#include "eval/judge.h"
#include "io/fileio.h"
#include "io/jsonio.h"
#include "model/checkpoint.h"
#include "train/train.h"

#define P MNIST_PIXELS
#define MAX_GUIDANCE 16
#define MAX_SIGMAS 32

static const char *HEAD =
    "Usage: ddpm eval --ckpt FILE [--n N] [--guidance G,G,..] [--sigmas S,S,..] [--json FILE]\n"
    "       ddpm eval --samples FILE.idx [--labels FILE.idx] [--json FILE]\n"
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
    "one column per guidance scale); for a denoiser it reports the test MSE and PSNR per sigma.\n"
    "--samples reads images (N, 28, 28) from an IDX file, --labels the requested digits (N).\n"
    "Definitions: docs/EVAL.md.";

static void dims_text(char *dst, size_t cap, const IdxArray *a) {
    size_t o = (size_t)snprintf(dst, cap, "(");
    for (int i = 0; i < a->ndim && o < cap; i++)
        o += (size_t)snprintf(dst + o, cap - o, "%s%u", i ? ", " : "", a->dims[i]);
    if (o < cap) snprintf(dst + o, cap - o, ")");
}

/* Read sample images (N, 28, 28) or (N, 1, 28, 28) and optional labels (N) in 0..9.
 * images (N, 784) in [0, 1]; labels NULL when no file. Returns 0 or -1 with err_msg(). */
static int read_samples(const char *path, const char *labels_path, float **images, int **labels,
                        int *n) {
    IdxArray a = {0}, l = {0};
    if (idx_read(path, &a) != 0) return -1;
    int ok3 = a.ndim == 3 && a.dims[1] == 28 && a.dims[2] == 28;
    int ok4 = a.ndim == 4 && a.dims[1] == 1 && a.dims[2] == 28 && a.dims[3] == 28;
    if (!ok3 && !ok4) {
        char d[128];
        dims_text(d, sizeof d, &a);
        idx_free(&a);
        return err_set("%s: expected images of shape (N, 28, 28), found %s", path, d);
    }
    if (a.dims[0] < EVAL_MIN_SAMPLES || a.dims[0] > 1000000) {
        unsigned got = a.dims[0];
        idx_free(&a);
        return err_set("%s holds %u images; the evaluation needs %d to 1000000", path, got,
                       EVAL_MIN_SAMPLES);
    }
    const int count = (int)a.dims[0];
    if (labels_path) {
        if (idx_read(labels_path, &l) != 0) {
            idx_free(&a);
            return -1;
        }
        int rc = 0;
        if (l.ndim != 1) {
            char d[128];
            dims_text(d, sizeof d, &l);
            rc = err_set("%s: expected labels of shape (N), found %s", labels_path, d);
        } else if ((int)l.dims[0] != count) {
            rc = err_set("%s has %u labels but %s has %d images", labels_path, l.dims[0], path, count);
        } else {
            for (int i = 0; i < count; i++)
                if (l.data[i] > 9) {
                    rc = err_set("%s: label %u at index %d is not a digit 0-9", labels_path,
                                 l.data[i], i);
                    break;
                }
        }
        if (rc) {
            idx_free(&a);
            idx_free(&l);
            return -1;
        }
        *labels = xmalloc((size_t)count * sizeof(int));
        for (int i = 0; i < count; i++) (*labels)[i] = l.data[i];
        idx_free(&l);
    }
    *images = xmalloc((size_t)count * P * sizeof(float));
    for (size_t i = 0; i < (size_t)count * P; i++) (*images)[i] = (float)a.data[i] / 255.0f;
    idx_free(&a);
    *n = count;
    return 0;
}

/* The judge: load path if it exists (checksum verified), else train and save it there. */
static int get_judge(Classifier *judge, const char *path, const JudgeConfig *jc,
                     const MnistSplit *train, const MnistSplit *test, double *accuracy) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (judge_load(judge, path, 256, jc->threads, accuracy) != 0) return -1;
        fprintf(stderr, "judge: %s (test accuracy %.2f%%)\n", path, 100.0 * *accuracy);
        return 0;
    }
    fprintf(stderr, "judge: %s not found; training it (once)\n", path);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;
    if (slash && slash != dir) {
        *slash = 0;
        rc = make_dirs(dir);
    }
    xfree(dir);
    if (rc != 0) return -1;
    const double t0 = now_seconds();
    judge_train(judge, jc, train, test, accuracy);
    if (judge_save(judge, path, jc, *accuracy, test->n) != 0) {
        classifier_free(judge);
        return -1;
    }
    fprintf(stderr, "judge: test accuracy %.2f%% (%d test images) after %.0f s; saved %s and %s.sha256\n",
            100.0 * *accuracy, test->n, now_seconds() - t0, path, path);
    if (*accuracy < 0.99)
        fprintf(stderr, "judge: warning: below 99%% test accuracy, metrics that use it are less reliable\n");
    return 0;
}

/* Denoiser checkpoints: test MSE and PSNR at each sigma. */
static int eval_denoiser(Unet *m, const char *ckpt, const float *sig, int ns, const char *data,
                         int n_test, uint64_t seed, cJSON *doc) {
    MnistSplit test = {0};
    if (mnist_load(mnist_data_dir(data), 0, &test) != 0) return -1;
    int n = n_test < test.n ? n_test : test.n;
    float *imgs = mnist_to_float(&test, NULL, n);
    cJSON_AddStringToObject(doc, "checkpoint", ckpt);
    cJSON_AddStringToObject(doc, "model", "denoiser");
    cJSON_AddNumberToObject(doc, "n_test", n);
    cJSON *arr = cJSON_AddArrayToObject(doc, "denoiser");
    printf("\n%-10s %12s %12s   (%d test images)\n", "sigma", "test MSE", "PSNR (dB)", n);
    for (int i = 0; i < ns; i++) {
        double mse = denoiser_test_mse(m, imgs, n, sig[i], seed + (uint64_t)i, NULL, NULL);
        double psnr = 10.0 * log10(1.0 / mse);
        printf("%-10.3g %12.5f %12.2f\n", (double)sig[i], mse, psnr);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sigma", sig[i]);
        cJSON_AddNumberToObject(o, "mse", mse);
        cJSON_AddNumberToObject(o, "psnr_db", psnr);
        cJSON_AddItemToArray(arr, o);
    }
    xfree(imgs);
    mnist_free(&test);
    return 0;
}

/* Draw n samples from a time or class model; class labels cycle through 0-9. Returns the
 * seconds the sampler took. */
static double draw(Unet *m, const Schedule *s, const SampleRequest *sampler, const int *labels,
                 int n, float g, uint64_t seed, float *out) {
    Rng rng;
    rng_seed(&rng, seed);
    SampleProgressLine pr = {.t0 = now_seconds(), .last_pct = -1};
    SampleRequest req = *sampler; /* the sampler chosen by sampler_choose, then this draw */
    req.n = n;
    req.labels = labels;
    req.guidance = g;
    req.progress = isatty(2) ? cli_sample_progress : NULL;
    req.progress_user = &pr;
    double t0 = now_seconds();
    ddpm_sample(m, s, &rng, &req, out);
    const double secs = now_seconds() - t0;
    fprintf(stderr, "%d samples in %.1f s\n", n, secs);
    /* quantised as an IDX file would hold them, so --ckpt and --samples agree */
    for (size_t i = 0; i < (size_t)n * P; i++) out[i] = (float)pixel_to_u8(out[i]) / 255.0f;
    return secs;
}

static int save_idx(const char *path, const float *imgs, const int *labels, int n) {
    uint8_t *b = xmalloc((size_t)n * P);
    for (size_t i = 0; i < (size_t)n * P; i++) b[i] = pixel_to_u8(imgs[i]);
    uint32_t dims[3] = {(uint32_t)n, 28, 28};
    int rc = idx_write_u8(path, b, 3, dims);
    if (rc == 0 && labels) {
        /* as ddpm sample: "a/b.idx" -> "a/b-labels.idx", else append "-labels" */
        size_t cap = strlen(path) + 8;
        char *lp = xmalloc(cap);
        const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
        if (dot && (!slash || dot > slash) && dot != path)
            snprintf(lp, cap, "%.*s-labels%s", (int)(dot - path), path, dot);
        else
            snprintf(lp, cap, "%s-labels", path);
        for (int i = 0; i < n; i++) b[i] = (uint8_t)labels[i];
        uint32_t ld[1] = {(uint32_t)n};
        rc = idx_write_u8(lp, b, 1, ld);
        xfree(lp);
    }
    xfree(b);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *samples = NULL, *labels_path = NULL, *json = NULL, *judge_path = NULL;
    const char *data = NULL, *guid_s = "5", *sig_s = "0,0.2,0.4,0.5,0.6,0.8,1.0", *save = NULL;
    int n = 1000, threads = 2, batch = 128, n_test = 10000, n_train = 60000, judge_only = 0;
    const char *spacing = NULL;
    int ddim_steps = 0, no_ema = 0, used_ema = 0, clip = 0;
    float eta = -1.0f;
    const char *sampler = "ddpm";
    SampleRequest sampler_req = {0};
    uint64_t seed = 1;
    JudgeConfig jc;
    judge_config_defaults(&jc);
    Opt opts[] = {
        {"ckpt", OPT_STR, &ckpt, "a time, class or denoiser checkpoint to evaluate", 0, -1, 0},
        {"samples", OPT_STR, &samples, "images to evaluate: an IDX file (N, 28, 28)", 0, -1, 0},
        {"labels", OPT_STR, &labels_path, "with --samples: the requested digits, an IDX file (N)", 0, -1, 0},
        {"n", OPT_INT, &n, "--ckpt: samples to draw per guidance scale (default 1000)", EVAL_MIN_SAMPLES, 1000000, 0},
        {"guidance", OPT_STR, &guid_s, "--ckpt, class model: guidance scales, e.g. 0,1,2,3,5 (default 5)", 0, -1, 0},
        {"sigmas", OPT_STR, &sig_s, "--ckpt, denoiser: noise levels (default 0,0.2,0.4,0.5,0.6,0.8,1.0)", 0, -1, 0},
        {"save-idx", OPT_STR, &save, "--ckpt: also write the samples as IDX (and FILE-labels.idx; -g<G> per scale)", 0, -1, 0},
        {"json", OPT_STR, &json, "write the results as JSON", 0, -1, 0},
        {"judge", OPT_STR, &judge_path, "judge weights (trained and saved there if absent)", 0, -1, 0},
        {"judge-only", OPT_FLAG, &judge_only, "only make sure the judge exists (train it if needed)", 0, -1, 0},
        {"judge-epochs", OPT_INT, &jc.epochs, "judge training: epochs (default 4)", 1, 1000, 0},
        {"judge-seed", OPT_U64, &jc.seed, "judge training: seed (default 1)", 0, -1, 0},
        {"judge-subset", OPT_INT, &jc.subset, "judge training: first N training images (default all)", 0, 60000, 0},
        {"n-test", OPT_INT, &n_test, "test images of the reference and of the judge's accuracy (default 10000)", EVAL_MIN_SAMPLES, 10000, 0},
        {"n-train", OPT_INT, &n_train, "training images searched for nearest neighbours (default 60000)", 1, 60000, 0},
        {"data", OPT_STR, &data, "MNIST directory", 0, -1, 0},
        {"seed", OPT_U64, &seed, "seed of sampling and of the reference subsets (default 1)", 0, -1, 0},
        {"threads", OPT_INT, &threads, "CPU threads (default 2)", 1, 1024, 0},
        {"batch", OPT_INT, &batch, "--ckpt: images per forward pass (default 128)", 2, 65536, 0},
        {"no-ema", OPT_FLAG, &no_ema, "--ckpt: the trained weights, not their moving average", 0, -1, 0},
        {"sampler", OPT_STR, &sampler, "--ckpt: ddpm (the SPEC's, all T steps; default) or ddim", 0, -1, 0},
        {"steps", OPT_INT, &ddim_steps, "--ckpt, ddim: reverse steps (default 50)", 1, 100000, 0},
        {"eta", OPT_FLOAT, &eta, "--ckpt, ddim: noise per step, 0 deterministic (default) to 1", 0, 1, 0},
        {"clip", OPT_FLAG, &clip, "--ckpt, ddim: clip the predicted clean image to [0, 1] at each step", 0, -1, 0},
        {"spacing", OPT_STR, &spacing, "--ckpt, ddim: uniform (default), quadratic (denser near the clean end) or trailing (no step at t = 0)", 0, -1, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("eval", 2);
    if (labels_path && !samples) {
        fprintf(stderr, "ddpm eval: --labels goes with --samples\n");
        return 2;
    }
    if (!!ckpt + !!samples + !!judge_only != 1) {
        fprintf(stderr, "ddpm eval: give exactly one of --ckpt, --samples or --judge-only (see --help)\n");
        return 2;
    }
    if (!ckpt) { /* the sampling options would be silently ignored */
        const char *only[] = {"n", "guidance", "sigmas", "save-idx", "batch", "no-ema",
                              "sampler", "steps", "eta", "clip", "spacing"};
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (args_find(opts, no, only[i])->seen) {
                fprintf(stderr, "ddpm eval: --%s goes with --ckpt\n", only[i]);
                return 2;
            }
    }
    float guid[MAX_GUIDANCE], sig[MAX_SIGMAS];
    int ng = parse_float_list("--guidance", guid_s, guid, MAX_GUIDANCE);
    if (ng < 0) return cli_fail("eval", 2);
    int ns = parse_float_list("--sigmas", sig_s, sig, MAX_SIGMAS);
    if (ns < 0) return cli_fail("eval", 2);
    for (int i = 0; i < ns; i++)
        if (sig[i] < 0 || sig[i] > 100) {
            fprintf(stderr, "ddpm eval: --sigmas: %g is out of range (0..100)\n", (double)sig[i]);
            return 2;
        }
    jc.threads = threads;
    jc.progress = isatty(2);

    int rc = 1, count = 0, have_model = 0, have_judge = 0, ncols = 0;
    float *images = NULL;
    int *labels = NULL;
    Unet m;
    Schedule sched = {0};
    MnistSplit train = {0}, test = {0};
    Classifier judge;
    EvalReal real;
    int have_real = 0;
    EvalResult cols[MAX_GUIDANCE];
    double sample_secs[MAX_GUIDANCE];
    cJSON *doc = cJSON_CreateObject();
    char default_path[1024];

    /* inputs first, so bad ones fail before any long computation */
    if (samples && read_samples(samples, labels_path, &images, &labels, &count) != 0) goto done;
    if (ckpt) {
        const CheckpointLoadOptions lo = {.max_batch = batch, .nthreads = threads, .use_ema = !no_ema};
        if (checkpoint_load(&m, &used_ema, ckpt, &lo) != 0) goto done;
        have_model = 1;
        Dataset ds;
        if (checkpoint_dataset(ckpt, &ds) != 0) goto done;
        if (ds != DATASET_MNIST) {
            err_set("%s was trained on %s; the judge and the reference sets are MNIST's", ckpt,
                    dataset_name(ds));
            goto done;
        }
        if (m.kind == UNET_DENOISER) {
            if (eval_denoiser(&m, ckpt, sig, ns, data, n_test, seed, doc) != 0) goto done;
            goto write_json;
        }
        if (m.kind != UNET_CLASS && args_find(opts, no, "guidance")->seen) {
            err_set("--guidance needs a class model; %s is a %s model", ckpt, unet_kind_name(m.kind));
            goto done;
        }
        int T = SCHEDULE_DEFAULT_T;
        float b0 = SCHEDULE_DEFAULT_BETA_START, b1 = SCHEDULE_DEFAULT_BETA_END;
        ScheduleKind sk;
        if (checkpoint_schedule_kind(ckpt, &sk, &T, &b0, &b1) != 0) goto done;
        if (schedule_init_kind(&sched, sk, T, b0, b1) != 0) goto done;
        SamplerWords words = {sampler, ddim_steps, eta, clip, spacing};
        if (sampler_choose(&sampler_req, &sched, &words) != 0) goto done;
        char sdesc[96];
        sampler_describe(&sampler_req, &sched, sdesc, sizeof sdesc);
        cJSON_AddStringToObject(doc, "sampler", sdesc);
        cJSON_AddBoolToObject(doc, "ema_weights", used_ema);
        if (used_ema) fprintf(stderr, "eval: the moving average of the weights (EMA; --no-ema for the raw ones)\n");
        count = n;
    }
    if (!judge_path) {
        if (judge_default_path(default_path, sizeof default_path) != 0) goto done;
        judge_path = default_path;
    }
    const char *dir = mnist_data_dir(data);
    if (mnist_load(dir, 1, &train) != 0 || mnist_load(dir, 0, &test) != 0) goto done;
    double judge_acc = NAN;
    MnistSplit judge_test = test; /* the judge's accuracy is measured on the --n-test images */
    if (n_test < judge_test.n) judge_test.n = n_test;
    if (get_judge(&judge, judge_path, &jc, &train, &judge_test, &judge_acc) != 0) goto done;
    have_judge = 1;
    char judge_sha[65];
    if (file_sha256_hex(judge_path, judge_sha) != 0) goto done;
    cJSON *jj = cJSON_AddObjectToObject(doc, "judge");
    cJSON_AddStringToObject(jj, "path", judge_path);
    cJSON_AddStringToObject(jj, "sha256", judge_sha);
    cJSON_AddStringToObject(jj, "architecture", CLS_ARCH);
    if (isfinite(judge_acc)) cJSON_AddNumberToObject(jj, "test_accuracy", judge_acc);
    if (judge_only) {
        printf("judge %s: test accuracy %.2f%%, sha256 %s\n", judge_path, 100.0 * judge_acc, judge_sha);
        goto write_json;
    }

    eval_real_init(&real, &train, &test, &judge, count, n_test, n_train, seed, threads);
    have_real = 1;
    if (samples) {
        cJSON_AddStringToObject(doc, "samples", samples);
        if (labels_path) cJSON_AddStringToObject(doc, "labels", labels_path);
        eval_samples(&cols[0], &real, "samples", images, labels, 1);
        ncols = 1;
    } else {
        cJSON_AddStringToObject(doc, "checkpoint", ckpt);
        cJSON_AddStringToObject(doc, "model", unet_kind_name(m.kind));
        const int cls = m.kind == UNET_CLASS;
        images = xmalloc((size_t)count * P * sizeof(float));
        if (cls) {
            labels = xmalloc((size_t)count * sizeof(int));
            for (int i = 0; i < count; i++) labels[i] = i % 10;
        }
        int runs = cls ? ng : 1;
        for (int k = 0; k < runs; k++) {
            char name[48], path[1100];
            if (cls) snprintf(name, sizeof name, "g=%g", (double)guid[k]);
            else snprintf(name, sizeof name, "samples");
            fprintf(stderr, "eval: drawing %d samples%s%s\n", count, cls ? ", guidance " : "",
                    cls ? name + 2 : "");
            sample_secs[ncols] = draw(&m, &sched, &sampler_req, labels, count, cls ? guid[k] : 0.0f, seed, images);
            if (save) {
                if (runs > 1) {
                    const char *sl = strrchr(save, '/'), *dot = strrchr(save, '.');
                    if (dot && (!sl || dot > sl) && dot != save)
                        snprintf(path, sizeof path, "%.*s-g%g%s", (int)(dot - save), save, (double)guid[k], dot);
                    else
                        snprintf(path, sizeof path, "%s-g%g", save, (double)guid[k]);
                } else {
                    snprintf(path, sizeof path, "%s", save);
                }
                if (save_idx(path, images, labels, count) != 0) goto done;
                fprintf(stderr, "wrote %s\n", path);
            }
            eval_samples(&cols[ncols], &real, name, images, labels, 1);
            ncols++;
        }
    }
    printf("judge: %s (%s, test accuracy %.2f%%)\n", judge_path, CLS_ARCH, 100.0 * judge_acc);
    double total_var = 0;
    for (int j = 0; j < CLS_FEATURES; j++) total_var += real.cov[(size_t)j * CLS_FEATURES + j];
    printf("reference: %d test images (FID statistics, diversity; total feature variance tr(S) = %.1f),\n"
           "a random subset of %d of them (precision/recall, memorisation yardstick); nearest\n"
           "neighbours among %d training images\n", real.nt, total_var, real.n_ref, real.n_search);
    eval_print_table(stdout, &real, cols, ncols);
    cJSON *set = cJSON_AddObjectToObject(doc, "settings");
    cJSON_AddNumberToObject(set, "n_test", real.nt);
    cJSON_AddNumberToObject(set, "n_reference_subset", real.n_ref);
    cJSON_AddNumberToObject(set, "n_train_searched", real.n_search);
    cJSON_AddNumberToObject(set, "k", EVAL_K);
    cJSON_AddNumberToObject(set, "seed", (double)seed);
    cJSON_AddNumberToObject(set, "test_feature_total_variance", total_var);
    cJSON_AddNumberToObject(set, "test_nearest_train_median", real.nn_median);
    cJSON_AddNumberToObject(set, "test_nearest_train_p01", real.nn_p01);
    cJSON *arr = cJSON_AddArrayToObject(doc, "results");
    for (int c = 0; c < ncols; c++) {
        cJSON *o = eval_result_json(&cols[c]);
        if (ckpt && m.kind == UNET_CLASS) cJSON_AddNumberToObject(o, "guidance", guid[c]);
        if (ckpt) cJSON_AddNumberToObject(o, "sampling_seconds", sample_secs[c]);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddItemToObject(doc, "real_floor", eval_result_json(&real.floor));

write_json:
    if (json) {
        if (json_save(json, doc) != 0) goto done;
        printf("wrote %s\n", json);
    }
    rc = 0;
done:
    if (rc) cli_fail("eval", 1);
    for (int c = 0; c < ncols; c++) eval_result_free(&cols[c]);
    if (have_real) eval_real_free(&real);
    if (have_judge) classifier_free(&judge);
    if (have_model) unet_free(&m);
    schedule_free(&sched);
    mnist_free(&train);
    mnist_free(&test);
    cJSON_Delete(doc);
    xfree(images);
    xfree(labels);
    return rc;
}
