/* The judge classifier: parameter table, PyTorch default initialisation, forward and backward
 * written out layer by layer (as llm.c), and safetensors save/load. Shapes in classifier.h. */
#include "model/classifier.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "io/safetensors.h"

#define P 784
#define C1 32
#define C3 64
#define FLAT (C3 * 7 * 7) /* 3136 fc1 inputs */

/* name, ndim, shape, in PyTorch order (the weight of each layer before its bias) */
static const struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} TABLE[CLS_NUM_TENSORS] = {
    {"conv1.weight", 4, {C1, 1, 3, 3}}, {"conv1.bias", 1, {C1}},
    {"conv2.weight", 4, {C1, C1, 3, 3}}, {"conv2.bias", 1, {C1}},
    {"conv3.weight", 4, {C3, C1, 3, 3}}, {"conv3.bias", 1, {C3}},
    {"fc1.weight", 2, {CLS_FEATURES, FLAT}}, {"fc1.bias", 1, {CLS_FEATURES}},
    {"fc2.weight", 2, {CLS_CLASSES, CLS_FEATURES}}, {"fc2.bias", 1, {CLS_CLASSES}},
};

static ConvShape shape_conv1(int n) { return conv_shape(n, 1, C1, 28, 28, 3, 1, 1); }
static ConvShape shape_conv2(int n) { return conv_shape(n, C1, C1, 28, 28, 3, 1, 1); }
static ConvShape shape_conv3(int n) { return conv_shape(n, C1, C3, 14, 14, 3, 1, 1); }

void classifier_init(Classifier *m, int max_batch, int nthreads, Rng *rng) {
    DDPM_CHECK(max_batch >= 1 && nthreads >= 1);
    memset(m, 0, sizeof *m);
    m->max_batch = max_batch;
    m->nthreads = nthreads;
    size_t off = 0;
    for (int i = 0; i < CLS_NUM_TENSORS; i++) {
        ClsTensor *t = &m->tensors[i];
        t->name = TABLE[i].name;
        t->ndim = TABLE[i].ndim;
        t->count = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->shape[d] = TABLE[i].shape[d];
            t->count *= (size_t)t->shape[d];
        }
        t->offset = off;
        off += t->count;
    }
    m->n_params = off;
    m->params = xcalloc(off, sizeof(float));
    m->grads = xcalloc(off, sizeof(float));
    float **pv[CLS_NUM_TENSORS] = {&m->w1, &m->b1, &m->w2, &m->b2, &m->w3,
                                   &m->b3, &m->fw1, &m->fb1, &m->fw2, &m->fb2};
    float **gv[CLS_NUM_TENSORS] = {&m->dw1, &m->db1, &m->dw2, &m->db2, &m->dw3,
                                   &m->db3, &m->dfw1, &m->dfb1, &m->dfw2, &m->dfb2};
    /* PyTorch's defaults: weight and bias uniform in +-1/sqrt(fan_in), fan_in = size(1) K K */
    float bound = 0.0f;
    for (int i = 0; i < CLS_NUM_TENSORS; i++) {
        ClsTensor *t = &m->tensors[i];
        *pv[i] = m->params + t->offset;
        *gv[i] = m->grads + t->offset;
        if (t->ndim > 1) {
            int64_t fan_in = t->shape[1];
            for (int d = 2; d < t->ndim; d++) fan_in *= t->shape[d];
            bound = 1.0f / sqrtf((float)fan_in);
        }
        rng_fill_uniform(rng, *pv[i], t->count, -bound, bound);
    }

    /* activations: one arena, sizes per image */
    const size_t N = (size_t)max_batch, big = (size_t)C1 * P;
    const size_t sizes[] = {P, big, big, big, big, big / 4, (size_t)C3 * 196, (size_t)C3 * 196,
                            FLAT, CLS_FEATURES, CLS_FEATURES, CLS_CLASSES, CLS_CLASSES,
                            big, big, CLS_CLASSES, CLS_FEATURES, CLS_FEATURES};
    float **dst[] = {&m->x, &m->a1, &m->r1, &m->a2, &m->r2, &m->p2, &m->a3, &m->r3,
                     &m->p3, &m->h, &m->feat, &m->logits, &m->probs,
                     &m->g1, &m->g2, &m->gl, &m->gf, &m->gh};
    const int nbuf = (int)(sizeof sizes / sizeof sizes[0]);
    size_t total = 0;
    for (int i = 0; i < nbuf; i++) total += (N * sizes[i] + 15) / 16 * 16;
    float *A = xcalloc(total, sizeof(float));
    m->arena = A;
    for (int i = 0; i < nbuf; i++) {
        *dst[i] = A;
        A += (N * sizes[i] + 15) / 16 * 16;
    }

    size_t ws = 0;
    ConvShape cs[3] = {shape_conv1(max_batch), shape_conv2(max_batch), shape_conv3(max_batch)};
    for (int i = 0; i < 3; i++) {
        size_t w = conv2d_workspace_floats(&cs[i], nthreads);
        if (w > ws) ws = w;
    }
    ops_ctx_init(&m->ctx, NULL, nthreads); /* the default backend: cannot fail */
    m->ctx.ws_floats = ws;
    m->ctx.ws = xcalloc(ws ? ws : 1, sizeof(float));
}

