/* Reference operators: the definitions of ops.h written as the plainest loops, accumulating
 * in double, single threaded. Convolutions are written the way PyTorch documents them
 * (ConvTranspose2d as each input pixel scattering a weighted kernel), independently of the
 * im2col formulation of the fast path, so that agreement between the two means something. */
#include "backend/ref/ref.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

/* Adds a double accumulator into a float gradient, then frees it. */
static void add_and_free(float *dst, double *acc, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] += (float)acc[i];
    xfree(acc);
}

/* ---- conv2d: y[n,o,oy,ox] = b[o] + sum_{i,ky,kx} w[o,i,ky,kx] x[n,i,oy s-p+ky, ox s-p+kx] ---- */

void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                        const ConvShape *s) {
    const int K = s->k;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int oy = 0; oy < s->ho; oy++)
                for (int ox = 0; ox < s->wo; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int i = 0; i < s->ci; i++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                acc += (double)w[((o * s->ci + i) * K + ky) * K + kx] *
                                       x[((size_t)(n * s->ci + i) * s->h + iy) * s->w + ix];
                            }
                    y[((size_t)(n * s->co + o) * s->ho + oy) * s->wo + ox] = (float)acc;
                }
}

void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, const ConvShape *s) {
    const int K = s->k;
    size_t nx = (size_t)s->n * s->ci * s->h * s->w, nw = (size_t)s->co * s->ci * K * K;
    double *ax = xcalloc(nx, sizeof(double)); /* (N,Ci,H,W) */
    double *aw = xcalloc(nw, sizeof(double)); /* (Co,Ci,K,K) */
    double *ab = xcalloc((size_t)s->co, sizeof(double));
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int oy = 0; oy < s->ho; oy++)
                for (int ox = 0; ox < s->wo; ox++) {
                    double g = dy[((size_t)(n * s->co + o) * s->ho + oy) * s->wo + ox];
                    ab[o] += g;
                    for (int i = 0; i < s->ci; i++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                                size_t xi = ((size_t)(n * s->ci + i) * s->h + iy) * s->w + ix;
                                size_t wi = ((size_t)(o * s->ci + i) * K + ky) * K + kx;
                                ax[xi] += g * w[wi];
                                aw[wi] += g * x[xi];
                            }
                }
    if (dx)
        add_and_free(dx, ax, nx);
    else
        xfree(ax);
    if (dw)
        add_and_free(dw, aw, nw);
    else
        xfree(aw);
    if (db)
        add_and_free(db, ab, (size_t)s->co);
    else
        xfree(ab);
}

/* ---- conv_transpose2d: every input pixel x[n,i,iy,ix] adds x * w[i,o,:,:] to the output
 * window whose corner is (iy s - p, ix s - p); y starts at the bias. ---- */

void conv_transpose2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                                  const ConvShape *s) {
    const int K = s->k;
    size_t ny = (size_t)s->n * s->co * s->ho * s->wo;
    double *acc = xcalloc(ny, sizeof(double)); /* (N,Co,Ho,Wo) */
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < s->ci; i++)
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    double v = x[((size_t)(n * s->ci + i) * s->h + iy) * s->w + ix];
                    for (int o = 0; o < s->co; o++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int oy = iy * s->stride - s->pad + ky;
                                int ox = ix * s->stride - s->pad + kx;
                                if (oy < 0 || oy >= s->ho || ox < 0 || ox >= s->wo) continue;
                                acc[((size_t)(n * s->co + o) * s->ho + oy) * s->wo + ox] +=
                                    v * w[((i * s->co + o) * K + ky) * K + kx];
                            }
                }
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int q = 0; q < s->ho * s->wo; q++) {
                size_t yi = (size_t)(n * s->co + o) * s->ho * s->wo + q;
                y[yi] = (float)(acc[yi] + (b ? b[o] : 0.0));
            }
    xfree(acc);
}

void conv_transpose2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                                   const float *w, const ConvShape *s) {
    const int K = s->k;
    size_t nx = (size_t)s->n * s->ci * s->h * s->w, nw = (size_t)s->ci * s->co * K * K;
    double *ax = xcalloc(nx, sizeof(double)); /* (N,Ci,H,W) */
    double *aw = xcalloc(nw, sizeof(double)); /* (Ci,Co,K,K) */
    double *ab = xcalloc((size_t)s->co, sizeof(double));
    for (int n = 0; n < s->n; n++)
        for (int i = 0; i < s->ci; i++)
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    size_t xi = ((size_t)(n * s->ci + i) * s->h + iy) * s->w + ix;
                    for (int o = 0; o < s->co; o++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                int oy = iy * s->stride - s->pad + ky;
                                int ox = ix * s->stride - s->pad + kx;
                                if (oy < 0 || oy >= s->ho || ox < 0 || ox >= s->wo) continue;
                                double g = dy[((size_t)(n * s->co + o) * s->ho + oy) * s->wo + ox];
                                size_t wi = ((size_t)(i * s->co + o) * K + ky) * K + kx;
                                ax[xi] += g * w[wi];
                                aw[wi] += g * x[xi];
                            }
                }
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->co; o++)
            for (int q = 0; q < s->ho * s->wo; q++)
                ab[o] += dy[(size_t)(n * s->co + o) * s->ho * s->wo + q];
    if (dx)
        add_and_free(dx, ax, nx);
    else
        xfree(ax);
    if (dw)
        add_and_free(dw, aw, nw);
    else
        xfree(aw);
    if (db)
        add_and_free(db, ab, (size_t)s->co);
    else
        xfree(ab);
}

