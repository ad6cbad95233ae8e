/* Image geometries (data/geometry.h) and the UNet built from them:
 *  - the built-in geometries, the check's errors, the JSON round trip;
 *  - a class UNet at 32x32x3 with 7 classes and a time UNet at 16x16x1: every layer's shape
 *    follows from the geometry, whole-model parameter gradients against central finite
 *    differences (as test_unet_options.c), a forward in each mode, the inference mode against
 *    the evaluation mode at a width where the fast convolutions run;
 *  - the fast convolution paths (Winograd F(2x2), F(4x4), sub-pixel UpConv) against im2col at
 *    the sides such geometries give (32, 16, 8, and 22 / 11, which are not multiples of 4);
 *  - checkpoints: the geometry saved and read back, files without it load as MNIST, and files
 *    with the attention layers' old names (attn7.*, attn14.*, "7,14") still load. */
#include "testutil.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "app/files.h"
#include "core/common.h"
#include "data/geometry.h"
#include "diffusion/sampler.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/unet.h"
#include "ops/cpu.h"
#include "ops/backend.h"
#include "backend/cpu/winograd.h"

#define N_IMG 3

static char tmpdir[256];

/* ---- the geometry type ------------------------------------------------------------------- */

static void test_geometry_builtin(void **state) {
    (void)state;
    ImageGeom g = geometry_mnist(), f = geometry_fashion();
    assert_int_equal(g.channels, 1);
    assert_int_equal(g.height, 28);
    assert_int_equal(g.width, 28);
    assert_int_equal(g.classes, 10);
    assert_int_equal(geometry_pixels(&g), 784);
    assert_string_equal(g.class_names[0], "0");
    assert_string_equal(g.class_names[9], "9");
    assert_string_equal(f.class_names[0], "T-shirt");
    assert_string_equal(f.class_names[9], "Boot");
    assert_int_equal(geometry_check(&g), 0);
    assert_int_equal(geometry_check(&f), 0);
    assert_false(geometry_equal(&g, &f));
    ImageGeom copy = f; /* a plain value */
    assert_true(geometry_equal(&copy, &f));
}

