/* Reference memory and whole-tensor operations of ops.h: host memory from the checked
 * allocator and one plain loop per operation, written as the formula of its ops.h comment
 * (the same float or double arithmetic, so the CPU backend must agree bit for bit). */
#include <math.h>
#include <string.h>

#include "backend/ref/ref.h"
#include "core/common.h"

void *dev_alloc_ref(size_t bytes) { return xcalloc(bytes ? bytes : 1, 1); }

void dev_free_ref(void *p) { xfree(p); }

void dev_copy_bytes_ref(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src) memmove(dst, src, bytes);
}

void dev_fill_ref(float *dst, float value, size_t count) {
    for (size_t i = 0; i < count; i++) dst[i] = value;
}

void add_forward_ref(float *y, const float *a, const float *b, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

void scale_add_ref(float *y, const float *x, float alpha, const float *z, size_t count) {
    for (size_t i = 0; i < count; i++) y[i] = x[i] + alpha * z[i];
}

void noising_forward_ref(float *xt, const float *x0, const float *eps, const float *ca,
                         const float *cb, int n, int per) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < per; j++) {
            size_t e = (size_t)i * per + j;
            xt[e] = ca[i] * x0[e] + cb[i] * eps[e];
        }
}

void time_embedding_forward_ref(float *out, const float *tn, int n, int E) {
    const int half = E / 2;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * (double)k / (double)half);
            double s = 1000.0 * (double)tn[i];
            out[(size_t)i * E + k] = (float)sin(s * f);
            out[(size_t)i * E + half + k] = (float)cos(s * f);
        }
}

void bn_fold_ref(float *wf, float *bf, const float *w, const float *b, const float *gamma,
                 const float *beta, const float *running_mean, const float *running_var, int ci,
                 int co, int k, int transposed, float eps) {
    for (int o = 0; o < co; o++) {
        float s = gamma[o] / sqrtf(running_var[o] + eps);
        bf[o] = (b[o] - running_mean[o]) * s + beta[o];
        for (int i = 0; i < ci; i++)
            for (int j = 0; j < k * k; j++) {
                size_t e = transposed ? ((size_t)i * co + o) * k * k + j
                                      : ((size_t)o * ci + i) * k * k + j;
                wf[e] = w[e] * s;
            }
    }
}

/* torch.optim.Adam's tensor arithmetic in float (its vectorised exp_avg update is one fused
 * multiply-add). */
void adam_update_ref(float *param, const float *grad, float *m, float *v, size_t count,
                     const AdamScalars *s) {
    for (size_t i = 0; i < count; i++) {
        float g = grad[i];
        m[i] = fmaf(g, s->one_minus_b1, m[i] * s->beta1);
        v[i] = v[i] * s->beta2 + s->one_minus_b2 * g * g;
        float denom = sqrtf(v[i]) / s->bc2_sqrt + s->eps;
        param[i] = param[i] + -s->step_size * m[i] / denom;
    }
}

void ema_update_ref(float *ema, const float *x, float d, size_t count) {
    for (size_t i = 0; i < count; i++) ema[i] = d * ema[i] + (1.0f - d) * x[i];
}

void swap_values_ref(float *a, float *b, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

int all_finite_ref(const float *x, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

double sq_diff_sum_ref(const float *a, const float *b, size_t count) {
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sum;
}

void guidance_forward_ref(float *eps, const float *eps_c, const float *eps_u, float gamma,
                          size_t count) {
    for (size_t i = 0; i < count; i++) eps[i] = eps_u[i] + gamma * (eps_c[i] - eps_u[i]);
}

void ddpm_step_ref(float *x_prev, const float *xt, const float *eps, const float *z,
                   const DdpmCoefs *c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        double x0 = c->c_x0 * xt[i] - c->c_eps * eps[i];
        double v = c->k0 * x0 + c->kt * xt[i];
        x_prev[i] = (float)(z ? v + c->sd * z[i] : v);
    }
}

void multistep_step_ref(float *x_next, float *m0, const float *xt, const float *eps,
                        const float *m1, const float *m2, const float *z,
                        const MultistepCoefs *c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        double d = c->c_x0 * xt[i] - c->c_eps * eps[i];
        if (c->clip) d = d < 0.0 ? 0.0 : d > 1.0 ? 1.0 : d;
        double v = c->a * xt[i] + c->w0 * d + (m1 ? c->w1 * m1[i] : 0.0) +
                   (m2 ? c->w2 * m2[i] : 0.0) + (z ? c->s * z[i] : 0.0);
        m0[i] = (float)d;
        x_next[i] = (float)v;
    }
}

void ddim_step_ref(float *x_prev, const float *xt, const float *eps, const float *z,
                   const DdimCoefs *c, size_t count) {
    for (size_t i = 0; i < count; i++) {
        double x0 = c->c_x0 * xt[i] - c->c_eps * eps[i], e = eps[i];
        if (c->clip) {
            x0 = x0 < 0.0 ? 0.0 : x0 > 1.0 ? 1.0 : x0;
            e = (xt[i] - c->a_t * x0) / c->s_t;
        }
        double v = c->a_prev * x0 + c->dir * e;
        x_prev[i] = (float)(z ? v + c->sigma * z[i] : v);
    }
}
