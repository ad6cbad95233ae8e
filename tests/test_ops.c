/* Tests of the CPU operators (ops.h) and of Adam:
 *  - every fast op against its plain reference twin (backend/ref/ref.h) on each UNet shape class,
 *    with 1, 2 and 3 threads, accumulation into non-zero gradients and NULL gradients;
 *  - every reference backward against central finite differences;
 *  - Adam against a hand computation in double; BatchNorm running statistics against the
 *    formula; bit-identical convolution gradients across runs with 2 threads;
 *  - the Winograd F(2x2, 3x3) and F(4x4, 3x3) paths against im2col on the same inputs, and
 *    against finite differences of their own forwards. */
#include "testutil.h"

#include <string.h>

#include "backend/cpu/winograd.h"
#include "backend/ref/ref.h"
#include "core/common.h"
#include "core/rng.h"
#include "ops/backend.h"
#include "ops/cpu.h"
#include "ops/ops.h"
#include "optim/adam.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static float *rand_buf(Rng *r, size_t n, float lo, float hi) {
    float *p = xmalloc(n * sizeof(float));
    rng_fill_uniform(r, p, n, lo, hi);
    return p;
}

static float *copy_buf(const float *src, size_t n) {
    float *p = xmalloc(n * sizeof(float));
    memcpy(p, src, n * sizeof(float));
    return p;
}

static float *zero_buf(size_t n) { return xcalloc(n, sizeof(float)); }

static OpsCtx ctx_make(int nthreads, size_t ws_floats) {
    OpsCtx c = {.nthreads = nthreads, .ws = xmalloc(ws_floats * sizeof(float)),
                .ws_floats = ws_floats, .be = backend_find("cpu")};
    return c;
}

/* Fast against reference: both sum the same products in a different order (and the
 * reference in double), so they agree to a few float roundings of the largest value. */
#define FAST_REL 1e-5

static int fast_close(const char *label, const float *got, const float *want, size_t n) {
    double scale = max_abs(want, n);
    return check_tensor(label, got, want, n, FAST_REL * (scale > 1.0 ? scale : 1.0), FAST_REL);
}

/* ---- shapes ----------------------------------------------------------------------------- */

static void test_shapes(void **state) {
    (void)state;
    ConvShape s = conv_shape(2, 1, 8, 28, 28, 3, 1, 1);
    assert_int_equal(s.ho, 28);
    s = conv_shape(2, 8, 8, 28, 28, 3, 2, 1);
    assert_int_equal(s.ho, 14);
    s = conv_shape(2, 8, 8, 14, 14, 3, 2, 1);
    assert_int_equal(s.ho, 7);
    s = conv_shape(2, 8, 8, 11, 9, 5, 3, 2);
    assert_int_equal(s.ho, 4);
    assert_int_equal(s.wo, 3);
    s = conv_transpose_shape(2, 8, 8, 7, 7, 4, 2, 1);
    assert_int_equal(s.ho, 14);
    s = conv_transpose_shape(2, 8, 8, 14, 14, 4, 2, 1);
    assert_int_equal(s.ho, 28);
    s = conv_transpose_shape(2, 8, 8, 1, 1, 7, 7, 0);
    assert_int_equal(s.ho, 7);
    assert_int_equal(s.wo, 7);
}

/* ---- convolutions: fast vs reference ----------------------------------------------------- */

typedef struct {
    const char *name;
    int transposed, n, ci, co, h, w, k, stride, pad;
} ConvCase;

/* The UNet's geometries with small channel counts, in both GEMM grouping regimes (28x28 is one
 * image per GEMM, 7x7 several, with a ragged last group), the first layer's single input
 * channel, general kernels, strides and paddings (even kernels, stride > kernel, non-square
 * images), the last layer's single output channel, and the 1x1-input transposed conv with
 * and without its fast path. The 3x3 s1 p1 cases with at least WINOGRAD_MIN_CHANNELS (16)
 * channels on both sides run the Winograd path (unless DDPM_CONV=im2col): with an odd size
 * (partial tiles), batches of 7 and 5 that 2 and 3 threads split unevenly, several images
 * per GEMM (7x7, 14x14), one (28x28), and images cut into bands of tile rows (96 + 64
 * channels leave room for 51 tiles per GEMM: 15x13 has 8 rows of 7, in bands of 7 and 1). */
static const ConvCase conv_cases[] = {
    {"conv 3x3 s1 p1 28x28", 0, 2, 3, 5, 28, 28, 3, 1, 1},
    {"conv 3x3 s1 p1 7x7 (grouped)", 0, 7, 4, 6, 7, 7, 3, 1, 1},
    {"conv 3x3 s2 p1 28->14", 0, 3, 2, 5, 28, 28, 3, 2, 1},
    {"conv 3x3 s2 p1 14->7", 0, 5, 3, 6, 14, 14, 3, 2, 1},
    {"conv 3x3 1->8 (first layer)", 0, 2, 1, 8, 28, 28, 3, 1, 1},
    {"conv 3x3 s1 p1 14x14 24->40", 0, 3, 24, 40, 14, 14, 3, 1, 1},
    {"conv 3x3 s1 p1 7x7 16->24 (Winograd, grouped)", 0, 7, 16, 24, 7, 7, 3, 1, 1},
    {"conv 3x3 s1 p1 9x6 20->16 (Winograd, odd)", 0, 5, 20, 16, 9, 6, 3, 1, 1},
    {"conv 3x3 s1 p1 28x28 16->16 (Winograd)", 0, 3, 16, 16, 28, 28, 3, 1, 1},
    {"conv 3x3 s1 p1 15x13 96->64 (Winograd, bands)", 0, 3, 96, 64, 15, 13, 3, 1, 1},
    {"conv 5x5 s3 p2 11x9", 0, 3, 2, 6, 11, 9, 5, 3, 2},
    {"conv 2x2 s1 p0 6x5", 0, 3, 3, 5, 6, 5, 2, 1, 0},
    {"conv 1x1 s2 p0 7x7", 0, 4, 3, 5, 7, 7, 1, 2, 0},
    {"conv 3x3 4->1 (last layer)", 0, 2, 4, 1, 28, 28, 3, 1, 1},
    {"convT 4x4 s2 p1 7->14", 1, 3, 4, 3, 7, 7, 4, 2, 1},
    {"convT 4x4 s2 p1 7->14 32->16", 1, 9, 32, 16, 7, 7, 4, 2, 1},
    {"convT 4x4 s2 p1 14->28", 1, 2, 3, 2, 14, 14, 4, 2, 1},
    {"convT 7x7 s7 p0 1->7", 1, 5, 6, 4, 1, 1, 7, 7, 0},
    {"convT 7x7 s7 p0 1->7 40->24", 1, 7, 40, 24, 1, 1, 7, 7, 0},
    {"convT 3x3 s2 p0 5x4", 1, 3, 2, 3, 5, 4, 3, 2, 0},
    {"convT 5x5 s3 p2 4x6", 1, 2, 3, 2, 4, 6, 5, 3, 2},
    {"convT 2x2 s3 p0 3x3", 1, 3, 2, 2, 3, 3, 2, 3, 0},
    {"convT 3x3 s2 p1 1x1", 1, 4, 3, 2, 1, 1, 3, 2, 1},
};

static ConvShape case_shape(const ConvCase *c) {
    return c->transposed
               ? conv_transpose_shape(c->n, c->ci, c->co, c->h, c->w, c->k, c->stride, c->pad)
               : conv_shape(c->n, c->ci, c->co, c->h, c->w, c->k, c->stride, c->pad);
}

static void conv_fwd(const OpsCtx *ctx, int tr, float *y, const float *x, const float *w,
                     const float *b, const ConvShape *s) {
    if (ctx)
        (tr ? conv_transpose2d_forward : conv2d_forward)(ctx, y, x, w, b, s);
    else
        (tr ? conv_transpose2d_forward_ref : conv2d_forward_ref)(y, x, w, b, s);
}

static void conv_bwd(const OpsCtx *ctx, int tr, float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const ConvShape *s) {
    if (ctx)
        (tr ? conv_transpose2d_backward : conv2d_backward)(ctx, dx, dw, db, dy, x, w, s);
    else
        (tr ? conv_transpose2d_backward_ref : conv2d_backward_ref)(dx, dw, db, dy, x, w, s);
}

