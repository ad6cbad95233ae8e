/* Tests of the backend interface (ops/backend.h):
 *  - the registry: cpu and ref are found, the default is cpu, an unknown name is an error;
 *  - every operator of the Backend table on both backends (cpu with 2 threads, ref) on the
 *    same random inputs, forward and backward, at the UNet's shape classes: maps of 32x32,
 *    16x16, 8x8 and 4x4, stride-2 convolutions, the k=4 stride-2 transposed convolution
 *    (UpConv) and the k=H/4 one from 1x1 (Unflatten); the tolerance of each comparison is
 *    stated where it is defined and printed on its line;
 *  - the memory and whole-tensor operations, bit for bit (both backends do the same float or
 *    double arithmetic);
 *  - central finite differences of the ref backend's backward for the operators that
 *    test_ops.c does not check that way: bn_gelu, attention, relu, maxpool, softmax_xent. */
#include "testutil.h"

#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/attention.h"
#include "ops/backend.h"
#include "ops/cpu.h"
#include "ops/ops.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static Rng rng;
static OpsCtx cpu, ref;

static float *rand_buf(size_t n, float lo, float hi) {
    float *p = xmalloc((n ? n : 1) * sizeof(float));
    rng_fill_uniform(&rng, p, n, lo, hi);
    return p;
}

static float *copy_buf(const float *src, size_t n) {
    float *p = xmalloc((n ? n : 1) * sizeof(float));
    memcpy(p, src, n * sizeof(float));
    return p;
}

/* Tolerances, relative to the largest magnitude of the reference tensor (at least 1):
 * CONV_REL for sums of products that cpu orders differently (im2col, Winograd F(2x2, 3x3)
 * and F(4x4, 3x3), whose transforms round at up to 3e-5 of the largest value, test_ops.c)
 * and ref sums in double; SUM_REL for the other reductions (BatchNorm statistics, linear,
 * pooling, attention's products); ELEM_REL for elementwise maps where cpu evaluates
 * erf / exp by its own polynomial (GELU). 0 means bit for bit. */
#define CONV_REL 5e-5
#define SUM_REL 2e-5
#define ELEM_REL 2e-6

static int close_to(const char *label, const float *got, const float *want, size_t n, double rel) {
    char line[160];
    snprintf(line, sizeof line, "%s (tol %.0e)", label, rel);
    double scale = max_abs(want, n);
    if (rel == 0) {
        int same = memcmp(got, want, n * sizeof(float)) == 0;
        printf("  %-40s n=%-8zu %s\n", line, n, same ? "bit for bit" : "DIFFER");
        return same;
    }
    return check_tensor(line, got, want, n, rel * (scale > 1 ? scale : 1), rel);
}

/* ---- registry --------------------------------------------------------------------------- */

static void test_registry(void **state) {
    (void)state;
    assert_non_null(backend_find("cpu"));
    assert_non_null(backend_find("ref"));
    assert_ptr_equal(backend_default(), backend_find("cpu"));
    assert_null(backend_find("cuda"));
    assert_string_equal(err_msg(), "unknown device 'cuda' (expected cpu or ref)");
    OpsCtx c;
    assert_int_equal(ops_ctx_init(&c, "nope", 1), -1);
    assert_int_equal(ops_ctx_init(&c, NULL, 3), 0);
    assert_ptr_equal(c.be, backend_default());
    assert_int_equal(c.nthreads, 3);
    assert_null(c.ws);
    assert_int_equal(backend_count(), 2);
    /* every entry of every table is filled */
    for (int i = 0; i < backend_count(); i++) {
        const Backend *be = backend_at(i);
        const char *first = (const char *)&be->conv2d_workspace_floats;
        const char *end = (const char *)(be + 1);
        for (const char *p = first; p + sizeof(void (*)(void)) <= end; p += sizeof(void (*)(void))) {
            void (*fn)(void);
            memcpy(&fn, p, sizeof fn);
            assert_non_null(fn);
        }
    }
}

/* ---- convolutions ----------------------------------------------------------------------- */

/* Forward and backward of one convolution shape on both backends; gradients accumulate into
 * the same random values on both. */