void classifier_free(Classifier *m) {
    xfree(m->params);
    xfree(m->grads);
    xfree(m->arena);
    xfree(m->ctx.ws);
    memset(m, 0, sizeof *m);
}

const float *classifier_forward(Classifier *m, const float *x, int n) {
    DDPM_CHECK(n >= 1 && n <= m->max_batch);
    const OpsCtx *c = &m->ctx;
    const int64_t N = n;
    m->last_n = n;
    memcpy(m->x, x, (size_t)n * P * sizeof(float));
    ConvShape s1 = shape_conv1(n), s2 = shape_conv2(n), s3 = shape_conv3(n);
    conv2d_forward(c, m->a1, m->x, m->w1, m->b1, &s1);
    relu_forward(c, m->r1, m->a1, N * C1 * P);
    conv2d_forward(c, m->a2, m->r1, m->w2, m->b2, &s2);
    relu_forward(c, m->r2, m->a2, N * C1 * P);
    maxpool2x2_forward(c, m->p2, m->r2, n * C1, 28, 28);
    conv2d_forward(c, m->a3, m->p2, m->w3, m->b3, &s3);
    relu_forward(c, m->r3, m->a3, N * C3 * 196);
    maxpool2x2_forward(c, m->p3, m->r3, n * C3, 14, 14);
    linear_forward(c, m->h, m->p3, m->fw1, m->fb1, n, FLAT, CLS_FEATURES);
    relu_forward(c, m->feat, m->h, N * CLS_FEATURES);
    linear_forward(c, m->logits, m->feat, m->fw2, m->fb2, n, CLS_FEATURES, CLS_CLASSES);
    return m->logits;
}

float classifier_loss(Classifier *m, const int *labels) {
    return softmax_xent_forward(&m->ctx, m->probs, m->logits, labels, m->last_n, CLS_CLASSES);
}

static void zero(float *p, size_t count) { memset(p, 0, count * sizeof(float)); }

