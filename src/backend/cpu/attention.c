/* Self-attention over the positions of a feature map on the CPU (attention.h): four SGEMMs
 * and a row softmax per image forward, eight SGEMMs per image backward. The batch is cut into
 * nthreads contiguous slices; every thread runs single-threaded SGEMMs on its own images and
 * keeps its own weight-gradient partials in the workspace, summed in thread order at the end,
 * so a fixed thread count gives bit-identical results. */
#include "backend/cpu/cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/simd.h"
#include "core/common.h"

/* Offsets of one image's saved tensors: QKV (3C, L), P (L, L), O (C, L). */
static size_t saved_per_image(int c, int l) {
    return 4 * (size_t)c * (size_t)l + (size_t)l * (size_t)l;
}

/* One thread's slice of the backward workspace. */
typedef struct {
    size_t d_o, d_p, d_qkv; /* (C, L), (L, L), (3C, L) per-image gradients */
    size_t wq, bq, wo, bo;  /* weight-gradient partials (3C, C), (3C), (C, C), (C) */
    size_t per_thread;
} Plan;

static Plan plan_make(int c, int l) {
    Plan p;
    const size_t C = (size_t)c, L = (size_t)l;
    size_t off = 0;
    p.d_o = off; off += round16(C * L);
    p.d_p = off; off += round16(L * L);
    p.d_qkv = off; off += round16(3 * C * L);
    p.wq = off; off += round16(3 * C * C);
    p.bq = off; off += round16(3 * C);
    p.wo = off; off += round16(C * C);
    p.bo = off; off += round16(C);
    p.per_thread = off;
    return p;
}

size_t cpu_attention_workspace_floats(int n, int c, int l, int nthreads) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0 && nthreads > 0);
    return (size_t)nthreads * plan_make(c, l).per_thread;
}

/* ---- forward ----------------------------------------------------------------------------- */

/* Softmax of each of the rows (length l) of p, in place: max subtracted, sum in double. */
static void softmax_rows(float *p, int rows, int l) {
    for (int i = 0; i < rows; i++) {
        float *r = p + (size_t)i * (size_t)l;
        float mx = r[0];
        for (int j = 1; j < l; j++) mx = r[j] > mx ? r[j] : mx;
        double s = 0.0;
        for (int j = 0; j < l; j++) {
            r[j] = expf(r[j] - mx);
            s += r[j];
        }
        float inv = (float)(1.0 / s);
        for (int j = 0; j < l; j++) r[j] *= inv;
    }
}

static void attention_forward_image(float *y, float *sv, const float *x, const float *w_qkv,
                                    const float *b_qkv, const float *w_out, const float *b_out,
                                    int c, int l) {
    const size_t C = (size_t)c, L = (size_t)l;
    float *qkv = sv, *p = sv + 3 * C * L, *o = p + L * L;
    const float *q = qkv, *k = qkv + C * L, *v = qkv + 2 * C * L;
    const float scale = 1.0f / sqrtf((float)c);
    /* [Q; K; V] (3C, L) = W_qkv (3C, C) X (C, L) + b */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 3 * c, l, c, 1.0f, w_qkv, c, x, l,
                0.0f, qkv, l);
    if (b_qkv)
        for (size_t r = 0; r < 3 * C; r++)
            for (size_t j = 0; j < L; j++) qkv[r * L + j] += b_qkv[r];
    /* S (L, L) = Q^T K scale, then the row softmax */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, l, c, scale, q, l, k, l, 0.0f, p, l);
    softmax_rows(p, l, l);
    /* O (C, L) = V (C, L) P^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, l, l, 1.0f, v, l, p, l, 0.0f, o, l);
    /* y = X + b_out + W_out O */
    for (size_t r = 0; r < C; r++) {
        float bb = b_out ? b_out[r] : 0.0f;
        for (size_t j = 0; j < L; j++) y[r * L + j] = x[r * L + j] + bb;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, l, c, 1.0f, w_out, c, o, l, 1.0f, y,
                l);
}

void cpu_attention_forward(const OpsCtx *ctx, float *y, float *saved, const float *x,
                           const float *w_qkv, const float *b_qkv, const float *w_out,
                           const float *b_out, int n, int c, int l) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0 && y != x && saved != NULL);
    const int nt = ctx->nthreads;
    const size_t img = (size_t)c * (size_t)l, per = saved_per_image(c, l);
#pragma omp parallel num_threads(nt)
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
        int n0, n1;
        slice_of(n, nt, t, &n0, &n1);
        for (int i = n0; i < n1; i++)
            attention_forward_image(y + (size_t)i * img, saved + (size_t)i * per,
                                    x + (size_t)i * img, w_qkv, b_qkv, w_out, b_out, c, l);
    }
}

/* ---- backward ---------------------------------------------------------------------------- */

/* Row sums of a (rows, cols) matrix added to acc (rows), each summed in double. */
static void add_row_sums(float *acc, const float *a, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < cols; j++) s += a[r * cols + j];
        acc[r] += (float)s;
    }
}

typedef struct {
    float *dx, *dw_qkv, *db_qkv, *dw_out, *db_out;
    const float *dy, *x, *saved, *w_qkv, *w_out;
    int c, l;
} Job;

/* One image: ws is this thread's workspace slice; the weight-gradient partials in it
 * accumulate over the thread's images. */
