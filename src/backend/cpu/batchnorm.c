/* BatchNorm2d on the CPU, training and evaluation mode, forward and backward, and the
 * synchronised training mode of data-parallel runs (ctx->sum_across). OpenMP splits the
 * channels; each channel's statistics are summed by one thread in double, in a fixed order,
 * so results do not even depend on the number of threads. */
#include <math.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gelu.h"
#include "core/common.h"

/* Sum of the hw values of plane p, in double (vectorised; the order is fixed at compile time). */
static double plane_sum(const float *p, int hw) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int q = 0; q < hw; q++) s += p[q];
    return s;
}

/* Sum of (p - mu)^2 over a plane, in double. */
static double plane_sqdev(const float *p, int hw, double mu) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int q = 0; q < hw; q++) {
        double d = (double)p[q] - mu;
        s += d * d;
    }
    return s;
}

/* y = x a + b over one plane: normalisation folded into one multiply-add per value, as
 * PyTorch's CPU kernel does (a = gamma rstd, b = beta - mean a). */
static void plane_affine(float *y, const float *x, int hw, float a, float b) {
#pragma omp simd
    for (int q = 0; q < hw; q++) y[q] = x[q] * a + b;
}

/* Training-mode statistics of channel ch: mean mu and r = 1 / sqrt(var + eps) of its N HW
 * values, and the running statistics updated with them. */
static void channel_stats(const float *x, float *running_mean, float *running_var, int n, int c,
                          int hw, int ch, float momentum, float eps, double *mu_out, double *r_out) {
    const double m = (double)n * (double)hw;
    double sum = 0.0, sq = 0.0;
    /* two passes (mean, then squared deviations) to avoid sum-of-squares cancellation */
    for (int i = 0; i < n; i++)
        sum += plane_sum(x + ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw, hw);
    double mu = sum / m;
    for (int i = 0; i < n; i++)
        sq += plane_sqdev(x + ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw, hw, mu);
    *mu_out = mu;
    *r_out = 1.0 / sqrt(sq / m + (double)eps);
    running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mu);
    running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * (sq / (m - 1.0)));
}

/* Per channel sums of dy and of dy (x - mu), in double. */
static void channel_sums(const float *dy, const float *x, double mu, int n, int c, int hw, int ch,
                         double *sdy, double *sdyx) {
    double s0 = 0.0, s1 = 0.0;
    for (int i = 0; i < n; i++) {
        size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
        const float *g = dy + off, *v = x + off;
        double p0 = 0.0, p1 = 0.0;
#pragma omp simd reduction(+ : p0, p1)
        for (int q = 0; q < hw; q++) {
            p0 += g[q];
            p1 += (double)g[q] * ((double)v[q] - mu);
        }
        s0 += p0;
        s1 += p1;
    }
    *sdy = s0;
    *sdyx = s1;
}

/* ---- Synchronised training mode (ctx->sum_across set: data-parallel training) -------------
 * What one process would compute on the union of every process's batch. The per-channel sums
 * go through sum_across between phases, each phase a parallel loop over the channels and each
 * call made by this one thread, the same calls in the same order on every process (a
 * collective). Scratch: 2C + 1 doubles on the stack. */

/* y = GELU(x a + b) over one plane (bn_gelu's forward). */
static void plane_affine_gelu(float *y, const float *x, int hw, float a, float b) {
#pragma omp simd
    for (int q = 0; q < hw; q++) y[q] = gelu_value(x[q] * a + b);
}

/* Forward of batchnorm2d (gelu 0) or bn_gelu (gelu 1) with the statistics of the whole batch:
 * local sums and value count summed across, then local squared deviations from the global
 * mean summed across; the running statistics get the global mean and unbiased variance. */