static int conv_case_vs_ref(const ConvCase *c, int nthreads, Rng *r) {
    ConvShape s = case_shape(c);
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
    size_t nw = (size_t)s.ci * s.co * s.k * s.k, nb = (size_t)s.co;
    size_t ws = c->transposed ? conv_transpose2d_workspace_floats(&s, nthreads)
                              : conv2d_workspace_floats(&s, nthreads);
    OpsCtx ctx = ctx_make(nthreads, ws);
    float *x = rand_buf(r, nx, -1, 1), *w = rand_buf(r, nw, -1, 1), *b = rand_buf(r, nb, -1, 1);
    float *dy = rand_buf(r, ny, -1, 1);
    float *y = zero_buf(ny), *y_ref = zero_buf(ny);
    /* gradients start non-zero: every backward must accumulate */
    float *dx0 = rand_buf(r, nx, -1, 1), *dw0 = rand_buf(r, nw, -1, 1),
          *db0 = rand_buf(r, nb, -1, 1);
    float *dx = copy_buf(dx0, nx), *dw = copy_buf(dw0, nw), *db = copy_buf(db0, nb);
    float *dx_ref = copy_buf(dx0, nx), *dw_ref = copy_buf(dw0, nw), *db_ref = copy_buf(db0, nb);
    char label[128];
    int ok = 1;
    printf(" %s, %d thread(s)\n", c->name, nthreads);

    conv_fwd(&ctx, c->transposed, y, x, w, b, &s);
    conv_fwd(NULL, c->transposed, y_ref, x, w, b, &s);
    ok &= fast_close("forward y", y, y_ref, ny);
    conv_fwd(&ctx, c->transposed, y, x, w, NULL, &s);
    conv_fwd(NULL, c->transposed, y_ref, x, w, NULL, &s);
    ok &= fast_close("forward y, no bias", y, y_ref, ny);

    conv_bwd(&ctx, c->transposed, dx, dw, db, dy, x, w, &s);
    conv_bwd(NULL, c->transposed, dx_ref, dw_ref, db_ref, dy, x, w, &s);
    ok &= fast_close("backward dx", dx, dx_ref, nx);
    ok &= fast_close("backward dw", dw, dw_ref, nw);
    ok &= fast_close("backward db", db, db_ref, nb);

    /* each gradient alone (the others NULL), on top of the previous results */
    conv_bwd(&ctx, c->transposed, dx, NULL, NULL, dy, x, w, &s);
    conv_bwd(NULL, c->transposed, dx_ref, NULL, NULL, dy, x, w, &s);
    snprintf(label, sizeof label, "backward dx only");
    ok &= fast_close(label, dx, dx_ref, nx);
    conv_bwd(&ctx, c->transposed, NULL, dw, NULL, dy, x, w, &s);
    conv_bwd(NULL, c->transposed, NULL, dw_ref, NULL, dy, x, w, &s);
    ok &= fast_close("backward dw only", dw, dw_ref, nw);
    conv_bwd(&ctx, c->transposed, NULL, NULL, db, dy, x, w, &s);
    conv_bwd(NULL, c->transposed, NULL, NULL, db_ref, dy, x, w, &s);
    ok &= fast_close("backward db only", db, db_ref, nb);

    float *bufs[] = {x,   w,  b,  dy, y,      y_ref,  dx0,    dw0,
                     db0, dx, dw, db, dx_ref, dw_ref, db_ref, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_conv_vs_ref(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 1);
    int ok = 1;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        for (int nt = 1; nt <= 3; nt++) ok &= conv_case_vs_ref(&conv_cases[i], nt, &r);
    assert_true(ok);
}

/* ---- Winograd against im2col ---------------------------------------------------------------
 * The same convolution through both fast paths (forced with the _algo entry points) on the
 * same inputs, gradients starting non-zero. Both sum the same products in float, but Winograd
 * forms them from transformed values (sums of up to 4 inputs, or 9 weights with factors 1/2),
 * so its rounding differs by a few float roundings of those larger terms. Seen on these shapes:
 * at most 6e-7 of the tensor's largest magnitude (5 float epsilons); allowed: WINO_REL (17)
 * of it, plus WINO_REL relative. */
#define WINO_REL 2e-6
/* F(4x4, 3x3): its transforms have coefficients up to 8 and 1/24 and sum up to 6 terms, so the
 * products carry about ten times F(2x2)'s rounding (forward and both gradients). Seen on these
 * shapes: between 5e-6 and 1e-5 of the tensor's largest magnitude; allowed: WINO4_REL of it.
 * A wrong coefficient or tile offset gives errors of the order of the values themselves. */
#define WINO4_REL 3e-5

static int wino_close(const char *label, const float *got, const float *want, size_t n) {
    double scale = max_abs(want, n);
    return check_tensor(label, got, want, n, WINO_REL * scale, WINO_REL);
}

static int wino_vs_im2col(ConvShape s, int nthreads, Rng *r) {
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
    size_t nw = (size_t)s.ci * s.co * 9, nb = (size_t)s.co;
    size_t ws = conv2d_workspace_floats(&s, nthreads);
    size_t wsw = conv2d_winograd_workspace_floats(&s, nthreads);
    OpsCtx ctx = ctx_make(nthreads, ws > wsw ? ws : wsw);
    float *x = rand_buf(r, nx, -1, 1), *w = rand_buf(r, nw, -1, 1), *b = rand_buf(r, nb, -1, 1);
    float *dy = rand_buf(r, ny, -1, 1);
    float *y_w = zero_buf(ny), *y_i = zero_buf(ny), *y_a = zero_buf(ny);
    float *dx0 = rand_buf(r, nx, -1, 1), *dw0 = rand_buf(r, nw, -1, 1),
          *db0 = rand_buf(r, nb, -1, 1);
    float *dx_w = copy_buf(dx0, nx), *dw_w = copy_buf(dw0, nw), *db_w = copy_buf(db0, nb);
    float *dx_i = copy_buf(dx0, nx), *dw_i = copy_buf(dw0, nw), *db_i = copy_buf(db0, nb);
    int ok = 1;
    printf(" %dx%dx%dx%d %d->%d, %d thread(s)\n", s.n, s.ci, s.h, s.w, s.ci, s.co, nthreads);

    conv2d_forward_algo(&ctx, CONV_ALGO_WINOGRAD, y_w, x, w, b, &s);
    conv2d_forward_algo(&ctx, CONV_ALGO_IM2COL, y_i, x, w, b, &s);
    ok &= wino_close("forward y", y_w, y_i, ny);
    /* F(4x4, 3x3) */
    float *y4 = zero_buf(ny);
    conv2d_forward_algo(&ctx, CONV_ALGO_WINOGRAD4, y4, x, w, b, &s);
    double scale = max_abs(y_i, ny);
    ok &= check_tensor("forward y, F(4x4)", y4, y_i, ny, WINO4_REL * scale, 0);
    /* the rule: F(4x4) where Winograd runs on images of 20 rows and columns and more */
    ConvAlgo ca = conv2d_algo(&s);
    ConvAlgo rule = !conv2d_uses_winograd(&s) ? CONV_ALGO_IM2COL
                    : s.h >= 20 && s.w >= 20  ? CONV_ALGO_WINOGRAD4
                                              : CONV_ALGO_WINOGRAD;
    printf("  conv2d_algo %d, expected %d\n", (int)ca, (int)rule);
    ok &= ca == rule;
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx_w, dw_w, db_w, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_IM2COL, dx_i, dw_i, db_i, dy, x, w, &s);
    ok &= wino_close("backward dx", dx_w, dx_i, nx);
    ok &= wino_close("backward dw", dw_w, dw_i, nw);
    ok &= check_tensor("backward db (exact)", db_w, db_i, nb, 0, 0);
    /* F(4x4) backward: the input gradient as F(4x4) forward of dy with the kernels rotated
     * and the channels swapped, accumulated; the weight gradient from 4x4 output tiles; each
     * alone too, on top */
    float *dx4 = copy_buf(dx0, nx), *dw4 = copy_buf(dw0, nw);
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD4, dx4, dw4, NULL, dy, x, w, &s);
    ok &= check_tensor("backward dx, F(4x4)", dx4, dx_i, nx, WINO4_REL * max_abs(dx_i, nx), 0);
    ok &= check_tensor("backward dw, F(4x4)", dw4, dw_i, nw, WINO4_REL * max_abs(dw_i, nw), 0);
    float *dx4b = copy_buf(dx4, nx), *dw4b = copy_buf(dw4, nw);
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD4, dx4, NULL, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD4, NULL, dw4, NULL, dy, x, w, &s);
    for (size_t e = 0; e < nx; e++) dx4b[e] += dx4b[e] - dx0[e]; /* dx0 + 2 grad */
    for (size_t e = 0; e < nw; e++) dw4b[e] += dw4b[e] - dw0[e];
    ok &= check_tensor("backward dx only, F(4x4)", dx4, dx4b, nx, 1e-6 * max_abs(dx4b, nx), 0);
    ok &= check_tensor("backward dw only, F(4x4)", dw4, dw4b, nw, 1e-6 * max_abs(dw4b, nw), 0);
    xfree(dx4);
    xfree(dw4);
    xfree(dx4b);
    xfree(dw4b);
    /* one gradient at a time, on top */
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, NULL, dw_w, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_IM2COL, NULL, dw_i, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx_w, NULL, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_IM2COL, dx_i, NULL, NULL, dy, x, w, &s);
    ok &= wino_close("backward dx only", dx_w, dx_i, nx);
    ok &= wino_close("backward dw only", dw_w, dw_i, nw);

    /* the automatic choice runs exactly that algorithm, forward and backward */
    conv2d_forward(&ctx, y_a, x, w, b, &s);
    const float *want = ca == CONV_ALGO_WINOGRAD4 ? y4 : ca == CONV_ALGO_WINOGRAD ? y_w : y_i;
    ok &= check_tensor("conv2d_forward = conv2d_algo's (exact)", y_a, want, ny, 0, 0);
    float *dx_a = copy_buf(dx0, nx), *dw_a = copy_buf(dw0, nw), *dx_c = copy_buf(dx0, nx),
          *dw_c = copy_buf(dw0, nw);
    conv2d_backward(&ctx, dx_a, dw_a, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, ca, dx_c, dw_c, NULL, dy, x, w, &s);
    ok &= check_tensor("conv2d_backward dx = conv2d_algo's (exact)", dx_a, dx_c, nx, 0, 0);
    ok &= check_tensor("conv2d_backward dw = conv2d_algo's (exact)", dw_a, dw_c, nw, 0, 0);
    float *more[] = {y4, dx_a, dw_a, dx_c, dw_c};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) xfree(more[i]);

    float *bufs[] = {x,    w,    b,    dy,   y_w,  y_i,  y_a,  dx0,  dw0,
                     db0,  dx_w, dw_w, db_w, dx_i, dw_i, db_i, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

/* Shapes of the UNet's 3x3 layers (7x7, 14x14, 28x28, channels growing and shrinking; with 64
 * and 128 channels the 28x28 and 14x14 images go in bands of tile rows), odd and non-square
 * sizes, a one-row image, and channel counts below the threshold (forced). */
static void test_conv_winograd_vs_im2col(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 6);
    const ConvShape shapes[] = {
        conv_shape(5, 16, 24, 7, 7, 3, 1, 1),   conv_shape(3, 32, 16, 14, 14, 3, 1, 1),
        conv_shape(2, 16, 16, 28, 28, 3, 1, 1), conv_shape(3, 17, 19, 5, 9, 3, 1, 1),
        conv_shape(4, 16, 16, 1, 3, 3, 1, 1),   conv_shape(2, 4, 3, 6, 5, 3, 1, 1),
        conv_shape(9, 64, 64, 7, 7, 3, 1, 1),   conv_shape(2, 64, 64, 28, 28, 3, 1, 1),
        conv_shape(3, 128, 128, 14, 14, 3, 1, 1), conv_shape(2, 128, 96, 15, 13, 3, 1, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int nt = 1; nt <= 3; nt++) ok &= wino_vs_im2col(shapes[i], nt, &r);
    assert_true(ok);
}

/* ---- UpConv: sub-pixel Winograd F(2x2, 2x2) against col2im ----------------------------------
 * The transposed 4x4 stride-2 convolution through both paths on the same inputs, gradients
 * starting non-zero, each gradient alone too; the automatic choice is exactly the Winograd
 * path where the rule (channels >= 16, input >= 10x10) holds. The transforms only add and subtract, so the rounding differs by about as much as
 * F(2x2, 3x3)'s: within WINO_REL of the largest magnitude. */
static int convt_wino_vs_im2col(ConvShape s, int nthreads, Rng *r) {
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
    size_t nw = (size_t)s.ci * s.co * 16, nb = (size_t)s.co;
    OpsCtx ctx = ctx_make(nthreads, conv_transpose2d_workspace_floats(&s, nthreads));
    float *x = rand_buf(r, nx, -1, 1), *w = rand_buf(r, nw, -1, 1), *b = rand_buf(r, nb, -1, 1);
    float *dy = rand_buf(r, ny, -1, 1), *dx0 = rand_buf(r, nx, -1, 1), *dw0 = rand_buf(r, nw, -1, 1),
          *db0 = rand_buf(r, nb, -1, 1);
    float *y_w = zero_buf(ny), *y_i = zero_buf(ny), *y_a = zero_buf(ny);
    float *dx_w = copy_buf(dx0, nx), *dw_w = copy_buf(dw0, nw), *db_w = copy_buf(db0, nb);
    float *dx_i = copy_buf(dx0, nx), *dw_i = copy_buf(dw0, nw), *db_i = copy_buf(db0, nb);
    float *dx_a = copy_buf(dx0, nx), *dw_a = copy_buf(dw0, nw);
    printf(" convT %dx%dx%dx%d %d->%d, %d thread(s)\n", s.n, s.ci, s.h, s.w, s.ci, s.co, nthreads);
    conv_transpose2d_forward_algo(&ctx, CONV_ALGO_WINOGRAD, y_w, x, w, b, &s);
    conv_transpose2d_forward_algo(&ctx, CONV_ALGO_IM2COL, y_i, x, w, b, &s);
    int ok = wino_close("forward y", y_w, y_i, ny);
    conv_transpose2d_forward_algo(&ctx, CONV_ALGO_WINOGRAD, y_a, x, w, NULL, &s);
    conv_transpose2d_forward_algo(&ctx, CONV_ALGO_IM2COL, y_i, x, w, NULL, &s);
    ok &= wino_close("forward y, no bias", y_a, y_i, ny);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx_w, dw_w, db_w, dy, x, w, &s);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_IM2COL, dx_i, dw_i, db_i, dy, x, w, &s);
    ok &= wino_close("backward dx", dx_w, dx_i, nx);
    ok &= wino_close("backward dw", dw_w, dw_i, nw);
    ok &= check_tensor("backward db (exact)", db_w, db_i, nb, 0, 0);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, NULL, dw_w, NULL, dy, x, w, &s);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_IM2COL, NULL, dw_i, NULL, dy, x, w, &s);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx_w, NULL, NULL, dy, x, w, &s);
    conv_transpose2d_backward_algo(&ctx, CONV_ALGO_IM2COL, dx_i, NULL, NULL, dy, x, w, &s);
    ok &= wino_close("backward dx only", dx_w, dx_i, nx);
    ok &= wino_close("backward dw only", dw_w, dw_i, nw);
    /* the automatic choice */
    ok &= conv_transpose2d_uses_winograd(&s) == (s.ci >= WINOGRAD_MIN_CHANNELS && s.co >= WINOGRAD_MIN_CHANNELS &&
                                                 s.h >= 10 && s.w >= 10);
    if (conv_transpose2d_uses_winograd(&s)) {
        float *dx_c = copy_buf(dx0, nx), *dw_c = copy_buf(dw0, nw);
        conv_transpose2d_forward(&ctx, y_a, x, w, b, &s);
        conv_transpose2d_forward_algo(&ctx, CONV_ALGO_WINOGRAD, y_w, x, w, b, &s);
        ok &= check_tensor("conv_transpose2d_forward = Winograd (exact)", y_a, y_w, ny, 0, 0);
        conv_transpose2d_backward(&ctx, dx_a, dw_a, NULL, dy, x, w, &s);
        conv_transpose2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx_c, dw_c, NULL, dy, x, w, &s);
        ok &= check_tensor("conv_transpose2d_backward dx = Winograd (exact)", dx_a, dx_c, nx, 0, 0);
        ok &= check_tensor("conv_transpose2d_backward dw = Winograd (exact)", dw_a, dw_c, nw, 0, 0);
        xfree(dx_c);
        xfree(dw_c);
    }
    float *bufs[] = {x, w, b, dy, dx0, dw0, db0, y_w, y_i, y_a, dx_w, dw_w, db_w, dx_i, dw_i, db_i, dx_a, dw_a, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

/* The UNet's UpConv shapes (7 -> 14 with 256 > 64 channels, 14 -> 28 with 128 > 64), odd and
 * non-square inputs (partial tiles), a 1x1 input, and channel counts below the threshold
 * (forced). */
static void test_convt_winograd_vs_im2col(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 9);
    const ConvShape shapes[] = {
        conv_transpose_shape(3, 32, 16, 7, 7, 4, 2, 1),   conv_transpose_shape(2, 16, 24, 14, 14, 4, 2, 1),
        conv_transpose_shape(2, 24, 40, 5, 9, 4, 2, 1),   conv_transpose_shape(3, 16, 16, 1, 1, 4, 2, 1),
        conv_transpose_shape(2, 4, 3, 6, 3, 4, 2, 1),     conv_transpose_shape(3, 256, 64, 7, 7, 4, 2, 1),
        conv_transpose_shape(2, 128, 64, 14, 14, 4, 2, 1),
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int nt = 1; nt <= 3; nt++) ok &= convt_wino_vs_im2col(shapes[i], nt, &r);
    assert_true(ok);
}