static int conv_case(const char *name, ConvShape s, int transposed) {
    size_t nx = (size_t)s.n * s.ci * s.h * s.w, ny = (size_t)s.n * s.co * s.ho * s.wo;
    size_t nw = (size_t)s.ci * s.co * s.k * s.k, nb = (size_t)s.co;
    float *x = rand_buf(nx, -1, 1), *w = rand_buf(nw, -0.5f, 0.5f), *b = rand_buf(nb, -1, 1);
    float *dy = rand_buf(ny, -1, 1), *y[2], *dx[2], *dw[2], *db[2];
    float *dx0 = rand_buf(nx, -1, 1), *dw0 = rand_buf(nw, -1, 1), *db0 = rand_buf(nb, -1, 1);
    const OpsCtx *ctx[2] = {&cpu, &ref};
    for (int k = 0; k < 2; k++) {
        y[k] = rand_buf(ny, -1, 1);
        dx[k] = copy_buf(dx0, nx), dw[k] = copy_buf(dw0, nw), db[k] = copy_buf(db0, nb);
        if (transposed) {
            conv_transpose2d_forward(ctx[k], y[k], x, w, b, &s);
            conv_transpose2d_backward(ctx[k], dx[k], dw[k], db[k], dy, x, w, &s);
        } else {
            conv2d_forward(ctx[k], y[k], x, w, b, &s);
            conv2d_backward(ctx[k], dx[k], dw[k], db[k], dy, x, w, &s);
        }
    }
    printf(" %s\n", name);
    int ok = close_to("y", y[0], y[1], ny, CONV_REL);
    ok &= close_to("dx", dx[0], dx[1], nx, CONV_REL);
    ok &= close_to("dw", dw[0], dw[1], nw, CONV_REL);
    ok &= close_to("db", db[0], db[1], nb, CONV_REL);
    float *bufs[] = {x, w, b, dy, dx0, dw0, db0, y[0], y[1], dx[0], dx[1], dw[0], dw[1], db[0], db[1]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_convolutions(void **state) {
    (void)state;
    const int N = 4;
    struct {
        const char *name;
        ConvShape s;
        int transposed;
    } cases[] = {
        {"conv 3x3 1 > 16 at 32x32 (im2col)", conv_shape(N, 1, 16, 32, 32, 3, 1, 1), 0},
        {"conv 3x3 32 > 32 at 32x32 (Winograd F(4x4))", conv_shape(N, 32, 32, 32, 32, 3, 1, 1), 0},
        {"conv 3x3 32 > 32 at 16x16 (Winograd F(2x2))", conv_shape(N, 32, 32, 16, 16, 3, 1, 1), 0},
        {"conv 3x3 32 > 32 at 8x8", conv_shape(N, 32, 32, 8, 8, 3, 1, 1), 0},
        {"conv 3x3 16 > 16 at 4x4", conv_shape(N, 16, 16, 4, 4, 3, 1, 1), 0},
        {"conv 3x3 32 > 1 at 16x16 (direct)", conv_shape(N, 32, 1, 16, 16, 3, 1, 1), 0},
        {"conv 3x3 stride 2, 32x32 > 16x16", conv_shape(N, 16, 32, 32, 32, 3, 2, 1), 0},
        {"conv 3x3 stride 2, 16x16 > 8x8", conv_shape(N, 32, 32, 16, 16, 3, 2, 1), 0},
        {"conv 3x3 stride 2, 8x8 > 4x4", conv_shape(N, 32, 32, 8, 8, 3, 2, 1), 0},
        {"UpConv k4 s2, 16x16 > 32x32 (Winograd)", conv_transpose_shape(N, 32, 16, 16, 16, 4, 2, 1), 1},
        {"UpConv k4 s2, 8x8 > 16x16", conv_transpose_shape(N, 32, 32, 8, 8, 4, 2, 1), 1},
        {"UpConv k4 s2, 4x4 > 8x8", conv_transpose_shape(N, 32, 32, 4, 4, 4, 2, 1), 1},
        {"Unflatten k8 from 1x1 (H 32)", conv_transpose_shape(N, 32, 32, 1, 1, 8, 1, 0), 1},
        {"Unflatten k4 from 1x1 (H 16)", conv_transpose_shape(N, 32, 32, 1, 1, 4, 1, 0), 1},
        {"Unflatten k7 from 1x1 (H 28)", conv_transpose_shape(N, 16, 32, 1, 1, 7, 1, 0), 1},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ok &= conv_case(cases[i].name, cases[i].s, cases[i].transposed);
    assert_true(ok);
}

/* ---- BatchNorm, GELU and the small layers ---------------------------------------------- */

static int batchnorm_case(int n, int c, int hw) {
    const size_t cnt = (size_t)n * c * hw;
    const OpsCtx *ctx[2] = {&cpu, &ref};
    float *x = rand_buf(cnt, -2, 3), *g = rand_buf(c, 0.5f, 1.5f), *be = rand_buf(c, -1, 1);
    float *dy = rand_buf(cnt, -1, 1), *rm0 = rand_buf(c, -1, 1), *rv0 = rand_buf(c, 0.5f, 2);
    float *dx0 = rand_buf(cnt, -1, 1), *dg0 = rand_buf(c, -1, 1), *db0 = rand_buf(c, -1, 1);
    float *out[2][7], *ye[2], *dxe[2], *yg[2], *dxg[2];
    for (int k = 0; k < 2; k++) {
        float *y = xmalloc(cnt * sizeof(float)), *mean = xmalloc(c * sizeof(float));
        float *rstd = xmalloc(c * sizeof(float)), *rm = copy_buf(rm0, c), *rv = copy_buf(rv0, c);
        float *dx = copy_buf(dx0, cnt), *dg = copy_buf(dg0, c), *db = copy_buf(db0, c);
        batchnorm2d_forward_train(ctx[k], y, mean, rstd, rm, rv, x, g, be, n, c, hw, 0.1f, 1e-5f);
        batchnorm2d_backward_train(ctx[k], dx, dg, db, dy, x, mean, rstd, g, n, c, hw);
        ye[k] = xmalloc(cnt * sizeof(float)), dxe[k] = copy_buf(dx0, cnt);
        batchnorm2d_forward_eval(ctx[k], ye[k], x, g, be, rm0, rv0, n, c, hw, 1e-5f);
        batchnorm2d_backward_eval(ctx[k], dxe[k], dg, db, dy, x, rm0, rv0, g, n, c, hw, 1e-5f);
        /* bn_gelu with the same statistics; dx is overwritten, so it starts as garbage */
        yg[k] = xmalloc(cnt * sizeof(float)), dxg[k] = rand_buf(cnt, -9, 9);
        bn_gelu_forward_train(ctx[k], yg[k], mean, rstd, rm, rv, x, g, be, n, c, hw, 0.1f, 1e-5f);
        bn_gelu_backward_train(ctx[k], dxg[k], dg, db, dy, x, mean, rstd, g, be, n, c, hw);
        float *o[7] = {y, mean, rstd, rm, rv, dx, dg};
        memcpy(out[k], o, sizeof o);
        xfree(db);
    }
    printf(" batchnorm N %d C %d HW %d\n", n, c, hw);
    const char *names[7] = {"train y", "mean", "rstd", "running mean", "running var", "train dx",
                            "dgamma (train, eval, bn_gelu)"};
    const size_t sizes[7] = {cnt, c, c, c, c, cnt, c};
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= close_to(names[i], out[0][i], out[1][i], sizes[i], SUM_REL);
    ok &= close_to("eval y", ye[0], ye[1], cnt, SUM_REL);
    ok &= close_to("eval dx", dxe[0], dxe[1], cnt, SUM_REL);
    ok &= close_to("bn_gelu y", yg[0], yg[1], cnt, SUM_REL);
    ok &= close_to("bn_gelu dx (overwritten)", dxg[0], dxg[1], cnt, SUM_REL);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 7; i++) xfree(out[k][i]);
        xfree(ye[k]), xfree(dxe[k]), xfree(yg[k]), xfree(dxg[k]);
    }
    float *bufs[] = {x, g, be, dy, rm0, rv0, dx0, dg0, db0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_batchnorm(void **state) {
    (void)state;
    int ok = batchnorm_case(4, 16, 32 * 32);
    ok &= batchnorm_case(4, 32, 8 * 8);
    ok &= batchnorm_case(8, 32, 4 * 4);
    assert_true(ok);
}

/* Runs one forward f(ctx, y) and compares y (ny) between the backends at tolerance rel. */
typedef void (*Run)(const OpsCtx *ctx, float *y, void *user);
static int both(const char *label, Run f, void *user, size_t ny, double rel) {
    float *y0 = rand_buf(ny, -1, 1), *y1 = copy_buf(y0, ny);
    f(&cpu, y0, user);
    f(&ref, y1, user);
    int ok = close_to(label, y0, y1, ny, rel);
    xfree(y0), xfree(y1);
    return ok;
}

typedef struct {
    const float *a, *b, *c, *d, *e;
    const int *labels;
    int n, c1, c2, hw;
} Args;

/* The calls, one per operator (y may already hold values: backward accumulates into them). */
static void run_gelu_f(const OpsCtx *x, float *y, void *u) { Args *a = u; gelu_forward(x, y, a->a, a->n); }
static void run_gelu_b(const OpsCtx *x, float *y, void *u) { Args *a = u; gelu_backward(x, y, a->b, a->a, a->n); }
static void run_relu_f(const OpsCtx *x, float *y, void *u) { Args *a = u; relu_forward(x, y, a->a, a->n); }
static void run_relu_b(const OpsCtx *x, float *y, void *u) { Args *a = u; relu_backward(x, y, a->b, a->a, a->n); }
static void run_avg_f(const OpsCtx *x, float *y, void *u) { Args *a = u; avgpool_forward(x, y, a->a, a->n, a->hw); }
static void run_avg_b(const OpsCtx *x, float *y, void *u) { Args *a = u; avgpool_backward(x, y, a->b, a->n, a->hw); }
static void run_max_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    maxpool2x2_forward(x, y, a->a, a->n, a->hw, a->hw);
}
static void run_max_b(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    maxpool2x2_backward(x, y, a->b, a->a, a->n, a->hw, a->hw);
}
static void run_cat_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    concat_forward(x, y, a->a, a->b, a->n, a->c1, a->c2, a->hw);
}
static void run_cat_b(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    size_t na = (size_t)a->n * a->c1 * a->hw;
    concat_backward(x, y, y + na, a->a, a->n, a->c1, a->c2, a->hw);
}
static void run_lin_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    linear_forward(x, y, a->a, a->b, a->c, a->n, a->c1, a->c2);
}
static void run_lin_b(const OpsCtx *x, float *y, void *u) {
    Args *a = u; /* y holds dx (n fi), dw (fo fi), db (fo) */
    size_t nx = (size_t)a->n * a->c1, nw = (size_t)a->c2 * a->c1;
    linear_backward(x, y, y + nx, y + nx + nw, a->d, a->a, a->b, a->n, a->c1, a->c2);
}
static void run_film_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    film_forward(x, y, a->a, a->b, a->c, a->n, a->c1, a->hw);
}
static void run_film_b(const OpsCtx *x, float *y, void *u) {
    Args *a = u; /* y holds dx (n c hw), dscale (n c), dshift (n c) */
    size_t nx = (size_t)a->n * a->c1 * a->hw, ns = (size_t)a->n * a->c1;
    film_backward(x, y, a->b ? y + nx : NULL, y + nx + ns, a->d, a->a, a->b, a->n, a->c1, a->hw);
}
static void run_mse_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    y[0] = mse_forward(x, a->a, a->b, a->n);
}
static void run_mse_b(const OpsCtx *x, float *y, void *u) { Args *a = u; mse_backward(x, y, a->a, a->b, a->n); }
static void run_xent_f(const OpsCtx *x, float *y, void *u) {
    Args *a = u; /* y holds probs (n c) then the loss */
    y[(size_t)a->n * a->c1] = softmax_xent_forward(x, y, a->a, a->labels, a->n, a->c1);
}
static void run_xent_b(const OpsCtx *x, float *y, void *u) {
    Args *a = u;
    softmax_xent_backward(x, y, a->b, a->labels, a->n, a->c1);
}