static void forward_train_across(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                 float *running_mean, float *running_var, const float *x,
                                 const float *gamma, const float *beta, int n, int c, int hw,
                                 float momentum, float eps, int gelu) {
    double v[2 * c + 1]; /* (C) sums, the value count, then (C) squared deviations */
    double *sq = v + c + 1;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += plane_sum(x + ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw, hw);
        v[ch] = sum;
    }
    v[c] = (double)n * (double)hw;
    ctx->sum_across(ctx->sum_arg, v, c + 1);
    const double m = v[c];
    DDPM_CHECK(m > 1); /* the unbiased variance needs two values over all the processes */
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu = v[ch] / m, s = 0.0;
        for (int i = 0; i < n; i++)
            s += plane_sqdev(x + ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw, hw, mu);
        sq[ch] = s;
    }
    ctx->sum_across(ctx->sum_arg, sq, c);
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu = v[ch] / m, r = 1.0 / sqrt(sq[ch] / m + (double)eps);
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mu);
        running_var[ch] =
            (float)((1.0 - momentum) * running_var[ch] + momentum * (sq[ch] / (m - 1.0)));
        float a = (float)(r * (double)gamma[ch]);
        float b = (float)((double)beta[ch] - mu * (double)a);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            if (gelu)
                plane_affine_gelu(y + off, x + off, hw, a, b);
            else
                plane_affine(y + off, x + off, hw, a, b);
        }
        mean[ch] = (float)mu;
        rstd[ch] = (float)r;
    }
}

/* dx = g A + x B + K over channel ch (g: dy, accumulating into dx; or dx itself, g == dx
 * overwritten), the coefficients of the BatchNorm gradient from the sums over m values. */
static void channel_dx(float *dx, const float *g, const float *x, double mu, double r,
                       float gamma, double sdy, double sdyx, double m, int n, int c, int hw,
                       int ch, int accumulate) {
    double gr = (double)gamma * r;
    double kx = -gr * sdyx * r * r / m; /* coefficient of (x - mu) */
    const float A = (float)gr, B = (float)kx, K = (float)(-gr * sdy / m - kx * mu);
    for (int i = 0; i < n; i++) {
        size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
        const float *gp = g + off, *v = x + off;
        float *d = dx + off;
        if (accumulate) {
#pragma omp simd
            for (int q = 0; q < hw; q++) d[q] += gp[q] * A + v[q] * B + K;
        } else {
#pragma omp simd
            for (int q = 0; q < hw; q++) d[q] = gp[q] * A + v[q] * B + K;
        }
    }
}

/* Backward of batchnorm2d: dgamma, dbeta accumulate the LOCAL sums (the trainer sums the
 * parameter gradients across processes afterwards); dx uses the sums over every process. */
static void backward_train_across(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                  const float *dy, const float *x, const float *mean,
                                  const float *rstd, const float *gamma, int n, int c, int hw) {
    double v[2 * c + 1]; /* (C) sums of dy, (C) sums of dy (x - mean), the value count */
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        channel_sums(dy, x, mean[ch], n, c, hw, ch, &v[ch], &v[c + ch]);
        if (dgamma) dgamma[ch] += (float)(v[c + ch] * (double)rstd[ch]);
        if (dbeta) dbeta[ch] += (float)v[ch];
    }
    v[2 * c] = (double)n * (double)hw;
    ctx->sum_across(ctx->sum_arg, v, 2 * c + 1);
    if (!dx) return;
    const double m = v[2 * c];
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_dx(dx, dy, x, mean[ch], rstd[ch], gamma[ch], v[ch], v[c + ch], m, n, c, hw, ch, 1);
}

/* Pass 1 of bn_gelu's backward for channel ch: the BatchNorm output recomputed from x and the
 * saved statistics (a = gamma rstd, b = beta - mean a), the gradient g at it through GELU
 * written to dx, and the sums of g and of g (x - mean) in double. */
