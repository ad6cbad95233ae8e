/* The evaluation job: samples (drawn or read) -> the judge's features -> metrics, table
 * and JSON; denoisers -> MSE per sigma. */
#include "app/eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "app/files.h"
#include "diffusion/sampler_words.h"
#include "core/common.h"
#include "core/pixel.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "eval/evaluate.h"
#include "io/fileio.h"
#include "io/jsonio.h"
#include "io/png_read.h"
#include "train/trained_with.h"
#include "train/train.h"

#define P MNIST_PIXELS

void eval_job_defaults(EvalJob *j) {
    static const float sigmas[] = {0.0f, 0.2f, 0.4f, 0.5f, 0.6f, 0.8f, 1.0f};
    memset(j, 0, sizeof *j);
    j->n = 1000;
    j->guidance[0] = 5.0f;
    j->n_guidance = 1;
    j->n_sigmas = (int)(sizeof sigmas / sizeof sigmas[0]);
    memcpy(j->sigmas, sigmas, sizeof sigmas);
    j->use_ema = 1;
    j->sampler = (SamplerChoice){.kind = SAMPLER_DDPM, .spacing = DDIM_SPACING_UNIFORM};
    j->batch = 128;
    judge_config_defaults(&j->judge);
    j->n_test = 10000;
    j->n_train = 60000;
    j->seed = 1;
    j->threads = 2;
    j->judge.threads = 2;
}

/* Everything one job holds, freed by eval_free. */
typedef struct {
    const EvalJob *job;
    const Progress *p;
    const char *judge_path;
    char default_path[1024];
    int count, have_model, have_judge, have_real, ncols;
    float *images;
    int *labels;
    Unet m;
    Schedule sched;
    SampleRequest sampler;
    MnistSplit train, test;
    Classifier judge;
    double judge_acc;
    EvalReal real;
    EvalResult cols[APP_EVAL_MAX_GUIDANCE];
    double sample_secs[APP_EVAL_MAX_GUIDANCE];
    cJSON *doc;
} EvalRun;

static void dims_text(char *dst, size_t cap, const IdxArray *a) {
    size_t o = (size_t)snprintf(dst, cap, "(");
    for (int i = 0; i < a->ndim && o < cap; i++)
        o += (size_t)snprintf(dst + o, cap - o, "%s%u", i ? ", " : "", a->dims[i]);
    if (o < cap) snprintf(dst + o, cap - o, ")");
}

/* The images of an IDX file (N, 28, 28) or (N, 1, 28, 28): *pix (N, 784) bytes, *n = N.
 * Returns 0 or -1 with err_msg(). */
static int read_idx_images(const char *path, uint8_t **pix, int *n) {
    IdxArray a = {0};
    if (idx_read(path, &a) != 0) return -1;
    int ok3 = a.ndim == 3 && a.dims[1] == MNIST_H && a.dims[2] == MNIST_W;
    int ok4 = a.ndim == 4 && a.dims[1] == 1 && a.dims[2] == MNIST_H && a.dims[3] == MNIST_W;
    if (!ok3 && !ok4) {
        char d[128];
        dims_text(d, sizeof d, &a);
        idx_free(&a);
        return err_set("%s: expected images of shape (N, 28, 28), found %s", path, d);
    }
    if (a.dims[0] > 1000000) {
        idx_free(&a);
        return err_set("%s holds more than 1000000 images", path);
    }
    *n = (int)a.dims[0];
    *pix = xmalloc((size_t)*n * P);
    memcpy(*pix, a.data, (size_t)*n * P);
    idx_free(&a);
    return 0;
}

/* The cells of a PNG grid of 28 x 28 images without gaps (as ddpm_write_png writes them),
 * row by row, colour turned grey: *pix (N, 784) bytes, *n = N, every cell.
 * Returns 0 or -1 with err_msg(). */
static int read_png_images(const char *path, uint8_t **pix, int *n) {
    uint8_t *grid;
    int w, h;
    if (png_read_gray(path, &grid, &w, &h) != 0) return -1;
    if (w % MNIST_W || h % MNIST_H) {
        xfree(grid);
        return err_set("%s: %dx%d pixels is not a grid of %dx%d images", path, w, h, MNIST_W,
                       MNIST_H);
    }
    const int cols = w / MNIST_W, rows = h / MNIST_H;
    *n = rows * cols;
    *pix = xmalloc((size_t)*n * P);
    for (int i = 0; i < *n; i++)
        for (int y = 0; y < MNIST_H; y++)
            memcpy(*pix + (size_t)i * P + (size_t)y * MNIST_W,
                   grid + ((size_t)(i / cols * MNIST_H + y) * (size_t)w + (size_t)(i % cols) * MNIST_W),
                   MNIST_W);
    xfree(grid);
    return 0;
}

