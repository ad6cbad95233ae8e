/* The public API's drawing (include/ddpm.h): the sampler parameters and their checks,
 * sampling a time or class model, denoising with a denoiser. */
#include <math.h>
#include <string.h>

#include "api/handle.h"
#include "core/common.h"
#include "diffusion/sampler_words.h"

void ddpm_sample_params_init(ddpm_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->n = 1;
    p->guidance = 2.0f;
    p->sampler = "ddpm";
    p->seed = 1;
}

int api_request(SampleRequest *req, const ddpm_model *m, const ddpm_sample_params *p) {
    if (!m->has_sched)
        return err_set("%s is a denoiser; sampling needs a time or class model", m->name);
    const char *name = p->sampler ? p->sampler : "ddpm";
    if (p->steps < 0) return err_set("steps %d: must be 0 (the default) or more", p->steps);
    if (!(p->eta >= 0.0f && p->eta <= 1.0f))
        return err_set("eta %g: out of range (0..1)", (double)p->eta);
    /* the words' "not given" for eta is negative: only ddim takes one */
    const SamplerWords w = {.name = name, .steps = p->steps,
                            .eta = strcmp(name, "ddim") != 0 && p->eta == 0.0f ? -1.0f : p->eta,
                            .clip = p->clip, .spacing = p->spacing};
    SamplerChoice c;
    if (sampler_words_parse(&c, &w) != 0) return -1;
    return sampler_choose(req, &m->sched, &c);
}

int ddpm_sample_frames(const ddpm_model *m, const ddpm_sample_params *p) {
    SampleRequest req = {0};
    if (!m || !p) return err_set("ddpm_sample_frames: the model or the parameters are NULL");
    if (api_request(&req, m, p) != 0) return -1;
    return p->frame_every > 0 ? sampler_n_frames(sampler_steps(&m->sched, &req), p->frame_every) : 0;
}

int ddpm_sample_nfe(const ddpm_model *m, const ddpm_sample_params *p) {
    SampleRequest req = {0};
    if (!m || !p) return err_set("ddpm_sample_nfe: the model or the parameters are NULL");
    if (api_request(&req, m, p) != 0) return -1;
    return sampler_nfe(&m->sched, &req);
}

/* What sampler_draw would otherwise take on trust: the buffers, n, the labels for this kind
 * of model, the guidance and the frames. Returns 0, or -1 with err_msg(). */
static int sample_check(const ddpm_model *m, const ddpm_sample_params *p, const float *out) {
    if (!m || !p || !out) return err_set("ddpm_sample: the model, the parameters or out is NULL");
    if (m->net.kind == UNET_DENOISER)
        return err_set("%s is a denoiser; sampling needs a time or class model", m->name);
    if (p->n < 1) return err_set("ddpm_sample: n is %d; at least 1 image is drawn", p->n);
    const int cls = m->net.kind == UNET_CLASS, K = m->net.geom.classes;
    if (!cls && p->labels)
        return err_set("%s is a time model; labels need a class model (pass NULL)", m->name);
    if (cls && p->labels)
        for (int i = 0; i < p->n; i++)
            if (p->labels[i] < -1 || p->labels[i] >= K)
                return err_set("label %d of image %d: the classes are 0 to %d (-1: none)",
                               p->labels[i], i, K - 1);
    if (!isfinite(p->guidance)) return err_set("guidance %g is not a number", (double)p->guidance);
    const int guided = cls && p->guidance != 0.0f && p->guidance != 1.0f;
    if (guided && m->net.max_batch < 2)
        return err_set("guidance runs 2 images per sample in one batch: max_batch %d is too small",
                       m->net.max_batch);
    if (p->frame_every < 0) return err_set("frame_every %d: must be 0 (none) or more", p->frame_every);
    if (p->frame_every > 0 && !p->frames) return err_set("frame_every is %d but frames is NULL", p->frame_every);
    return 0;
}

ddpm_status ddpm_sample(ddpm_model *m, const ddpm_sample_params *p, float *out) {
    SampleRequest req = {0};
    if (sample_check(m, p, out) != 0 || api_request(&req, m, p) != 0) return DDPM_ERR_ARGUMENT;
    req.n = p->n;
    req.labels = m->net.kind == UNET_CLASS ? p->labels : NULL;
    req.guidance = p->guidance;
    req.frame_every = p->frame_every;
    req.frames = p->frames;
    req.progress = p->progress;
    req.progress_user = p->user;
    Rng rng;
    rng_seed(&rng, p->seed);
    if (sampler_draw(&m->net, &m->sched, &rng, &req, out) != 0) {
        err_set("%s: sampling cancelled by the progress callback", m->name);
        return DDPM_ERR_CANCELLED;
    }
    return DDPM_OK;
}

ddpm_status ddpm_denoise(ddpm_model *m, const float *in, int n, float *out) {
    if (!m || !in || !out) {
        err_set("ddpm_denoise: the model, in or out is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    if (m->net.kind != UNET_DENOISER) {
        err_set("%s is a %s model; denoising needs a denoiser (time and class models are sampled)",
                m->name, unet_kind_name(m->net.kind));
        return DDPM_ERR_ARGUMENT;
    }
    if (n < 1) {
        err_set("ddpm_denoise: n is %d; at least 1 image is denoised", n);
        return DDPM_ERR_ARGUMENT;
    }
    const OpsCtx *ctx = &m->net.ctx;
    const int B = m->net.max_batch;
    const size_t P = geometry_pixels(&m->net.geom), batch_bytes = (size_t)B * P * sizeof(float);
    float *x = dev_alloc(ctx, batch_bytes); /* (B, P) the chunk's noisy images */
    for (int s = 0; s < n; s += B) {
        const int c = n - s < B ? n - s : B;
        const size_t off = (size_t)s * P, bytes = (size_t)c * P * sizeof(float);
        dev_upload(ctx, x, in + off, bytes);
        const float *o = unet_forward(&m->net, x, NULL, NULL, c, UNET_EVAL);
        dev_download(ctx, out + off, o, bytes);
    }
    dev_free(ctx, x, batch_bytes);
    return DDPM_OK;
}
