/* The operator interface: forward and backward of every layer of the UNet, plus the loss.
 * Tensors are plain float arrays in NCHW order that live wherever the backend keeps them
 * (host memory for the CPU backend); the caller owns every buffer, and the only scratch
 * memory an operator may use is the workspace it is handed (nothing is allocated inside a
 * training step).
 *
 * Conventions (as in llm.c): outputs first, then inputs, then sizes. Every gradient
 * output (names starting with d) ACCUMULATES with +=, so callers zero gradients first.
 * A NULL gradient pointer means "not needed" and that work is skipped.
 * Parameter layouts follow PyTorch so weights load into torch unchanged:
 *   Conv2d weight (Co, Ci, K, K); ConvTranspose2d weight (Ci, Co, K, K); Linear weight (Fo, Fi). */
#ifndef DDPM_OPS_H
#define DDPM_OPS_H

#include <stddef.h>
#include <stdint.h>

/* The implementation every operator below forwards to (backend.h); the registry there
 * names them ("cpu", "ref"). */
typedef struct Backend Backend;

/* Execution context shared by all operators of one backend instance. */
typedef struct {
    int nthreads;     /* parallel width; results are bit-identical for a fixed value */
    float *ws;        /* scratch memory, ws_floats floats, the backend's memory */
    size_t ws_floats;
    const Backend *be; /* who computes: every operator below forwards to be */
    /* Data-parallel training (synchronised BatchNorm): when set, training-mode BatchNorm
     * passes its per-channel partial sums (and their value count) to sum_across, which
     * replaces v[0..n) in place by their sums over every process of the run, so each process
     * normalises with the statistics of the whole batch. NULL: one process, and the operators
     * compute exactly as without this field. Host memory, doubles. */
    void (*sum_across)(void *arg, double *v, int n);
    void *sum_arg;
} OpsCtx;

/* Sets *ctx to the backend named device ("cpu", "ref"; NULL: the default, cpu) with nthreads
 * threads and no workspace (the caller sizes ctx->ws with the *_workspace_floats queries).
 * Returns 0, or -1 with err_set for an unknown device name. */
int ops_ctx_init(OpsCtx *ctx, const char *device, int nthreads);

/* Geometry of a convolution or transposed convolution, batch included.
 * For conv2d: (h, w) is the input, ho = (h + 2 pad - k) / stride + 1.
 * For conv_transpose2d: (h, w) is the input, ho = (h - 1) stride - 2 pad + k. */
typedef struct {
    int n, ci, co, h, w, k, stride, pad, ho, wo;
} ConvShape;

/* Fill ho, wo of a shape from the other fields; returns the shape. */
ConvShape conv_shape(int n, int ci, int co, int h, int w, int k, int stride, int pad);
ConvShape conv_transpose_shape(int n, int ci, int co, int h, int w, int k, int stride, int pad);

/* Floats of workspace needed by forward and backward of this shape with nthreads threads:
 * the most that any registered backend needs (each backend answers for itself through
 * its Backend entry of the same name), so a buffer sized by this fits every device. */
size_t conv2d_workspace_floats(const ConvShape *s, int nthreads);
size_t conv_transpose2d_workspace_floats(const ConvShape *s, int nthreads);

/* A short tag of the method the context's backend runs for this convolution (transposed:
 * conv_transpose2d), for profiles: "" for the plain one, else the backend's own word (the CPU
 * backend's "W4", "W" and "Wt" are its Winograd paths). */
const char *conv_method(const OpsCtx *ctx, const ConvShape *s, int transposed);

/* y (N,Co,Ho,Wo) = conv(x (N,Ci,H,W), w (Co,Ci,K,K)) + b (Co). b may be NULL. */
void conv2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                    const ConvShape *s);
/* dx (N,Ci,H,W) += ..., dw (Co,Ci,K,K) += ..., db (Co) += ... from dy (N,Co,Ho,Wo). */
void conv2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const ConvShape *s);

/* y (N,Co,Ho,Wo) = conv_transpose(x (N,Ci,H,W), w (Ci,Co,K,K)) + b (Co). */
void conv_transpose2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                              const float *b, const ConvShape *s);
void conv_transpose2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db,
                               const float *dy, const float *x, const float *w,
                               const ConvShape *s);

/* BatchNorm2d over x (N,C,HW). Training mode: normalise with the batch mean and biased
 * variance, save mean (C) and rstd (C) = 1/sqrt(var+eps) for backward, and update the
 * running statistics with momentum using the unbiased variance (as PyTorch).
 * With ctx->sum_across set, the training-mode operators (these and bn_gelu's) compute what one
 * process would on the union of every process's batch: forward calls it twice (C sums and the
 * value count, then C squared deviations from the global mean), backward once (C sums of dy,
 * C of dy (x - mean), the count) for dx, while dgamma, dbeta accumulate the LOCAL sums (the
 * trainer sums parameter gradients across processes). The calls are the same in number and
 * order on every process whatever its n >= 1; evaluation mode makes none. */