/* Labels (count) in 0..9 from an IDX file of shape (count). Returns 0 or -1 with err_msg(). */
static int read_labels(const char *labels_path, const char *path, int count, int **labels) {
    IdxArray l = {0};
    if (idx_read(labels_path, &l) != 0) return -1;
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
                rc = err_set("%s: label %u at index %d is not a digit 0-9", labels_path, l.data[i],
                             i);
                break;
            }
    }
    if (rc == 0) {
        *labels = xmalloc((size_t)count * sizeof(int));
        for (int i = 0; i < count; i++) (*labels)[i] = l.data[i];
    }
    idx_free(&l);
    return rc;
}

/* Read sample images from an IDX file (N, 28, 28) or (N, 1, 28, 28) or a PNG grid (told
 * apart by the PNG signature), the first `first` of them when first > 0, and optional labels
 * (N) in 0..9. images (N, 784) in [0, 1]; labels NULL when no file. Returns 0 or -1 with
 * err_msg(). */
static int read_samples(const char *path, const char *labels_path, int first, float **images,
                        int **labels, int *n) {
    uint8_t *pix = NULL;
    int count = 0;
    if ((png_is_png(path) ? read_png_images(path, &pix, &count)
                          : read_idx_images(path, &pix, &count)) != 0)
        return -1;
    if (first > count) {
        xfree(pix);
        return err_set("%s holds %d images, fewer than the %d asked for", path, count, first);
    }
    if (first > 0) count = first;
    if (count < EVAL_MIN_SAMPLES) {
        xfree(pix);
        return err_set("%s holds %d images; the evaluation needs %d to 1000000", path, count,
                       EVAL_MIN_SAMPLES);
    }
    if (labels_path && read_labels(labels_path, path, count, labels) != 0) {
        xfree(pix);
        return -1;
    }
    *images = xmalloc((size_t)count * P * sizeof(float));
    pixels_from_u8(*images, pix, (size_t)count * P);
    xfree(pix);
    *n = count;
    return 0;
}

/* The judge: load path if it exists (checksum verified), else train and save it there. */
static int get_judge(EvalRun *r, const MnistSplit *test) {
    const char *path = r->judge_path;
    const JudgeConfig *jc = &r->job->judge;
    double *accuracy = &r->judge_acc;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (judge_load(&r->judge, path, 256, jc->threads, accuracy) != 0) return -1;
        progress_log(r->p, "judge: %s (test accuracy %.2f%%)\n", path, 100.0 * *accuracy);
        return 0;
    }
    progress_log(r->p, "judge: %s not found; training it (once)\n", path);
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
    judge_train(&r->judge, jc, &r->train, test, accuracy, r->p);
    if (judge_save(&r->judge, path, jc, *accuracy, test->n) != 0) {
        classifier_free(&r->judge);
        return -1;
    }
    progress_log(r->p, "judge: test accuracy %.2f%% (%d test images) after %.0f s; saved %s and %s.sha256\n",
                 100.0 * *accuracy, test->n, now_seconds() - t0, path, path);
    if (*accuracy < 0.99)
        progress_log(r->p, "judge: warning: below 99%% test accuracy, metrics that use it are less reliable\n");
    return 0;
}

