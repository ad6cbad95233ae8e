/* Conv2d and ConvTranspose2d on the CPU: im2col/col2im plus one SGEMM per group of images,
 * OpenMP across the batch, each thread with its own workspace slice and its own weight
 * gradient partial, reduced in a fixed order so results are bit-identical for a fixed nthreads.
 * Conv2d with K 3, stride 1, padding 1 and at least WINOGRAD_MIN_CHANNELS channels on both
 * sides goes to Winograd F(2x2, 3x3) instead (winograd.c), and with a single output channel
 * to a direct loop (below), unless DDPM_CONV=im2col. */
#include "backend/cpu/cpu_ops.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/simd.h"
#include "backend/cpu/winograd.h"
#include "core/common.h"

/* Both operators are driven as one plain convolution, described by a Geom: it unfolds the
 * "in" side (cin, hin, win) with im2col and produces the "out" side (cout, hout, wout).
 *   conv2d:           in = x (Ci,H,W),   out = y (Co,Ho,Wo), weight (Co, Ci K K).
 *   conv_transpose2d: in = y (Co,Ho,Wo), out = x (Ci,H,W),   weight (Ci, Co K K).
 * In both cases the weight is a (cout, cin K K) matrix, and with col = im2col(in side):
 *   conv forward       out = W col               = convT input gradient
 *   conv input grad    in  = col2im(W^T out)     = convT forward
 *   weight gradient    dW += (out-side tensor) col^T   (dy for conv2d, x for convT). */
typedef struct {
    int cin, hin, win;
    int cout, hout, wout;
    int k, stride, pad;
} Geom;

/* Images per GEMM: enough that the GEMM's column count g*hout*wout reaches this, because
 * OpenBLAS is far from peak on the 49 or 196 columns of a single 7x7 or 14x14 image. */
#define CONV_TARGET_COLS 256

/* How one call splits its work: nthreads slices of the batch, g images per GEMM, and the
 * floats of each thread's workspace slice (every part rounded to 64 bytes). */
typedef struct {
    int g;
    size_t col;  /* (cin K K, g hout wout) unfolded in side */
    size_t cbuf; /* (cout, g hout wout) out side gathered from g images; 0 when g == 1 */
    size_t dw;   /* (cout, cin K K) weight gradient partial of this thread */
    size_t per_thread;
} Plan;

static Geom geom_conv(const ConvShape *s) {
    return (Geom){s->ci, s->h, s->w, s->co, s->ho, s->wo, s->k, s->stride, s->pad};
}

static Geom geom_convt(const ConvShape *s) {
    return (Geom){s->co, s->ho, s->wo, s->ci, s->h, s->w, s->k, s->stride, s->pad};
}

static Plan plan_make(const Geom *g, int n, int nthreads) {
    DDPM_CHECK(nthreads >= 1 && n >= 1);
    Plan p;
    size_t pix = (size_t)g->hout * (size_t)g->wout;
    int per_slice = (n + nthreads - 1) / nthreads;
    int want = (int)((CONV_TARGET_COLS + pix - 1) / pix);
    p.g = want < per_slice ? want : per_slice;
    if (p.g < 1) p.g = 1;
    size_t rows = (size_t)g->cin * (size_t)g->k * (size_t)g->k;
    p.col = round16(rows * (size_t)p.g * pix);
    p.cbuf = p.g > 1 ? round16((size_t)g->cout * (size_t)p.g * pix) : 0;
    p.dw = round16((size_t)g->cout * rows);
    p.per_thread = p.col + p.cbuf + p.dw;
    return p;
}

/* The transposed convolution of a 1x1 input without padding (Unflatten: 1x1 -> KxK with
 * stride K) touches every output pixel exactly once: y (N, Co K K) = x (N, Ci) W (Ci, Co K K). */
static int convt_is_outer(const ConvShape *s) { return s->h == 1 && s->w == 1 && s->pad == 0; }

static void check_conv_shape(const ConvShape *s) {
    ConvShape t = conv_shape(s->n, s->ci, s->co, s->h, s->w, s->k, s->stride, s->pad);
    DDPM_CHECK(t.ho == s->ho && t.wo == s->wo);
}

