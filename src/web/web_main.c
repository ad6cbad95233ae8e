/* The WebAssembly module's entry points (make web): build a UNet from the metadata of a
 * weights file, fill it tensor by tensor, and draw digits with a progress hook per reverse
 * step. The safetensors header is JSON and is parsed by the page's JavaScript (JSON.parse),
 * which hands over plain numbers and float32 tensors: no file, JSON or compression code is
 * compiled into the module. Docs: docs/WEB.md. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <emscripten/emscripten.h>

#include "core/common.h"
#include "core/rng.h"
#include "diffusion/sampler.h"
#include "diffusion/sampler_words.h"
#include "diffusion/schedule.h"
#include "model/fold.h"
#include "model/unet.h"

/* The page's hook after every reverse step: the frame of step `done` is in place. */
EM_JS(void, web_on_step, (int done, int total), { if (Module.onStep) Module.onStep(done, total); });

/* One model, its schedule and which of its tensors the file has filled. */
typedef struct {
    Unet net;
    Schedule sched;
    unsigned char *filled; /* (n_tensors) 1 once set */
} WebModel;

static int on_step(void *user, int done, int total) {
    (void)user;
    web_on_step(done, total);
    return 0;
}

EMSCRIPTEN_KEEPALIVE const char *web_error(void) { return err_msg(); }

/* A model of kind (0 denoiser, 1 time, 2 class), width D, time embedding width (0: scalar),
 * residual 0/1, attention mask, for C x H x H images with K classes, with activations for
 * max_batch images, and its noise schedule (kind 0 linear, 1 cosine; T; beta range).
 * NULL with web_error() on bad metadata. */
EMSCRIPTEN_KEEPALIVE WebModel *web_model_new(int kind, int width, int temb, int residual,
                                             int attention, int channels, int height, int classes,
                                             int max_batch, int sched_kind, int T, float beta_start,
                                             float beta_end) {
    UnetConfig c;
    memset(&c, 0, sizeof c);
    c.kind = (UnetKind)kind;
    c.width = width;
    c.opt = (UnetOptions){.temb = temb, .residual = residual, .attention = attention};
    c.geom = (ImageGeom){.channels = channels, .height = height, .width = height,
                         .classes = classes};
    if (classes < 0 || classes > GEOMETRY_MAX_CLASSES) {
        err_set("metadata: %d classes (0 to %d)", classes, GEOMETRY_MAX_CLASSES);
        return NULL;
    }
    for (int i = 0; i < classes; i++)
        snprintf(c.geom.class_names[i], GEOMETRY_NAME_LEN, "%d", i);
    WebModel *w = xcalloc(1, sizeof *w);
    if (sched_kind != SCHEDULE_LINEAR && sched_kind != SCHEDULE_COSINE) {
        err_set("metadata: unknown schedule kind %d", sched_kind);
        xfree(w);
        return NULL;
    }
    if (schedule_init_kind(&w->sched, (ScheduleKind)sched_kind, T, beta_start, beta_end) != 0) {
        xfree(w);
        return NULL;
    }
    Rng rng; /* the initial values are all overwritten by the file's */
    rng_seed(&rng, 0);
    if (unet_init(&w->net, &c, max_batch, 1, &rng) != 0) {
        schedule_free(&w->sched);
        xfree(w);
        return NULL;
    }
    w->filled = xcalloc((size_t)w->net.n_tensors, 1);
    return w;
}

EMSCRIPTEN_KEEPALIVE void web_model_free(WebModel *w) {
    if (!w) return;
    unet_free(&w->net);
    schedule_free(&w->sched);
    xfree(w->filled);
    xfree(w);
}

/* The model's tensor called name, or called so before attention was named by place
 * (unet_tensor_legacy_name); NULL when there is none. */
static const UnetTensor *find_tensor(const Unet *m, const char *name) {
    const UnetTensor *t = unet_find(m, name);
    char legacy[80];
    for (int i = 0; !t && i < m->n_tensors; i++)
        if (unet_tensor_legacy_name(m->tensors[i].name, legacy, sizeof legacy) == 0 &&
            strcmp(legacy, name) == 0)
            t = &m->tensors[i];
    return t;
}

