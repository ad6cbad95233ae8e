/* Linear layer on the CPU: y = x W^T + b with PyTorch's (Fo, Fi) weight layout. The
 * matrices of the UNet's conditioning MLPs are tiny (N <= 256, F <= 512), so each product
 * is one single-threaded SGEMM call; that also makes the results independent of nthreads. */
#include <cblas.h>

#include "backend/cpu/cpu_ops.h"

void cpu_linear_forward(const OpsCtx *ctx, float *y, const float *x, const float *w, const float *b,
                        int n, int fi, int fo) {
    (void)ctx;
    /* y (N,Fo) = x (N,Fi) w^T (Fi,Fo) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, fo, fi, 1.0f, x, fi, w, fi, 0.0f, y,
                fo);
    if (b)
        for (int r = 0; r < n; r++)
            for (int o = 0; o < fo; o++) y[(size_t)r * (size_t)fo + (size_t)o] += b[o];
}

void cpu_linear_backward(const OpsCtx *ctx, float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, int n, int fi, int fo) {
    (void)ctx;
    if (dx) /* dx (N,Fi) += dy (N,Fo) w (Fo,Fi) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fi, fo, 1.0f, dy, fo, w, fi, 1.0f,
                    dx, fi);
    if (dw) /* dw (Fo,Fi) += dy^T (Fo,N) x (N,Fi) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fo, fi, n, 1.0f, dy, fo, x, fi, 1.0f,
                    dw, fi);
    if (db) /* db (Fo) += column sums of dy, in double */
        for (int o = 0; o < fo; o++) {
            double s = 0.0;
            for (int r = 0; r < n; r++) s += dy[(size_t)r * (size_t)fo + (size_t)o];
            db[o] += (float)s;
        }
}
