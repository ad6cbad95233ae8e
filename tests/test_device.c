/* The two backends against each other on whole models: a training step of each of the three
 * models (loss, every gradient, the BatchNorm running statistics and the weights after
 * Adam) and a 20-step sampling chain (DDPM over T = 20, and DDIM 20 of T = 300 with guidance)
 * run on `cpu` (OpenMP, BLAS, Winograd) and on `ref` (plain loops in double) from the same
 * seed. The per-operator comparison is tests/test_backend.c; this shows that everything above
 * the operators (the UNet, the trainer, Adam, the samplers) reaches tensors only through the
 * backend, since a host loop left above the interface would compute the same on both and a
 * missing dispatch would crash or differ. Also: an unknown device is refused in one line. */
#include "testutil.h"

#include "core/common.h"
#include "core/rng.h"
#include "diffusion/sampler.h"
#include "ops/backend.h"
#include "train/train.h"

/* Tolerances, from the measured differences (the worst seen, times about 20):
 * - loss: relative 1e-5 (measured 1e-7; the sum of squares in float on cpu, double on ref);
 * - gradients: |diff| <= 5e-6 G + 1e-3 |g| with G the largest gradient of the model
 *   (measured: at most 2.3e-7 G, in enc0's weights, G about 0.6): the
 *   Winograd transforms and BLAS reorder the sums (within 3e-5 of the largest value at the
 *   operator level), and some gradients are rounding noise around 0 (the biases of the
 *   convolutions before BatchNorm, which removes them: about 1e-8 here);
 * - running statistics: 1e-5 relative;
 * - weights after one Adam step: Adam's first step moves each weight by about lr sign(g), so
 *   where a gradient is within rounding of 0 the two may move it differently; every weight
 *   within 2 lr and all but 1% of them within 1e-6 of the other backend's.
 *   (measured: 0.5% of them beyond 1e-6, the worst 0.66 of 2 lr);
 * - sampling: images after 20 steps within 1e-5 of the largest value (measured 5e-7: errors
 *   in the noise prediction carry through the chain; the fresh noise is the same draws). */
#define LOSS_RTOL 1e-5
#define GRAD_ATOL_REL 5e-6
#define GRAD_RTOL 1e-3
#define SAMPLE_ATOL_REL 1e-5

static void fill_images(float *x, uint8_t *labels, int n) {
    Rng r;
    rng_seed(&r, 99);
    rng_fill_uniform(&r, x, (size_t)n * 784, 0.0f, 1.0f);
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)(i % 10);
}

static void step_on(Trainer *tr, UnetKind kind, const char *device, const float *x,
                    const uint8_t *labels, int n, float *loss) {
    TrainConfig c;
    train_config_defaults(&c, kind);
    c.width = 8;
    c.batch = n;
    c.threads = 2;
    c.seed = 5;
    c.device = device;
    if (trainer_init(tr, &c) != 0) fail_msg("%s", err_msg());
    assert_string_equal(tr->model.ctx.be->name, device);
    *loss = trainer_step(tr, x, labels, n);
}

static void check_step(UnetKind kind) {
    enum { N = 6 };
    float *x = xmalloc(N * 784 * sizeof(float));
    uint8_t labels[N];
    fill_images(x, labels, N);
    Trainer a, b;
    float la, lb;
    step_on(&a, kind, "cpu", x, labels, N, &la);
    step_on(&b, kind, "ref", x, labels, N, &lb);
    printf("  %s: loss cpu %.9g ref %.9g\n", unet_kind_name(kind), (double)la, (double)lb);
    assert_true(fabs((double)la - (double)lb) <= LOSS_RTOL * fabs((double)lb));
    const Unet *ma = &a.model, *mb = &b.model;
    assert_int_equal(ma->n_params, mb->n_params);
    int ok = 1;
    const double G = max_abs(mb->grads, mb->n_params);
    printf("  largest gradient %.3g\n", G);
    for (int i = 0; i < ma->n_tensors; i++) {
        const UnetTensor *t = &ma->tensors[i];
        char label[80];
        if (t->is_buffer) {
            snprintf(label, sizeof label, "%s (after the step)", t->name);
            ok &= check_tensor(label, unet_tensor_data(ma, t), unet_tensor_data(mb, t), t->count,
                               1e-7, 1e-5);
            continue;
        }
        const float *gb = unet_tensor_grad(mb, t);
        snprintf(label, sizeof label, "grad %s", t->name);
        ok &= check_tensor(label, unet_tensor_grad(ma, t), gb, t->count, GRAD_ATOL_REL * G,
                           GRAD_RTOL);
    }
    /* the weights after Adam's first step */
    const double lr = a.cfg.lr;
    size_t far = 0;
    double worst = 0;
    for (size_t i = 0; i < ma->n_params; i++) {
        double d = fabs((double)ma->params[i] - (double)mb->params[i]);
        if (d > worst) worst = d;
        far += d > 1e-6;
    }
    printf("  weights after the step: worst |diff| %.3g (2 lr = %.3g), %zu of %zu beyond 1e-6\n",
           worst, 2 * lr, far, ma->n_params);
    assert_true(worst <= 2 * lr * (1 + 1e-6));
    assert_true(far <= ma->n_params / 100);
    assert_true(ok);
    trainer_free(&a);
    trainer_free(&b);
    xfree(x);
}

