/* Linear and cosine noise schedules and the DDPM forward (noising) and reverse (sampling)
 * updates, with the coefficients computed in double. */
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

void schedule_add_noise(const Schedule *s, float *xt, const float *x0, const float *eps, int t,
                        int count) {
    double ab = schedule_abar(s, t);
    float a = (float)sqrt(ab), b = (float)sqrt(1.0 - ab);
    for (int i = 0; i < count; i++) xt[i] = a * x0[i] + b * eps[i];
}

void schedule_reverse_step(const Schedule *s, float *x_prev, const float *xt, const float *eps,
                           const float *z, int t, int count) {
    DDPM_CHECK(t >= 0 && t < s->T);
    double ab = s->abar[t], ab_prev = schedule_abar(s, t - 1);
    double beta = s->beta[t], alpha = s->alpha[t];
    /* x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) */
    double c_x0 = 1.0 / sqrt(ab), c_eps = sqrt(1.0 - ab) / sqrt(ab);
    /* posterior mean coefficients and noise scale */
    double k0 = sqrt(ab_prev) * beta / (1.0 - ab);
    double kt = sqrt(alpha) * (1.0 - ab_prev) / (1.0 - ab);
    double sd = t > 0 ? sqrt(beta) : 0.0;
    for (int i = 0; i < count; i++) {
        double x0 = c_x0 * (double)xt[i] - c_eps * (double)eps[i];
        double v = k0 * x0 + kt * (double)xt[i];
        if (t > 0) v += sd * (double)z[i];
        x_prev[i] = (float)v;
    }
}

void schedule_ddim_step(const Schedule *s, float *x_prev, const float *xt, const float *eps,
                        const float *z, int t, int t_prev, float eta, int clip, int count) {
    DDPM_CHECK(t >= 0 && t < s->T && t_prev >= -1 && t_prev < t);
    double ab = s->abar[t], ab_prev = schedule_abar(s, t_prev);
    double c_x0 = 1.0 / sqrt(ab), c_eps = sqrt(1.0 - ab) / sqrt(ab);
    double sigma = (double)eta * sqrt((1.0 - ab_prev) / (1.0 - ab)) * sqrt(1.0 - ab / ab_prev);
    double dir2 = 1.0 - ab_prev - sigma * sigma;
    double dir = dir2 > 0 ? sqrt(dir2) : 0.0, a_prev = sqrt(ab_prev);
    const double a_t = sqrt(ab), s_t = sqrt(1.0 - ab);
    int noisy = sigma > 0;
    for (int i = 0; i < count; i++) {
        double x0 = c_x0 * (double)xt[i] - c_eps * (double)eps[i], e = eps[i];
        if (clip) {
            x0 = x0 < 0.0 ? 0.0 : x0 > 1.0 ? 1.0 : x0;
            e = ((double)xt[i] - a_t * x0) / s_t;
        }
        double v = a_prev * x0 + dir * e;
        if (noisy) v += sigma * (double)z[i];
        x_prev[i] = (float)v;
    }
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
    for (int i = 0; i < K; i++) {
        double u = (double)i / (K - 1);
        if (spacing == DDIM_SPACING_QUADRATIC) u *= u;
        steps[i] = (int)floor(u * (s->T - 1) + 0.5);
    }
    /* distinct: up from the front, then down from the back (both fit since K <= T) */
    for (int i = 1; i < K; i++)
        if (steps[i] <= steps[i - 1]) steps[i] = steps[i - 1] + 1;
    steps[K - 1] = s->T - 1;
    for (int i = K - 2; i >= 0; i--)
        if (steps[i] >= steps[i + 1]) steps[i] = steps[i + 1] - 1;
}
