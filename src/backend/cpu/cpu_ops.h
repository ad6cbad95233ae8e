/* The CPU backend's operators, one per entry of the Backend table (ops/backend.h), each with
 * the signature and contract of the ops.h function without the cpu_ prefix: OpenMP across the
 * batch, the channels or the elements, single-threaded OpenBLAS inside the threads, results
 * bit-identical for a fixed ctx->nthreads. Defined in the files of src/backend/cpu/. */
#ifndef DDPM_BACKEND_CPU_OPS_H
#define DDPM_BACKEND_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

size_t cpu_conv2d_workspace_floats(const ConvShape *s, int nthreads);
size_t cpu_conv_transpose2d_workspace_floats(const ConvShape *s, int nthreads);
void cpu_conv2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                        const ConvShape *s);
void cpu_conv2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, const ConvShape *s);
void cpu_conv_transpose2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                                  const float *b, const ConvShape *s);
void cpu_conv_transpose2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db,
                                   const float *dy, const float *x, const float *w,
                                   const ConvShape *s);
void cpu_batchnorm2d_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                   float *running_mean, float *running_var, const float *x,
                                   const float *gamma, const float *beta, int n, int c, int hw,
                                   float momentum, float eps);
void cpu_batchnorm2d_forward_eval(const OpsCtx *ctx, float *y, const float *x, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, int n, int c, int hw, float eps);
void cpu_batchnorm2d_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                    const float *dy, const float *x, const float *mean,
                                    const float *rstd, const float *gamma, int n, int c, int hw);
void cpu_batchnorm2d_backward_eval(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                   const float *dy, const float *x, const float *running_mean,
                                   const float *running_var, const float *gamma, int n, int c,
                                   int hw, float eps);
void cpu_bn_gelu_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float momentum, float eps);
void cpu_bn_gelu_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, const float *beta, int n,
                                int c, int hw);
void cpu_gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count);
void cpu_gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                       int64_t count);
void cpu_avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw);
void cpu_avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw);
void cpu_concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n, int ca,
                        int cb, int hw);
void cpu_concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
                         int cb, int hw);
void cpu_linear_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                        int n, int fi, int fo);
void cpu_linear_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, int n, int fi, int fo);
void cpu_film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                      const float *shift, int n, int c, int hw);
void cpu_film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift, const float *dy,
                       const float *x, const float *scale, int n, int c, int hw);
float cpu_mse_forward(const OpsCtx *ctx, const float *pred, const float *target, int64_t count);
void cpu_mse_backward(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                      int64_t count);
void *cpu_dev_alloc(const OpsCtx *ctx, size_t bytes);
void cpu_dev_free(const OpsCtx *ctx, void *p, size_t bytes);
void cpu_dev_upload(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
void cpu_dev_download(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
void cpu_dev_fill(const OpsCtx *ctx, float *dst, float value, size_t count);
void cpu_dev_copy(const OpsCtx *ctx, float *dst, const float *src, size_t count);
void cpu_add_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, size_t count);
void cpu_scale_add(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
                   size_t count);
void cpu_noising_forward(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                         const float *ca, const float *cb, int n, int per);
void cpu_time_embedding_forward(const OpsCtx *ctx, float *out, const float *tn, int n, int E);
void cpu_bn_fold(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
                 const float *gamma, const float *beta, const float *running_mean,
                 const float *running_var, int ci, int co, int k, int transposed, float eps);
void cpu_adam_update(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                     size_t count, const AdamScalars *s);
void cpu_ema_update(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count);
void cpu_swap_values(const OpsCtx *ctx, float *a, float *b, size_t count);
int cpu_all_finite(const OpsCtx *ctx, const float *x, size_t count);
double cpu_sq_diff_sum(const OpsCtx *ctx, const float *a, const float *b, size_t count);
void cpu_guidance_forward(const OpsCtx *ctx, float *eps, const float *eps_c, const float *eps_u,
                          float gamma, size_t count);
void cpu_ddpm_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                   const float *z, const DdpmCoefs *c, size_t count);
void cpu_multistep_step(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                        const float *eps, const float *m1, const float *m2, const float *z,
                        const MultistepCoefs *c, size_t count);
void cpu_ddim_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                   const float *z, const DdimCoefs *c, size_t count);
void cpu_relu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count);
void cpu_relu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                       int64_t count);
void cpu_maxpool2x2_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int h, int w);
void cpu_maxpool2x2_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int nc,
                             int h, int w);
float cpu_softmax_xent_forward(const OpsCtx *ctx, float *probs, const float *logits,
                               const int *labels, int n, int c);
void cpu_softmax_xent_backward(const OpsCtx *ctx, float *dlogits, const float *probs,
                               const int *labels, int n, int c);
size_t cpu_attention_workspace_floats(int n, int c, int l, int nthreads);
void cpu_attention_forward(const OpsCtx *ctx, float *y, float *saved, const float *x,
                           const float *w_qkv, const float *b_qkv, const float *w_out,
                           const float *b_out, int n, int c, int l);
void cpu_attention_backward(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv,
                            float *dw_out, float *db_out, const float *dy, const float *x,
                            const float *saved, const float *w_qkv, const float *w_out, int n,
                            int c, int l);

#endif
