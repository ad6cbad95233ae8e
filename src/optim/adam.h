/* Adam (Kingma and Ba) with PyTorch's update order, so steps match torch.optim.Adam. */
#ifndef DDPM_ADAM_H
#define DDPM_ADAM_H

#include <stddef.h>

#include "ops/ops.h"

/* Hyperparameters are doubles because PyTorch keeps them as Python floats (doubles):
 * (double)0.999f differs from 0.999 by 1.3e-5 relative, which would show in 1 - beta2
 * and in the bias corrections. */
typedef struct {
    double lr, beta1, beta2, eps;
    long step; /* number of updates done so far */
} Adam;

/* One update of count parameters in ctx's memory: m, v are the moment buffers (zero at the
 * start); increments opt->step first, as torch does before computing bias corrections. */
void adam_step(const OpsCtx *ctx, Adam *opt, float *param, const float *grad, float *m, float *v,
               size_t count);

#endif