static void check_convt_shape(const ConvShape *s) {
    ConvShape t = conv_transpose_shape(s->n, s->ci, s->co, s->h, s->w, s->k, s->stride, s->pad);
    DDPM_CHECK(t.ho == s->ho && t.wo == s->wo);
}

/* The direct path for one output channel (its section below): when it applies, and its
 * per-thread workspace. */
static int conv_is_direct1(const ConvShape *s) {
    return s->co == 1 && s->k == 3 && s->stride == 1 && s->pad == 1 && s->ho == s->h &&
           s->wo == s->w;
}

/* Per-thread workspace: padded plane, output-side plane, padded gradient plane, dW partial
 * (Ci x 9 doubles). */
typedef struct {
    size_t pad, row, dw, per_thread;
} D1Plan;

static D1Plan d1_plan(const ConvShape *s) {
    D1Plan p;
    const size_t W = (size_t)s->w + 2;
    p.pad = round16(((size_t)s->h + 2) * W + 2);
    p.row = round16((size_t)s->h * W);
    p.dw = round16(2 * (size_t)s->ci * 9);
    p.per_thread = 2 * p.pad + p.row + p.dw;
    return p;
}

/* Enough for either path whenever Winograd may be chosen (whatever DDPM_CONV says), so a
 * workspace sized once serves both. */
size_t cpu_conv2d_workspace_floats(const ConvShape *s, int nthreads) {
    check_conv_shape(s);
    Geom g = geom_conv(s);
    size_t need = (size_t)nthreads * plan_make(&g, s->n, nthreads).per_thread;
    if (conv_winograd_geometry(s) && s->ci >= WINOGRAD_MIN_CHANNELS &&
        s->co >= WINOGRAD_MIN_CHANNELS) {
        size_t wino = conv2d_winograd_workspace_floats(s, nthreads);
        if (wino > need) need = wino;
    }
    if (conv_is_direct1(s)) {
        size_t d1 = (size_t)nthreads * d1_plan(s).per_thread;
        if (d1 > need) need = d1;
    }
    return need;
}

size_t cpu_conv_transpose2d_workspace_floats(const ConvShape *s, int nthreads) {
    check_convt_shape(s);
    if (convt_is_outer(s)) return 0;
    Geom g = geom_convt(s);
    size_t need = (size_t)nthreads * plan_make(&g, s->n, nthreads).per_thread;
    if (conv_transpose_up_geometry(s)) {
        size_t up = conv_transpose2d_winograd_workspace_floats(s, nthreads);
        if (up > need) need = up;
    }
    return need;
}

/* ---- im2col / col2im ---------------------------------------------------------------- */

/* Output columns ox whose input column ox*stride - pad + kx lies inside [0, win): [*lo, *hi). */
static void valid_range(int kx, int stride, int pad, int win, int wout, int *lo, int *hi) {
    int first = pad - kx;          /* smallest ox*stride that lands on input column 0 */
    int last = win - 1 + pad - kx; /* largest ox*stride that lands inside */
    int l = first <= 0 ? 0 : (first + stride - 1) / stride;
    int h = last < 0 ? 0 : last / stride + 1;
    if (h > wout) h = wout;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col[((c K + ky) K + kx) ld + oy wout + ox] = in[c, oy s - p + ky, ox s - p + kx] (0 outside),
 * for one image in (cin, hin, win); ld is the row length of the (possibly grouped) matrix. */
static void im2col(float *col, size_t ld, const float *in, const Geom *g) {
    const int k = g->k, s = g->stride, p = g->pad, wout = g->wout;
    for (int c = 0; c < g->cin; c++) {
        const float *plane = in + (size_t)c * (size_t)g->hin * (size_t)g->win;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(c * k + ky) * (size_t)k + (size_t)kx) * ld;
                int lo, hi;
                valid_range(kx, s, p, g->win, wout, &lo, &hi);
                for (int oy = 0; oy < g->hout; oy++) {
                    float *dst = row + (size_t)oy * (size_t)wout;
                    int iy = oy * s - p + ky;
                    if (iy < 0 || iy >= g->hin) {
                        memset(dst, 0, sizeof(float) * (size_t)wout);
                        continue;
                    }
                    /* output column ox reads input column ox * s + off */
                    const float *src = plane + (size_t)iy * (size_t)g->win;
                    const int off = kx - p;
                    for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                    if (s == 1 && hi > lo) {
                        memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                    } else if (s == 2) { /* a constant stride, which the compiler vectorises */
                        const float *sp = src + off;
                        for (int ox = lo; ox < hi; ox++) dst[ox] = sp[2 * ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++) dst[ox] = src[ox * s + off];
                    }
                    for (int ox = hi; ox < wout; ox++) dst[ox] = 0.0f;
                }
            }
        }
    }
}

