/* The training step (with its fault check), the epoch loop with its checkpoints and signal
 * handling, and the run directory. */
#define _XOPEN_SOURCE 700 /* sigaction's SA_RESTART */
#include "train/train.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "core/dist.h"
#include "core/pixel.h"
#include "data/source.h"
#include "diffusion/sampler.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/jsonio.h"
#include "model/checkpoint.h"
#include "ops/ops.h"
#include "optim/adam.h"
#include "train/figures.h"
#include "train/state.h"



/* ---- one step -------------------------------------------------------------------- */

void trainer_slice(int batch, int rank, int ranks, int *lo, int *n) {
    long a = (long)rank * batch / ranks, b = (long)(rank + 1) * batch / ranks;
    *lo = (int)a;
    *n = (int)(b - a);
}

int trainer_init(Trainer *tr, const TrainConfig *c) {
    const ImageGeom g = c->dataset == DATASET_FASHION ? geometry_fashion() : geometry_mnist();
    return trainer_init_geom(tr, c, &g);
}

int trainer_init_geom(Trainer *tr, const TrainConfig *c, const ImageGeom *geom) {
    memset(tr, 0, sizeof *tr);
    tr->cfg = *c;
    tr->rank = dist_rank();
    tr->ranks = dist_size();
    if (c->batch < tr->ranks)
        return err_set("a batch of %d images cannot be split over %d processes", c->batch,
                       tr->ranks);
    /* the largest slice of a batch: the model's and the device buffers' batch */
    const int local = (c->batch + tr->ranks - 1) / tr->ranks;
    Rng init_rng;
    rng_seed(&init_rng, c->seed);
    UnetConfig uc = {.kind = c->kind, .width = c->width,
                     .geom = *geom,
                     .opt = {.temb = c->time_embedding, .residual = c->residual, .attention = c->attention},
                     .device = c->device};
    if (unet_init(&tr->model, &uc, local, c->threads, &init_rng) != 0) return -1;
    tr->P = (int)geometry_pixels(&uc.geom);
    tr->K = uc.geom.classes;
    if (schedule_init_kind(&tr->sched, c->schedule, c->T, c->beta_start, c->beta_end) != 0) {
        unet_free(&tr->model);
        return -1;
    }
    size_t np = tr->model.n_params, N = (size_t)local, G = (size_t)c->batch;
    if (tr->ranks > 1) {
        tr->model.ctx.sum_across = dist_sum_across;
        tr->h_grads = xmalloc(np * sizeof(float));
    }
    const OpsCtx *ctx = &tr->model.ctx;
    tr->m = dev_alloc(ctx, np * sizeof(float));
    tr->v = dev_alloc(ctx, np * sizeof(float));
    tr->x0 = dev_alloc(ctx, N * tr->P * sizeof(float));
    tr->xin = dev_alloc(ctx, N * tr->P * sizeof(float));
    tr->noise = dev_alloc(ctx, N * tr->P * sizeof(float));
    tr->target = c->kind == UNET_DENOISER ? tr->x0 : tr->noise;
    tr->dout = dev_alloc(ctx, N * tr->P * sizeof(float));
    tr->tn = dev_alloc(ctx, N * sizeof(float));
    tr->onehot = dev_alloc(ctx, N * tr->K * sizeof(float));
    tr->coef = dev_alloc(ctx, 2 * N * sizeof(float));
    /* the host draws are made for the whole batch */
    tr->h_noise = xcalloc(G * tr->P, sizeof(float));
    tr->h_tn = xcalloc(G, sizeof(float));
    tr->h_onehot = xcalloc(G * tr->K, sizeof(float));
    tr->h_coef = xcalloc(2 * G, sizeof(float));
    tr->labels = xcalloc(G, sizeof(int));
    rng_seed(&tr->noise_rng, c->seed * 0x9E3779B97F4A7C15ULL + 17);
    tr->lr = c->lr;
    if (c->ema > 0) {
        Unet *m = &tr->model;
        tr->ema = dev_alloc(ctx, (m->n_params + m->n_buffers) * sizeof(float));
        dev_copy(ctx, tr->ema, m->params, m->n_params);
        dev_copy(ctx, tr->ema + m->n_params, m->buffers, m->n_buffers);
    }
    return 0;
}

void trainer_swap_ema(Trainer *tr) {
    if (!tr->ema) return;
    Unet *m = &tr->model;
    swap_values(&m->ctx, m->params, tr->ema, m->n_params);
    swap_values(&m->ctx, m->buffers, tr->ema + m->n_params, m->n_buffers);
}

TrainStateRefs trainer_state_refs(Trainer *tr) {
    return (TrainStateRefs){.cfg = &tr->cfg, .model = &tr->model, .m = tr->m, .v = tr->v,
                            .ema = tr->ema, .noise_rng = &tr->noise_rng, .step = &tr->step};
}