void classifier_backward(Classifier *m, const int *labels) {
    const OpsCtx *c = &m->ctx;
    const int n = m->last_n;
    const int64_t N = n;
    ConvShape s1 = shape_conv1(n), s2 = shape_conv2(n), s3 = shape_conv3(n);
    zero(m->gl, (size_t)N * CLS_CLASSES);
    softmax_xent_backward(c, m->gl, m->probs, labels, n, CLS_CLASSES);
    zero(m->gf, (size_t)N * CLS_FEATURES);
    linear_backward(c, m->gf, m->dfw2, m->dfb2, m->gl, m->feat, m->fw2, n, CLS_FEATURES,
                    CLS_CLASSES);
    zero(m->gh, (size_t)N * CLS_FEATURES);
    relu_backward(c, m->gh, m->gf, m->h, N * CLS_FEATURES);
    zero(m->g1, (size_t)N * FLAT); /* g1: d p3 (N, 64, 7, 7) */
    linear_backward(c, m->g1, m->dfw1, m->dfb1, m->gh, m->p3, m->fw1, n, FLAT, CLS_FEATURES);
    zero(m->g2, (size_t)N * C3 * 196); /* g2: d r3 (N, 64, 14, 14) */
    maxpool2x2_backward(c, m->g2, m->g1, m->r3, n * C3, 14, 14);
    zero(m->g1, (size_t)N * C3 * 196); /* g1: d a3 */
    relu_backward(c, m->g1, m->g2, m->a3, N * C3 * 196);
    zero(m->g2, (size_t)N * C1 * 196); /* g2: d p2 (N, 32, 14, 14) */
    conv2d_backward(c, m->g2, m->dw3, m->db3, m->g1, m->p2, m->w3, &s3);
    zero(m->g1, (size_t)N * C1 * P); /* g1: d r2 (N, 32, 28, 28) */
    maxpool2x2_backward(c, m->g1, m->g2, m->r2, n * C1, 28, 28);
    zero(m->g2, (size_t)N * C1 * P); /* g2: d a2 */
    relu_backward(c, m->g2, m->g1, m->a2, N * C1 * P);
    zero(m->g1, (size_t)N * C1 * P); /* g1: d r1 */
    conv2d_backward(c, m->g1, m->dw2, m->db2, m->g2, m->r1, m->w2, &s2);
    zero(m->g2, (size_t)N * C1 * P); /* g2: d a1 */
    relu_backward(c, m->g2, m->g1, m->a1, N * C1 * P);
    conv2d_backward(c, NULL, m->dw1, m->db1, m->g2, m->x, m->w1, &s1);
}

void classifier_zero_grad(Classifier *m) { zero(m->grads, m->n_params); }

const ClsTensor *classifier_find(const Classifier *m, const char *name) {
    for (int i = 0; i < CLS_NUM_TENSORS; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

int classifier_save(const Classifier *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra) {
    StTensor ts[CLS_NUM_TENSORS];
    for (int i = 0; i < CLS_NUM_TENSORS; i++) {
        const ClsTensor *t = &m->tensors[i];
        memset(&ts[i], 0, sizeof ts[i]);
        ts[i].name = t->name;
        ts[i].dtype = ST_F32;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
        ts[i].data = m->params + t->offset;
    }
    int n_meta = 1 + n_extra;
    const char **mk = xcalloc((size_t)n_meta, sizeof(char *));
    const char **mv = xcalloc((size_t)n_meta, sizeof(char *));
    mk[0] = "ddpm.arch";
    mv[0] = CLS_ARCH;
    for (int i = 0; i < n_extra; i++) {
        mk[1 + i] = keys[i];
        mv[1 + i] = values[i];
    }
    int rc = safetensors_write(path, ts, CLS_NUM_TENSORS, mk, mv, n_meta);
    xfree(mk);
    xfree(mv);
    return rc;
}

int classifier_load(Classifier *m, const char *path) {
    StFile f;
    if (safetensors_open(path, &f) != 0) return -1;
    int rc = 0;
    const char *arch = safetensors_meta(&f, "ddpm.arch");
    if (!arch || strcmp(arch, CLS_ARCH) != 0) {
        rc = err_set("%s is not a judge classifier (architecture '%s', expected '%s')", path,
                     arch ? arch : "none", CLS_ARCH);
    }
    for (int i = 0; rc == 0 && i < CLS_NUM_TENSORS; i++) {
        const ClsTensor *t = &m->tensors[i];
        rc = safetensors_read_f32(&f, t->name, m->params + t->offset, t->ndim, t->shape);
    }
    safetensors_close(&f);
    return rc;
}
