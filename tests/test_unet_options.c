/* The UNet's architecture options beyond the SPEC (UnetOptions: residual ConvBlocks,
 * self-attention at 7x7 and 14x14):
 *  - with every option off the model is the SPEC's bit for bit (same tensors, same initial
 *    values, same outputs and gradients as unet_init), residual blocks add no tensors, and
 *    the attention layers add exactly their four tensors each after the SPEC's;
 *  - whole-UNet parameter gradients with the options against central finite differences in
 *    training mode, as test_reference.c's time-embedding check;
 *  - weights saved with the options load back (checkpoint_load reads them from the metadata)
 *    and give identical outputs; the SPEC model's files carry no option keys;
 *  - the run configuration (JSON) round trip of the options;
 *  - the inference mode (UNET_INFER: BatchNorm folded into the convolutions, F(4x4, 3x3)
 *    Winograd on 28x28) against the evaluation mode, with and without the options. */
#include "testutil.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/unet.h"
#include "ops/cpu.h"
#include "train/state.h"

/* The SPEC's model (MNIST geometry) of a kind and width with options o (NULL: none). */
static int spec_init(Unet *m, UnetKind kind, int width, const UnetOptions *o, int max_batch,
                     int nthreads, Rng *rng) {
    UnetConfig c = unet_config_spec(kind, width);
    if (o) c.opt = *o;
    return unet_init(m, &c, max_batch, nthreads, rng);
}

#define N_IMG 3
#define PIX 784

typedef struct {
    float x[N_IMG * PIX], r[N_IMG * PIX], tn[N_IMG], oh[N_IMG * 10];
} Inputs;

static void inputs_make(Inputs *in, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    rng_fill_normal(&rng, in->x, N_IMG * PIX);
    rng_fill_normal(&rng, in->r, N_IMG * PIX);
    in->tn[0] = 0.1f;
    in->tn[1] = 0.5f;
    in->tn[2] = 0.93f;
    memset(in->oh, 0, sizeof in->oh);
    in->oh[2] = in->oh[10 + 7] = 1; /* digits 2 and 7, the third row unconditional */
}

static const float *fwd(Unet *m, const Inputs *in, int train) {
    return unet_forward(m, in->x, m->kind != UNET_DENOISER ? in->tn : NULL,
                        m->kind == UNET_CLASS ? in->oh : NULL, N_IMG, train);
}

/* ---- options off: the SPEC's model ------------------------------------------------------ */

