/* Tests of the evaluation: the classifier operators (hand-computed values, finite differences,
 * accumulation, thread invariance), the judge (gradients against finite differences, loss
 * going down on a tiny subset, same-seed determinism, the checksummed cache), every metric on
 * cases with known answers (identical sets, analytic Frechet distances, constructed precision/
 * recall sets), the Frechet distance against tools/fid_reference.py's scipy numbers, and the
 * ddpm eval command ($DDPM_BIN): bad inputs give one error line and a non-zero exit, and a
 * small end-to-end run writes its JSON. */
#define _GNU_SOURCE
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "eval/judge.h"
#include "eval/metrics.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "model/classifier.h"
#include "ops/backend.h"
#include "ops/cpu.h"
#include "ops/ops.h"
#include "optim/adam.h"

static char tmpdir[256];

static float *rand_buf(Rng *r, size_t n, float lo, float hi) {
    float *p = xmalloc(n * sizeof(float));
    rng_fill_uniform(r, p, n, lo, hi);
    return p;
}

static OpsCtx ctx_make(int nthreads) {
    OpsCtx c = {.nthreads = nthreads, .be = backend_find("cpu")};
    return c;
}

/* ---- operators ------------------------------------------------------------------------------ */

static void test_relu_maxpool_values(void **state) {
    (void)state;
    OpsCtx c = ctx_make(2);
    float x[6] = {-1.0f, 0.0f, 2.5f, -0.0f, 3.0f, -7.0f}, y[6];
    relu_forward(&c, y, x, 6);
    float want[6] = {0, 0, 2.5f, 0, 3.0f, 0};
    assert_true(check_tensor("relu forward", y, want, 6, 0, 0));
    float dy[6] = {1, 2, 3, 4, 5, 6}, dx[6] = {10, 10, 10, 10, 10, 10};
    relu_backward(&c, dx, dy, x, 6);
    float wantd[6] = {10, 10, 13, 10, 15, 10}; /* accumulates; 0 passes nothing */
    assert_true(check_tensor("relu backward (accumulating)", dx, wantd, 6, 0, 0));

    /* one 4x4 plane: windows with a tie (first wins), a negative block, a NaN */
    float p[16] = {1, 3, 0, 0,
                   3, 2, 0, -1,
                   -5, -4, 7, 1,
                   -3, -2, NAN, 2};
    float q[4];
    maxpool2x2_forward(&c, q, p, 1, 4, 4);
    assert_true(q[0] == 3.0f && q[1] == 0.0f && q[2] == -2.0f && isnan(q[3]));
    float g[4] = {1, 2, 3, 4}, dp[16] = {0};
    maxpool2x2_backward(&c, dp, g, p, 1, 4, 4);
    float wantp[16] = {0, 1, 2, 0,
                       0, 0, 0, 0,
                       0, 0, 0, 0,
                       0, 3, 4, 0};
    assert_true(check_tensor("maxpool backward (ties to the first)", dp, wantp, 16, 0, 0));
}

static void test_softmax_xent_values(void **state) {
    (void)state;
    OpsCtx c = ctx_make(1);
    /* row 0: logits 0,0 -> p = 1/2, loss log 2; row 1: large logits must not overflow */
    float z[4] = {0.0f, 0.0f, 1000.0f, 0.0f}, p[4];
    int lab[2] = {1, 0};
    float loss = softmax_xent_forward(&c, p, z, lab, 2, 2);
    double want = (log(2.0) + 0.0) / 2.0;
    printf("  loss %.9g want %.9g\n", (double)loss, want);
    assert_true(fabs(loss - want) < 1e-7);
    assert_true(fabsf(p[0] - 0.5f) < 1e-7f && p[2] == 1.0f && p[3] == 0.0f);
    float d[4] = {0};
    softmax_xent_backward(&c, d, p, lab, 2, 2);
    float wd[4] = {0.25f, -0.25f, 0.0f, 0.0f};
    assert_true(check_tensor("softmax xent backward", d, wd, 4, 1e-7, 0));
}

/* Central differences of L = sum(wgt * op(x)) against the analytic input gradient. */
static double weighted_sum(const float *y, const float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * w[i];
    return s;
}

