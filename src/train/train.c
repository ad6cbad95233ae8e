/* The training loop and the run directory. */
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "diffusion/sampler.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/jsonio.h"
#include "model/checkpoint.h"
#include "ops/ops.h"
#include "optim/adam.h"

#define P MNIST_PIXELS

static const float FIG_SIGMAS[] = {0.0f, 0.2f, 0.4f, 0.5f, 0.6f, 0.8f, 1.0f};
#define N_FIG_SIGMAS 7

void train_config_defaults(TrainConfig *c, UnetKind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->seed = 1;
    c->threads = 2;
    c->sigma = 0.5f;
    c->T = SCHEDULE_DEFAULT_T;
    c->beta_start = SCHEDULE_DEFAULT_BETA_START;
    c->beta_end = SCHEDULE_DEFAULT_BETA_END;
    c->p_uncond = 0.1f;
    c->guidance = 5.0f;
    c->eval_n = 10000;
    c->table_n = 10000;
    c->n_grid = 40;
    if (kind == UNET_DENOISER) {
        c->width = 128;
        c->batch = 256;
        c->epochs = 5;
        c->lr = c->lr_end = 1e-4f;
        c->fig_epochs[0] = 1;
        c->fig_epochs[1] = 5;
    } else {
        c->width = 64;
        c->batch = 128;
        c->epochs = 20;
        c->lr = 1e-3f;
        c->lr_end = 1e-4f;
        c->fig_epochs[0] = 5;
        c->fig_epochs[1] = 20;
    }
    c->n_fig_epochs = 2;
}

/* ---- one step -------------------------------------------------------------------- */

int trainer_init(Trainer *tr, const TrainConfig *c) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = *c;
    Rng init_rng;
    rng_seed(&init_rng, c->seed);
    if (unet_init(&tr->model, c->kind, c->width, c->batch, c->threads, &init_rng) != 0) return -1;
    if (schedule_init(&tr->sched, c->T, c->beta_start, c->beta_end) != 0) {
        unet_free(&tr->model);
        return -1;
    }
    size_t np = tr->model.n_params, N = (size_t)c->batch;
    tr->m = xcalloc(np, sizeof(float));
    tr->v = xcalloc(np, sizeof(float));
    tr->x0 = xcalloc(N * P, sizeof(float));
    tr->xin = xcalloc(N * P, sizeof(float));
    tr->target = xcalloc(N * P, sizeof(float));
    tr->noise = xcalloc(N * P, sizeof(float));
    tr->dout = xcalloc(N * P, sizeof(float));
    tr->tn = xcalloc(N, sizeof(float));
    tr->onehot = xcalloc(N * UNET_NUM_CLASSES, sizeof(float));
    tr->labels = xcalloc(N, sizeof(int));
    rng_seed(&tr->noise_rng, c->seed * 0x9E3779B97F4A7C15ULL + 17);
    tr->lr = c->lr;
    return 0;
}

void trainer_free(Trainer *tr) {
    unet_free(&tr->model);
    schedule_free(&tr->sched);
    xfree(tr->m);
    xfree(tr->v);
    xfree(tr->x0);
    xfree(tr->xin);
    xfree(tr->target);
    xfree(tr->noise);
    xfree(tr->dout);
    xfree(tr->tn);
    xfree(tr->onehot);
    xfree(tr->labels);
    memset(tr, 0, sizeof *tr);
}