static void test_small_layers(void **state) {
    (void)state;
    enum { N = 4, C = 16, HW = 64, CNT = N * C * HW };
    float *x = rand_buf(CNT, -3, 3), *dy = rand_buf(CNT, -1, 1), *x2 = rand_buf(CNT, -1, 1);
    /* ties in every pooling window: values on a coarse grid */
    float *xq = rand_buf(CNT, -4, 4);
    for (int i = 0; i < CNT; i++) xq[i] = (float)(int)xq[i];
    xq[5] = 0.0f; /* relu at exactly 0 */
    int ok = 1;
    Args a = {.a = x, .b = dy, .n = CNT};
    /* GELU: ELEM_REL (cpu's erf by polynomial); ReLU, concat, max pooling: bit for bit */
    ok &= both("gelu forward", run_gelu_f, &a, CNT, ELEM_REL);
    ok &= both("gelu backward", run_gelu_b, &a, CNT, ELEM_REL);
    Args q = {.a = xq, .b = dy, .n = CNT};
    ok &= both("relu forward", run_relu_f, &q, CNT, 0);
    ok &= both("relu backward", run_relu_b, &q, CNT, 0);
    Args mp = {.a = xq, .b = dy, .n = N * C, .hw = 8};
    ok &= both("maxpool 2x2 forward (ties)", run_max_f, &mp, N * C * 16, 0);
    ok &= both("maxpool 2x2 backward (ties)", run_max_b, &mp, CNT, 0);
    Args ap = {.a = x, .b = dy, .n = N * C, .hw = 49};
    ok &= both("avgpool forward", run_avg_f, &ap, N * C, SUM_REL);
    ok &= both("avgpool backward", run_avg_b, &ap, N * C * 49, SUM_REL);
    Args ct = {.a = x, .b = x2, .n = N, .c1 = 5, .c2 = 11, .hw = HW};
    ok &= both("concat forward", run_cat_f, &ct, CNT, 0);
    ok &= both("concat backward", run_cat_b, &ct, CNT, 0);
    /* linear: 8 x 32 -> 64 */
    Args ln = {.a = x, .b = x2, .c = dy, .d = dy + 1000, .n = 8, .c1 = 32, .c2 = 64};
    ok &= both("linear forward", run_lin_f, &ln, 8 * 64, SUM_REL);
    ok &= both("linear backward", run_lin_b, &ln, 8 * 32 + 64 * 32 + 64, SUM_REL);
    Args fl = {.a = x, .b = x2, .c = dy, .d = dy, .n = N, .c1 = C, .hw = HW};
    ok &= both("film forward", run_film_f, &fl, CNT, SUM_REL);
    ok &= both("film backward", run_film_b, &fl, CNT + 2 * N * C, SUM_REL);
    fl.b = NULL;
    ok &= both("film forward, no scale", run_film_f, &fl, CNT, SUM_REL);
    ok &= both("film backward, no scale", run_film_b, &fl, CNT + 2 * N * C, SUM_REL);
    Args ms = {.a = x, .b = x2, .n = CNT};
    ok &= both("mse forward", run_mse_f, &ms, 1, SUM_REL);
    ok &= both("mse backward", run_mse_b, &ms, CNT, SUM_REL);
    int labels[16];
    for (int i = 0; i < 16; i++) labels[i] = (int)rng_below(&rng, 10);
    Args xe = {.a = x, .b = x2, .labels = labels, .n = 16, .c1 = 10};
    ok &= both("softmax_xent forward (probs, loss)", run_xent_f, &xe, 16 * 10 + 1, SUM_REL);
    ok &= both("softmax_xent backward", run_xent_b, &xe, 16 * 10, SUM_REL);
    xfree(x), xfree(dy), xfree(x2), xfree(xq);
    assert_true(ok);
}