static void test_ops_finite_differences(void **state) {
    (void)state;
    OpsCtx c = ctx_make(1);
    Rng r;
    rng_seed(&r, 7);
    const float eps = 1e-3f;
    /* ReLU, away from the kink */
    {
        const int n = 64;
        float *x = rand_buf(&r, n, -1, 1), *w = rand_buf(&r, n, -1, 1);
        for (int i = 0; i < n; i++)
            if (fabsf(x[i]) < 0.01f) x[i] = 0.5f;
        float *y = xmalloc(n * sizeof(float)), *dx = xcalloc(n, sizeof(float));
        float *num = xmalloc(n * sizeof(float));
        relu_backward(&c, dx, w, x, n);
        for (int i = 0; i < n; i++) {
            float keep = x[i];
            x[i] = keep + eps;
            relu_forward(&c, y, x, n);
            double lp = weighted_sum(y, w, n);
            x[i] = keep - eps;
            relu_forward(&c, y, x, n);
            double lm = weighted_sum(y, w, n);
            x[i] = keep;
            num[i] = (float)((lp - lm) / (2 * eps));
        }
        assert_true(check_tensor("relu: backward vs finite differences", dx, num, n, 1e-3, 1e-3));
        xfree(x), xfree(w), xfree(y), xfree(dx), xfree(num);
    }
    /* max pooling: distinct values so no window is near a tie */
    {
        const int nc = 3, h = 6, wd = 4, n = nc * h * wd, m = n / 4;
        float *x = xmalloc(n * sizeof(float)), *w = rand_buf(&r, m, -1, 1);
        uint32_t perm[72];
        rng_permutation(&r, perm, n);
        for (int i = 0; i < n; i++) x[i] = 0.1f * (float)perm[i];
        float *y = xmalloc(m * sizeof(float)), *dx = xcalloc(n, sizeof(float));
        float *num = xmalloc(n * sizeof(float));
        maxpool2x2_backward(&c, dx, w, x, nc, h, wd);
        for (int i = 0; i < n; i++) {
            float keep = x[i];
            x[i] = keep + eps;
            maxpool2x2_forward(&c, y, x, nc, h, wd);
            double lp = weighted_sum(y, w, m);
            x[i] = keep - eps;
            maxpool2x2_forward(&c, y, x, nc, h, wd);
            double lm = weighted_sum(y, w, m);
            x[i] = keep;
            num[i] = (float)((lp - lm) / (2 * eps));
        }
        assert_true(check_tensor("maxpool: backward vs finite differences", dx, num, n, 2e-3, 2e-3));
        xfree(x), xfree(w), xfree(y), xfree(dx), xfree(num);
    }
    /* softmax cross-entropy */
    {
        const int n = 5, k = 10;
        float *z = rand_buf(&r, n * k, -3, 3), p[50], d[50] = {0}, num[50];
        int lab[5] = {0, 3, 9, 3, 7};
        softmax_xent_forward(&c, p, z, lab, n, k);
        softmax_xent_backward(&c, d, p, lab, n, k);
        for (int i = 0; i < n * k; i++) {
            float keep = z[i];
            z[i] = keep + eps;
            double lp = softmax_xent_forward(&c, p, z, lab, n, k);
            z[i] = keep - eps;
            double lm = softmax_xent_forward(&c, p, z, lab, n, k);
            z[i] = keep;
            num[i] = (float)((lp - lm) / (2 * eps));
        }
        assert_true(check_tensor("softmax xent: backward vs finite differences", d, num, n * k, 2e-4, 1e-2));
        xfree(z);
    }
}

static void test_ops_thread_invariance(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 3);
    const int nc = 37, h = 28, w = 28, n = nc * h * w;
    float *x = rand_buf(&r, n, -1, 1), *g = rand_buf(&r, n / 4, -1, 1);
    float *y1 = xmalloc(n / 4 * sizeof(float)), *y3 = xmalloc(n / 4 * sizeof(float));
    float *d1 = xcalloc(n, sizeof(float)), *d3 = xcalloc(n, sizeof(float));
    OpsCtx c1 = ctx_make(1), c3 = ctx_make(3);
    maxpool2x2_forward(&c1, y1, x, nc, h, w);
    maxpool2x2_forward(&c3, y3, x, nc, h, w);
    maxpool2x2_backward(&c1, d1, g, x, nc, h, w);
    maxpool2x2_backward(&c3, d3, g, x, nc, h, w);
    assert_memory_equal(y1, y3, n / 4 * sizeof(float));
    assert_memory_equal(d1, d3, n * sizeof(float));
    xfree(x), xfree(g), xfree(y1), xfree(y3), xfree(d1), xfree(d3);
}

/* ---- the judge network ---------------------------------------------------------------------- */

/* The piecewise-linear state of the last forward: every ReLU's on/off and every max-pooling
 * window's argmax. Finite differences are only meaningful when it is the same at +eps and -eps. */
static size_t pattern(const Classifier *m, int n, uint8_t *out) {
    size_t k = 0;
    const float *pre[4] = {m->a1, m->a2, m->a3, m->h};
    const size_t cnt[4] = {(size_t)n * 32 * 784, (size_t)n * 32 * 784, (size_t)n * 64 * 196,
                           (size_t)n * CLS_FEATURES};
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; i < cnt[l]; i++) out[k++] = pre[l][i] > 0.0f;
    const float *pooled[2] = {m->r2, m->r3};
    const int planes[2] = {n * 32, n * 64}, hw[2] = {28, 14};
    for (int l = 0; l < 2; l++)
        for (int p = 0; p < planes[l]; p++)
            for (int y = 0; y < hw[l]; y += 2)
                for (int x = 0; x < hw[l]; x += 2) {
                    const float *w = pooled[l] + ((size_t)p * hw[l] + y) * hw[l] + x;
                    float v[4] = {w[0], w[1], w[hw[l]], w[hw[l] + 1]};
                    int best = 0;
                    for (int q = 1; q < 4; q++)
                        if (v[q] > v[best]) best = q;
                    out[k++] = (uint8_t)best;
                }
    return k;
}

/* The mean cross-entropy of the last forward's logits, in double (the float loss of
 * classifier_loss would put its rounding into the finite differences). */
static double loss_double(const Classifier *m, const int *lab, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = m->logits + (size_t)i * CLS_CLASSES;
        double mx = z[0], s = 0;
        for (int j = 1; j < CLS_CLASSES; j++) mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < CLS_CLASSES; j++) s += exp(z[j] - mx);
        total += mx + log(s) - z[lab[i]];
    }
    return total / n;
}

/* Full-network gradient check: entries of every parameter tensor against central differences
 * of the loss on 3 random images (entries whose perturbation crosses a ReLU kink or changes a
 * pooling argmax are skipped: there the loss has no derivative). */
