/* The backend interface: one table of function pointers per implementation of the operators
 * of ops.h and attention.h (as ggml's ggml_backend_i), so that the definition of an operator
 * (its header comment) stands apart from each backend's code (src/backend/<name>/). Every
 * entry has the signature of the ops.h function of the same name, and ops.c forwards each of
 * those to ctx->be. A new backend is a folder that defines one `const Backend backend_<name>`
 * with every entry filled, plus its line in the registry (backend.c); nothing above this
 * interface changes. */
#ifndef DDPM_BACKEND_H
#define DDPM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ops/attention.h"
#include "ops/ops.h"

struct Backend {
    const char *name; /* what --device names it by */
    /* Once per context before the first operator (ops_ctx_init); may be NULL. */
    void (*init)(void);

    /* Workspace floats this backend needs (ops.h, attention.h). */
    size_t (*conv2d_workspace_floats)(const ConvShape *s, int nthreads);
    size_t (*conv_transpose2d_workspace_floats)(const ConvShape *s, int nthreads);
    size_t (*attention_workspace_floats)(int n, int c, int l, int nthreads);

    /* The method run for a convolution (ops.h conv_method). */
    const char *(*conv_method)(const ConvShape *s, int transposed);

    /* The layers' operators (ops.h). */
    void (*conv2d_forward)(const OpsCtx *ctx, float *y, const float *x, const float *w,
                           const float *b, const ConvShape *s);
    void (*conv2d_backward)(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, const ConvShape *s);
    void (*conv_transpose2d_forward)(const OpsCtx *ctx, float *y, const float *x, const float *w,
                                     const float *b, const ConvShape *s);
    void (*conv_transpose2d_backward)(const OpsCtx *ctx, float *dx, float *dw, float *db,
                                      const float *dy, const float *x, const float *w,
                                      const ConvShape *s);
    /* The training-mode BatchNorm entries (plain and bn_gelu) make ctx->sum_across's calls
     * when it is set, exactly as ops.h describes: a collective, so every backend makes the
     * same calls in the same order. */
    void (*batchnorm2d_forward_train)(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                      float *running_mean, float *running_var, const float *x,
                                      const float *gamma, const float *beta, int n, int c, int hw,
                                      float momentum, float eps);
    void (*batchnorm2d_forward_eval)(const OpsCtx *ctx, float *y, const float *x,
                                     const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var, int n,
                                     int c, int hw, float eps);
    void (*batchnorm2d_backward_train)(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, const float *mean,
                                       const float *rstd, const float *gamma, int n, int c, int hw);
    void (*batchnorm2d_backward_eval)(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                      const float *dy, const float *x, const float *running_mean,
                                      const float *running_var, const float *gamma, int n, int c,
                                      int hw, float eps);
    void (*bn_gelu_forward_train)(const OpsCtx *ctx, float *y, float *mean, float *rstd,
                                  float *running_mean, float *running_var, const float *x,
                                  const float *gamma, const float *beta, int n, int c, int hw,
                                  float momentum, float eps);
    void (*bn_gelu_backward_train)(const OpsCtx *ctx, float *dx, float *dgamma, float *dbeta,
                                   const float *dy, const float *x, const float *mean,
                                   const float *rstd, const float *gamma, const float *beta, int n,
                                   int c, int hw);
    void (*gelu_forward)(const OpsCtx *ctx, float *y, const float *x, int64_t count);
    void (*gelu_backward)(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                          int64_t count);
    void (*avgpool_forward)(const OpsCtx *ctx, float *y, const float *x, int nc, int hw);
    void (*avgpool_backward)(const OpsCtx *ctx, float *dx, const float *dy, int nc, int hw);
    void (*concat_forward)(const OpsCtx *ctx, float *y, const float *a, const float *b, int n,
                           int ca, int cb, int hw);
    void (*concat_backward)(const OpsCtx *ctx, float *da, float *db, const float *dy, int n, int ca,
                            int cb, int hw);
    void (*linear_forward)(const OpsCtx *ctx, float *y, const float *x, const float *w,
                           const float *b, int n, int fi, int fo);
    void (*linear_backward)(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, int n, int fi, int fo);
    void (*film_forward)(const OpsCtx *ctx, float *y, const float *x, const float *scale,
                         const float *shift, int n, int c, int hw);
    void (*film_backward)(const OpsCtx *ctx, float *dx, float *dscale, float *dshift,
                          const float *dy, const float *x, const float *scale, int n, int c,
                          int hw);
    float (*mse_forward)(const OpsCtx *ctx, const float *pred, const float *target, int64_t count);
    void (*mse_backward)(const OpsCtx *ctx, float *dpred, const float *pred, const float *target,
                         int64_t count);