/* ---- attention -------------------------------------------------------------------------- */

static int attention_case(int n, int c, int l) {
    const size_t cnt = (size_t)n * c * l, ns = attention_saved_floats(n, c, l);
    const size_t nq = 3 * (size_t)c * c, no = (size_t)c * c;
    float *x = rand_buf(cnt, -1, 1), *wq = rand_buf(nq, -0.3f, 0.3f), *bq = rand_buf(3 * c, -1, 1);
    float *wo = rand_buf(no, -0.3f, 0.3f), *bo = rand_buf(c, -1, 1), *dy = rand_buf(cnt, -1, 1);
    float *g0 = rand_buf(cnt + nq + 3 * c + no + c, -1, 1), *y[2], *sv[2], *g[2];
    const OpsCtx *ctx[2] = {&cpu, &ref};
    for (int k = 0; k < 2; k++) {
        y[k] = xmalloc(cnt * sizeof(float)), sv[k] = xmalloc(ns * sizeof(float));
        g[k] = copy_buf(g0, cnt + nq + 3 * c + no + c);
        attention_forward(ctx[k], y[k], sv[k], x, wq, bq, wo, bo, n, c, l);
        float *d = g[k];
        attention_backward(ctx[k], d, d + cnt, d + cnt + nq, d + cnt + nq + 3 * c,
                           d + cnt + nq + 3 * c + no, dy, x, sv[k], wq, wo, n, c, l);
    }
    printf(" attention N %d C %d L %d\n", n, c, l);
    int ok = close_to("y", y[0], y[1], cnt, SUM_REL);
    ok &= close_to("saved (Q, K, V, P, O)", sv[0], sv[1], ns, SUM_REL);
    ok &= close_to("dx, dw_qkv, db_qkv, dw_out, db_out", g[0], g[1], cnt + nq + 3 * c + no + c,
                   SUM_REL);
    for (int k = 0; k < 2; k++) xfree(y[k]), xfree(sv[k]), xfree(g[k]);
    float *bufs[] = {x, wq, bq, wo, bo, dy, g0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    return ok;
}

static void test_attention_both(void **state) {
    (void)state;
    int ok = attention_case(2, 16, 4 * 4);
    ok &= attention_case(3, 32, 8 * 8);
    ok &= attention_case(2, 16, 16 * 16);
    assert_true(ok);
}

/* ---- memory and whole-tensor operations: bit for bit ------------------------------------ */

/* Runs one whole-tensor operation on both backends from the same inputs, all in each
 * backend's memory, and compares the outputs out (n1 floats) and out2 (n2) bit for bit. */
typedef void (*TensorOp)(const OpsCtx *ctx, float *out, float *out2, float *const in[4], void *u);

static int tensor_case(const char *label, TensorOp f, void *u, size_t n1, size_t n2,
                       float *const host_in[4], size_t n_in) {
    float *res[2][2];
    for (int k = 0; k < 2; k++) {
        const OpsCtx *ctx = k ? &ref : &cpu;
        float *in[4], *o1 = dev_alloc(ctx, n1 * sizeof(float)), *o2 = dev_alloc(ctx, n2 * sizeof(float) + 4);
        for (int i = 0; i < 4; i++) {
            in[i] = dev_alloc(ctx, n_in * sizeof(float));
            dev_upload(ctx, in[i], host_in[i], n_in * sizeof(float));
        }
        /* outputs start equal to the first two inputs (for the in-place operations) */
        dev_copy(ctx, o1, in[0], n1 < n_in ? n1 : n_in);
        dev_copy(ctx, o2, in[1], n2 < n_in ? n2 : n_in);
        f(ctx, o1, o2, in, u);
        res[k][0] = xmalloc(n1 * sizeof(float) + 4), res[k][1] = xmalloc(n2 * sizeof(float) + 4);
        dev_download(ctx, res[k][0], o1, n1 * sizeof(float));
        dev_download(ctx, res[k][1], o2, n2 * sizeof(float));
        for (int i = 0; i < 4; i++) dev_free(ctx, in[i], n_in * sizeof(float));
        dev_free(ctx, o1, n1 * sizeof(float));
        dev_free(ctx, o2, n2 * sizeof(float) + 4);
    }
    int ok = close_to(label, res[0][0], res[1][0], n1, 0);
    if (n2) ok &= close_to(label, res[0][1], res[1][1], n2, 0);
    for (int k = 0; k < 2; k++) xfree(res[k][0]), xfree(res[k][1]);
    return ok;
}

enum { TN = 1003 }; /* not a multiple of any vector width */

static void op_add(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u;
    add_forward(c, o, in[1], in[2], TN);
}
static void op_add_alias(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u, (void)in;
    add_forward(c, o, o, o, TN);
}
static void op_scale_add(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u;
    scale_add(c, o, in[1], 0.37f, in[2], TN);
}
static void op_noising(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u; /* 17 images of 59 pixels, coefficients from in[3] */
    noising_forward(c, o, in[1], in[2], in[3], in[3] + 17, 17, 59);
}
static void op_temb(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u; /* 7 inputs of t/T in [0, 1], E 32 */
    time_embedding_forward(c, o, in[3], 7, 32);
}
static void op_fold(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    int transposed = *(int *)u; /* Ci 6, Co 5, K 3; running_var from in[3] (positive) */
    bn_fold(c, o, o2, in[0], in[1], in[2], in[1] + 5, in[2] + 5, in[3], 6, 5, 3, transposed, 1e-5f);
}
static void op_adam(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)u; /* param o, m o2 (the first values of in[1]), v from in[3] (positive) */
    const AdamScalars s = {0.9f, 0.1f, 0.999f, 0.001f, 1.3e-3f, 0.03f, 1e-8f};
    for (int step = 0; step < 3; step++) adam_update(c, o, in[2], o2, in[3], TN, &s);
}
static void op_ema(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u;
    ema_update(c, o, in[2], 0.999f, TN);
}
static void op_swap(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)in, (void)u;
    swap_values(c, o, o2, TN);
}
static void op_guidance(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2, (void)u;
    guidance_forward(c, o, in[1], in[2], 3.5f, TN);
}
static void op_ddpm(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2;
    const DdpmCoefs k = {1.7, 0.9, 0.3, 0.6, 0.05};
    ddpm_step(c, o, in[1], in[2], u ? in[3] : NULL, &k, TN);
}
static void op_ddim(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)o2;
    const DdimCoefs k = {1.7, 0.9, 0.6, 0.8, 0.7, 0.5, 0.2, *(int *)u};
    ddim_step(c, o, o, in[2], in[3], &k, TN); /* in place, as the sampler calls it */
}
static void op_fill(const OpsCtx *c, float *o, float *o2, float *const in[4], void *u) {
    (void)in, (void)u;
    dev_fill(c, o, 0.0f, TN);
    dev_fill(c, o2, -2.5f, TN);
}