/* ---- one output channel: direct against im2col ---------------------------------------------
 * The last layer's shape (Ci -> 1, 3x3 s1 p1) runs direct loops (conv.c); against im2col +
 * SGEMM on the same inputs (gradients starting non-zero), forward and both gradients within
 * WINO_REL of the largest magnitude, the automatic choice being exactly the direct path, and
 * the result the same bits on a second call. */
static int direct1_vs_im2col(ConvShape s, int nthreads, Rng *r) {
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.h * s.w, nw = (size_t)s.ci * 9;
    OpsCtx ctx = ctx_make(nthreads, conv2d_workspace_floats(&s, nthreads));
    float *x = rand_buf(r, nx, -1, 1), *w = rand_buf(r, nw, -1, 1), *b = rand_buf(r, 1, -1, 1);
    float *dy = rand_buf(r, ny, -1, 1), *dx0 = rand_buf(r, nx, -1, 1), *dw0 = rand_buf(r, nw, -1, 1);
    float *y_d = zero_buf(ny), *y_i = zero_buf(ny), *y_a = zero_buf(ny), *y_d2 = zero_buf(ny);
    float *dx_d = copy_buf(dx0, nx), *dw_d = copy_buf(dw0, nw), *dx_i = copy_buf(dx0, nx),
          *dw_i = copy_buf(dw0, nw), *dx_a = copy_buf(dx0, nx), *dw_a = copy_buf(dw0, nw);
    printf(" %dx%dx%dx%d %d->1, %d thread(s)\n", s.n, s.ci, s.h, s.w, s.ci, nthreads);
    conv2d_forward_algo(&ctx, CONV_ALGO_DIRECT1, y_d, x, w, b, &s);
    conv2d_forward_algo(&ctx, CONV_ALGO_IM2COL, y_i, x, w, b, &s);
    conv2d_forward(&ctx, y_a, x, w, b, &s);
    conv2d_forward_algo(&ctx, CONV_ALGO_DIRECT1, y_d2, x, w, b, &s);
    int ok = wino_close("forward y", y_d, y_i, ny);
    ok &= check_tensor("conv2d_forward = direct (exact)", y_a, y_d, ny, 0, 0);
    ok &= check_tensor("direct again (exact)", y_d2, y_d, ny, 0, 0);
    conv2d_backward_algo(&ctx, CONV_ALGO_DIRECT1, dx_d, dw_d, NULL, dy, x, w, &s);
    conv2d_backward_algo(&ctx, CONV_ALGO_IM2COL, dx_i, dw_i, NULL, dy, x, w, &s);
    conv2d_backward(&ctx, dx_a, dw_a, NULL, dy, x, w, &s);
    ok &= wino_close("backward dx", dx_d, dx_i, nx);
    ok &= wino_close("backward dw", dw_d, dw_i, nw);
    ok &= check_tensor("conv2d_backward dx = direct (exact)", dx_a, dx_d, nx, 0, 0);
    ok &= check_tensor("conv2d_backward dw = direct (exact)", dw_a, dw_d, nw, 0, 0);
    float *bufs[] = {x, w, b, dy, dx0, dw0, y_d, y_i, y_a, y_d2, dx_d, dw_d, dx_i, dw_i, dx_a, dw_a, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_conv_direct1_vs_im2col(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 14);
    const ConvShape shapes[] = {conv_shape(5, 64, 1, 28, 28, 3, 1, 1), conv_shape(3, 4, 1, 9, 6, 3, 1, 1),
                                conv_shape(2, 3, 1, 1, 5, 3, 1, 1)};
    int ok = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int nt = 1; nt <= 3; nt++) ok &= direct1_vs_im2col(shapes[i], nt, &r);
    assert_true(ok);
}

