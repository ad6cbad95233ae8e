/* Winograd F(2x2, 3x3) and F(4x4, 3x3) for Conv2d with a 3x3 kernel, stride 1 and padding 1:
 * the fast paths beside im2col + SGEMM (conv.c), which conv2d_forward and conv2d_backward
 * choose for such shapes when both channel counts reach WINOGRAD_MIN_CHANNELS (conv2d_algo).
 * Same conventions as ops.h: gradients accumulate, NULL skips, all scratch from ctx->ws,
 * bit-identical results for a fixed nthreads.
 *
 * The environment variable DDPM_CONV=im2col (read once, at the first convolution) turns the
 * Winograd path off everywhere, for comparisons and as an escape hatch; unset or
 * DDPM_CONV=auto is the default choice. Any other value is treated as auto (the command line
 * warns about it: ops_cpu_conv_ignored in ops/cpu.h).
 *
 * This header also exposes the choice itself, so tests and benchmarks can run either path. */
#ifndef DDPM_OPS_WINOGRAD_H
#define DDPM_OPS_WINOGRAD_H

#include <stddef.h>

#include "ops/ops.h"

/* Below this many input or output channels the transforms cost more than the 2.25x fewer
 * multiplies save (and the 1-channel first and last layers make a degenerate GEMM). */
#define WINOGRAD_MIN_CHANNELS 16

/* 1 when DDPM_CONV=im2col asks for im2col everywhere. */
int conv_im2col_forced(void);
/* 1 if Winograd can compute this conv2d shape at all (K 3, stride 1, padding 1). */
int conv_winograd_geometry(const ConvShape *s);
/* 1 if conv2d_forward / conv2d_backward use Winograd for s: the geometry, both channel counts
 * >= WINOGRAD_MIN_CHANNELS, and DDPM_CONV not set to im2col. */
int conv2d_uses_winograd(const ConvShape *s);

/* Workspace floats of the Winograd path alone (conv2d_workspace_floats already covers it
 * whenever conv2d_uses_winograd could hold). s must satisfy conv_winograd_geometry. */
size_t conv2d_winograd_workspace_floats(const ConvShape *s, int nthreads);

/* The Winograd kernels: forward (b may be NULL) and the input and weight gradients (either
 * may be NULL); the bias gradient is left to conv2d_backward. */
void conv2d_winograd_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                             const float *b, const ConvShape *s);
void conv2d_winograd_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                              const float *x, const float *w, const ConvShape *s);

/* Forward with Winograd F(4x4, 3x3) (winograd.c): 1.78x fewer multiplies than F(2x2, 3x3),
 * with a larger rounding error. b may be NULL. */
void conv2d_winograd4_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                              const float *b, const ConvShape *s);
/* Backward with the input gradient by F(4x4, 3x3) (the forward's transforms on dy with the
 * kernels rotated and the channels swapped) and the weight gradient by F(2x2, 3x3). */
void conv2d_winograd4_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                               const float *x, const float *w, const ConvShape *s);

/* conv2d_forward / conv2d_backward with the algorithm named instead of chosen (conv.c).
 * CONV_ALGO_WINOGRAD (F(2x2, 3x3)) and CONV_ALGO_WINOGRAD4 (F(4x4, 3x3)) need
 * conv_winograd_geometry(s) and a workspace of at least conv2d_winograd_workspace_floats;
 * CONV_ALGO_DIRECT1 needs Co 1 and that geometry (conv2d_workspace_floats covers it);
 * CONV_ALGO_AUTO is conv2d_algo(s), what conv2d_forward and conv2d_backward run. */
typedef enum {
    CONV_ALGO_AUTO,
    CONV_ALGO_IM2COL,
    CONV_ALGO_WINOGRAD,
    CONV_ALGO_WINOGRAD4,
    CONV_ALGO_DIRECT1 /* one output channel, K 3, stride 1, padding 1: direct loops (conv.c) */
} ConvAlgo;
void conv2d_forward_algo(const OpsCtx *ctx, ConvAlgo algo, float *y, const float *x,
                         const float *w, const float *b, const ConvShape *s);
void conv2d_backward_algo(const OpsCtx *ctx, ConvAlgo algo, float *dx, float *dw, float *db,
                          const float *dy, const float *x, const float *w, const ConvShape *s);

/* F(4x4, 3x3) pays off from this image size on: measured on 128 images 64 > 64, 17.5 ms
 * against 25 ms for F(2x2, 3x3) forward at 28x28, but no faster at 14x14 or 7x7 (4 and 2
 * tiles per row, one more slot of padding each), where the more exact F(2x2, 3x3) stays. */
#define WINOGRAD4_MIN_SIZE 20
/* What conv2d_forward and conv2d_backward run for s: where conv2d_uses_winograd, F(4x4, 3x3)
 * on images of at least WINOGRAD4_MIN_SIZE rows and columns and F(2x2, 3x3) on smaller ones;
 * direct loops for one output channel; else im2col (DDPM_CONV=im2col: always im2col). */
ConvAlgo conv2d_algo(const ConvShape *s);

/* The transposed convolution with a 4x4 kernel, stride 2 and padding 1 (UpConv) by sub-pixel
 * Winograd F(2x2, 2x2) (winograd_up.c): 1.78x fewer multiplies than col2im + SGEMM, with
 * transforms whose coefficients are 0 and +-1. conv_transpose2d_forward / _backward use it
 * where conv_transpose2d_uses_winograd: that geometry, both channel counts >=
 * WINOGRAD_MIN_CHANNELS, inputs of at least WINOGRAD_UP_MIN_SIZE rows and columns, DDPM_CONV
 * not set to im2col. conv_transpose2d_workspace_floats covers its workspace for that
 * geometry. */
/* Measured on 128 images: 14x14 -> 28x28 128 > 64 forward 44 -> 30 ms, backward 83 -> 66 ms;
 * but 7x7 -> 14x14 256 > 64 slower (21 -> 23-33 ms, 40 -> 50-72 ms: a 4x4 grid of tiles
 * with a partial last row and column, and few tiles per GEMM), where col2im stays. */
#define WINOGRAD_UP_MIN_SIZE 10
int conv_transpose_up_geometry(const ConvShape *s);
int conv_transpose2d_uses_winograd(const ConvShape *s);
size_t conv_transpose2d_winograd_workspace_floats(const ConvShape *s, int nthreads);
void conv_transpose2d_winograd_forward(const OpsCtx *ctx, float *y, const float *x,
                                       const float *w, const float *b, const ConvShape *s);
void conv_transpose2d_winograd_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                                        const float *x, const float *w, const ConvShape *s);
/* conv_transpose2d_forward / _backward with the algorithm named: CONV_ALGO_IM2COL (col2im +
 * SGEMM, or the outer product for a 1x1 input), CONV_ALGO_WINOGRAD (needs
 * conv_transpose_up_geometry) or CONV_ALGO_AUTO (the choice above). */
void conv_transpose2d_forward_algo(const OpsCtx *ctx, ConvAlgo algo, float *y, const float *x,
                                   const float *w, const float *b, const ConvShape *s);
void conv_transpose2d_backward_algo(const OpsCtx *ctx, ConvAlgo algo, float *dx, float *dw,
                                    float *db, const float *dy, const float *x, const float *w,
                                    const ConvShape *s);

#endif
