/* Elementwise and data-movement operators on the CPU: exact GELU, global average pooling,
 * channel concatenation, per-channel affine conditioning (FiLM) and the MSE loss.
 * OpenMP over elements or rows; every reduction has a fixed order for a fixed nthreads. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gelu.h"
#include "core/common.h"

/* ---- GELU (its arithmetic is in ops/gelu.h) ----------------------------------------------- */

/* Slice [*e0, *e1) of count elements for thread t of nt, 16-aligned so slices do not share
 * cache lines. */
static void elem_slice(int64_t count, int t, int nt, int64_t *e0, int64_t *e1) {
    int64_t blocks = (count + 15) / 16;
    *e0 = blocks * t / nt * 16;
    *e1 = blocks * (t + 1) / nt * 16;
    if (*e0 > count) *e0 = count;
    if (*e1 > count) *e1 = count;
}

static void gelu_forward_range(float *restrict y, const float *restrict x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = gelu_value(x[i]);
}

static void gelu_backward_range(float *restrict dx, const float *restrict dy,
                                const float *restrict x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float cdf, pdf;
        gaussian_cdf_pdf(x[i], &cdf, &pdf);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

void cpu_gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    const int nt = ctx->nthreads;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int64_t e0, e1;
        elem_slice(count, t, nt, &e0, &e1);
        gelu_forward_range(y + e0, x + e0, e1 - e0);
    }
}

void cpu_gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                       int64_t count) {
    const int nt = ctx->nthreads;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int64_t e0, e1;
        elem_slice(count, t, nt, &e0, &e1);
        gelu_backward_range(dx + e0, dy + e0, x + e0, e1 - e0);
    }
}

/* ---- global average pooling ---- */

void cpu_avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        const float *p = x + (size_t)r * (size_t)hw;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int q = 0; q < hw; q++) s += p[q];
        y[r] = (float)(s / hw);
    }
}

void cpu_avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        float g = dy[r] / (float)hw;
        float *d = dx + (size_t)r * (size_t)hw;
        for (int q = 0; q < hw; q++) d[q] += g;
    }
}

/* ---- channel concatenation: per image, a's ca planes then b's cb planes ---- */

void cpu_concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n, int ca,
                        int cb, int hw) {
    const size_t na = (size_t)ca * (size_t)hw, nb = (size_t)cb * (size_t)hw;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * (na + nb);
        memcpy(yi, a + (size_t)i * na, sizeof(float) * na);
        memcpy(yi + na, b + (size_t)i * nb, sizeof(float) * nb);
    }
}

void cpu_concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
                         int cb, int hw) {
    const size_t na = (size_t)ca * (size_t)hw, nb = (size_t)cb * (size_t)hw;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int i = 0; i < n; i++) {
        const float *gi = dy + (size_t)i * (na + nb);
        if (da) {
            float *d = da + (size_t)i * na;
            for (size_t e = 0; e < na; e++) d[e] += gi[e];
        }
        if (db) {
            float *d = db + (size_t)i * nb;
            for (size_t e = 0; e < nb; e++) d[e] += gi[na + e];
        }
    }
}

/* ---- per-channel affine conditioning ---- */

void cpu_film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                      const float *shift, int n, int c, int hw) {
    const int rows = n * c;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *p = x + (size_t)r * (size_t)hw;
        float *q = y + (size_t)r * (size_t)hw; /* may alias p: each value is read, then written */
        float s = scale ? scale[r] : 1.0f, t = shift[r];
        if (scale)
            for (int e = 0; e < hw; e++) q[e] = s * p[e] + t;
        else
            for (int e = 0; e < hw; e++) q[e] = p[e] + t;
    }
}

void cpu_film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift, const float *dy,
                       const float *x, const float *scale, int n, int c, int hw) {
    const int rows = n * c;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *g = dy + (size_t)r * (size_t)hw;
        if (dscale) {
            const float *p = x + (size_t)r * (size_t)hw;
            double s = 0.0;
#pragma omp simd reduction(+ : s)
            for (int e = 0; e < hw; e++) s += (double)g[e] * (double)p[e];
            dscale[r] += (float)s;
        }
        if (dshift) {
            double s = 0.0;
#pragma omp simd reduction(+ : s)
            for (int e = 0; e < hw; e++) s += g[e];
            dshift[r] += (float)s;
        }
        if (dx) {
            float *d = dx + (size_t)r * (size_t)hw;
            float sc = scale ? scale[r] : 1.0f;
            for (int e = 0; e < hw; e++) d[e] += g[e] * sc;
        }
    }
}

/* ---- mean squared error ---- */

float cpu_mse_forward(const OpsCtx *ctx, const float *pred, const float *target, int64_t count) {
    DDPM_CHECK(count > 0);
    /* nthreads fixed slices summed in slice order: deterministic for a fixed nthreads.
     * 64 slots are plenty; more threads than that simply share slices. */
    enum { MAX_SLICES = 64 };
    double part[MAX_SLICES];
    const int ns = ctx->nthreads < MAX_SLICES ? ctx->nthreads : MAX_SLICES;
#pragma omp parallel num_threads(ctx->nthreads)
    for (int t = omp_get_thread_num(); t < ns; t += omp_get_num_threads()) {
        int64_t e0 = count * t / ns, e1 = count * (t + 1) / ns;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t e = e0; e < e1; e++) {
            double d = (double)pred[e] - (double)target[e];
            s += d * d;
        }
        part[t] = s;
    }
    double total = 0.0;
    for (int t = 0; t < ns; t++) total += part[t];
    return (float)(total / (double)count);
}

void cpu_mse_backward(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                      int64_t count) {
    const float k = (float)(2.0 / (double)count);
#pragma omp parallel for simd num_threads(ctx->nthreads) schedule(static)
    for (int64_t e = 0; e < count; e++) dpred[e] += k * (pred[e] - target[e]);
}
