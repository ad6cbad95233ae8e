/* Tests of synchronised BatchNorm (OpsCtx.sum_across, ops.h) without MPI: P "processes" are
 * P threads, each running the training-mode operators on its part of the batch with a
 * sum_across that is an allreduce among the threads (a barrier and a sum in a fixed part order,
 * so every part gets the same bits). Their results must be those of one call on the whole
 * batch with sum_across NULL, for both backends and both operators (plain and bn_gelu), with
 * parts of unequal size; and an identity sum_across (one process) must give the NULL path's
 * results bit for bit. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/cpu.h"
#include "ops/ops.h"

/* Tolerances of parts against the whole batch, |got - want| <= tol max(1, max |want|) + tol
 * |want|: the global sums are the same double sums grouped by part, so only the float
 * rounding of the statistics and of the folded coefficients (a = gamma rstd, b = beta - mean
 * a; dx's A, B, K) can differ, by an ulp. STAT_TOL: mean, rstd, running statistics; Y_TOL: y;
 * GRAD_TOL: dx, and dgamma, dbeta summed over the parts in float. */
#define STAT_TOL 1e-6
#define Y_TOL 1e-6
#define GRAD_TOL 1e-5
#define MAXP 3

static Rng rng;

static float *rand_buf(size_t n, float lo, float hi) {
    float *p = xmalloc((n ? n : 1) * sizeof(float));
    rng_fill_uniform(&rng, p, n, lo, hi);
    return p;
}

static float *copy_buf(const float *src, size_t n) {
    float *p = xmalloc((n ? n : 1) * sizeof(float));
    memcpy(p, src, n * sizeof(float));
    return p;
}

static int close_to(const char *label, const float *got, const float *want, size_t n, double tol) {
    char line[160];
    snprintf(line, sizeof line, "%s (tol %.0e)", label, tol);
    double scale = max_abs(want, n);
    return check_tensor(line, got, want, n, tol * (scale > 1 ? scale : 1), tol);
}

/* ---- the simulated processes ------------------------------------------------------------ */

/* The threads of one run: what each hands to the current sum_across call. */
typedef struct {
    pthread_barrier_t bar;
    int parts;
    double *slot[MAXP];
    int len[MAXP];
} Group;

/* One part of the batch: images [first, first + n) of the whole, its own statistics and
 * parameter gradients, slices of the shared y and dx, and the lengths of its calls. */
typedef struct {
    Group *g;
    int part, gelu, first, n, c, hw;
    OpsCtx ctx;
    const float *x, *dy, *gamma, *beta;
    float *y, *dx, *mean, *rstd, *rm, *rv, *dg, *db;
    int calls, lens[8], mismatch;
} Member;

/* The allreduce: every member posts v, waits for the others, sums the parts in part order into
 * its own copy, waits until everyone has read, then writes the sums back into v. */
static void group_sum(void *arg, double *v, int n) {
    Member *m = arg;
    Group *g = m->g;
    if (m->calls < 8) m->lens[m->calls] = n;
    m->calls++;
    g->slot[m->part] = v;
    g->len[m->part] = n;
    pthread_barrier_wait(&g->bar);
    double s[n];
    for (int i = 0; i < n; i++) s[i] = 0.0;
    for (int p = 0; p < g->parts; p++) {
        if (g->len[p] != n) {
            m->mismatch = 1;
            continue;
        }
        for (int i = 0; i < n; i++) s[i] += g->slot[p][i];
    }
    pthread_barrier_wait(&g->bar);
    memcpy(v, s, (size_t)n * sizeof(double));
}

