/* The reference backend's table (--device ref): the plain operators of ref_ops.c,
 * ref_layers.c and ref_tensor.c behind the interface of ops/backend.h. They take no context
 * (single threaded, host memory, scratch from the allocator), so each entry drops it; none
 * needs a workspace. */
#include "backend/ref/ref.h"
#include "ops/backend.h"

/* The plain loops need no workspace, for either kind of convolution. */
static size_t ref_conv_workspace_floats(const ConvShape *s, int nthreads) {
    (void)s, (void)nthreads;
    return 0;
}

/* One method for every convolution: the plain loops, which profiles leave unmarked. */
static const char *ref_conv_method(const ConvShape *s, int transposed) {
    (void)s;
    (void)transposed;
    return "";
}

static void ref_conv2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                               const float *b, const ConvShape *s) {
    (void)ctx;
    conv2d_forward_ref(y, x, w, b, s);
}

static void ref_conv2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                                const float *x, const float *w, const ConvShape *s) {
    (void)ctx;
    conv2d_backward_ref(dx, dw, db, dy, x, w, s);
}

static void ref_conv_transpose2d_forward(const OpsCtx *ctx, float *y, const float *x,
                                         const float *w, const float *b, const ConvShape *s) {
    (void)ctx;
    conv_transpose2d_forward_ref(y, x, w, b, s);
}

static void ref_conv_transpose2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db,
                                          const float *dy, const float *x, const float *w,
                                          const ConvShape *s) {
    (void)ctx;
    conv_transpose2d_backward_ref(dx, dw, db, dy, x, w, s);
}

static void ref_batchnorm2d_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                          float *running_mean, float *running_var, const float *x,
                                          const float *gamma, const float *beta, int n, int c,
                                          int hw, float momentum, float eps) {
    batchnorm2d_forward_train_sync_ref(y, mean, rstd, running_mean, running_var, x, gamma, beta, n,
                                       c, hw, momentum, eps, ctx->sum_across, ctx->sum_arg);
}

static void ref_batchnorm2d_forward_eval(const OpsCtx *ctx, float *y, const float *x,
                                         const float *gamma, const float *beta,
                                         const float *running_mean, const float *running_var, int n,
                                         int c, int hw, float eps) {
    (void)ctx;
    batchnorm2d_forward_eval_ref(y, x, gamma, beta, running_mean, running_var, n, c, hw, eps);
}

static void ref_batchnorm2d_backward_train(const OpsCtx *ctx, float *dx, float *dgamma,
                                           float *dbeta, const float *dy, const float *x,
                                           const float *mean, const float *rstd, const float *gamma,
                                           int n, int c, int hw) {
    batchnorm2d_backward_train_sync_ref(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, n, c, hw,
                                        ctx->sum_across, ctx->sum_arg);
}

static void ref_batchnorm2d_backward_eval(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                          const float *dy, const float *x,
                                          const float *running_mean, const float *running_var,
                                          const float *gamma, int n, int c, int hw, float eps) {
    (void)ctx;
    batchnorm2d_backward_eval_ref(dx, dgamma, dbeta, dy, x, running_mean, running_var, gamma, n, c,
                                  hw, eps);
}

static void ref_bn_gelu_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                      float *running_mean, float *running_var, const float *x,
                                      const float *gamma, const float *beta, int n, int c, int hw,
                                      float momentum, float eps) {
    bn_gelu_forward_train_sync_ref(y, mean, rstd, running_mean, running_var, x, gamma, beta, n, c,
                                   hw, momentum, eps, ctx->sum_across, ctx->sum_arg);
}

static void ref_bn_gelu_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma, const float *beta,
                                       int n, int c, int hw) {
    bn_gelu_backward_train_sync_ref(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, beta, n, c, hw,
                                    ctx->sum_across, ctx->sum_arg);
}

static void ref_gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    (void)ctx;
    gelu_forward_ref(y, x, count);
}

static void ref_gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                              int64_t count) {
    (void)ctx;
    gelu_backward_ref(dx, dy, x, count);
}

static void ref_avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw) {
    (void)ctx;
    avgpool_forward_ref(y, x, nc, hw);
}

static void ref_avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw) {
    (void)ctx;
    avgpool_backward_ref(dx, dy, nc, hw);
}

static void ref_concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n,
                               int ca, int cb, int hw) {
    (void)ctx;
    concat_forward_ref(y, a, b, n, ca, cb, hw);
}

static void ref_concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n,
                                int ca, int cb, int hw) {
    (void)ctx;
    concat_backward_ref(da, db, dy, n, ca, cb, hw);
}

static void ref_linear_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                               const float *b, int n, int fi, int fo) {
    (void)ctx;
    linear_forward_ref(y, x, w, b, n, fi, fo);
}

