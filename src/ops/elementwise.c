/* Elementwise and data-movement operators on the CPU: exact GELU, global average pooling,
 * channel concatenation, per-channel affine conditioning (FiLM) and the MSE loss.
 * OpenMP over elements or rows; every reduction has a fixed order for a fixed nthreads. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/common.h"
#include "ops/ops.h"

/* ---- GELU ----------------------------------------------------------------------------------
 * glibc's erff is scalar and costs ~25 ns, which would make GELU as expensive as the
 * convolutions. PyTorch's vectorised CPU kernel computes erf with Abramowitz & Stegun 7.1.26
 * (absolute error below 1.5e-7, i.e. float rounding level for 1 + erf) on top of a vector exp;
 * we do the same with branch-free code that GCC vectorises under `omp simd`. */

/* e^x for -87 <= x <= 0 within 1 ulp (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-5
 * minimax polynomial for e^r, then scale by 2^n through the exponent bits). */
static inline float exp_neg(float x) {
    /* keeps 2^n normal (e^-87 is ~1e-38); written so that a NaN also becomes -87: the
     * float-to-int conversion below is undefined for NaN, and the caller's other terms
     * still carry the NaN into the result */
    x = x > -87.0f ? x : -87.0f;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick: floorf does not vectorise without
     * -fno-trapping-math, this addition does (and is exact for |x / ln 2| < 2^22) */
    const float round_magic = 12582912.0f;
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693359375f; /* ln 2 split in two for an exact first product */
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = (int32_t)((uint32_t)((int32_t)n + 127) << 23)};
    return p * scale.f;
}

/* Phi(x) = (1 + erf(x / sqrt 2)) / 2 and phi(x) = exp(-x^2 / 2) / sqrt(2 pi), sharing one exp. */
static inline void gaussian_cdf_pdf(float x, float *cdf, float *pdf) {
    const float inv_sqrt2 = 0.70710678118654752f, inv_sqrt_2pi = 0.39894228040143268f;
    float u = x * inv_sqrt2, au = fabsf(u);
    float e = exp_neg(-(u * u)); /* = exp(-x^2 / 2) */
    float t = 1.0f / fmaf(0.3275911f, au, 1.0f);
    float r = fmaf(1.061405429f, t, -1.453152027f);
    r = fmaf(r, t, 1.421413741f);
    r = fmaf(r, t, -0.284496736f);
    r = fmaf(r, t, 0.254829592f);
    float erf_abs = fmaf(-e * t, r, 1.0f); /* erf(|u|) = 1 - t r e^(-u^2) */
    float erf_u = u < 0.0f ? -erf_abs : erf_abs;
    *cdf = 0.5f * (1.0f + erf_u);
    *pdf = inv_sqrt_2pi * e;
}

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
    for (int64_t i = 0; i < n; i++) {
        float cdf, pdf;
        gaussian_cdf_pdf(x[i], &cdf, &pdf);
        y[i] = x[i] * cdf;
    }
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

void gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    const int nt = ctx->nthreads;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int64_t e0, e1;
        elem_slice(count, t, nt, &e0, &e1);
        gelu_forward_range(y + e0, x + e0, e1 - e0);
    }
}

void gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int64_t count) {
    const int nt = ctx->nthreads;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int64_t e0, e1;
        elem_slice(count, t, nt, &e0, &e1);
        gelu_backward_range(dx + e0, dy + e0, x + e0, e1 - e0);
    }
}

/* ---- global average pooling ---- */

void avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        const float *p = x + (size_t)r * (size_t)hw;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int q = 0; q < hw; q++) s += p[q];
        y[r] = (float)(s / hw);
    }
}

void avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int r = 0; r < nc; r++) {
        float g = dy[r] / (float)hw;
        float *d = dx + (size_t)r * (size_t)hw;
        for (int q = 0; q < hw; q++) d[q] += g;
    }
}

/* ---- channel concatenation: per image, a's ca planes then b's cb planes ---- */

void concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n, int ca,
                    int cb, int hw) {
    const size_t na = (size_t)ca * (size_t)hw, nb = (size_t)cb * (size_t)hw;
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * (na + nb);
        memcpy(yi, a + (size_t)i * na, sizeof(float) * na);
        memcpy(yi + na, b + (size_t)i * nb, sizeof(float) * nb);
    }
}

void concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
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

void film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
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

void film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift, const float *dy,
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

float mse_forward(const OpsCtx *ctx, const float *pred, const float *target, int64_t count) {
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

void mse_backward(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                  int64_t count) {
    const float k = (float)(2.0 / (double)count);
#pragma omp parallel for simd num_threads(ctx->nthreads) schedule(static)
    for (int64_t e = 0; e < count; e++) dpred[e] += k * (pred[e] - target[e]);
}
