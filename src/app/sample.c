/* The sampling job: checkpoint -> the public API's handle and sampler (ddpm.h) -> PNG
 * grids, IDX, GIF. */
#include "app/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handle.h"
#include "app/files.h"
#include "core/common.h"
#include "core/pixel.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "diffusion/sampler_words.h"
#include "io/image.h"

/* The state of one job: the model with its schedule, the sampler, the labels and the images. */
typedef struct {
    const SampleJob *job;
    const Progress *p;
    ddpm_model *h;
    ddpm_sample_params base; /* the sampler chosen; each draw adds its own fields */
    SampleRequest req;       /* the same as the diffusion layer's request, for the reports */
    Dataset ds;
    int cls, n, cols, grid_per_digit, K, nf;
    int digit;               /* the one class drawn (job's digit or class name); -1: every one */
    size_t P;                /* floats per image: C H W of the model's geometry */
    int *labels;
    float *imgs, *frames;
} SampleRun;

void sample_job_defaults(SampleJob *j) {
    memset(j, 0, sizeof *j);
    j->n = 40;
    j->seed = 1;
    j->out = "samples.png";
    j->gif_every = 5;
    j->digit = -1;
    j->per_digit = 4;
    j->guidance = 5.0f;
    j->use_ema = 1;
    j->sampler = (SamplerChoice){.kind = SAMPLER_DDPM, .spacing = DDIM_SPACING_UNIFORM};
    j->threads = 2;
    j->batch = 128;
}

static int sampling_count(void *user, int done, int total) {
    progress_count(user, "sampling", done, total);
    return 0;
}

static int write_grid(const SampleRun *r, const char *path, int n, const char *title) {
    const ImageGeom *geom = &r->h->net.geom;
    int rows = (n + r->cols - 1) / r->cols;
    float *g = xcalloc((size_t)rows * r->cols * r->P, sizeof(float));
    memcpy(g, r->imgs, (size_t)n * r->P * sizeof(float));
    const char *names[GEOMETRY_MAX_CLASSES];
    for (int k = 0; k < geom->classes; k++) names[k] = geom->class_names[k];
    int rc = figure_grid_png_c(path, g, rows, r->cols, geom->channels, geom->height, geom->width,
                               title, r->grid_per_digit && r->labels ? names : NULL, NULL);
    xfree(g);
    return rc;
}

/* The class the job asks for: its name among the model's classes, else its index. */
static int resolve_class(SampleRun *r) {
    const SampleJob *j = r->job;
    const ImageGeom *g = &r->h->net.geom;
    r->digit = j->digit;
    if (j->class_name) {
        for (int k = 0; k < g->classes; k++)
            if (strcmp(g->class_names[k], j->class_name) == 0) r->digit = k;
        char *end;
        long v = strtol(j->class_name, &end, 10);
        if (r->digit < 0 && *j->class_name && !*end && v >= 0 && v < g->classes) r->digit = (int)v;
        if (r->digit < 0)
            return err_set("%s: no class %.40s among its %d (%s, ..., %s)", j->ckpt, j->class_name,
                           g->classes, g->class_names[0], g->class_names[g->classes - 1]);
    }
    if (r->digit >= g->classes)
        return err_set("%s: class %d does not exist: the model has %d classes", j->ckpt, r->digit,
                       g->classes);
    return 0;
}

/* The model, what it may draw, its schedule and the sampler. */
static int sample_setup(SampleRun *r) {
    const SampleJob *j = r->job;
    if (app_open_any_model(&r->h, j->ckpt, j->batch, j->threads, j->use_ema, j->device) != 0)
        return -1;
    r->cls = r->h->net.kind == UNET_CLASS;
    if (r->h->net.kind == UNET_DENOISER)
        return err_set("%s is a denoiser; sampling needs a time or class model", j->ckpt);
    if (!r->cls && (j->digit >= 0 || j->class_name || j->text || j->n_sweep))
        return err_set("one digit, a text and a guidance sweep need a class model; %s is a time "
                       "model", j->ckpt);
    r->ds = r->h->ds; /* and the schedule: the handle's, as the checkpoint was trained */
    r->P = geometry_pixels(&r->h->net.geom);
    if (r->cls && resolve_class(r) != 0) return -1;
    if (r->h->net.geom.channels != 1 && (j->gif || j->idx))
        return err_set("%s draws colour images: the GIF and the IDX file are written for grey "
                       "images only so far", j->ckpt);
    if (j->text && r->ds != DATASET_MNIST)
        return err_set("a text is written in digits; %s was trained on %s", j->ckpt,
                       dataset_name(r->ds));
    const SamplerChoice *c = &j->sampler;
    ddpm_sample_params_init(&r->base);
    r->base.sampler = sampler_words_kind(c->kind);
    r->base.steps = c->steps;
    r->base.eta = c->eta;
    r->base.clip = c->clip;
    r->base.spacing = c->kind == SAMPLER_DDPM ? NULL : sampler_words_spacing_kind(c->spacing);
    if (api_request(&r->req, r->h, &r->base) != 0) return -1;
    r->K = sampler_steps(&r->h->sched, &r->req);
    char desc[160];
    sampler_words_describe(&r->req, &r->h->sched, desc, sizeof desc);
    progress_log(r->p, "sampling: %s\n", desc);
    r->n = j->n;
    r->cols = 10;
    if (r->cls) {
        if (j->text) {
            r->n = (int)strlen(j->text);
            r->cols = r->n;
        } else if (r->digit < 0) {
            r->n = r->h->net.geom.classes * j->per_digit;
            r->cols = j->per_digit;
            r->grid_per_digit = 1;
        }
        r->labels = xmalloc((size_t)r->n * sizeof(int));
        for (int i = 0; i < r->n; i++)
            r->labels[i] = j->text ? j->text[i] - '0' : r->digit >= 0 ? r->digit : i / j->per_digit;
    }
    if (r->h->used_ema) { /* the command line says how to choose the raw weights */
        ProgressEvent ev = {.stage = "ema", .line = "sampling with the moving average of the weights"};
        progress_event(r->p, &ev);
    }
    return 0;
}

