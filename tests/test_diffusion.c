/* The noise schedule, one reverse step and guidance against values computed independently
 * in float64 by tools/torch_reference.py (tests/data/ref_schedule.safetensors), and the
 * sampler's reproducibility and frame bookkeeping on a tiny model. */
#include "testutil.h"

#include <string.h>

#include "diffusion/sampler_words.h"
#include "core/common.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "io/safetensors.h"
#include "ops/cpu.h"

/* The SPEC's model (MNIST geometry) of a kind and width with options o (NULL: none). */
static int spec_init(Unet *m, UnetKind kind, int width, const UnetOptions *o, int max_batch,
                     int nthreads, Rng *rng) {
    UnetConfig c = unet_config_spec(kind, width);
    if (o) c.opt = *o;
    return unet_init(m, &c, max_batch, nthreads, rng);
}

static StFile ref;
/* The schedule's updates and guidance on the CPU backend, one thread. */
static OpsCtx host;

static float *get(const char *name, size_t *count) {
    const StEntry *e = safetensors_find(&ref, name);
    if (!e) fail_msg("fixture lacks %s", name);
    size_t c = 1;
    for (int d = 0; d < e->ndim; d++) c *= (size_t)e->shape[d];
    float *p = xmalloc(c * sizeof(float));
    assert_int_equal(safetensors_read_f32(&ref, name, p, e->ndim, e->shape), 0);
    if (count) *count = c;
    return p;
}

static void test_schedule_values(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 0.02f), 0);
    const char *names[3] = {"betas", "alphas", "abar"};
    double *mine[3] = {s.beta, s.alpha, s.abar};
    for (int k = 0; k < 3; k++) {
        size_t n;
        float *want = get(names[k], &n);
        assert_int_equal(n, 300);
        float got[300];
        for (int i = 0; i < 300; i++) got[i] = (float)mine[k][i];
        assert_true(check_tensor(names[k], got, want, n, 0, 1e-6));
        xfree(want);
    }
    /* abar(-1) = 1 and the schedule is monotone */
    assert_true(schedule_abar(&s, -1) == 1.0);
    for (int t = 1; t < 300; t++) assert_true(s.abar[t] < s.abar[t - 1]);
    schedule_free(&s);
}

static void test_schedule_rejects_bad_ranges(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 0, 1e-4f, 0.02f), -1);
    assert_int_equal(schedule_init(&s, 300, 0.0f, 0.02f), -1);
    assert_int_equal(schedule_init(&s, 300, 0.03f, 0.02f), -1);
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 1.0f), -1);
}

static void test_reverse_step(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 0.02f), 0);
    const int ts[4] = {299, 150, 1, 0};
    for (int k = 0; k < 4; k++) {
        char name[64];
        size_t n;
        snprintf(name, sizeof name, "step.%d.xt", ts[k]);
        float *xt = get(name, &n);
        snprintf(name, sizeof name, "step.%d.eps", ts[k]);
        float *eps = get(name, NULL);
        snprintf(name, sizeof name, "step.%d.z", ts[k]);
        float *z = get(name, NULL);
        snprintf(name, sizeof name, "step.%d.out", ts[k]);
        float *want = get(name, NULL);
        float *got = xmalloc(n * sizeof(float));
        schedule_reverse_step(&host, &s, got, xt, eps, z, ts[k], (int)n);
        assert_true(check_tensor(name, got, want, n, 1e-6 * max_abs(want, n), 1e-6));
        xfree(xt);
        xfree(eps);
        xfree(z);
        xfree(want);
        xfree(got);
    }
    schedule_free(&s);
}

static void test_guidance(void **state) {
    (void)state;
    size_t n;
    float *eu = get("guide.eps_u", &n), *ec = get("guide.eps_c", NULL), *g = get("guide.gamma", NULL);
    float *want = get("guide.out", NULL), *got = xmalloc(n * sizeof(float));
    guidance_forward(&host, got, ec, eu, g[0], n);
    assert_true(check_tensor("guidance", got, want, n, 1e-6 * max_abs(want, n), 1e-6));
    xfree(eu);
    xfree(ec);
    xfree(g);
    xfree(want);
    xfree(got);
}

/* Same seed, same samples; another seed, other samples; frames start at the noise and
 * end at the samples. */