static void test_tensor_ops(void **state) {
    (void)state;
    float *in[4];
    for (int i = 0; i < 3; i++) in[i] = rand_buf(TN, -2, 2);
    in[3] = rand_buf(TN, 0.01f, 1);
    int ok = 1, zero = 0, one = 1;
    ok &= tensor_case("add_forward", op_add, NULL, TN, 0, in, TN);
    ok &= tensor_case("add_forward in place", op_add_alias, NULL, TN, 0, in, TN);
    ok &= tensor_case("scale_add", op_scale_add, NULL, TN, 0, in, TN);
    ok &= tensor_case("noising_forward", op_noising, NULL, 17 * 59, 0, in, TN);
    ok &= tensor_case("time_embedding_forward", op_temb, NULL, 7 * 32, 0, in, TN);
    ok &= tensor_case("bn_fold", op_fold, &zero, 5 * 6 * 9, 5, in, TN);
    ok &= tensor_case("bn_fold, transposed", op_fold, &one, 5 * 6 * 9, 5, in, TN);
    ok &= tensor_case("adam_update (param, m, 3 steps)", op_adam, NULL, TN, TN, in, TN);
    ok &= tensor_case("ema_update", op_ema, NULL, TN, 0, in, TN);
    ok &= tensor_case("swap_values", op_swap, NULL, TN, TN, in, TN);
    ok &= tensor_case("guidance_forward", op_guidance, NULL, TN, 0, in, TN);
    ok &= tensor_case("ddpm_step with z", op_ddpm, &one, TN, 0, in, TN);
    ok &= tensor_case("ddpm_step, z NULL", op_ddpm, NULL, TN, 0, in, TN);
    ok &= tensor_case("ddim_step in place", op_ddim, &zero, TN, 0, in, TN);
    ok &= tensor_case("ddim_step in place, clip", op_ddim, &one, TN, 0, in, TN);
    ok &= tensor_case("dev_fill 0 and -2.5", op_fill, NULL, TN, TN, in, TN);
    /* the reductions: the same double sum in index order, and the finite check */
    for (int k = 0; k < 2; k++) {
        const OpsCtx *c = k ? &ref : &cpu;
        float *a = dev_alloc(c, TN * sizeof(float)), *b = dev_alloc(c, TN * sizeof(float));
        dev_upload(c, a, in[0], TN * sizeof(float));
        dev_upload(c, b, in[1], TN * sizeof(float));
        double s = sq_diff_sum(c, a, b, TN), want = 0;
        for (int i = 0; i < TN; i++) want += ((double)in[0][i] - in[1][i]) * ((double)in[0][i] - in[1][i]);
        printf("  sq_diff_sum on %s: %.17g (want %.17g)\n", c->be->name, s, want);
        ok &= s == want;
        ok &= all_finite(c, a, TN) == 1;
        for (size_t at = 0; at < TN; at += 500) {
            const float bad[3] = {NAN, INFINITY, -INFINITY};
            for (int j = 0; j < 3; j++) {
                dev_upload(c, a + at, &bad[j], sizeof(float));
                ok &= all_finite(c, a, TN) == 0;
            }
            dev_upload(c, a + at, &in[0][at], sizeof(float));
        }
        ok &= all_finite(c, a, TN) == 1 && all_finite(c, a, 0) == 1;
        dev_free(c, a, TN * sizeof(float));
        dev_free(c, b, TN * sizeof(float));
    }
    for (int i = 0; i < 4; i++) xfree(in[i]);
    assert_true(ok);
}

