/* The operators of ops.h and attention.h as the layers call them: each forwards to the
 * backend of its context (ctx->be, backend.h). The workspace queries, which have no context,
 * answer the most that any registered backend needs. */
#include "ops/ops.h"

#include "ops/attention.h"
#include "ops/backend.h"

size_t conv2d_workspace_floats(const ConvShape *s, int nthreads) {
    size_t most = 0;
    for (int i = 0; i < backend_count(); i++) {
        size_t need = backend_at(i)->conv2d_workspace_floats(s, nthreads);
        most = need > most ? need : most;
    }
    return most;
}

size_t conv_transpose2d_workspace_floats(const ConvShape *s, int nthreads) {
    size_t most = 0;
    for (int i = 0; i < backend_count(); i++) {
        size_t need = backend_at(i)->conv_transpose2d_workspace_floats(s, nthreads);
        most = need > most ? need : most;
    }
    return most;
}

size_t attention_workspace_floats(int n, int c, int l, int nthreads) {
    size_t most = 0;
    for (int i = 0; i < backend_count(); i++) {
        size_t need = backend_at(i)->attention_workspace_floats(n, c, l, nthreads);
        most = need > most ? need : most;
    }
    return most;
}

const char *conv_method(const OpsCtx *ctx, const ConvShape *s, int transposed) {
    return ctx->be->conv_method(s, transposed);
}

void conv2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                    const ConvShape *s) {
    ctx->be->conv2d_forward(ctx, y, x, w, b, s);
}

void conv2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const ConvShape *s) {
    ctx->be->conv2d_backward(ctx, dx, dw, db, dy, x, w, s);
}

void conv_transpose2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                              const float *b, const ConvShape *s) {
    ctx->be->conv_transpose2d_forward(ctx, y, x, w, b, s);
}

void conv_transpose2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                               const float *x, const float *w, const ConvShape *s) {
    ctx->be->conv_transpose2d_backward(ctx, dx, dw, db, dy, x, w, s);
}

void batchnorm2d_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float momentum, float eps) {
    ctx->be->batchnorm2d_forward_train(ctx, y, mean, rstd, running_mean, running_var, x, gamma,
                                       beta, n, c, hw, momentum, eps);
}

void batchnorm2d_forward_eval(const OpsCtx *ctx, float *y, const float *x, const float *gamma,
                              const float *beta, const float *running_mean,
                              const float *running_var, int n, int c, int hw, float eps) {
    ctx->be->batchnorm2d_forward_eval(ctx, y, x, gamma, beta, running_mean, running_var, n, c, hw,
                                      eps);
}

void batchnorm2d_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, int n, int c, int hw) {
    ctx->be->batchnorm2d_backward_train(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw);
}

void batchnorm2d_backward_eval(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, const float *running_mean,
                               const float *running_var, const float *gamma, int n, int c, int hw,
                               float eps) {
    ctx->be->batchnorm2d_backward_eval(ctx, dx, dgamma, dbeta, dy, x, running_mean, running_var,
                                       gamma, n, c, hw, eps);
}

void bn_gelu_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                           float *running_mean, float *running_var, const float *x,
                           const float *gamma, const float *beta, int n, int c, int hw,
                           float momentum, float eps) {
    ctx->be->bn_gelu_forward_train(ctx, y, mean, rstd, running_mean, running_var, x, gamma, beta, n,
                                   c, hw, momentum, eps);
}

void bn_gelu_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *gamma, const float *beta, int n, int c, int hw) {
    ctx->be->bn_gelu_backward_train(ctx, dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c,
                                    hw);
}

void gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    ctx->be->gelu_forward(ctx, y, x, count);
}

void gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int64_t count) {
    ctx->be->gelu_backward(ctx, dx, dy, x, count);
}

void avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw) {
    ctx->be->avgpool_forward(ctx, y, x, nc, hw);
}

void avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw) {
    ctx->be->avgpool_backward(ctx, dx, dy, nc, hw);
}

void concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n, int ca,
                    int cb, int hw) {
    ctx->be->concat_forward(ctx, y, a, b, n, ca, cb, hw);
}

void concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
                     int cb, int hw) {
    ctx->be->concat_backward(ctx, da, db, dy, n, ca, cb, hw);
}

void linear_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                    int n, int fi, int fo) {
    ctx->be->linear_forward(ctx, y, x, w, b, n, fi, fo);
}

void linear_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int n, int fi, int fo) {
    ctx->be->linear_backward(ctx, dx, dw, db, dy, x, w, n, fi, fo);
}

void film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                  const float *shift, int n, int c, int hw) {
    ctx->be->film_forward(ctx, y, x, scale, shift, n, c, hw);
}

void film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift, const float *dy,
                   const float *x, const float *scale, int n, int c, int hw) {
    ctx->be->film_backward(ctx, dx, dscale, dshift, dy, x, scale, n, c, hw);
}

float mse_forward(const OpsCtx *ctx, const float *pred, const float *target, int64_t count) {
    return ctx->be->mse_forward(ctx, pred, target, count);
}