static void test_classifier_gradients(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 11);
    Classifier m;
    classifier_init(&m, 3, 1, &r);
    float *x = rand_buf(&r, 3 * 784, 0, 1);
    int lab[3] = {2, 7, 0};
    classifier_forward(&m, x, 3);
    classifier_loss(&m, lab);
    classifier_zero_grad(&m);
    classifier_backward(&m, lab);
    const size_t plen = 3 * (2 * 32 * 784 + 64 * 196 + CLS_FEATURES + 32 * 196 + 64 * 49);
    uint8_t *pp = xmalloc(plen), *pm = xmalloc(plen);
    const float eps = 1e-3f;
    int bad = 0, skipped = 0;
    enum { PER = 6 };
    for (int t = 0; t < CLS_NUM_TENSORS; t++) {
        const ClsTensor *ct = &m.tensors[t];
        float got[PER], num[PER];
        for (int j = 0; j < PER;) {
            size_t i = ct->offset + (size_t)rng_below(&r, (uint32_t)ct->count);
            if (m.grads[i] == 0.0f && skipped < 1000) { /* prefer entries that matter */
                skipped++;
                continue;
            }
            float keep = m.params[i];
            m.params[i] = keep + eps;
            classifier_forward(&m, x, 3);
            double lp = loss_double(&m, lab, 3);
            assert_int_equal(pattern(&m, 3, pp), plen);
            m.params[i] = keep - eps;
            classifier_forward(&m, x, 3);
            double lm = loss_double(&m, lab, 3);
            pattern(&m, 3, pm);
            m.params[i] = keep;
            if (memcmp(pp, pm, plen) != 0) {
                skipped++;
                continue;
            }
            num[j] = (float)((lp - lm) / (2 * eps));
            got[j] = m.grads[i];
            j++;
        }
        char label[64];
        snprintf(label, sizeof label, "judge d%s vs finite differences", ct->name);
        bad += !check_tensor(label, got, num, PER, 1e-5, 1e-2);
    }
    printf("  (%d entries skipped: zero gradient or a kink within eps)\n", skipped);
    assert_int_equal(bad, 0);
    xfree(pp);
    xfree(pm);
    xfree(x);
    classifier_free(&m);
}

/* A view of the first n images of a split. */
static MnistSplit head(const MnistSplit *s, int n) {
    MnistSplit v = {n, s->images, s->labels};
    return v;
}