void trainer_free(Trainer *tr) {
    const OpsCtx *ctx = &tr->model.ctx;
    size_t np = tr->model.n_params, N = (size_t)tr->model.max_batch;
    dev_free(ctx, tr->m, np * sizeof(float));
    dev_free(ctx, tr->v, np * sizeof(float));
    dev_free(ctx, tr->x0, N * tr->P * sizeof(float));
    dev_free(ctx, tr->xin, N * tr->P * sizeof(float));
    dev_free(ctx, tr->noise, N * tr->P * sizeof(float));
    dev_free(ctx, tr->dout, N * tr->P * sizeof(float));
    dev_free(ctx, tr->tn, N * sizeof(float));
    dev_free(ctx, tr->onehot, N * tr->K * sizeof(float));
    dev_free(ctx, tr->coef, 2 * N * sizeof(float));
    if (tr->ema)
        dev_free(ctx, tr->ema, (tr->model.n_params + tr->model.n_buffers) * sizeof(float));
    xfree(tr->h_noise);
    xfree(tr->h_tn);
    xfree(tr->h_onehot);
    xfree(tr->h_coef);
    xfree(tr->labels);
    xfree(tr->h_grads);
    unet_free(&tr->model);
    schedule_free(&tr->sched);
    memset(tr, 0, sizeof *tr);
}

/* The diffusion models' batch on the host: per image a timestep, its noise and (class model)
 * the label kept or dropped, in the generator's order; the noising coefficients
 * (float)sqrt(abar_t), (float)sqrt(1 - abar_t) as schedule_add_noise computes them. */
static void draw_diffusion_batch(Trainer *tr, const uint8_t *labels, int n) {
    const TrainConfig *c = &tr->cfg;
    if (c->kind == UNET_CLASS) memset(tr->h_onehot, 0, (size_t)n * tr->K * sizeof(float));
    for (int i = 0; i < n; i++) {
        int t = (int)rng_below(&tr->noise_rng, (uint32_t)c->T);
        tr->h_tn[i] = (float)t / (float)c->T;
        rng_fill_normal(&tr->noise_rng, tr->h_noise + (size_t)i * tr->P, tr->P);
        double ab = schedule_abar(&tr->sched, t);
        tr->h_coef[i] = (float)sqrt(ab);
        tr->h_coef[n + i] = (float)sqrt(1.0 - ab);
        if (c->kind == UNET_CLASS) {
            DDPM_CHECK(labels != NULL);
            /* the zero vector stands for "no class" with probability p_uncond */
            if (rng_uniform(&tr->noise_rng) >= c->p_uncond)
                tr->h_onehot[(size_t)i * tr->K + labels[i]] = 1.0f;
        }
    }
}

/* Forward and loss of one step on the global batch of n images, of which this process
 * computes rows [lo, lo + k) (trainer_slice); backward and update are left to the caller. */
static float step_forward(Trainer *tr, const float *images, const uint8_t *labels, int n) {
    const TrainConfig *c = &tr->cfg;
    Unet *m = &tr->model;
    const OpsCtx *ctx = &m->ctx;
    DDPM_CHECK(n >= tr->ranks && n <= c->batch);
    int lo, k;
    trainer_slice(n, tr->rank, tr->ranks, &lo, &k);
    const size_t P = (size_t)tr->P, cnt = (size_t)k * P, at = (size_t)lo * P;
    const float *tnp = NULL, *ohp = NULL;
    dev_upload(ctx, tr->x0, images + at, cnt * sizeof(float));
    if (c->kind == UNET_DENOISER) {
        rng_fill_normal(&tr->noise_rng, tr->h_noise, (size_t)n * P);
        dev_upload(ctx, tr->noise, tr->h_noise + at, cnt * sizeof(float));
        scale_add(ctx, tr->xin, tr->x0, c->sigma, tr->noise, cnt);
    } else {
        draw_diffusion_batch(tr, labels, n);
        dev_upload(ctx, tr->noise, tr->h_noise + at, cnt * sizeof(float));
        /* coef holds the slice's sqrt(abar) (k) then its sqrt(1 - abar) (k) */
        dev_upload(ctx, tr->coef, tr->h_coef + lo, (size_t)k * sizeof(float));
        dev_upload(ctx, tr->coef + k, tr->h_coef + n + lo, (size_t)k * sizeof(float));
        noising_forward(ctx, tr->xin, tr->x0, tr->noise, tr->coef, tr->coef + k, k, tr->P);
        dev_upload(ctx, tr->tn, tr->h_tn + lo, (size_t)k * sizeof(float));
        if (c->kind == UNET_CLASS)
            dev_upload(ctx, tr->onehot, tr->h_onehot + (size_t)lo * tr->K,
                       (size_t)k * tr->K * sizeof(float));
        tnp = tr->tn;
        ohp = c->kind == UNET_CLASS ? tr->onehot : NULL;
    }
    unet_forward(m, tr->xin, tnp, ohp, k, 1);
    /* test hook: a NaN in the output, past the operators, makes this step's loss NaN */
    if (c->fault_nan_at > 0 && tr->step + 1 == c->fault_nan_at) {
        const float nan = NAN;
        dev_upload(ctx, m->out, &nan, sizeof nan);
    }
    float loss = mse_forward(ctx, m->out, tr->target, (int64_t)cnt);
    if (tr->ranks > 1) {
        /* the batch's mean: the slices' means weighted by their sizes */
        double v = (double)loss * (double)k;
        dist_sum_doubles(&v, 1);
        loss = (float)(v / n);
    }
    return loss;
}

