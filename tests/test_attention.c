/* The self-attention operator (ops/attention.h):
 *  - forward against a plain triple-loop reference in double, written out here, on the UNet's
 *    two geometries (C 2D at 7x7, C D at 14x14) and odd small ones, with 1, 2 and 3 threads
 *    (a batch that the threads split unevenly, and more threads than images);
 *  - backward against central finite differences of that double reference, for every element
 *    of the input and of the four parameter tensors;
 *  - gradients accumulate (+=) into non-zero buffers, NULL outputs are skipped, and a fixed
 *    thread count gives bit-identical results from run to run. */
#include "testutil.h"

#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/attention.h"
#include "ops/backend.h"
#include "ops/cpu.h"

/* ---- the reference ------------------------------------------------------------------------ */

typedef struct {
    int n, c, l;
    double *x, *wq, *bq, *wo, *bo; /* (N,C,L), (3C,C), (3C), (C,C), (C) */
} RefArgs;

/* y (N,C,L) = x + W_out softmax(Q^T K / sqrt(C)) applied to V, + b_out, in double, by loops. */
static void ref_forward(const RefArgs *a, double *y) {
    const int n = a->n, c = a->c, l = a->l;
    double *q = xmalloc(sizeof(double) * 3 * (size_t)c * (size_t)l);
    double *p = xmalloc(sizeof(double) * (size_t)l * (size_t)l);
    double *o = xmalloc(sizeof(double) * (size_t)c * (size_t)l);
    for (int img = 0; img < n; img++) {
        const double *x = a->x + (size_t)img * c * l;
        /* the 1x1 projections: one Linear over the channels at every position */
        for (int r = 0; r < 3 * c; r++)
            for (int j = 0; j < l; j++) {
                double s = a->bq[r];
                for (int ch = 0; ch < c; ch++) s += a->wq[r * c + ch] * x[ch * l + j];
                q[r * l + j] = s;
            }
        const double *Q = q, *K = q + c * l, *V = q + 2 * c * l;
        for (int i = 0; i < l; i++) {
            double mx = -INFINITY;
            for (int j = 0; j < l; j++) {
                double s = 0;
                for (int ch = 0; ch < c; ch++) s += Q[ch * l + i] * K[ch * l + j];
                p[i * l + j] = s / sqrt((double)c);
                if (p[i * l + j] > mx) mx = p[i * l + j];
            }
            double z = 0;
            for (int j = 0; j < l; j++) z += exp(p[i * l + j] - mx);
            for (int j = 0; j < l; j++) p[i * l + j] = exp(p[i * l + j] - mx) / z;
        }
        for (int ch = 0; ch < c; ch++)
            for (int i = 0; i < l; i++) {
                double s = 0;
                for (int j = 0; j < l; j++) s += p[i * l + j] * V[ch * l + j];
                o[ch * l + i] = s;
            }
        double *yy = y + (size_t)img * c * l;
        for (int r = 0; r < c; r++)
            for (int i = 0; i < l; i++) {
                double s = x[r * l + i] + a->bo[r];
                for (int ch = 0; ch < c; ch++) s += a->wo[r * c + ch] * o[ch * l + i];
                yy[r * l + i] = s;
            }
    }
    xfree(q);
    xfree(p);
    xfree(o);
}

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct {
    int n, c, l;
    float *x, *wq, *bq, *wo, *bo;
} Case;

static float *rand_buf(Rng *r, size_t n, float lo, float hi) {
    float *p = xmalloc(n * sizeof(float));
    rng_fill_uniform(r, p, n, lo, hi);
    return p;
}

/* Inputs of unit scale and weights as the UNet initialises them (uniform +-1/sqrt(C)), made
 * a few times larger so that the softmax is far from uniform. */
static Case case_make(Rng *r, int n, int c, int l) {
    Case k = {n, c, l, NULL, NULL, NULL, NULL, NULL};
    float b = 3.0f / sqrtf((float)c);
    k.x = rand_buf(r, (size_t)n * c * l, -1.5f, 1.5f);
    k.wq = rand_buf(r, 3 * (size_t)c * c, -b, b);
    k.bq = rand_buf(r, 3 * (size_t)c, -b, b);
    k.wo = rand_buf(r, (size_t)c * c, -b, b);
    k.bo = rand_buf(r, (size_t)c, -b, b);
    return k;
}

static void case_free(Case *k) {
    xfree(k->x);
    xfree(k->wq);
    xfree(k->bq);
    xfree(k->wo);
    xfree(k->bo);
}

static double *to_double(const float *p, size_t n) {
    double *d = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = p[i];
    return d;
}