static void ref_linear_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                                const float *x, const float *w, int n, int fi, int fo) {
    (void)ctx;
    linear_backward_ref(dx, dw, db, dy, x, w, n, fi, fo);
}

static void ref_film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                             const float *shift, int n, int c, int hw) {
    (void)ctx;
    film_forward_ref(y, x, scale, shift, n, c, hw);
}

static void ref_film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift,
                              const float *dy, const float *x, const float *scale, int n, int c,
                              int hw) {
    (void)ctx;
    film_backward_ref(dx, dscale, dshift, dy, x, scale, n, c, hw);
}

static float ref_mse_forward(const OpsCtx *ctx, const float *pred, const float *target,
                             int64_t count) {
    (void)ctx;
    return mse_forward_ref(pred, target, count);
}

static void ref_mse_backward(const OpsCtx *ctx, float *dpred, const float *pred,
                             const float *target, int64_t count) {
    (void)ctx;
    mse_backward_ref(dpred, pred, target, count);
}

static void *ref_dev_alloc(const OpsCtx *ctx, size_t bytes) {
    (void)ctx;
    return dev_alloc_ref(bytes);
}

static void ref_dev_free(const OpsCtx *ctx, void *p, size_t bytes) {
    (void)ctx, (void)bytes;
    dev_free_ref(p);
}

static void ref_dev_upload(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    dev_copy_bytes_ref(dst, src, bytes);
}

static void ref_dev_download(const OpsCtx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    dev_copy_bytes_ref(dst, src, bytes);
}

static void ref_dev_fill(const OpsCtx *ctx, float *dst, float value, size_t count) {
    (void)ctx;
    dev_fill_ref(dst, value, count);
}

static void ref_dev_copy(const OpsCtx *ctx, float *dst, const float *src, size_t count) {
    (void)ctx;
    dev_copy_bytes_ref(dst, src, count * sizeof(float));
}

static void ref_add_forward(const OpsCtx *ctx, float *y, const float *a, const float *b,
                            size_t count) {
    (void)ctx;
    add_forward_ref(y, a, b, count);
}

static void ref_scale_add(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
                          size_t count) {
    (void)ctx;
    scale_add_ref(y, x, alpha, z, count);
}

static void ref_noising_forward(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                                const float *ca, const float *cb, int n, int per) {
    (void)ctx;
    noising_forward_ref(xt, x0, eps, ca, cb, n, per);
}

static void ref_time_embedding_forward(const OpsCtx *ctx, float *out, const float *tn, int n,
                                       int E) {
    (void)ctx;
    time_embedding_forward_ref(out, tn, n, E);
}

static void ref_bn_fold(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
                        const float *gamma, const float *beta, const float *running_mean,
                        const float *running_var, int ci, int co, int k, int transposed,
                        float eps) {
    (void)ctx;
    bn_fold_ref(wf, bf, w, b, gamma, beta, running_mean, running_var, ci, co, k, transposed, eps);
}

static void ref_adam_update(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                            size_t count, const AdamScalars *s) {
    (void)ctx;
    adam_update_ref(param, grad, m, v, count, s);
}

static void ref_ema_update(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count) {
    (void)ctx;
    ema_update_ref(ema, x, d, count);
}

static void ref_swap_values(const OpsCtx *ctx, float *a, float *b, size_t count) {
    (void)ctx;
    swap_values_ref(a, b, count);
}

static int ref_all_finite(const OpsCtx *ctx, const float *x, size_t count) {
    (void)ctx;
    return all_finite_ref(x, count);
}

static double ref_sq_diff_sum(const OpsCtx *ctx, const float *a, const float *b, size_t count) {
    (void)ctx;
    return sq_diff_sum_ref(a, b, count);
}

static void ref_guidance_forward(const OpsCtx *ctx, float *eps, const float *eps_c,
                                 const float *eps_u, float gamma, size_t count) {
    (void)ctx;
    guidance_forward_ref(eps, eps_c, eps_u, gamma, count);
}

static void ref_ddpm_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                          const float *z, const DdpmCoefs *c, size_t count) {
    (void)ctx;
    ddpm_step_ref(x_prev, xt, eps, z, c, count);
}

static void ref_multistep_step(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                               const float *eps, const float *m1, const float *m2,
                               const float *z, const MultistepCoefs *c, size_t count) {
    (void)ctx;
    multistep_step_ref(x_next, m0, xt, eps, m1, m2, z, c, count);
}

static void ref_ddim_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                          const float *z, const DdimCoefs *c, size_t count) {
    (void)ctx;
    ddim_step_ref(x_prev, xt, eps, z, c, count);
}

static void ref_relu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count) {
    (void)ctx;
    relu_forward_ref(y, x, count);
}

static void ref_relu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                              int64_t count) {
    (void)ctx;
    relu_backward_ref(dx, dy, x, count);
}

