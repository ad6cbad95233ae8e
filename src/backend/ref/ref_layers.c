/* Reference operators beside ref_ops.c: BatchNorm then GELU, self-attention, and the
 * classifier's ReLU, max pooling and softmax cross-entropy, each the PyTorch definition
 * written as plain loops, single threaded, summing in double. */
#include <math.h>
#include <string.h>

#include "backend/ref/ref.h"
#include "core/common.h"

/* ---- BatchNorm (training mode) then GELU: y = GELU(BatchNorm(x)) ------------------------- */

void bn_gelu_forward_train_sync_ref(float *y, float *mean, float *rstd, float *running_mean,
                                    float *running_var, const float *x, const float *gamma,
                                    const float *beta, int n, int c, int hw, float momentum,
                                    float eps, void (*sum_across)(void *, double *, int),
                                    void *sum_arg) {
    const size_t count = (size_t)n * (size_t)c * (size_t)hw;
    float *bn = xcalloc(count, sizeof(float));
    batchnorm2d_forward_train_sync_ref(bn, mean, rstd, running_mean, running_var, x, gamma, beta,
                                       n, c, hw, momentum, eps, sum_across, sum_arg);
    for (size_t i = 0; i < count; i++) {
        double v = bn[i];
        y[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    }
    xfree(bn);
}

void bn_gelu_forward_train_ref(float *y, float *mean, float *rstd, float *running_mean,
                               float *running_var, const float *x, const float *gamma,
                               const float *beta, int n, int c, int hw, float momentum,
                               float eps) {
    bn_gelu_forward_train_sync_ref(y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c,
                                   hw, momentum, eps, NULL, NULL);
}

/* With u = BatchNorm(x) recomputed from the saved statistics and g = dy GELU'(u), the gradient
 * of training-mode BatchNorm: xhat = (x - mean) rstd,
 * dx = gamma rstd (g - mean(g) - xhat mean(g xhat)), dgamma += sum g xhat, dbeta += sum g.
 * dx is overwritten (ops.h). With sum_across set, dgamma and dbeta take the local sums and
 * the means in dx are over every process. */
void bn_gelu_backward_train_sync_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                     const float *x, const float *mean, const float *rstd,
                                     const float *gamma, const float *beta, int n, int c, int hw,
                                     void (*sum_across)(void *, double *, int), void *sum_arg) {
    const double inv_sqrt_2pi = 0.39894228040143267794;
    const size_t count = (size_t)n * (size_t)c * (size_t)hw;
    double *g = xcalloc(count, sizeof(double));
    double v[2 * c + 1]; /* (C) sums of g, (C) sums of g xhat, the value count */
    for (int ch = 0; ch < c; ch++) {
        double sg = 0, sgx = 0;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                double xhat = ((double)x[e] - mean[ch]) * rstd[ch];
                double u = xhat * gamma[ch] + beta[ch];
                double cdf = 0.5 * (1.0 + erf(u / sqrt(2.0)));
                double pdf = inv_sqrt_2pi * exp(-0.5 * u * u);
                g[e] = dy[e] * (cdf + u * pdf);
                sg += g[e];
                sgx += g[e] * xhat;
            }
        if (dgamma) dgamma[ch] += (float)sgx;
        if (dbeta) dbeta[ch] += (float)sg;
        v[ch] = sg;
        v[c + ch] = sgx;
    }
    v[2 * c] = (double)n * hw;
    if (sum_across) sum_across(sum_arg, v, 2 * c + 1);
    const double m = v[2 * c];
    for (int ch = 0; dx && ch < c; ch++) {
        double sg = v[ch], sgx = v[c + ch];
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                double xhat = ((double)x[e] - mean[ch]) * rstd[ch];
                dx[e] = (float)((double)gamma[ch] * rstd[ch] * (g[e] - sg / m - xhat * sgx / m));
            }
    }
    xfree(g);
}

void bn_gelu_backward_train_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *x, const float *mean, const float *rstd,
                                const float *gamma, const float *beta, int n, int c, int hw) {
    bn_gelu_backward_train_sync_ref(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw,
                                    NULL, NULL);
}

/* ---- self-attention (attention.h), per image with X the (C, L) matrix ---------------------
 * saved per image: QKV (3C, L), P (L, L), O (C, L), the layout of attention_saved_floats. */