/* Denoiser checkpoints: test MSE and PSNR at each sigma. */
static int eval_denoiser(EvalRun *r) {
    const EvalJob *j = r->job;
    MnistSplit test = {0};
    if (mnist_load(mnist_data_dir(j->data), 0, &test) != 0) return -1;
    int n = j->n_test < test.n ? j->n_test : test.n;
    float *imgs = mnist_to_float(&test, NULL, n);
    cJSON_AddStringToObject(r->doc, "checkpoint", j->ckpt);
    cJSON_AddStringToObject(r->doc, "model", "denoiser");
    cJSON_AddNumberToObject(r->doc, "n_test", n);
    cJSON *arr = cJSON_AddArrayToObject(r->doc, "denoiser");
    progress_out(r->p, "\n%-10s %12s %12s   (%d test images)\n", "sigma", "test MSE", "PSNR (dB)", n);
    for (int i = 0; i < j->n_sigmas; i++) {
        const float sig = j->sigmas[i];
        double mse = denoiser_test_mse(&r->m, imgs, n, sig, j->seed + (uint64_t)i, NULL, NULL);
        double psnr = 10.0 * log10(1.0 / mse);
        progress_out(r->p, "%-10.3g %12.5f %12.2f\n", (double)sig, mse, psnr);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "sigma", sig);
        cJSON_AddNumberToObject(o, "mse", mse);
        cJSON_AddNumberToObject(o, "psnr_db", psnr);
        cJSON_AddItemToArray(arr, o);
    }
    xfree(imgs);
    mnist_free(&test);
    return 0;
}

static int sampling_count(void *user, int done, int total) {
    progress_count(user, "sampling", done, total);
    return 0;
}

/* Draw count samples at guidance g into r->images; class labels cycle through 0-9. Returns
 * the seconds the sampler took. */
static double draw(EvalRun *r, float g) {
    const int n = r->count;
    Rng rng;
    rng_seed(&rng, r->job->seed);
    SampleRequest req = r->sampler; /* the sampler chosen by sampler_choose, then this draw */
    req.n = n;
    req.labels = r->labels;
    req.guidance = g;
    req.progress = sampling_count;
    req.progress_user = (void *)r->p;
    progress_count(r->p, "sampling", 0, 0);
    double t0 = now_seconds();
    sampler_draw(&r->m, &r->sched, &rng, &req, r->images);
    const double secs = now_seconds() - t0;
    progress_log(r->p, "%d samples in %.1f s (%d NFE each)\n", n, secs, sampler_nfe(&r->sched, &req));
    /* quantised as an IDX file would hold them, so --ckpt and --samples agree */
    for (size_t i = 0; i < (size_t)n * P; i++) r->images[i] = pixel_from_u8(pixel_to_u8(r->images[i]));
    return secs;
}

/* The model to draw from: its kind, data set, schedule and sampler. *denoiser is set for a
 * denoiser, whose evaluation is then complete. */
static int model_setup(EvalRun *r, int *denoiser) {
    const EvalJob *j = r->job;
    int used_ema = 0;
    if (app_load_model(&r->m, &used_ema, j->ckpt, j->batch, j->threads, j->use_ema, j->device) != 0)
        return -1;
    r->have_model = 1;
    Dataset ds;
    if (trained_dataset(j->ckpt, &ds) != 0) return -1;
    if (ds != DATASET_MNIST)
        return err_set("%s was trained on %s; the judge and the reference sets are MNIST's", j->ckpt,
                       dataset_name(ds));
    if (r->m.kind == UNET_DENOISER) {
        *denoiser = 1;
        return eval_denoiser(r);
    }
    if (r->m.kind != UNET_CLASS && j->guidance_given)
        return err_set("guidance scales need a class model; %s is a %s model", j->ckpt,
                       unet_kind_name(r->m.kind));
    int T = SCHEDULE_DEFAULT_T;
    float b0 = SCHEDULE_DEFAULT_BETA_START, b1 = SCHEDULE_DEFAULT_BETA_END;
    ScheduleKind sk;
    if (trained_schedule(j->ckpt, &sk, &T, &b0, &b1) != 0) return -1;
    if (schedule_init_kind(&r->sched, sk, T, b0, b1) != 0) return -1;
    if (sampler_choose(&r->sampler, &r->sched, &j->sampler) != 0) return -1;
    char sdesc[160];
    sampler_describe(&r->sampler, &r->sched, sdesc, sizeof sdesc);
    cJSON_AddStringToObject(r->doc, "sampler", sampler_words_name(&r->sampler));
    cJSON_AddStringToObject(r->doc, "sampler_description", sdesc);
    cJSON_AddNumberToObject(r->doc, "steps", sampler_steps(&r->sched, &r->sampler));
    cJSON_AddNumberToObject(r->doc, "nfe", sampler_nfe(&r->sched, &r->sampler));
    const char *spacing = sampler_words_spacing(&r->sampler);
    if (spacing) cJSON_AddStringToObject(r->doc, "spacing", spacing);
    else cJSON_AddNullToObject(r->doc, "spacing"); /* DDPM visits every step */
    sampler_words_describe(&r->sampler, &r->sched, sdesc, sizeof sdesc);
    progress_log(r->p, "sampling: %s\n", sdesc);
    cJSON_AddBoolToObject(r->doc, "ema_weights", used_ema);
    if (used_ema) { /* the command line says how to choose the raw weights */
        ProgressEvent ev = {.stage = "ema", .line = "eval: the moving average of the weights"};
        progress_event(r->p, &ev);
    }
    r->count = j->n;
    return 0;
}