static RefArgs ref_of(const Case *k) {
    RefArgs a = {k->n, k->c, k->l, NULL, NULL, NULL, NULL, NULL};
    a.x = to_double(k->x, (size_t)k->n * k->c * k->l);
    a.wq = to_double(k->wq, 3 * (size_t)k->c * k->c);
    a.bq = to_double(k->bq, 3 * (size_t)k->c);
    a.wo = to_double(k->wo, (size_t)k->c * k->c);
    a.bo = to_double(k->bo, (size_t)k->c);
    return a;
}

static void ref_free(RefArgs *a) {
    xfree(a->x);
    xfree(a->wq);
    xfree(a->bq);
    xfree(a->wo);
    xfree(a->bo);
}

static OpsCtx ctx_for(const Case *k, int nthreads) {
    size_t ws = attention_workspace_floats(k->n, k->c, k->l, nthreads);
    OpsCtx ctx = {.nthreads = nthreads, .ws = xmalloc((ws ? ws : 1) * sizeof(float)),
                  .ws_floats = ws, .be = backend_find("cpu")};
    return ctx;
}

/* ---- forward against the reference ------------------------------------------------------------ */

static void test_forward_vs_reference(void **state) {
    (void)state;
    const struct { int n, c, l; const char *what; } cases[] = {
        {3, 5, 7, "odd sizes"},
        {1, 1, 1, "one position, one channel"},
        {5, 16, 49, "7x7, C 16 (2D at D 8)"},
        {2, 8, 196, "14x14, C 8"},
        {2, 128, 49, "7x7, C 128 (2D at the SPEC's D 64)"},
    };
    Rng rng;
    rng_seed(&rng, 11);
    int ok = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        Case k = case_make(&rng, cases[ci].n, cases[ci].c, cases[ci].l);
        RefArgs a = ref_of(&k);
        size_t cnt = (size_t)k.n * k.c * k.l;
        double *yd = xmalloc(cnt * sizeof(double));
        ref_forward(&a, yd);
        float *want = xmalloc(cnt * sizeof(float));
        for (size_t i = 0; i < cnt; i++) want[i] = (float)yd[i];
        for (int nt = 1; nt <= 3; nt++) {
            OpsCtx ctx = ctx_for(&k, nt);
            float *y = xcalloc(cnt, sizeof(float));
            float *saved = xcalloc(attention_saved_floats(k.n, k.c, k.l), sizeof(float));
            attention_forward(&ctx, y, saved, k.x, k.wq, k.bq, k.wo, k.bo, k.n, k.c, k.l);
            char label[128];
            snprintf(label, sizeof label, "forward %s, %d thr", cases[ci].what, nt);
            /* float against double: a few roundings of the largest value */
            double scale = max_abs(want, cnt);
            ok &= check_tensor(label, y, want, cnt, 2e-6 * (scale > 1 ? scale : 1) * sqrt((double)k.c), 0);
            xfree(y);
            xfree(saved);
            xfree(ctx.ws);
        }
        xfree(yd);
        xfree(want);
        ref_free(&a);
        case_free(&k);
    }
    assert_true(ok);
}

/* ---- backward against finite differences ------------------------------------------------------ */

/* loss = sum(y * r) of the double reference */
static double ref_loss(const RefArgs *a, const double *r, double *ybuf) {
    ref_forward(a, ybuf);
    double s = 0;
    for (size_t i = 0; i < (size_t)a->n * a->c * a->l; i++) s += ybuf[i] * r[i];
    return s;
}

/* Central differences of the double reference for every element of one tensor (p, count)
 * against the operator's gradient g; returns pass/fail and raises *worst. */
static int fd_check(const char *label, RefArgs *a, double *p, size_t count, const float *g,
                    const double *r, double *ybuf, double *worst) {
    const double h = 1e-4;
    float *fd = xmalloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = ref_loss(a, r, ybuf);
        p[i] = keep - h;
        double lm = ref_loss(a, r, ybuf);
        p[i] = keep;
        fd[i] = (float)((lp - lm) / (2 * h));
    }
    double scale = max_abs(fd, count);
    for (size_t i = 0; i < count; i++) {
        double e = fabs((double)g[i] - fd[i]) / (scale > 1 ? scale : 1);
        if (e > *worst) *worst = e;
    }
    int ok = check_tensor(label, g, fd, count, 1e-4 * (scale > 1 ? scale : 1), 0);
    xfree(fd);
    return ok;
}