static void step_backward(Trainer *tr, int n) {
    Unet *m = &tr->model;
    const OpsCtx *ctx = &m->ctx;
    int lo, k;
    trainer_slice(n, tr->rank, tr->ranks, &lo, &k);
    const size_t cnt = (size_t)k * tr->P;
    dev_fill(ctx, tr->dout, 0.0f, cnt);
    mse_backward(ctx, tr->dout, m->out, tr->target, (int64_t)cnt);
    /* the slice's share of the batch's mean: 2 (out - target) / (n P), not / (k P) */
    if (k != n) scale_add(ctx, tr->dout, tr->dout, (float)k / (float)n - 1.0f, tr->dout, cnt);
    unet_zero_grad(m);
    unet_backward(m, tr->dout);
    if (tr->ranks > 1) {
        /* every process gets the sum of the slices' gradients: the batch's gradient */
        dev_download(ctx, tr->h_grads, m->grads, m->n_params * sizeof(float));
        dist_sum_floats(tr->h_grads, m->n_params);
        dev_upload(ctx, m->grads, tr->h_grads, m->n_params * sizeof(float));
    }
}

static void step_update(Trainer *tr) {
    Unet *m = &tr->model;
    Adam opt = {.lr = tr->lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = tr->step};
    adam_step(&m->ctx, &opt, m->params, m->grads, tr->m, tr->v, m->n_params);
    tr->step = opt.step;
    if (tr->ema) {
        /* ema <- d ema + (1 - d) value, for the weights and the BatchNorm statistics */
        ema_update(&m->ctx, tr->ema, m->params, tr->cfg.ema, m->n_params);
        ema_update(&m->ctx, tr->ema + m->n_params, m->buffers, tr->cfg.ema, m->n_buffers);
    }
}

float trainer_step(Trainer *tr, const float *images, const uint8_t *labels, int n) {
    float loss = step_forward(tr, images, labels, n);
    step_backward(tr, n);
    step_update(tr);
    return loss;
}

/* The first non-finite gradient: its tensor, index and value (downloaded tensor by tensor
 * once the whole array has failed the check). Returns 0 when all are finite. */
static int find_nonfinite_grad(const Unet *m, const UnetTensor **bad, size_t *at, float *value) {
    if (all_finite(&m->ctx, m->grads, m->n_params)) return 0;
    *bad = NULL;
    *at = 0;
    for (int j = 0; j < m->n_tensors && !*bad; j++) {
        const UnetTensor *t = &m->tensors[j];
        const float *g = unet_tensor_grad(m, t);
        if (!g) continue;
        float *h = xmalloc((t->count ? t->count : 1) * sizeof(float));
        dev_download(&m->ctx, h, g, t->count * sizeof(float));
        for (size_t k = 0; k < t->count; k++)
            if (!isfinite(h[k])) {
                *bad = t;
                *at = k;
                *value = h[k];
                break;
            }
        xfree(h);
    }
    return 1;
}

int trainer_step_checked(Trainer *tr, const float *images, const uint8_t *labels, int n,
                         float *loss) {
    *loss = step_forward(tr, images, labels, n);
    /* checked before the backward pass, which a NaN would only spread through */
    if (!isfinite(*loss)) return err_set("the loss is %g", (double)*loss);
    step_backward(tr, n);
    const UnetTensor *bad;
    size_t at;
    float value;
    if (find_nonfinite_grad(&tr->model, &bad, &at, &value)) {
        if (!bad) return err_set("a gradient is not finite");
        return err_set("the gradient of %s is %g at index %zu", bad->name, (double)value, at);
    }
    step_update(tr);
    return 0;
}

/* ---- the run ------------------------------------------------------------------------ */

static float *images_to_float(const ImageSet *s, int n) {
    const size_t P = imageset_image_bytes(s);
    float *f = xmalloc((size_t)n * P * sizeof(float));
    pixels_from_u8(f, s->pixels, (size_t)n * P);
    return f;
}

