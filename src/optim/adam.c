/* Adam with torch.optim.Adam's arithmetic (no weight decay, no amsgrad), operation for
 * operation, so a run can be compared with the PyTorch reference step by step. */
#include "optim/adam.h"

#include <math.h>

void adam_step(Adam *opt, float *param, const float *grad, float *m, float *v, size_t count) {
    opt->step += 1;
    const double b1 = opt->beta1, b2 = opt->beta2, lr = opt->lr;
    const double bc1 = 1.0 - pow(b1, (double)opt->step);
    const double bc2 = 1.0 - pow(b2, (double)opt->step);
    /* Scalars enter the tensor kernels as floats, as in PyTorch's CPU kernels. */
    const float beta1 = (float)b1, one_minus_b1 = (float)(1.0 - b1);
    const float beta2 = (float)b2, one_minus_b2 = (float)(1.0 - b2);
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)opt->eps;
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