static void test_judge_training_tiny(void **state) {
    (void)state;
    MnistSplit train = {0}, test = {0};
    assert_int_equal(mnist_load(test_data_dir(), 1, &train), 0);
    assert_int_equal(mnist_load(test_data_dir(), 0, &test), 0);
    MnistSplit small_test = head(&test, 300);

    /* loss goes down: 40 steps of batch 32 on 1280 images, Adam lr 1e-3 */
    Rng r;
    rng_seed(&r, 5);
    Classifier m;
    classifier_init(&m, 32, 1, &r);
    float *pm = xcalloc(m.n_params, sizeof(float)), *pv = xcalloc(m.n_params, sizeof(float));
    Adam opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 0};
    float first = 0, last = 0;
    int lab[32];
    for (int s = 0; s < 40; s++) {
        int idx[32];
        for (int i = 0; i < 32; i++) idx[i] = (s * 32 + i) % 1280;
        float *x = mnist_to_float(&train, idx, 32);
        for (int i = 0; i < 32; i++) lab[i] = train.labels[idx[i]];
        classifier_forward(&m, x, 32);
        float loss = classifier_loss(&m, lab);
        if (s < 5) first += loss / 5;
        if (s >= 35) last += loss / 5;
        classifier_zero_grad(&m);
        classifier_backward(&m, lab);
        adam_step(&m.ctx, &opt, m.params, m.grads, pm, pv, m.n_params);
        xfree(x);
    }
    printf("  mean loss of steps 1-5 %.4f, of steps 36-40 %.4f\n", (double)first, (double)last);
    assert_true(first > 1.8f);
    assert_true(last < 0.6f * first);
    xfree(pm);
    xfree(pv);
    classifier_free(&m);

    /* same seed and threads -> the same weights, bit for bit; another seed differs */
    JudgeConfig c;
    judge_config_defaults(&c);
    c.epochs = 1;
    c.subset = 256;
    c.batch = 32;
    c.threads = 1;
    Classifier a, b, d;
    double acc_a, acc_b, acc_d;
    judge_train(&a, &c, &train, &small_test, &acc_a, NULL);
    judge_train(&b, &c, &train, &small_test, &acc_b, NULL);
    c.seed = 2;
    judge_train(&d, &c, &train, &small_test, &acc_d, NULL);
    c.seed = 1;
    assert_memory_equal(a.params, b.params, a.n_params * sizeof(float));
    assert_true(acc_a == acc_b);
    assert_memory_not_equal(a.params, d.params, a.n_params * sizeof(float));
    printf("  256-image judge: test accuracy %.1f%% (on 300 test images)\n", 100 * acc_a);
    assert_true(acc_a >= 0.0 && acc_a <= 1.0); /* 8 steps: the weights, not the skill, matter here */

    /* the cache: round trip, checksum verified, damage refused */
    char path[400], sum[420], cmd[1000];
    snprintf(path, sizeof path, "%s/judge.safetensors", tmpdir);
    snprintf(sum, sizeof sum, "%s.sha256", path);
    assert_int_equal(judge_save(&a, path, &c, acc_a, small_test.n), 0);
    Classifier l;
    double acc_l;
    assert_int_equal(judge_load(&l, path, 100, 1, &acc_l), 0);
    assert_memory_equal(a.params, l.params, a.n_params * sizeof(float));
    assert_true(fabs(acc_l - acc_a) < 1e-6);
    float *x = mnist_to_float(&test, NULL, 100);
    float *fa = xmalloc(100 * CLS_FEATURES * sizeof(float)), *fl = xmalloc(100 * CLS_FEATURES * sizeof(float));
    int pa[100], pl[100];
    judge_apply(&a, x, 100, fa, pa);
    judge_apply(&l, x, 100, fl, pl);
    assert_memory_equal(fa, fl, 100 * CLS_FEATURES * sizeof(float));
    assert_memory_equal(pa, pl, sizeof pa);
    classifier_free(&l);
    /* the sha256 file is what sha256sum -c expects */
    snprintf(cmd, sizeof cmd, "cd %s && sha256sum -c --quiet judge.safetensors.sha256", tmpdir);
    assert_int_equal(system(cmd), 0);
    /* flip one byte of the weights */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -10, SEEK_END), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, -10, SEEK_END), 0);
    assert_int_not_equal(fputc(ch ^ 0x40, f), EOF);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(judge_load(&l, path, 100, 1, NULL), -1);
    printf("  damaged: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "checksum mismatch"));
    unlink(sum);
    assert_int_equal(judge_load(&l, path, 100, 1, NULL), -1);
    printf("  no checksum: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "no checksum file"));
    xfree(x), xfree(fa), xfree(fl);
    classifier_free(&a);
    classifier_free(&b);
    classifier_free(&d);
    mnist_free(&train);
    mnist_free(&test);
}

/* ---- metrics with known answers ------------------------------------------------------------- */

static void test_feature_stats(void **state) {
    (void)state;
    /* rows (1,2), (3,6), (5,4): mean (3,4); deviations (-2,-2), (0,2), (2,0);
     * cov = [[8,4],[4,8]] / 2 */
    float x[6] = {1, 2, 3, 6, 5, 4};
    double mu[2], cov[4];
    feature_stats(mu, cov, x, 3, 2);
    assert_true(mu[0] == 3.0 && mu[1] == 4.0);
    assert_true(cov[0] == 4.0 && cov[1] == 2.0 && cov[2] == 2.0 && cov[3] == 4.0);
}

static void test_frechet_analytic(void **state) {
    (void)state;
    /* identical Gaussians: 0 */
    double mu1[3] = {1, 2, 3}, mu2[3] = {1, 2, 3};
    double s1[9] = {2, 0.5, 0, 0.5, 1, 0.2, 0, 0.2, 3}, s2[9];
    memcpy(s2, s1, sizeof s1);
    double fd = frechet_distance(mu1, s1, mu2, s2, 3);
    printf("  identical: %.3e\n", fd);
    assert_true(fabs(fd) < 1e-12);
    /* shifted means, same covariance: |dmu|^2 */
    mu2[0] = 4;
    mu2[2] = -1;
    fd = frechet_distance(mu1, s1, mu2, s2, 3);
    printf("  shifted: %.15g want 25\n", fd);
    assert_true(fabs(fd - 25.0) < 1e-10);
    /* diagonal covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2 */
    double d1[9] = {4, 0, 0, 0, 1, 0, 0, 0, 9}, d2[9] = {1, 0, 0, 0, 1, 0, 0, 0, 16};
    fd = frechet_distance(mu1, d1, mu2, d2, 3);
    printf("  diagonal: %.15g want 27\n", fd);
    assert_true(fabs(fd - (25.0 + 1.0 + 0.0 + 1.0)) < 1e-10);
    /* non-commuting 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for a PSD 2x2 M, with
     * tr M = tr(s1 s2) and det M = det s1 det s2 */
    double a[4] = {2, 1, 1, 2}, b[4] = {3, 0, 0, 1}, m0[2] = {0, 0}, m1[2] = {1, 1};
    double trm = 2 * 3 + 2 * 1, detm = 3.0 * 3.0;
    double want = 2.0 + (4 + 4) - 2 * sqrt(trm + 2 * sqrt(detm));
    fd = frechet_distance(m0, a, m1, b, 2);
    printf("  non-commuting 2x2: %.15g want %.15g\n", fd, want);
    assert_true(fabs(fd - want) < 1e-12);
    /* singular covariances (rank 1, equal): still |dmu|^2, no NaN */
    double r1[4] = {1, 1, 1, 1};
    fd = frechet_distance(m0, r1, m1, r1, 2);
    printf("  rank-1: %.3e want 2\n", fd);
    assert_true(fabs(fd - 2.0) < 1e-7);
}

/* Samples of N(0, I) against N(mu, diag(s^2)): the estimate approaches
 * |mu|^2 + sum (1 - s)^2, and two independent draws of one Gaussian come near 0. */
static void test_frechet_sampled_gaussians(void **state) {
    (void)state;
    const int n = 20000, f = 4;
    Rng r;
    rng_seed(&r, 99);
    float *a = xmalloc((size_t)n * f * sizeof(float)), *b = xmalloc((size_t)n * f * sizeof(float));
    float *c = xmalloc((size_t)n * f * sizeof(float));
    const float mu[4] = {1, 0, -2, 0.5f}, s[4] = {1, 2, 0.5f, 1};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < f; j++) {
            a[i * f + j] = rng_normal(&r);
            b[i * f + j] = mu[j] + s[j] * rng_normal(&r);
            c[i * f + j] = rng_normal(&r);
        }
    double want = 0;
    for (int j = 0; j < f; j++) want += mu[j] * mu[j] + (1 - s[j]) * (1 - s[j]);
    double fd = frechet_distance_features(a, n, b, n, f);
    printf("  shifted Gaussians: %.4f want %.4f\n", fd, want);
    assert_true(fabs(fd - want) < 0.05);
    double fd0 = frechet_distance_features(a, n, c, n, f);
    printf("  same Gaussian: %.5f\n", fd0);
    assert_true(fd0 >= -1e-9 && fd0 < 0.005);
    double fds = frechet_distance_features(a, n, a, n, f);
    printf("  identical sets: %.3e\n", fds);
    assert_true(fabs(fds) < 1e-9);
    xfree(a), xfree(b), xfree(c);
}