static void test_backward_vs_finite_differences(void **state) {
    (void)state;
    const struct { int n, c, l; } cases[] = {{2, 4, 6}, {3, 3, 9}, {1, 6, 4}};
    Rng rng;
    rng_seed(&rng, 12);
    int ok = 1;
    double worst = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        Case k = case_make(&rng, cases[ci].n, cases[ci].c, cases[ci].l);
        const int c = k.c;
        size_t cnt = (size_t)k.n * c * k.l;
        float *r = rand_buf(&rng, cnt, -1, 1);
        OpsCtx ctx = ctx_for(&k, 2);
        float *y = xcalloc(cnt, sizeof(float));
        float *saved = xcalloc(attention_saved_floats(k.n, c, k.l), sizeof(float));
        float *dx = xcalloc(cnt, sizeof(float)), *dwq = xcalloc(3 * (size_t)c * c, sizeof(float));
        float *dbq = xcalloc(3 * (size_t)c, sizeof(float)), *dwo = xcalloc((size_t)c * c, sizeof(float));
        float *dbo = xcalloc((size_t)c, sizeof(float));
        attention_forward(&ctx, y, saved, k.x, k.wq, k.bq, k.wo, k.bo, k.n, c, k.l);
        attention_backward(&ctx, dx, dwq, dbq, dwo, dbo, r, k.x, saved, k.wq, k.wo, k.n, c, k.l);

        RefArgs a = ref_of(&k);
        double *rd = to_double(r, cnt), *ybuf = xmalloc(cnt * sizeof(double));
        printf(" case N %d, C %d, L %d:\n", k.n, c, k.l);
        ok &= fd_check("  dx", &a, a.x, cnt, dx, rd, ybuf, &worst);
        ok &= fd_check("  dW_qkv", &a, a.wq, 3 * (size_t)c * c, dwq, rd, ybuf, &worst);
        ok &= fd_check("  db_qkv", &a, a.bq, 3 * (size_t)c, dbq, rd, ybuf, &worst);
        ok &= fd_check("  dW_proj", &a, a.wo, (size_t)c * c, dwo, rd, ybuf, &worst);
        ok &= fd_check("  db_proj", &a, a.bo, (size_t)c, dbo, rd, ybuf, &worst);
        /* the key bias shifts every score of a query by the same amount: exactly no effect */
        ok &= check_tensor("  db_qkv (key rows) ~ 0", dbq + c, (float[64]){0}, (size_t)c, 1e-5, 0);

        xfree(rd);
        xfree(ybuf);
        ref_free(&a);
        xfree(y);
        xfree(saved);
        xfree(dx);
        xfree(dwq);
        xfree(dbq);
        xfree(dwo);
        xfree(dbo);
        xfree(r);
        xfree(ctx.ws);
        case_free(&k);
    }
    printf("  worst |backward - finite difference| / max(1, max |fd|) over all cases: %.3e\n", worst);
    assert_true(ok);
}

/* ---- accumulation, NULL outputs, thread counts, determinism --------------------------------------- */

typedef struct {
    float *y, *saved, *dx, *dwq, *dbq, *dwo, *dbo;
} Outs;

static Outs run_op(const Case *k, int nthreads, const float *dy, float init) {
    const int c = k->c;
    size_t cnt = (size_t)k->n * c * k->l;
    OpsCtx ctx = ctx_for(k, nthreads);
    Outs o;
    o.y = xcalloc(cnt, sizeof(float));
    o.saved = xcalloc(attention_saved_floats(k->n, c, k->l), sizeof(float));
    size_t sizes[5] = {cnt, 3 * (size_t)c * c, 3 * (size_t)c, (size_t)c * c, (size_t)c};
    float **g[5] = {&o.dx, &o.dwq, &o.dbq, &o.dwo, &o.dbo};
    for (int i = 0; i < 5; i++) {
        *g[i] = xmalloc(sizes[i] * sizeof(float));
        for (size_t e = 0; e < sizes[i]; e++) (*g[i])[e] = init;
    }
    attention_forward(&ctx, o.y, o.saved, k->x, k->wq, k->bq, k->wo, k->bo, k->n, c, k->l);
    attention_backward(&ctx, o.dx, o.dwq, o.dbq, o.dwo, o.dbo, dy, k->x, o.saved, k->wq, k->wo,
                       k->n, c, k->l);
    xfree(ctx.ws);
    return o;
}

static void outs_free(Outs *o) {
    float *p[7] = {o->y, o->saved, o->dx, o->dwq, o->dbq, o->dwo, o->dbo};
    for (int i = 0; i < 7; i++) xfree(p[i]);
}