/* Draw k of the sweep (or the one draw) and write its PNG. */
static int sample_draw(SampleRun *r, int k) {
    const SampleJob *j = r->job;
    const int n = r->n;
    float g = j->n_sweep ? j->sweep[k] : j->guidance;
    ddpm_sample_params p = r->base;
    p.n = n;
    p.labels = r->labels;
    p.guidance = g;
    p.seed = j->seed;
    p.frame_every = j->gif && k == 0 ? j->gif_every : 0;
    p.frames = r->frames;
    p.progress = sampling_count;
    p.user = (void *)r->p;
    progress_count(r->p, "sampling", 0, 0);
    double t0 = now_seconds();
    if (ddpm_sample(r->h, &p, r->imgs) != DDPM_OK) return -1;
    double dt = now_seconds() - t0;
    progress_log(r->p, "%d samples in %.1f s (%.2f img/s, %d %s steps, %d NFE%s)\n", n, dt, n / dt,
                 r->K, sampler_title(&r->req), sampler_nfe(&r->h->sched, &r->req),
                 r->cls && g != 0.0f && g != 1.0f ? ", guided: 2 forward images per sample" : "");
    char path[1024], title[160];
    if (j->n_sweep) {
        char suf[32];
        snprintf(suf, sizeof suf, "-g%g", (double)g);
        app_path_suffixed(path, sizeof path, j->out, suf);
    } else {
        snprintf(path, sizeof path, "%s", j->out);
    }
    if (j->text) {
        /* one image of the number: digits side by side, no gaps */
        if (png_write_grid(path, r->imgs, n, 28, 28, n, 0, 4) != 0) return -1;
    } else {
        if (r->cls)
            snprintf(title, sizeof title, "Samples of %s %s, guidance %g", r->digit >= 0 ? "one" : "every",
                     r->ds == DATASET_MNIST ? "digit" : "class", (double)g);
        else if (r->req.ddim_steps)
            snprintf(title, sizeof title, "Samples from pure noise, %s %d steps",
                     sampler_title(&r->req), r->K);
        else
            snprintf(title, sizeof title, "Samples from pure noise, T=%d", r->K);
        if (write_grid(r, path, n, title) != 0) return -1;
    }
    progress_out(r->p, "wrote %s\n", path);
    return 0;
}

/* Each frame is the grid of (up to 100) samples at that point of the reverse process. */
static int write_gif(const SampleRun *r) {
    const int n = r->n, gn = n < 100 ? n : 100;
    const PixelGrid g = {.n = gn, .h = r->h->net.geom.height, .w = r->h->net.geom.width,
                         .cols = gn < r->cols ? gn : r->cols, .pad = 2, .scale = 1};
    if (gif_write_grid(r->job->gif, r->frames, (size_t)n * r->P, r->nf, &g, 6, 200) != 0) return -1;
    progress_out(r->p, "wrote %s (%d frames)\n", r->job->gif, r->nf);
    return 0;
}

int app_sample(const SampleJob *job, const Progress *p) {
    SampleRun r;
    memset(&r, 0, sizeof r);
    r.job = job;
    r.p = p;
    int rc = -1;
    if (job->text && (strlen(job->text) > APP_SAMPLE_MAX_TEXT ||
                      strspn(job->text, "0123456789") != strlen(job->text))) {
        err_set("the text to write must be at most %d digits 0-9", APP_SAMPLE_MAX_TEXT);
        goto done;
    }
    if (sample_setup(&r) != 0) goto done;
    r.imgs = xmalloc((size_t)r.n * r.P * sizeof(float));
    r.nf = job->gif ? sampler_n_frames(r.K, job->gif_every) : 0;
    if (job->gif) r.frames = xmalloc((size_t)r.nf * r.n * r.P * sizeof(float));
    int n_runs = job->n_sweep ? job->n_sweep : 1;
    for (int k = 0; k < n_runs; k++)
        if (sample_draw(&r, k) != 0) goto done;
    if (job->idx) {
        const ImageGeom *g = &r.h->net.geom;
        if (idx_write_images(job->idx, r.imgs, r.cls ? r.labels : NULL, r.n, g->height, g->width) != 0)
            goto done;
        progress_out(p, "wrote %s\n", job->idx);
        if (r.cls) {
            char *lp = idx_labels_path(job->idx);
            progress_out(p, "wrote %s\n", lp);
            xfree(lp);
        }
    }
    if (job->gif && write_gif(&r) != 0) goto done;
    rc = 0;
done:
    xfree(r.labels);
    xfree(r.imgs);
    xfree(r.frames);
    ddpm_close(r.h);
    return rc;
}
