/* The reference backend (--device ref): every operator of ops.h and attention.h as plain
 * loops that follow the PyTorch definitions literally, single threaded, accumulating in
 * double, host memory. Slow and obviously correct: tests compare the CPU backend with it and
 * check it against finite differences. Same signatures and semantics as ops.h (gradients
 * accumulate, NULL skips), minus the ctx; ref_backend.c puts them behind the Backend table. */
#ifndef DDPM_BACKEND_REF_H
#define DDPM_BACKEND_REF_H

#include <stddef.h>
#include <stdint.h>

#include "ops/attention.h"
#include "ops/ops.h"

void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                        const ConvShape *s);
void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, const ConvShape *s);
void conv_transpose2d_forward_ref(float *y, const float *x, const float *w, const float *b,
                                  const ConvShape *s);
void conv_transpose2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                                   const float *w, const ConvShape *s);

void batchnorm2d_forward_train_ref(float *y, float *mean, float *rstd, float *running_mean,
                                   float *running_var, const float *x, const float *gamma,
                                   const float *beta, int n, int c, int hw, float momentum,
                                   float eps);
void batchnorm2d_forward_eval_ref(float *y, const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var, int n, int c,
                                  int hw, float eps);
void batchnorm2d_backward_train_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                    const float *x, const float *mean, const float *rstd,
                                    const float *gamma, int n, int c, int hw);
void batchnorm2d_backward_eval_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                   const float *x, const float *running_mean,
                                   const float *running_var, const float *gamma, int n, int c,
                                   int hw, float eps);

void bn_gelu_forward_train_ref(float *y, float *mean, float *rstd, float *running_mean,
                               float *running_var, const float *x, const float *gamma,
                               const float *beta, int n, int c, int hw, float momentum, float eps);
void bn_gelu_backward_train_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *x, const float *mean, const float *rstd,
                                const float *gamma, const float *beta, int n, int c, int hw);

/* The training-mode operators above with the hook of OpsCtx.sum_across (ops.h): when
 * sum_across is not NULL they compute with the statistics of every process's batch; the plain
 * ones are these with sum_across NULL. */
void batchnorm2d_forward_train_sync_ref(float *y, float *mean, float *rstd, float *running_mean,
                                        float *running_var, const float *x, const float *gamma,
                                        const float *beta, int n, int c, int hw, float momentum,
                                        float eps, void (*sum_across)(void *, double *, int),
                                        void *sum_arg);
void batchnorm2d_backward_train_sync_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, const float *mean, const float *rstd,
                                         const float *gamma, int n, int c, int hw,
                                         void (*sum_across)(void *, double *, int),
                                         void *sum_arg);
void bn_gelu_forward_train_sync_ref(float *y, float *mean, float *rstd, float *running_mean,
                                    float *running_var, const float *x, const float *gamma,
                                    const float *beta, int n, int c, int hw, float momentum,
                                    float eps, void (*sum_across)(void *, double *, int),
                                    void *sum_arg);
void bn_gelu_backward_train_sync_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                                     const float *x, const float *mean, const float *rstd,
                                     const float *gamma, const float *beta, int n, int c, int hw,
                                     void (*sum_across)(void *, double *, int), void *sum_arg);

void gelu_forward_ref(float *y, const float *x, int64_t count);
void gelu_backward_ref(float *dx, const float *dy, const float *x, int64_t count);

void avgpool_forward_ref(float *y, const float *x, int nc, int hw);
void avgpool_backward_ref(float *dx, const float *dy, int nc, int hw);

void concat_forward_ref(float *y, const float *a, const float *b, int n, int ca, int cb, int hw);
void concat_backward_ref(float *da, float *db, const float *dy, int n, int ca, int cb, int hw);

void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int n, int fi,
                        int fo);
void linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x,
                         const float *w, int n, int fi, int fo);

void film_forward_ref(float *y, const float *x, const float *scale, const float *shift, int n,
                      int c, int hw);
void film_backward_ref(float *dx, float *dscale, float *dshift, const float *dy, const float *x,
                       const float *scale, int n, int c, int hw);

float mse_forward_ref(const float *pred, const float *target, int64_t count);
void mse_backward_ref(float *dpred, const float *pred, const float *target, int64_t count);

/* Self-attention (ref_layers.c); saved has forward's layout of attention.h. */
void attention_forward_ref(float *y, float *saved, const float *x, const float *w_qkv,
                           const float *b_qkv, const float *w_out, const float *b_out, int n, int c,
                           int l);
void attention_backward_ref(float *dx, float *dw_qkv, float *db_qkv, float *dw_out, float *db_out,
                            const float *dy, const float *x, const float *saved, const float *w_qkv,
                            const float *w_out, int n, int c, int l);

/* The classifier's operators (ref_layers.c). */
void relu_forward_ref(float *y, const float *x, int64_t count);
void relu_backward_ref(float *dx, const float *dy, const float *x, int64_t count);
void maxpool2x2_forward_ref(float *y, const float *x, int nc, int h, int w);
void maxpool2x2_backward_ref(float *dx, const float *dy, const float *x, int nc, int h, int w);
float softmax_xent_forward_ref(float *probs, const float *logits, const int *labels, int n, int c);
void softmax_xent_backward_ref(float *dlogits, const float *probs, const int *labels, int n, int c);

/* Memory (host; the backend's upload, download and copy are all dev_copy_bytes_ref) and the
 * whole-tensor operations (ref_tensor.c). */
void *dev_alloc_ref(size_t bytes);
void dev_free_ref(void *p);
void dev_copy_bytes_ref(void *dst, const void *src, size_t bytes);
void dev_fill_ref(float *dst, float value, size_t count);
void add_forward_ref(float *y, const float *a, const float *b, size_t count);
void scale_add_ref(float *y, const float *x, float alpha, const float *z, size_t count);
void noising_forward_ref(float *xt, const float *x0, const float *eps, const float *ca,
                         const float *cb, int n, int per);
void time_embedding_forward_ref(float *out, const float *tn, int n, int E);
void bn_fold_ref(float *wf, float *bf, const float *w, const float *b, const float *gamma,
                 const float *beta, const float *running_mean, const float *running_var, int ci,
                 int co, int k, int transposed, float eps);
void adam_update_ref(float *param, const float *grad, float *m, float *v, size_t count,
                     const AdamScalars *s);
void ema_update_ref(float *ema, const float *x, float d, size_t count);
void swap_values_ref(float *a, float *b, size_t count);
int all_finite_ref(const float *x, size_t count);
double sq_diff_sum_ref(const float *a, const float *b, size_t count);
void guidance_forward_ref(float *eps, const float *eps_c, const float *eps_u, float gamma,
                          size_t count);
void ddpm_step_ref(float *x_prev, const float *xt, const float *eps, const float *z,
                   const DdpmCoefs *c, size_t count);
void multistep_step_ref(float *x_next, float *m0, const float *xt, const float *eps,
                        const float *m1, const float *m2, const float *z,
                        const MultistepCoefs *c, size_t count);
void ddim_step_ref(float *x_prev, const float *xt, const float *eps, const float *z,
                   const DdimCoefs *c, size_t count);

#endif
