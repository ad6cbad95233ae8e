/* Adam with torch.optim.Adam's arithmetic (no weight decay, no amsgrad), operation for
 * operation, so a run can be compared with the PyTorch reference step by step: the step's
 * scalars here, the per-element update in the backend (adam_update, ops.h). */
#include "optim/adam.h"

#include <math.h>

void adam_step(const OpsCtx *ctx, Adam *opt, float *param, const float *grad, float *m, float *v,
               size_t count) {
    opt->step += 1;
    const double b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr;
    const double bc1 = 1.0 - pow(b1, (double)opt->step);
    const double bc2 = 1.0 - pow(b2, (double)opt->step);
    /* Scalars enter the tensor kernels as floats, as in PyTorch's CPU kernels. */
    const AdamScalars s = {.beta1 = (float)b1,
                           .one_minus_b1 = (float)(1.0 - b1),
                           .beta2 = (float)b2,
                           .one_minus_b2 = (float)(1.0 - b2),
                           .step_size = (float)(lr / bc1),
                           .bc2_sqrt = (float)sqrt(bc2),
                           .eps = (float)opt->eps};
    adam_update(ctx, param, grad, m, v, count, &s);
}
