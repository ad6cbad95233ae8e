/* Reference operators: plain loops that follow the PyTorch definitions literally, single
 * threaded, accumulating in double. They exist to validate the fast paths of ops.h (tests
 * compare the two and check these against finite differences); never use them in training.
 * Same signatures and semantics as ops.h (gradients accumulate, NULL skips), minus the ctx. */
#ifndef DDPM_OPS_REF_H
#define DDPM_OPS_REF_H

#include <stdint.h>

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

#endif