/* ---- finite differences of the ref backend's backward ----------------------------------
 * As in test_ops.c: the loss L = sum_i y_i r_i (double) with fixed random r, so dL/dy = r;
 * the numeric derivative (L(p + h) - L(p - h)) / (p_plus - p_minus) against the ref backward
 * with dy = r. Tolerance FD_ATOL + FD_RTOL |grad|: truncation (h^2 / 6) f''' is below 1e-4
 * at h = 1e-2 for these smooth maps (ReLU and max pooling are tested away from their kinks),
 * rounding noise about 1e-5, and a wrong term is O(0.1). */
#define FD_STEP 1e-2f
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define FD_CHECKS 30

typedef struct {
    void (*forward)(void *u); /* recomputes y from the inputs */
    void *u;
    const float *y, *r; /* r NULL: y[0] is the loss */
    size_t ny;
} Fd;

static double fd_loss(const Fd *f) {
    f->forward(f->u);
    if (!f->r) return f->y[0];
    double l = 0;
    for (size_t i = 0; i < f->ny; i++) l += (double)f->y[i] * f->r[i];
    return l;
}

static int fd_check(const char *label, const Fd *f, float *p, const float *grad, size_t n) {
    size_t checks = n < FD_CHECKS ? n : FD_CHECKS;
    float num[FD_CHECKS], ana[FD_CHECKS];
    for (size_t j = 0; j < checks; j++) {
        size_t i = j * n / checks;
        float orig = p[i], plus = orig + FD_STEP, minus = orig - FD_STEP;
        p[i] = plus;
        double lp = fd_loss(f);
        p[i] = minus;
        double lm = fd_loss(f);
        p[i] = orig;
        num[j] = (float)((lp - lm) / ((double)plus - (double)minus));
        ana[j] = grad[i];
    }
    char line[96];
    snprintf(line, sizeof line, "%s (tol %.0e + %.0e rel)", label, FD_ATOL, FD_RTOL);
    return check_tensor(line, num, ana, checks, FD_ATOL, FD_RTOL);
}

