/* ddpm export (app/export.h, model/fold.h): inference weights with BatchNorm folded and
 * stored in half precision.
 *  - the identity BatchNorm that stands in for folded layers is exactly the identity in every
 *    forward (evaluation on the CPU and reference backends, and the folded inference pass);
 *  - the fold is exact in f32: for the denoiser, time and class model (and a model with the
 *    options), the export's evaluation forward is within 1e-5 (of the largest output) of the
 *    source's, and its inference forward equal bit for bit;
 *  - f16 and bf16 exports' forwards within stated tolerances;
 *  - the moving averages are exported by default, the trained weights with --no-ema;
 *  - an f32 export copied alone samples the same bytes as its source (schedule and data set
 *    read from its own metadata, preferred to ddpm.config); f16 samples;
 *  - a training resume from it is refused in one line; bad input is one line each (app and
 *    command line); a weight beyond f16's range is refused;
 *  - the f16 file holds half the f32 export's data, which is the source's minus BatchNorm. */
#define _GNU_SOURCE
#include "testutil.h"

#include <sys/wait.h>

#include "app/export.h"
#include "app/sample.h"
#include "app/train_job.h"
#include "core/common.h"
#include "model/checkpoint.h"
#include "model/fold.h"
#include "ops/cpu.h"
#include "train/trained_with.h"

#define N_IMG 3
#define P 784

static char tmpdir[256];

static void path_in(char *dst, size_t cap, const char *name) {
    snprintf(dst, cap, "%s/%s", tmpdir, name);
}

/* A model of kind and width D whose BatchNorms are far from the identity (as after training),
 * so that folding them changes the weights. */
static void build(Unet *m, UnetKind kind, int D, const UnetOptions *opt, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    UnetConfig c = unet_config_spec(kind, D);
    if (opt) c.opt = *opt;
    if (unet_init(m, &c, N_IMG, 2, &rng) != 0) fail_msg("%s", err_msg());
    float *s = unet_state_download(m);
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        if (!unet_is_bn_tensor(t)) continue;
        float *p = s + (t->is_buffer ? m->n_params : 0) + t->offset;
        const char *part = strrchr(t->name, '.') + 1;
        if (strcmp(part, "running_var") == 0) rng_fill_uniform(&rng, p, t->count, 0.3f, 2.5f);
        else if (strcmp(part, "weight") == 0) rng_fill_uniform(&rng, p, t->count, 0.5f, 1.5f);
        else rng_fill_uniform(&rng, p, t->count, -0.3f, 0.3f);
    }
    unet_state_upload(m, s);
    xfree(s);
}

typedef struct {
    float x[N_IMG * P], tn[N_IMG], onehot[N_IMG * 10];
} Inputs;

static void inputs(Inputs *in) {
    Rng r;
    rng_seed(&r, 5);
    rng_fill_normal(&r, in->x, N_IMG * P);
    rng_fill_uniform(&r, in->tn, N_IMG, 0.0f, 1.0f);
    memset(in->onehot, 0, sizeof in->onehot);
    in->onehot[0 * 10 + 3] = 1; /* image 2 has no class */
    in->onehot[1 * 10 + 7] = 1;
}

/* m's output for the inputs in a mode, into out (N_IMG * P). */
static void forward(Unet *m, const Inputs *in, int mode, float *out) {
    const float *o = unet_forward(m, in->x, m->kind == UNET_DENOISER ? NULL : in->tn,
                                  m->kind == UNET_CLASS ? in->onehot : NULL, N_IMG, mode);
    memcpy(out, o, sizeof(float) * N_IMG * P);
}

static void load(Unet *m, const char *path, int use_ema, const char *device) {
    const CheckpointLoadOptions lo = {.max_batch = N_IMG, .nthreads = 2, .use_ema = use_ema,
                                      .device = device};
    if (checkpoint_load(m, NULL, path, &lo) != 0) fail_msg("%s", err_msg());
}

static int export_to(const char *in, const char *out, StDtype dtype, int use_ema) {
    const ExportJob j = {.in = in, .out = out, .dtype = dtype, .use_ema = use_ema};
    return app_export(&j, NULL);
}