/* The adjoint of im2col: in[c, oy s - p + ky, ox s - p + kx] += col[...], skipping padding. */
static void col2im(float *in, const float *col, size_t ld, const Geom *g) {
    const int k = g->k, s = g->stride, p = g->pad, wout = g->wout;
    for (int c = 0; c < g->cin; c++) {
        float *plane = in + (size_t)c * (size_t)g->hin * (size_t)g->win;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(c * k + ky) * (size_t)k + (size_t)kx) * ld;
                int lo, hi;
                valid_range(kx, s, p, g->win, wout, &lo, &hi);
                for (int oy = 0; oy < g->hout; oy++) {
                    int iy = oy * s - p + ky;
                    if (iy < 0 || iy >= g->hin) continue;
                    const float *src = row + (size_t)oy * (size_t)wout;
                    float *dst = plane + (size_t)iy * (size_t)g->win;
                    const int off = kx - p;
                    if (s == 1) {
                        for (int ox = lo; ox < hi; ox++) dst[ox + off] += src[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++) dst[ox * s + off] += src[ox];
                    }
                }
            }
        }
    }
}

/* ---- grouping of images into one GEMM ------------------------------------------------- */

/* dst (c, gi pix) <- gi consecutive images (c, pix) starting at src. */
static void gather(float *dst, const float *src, int gi, int c, size_t pix) {
    size_t ld = (size_t)gi * pix;
    for (int j = 0; j < gi; j++)
        for (int ch = 0; ch < c; ch++)
            memcpy(dst + (size_t)ch * ld + (size_t)j * pix,
                   src + ((size_t)j * (size_t)c + (size_t)ch) * pix, sizeof(float) * pix);
}

/* gi images (c, pix) at dst  =  src (c, gi pix) + bias (c) (bias may be NULL). */
static void scatter_bias(float *dst, const float *src, const float *bias, int gi, int c,
                         size_t pix) {
    size_t ld = (size_t)gi * pix;
    for (int j = 0; j < gi; j++)
        for (int ch = 0; ch < c; ch++) {
            const float *s = src + (size_t)ch * ld + (size_t)j * pix;
            float *d = dst + ((size_t)j * (size_t)c + (size_t)ch) * pix;
            float b = bias ? bias[ch] : 0.0f;
            for (size_t q = 0; q < pix; q++) d[q] = s[q] + b;
        }
}

/* gi images (c, pix) at dst  +=  src (c, gi pix). */
static void scatter_add(float *dst, const float *src, int gi, int c, size_t pix) {
    size_t ld = (size_t)gi * pix;
    for (int j = 0; j < gi; j++)
        for (int ch = 0; ch < c; ch++) {
            const float *s = src + (size_t)ch * ld + (size_t)j * pix;
            float *d = dst + ((size_t)j * (size_t)c + (size_t)ch) * pix;
            for (size_t q = 0; q < pix; q++) d[q] += s[q];
        }
}

/* Fill gi images (c, pix) with their channel's bias (zeros if bias is NULL). */
static void fill_bias(float *dst, const float *bias, int gi, int c, size_t pix) {
    for (int j = 0; j < gi; j++)
        for (int ch = 0; ch < c; ch++) {
            float *d = dst + ((size_t)j * (size_t)c + (size_t)ch) * pix;
            float b = bias ? bias[ch] : 0.0f;
            for (size_t q = 0; q < pix; q++) d[q] = b;
        }
}

/* ---- the generic driver ----------------------------------------------------------------- */

