/* The part of CBLAS the cpu backend calls, for the web build (no OpenBLAS for WebAssembly):
 * row-major single-precision GEMM with either operand transposed (not both), implemented in
 * src/web/sgemm.c, and OpenBLAS's thread setting, which has nothing to set there. */
#ifndef DDPM_WEB_CBLAS_H
#define DDPM_WEB_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

/* C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C; beta 0 does not read C. Row-major
 * only; TransA and TransB not both CblasTrans. */
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                 int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);

static inline void openblas_set_num_threads(int n) { (void)n; }

#endif