/* loss.csv holds every step so far; rewritten whole (atomically) after each epoch. */
static int write_loss_csv(const char *path, const TrainProgress *p) {
    AtomicFile af;
    if (atomic_open(&af, path) != 0) return -1;
    char line[96];
    int len = snprintf(line, sizeof line, "step,epoch,lr,loss\n");
    if (atomic_write(&af, line, (size_t)len) != 0) goto fail;
    for (long i = 0; i < p->step; i++) {
        len = snprintf(line, sizeof line, "%ld,%ld,%.6g,%.8g\n", i + 1, i / p->steps_per_epoch + 1,
                       (double)p->lr[i], (double)p->loss[i]);
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

/* ---- signals ---------------------------------------------------------------------------- */

/* The first SIGINT or SIGTERM received during train_run (0: none), and how many arrived.
 * A signal handler can only talk to the loop through flags like these; lock-free atomics
 * are safe in a handler, and two signals handled at once by two threads still count as two. */
static atomic_int g_signal;
static atomic_int g_signal_count;

static void on_signal(int sig) {
    if (atomic_fetch_add(&g_signal_count, 1) > 0) {
        /* a second signal: stop at once; atomic writes leave only a temporary file behind */
        static const char msg[] = "\nddpm train: second interrupt: stopping now, without saving; "
                                  "the last checkpoint is intact\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(128 + sig);
    }
    atomic_store(&g_signal, sig);
    dist_note_stop();
}

typedef struct {
    struct sigaction intr, term, xfsz;
} SavedSignals;

static void signals_install(SavedSignals *saved) {
    atomic_store(&g_signal, 0);
    atomic_store(&g_signal_count, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a write in progress resumes instead of failing with EINTR */
    sigaction(SIGINT, &sa, &saved->intr);
    sigaction(SIGTERM, &sa, &saved->term);
    /* Past a file size limit (ulimit -f) a write must fail with EFBIG and be reported, not
     * kill the process with SIGXFSZ. */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGXFSZ, &ign, &saved->xfsz);
}

static void signals_restore(const SavedSignals *saved) {
    sigaction(SIGINT, &saved->intr, NULL);
    sigaction(SIGTERM, &saved->term, NULL);
    sigaction(SIGXFSZ, &saved->xfsz, NULL);
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Longest run directory name: every path built from it must fit in RUN_PATH_CAP. */
#define RUN_DIR_MAX 900
#define RUN_PATH_CAP 1024

typedef struct {
    const TrainConfig *c;
    Trainer tr;
    TrainProgress p;
    ImageSet train, test;    /* the data set's splits; their geometry is the model's */
    float *train_f, *test_f; /* (n_train, P), (n_test, P) in [0, 1], P = C H W */
    int n_train, n_eval;
    char *cfg_text;          /* the configuration JSON, stored in every weights file */
    cJSON *metrics;          /* metrics.json */
    char state_path[RUN_PATH_CAP];
    long saved_step;         /* step of the last checkpoint written or loaded; -1: none */
    double t_start;          /* this process's start of training */
} Run;

static void run_path(const Run *r, char *dst, const char *name) {
    path_join(dst, RUN_PATH_CAP, r->c->out_dir, name); /* out_dir is at most RUN_DIR_MAX bytes */
}

int train_dir_holds_run(const char *dir) {
    if (strlen(dir) > RUN_DIR_MAX) return 0; /* train_run refuses the name: no run is there */
    char path[RUN_PATH_CAP];
    path_join(path, sizeof path, dir, TRAIN_STATE_FILE);
    return path_exists(path);
}

/* Save the training state as it stands in r->p (the caller set epoch, epoch_step and the
 * data generator). */
static int run_save_state(Run *r) {
    r->p.wall_seconds += now_seconds() - r->t_start;
    r->t_start = now_seconds();
    r->p.ranks = r->tr.ranks;
    if (r->tr.rank != 0) { /* rank 0 writes the run directory */
        r->saved_step = r->p.step;
        return 0;
    }
    free(r->p.metrics);
    r->p.metrics = cJSON_PrintUnformatted(r->metrics);
    DDPM_CHECK(r->p.metrics != NULL);
    if (train_state_save(r->state_path, trainer_state_refs(&r->tr), &r->p, r->cfg_text) != 0) return -1;
    r->saved_step = r->p.step;
    return 0;
}

static void run_free(Run *r, int have_tr) {
    if (have_tr) trainer_free(&r->tr);
    train_progress_free(&r->p);
    imageset_free(&r->train);
    imageset_free(&r->test);
    xfree(r->train_f);
    xfree(r->test_f);
    free(r->cfg_text);
    cJSON_Delete(r->metrics);
}

/* Everything after the last step of epoch e: evaluation, weights, loss curve, figures,
 * metrics. Rewrites the same files when redone after a resume. */
static int run_epoch_end(Run *r, int e, double epoch_time) {
    const TrainConfig *c = r->c;
    TrainProgress *p = &r->p;
    Unet *m = &r->tr.model;
    const int spe = p->steps_per_epoch;
    const long first = (long)(e - 1) * spe, step = p->step;
    char path[RUN_PATH_CAP];
    StTensor *ema_ts = NULL; /* the moving averages as extra tensors "ema.NAME" */
    char (*ema_names)[64] = NULL;
    int n_ema = 0;
    double epoch_loss = 0;
    for (long i = first; i < step; i++) epoch_loss += p->loss[i];
    /* mean of the last 100 steps (or 50 for Part 1's figure) of this epoch */
    int tail = spe < 100 ? spe : 100;
    double last100 = 0, last50 = 0;
    for (int i = 0; i < tail; i++) last100 += p->loss[step - 1 - i];
    int tail50 = spe < 50 ? spe : 50;
    for (int i = 0; i < tail50; i++) last50 += p->loss[step - 1 - i];
    cJSON *ej = cJSON_CreateObject();
    cJSON_AddNumberToObject(ej, "epoch", e);
    cJSON_AddNumberToObject(ej, "lr", r->tr.lr);
    cJSON_AddNumberToObject(ej, "mean_loss", epoch_loss / spe);
    cJSON_AddNumberToObject(ej, "mean_loss_last100", last100 / tail);
    cJSON_AddNumberToObject(ej, "mean_loss_last50", last50 / tail50);
    cJSON_AddNumberToObject(ej, "seconds", epoch_time);
    cJSON_AddNumberToObject(ej, "images_per_second", r->n_train / epoch_time);
    char msg[256];
    int ml = snprintf(msg, sizeof msg, "epoch %d done in %.0f s: mean loss %.5f, last 100 steps %.5f",
                      e, epoch_time, epoch_loss / spe, last100 / tail);
    /* evaluation and figures use the moving average of the weights when there is one */
    int swapped = 0;
    if (c->kind == UNET_DENOISER) {
        trainer_swap_ema(&r->tr);
        double mse = denoiser_test_mse(m, r->test_f, r->n_eval, c->sigma, c->seed + 777, NULL, NULL);
        trainer_swap_ema(&r->tr);
        cJSON_AddNumberToObject(ej, "test_mse", mse);
        snprintf(msg + ml, sizeof msg - (size_t)ml, ", test MSE at sigma %.2g: %.5f", (double)c->sigma, mse);
    }
    progress_log(&c->report, "%s\n", msg);

    /* weights: epoch_NNN.safetensors and model.safetensors (the latest) */
    char ebuf[16], sbuf[24], name[64];
    snprintf(ebuf, sizeof ebuf, "%d", e);
    snprintf(sbuf, sizeof sbuf, "%ld", step);
    const char *keys[3] = {"ddpm.epoch", "ddpm.step", "ddpm.config"};
    const char *vals[3] = {ebuf, sbuf, r->cfg_text};
    snprintf(name, sizeof name, "epoch_%03d.safetensors", e);
    run_path(r, path, name);
    int rc = -1;
    if (r->tr.ema) {
        ema_ts = xcalloc((size_t)m->n_tensors, sizeof(StTensor));
        ema_names = xcalloc((size_t)m->n_tensors, sizeof *ema_names);
        n_ema = checkpoint_ema_tensors(m, r->tr.ema, ema_ts, ema_names);
    }
    if (checkpoint_save_with(m, path, ema_ts, n_ema, keys, vals, 3) != 0) goto done;
    run_path(r, path, "model.safetensors");
    if (checkpoint_save_with(m, path, ema_ts, n_ema, keys, vals, 3) != 0) goto done;
    run_path(r, path, "loss.csv");
    if (write_loss_csv(path, p) != 0) goto done;
    run_path(r, path, "loss.png");
    char title[128];
    snprintf(title, sizeof title, "Training loss, %s model (D=%d, batch %d)", unet_kind_name(c->kind), c->width, c->batch);
    if (plot_curve_png(path, p->loss, (int)step, title, "step", "MSE loss", 50, 1) != 0) goto done;

    if (is_fig_epoch(c, e) || e == c->epochs) {
        trainer_swap_ema(&r->tr);
        swapped = 1;
        if (c->kind == UNET_DENOISER) {
            if (train_fig_denoise(c->out_dir, m, r->test_f, e, c->sigma, c->seed + 99) != 0 ||
                train_fig_ood(c->out_dir, m, r->test_f, e, c->seed + 98) != 0)
                goto done;
            int n_table = c->table_n < r->test.n ? c->table_n : r->test.n;
            cJSON *per = n_table > 0 ? cJSON_AddObjectToObject(ej, "test_mse_per_sigma") : NULL;
            for (int j = 0; per && j < N_FIG_SIGMAS; j++) {
                char key[16];
                snprintf(key, sizeof key, "%.1f", (double)TRAIN_FIG_SIGMAS[j]);
                cJSON_AddNumberToObject(per, key, denoiser_test_mse(m, r->test_f, n_table, TRAIN_FIG_SIGMAS[j], c->seed + 777, NULL, NULL));
            }
        } else {
            double ts = now_seconds();
            if (train_fig_samples(c->out_dir, m, &r->tr.sched, c, e) != 0) goto done;
            progress_log(&c->report, "epoch %d: sample grid drawn in %.0f s\n", e, now_seconds() - ts);
        }
        trainer_swap_ema(&r->tr);
        swapped = 0;
    }
    cJSON *epochs_json = cJSON_GetObjectItemCaseSensitive(r->metrics, "epochs");
    /* after a resume the entry of a redone epoch replaces the one saved before */
    while (cJSON_GetArraySize(epochs_json) >= e) cJSON_DeleteItemFromArray(epochs_json, e - 1);
    cJSON_AddItemToArray(epochs_json, ej);
    ej = NULL;
    p->train_seconds += epoch_time;
    double wall = p->wall_seconds + now_seconds() - r->t_start;
    cJSON_DeleteItemFromObjectCaseSensitive(r->metrics, "train_seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(r->metrics, "wall_seconds");
    cJSON_AddNumberToObject(r->metrics, "train_seconds", p->train_seconds);
    cJSON_AddNumberToObject(r->metrics, "wall_seconds", wall);
    run_path(r, path, "metrics.json");
    if (json_save(path, r->metrics) != 0) goto done;
    rc = 0;
done:
    if (swapped) trainer_swap_ema(&r->tr);
    xfree(ema_ts);
    xfree(ema_names);
    cJSON_Delete(ej);
    return rc;
}

/* Every process starts from rank 0's weights and BatchNorm statistics (drawn from the same
 * seed, they are equal anyway; this makes it so whatever the processes' libraries). */
static void run_share_weights(Trainer *tr) {
    if (tr->ranks == 1) return;
    Unet *m = &tr->model;
    const size_t n = m->n_params + m->n_buffers;
    float *h = xmalloc(n * sizeof(float));
    dev_download(&m->ctx, h, m->params, m->n_params * sizeof(float));
    dev_download(&m->ctx, h + m->n_params, m->buffers, m->n_buffers * sizeof(float));
    dist_broadcast(h, n * sizeof(float));
    dev_upload(&m->ctx, m->params, h, m->n_params * sizeof(float));
    dev_upload(&m->ctx, m->buffers, h + m->n_params, m->n_buffers * sizeof(float));
    if (tr->ema) {
        dev_upload(&m->ctx, tr->ema, h, m->n_params * sizeof(float));
        dev_upload(&m->ctx, tr->ema + m->n_params, h + m->n_params, m->n_buffers * sizeof(float));
    }
    xfree(h);
}

/* The processes agree to stop when any of them received a signal (each may see it a step
 * apart); returns the signal to report, 0 to go on. */
static int run_agree_signal(const Trainer *tr) {
    int sig = atomic_load(&g_signal);
    if (tr->ranks == 1) return sig;
    double v = sig ? 1.0 : 0.0;
    dist_sum_doubles(&v, 1);
    return sig ? sig : v > 0 ? SIGTERM : 0;
}

/* Load data, build the trainer, and either start the run directory or load its state. */
static int run_setup(Run *r, int *have_tr) {
    const TrainConfig *c = r->c;
    char path[RUN_PATH_CAP];
    if (strlen(c->out_dir) > RUN_DIR_MAX)
        return err_set("%.60s...: the run directory's name is longer than %d bytes", c->out_dir,
                       RUN_DIR_MAX);
    run_path(r, r->state_path, TRAIN_STATE_FILE);
    if (c->resume) {
        struct stat st;
        if (stat(c->out_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return err_set("%s: no such run directory to resume", c->out_dir);
        if (stat(r->state_path, &st) != 0)
            return err_set("%s: no training checkpoint to resume from (%s is missing)",
                           c->out_dir, TRAIN_STATE_FILE);
    } else {
        if (make_dirs(c->out_dir) != 0) return -1;
        if (train_dir_holds_run(c->out_dir))
            return err_set("%s: already holds a training run (%s); resuming continues it, a "
                           "fresh run needs another directory", c->out_dir, TRAIN_STATE_FILE);
    }
    if (dir_check_writable(c->out_dir) != 0) return -1;
    const DataSource src = {.dataset = c->dataset, .dir = c->data_dir,
                            .folder = {.size = c->image_size, .channels = c->channels},
                            .test_fraction = c->test_fraction, .seed = c->seed};
    if (source_load(&r->train, &r->test, &src, &c->report) != 0) return -1;
    if (c->kind == UNET_CLASS && r->train.geom.classes == 0)
        return err_set("%s: the images are not labelled (no class folders): the class model "
                       "needs classes; train the time model on them", c->data_dir);
    r->n_train = c->subset > 0 && c->subset < r->train.n ? c->subset : r->train.n;
    r->n_eval = c->eval_n > 0 && c->eval_n < r->test.n ? c->eval_n : r->test.n;
    r->train_f = images_to_float(&r->train, r->n_train);
    r->test_f = images_to_float(&r->test, r->test.n);
    if (trainer_init_geom(&r->tr, c, &r->train.geom) != 0) return -1;
    *have_tr = 1;
    const int last = r->n_train % c->batch;
    if (last > 0 && last < r->tr.ranks)
        return err_set("the last batch of each epoch holds %d image%s, fewer than the %d "
                       "processes that split it: choose a --subset or --batch that leaves at "
                       "least %d", last, last == 1 ? "" : "s", r->tr.ranks, r->tr.ranks);
    train_progress_init(&r->p, c, r->n_train);
    cJSON *cfg = train_config_to_json(c, &r->tr.model);
    r->cfg_text = cJSON_PrintUnformatted(cfg);
    DDPM_CHECK(r->cfg_text != NULL);
    int rc = 0;
    if (c->resume) {
        int removed = atomic_remove_stale(c->out_dir);
        if (removed > 0)
            progress_log(&c->report, "ddpm: removed %d temporary file%s left by an interrupted write\n",
                    removed, removed == 1 ? "" : "s");
        rc = train_state_load(r->state_path, trainer_state_refs(&r->tr), &r->p);
        if (rc == 0) {
            r->saved_step = r->p.step;
            r->metrics = cJSON_Parse(r->p.metrics);
        }
    } else {
        run_path(r, path, "config.json");
        rc = r->tr.rank == 0 ? json_save(path, cfg) : 0;
        r->metrics = cJSON_CreateObject();
        r->saved_step = -1;
        run_share_weights(&r->tr);
    }
    cJSON_Delete(cfg);
    if (rc != 0) return -1;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(r->metrics, "epochs"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(r->metrics, "epochs");
        cJSON_AddArrayToObject(r->metrics, "epochs");
    }
    const Unet *m = &r->tr.model;
    if (c->resume)
        progress_log(&c->report, "ddpm: resuming %s model, width %d, at epoch %d step %d of %d (step %ld "
                "in all), %d threads -> %s\n", unet_kind_name(c->kind), c->width,
                r->p.epoch <= c->epochs ? r->p.epoch : c->epochs, r->p.epoch_step,
                r->p.steps_per_epoch, r->p.step, c->threads, c->out_dir);
    else
        progress_log(&c->report, "ddpm: training %s model, width %d, %zu parameters, %d images, batch %d, "
                "%d epochs, %d threads -> %s\n", unet_kind_name(c->kind), c->width, m->n_params,
                r->n_train, c->batch, c->epochs, c->threads, c->out_dir);
    if (c->resume && r->p.ranks != r->tr.ranks)
        progress_log(&c->report, "ddpm: the run was saved by %d process%s and continues on %d: "
                     "the sums are split differently, so it will not be bit-identical to an "
                     "uninterrupted run\n", r->p.ranks, r->p.ranks == 1 ? "" : "es", r->tr.ranks);
    if (!c->resume && r->tr.rank == 0 && c->kind == UNET_DENOISER &&
        train_fig_noising(c->out_dir, r->train_f, &r->train.geom) != 0)
        return -1;
    return 0;
}

static const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/* Training stopped on a fault at global step `step` (1-based) of epoch e. */
static int run_fault(const Run *r, long step, int e, int s) {
    char why[600];
    snprintf(why, sizeof why, "%s", err_msg());
    if (r->saved_step >= 0)
        return err_set("training stopped at step %ld (epoch %d, step %d of %d): %s; nothing was "
                       "saved after it, and the last good checkpoint, %s, holds step %ld",
                       step, e, s, r->p.steps_per_epoch, why, r->state_path, r->saved_step);
    return err_set("training stopped at step %ld (epoch %d, step %d of %d): %s; no checkpoint "
                   "had been written yet", step, e, s, r->p.steps_per_epoch, why);
}

/* The run stopped on signal sig after saving its state, in epoch e after its step s (s 0:
 * at the epoch's end): the line says where, the event carries the run directory. */
static void report_interrupted(const Run *r, int sig, int e, int s) {
    const TrainConfig *c = r->c;
    char line[1400];
    if (s > 0)
        snprintf(line, sizeof line, "interrupted by %s after step %ld (epoch %d, step %d of %d); "
                 "the training state is saved in %s", signal_name(sig), r->p.step, e, s,
                 r->p.steps_per_epoch, r->state_path);
    else
        snprintf(line, sizeof line, "interrupted by %s after step %ld (end of epoch %d); the "
                 "training state is saved in %s", signal_name(sig), r->p.step, e, r->state_path);
    ProgressEvent ev = {.stage = "interrupted", .line = line, .path = c->out_dir};
    progress_event(&c->report, &ev);
}

/* The status line (redrawn) or log line of training after step s of epoch e: loss, speed and
 * the time left at this epoch's speed (el seconds for its images up to `done_imgs`). */
static void report_step(const Run *r, int e, int s, float loss, double done_imgs, double el) {
    const TrainConfig *c = r->c;
    const int spe = r->p.steps_per_epoch;
    double ips = done_imgs / el;
    double left_imgs = (double)r->n_train * (c->epochs - e) + (r->n_train - done_imgs);
    char eta[32], line[256];
    format_duration(eta, sizeof eta, left_imgs / ips);
    snprintf(line, sizeof line, "%sepoch %d/%d  step %d/%d  loss %.5f  %.1f img/s  left %s%s",
             c->progress ? "\r" : "", e, c->epochs, s + 1, spe, (double)loss, ips, eta,
             c->progress ? "   " : "\n");
    ProgressEvent ev = {.stage = "training", .done = r->p.step, .total = (long)spe * c->epochs,
                        .line = line};
    progress_event(&c->report, &ev);
}

int train_run(const TrainConfig *c) {
    Run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.saved_step = -1;
    int have_tr = 0, rc = -1;
    uint32_t *perm = NULL;
    float *batch = NULL;
    uint8_t *blabels = NULL;
    SavedSignals saved;
    signals_install(&saved);
    if (run_setup(&r, &have_tr) != 0) goto done;

    TrainProgress *p = &r.p;
    const int spe = p->steps_per_epoch;
    if (p->epoch > c->epochs) {
        progress_log(&c->report, "ddpm: the run in %s is already complete (%d epochs)\n", c->out_dir, c->epochs);
        rc = 0;
        goto done;
    }
    perm = xmalloc((size_t)r.n_train * sizeof(uint32_t));
    const size_t P = (size_t)r.tr.P;
    batch = xmalloc((size_t)c->batch * P * sizeof(float));
    blabels = xcalloc((size_t)c->batch, 1); /* all 0 for unlabelled images */
    /* per-epoch LR factor: lr_end = lr * gamma^epochs */
    double gamma = pow((double)c->lr_end / (double)c->lr, 1.0 / c->epochs);
    r.t_start = now_seconds();

    for (int e = p->epoch; e <= c->epochs; e++) {
        Trainer *tr = &r.tr;
        tr->lr = (float)((double)c->lr * pow(gamma, e - 1));
        /* The permutation comes from the generator as it was at the epoch's start, so a
         * resumed epoch visits the images in the same order. */
        Rng next_rng = p->data_rng;
        rng_permutation(&next_rng, perm, (uint32_t)r.n_train);
        double te = now_seconds() - p->epoch_seconds, last_print = 0;
        for (int s = p->epoch_step; s < spe; s++) {
            int b0 = s * c->batch, n = r.n_train - b0 < c->batch ? r.n_train - b0 : c->batch;
            for (int i = 0; i < n; i++) {
                uint32_t k = perm[b0 + i];
                memcpy(batch + (size_t)i * P, r.train_f + (size_t)k * P, P * sizeof(float));
                if (r.train.labels) blabels[i] = r.train.labels[k];
            }
            float loss;
            if (trainer_step_checked(tr, batch, blabels, n, &loss) != 0) {
                if (c->progress) progress_log(&c->report, "\n");
                run_fault(&r, p->step + 1, e, s + 1);
                goto done;
            }
            p->loss[p->step] = loss;
            p->lr[p->step] = tr->lr;
            p->step++;
            p->epoch = e;
            p->epoch_step = s + 1;
            double now = now_seconds();
            double el = now - te;
            if (now - last_print > (c->progress ? 0.5 : 30.0) || s == spe - 1) {
                last_print = now;
                report_step(&r, e, s, loss, (double)(b0 + n), el);
            }
            if (c->fault_stop_at == p->step) {
                raise(SIGSTOP);
                /* A signal sent while stopped may be handled by another thread a moment
                 * after this one runs on; give it that moment, so tests are exact. */
                const struct timespec tick = {0, 10000000};
                for (int i = 0; i < 100 && !atomic_load(&g_signal); i++) nanosleep(&tick, NULL);
            }
            int every = c->checkpoint_every > 0 && p->step % c->checkpoint_every == 0 && s + 1 < spe;
            int sig = run_agree_signal(tr);
            if (sig || every) {
                p->epoch_seconds = now_seconds() - te;
                if (run_save_state(&r) != 0) goto done;
                /* no process leaves before the state is on disk (the launcher ends the
                 * whole run when one exits) */
                if (sig) dist_barrier();
            }
            if (sig) {
                if (c->progress) progress_log(&c->report, "\n");
                report_interrupted(&r, sig, e, s + 1);
                rc = sig;
                goto done;
            }
        }
        double epoch_time = now_seconds() - te;
        if (c->progress) progress_log(&c->report, "\n");
        if (r.tr.rank == 0 && run_epoch_end(&r, e, epoch_time) != 0) goto done;
        dist_barrier(); /* the others wait for rank 0's evaluation and files, idle */
        p->epoch = e + 1;
        p->epoch_step = 0;
        p->epoch_seconds = 0;
        p->data_rng = next_rng;
        if (run_save_state(&r) != 0) goto done;
        int sig = run_agree_signal(&r.tr);
        if (sig && e < c->epochs) {
            report_interrupted(&r, sig, e, 0);
            rc = sig;
            goto done;
        }
    }
    progress_log(&c->report, "ddpm: done in %.0f s; results in %s\n", p->wall_seconds, c->out_dir);
    rc = 0;
done:
    signals_restore(&saved);
    xfree(perm);
    xfree(batch);
    xfree(blabels);
    run_free(&r, have_tr);
    return rc;
}