static int one_line(const char *s) { return strchr(s, '\n') == NULL && *s; }

/* ---- the identity BatchNorm -------------------------------------------------------------- */

static void test_identity_exact(void **state) {
    (void)state;
    /* the three computations of the scale, as the forward code does them */
    const float v = UNET_BN_IDENTITY_VAR, eps = UNET_BN_EPS;
    assert_true(1.0f / sqrtf(v + eps) == 1.0f);                         /* cpu/ref bn_fold */
    const double r = 1.0 / sqrt((double)v + (double)eps);
    assert_true((float)(r * 1.0) == 1.0f);                               /* cpu eval */
    Rng g;
    rng_seed(&g, 9);
    for (int i = 0; i < 100000; i++) { /* ref eval: (x - 0) r 1 + 0 in double, rounded */
        float x;
        rng_fill_normal(&g, &x, 1);
        x = ldexpf(x, i % 64 - 32);
        assert_true((float)(((double)x - 0.0) * r * 1.0f + 0.0f) == x);
    }
    /* and through the models: on folded weights, evaluation (conv, BatchNorm, GELU) and the
     * folded inference pass (conv with the refolded weights, GELU) agree bit for bit only if
     * the BatchNorm is exactly the identity and the refolding changes nothing */
    char src[300], out[300];
    path_in(src, sizeof src, "id-src.safetensors");
    path_in(out, sizeof out, "id-f32.safetensors");
    Unet m;
    build(&m, UNET_CLASS, 8, NULL, 1);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    unet_free(&m);
    if (export_to(src, out, ST_F32, 1) != 0) fail_msg("%s", err_msg());
    static Inputs in;
    inputs(&in);
    static float e[N_IMG * P], f[N_IMG * P];
    const char *devices[] = {"cpu", "ref"};
    for (int d = 0; d < 2; d++) {
        load(&m, out, 1, devices[d]);
        forward(&m, &in, UNET_EVAL, e);
        forward(&m, &in, UNET_INFER, f);
        printf("  %s: evaluation and folded inference of the export %s\n", devices[d],
               memcmp(e, f, sizeof e) == 0 ? "equal" : "DIFFER");
        assert_memory_equal(e, f, sizeof e);
        unet_free(&m);
    }
}

/* ---- the fold in f32 ---------------------------------------------------------------------- */

/* Export m's file in f32 and compare the forwards; also the file's contents. */
static void check_fold(UnetKind kind, const UnetOptions *opt, const char *what) {
    char src[300], out[300];
    path_in(src, sizeof src, "fold-src.safetensors");
    path_in(out, sizeof out, "fold-f32.safetensors");
    Unet a, b;
    build(&a, kind, 8, opt, 2);
    assert_int_equal(checkpoint_save(&a, src, NULL, NULL, 0), 0);
    if (export_to(src, out, ST_F32, 1) != 0) fail_msg("%s", err_msg());
    load(&b, out, 1, NULL);
    static Inputs in;
    inputs(&in);
    static float want[N_IMG * P], got[N_IMG * P];
    forward(&a, &in, UNET_EVAL, want);
    forward(&b, &in, UNET_EVAL, got);
    char label[160];
    snprintf(label, sizeof label, "%s: f32 export vs source, evaluation", what);
    assert_true(check_tensor(label, got, want, N_IMG * P, 1e-5 * max_abs(want, N_IMG * P), 0));
    forward(&a, &in, UNET_INFER, want);
    forward(&b, &in, UNET_INFER, got);
    assert_memory_equal(got, want, sizeof got); /* the same folded weights, bit for bit */
    unet_free(&a);
    unet_free(&b);
    StFile f;
    if (checkpoint_open(out, &f, 1) != 0) fail_msg("%s", err_msg());
    for (int i = 0; i < f.n; i++) {
        assert_null(strstr(f.entries[i].name, ".bn."));
        assert_int_equal(f.entries[i].dtype, ST_F32);
    }
    assert_string_equal(safetensors_meta(&f, CHECKPOINT_FORMAT_KEY), "ddpm-inference/1");
    assert_string_equal(safetensors_meta(&f, "ddpm.dtype"), "f32");
    assert_string_equal(safetensors_meta(&f, CHECKPOINT_FOLDED_KEY), "1");
    assert_string_equal(safetensors_meta(&f, TRAINED_DATASET_KEY), "mnist");
    assert_int_equal(safetensors_meta(&f, TRAINED_SCHEDULE_KEY) != NULL, kind != UNET_DENOISER);
    safetensors_close(&f);
}

