/* The web build's GEMM (src/web/sgemm.c) against a double-precision loop: the three cases
 * the cpu backend calls (neither, A or B transposed), odd sizes and leading dimensions, beta
 * 0 over NaN (BLAS does not read C then) and 0.5, and no write past a row's N columns.
 * Built by emcc and run in node by tests/web.sh (make test-web); prints the worst error. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* (70, 70): room for the largest operand with its leading dimension */
static float A[70 * 70], B[70 * 70], C[70 * 70], R[70 * 70];

int main(void) {
    srand(1);
    double worst = 0;
    for (int it = 0; it < 300; it++) {
        int M = 1 + rand() % 37, N = 1 + rand() % 41, K = 1 + rand() % 33;
        int ta = rand() % 2, tb = ta ? 0 : rand() % 2;
        float alpha = 0.5f + rand() % 3, beta = (float)(rand() % 3) * 0.5f;
        int lda = (ta ? M : K) + rand() % 3, ldb = (tb ? K : N) + rand() % 3, ldc = N + rand() % 3;
        for (int i = 0; i < 70 * 70; i++) {
            A[i] = rand() / (float)RAND_MAX - 0.5f;
            B[i] = rand() / (float)RAND_MAX - 0.5f;
            C[i] = beta == 0 ? NAN : rand() / (float)RAND_MAX;
            R[i] = C[i];
        }
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int p = 0; p < K; p++)
                    s += (double)(ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
                R[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * R[i * ldc + j]));
            }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                double d = fabs(C[i * ldc + j] - R[i * ldc + j]);
                if (j < N && !(d <= worst)) worst = isnan(d) ? INFINITY : d;
                if (j >= N && isnan(C[i * ldc + j]) != isnan(R[i * ldc + j])) {
                    printf("web sgemm: wrote past column %d\n", N);
                    return 1;
                }
            }
    }
    printf("web sgemm: worst error %g\n", worst);
    return worst < 1e-4 ? 0 : 1;
}