void batchnorm2d_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                               float *running_mean, float *running_var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float momentum, float eps);
/* Evaluation mode: normalise with the running statistics. */
void batchnorm2d_forward_eval(const OpsCtx *ctx, float *y, const float *x, const float *gamma,
                              const float *beta, const float *running_mean,
                              const float *running_var, int n, int c, int hw, float eps);
/* Backward of training mode (mean, rstd as saved by forward_train). */
void batchnorm2d_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *x, const float *mean,
                                const float *rstd, const float *gamma, int n, int c, int hw);
/* Backward of evaluation mode (statistics are constants). */
void batchnorm2d_backward_eval(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, const float *running_mean,
                               const float *running_var, const float *gamma, int n, int c,
                               int hw, float eps);

/* BatchNorm2d (training mode) then exact GELU, fused: y = GELU(BatchNorm(x)) with the
 * statistics saved and updated as batchnorm2d_forward_train does (the same bits as that
 * followed by gelu_forward). Backward from dy, the gradient at GELU's output: dgamma, dbeta
 * accumulate; dx (N,C,HW) is OVERWRITTEN (not accumulated) with the gradient at x, what
 * gelu_backward into a zeroed buffer then batchnorm2d_backward_train into a zeroed dx give
 * (to float rounding: the sums are ordered differently). */
void bn_gelu_forward_train(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                           float *running_mean, float *running_var, const float *x,
                           const float *gamma, const float *beta, int n, int c, int hw,
                           float momentum, float eps);
void bn_gelu_backward_train(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x, const float *mean, const float *rstd,
                            const float *gamma, const float *beta, int n, int c, int hw);

/* Exact GELU y = x Phi(x) on count elements. */
void gelu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count);
void gelu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int64_t count);

/* Global average pool: y (N,C) = mean over HW of x (N,C,HW). (AvgPool2d(7) on 7x7.) */
void avgpool_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int hw);
void avgpool_backward(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw);

/* Channel concatenation y (N,Ca+Cb,HW) = [a (N,Ca,HW), b (N,Cb,HW)]. */
void concat_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, int n, int ca,
                    int cb, int hw);
void concat_backward(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
                     int cb, int hw);

/* Linear: y (N,Fo) = x (N,Fi) w^T + b, w (Fo,Fi). */
void linear_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                    int n, int fi, int fo);
void linear_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int n, int fi, int fo);

/* Per-channel affine conditioning: y (N,C,HW) = scale (N,C) * x + shift (N,C).
 * scale may be NULL (then y = x + shift); y may alias x. In backward, dscale/dshift
 * accumulate the spatial sums; x is the input before the affine map. */
void film_forward(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                  const float *shift, int n, int c, int hw);
void film_backward(const OpsCtx *ctx, float *dx, float *dscale, float *dshift, const float *dy,
                   const float *x, const float *scale, int n, int c, int hw);

/* Mean squared error over count elements; backward: dpred += 2 (pred - target) / count. */
float mse_forward(const OpsCtx *ctx, const float *pred, const float *target, int64_t count);
void mse_backward(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                  int64_t count);

/* ==== Memory and whole-tensor operations ==================================================
 * Everything above the operators touches tensor memory only through these, so that a
 * backend whose memory is not the host's (a GPU) needs no change above this interface.
 * dev_alloc returns zeroed memory (aborts on exhaustion, as xmalloc); upload and download
 * copy between host memory and the backend's; fill and copy work on the backend's memory. */
