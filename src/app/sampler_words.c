/* --sampler and its options to a SamplerChoice. */
#include "app/sampler_words.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"

int sampler_words_parse(SamplerChoice *out, const SamplerWords *w) {
    SamplerChoice c = {.kind = SAMPLER_DDPM, .steps = w->steps, .eta = 0.0f, .clip = w->clip != 0,
                       .spacing = DDIM_SPACING_UNIFORM};
    if (strcmp(w->name, "ddpm") == 0) {
        if (w->eta >= 0.0f) return err_set("--eta is for --sampler ddim");
        if (w->clip) return err_set("--clip is for --sampler ddim");
        if (w->spacing) return err_set("--spacing is for --sampler ddim");
        *out = c;
        return 0;
    }
    if (strcmp(w->name, "ddim") != 0)
        return err_set("--sampler: unknown sampler '%s' (expected ddpm or ddim)", w->name);
    c.kind = SAMPLER_DDIM;
    c.eta = w->eta < 0.0f ? 0.0f : w->eta;
    if (!(c.eta <= 1.0f)) return err_set("--eta %g: out of range (0..1)", (double)c.eta);
    if (w->spacing && strcmp(w->spacing, "quadratic") == 0) c.spacing = DDIM_SPACING_QUADRATIC;
    else if (w->spacing && strcmp(w->spacing, "trailing") == 0) c.spacing = DDIM_SPACING_TRAILING;
    else if (w->spacing && strcmp(w->spacing, "uniform") != 0)
        return err_set("--spacing: unknown spacing '%s' (expected uniform, quadratic or trailing)",
                       w->spacing);
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
