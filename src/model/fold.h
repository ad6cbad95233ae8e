/* Inference-only weights (ddpm export): every unit's eval-mode BatchNorm folded into the
 * convolution in front of it, and, when such weights are loaded, the BatchNorm layers made
 * the identity, so that the forward code runs them unchanged. */
#ifndef DDPM_FOLD_H
#define DDPM_FOLD_H

#include "model/unet.h"

/* BatchNorm2d's eps, as the forward passes (unet_pass.c) use it. */
#define UNET_BN_EPS 1e-5f
/* The running variance that makes a BatchNorm the identity: the float nearest 1 - eps, whose
 * sum with eps is 1 exactly in float (the folded inference pass: scale 1/sqrtf(1) = 1) and
 * within 7e-9 of 1 in double (the evaluation passes: the scale rounds to 1.0f on the CPU, and
 * x (1 - 7e-9) rounds back to x in the reference backend). tests/test_export.c checks all
 * three. */
#define UNET_BN_IDENTITY_VAR (1.0f - UNET_BN_EPS)

/* Whether t is one of a unit's BatchNorm tensors (U.bn.weight, U.bn.bias, U.bn.running_mean,
 * U.bn.running_var). Every BatchNorm of the UNet directly follows a convolution (its unit's),
 * so every one of them folds. */
int unet_is_bn_tensor(const UnetTensor *t);

/* The identity's value of a BatchNorm tensor into dst (t->count floats): weight 1, bias and
 * running mean 0, running variance UNET_BN_IDENTITY_VAR. Returns 0, or -1 when t is not a
 * BatchNorm tensor (dst untouched). */
int unet_bn_identity(const UnetTensor *t, float *dst);

/* Fold in place, on a host copy of m's state (params then buffers, n_params + n_buffers
 * floats laid out as the tensor table says, as unet_state_download returns it): per output
 * channel o of each unit, s = gamma / sqrtf(var + eps), w' = w s, b' = (b - mean) s + beta
 * (the arithmetic of ops.h bn_fold, so the folded weights are bit for bit those the
 * inference pass computes from the unfolded ones), then the unit's BatchNorm set to the
 * identity. */
void unet_fold_state(const Unet *m, float *state);

#endif