/* The data sets and the judge, recorded in the JSON. */
static int judge_setup(EvalRun *r) {
    const EvalJob *j = r->job;
    r->judge_path = j->judge_path;
    if (!r->judge_path) {
        if (judge_default_path(r->default_path, sizeof r->default_path) != 0) return -1;
        r->judge_path = r->default_path;
    }
    const char *dir = mnist_data_dir(j->data);
    if (mnist_load(dir, 1, &r->train) != 0 || mnist_load(dir, 0, &r->test) != 0) return -1;
    r->judge_acc = NAN;
    MnistSplit judge_test = r->test; /* the judge's accuracy is measured on the n_test images */
    if (j->n_test < judge_test.n) judge_test.n = j->n_test;
    if (get_judge(r, &judge_test) != 0) return -1;
    r->have_judge = 1;
    char judge_sha[65];
    if (file_sha256_hex(r->judge_path, judge_sha) != 0) return -1;
    cJSON *jj = cJSON_AddObjectToObject(r->doc, "judge");
    cJSON_AddStringToObject(jj, "path", r->judge_path);
    cJSON_AddStringToObject(jj, "sha256", judge_sha);
    cJSON_AddStringToObject(jj, "architecture", CLS_ARCH);
    if (isfinite(r->judge_acc)) cJSON_AddNumberToObject(jj, "test_accuracy", r->judge_acc);
    if (j->judge_only)
        progress_out(r->p, "judge %s: test accuracy %.2f%%, sha256 %s\n", r->judge_path,
                     100.0 * r->judge_acc, judge_sha);
    return 0;
}

/* One result column per guidance scale (one for a time model), each drawn and judged. */
static int eval_draws(EvalRun *r) {
    const EvalJob *j = r->job;
    cJSON_AddStringToObject(r->doc, "checkpoint", j->ckpt);
    cJSON_AddStringToObject(r->doc, "model", unet_kind_name(r->m.kind));
    const int cls = r->m.kind == UNET_CLASS, count = r->count;
    r->images = xmalloc((size_t)count * P * sizeof(float));
    if (cls) {
        r->labels = xmalloc((size_t)count * sizeof(int));
        for (int i = 0; i < count; i++) r->labels[i] = i % 10;
    }
    int runs = cls ? j->n_guidance : 1;
    for (int k = 0; k < runs; k++) {
        char name[48], path[1100];
        if (cls) snprintf(name, sizeof name, "g=%g", (double)j->guidance[k]);
        else snprintf(name, sizeof name, "samples");
        progress_log(r->p, "eval: drawing %d samples%s%s\n", count, cls ? ", guidance " : "",
                     cls ? name + 2 : "");
        r->sample_secs[r->ncols] = draw(r, cls ? j->guidance[k] : 0.0f);
        if (j->save_idx) {
            if (runs > 1) {
                char suf[32];
                snprintf(suf, sizeof suf, "-g%g", (double)j->guidance[k]);
                app_path_suffixed(path, sizeof path, j->save_idx, suf);
            } else {
                snprintf(path, sizeof path, "%s", j->save_idx);
            }
            if (idx_write_images(path, r->images, r->labels, count, MNIST_H, MNIST_W) != 0) return -1;
            progress_log(r->p, "wrote %s\n", path);
        }
        eval_samples(&r->cols[r->ncols], &r->real, name, r->images, r->labels, 1);
        r->ncols++;
    }
    return 0;
}