static void test_parse_names(void **state) {
    (void)state;
    const struct { const char *s; int mask; } good[] = {
        {"down2", UNET_ATTN_DOWN2}, {"up1", UNET_ATTN_UP1},
        {"down2,up1", UNET_ATTN_DOWN2 | UNET_ATTN_UP1}, {"up1,down2", UNET_ATTN_DOWN2 | UNET_ATTN_UP1},
        /* the old names, by resolution at 28x28: the same places */
        {"7", UNET_ATTN_DOWN2}, {"14", UNET_ATTN_UP1}, {"7,14", UNET_ATTN_DOWN2 | UNET_ATTN_UP1},
        {"14,7", UNET_ATTN_DOWN2 | UNET_ATTN_UP1}, {"down2,14", UNET_ATTN_DOWN2 | UNET_ATTN_UP1},
        {"none", 0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int mask = -1;
        assert_int_equal(unet_attention_parse(good[i].s, &mask), 0);
        assert_int_equal(mask, good[i].mask);
    }
    const char *bad[] = {"5", "", "7,", ",7", "7,7", "71", "28", "7;14", "14,14", "7,14,7", "none,7",
                         "down2,7", "up1,up1", "down", "down2,", "up2", "Down2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int mask = 0;
        assert_int_equal(unet_attention_parse(bad[i], &mask), -1);
        printf("  '%s': %s\n", bad[i], err_msg());
    }
    assert_string_equal(unet_attention_name(UNET_ATTN_DOWN2 | UNET_ATTN_UP1), "down2,up1");
    assert_string_equal(unet_attention_name(UNET_ATTN_UP1), "up1");
    assert_string_equal(unet_attention_name(UNET_ATTN_DOWN2), "down2");
    assert_string_equal(unet_attention_name(0), "none");
    Unet m;
    Rng rng;
    rng_seed(&rng, 1);
    UnetOptions o = {.attention = 4};
    assert_int_equal(spec_init(&m, UNET_TIME, 4, &o, 2, 1, &rng), -1);
    o = (UnetOptions){.residual = 2};
    assert_int_equal(spec_init(&m, UNET_TIME, 4, &o, 2, 1, &rng), -1);
}

/* Bitwise equality of two models' parameters, outputs and gradients. */
static int same_bits(Unet *a, Unet *b, const Inputs *in) {
    int ok = a->n_params == b->n_params && a->n_buffers == b->n_buffers &&
             a->n_tensors == b->n_tensors;
    for (int i = 0; ok && i < a->n_tensors; i++) ok &= strcmp(a->tensors[i].name, b->tensors[i].name) == 0;
    ok = ok && memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0;
    if (!ok) return 0;
    const float *oa = fwd(a, in, 1), *ob = fwd(b, in, 1);
    ok &= memcmp(oa, ob, sizeof(float) * N_IMG * PIX) == 0;
    unet_zero_grad(a);
    unet_zero_grad(b);
    unet_backward(a, in->r);
    unet_backward(b, in->r);
    ok &= memcmp(a->grads, b->grads, a->n_params * sizeof(float)) == 0;
    ok &= memcmp(a->buffers, b->buffers, a->n_buffers * sizeof(float)) == 0;
    return ok;
}

static void test_options_off_is_spec(void **state) {
    (void)state;
    Inputs in;
    inputs_make(&in, 3);
    for (int k = UNET_DENOISER; k <= UNET_CLASS; k++) {
        Unet spec, spec2, off, null_opt, res;
        Rng rng;
        rng_seed(&rng, 5);
        assert_int_equal(spec_init(&spec, (UnetKind)k, 4, NULL, N_IMG, 2, &rng), 0);
        rng_seed(&rng, 5);
        assert_int_equal(spec_init(&spec2, (UnetKind)k, 4, NULL, N_IMG, 2, &rng), 0);
        UnetOptions zero = {0}, r1 = {.residual = 1};
        rng_seed(&rng, 5);
        assert_int_equal(spec_init(&off, (UnetKind)k, 4, &zero, N_IMG, 2, &rng), 0);
        rng_seed(&rng, 5);
        assert_int_equal(spec_init(&null_opt, (UnetKind)k, 4, NULL, N_IMG, 2, &rng), 0);
        int ok1 = same_bits(&spec, &off, &in), ok2 = same_bits(&spec2, &null_opt, &in);
        printf("  %s: options all off / NULL = unet_init bit for bit: %s / %s\n",
               unet_kind_name((UnetKind)k), ok1 ? "yes" : "NO", ok2 ? "yes" : "NO");
        assert_true(ok1 && ok2);
        /* residual blocks: the same tensors and initial values, another function */
        rng_seed(&rng, 5);
        assert_int_equal(spec_init(&res, (UnetKind)k, 4, &r1, N_IMG, 2, &rng), 0);
        assert_int_equal(res.n_tensors, spec.n_tensors);
        assert_int_equal(res.n_params, spec.n_params);
        for (int i = 0; i < spec.n_tensors; i++)
            assert_string_equal(res.tensors[i].name, spec.tensors[i].name);
        assert_memory_equal(res.params, spec.params, spec.n_params * sizeof(float));
        const float *o1 = fwd(&spec, &in, 0);
        const float *o2 = fwd(&res, &in, 0);
        assert_memory_not_equal(o1, o2, sizeof(float) * N_IMG * PIX);
        unet_free(&spec);
        unet_free(&spec2);
        unet_free(&off);
        unet_free(&null_opt);
        unet_free(&res);
    }
}

/* Attention adds its four tensors per layer after the SPEC's, which keep their initial
 * values; the counts at the SPEC's width for the time model. */
static void test_attention_tensors(void **state) {
    (void)state;
    const int D = 64;
    Unet spec, m;
    Rng rng;
    rng_seed(&rng, 2);
    assert_int_equal(spec_init(&spec, UNET_TIME, D, NULL, 1, 1, &rng), 0);
    UnetOptions o = {.attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    rng_seed(&rng, 2);
    assert_int_equal(spec_init(&m, UNET_TIME, D, &o, 1, 1, &rng), 0);
    assert_int_equal(m.n_tensors, spec.n_tensors + 8);
    for (int i = 0; i < spec.n_tensors; i++) assert_string_equal(m.tensors[i].name, spec.tensors[i].name);
    assert_memory_equal(m.params, spec.params, spec.n_params * sizeof(float));
    const struct { const char *name; int64_t d0, d1; } want[] = {
        {"down2.attn.qkv.weight", 6 * D, 2 * D}, {"down2.attn.qkv.bias", 6 * D, 0},
        {"down2.attn.proj.weight", 2 * D, 2 * D}, {"down2.attn.proj.bias", 2 * D, 0},
        {"up1.attn.qkv.weight", 3 * D, D}, {"up1.attn.qkv.bias", 3 * D, 0},
        {"up1.attn.proj.weight", D, D}, {"up1.attn.proj.bias", D, 0}};
    for (int i = 0; i < 8; i++) {
        const UnetTensor *t = &m.tensors[spec.n_tensors + i];
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->shape[0], want[i].d0);
        if (want[i].d1) assert_int_equal(t->shape[1], want[i].d1);
        /* PyTorch's Linear default: uniform in +-1/sqrt(fan_in), fan_in = the input channels */
        float bound = 1.0f / sqrtf((float)(i < 4 ? 2 * D : D));
        assert_true(max_abs(unet_tensor_data(&m, t), t->count) <= bound);
        assert_true(max_abs(unet_tensor_data(&m, t), t->count) > 0.9 * bound);
    }
    size_t a7 = 16 * (size_t)D * D + 8 * (size_t)D, a14 = 4 * (size_t)D * D + 4 * (size_t)D;
    printf("  time model D=%d: SPEC %zu parameters, attention 7 adds %zu, 14 adds %zu (total %zu); "
           "%.4g MACs/image (SPEC %.4g)\n", D, spec.n_params, a7, a14, m.n_params,
           unet_forward_macs(&m), unet_forward_macs(&spec));
    assert_int_equal(m.n_params, spec.n_params + a7 + a14);
    unet_free(&m);
    unet_free(&spec);
}

/* ---- inference mode ------------------------------------------------------------------------ */

/* UNET_INFER computes UNET_EVAL's function: after a few training steps have moved the running
 * statistics away from (0, 1) (and with random BatchNorm affine parameters), both modes on the
 * same inputs agree to 2e-5 of the output's largest magnitude (seen: 5e-7 to 1.3e-6; F(4x4)'s
 * rounding and the folded weights' are the difference). Width 16 so that the 28x28 layers
 * run F(4x4). A fold that dropped the mean, beta or the conv bias would be off by O(1). */
static void test_infer_matches_eval(void **state) {
    (void)state;
    Inputs in;
    inputs_make(&in, 8);
    const UnetOptions opts[2] = {{0}, {.residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1}};
    for (int k = UNET_DENOISER; k <= UNET_CLASS; k++)
        for (int oi = 0; oi < 2; oi++) {
            Unet m;
            Rng rng;
            rng_seed(&rng, 12);
            assert_int_equal(spec_init(&m, (UnetKind)k, 16, &opts[oi], N_IMG, 2, &rng), 0);
            for (int i = 0; i < m.n_tensors; i++) {
                const UnetTensor *t = &m.tensors[i];
                float *d = unet_tensor_data(&m, t);
                if (strstr(t->name, ".bn.weight")) rng_fill_uniform(&rng, d, t->count, 0.5f, 1.5f);
                if (strstr(t->name, ".bn.bias")) rng_fill_uniform(&rng, d, t->count, -0.5f, 0.5f);
            }
            for (int s = 0; s < 3; s++) fwd(&m, &in, UNET_TRAIN);
            float *want = xmalloc(sizeof(float) * N_IMG * PIX);
            memcpy(want, fwd(&m, &in, UNET_EVAL), sizeof(float) * N_IMG * PIX);
            const float *got = fwd(&m, &in, UNET_INFER);
            double scale = max_abs(want, N_IMG * PIX);
            printf("  %s model, residual %d, attention %s (output scale %.3g):\n",
                   unet_kind_name((UnetKind)k), opts[oi].residual,
                   unet_attention_name(opts[oi].attention), scale);
            assert_true(scale > 0.01);
            assert_true(check_tensor("UNET_INFER vs UNET_EVAL", got, want, N_IMG * PIX, 2e-5 * scale, 0));
            xfree(want);
            unet_free(&m);
        }
}

/* ---- gradients against finite differences -------------------------------------------------- */

/* loss = sum(out * r): dloss/dout = r. */
static double loss_of(Unet *m, const Inputs *in) {
    const float *out = fwd(m, in, 1);
    double l = 0;
    for (int q = 0; q < N_IMG * PIX; q++) l += (double)out[q] * in->r[q];
    return l;
}

/* Central difference of the loss in p[i] with step h (the step as float rounding leaves it). */
static double central(Unet *m, const Inputs *in, float *p, size_t i, float h) {
    float keep = p[i], up = keep + h, down = keep - h;
    p[i] = up;
    double lp = loss_of(m, in);
    p[i] = down;
    double lm = loss_of(m, in);
    p[i] = keep;
    return (lp - lm) / ((double)up - (double)down);
}

/* For each named tensor, three elements spread over it (for qkv weights one in each of the
 * q, k and v thirds): central differences of the training-mode forward, with Richardson's
 * extrapolation from h = 2e-2 and 1e-2 (the plain h = 1e-2 difference is off by up to 3e-2
 * through curvature on the first layer, which feeds every skip; with h = 1e-2 and 5e-3 the
 * float rounding of the loss put single small gradients at the tolerance, and a change in
 * GELU's last bits pushed one past it), within 2e-2 |fd| + 2e-3 of the backward. */
static void fd_check(UnetKind kind, const UnetOptions *o, const char *const *names, int n_names) {
    const int D = 4;
    Unet m;
    Rng rng;
    rng_seed(&rng, 9);
    assert_int_equal(spec_init(&m, kind, D, o, N_IMG, 1, &rng), 0);
    Inputs in;
    inputs_make(&in, 4);
    printf("  %s model, D %d, residual %d, attention %s, %zu parameters\n", unet_kind_name(kind), D,
           o->residual, unet_attention_name(o->attention), m.n_params);
    fwd(&m, &in, 1);
    unet_zero_grad(&m);
    unet_backward(&m, in.r);
    double worst_abs = 0, worst_rel = 0;
    int ok = 1;
    for (int k = 0; k < n_names; k++) {
        const UnetTensor *tt = unet_find(&m, names[k]);
        if (!tt) fail_msg("no tensor %s", names[k]);
        float *p = unet_tensor_data(&m, tt), *g = unet_tensor_grad(&m, tt);
        for (int j = 0; j < 3; j++) {
            size_t i = ((size_t)j * tt->count / 3 + (size_t)(5 * k + 1)) % tt->count;
            double fd = (4 * central(&m, &in, p, i, 1e-2f) - central(&m, &in, p, i, 2e-2f)) / 3;
            double err = fabs(fd - g[i]);
            int good = err <= 2e-2 * fabs(fd) + 2e-3;
            printf("    %-20s [%4zu]: backward %10.6f, finite difference %10.6f %s\n", names[k], i,
                   (double)g[i], fd, good ? "" : "FAIL");
            ok &= good;
            if (err > worst_abs) worst_abs = err;
            if (fabs(fd) > 0.1 && err / fabs(fd) > worst_rel) worst_rel = err / fabs(fd);
        }
    }
    printf("    worst |backward - fd| %.3e, worst relative (|fd| > 0.1) %.3e\n", worst_abs, worst_rel);
    unet_free(&m);
    assert_true(ok);
}

/* the units inside and upstream of the skips, and the layers downstream of them */
static const char *const RES_NAMES[] = {
    "enc0.0.conv.weight", "enc0.1.bn.weight", "down1.0.conv.weight", "down1.1.conv.weight",
    "down1.2.bn.bias", "down2.1.conv.weight", "down2.2.bn.weight", "unflat.conv.weight",
    "up1.0.conv.weight", "up1.1.conv.weight", "up1.2.bn.weight", "up2.1.conv.weight",
    "up2.2.bn.bias", "dec.0.conv.weight", "out.weight"};

static void test_fd_residual(void **state) {
    (void)state;
    UnetOptions o = {.residual = 1};
    const char *names[sizeof RES_NAMES / sizeof RES_NAMES[0] + 2];
    int n = 0;
    for (size_t i = 0; i < sizeof RES_NAMES / sizeof RES_NAMES[0]; i++) names[n++] = RES_NAMES[i];
    names[n++] = "t2.fc1.weight";
    names[n++] = "c1.fc2.weight";
    fd_check(UNET_CLASS, &o, names, n);
}

static void test_fd_attention7(void **state) {
    (void)state;
    UnetOptions o = {.attention = UNET_ATTN_DOWN2};
    const char *names[] = {"down2.attn.qkv.weight", "down2.attn.qkv.bias", "down2.attn.proj.weight",
                           "down2.attn.proj.bias", "down2.2.bn.weight", "down1.1.conv.weight",
                           "enc0.0.conv.weight", "up1.0.conv.weight", "t1.fc2.weight"};
    fd_check(UNET_TIME, &o, names, (int)(sizeof names / sizeof names[0]));
}

static void test_fd_attention7_14(void **state) {
    (void)state;
    UnetOptions o = {.attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    const char *names[] = {"down2.attn.qkv.weight", "down2.attn.proj.weight", "up1.attn.qkv.weight",
                           "up1.attn.qkv.bias", "up1.attn.proj.weight", "up1.attn.proj.bias",
                           "up1.1.conv.weight", "up1.0.conv.weight", "down1.2.bn.weight",
                           "enc0.0.conv.weight", "t2.fc1.weight", "c2.fc2.bias"};
    fd_check(UNET_CLASS, &o, names, (int)(sizeof names / sizeof names[0]));
}

/* all of it together, on the denoiser (no conditioning point between attn14 and up1) */
static void test_fd_residual_attention(void **state) {
    (void)state;
    UnetOptions o = {.residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    const char *names[] = {"down2.attn.qkv.weight", "down2.attn.proj.bias", "up1.attn.qkv.weight",
                           "up1.attn.proj.weight", "up1.1.conv.weight", "up2.2.bn.weight",
                           "down2.1.conv.weight", "down1.0.conv.weight", "enc0.0.conv.weight"};
    fd_check(UNET_DENOISER, &o, names, (int)(sizeof names / sizeof names[0]));
}

/* ---- save / load ---------------------------------------------------------------------------- */

static char tmpdir[256];

static int has_meta(const char *path, const char *key, const char *want) {
    StFile f;
    assert_int_equal(safetensors_open(path, &f), 0);
    const char *v = safetensors_meta(&f, key);
    int r = want ? v && strcmp(v, want) == 0 : v != NULL;
    safetensors_close(&f);
    return r;
}

static void roundtrip(UnetKind kind, const UnetOptions *o, const char *attn_meta) {
    Unet m, back;
    Rng rng;
    rng_seed(&rng, 21);
    assert_int_equal(spec_init(&m, kind, 4, o, N_IMG, 2, &rng), 0);
    /* non-default values everywhere: perturbed weights, running statistics of two batches */
    float *noise = xmalloc(m.n_params * sizeof(float));
    rng_fill_uniform(&rng, noise, m.n_params, -0.05f, 0.05f);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += noise[i];
    xfree(noise);
    Inputs in;
    inputs_make(&in, 6);
    fwd(&m, &in, 1);
    fwd(&m, &in, 1);
    char path[400];
    snprintf(path, sizeof path, "%s/w-%s-%d-%d.safetensors", tmpdir, unet_kind_name(kind), o->residual, o->attention);
    assert_int_equal(checkpoint_save(&m, path, NULL, NULL, 0), 0);
    assert_int_equal(has_meta(path, "ddpm.residual", o->residual ? "1" : NULL), o->residual != 0);
    assert_int_equal(has_meta(path, "ddpm.attention", attn_meta), attn_meta != NULL);
    if (checkpoint_load(&back, NULL, path, &(CheckpointLoadOptions){.max_batch = N_IMG, .nthreads = 2, .use_ema = 1}) != 0) fail_msg("%s", err_msg());
    assert_int_equal(back.residual, o->residual);
    assert_int_equal(back.attention, o->attention);
    assert_int_equal(back.temb, o->temb);
    assert_int_equal(back.n_params, m.n_params);
    assert_memory_equal(back.params, m.params, m.n_params * sizeof(float));
    assert_memory_equal(back.buffers, m.buffers, m.n_buffers * sizeof(float));
    float *o1 = xmalloc(sizeof(float) * N_IMG * PIX);
    memcpy(o1, fwd(&m, &in, 0), sizeof(float) * N_IMG * PIX);
    const float *o2 = fwd(&back, &in, 0);
    int same = memcmp(o1, o2, sizeof(float) * N_IMG * PIX) == 0;
    printf("  %s, residual %d, attention %s, time embedding %d: saved, loaded, evaluation outputs %s\n",
           unet_kind_name(kind), o->residual, unet_attention_name(o->attention), o->temb,
           same ? "identical" : "DIFFERENT");
    assert_true(same);
    xfree(o1);
    unet_free(&m);
    unet_free(&back);
}

static void test_save_load(void **state) {
    (void)state;
    UnetOptions all = {.temb = 8, .residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    roundtrip(UNET_CLASS, &all, "down2,up1");
    UnetOptions a14 = {.attention = UNET_ATTN_UP1};
    roundtrip(UNET_TIME, &a14, "up1");
    UnetOptions res = {.residual = 1};
    roundtrip(UNET_DENOISER, &res, NULL);
    UnetOptions a7 = {.attention = UNET_ATTN_DOWN2};
    roundtrip(UNET_TIME, &a7, "down2");
    /* the SPEC's model: no option keys in its file */
    UnetOptions none = {0};
    roundtrip(UNET_TIME, &none, NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/w-time-0-0.safetensors", tmpdir);
    assert_false(has_meta(path, "ddpm.residual", NULL));
    assert_false(has_meta(path, "ddpm.attention", NULL));
    assert_false(has_meta(path, "ddpm.time_embedding", NULL));
}

/* The run configuration: the options go in only when set and come back. */
static void test_config_json(void **state) {
    (void)state;
    TrainConfig c, back;
    train_config_defaults(&c, UNET_TIME);
    cJSON *j = train_config_to_json(&c, NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "residual"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "attention"));
    cJSON_Delete(j);
    c.residual = 1;
    c.attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1;
    j = train_config_to_json(&c, NULL);
    char *text = cJSON_PrintUnformatted(j);
    printf("  %s\n", text);
    char data[256];
    assert_int_equal(train_config_from_json(text, "test", &back, data, sizeof data), 0);
    assert_int_equal(back.residual, 1);
    assert_int_equal(back.attention, UNET_ATTN_DOWN2 | UNET_ATTN_UP1);
    free(text);
    cJSON_Delete(j);
    const char *bad[] = {"{\"model\":\"time\",\"width\":4,\"batch\":2,\"epochs\":1,\"lr\":0.1,\"lr_end\":0.1,"
                         "\"seed\":1,\"threads\":1,\"subset\":0,\"T\":10,\"beta_start\":0.1,\"beta_end\":0.2,"
                         "\"attention\":\"5\"}",
                         "{\"model\":\"time\",\"width\":4,\"batch\":2,\"epochs\":1,\"lr\":0.1,\"lr_end\":0.1,"
                         "\"seed\":1,\"threads\":1,\"subset\":0,\"T\":10,\"beta_start\":0.1,\"beta_end\":0.2,"
                         "\"residual\":1}"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(train_config_from_json(bad[i], "test", &back, data, sizeof data), -1);
        printf("  %s\n", err_msg());
    }
}

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "unet-options");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

int main(void) {
    ops_cpu_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_options_off_is_spec),
        cmocka_unit_test(test_attention_tensors),
        cmocka_unit_test(test_fd_residual),
        cmocka_unit_test(test_fd_attention7),
        cmocka_unit_test(test_fd_attention7_14),
        cmocka_unit_test(test_fd_residual_attention),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_infer_matches_eval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