/* ---- the other operators: fast vs reference ---------------------------------------------- */

static int bn_vs_ref(int nthreads, Rng *r) {
    const int n = 5, c = 6, hw = 49;
    const size_t cnt = (size_t)n * c * hw;
    OpsCtx ctx = ctx_make(nthreads, 0);
    /* an offset mean makes the variance computation meaningful */
    float *x = rand_buf(r, cnt, 2, 4), *dy = rand_buf(r, cnt, -1, 1);
    float *gamma = rand_buf(r, c, 0.5f, 1.5f), *beta = rand_buf(r, c, -1, 1);
    float *rm0 = rand_buf(r, c, -1, 1), *rv0 = rand_buf(r, c, 0.5f, 2);
    float *rm = copy_buf(rm0, c), *rv = copy_buf(rv0, c), *rm_ref = copy_buf(rm0, c),
          *rv_ref = copy_buf(rv0, c);
    float *y = zero_buf(cnt), *y_ref = zero_buf(cnt), *mean = zero_buf(c), *rstd = zero_buf(c);
    float *mean_ref = zero_buf(c), *rstd_ref = zero_buf(c);
    float *dx0 = rand_buf(r, cnt, -1, 1), *dg0 = rand_buf(r, c, -1, 1),
          *dbt0 = rand_buf(r, c, -1, 1);
    float *dx = copy_buf(dx0, cnt), *dg = copy_buf(dg0, c), *dbt = copy_buf(dbt0, c);
    float *dx_ref = copy_buf(dx0, cnt), *dg_ref = copy_buf(dg0, c), *dbt_ref = copy_buf(dbt0, c);
    int ok = 1;
    printf(" batchnorm, %d thread(s)\n", nthreads);

    batchnorm2d_forward_train(&ctx, y, mean, rstd, rm, rv, x, gamma, beta, n, c, hw, 0.1f, 1e-5f);
    batchnorm2d_forward_train_ref(y_ref, mean_ref, rstd_ref, rm_ref, rv_ref, x, gamma, beta, n, c,
                                  hw, 0.1f, 1e-5f);
    ok &= fast_close("train y", y, y_ref, cnt);
    ok &= fast_close("train mean", mean, mean_ref, c);
    ok &= fast_close("train rstd", rstd, rstd_ref, c);
    ok &= fast_close("running mean", rm, rm_ref, c);
    ok &= fast_close("running var", rv, rv_ref, c);

    batchnorm2d_backward_train(&ctx, dx, dg, dbt, dy, x, mean, rstd, gamma, n, c, hw);
    batchnorm2d_backward_train_ref(dx_ref, dg_ref, dbt_ref, dy, x, mean, rstd, gamma, n, c, hw);
    ok &= fast_close("train dx", dx, dx_ref, cnt);
    ok &= fast_close("train dgamma", dg, dg_ref, c);
    ok &= fast_close("train dbeta", dbt, dbt_ref, c);
    batchnorm2d_backward_train(&ctx, dx, NULL, NULL, dy, x, mean, rstd, gamma, n, c, hw);
    batchnorm2d_backward_train_ref(dx_ref, NULL, NULL, dy, x, mean, rstd, gamma, n, c, hw);
    ok &= fast_close("train dx only", dx, dx_ref, cnt);

    batchnorm2d_forward_eval(&ctx, y, x, gamma, beta, rm, rv, n, c, hw, 1e-5f);
    batchnorm2d_forward_eval_ref(y_ref, x, gamma, beta, rm, rv, n, c, hw, 1e-5f);
    ok &= fast_close("eval y", y, y_ref, cnt);
    batchnorm2d_backward_eval(&ctx, dx, dg, dbt, dy, x, rm, rv, gamma, n, c, hw, 1e-5f);
    batchnorm2d_backward_eval_ref(dx_ref, dg_ref, dbt_ref, dy, x, rm, rv, gamma, n, c, hw, 1e-5f);
    ok &= fast_close("eval dx", dx, dx_ref, cnt);
    ok &= fast_close("eval dgamma", dg, dg_ref, c);
    ok &= fast_close("eval dbeta", dbt, dbt_ref, c);
    batchnorm2d_backward_eval(&ctx, NULL, dg, NULL, dy, x, rm, rv, gamma, n, c, hw, 1e-5f);
    batchnorm2d_backward_eval_ref(NULL, dg_ref, NULL, dy, x, rm, rv, gamma, n, c, hw, 1e-5f);
    ok &= fast_close("eval dgamma only", dg, dg_ref, c);

    float *bufs[] = {x,      dy, gamma, beta, rm0,    rv0,      rm,       rv,    rm_ref,
                     rv_ref, y,  y_ref, mean, rstd,   mean_ref, rstd_ref, dx0,   dg0,
                     dbt0,   dx, dg,    dbt,  dx_ref, dg_ref,   dbt_ref,  ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

/* GELU on a dense grid of [-10, 10] plus extremes: our erf is Abramowitz & Stegun 7.1.26
 * (|error| < 1.5e-7, as in PyTorch's vectorised kernel), so y is within 0.5 |x| 1.5e-7 of
 * the exact value; atol 1e-6 and rtol 1e-5 bound that with margin up to |x| = 10. */
static int gelu_vs_ref(int nthreads, Rng *r) {
    const int64_t grid = 4001, cnt = grid + 6;
    OpsCtx ctx = ctx_make(nthreads, 0);
    float *x = xmalloc((size_t)cnt * sizeof(float));
    for (int64_t i = 0; i < grid; i++) x[i] = -10.0f + 20.0f * (float)i / (float)(grid - 1);
    const float extremes[6] = {0.0f, -0.0f, 40.0f, -40.0f, 1e4f, -1e4f};
    memcpy(x + grid, extremes, sizeof extremes);
    float *y = zero_buf((size_t)cnt), *y_ref = zero_buf((size_t)cnt);
    float *dy = rand_buf(r, (size_t)cnt, -1, 1);
    float *dx0 = rand_buf(r, (size_t)cnt, -1, 1);
    float *dx = copy_buf(dx0, (size_t)cnt), *dx_ref = copy_buf(dx0, (size_t)cnt);
    printf(" gelu, %d thread(s)\n", nthreads);
    gelu_forward(&ctx, y, x, cnt);
    gelu_forward_ref(y_ref, x, cnt);
    int ok = check_tensor("gelu y", y, y_ref, (size_t)cnt, 1e-6, 1e-5);
    gelu_backward(&ctx, dx, dy, x, cnt);
    gelu_backward_ref(dx_ref, dy, x, cnt);
    ok &= check_tensor("gelu dx", dx, dx_ref, (size_t)cnt, 1e-6, 1e-5);
    float *bufs[] = {x, y, y_ref, dy, dx0, dx, dx_ref, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static int small_ops_vs_ref(int nthreads, Rng *r) {
    OpsCtx ctx = ctx_make(nthreads, 0);
    int ok = 1;
    printf(" avgpool, concat, linear, film, mse, %d thread(s)\n", nthreads);
    { /* avgpool: (N C, 49) -> (N C) */
        const int nc = 3 * 10, hw = 49;
        float *x = rand_buf(r, (size_t)nc * hw, -1, 1), *dy = rand_buf(r, nc, -1, 1);
        float *y = zero_buf(nc), *y_ref = zero_buf(nc);
        float *dx = rand_buf(r, (size_t)nc * hw, -1, 1), *dx_ref = copy_buf(dx, (size_t)nc * hw);
        avgpool_forward(&ctx, y, x, nc, hw);
        avgpool_forward_ref(y_ref, x, nc, hw);
        ok &= fast_close("avgpool y", y, y_ref, nc);
        avgpool_backward(&ctx, dx, dy, nc, hw);
        avgpool_backward_ref(dx_ref, dy, nc, hw);
        ok &= fast_close("avgpool dx", dx, dx_ref, (size_t)nc * hw);
        float *bufs[] = {x, dy, y, y_ref, dx, dx_ref};
        for (size_t i = 0; i < 6; i++) xfree(bufs[i]);
    }
    { /* concat (N, Ca + Cb, HW) */
        const int n = 3, ca = 4, cb = 2, hw = 14 * 14;
        size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, ny = na + nb;
        float *a = rand_buf(r, na, -1, 1), *b = rand_buf(r, nb, -1, 1),
              *dy = rand_buf(r, ny, -1, 1);
        float *y = zero_buf(ny), *y_ref = zero_buf(ny);
        float *da = rand_buf(r, na, -1, 1), *db = rand_buf(r, nb, -1, 1);
        float *da_ref = copy_buf(da, na), *db_ref = copy_buf(db, nb);
        concat_forward(&ctx, y, a, b, n, ca, cb, hw);
        concat_forward_ref(y_ref, a, b, n, ca, cb, hw);
        ok &= check_tensor("concat y (exact)", y, y_ref, ny, 0, 0);
        concat_backward(&ctx, da, db, dy, n, ca, cb, hw);
        concat_backward_ref(da_ref, db_ref, dy, n, ca, cb, hw);
        concat_backward(&ctx, NULL, db, dy, n, ca, cb, hw);
        concat_backward_ref(NULL, db_ref, dy, n, ca, cb, hw);
        ok &= check_tensor("concat da (exact)", da, da_ref, na, 0, 0);
        ok &= check_tensor("concat db (exact)", db, db_ref, nb, 0, 0);
        float *bufs[] = {a, b, dy, y, y_ref, da, db, da_ref, db_ref};
        for (size_t i = 0; i < 9; i++) xfree(bufs[i]);
    }
    { /* linear (N, Fi) -> (N, Fo), with the FCBlock's input widths 1 and 10 and a square one */
        const int dims[3][3] = {{6, 1, 8}, {6, 10, 8}, {5, 16, 16}};
        for (int t = 0; t < 3; t++) {
            int n = dims[t][0], fi = dims[t][1], fo = dims[t][2];
            size_t nx = (size_t)n * fi, ny = (size_t)n * fo, nw = (size_t)fo * fi;
            float *x = rand_buf(r, nx, -1, 1), *w = rand_buf(r, nw, -1, 1),
                  *b = rand_buf(r, fo, -1, 1);
            float *dy = rand_buf(r, ny, -1, 1), *y = zero_buf(ny), *y_ref = zero_buf(ny);
            float *dx = rand_buf(r, nx, -1, 1), *dw = rand_buf(r, nw, -1, 1),
                  *db = rand_buf(r, fo, -1, 1);
            float *dx_ref = copy_buf(dx, nx), *dw_ref = copy_buf(dw, nw),
                  *db_ref = copy_buf(db, fo);
            linear_forward(&ctx, y, x, w, b, n, fi, fo);
            linear_forward_ref(y_ref, x, w, b, n, fi, fo);
            ok &= fast_close("linear y", y, y_ref, ny);
            linear_backward(&ctx, dx, dw, db, dy, x, w, n, fi, fo);
            linear_backward_ref(dx_ref, dw_ref, db_ref, dy, x, w, n, fi, fo);
            linear_backward(&ctx, NULL, dw, NULL, dy, x, w, n, fi, fo);
            linear_backward_ref(NULL, dw_ref, NULL, dy, x, w, n, fi, fo);
            ok &= fast_close("linear dx", dx, dx_ref, nx);
            ok &= fast_close("linear dw", dw, dw_ref, nw);
            ok &= fast_close("linear db", db, db_ref, fo);
            float *bufs[] = {x, w, b, dy, y, y_ref, dx, dw, db, dx_ref, dw_ref, db_ref};
            for (size_t i = 0; i < 12; i++) xfree(bufs[i]);
        }
    }
    for (int with_scale = 0; with_scale <= 1;
         with_scale++) { /* film, in place as the UNet uses it */
        const int n = 3, c = 5, hw = 49;
        size_t cnt = (size_t)n * c * hw, nc = (size_t)n * c;
        float *x = rand_buf(r, cnt, -1, 1), *dy = rand_buf(r, cnt, -1, 1);
        float *scale = with_scale ? rand_buf(r, nc, -2, 2) : NULL, *shift = rand_buf(r, nc, -1, 1);
        float *y = copy_buf(x, cnt), *y_ref = zero_buf(cnt);
        float *dx = rand_buf(r, cnt, -1, 1), *ds = rand_buf(r, nc, -1, 1),
              *dt = rand_buf(r, nc, -1, 1);
        float *dx_ref = copy_buf(dx, cnt), *ds_ref = copy_buf(ds, nc), *dt_ref = copy_buf(dt, nc);
        film_forward(&ctx, y, y, scale, shift, n, c, hw);
        film_forward_ref(y_ref, x, scale, shift, n, c, hw);
        ok &= fast_close(with_scale ? "film y (scale)" : "film y (no scale)", y, y_ref, cnt);
        film_backward(&ctx, dx, with_scale ? ds : NULL, dt, dy, x, scale, n, c, hw);
        film_backward_ref(dx_ref, with_scale ? ds_ref : NULL, dt_ref, dy, x, scale, n, c, hw);
        ok &= fast_close("film dx", dx, dx_ref, cnt);
        ok &= fast_close("film dscale", ds, ds_ref, nc);
        ok &= fast_close("film dshift", dt, dt_ref, nc);
        float *bufs[] = {x, dy, shift, y, y_ref, dx, ds, dt, dx_ref, ds_ref, dt_ref};
        for (size_t i = 0; i < 11; i++) xfree(bufs[i]);
        if (scale) xfree(scale);
    }
    { /* mse */
        const int64_t cnt = 4 * 784 + 3;
        float *p = rand_buf(r, (size_t)cnt, -1, 1), *t = rand_buf(r, (size_t)cnt, -1, 1);
        float *dp = rand_buf(r, (size_t)cnt, -1, 1), *dp_ref = copy_buf(dp, (size_t)cnt);
        float l = mse_forward(&ctx, p, t, cnt), l_ref = mse_forward_ref(p, t, cnt);
        ok &= check_tensor("mse loss", &l, &l_ref, 1, 0, 1e-6);
        mse_backward(&ctx, dp, p, t, cnt);
        mse_backward_ref(dp_ref, p, t, cnt);
        ok &= fast_close("mse dpred", dp, dp_ref, (size_t)cnt);
        xfree(p), xfree(t), xfree(dp), xfree(dp_ref);
    }
    xfree(ctx.ws);
    return ok;
}

/* The fused BatchNorm + GELU operators against the composition they replace (the UNet's
 * unit before fusion): forward the same bits as batchnorm2d_forward_train then gelu_forward
 * (same statistics, same per-value arithmetic), including the statistics and running buffers;
 * backward as gelu_backward into a zeroed buffer then batchnorm2d_backward_train into a zeroed
 * dx, to FAST_REL (the channel sums are taken in another order), dgamma and dbeta
 * accumulating onto non-zero values. */
static int bn_gelu_vs_composed(int nthreads, Rng *r) {
    const int n = 4, c = 5, hw = 49;
    const size_t cnt = (size_t)n * c * hw;
    OpsCtx ctx = ctx_make(nthreads, 0);
    float *x = rand_buf(r, cnt, -2, 3), *dy = rand_buf(r, cnt, -1, 1);
    float *gamma = rand_buf(r, c, 0.5f, 1.5f), *beta = rand_buf(r, c, -1, 1);
    float *rm0 = rand_buf(r, c, -1, 1), *rv0 = rand_buf(r, c, 0.5f, 2);
    float *rm_f = copy_buf(rm0, c), *rv_f = copy_buf(rv0, c), *rm_c = copy_buf(rm0, c),
          *rv_c = copy_buf(rv0, c);
    float *y_f = zero_buf(cnt), *y_c = zero_buf(cnt), *bn = zero_buf(cnt);
    float *mean_f = zero_buf(c), *rstd_f = zero_buf(c), *mean_c = zero_buf(c), *rstd_c = zero_buf(c);
    float *dg0 = rand_buf(r, c, -1, 1), *db0 = rand_buf(r, c, -1, 1);
    float *dg_f = copy_buf(dg0, c), *db_f = copy_buf(db0, c), *dg_c = copy_buf(dg0, c),
          *db_c = copy_buf(db0, c);
    float *dx_f = rand_buf(r, cnt, -1, 1), *g = zero_buf(cnt), *dx_c = zero_buf(cnt);
    printf(" BatchNorm + GELU fused, %d thread(s)\n", nthreads);

    bn_gelu_forward_train(&ctx, y_f, mean_f, rstd_f, rm_f, rv_f, x, gamma, beta, n, c, hw, 0.1f, 1e-5f);
    batchnorm2d_forward_train(&ctx, bn, mean_c, rstd_c, rm_c, rv_c, x, gamma, beta, n, c, hw, 0.1f, 1e-5f);
    gelu_forward(&ctx, y_c, bn, (int64_t)cnt);
    int ok = check_tensor("forward y (exact)", y_f, y_c, cnt, 0, 0);
    ok &= check_tensor("mean (exact)", mean_f, mean_c, c, 0, 0);
    ok &= check_tensor("rstd (exact)", rstd_f, rstd_c, c, 0, 0);
    ok &= check_tensor("running mean (exact)", rm_f, rm_c, c, 0, 0);
    ok &= check_tensor("running var (exact)", rv_f, rv_c, c, 0, 0);

    /* dx_f starts as garbage: the fused backward overwrites it */
    bn_gelu_backward_train(&ctx, dx_f, dg_f, db_f, dy, x, mean_f, rstd_f, gamma, beta, n, c, hw);
    for (int ch = 0; ch < c; ch++) { /* BatchNorm's output as the UNet recomputed it */
        float a = gamma[ch] * rstd_c[ch], b = beta[ch] - mean_c[ch] * a;
        for (int i = 0; i < n; i++)
            for (int q = 0; q < hw; q++) {
                size_t e = ((size_t)i * c + ch) * hw + q;
                bn[e] = x[e] * a + b;
            }
    }
    gelu_backward(&ctx, g, dy, bn, (int64_t)cnt);
    batchnorm2d_backward_train(&ctx, dx_c, dg_c, db_c, g, x, mean_c, rstd_c, gamma, n, c, hw);
    ok &= fast_close("backward dx", dx_f, dx_c, cnt);
    ok &= fast_close("backward dgamma", dg_f, dg_c, c);
    ok &= fast_close("backward dbeta", db_f, db_c, c);
    float *bufs[] = {x,      y_f,    y_c,    bn,   dy,   gamma, beta, rm0,  rv0,  rm_f, rv_f,
                     rm_c,   rv_c,   mean_f, rstd_f, mean_c, rstd_c, dg0, db0, dg_f, db_f,
                     dg_c,   db_c,   dx_f,   g,    dx_c, ctx.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_other_ops_vs_ref(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 2);
    int ok = 1;
    for (int nt = 1; nt <= 3; nt++) {
        ok &= bn_vs_ref(nt, &r);
        ok &= bn_gelu_vs_composed(nt, &r);
        ok &= gelu_vs_ref(nt, &r);
        ok &= small_ops_vs_ref(nt, &r);
    }
    assert_true(ok);
}

/* ---- reference backwards vs central finite differences ------------------------------------
 * For an op y = f(inputs) the loss is L = sum_i y_i r_i with fixed random r (summed in double),
 * so dL/dy = r and the analytic gradients come from the reference backward with dy = r. The
 * numeric derivative is (L(p + h) - L(p - h)) / (p_plus - p_minus), with the denominator taken
 * from the float values actually stored, so rounding of the step does not bias it. Only the
 * outputs that p touches change, so the quotient's rounding noise is about 1e-7 |y| / h. */

#define FD_STEP 1e-2f
/* Stated tolerance: truncation (h^2 / 6) f''' is below 1e-4 for these smooth ops at h = 1e-2,
 * rounding noise is ~1e-5, so 2e-3 absolute + 1e-2 relative leaves margin without hiding a
 * wrong term (which is O(0.1) or larger). */
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define FD_MAX_CHECKS 40

typedef struct FdOp FdOp;
struct FdOp {
    void (*forward)(FdOp *op); /* recomputes y from the inputs */
    float *y, *r;              /* output (ny) and its loss weights (ny); r NULL: y[0] is L */
    size_t ny;
    float *in[4];  /* op inputs, perturbed in place */
    float *aux[4]; /* scratch the forward needs (BatchNorm statistics) */
    ConvShape s;
    const OpsCtx *ctx; /* conv: non-NULL runs the Winograd path `algo` instead of the reference */
    ConvAlgo algo;
    int transposed, n, c, hw, ca, cb, fi, fo;
    int64_t count;
};

static double fd_loss(FdOp *op) {
    op->forward(op);
    if (!op->r) return op->y[0];
    double l = 0.0;
    for (size_t i = 0; i < op->ny; i++) l += (double)op->y[i] * (double)op->r[i];
    return l;
}

/* Compares grad (n values) with central differences of the loss with respect to p, on up to
 * FD_MAX_CHECKS evenly spread elements. */
static int fd_check(const char *label, FdOp *op, float *p, const float *grad, size_t n) {
    size_t checks = n < FD_MAX_CHECKS ? n : FD_MAX_CHECKS;
    float num[FD_MAX_CHECKS], ana[FD_MAX_CHECKS];
    for (size_t j = 0; j < checks; j++) {
        size_t i = j * n / checks;
        float orig = p[i], plus = orig + FD_STEP, minus = orig - FD_STEP;
        p[i] = plus;
        double lp = fd_loss(op);
        p[i] = minus;
        double lm = fd_loss(op);
        p[i] = orig;
        num[j] = (float)((lp - lm) / ((double)plus - (double)minus));
        ana[j] = grad[i];
    }
    return check_tensor(label, num, ana, checks, FD_ATOL, FD_RTOL);
}

static void fd_conv_forward(FdOp *op) {
    if (op->ctx && op->transposed)
        conv_transpose2d_forward_algo(op->ctx, CONV_ALGO_WINOGRAD, op->y, op->in[0], op->in[1], op->in[2], &op->s);
    else if (op->ctx)
        conv2d_forward_algo(op->ctx, op->algo, op->y, op->in[0], op->in[1], op->in[2], &op->s);
    else
        (op->transposed ? conv_transpose2d_forward_ref
                        : conv2d_forward_ref)(op->y, op->in[0], op->in[1], op->in[2], &op->s);
}

/* With wino 2 or 4, both sides are the Winograd F(2x2, 3x3) or F(4x4, 3x3) path (for a
 * transposed convolution: sub-pixel F(2x2, 2x2)) (float forward, its own backward): the forward is linear, so the difference quotient is exact up to the
 * rounding noise of the outputs the step touches. */
static int fd_conv(const char *name, int transposed, ConvShape s, Rng *r, int wino) {
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
    size_t nw = (size_t)s.ci * s.co * s.k * s.k;
    FdOp op = {.forward = fd_conv_forward, .ny = ny, .s = s, .transposed = transposed};
    OpsCtx ctx = {0};
    if (wino) {
        ctx = ctx_make(2, transposed ? conv_transpose2d_workspace_floats(&s, 2)
                                     : conv2d_winograd_workspace_floats(&s, 2));
        op.ctx = &ctx;
        op.algo = wino == 4 ? CONV_ALGO_WINOGRAD4 : CONV_ALGO_WINOGRAD;
    }
    op.y = zero_buf(ny);
    op.r = rand_buf(r, ny, -1, 1);
    op.in[0] = rand_buf(r, nx, -1, 1);
    op.in[1] = rand_buf(r, nw, -1, 1);
    op.in[2] = rand_buf(r, (size_t)s.co, -1, 1);
    float *dx = zero_buf(nx), *dw = zero_buf(nw), *db = zero_buf((size_t)s.co);
    if (wino && transposed)
        conv_transpose2d_backward_algo(&ctx, CONV_ALGO_WINOGRAD, dx, dw, db, op.r, op.in[0], op.in[1], &s);
    else if (wino)
        conv2d_backward_algo(&ctx, op.algo, dx, dw, db, op.r, op.in[0], op.in[1], &s);
    else
        conv_bwd(NULL, transposed, dx, dw, db, op.r, op.in[0], op.in[1], &s);
    printf(" %s\n", name);
    int ok = fd_check("dx", &op, op.in[0], dx, nx);
    ok &= fd_check("dw", &op, op.in[1], dw, nw);
    ok &= fd_check("db", &op, op.in[2], db, (size_t)s.co);
    float *bufs[] = {op.y, op.r, op.in[0], op.in[1], op.in[2], dx, dw, db};
    for (size_t i = 0; i < 8; i++) xfree(bufs[i]);
    if (wino) xfree(ctx.ws);
    return ok;
}

static void fd_bn_train_forward(FdOp *op) {
    /* running statistics are outputs only; fresh copies keep the calls independent */
    float rm[16] = {0}, rv[16] = {0};
    batchnorm2d_forward_train_ref(op->y, op->aux[0], op->aux[1], rm, rv, op->in[0], op->in[1],
                                  op->in[2], op->n, op->c, op->hw, 0.1f, 1e-5f);
}

static void fd_bn_eval_forward(FdOp *op) {
    batchnorm2d_forward_eval_ref(op->y, op->in[0], op->in[1], op->in[2], op->aux[0], op->aux[1],
                                 op->n, op->c, op->hw, 1e-5f);
}

static int fd_batchnorm(int train, Rng *r) {
    const int n = 3, c = 2, hw = 5;
    size_t cnt = (size_t)n * c * hw;
    FdOp op = {.forward = train ? fd_bn_train_forward : fd_bn_eval_forward,
               .ny = cnt,
               .n = n,
               .c = c,
               .hw = hw};
    op.y = zero_buf(cnt);
    op.r = rand_buf(r, cnt, -1, 1);
    op.in[0] = rand_buf(r, cnt, -1, 2);
    op.in[1] = rand_buf(r, c, 0.5f, 1.5f);
    op.in[2] = rand_buf(r, c, -1, 1);
    if (train) {
        op.aux[0] = zero_buf(c); /* mean */
        op.aux[1] = zero_buf(c); /* rstd */
    } else {
        op.aux[0] = rand_buf(r, c, -0.5f, 0.5f); /* running mean */
        op.aux[1] = rand_buf(r, c, 0.5f, 2.0f);  /* running var */
    }
    float *dx = zero_buf(cnt), *dg = zero_buf(c), *db = zero_buf(c);
    op.forward(&op); /* fills mean and rstd for the training backward */
    if (train)
        batchnorm2d_backward_train_ref(dx, dg, db, op.r, op.in[0], op.aux[0], op.aux[1], op.in[1],
                                       n, c, hw);
    else
        batchnorm2d_backward_eval_ref(dx, dg, db, op.r, op.in[0], op.aux[0], op.aux[1], op.in[1], n,
                                      c, hw, 1e-5f);
    printf(" batchnorm %s\n", train ? "train" : "eval");
    int ok = fd_check("dx", &op, op.in[0], dx, cnt);
    ok &= fd_check("dgamma", &op, op.in[1], dg, c);
    ok &= fd_check("dbeta", &op, op.in[2], db, c);
    float *bufs[] = {op.y, op.r, op.in[0], op.in[1], op.in[2], op.aux[0], op.aux[1], dx, dg, db};
    for (size_t i = 0; i < 10; i++) xfree(bufs[i]);
    return ok;
}

static void fd_gelu_forward(FdOp *op) { gelu_forward_ref(op->y, op->in[0], op->count); }
static void fd_avgpool_forward(FdOp *op) { avgpool_forward_ref(op->y, op->in[0], op->c, op->hw); }
static void fd_concat_forward(FdOp *op) {
    concat_forward_ref(op->y, op->in[0], op->in[1], op->n, op->ca, op->cb, op->hw);
}
static void fd_linear_forward(FdOp *op) {
    linear_forward_ref(op->y, op->in[0], op->in[1], op->in[2], op->n, op->fi, op->fo);
}
static void fd_film_forward(FdOp *op) {
    film_forward_ref(op->y, op->in[0], op->in[1], op->in[2], op->n, op->c, op->hw);
}
static void fd_mse_forward(FdOp *op) {
    op->y[0] = mse_forward_ref(op->in[0], op->in[1], op->count);
}

static int fd_small_ops(Rng *r) {
    int ok = 1;
    { /* GELU over [-4, 4], where its curvature lives */
        const int64_t cnt = 40;
        FdOp op = {.forward = fd_gelu_forward, .ny = (size_t)cnt, .count = cnt};
        op.y = zero_buf((size_t)cnt);
        op.r = rand_buf(r, (size_t)cnt, -1, 1);
        op.in[0] = rand_buf(r, (size_t)cnt, -4, 4);
        float *dx = zero_buf((size_t)cnt);
        gelu_backward_ref(dx, op.r, op.in[0], cnt);
        printf(" gelu\n");
        ok &= fd_check("dx", &op, op.in[0], dx, (size_t)cnt);
        xfree(op.y), xfree(op.r), xfree(op.in[0]), xfree(dx);
    }
    { /* avgpool */
        const int nc = 6, hw = 9;
        FdOp op = {.forward = fd_avgpool_forward, .ny = nc, .c = nc, .hw = hw};
        op.y = zero_buf(nc);
        op.r = rand_buf(r, nc, -1, 1);
        op.in[0] = rand_buf(r, (size_t)nc * hw, -1, 1);
        float *dx = zero_buf((size_t)nc * hw);
        avgpool_backward_ref(dx, op.r, nc, hw);
        printf(" avgpool\n");
        ok &= fd_check("dx", &op, op.in[0], dx, (size_t)nc * hw);
        xfree(op.y), xfree(op.r), xfree(op.in[0]), xfree(dx);
    }
    { /* concat */
        const int n = 2, ca = 2, cb = 3, hw = 4;
        size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw;
        FdOp op = {
            .forward = fd_concat_forward, .ny = na + nb, .n = n, .ca = ca, .cb = cb, .hw = hw};
        op.y = zero_buf(na + nb);
        op.r = rand_buf(r, na + nb, -1, 1);
        op.in[0] = rand_buf(r, na, -1, 1);
        op.in[1] = rand_buf(r, nb, -1, 1);
        float *da = zero_buf(na), *db = zero_buf(nb);
        concat_backward_ref(da, db, op.r, n, ca, cb, hw);
        printf(" concat\n");
        ok &= fd_check("da", &op, op.in[0], da, na);
        ok &= fd_check("db", &op, op.in[1], db, nb);
        xfree(op.y), xfree(op.r), xfree(op.in[0]), xfree(op.in[1]), xfree(da), xfree(db);
    }
    { /* linear */
        const int n = 3, fi = 4, fo = 5;
        size_t nx = (size_t)n * fi, ny = (size_t)n * fo, nw = (size_t)fo * fi;
        FdOp op = {.forward = fd_linear_forward, .ny = ny, .n = n, .fi = fi, .fo = fo};
        op.y = zero_buf(ny);
        op.r = rand_buf(r, ny, -1, 1);
        op.in[0] = rand_buf(r, nx, -1, 1);
        op.in[1] = rand_buf(r, nw, -1, 1);
        op.in[2] = rand_buf(r, fo, -1, 1);
        float *dx = zero_buf(nx), *dw = zero_buf(nw), *db = zero_buf(fo);
        linear_backward_ref(dx, dw, db, op.r, op.in[0], op.in[1], n, fi, fo);
        printf(" linear\n");
        ok &= fd_check("dx", &op, op.in[0], dx, nx);
        ok &= fd_check("dw", &op, op.in[1], dw, nw);
        ok &= fd_check("db", &op, op.in[2], db, fo);
        float *bufs[] = {op.y, op.r, op.in[0], op.in[1], op.in[2], dx, dw, db};
        for (size_t i = 0; i < 8; i++) xfree(bufs[i]);
    }
    for (int with_scale = 0; with_scale <= 1; with_scale++) { /* film */
        const int n = 2, c = 3, hw = 4;
        size_t cnt = (size_t)n * c * hw, nc = (size_t)n * c;
        FdOp op = {.forward = fd_film_forward, .ny = cnt, .n = n, .c = c, .hw = hw};
        op.y = zero_buf(cnt);
        op.r = rand_buf(r, cnt, -1, 1);
        op.in[0] = rand_buf(r, cnt, -1, 1);
        op.in[1] = with_scale ? rand_buf(r, nc, -2, 2) : NULL;
        op.in[2] = rand_buf(r, nc, -1, 1);
        float *dx = zero_buf(cnt), *ds = zero_buf(nc), *dt = zero_buf(nc);
        film_backward_ref(dx, with_scale ? ds : NULL, dt, op.r, op.in[0], op.in[1], n, c, hw);
        printf(" film %s\n", with_scale ? "with scale" : "without scale");
        ok &= fd_check("dx", &op, op.in[0], dx, cnt);
        if (with_scale) ok &= fd_check("dscale", &op, op.in[1], ds, nc);
        ok &= fd_check("dshift", &op, op.in[2], dt, nc);
        xfree(op.y), xfree(op.r), xfree(op.in[0]), xfree(op.in[2]), xfree(dx), xfree(ds), xfree(dt);
        if (op.in[1]) xfree(op.in[1]);
    }
    { /* mse: the loss itself is the scalar */
        const int64_t cnt = 30;
        FdOp op = {.forward = fd_mse_forward, .ny = 1, .count = cnt};
        op.y = zero_buf(1);
        op.in[0] = rand_buf(r, (size_t)cnt, -1, 1);
        op.in[1] = rand_buf(r, (size_t)cnt, -1, 1);
        float *dp = zero_buf((size_t)cnt);
        mse_backward_ref(dp, op.in[0], op.in[1], cnt);
        printf(" mse\n");
        ok &= fd_check("dpred", &op, op.in[0], dp, (size_t)cnt);
        xfree(op.y), xfree(op.in[0]), xfree(op.in[1]), xfree(dp);
    }
    return ok;
}

static void test_backward_vs_finite_differences(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 3);
    int ok = 1;
    ok &= fd_conv("conv 3x3 s1 p1 5x5", 0, conv_shape(2, 2, 3, 5, 5, 3, 1, 1), &r, 0);
    ok &= fd_conv("conv 3x3 s2 p1 7x7 -> 4x4", 0, conv_shape(2, 2, 3, 7, 7, 3, 2, 1), &r, 0);
    ok &= fd_conv("conv 5x5 s3 p2 8x7", 0, conv_shape(2, 2, 2, 8, 7, 5, 3, 2), &r, 0);
    ok &= fd_conv("convT 4x4 s2 p1 3x3 -> 6x6", 1, conv_transpose_shape(2, 3, 2, 3, 3, 4, 2, 1),
                  &r, 0);
    ok &= fd_conv("convT 7x7 s7 p0 1x1 -> 7x7", 1, conv_transpose_shape(3, 3, 2, 1, 1, 7, 7, 0),
                  &r, 0);
    ok &= fd_conv("convT 3x3 s2 p1 4x5", 1, conv_transpose_shape(2, 2, 3, 4, 5, 3, 2, 1), &r, 0);
    ok &= fd_conv("conv 3x3 s1 p1 5x7 16->16, Winograd path", 0,
                  conv_shape(3, 16, 16, 5, 7, 3, 1, 1), &r, 2);
    ok &= fd_conv("conv 3x3 s1 p1 9x6 16->16, Winograd F(4x4) path", 0,
                  conv_shape(2, 16, 16, 9, 6, 3, 1, 1), &r, 4);
    ok &= fd_conv("convT 4x4 s2 p1 5x3 16->16, Winograd F(2x2, 2x2) path", 1,
                  conv_transpose_shape(2, 16, 16, 5, 3, 4, 2, 1), &r, 2);
    ok &= fd_batchnorm(1, &r);
    ok &= fd_batchnorm(0, &r);
    ok &= fd_small_ops(&r);
    assert_true(ok);
}

/* ---- Adam against the update written out in double --------------------------------------- */

static void test_adam(void **state) {
    (void)state;
    enum { P = 6, STEPS = 4 };
    /* the tiny gradients make eps matter, the zero one checks that nothing moves */
    const float grads[STEPS][P] = {
        {0.5f, -1.0f, 2e-3f, 0.0f, 1e-9f, -3.0f},
        {0.25f, 1.0f, -4e-3f, 0.0f, 2e-9f, 1.0f},
        {-0.75f, -0.5f, 1e-3f, 0.0f, -1e-9f, 0.5f},
        {0.1f, 0.3f, 3e-3f, 0.0f, 1e-9f, -2.0f},
    };
    /* parameters near 1e-3, where float resolves the ~1e-4 updates to ~1e-6 relative */
    float p[P] = {5e-4f, -1.25e-3f, 2e-3f, 3e-4f, 1e-3f, 0.0f}, m[P] = {0}, v[P] = {0};
    double pd[P], md[P] = {0}, vd[P] = {0};
    for (int i = 0; i < P; i++) pd[i] = p[i];
    Adam opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 0};
    OpsCtx ctx = ctx_make(1, 0);
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    int ok = 1;
    for (int t = 1; t <= STEPS; t++) {
        float before[P];
        double before_d[P];
        memcpy(before, p, sizeof p);
        memcpy(before_d, pd, sizeof pd);
        adam_step(&ctx, &opt, p, grads[t - 1], m, v, P);
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        float step_f[P], step_d[P], md_f[P], vd_f[P], pd_f[P];
        for (int i = 0; i < P; i++) {
            double g = grads[t - 1][i];
            md[i] = b1 * md[i] + (1.0 - b1) * g;
            vd[i] = b2 * vd[i] + (1.0 - b2) * g * g;
            pd[i] -= lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
            step_f[i] = p[i] - before[i];
            step_d[i] = (float)(pd[i] - before_d[i]);
            md_f[i] = (float)md[i];
            vd_f[i] = (float)vd[i];
            pd_f[i] = (float)pd[i];
        }
        printf(" adam step %d\n", t);
        /* the update to 1e-4 relative (float rounding of p is ~1e-6 of it); the moments to
         * 1e-6 relative (a float-valued 1 - beta2 would put v 1.3e-5 off) plus 5e-8 absolute
         * (an ulp of the 0.1-sized terms) for the cancellation in m when gradients change sign */
        ok &= check_tensor("update", step_f, step_d, P, 1e-12, 1e-4);
        ok &= check_tensor("m", m, md_f, P, 5e-8, 1e-6);
        ok &= check_tensor("v", v, vd_f, P, 1e-24, 1e-6);
        ok &= check_tensor("param", p, pd_f, P, 1e-9, 1e-5);
    }
    assert_int_equal(opt.step, STEPS);
    xfree(ctx.ws);
    assert_true(ok);
}

/* ---- determinism ---------------------------------------------------------------------------- */

/* Two runs of the fast forward and backward with nthreads = 2 from the same inputs must agree
 * bit for bit (per-thread partials reduced in a fixed order); shapes with several GEMM groups
 * per thread: im2col, transposed, 1 output channel, and Winograd (forced, so DDPM_CONV does
 * not matter) with batch 17 split 8 + 9 into groups of 5 + 3 and 5 + 4 images, and with
 * 28x28 images in bands of tile rows. */
static void test_conv_determinism(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 4);
    enum { NS = 5 };
    const ConvShape shapes[NS] = {
        conv_shape(16, 8, 8, 14, 14, 3, 1, 1), conv_transpose_shape(12, 8, 6, 7, 7, 4, 2, 1),
        conv_shape(16, 8, 1, 14, 14, 3, 1, 1), conv_shape(17, 16, 16, 14, 14, 3, 1, 1),
        conv_shape(5, 64, 48, 28, 28, 3, 1, 1)};
    const char *names[NS] = {"conv 3x3 s1", "convT 4x4 s2", "conv 3x3 s1 8->1",
                             "conv 3x3 s1 16->16 Winograd", "conv 3x3 s1 64->48 28x28 Winograd"};
    const ConvAlgo algos[NS] = {CONV_ALGO_IM2COL, CONV_ALGO_AUTO, CONV_ALGO_IM2COL,
                                CONV_ALGO_WINOGRAD, CONV_ALGO_WINOGRAD};
    for (int c = 0; c < NS; c++) {
        ConvShape s = shapes[c];
        int tr = c == 1;
        size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
        size_t nw = (size_t)s.ci * s.co * s.k * s.k;
        size_t ws = tr ? conv_transpose2d_workspace_floats(&s, 2) : conv2d_workspace_floats(&s, 2);
        if (algos[c] == CONV_ALGO_WINOGRAD) {
            size_t wsw = conv2d_winograd_workspace_floats(&s, 2);
            ws = ws > wsw ? ws : wsw;
        }
        OpsCtx ctx = ctx_make(2, ws);
        float *x = rand_buf(&r, nx, -1, 1), *w = rand_buf(&r, nw, -1, 1),
              *b = rand_buf(&r, (size_t)s.co, -1, 1), *dy = rand_buf(&r, ny, -1, 1);
        float *y[2], *dx[2], *dw[2], *db[2];
        for (int run = 0; run < 2; run++) {
            y[run] = zero_buf(ny);
            dx[run] = zero_buf(nx), dw[run] = zero_buf(nw), db[run] = zero_buf((size_t)s.co);
            /* scribble over the workspace so stale contents cannot make runs agree */
            for (size_t i = 0; i < ws; i++) ctx.ws[i] = (float)(run + 1) * 1e30f;
            if (tr) {
                conv_fwd(&ctx, tr, y[run], x, w, b, &s);
                conv_bwd(&ctx, tr, dx[run], dw[run], db[run], dy, x, w, &s);
            } else {
                conv2d_forward_algo(&ctx, algos[c], y[run], x, w, b, &s);
                for (size_t i = 0; i < ws; i++) ctx.ws[i] = (float)(run + 1) * -1e30f;
                conv2d_backward_algo(&ctx, algos[c], dx[run], dw[run], db[run], dy, x, w, &s);
            }
        }
        printf(" %s forward and backward, 2 threads, two runs\n", names[c]);
        assert_memory_equal(y[0], y[1], ny * sizeof(float));
        assert_memory_equal(dw[0], dw[1], nw * sizeof(float));
        assert_memory_equal(dx[0], dx[1], nx * sizeof(float));
        assert_memory_equal(db[0], db[1], (size_t)s.co * sizeof(float));
        assert_true(max_abs(dw[0], nw) > 0.0);
        assert_true(max_abs(dx[0], nx) > 0.0);
        float *bufs[] = {x, w, b, dy, y[0], y[1], dx[0], dx[1], dw[0], dw[1], db[0], db[1], ctx.ws};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    }
}

/* ---- BatchNorm running statistics against the formula --------------------------------------- */

static void test_bn_running_stats(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 5);
    const int n = 4, c = 3, hw = 6, m = n * hw;
    const float momentum = 0.1f;
    size_t cnt = (size_t)n * c * hw;
    OpsCtx ctx = ctx_make(2, 0);
    float gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0}, mean[3], rstd[3];
    float rm[3] = {0.2f, -0.1f, 0.0f}, rv[3] = {1.0f, 0.5f, 2.0f};
    double rmd[3], rvd[3];
    for (int ch = 0; ch < c; ch++) rmd[ch] = rm[ch], rvd[ch] = rv[ch];
    float *x = xmalloc(cnt * sizeof(float)), *y = xmalloc(cnt * sizeof(float));
    int ok = 1;
    for (int call = 0; call < 2; call++) {
        rng_fill_uniform(&r, x, cnt, 1.0f + call, 3.0f + 2 * call);
        batchnorm2d_forward_train(&ctx, y, mean, rstd, rm, rv, x, gamma, beta, n, c, hw, momentum,
                                  1e-5f);
        float want_mean[3], want_rstd[3], want_rm[3], want_rv[3];
        for (int ch = 0; ch < c; ch++) {
            double s = 0, sq = 0;
            for (int i = 0; i < n; i++)
                for (int q = 0; q < hw; q++) s += x[((size_t)i * c + ch) * hw + q];
            double mu = s / m;
            for (int i = 0; i < n; i++)
                for (int q = 0; q < hw; q++) {
                    double d = x[((size_t)i * c + ch) * hw + q] - mu;
                    sq += d * d;
                }
            rmd[ch] = (1 - 0.1) * rmd[ch] + 0.1 * mu;
            rvd[ch] = (1 - 0.1) * rvd[ch] + 0.1 * sq / (m - 1); /* unbiased */
            want_mean[ch] = (float)mu;
            want_rstd[ch] = (float)(1.0 / sqrt(sq / m + 1e-5)); /* biased */
            want_rm[ch] = (float)rmd[ch];
            want_rv[ch] = (float)rvd[ch];
        }
        printf(" batchnorm train call %d\n", call + 1);
        ok &= check_tensor("saved mean", mean, want_mean, 3, 0, 1e-6);
        ok &= check_tensor("saved rstd", rstd, want_rstd, 3, 0, 1e-6);
        ok &= check_tensor("running mean", rm, want_rm, 3, 0, 1e-6);
        ok &= check_tensor("running var", rv, want_rv, 3, 0, 1e-6);
    }
    xfree(x), xfree(y), xfree(ctx.ws);
    assert_true(ok);
}

int main(void) {
    ops_cpu_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_conv_vs_ref),
        cmocka_unit_test(test_conv_winograd_vs_im2col),
        cmocka_unit_test(test_convt_winograd_vs_im2col),
        cmocka_unit_test(test_conv_direct1_vs_im2col),
        cmocka_unit_test(test_other_ops_vs_ref),
        cmocka_unit_test(test_backward_vs_finite_differences),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_conv_determinism),
        cmocka_unit_test(test_bn_running_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