static void test_fold_denoiser(void **state) { (void)state; check_fold(UNET_DENOISER, NULL, "denoiser"); }
static void test_fold_time(void **state) { (void)state; check_fold(UNET_TIME, NULL, "time"); }
static void test_fold_class(void **state) { (void)state; check_fold(UNET_CLASS, NULL, "class"); }
static void test_fold_options(void **state) {
    (void)state;
    const UnetOptions o = {.temb = 16, .residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    check_fold(UNET_CLASS, &o, "class, time embedding 16, residual, attention");
}

/* ---- half precision ------------------------------------------------------------------------ */

/* Weights rounded to 11 significant bits (f16) or 8 (bf16): a relative error of at most 2^-11
 * or 2^-8 per weight, which through the 17 units moves the output by about that relative to
 * its largest value. Measured on these models (width 16): f16 2e-4 to 7e-4 of the largest
 * output, bf16 5e-3; the bounds leave a factor of 3 or more. */
#define F16_TOL 2e-3
#define BF16_TOL 1.5e-2

static void check_half(UnetKind kind, StDtype dtype, double tol, const char *what) {
    char src[300], out[300];
    path_in(src, sizeof src, "half-src.safetensors");
    path_in(out, sizeof out, "half.safetensors");
    Unet a, b;
    build(&a, kind, 16, NULL, 3);
    assert_int_equal(checkpoint_save(&a, src, NULL, NULL, 0), 0);
    if (export_to(src, out, dtype, 1) != 0) fail_msg("%s", err_msg());
    load(&b, out, 1, NULL);
    static Inputs in;
    inputs(&in);
    static float want[N_IMG * P], got[N_IMG * P];
    forward(&a, &in, UNET_EVAL, want);
    forward(&b, &in, UNET_INFER, got);
    const double scale = max_abs(want, N_IMG * P);
    assert_true(check_tensor(what, got, want, N_IMG * P, tol * scale, 0));
    double worst = 0;
    for (int i = 0; i < N_IMG * P; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    printf("    worst difference %.2e of the largest output (bound %.0e)\n", worst / scale, tol);
    unet_free(&a);
    unet_free(&b);
    StFile f;
    if (checkpoint_open(out, &f, 1) != 0) fail_msg("%s", err_msg());
    for (int i = 0; i < f.n; i++) assert_int_equal(f.entries[i].dtype, dtype);
    assert_string_equal(safetensors_meta(&f, "ddpm.dtype"), app_export_dtype_name(dtype));
    safetensors_close(&f);
}

static void test_half(void **state) {
    (void)state;
    check_half(UNET_CLASS, ST_F16, F16_TOL, "class: f16 export vs source");
    check_half(UNET_TIME, ST_F16, F16_TOL, "time: f16 export vs source");
    check_half(UNET_DENOISER, ST_F16, F16_TOL, "denoiser: f16 export vs source");
    check_half(UNET_CLASS, ST_BF16, BF16_TOL, "class: bf16 export vs source");
}

/* ---- the moving averages ----------------------------------------------------------------- */

static void test_ema(void **state) {
    (void)state;
    char src[300], ema[300], raw[300];
    path_in(src, sizeof src, "ema-src.safetensors");
    path_in(ema, sizeof ema, "ema-f32.safetensors");
    path_in(raw, sizeof raw, "raw-f32.safetensors");
    Unet a, b;
    build(&a, UNET_TIME, 8, NULL, 4);
    float *avg = unet_state_download(&a); /* the averages: the weights, perturbed */
    for (size_t i = 0; i < a.n_params; i++) avg[i] *= 0.9f;
    StTensor *ts = xcalloc((size_t)a.n_tensors, sizeof(StTensor));
    char (*names)[64] = xcalloc((size_t)a.n_tensors, 64);
    int n = checkpoint_ema_tensors(&a, avg, ts, names);
    assert_int_equal(checkpoint_save_with(&a, src, ts, n, NULL, NULL, 0), 0);
    xfree(ts);
    xfree(names);
    xfree(avg);
    unet_free(&a);
    if (export_to(src, ema, ST_F32, 1) != 0) fail_msg("%s", err_msg());
    if (export_to(src, raw, ST_F32, 0) != 0) fail_msg("%s", err_msg());
    static Inputs in;
    inputs(&in);
    static float want[N_IMG * P], got[N_IMG * P];
    const char *outs[2] = {raw, ema};
    for (int use_ema = 0; use_ema < 2; use_ema++) {
        load(&a, src, use_ema, NULL);
        load(&b, outs[use_ema], 1, NULL);
        forward(&a, &in, UNET_INFER, want);
        forward(&b, &in, UNET_INFER, got);
        assert_memory_equal(got, want, sizeof got);
        unet_free(&a);
        unet_free(&b);
        StFile f;
        if (checkpoint_open(outs[use_ema], &f, 1) != 0) fail_msg("%s", err_msg());
        assert_string_equal(safetensors_meta(&f, "ddpm.ema"), use_ema ? "1" : "0");
        assert_false(checkpoint_has_ema(&f));
        safetensors_close(&f);
    }
}

/* ---- sampling from the file alone --------------------------------------------------------- */

static void sample_to(const char *ckpt, const char *idx) {
    SampleJob j;
    sample_job_defaults(&j);
    char png[400];
    snprintf(png, sizeof png, "%s.png", idx);
    j.ckpt = ckpt;
    j.n = 4;
    j.digit = 5;
    j.guidance = 2;
    j.out = png;
    j.idx = idx;
    j.seed = 7;
    if (app_sample(&j, NULL) != 0) fail_msg("%s", err_msg());
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_sample_alone(void **state) {
    (void)state;
    char src[300], alone[400], f16[400], ia[300], ib[300], ic[300];
    path_in(src, sizeof src, "run-model.safetensors");
    char dir[300];
    path_in(dir, sizeof dir, "shipped");
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(alone, sizeof alone, "%s/model-f32.safetensors", dir);
    snprintf(f16, sizeof f16, "%s/model-f16.safetensors", dir);
    path_in(ia, sizeof ia, "src.idx");
    path_in(ib, sizeof ib, "alone.idx");
    path_in(ic, sizeof ic, "f16.idx");
    Unet m;
    build(&m, UNET_CLASS, 8, NULL, 6);
    /* a schedule other than the default, which the sampler must take from the export */
    const char *k[] = {"ddpm.config"};
    const char *v[] = {"{\"schedule\":\"cosine\",\"T\":12,\"beta_start\":0.0002,\"beta_end\":0.03}"};
    assert_int_equal(checkpoint_save(&m, src, k, v, 1), 0);
    unet_free(&m);
    if (export_to(src, alone, ST_F32, 1) != 0) fail_msg("%s", err_msg());
    if (export_to(src, f16, ST_F16, 1) != 0) fail_msg("%s", err_msg());
    ScheduleKind sk;
    int T = 0;
    float b0 = 0, b1 = 0;
    assert_int_equal(trained_schedule(alone, &sk, &T, &b0, &b1), 0);
    assert_int_equal(sk, SCHEDULE_COSINE);
    assert_int_equal(T, 12);
    assert_true(b0 == 0.0002f && b1 == 0.03f);
    sample_to(src, ia);
    sample_to(alone, ib);
    sample_to(f16, ic);
    size_t na, nb, nc;
    unsigned char *a = slurp(ia, &na), *b = slurp(ib, &nb), *c = slurp(ic, &nc);
    assert_int_equal(na, 16 + 4 * P);
    assert_int_equal(nb, na);
    assert_memory_equal(a, b, na);
    assert_int_equal(nc, na);
    free(a);
    free(b);
    free(c);
}

/* The file's own keys are read before its ddpm.config. */
static void test_keys_preferred(void **state) {
    (void)state;
    char p[300];
    path_in(p, sizeof p, "keys.safetensors");
    Unet m;
    build(&m, UNET_TIME, 4, NULL, 7);
    const char *k[] = {"ddpm.config", TRAINED_SCHEDULE_KEY, TRAINED_T_KEY, TRAINED_BETA_START_KEY,
                       TRAINED_BETA_END_KEY, TRAINED_DATASET_KEY};
    const char *v[] = {"{\"T\":100,\"dataset\":\"mnist\"}", "linear", "30", "0.001", "0.01", "fashion"};
    assert_int_equal(checkpoint_save(&m, p, k, v, 6), 0);
    ScheduleKind sk;
    int T = 0;
    float b0 = 0, b1 = 0;
    Dataset d;
    assert_int_equal(trained_schedule(p, &sk, &T, &b0, &b1), 0);
    assert_int_equal(T, 30);
    assert_true(b0 == 0.001f && b1 == 0.01f);
    assert_int_equal(trained_dataset(p, &d), 0);
    assert_int_equal(d, DATASET_FASHION);
    v[2] = "3x"; /* and checked */
    assert_int_equal(checkpoint_save(&m, p, k, v, 6), 0);
    assert_int_equal(trained_schedule(p, &sk, &T, &b0, &b1), -1);
    printf("  %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "ddpm.T must be an integer"));
    unet_free(&m);
}

/* ---- refusals ------------------------------------------------------------------------------- */

static void test_resume_refused(void **state) {
    (void)state;
    char src[300], run[300], state_path[400];
    path_in(src, sizeof src, "resume-src.safetensors");
    path_in(run, sizeof run, "run");
    assert_int_equal(mkdir(run, 0755), 0);
    snprintf(state_path, sizeof state_path, "%s/checkpoint.safetensors", run);
    Unet m;
    build(&m, UNET_TIME, 4, NULL, 8);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    unet_free(&m);
    if (export_to(src, state_path, ST_F16, 1) != 0) fail_msg("%s", err_msg());
    TrainConfig c;
    char data[256];
    assert_int_equal(app_train_resume_config(&c, data, sizeof data, run, NULL, 0, NULL), -1);
    printf("  %s\n", err_msg());
    assert_true(one_line(err_msg()));
    assert_non_null(strstr(err_msg(), "inference-only weights"));
    assert_non_null(strstr(err_msg(), "cannot resume"));
}

static void test_bad_input(void **state) {
    (void)state;
    char src[300], out[300], missing[300];
    path_in(src, sizeof src, "bad-src.safetensors");
    path_in(out, sizeof out, "no-such-dir/out.safetensors");
    path_in(missing, sizeof missing, "missing.safetensors");
    Unet m;
    build(&m, UNET_TIME, 4, NULL, 9);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    char ok[300];
    path_in(ok, sizeof ok, "bad-ok.safetensors");
    assert_int_equal(export_to(missing, ok, ST_F16, 1), -1);
    printf("  %s\n", err_msg());
    assert_true(one_line(err_msg()) && strstr(err_msg(), "missing.safetensors"));
    assert_int_equal(export_to(src, out, ST_F16, 1), -1);
    printf("  %s\n", err_msg());
    assert_true(one_line(err_msg()) && strstr(err_msg(), "no-such-dir"));
    assert_int_equal(export_to(src, src, ST_F16, 1), -1);
    assert_true(one_line(err_msg()));
    StDtype d;
    assert_int_equal(app_export_dtype_parse("f8", &d), -1);
    assert_true(one_line(err_msg()) && strstr(err_msg(), "'f8'"));
    /* a weight beyond f16's range: refused in f16, kept in bf16 */
    float *s = unet_state_download(&m);
    s[unet_find(&m, "out.bias")->offset] = 1e5f;
    unet_state_upload(&m, s);
    xfree(s);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    unet_free(&m);
    assert_int_equal(export_to(src, ok, ST_F16, 1), -1);
    printf("  %s\n", err_msg());
    assert_true(one_line(err_msg()) && strstr(err_msg(), "out.bias"));
    assert_int_equal(export_to(src, ok, ST_BF16, 1), 0);
}

/* The command line: each mistake is one line and a non-zero exit. */
static void expect_cli_error(const char *needle, const char *args) {
    const char *bin = getenv("DDPM_BIN");
    if (!bin || !*bin) bin = "./ddpm";
    char cmd[1200], outp[400];
    path_in(outp, sizeof outp, "cli.txt");
    snprintf(cmd, sizeof cmd, "%s export %s >%s 2>&1 </dev/null", bin, args, outp);
    int st = system(cmd);
    size_t n;
    unsigned char *buf = slurp(outp, &n);
    buf[n] = 0;
    printf("  $ ddpm export %s\n    -> %s", args, (char *)buf);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_non_null(strchr((char *)buf, '\n'));
    assert_true(strchr((char *)buf, '\n')[1] == 0);
    assert_non_null(strstr((char *)buf, needle));
    free(buf);
}

static void test_cli(void **state) {
    (void)state;
    char src[300], args[1000];
    path_in(src, sizeof src, "cli-src.safetensors");
    Unet m;
    build(&m, UNET_TIME, 4, NULL, 10);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    unet_free(&m);
    snprintf(args, sizeof args, "--dtype f8 %s %s/x.safetensors", src, tmpdir);
    expect_cli_error("unknown 'f8'", args);
    snprintf(args, sizeof args, "%s/none.safetensors %s/x.safetensors", tmpdir, tmpdir);
    expect_cli_error("none.safetensors", args);
    snprintf(args, sizeof args, "%s %s/no-dir/x.safetensors", src, tmpdir);
    expect_cli_error("no-dir", args);
    snprintf(args, sizeof args, "%s", src);
    expect_cli_error("needs the input and the output file", args);
    snprintf(args, sizeof args, "--dtype bf16 --no-ema %s %s/cli-ok.safetensors", src, tmpdir);
    char cmd[1300];
    const char *bin = getenv("DDPM_BIN");
    snprintf(cmd, sizeof cmd, "%s export %s >/dev/null", bin && *bin ? bin : "./ddpm", args);
    assert_int_equal(system(cmd), 0);
}

/* ---- size ----------------------------------------------------------------------------------- */

static size_t data_bytes(const char *path, size_t *file) {
    StFile f;
    if (safetensors_open(path, &f) != 0) fail_msg("%s", err_msg());
    size_t n = f.size - f.data_start;
    *file = f.size;
    safetensors_close(&f);
    return n;
}

static void test_size(void **state) {
    (void)state;
    char src[300], o32[300], o16[300];
    path_in(src, sizeof src, "size-src.safetensors");
    path_in(o32, sizeof o32, "size-f32.safetensors");
    path_in(o16, sizeof o16, "size-f16.safetensors");
    Unet m;
    build(&m, UNET_CLASS, 16, NULL, 11);
    assert_int_equal(checkpoint_save(&m, src, NULL, NULL, 0), 0);
    size_t bn = 0; /* BatchNorm's floats: four per output channel of each unit */
    for (int i = 0; i < UNET_NUM_UNITS; i++) bn += 4 * (size_t)m.units[i].co;
    unet_free(&m);
    if (export_to(src, o32, ST_F32, 1) != 0) fail_msg("%s", err_msg());
    if (export_to(src, o16, ST_F16, 1) != 0) fail_msg("%s", err_msg());
    size_t fs, f32, f16;
    size_t ds = data_bytes(src, &fs), d32 = data_bytes(o32, &f32), d16 = data_bytes(o16, &f16);
    printf("  D 16 class model: source %zu bytes, f32 export %zu, f16 export %zu (%.3f of f32)\n",
           fs, f32, f16, (double)f16 / (double)f32);
    assert_int_equal(d32, ds - 4 * bn);
    assert_int_equal(2 * d16, d32);
    assert_true((double)f16 / (double)f32 < 0.52);
}

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "export");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

int main(void) {
    ops_cpu_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_denoiser, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_class, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sample_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_preferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