void mse_backward(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                  int64_t count) {
    ctx->be->mse_backward(ctx, dpred, pred, target, count);
}

void *dev_alloc(const OpsCtx *ctx, size_t bytes) {
    return ctx->be->dev_alloc(ctx, bytes);
}

void dev_free(const OpsCtx *ctx, void *p, size_t bytes) {
    ctx->be->dev_free(ctx, p, bytes);
}

void dev_upload(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    ctx->be->dev_upload(ctx, dst, src, bytes);
}

void dev_download(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    ctx->be->dev_download(ctx, dst, src, bytes);
}

void dev_fill(const OpsCtx *ctx, float *dst, float value, size_t count) {
    ctx->be->dev_fill(ctx, dst, value, count);
}

void dev_copy(const OpsCtx *ctx, float *dst, const float *src, size_t count) {
    ctx->be->dev_copy(ctx, dst, src, count);
}

void add_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, size_t count) {
    ctx->be->add_forward(ctx, y, a, b, count);
}

void scale_add(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
               size_t count) {
    ctx->be->scale_add(ctx, y, x, alpha, z, count);
}

void noising_forward(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                     const float *ca, const float *cb, int n, int per) {
    ctx->be->noising_forward(ctx, xt, x0, eps, ca, cb, n, per);
}

void time_embedding_forward(const OpsCtx *ctx, float *out, const float *tn, int n, int E) {
    ctx->be->time_embedding_forward(ctx, out, tn, n, E);
}

void bn_fold(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
             const float *gamma, const float *beta, const float *running_mean,
             const float *running_var, int ci, int co, int k, int transposed, float eps) {
    ctx->be->bn_fold(ctx, wf, bf, w, b, gamma, beta, running_mean, running_var, ci, co, k,
                     transposed, eps);
}

void adam_update(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                 size_t count, const AdamScalars *s) {
    ctx->be->adam_update(ctx, param, grad, m, v, count, s);
}

void ema_update(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count) {
    ctx->be->ema_update(ctx, ema, x, d, count);
}

void swap_values(const OpsCtx *ctx, float *a, float *b, size_t count) {
    ctx->be->swap_values(ctx, a, b, count);
}

int all_finite(const OpsCtx *ctx, const float *x, size_t count) {
    return ctx->be->all_finite(ctx, x, count);
}

double sq_diff_sum(const OpsCtx *ctx, const float *a, const float *b, size_t count) {
    return ctx->be->sq_diff_sum(ctx, a, b, count);
}

void guidance_forward(const OpsCtx *ctx, float *eps, const float *eps_c, const float *eps_u,
                      float gamma, size_t count) {
    ctx->be->guidance_forward(ctx, eps, eps_c, eps_u, gamma, count);
}

void ddpm_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps, const float *z,
               const DdpmCoefs *c, size_t count) {
    ctx->be->ddpm_step(ctx, x_prev, xt, eps, z, c, count);
}

void ddim_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps, const float *z,
               const DdimCoefs *c, size_t count) {
    ctx->be->ddim_step(ctx, x_prev, xt, eps, z, c, count);
}

void multistep_step(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                    const float *eps, const float *m1, const float *m2, const float *z,
                    const MultistepCoefs *c, size_t count) {
    ctx->be->multistep_step(ctx, x_next, m0, xt, eps, m1, m2, z, c, count);
}

void relu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    ctx->be->relu_forward(ctx, y, x, count);
}

void relu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int64_t count) {
    ctx->be->relu_backward(ctx, dx, dy, x, count);
}

void maxpool2x2_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int h, int w) {
    ctx->be->maxpool2x2_forward(ctx, y, x, nc, h, w);
}

void maxpool2x2_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int nc,
                         int h, int w) {
    ctx->be->maxpool2x2_backward(ctx, dx, dy, x, nc, h, w);
}

float softmax_xent_forward(const OpsCtx *ctx, float *probs, const float *logits, const int *labels,
                           int n, int c) {
    return ctx->be->softmax_xent_forward(ctx, probs, logits, labels, n, c);
}

void softmax_xent_backward(const OpsCtx *ctx, float *dlogits, const float *probs, const int *labels,
                           int n, int c) {
    ctx->be->softmax_xent_backward(ctx, dlogits, probs, labels, n, c);
}

void attention_forward(const OpsCtx *ctx, float *y, float *saved, const float *x,
                       const float *w_qkv, const float *b_qkv, const float *w_out,
                       const float *b_out, int n, int c, int l) {
    ctx->be->attention_forward(ctx, y, saved, x, w_qkv, b_qkv, w_out, b_out, n, c, l);
}

void attention_backward(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv, float *dw_out,
                        float *db_out, const float *dy, const float *x, const float *saved,
                        const float *w_qkv, const float *w_out, int n, int c, int l) {
    ctx->be->attention_backward(ctx, dx, dw_qkv, db_qkv, dw_out, db_out, dy, x, saved, w_qkv, w_out,
                                n, c, l);
}