float trainer_step(Trainer *tr, const float *images, const uint8_t *labels, int n) {
    const TrainConfig *c = &tr->cfg;
    Unet *m = &tr->model;
    DDPM_CHECK(n >= 1 && n <= c->batch);
    const size_t cnt = (size_t)n * P;
    const float *tnp = NULL, *ohp = NULL;
    if (c->kind == UNET_DENOISER) {
        rng_fill_normal(&tr->noise_rng, tr->noise, cnt);
        for (size_t i = 0; i < cnt; i++) tr->xin[i] = images[i] + c->sigma * tr->noise[i];
        memcpy(tr->target, images, cnt * sizeof(float));
    } else {
        if (c->kind == UNET_CLASS) memset(tr->onehot, 0, (size_t)n * UNET_NUM_CLASSES * sizeof(float));
        for (int i = 0; i < n; i++) {
            int t = (int)rng_below(&tr->noise_rng, (uint32_t)c->T);
            tr->tn[i] = (float)t / (float)c->T;
            float *e = tr->noise + (size_t)i * P;
            rng_fill_normal(&tr->noise_rng, e, P);
            schedule_add_noise(&tr->sched, tr->xin + (size_t)i * P, images + (size_t)i * P, e, t, P);
            if (c->kind == UNET_CLASS) {
                DDPM_CHECK(labels != NULL);
                /* the zero vector stands for "no class" with probability p_uncond */
                if (rng_uniform(&tr->noise_rng) >= c->p_uncond)
                    tr->onehot[(size_t)i * UNET_NUM_CLASSES + labels[i]] = 1.0f;
            }
        }
        memcpy(tr->target, tr->noise, cnt * sizeof(float));
        tnp = tr->tn;
        ohp = c->kind == UNET_CLASS ? tr->onehot : NULL;
    }
    const float *out = unet_forward(m, tr->xin, tnp, ohp, n, 1);
    float loss = mse_forward(&m->ctx, out, tr->target, (int64_t)cnt);
    memset(tr->dout, 0, cnt * sizeof(float));
    mse_backward(&m->ctx, tr->dout, out, tr->target, (int64_t)cnt);
    unet_zero_grad(m);
    unet_backward(m, tr->dout);
    Adam opt = {.lr = tr->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = tr->step};
    adam_step(&opt, m->params, m->grads, tr->m, tr->v, m->n_params);
    tr->step = opt.step;
    return loss;
}

double denoiser_test_mse(Unet *m, const float *images, int n, float sigma, uint64_t seed,
                         float *noisy, float *denoised) {
    Rng rng;
    rng_seed(&rng, seed);
    const int B = m->max_batch;
    float *z = xmalloc((size_t)B * P * sizeof(float));
    double sum = 0;
    for (int s = 0; s < n; s += B) {
        int c = n - s < B ? n - s : B;
        const float *x = images + (size_t)s * P;
        rng_fill_normal(&rng, z, (size_t)c * P);
        for (size_t i = 0; i < (size_t)c * P; i++) z[i] = x[i] + sigma * z[i];
        if (noisy) memcpy(noisy + (size_t)s * P, z, (size_t)c * P * sizeof(float));
        const float *o = unet_forward(m, z, NULL, NULL, c, 0);
        for (size_t i = 0; i < (size_t)c * P; i++) {
            double d = (double)o[i] - (double)x[i];
            sum += d * d;
        }
        if (denoised) memcpy(denoised + (size_t)s * P, o, (size_t)c * P * sizeof(float));
    }
    xfree(z);
    return sum / ((double)n * P);
}

/* ---- the run ------------------------------------------------------------------------ */

static float *images_to_float(const MnistSplit *s, int n) {
    float *f = xmalloc((size_t)n * P * sizeof(float));
    for (size_t i = 0; i < (size_t)n * P; i++) f[i] = (float)s->images[i] / 255.0f;
    return f;
}

static void path_join(char *dst, size_t cap, const char *dir, const char *name) {
    snprintf(dst, cap, "%s/%s", dir, name);
}

static cJSON *config_json(const TrainConfig *c, const Unet *m) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", unet_kind_name(c->kind));
    cJSON_AddNumberToObject(j, "width", c->width);
    cJSON_AddNumberToObject(j, "batch", c->batch);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "lr", c->lr);
    cJSON_AddNumberToObject(j, "lr_end", c->lr_end);
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddNumberToObject(j, "threads", c->threads);
    cJSON_AddStringToObject(j, "data", c->data_dir);
    cJSON_AddNumberToObject(j, "subset", c->subset);
    if (c->kind == UNET_DENOISER) {
        cJSON_AddNumberToObject(j, "sigma", c->sigma);
    } else {
        cJSON_AddNumberToObject(j, "T", c->T);
        cJSON_AddNumberToObject(j, "beta_start", c->beta_start);
        cJSON_AddNumberToObject(j, "beta_end", c->beta_end);
    }
    if (c->kind == UNET_CLASS) {
        cJSON_AddNumberToObject(j, "p_uncond", c->p_uncond);
        cJSON_AddNumberToObject(j, "guidance", c->guidance);
    }
    cJSON *fe = cJSON_AddArrayToObject(j, "figure_epochs");
    for (int i = 0; i < c->n_fig_epochs; i++) cJSON_AddItemToArray(fe, cJSON_CreateNumber(c->fig_epochs[i]));
    cJSON_AddNumberToObject(j, "parameters", (double)m->n_params);
    cJSON_AddNumberToObject(j, "forward_macs_per_image", unet_forward_macs(m));
    return j;
}