/* What one call of the driver computes, in Geom terms (any pointer may be NULL = skip):
 *   fwd_out  = W im2col(fwd_in) + fwd_bias              (out side, overwritten)
 *   acc_out += W im2col(fwd_in)                          (out side, accumulated)
 *   bwd_in   = col2im(W^T bwd_out) + bwd_bias            (in side, overwritten)
 *   acc_in  += col2im(W^T bwd_out)                       (in side, accumulated)
 *   dw      += wg_out im2col(wg_in)^T                    (weight, reduced over threads)
 * A call sets the weight-gradient group and/or one of the others; they run per image group
 * in the order fwd, wg, bwd, which lets wg reuse the unfolded fwd_in (conv_transpose2d
 * backward) and bwd reuse the gathered wg_out (conv2d backward). */
typedef struct {
    const float *fwd_in;
    float *fwd_out, *acc_out;
    const float *fwd_bias;
    const float *bwd_out;
    float *bwd_in, *acc_in;
    const float *bwd_bias;
    const float *wg_out, *wg_in;
    float *dw;
} Job;

static void run_slice(const Job *jb, const Geom *g, const Plan *p, const float *w, int n0, int n1,
                      float *col, float *cbuf, float *dwp) {
    const size_t pix = (size_t)g->hout * (size_t)g->wout;
    const size_t in_img = (size_t)g->cin * (size_t)g->hin * (size_t)g->win;
    const size_t out_img = (size_t)g->cout * pix;
    const size_t in_pix = (size_t)g->hin * (size_t)g->win;
    const int rows = g->cin * g->k * g->k; /* rows of col, columns of W */
    for (int i = n0; i < n1; i += p->g) {
        int gi = n1 - i < p->g ? n1 - i : p->g;
        int m = gi * (int)pix; /* GEMM columns: gi images side by side */
        size_t ld = (size_t)m;
        if (jb->fwd_in) {
            for (int j = 0; j < gi; j++)
                im2col(col + (size_t)j * pix, ld, jb->fwd_in + (size_t)(i + j) * in_img, g);
            if (jb->fwd_out) {
                float *dst = gi == 1 ? jb->fwd_out + (size_t)i * out_img : cbuf;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->cout, m, rows, 1.0f, w,
                            rows, col, m, 0.0f, dst, m);
                if (gi == 1) {
                    if (jb->fwd_bias)
                        for (int c = 0; c < g->cout; c++)
                            for (size_t q = 0; q < pix; q++)
                                dst[(size_t)c * pix + q] += jb->fwd_bias[c];
                } else {
                    scatter_bias(jb->fwd_out + (size_t)i * out_img, cbuf, jb->fwd_bias, gi, g->cout,
                                 pix);
                }
            } else {
                float *acc = jb->acc_out + (size_t)i * out_img;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->cout, m, rows, 1.0f, w,
                            rows, col, m, gi == 1 ? 1.0f : 0.0f, gi == 1 ? acc : cbuf, m);
                if (gi > 1) scatter_add(acc, cbuf, gi, g->cout, pix);
            }
        }
        if (jb->wg_out) {
            const float *o = jb->wg_out + (size_t)i * out_img;
            if (gi > 1) {
                gather(cbuf, o, gi, g->cout, pix);
                o = cbuf;
            }
            /* conv_transpose2d backward unfolds dy for both dx and dW: reuse it */
            if (jb->wg_in != jb->fwd_in)
                for (int j = 0; j < gi; j++)
                    im2col(col + (size_t)j * pix, ld, jb->wg_in + (size_t)(i + j) * in_img, g);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->cout, rows, m, 1.0f, o, m, col,
                        m, 1.0f, dwp, rows);
        }
        if (jb->bwd_out) {
            const float *o = jb->bwd_out + (size_t)i * out_img;
            if (gi > 1) {
                /* conv2d backward already gathered dy for dW */
                if (jb->wg_out != jb->bwd_out) gather(cbuf, o, gi, g->cout, pix);
                o = cbuf;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, m, g->cout, 1.0f, w, rows, o,
                        m, 0.0f, col, m);
            float *dst = jb->bwd_in ? jb->bwd_in : jb->acc_in;
            if (jb->bwd_in) fill_bias(dst + (size_t)i * in_img, jb->bwd_bias, gi, g->cin, in_pix);
            for (int j = 0; j < gi; j++)
                col2im(dst + (size_t)(i + j) * in_img, col + (size_t)j * pix, ld, g);
        }
    }
}

