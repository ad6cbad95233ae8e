/* The exact GELU's arithmetic as inline functions, shared by the GELU operator
 * (elementwise.c) and the fused BatchNorm + GELU operators (batchnorm.c).
 *
 * glibc's erff is scalar and costs ~25 ns, which would make GELU as expensive as the
 * convolutions. PyTorch's vectorised CPU kernel computes erf with Abramowitz & Stegun 7.1.26
 * (absolute error below 1.5e-7, i.e. float rounding level for 1 + erf) on top of a vector exp;
 * we do the same with branch-free code that GCC vectorises under `omp simd`. */
#ifndef DDPM_OPS_GELU_H
#define DDPM_OPS_GELU_H

#include <math.h>
#include <stdint.h>

/* e^x for -87 <= x <= 0 within 1 ulp (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-5
 * minimax polynomial for e^r, then scale by 2^n through the exponent bits). Written with
 * fmaf, as gaussian_cdf_pdf below: one instruction where a multiply and an add were two
 * (GELU, which is this arithmetic, took 15-25% less time). */
static inline float exp_neg(float x) {
    /* keeps 2^n normal (e^-87 is ~1e-38); written so that a NaN also becomes -87: the
     * float-to-int conversion below is undefined for NaN, and the caller's other terms
     * still carry the NaN into the result */
    x = x > -87.0f ? x : -87.0f;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick: floorf does not vectorise without
     * -fno-trapping-math, this addition does (and is exact for |x / ln 2| < 2^22) */
    const float round_magic = 12582912.0f;
    float n = fmaf(x, 1.44269504088896341f, round_magic) - round_magic;
    float r = fmaf(n, -0.693359375f, x); /* ln 2 split in two for an exact first product */
    r = fmaf(n, 2.12194440e-4f, r);
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, z, r) + 1.0f;
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

/* GELU(x) = x Phi(x), what gelu_forward computes per value. */
static inline float gelu_value(float x) {
    float cdf, pdf;
    gaussian_cdf_pdf(x, &cdf, &pdf);
    return x * cdf;
}

#endif