/* loss.csv holds every step so far; rewritten whole (atomically) after each epoch. */
static int write_loss_csv(const char *path, const float *loss, const float *lr, const int *epoch,
                          long n) {
    AtomicFile af;
    if (atomic_open(&af, path) != 0) return -1;
    char line[96];
    int len = snprintf(line, sizeof line, "step,epoch,lr,loss\n");
    if (atomic_write(&af, line, (size_t)len) != 0) goto fail;
    for (long i = 0; i < n; i++) {
        len = snprintf(line, sizeof line, "%ld,%d,%.6g,%.8g\n", i + 1, epoch[i], (double)lr[i], (double)loss[i]);
        if (atomic_write(&af, line, (size_t)len) != 0) goto fail;
    }
    return atomic_commit(&af);
fail:
    atomic_abort(&af);
    return -1;
}

static int is_fig_epoch(const TrainConfig *c, int e) {
    for (int i = 0; i < c->n_fig_epochs; i++)
        if (c->fig_epochs[i] == e) return 1;
    return 0;
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

/* Part 1 figures. */
static int fig_noising(const char *dir, const float *train_imgs) {
    const int rows = 5;
    float *g = xmalloc((size_t)rows * N_FIG_SIGMAS * P * sizeof(float));
    Rng r;
    rng_seed(&r, 12345);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < N_FIG_SIGMAS; j++) {
            float *dst = g + ((size_t)i * N_FIG_SIGMAS + j) * P;
            for (int p = 0; p < P; p++) dst[p] = train_imgs[(size_t)i * P + p] + FIG_SIGMAS[j] * rng_normal(&r);
        }
    char lab[N_FIG_SIGMAS][24];
    const char *labs[N_FIG_SIGMAS];
    for (int j = 0; j < N_FIG_SIGMAS; j++) {
        snprintf(lab[j], sizeof lab[j], "sigma %.1f", (double)FIG_SIGMAS[j]);
        labs[j] = lab[j];
    }
    char path[1024];
    path_join(path, sizeof path, dir, "noising.png");
    int rc = figure_grid_png(path, g, rows, N_FIG_SIGMAS, 28, 28, "Noising: z = x + sigma * eps",
                             NULL, labs);
    xfree(g);
    return rc;
}