/* One process's training step of the layer: forward on its part, then backward from its dy. */
static void *member_run(void *arg) {
    Member *m = arg;
    const size_t off = (size_t)m->first * m->c * m->hw;
    const OpsCtx *ctx = &m->ctx;
    if (m->gelu) {
        bn_gelu_forward_train(ctx, m->y + off, m->mean, m->rstd, m->rm, m->rv, m->x + off,
                              m->gamma, m->beta, m->n, m->c, m->hw, 0.1f, 1e-5f);
        bn_gelu_backward_train(ctx, m->dx + off, m->dg, m->db, m->dy + off, m->x + off, m->mean,
                               m->rstd, m->gamma, m->beta, m->n, m->c, m->hw);
    } else {
        batchnorm2d_forward_train(ctx, m->y + off, m->mean, m->rstd, m->rm, m->rv, m->x + off,
                                  m->gamma, m->beta, m->n, m->c, m->hw, 0.1f, 1e-5f);
        batchnorm2d_backward_train(ctx, m->dx + off, m->dg, m->db, m->dy + off, m->x + off,
                                   m->mean, m->rstd, m->gamma, m->n, m->c, m->hw);
    }
    return NULL;
}

/* ---- parts against the whole batch ------------------------------------------------------ */

/* The inputs of one layer and the outputs of one call on the whole batch (sum_across NULL). */
typedef struct {
    int n, c, hw;
    float *x, *g, *be, *dy, *rm0, *rv0, *dx0, *dg0, *db0;
    float *y, *mean, *rstd, *rm, *rv, *dx, *dg, *db;
} Whole;

static void whole_run(Whole *w, const char *device, int gelu, int n, int c, int hw) {
    const size_t cnt = (size_t)n * c * hw;
    w->n = n, w->c = c, w->hw = hw;
    w->x = rand_buf(cnt, -2, 3), w->g = rand_buf(c, 0.5f, 1.5f), w->be = rand_buf(c, -1, 1);
    w->dy = rand_buf(cnt, -1, 1), w->rm0 = rand_buf(c, -1, 1), w->rv0 = rand_buf(c, 0.5f, 2);
    /* bn_gelu overwrites dx, so it starts as garbage there; the plain operator accumulates */
    w->dx0 = gelu ? rand_buf(cnt, -9, 9) : rand_buf(cnt, -1, 1);
    w->dg0 = rand_buf(c, -1, 1), w->db0 = rand_buf(c, -1, 1);
    w->y = xmalloc(cnt * sizeof(float)), w->mean = xmalloc(c * sizeof(float));
    w->rstd = xmalloc(c * sizeof(float));
    w->rm = copy_buf(w->rm0, c), w->rv = copy_buf(w->rv0, c), w->dx = copy_buf(w->dx0, cnt);
    w->dg = copy_buf(w->dg0, c), w->db = copy_buf(w->db0, c);
    OpsCtx ctx;
    assert_int_equal(ops_ctx_init(&ctx, device, 1), 0);
    Member m = {.gelu = gelu, .n = n, .c = c, .hw = hw, .ctx = ctx, .x = w->x, .dy = w->dy,
                .gamma = w->g, .beta = w->be, .y = w->y, .dx = w->dx, .mean = w->mean,
                .rstd = w->rstd, .rm = w->rm, .rv = w->rv, .dg = w->dg, .db = w->db};
    member_run(&m);
}

