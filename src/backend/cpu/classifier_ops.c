/* Operators of the judge classifier on the CPU: ReLU, 2x2 max pooling and the softmax
 * cross-entropy loss, forward and backward. Each is a plain loop, OpenMP over elements or
 * rows, with no reduction across threads, so results do not depend on nthreads. */
#include <math.h>
#include <omp.h>

#include "backend/cpu/cpu_ops.h"
#include "core/common.h"

/* ---- ReLU ---------------------------------------------------------------------------------- */

void cpu_relu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
#pragma omp parallel for simd num_threads(ctx->nthreads) schedule(static)
    for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                       int64_t count) {
#pragma omp parallel for simd num_threads(ctx->nthreads) schedule(static)
    for (int64_t i = 0; i < count; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
}

/* ---- 2x2 max pooling, stride 2 ---------------------------------------------------------------
 * Window (oy, ox) of a plane covers x[2oy + a, 2ox + b] for a, b in {0, 1}; its argmax is the
 * first of the four in row-major order that holds the maximum (a NaN wins, as in PyTorch). */

static inline int window_argmax(const float *p, int w) {
    const float v[4] = {p[0], p[1], p[w], p[w + 1]};
    int best = 0;
    for (int q = 1; q < 4; q++) /* PyTorch's rule: a larger value or a NaN takes over */
        if (v[q] > v[best] || isnan(v[q])) best = q;
    return best;
}

void cpu_maxpool2x2_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int h, int w) {
    DDPM_CHECK(h % 2 == 0 && w % 2 == 0);
    const int ho = h / 2, wo = w / 2;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        const float *xp = x + (size_t)r * (size_t)h * (size_t)w;
        float *yp = y + (size_t)r * (size_t)ho * (size_t)wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                const float *p = xp + (size_t)(2 * oy) * (size_t)w + (size_t)(2 * ox);
                int q = window_argmax(p, w);
                yp[oy * wo + ox] = p[(q >> 1) * w + (q & 1)];
            }
    }
}

void cpu_maxpool2x2_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int nc,
                             int h, int w) {
    DDPM_CHECK(h % 2 == 0 && w % 2 == 0);
    const int ho = h / 2, wo = w / 2;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        const float *xp = x + (size_t)r * (size_t)h * (size_t)w;
        float *dp = dx + (size_t)r * (size_t)h * (size_t)w;
        const float *gp = dy + (size_t)r * (size_t)ho * (size_t)wo;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                size_t base = (size_t)(2 * oy) * (size_t)w + (size_t)(2 * ox);
                int q = window_argmax(xp + base, w);
                dp[base + (size_t)((q >> 1) * w + (q & 1))] += gp[oy * wo + ox];
            }
    }
}

/* ---- softmax cross-entropy -------------------------------------------------------------------
 * log softmax(z)_j = z_j - m - log sum_k exp(z_k - m) with m = max_k z_k, in double, so large
 * logits neither overflow nor lose the small probabilities. */

float cpu_softmax_xent_forward(const OpsCtx *ctx, float *probs, const float *logits,
                               const int *labels, int n, int c) {
    DDPM_CHECK(n > 0 && c > 0);
    (void)ctx;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * (size_t)c;
        float *p = probs + (size_t)i * (size_t)c;
        DDPM_CHECK(labels[i] >= 0 && labels[i] < c);
        double m = z[0];
        for (int j = 1; j < c; j++)
            if (z[j] > m) m = z[j];
        double s = 0.0;
        for (int j = 0; j < c; j++) s += exp((double)z[j] - m);
        double lse = m + log(s);
        for (int j = 0; j < c; j++) p[j] = (float)exp((double)z[j] - lse);
        total += lse - (double)z[labels[i]];
    }
    return (float)(total / n);
}

void cpu_softmax_xent_backward(const OpsCtx *ctx, float *dlogits, const float *probs,
                               const int *labels, int n, int c) {
    const float inv_n = 1.0f / (float)n;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * (size_t)c;
        float *d = dlogits + (size_t)i * (size_t)c;
        for (int j = 0; j < c; j++) d[j] += (p[j] - (j == labels[i] ? 1.0f : 0.0f)) * inv_n;
    }
}