static void test_sampler_reproducible(void **state) {
    (void)state;
    for (int kind = UNET_TIME; kind <= UNET_CLASS; kind++) {
        Unet m;
        Rng init;
        rng_seed(&init, 3);
        assert_int_equal(spec_init(&m, (UnetKind)kind, 4, NULL, 8, 2, &init), 0);
        Schedule s;
        assert_int_equal(schedule_init(&s, 12, 1e-4f, 0.02f), 0);
        const int n = 5, every = 5;
        int labels[5] = {0, 3, -1, 9, 4};
        int nf = sampler_n_frames(12, every);
        assert_int_equal(nf, 1 + 3); /* start, after 5, 10 and 12 steps */
        float *a = xmalloc((size_t)n * 784 * sizeof(float)), *b = xmalloc((size_t)n * 784 * sizeof(float));
        float *c = xmalloc((size_t)n * 784 * sizeof(float));
        float *frames = xmalloc((size_t)nf * n * 784 * sizeof(float));
        SampleRequest req = {.n = n, .labels = labels, .guidance = 3.0f, .frame_every = every, .frames = frames};
        Rng r;
        rng_seed(&r, 11);
        sampler_draw(&m, &s, &r, &req, a);
        req.frame_every = 0;
        rng_seed(&r, 11);
        sampler_draw(&m, &s, &r, &req, b);
        rng_seed(&r, 12);
        sampler_draw(&m, &s, &r, &req, c);
        assert_memory_equal(a, b, (size_t)n * 784 * sizeof(float));
        assert_memory_not_equal(a, c, (size_t)n * 784 * sizeof(float));
        assert_memory_equal(frames + (size_t)(nf - 1) * n * 784, a, (size_t)n * 784 * sizeof(float));
        /* the first frame is the starting noise: roughly standard normal */
        double mean = 0, var = 0;
        for (size_t i = 0; i < (size_t)n * 784; i++) mean += frames[i];
        mean /= n * 784.0;
        for (size_t i = 0; i < (size_t)n * 784; i++) var += (frames[i] - mean) * (frames[i] - mean);
        var /= n * 784.0;
        assert_true(fabs(mean) < 0.1 && fabs(var - 1) < 0.1);
        xfree(a);
        xfree(b);
        xfree(c);
        xfree(frames);
        schedule_free(&s);
        unet_free(&m);
    }
}

/* The cosine schedule against its closed form abar_t = f(t + 1) / f(0) (step t here is the
 * paper's t + 1), f(u) = cos^2((u / T + s) / (1 + s) pi / 2), where no beta is clipped; betas
 * grow, the last is clipped at 0.999, and abar ends near zero. */
static void test_cosine_schedule(void **state) {
    (void)state;
    ScheduleKind k;
    assert_int_equal(schedule_kind_parse("cosine", &k), 0);
    assert_int_equal(k, SCHEDULE_COSINE);
    assert_string_equal(schedule_kind_name(k), "cosine");
    assert_int_equal(schedule_kind_parse("quadratic", &k), -1);
    assert_non_null(strstr(err_msg(), "unknown noise schedule 'quadratic'"));
    Schedule s;
    const int T = 300;
    assert_int_equal(schedule_init_kind(&s, SCHEDULE_COSINE, T, 1e-4f, 0.02f), 0);
    const double pi = 3.14159265358979323846, off = 0.008;
    double f0 = pow(cos(off / (1 + off) * pi / 2), 2);
    int clipped = 0;
    for (int t = 0; t < T; t++) {
        if (t > 0) assert_true(s.beta[t] >= s.beta[t - 1]);
        assert_true(s.beta[t] > 0 && s.beta[t] <= 0.999);
        if (s.beta[t] == 0.999) {
            clipped++;
            continue;
        }
        double f = pow(cos(((double)(t + 1) / T + off) / (1 + off) * pi / 2), 2);
        if (!clipped && fabs(s.abar[t] - f / f0) > 1e-12) fail_msg("abar[%d] = %.15g, want %.15g", t, s.abar[t], f / f0);
    }
    assert_int_equal(clipped, 1); /* f(T) = 0 exactly: the last beta would be 1 */
    assert_true(s.abar[T - 1] < 1e-5);
    assert_true(fabs(s.abar[0] - (1 - s.beta[0])) < 1e-15);
    /* halfway, more of the image is left than with the linear schedule */
    Schedule lin;
    assert_int_equal(schedule_init(&lin, T, 1e-4f, 0.02f), 0);
    assert_true(s.abar[T / 2] > lin.abar[T / 2]);
    schedule_free(&lin);
    schedule_free(&s);
}