    /* Memory and whole-tensor operations (ops.h). */
    void *(*dev_alloc)(const OpsCtx *ctx, size_t bytes);
    void (*dev_free)(const OpsCtx *ctx, void *p, size_t bytes);
    void (*dev_upload)(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
    void (*dev_download)(const OpsCtx *ctx, void *dst, const void *src, size_t bytes);
    void (*dev_fill)(const OpsCtx *ctx, float *dst, float value, size_t count);
    void (*dev_copy)(const OpsCtx *ctx, float *dst, const float *src, size_t count);
    void (*add_forward)(const OpsCtx *ctx, float *y, const float *a, const float *b, size_t count);
    void (*scale_add)(const OpsCtx *ctx, float *y, const float *x, float alpha, const float *z,
                      size_t count);
    void (*noising_forward)(const OpsCtx *ctx, float *xt, const float *x0, const float *eps,
                            const float *ca, const float *cb, int n, int per);
    void (*time_embedding_forward)(const OpsCtx *ctx, float *out, const float *tn, int n, int E);
    void (*bn_fold)(const OpsCtx *ctx, float *wf, float *bf, const float *w, const float *b,
                    const float *gamma, const float *beta, const float *running_mean,
                    const float *running_var, int ci, int co, int k, int transposed, float eps);
    void (*adam_update)(const OpsCtx *ctx, float *param, const float *grad, float *m, float *v,
                        size_t count, const AdamScalars *s);
    void (*ema_update)(const OpsCtx *ctx, float *ema, const float *x, float d, size_t count);
    void (*swap_values)(const OpsCtx *ctx, float *a, float *b, size_t count);
    int (*all_finite)(const OpsCtx *ctx, const float *x, size_t count);
    double (*sq_diff_sum)(const OpsCtx *ctx, const float *a, const float *b, size_t count);
    void (*guidance_forward)(const OpsCtx *ctx, float *eps, const float *eps_c, const float *eps_u,
                             float gamma, size_t count);
    void (*ddpm_step)(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                      const float *z, const DdpmCoefs *c, size_t count);
    void (*ddim_step)(const OpsCtx *ctx, float *x_prev, const float *xt, const float *eps,
                      const float *z, const DdimCoefs *c, size_t count);
    void (*multistep_step)(const OpsCtx *ctx, float *x_next, float *m0, const float *xt,
                           const float *eps, const float *m1, const float *m2, const float *z,
                           const MultistepCoefs *c, size_t count);

    /* The classifier's operators (ops.h). */
    void (*relu_forward)(const OpsCtx *ctx, float *y, const float *x, int64_t count);
    void (*relu_backward)(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                          int64_t count);
    void (*maxpool2x2_forward)(const OpsCtx *ctx, float *y, const float *x, int nc, int h, int w);
    void (*maxpool2x2_backward)(const OpsCtx *ctx, float *dx, const float *dy, const float *x,
                                int nc, int h, int w);
    float (*softmax_xent_forward)(const OpsCtx *ctx, float *probs, const float *logits,
                                  const int *labels, int n, int c);
    void (*softmax_xent_backward)(const OpsCtx *ctx, float *dlogits, const float *probs,
                                  const int *labels, int n, int c);

    /* Self-attention (attention.h). */
    void (*attention_forward)(const OpsCtx *ctx, float *y, float *saved, const float *x,
                              const float *w_qkv, const float *b_qkv, const float *w_out,
                              const float *b_out, int n, int c, int l);
    void (*attention_backward)(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv,
                               float *dw_out, float *db_out, const float *dy, const float *x,
                               const float *saved, const float *w_qkv, const float *w_out, int n,
                               int c, int l);
};

/* The backend named name ("cpu", "ref"), or NULL with err_set for an unknown name. */
const Backend *backend_find(const char *name);
/* The backend used when none is named: cpu. */
const Backend *backend_default(void);
/* The i-th registered backend for i in [0, backend_count()). */
int backend_count(void);
const Backend *backend_at(int i);

#endif
