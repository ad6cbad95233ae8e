/* Self-attention over the positions of a feature map, the operator behind the UNet's
 * optional attention layers (`ddpm train --attention`). Same conventions as ops.h: outputs
 * first, gradients accumulate with +=, a NULL gradient pointer skips that work, the only
 * scratch memory is ctx->ws. The CPU backend runs OpenMP across the batch with per-thread
 * weight-gradient partials summed in thread order (bit-identical for a fixed ctx->nthreads)
 * and cblas for the products.
 *
 * One residual single-head layer on x (N, C, L) with L = H W positions, no normalisation;
 * per image, with X the (C, L) matrix of that image:
 *   [Q; K; V] (3C, L) = W_qkv (3C, C) X + b_qkv (3C)      1x1 projections: Linear over channels
 *   S (L, L)          = Q^T K / sqrt(C)                     S[i][j]: query i, key j
 *   P                 = softmax of every row of S           (over the keys j)
 *   O (C, L)          = V P^T                               O[c][i] = sum_j P[i][j] V[c][j]
 *   y (C, L)          = X + W_out (C, C) O + b_out (C)
 * Weight layouts are PyTorch's Linear (Fo, Fi): W_qkv rows 0..C-1 make q, C..2C-1 k, 2C..3C-1 v
 * (the layout of nn.MultiheadAttention's in_proj_weight). */
#ifndef DDPM_ATTENTION_H
#define DDPM_ATTENTION_H

#include <stddef.h>

#include "ops/ops.h"

/* Floats that forward saves for backward (Q, K, V, P, O of every image): n (4 C L + L L). */
size_t attention_saved_floats(int n, int c, int l);
/* Floats of ctx->ws that forward and backward need with nthreads threads (the most that any
 * registered backend needs, as the convolutions' queries in ops.h). */
size_t attention_workspace_floats(int n, int c, int l, int nthreads);

/* y (N, C, L) = x + attention(x) as above; saved (attention_saved_floats) receives what backward
 * reads. b_qkv and b_out may be NULL (no bias). y must not alias x or saved. */
void attention_forward(const OpsCtx *ctx, float *y, float *saved, const float *x,
                       const float *w_qkv, const float *b_qkv, const float *w_out,
                       const float *b_out, int n, int c, int l);

/* From dy (N, C, L), the gradient of y: dx (N, C, L) += dy + the gradient through the
 * attention path; dw_qkv (3C, C), db_qkv (3C), dw_out (C, C), db_out (C) += their gradients.
 * x and saved are forward's. Any output may be NULL. */
void attention_backward(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv,
                        float *dw_out, float *db_out, const float *dy, const float *x,
                        const float *saved, const float *w_qkv, const float *w_out, int n, int c,
                        int l);

#endif
