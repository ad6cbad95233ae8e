/* --sampler and its options to a SamplerChoice; a chosen sampler back to words. */
#include "diffusion/sampler_words.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"

static const struct {
    const char *word;
    SamplerKind kind;
} KINDS[] = {{"ddpm", SAMPLER_DDPM},
             {"ddim", SAMPLER_DDIM},
             {"dpmpp2m", SAMPLER_DPMPP_2M},
             {"dpmpp2m-sde", SAMPLER_DPMPP_2M_SDE},
             {"dpmpp3m", SAMPLER_DPMPP_3M}};
#define N_KINDS (int)(sizeof KINDS / sizeof KINDS[0])

static const char *const SPACINGS[] = {[DDIM_SPACING_UNIFORM] = "uniform",
                                       [DDIM_SPACING_QUADRATIC] = "quadratic",
                                       [DDIM_SPACING_TRAILING] = "trailing",
                                       [DDIM_SPACING_LOGSNR] = "logsnr"};
#define N_SPACINGS (int)(sizeof SPACINGS / sizeof SPACINGS[0])

#define FEW_STEP "ddim, dpmpp2m, dpmpp2m-sde and dpmpp3m"

int sampler_words_parse(SamplerChoice *out, const SamplerWords *w) {
    int k = 0;
    while (k < N_KINDS && strcmp(w->name, KINDS[k].word) != 0) k++;
    if (k == N_KINDS)
        return err_set("--sampler: unknown sampler '%s' (expected " SAMPLER_WORDS_LIST ")", w->name);
    const SamplerKind kind = KINDS[k].kind;
    SamplerChoice c = {.kind = kind, .steps = w->steps, .eta = 0.0f, .clip = w->clip != 0,
                       .spacing = DDIM_SPACING_UNIFORM};
    if (kind == SAMPLER_DDPM) {
        if (w->eta >= 0.0f) return err_set("--eta is for --sampler ddim");
        if (w->clip) return err_set("--clip is for --sampler " FEW_STEP);
        if (w->spacing) return err_set("--spacing is for --sampler " FEW_STEP);
        *out = c;
        return 0;
    }
    if (kind != SAMPLER_DDIM && w->eta >= 0.0f)
        return err_set("--eta is for --sampler ddim; dpmpp2m-sde is the stochastic DPM-Solver++");
    c.eta = w->eta < 0.0f ? 0.0f : w->eta;
    if (!(c.eta <= 1.0f)) return err_set("--eta %g: out of range (0..1)", (double)c.eta);
    /* the DPM-Solver papers space the steps uniformly in log-SNR; DDIM's default stays */
    c.spacing = kind == SAMPLER_DDIM ? DDIM_SPACING_UNIFORM : DDIM_SPACING_LOGSNR;
    if (w->spacing) {
        int i = 0;
        while (i < N_SPACINGS && strcmp(w->spacing, SPACINGS[i]) != 0) i++;
        if (i == N_SPACINGS)
            return err_set("--spacing: unknown spacing '%s' (expected " SAMPLER_WORDS_SPACINGS ")",
                           w->spacing);
        c.spacing = (DdimSpacing)i;
    }
    *out = c;
    return 0;
}

int sampler_words_choose(SampleRequest *req, const Schedule *s, const SamplerWords *w) {
    SamplerChoice c;
    if (sampler_words_parse(&c, w) != 0) return -1;
    if (sampler_choose(req, s, &c) != 0) {
        char why[512];
        snprintf(why, sizeof why, "%s", err_msg());
        return err_set("--steps %d: %s", c.steps, why);
    }
    return 0;
}

const char *sampler_words_kind(SamplerKind kind) {
    for (int k = 0; k < N_KINDS; k++)
        if (KINDS[k].kind == kind) return KINDS[k].word;
    return "?";
}

const char *sampler_words_name(const SampleRequest *req) {
    return sampler_words_kind(req->solver ? (SamplerKind)(SAMPLER_DPMPP_2M + req->solver - 1)
                              : req->ddim_steps > 0 ? SAMPLER_DDIM
                                                    : SAMPLER_DDPM);
}

const char *sampler_words_spacing_kind(DdimSpacing spacing) {
    int i = (int)spacing;
    return i >= 0 && i < N_SPACINGS ? SPACINGS[i] : "?";
}

const char *sampler_words_spacing(const SampleRequest *req) {
    return req->ddim_steps ? sampler_words_spacing_kind(req->ddim_spacing) : NULL;
}

void sampler_words_describe(const SampleRequest *req, const Schedule *s, char *buf, size_t size) {
    char d[160];
    sampler_describe(req, s, d, sizeof d);
    /* sampler_describe always says "<K> steps"; the passes go right after it */
    const char *at = strstr(d, " steps");
    int head = at ? (int)(at - d) + 6 : (int)strlen(d);
    snprintf(buf, size, "%.*s (%d NFE)%s", head, d, sampler_nfe(s, req), d + head);
}