typedef struct {
    float *x, *g, *b, *y, *mean, *rstd, *rm, *rv, *wq, *bq, *wo, *bo, *sv;
    int *labels;
    int n, c, hw;
} FdArgs;

static void fwd_bn_gelu(void *u) {
    FdArgs *a = u;
    bn_gelu_forward_train(&ref, a->y, a->mean, a->rstd, a->rm, a->rv, a->x, a->g, a->b, a->n,
                          a->c, a->hw, 0.1f, 1e-5f);
}
static void fwd_attention(void *u) {
    FdArgs *a = u;
    attention_forward(&ref, a->y, a->sv, a->x, a->wq, a->bq, a->wo, a->bo, a->n, a->c, a->hw);
}
static void fwd_relu(void *u) {
    FdArgs *a = u;
    relu_forward(&ref, a->y, a->x, (int64_t)a->n * a->c * a->hw);
}
static void fwd_maxpool(void *u) {
    FdArgs *a = u;
    maxpool2x2_forward(&ref, a->y, a->x, a->n * a->c, a->hw, a->hw);
}
static void fwd_xent(void *u) {
    FdArgs *a = u;
    a->y[0] = softmax_xent_forward(&ref, a->sv, a->x, a->labels, a->n, a->c);
}

static void test_fd_ref(void **state) {
    (void)state;
    enum { N = 2, C = 4, HW = 16, CNT = N * C * HW };
    FdArgs a = {.n = N, .c = C, .hw = HW};
    a.x = rand_buf(CNT, -2, 2), a.g = rand_buf(C, 0.5f, 1.5f), a.b = rand_buf(C, -1, 1);
    a.y = xcalloc(CNT, sizeof(float)), a.mean = xcalloc(C, sizeof(float));
    a.rstd = xcalloc(C, sizeof(float)), a.rm = xcalloc(C, sizeof(float));
    a.rv = rand_buf(C, 1, 1);
    float *r = rand_buf(CNT, -1, 1), *dx = xcalloc(CNT, sizeof(float));
    float *dg = xcalloc(C, sizeof(float)), *db = xcalloc(C, sizeof(float));
    int ok = 1;
    printf(" bn_gelu (ref)\n");
    Fd f = {fwd_bn_gelu, &a, a.y, r, CNT};
    fwd_bn_gelu(&a);
    bn_gelu_backward_train(&ref, dx, dg, db, r, a.x, a.mean, a.rstd, a.g, a.b, N, C, HW);
    ok &= fd_check("dx", &f, a.x, dx, CNT);
    ok &= fd_check("dgamma", &f, a.g, dg, C);
    ok &= fd_check("dbeta", &f, a.b, db, C);

    printf(" attention (ref)\n");
    a.wq = rand_buf(3 * C * C, -0.5f, 0.5f), a.bq = rand_buf(3 * C, -0.5f, 0.5f);
    a.wo = rand_buf(C * C, -0.5f, 0.5f), a.bo = rand_buf(C, -0.5f, 0.5f);
    a.sv = xcalloc(attention_saved_floats(N, C, HW), sizeof(float));
    float *dwq = xcalloc(3 * C * C, sizeof(float)), *dbq = xcalloc(3 * C, sizeof(float));
    float *dwo = xcalloc(C * C, sizeof(float)), *dbo = xcalloc(C, sizeof(float));
    memset(dx, 0, CNT * sizeof(float));
    f.forward = fwd_attention;
    fwd_attention(&a);
    attention_backward(&ref, dx, dwq, dbq, dwo, dbo, r, a.x, a.sv, a.wq, a.wo, N, C, HW);
    ok &= fd_check("dx", &f, a.x, dx, CNT);
    ok &= fd_check("dw_qkv", &f, a.wq, dwq, 3 * C * C);
    ok &= fd_check("db_qkv", &f, a.bq, dbq, 3 * C);
    ok &= fd_check("dw_out", &f, a.wo, dwo, C * C);
    ok &= fd_check("db_out", &f, a.bo, dbo, C);

    printf(" relu and maxpool (ref), inputs at least 0.05 from a kink\n");
    for (int i = 0; i < CNT; i++) a.x[i] = (float)((i * 37) % CNT - CNT / 2) / 8.0f + 0.0625f;
    memset(dx, 0, CNT * sizeof(float));
    f.forward = fwd_relu;
    relu_backward(&ref, dx, r, a.x, CNT);
    ok &= fd_check("relu dx", &f, a.x, dx, CNT);
    a.hw = 4; /* 4x4 maps: N C planes */
    memset(dx, 0, CNT * sizeof(float));
    f.forward = fwd_maxpool, f.ny = CNT / 4;
    maxpool2x2_backward(&ref, dx, r, a.x, N * C, 4, 4);
    ok &= fd_check("maxpool dx", &f, a.x, dx, CNT);

    printf(" softmax_xent (ref)\n");
    int labels[N * C / 2];
    for (int i = 0; i < N * C / 2; i++) labels[i] = (int)rng_below(&rng, 10);
    a.labels = labels, a.n = N * C / 2, a.c = 10; /* 4 rows of 10 logits in x */
    memset(dx, 0, CNT * sizeof(float));
    f.forward = fwd_xent, f.r = NULL, f.ny = 1;
    fwd_xent(&a);
    softmax_xent_backward(&ref, dx, a.sv, labels, a.n, a.c);
    ok &= fd_check("dlogits", &f, a.x, dx, (size_t)a.n * a.c);

    float *bufs[] = {a.x, a.g, a.b, a.y, a.mean, a.rstd, a.rm, a.rv, a.wq, a.bq, a.wo, a.bo, a.sv,
                     r, dx, dg, db, dwq, dbq, dwo, dbo};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    assert_true(ok);
}

