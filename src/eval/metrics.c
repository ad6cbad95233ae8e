/* The metrics of metrics.h. Distance matrices are built block by block with one BLAS product
 * per block (|a|^2 + |b|^2 - 2 a.b), OpenMP across blocks of query rows; each row is handled
 * by one thread in a fixed order, so results do not depend on the thread count. The matrix
 * square roots of the Frechet distance come from LAPACK (dsyevd) in double. */
#include "eval/metrics.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define ROW_BLOCK 256  /* query rows per block */
#define COL_BLOCK 2048 /* reference rows per block in nearest_neighbours */

/* ---- helpers ------------------------------------------------------------------------------- */

/* x (N, F) float -> double copy, and squared row norms (N). */
static double *to_double(const float *x, int n, int f, double **norms) {
    double *d = xmalloc((size_t)n * (size_t)f * sizeof(double));
    double *nr = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < f; j++) {
            double v = x[(size_t)i * (size_t)f + (size_t)j];
            d[(size_t)i * (size_t)f + (size_t)j] = v;
            s += v * v;
        }
        nr[i] = s;
    }
    *norms = nr;
    return d;
}

/* out (NA, NB) = squared distances between rows of a (NA, F) and b (NB, F), norms given,
 * clamped at 0 (the expansion can round a zero distance slightly negative). */
static void sq_dist_block(double *out, const double *a, const double *an, int na,
                          const double *b, const double *bn, int nb, int f) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, f, -2.0, a, f, b, f, 0.0, out,
                nb);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            double v = out[(size_t)i * (size_t)nb + (size_t)j] + an[i] + bn[j];
            out[(size_t)i * (size_t)nb + (size_t)j] = v > 0.0 ? v : 0.0;
        }
}

static int n_blocks(int n, int b) { return (n + b - 1) / b; }

/* ---- Gaussian statistics and the Frechet distance ----------------------------------------- */

void feature_stats(double *mu, double *cov, const float *x, int n, int f) {
    DDPM_CHECK(n >= 2 && f >= 1);
    for (int j = 0; j < f; j++) mu[j] = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < f; j++) mu[j] += x[(size_t)i * (size_t)f + (size_t)j];
    for (int j = 0; j < f; j++) mu[j] /= n;
    double *c = xmalloc((size_t)n * (size_t)f * sizeof(double)); /* (N, F) centred */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < f; j++)
            c[(size_t)i * (size_t)f + (size_t)j] = x[(size_t)i * (size_t)f + (size_t)j] - mu[j];
    /* cov (F, F) = c^T c / (N - 1), upper triangle, mirrored so it is exactly symmetric */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, f, n, 1.0 / (n - 1), c, f, 0.0, cov, f);
    for (int i = 0; i < f; i++)
        for (int j = 0; j < i; j++) cov[(size_t)i * (size_t)f + (size_t)j] = cov[(size_t)j * (size_t)f + (size_t)i];
    xfree(c);
}

/* sqrt of a symmetric PSD matrix s (F, F) into out (F, F): s = V diag(w) V^T,
 * out = U U^T with U = V diag(max(w, 0)^(1/4)), which is exactly symmetric. */