/* dw (count) += the nt per-thread partials at part + t stride, summed in thread order.
 * Called by every thread of a parallel region once all partials are complete. */
static void reduce_partials(float *dw, const float *part, size_t stride, size_t count, int nt) {
#pragma omp barrier
#pragma omp for schedule(static)
    for (size_t e = 0; e < count; e++) {
        float acc = 0.0f;
        for (int t = 0; t < nt; t++) acc += part[(size_t)t * stride + e];
        dw[e] += acc;
    }
}

/* Runs a Job over the batch: nthreads slices, each with its own workspace slice; then the
 * weight gradient partials are summed in slice order and added to jb->dw. */
static void run_job(const OpsCtx *ctx, const Job *jb, const Geom *g, int n, const float *w) {
    const int nt = ctx->nthreads;
    Plan p = plan_make(g, n, nt);
    DDPM_CHECK(ctx->ws_floats >= (size_t)nt * p.per_thread);
    const size_t dw_count = (size_t)g->cout * (size_t)g->cin * (size_t)g->k * (size_t)g->k;
#pragma omp parallel num_threads(nt)
    {
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            float *col = ctx->ws + (size_t)t * p.per_thread;
            float *cbuf = col + p.col;
            float *dwp = cbuf + p.cbuf;
            if (jb->dw) memset(dwp, 0, sizeof(float) * dw_count);
            int n0, n1;
            slice_of(n, nt, t, &n0, &n1);
            run_slice(jb, g, &p, w, n0, n1, col, cbuf, dwp);
        }
        if (jb->dw) reduce_partials(jb->dw, ctx->ws + p.col + p.cbuf, p.per_thread, dw_count, nt);
    }
}

/* db (c) += sum over the batch and pixels of dy (n, c, pix); summed in double per channel. */
static void bias_grad(const OpsCtx *ctx, float *db, const float *dy, int n, int c, size_t pix) {
#pragma omp parallel for num_threads(ctx->nthreads) schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * (size_t)c + (size_t)ch) * pix;
            double si = 0.0;
#pragma omp simd reduction(+ : si)
            for (size_t q = 0; q < pix; q++) si += d[q];
            s += si;
        }
        db[ch] += (float)s;
    }
}

/* ---- one output channel: direct ------------------------------------------------------------
 * The UNet's last layer (D -> 1 channel, 3x3, stride 1, padding 1) is a GEMM with a single row,
 * which OpenBLAS runs at a tenth of its rate. Directly, each of the Ci x 9 taps is one
 * multiply-add pass over the image. To make those passes long and branch-free, planes are
 * copied into buffers with rows of w + 2 floats: the input zero-padded ((h + 2) rows), the
 * output (and the output gradient) with two junk (zero) columns per row, so tap (ky, kx) is
 * out[q] += w in[q + ky (w + 2) + kx] over the flat index q of all h (w + 2) positions.
 * Threads split the batch into fixed slices; the weight gradient is summed per slice in
 * double and the partials added in slice order, so results are bit-identical for a fixed
 * nthreads. */

/* dst ((h + 2), w + 2) = src (h, w) with a zero border. */
static void pad_plane(float *restrict dst, const float *restrict src, int h, int w) {
    const int W = w + 2;
    memset(dst, 0, sizeof(float) * (size_t)W);
    for (int r = 0; r < h; r++) {
        float *d = dst + (size_t)(r + 1) * (size_t)W;
        d[0] = 0.0f;
        memcpy(d + 1, src + (size_t)r * (size_t)w, sizeof(float) * (size_t)w);
        d[w + 1] = 0.0f;
    }
    memset(dst + (size_t)(h + 1) * (size_t)W, 0, sizeof(float) * (size_t)(W + 2));
}