/* ---- batchnorm2d ---- */

/* In phases over the channels so that, with sum_across set, the sums (and the value count)
 * go across the processes between them: sums, then squared deviations from the mean. */
void batchnorm2d_forward_train_sync_ref(float *y, float *mean, float *rstd, float *running_mean,
                                        float *running_var, const float *x, const float *gamma,
                                        const float *beta, int n, int c, int hw, float momentum,
                                        float eps, void (*sum_across)(void *, double *, int),
                                        void *sum_arg) {
    double v[2 * c + 1]; /* (C) sums, the value count, then (C) squared deviations */
    double *sqs = v + c + 1;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) sum += x[((size_t)i * c + ch) * hw + q];
        v[ch] = sum;
    }
    v[c] = (double)n * hw;
    if (sum_across) sum_across(sum_arg, v, c + 1);
    const double m = v[c];
    DDPM_CHECK(m > 1);
    for (int ch = 0; ch < c; ch++) {
        double mu = v[ch] / m, sq = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                double d = x[((size_t)i * c + ch) * hw + q] - mu;
                sq += d * d;
            }
        sqs[ch] = sq;
    }
    if (sum_across) sum_across(sum_arg, sqs, c);
    for (int ch = 0; ch < c; ch++) {
        double mu = v[ch] / m, sq = sqs[ch];
        double var = sq / m; /* biased: used for normalising */
        double r = 1.0 / sqrt(var + eps);
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                y[e] = (float)((x[e] - mu) * r * gamma[ch] + beta[ch]);
            }
        mean[ch] = (float)mu;
        rstd[ch] = (float)r;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mu);
        running_var[ch] =
            (float)((1.0 - momentum) * running_var[ch] + momentum * (sq / (m - 1))); /* unbiased */
    }
}

void batchnorm2d_forward_train_ref(float *y, float *mean, float *rstd, float *running_mean,
                                   float *running_var, const float *x, const float *gamma,
                                   const float *beta, int n, int c, int hw, float momentum,
                                   float eps) {
    batchnorm2d_forward_train_sync_ref(y, mean, rstd, running_mean, running_var, x, gamma, beta, n,
                                       c, hw, momentum, eps, NULL, NULL);
}

void batchnorm2d_forward_eval_ref(float *y, const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var, int n, int c,
                                  int hw, float eps) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            double r = 1.0 / sqrt((double)running_var[ch] + eps);
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                y[e] = (float)((x[e] - (double)running_mean[ch]) * r * gamma[ch] + beta[ch]);
            }
        }
}

/* With xhat = (x - mean) rstd and M = N HW values per channel:
 * dbeta = sum dy, dgamma = sum dy xhat, dx = gamma rstd (dy - dbeta/M - xhat dgamma/M).
 * With sum_across set, dgamma and dbeta take the local sums and dx the sums (and M) over
 * every process. */
void batchnorm2d_backward_train_sync_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *mean, const float *rstd,
                                         const float *gamma, int n, int c, int hw,
                                         void (*sum_across)(void *, double *, int),
                                         void *sum_arg) {
    double v[2 * c + 1]; /* (C) sums of dy, (C) sums of dy xhat, the value count */
    for (int ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                sdy += dy[e];
                sdyx += dy[e] * ((x[e] - (double)mean[ch]) * rstd[ch]);
            }
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        v[ch] = sdy;
        v[c + ch] = sdyx;
    }
    v[2 * c] = (double)n * hw;
    if (sum_across) sum_across(sum_arg, v, 2 * c + 1);
    if (!dx) return;
    const double m = v[2 * c];
    for (int ch = 0; ch < c; ch++) {
        double sdy = v[ch], sdyx = v[c + ch];
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                double xhat = (x[e] - (double)mean[ch]) * rstd[ch];
                dx[e] +=
                    (float)((double)gamma[ch] * rstd[ch] * (dy[e] - sdy / m - xhat * sdyx / m));
            }
    }
}

void batchnorm2d_backward_train_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                    const float *x, const float *mean, const float *rstd,
                                    const float *gamma, int n, int c, int hw) {
    batchnorm2d_backward_train_sync_ref(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw, NULL,
                                        NULL);
}

void batchnorm2d_backward_eval_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                   const float *x, const float *running_mean,
                                   const float *running_var, const float *gamma, int n, int c,
                                   int hw, float eps) {
    for (int ch = 0; ch < c; ch++) {
        double r = 1.0 / sqrt((double)running_var[ch] + eps), sdy = 0, sdyx = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                sdy += dy[e];
                sdyx += dy[e] * ((x[e] - (double)running_mean[ch]) * r);
                if (dx) dx[e] += (float)(dy[e] * (double)gamma[ch] * r);
            }
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
    }
}