/* The table and the JSON's settings and results. */
static void eval_report(EvalRun *r) {
    const EvalJob *j = r->job;
    const EvalReal *real = &r->real;
    progress_out(r->p, "judge: %s (%s, test accuracy %.2f%%)\n", r->judge_path, CLS_ARCH,
                 100.0 * r->judge_acc);
    double total_var = 0;
    for (int k = 0; k < CLS_FEATURES; k++) total_var += real->cov[(size_t)k * CLS_FEATURES + k];
    progress_out(r->p, "reference: %d test images (FID statistics, diversity; total feature variance tr(S) = %.1f),\n"
                 "a random subset of %d of them (precision/recall, memorisation yardstick); nearest\n"
                 "neighbours among %d training images\n", real->nt, total_var, real->n_ref, real->n_search);
    eval_table(r->p, &r->real, r->cols, r->ncols);
    cJSON *set = cJSON_AddObjectToObject(r->doc, "settings");
    cJSON_AddNumberToObject(set, "n_test", real->nt);
    cJSON_AddNumberToObject(set, "n_reference_subset", real->n_ref);
    cJSON_AddNumberToObject(set, "n_train_searched", real->n_search);
    cJSON_AddNumberToObject(set, "k", EVAL_K);
    cJSON_AddNumberToObject(set, "seed", (double)j->seed);
    cJSON_AddNumberToObject(set, "test_feature_total_variance", total_var);
    cJSON_AddNumberToObject(set, "test_nearest_train_median", real->nn_median);
    cJSON_AddNumberToObject(set, "test_nearest_train_p01", real->nn_p01);
    cJSON *arr = cJSON_AddArrayToObject(r->doc, "results");
    for (int c = 0; c < r->ncols; c++) {
        cJSON *o = eval_result_json(&r->cols[c]);
        if (j->ckpt && r->m.kind == UNET_CLASS) cJSON_AddNumberToObject(o, "guidance", j->guidance[c]);
        if (j->ckpt) cJSON_AddNumberToObject(o, "sampling_seconds", r->sample_secs[c]);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddItemToObject(r->doc, "real_floor", eval_result_json(&real->floor));
}

static void eval_free(EvalRun *r) {
    for (int c = 0; c < r->ncols; c++) eval_result_free(&r->cols[c]);
    if (r->have_real) eval_real_free(&r->real);
    if (r->have_judge) classifier_free(&r->judge);
    if (r->have_model) unet_free(&r->m);
    schedule_free(&r->sched);
    mnist_free(&r->train);
    mnist_free(&r->test);
    cJSON_Delete(r->doc);
    xfree(r->images);
    xfree(r->labels);
}

int app_eval(const EvalJob *job, const Progress *p) {
    if (!!job->ckpt + !!job->samples + !!job->judge_only != 1)
        return err_set("an evaluation takes exactly one of a checkpoint, a sample file or the judge alone");
    if (job->ckpt && (job->n_guidance < 1 || job->n_guidance > APP_EVAL_MAX_GUIDANCE))
        return err_set("%d guidance scales: 1 to %d can be evaluated", job->n_guidance,
                       APP_EVAL_MAX_GUIDANCE);
    EvalRun r;
    memset(&r, 0, sizeof r);
    r.job = job;
    r.p = p;
    r.doc = cJSON_CreateObject();
    int rc = -1, denoiser = 0;
    /* inputs first, so bad ones fail before any long computation */
    if (job->samples && read_samples(job->samples, job->labels, job->samples_n, &r.images, &r.labels,
                                     &r.count) != 0)
        goto done;
    if (job->ckpt && model_setup(&r, &denoiser) != 0) goto done;
    if (!denoiser) {
        if (judge_setup(&r) != 0) goto done;
        if (!job->judge_only) {
            eval_real_init(&r.real, &r.train, &r.test, &r.judge, r.count, job->n_test, job->n_train,
                           job->seed, job->threads, p);
            r.have_real = 1;
            if (job->samples) {
                cJSON_AddStringToObject(r.doc, "samples", job->samples);
                if (job->labels) cJSON_AddStringToObject(r.doc, "labels", job->labels);
                eval_samples(&r.cols[0], &r.real, "samples", r.images, r.labels, 1);
                r.ncols = 1;
            } else if (eval_draws(&r) != 0) {
                goto done;
            }
            eval_report(&r);
        }
    }
    if (job->json) {
        if (json_save(job->json, r.doc) != 0) goto done;
        progress_out(p, "wrote %s\n", job->json);
    }
    rc = 0;
done:
    eval_free(&r);
    return rc;
}