static int sym_sqrt(double *out, const double *s, int f) {
    double *v = xmalloc((size_t)f * (size_t)f * sizeof(double));
    double *w = xmalloc((size_t)f * sizeof(double));
    memcpy(v, s, (size_t)f * (size_t)f * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', f, v, f, w);
    if (info != 0) {
        xfree(v);
        xfree(w);
        return err_set("the eigendecomposition of a covariance matrix failed (LAPACK dsyevd info %d)", (int)info);
    }
    /* row-major v: column j is eigenvector j; scale column j by w_j^(1/4) */
    for (int j = 0; j < f; j++) {
        double q = w[j] > 0.0 ? sqrt(sqrt(w[j])) : 0.0;
        for (int i = 0; i < f; i++) v[(size_t)i * (size_t)f + (size_t)j] *= q;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, f, f, 1.0, v, f, 0.0, out, f);
    for (int i = 0; i < f; i++)
        for (int j = 0; j < i; j++) out[(size_t)i * (size_t)f + (size_t)j] = out[(size_t)j * (size_t)f + (size_t)i];
    xfree(v);
    xfree(w);
    return 0;
}

double frechet_distance(const double *mu1, const double *s1, const double *mu2,
                        const double *s2, int f) {
    DDPM_CHECK(f >= 1);
    const size_t ff = (size_t)f * (size_t)f;
    double d2 = 0.0, tr1 = 0.0, tr2 = 0.0;
    for (int j = 0; j < f; j++) {
        double d = mu1[j] - mu2[j];
        d2 += d * d;
        tr1 += s1[(size_t)j * (size_t)f + (size_t)j];
        tr2 += s2[(size_t)j * (size_t)f + (size_t)j];
    }
    double *r = xmalloc(ff * sizeof(double)); /* sqrt(s1) */
    double *t = xmalloc(ff * sizeof(double));
    double *m = xmalloc(ff * sizeof(double));
    double *w = xmalloc((size_t)f * sizeof(double));
    double result = -1.0;
    if (sym_sqrt(r, s1, f) != 0) goto done;
    /* m = sqrt(s1) s2 sqrt(s1), symmetrised against round-off */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, f, f, 1.0, r, f, s2, f, 0.0, t, f);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, f, f, 1.0, t, f, r, f, 0.0, m, f);
    for (int i = 0; i < f; i++)
        for (int j = 0; j < i; j++) {
            double a = 0.5 * (m[(size_t)i * (size_t)f + (size_t)j] + m[(size_t)j * (size_t)f + (size_t)i]);
            m[(size_t)i * (size_t)f + (size_t)j] = m[(size_t)j * (size_t)f + (size_t)i] = a;
        }
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', f, m, f, w);
    if (info != 0) {
        err_set("the eigendecomposition in the Frechet distance failed (LAPACK dsyevd info %d)", (int)info);
        goto done;
    }
    double tr_sqrt = 0.0;
    for (int j = 0; j < f; j++) tr_sqrt += w[j] > 0.0 ? sqrt(w[j]) : 0.0;
    result = d2 + tr1 + tr2 - 2.0 * tr_sqrt;
    /* Identical fits cancel to round-off, which may come out just below 0. An eigenvalue near
     * 0 that LAPACK returns with an error of eps (tr s1 + tr s2) moves its square root by up to
     * the square root of that error, so F of those bound the round-off of the result. */
    double tol = f * sqrt(DBL_EPSILON * (tr1 + tr2)) + 1e-12;
    if (result < 0.0 && result > -tol) result = 0.0;
done:
    xfree(r);
    xfree(t);
    xfree(m);
    xfree(w);
    return result;
}

double frechet_distance_features(const float *a, int na, const float *b, int nb, int f) {
    double *mu1 = xmalloc((size_t)f * sizeof(double)), *mu2 = xmalloc((size_t)f * sizeof(double));
    double *s1 = xmalloc((size_t)f * (size_t)f * sizeof(double));
    double *s2 = xmalloc((size_t)f * (size_t)f * sizeof(double));
    feature_stats(mu1, s1, a, na, f);
    feature_stats(mu2, s2, b, nb, f);
    double d = frechet_distance(mu1, s1, mu2, s2, f);
    xfree(mu1);
    xfree(mu2);
    xfree(s1);
    xfree(s2);
    return d;
}

/* ---- k-nearest-neighbour manifolds ---------------------------------------------------------- */