static void direct1_run(const OpsCtx *ctx, float *y, float *dx, float *dw, const float *x,
                        const float *dy, const float *w, const float *b, const ConvShape *s) {
    const int nt = ctx->nthreads, h = s->h, wd = s->w, ci = s->ci, W = wd + 2;
    const size_t pix = (size_t)h * (size_t)wd, q_n = (size_t)h * (size_t)W;
    const D1Plan p = d1_plan(s);
    DDPM_CHECK(ctx->ws_floats >= (size_t)nt * p.per_thread);
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        float *pin = ctx->ws + (size_t)t * p.per_thread, *pg = pin + p.pad, *row = pg + p.pad;
        double *dwp = (double *)(void *)(row + p.row);
        if (dw) memset(dwp, 0, sizeof(double) * (size_t)ci * 9);
        const int n0 = (int)((int64_t)s->n * t / nt), n1 = (int)((int64_t)s->n * (t + 1) / nt);
        for (int n = n0; n < n1; n++) {
            if (y) { /* forward: row (h, W) accumulates every tap, then drops the junk */
                const float bias = b ? b[0] : 0.0f;
                for (size_t q = 0; q < q_n; q++) row[q] = bias;
                for (int c = 0; c < ci; c++) {
                    pad_plane(pin, x + ((size_t)n * (size_t)ci + (size_t)c) * pix, h, wd);
                    for (int k = 0; k < 9; k++) {
                        const float wv = w[(size_t)c * 9 + (size_t)k];
                        const float *in = pin + (size_t)(k / 3) * (size_t)W + (size_t)(k % 3);
#pragma omp simd
                        for (size_t q = 0; q < q_n; q++) row[q] += wv * in[q];
                    }
                }
                for (int r = 0; r < h; r++)
                    memcpy(y + (size_t)n * pix + (size_t)r * (size_t)wd, row + (size_t)r * (size_t)W,
                           sizeof(float) * (size_t)wd);
                continue;
            }
            /* backward: row = dy with zero junk columns */
            for (int r = 0; r < h; r++) {
                memcpy(row + (size_t)r * (size_t)W, dy + (size_t)n * pix + (size_t)r * (size_t)wd,
                       sizeof(float) * (size_t)wd);
                row[(size_t)r * (size_t)W + (size_t)wd] = row[(size_t)r * (size_t)W + (size_t)wd + 1] = 0.0f;
            }
            for (int c = 0; c < ci; c++) {
                const size_t plane = ((size_t)n * (size_t)ci + (size_t)c) * pix;
                if (dw) { /* dW[c][k] += sum_q dy'[q] xpad[q + offset(k)] */
                    pad_plane(pin, x + plane, h, wd);
                    for (int k = 0; k < 9; k++) {
                        const float *in = pin + (size_t)(k / 3) * (size_t)W + (size_t)(k % 3);
                        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
                        for (size_t q = 0; q < q_n; q++) acc += (double)(row[q] * in[q]);
                        dwp[(size_t)c * 9 + (size_t)k] += acc;
                    }
                }
                if (dx) { /* dxpad[q + offset(k)] += w[c][k] dy'[q], then the interior added */
                    memset(pg, 0, sizeof(float) * p.pad);
                    for (int k = 0; k < 9; k++) {
                        const float wv = w[(size_t)c * 9 + (size_t)k];
                        float *o = pg + (size_t)(k / 3) * (size_t)W + (size_t)(k % 3);
#pragma omp simd
                        for (size_t q = 0; q < q_n; q++) o[q] += wv * row[q];
                    }
                    for (int r = 0; r < h; r++) {
                        float *d = dx + plane + (size_t)r * (size_t)wd;
                        const float *g = pg + (size_t)(r + 1) * (size_t)W + 1;
#pragma omp simd
                        for (int xx = 0; xx < wd; xx++) d[xx] += g[xx];
                    }
                }
            }
        }
    }
    if (dw) /* partials in slice order */
        for (size_t e = 0; e < (size_t)ci * 9; e++) {
            double acc = 0.0;
            for (int t = 0; t < nt; t++)
                acc += ((const double *)(const void *)(ctx->ws + (size_t)t * p.per_thread + 2 * p.pad + p.row))[e];
            dw[e] += (float)acc;
        }
}

/* ---- conv2d ------------------------------------------------------------------------------ */