static int fig_denoise(const char *dir, Unet *m, const float *test, int epoch, float sigma,
                       uint64_t seed) {
    const int cols = 8;
    float *g = xmalloc((size_t)3 * cols * P * sizeof(float));
    float *noisy = xmalloc((size_t)cols * P * sizeof(float));
    float *den = xmalloc((size_t)cols * P * sizeof(float));
    denoiser_test_mse(m, test, cols, sigma, seed, noisy, den);
    memcpy(g, test, (size_t)cols * P * sizeof(float));
    memcpy(g + (size_t)cols * P, noisy, (size_t)cols * P * sizeof(float));
    memcpy(g + (size_t)2 * cols * P, den, (size_t)cols * P * sizeof(float));
    const char *rows[3] = {"clean", "noisy", "denoised"};
    char title[128], name[64], path[1024];
    snprintf(title, sizeof title, "Test digits, sigma %.2g, after epoch %d", (double)sigma, epoch);
    snprintf(name, sizeof name, "denoise_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png(path, g, 3, cols, 28, 28, title, rows, NULL);
    xfree(g);
    xfree(noisy);
    xfree(den);
    return rc;
}

static int fig_ood(const char *dir, Unet *m, const float *test, int epoch, uint64_t seed) {
    float *g = xmalloc((size_t)2 * N_FIG_SIGMAS * P * sizeof(float));
    for (int j = 0; j < N_FIG_SIGMAS; j++)
        denoiser_test_mse(m, test, 1, FIG_SIGMAS[j], seed + (uint64_t)j, g + (size_t)j * P,
                          g + (size_t)(N_FIG_SIGMAS + j) * P);
    char lab[N_FIG_SIGMAS][24];
    const char *labs[N_FIG_SIGMAS];
    for (int j = 0; j < N_FIG_SIGMAS; j++) {
        snprintf(lab[j], sizeof lab[j], "sigma %.1f", (double)FIG_SIGMAS[j]);
        labs[j] = lab[j];
    }
    const char *rows[2] = {"noisy", "denoised"};
    char title[128], name[64], path[1024];
    snprintf(title, sizeof title, "Out-of-distribution noise levels, after epoch %d", epoch);
    snprintf(name, sizeof name, "ood_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png(path, g, 2, N_FIG_SIGMAS, 28, 28, title, rows, labs);
    xfree(g);
    return rc;
}

/* Sample grids for Parts 2 and 3. */
static int fig_samples(const char *dir, Trainer *tr, int epoch) {
    const TrainConfig *c = &tr->cfg;
    Unet *m = &tr->model;
    Rng r;
    rng_seed(&r, c->seed + 1000);
    int rows, cols, n;
    int *labels = NULL;
    if (c->kind == UNET_CLASS) {
        rows = 10;
        cols = 4;
        n = rows * cols;
        labels = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) labels[i] = i / cols;
    } else {
        n = c->n_grid;
        cols = 10;
        rows = (n + cols - 1) / cols;
    }
    float *out = xcalloc((size_t)rows * cols * P, sizeof(float));
    SampleRequest req = {.n = n, .labels = labels, .guidance = c->guidance};
    ddpm_sample(m, &tr->sched, &r, &req, out);
    char title[128], name[64], path[1024];
    const char *row_labels[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    if (c->kind == UNET_CLASS)
        snprintf(title, sizeof title, "Class-conditioned samples, guidance %.3g, epoch %d", (double)c->guidance, epoch);
    else
        snprintf(title, sizeof title, "Samples from pure noise (T=%d), epoch %d", c->T, epoch);
    snprintf(name, sizeof name, "samples_epoch%d.png", epoch);
    path_join(path, sizeof path, dir, name);
    int rc = figure_grid_png(path, out, rows, cols, 28, 28, title,
                             c->kind == UNET_CLASS ? row_labels : NULL, NULL);
    xfree(out);
    xfree(labels);
    return rc;
}

int train_run(const TrainConfig *c) {
    int rc = -1;
    MnistSplit train = {0}, test = {0};
    float *train_f = NULL, *test_f = NULL, *batch = NULL;
    float *loss_log = NULL, *lr_log = NULL;
    int *epoch_log = NULL;
    uint32_t *perm = NULL;
    uint8_t *blabels = NULL;
    cJSON *metrics = NULL, *epochs_json = NULL;
    Trainer tr;
    int have_tr = 0;
    char path[1024];

    if (mnist_load(c->data_dir, 1, &train) != 0) goto done;
    if (mnist_load(c->data_dir, 0, &test) != 0) goto done;
    int n_train = c->subset > 0 && c->subset < train.n ? c->subset : train.n;
    int n_eval = c->eval_n > 0 && c->eval_n < test.n ? c->eval_n : test.n;
    train_f = images_to_float(&train, n_train);
    test_f = images_to_float(&test, test.n);
    if (make_dirs(c->out_dir) != 0) goto done;
    if (trainer_init(&tr, c) != 0) goto done;
    have_tr = 1;
    Unet *m = &tr.model;

    cJSON *cfg = config_json(c, m);
    path_join(path, sizeof path, c->out_dir, "config.json");
    int jrc = json_save(path, cfg);
    char *cfg_text = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    if (jrc != 0) {
        free(cfg_text);
        goto done;
    }
    fprintf(stderr, "ddpm: training %s model, width %d, %zu parameters, %d images, batch %d, %d epochs, %d threads -> %s\n",
            unet_kind_name(c->kind), c->width, m->n_params, n_train, c->batch, c->epochs,
            c->threads, c->out_dir);
    if (c->kind == UNET_DENOISER && fig_noising(c->out_dir, train_f) != 0) {
        free(cfg_text);
        goto done;
    }

    const int steps_per_epoch = (n_train + c->batch - 1) / c->batch;
    const long total_steps = (long)steps_per_epoch * c->epochs;
    loss_log = xmalloc((size_t)total_steps * sizeof(float));
    lr_log = xmalloc((size_t)total_steps * sizeof(float));
    epoch_log = xmalloc((size_t)total_steps * sizeof(int));
    perm = xmalloc((size_t)n_train * sizeof(uint32_t));
    batch = xmalloc((size_t)c->batch * P * sizeof(float));
    blabels = xmalloc((size_t)c->batch);
    Rng data_rng;
    rng_seed(&data_rng, c->seed ^ 0xD1B54A32D192ED03ULL);
    metrics = cJSON_CreateObject();
    epochs_json = cJSON_AddArrayToObject(metrics, "epochs");
    /* per-epoch LR factor: lr_end = lr * gamma^epochs */
    double gamma = c->epochs > 0 ? pow((double)c->lr_end / (double)c->lr, 1.0 / c->epochs) : 1.0;
    const double t_start = now_seconds();
    double train_time = 0;
    long step = 0;

    for (int e = 1; e <= c->epochs; e++) {
        tr.lr = (float)((double)c->lr * pow(gamma, e - 1));
        rng_permutation(&data_rng, perm, (uint32_t)n_train);
        double te = now_seconds(), last_print = 0;
        double epoch_loss = 0;
        for (int s = 0; s < steps_per_epoch; s++) {
            int b0 = s * c->batch, n = n_train - b0 < c->batch ? n_train - b0 : c->batch;
            for (int i = 0; i < n; i++) {
                uint32_t k = perm[b0 + i];
                memcpy(batch + (size_t)i * P, train_f + (size_t)k * P, P * sizeof(float));
                blabels[i] = train.labels[k];
            }
            float loss = trainer_step(&tr, batch, blabels, n);
            if (!isfinite(loss)) {
                err_set("training diverged: loss is %g at step %ld (epoch %d); the last good weights are in %s",
                        (double)loss, step + 1, e, c->out_dir);
                free(cfg_text);
                goto done;
            }
            loss_log[step] = loss;
            lr_log[step] = tr.lr;
            epoch_log[step] = e;
            step++;
            epoch_loss += loss;
            double now = now_seconds();
            double el = now - te;
            if (now - last_print > (c->progress ? 0.5 : 30.0) || s == steps_per_epoch - 1) {
                last_print = now;
                double done_imgs = (double)(b0 + n);
                double ips = done_imgs / el;
                double left_imgs = (double)n_train * (c->epochs - e) + (n_train - done_imgs);
                char eta[32];
                fmt_duration(eta, sizeof eta, left_imgs / ips);
                fprintf(stderr, "%sepoch %d/%d  step %d/%d  loss %.5f  %.1f img/s  left %s%s",
                        c->progress ? "\r" : "", e, c->epochs, s + 1, steps_per_epoch,
                        (double)loss, ips, eta, c->progress ? "   " : "\n");
            }
        }
        double epoch_time = now_seconds() - te;
        train_time += epoch_time;
        if (c->progress) fprintf(stderr, "\n");
        /* mean of the last 100 steps (or 50 for Part 1's figure) of this epoch */
        int tail = steps_per_epoch < 100 ? steps_per_epoch : 100;
        double last100 = 0, last50 = 0;
        for (int i = 0; i < tail; i++) last100 += loss_log[step - 1 - i];
        int tail50 = steps_per_epoch < 50 ? steps_per_epoch : 50;
        for (int i = 0; i < tail50; i++) last50 += loss_log[step - 1 - i];
        cJSON *ej = cJSON_CreateObject();
        cJSON_AddNumberToObject(ej, "epoch", e);
        cJSON_AddNumberToObject(ej, "lr", tr.lr);
        cJSON_AddNumberToObject(ej, "mean_loss", epoch_loss / steps_per_epoch);
        cJSON_AddNumberToObject(ej, "mean_loss_last100", last100 / tail);
        cJSON_AddNumberToObject(ej, "mean_loss_last50", last50 / tail50);
        cJSON_AddNumberToObject(ej, "seconds", epoch_time);
        cJSON_AddNumberToObject(ej, "images_per_second", n_train / epoch_time);
        char msg[256];
        int ml = snprintf(msg, sizeof msg, "epoch %d done in %.0f s: mean loss %.5f, last 100 steps %.5f",
                          e, epoch_time, epoch_loss / steps_per_epoch, last100 / tail);
        if (c->kind == UNET_DENOISER) {
            double mse = denoiser_test_mse(m, test_f, n_eval, c->sigma, c->seed + 777, NULL, NULL);
            cJSON_AddNumberToObject(ej, "test_mse", mse);
            snprintf(msg + ml, sizeof msg - (size_t)ml, ", test MSE at sigma %.2g: %.5f", (double)c->sigma, mse);
        }
        fprintf(stderr, "%s\n", msg);

        /* weights: epoch_NNN.safetensors and model.safetensors (the latest) */
        char ebuf[16], sbuf[24], name[64];
        snprintf(ebuf, sizeof ebuf, "%d", e);
        snprintf(sbuf, sizeof sbuf, "%ld", step);
        const char *keys[3] = {"ddpm.epoch", "ddpm.step", "ddpm.config"};
        const char *vals[3] = {ebuf, sbuf, cfg_text};
        snprintf(name, sizeof name, "epoch_%03d.safetensors", e);
        path_join(path, sizeof path, c->out_dir, name);
        if (checkpoint_save(m, path, keys, vals, 3) != 0) { free(cfg_text); goto done; }
        path_join(path, sizeof path, c->out_dir, "model.safetensors");
        if (checkpoint_save(m, path, keys, vals, 3) != 0) { free(cfg_text); goto done; }
        path_join(path, sizeof path, c->out_dir, "loss.csv");
        if (write_loss_csv(path, loss_log, lr_log, epoch_log, step) != 0) { free(cfg_text); goto done; }
        path_join(path, sizeof path, c->out_dir, "loss.png");
        char title[128];
        snprintf(title, sizeof title, "Training loss, %s model (D=%d, batch %d)", unet_kind_name(c->kind), c->width, c->batch);
        if (plot_curve_png(path, loss_log, (int)step, title, "step", "MSE loss", 50, 1) != 0) { free(cfg_text); goto done; }

        if (is_fig_epoch(c, e) || e == c->epochs) {
            if (c->kind == UNET_DENOISER) {
                if (fig_denoise(c->out_dir, m, test_f, e, c->sigma, c->seed + 99) != 0 ||
                    fig_ood(c->out_dir, m, test_f, e, c->seed + 98) != 0) { free(cfg_text); goto done; }
                int n_table = c->table_n < test.n ? c->table_n : test.n;
                cJSON *per = n_table > 0 ? cJSON_AddObjectToObject(ej, "test_mse_per_sigma") : NULL;
                for (int j = 0; per && j < N_FIG_SIGMAS; j++) {
                    char key[16];
                    snprintf(key, sizeof key, "%.1f", (double)FIG_SIGMAS[j]);
                    cJSON_AddNumberToObject(per, key, denoiser_test_mse(m, test_f, n_table, FIG_SIGMAS[j], c->seed + 777, NULL, NULL));
                }
            } else {
                double ts = now_seconds();
                if (fig_samples(c->out_dir, &tr, e) != 0) { free(cfg_text); goto done; }
                fprintf(stderr, "epoch %d: sample grid drawn in %.0f s\n", e, now_seconds() - ts);
            }
        }
        cJSON_AddItemToArray(epochs_json, ej);
        cJSON_ReplaceItemInObject(metrics, "train_seconds", cJSON_CreateNumber(train_time));
        cJSON_ReplaceItemInObject(metrics, "wall_seconds", cJSON_CreateNumber(now_seconds() - t_start));
        if (!cJSON_GetObjectItem(metrics, "train_seconds")) {
            cJSON_AddNumberToObject(metrics, "train_seconds", train_time);
            cJSON_AddNumberToObject(metrics, "wall_seconds", now_seconds() - t_start);
        }
        path_join(path, sizeof path, c->out_dir, "metrics.json");
        if (json_save(path, metrics) != 0) { free(cfg_text); goto done; }
    }
    free(cfg_text);
    fprintf(stderr, "ddpm: done in %.0f s; results in %s\n", now_seconds() - t_start, c->out_dir);
    rc = 0;
done:
    if (have_tr) trainer_free(&tr);
    mnist_free(&train);
    mnist_free(&test);
    xfree(train_f);
    xfree(test_f);
    xfree(batch);
    xfree(loss_log);
    xfree(lr_log);
    xfree(epoch_log);
    xfree(perm);
    xfree(blabels);
    cJSON_Delete(metrics);
    return rc;
}