static void attention_image_forward(float *y, float *sv, const float *x, const float *w_qkv,
                                    const float *b_qkv, const float *w_out, const float *b_out,
                                    int c, int l) {
    const size_t C = (size_t)c, L = (size_t)l;
    float *qkv = sv, *p = sv + 3 * C * L, *o = p + L * L;
    const float *q = qkv, *k = qkv + C * L, *v = qkv + 2 * C * L;
    const double scale = 1.0 / sqrt((double)c);
    for (size_t r = 0; r < 3 * C; r++)
        for (size_t j = 0; j < L; j++) {
            double s = b_qkv ? b_qkv[r] : 0.0;
            for (size_t ci = 0; ci < C; ci++) s += (double)w_qkv[r * C + ci] * x[ci * L + j];
            qkv[r * L + j] = (float)s;
        }
    double *row = xcalloc(L, sizeof(double));
    for (size_t i = 0; i < L; i++) {
        double mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < L; j++) {
            double s = 0;
            for (size_t ci = 0; ci < C; ci++) s += (double)q[ci * L + i] * k[ci * L + j];
            row[j] = s * scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (size_t j = 0; j < L; j++) sum += exp(row[j] - mx);
        for (size_t j = 0; j < L; j++) p[i * L + j] = (float)(exp(row[j] - mx) / sum);
    }
    xfree(row);
    for (size_t ci = 0; ci < C; ci++)
        for (size_t i = 0; i < L; i++) {
            double s = 0;
            for (size_t j = 0; j < L; j++) s += (double)p[i * L + j] * v[ci * L + j];
            o[ci * L + i] = (float)s;
        }
    for (size_t r = 0; r < C; r++)
        for (size_t i = 0; i < L; i++) {
            double s = (double)x[r * L + i] + (b_out ? b_out[r] : 0.0);
            for (size_t ci = 0; ci < C; ci++) s += (double)w_out[r * C + ci] * o[ci * L + i];
            y[r * L + i] = (float)s;
        }
}

void attention_forward_ref(float *y, float *saved, const float *x, const float *w_qkv,
                           const float *b_qkv, const float *w_out, const float *b_out, int n,
                           int c, int l) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0 && y != x && saved != NULL);
    const size_t img = (size_t)c * (size_t)l, per = attention_saved_floats(1, c, l);
    for (int i = 0; i < n; i++)
        attention_image_forward(y + i * img, saved + i * per, x + i * img, w_qkv, b_qkv, w_out,
                                b_out, c, l);
}

/* Gradients of one image in double: dO = W_out^T dY; dP = dO^T V, dV = dO P;
 * dS = P (dP - rowsum(P dP)); dQ = scale K dS^T, dK = scale Q dS; then the projections. */
static void attention_image_backward(float *dx, double *dwq, double *dbq, double *dwo,
                                     double *dbo, const float *dy, const float *x,
                                     const float *sv, const float *w_qkv, const float *w_out,
                                     int c, int l) {
    const size_t C = (size_t)c, L = (size_t)l;
    const float *q = sv, *k = sv + C * L, *v = sv + 2 * C * L, *p = sv + 3 * C * L;
    const float *o = p + L * L;
    const double scale = 1.0 / sqrt((double)c);
    double *d_o = xcalloc(C * L, sizeof(double)), *dp = xcalloc(L * L, sizeof(double));
    double *dqkv = xcalloc(3 * C * L, sizeof(double));
    for (size_t r = 0; r < C; r++)
        for (size_t i = 0; i < L; i++) {
            dbo[r] += dy[r * L + i];
            for (size_t ci = 0; ci < C; ci++) {
                dwo[r * C + ci] += (double)dy[r * L + i] * o[ci * L + i];
                d_o[ci * L + i] += (double)w_out[r * C + ci] * dy[r * L + i];
            }
        }
    for (size_t i = 0; i < L; i++)
        for (size_t j = 0; j < L; j++)
            for (size_t ci = 0; ci < C; ci++) {
                dp[i * L + j] += d_o[ci * L + i] * v[ci * L + j];
                dqkv[(2 * C + ci) * L + j] += d_o[ci * L + i] * p[i * L + j];
            }
    for (size_t i = 0; i < L; i++) {
        double dot = 0;
        for (size_t j = 0; j < L; j++) dot += (double)p[i * L + j] * dp[i * L + j];
        for (size_t j = 0; j < L; j++) {
            double ds = p[i * L + j] * (dp[i * L + j] - dot) * scale;
            for (size_t ci = 0; ci < C; ci++) {
                dqkv[ci * L + i] += ds * k[ci * L + j];
                dqkv[(C + ci) * L + j] += ds * q[ci * L + i];
            }
        }
    }
    for (size_t r = 0; r < 3 * C; r++)
        for (size_t j = 0; j < L; j++) {
            dbq[r] += dqkv[r * L + j];
            for (size_t ci = 0; ci < C; ci++) dwq[r * C + ci] += dqkv[r * L + j] * x[ci * L + j];
        }
    if (dx)
        for (size_t ci = 0; ci < C; ci++)
            for (size_t j = 0; j < L; j++) {
                double s = dy[ci * L + j];
                for (size_t r = 0; r < 3 * C; r++) s += (double)w_qkv[r * C + ci] * dqkv[r * L + j];
                dx[ci * L + j] += (float)s;
            }
    xfree(d_o), xfree(dp), xfree(dqkv);
}

