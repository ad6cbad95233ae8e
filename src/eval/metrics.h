/* Sample-quality metrics on feature vectors (rows of an (N, F) float matrix): Frechet
 * distance between Gaussian fits, k-nearest-neighbour precision and recall (Kynkaanniemi et
 * al. 2019), nearest neighbours, mean pairwise distances, histogram entropy. Pure functions
 * of their inputs; definitions in docs/EVAL.md. Distances are Euclidean. */
#ifndef DDPM_METRICS_H
#define DDPM_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Mean mu (F) and unbiased covariance cov (F, F) (divisor N - 1, as numpy.cov) of the rows
 * of x (N, F), accumulated in double. Needs n >= 2. */
void feature_stats(double *mu, double *cov, const float *x, int n, int f);

/* Frechet distance between N(mu1, s1) and N(mu2, s2) (F-dimensional, s symmetric PSD):
 *   |mu1 - mu2|^2 + tr s1 + tr s2 - 2 tr sqrt(sqrt(s1) s2 sqrt(s1)),
 * with both square roots from LAPACK's symmetric eigendecomposition (dsyevd), negative
 * eigenvalues of round-off clamped to 0. Returns the distance (a result below 0 by less than
 * the round-off bound F sqrt(eps (tr s1 + tr s2)) is returned as 0), or -1 with err_msg() if
 * LAPACK fails. */
double frechet_distance(const double *mu1, const double *s1, const double *mu2,
                        const double *s2, int f);
/* The same between the Gaussian fits of two feature sets a (NA, F) and b (NB, F). */
double frechet_distance_features(const float *a, int na, const float *b, int nb, int f);

/* Radius of each row of x (N, F): the distance to its k-th nearest other row (itself
 * excluded by index, so duplicates give radius 0). Needs n > k. radius (N). */
void knn_radii(double *radius, const float *x, int n, int f, int k, int nthreads);

/* Share of the rows of q (NQ, F) that lie inside the manifold of ref (NR, F) with radii
 * (NR): q_i counts when |q_i - ref_j| <= radius_j for some j. inside (NQ) may be NULL;
 * else receives 0/1 per row. */
double manifold_coverage(const float *q, int nq, const float *ref, const double *radius, int nr,
                         int f, uint8_t *inside, int nthreads);

/* Improved precision and recall with k neighbours: precision = share of fake rows inside the
 * real manifold, recall = share of real rows inside the fake manifold. Needs n > k for both. */
void precision_recall(double *precision, double *recall, const float *real, int nr,
                      const float *fake, int nf, int f, int k, int nthreads);

/* For each row of q (NQ, F) the nearest row of ref (NR, F): index (NQ) and distance (NQ).
 * Squared distances come from |q|^2 + |r|^2 - 2 q.r with a float GEMM (norms in double),
 * so distances below about 1e-3 sqrt(F) are round-off; ties go to the lower index. */
void nearest_neighbours(int *index, float *dist, const float *q, int nq, const float *ref,
                        int nr, int f, int nthreads);

/* Mean Euclidean distance over all unordered pairs of the rows of x (N, F); 0 when n < 2. */
double mean_pairwise_distance(const float *x, int n, int f, int nthreads);

/* Entropy in bits of a histogram of counts (c bins); 0 for an empty histogram. */
double histogram_entropy(const int64_t *counts, int c);

/* The q-quantile (0..1) of v (N) with linear interpolation between order statistics
 * (numpy's default); v is not modified. */
double quantile(const float *v, int n, double q);

#endif