/* The tensor called name from count float32 values. Returns 0, or -1 with web_error() for
 * an unknown name, a wrong size or a non-finite value. */
EMSCRIPTEN_KEEPALIVE int web_model_tensor(WebModel *w, const char *name, const float *data,
                                          int count) {
    const UnetTensor *t = find_tensor(&w->net, name);
    if (!t) return err_set("weights: tensor \"%s\" is not part of this model", name);
    if ((size_t)count != t->count)
        return err_set("weights: tensor \"%s\" has %d values, the model's has %zu", name, count,
                       t->count);
    for (int k = 0; k < count; k++)
        if (!isfinite(data[k]))
            return err_set("weights: tensor \"%s\" holds a non-finite value at index %d", name, k);
    dev_upload(&w->net.ctx, unet_tensor_data(&w->net, t), data, t->count * sizeof(float));
    w->filled[t - w->net.tensors] = 1;
    return 0;
}

/* Every tensor of the model filled? Inference weights with BatchNorm folded (ddpm export,
 * metadata ddpm.folded = 1: folded nonzero) hold no BatchNorm tensors: those are set to the
 * identity, as checkpoint_read_model does. Returns 0, or -1 with web_error() naming one
 * missing. */
EMSCRIPTEN_KEEPALIVE int web_model_ready(WebModel *w, int folded) {
    for (int i = 0; i < w->net.n_tensors; i++) {
        const UnetTensor *t = &w->net.tensors[i];
        if (w->filled[i] || !folded || !unet_is_bn_tensor(t)) {
            if (!w->filled[i]) return err_set("weights: tensor \"%s\" is missing", t->name);
            continue;
        }
        float *v = xmalloc(t->count * sizeof(float));
        unet_bn_identity(t, v);
        dev_upload(&w->net.ctx, unet_tensor_data(&w->net, t), v, t->count * sizeof(float));
        xfree(v);
        w->filled[i] = 1;
    }
    return 0;
}

/* Frames web_sample records for a sampler of `steps` steps: the noise and one per step. */
EMSCRIPTEN_KEEPALIVE int web_frames(int steps) { return sampler_n_frames(steps, 1); }

/* Draw n images (labels: n classes, -1 for none) at guidance gamma with a SamplerKind (the
 * page's: DPM-Solver++(2M) SDE, log-SNR spacing) over `steps` steps (T for DDPM), from
 * seed, into out (N, P) and frames (web_frames(steps), N, P), calling the page after every
 * step. n <= max_batch / 2, so that one chunk holds them all (the frames of a step are then
 * in place when the page hears of it). Returns 0, or -1 with web_error(). */
EMSCRIPTEN_KEEPALIVE int web_sample(WebModel *w, float *out, float *frames, const int *labels,
                                    int n, float guidance, int sampler, int steps,
                                    uint32_t seed) {
    if (n < 1 || 2 * n > w->net.max_batch)
        return err_set("%d images at once: 1 to %d", n, w->net.max_batch / 2);
    SampleRequest req = {.n = n, .labels = labels, .guidance = guidance, .frame_every = 1,
                         .frames = frames, .progress = on_step};
    /* the CLI's choice with its defaults (spacing: uniform for DDIM, log-SNR for the
     * solvers); DDPM takes no step count */
    if (sampler < SAMPLER_DDPM || sampler > SAMPLER_DPMPP_3M)
        return err_set("unknown sampler %d", sampler);
    const SamplerWords words = {.name = sampler_words_kind((SamplerKind)sampler),
                                .steps = sampler == SAMPLER_DDPM ? 0 : steps, .eta = -1.0f};
    if (sampler_words_choose(&req, &w->sched, &words) != 0) return -1;
    Rng rng;
    rng_seed(&rng, seed);
    sampler_draw(&w->net, &w->sched, &rng, &req, out);
    return 0;
}