static void add_doubles(float *dst, const double *acc, size_t count) {
    if (dst)
        for (size_t i = 0; i < count; i++) dst[i] += (float)acc[i];
}

void attention_backward_ref(float *dx, float *dw_qkv, float *db_qkv, float *dw_out,
                            float *db_out, const float *dy, const float *x, const float *saved,
                            const float *w_qkv, const float *w_out, int n, int c, int l) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0);
    const size_t C = (size_t)c, img = C * (size_t)l, per = attention_saved_floats(1, c, l);
    double *dwq = xcalloc(3 * C * C, sizeof(double)), *dbq = xcalloc(3 * C, sizeof(double));
    double *dwo = xcalloc(C * C, sizeof(double)), *dbo = xcalloc(C, sizeof(double));
    for (int i = 0; i < n; i++)
        attention_image_backward(dx ? dx + i * img : NULL, dwq, dbq, dwo, dbo, dy + i * img,
                                 x + i * img, saved + i * per, w_qkv, w_out, c, l);
    add_doubles(dw_qkv, dwq, 3 * C * C);
    add_doubles(db_qkv, dbq, 3 * C);
    add_doubles(dw_out, dwo, C * C);
    add_doubles(db_out, dbo, C);
    xfree(dwq), xfree(dbq), xfree(dwo), xfree(dbo);
}

/* ---- the classifier's operators --------------------------------------------------------- */

void relu_forward_ref(float *y, const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_ref(float *dx, const float *dy, const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++)
        if (x[i] > 0.0f) dx[i] += dy[i];
}

/* The first maximum of window (oy, ox) in row-major order; a NaN wins (PyTorch's rule). */
static size_t window_argmax_ref(const float *plane, int w, int oy, int ox) {
    size_t best = (size_t)(2 * oy) * w + 2 * ox;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            size_t e = (size_t)(2 * oy + a) * w + 2 * ox + b;
            if (plane[e] > plane[best] || isnan(plane[e])) best = e;
        }
    return best;
}

void maxpool2x2_forward_ref(float *y, const float *x, int nc, int h, int w) {
    DDPM_CHECK(h % 2 == 0 && w % 2 == 0);
    for (int r = 0; r < nc; r++) {
        const float *plane = x + (size_t)r * h * w;
        for (int oy = 0; oy < h / 2; oy++)
            for (int ox = 0; ox < w / 2; ox++)
                y[((size_t)r * (h / 2) + oy) * (w / 2) + ox] =
                    plane[window_argmax_ref(plane, w, oy, ox)];
    }
}

void maxpool2x2_backward_ref(float *dx, const float *dy, const float *x, int nc, int h, int w) {
    DDPM_CHECK(h % 2 == 0 && w % 2 == 0);
    for (int r = 0; r < nc; r++) {
        const float *plane = x + (size_t)r * h * w;
        for (int oy = 0; oy < h / 2; oy++)
            for (int ox = 0; ox < w / 2; ox++)
                dx[(size_t)r * h * w + window_argmax_ref(plane, w, oy, ox)] +=
                    dy[((size_t)r * (h / 2) + oy) * (w / 2) + ox];
    }
}

float softmax_xent_forward_ref(float *probs, const float *logits, const int *labels, int n,
                               int c) {
    DDPM_CHECK(n > 0 && c > 0);
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * c;
        DDPM_CHECK(labels[i] >= 0 && labels[i] < c);
        double mx = z[0], sum = 0;
        for (int j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c; j++) sum += exp((double)z[j] - mx);
        for (int j = 0; j < c; j++) probs[(size_t)i * c + j] = (float)(exp(z[j] - mx) / sum);
        total -= (double)z[labels[i]] - mx - log(sum);
    }
    return (float)(total / n);
}

void softmax_xent_backward_ref(float *dlogits, const float *probs, const int *labels, int n,
                               int c) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c; j++)
            dlogits[(size_t)i * c + j] +=
                (float)(((double)probs[(size_t)i * c + j] - (j == labels[i])) / n);
}