/* DDIM's update with the true noise: from x_t it lands exactly on the same image noised to
 * level t_prev (and on x0 itself for t_prev = -1), whatever the jump; with eta 1 and a
 * one-step jump its noise has the DDPM posterior's variance. */
static void test_ddim_step(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 0.02f), 0);
    enum { N = 257 };
    float x0[N], eps[N], xt[N], got[N], want[N], z[N];
    Rng r;
    rng_seed(&r, 5);
    rng_fill_normal(&r, x0, N);
    rng_fill_normal(&r, eps, N);
    rng_fill_normal(&r, z, N);
    const int jumps[][2] = {{299, 150}, {150, 149}, {40, -1}, {299, -1}, {5, 0}};
    for (int j = 0; j < 5; j++) {
        int t = jumps[j][0], tp = jumps[j][1];
        schedule_add_noise(&host, &s, xt, x0, eps, t, N);
        schedule_ddim_step(&host, &s, got, xt, eps, z, t, tp, 0.0f, 0, N);
        if (tp >= 0) schedule_add_noise(&host, &s, want, x0, eps, tp, N);
        else memcpy(want, x0, sizeof want);
        char label[64];
        snprintf(label, sizeof label, "ddim eta 0, %d -> %d", t, tp);
        assert_true(check_tensor(label, got, want, N, 2e-4, 1e-4));
    }
    /* eta 1, t -> t-1, with x_t = eps = 0: the result is sigma z, sigma^2 the posterior's
     * variance beta_t (1 - abar_{t-1}) / (1 - abar_t) */
    float zero[N] = {0};
    const int t = 120;
    schedule_ddim_step(&host, &s, got, zero, zero, z, t, t - 1, 1.0f, 0, N);
    double var = s.beta[t] * (1 - s.abar[t - 1]) / (1 - s.abar[t]);
    for (int i = 0; i < N; i++) want[i] = (float)(sqrt(var) * z[i]);
    assert_true(check_tensor("ddim eta 1 noise = posterior std", got, want, N, 1e-7, 1e-5));
    /* eta 0 ignores z: the same call with other noise gives the same result */
    schedule_add_noise(&host, &s, xt, x0, eps, 200, N);
    schedule_ddim_step(&host, &s, got, xt, x0, z, 200, 100, 0.0f, 0, N);
    schedule_ddim_step(&host, &s, want, xt, x0, eps, 200, 100, 0.0f, 0, N);
    assert_memory_equal(got, want, sizeof got);
    /* clip: a clean image inside [0, 1] is left alone (the exact eps gives the same step);
     * outside, the step is the one from the clipped image, eps recomputed from it */
    for (int i = 0; i < N; i++) x0[i] = (float)i / (N - 1);
    schedule_add_noise(&host, &s, xt, x0, eps, 200, N);
    schedule_ddim_step(&host, &s, got, xt, eps, z, 200, 100, 0.0f, 1, N);
    schedule_ddim_step(&host, &s, want, xt, eps, z, 200, 100, 0.0f, 0, N);
    assert_true(check_tensor("ddim clip, x0 inside [0, 1]", got, want, N, 1e-5, 1e-5));
    for (int i = 0; i < N; i++) x0[i] = 3.0f * (float)i / (N - 1) - 1.0f; /* -1 .. 2 */
    schedule_add_noise(&host, &s, xt, x0, eps, 200, N);
    schedule_ddim_step(&host, &s, got, xt, eps, z, 200, 100, 0.0f, 1, N);
    {
        double ab = s.abar[200], abp = s.abar[100];
        for (int i = 0; i < N; i++) {
            double c = x0[i] < 0 ? 0 : x0[i] > 1 ? 1 : x0[i];
            double e = ((double)xt[i] - sqrt(ab) * c) / sqrt(1 - ab);
            want[i] = (float)(sqrt(abp) * c + sqrt(1 - abp) * e);
        }
    }
    assert_true(check_tensor("ddim clip, x0 in [-1, 2]", got, want, N, 1e-5, 1e-5));
    schedule_free(&s);
}