/* The Frechet distances of tools/fid_reference.py (numpy.cov + scipy.linalg.sqrtm). */
static void test_frechet_reference(void **state) {
    (void)state;
    StFile f;
    assert_int_equal(safetensors_open("tests/data/fid_ref.safetensors", &f), 0);
    for (int k = 1; k <= 3; k++) {
        char na[16], nb[16], key[16];
        snprintf(na, sizeof na, "a%d", k);
        snprintf(nb, sizeof nb, "b%d", k);
        snprintf(key, sizeof key, "fd%d", k);
        const StEntry *ea = safetensors_find(&f, na), *eb = safetensors_find(&f, nb);
        assert_non_null(ea);
        assert_non_null(eb);
        const char *v = safetensors_meta(&f, key);
        assert_non_null(v);
        double want = strtod(v, NULL);
        int n1 = (int)ea->shape[0], n2 = (int)eb->shape[0], d = (int)ea->shape[1];
        float *a = xmalloc((size_t)n1 * d * sizeof(float)), *b = xmalloc((size_t)n2 * d * sizeof(float));
        assert_int_equal(safetensors_read_f32(&f, na, a, 2, ea->shape), 0);
        assert_int_equal(safetensors_read_f32(&f, nb, b, 2, eb->shape), 0);
        double got = frechet_distance_features(a, n1, b, n2, d);
        double rel = fabs(got - want) / fabs(want);
        printf("  case %d (%dx%d vs %dx%d): %.15g scipy %.15g rel diff %.2e\n", k, n1, d, n2, d,
               got, want, rel);
        assert_true(rel < 1e-7);
        xfree(a), xfree(b);
    }
    safetensors_close(&f);
}

static void test_knn_precision_recall(void **state) {
    (void)state;
    /* real: 20 points on the x axis at 0..19; k=3 radii: 3 at the ends, 2 inside */
    float real[40], fake[20];
    for (int i = 0; i < 20; i++) {
        real[2 * i] = (float)i;
        real[2 * i + 1] = 0;
    }
    double rad[20];
    knn_radii(rad, real, 20, 2, 3, 2);
    assert_true(rad[0] == 3.0 && rad[19] == 3.0 && rad[1] == 2.0 && rad[10] == 2.0);
    /* fake: 5 among the reals at x = 0.5, 2.5, .., 8.5 and 5 far away at y = 50, 60, .., 90.
     * precision: the 5 near ones lie within a real radius, the far ones do not -> 0.5.
     * recall: the near fakes' radii (6, 4, 4, 4, 6) cover x in [-5.5, 14.5], i.e. reals
     * 0..14; the far fakes (radii 30, 20, 20, 20, 30) reach no real point -> 15/20. */
    for (int i = 0; i < 5; i++) {
        fake[2 * i] = 0.5f + 2.0f * i;
        fake[2 * i + 1] = 0;
        fake[10 + 2 * i] = 0;
        fake[10 + 2 * i + 1] = 50.0f + 10.0f * i;
    }
    double p, rc;
    precision_recall(&p, &rc, real, 20, fake, 10, 2, 3, 2);
    printf("  constructed: precision %.3f (want 0.5) recall %.3f (want 0.75)\n", p, rc);
    assert_true(p == 0.5 && rc == 0.75);
    /* identical sets: both 1 */
    precision_recall(&p, &rc, real, 20, real, 20, 2, 3, 1);
    assert_true(p == 1.0 && rc == 1.0);
    /* disjoint: both 0 */
    float far[40];
    for (int i = 0; i < 40; i++) far[i] = real[i] + 1000.0f;
    precision_recall(&p, &rc, real, 20, far, 20, 2, 3, 1);
    assert_true(p == 0.0 && rc == 0.0);
    /* duplicates have radius 0 but still cover themselves */
    float dup[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    double rd[4];
    knn_radii(rd, dup, 4, 2, 3, 1);
    assert_true(rd[0] == 0.0 && manifold_coverage(dup, 4, dup, rd, 4, 2, NULL, 1) == 1.0);
}

static void test_neighbours_diversity_entropy(void **state) {
    (void)state;
    Rng r;
    rng_seed(&r, 21);
    const int nr = 3000, nq = 300, f = 784;
    float *ref = rand_buf(&r, (size_t)nr * f, 0, 1), *q = xmalloc((size_t)nq * f * sizeof(float));
    int want[300];
    for (int i = 0; i < nq; i++) {
        want[i] = (int)rng_below(&r, nr);
        for (int j = 0; j < f; j++) q[(size_t)i * f + j] = ref[(size_t)want[i] * f + j] + 0.01f * rng_normal(&r);
    }
    int idx[300];
    float dist[300];
    nearest_neighbours(idx, dist, q, nq, ref, nr, f, 2);
    int right = 0;
    double worst = 0;
    for (int i = 0; i < nq; i++) {
        right += idx[i] == want[i];
        double s = 0;
        for (int j = 0; j < f; j++) {
            double d = (double)q[(size_t)i * f + j] - ref[(size_t)idx[i] * f + j];
            s += d * d;
        }
        if (fabs(sqrt(s) - dist[i]) > worst) worst = fabs(sqrt(s) - dist[i]);
    }
    printf("  nearest neighbours: %d/%d found, worst distance error %.2e\n", right, nq, worst);
    assert_int_equal(right, nq);
    assert_true(worst < 1e-2);
    /* thread count does not matter */
    int idx1[300];
    float dist1[300];
    nearest_neighbours(idx1, dist1, q, nq, ref, nr, f, 1);
    assert_memory_equal(idx, idx1, sizeof idx);
    assert_memory_equal(dist, dist1, sizeof dist);
    xfree(ref), xfree(q);

    /* points 0, 1, 3 on a line: pair distances 1, 3, 2 */
    float line[3] = {0, 1, 3};
    assert_true(fabs(mean_pairwise_distance(line, 3, 1, 1) - 2.0) < 1e-12);
    assert_true(mean_pairwise_distance(line, 1, 1, 1) == 0.0);

    int64_t uni[10] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, one[10] = {0, 0, 7}, two[10] = {3, 3};
    assert_true(fabs(histogram_entropy(uni, 10) - log2(10.0)) < 1e-12);
    assert_true(histogram_entropy(one, 10) == 0.0);
    assert_true(fabs(histogram_entropy(two, 10) - 1.0) < 1e-12);

    float v[5] = {5, 1, 4, 2, 3};
    assert_true(quantile(v, 5, 0.5) == 3.0);
    assert_true(fabs(quantile(v, 5, 0.1) - 1.4) < 1e-12);
    assert_true(quantile(v, 5, 1.0) == 5.0);
}

/* ---- the command ----------------------------------------------------------------------------- */

static const char *bin(void) {
    const char *b = getenv("DDPM_BIN");
    return b && *b ? b : "./ddpm";
}

/* Run a shell command line, capture stdout+stderr into *output (caller frees), return the
 * exit status. */
static int run(char **output, const char *cmd) {
    char line[4600], outpath[300];
    snprintf(outpath, sizeof outpath, "%s/out.txt", tmpdir);
    snprintf(line, sizeof line, "%s >%s 2>&1 </dev/null", cmd, outpath);
    int st = system(line);
    FILE *f = fopen(outpath, "rb");
    size_t cap = 1 << 20, len = 0;
    char *buf = calloc(cap + 1, 1);
    if (f) {
        len = fread(buf, 1, cap, f);
        fclose(f);
    }
    buf[len] = '\0';
    *output = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* `ddpm eval ARGS` must exit non-zero with exactly one line of output containing needle. */
static void expect_error(const char *needle, const char *args) {
    char cmd[3000], *out;
    snprintf(cmd, sizeof cmd, "%s eval %s", bin(), args);
    int st = run(&out, cmd);
    printf("  $ ddpm eval %s\n    -> exit %d: %s", args, st, out);
    assert_int_not_equal(st, 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, needle));
    free(out);
}

static void write_idx(const char *name, const uint8_t *data, int ndim, const uint32_t *dims) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    assert_int_equal(idx_write_u8(p, data, ndim, dims), 0);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *txt = calloc(1 << 22, 1);
    size_t n = fread(txt, 1, (1 << 22) - 1, f);
    fclose(f);
    txt[n] = 0;
    return txt;
}

