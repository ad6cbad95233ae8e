/* Linear and cosine noise schedules and the coefficients of the DDPM forward (noising) and
 * reverse (sampling) updates, computed in double; the updates themselves are operators of
 * ops.h (noising_forward, ddpm_step, ddim_step) run on the caller's backend. */
#include "diffusion/schedule.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

const char *schedule_kind_name(ScheduleKind k) { return k == SCHEDULE_COSINE ? "cosine" : "linear"; }

int schedule_kind_parse(const char *s, ScheduleKind *out) {
    if (strcmp(s, "linear") == 0) *out = SCHEDULE_LINEAR;
    else if (strcmp(s, "cosine") == 0) *out = SCHEDULE_COSINE;
    else return err_set("unknown noise schedule '%s' (expected linear or cosine)", s);
    return 0;
}

int schedule_check_T(int T) {
    if (T < 1 || T > SCHEDULE_MAX_T)
        return err_set("T = %d diffusion steps is out of range (1..%d)", T, SCHEDULE_MAX_T);
    return 0;
}

int schedule_init(Schedule *s, int T, float beta_start, float beta_end) {
    return schedule_init_kind(s, SCHEDULE_LINEAR, T, beta_start, beta_end);
}

/* Nichol & Dhariwal's f(u) = cos^2(((u / T) + s) / (1 + s) pi / 2); abar(u) = f(u) / f(0),
 * u = 0 the clean image. */
static double cosine_f(int u, int T) {
    const double off = 0.008;
    double c = cos(((double)u / T + off) / (1.0 + off) * 1.5707963267948966); /* pi / 2 */
    return c * c;
}

int schedule_init_kind(Schedule *s, ScheduleKind kind, int T, float beta_start, float beta_end) {
    s->beta = s->alpha = s->abar = NULL;
    if (schedule_check_T(T) != 0) return -1;
    if (!(beta_start > 0.0f && beta_end < 1.0f && beta_start <= beta_end))
        return err_set("beta range %g..%g impossible (need 0 < start <= end < 1)",
                       (double)beta_start, (double)beta_end);
    s->kind = kind;
    s->T = T;
    s->beta_start = beta_start;
    s->beta_end = beta_end;
    s->beta = xmalloc((size_t)T * sizeof(double));
    s->alpha = xmalloc((size_t)T * sizeof(double));
    s->abar = xmalloc((size_t)T * sizeof(double));
    double prod = 1.0;
    for (int t = 0; t < T; t++) {
        /* linspace as torch/numpy compute it: start + t * step, step = (end - start) / (T - 1) */
        double step = T > 1 ? ((double)beta_end - (double)beta_start) / (double)(T - 1) : 0.0;
        s->beta[t] = (double)beta_start + step * (double)t;
        if (kind == SCHEDULE_COSINE) {
            /* step t here is step t + 1 of the paper, whose step 0 is the clean image */
            double b = 1.0 - cosine_f(t + 1, T) / cosine_f(t, T);
            s->beta[t] = b < 0.999 ? b : 0.999;
        }
        s->alpha[t] = 1.0 - s->beta[t];
        prod *= s->alpha[t];
        s->abar[t] = prod;
    }
    return 0;
}

void schedule_free(Schedule *s) {
    xfree(s->beta);
    xfree(s->alpha);
    xfree(s->abar);
    s->beta = s->alpha = s->abar = NULL;
}

double schedule_abar(const Schedule *s, int t) {
    DDPM_CHECK(t >= -1 && t < s->T);
    return t < 0 ? 1.0 : s->abar[t];
}

void schedule_add_noise(const OpsCtx *ctx, const Schedule *s, float *xt, const float *x0,
                        const float *eps, int t, int count) {
    double ab = schedule_abar(s, t);
    float coef[2] = {(float)sqrt(ab), (float)sqrt(1.0 - ab)};
    float *dc = dev_alloc(ctx, sizeof coef);
    dev_upload(ctx, dc, coef, sizeof coef);
    noising_forward(ctx, xt, x0, eps, dc, dc + 1, 1, count);
    dev_free(ctx, dc, sizeof coef);
}