static void test_step_denoiser(void **state) { (void)state; check_step(UNET_DENOISER); }
static void test_step_time(void **state) { (void)state; check_step(UNET_TIME); }
static void test_step_class(void **state) { (void)state; check_step(UNET_CLASS); }

/* n samples of a freshly initialised class (or time) model on a device. */
static void chain_on(const char *device, UnetKind kind, int T, const SamplerChoice *sc,
                     float guidance, float *out, int n) {
    Unet m;
    Rng init;
    rng_seed(&init, 11);
    UnetConfig uc = unet_config_spec(kind, 8);
    uc.device = device;
    if (unet_init(&m, &uc, 2 * n, 2, &init) != 0) fail_msg("%s", err_msg());
    Schedule s;
    assert_int_equal(schedule_init(&s, T, 1e-4f, 0.02f), 0);
    int labels[8];
    for (int i = 0; i < n; i++) labels[i] = i % 10;
    SampleRequest req = {.n = n, .labels = kind == UNET_CLASS ? labels : NULL,
                         .guidance = guidance};
    if (sampler_choose(&req, &s, sc) != 0) fail_msg("%s", err_msg());
    Rng r;
    rng_seed(&r, 3);
    sampler_draw(&m, &s, &r, &req, out);
    schedule_free(&s);
    unet_free(&m);
}

static void check_chain(UnetKind kind, int T, const SamplerChoice *sc, float guidance,
                        const char *what) {
    enum { N = 4 };
    float a[N * 784], b[N * 784];
    chain_on("cpu", kind, T, sc, guidance, a, N);
    chain_on("ref", kind, T, sc, guidance, b, N);
    double scale = max_abs(b, N * 784);
    assert_true(scale > 0);
    assert_true(check_tensor(what, a, b, N * 784, SAMPLE_ATOL_REL * scale, 0));
}

static void test_chain_ddpm(void **state) {
    (void)state;
    SamplerChoice sc = {.kind = SAMPLER_DDPM};
    check_chain(UNET_TIME, 20, &sc, 0, "time model, DDPM, T = 20");
}

static void test_chain_ddim_guided(void **state) {
    (void)state;
    SamplerChoice sc = {.kind = SAMPLER_DDIM, .steps = 20, .eta = 1};
    check_chain(UNET_CLASS, 300, &sc, 2, "class model, DDIM 20 of 300, eta 1, guidance 2");
}

/* The command line on the reference backend: a tiny run trains and its weights sample. */
static void test_cli_ref(void **state) {
    (void)state;
    const char *bin = getenv("DDPM_BIN");
    if (!bin || !*bin) bin = "./ddpm";
    char dir[] = "/tmp/ddpm-device-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s train --device ref --model time --width 4 --batch 8 --subset 16 --epochs 1 "
             "--T 20 --threads 2 --no-progress --data %s --out %s/run >%s/log 2>&1 && "
             "%s sample --device ref --ckpt %s/run/model.safetensors --n 4 --out %s/s.png "
             "--idx %s/s.idx >>%s/log 2>&1",
             bin, test_data_dir(), dir, dir, bin, dir, dir, dir, dir);
    printf("  $ %s\n", cmd);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "cat %s/log", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(st, 0);
    const char *files[] = {"run/loss.csv", "run/model.safetensors", "s.png", "s.idx"};
    for (int i = 0; i < 4; i++) {
        char p[512];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        assert_int_equal(stat(p, &sb), 0);
        assert_true(sb.st_size > 0);
    }
    test_rm_rf(dir);
}

static void test_unknown_device(void **state) {
    (void)state;
    OpsCtx ctx;
    assert_int_equal(ops_ctx_init(&ctx, "gpu", 1), -1);
    printf("  %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "unknown device 'gpu'"));
    assert_non_null(backend_find("ref"));
    assert_non_null(backend_find("cpu"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_denoiser),   cmocka_unit_test(test_step_time),
        cmocka_unit_test(test_step_class),      cmocka_unit_test(test_chain_ddpm),
        cmocka_unit_test(test_chain_ddim_guided), cmocka_unit_test(test_cli_ref),
        cmocka_unit_test(test_unknown_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