static void test_geometry_check(void **state) {
    (void)state;
    struct { const char *what, *needle; int c, h, w, k; } bad[] = {
        {"no channels", "0 channels", 0, 28, 28, 10},
        {"five channels", "5 channels", 5, 28, 28, 10},
        {"not square", "not square", 1, 28, 32, 10},
        {"side 30", "side 30 is not a multiple of 4", 1, 30, 30, 10},
        {"side 4", "side 4", 1, 4, 4, 10},
        {"side 2048", "side 2048", 1, 2048, 2048, 10},
        {"negative classes", "-1 classes", 1, 28, 28, -1},
        {"too many classes", "65 classes", 1, 28, 28, GEOMETRY_MAX_CLASSES + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ImageGeom g = geometry_mnist();
        g.channels = bad[i].c;
        g.height = bad[i].h;
        g.width = bad[i].w;
        g.classes = bad[i].k;
        if (g.classes > 10)
            for (int j = 10; j < GEOMETRY_MAX_CLASSES; j++) snprintf(g.class_names[j], GEOMETRY_NAME_LEN, "c%d", j);
        assert_int_equal(geometry_check(&g), -1);
        printf("  %-17s: %s\n", bad[i].what, err_msg());
        assert_non_null(strstr(err_msg(), bad[i].needle));
    }
    ImageGeom g = geometry_mnist();
    g.class_names[3][0] = '\0';
    assert_int_equal(geometry_check(&g), -1);
    printf("  %-17s: %s\n", "unnamed class", err_msg());
    assert_non_null(strstr(err_msg(), "class 3 has no name"));
    g = geometry_mnist();
    g.classes = 0; /* unlabelled images: fine for the denoiser and the time model */
    assert_int_equal(geometry_check(&g), 0);
    g.channels = 4;
    g.height = g.width = 8;
    assert_int_equal(geometry_check(&g), 0);
}

static void test_geometry_json(void **state) {
    (void)state;
    ImageGeom g = geometry_fashion(), back;
    g.channels = 3;
    g.height = g.width = 32;
    g.classes = 7;
    cJSON *j = geometry_to_json(&g);
    char *text = cJSON_PrintUnformatted(j);
    printf("  %s\n", text);
    assert_int_equal(geometry_from_json(&back, j), 0);
    assert_true(geometry_equal(&back, &g));
    cJSON_free(text);
    /* without class names the classes are numbered */
    cJSON_DeleteItemFromObject(j, "class_names");
    assert_int_equal(geometry_from_json(&back, j), 0);
    assert_string_equal(back.class_names[6], "6");
    cJSON_Delete(j);
    const char *bad[] = {"[]", "{\"channels\":1,\"height\":28,\"width\":28}",
                         "{\"channels\":1,\"height\":28,\"width\":28,\"classes\":2.5}",
                         "{\"channels\":1,\"height\":30,\"width\":30,\"classes\":2}",
                         "{\"channels\":1,\"height\":28,\"width\":28,\"classes\":2,\"class_names\":[\"a\"]}",
                         "{\"channels\":1,\"height\":28,\"width\":28,\"classes\":1,\"class_names\":[7]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *b = cJSON_Parse(bad[i]);
        assert_int_equal(geometry_from_json(&back, b), -1);
        printf("  %s: %s\n", bad[i], err_msg());
        cJSON_Delete(b);
    }
}

/* ---- UNets at other geometries ------------------------------------------------------------- */

static ImageGeom geom_of(int c, int h, int classes) {
    ImageGeom g = geometry_mnist();
    g.channels = c;
    g.height = g.width = h;
    g.classes = classes;
    return g;
}

typedef struct {
    size_t pix; /* values per batch: N C H H */
    float *x, *r, tn[N_IMG], *oh;
} Inputs;

static void inputs_make(Inputs *in, const ImageGeom *g, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    in->pix = N_IMG * geometry_pixels(g);
    in->x = xmalloc(in->pix * sizeof(float));
    in->r = xmalloc(in->pix * sizeof(float));
    rng_fill_normal(&rng, in->x, in->pix);
    rng_fill_normal(&rng, in->r, in->pix);
    in->tn[0] = 0.1f;
    in->tn[1] = 0.5f;
    in->tn[2] = 0.93f;
    size_t k = g->classes ? (size_t)g->classes : 1;
    in->oh = xcalloc(N_IMG * k, sizeof(float));
    in->oh[k - 1] = in->oh[k] = 1; /* the last class and the first, the third row unconditional */
}

static void inputs_free(Inputs *in) {
    xfree(in->x);
    xfree(in->r);
    xfree(in->oh);
}

static const float *fwd(Unet *m, const Inputs *in, int train) {
    return unet_forward(m, in->x, m->kind != UNET_DENOISER ? in->tn : NULL,
                        m->kind == UNET_CLASS ? in->oh : NULL, N_IMG, train);
}

static int build(Unet *m, UnetKind kind, int width, const ImageGeom *g, const UnetOptions *o,
                 uint64_t seed) {
    UnetConfig c = {.kind = kind, .width = width, .geom = *g};
    if (o) c.opt = *o;
    Rng rng;
    rng_seed(&rng, seed);
    return unet_init(m, &c, N_IMG, 2, &rng);
}

/* The shapes a 32x32x3, 7-class model derives. */
static void test_shapes(void **state) {
    (void)state;
    ImageGeom g = geom_of(3, 32, 7);
    Unet m;
    UnetOptions o = {.attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    assert_int_equal(build(&m, UNET_CLASS, 4, &g, &o, 1), 0);
    const struct { const char *name; int64_t d0, d1, d2; } want[] = {
        {"enc0.0.conv.weight", 4, 3, 3}, {"unflat.conv.weight", 8, 8, 8},
        {"out.weight", 3, 4, 3}, {"out.bias", 3, 0, 0}, {"c1.fc1.weight", 8, 7, 0},
        {"c2.fc1.weight", 4, 7, 0}, {"down2.attn.qkv.weight", 24, 8, 0},
        {"up1.attn.proj.weight", 4, 4, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const UnetTensor *t = unet_find(&m, want[i].name);
        assert_non_null(t);
        assert_int_equal(t->shape[0], want[i].d0);
        if (want[i].d1) assert_int_equal(t->shape[1], want[i].d1);
        if (want[i].d2) assert_int_equal(t->shape[2], want[i].d2);
    }
    assert_int_equal(m.units[0].hin, 32);
    assert_int_equal(m.units[2].hout, 16);
    assert_int_equal(m.units[5].hout, 8);
    assert_int_equal(m.attn[0].hw, 64);
    assert_int_equal(m.attn[1].hw, 256);
    unet_free(&m);
    /* the class model needs classes; other geometries' errors come from the check */
    g.classes = 0;
    assert_int_equal(build(&m, UNET_CLASS, 4, &g, NULL, 1), -1);
    printf("  %s\n", err_msg());
    assert_int_equal(build(&m, UNET_TIME, 4, &g, NULL, 1), 0);
    unet_free(&m);
    g.height = 30;
    assert_int_equal(build(&m, UNET_TIME, 4, &g, NULL, 1), -1);
    printf("  %s\n", err_msg());
}

/* loss = sum(out * r): dloss/dout = r. */
static double loss_of(Unet *m, const Inputs *in) {
    const float *out = fwd(m, in, 1);
    double l = 0;
    for (size_t q = 0; q < in->pix; q++) l += (double)out[q] * in->r[q];
    return l;
}

static double central(Unet *m, const Inputs *in, float *p, size_t i, float h) {
    float keep = p[i], up = keep + h, down = keep - h;
    p[i] = up;
    double lp = loss_of(m, in);
    p[i] = down;
    double lm = loss_of(m, in);
    p[i] = keep;
    return (lp - lm) / ((double)up - (double)down);
}

/* test_unet_options.c's check: three elements of each named tensor, central differences of
 * the training-mode forward with Richardson's extrapolation from h = 2e-2 and 1e-2, within
 * 2e-2 |fd| + 2e-3 of the backward. */
static void fd_check(UnetKind kind, const ImageGeom *g, const UnetOptions *o,
                     const char *const *names, int n_names) {
    Unet m;
    assert_int_equal(build(&m, kind, 4, g, o, 9), 0);
    Inputs in;
    inputs_make(&in, g, 4);
    printf("  %s model %dx%dx%d, %d classes, residual %d, attention %s, %zu parameters\n",
           unet_kind_name(kind), g->channels, g->height, g->width, g->classes, o->residual,
           unet_attention_name(o->attention), m.n_params);
    fwd(&m, &in, 1);
    unet_zero_grad(&m);
    unet_backward(&m, in.r);
    int ok = 1;
    double worst = 0;
    for (int k = 0; k < n_names; k++) {
        const UnetTensor *tt = unet_find(&m, names[k]);
        if (!tt) fail_msg("no tensor %s", names[k]);
        float *p = unet_tensor_data(&m, tt), *gr = unet_tensor_grad(&m, tt);
        for (int j = 0; j < 3; j++) {
            size_t i = ((size_t)j * tt->count / 3 + (size_t)(5 * k + 1)) % tt->count;
            double fd = (4 * central(&m, &in, p, i, 1e-2f) - central(&m, &in, p, i, 2e-2f)) / 3;
            double err = fabs(fd - gr[i]);
            int good = err <= 2e-2 * fabs(fd) + 2e-3;
            printf("    %-22s [%4zu]: backward %10.6f, finite difference %10.6f %s\n", names[k], i,
                   (double)gr[i], fd, good ? "" : "FAIL");
            ok &= good;
            if (err > worst) worst = err;
        }
    }
    printf("    worst |backward - fd| %.3e\n", worst);
    inputs_free(&in);
    unet_free(&m);
    assert_true(ok);
}

static void test_fd_class_32x32x3(void **state) {
    (void)state;
    ImageGeom g = geom_of(3, 32, 7);
    UnetOptions o = {.residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    const char *names[] = {"enc0.0.conv.weight", "down1.0.conv.weight", "down2.2.bn.weight",
                           "unflat.conv.weight", "up1.0.conv.weight", "up2.0.conv.bias",
                           "dec.1.conv.weight", "out.weight", "out.bias", "t1.fc1.weight",
                           "c1.fc1.weight", "c2.fc2.weight", "down2.attn.qkv.weight",
                           "up1.attn.proj.weight"};
    fd_check(UNET_CLASS, &g, &o, names, (int)(sizeof names / sizeof names[0]));
}

static void test_fd_time_16x16x1(void **state) {
    (void)state;
    ImageGeom g = geom_of(1, 16, 0);
    UnetOptions o = {0};
    const char *names[] = {"enc0.0.conv.weight", "enc0.1.bn.bias", "down1.0.conv.weight",
                           "down2.0.conv.weight", "down2.1.bn.weight", "unflat.conv.weight",
                           "up1.0.conv.weight", "up1.2.conv.weight", "up2.0.conv.weight",
                           "dec.0.conv.weight", "out.weight", "t1.fc1.weight", "t2.fc2.bias"};
    fd_check(UNET_TIME, &g, &o, names, (int)(sizeof names / sizeof names[0]));
}

/* The samplers follow the model's geometry: a 32x32x3 class model with 7 classes (guided
 * DDIM, the last class requested) and a 16x16x1 time model (DDPM) draw finite images of
 * their own size, and the draw is the same twice from the same seed. */
static void test_sampler_geometry(void **state) {
    (void)state;
    const struct { UnetKind kind; int c, h, k; SamplerKind s; } cases[] = {
        {UNET_CLASS, 3, 32, 7, SAMPLER_DDIM}, {UNET_TIME, 1, 16, 0, SAMPLER_DDPM}};
    for (size_t ci = 0; ci < 2; ci++) {
        ImageGeom g = geom_of(cases[ci].c, cases[ci].h, cases[ci].k);
        Unet m;
        if (build(&m, cases[ci].kind, 8, &g, NULL, 4) != 0) fail_msg("%s", err_msg());
        Schedule s;
        assert_int_equal(schedule_init(&s, 10, 1e-4f, 0.02f), 0);
        int labels[N_IMG] = {0, 6, 3};
        SampleRequest req = {.n = N_IMG, .labels = labels, .guidance = 2};
        const int ddim = cases[ci].s == SAMPLER_DDIM;
        SamplerChoice sc = {.kind = cases[ci].s, .steps = ddim ? 5 : 0, .eta = ddim ? 1.0f : 0.0f};
        if (sampler_choose(&req, &s, &sc) != 0) fail_msg("%s", err_msg());
        const size_t P = geometry_pixels(&g);
        float *a = xmalloc(N_IMG * P * sizeof(float)), *b = xmalloc(N_IMG * P * sizeof(float));
        for (int rep = 0; rep < 2; rep++) {
            Rng r;
            rng_seed(&r, 9);
            sampler_draw(&m, &s, &r, &req, rep ? b : a);
        }
        for (size_t i = 0; i < N_IMG * P; i++) assert_true(isfinite(a[i]));
        assert_memory_equal(a, b, N_IMG * P * sizeof(float));
        printf("  %dx%dx%d, %d classes: %d samples of %zu floats\n", g.channels, g.height,
               g.width, g.classes, N_IMG, P);
        xfree(a);
        xfree(b);
        schedule_free(&s);
        unet_free(&m);
    }
}

/* A forward in each mode at both geometries, at D 16 (the fast convolutions run); the
 * inference mode (BatchNorm folded) agrees with the evaluation mode to 2e-5 of the output's
 * scale, as in test_unet_options.c. */
static void test_modes(void **state) {
    (void)state;
    const struct { UnetKind kind; int c, h, k; } cases[] = {{UNET_CLASS, 3, 32, 7}, {UNET_TIME, 1, 16, 0},
                                                            {UNET_DENOISER, 2, 12, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ImageGeom g = geom_of(cases[ci].c, cases[ci].h, cases[ci].k);
        Unet m;
        UnetOptions o = {.residual = 1, .attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
        assert_int_equal(build(&m, cases[ci].kind, 16, &g, &o, 12), 0);
        Rng rng;
        rng_seed(&rng, 3);
        for (int i = 0; i < m.n_tensors; i++) {
            const UnetTensor *t = &m.tensors[i];
            float *d = unet_tensor_data(&m, t);
            if (strstr(t->name, ".bn.weight")) rng_fill_uniform(&rng, d, t->count, 0.5f, 1.5f);
            if (strstr(t->name, ".bn.bias")) rng_fill_uniform(&rng, d, t->count, -0.5f, 0.5f);
        }
        Inputs in;
        inputs_make(&in, &g, 8);
        for (int s = 0; s < 3; s++) fwd(&m, &in, UNET_TRAIN);
        const float *tr = fwd(&m, &in, UNET_TRAIN);
        int finite = 1;
        for (size_t q = 0; q < in.pix; q++) finite &= isfinite(tr[q]) != 0;
        assert_true(finite);
        float *want = xmalloc(in.pix * sizeof(float));
        memcpy(want, fwd(&m, &in, UNET_EVAL), in.pix * sizeof(float));
        const float *got = fwd(&m, &in, UNET_INFER);
        double scale = max_abs(want, in.pix);
        printf("  %s model %dx%dx%d (output scale %.3g):\n", unet_kind_name(cases[ci].kind), g.channels,
               g.height, g.width, scale);
        assert_true(scale > 0.01);
        assert_true(check_tensor("UNET_INFER vs UNET_EVAL", got, want, in.pix, 2e-5 * scale, 0));
        xfree(want);
        inputs_free(&in);
        unet_free(&m);
    }
}

/* ---- the fast convolutions at other sides ---------------------------------------------------- */

static void fill(Rng *rng, float *p, size_t n) { rng_fill_uniform(rng, p, n, -1.0f, 1.0f); }

/* conv2d (3x3, stride 1, pad 1) at side h and conv_transpose2d (4x4, stride 2, pad 1) from
 * side h: what the automatic choice runs (Winograd where it applies) against im2col, forward
 * and backward, 16 > 16 channels on 2 images. */
static void check_sides(int h) {
    const int n = 2, c = 16;
    Rng rng;
    rng_seed(&rng, (uint64_t)h);
    for (int tr = 0; tr < 2; tr++) {
        ConvShape s = tr ? conv_transpose_shape(n, c, c, h, h, 4, 2, 1) : conv_shape(n, c, c, h, h, 3, 1, 1);
        size_t nx = (size_t)n * c * h * h, ny = (size_t)n * c * s.ho * s.wo, nw = (size_t)c * c * s.k * s.k;
        float *x = xmalloc(nx * sizeof(float)), *w = xmalloc(nw * sizeof(float)), *b = xmalloc(c * sizeof(float));
        float *dy = xmalloc(ny * sizeof(float)), *y[2], *dx[2], *dw[2];
        fill(&rng, x, nx);
        fill(&rng, w, nw);
        fill(&rng, b, (size_t)c);
        fill(&rng, dy, ny);
        OpsCtx ctx = {.nthreads = 2, .be = backend_find("cpu")};
        ctx.ws_floats = tr ? conv_transpose2d_workspace_floats(&s, 2) : conv2d_workspace_floats(&s, 2);
        ctx.ws = xcalloc(ctx.ws_floats + 1, sizeof(float));
        const ConvAlgo algo[2] = {CONV_ALGO_AUTO, CONV_ALGO_IM2COL};
        for (int a = 0; a < 2; a++) {
            y[a] = xcalloc(ny, sizeof(float));
            dx[a] = xcalloc(nx, sizeof(float));
            dw[a] = xcalloc(nw, sizeof(float));
            if (tr) {
                conv_transpose2d_forward_algo(&ctx, algo[a], y[a], x, w, b, &s);
                conv_transpose2d_backward_algo(&ctx, algo[a], dx[a], dw[a], NULL, dy, x, w, &s);
            } else {
                conv2d_forward_algo(&ctx, algo[a], y[a], x, w, b, &s);
                conv2d_backward_algo(&ctx, algo[a], dx[a], dw[a], NULL, dy, x, w, &s);
            }
        }
        const char *path = tr ? (conv_transpose2d_uses_winograd(&s) ? "sub-pixel Winograd" : "col2im")
                              : (conv2d_algo(&s) == CONV_ALGO_WINOGRAD4 ? "Winograd F(4x4)"
                                 : conv2d_algo(&s) == CONV_ALGO_WINOGRAD ? "Winograd F(2x2)" : "im2col");
        printf("  %s %dx%d (%s) against im2col:\n", tr ? "UpConv from" : "conv 3x3 at", h, h, path);
        assert_true(check_tensor("forward", y[0], y[1], ny, 1e-4 * max_abs(y[1], ny), 0));
        assert_true(check_tensor("dx", dx[0], dx[1], nx, 1e-4 * max_abs(dx[1], nx), 0));
        assert_true(check_tensor("dw", dw[0], dw[1], nw, 1e-4 * max_abs(dw[1], nw), 0));
        for (int a = 0; a < 2; a++) {
            xfree(y[a]);
            xfree(dx[a]);
            xfree(dw[a]);
        }
        xfree(x);
        xfree(w);
        xfree(b);
        xfree(dy);
        xfree(ctx.ws);
    }
}

static void test_fast_convs_other_sides(void **state) {
    (void)state;
    const int sides[] = {32, 16, 8, 4, 22, 11, 12, 6};
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) check_sides(sides[i]);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

static void test_checkpoint_geometry(void **state) {
    (void)state;
    ImageGeom g = geom_of(3, 32, 7);
    snprintf(g.class_names[6], GEOMETRY_NAME_LEN, "boat");
    Unet m, back;
    assert_int_equal(build(&m, UNET_CLASS, 4, &g, NULL, 5), 0);
    char path[400];
    snprintf(path, sizeof path, "%s/g.safetensors", tmpdir);
    assert_int_equal(checkpoint_save(&m, path, NULL, NULL, 0), 0);
    int used = 1;
    /* refused by the jobs, which handle only MNIST's images */
    assert_int_equal(app_load_model(&back, &used, path, N_IMG, 1, 1, NULL), -1);
    printf("  %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "3x32x32 images with 7 classes"));
    if (checkpoint_load(&back, &used, path, &(CheckpointLoadOptions){.max_batch = N_IMG, .nthreads = 1, .use_ema = 1}) != 0) fail_msg("%s", err_msg());
    assert_int_equal(used, 0);
    assert_true(geometry_equal(&back.geom, &g));
    assert_string_equal(back.geom.class_names[6], "boat");
    assert_int_equal(back.n_params, m.n_params);
    assert_memory_equal(back.params, m.params, m.n_params * sizeof(float));
    unet_free(&back);
    unet_free(&m);
}

/* A file as ddpm wrote it before geometries and place names: no ddpm.geometry, attention
 * tensors attn7.* / attn14.* (and their ema. copies), ddpm.attention "7,14". */
static void write_old_file(const Unet *m, const char *path, const float *ema) {
    int nt = 2 * m->n_tensors;
    StTensor *ts = xcalloc((size_t)nt, sizeof(StTensor));
    char (*names)[80] = xcalloc((size_t)nt, sizeof *names);
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        for (int e = 0; e < 2; e++) {
            StTensor *s = &ts[e * m->n_tensors + i];
            char *nm = names[e * m->n_tensors + i];
            char now[80];
            snprintf(now, sizeof now, "%s%s", e ? "ema." : "", t->name);
            if (unet_tensor_legacy_name(now, nm, 80) != 0) snprintf(nm, 80, "%s", now);
            s->name = nm;
            s->dtype = ST_F32;
            s->ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) s->shape[d] = t->shape[d];
            s->data = e ? (float *)ema + (t->is_buffer ? m->n_params : 0) + t->offset : unet_tensor_data(m, t);
        }
    }
    const char *keys[] = {"ddpm.kind", "ddpm.width", "ddpm.attention"};
    const char *vals[] = {"class", "4", "7,14"};
    assert_int_equal(safetensors_write(path, ts, nt, keys, vals, 3), 0);
    xfree(ts);
    xfree(names);
}

static void test_old_attention_names(void **state) {
    (void)state;
    char buf[80];
    assert_int_equal(unet_tensor_legacy_name("down2.attn.qkv.weight", buf, sizeof buf), 0);
    assert_string_equal(buf, "attn7.qkv.weight");
    assert_int_equal(unet_tensor_legacy_name("ema.up1.attn.proj.bias", buf, sizeof buf), 0);
    assert_string_equal(buf, "ema.attn14.proj.bias");
    assert_int_equal(unet_tensor_legacy_name("adam.m.down2.attn.qkv.bias", buf, sizeof buf), 0);
    assert_string_equal(buf, "adam.m.attn7.qkv.bias");
    assert_int_equal(unet_tensor_legacy_name("down2.1.conv.weight", buf, sizeof buf), -1);
    assert_int_equal(unet_tensor_legacy_name("xdown2.attn.qkv.bias", buf, sizeof buf), -1);

    ImageGeom g = geometry_mnist();
    UnetOptions o = {.attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1};
    Unet m, back;
    assert_int_equal(build(&m, UNET_CLASS, 4, &g, &o, 7), 0);
    float *ema = xmalloc((m.n_params + m.n_buffers) * sizeof(float));
    Rng rng;
    rng_seed(&rng, 1);
    rng_fill_uniform(&rng, ema, m.n_params + m.n_buffers, 0.5f, 1.0f);
    char path[400];
    snprintf(path, sizeof path, "%s/old.safetensors", tmpdir);
    write_old_file(&m, path, ema);
    for (int use_ema = 0; use_ema < 2; use_ema++) {
        int used = -1;
        if (checkpoint_load(&back, &used, path, &(CheckpointLoadOptions){.max_batch = N_IMG, .nthreads = 1, .use_ema = use_ema}) != 0)
            fail_msg("%s", err_msg());
        printf("  old names, %s weights: loaded as %s, %dx%dx%d, %d classes\n", use_ema ? "ema" : "plain",
               unet_attention_name(back.attention), back.geom.channels, back.geom.height,
               back.geom.width, back.geom.classes);
        assert_int_equal(used, use_ema);
        assert_int_equal(back.attention, UNET_ATTN_DOWN2 | UNET_ATTN_UP1);
        assert_true(geometry_equal(&back.geom, &g));
        assert_memory_equal(back.params, use_ema ? ema : m.params, m.n_params * sizeof(float));
        assert_memory_equal(back.buffers, use_ema ? ema + m.n_params : m.buffers, m.n_buffers * sizeof(float));
        unet_free(&back);
    }
    xfree(ema);
    unet_free(&m);
}

/* Weights shipped before the geometry was stored: MNIST's geometry. */
static void test_shared_model_loads(void **state) {
    (void)state;
    const char *paths[] = {"../shared/models/class-d64-e20-pytorch-reference.safetensors",
                           "/work/shared/models/class-d64-e20-pytorch-reference.safetensors"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) continue;
        fclose(f);
        Unet m;
        if (checkpoint_load(&m, NULL, paths[i], &(CheckpointLoadOptions){.max_batch = 1, .nthreads = 1, .use_ema = 1}) != 0) fail_msg("%s", err_msg());
        ImageGeom g = geometry_mnist();
        printf("  %s: %s D=%d, %zu parameters, MNIST geometry\n", paths[i], unet_kind_name(m.kind), m.width, m.n_params);
        assert_true(geometry_equal(&m.geom, &g));
        unet_free(&m);
        return;
    }
    printf("  no shared model file here: skipped\n");
}

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "geometry");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

int main(void) {
    ops_cpu_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_builtin),
        cmocka_unit_test(test_geometry_check),
        cmocka_unit_test(test_geometry_json),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_fd_class_32x32x3),
        cmocka_unit_test(test_fd_time_16x16x1),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_sampler_geometry),
        cmocka_unit_test(test_fast_convs_other_sides),
        cmocka_unit_test(test_checkpoint_geometry),
        cmocka_unit_test(test_old_attention_names),
        cmocka_unit_test(test_shared_model_loads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