static void test_ddim_steps(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 0.02f), 0);
    int st[300];
    for (int sp = 0; sp < 2; sp++) {
        schedule_ddim_steps(&s, 1, (DdimSpacing)sp, st);
        assert_int_equal(st[0], 299);
        schedule_ddim_steps(&s, 300, (DdimSpacing)sp, st);
        for (int i = 0; i < 300; i++) assert_int_equal(st[i], i);
        /* any K: K distinct steps from 0 to T - 1 */
        for (int K = 2; K <= 300; K += 7) {
            schedule_ddim_steps(&s, K, (DdimSpacing)sp, st);
            assert_int_equal(st[0], 0);
            assert_int_equal(st[K - 1], 299);
            for (int i = 1; i < K; i++) assert_true(st[i] > st[i - 1]);
        }
    }
    schedule_ddim_steps(&s, 50, DDIM_SPACING_UNIFORM, st);
    assert_int_equal(st[0], 0);
    assert_int_equal(st[49], 299);
    for (int i = 1; i < 50; i++) assert_true(st[i] - st[i - 1] == 6 || st[i] - st[i - 1] == 7);
    /* quadratic: (i / 49)^2 299 where that is past the one-apart start; gaps grow */
    schedule_ddim_steps(&s, 50, DDIM_SPACING_QUADRATIC, st);
    assert_int_equal(st[1], 1);                 /* 0.12 rounds to 0, moved up */
    assert_int_equal(st[25], 78);               /* (25/49)^2 299 = 77.8 */
    assert_int_equal(st[48], 287);              /* (48/49)^2 299 = 286.9 */
    assert_true(st[49] - st[48] > st[26] - st[25]);
    /* trailing: (i + 1) T / K - 1, no step at 0; every gap T / K when K divides T */
    for (int K = 1; K <= 300; K += 13) {
        schedule_ddim_steps(&s, K, DDIM_SPACING_TRAILING, st);
        assert_int_equal(st[K - 1], 299);
        assert_true(st[0] >= 0);
        for (int i = 1; i < K; i++) assert_true(st[i] > st[i - 1]);
    }
    schedule_ddim_steps(&s, 50, DDIM_SPACING_TRAILING, st);
    assert_int_equal(st[0], 5);
    for (int i = 1; i < 50; i++) assert_int_equal(st[i] - st[i - 1], 6);
    schedule_ddim_steps(&s, 300, DDIM_SPACING_TRAILING, st);
    for (int i = 0; i < 300; i++) assert_int_equal(st[i], i);
    /* the command-line words (diffusion/sampler_words.h), then sampler_choose */
    SampleRequest q = {0};
    SamplerWords w = {"ddim", 0, -1, 0, NULL};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_steps, 50);
    assert_true(q.ddim_eta == 0.0f);
    assert_int_equal(q.ddim_clip, 0);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_UNIFORM);
    w = (SamplerWords){"ddim", 20, 0.5f, 1, "quadratic"};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_steps, 20);
    assert_true(q.ddim_eta == 0.5f);
    assert_int_equal(q.ddim_clip, 1);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_QUADRATIC);
    char desc[96];
    sampler_describe(&q, &s, desc, sizeof desc);
    assert_string_equal(desc, "DDIM, 20 steps, eta 0.5, x0 clipped, quadratic spacing");
    w = (SamplerWords){"ddim", 50, 1.0f, 0, "trailing"};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_TRAILING);
    sampler_describe(&q, &s, desc, sizeof desc);
    assert_string_equal(desc, "DDIM, 50 steps, eta 1, trailing spacing");
    w = (SamplerWords){"ddpm", 0, -1, 0, NULL};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_steps, 0);
    sampler_describe(&q, &s, desc, sizeof desc);
    assert_string_equal(desc, "DDPM, 300 steps");
    /* refused, each with its own message */
    const struct {
        SamplerWords w;
        const char *msg;
    } bad[] = {
        {{"ddim", 301, -1, 0, NULL}, "1 to T = 300"},
        {{"ddim", 0, 1.5f, 0, NULL}, "--eta 1.5: out of range"},
        {{"ddim", 0, -1, 0, "cubic"}, "unknown spacing 'cubic'"},
        {{"ddpm", 50, -1, 0, NULL}, "takes all T = 300 steps"},
        {{"ddpm", 0, 0.0f, 0, NULL}, "--eta is for --sampler ddim"},
        {{"ddpm", 0, -1, 1, NULL}, "--clip is for --sampler ddim"},
        {{"ddpm", 0, -1, 0, "uniform"}, "--spacing is for --sampler ddim"},
        {{"euler", 0, -1, 0, NULL}, "unknown sampler 'euler'"},
        {{"dpmpp2m", 0, 0.0f, 0, NULL}, "--eta is for --sampler ddim; dpmpp2m-sde is the stochastic"},
        {{"dpmpp2m-sde", 0, 0.5f, 0, NULL}, "--eta is for --sampler ddim"},
        {{"dpmpp3m", 301, -1, 0, NULL}, "1 to T = 300"},
        {{"dpmpp2m", 0, -1, 0, "cubic"}, "(expected uniform, quadratic, trailing or logsnr)"},
        {{"DPMPP2M", 0, -1, 0, NULL}, "(expected ddpm, ddim, dpmpp2m, dpmpp2m-sde or dpmpp3m)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sampler_words_choose(&q, &s, &bad[i].w), -1);
        if (!strstr(err_msg(), bad[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err_msg(), bad[i].msg);
    }
    schedule_free(&s);
}

/* The command-line words of the solvers: 20 steps and log-SNR spacing unless told, --clip
 * and any spacing taken; DDIM takes log-SNR spacing too; the log line counts the passes. */
static void test_sampler_words_solvers(void **state) {
    (void)state;
    Schedule s;
    assert_int_equal(schedule_init(&s, 300, 1e-4f, 0.02f), 0);
    SampleRequest q = {0};
    SamplerWords w;
    char desc[160];
    w = (SamplerWords){"dpmpp2m", 0, -1, 0, NULL};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_steps, 20);
    assert_int_equal(q.solver, 1 + SOLVER_DPMPP_2M);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_LOGSNR);
    assert_string_equal(sampler_words_name(&q), "dpmpp2m");
    assert_string_equal(sampler_title(&q), "DPM-Solver++(2M)");
    assert_string_equal(sampler_words_spacing(&q), "logsnr");
    sampler_words_describe(&q, &s, desc, sizeof desc);
    assert_string_equal(desc, "DPM-Solver++(2M), 20 steps (20 NFE), log-SNR spacing");
    w = (SamplerWords){"dpmpp3m", 10, -1, 1, "trailing"};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.solver, 1 + SOLVER_DPMPP_3M);
    assert_int_equal(q.ddim_clip, 1);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_TRAILING);
    w = (SamplerWords){"dpmpp2m-sde", 0, -1, 0, "uniform"};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.solver, 1 + SOLVER_DPMPP_2M_SDE);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_UNIFORM);
    w = (SamplerWords){"ddim", 0, -1, 0, "logsnr"};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_int_equal(q.ddim_spacing, DDIM_SPACING_LOGSNR);
    assert_int_equal(q.solver, 0);
    w = (SamplerWords){"ddpm", 0, -1, 0, NULL};
    assert_int_equal(sampler_words_choose(&q, &s, &w), 0);
    assert_null(sampler_words_spacing(&q));
    sampler_words_describe(&q, &s, desc, sizeof desc);
    assert_string_equal(desc, "DDPM, 300 steps (300 NFE)");
    schedule_free(&s);
}