static void attention_backward_image(const Job *jb, const Plan *pl, float *ws, const float *dy,
                                     const float *x, const float *sv, float *dx) {
    const int c = jb->c, l = jb->l;
    const size_t C = (size_t)c, L = (size_t)l;
    const float *qkv = sv, *p = sv + 3 * C * L, *o = p + L * L;
    const float *q = qkv, *k = qkv + C * L, *v = qkv + 2 * C * L;
    const float scale = 1.0f / sqrtf((float)c);
    float *d_o = ws + pl->d_o, *d_p = ws + pl->d_p, *d_qkv = ws + pl->d_qkv;
    float *dq = d_qkv, *dk = d_qkv + C * L, *dv = d_qkv + 2 * C * L;

    /* output projection: dW_out += dy O^T, db_out += row sums of dy */
    if (jb->dw_out)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, c, l, 1.0f, dy, l, o, l, 1.0f,
                    ws + pl->wo, c);
    if (jb->db_out) add_row_sums(ws + pl->bo, dy, C, L);
    /* the residual path */
    if (dx)
        for (size_t e = 0; e < C * L; e++) dx[e] += dy[e];
    if (!dx && !jb->dw_qkv && !jb->db_qkv) return;

    /* dO (C, L) = W_out^T dy */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, l, c, 1.0f, jb->w_out, c, dy, l, 0.0f,
                d_o, l);
    /* dV (C, L) = dO P;  dP (L, L) = dO^T V */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, l, l, 1.0f, d_o, l, p, l, 0.0f, dv,
                l);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, l, c, 1.0f, d_o, l, v, l, 0.0f, d_p,
                l);
    /* through the softmax and the scale: dS = scale P (dP - sum_j dP P), in place in d_p */
    for (size_t i = 0; i < L; i++) {
        const float *pr = p + i * L;
        float *dr = d_p + i * L;
        double dot = 0.0;
        for (size_t j = 0; j < L; j++) dot += (double)dr[j] * pr[j];
        float fd = (float)dot;
        for (size_t j = 0; j < L; j++) dr[j] = scale * pr[j] * (dr[j] - fd);
    }
    /* dQ (C, L) = K dS^T;  dK (C, L) = Q dS */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, l, l, 1.0f, k, l, d_p, l, 0.0f, dq, l);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, l, l, 1.0f, q, l, d_p, l, 0.0f, dk,
                l);
    /* input projection: dW_qkv += d[QKV] X^T, db_qkv += row sums, dx += W_qkv^T d[QKV] */
    if (jb->dw_qkv)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 3 * c, c, l, 1.0f, d_qkv, l, x, l,
                    1.0f, ws + pl->wq, c);
    if (jb->db_qkv) add_row_sums(ws + pl->bq, d_qkv, 3 * C, L);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, l, 3 * c, 1.0f, jb->w_qkv, c,
                    d_qkv, l, 1.0f, dx, l);
}

/* dst (count) += the nt partials at part + t stride, summed in thread order; called by every
 * thread of the parallel region after a barrier. */
static void reduce_partials(float *dst, const float *part, size_t stride, size_t count, int nt) {
#pragma omp for schedule(static)
    for (size_t e = 0; e < count; e++) {
        float acc = 0.0f;
        for (int t = 0; t < nt; t++) acc += part[(size_t)t * stride + e];
        dst[e] += acc;
    }
}

void cpu_attention_backward(const OpsCtx *ctx, float *dx, float *dw_qkv, float *db_qkv,
                            float *dw_out, float *db_out, const float *dy, const float *x,
                            const float *saved, const float *w_qkv, const float *w_out, int n,
                            int c, int l) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0);
    if (!dx && !dw_qkv && !db_qkv && !dw_out && !db_out) return;
    const int nt = ctx->nthreads;
    const Plan pl = plan_make(c, l);
    DDPM_CHECK(ctx->ws_floats >= (size_t)nt * pl.per_thread);
    const Job jb = {dx, dw_qkv, db_qkv, dw_out, db_out, dy, x, saved, w_qkv, w_out, c, l};
    const size_t C = (size_t)c, img = C * (size_t)l, per = saved_per_image(c, l);
#pragma omp parallel num_threads(nt)
    {
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            float *ws = ctx->ws + (size_t)t * pl.per_thread;
            /* the partials sit back to back from wq to the end of the slice */
            memset(ws + pl.wq, 0, (pl.per_thread - pl.wq) * sizeof(float));
            int n0, n1;
            slice_of(n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i++)
                attention_backward_image(&jb, &pl, ws, dy + (size_t)i * img, x + (size_t)i * img,
                                         saved + (size_t)i * per, dx ? dx + (size_t)i * img : NULL);
        }
#pragma omp barrier
        const size_t st = pl.per_thread;
        if (dw_qkv) reduce_partials(dw_qkv, ctx->ws + pl.wq, st, 3 * C * C, nt);
        if (db_qkv) reduce_partials(db_qkv, ctx->ws + pl.bq, st, 3 * C, nt);
        if (dw_out) reduce_partials(dw_out, ctx->ws + pl.wo, st, C * C, nt);
        if (db_out) reduce_partials(db_out, ctx->ws + pl.bo, st, C, nt);
    }
}
