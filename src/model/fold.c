/* BatchNorm folded into the convolutions on a host copy of a model's state, and the identity
 * BatchNorm that stands in for the folded layers when such weights are loaded. */
#include "model/fold.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

/* The part of a BatchNorm tensor's name after "U.bn.", or NULL. */
static const char *bn_part(const char *name) {
    const char *at = strstr(name, ".bn.");
    return at ? at + 4 : NULL;
}

int unet_is_bn_tensor(const UnetTensor *t) {
    const char *p = bn_part(t->name);
    return p && (strcmp(p, "weight") == 0 || strcmp(p, "bias") == 0 ||
                 strcmp(p, "running_mean") == 0 || strcmp(p, "running_var") == 0);
}

int unet_bn_identity(const UnetTensor *t, float *dst) {
    if (!unet_is_bn_tensor(t)) return -1;
    const char *p = bn_part(t->name);
    const float v = strcmp(p, "weight") == 0        ? 1.0f
                    : strcmp(p, "running_var") == 0 ? UNET_BN_IDENTITY_VAR
                                                    : 0.0f;
    for (size_t i = 0; i < t->count; i++) dst[i] = v;
    return 0;
}

/* Host address of unit u's tensor "U.part" in state. */
static float *unit_tensor(const Unet *m, float *state, const UnetUnit *u, const char *part) {
    char name[64];
    snprintf(name, sizeof name, "%s.%s", u->name, part);
    const UnetTensor *t = unet_find(m, name);
    DDPM_CHECK(t != NULL);
    return state + (t->is_buffer ? m->n_params : 0) + t->offset;
}

void unet_fold_state(const Unet *m, float *state) {
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnetUnit *u = &m->units[i];
        float *w = unit_tensor(m, state, u, "conv.weight"), *b = unit_tensor(m, state, u, "conv.bias");
        float *gamma = unit_tensor(m, state, u, "bn.weight"), *beta = unit_tensor(m, state, u, "bn.bias");
        float *mean = unit_tensor(m, state, u, "bn.running_mean");
        float *var = unit_tensor(m, state, u, "bn.running_var");
        const size_t kk = (size_t)u->k * (size_t)u->k, co = (size_t)u->co, ci = (size_t)u->ci;
        for (size_t o = 0; o < co; o++) {
            const float s = gamma[o] / sqrtf(var[o] + UNET_BN_EPS);
            b[o] = (b[o] - mean[o]) * s + beta[o];
            for (size_t c = 0; c < ci; c++) {
                /* (Co, Ci, K, K), or (Ci, Co, K, K) for a transposed convolution */
                float *wk = w + (u->transposed ? c * co + o : o * ci + c) * kk;
                for (size_t j = 0; j < kk; j++) wk[j] *= s;
            }
            gamma[o] = 1.0f;
            beta[o] = 0.0f;
            mean[o] = 0.0f;
            var[o] = UNET_BN_IDENTITY_VAR;
        }
    }
}