/* ---- GELU: y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, dy/dx = Phi(x) + x phi(x) ---- */

void gelu_forward_ref(float *y, const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        double v = x[i];
        y[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    }
}

void gelu_backward_ref(float *dx, const float *dy, const float *x, int64_t count) {
    const double inv_sqrt_2pi = 0.39894228040143267794;
    for (int64_t i = 0; i < count; i++) {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf(v / sqrt(2.0)));
        double pdf = inv_sqrt_2pi * exp(-0.5 * v * v);
        dx[i] += (float)(dy[i] * (cdf + v * pdf));
    }
}

/* ---- pooling, concatenation ---- */

void avgpool_forward_ref(float *y, const float *x, int nc, int hw) {
    for (int r = 0; r < nc; r++) {
        double s = 0;
        for (int q = 0; q < hw; q++) s += x[(size_t)r * hw + q];
        y[r] = (float)(s / hw);
    }
}

void avgpool_backward_ref(float *dx, const float *dy, int nc, int hw) {
    for (int r = 0; r < nc; r++)
        for (int q = 0; q < hw; q++) dx[(size_t)r * hw + q] += (float)((double)dy[r] / hw);
}

void concat_forward_ref(float *y, const float *a, const float *b, int n, int ca, int cb, int hw) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < ca + cb; ch++)
            for (int q = 0; q < hw; q++)
                y[((size_t)i * (ca + cb) + ch) * hw + q] =
                    ch < ca ? a[((size_t)i * ca + ch) * hw + q]
                            : b[((size_t)i * cb + (ch - ca)) * hw + q];
}

void concat_backward_ref(float *da, float *db, const float *dy, int n, int ca, int cb, int hw) {
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < ca + cb; ch++)
            for (int q = 0; q < hw; q++) {
                float g = dy[((size_t)i * (ca + cb) + ch) * hw + q];
                if (ch < ca) {
                    if (da) da[((size_t)i * ca + ch) * hw + q] += g;
                } else if (db) {
                    db[((size_t)i * cb + (ch - ca)) * hw + q] += g;
                }
            }
}

/* ---- linear: y[n,o] = b[o] + sum_i x[n,i] w[o,i] ---- */

void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int n, int fi,
                        int fo) {
    for (int r = 0; r < n; r++)
        for (int o = 0; o < fo; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < fi; i++)
                acc += (double)x[(size_t)r * fi + i] * w[(size_t)o * fi + i];
            y[(size_t)r * fo + o] = (float)acc;
        }
}

void linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, int n, int fi, int fo) {
    if (dx)
        for (int r = 0; r < n; r++)
            for (int i = 0; i < fi; i++) {
                double acc = 0;
                for (int o = 0; o < fo; o++)
                    acc += (double)dy[(size_t)r * fo + o] * w[(size_t)o * fi + i];
                dx[(size_t)r * fi + i] += (float)acc;
            }
    if (dw)
        for (int o = 0; o < fo; o++)
            for (int i = 0; i < fi; i++) {
                double acc = 0;
                for (int r = 0; r < n; r++)
                    acc += (double)dy[(size_t)r * fo + o] * x[(size_t)r * fi + i];
                dw[(size_t)o * fi + i] += (float)acc;
            }
    if (db)
        for (int o = 0; o < fo; o++) {
            double acc = 0;
            for (int r = 0; r < n; r++) acc += dy[(size_t)r * fo + o];
            db[o] += (float)acc;
        }
}

/* ---- FiLM-style conditioning: y = scale x + shift, per (n, c) ---- */

void film_forward_ref(float *y, const float *x, const float *scale, const float *shift, int n,
                      int c, int hw) {
    for (int r = 0; r < n * c; r++)
        for (int q = 0; q < hw; q++) {
            size_t e = (size_t)r * hw + q;
            y[e] = (scale ? scale[r] * x[e] : x[e]) + shift[r];
        }
}

void film_backward_ref(float *dx, float *dscale, float *dshift, const float *dy, const float *x,
                       const float *scale, int n, int c, int hw) {
    for (int r = 0; r < n * c; r++) {
        double sdy = 0, sdyx = 0;
        for (int q = 0; q < hw; q++) {
            size_t e = (size_t)r * hw + q;
            sdy += dy[e];
            sdyx += (double)dy[e] * x[e];
            if (dx) dx[e] += scale ? dy[e] * scale[r] : dy[e];
        }
        if (dscale) dscale[r] += (float)sdyx;
        if (dshift) dshift[r] += (float)sdy;
    }
}

/* ---- mean squared error ---- */

float mse_forward_ref(const float *pred, const float *target, int64_t count) {
    double s = 0;
    for (int64_t i = 0; i < count; i++) {
        double d = (double)pred[i] - target[i];
        s += d * d;
    }
    return (float)(s / (double)count);
}

void mse_backward_ref(float *dpred, const float *pred, const float *target, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        dpred[i] += (float)(2.0 * ((double)pred[i] - target[i]) / (double)count);
}
