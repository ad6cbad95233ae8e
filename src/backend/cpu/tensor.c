/* Memory and whole-tensor operations of ops.h on the host: the arithmetic that the layers
 * above used to write inline (residual sums, noising, BatchNorm folding, Adam, EMA, the
 * finite check, guidance, the sampler steps, the time embedding), kept operation for
 * operation so that results stay bit for bit. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu_ops.h"
#include "core/common.h"

void *cpu_dev_alloc(const OpsCtx *ctx, size_t bytes) {
    (void)ctx;
    return xcalloc_pages(bytes ? bytes : 1);
}

void cpu_dev_free(const OpsCtx *ctx, void *p, size_t bytes) {
    (void)ctx;
    if (p) xfree_pages(p, bytes ? bytes : 1);
}

void cpu_dev_upload(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes && dst != src) memmove(dst, src, bytes);
}

void cpu_dev_download(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes && dst != src) memmove(dst, src, bytes);
}

void cpu_dev_fill(const OpsCtx *ctx, float *dst, float value, size_t count) {
    (void)ctx;
    if (value == 0.0f) {
        memset(dst, 0, count * sizeof(float));
        return;
    }
    for (size_t i = 0; i < count; i++) dst[i] = value;
}

void cpu_dev_copy(const OpsCtx *ctx, float *dst, const float *src, size_t count) {
    (void)ctx;
    if (count && dst != src) memmove(dst, src, count * sizeof(float));
}

void cpu_add_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, size_t count) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

void cpu_scale_add(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
                   size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) y[i] = x[i] + alpha * z[i];
}

void cpu_noising_forward(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                         const float *ca, const float *cb, int n, int per) {
    (void)ctx;
    for (int i = 0; i < n; i++) {
        const float a = ca[i], b = cb[i];
        const size_t o = (size_t)i * (size_t)per;
        for (int j = 0; j < per; j++) xt[o + j] = a * x0[o + j] + b * eps[o + j];
    }
}

void cpu_time_embedding_forward(const OpsCtx *ctx, float *out, const float *tn, int n, int E) {
    (void)ctx;
    const int half = E / 2;
    for (int i = 0; i < n; i++) {
        double s = 1000.0 * (double)tn[i];
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * (double)k / (double)half);
            out[(size_t)i * E + k] = (float)sin(s * f);
            out[(size_t)i * E + half + k] = (float)cos(s * f);
        }
    }
}

void cpu_bn_fold(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
                 const float *gamma, const float *beta, const float *running_mean,
                 const float *running_var, int ci, int co, int k, int transposed, float eps) {
    (void)ctx;
    const size_t kk = (size_t)k * (size_t)k, per = (size_t)ci * kk;
    for (int o = 0; o < co; o++) {
        float sc = gamma[o] / sqrtf(running_var[o] + eps);
        bf[o] = (b[o] - running_mean[o]) * sc + beta[o];
        if (transposed) /* (Ci, Co, K, K) */
            for (int i = 0; i < ci; i++)
                for (size_t j = 0; j < kk; j++) {
                    size_t e = ((size_t)i * (size_t)co + (size_t)o) * kk + j;
                    wf[e] = w[e] * sc;
                }
        else /* (Co, Ci, K, K) */
            for (size_t e = (size_t)o * per; e < (size_t)(o + 1) * per; e++) wf[e] = w[e] * sc;
    }
}

void cpu_adam_update(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                     size_t count, const AdamScalars *s) {
    (void)ctx;
    const float beta1 = s->beta1, one_minus_b1 = s->one_minus_b1, beta2 = s->beta2,
                one_minus_b2 = s->one_minus_b2, step_size = s->step_size,
                bc2_sqrt = s->bc2_sqrt, eps = s->eps;
#pragma omp simd
    for (size_t i = 0; i < count; i++) {
        float g = grad[i];
        /* exp_avg.mul_(beta1).add_(grad, alpha=1-beta1): the vectorised add is a fused fmadd */
        m[i] = fmaf(g, one_minus_b1, m[i] * beta1);
        /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2) */
        v[i] = v[i] * beta2 + one_minus_b2 * g * g;
        /* denom = exp_avg_sq.sqrt() / bias_correction2_sqrt + eps */
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        /* param.addcdiv_(exp_avg, denom, value=-step_size) */
        param[i] = param[i] + -step_size * m[i] / denom;
    }
}

void cpu_ema_update(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count) {
    (void)ctx;
    const float e = 1.0f - d;
    for (size_t i = 0; i < count; i++) ema[i] = d * ema[i] + e * x[i];
}

void cpu_swap_values(const OpsCtx *ctx, float *a, float *b, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

int cpu_all_finite(const OpsCtx *ctx, const float *x, size_t count) {
    (void)ctx;
    /* x * 0 is 0 for finite x and NaN for inf or NaN, so one sum screens the whole array */
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k] * 0.0f;
    for (; i < count; i++) acc[0] += x[i] * 0.0f;
    float all = 0.0f;
    for (int k = 0; k < 8; k++) all += acc[k];
    return all == 0.0f;
}

double cpu_sq_diff_sum(const OpsCtx *ctx, const float *a, const float *b, size_t count) {
    (void)ctx;
    double sum = 0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}

void cpu_guidance_forward(const OpsCtx *ctx, float *eps, const float *eps_c, const float *eps_u,
                          float gamma, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) eps[i] = eps_u[i] + gamma * (eps_c[i] - eps_u[i]);
}

void cpu_ddpm_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                   const float *z, const DdpmCoefs *c, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        double x0 = c->c_x0 * (double)xt[i] - c->c_eps * (double)eps[i];
        double v = c->k0 * x0 + c->kt * (double)xt[i];
        if (z) v += c->sd * (double)z[i];
        x_prev[i] = (float)v;
    }
}

void cpu_multistep_step(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                        const float *eps, const float *m1, const float *m2, const float *z,
                        const MultistepCoefs *c, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        double d = c->c_x0 * (double)xt[i] - c->c_eps * (double)eps[i];
        if (c->clip) d = d < 0.0 ? 0.0 : d > 1.0 ? 1.0 : d;
        m0[i] = (float)d;
        double v = c->a * (double)xt[i] + c->w0 * d;
        if (m1) v += c->w1 * (double)m1[i];
        if (m2) v += c->w2 * (double)m2[i];
        if (z) v += c->s * (double)z[i];
        x_next[i] = (float)v;
    }
}

void cpu_ddim_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                   const float *z, const DdimCoefs *c, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++) {
        double x0 = c->c_x0 * (double)xt[i] - c->c_eps * (double)eps[i], e = eps[i];
        if (c->clip) {
            x0 = x0 < 0.0 ? 0.0 : x0 > 1.0 ? 1.0 : x0;
            e = ((double)xt[i] - c->a_t * x0) / c->s_t;
        }
        double v = c->a_prev * x0 + c->dir * e;
        if (z) v += c->sigma * (double)z[i];
        x_prev[i] = (float)v;
    }
}