int main(void) {
    ops_cpu_init();
    rng_seed(&rng, 2026);
    if (ops_ctx_init(&cpu, "cpu", 2) != 0 || ops_ctx_init(&ref, "ref", 1) != 0) return 1;
    /* one workspace for every case above, the most any of them asks for */
    size_t ws = attention_workspace_floats(3, 32, 256, 2);
    for (int h = 4; h <= 32; h *= 2) {
        ConvShape s[3] = {conv_shape(4, 32, 32, h, h, 3, 1, 1), conv_shape(4, 32, 32, h, h, 3, 2, 1),
                          conv_transpose_shape(4, 32, 32, h, h, 4, 2, 1)};
        size_t w[3] = {conv2d_workspace_floats(&s[0], 2), conv2d_workspace_floats(&s[1], 2),
                       conv_transpose2d_workspace_floats(&s[2], 2)};
        for (int i = 0; i < 3; i++) ws = w[i] > ws ? w[i] : ws;
    }
    ConvShape u = conv_transpose_shape(4, 32, 32, 1, 1, 8, 1, 0);
    size_t wu = conv_transpose2d_workspace_floats(&u, 2);
    cpu.ws_floats = wu > ws ? wu : ws;
    cpu.ws = xmalloc(cpu.ws_floats * sizeof(float));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),       cmocka_unit_test(test_convolutions),
        cmocka_unit_test(test_batchnorm),      cmocka_unit_test(test_small_layers),
        cmocka_unit_test(test_attention_both), cmocka_unit_test(test_tensor_ops),
        cmocka_unit_test(test_fd_ref),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    xfree(cpu.ws);
    return failed;
}