static int count_steps(void *user, int done, int total) {
    (void)total;
    *(int *)user = done;
    return 0;
}

/* The DDIM sampler: K network passes per chunk, deterministic for eta 0 (two seeds differ
 * only through the starting noise, so the same seed gives the same images), and the same
 * images whatever the chunk size (eta 0 draws nothing after the start noise). */
static void test_ddim_sampler(void **state) {
    (void)state;
    Unet small, big;
    Rng init;
    rng_seed(&init, 3);
    assert_int_equal(spec_init(&small, UNET_CLASS, 4, NULL, 4, 1, &init), 0); /* chunks of 2 */
    rng_seed(&init, 3);
    assert_int_equal(spec_init(&big, UNET_CLASS, 4, NULL, 16, 1, &init), 0);  /* one chunk */
    Schedule s;
    assert_int_equal(schedule_init(&s, 40, 1e-4f, 0.02f), 0);
    enum { n = 5 };
    int labels[n] = {1, 2, 3, -1, 7}, steps = 0;
    float a[n * 784], b[n * 784], c[n * 784];
    SampleRequest req = {.n = n, .labels = labels, .guidance = 2.0f, .ddim_steps = 8,
                         .progress = count_steps, .progress_user = &steps};
    Rng r;
    rng_seed(&r, 21);
    sampler_draw(&small, &s, &r, &req, a);
    assert_int_equal(steps, 3 * 8); /* 3 chunks of at most 2, 8 steps each */
    rng_seed(&r, 21);
    sampler_draw(&big, &s, &r, &req, b);
    assert_int_equal(steps, 8);
    assert_true(check_tensor("ddim: chunk size does not matter", a, b, n * 784, 1e-5, 1e-4));
    rng_seed(&r, 21);
    sampler_draw(&big, &s, &r, &req, c);
    assert_memory_equal(b, c, sizeof b);
    /* eta 1 draws noise on the way: another result from the same start */
    req.ddim_eta = 1.0f;
    rng_seed(&r, 21);
    sampler_draw(&big, &s, &r, &req, c);
    assert_memory_not_equal(b, c, sizeof b);
    schedule_free(&s);
    unet_free(&small);
    unet_free(&big);
}

