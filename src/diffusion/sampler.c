/* The reverse process of the SPEC, chunked over the model's batch capacity. */
#include "diffusion/sampler.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"

int sampler_n_frames(int steps, int frame_every) {
    if (frame_every <= 0) return 0;
    /* frame 0: start noise; then after steps frame_every, 2 frame_every, ...; and the end */
    return 1 + (steps + frame_every - 1) / frame_every;
}

int sampler_steps(const Schedule *s, const SampleRequest *req) {
    return req->ddim_steps > 0 ? req->ddim_steps : s->T;
}

int sampler_nfe(const Schedule *s, const SampleRequest *req) { return sampler_steps(s, req); }

const char *sampler_title(const SampleRequest *req) {
    static const char *const solvers[] = {"DPM-Solver++(2M)", "DPM-Solver++(2M) SDE",
                                          "DPM-Solver++(3M)"};
    if (req->solver >= 1 && req->solver <= 3) return solvers[req->solver - 1];
    return req->ddim_steps > 0 ? "DDIM" : "DDPM";
}

static const char *spacing_words(DdimSpacing sp) {
    return sp == DDIM_SPACING_QUADRATIC ? ", quadratic spacing"
           : sp == DDIM_SPACING_TRAILING ? ", trailing spacing"
           : sp == DDIM_SPACING_LOGSNR   ? ", log-SNR spacing"
                                         : "";
}

int sampler_choose(SampleRequest *req, const Schedule *s, const SamplerChoice *c) {
    if (c->kind == SAMPLER_DDPM) {
        if (c->steps != 0 && c->steps != s->T)
            return err_set("the DDPM sampler takes all T = %d steps, not %d (DDIM takes fewer)",
                           s->T, c->steps);
        if (c->eta != 0.0f || c->clip || c->spacing != DDIM_SPACING_UNIFORM)
            return err_set("the noise per step (eta), clipping and spacing are DDIM's settings; "
                           "the DDPM sampler takes none");
        req->ddim_steps = 0;
        req->solver = 0;
        return 0;
    }
    const int solver = c->kind >= SAMPLER_DPMPP_2M && c->kind <= SAMPLER_DPMPP_3M;
    if (c->kind != SAMPLER_DDIM && !solver) return err_set("unknown sampler (%d)", (int)c->kind);
    const char *name = solver ? "solver" : "DDIM";
    int dflt = solver ? 20 : 50;
    int steps = c->steps == 0 ? (s->T < dflt ? s->T : dflt) : c->steps;
    if (steps < 1 || steps > s->T)
        return err_set("the number of %s steps must be 1 to T = %d, not %d", name, s->T, steps);
    if (solver && c->eta != 0.0f)
        return err_set("the noise per step (eta) is DDIM's; dpmpp2m-sde is the stochastic solver");
    if (!(c->eta >= 0.0f && c->eta <= 1.0f))
        return err_set("the DDIM noise per step (eta) must be 0 to 1, not %g", (double)c->eta);
    if (c->spacing != DDIM_SPACING_UNIFORM && c->spacing != DDIM_SPACING_QUADRATIC &&
        c->spacing != DDIM_SPACING_TRAILING && c->spacing != DDIM_SPACING_LOGSNR)
        return err_set("unknown %s spacing (%d)", name, (int)c->spacing);
    req->solver = solver ? 1 + (int)(c->kind - SAMPLER_DPMPP_2M) : 0;
    req->ddim_steps = steps;
    req->ddim_eta = c->eta;
    req->ddim_clip = c->clip != 0;
    req->ddim_spacing = c->spacing;
    return 0;
}

void sampler_describe(const SampleRequest *req, const Schedule *s, char *buf, size_t size) {
    if (!req->ddim_steps) {
        snprintf(buf, size, "DDPM, %d steps", s->T);
        return;
    }
    if (req->solver) {
        snprintf(buf, size, "%s, %d steps%s%s", sampler_title(req), req->ddim_steps,
                 req->ddim_clip ? ", x0 clipped" : "", spacing_words(req->ddim_spacing));
        return;
    }
    snprintf(buf, size, "DDIM, %d steps, eta %g%s%s", req->ddim_steps, (double)req->ddim_eta,
             req->ddim_clip ? ", x0 clipped" : "", spacing_words(req->ddim_spacing));
}