static double json_num(cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItem(o, key);
    assert_non_null(v);
    return v->valuedouble;
}

static void test_cli_bad_inputs(void **state) {
    (void)state;
    uint8_t *img = xcalloc(40 * 32 * 32, 1), lab[40];
    for (int i = 0; i < 40; i++) lab[i] = (uint8_t)(i % 10);
    uint32_t d_wrong[3] = {40, 32, 32}, d_ok[3] = {40, 28, 28}, d_few[3] = {5, 28, 28};
    uint32_t d_flat[2] = {40, 784}, l_ok[1] = {40}, l_short[1] = {39}, l_2d[2] = {40, 1};
    write_idx("wrong.idx", img, 3, d_wrong);
    write_idx("flat.idx", img, 2, d_flat);
    write_idx("ok.idx", img, 3, d_ok);
    write_idx("few.idx", img, 3, d_few);
    write_idx("lab.idx", lab, 1, l_ok);
    write_idx("short.idx", lab, 1, l_short);
    write_idx("lab2d.idx", lab, 2, l_2d);
    lab[17] = 12;
    write_idx("nondigit.idx", lab, 1, l_ok);
    char a[2000];
#define T (tmpdir)
    snprintf(a, sizeof a, "--samples %s/wrong.idx", T);
    expect_error("expected images of shape (N, 28, 28), found (40, 32, 32)", a);
    snprintf(a, sizeof a, "--samples %s/flat.idx", T);
    expect_error("found (40, 784)", a);
    snprintf(a, sizeof a, "--samples %s/few.idx", T);
    expect_error("holds 5 images", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --labels %s/short.idx", T, T);
    expect_error("has 39 labels but", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --labels %s/lab2d.idx", T, T);
    expect_error("expected labels of shape (N), found (40, 1)", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --labels %s/nondigit.idx", T, T);
    expect_error("label 12 at index 17 is not a digit 0-9", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --labels %s/ok.idx", T, T);
    expect_error("expected labels of shape (N), found (40, 28, 28)", a);
    snprintf(a, sizeof a, "--samples %s/missing.idx", T);
    expect_error("missing.idx", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --n 41", T);
    expect_error("holds 40 images, fewer than the 41 asked for", a);
    /* a PNG grid: cells of exactly 28 x 28 */
    snprintf(a, sizeof a, "%s/odd.png", T);
    assert_int_equal(png_write_gray(a, img, 56, 29), 0);
    snprintf(a, sizeof a, "--samples %s/odd.png", T);
    expect_error("56x29 pixels is not a grid of 28x28 images", a);
    snprintf(a, sizeof a, "%s/row.png", T);
    assert_int_equal(png_write_gray(a, img, 28 * 9, 28), 0);
    snprintf(a, sizeof a, "--samples %s/row.png", T);
    expect_error("holds 9 images", a);
    snprintf(a, sizeof a, "--samples %s/row.png --n 10", T);
    expect_error("holds 9 images, fewer than the 10 asked for", a);
    snprintf(a, sizeof a, "--labels %s/lab.idx", T);
    expect_error("--labels goes with --samples", a);
    snprintf(a, sizeof a, "--samples %s/ok.idx --ckpt x.safetensors", T);
    expect_error("exactly one of", a);
    expect_error("exactly one of", "");
    expect_error("--guidance: 'x' is not a number", "--ckpt x --guidance 1,x");
    expect_error("--n: 3 is out of range", "--ckpt x --n 3");
    /* a damaged judge is refused, not used */
    char j[400], cmd[1200];
    snprintf(j, sizeof j, "%s/badjudge.safetensors", T);
    snprintf(cmd, sizeof cmd, "echo 'not weights' > %s && echo '%064d  badjudge.safetensors' > %s.sha256", j, 0, j);
    assert_int_equal(system(cmd), 0);
    snprintf(a, sizeof a, "--samples %s/ok.idx --judge %s --data %s", T, j, test_data_dir());
    expect_error("checksum mismatch", a);
#undef T
    xfree(img);
}

/* A small run end to end: a judge trained on 1000 images (saved, then reused with its
 * checksum), 200 test digits as the "samples" with their labels, reduced references. */
static void test_cli_end_to_end(void **state) {
    (void)state;
    MnistSplit test = {0};
    assert_int_equal(mnist_load(test_data_dir(), 0, &test), 0);
    uint8_t lab[200];
    for (int i = 0; i < 200; i++) lab[i] = test.labels[1000 + i];
    uint32_t d[3] = {200, 28, 28}, l[1] = {200};
    write_idx("real.idx", test.images + (size_t)1000 * 784, 3, d);
    write_idx("real-labels.idx", lab, 1, l);
    mnist_free(&test);
    char cmd[3000], *out;
    const char *common = "--judge-subset 1000 --judge-epochs 1 --n-test 1000 --n-train 2000 --threads 2";
    for (int pass = 0; pass < 2; pass++) { /* trains the judge, then loads it */
        snprintf(cmd, sizeof cmd, "%s eval --samples %s/real.idx --labels %s/real-labels.idx --judge %s/j.safetensors "
                 "--data %s %s --json %s/e.json", bin(), tmpdir, tmpdir, tmpdir, test_data_dir(), common, tmpdir);
        int st = run(&out, cmd);
        printf("%s", out);
        assert_int_equal(st, 0);
        assert_non_null(strstr(out, pass ? "judge: " : "training it"));
        assert_non_null(strstr(out, "FID (judge features, vs test set)"));
        assert_non_null(strstr(out, "accuracy (judged = requested digit)"));
        free(out);
    }
    char p[400];
    snprintf(p, sizeof p, "%s/e.json", tmpdir);
    char *txt = slurp(p);
    assert_non_null(txt);
    cJSON *doc = cJSON_Parse(txt);
    assert_non_null(doc);
    cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0);
    cJSON *fl = cJSON_GetObjectItem(doc, "real_floor");
    assert_non_null(res);
    assert_non_null(fl);
    double fid = cJSON_GetObjectItem(res, "fid")->valuedouble;
    double prec = cJSON_GetObjectItem(res, "precision")->valuedouble;
    double rec = cJSON_GetObjectItem(res, "recall")->valuedouble;
    double acc = cJSON_GetObjectItem(res, "accuracy")->valuedouble;
    double facc = cJSON_GetObjectItem(fl, "accuracy")->valuedouble;
    double ffid = cJSON_GetObjectItem(fl, "fid")->valuedouble;
    printf("  real test digits as samples: FID %.3f (floor %.3f), precision %.3f recall %.3f accuracy %.3f\n",
           fid, ffid, prec, rec, acc);
    /* real digits score like the real-data floor */
    assert_true(fid >= 0 && fid < 3 * ffid + 1.0);
    assert_true(prec > 0.5 && prec <= 1 && rec > 0.5 && rec <= 1);
    assert_true(acc >= 0 && acc <= 1 && fabs(acc - facc) < 0.25); /* a weak judge reads both alike */
    cJSON *mem = cJSON_GetObjectItem(res, "memorisation");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(mem, "nearest_train_index")), 200);
    double share = cJSON_GetObjectItem(mem, "share_closer_than_median_test")->valuedouble;
    assert_true(share > 0.2 && share < 0.8); /* held-out digits are not memorised */
    cJSON_Delete(doc);
    free(txt);
}

/* --ckpt: a tiny class model sampled at two guidance scales (one column each, samples saved),
 * the saved samples evaluated again through --samples (same numbers), and a tiny denoiser's
 * test MSE and PSNR per sigma. Uses the judge of test_cli_end_to_end. */
static void test_cli_checkpoints(void **state) {
    (void)state;
    char cmd[3000], *out, p[400];
    const char *tiny = "--width 4 --batch 16 --subset 32 --epochs 1 --T 10 --threads 2 --no-progress";
    const char *refs = "--n-test 1000 --n-train 2000 --threads 2";
    snprintf(cmd, sizeof cmd, "%s train --model class %s --data %s --out %s/class --figure-epochs 99", bin(), tiny,
             test_data_dir(), tmpdir);
    int st = run(&out, cmd);
    free(out);
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof cmd, "%s eval --ckpt %s/class/model.safetensors --n 20 --guidance 0,2 --judge %s/j.safetensors "
             "--data %s %s --save-idx %s/c.idx --json %s/c.json", bin(), tmpdir, tmpdir, test_data_dir(), refs, tmpdir, tmpdir);
    st = run(&out, cmd);
    printf("%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "g=0"));
    assert_non_null(strstr(out, "g=2"));
    free(out);
    snprintf(p, sizeof p, "%s/c.json", tmpdir);
    char *txt = slurp(p);
    assert_non_null(txt);
    cJSON *doc = cJSON_Parse(txt);
    assert_non_null(doc);
    cJSON *res = cJSON_GetObjectItem(doc, "results");
    assert_int_equal(cJSON_GetArraySize(res), 2);
    cJSON *g2 = cJSON_GetArrayItem(res, 1);
    assert_true(json_num(g2, "guidance") == 2.0);
    /* each drawn column says how long its sampling took */
    assert_true(json_num(cJSON_GetArrayItem(res, 0), "sampling_seconds") > 0);
    assert_true(json_num(g2, "sampling_seconds") > 0);
    /* the sampler: its word, K, NFE = K and spacing (DDPM: null, it visits every step) */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "sampler")), "ddpm");
    assert_true(json_num(doc, "steps") == 10 && json_num(doc, "nfe") == 10 && cJSON_IsNull(cJSON_GetObjectItem(doc, "spacing")));
    double fid_ckpt = json_num(g2, "fid"), acc_ckpt = json_num(g2, "accuracy");
    cJSON_Delete(doc);
    free(txt);
    /* the saved samples of g=2 through --samples: the same images, the same numbers */
    snprintf(cmd, sizeof cmd, "%s eval --samples %s/c-g2.idx --labels %s/c-g2-labels.idx --judge %s/j.safetensors "
             "--data %s %s --json %s/s.json", bin(), tmpdir, tmpdir, tmpdir, test_data_dir(), refs, tmpdir);
    st = run(&out, cmd);
    free(out);
    assert_int_equal(st, 0);
    snprintf(p, sizeof p, "%s/s.json", tmpdir);
    txt = slurp(p);
    doc = cJSON_Parse(txt);
    assert_non_null(doc);
    cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0);
    assert_null(cJSON_GetObjectItem(s0, "sampling_seconds")); /* --samples draws nothing */
    printf("  g=2: FID %.6f from --ckpt, %.6f from its saved IDX\n", fid_ckpt, json_num(s0, "fid"));
    assert_true(fid_ckpt == json_num(s0, "fid") && acc_ckpt == json_num(s0, "accuracy"));
    cJSON_Delete(doc);
    free(txt);

    /* DPM-Solver++(2M) in 5 steps: its word, K, NFE = K, log-SNR spacing and the seconds */
    snprintf(cmd, sizeof cmd, "%s eval --ckpt %s/class/model.safetensors --n 20 --guidance 2 --sampler dpmpp2m --steps 5 "
             "--judge %s/j.safetensors --data %s %s --json %s/p.json", bin(), tmpdir, tmpdir, test_data_dir(), refs, tmpdir);
    assert_int_equal(run(&out, cmd), 0);
    free(out);
    snprintf(p, sizeof p, "%s/p.json", tmpdir);
    doc = cJSON_Parse(txt = slurp(p));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "sampler")), "dpmpp2m");
    assert_true(json_num(doc, "steps") == 5 && json_num(doc, "nfe") == 5 && strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "spacing")), "logsnr") == 0);
    assert_true(json_num(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0), "sampling_seconds") > 0);
    cJSON_Delete(doc);
    free(txt);
    /* a denoiser: MSE and PSNR per sigma, no judge needed */
    snprintf(cmd, sizeof cmd, "%s train --model denoiser --width 4 --batch 32 --subset 64 --epochs 1 --eval-n 32 "
             "--sigma-table-n 0 --threads 2 --no-progress --figure-epochs 99 --data %s --out %s/den", bin(), test_data_dir(), tmpdir);
    st = run(&out, cmd);
    free(out);
    assert_int_equal(st, 0);
    snprintf(cmd, sizeof cmd, "%s eval --ckpt %s/den/model.safetensors --sigmas 0.2,0.5 --n-test 64 --data %s "
             "--judge %s/none.safetensors --json %s/d.json", bin(), tmpdir, test_data_dir(), tmpdir, tmpdir);
    st = run(&out, cmd);
    printf("%s", out);
    assert_int_equal(st, 0);
    free(out);
    snprintf(p, sizeof p, "%s/d.json", tmpdir);
    txt = slurp(p);
    doc = cJSON_Parse(txt);
    assert_non_null(doc);
    cJSON *rows = cJSON_GetObjectItem(doc, "denoiser");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    cJSON *r1 = cJSON_GetArrayItem(rows, 1);
    double mse = json_num(r1, "mse"), psnr = json_num(r1, "psnr_db");
    assert_true(json_num(r1, "sigma") == 0.5f && mse > 0 && fabs(psnr - 10 * log10(1 / mse)) < 1e-9);
    cJSON_Delete(doc);
    free(txt);
    snprintf(p, sizeof p, "%s/none.safetensors", tmpdir);
    assert_int_not_equal(access(p, F_OK), 0); /* the denoiser path never trains a judge */
}

/* ---- main ------------------------------------------------------------------------------------ */

static int setup(void **state) {
    (void)state;
    ops_cpu_init();
    return test_mkdtemp(tmpdir, sizeof tmpdir, "eval");
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu_maxpool_values),
        cmocka_unit_test(test_softmax_xent_values),
        cmocka_unit_test(test_ops_finite_differences),
        cmocka_unit_test(test_ops_thread_invariance),
        cmocka_unit_test(test_classifier_gradients),
        cmocka_unit_test(test_judge_training_tiny),
        cmocka_unit_test(test_feature_stats),
        cmocka_unit_test(test_frechet_analytic),
        cmocka_unit_test(test_frechet_sampled_gaussians),
        cmocka_unit_test(test_frechet_reference),
        cmocka_unit_test(test_knn_precision_recall),
        cmocka_unit_test(test_neighbours_diversity_entropy),
        cmocka_unit_test(test_cli_bad_inputs),
        cmocka_unit_test(test_cli_end_to_end),
        cmocka_unit_test(test_cli_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