void knn_radii(double *radius, const float *x, int n, int f, int k, int nthreads) {
    DDPM_CHECK(k >= 1 && k <= 64 && n > k);
    double *xn;
    double *xd = to_double(x, n, f, &xn);
    const int nb = n_blocks(n, ROW_BLOCK);
#pragma omp parallel num_threads(nthreads)
    {
        double *d = xmalloc((size_t)ROW_BLOCK * (size_t)n * sizeof(double)); /* (B, N) */
#pragma omp for schedule(dynamic)
        for (int b = 0; b < nb; b++) {
            int i0 = b * ROW_BLOCK, m = n - i0 < ROW_BLOCK ? n - i0 : ROW_BLOCK;
            sq_dist_block(d, xd + (size_t)i0 * (size_t)f, xn + i0, m, xd, xn, n, f);
            for (int r = 0; r < m; r++) {
                /* the k smallest squared distances to other rows, kept sorted ascending */
                double best[64];
                int have = 0;
                const double *row = d + (size_t)r * (size_t)n;
                for (int j = 0; j < n; j++) {
                    if (j == i0 + r) continue;
                    double v = row[j];
                    if (have == k && v >= best[k - 1]) continue;
                    int p = have < k ? have++ : k - 1;
                    while (p > 0 && best[p - 1] > v) {
                        best[p] = best[p - 1];
                        p--;
                    }
                    best[p] = v;
                }
                radius[i0 + r] = sqrt(best[k - 1]);
            }
        }
        xfree(d);
    }
    xfree(xd);
    xfree(xn);
}

double manifold_coverage(const float *q, int nq, const float *ref, const double *radius, int nr,
                         int f, uint8_t *inside, int nthreads) {
    if (nq <= 0) return 0.0;
    double *qn, *rn;
    double *qd = to_double(q, nq, f, &qn);
    double *rd = to_double(ref, nr, f, &rn);
    uint8_t *in = inside ? inside : xmalloc((size_t)nq);
    const int nb = n_blocks(nq, ROW_BLOCK);
#pragma omp parallel num_threads(nthreads)
    {
        double *d = xmalloc((size_t)ROW_BLOCK * (size_t)nr * sizeof(double)); /* (B, NR) */
#pragma omp for schedule(dynamic)
        for (int b = 0; b < nb; b++) {
            int i0 = b * ROW_BLOCK, m = nq - i0 < ROW_BLOCK ? nq - i0 : ROW_BLOCK;
            sq_dist_block(d, qd + (size_t)i0 * (size_t)f, qn + i0, m, rd, rn, nr, f);
            for (int r = 0; r < m; r++) {
                const double *row = d + (size_t)r * (size_t)nr;
                uint8_t hit = 0;
                for (int j = 0; j < nr && !hit; j++) hit = row[j] <= radius[j] * radius[j];
                in[i0 + r] = hit;
            }
        }
        xfree(d);
    }
    int64_t count = 0;
    for (int i = 0; i < nq; i++) count += in[i];
    if (!inside) xfree(in);
    xfree(qd);
    xfree(qn);
    xfree(rd);
    xfree(rn);
    return (double)count / nq;
}

void precision_recall(double *precision, double *recall, const float *real, int nr,
                      const float *fake, int nf, int f, int k, int nthreads) {
    double *rr = xmalloc((size_t)nr * sizeof(double));
    double *rf = xmalloc((size_t)nf * sizeof(double));
    knn_radii(rr, real, nr, f, k, nthreads);
    knn_radii(rf, fake, nf, f, k, nthreads);
    *precision = manifold_coverage(fake, nf, real, rr, nr, f, NULL, nthreads);
    *recall = manifold_coverage(real, nr, fake, rf, nf, f, NULL, nthreads);
    xfree(rr);
    xfree(rf);
}

/* ---- nearest neighbours (float, for pixel space) ------------------------------------------ */

static float *row_norms_f(const float *x, int n, int f) {
    float *r = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < f; j++) {
            double v = x[(size_t)i * (size_t)f + (size_t)j];
            s += v * v;
        }
        r[i] = (float)s;
    }
    return r;
}

