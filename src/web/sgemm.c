/* Single-precision GEMM for the web build (shim/cblas.h): the three row-major cases the cpu
 * backend calls, in four-float vectors that clang turns into WebAssembly SIMD with -msimd128
 * and into scalar code without it (the fallback build). Not blocked for caches beyond a
 * 4 x 8 register tile: the operands of a D <= 64 model fit in them. */
#include <cblas.h>

#include <stddef.h>
#include <string.h>

#include "core/common.h"

typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, v4f v) { memcpy(p, &v, sizeof v); }

/* c = alpha acc + beta c, beta 0 without reading c (BLAS's rule: c may hold NaN). */
static inline float blend(float acc, float alpha, float beta, const float *c) {
    return beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
}

/* op(A) B with B (K, N) not transposed; op(A)[i][p] = a[i * ai + p * ap], which covers A
 * as stored (ai = lda, ap = 1) and transposed (ai = 1, ap = lda). Tiles of 4 rows and 8
 * columns in registers, the rest one element at a time. */
static void gemm_bn(int M, int N, int K, float alpha, const float *a, size_t ai, size_t ap,
                    const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    const int M4 = M / 4 * 4, N8 = N / 8 * 8;
    for (int j = 0; j < N8; j += 8)
        for (int i = 0; i < M4; i += 4) {
            v4f acc[4][2] = {{0}};
            for (int p = 0; p < K; p++) {
                const v4f b0 = load4(b + (size_t)p * ldb + j), b1 = load4(b + (size_t)p * ldb + j + 4);
                for (int r = 0; r < 4; r++) {
                    const float s = a[(size_t)(i + r) * ai + (size_t)p * ap];
                    acc[r][0] += s * b0;
                    acc[r][1] += s * b1;
                }
            }
            for (int r = 0; r < 4; r++)
                for (int h = 0; h < 2; h++) {
                    float *cp = c + (size_t)(i + r) * ldc + j + 4 * h;
                    v4f v = alpha * acc[r][h];
                    if (beta != 0.0f) v += beta * load4(cp);
                    store4(cp, v);
                }
        }
    /* the edges: rows past M4 in every column, and columns past N8 in the first M4 rows */
    for (int i = 0; i < M; i++)
        for (int j = i < M4 ? N8 : 0; j < N; j++) {
            float acc = 0.0f;
            for (int p = 0; p < K; p++) acc += a[(size_t)i * ai + (size_t)p * ap] * b[(size_t)p * ldb + j];
            float *cp = c + (size_t)i * ldc + j;
            *cp = blend(acc, alpha, beta, cp);
        }
}

/* The dot product of two rows of K floats. */
static inline float dot(const float *x, const float *y, int K) {
    v4f acc = {0};
    int p = 0;
    for (; p + 4 <= K; p += 4) acc += load4(x + p) * load4(y + p);
    float s = acc[0] + acc[1] + acc[2] + acc[3];
    for (; p < K; p++) s += x[p] * y[p];
    return s;
}

/* A B^T with A (M, K) and B (N, K) as stored: every element a dot product of two rows. */
static void gemm_nt(int M, int N, int K, float alpha, const float *a, size_t lda, const float *b,
                    size_t ldb, float beta, float *c, size_t ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *cp = c + (size_t)i * ldc + j;
            *cp = blend(dot(a + (size_t)i * lda, b + (size_t)j * ldb, K), alpha, beta, cp);
        }
}

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                 int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
    DDPM_CHECK(order == CblasRowMajor && !(ta == CblasTrans && tb == CblasTrans));
    if (tb == CblasTrans)
        gemm_nt(M, N, K, alpha, A, (size_t)lda, B, (size_t)ldb, beta, C, (size_t)ldc);
    else if (ta == CblasTrans)
        gemm_bn(M, N, K, alpha, A, 1, (size_t)lda, B, (size_t)ldb, beta, C, (size_t)ldc);
    else
        gemm_bn(M, N, K, alpha, A, (size_t)lda, 1, B, (size_t)ldb, beta, C, (size_t)ldc);
}