static void whole_free(Whole *w) {
    float *bufs[] = {w->x,  w->g,    w->be,   w->dy, w->rm0, w->rv0, w->dx0, w->dg0, w->db0,
                     w->y,  w->mean, w->rstd, w->rm, w->rv,  w->dx,  w->dg,  w->db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
}

/* The checks of the parts' statistics: part 0's against the whole's, every other part's the
 * same bits as part 0's (they all normalise with the same global statistics); the calls. */
static int check_part_stats(const Member *ms, int parts, const Whole *w) {
    const int c = w->c;
    int ok = close_to("mean", ms[0].mean, w->mean, c, STAT_TOL);
    ok &= close_to("rstd", ms[0].rstd, w->rstd, c, STAT_TOL);
    ok &= close_to("running mean", ms[0].rm, w->rm, c, STAT_TOL);
    ok &= close_to("running var", ms[0].rv, w->rv, c, STAT_TOL);
    for (int p = 0; p < parts; p++) {
        const Member *m = &ms[p];
        size_t cb = (size_t)c * sizeof(float);
        int same = !memcmp(m->mean, ms[0].mean, cb) && !memcmp(m->rstd, ms[0].rstd, cb) &&
                   !memcmp(m->rm, ms[0].rm, cb) && !memcmp(m->rv, ms[0].rv, cb);
        /* forward: sums and count, then squared deviations; backward: both sums and count */
        int calls = m->calls == 3 && m->lens[0] == c + 1 && m->lens[1] == c &&
                    m->lens[2] == 2 * c + 1 && !m->mismatch;
        if (!same || !calls)
            printf("  part %d: %s, %d calls of %d, %d, %d\n", p,
                   same ? "same statistics" : "statistics DIFFER from part 0's", m->calls,
                   m->lens[0], m->lens[1], m->lens[2]);
        ok &= same && calls;
    }
    return ok;
}

/* The whole batch of n images split into parts of split[0..parts) images, one thread each. */
static int sync_case(const char *device, int gelu, int n, int c, int hw, const int *split,
                     int parts) {
    Whole w;
    whole_run(&w, device, gelu, n, c, hw);
    const size_t cnt = (size_t)n * c * hw;
    float *y = xmalloc(cnt * sizeof(float)), *dx = copy_buf(w.dx0, cnt);
    Group g = {.parts = parts};
    pthread_barrier_init(&g.bar, NULL, (unsigned)parts);
    Member ms[MAXP];
    pthread_t th[MAXP];
    for (int p = 0, first = 0; p < parts; first += split[p], p++) {
        Member *m = &ms[p];
        *m = (Member){.g = &g, .part = p, .gelu = gelu, .first = first, .n = split[p], .c = c,
                      .hw = hw, .x = w.x, .dy = w.dy, .gamma = w.g, .beta = w.be, .y = y,
                      .dx = dx};
        assert_int_equal(ops_ctx_init(&m->ctx, device, 1), 0);
        m->ctx.sum_across = group_sum, m->ctx.sum_arg = m;
        m->mean = xmalloc(c * sizeof(float)), m->rstd = xmalloc(c * sizeof(float));
        m->rm = copy_buf(w.rm0, c), m->rv = copy_buf(w.rv0, c);
        m->dg = xcalloc(c, sizeof(float)), m->db = xcalloc(c, sizeof(float));
    }
    for (int p = 0; p < parts; p++) assert_int_equal(pthread_create(&th[p], NULL, member_run, &ms[p]), 0);
    for (int p = 0; p < parts; p++) pthread_join(th[p], NULL);
    pthread_barrier_destroy(&g.bar);

    printf(" %s %s N %d C %d HW %d, parts", device, gelu ? "bn_gelu" : "batchnorm2d", n, c, hw);
    for (int p = 0; p < parts; p++) printf(" %d", split[p]);
    printf("\n");
    int ok = check_part_stats(ms, parts, &w);
    ok &= close_to("y", y, w.y, cnt, Y_TOL);
    ok &= close_to("dx", dx, w.dx, cnt, GRAD_TOL);
    /* the trainer's sum of the parameter gradients across the processes */
    float *dg = copy_buf(w.dg0, c), *db = copy_buf(w.db0, c);
    for (int p = 0; p < parts; p++)
        for (int ch = 0; ch < c; ch++) dg[ch] += ms[p].dg[ch], db[ch] += ms[p].db[ch];
    ok &= close_to("dgamma summed over the parts", dg, w.dg, c, GRAD_TOL);
    ok &= close_to("dbeta summed over the parts", db, w.db, c, GRAD_TOL);
    for (int p = 0; p < parts; p++) {
        float *bufs[] = {ms[p].mean, ms[p].rstd, ms[p].rm, ms[p].rv, ms[p].dg, ms[p].db};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    }
    xfree(y), xfree(dx), xfree(dg), xfree(db);
    whole_free(&w);
    return ok;
}

static void test_parts_match_whole(void **state) {
    (void)state;
    const char *devices[2] = {"cpu", "ref"};
    const int two[2] = {2, 3}, three[3] = {1, 3, 2};
    int ok = 1;
    for (int d = 0; d < 2; d++)
        for (int gelu = 0; gelu < 2; gelu++) {
            ok &= sync_case(devices[d], gelu, 5, 3, 49, two, 2);
            ok &= sync_case(devices[d], gelu, 5, 64, 1, two, 2);
            ok &= sync_case(devices[d], gelu, 6, 64, 49, three, 3);
            ok &= sync_case(devices[d], gelu, 6, 3, 1, three, 3);
        }
    assert_true(ok);
}

/* ---- one process: an identity sum_across changes no bit --------------------------------- */

static void count_calls(void *arg, double *v, int n) {
    (void)v, (void)n;
    (*(int *)arg)++;
}

/* The synchronised path with nothing to add gives the bits of the NULL path (the same sums in
 * the same order); the backward makes its call even when it computes nothing but dgamma. */
static int identity_case(const char *device, int nthreads, int gelu, int n, int c, int hw) {
    const size_t cnt = (size_t)n * c * hw;
    Whole w;
    whole_run(&w, device, gelu, n, c, hw);
    int calls = 0;
    Member m = {.gelu = gelu, .n = n, .c = c, .hw = hw, .x = w.x, .dy = w.dy, .gamma = w.g,
                .beta = w.be, .y = xmalloc(cnt * sizeof(float)), .dx = copy_buf(w.dx0, cnt),
                .mean = xmalloc(c * sizeof(float)), .rstd = xmalloc(c * sizeof(float)),
                .rm = copy_buf(w.rm0, c), .rv = copy_buf(w.rv0, c), .dg = copy_buf(w.dg0, c),
                .db = copy_buf(w.db0, c)};
    assert_int_equal(ops_ctx_init(&m.ctx, device, nthreads), 0);
    m.ctx.sum_across = count_calls, m.ctx.sum_arg = &calls;
    member_run(&m);
    /* the NULL path ran with one thread: the CPU backend's results do not depend on it */
    const void *got[8] = {m.y, m.mean, m.rstd, m.rm, m.rv, m.dx, m.dg, m.db};
    const void *want[8] = {w.y, w.mean, w.rstd, w.rm, w.rv, w.dx, w.dg, w.db};
    const size_t sz[8] = {cnt, c, c, c, c, cnt, c, c};
    int same = 1;
    for (int i = 0; i < 8; i++) same &= !memcmp(got[i], want[i], sz[i] * sizeof(float));
    if (!gelu) batchnorm2d_backward_train(&m.ctx, NULL, m.dg, NULL, w.dy, w.x, m.mean, m.rstd,
                                          w.g, n, c, hw);
    int ncalls = gelu ? 3 : 4;
    printf("  %s (%d threads) %s N %d C %d HW %d: %s, %d calls\n", device, nthreads,
           gelu ? "bn_gelu" : "batchnorm2d", n, c, hw, same ? "bit for bit" : "DIFFER", calls);
    float *bufs[] = {m.y, m.dx, m.mean, m.rstd, m.rm, m.rv, m.dg, m.db};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) xfree(bufs[i]);
    whole_free(&w);
    return same && calls == ncalls;
}

static void test_identity_is_null_path(void **state) {
    (void)state;
    int ok = 1;
    for (int gelu = 0; gelu < 2; gelu++) {
        ok &= identity_case("cpu", 1, gelu, 4, 16, 49);
        ok &= identity_case("cpu", 2, gelu, 3, 64, 49);
        ok &= identity_case("cpu", 2, gelu, 5, 3, 1);
        ok &= identity_case("ref", 1, gelu, 3, 16, 49);
    }
    assert_true(ok);
}

int main(void) {
    ops_cpu_init();
    rng_seed(&rng, 2027);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_match_whole),
        cmocka_unit_test(test_identity_is_null_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