/* The algorithm conv2d_forward / conv2d_backward run for s. */
static ConvAlgo resolve_algo(ConvAlgo algo, const ConvShape *s) {
    if (algo == CONV_ALGO_AUTO) return conv2d_algo(s);
    if (algo == CONV_ALGO_WINOGRAD || algo == CONV_ALGO_WINOGRAD4)
        DDPM_CHECK(conv_winograd_geometry(s));
    if (algo == CONV_ALGO_DIRECT1) DDPM_CHECK(conv_is_direct1(s));
    return algo;
}

void conv2d_forward_algo(const OpsCtx *ctx, ConvAlgo algo, float *y, const float *x,
                         const float *w, const float *b, const ConvShape *s) {
    check_conv_shape(s);
    ConvAlgo a = resolve_algo(algo, s);
    if (a == CONV_ALGO_WINOGRAD || a == CONV_ALGO_WINOGRAD4) {
        if (a == CONV_ALGO_WINOGRAD)
            conv2d_winograd_forward(ctx, y, x, w, b, s);
        else
            conv2d_winograd4_forward(ctx, y, x, w, b, s);
        return;
    }
    if (a == CONV_ALGO_DIRECT1) {
        direct1_run(ctx, y, NULL, NULL, x, NULL, w, b, s);
        return;
    }
    Geom g = geom_conv(s);
    Job jb = {0};
    jb.fwd_in = x;
    jb.fwd_out = y;
    jb.fwd_bias = b;
    run_job(ctx, &jb, &g, s->n, w);
}

void conv2d_backward_algo(const OpsCtx *ctx, ConvAlgo algo, float *dx, float *dw, float *db,
                          const float *dy, const float *x, const float *w, const ConvShape *s) {
    check_conv_shape(s);
    ConvAlgo a = resolve_algo(algo, s);
    if (a == CONV_ALGO_WINOGRAD) {
        conv2d_winograd_backward(ctx, dx, dw, dy, x, w, s);
    } else if (a == CONV_ALGO_WINOGRAD4) {
        conv2d_winograd4_backward(ctx, dx, dw, dy, x, w, s);
    } else if (a == CONV_ALGO_DIRECT1) {
        if (dw || dx) direct1_run(ctx, NULL, dx, dw, x, dy, w, NULL, s);
    } else if (dw || dx) {
        Geom g = geom_conv(s);
        Job jb = {0};
        if (dw) {
            jb.wg_out = dy;
            jb.wg_in = x;
            jb.dw = dw;
        }
        if (dx) {
            jb.bwd_out = dy;
            jb.acc_in = dx;
        }
        run_job(ctx, &jb, &g, s->n, w);
    }
    if (db) bias_grad(ctx, db, dy, s->n, s->co, (size_t)s->ho * (size_t)s->wo);
}

void cpu_conv2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                        const ConvShape *s) {
    conv2d_forward_algo(ctx, CONV_ALGO_AUTO, y, x, w, b, s);
}

ConvAlgo conv2d_algo(const ConvShape *s) {
    if (conv2d_uses_winograd(s))
        return s->h >= WINOGRAD4_MIN_SIZE && s->w >= WINOGRAD4_MIN_SIZE ? CONV_ALGO_WINOGRAD4
                                                                        : CONV_ALGO_WINOGRAD;
    return conv_is_direct1(s) && !conv_im2col_forced() ? CONV_ALGO_DIRECT1 : CONV_ALGO_IM2COL;
}

void cpu_conv2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, const ConvShape *s) {
    conv2d_backward_algo(ctx, CONV_ALGO_AUTO, dx, dw, db, dy, x, w, s);
}

/* ---- conv_transpose2d -------------------------------------------------------------------- */

/* Threads split the rows (batch) of an (rows, cols) product, or its columns when the batch
 * is the reduction dimension; both splits are fixed by nthreads, hence deterministic. */
static void outer_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                          const float *b, const ConvShape *s) {
    const int nt = ctx->nthreads, cols = s->co * s->k * s->k;
    const size_t kk = (size_t)s->k * (size_t)s->k;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int n0, n1;
        slice_of(s->n, nt, t, &n0, &n1);
        if (n1 <= n0) continue;
        float *yt = y + (size_t)n0 * (size_t)cols;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n1 - n0, cols, s->ci, 1.0f,
                    x + (size_t)n0 * (size_t)s->ci, s->ci, w, cols, 0.0f, yt, cols);
        if (b)
            for (int i = 0; i < n1 - n0; i++)
                for (int c = 0; c < s->co; c++)
                    for (size_t q = 0; q < kk; q++)
                        yt[(size_t)i * (size_t)cols + (size_t)c * kk + q] += b[c];
    }
}

