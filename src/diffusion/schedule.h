/* The DDPM noise schedule: the one place that knows T and the beta range.
 * Step indices are 0-based, t = 0..T-1, and abar(-1) = 1 by definition. */
#ifndef DDPM_SCHEDULE_H
#define DDPM_SCHEDULE_H

#include "ops/ops.h"

/* linear: betas linspace(beta_start, beta_end, T) as in the SPEC; cosine: Nichol & Dhariwal
 * (2021), abar following cos^2 of the position in the schedule, offset s = 0.008, betas
 * clipped at 0.999 (the beta range is not used). */
typedef enum { SCHEDULE_LINEAR = 0, SCHEDULE_COSINE = 1 } ScheduleKind;

const char *schedule_kind_name(ScheduleKind k);
int schedule_kind_parse(const char *s, ScheduleKind *out); /* 0, or -1 with err_msg() */

typedef struct {
    ScheduleKind kind;
    int T;
    float beta_start, beta_end;
    double *beta;  /* (T) linspace(beta_start, beta_end, T) */
    double *alpha; /* (T) 1 - beta */
    double *abar;  /* (T) cumulative product of alpha */
} Schedule;

#define SCHEDULE_DEFAULT_T 300
#define SCHEDULE_DEFAULT_BETA_START 1e-4f
#define SCHEDULE_DEFAULT_BETA_END 0.02f
/* The largest number of diffusion steps T a schedule takes (the smallest is 1). */
#define SCHEDULE_MAX_T 100000

/* The one rule for T: 1..SCHEDULE_MAX_T. Returns 0, or -1 with err_msg() naming T. */
int schedule_check_T(int T);

/* Returns 0, or -1 with err_msg() for an impossible T or beta range. schedule_init is the
 * linear schedule. */
int schedule_init(Schedule *s, int T, float beta_start, float beta_end);
int schedule_init_kind(Schedule *s, ScheduleKind kind, int T, float beta_start, float beta_end);
void schedule_free(Schedule *s);
/* abar(t) with abar(-1) = 1. */
double schedule_abar(const Schedule *s, int t);

/* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for one image of count pixels in ctx's memory
 * (noising_forward with the two coefficients as floats; training batches its images itself). */
void schedule_add_noise(const OpsCtx *ctx, const Schedule *s, float *xt, const float *x0,
                        const float *eps, int t, int count);

/* The coefficients of ddpm_step (ops.h) for step t: c_x0 = 1 / sqrt(abar_t), c_eps =
 * sqrt(1 - abar_t) / sqrt(abar_t), the posterior mean's k0 = sqrt(abar_{t-1}) beta_t /
 * (1 - abar_t) and kt = sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t), sd = sqrt(beta_t)
 * (0 at t = 0). */
DdpmCoefs schedule_ddpm_coefs(const Schedule *s, int t);
/* One reverse step of the SPEC: from x_t and the predicted noise eps, with fresh noise z
 * (ignored at t = 0), write x_{t-1}. Count pixels in ctx's memory. x_prev may alias xt. */
void schedule_reverse_step(const OpsCtx *ctx, const Schedule *s, float *x_prev, const float *xt,
                           const float *eps, const float *z, int t, int count);

/* One DDIM step (Song et al. 2021, eq. 12) from step t to an earlier step t_prev (-1: the
 * clean image): x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), then
 *   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
 *   sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).
 * eta 0 is deterministic (z ignored); eta 1 with t_prev = t - 1 has the DDPM posterior's
 * variance. clip: x0_hat is clipped to the data range [0, 1] first and eps recomputed from
 * it, eps = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t), so that the step stays
 * consistent (what diffusers' DDIM does by default); it keeps the first steps of a schedule
 * whose abar_t is about 0 at T - 1 (cosine) from amplifying eps's error by 1 / sqrt(abar_t).
 * x_prev may alias xt; count pixels in ctx's memory. schedule_ddim_coefs gives ddim_step's
 * coefficients (ops.h) for the step; z is used where sigma > 0. */
DdimCoefs schedule_ddim_coefs(const Schedule *s, int t, int t_prev, float eta, int clip);
void schedule_ddim_step(const OpsCtx *ctx, const Schedule *s, float *x_prev, const float *xt,
                        const float *eps, const float *z, int t, int t_prev, float eta, int clip,
                        int count);

/* How a DDIM sampler spreads its K steps over 0..T-1. */
typedef enum {
    DDIM_SPACING_UNIFORM = 0, /* steps[i] = round(i (T - 1) / (K - 1)) */
    DDIM_SPACING_QUADRATIC,   /* steps[i] = round((i / (K - 1))^2 (T - 1)): denser near t = 0,
                               * as the DDIM paper spaces its CIFAR-10 steps */
    DDIM_SPACING_TRAILING,    /* steps[i] = round((i + 1) T / K) - 1: even steps of T / K that
                               * end at T - 1 and leave out t = 0 (the last step goes from
                               * about T / K - 1 straight to x0), diffusers' "trailing" */
    DDIM_SPACING_LOGSNR,      /* uniform in log-SNR (lambda = log(alpha / sigma)) from t = 0 to
                               * T - 1, each at the nearest timestep: DPM-Solver's spacing */
} DdimSpacing;

/* The K steps a DDIM sampler visits, ascending, ending at T-1 ({T - 1} for K = 1), spread by
 * `spacing` and (but for trailing spacing) starting at 0; where rounding makes two equal, the
 * later ones move up by one (and, near T - 1, the earlier ones down), so the K steps are
 * distinct. K <= T. */
void schedule_ddim_steps(const Schedule *s, int K, DdimSpacing spacing, int *steps);

#endif