int sampler_draw(Unet *m, const Schedule *s, Rng *rng, const SampleRequest *req, float *out) {
    const int P = (int)geometry_pixels(&m->geom), NC = m->geom.classes, T = s->T;
    const int K = sampler_steps(s, req);
    /* Guidance needs the conditional and the unconditional prediction, one batch of 2 chunk
     * images; gamma 0 is the unconditional prediction alone and gamma 1 the conditional one,
     * so those take a single pass (half the work). */
    const int conditional = m->kind == UNET_CLASS && req->guidance != 0.0f;
    const int guided = conditional && req->guidance != 1.0f;
    /* the timesteps visited, latest first */
    int *ts = xmalloc((size_t)K * sizeof(int));
    if (req->ddim_steps > 0) {
        DDPM_CHECK(K <= T);
        int *asc = xmalloc((size_t)K * sizeof(int));
        schedule_ddim_steps(s, K, req->ddim_spacing, asc);
        for (int i = 0; i < K; i++) ts[i] = asc[K - 1 - i];
        xfree(asc);
    } else {
        for (int i = 0; i < K; i++) ts[i] = T - 1 - i;
    }
    const int chunk = guided ? m->max_batch / 2 : m->max_batch;
    DDPM_CHECK(chunk >= 1);
    const int nf = sampler_n_frames(K, req->frame_every);
    const size_t chunk_floats = (size_t)chunk * P, img_bytes = chunk_floats * sizeof(float);
    const size_t oh_floats = 2 * (size_t)chunk * NC;
    const OpsCtx *ctx = &m->ctx;
    /* the model's memory: current x_t (chunk, P), model input (2 chunk, P), eps, noise z,
     * times (2 chunk), one-hot labels (2 chunk, NC) */
    float *x = dev_alloc(ctx, img_bytes), *xin = dev_alloc(ctx, 2 * img_bytes);
    float *eps = dev_alloc(ctx, img_bytes), *z = dev_alloc(ctx, img_bytes);
    float *tn = dev_alloc(ctx, 2 * (size_t)chunk * sizeof(float));
    float *onehot = dev_alloc(ctx, oh_floats * sizeof(float));
    /* host staging: noise is drawn here, and times and labels are built here */
    float *h_noise = xmalloc(img_bytes), *h_tn = xmalloc(2 * (size_t)chunk * sizeof(float));
    float *h_onehot = xmalloc(oh_floats * sizeof(float));
    /* a solver's last three data predictions */
    SolverChain chain = {.kind = (SolverKind)(req->solver - 1), .K = K, .clip = req->ddim_clip,
                         .ts = ts};
    if (req->solver)
        for (int i = 0; i < 3; i++) chain.m[i] = dev_alloc(ctx, img_bytes);
    int total_steps = ((req->n + chunk - 1) / chunk) * K, done = 0, stopped = 0;

    for (int start = 0; start < req->n && !stopped; start += chunk) {
        int c = req->n - start < chunk ? req->n - start : chunk;
        int nb = guided ? 2 * c : c; /* batch through the network */
        const size_t cp = (size_t)c * P, cp_bytes = cp * sizeof(float);
        rng_fill_normal(rng, h_noise, cp);
        dev_upload(ctx, x, h_noise, cp_bytes);
        memset(h_onehot, 0, oh_floats * sizeof(float));
        if (conditional && req->labels)
            for (int i = 0; i < c; i++) {
                int l = req->labels[start + i];
                if (l >= 0 && l < NC)
                    h_onehot[(size_t)i * NC + l] = 1.0f;
            }
        dev_upload(ctx, onehot, h_onehot, oh_floats * sizeof(float));
        int fi = 0;
        if (nf) dev_download(ctx, req->frames + ((size_t)fi++ * req->n + start) * P, x, cp_bytes);
        for (int k = 0; k < K; k++) {
            const int t = ts[k], t_prev = k + 1 < K ? ts[k + 1] : -1;
            float tv = (float)t / (float)T;
            for (int i = 0; i < nb; i++) h_tn[i] = tv;
            dev_upload(ctx, tn, h_tn, (size_t)nb * sizeof(float));
            dev_copy(ctx, xin, x, cp);
            if (guided) dev_copy(ctx, xin + cp, x, cp);
            const float *o = unet_forward(m, xin, tn, onehot, nb, UNET_INFER);
            if (guided) /* first half conditional, second half unconditional (zero one-hot) */
                guidance_forward(ctx, eps, o, o + cp, req->guidance, cp);
            else
                dev_copy(ctx, eps, o, cp);
            if (req->solver) {
                chain.count = cp;
                if (solver_needs_noise(chain.kind, k, K)) {
                    rng_fill_normal(rng, h_noise, cp);
                    dev_upload(ctx, z, h_noise, cp_bytes);
                }
                solver_chain_step(ctx, s, &chain, k, x, eps, z);
            } else if (req->ddim_steps > 0) {
                /* fresh noise only where the step adds some, so eta 0 draws nothing */
                if (req->ddim_eta > 0 && t_prev >= 0) {
                    rng_fill_normal(rng, h_noise, cp);
                    dev_upload(ctx, z, h_noise, cp_bytes);
                }
                schedule_ddim_step(ctx, s, x, x, eps, z, t, t_prev, req->ddim_eta, req->ddim_clip,
                                   c * P);
            } else {
                if (t > 0) {
                    rng_fill_normal(rng, h_noise, cp);
                    dev_upload(ctx, z, h_noise, cp_bytes);
                }
                schedule_reverse_step(ctx, s, x, x, eps, z, t, c * P);
            }
            int steps_done = k + 1;
            if (nf && (steps_done % req->frame_every == 0 || steps_done == K))
                dev_download(ctx, req->frames + ((size_t)fi++ * req->n + start) * P, x, cp_bytes);
            done++;
            if (req->progress && req->progress(req->progress_user, done, total_steps) != 0) {
                stopped = 1;
                break;
            }
        }
        DDPM_CHECK(stopped || !nf || fi == nf);
        dev_download(ctx, out + (size_t)start * P, x, cp_bytes);
    }
    xfree(ts);
    if (req->solver)
        for (int i = 0; i < 3; i++) dev_free(ctx, chain.m[i], img_bytes);
    dev_free(ctx, x, img_bytes);
    dev_free(ctx, xin, 2 * img_bytes);
    dev_free(ctx, eps, img_bytes);
    dev_free(ctx, z, img_bytes);
    dev_free(ctx, tn, 2 * (size_t)chunk * sizeof(float));
    dev_free(ctx, onehot, oh_floats * sizeof(float));
    xfree(h_noise);
    xfree(h_tn);
    xfree(h_onehot);
    return stopped;
}
