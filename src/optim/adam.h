/* Adam (Kingma and Ba) with PyTorch's update order, so steps match torch.optim.Adam. */
#ifndef DDPM_ADAM_H
#define DDPM_ADAM_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps;
    long step; /* number of updates done so far */
} Adam;

/* One update of count parameters: m, v are the moment buffers (zero at the start);
 * increments opt->step first, as torch does before computing bias corrections. */
void adam_step(Adam *opt, float *param, const float *grad, float *m, float *v, size_t count);

#endif