void nearest_neighbours(int *index, float *dist, const float *q, int nq, const float *ref,
                        int nr, int f, int nthreads) {
    DDPM_CHECK(nr >= 1);
    float *qn = row_norms_f(q, nq, f), *rn = row_norms_f(ref, nr, f);
    const int nb = n_blocks(nq, ROW_BLOCK);
#pragma omp parallel num_threads(nthreads)
    {
        float *d = xmalloc((size_t)ROW_BLOCK * COL_BLOCK * sizeof(float)); /* (B, CB) dots */
#pragma omp for schedule(dynamic)
        for (int b = 0; b < nb; b++) {
            int i0 = b * ROW_BLOCK, m = nq - i0 < ROW_BLOCK ? nq - i0 : ROW_BLOCK;
            float best[ROW_BLOCK];
            int arg[ROW_BLOCK];
            for (int r = 0; r < m; r++) {
                best[r] = INFINITY;
                arg[r] = 0;
            }
            for (int j0 = 0; j0 < nr; j0 += COL_BLOCK) {
                int c = nr - j0 < COL_BLOCK ? nr - j0 : COL_BLOCK;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, c, f, -2.0f,
                            q + (size_t)i0 * (size_t)f, f, ref + (size_t)j0 * (size_t)f, f, 0.0f,
                            d, c);
                for (int r = 0; r < m; r++)
                    for (int j = 0; j < c; j++) {
                        float v = d[(size_t)r * (size_t)c + (size_t)j] + qn[i0 + r] + rn[j0 + j];
                        if (v < best[r]) {
                            best[r] = v;
                            arg[r] = j0 + j;
                        }
                    }
            }
            for (int r = 0; r < m; r++) {
                index[i0 + r] = arg[r];
                dist[i0 + r] = best[r] > 0.0f ? sqrtf(best[r]) : 0.0f;
            }
        }
        xfree(d);
    }
    xfree(qn);
    xfree(rn);
}

/* ---- diversity, entropy, quantiles ----------------------------------------------------------- */

double mean_pairwise_distance(const float *x, int n, int f, int nthreads) {
    if (n < 2) return 0.0;
    double *xn;
    double *xd = to_double(x, n, f, &xn);
    const int nb = n_blocks(n, ROW_BLOCK);
    double *part = xcalloc((size_t)nb, sizeof(double)); /* per block, summed in order */
#pragma omp parallel num_threads(nthreads)
    {
        double *d = xmalloc((size_t)ROW_BLOCK * (size_t)n * sizeof(double));
#pragma omp for schedule(dynamic)
        for (int b = 0; b < nb; b++) {
            int i0 = b * ROW_BLOCK, m = n - i0 < ROW_BLOCK ? n - i0 : ROW_BLOCK;
            sq_dist_block(d, xd + (size_t)i0 * (size_t)f, xn + i0, m, xd, xn, n, f);
            double s = 0.0;
            for (int r = 0; r < m; r++)
                for (int j = i0 + r + 1; j < n; j++) s += sqrt(d[(size_t)r * (size_t)n + (size_t)j]);
            part[b] = s;
        }
        xfree(d);
    }
    double total = 0.0;
    for (int b = 0; b < nb; b++) total += part[b];
    xfree(part);
    xfree(xd);
    xfree(xn);
    return total / (0.5 * (double)n * (double)(n - 1));
}

double histogram_entropy(const int64_t *counts, int c) {
    int64_t total = 0;
    for (int i = 0; i < c; i++) total += counts[i];
    if (total <= 0) return 0.0;
    double h = 0.0;
    for (int i = 0; i < c; i++)
        if (counts[i] > 0) {
            double p = (double)counts[i] / (double)total;
            h -= p * log2(p);
        }
    return h;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double quantile(const float *v, int n, double q) {
    DDPM_CHECK(n >= 1 && q >= 0.0 && q <= 1.0);
    float *s = xmalloc((size_t)n * sizeof(float));
    memcpy(s, v, (size_t)n * sizeof(float));
    qsort(s, (size_t)n, sizeof(float), cmp_float);
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    double r = s[lo] + (pos - lo) * ((double)s[hi] - s[lo]);
    xfree(s);
    return r;
}