static void ref_maxpool2x2_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int h,
                                   int w) {
    (void)ctx;
    maxpool2x2_forward_ref(y, x, nc, h, w);
}

static void ref_maxpool2x2_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                                    int nc, int h, int w) {
    (void)ctx;
    maxpool2x2_backward_ref(dx, dy, x, nc, h, w);
}

static float ref_softmax_xent_forward(const OpsCtx *ctx, float *probs, const float *logits,
                                      const int *labels, int n, int c) {
    (void)ctx;
    return softmax_xent_forward_ref(probs, logits, labels, n, c);
}

static void ref_softmax_xent_backward(const OpsCtx *ctx, float *dlogits, const float *probs,
                                      const int *labels, int n, int c) {
    (void)ctx;
    softmax_xent_backward_ref(dlogits, probs, labels, n, c);
}

static size_t ref_attention_workspace_floats(int n, int c, int l, int nthreads) {
    (void)n, (void)c, (void)l, (void)nthreads;
    return 0;
}

static void ref_attention_forward(const OpsCtx *ctx, float *y, float *saved, const float *x,
                                  const float *w_qkv, const float *b_qkv, const float *w_out,
                                  const float *b_out, int n, int c, int l) {
    (void)ctx;
    attention_forward_ref(y, saved, x, w_qkv, b_qkv, w_out, b_out, n, c, l);
}

static void ref_attention_backward(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv,
                                   float *dw_out, float *db_out, const float *dy, const float *x,
                                   const float *saved, const float *w_qkv, const float *w_out,
                                   int n, int c, int l) {
    (void)ctx;
    attention_backward_ref(dx, dw_qkv, db_qkv, dw_out, db_out, dy, x, saved, w_qkv, w_out, n, c, l);
}

const Backend backend_ref = {
    .name = "ref",
    .init = NULL,
    .conv2d_workspace_floats = ref_conv_workspace_floats,
    .conv_transpose2d_workspace_floats = ref_conv_workspace_floats,
    .conv_method = ref_conv_method,
    .conv2d_forward = ref_conv2d_forward,
    .conv2d_backward = ref_conv2d_backward,
    .conv_transpose2d_forward = ref_conv_transpose2d_forward,
    .conv_transpose2d_backward = ref_conv_transpose2d_backward,
    .batchnorm2d_forward_train = ref_batchnorm2d_forward_train,
    .batchnorm2d_forward_eval = ref_batchnorm2d_forward_eval,
    .batchnorm2d_backward_train = ref_batchnorm2d_backward_train,
    .batchnorm2d_backward_eval = ref_batchnorm2d_backward_eval,
    .bn_gelu_forward_train = ref_bn_gelu_forward_train,
    .bn_gelu_backward_train = ref_bn_gelu_backward_train,
    .gelu_forward = ref_gelu_forward,
    .gelu_backward = ref_gelu_backward,
    .avgpool_forward = ref_avgpool_forward,
    .avgpool_backward = ref_avgpool_backward,
    .concat_forward = ref_concat_forward,
    .concat_backward = ref_concat_backward,
    .linear_forward = ref_linear_forward,
    .linear_backward = ref_linear_backward,
    .film_forward = ref_film_forward,
    .film_backward = ref_film_backward,
    .mse_forward = ref_mse_forward,
    .mse_backward = ref_mse_backward,
    .dev_alloc = ref_dev_alloc,
    .dev_free = ref_dev_free,
    .dev_upload = ref_dev_upload,
    .dev_download = ref_dev_download,
    .dev_fill = ref_dev_fill,
    .dev_copy = ref_dev_copy,
    .add_forward = ref_add_forward,
    .scale_add = ref_scale_add,
    .noising_forward = ref_noising_forward,
    .time_embedding_forward = ref_time_embedding_forward,
    .bn_fold = ref_bn_fold,
    .adam_update = ref_adam_update,
    .ema_update = ref_ema_update,
    .swap_values = ref_swap_values,
    .all_finite = ref_all_finite,
    .sq_diff_sum = ref_sq_diff_sum,
    .guidance_forward = ref_guidance_forward,
    .ddpm_step = ref_ddpm_step,
    .ddim_step = ref_ddim_step,
    .multistep_step = ref_multistep_step,
    .relu_forward = ref_relu_forward,
    .relu_backward = ref_relu_backward,
    .maxpool2x2_forward = ref_maxpool2x2_forward,
    .maxpool2x2_backward = ref_maxpool2x2_backward,
    .softmax_xent_forward = ref_softmax_xent_forward,
    .softmax_xent_backward = ref_softmax_xent_backward,
    .attention_workspace_floats = ref_attention_workspace_floats,
    .attention_forward = ref_attention_forward,
    .attention_backward = ref_attention_backward,
};