/* Guidance 0 and 1 take one network pass per image (the unconditional or the conditional
 * prediction alone): chunks of max_batch instead of max_batch / 2, and the same images as
 * the two-pass combination with a gamma one float step away. */
static void test_guidance_single_pass(void **state) {
    (void)state;
    Unet m;
    Rng init;
    rng_seed(&init, 5);
    assert_int_equal(spec_init(&m, UNET_CLASS, 4, NULL, 4, 1, &init), 0);
    Schedule s;
    assert_int_equal(schedule_init(&s, 30, 1e-4f, 0.02f), 0);
    enum { n = 4 };
    int labels[n] = {2, 5, -1, 8}, steps = 0;
    float a[n * 784], b[n * 784];
    const float gammas[2] = {0.0f, 1.0f}, near[2] = {1e-9f, nextafterf(1.0f, 2.0f)};
    for (int i = 0; i < 2; i++) {
        SampleRequest req = {.n = n, .labels = labels, .guidance = gammas[i], .ddim_steps = 6,
                             .progress = count_steps, .progress_user = &steps};
        Rng r;
        rng_seed(&r, 8);
        sampler_draw(&m, &s, &r, &req, a);
        assert_int_equal(steps, 1 * 6); /* one chunk of 4 */
        req.guidance = near[i];
        rng_seed(&r, 8);
        sampler_draw(&m, &s, &r, &req, b);
        assert_int_equal(steps, 2 * 6); /* two chunks of 2 */
        assert_true(check_tensor("single-pass guidance", a, b, n * 784, 1e-5, 1e-4));
    }
    /* and gamma 0 ignores the labels, gamma 1 does not */
    SampleRequest req = {.n = n, .labels = labels, .guidance = 0.0f, .ddim_steps = 6};
    int none[n] = {-1, -1, -1, -1};
    Rng r;
    rng_seed(&r, 8);
    sampler_draw(&m, &s, &r, &req, a);
    req.labels = none;
    rng_seed(&r, 8);
    sampler_draw(&m, &s, &r, &req, b);
    assert_memory_equal(a, b, sizeof a);
    req.guidance = 1.0f;
    rng_seed(&r, 8);
    sampler_draw(&m, &s, &r, &req, a);
    req.labels = labels;
    rng_seed(&r, 8);
    sampler_draw(&m, &s, &r, &req, b);
    assert_memory_not_equal(a, b, sizeof a);
    schedule_free(&s);
    unet_free(&m);
}

static int setup(void **state) {
    (void)state;
    if (safetensors_open("tests/data/ref_schedule.safetensors", &ref) != 0) {
        fprintf(stderr, "%s\n", err_msg());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    safetensors_close(&ref);
    return 0;
}

int main(void) {
    ops_cpu_init();
    if (ops_ctx_init(&host, "cpu", 1) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_values),
        cmocka_unit_test(test_schedule_rejects_bad_ranges),
        cmocka_unit_test(test_reverse_step),
        cmocka_unit_test(test_guidance),
        cmocka_unit_test(test_sampler_reproducible),
        cmocka_unit_test(test_cosine_schedule),
        cmocka_unit_test(test_ddim_step),
        cmocka_unit_test(test_ddim_steps),
        cmocka_unit_test(test_sampler_words_solvers),
        cmocka_unit_test(test_ddim_sampler),
        cmocka_unit_test(test_guidance_single_pass),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