static void outer_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy, const float *x,
                           const float *w, const ConvShape *s) {
    const int nt = ctx->nthreads, cols = s->co * s->k * s->k;
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        if (dx) { /* dx (N, Ci) += dy (N, Co K K) W^T */
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            if (n1 > n0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n1 - n0, s->ci, cols, 1.0f,
                            dy + (size_t)n0 * (size_t)cols, cols, w, cols, 1.0f,
                            dx + (size_t)n0 * (size_t)s->ci, s->ci);
        }
        if (dw) { /* dW (Ci, Co K K) += x^T (Ci, N) dy (N, Co K K), columns split in 16s */
            int blocks = (cols + 15) / 16;
            int c0 = (int)((int64_t)blocks * t / nt) * 16;
            int c1 = (int)((int64_t)blocks * (t + 1) / nt) * 16;
            if (c1 > cols) c1 = cols;
            if (c1 > c0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->ci, c1 - c0, s->n, 1.0f, x,
                            s->ci, dy + c0, cols, 1.0f, dw + c0, cols);
        }
    }
}

static ConvAlgo resolve_convt_algo(ConvAlgo algo, const ConvShape *s) {
    if (algo == CONV_ALGO_AUTO) return conv_transpose2d_uses_winograd(s) ? CONV_ALGO_WINOGRAD : CONV_ALGO_IM2COL;
    DDPM_CHECK(algo == CONV_ALGO_IM2COL || algo == CONV_ALGO_WINOGRAD);
    if (algo == CONV_ALGO_WINOGRAD) DDPM_CHECK(conv_transpose_up_geometry(s));
    return algo;
}

void cpu_conv_transpose2d_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                                  const float *b, const ConvShape *s) {
    conv_transpose2d_forward_algo(ctx, CONV_ALGO_AUTO, y, x, w, b, s);
}

void cpu_conv_transpose2d_backward(const OpsCtx *ctx, float *dx, float *dw, float *db,
                                   const float *dy, const float *x, const float *w,
                                   const ConvShape *s) {
    conv_transpose2d_backward_algo(ctx, CONV_ALGO_AUTO, dx, dw, db, dy, x, w, s);
}

void conv_transpose2d_forward_algo(const OpsCtx *ctx, ConvAlgo algo, float *y, const float *x,
                                   const float *w, const float *b, const ConvShape *s) {
    check_convt_shape(s);
    if (resolve_convt_algo(algo, s) == CONV_ALGO_WINOGRAD) {
        conv_transpose2d_winograd_forward(ctx, y, x, w, b, s);
        return;
    }
    if (convt_is_outer(s)) {
        outer_forward(ctx, y, x, w, b, s);
        return;
    }
    Geom g = geom_convt(s);
    Job jb = {0};
    jb.bwd_out = x;
    jb.bwd_in = y;
    jb.bwd_bias = b;
    run_job(ctx, &jb, &g, s->n, w);
}

void conv_transpose2d_backward_algo(const OpsCtx *ctx, ConvAlgo algo, float *dx, float *dw,
                                    float *db, const float *dy, const float *x, const float *w,
                                    const ConvShape *s) {
    check_convt_shape(s);
    if (resolve_convt_algo(algo, s) == CONV_ALGO_WINOGRAD) {
        conv_transpose2d_winograd_backward(ctx, dx, dw, dy, x, w, s);
    } else if (convt_is_outer(s)) {
        if (dx || dw) outer_backward(ctx, dx, dw, dy, x, w, s);
    } else if (dx || dw) {
        Geom g = geom_convt(s);
        Job jb = {0};
        if (dw) {
            jb.wg_out = x;
            jb.wg_in = dy;
            jb.dw = dw;
        }
        if (dx) {
            jb.fwd_in = dy;
            jb.acc_out = dx;
        }
        run_job(ctx, &jb, &g, s->n, w);
    }
    if (db) bias_grad(ctx, db, dy, s->n, s->co, (size_t)s->ho * (size_t)s->wo);
}