static void test_accumulate_threads_determinism(void **state) {
    (void)state;
    Rng rng;
    rng_seed(&rng, 13);
    Case k = case_make(&rng, 5, 16, 49);
    const int c = k.c;
    size_t cnt = (size_t)k.n * c * k.l;
    float *dy = rand_buf(&rng, cnt, -1, 1);
    size_t sizes[5] = {cnt, 3 * (size_t)c * c, 3 * (size_t)c, (size_t)c * c, (size_t)c};
    const char *names[5] = {"dx", "dW_qkv", "db_qkv", "dW_proj", "db_proj"};
    int ok = 1;

    Outs base = run_op(&k, 2, dy, 0.0f);
    /* gradients accumulate: starting from 0.5 everywhere adds 0.5 */
    Outs acc = run_op(&k, 2, dy, 0.5f);
    float *gb[5] = {base.dx, base.dwq, base.dbq, base.dwo, base.dbo};
    float *ga[5] = {acc.dx, acc.dwq, acc.dbq, acc.dwo, acc.dbo};
    for (int i = 0; i < 5; i++) {
        float *want = xmalloc(sizes[i] * sizeof(float));
        for (size_t e = 0; e < sizes[i]; e++) want[e] = gb[i][e] + 0.5f;
        char label[64];
        snprintf(label, sizeof label, "accumulates: %s", names[i]);
        ok &= check_tensor(label, ga[i], want, sizes[i], 1e-5 * (1 + max_abs(want, sizes[i])), 0);
        xfree(want);
    }
    outs_free(&acc);

    /* the same thread count twice: bit for bit; 1 and 3 threads: the same up to rounding */
    Outs again = run_op(&k, 2, dy, 0.0f);
    float *gg[5] = {again.dx, again.dwq, again.dbq, again.dwo, again.dbo};
    int same = memcmp(again.y, base.y, cnt * sizeof(float)) == 0;
    for (int i = 0; i < 5; i++) same &= memcmp(gg[i], gb[i], sizes[i] * sizeof(float)) == 0;
    printf("  2 threads twice: %s\n", same ? "bit-identical" : "DIFFERENT");
    ok &= same;
    outs_free(&again);
    for (int nt = 1; nt <= 3; nt += 2) {
        Outs o = run_op(&k, nt, dy, 0.0f);
        float *go[5] = {o.dx, o.dwq, o.dbq, o.dwo, o.dbo};
        for (int i = 0; i < 5; i++) {
            char label[64];
            snprintf(label, sizeof label, "%d threads vs 2: %s", nt, names[i]);
            ok &= check_tensor(label, go[i], gb[i], sizes[i], 1e-5 * (1 + max_abs(gb[i], sizes[i])), 0);
        }
        outs_free(&o);
    }

    /* NULL outputs are skipped and do not change the others */
    OpsCtx ctx = ctx_for(&k, 2);
    float *dwo = xcalloc(sizes[3], sizeof(float)), *dx = xcalloc(cnt, sizeof(float));
    attention_backward(&ctx, NULL, NULL, NULL, dwo, NULL, dy, k.x, base.saved, k.wq, k.wo, k.n, c, k.l);
    ok &= memcmp(dwo, base.dwo, sizes[3] * sizeof(float)) == 0;
    attention_backward(&ctx, dx, NULL, NULL, NULL, NULL, dy, k.x, base.saved, k.wq, k.wo, k.n, c, k.l);
    ok &= check_tensor("dx alone", dx, base.dx, cnt, 0, 0);
    attention_backward(&ctx, NULL, NULL, NULL, NULL, NULL, dy, k.x, base.saved, k.wq, k.wo, k.n, c, k.l);
    /* no biases: the same as zero biases */
    float *y0 = xcalloc(cnt, sizeof(float)), *y1 = xcalloc(cnt, sizeof(float));
    float *sv = xcalloc(attention_saved_floats(k.n, c, k.l), sizeof(float));
    float *zq = xcalloc(sizes[2], sizeof(float)), *zo = xcalloc(sizes[4], sizeof(float));
    attention_forward(&ctx, y0, sv, k.x, k.wq, NULL, k.wo, NULL, k.n, c, k.l);
    attention_forward(&ctx, y1, sv, k.x, k.wq, zq, k.wo, zo, k.n, c, k.l);
    ok &= check_tensor("NULL biases = zero biases", y0, y1, cnt, 0, 0);
    xfree(y0);
    xfree(y1);
    xfree(sv);
    xfree(zq);
    xfree(zo);
    xfree(dwo);
    xfree(dx);
    xfree(ctx.ws);
    outs_free(&base);
    xfree(dy);
    case_free(&k);
    assert_true(ok);
}

int main(void) {
    ops_cpu_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_vs_reference),
        cmocka_unit_test(test_backward_vs_finite_differences),
        cmocka_unit_test(test_accumulate_threads_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