static void gelu_grad_sums(float *dx, const float *dy, const float *x, const float *mean,
                           const float *rstd, const float *gamma, const float *beta, int n, int c,
                           int hw, int ch, double *sdy_out, double *sdyx_out) {
    const float a = gamma[ch] * rstd[ch], b = beta[ch] - mean[ch] * a;
    const double mu = mean[ch];
    double sdy = 0.0, sdyx = 0.0;
    for (int i = 0; i < n; i++) {
        size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
        const float *v = x + off, *d = dy + off;
        float *g = dx + off;
        double p0 = 0.0, p1 = 0.0;
#pragma omp simd reduction(+ : p0, p1)
        for (int q = 0; q < hw; q++) {
            float cdf, pdf, yv = v[q] * a + b;
            gaussian_cdf_pdf(yv, &cdf, &pdf);
            float gq = d[q] * (cdf + yv * pdf);
            g[q] = gq;
            p0 += gq;
            p1 += (double)gq * ((double)v[q] - mu);
        }
        sdy += p0;
        sdyx += p1;
    }
    *sdy_out = sdy;
    *sdyx_out = sdyx;
}

/* Backward of bn_gelu: pass 1 writes the gradient g at BatchNorm's output into dx and sums it
 * locally, the sums go across, pass 2 turns dx into the gradient at x. */
static void bn_gelu_backward_across(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *gamma, const float *beta,
                                    int n, int c, int hw) {
    double v[2 * c + 1]; /* (C) sums of g, (C) sums of g (x - mean), the value count */
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double sdy, sdyx;
        gelu_grad_sums(dx, dy, x, mean, rstd, gamma, beta, n, c, hw, ch, &sdy, &sdyx);
        v[ch] = sdy;
        v[c + ch] = sdyx;
        if (dgamma) dgamma[ch] += (float)(sdyx * (double)rstd[ch]);
        if (dbeta) dbeta[ch] += (float)sdy;
    }
    v[2 * c] = (double)n * (double)hw;
    ctx->sum_across(ctx->sum_arg, v, 2 * c + 1);
    const double m = v[2 * c];
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++)
        channel_dx(dx, dx, x, mean[ch], rstd[ch], gamma[ch], v[ch], v[c + ch], m, n, c, hw, ch, 0);
}

void cpu_batchnorm2d_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                   float *running_mean, float *running_var, const float *x,
                                   const float *gamma, const float *beta, int n, int c, int hw,
                                   float momentum, float eps) {
    if (ctx->sum_across) {
        forward_train_across(ctx, y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c,
                             hw, momentum, eps, 0);
        return;
    }
    DDPM_CHECK((double)n * (double)hw > 1); /* the unbiased variance needs two values, as in PyTorch */
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu, r;
        channel_stats(x, running_mean, running_var, n, c, hw, ch, momentum, eps, &mu, &r);
        float a = (float)(r * (double)gamma[ch]);
        float b = (float)((double)beta[ch] - mu * (double)a);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            plane_affine(y + off, x + off, hw, a, b);
        }
        mean[ch] = (float)mu;
        rstd[ch] = (float)r;
    }
}

void cpu_batchnorm2d_forward_eval(const OpsCtx *ctx, float *y, const float *x, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, int n, int c, int hw, float eps) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double r = 1.0 / sqrt((double)running_var[ch] + (double)eps);
        float a = (float)(r * (double)gamma[ch]);
        float b = (float)((double)beta[ch] - (double)running_mean[ch] * (double)a);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            plane_affine(y + off, x + off, hw, a, b);
        }
    }
}

/* With xhat = (x - mean) rstd and M = N HW values per channel:
 *   dbeta = sum dy, dgamma = sum dy xhat,
 *   dx = gamma rstd (dy - dbeta / M - xhat dgamma / M)
 * and the last line is folded into dx += dy a + x b + k per value. */