DdpmCoefs schedule_ddpm_coefs(const Schedule *s, int t) {
    DDPM_CHECK(t >= 0 && t < s->T);
    double ab = s->abar[t], ab_prev = schedule_abar(s, t - 1);
    double beta = s->beta[t], alpha = s->alpha[t];
    DdpmCoefs c;
    /* x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) */
    c.c_x0 = 1.0 / sqrt(ab);
    c.c_eps = sqrt(1.0 - ab) / sqrt(ab);
    /* posterior mean coefficients and noise scale */
    c.k0 = sqrt(ab_prev) * beta / (1.0 - ab);
    c.kt = sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab);
    c.sd = t > 0 ? sqrt(beta) : 0.0;
    return c;
}

void schedule_reverse_step(const OpsCtx *ctx, const Schedule *s, float *x_prev, const float *xt,
                           const float *eps, const float *z, int t, int count) {
    DdpmCoefs c = schedule_ddpm_coefs(s, t);
    ddpm_step(ctx, x_prev, xt, eps, t > 0 ? z : NULL, &c, (size_t)count);
}

DdimCoefs schedule_ddim_coefs(const Schedule *s, int t, int t_prev, float eta, int clip) {
    DDPM_CHECK(t >= 0 && t < s->T && t_prev >= -1 && t_prev < t);
    double ab = s->abar[t], ab_prev = schedule_abar(s, t_prev);
    DdimCoefs c;
    c.c_x0 = 1.0 / sqrt(ab);
    c.c_eps = sqrt(1.0 - ab) / sqrt(ab);
    c.sigma = (double)eta * sqrt((1.0 - ab_prev) / (1.0 - ab)) * sqrt(1.0 - ab / ab_prev);
    double dir2 = 1.0 - ab_prev - c.sigma * c.sigma;
    c.dir = dir2 > 0 ? sqrt(dir2) : 0.0;
    c.a_prev = sqrt(ab_prev);
    c.a_t = sqrt(ab);
    c.s_t = sqrt(1.0 - ab);
    c.clip = clip;
    return c;
}

void schedule_ddim_step(const OpsCtx *ctx, const Schedule *s, float *x_prev, const float *xt,
                        const float *eps, const float *z, int t, int t_prev, float eta, int clip,
                        int count) {
    DdimCoefs c = schedule_ddim_coefs(s, t, t_prev, eta, clip);
    ddim_step(ctx, x_prev, xt, eps, c.sigma > 0 ? z : NULL, &c, (size_t)count);
}

/* lambda_t = log(alpha_t / sigma_t), half the log signal-to-noise ratio */
static double log_snr_half(const Schedule *s, int t) {
    return 0.5 * (log(s->abar[t]) - log1p(-s->abar[t]));
}

void schedule_ddim_steps(const Schedule *s, int K, DdimSpacing spacing, int *steps) {
    DDPM_CHECK(K >= 1 && K <= s->T);
    if (K == 1) {
        steps[0] = s->T - 1;
        return;
    }
    if (spacing == DDIM_SPACING_TRAILING) {
        /* T / K >= 1 apart, so distinct and ending at T - 1 */
        for (int i = 0; i < K; i++) steps[i] = (int)floor((double)(i + 1) * s->T / K + 0.5) - 1;
        return;
    }
    if (spacing == DDIM_SPACING_LOGSNR) {
        /* lambda falls with t: sweep t up while the target falls */
        double l_first = log_snr_half(s, 0), l_last = log_snr_half(s, s->T - 1);
        int t = 0;
        for (int i = 0; i < K; i++) {
            double target = l_first + (l_last - l_first) * i / (K - 1);
            while (t + 1 < s->T && fabs(log_snr_half(s, t + 1) - target) <= fabs(log_snr_half(s, t) - target)) t++;
            steps[i] = t;
        }
    } else {
        for (int i = 0; i < K; i++) {
            double u = (double)i / (K - 1);
            if (spacing == DDIM_SPACING_QUADRATIC) u *= u;
            steps[i] = (int)floor(u * (s->T - 1) + 0.5);
        }
    }
    /* distinct: up from the front, then down from the back (both fit since K <= T) */
    for (int i = 1; i < K; i++)
        if (steps[i] <= steps[i - 1]) steps[i] = steps[i - 1] + 1;
    steps[K - 1] = s->T - 1;
    for (int i = K - 2; i >= 0; i--)
        if (steps[i] >= steps[i + 1]) steps[i] = steps[i + 1] - 1;
}