void *dev_alloc(const OpsCtx *ctx, size_t bytes);
void dev_free(const OpsCtx *ctx, void *p, size_t bytes);
void dev_upload(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
void dev_download(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
void dev_fill(const OpsCtx *ctx, float *dst, float value, size_t count);
void dev_copy(const OpsCtx *ctx, float *dst, const float *src, size_t count);

/* y = a + b over count elements (y may alias a or b). */
void add_forward(const OpsCtx *ctx, float *y, const float *a, const float *b, size_t count);
/* y = x + alpha z over count elements (the denoiser's noisy input); y may alias x or z. */
void scale_add(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
               size_t count);
/* Forward noising, per image i of n with per pixels: xt = ca[i] x0 + cb[i] eps, where
 * ca (n), cb (n) are sqrt(abar_t) and sqrt(1 - abar_t) of image i's timestep. */
void noising_forward(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                     const float *ca, const float *cb, int n, int per);
/* Sinusoidal features of t/T for n inputs: with s = 1000 t/T, half = E / 2 and
 * f_k = 10000^(-k / half), out (N, E) = (sin(s f_0) .. sin(s f_{half-1}), cos(s f_0) .. ). */
void time_embedding_forward(const OpsCtx *ctx, float *out, const float *tn, int n, int E);
/* BatchNorm (running statistics) folded into the preceding convolution: per output channel o,
 * s = gamma / sqrt(running_var + eps); wf = w s, bf = (b - running_mean) s + beta. w is
 * (Co, Ci, K, K), or (Ci, Co, K, K) when transposed; wf, bf as w, b. */
void bn_fold(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
             const float *gamma, const float *beta, const float *running_mean,
             const float *running_var, int ci, int co, int k, int transposed, float eps);

/* Adam's per-element update with the scalars optim/adam.c derives for the step. */
typedef struct {
    float beta1, one_minus_b1, beta2, one_minus_b2, step_size, bc2_sqrt, eps;
} AdamScalars;
void adam_update(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                 size_t count, const AdamScalars *s);
/* ema = d ema + (1 - d) x over count elements. */
void ema_update(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count);
/* Exchange a and b over count elements. */
void swap_values(const OpsCtx *ctx, float *a, float *b, size_t count);
/* 1 when every one of count values is finite, else 0. */
int all_finite(const OpsCtx *ctx, const float *x, size_t count);
/* Sum over count elements of (a - b)^2, accumulated in double in index order. */
double sq_diff_sum(const OpsCtx *ctx, const float *a, const float *b, size_t count);

/* Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) over count values. */
void guidance_forward(const OpsCtx *ctx, float *eps, const float *eps_c, const float *eps_u,
                      float gamma, size_t count);
/* One DDPM reverse step with the schedule's coefficients for step t (diffusion/schedule.c):
 * x0 = c_x0 x_t - c_eps eps; x_prev = k0 x0 + kt x_t (+ sd z when z is not NULL), in double.
 * x_prev may alias xt. */
typedef struct {
    double c_x0, c_eps, k0, kt, sd;
} DdpmCoefs;
void ddpm_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
               const float *z, const DdpmCoefs *c, size_t count);
/* One DDIM step: x0 = c_x0 x_t - c_eps eps (clip: x0 clipped to [0, 1] and eps = (x_t - a_t
 * x0) / s_t); x_prev = a_prev x0 + dir eps (+ sigma z when z is not NULL), in double. */
typedef struct {
    double c_x0, c_eps, a_t, s_t, a_prev, dir, sigma;
    int clip;
} DdimCoefs;
void ddim_step(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
               const float *z, const DdimCoefs *c, size_t count);
/* One step of a multistep solver in data prediction (diffusion/solver.h): the prediction of
 * the clean image m0 = c_x0 x_t - c_eps eps (clip: clipped to [0, 1]) is written to m0, then
 * x_next = a x_t + w0 m0 + w1 m1 + w2 m2 + s z, in double; m1, m2 (earlier steps' m0) and z
 * (fresh noise) may be NULL where their weight is 0. x_next may alias xt. */
typedef struct {
    double c_x0, c_eps, a, w0, w1, w2, s;
    int clip;
} MultistepCoefs;
void multistep_step(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                    const float *eps, const float *m1, const float *m2, const float *z,
                    const MultistepCoefs *c, size_t count);

/* ==== Classifier operators (the judge network of src/model/classifier.c) ===================
 * Same conventions as above. */

/* ReLU y = max(x, 0) on count elements (y may alias x); backward dx += dy where x > 0,
 * with x the input of forward (the subgradient at 0 is 0, as PyTorch). */
void relu_forward(const OpsCtx *ctx, float *y, const float *x, int64_t count);
void relu_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int64_t count);

/* Max pooling 2x2, stride 2: y (N,C,H/2,W/2) = max over each window of x (N,C,H,W); nc = N C,
 * H and W even. Backward routes dy to the first maximum of each window in row-major order
 * (PyTorch's choice for ties), found again from x: dx (N,C,H,W) += ... */
void maxpool2x2_forward(const OpsCtx *ctx, float *y, const float *x, int nc, int h, int w);
void maxpool2x2_backward(const OpsCtx *ctx, float *dx, const float *dy, const float *x, int nc,
                         int h, int w);

/* Softmax cross-entropy, mean over the batch: loss = -(1/N) sum_i log softmax(logits_i)[label_i]
 * for logits (N,C) and labels (N) in [0, C). Writes the softmax probs (N,C) for backward.
 * Backward: dlogits (N,C) += (probs - onehot(labels)) / N. */
float softmax_xent_forward(const OpsCtx *ctx, float *probs, const float *logits,
                           const int *labels, int n, int c);
void softmax_xent_backward(const OpsCtx *ctx, float *dlogits, const float *probs,
                           const int *labels, int n, int c);

#endif