void cpu_batchnorm2d_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *gamma, int n, int c, int hw) {
    if (ctx->sum_across) {
        backward_train_across(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
        return;
    }
    const double m = (double)n * (double)hw;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu = mean[ch], r = rstd[ch], sdy, sdyx;
        channel_sums(dy, x, mu, n, c, hw, ch, &sdy, &sdyx);
        if (dgamma) dgamma[ch] += (float)(sdyx * r);
        if (dbeta) dbeta[ch] += (float)sdy;
        if (!dx) continue;
        double gr = (double)gamma[ch] * r;
        double kx = -gr * sdyx * r * r / m; /* coefficient of (x - mu) */
        float a = (float)gr, b = (float)kx, k = (float)(-gr * sdy / m - kx * mu);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            const float *g = dy + off, *v = x + off;
            float *d = dx + off;
#pragma omp simd
            for (int q = 0; q < hw; q++) d[q] += g[q] * a + v[q] * b + k;
        }
    }
}

void cpu_batchnorm2d_backward_eval(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                   const float *dy, const float *x, const float *running_mean,
                                   const float *running_var, const float *gamma, int n, int c,
                                   int hw, float eps) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double r = 1.0 / sqrt((double)running_var[ch] + (double)eps);
        if (dgamma || dbeta) {
            double sdy, sdyx;
            channel_sums(dy, x, running_mean[ch], n, c, hw, ch, &sdy, &sdyx);
            if (dgamma) dgamma[ch] += (float)(sdyx * r);
            if (dbeta) dbeta[ch] += (float)sdy;
        }
        if (!dx) continue;
        float a = (float)((double)gamma[ch] * r);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            const float *g = dy + off;
            float *d = dx + off;
#pragma omp simd
            for (int q = 0; q < hw; q++) d[q] += g[q] * a;
        }
    }
}

/* ---- BatchNorm then GELU, fused (training mode) ----------------------------------------------
 * The UNet's units are conv -> BatchNorm -> GELU. Computed one after the other, the pair reads
 * and writes every activation several times (BatchNorm's output, GELU's gradient, two zeroed
 * buffers); fused, the forward makes one pass after the statistics and the backward two. */

void cpu_bn_gelu_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float momentum, float eps) {
    if (ctx->sum_across) {
        forward_train_across(ctx, y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c,
                             hw, momentum, eps, 1);
        return;
    }
    DDPM_CHECK((double)n * (double)hw > 1);
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double mu, r;
        channel_stats(x, running_mean, running_var, n, c, hw, ch, momentum, eps, &mu, &r);
        const float a = (float)(r * (double)gamma[ch]);
        const float b = (float)((double)beta[ch] - mu * (double)a);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            const float *v = x + off;
            float *o = y + off;
#pragma omp simd
            for (int q = 0; q < hw; q++) o[q] = gelu_value(v[q] * a + b);
        }
        mean[ch] = (float)mu;
        rstd[ch] = (float)r;
    }
}

/* Pass 1 per channel: the BatchNorm output recomputed from x and the saved statistics
 * (as bn_apply in the UNet: a = gamma rstd, b = beta - mean a), the gradient g at it through
 * GELU written to dx, and the sums of g and g (x - mean); pass 2: dx = g A + x B + K, the
 * coefficients of batchnorm2d_backward_train. */
void cpu_bn_gelu_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, const float *beta, int n,
                                int c, int hw) {
    if (ctx->sum_across) {
        bn_gelu_backward_across(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw);
        return;
    }
    const double m = (double)n * (double)hw;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const double mu = mean[ch], r = rstd[ch];
        double sdy, sdyx;
        gelu_grad_sums(dx, dy, x, mean, rstd, gamma, beta, n, c, hw, ch, &sdy, &sdyx);
        if (dgamma) dgamma[ch] += (float)(sdyx * r);
        if (dbeta) dbeta[ch] += (float)sdy;
        double gr = (double)gamma[ch] * r;
        double kx = -gr * sdyx * r * r / m;
        const float A = (float)gr, B = (float)kx, K = (float)(-gr * sdy / m - kx * mu);
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * (size_t)c + (size_t)ch) * (size_t)hw;
            const float *v = x + off;
            float *g = dx + off;
#pragma omp simd
            for (int q = 0; q < hw; q++) g[q] = g[q] * A + v[q] * B + K;
        }
    }
}
