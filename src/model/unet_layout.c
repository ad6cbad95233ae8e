/* The UNet's construction: the architecture table (every shape a function of the geometry),
 * the parameter table and its initialisation, and the activation buffers laid out from a
 * table of sizes, as llm.c's fill_in_parameter_sizes / malloc_and_point: one allocation
 * each, then a loop that points every layer into it. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "model/unet_layout.h"
#include "ops/attention.h"

/* ---- the architecture table ---------------------------------------------------- */

/* Map sides by level: H >> level (H, H/2, H/4), or LV_1 for the bottleneck's 1x1. */
enum { LV_1 = 3 };
/* A kernel size or stride of K_QUARTER is H/4: the Unflatten transposed conv, which turns
 * the (2D, 1, 1) bottleneck back into a (2D, H/4, H/4) map. */
#define K_QUARTER 0

typedef struct {
    const char *name;
    int transposed, ci_mul, co_mul, ci_img, k, stride, pad, lin, lout;
} UnitSpec;

/* ci = ci_img ? C : ci_mul * D; co = co_mul * D; sides from levels lin, lout. */
static const UnitSpec UNIT_SPECS[UNET_NUM_UNITS] = {
    {"enc0.0", 0, 0, 1, 1, 3, 1, 1, 0, 0}, {"enc0.1", 0, 1, 1, 0, 3, 1, 1, 0, 0},
    {"down1.0", 0, 1, 1, 0, 3, 2, 1, 0, 1}, {"down1.1", 0, 1, 1, 0, 3, 1, 1, 1, 1},
    {"down1.2", 0, 1, 1, 0, 3, 1, 1, 1, 1}, {"down2.0", 0, 1, 2, 0, 3, 2, 1, 1, 2},
    {"down2.1", 0, 2, 2, 0, 3, 1, 1, 2, 2}, {"down2.2", 0, 2, 2, 0, 3, 1, 1, 2, 2},
    {"unflat", 1, 2, 2, 0, K_QUARTER, K_QUARTER, 0, LV_1, 2}, {"up1.0", 1, 4, 1, 0, 4, 2, 1, 2, 1},
    {"up1.1", 0, 1, 1, 0, 3, 1, 1, 1, 1}, {"up1.2", 0, 1, 1, 0, 3, 1, 1, 1, 1},
    {"up2.0", 1, 2, 1, 0, 4, 2, 1, 1, 0}, {"up2.1", 0, 1, 1, 0, 3, 1, 1, 0, 0},
    {"up2.2", 0, 1, 1, 0, 3, 1, 1, 0, 0}, {"dec.0", 0, 2, 1, 0, 3, 1, 1, 0, 0},
    {"dec.1", 0, 1, 1, 0, 3, 1, 1, 0, 0},
};

static const char *FC_NAMES[UNET_NUM_FC] = {"t1", "t2", "c1", "c2"};
const int UNET_RES_FIRST[UNET_NUM_RES] = {U_DOWN1_1, U_DOWN2_1, U_UP1_1, U_UP2_1};
/* The attention layers: name (the tensors' prefix), channels in units of D, map level. */
static const struct { const char *name; int c_mul, level; } ATTN_SPECS[UNET_NUM_ATTN] = {
    {"down2.attn", 2, 2}, {"up1.attn", 1, 1}};

static int side(const Unet *m, int level) { return level == LV_1 ? 1 : m->geom.height >> level; }

ConvShape unet_unit_shape(const UnetUnit *u, int n) {
    if (u->transposed) return conv_transpose_shape(n, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad);
    return conv_shape(n, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad);
}

ConvShape unet_out_shape(const Unet *m, int n) {
    const int H = m->geom.height;
    return conv_shape(n, m->width, m->geom.channels, H, H, 3, 1, 1);
}

UnetConfig unet_config_spec(UnetKind kind, int width) {
    UnetConfig c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.width = width;
    c.geom = geometry_mnist();
    return c;
}

static int uses_fc(UnetKind kind, int i) {
    if (kind == UNET_DENOISER) return 0;
    if (kind == UNET_TIME) return i == FC_T1 || i == FC_T2;
    return 1;
}

/* Every layer's shape (no memory yet): units from UNIT_SPECS, FCBlocks, attention. */
static void shapes_setup(Unet *m) {
    const int D = m->width, q = m->geom.height / 4;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnitSpec *s = &UNIT_SPECS[i];
        UnetUnit *u = &m->units[i];
        u->name = s->name;
        u->transposed = s->transposed;
        u->ci = s->ci_img ? m->geom.channels : s->ci_mul * D;
        u->co = s->co_mul * D;
        u->k = s->k == K_QUARTER ? q : s->k;
        u->stride = s->stride == K_QUARTER ? q : s->stride;
        u->pad = s->pad;
        u->hin = side(m, s->lin);
        u->hout = side(m, s->lout);
    }
    for (int i = 0; i < UNET_NUM_FC; i++) {
        UnetFc *f = &m->fc[i];
        f->name = FC_NAMES[i];
        if (!uses_fc(m->kind, i)) continue;
        m->n_fc++;
        f->fi = (i == FC_T1 || i == FC_T2) ? (m->temb ? m->temb : 1) : m->geom.classes;
        f->fo = (i == FC_T1 || i == FC_C1) ? 2 * D : D;
    }
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        UnetAttn *a = &m->attn[i];
        a->name = ATTN_SPECS[i].name;
        if (!(m->attention & (1 << i))) continue;
        int h = side(m, ATTN_SPECS[i].level);
        a->c = ATTN_SPECS[i].c_mul * D;
        a->hw = h * h;
    }
}

/* ---- parameter table ------------------------------------------------------------ */

#define TABLE_CAP (UNET_NUM_UNITS * 6 + 2 + UNET_NUM_FC * 4 + UNET_NUM_ATTN * 4)

/* The tensor table being built, with where each tensor's data and gradient pointers go. */
typedef struct {
    UnetTensor *t;
    float **data[TABLE_CAP], **grad[TABLE_CAP];
    int n;
    size_t params, buffers;
} TableBuilder;

static void table_add(TableBuilder *tb, const char *prefix, const char *suffix, int ndim,
                      const int64_t *dims, int is_buffer, float **data, float **grad) {
    DDPM_CHECK(tb->n < TABLE_CAP);
    UnetTensor *t = &tb->t[tb->n];
    tb->data[tb->n] = data;
    tb->grad[tb->n++] = grad;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        t->count *= (size_t)dims[i];
    }
    t->is_buffer = is_buffer;
    t->offset = is_buffer ? tb->buffers : tb->params;
    *(is_buffer ? &tb->buffers : &tb->params) += t->count;
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})

/* Lays out the tensor table in docs/WEIGHTS.md order: the SPEC's tensors, then the options'. */
static void build_table(Unet *m, TableBuilder *tb) {
    const int64_t D = m->width;
    tb->t = xcalloc(TABLE_CAP, sizeof(UnetTensor));
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        UnetUnit *u = &m->units[i];
        const int64_t ci = u->ci, co = u->co, k = u->k;
        if (u->transposed)
            table_add(tb, u->name, "conv.weight", 4, DIMS(ci, co, k, k), 0, &u->w, &u->dw);
        else
            table_add(tb, u->name, "conv.weight", 4, DIMS(co, ci, k, k), 0, &u->w, &u->dw);
        table_add(tb, u->name, "conv.bias", 1, DIMS(co), 0, &u->b, &u->db);
        table_add(tb, u->name, "bn.weight", 1, DIMS(co), 0, &u->gamma, &u->dgamma);
        table_add(tb, u->name, "bn.bias", 1, DIMS(co), 0, &u->beta, &u->dbeta);
        table_add(tb, u->name, "bn.running_mean", 1, DIMS(co), 1, &u->running_mean, NULL);
        table_add(tb, u->name, "bn.running_var", 1, DIMS(co), 1, &u->running_var, NULL);
    }
    const int64_t C = m->geom.channels;
    table_add(tb, "out", "weight", 4, DIMS(C, D, 3, 3), 0, &m->out_w, &m->out_dw);
    table_add(tb, "out", "bias", 1, DIMS(C), 0, &m->out_b, &m->out_db);
    for (int i = 0; i < UNET_NUM_FC; i++) {
        UnetFc *f = &m->fc[i];
        if (!uses_fc(m->kind, i)) continue;
        table_add(tb, f->name, "fc1.weight", 2, DIMS(f->fo, f->fi), 0, &f->w1, &f->dw1);
        table_add(tb, f->name, "fc1.bias", 1, DIMS(f->fo), 0, &f->b1, &f->db1);
        table_add(tb, f->name, "fc2.weight", 2, DIMS(f->fo, f->fo), 0, &f->w2, &f->dw2);
        table_add(tb, f->name, "fc2.bias", 1, DIMS(f->fo), 0, &f->b2, &f->db2);
    }
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        UnetAttn *a = &m->attn[i];
        if (!a->c) continue;
        const int64_t c = a->c;
        table_add(tb, a->name, "qkv.weight", 2, DIMS(3 * c, c), 0, &a->w_qkv, &a->dw_qkv);
        table_add(tb, a->name, "qkv.bias", 1, DIMS(3 * c), 0, &a->b_qkv, &a->db_qkv);
        table_add(tb, a->name, "proj.weight", 2, DIMS(c, c), 0, &a->w_proj, &a->dw_proj);
        table_add(tb, a->name, "proj.bias", 1, DIMS(c), 0, &a->b_proj, &a->db_proj);
    }
    m->tensors = tb->t;
    m->n_tensors = tb->n;
    m->n_params = tb->params;
    m->n_buffers = tb->buffers;
}

/* PyTorch's default initialisation, into host arrays params (n_params) and buffers
 * (n_buffers): weights and biases uniform in +-1/sqrt(fan_in), where fan_in is size(1) * K * K
 * of the weight (for a transposed conv that is Co * K * K; for the attention layers' Linear
 * projections the input channels C); BatchNorm weight 1, bias 0, running mean 0, running
 * var 1. */
static void init_params(const Unet *m, float *params, float *buffers, Rng *rng) {
    float bound = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        float *p = (t->is_buffer ? buffers : params) + t->offset;
        const char *suffix = strrchr(t->name, '.') + 1;
        int is_bn = strstr(t->name, ".bn.") != NULL;
        if (t->is_buffer) {
            float v = strcmp(suffix, "running_var") == 0 ? 1.0f : 0.0f;
            for (size_t j = 0; j < t->count; j++) p[j] = v;
        } else if (is_bn) {
            float v = strcmp(suffix, "weight") == 0 ? 1.0f : 0.0f;
            for (size_t j = 0; j < t->count; j++) p[j] = v;
        } else if (strcmp(suffix, "weight") == 0) {
            int64_t fan_in = t->shape[1];
            for (int d = 2; d < t->ndim; d++) fan_in *= t->shape[d];
            bound = 1.0f / sqrtf((float)fan_in);
            rng_fill_uniform(rng, p, t->count, -bound, bound);
        } else {
            /* a bias follows its weight and shares its fan_in */
            rng_fill_uniform(rng, p, t->count, -bound, bound);
        }
    }
}

/* Parameters, gradients and BatchNorm buffers: the table, one allocation each, every layer
 * pointed into them, initial values drawn on the host and uploaded. */
static void params_alloc(Unet *m, Rng *rng) {
    TableBuilder tb = {0};
    build_table(m, &tb);
    m->params = dev_alloc(&m->ctx, m->n_params * sizeof(float));
    m->grads = dev_alloc(&m->ctx, m->n_params * sizeof(float));
    m->buffers = dev_alloc(&m->ctx, m->n_buffers * sizeof(float));
    for (int i = 0; i < tb.n; i++) {
        const UnetTensor *t = &m->tensors[i];
        *tb.data[i] = (t->is_buffer ? m->buffers : m->params) + t->offset;
        if (tb.grad[i]) *tb.grad[i] = m->grads + t->offset;
    }
    float *hp = xmalloc((m->n_params + m->n_buffers) * sizeof(float));
    init_params(m, hp, hp + m->n_params, rng);
    dev_upload(&m->ctx, m->params, hp, m->n_params * sizeof(float));
    dev_upload(&m->ctx, m->buffers, hp + m->n_params, m->n_buffers * sizeof(float));
    xfree(hp);
}

/* ---- activation and scratch buffers ---------------------------------------------------- */

/* How a buffer's size in floats follows from N, D, the geometry (C, H, K) and the options;
 * a size of 0 leaves the pointer NULL (a layer the model does not have). */
typedef enum {
    SZ_MAP,       /* N * (mul D) * side(level)^2 */
    SZ_IMAGE,     /* N * C * H^2 */
    SZ_SCALAR,    /* N */
    SZ_TEMB,      /* N * temb */
    SZ_CLASSES,   /* N * K */
    SZ_UNIT_OUT,  /* N * co * hout^2 of unit i */
    SZ_UNIT_CO,   /* co of unit i */
    SZ_UNIT_MAX,  /* the largest SZ_UNIT_OUT */
    SZ_FC,        /* N * fo of FCBlock i, when the kind has it */
    SZ_RES,       /* with residual blocks, the output of residual block i */
    SZ_ATTN,      /* N * C * HW of attention layer i, when enabled */
    SZ_ATTN_SAVED /* attention_saved_floats of attention layer i, when enabled */
} SizeKind;

/* One row: the pointer (or array of count pointers, stride bytes apart) it fills. */
typedef struct {
    size_t slot, stride;
    int count;
    SizeKind size;
    int mul, level;
} BufRow;

#define ONE(field, size, mul, level) {offsetof(Unet, field), 0, 1, size, mul, level}
#define MANY(field, stride, count, size) {offsetof(Unet, field), stride, count, size, 0, 0}

enum {
    B_CONV_OUT, B_ACT, B_MEAN, B_RSTD, B_X, B_TN, B_TEMB, B_ONEHOT, B_POOLED, B_POOLED_G,
    B_COND1, B_COND2, B_CAT1, B_CAT2, B_CAT3, B_OUT, B_G_A, B_G_B, B_G_C, B_G_CAT1, B_G_CAT2,
    B_G_CAT3, B_G_X1, B_G_X2, B_S1, B_S2, B_G_POOLED, B_G_FC_A, B_G_FC_B, B_G_FILM_SCALE,
    B_G_FILM_SHIFT, B_FC_H, B_FC_G, B_FC_OUT, B_RES, B_ATTN_OUT, B_ATTN_SAVED, B_COUNT
};

static const BufRow BUF_ROWS[B_COUNT] = {
    [B_CONV_OUT] = MANY(units[0].conv_out, sizeof(UnetUnit), UNET_NUM_UNITS, SZ_UNIT_OUT),
    [B_ACT] = MANY(units[0].act, sizeof(UnetUnit), UNET_NUM_UNITS, SZ_UNIT_OUT),
    [B_MEAN] = MANY(units[0].mean, sizeof(UnetUnit), UNET_NUM_UNITS, SZ_UNIT_CO),
    [B_RSTD] = MANY(units[0].rstd, sizeof(UnetUnit), UNET_NUM_UNITS, SZ_UNIT_CO),
    [B_X] = ONE(x, SZ_IMAGE, 0, 0),
    [B_TN] = ONE(tn, SZ_SCALAR, 0, 0),
    [B_TEMB] = ONE(temb_buf, SZ_TEMB, 0, 0),
    [B_ONEHOT] = ONE(onehot, SZ_CLASSES, 0, 0),
    [B_POOLED] = ONE(pooled, SZ_MAP, 2, LV_1),
    [B_POOLED_G] = ONE(pooled_g, SZ_MAP, 2, LV_1),
    [B_COND1] = ONE(cond1, SZ_MAP, 2, 2),
    [B_COND2] = ONE(cond2, SZ_MAP, 1, 1),
    [B_CAT1] = ONE(cat1, SZ_MAP, 4, 2),
    [B_CAT2] = ONE(cat2, SZ_MAP, 2, 1),
    [B_CAT3] = ONE(cat3, SZ_MAP, 2, 0),
    [B_OUT] = ONE(out, SZ_IMAGE, 0, 0),
    [B_G_A] = ONE(g_a, SZ_MAP, 1, 0),
    [B_G_B] = ONE(g_b, SZ_MAP, 1, 1),
    [B_G_C] = ONE(g_c, SZ_MAP, 2, 2),
    [B_G_CAT1] = ONE(g_cat1, SZ_MAP, 4, 2),
    [B_G_CAT2] = ONE(g_cat2, SZ_MAP, 2, 1),
    [B_G_CAT3] = ONE(g_cat3, SZ_MAP, 2, 0),
    [B_G_X1] = ONE(g_x1, SZ_UNIT_MAX, 0, 0),
    [B_G_X2] = ONE(g_x2, SZ_UNIT_MAX, 0, 0),
    [B_S1] = ONE(s1, SZ_UNIT_MAX, 0, 0),
    [B_S2] = ONE(s2, SZ_UNIT_MAX, 0, 0),
    [B_G_POOLED] = ONE(g_pooled, SZ_MAP, 2, LV_1),
    [B_G_FC_A] = ONE(g_fc_a, SZ_MAP, 2, LV_1),
    [B_G_FC_B] = ONE(g_fc_b, SZ_MAP, 2, LV_1),
    [B_G_FILM_SCALE] = ONE(g_film_scale, SZ_MAP, 2, LV_1),
    [B_G_FILM_SHIFT] = ONE(g_film_shift, SZ_MAP, 2, LV_1),
    [B_FC_H] = MANY(fc[0].h, sizeof(UnetFc), UNET_NUM_FC, SZ_FC),
    [B_FC_G] = MANY(fc[0].g, sizeof(UnetFc), UNET_NUM_FC, SZ_FC),
    [B_FC_OUT] = MANY(fc[0].out, sizeof(UnetFc), UNET_NUM_FC, SZ_FC),
    [B_RES] = MANY(res[0], sizeof(float *), UNET_NUM_RES, SZ_RES),
    [B_ATTN_OUT] = MANY(attn[0].out, sizeof(UnetAttn), UNET_NUM_ATTN, SZ_ATTN),
    [B_ATTN_SAVED] = MANY(attn[0].saved, sizeof(UnetAttn), UNET_NUM_ATTN, SZ_ATTN_SAVED),
};

static size_t unit_out_floats(const UnetUnit *u, size_t N) {
    return N * (size_t)u->co * (size_t)u->hout * (size_t)u->hout;
}

/* Floats of element i of row r for a batch of N. */
static size_t row_floats(const Unet *m, const BufRow *r, int i, size_t N) {
    const size_t H = (size_t)m->geom.height, s = (size_t)side(m, r->level);
    const UnetAttn *a = &m->attn[i < UNET_NUM_ATTN ? i : 0];
    size_t max = 0;
    switch (r->size) {
    case SZ_MAP: return N * (size_t)r->mul * (size_t)m->width * s * s;
    case SZ_IMAGE: return N * (size_t)m->geom.channels * H * H;
    case SZ_SCALAR: return N;
    case SZ_TEMB: return N * (size_t)m->temb;
    case SZ_CLASSES: return N * (size_t)m->geom.classes;
    case SZ_UNIT_OUT: return unit_out_floats(&m->units[i], N);
    case SZ_UNIT_CO: return (size_t)m->units[i].co;
    case SZ_UNIT_MAX:
        for (int u = 0; u < UNET_NUM_UNITS; u++)
            if (unit_out_floats(&m->units[u], N) > max) max = unit_out_floats(&m->units[u], N);
        return max;
    case SZ_FC: return N * (size_t)m->fc[i].fo;
    case SZ_RES: return m->residual ? unit_out_floats(&m->units[UNET_RES_FIRST[i] + 1], N) : 0;
    case SZ_ATTN: return N * (size_t)a->c * (size_t)a->hw;
    case SZ_ATTN_SAVED: return a->c ? attention_saved_floats((int)N, a->c, a->hw) : 0;
    }
    return 0;
}

/* Buffers start on 64-byte boundaries (16 floats), as SIMD loads like. */
static size_t round16(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* Every row's size, one allocation (page-backed: the parts a run never touches, in sampling
 * the backward buffers and the units' conv_out, take no resident memory), then the pointers. */
static void arena_alloc(Unet *m) {
    const size_t N = (size_t)m->max_batch;
    size_t total = 0;
    for (int r = 0; r < B_COUNT; r++)
        for (int i = 0; i < BUF_ROWS[r].count; i++) total += round16(row_floats(m, &BUF_ROWS[r], i, N));
    m->arena_bytes = total * sizeof(float);
    float *A = dev_alloc(&m->ctx, m->arena_bytes);
    m->arena = A;
    size_t off = 0;
    for (int r = 0; r < B_COUNT; r++)
        for (int i = 0; i < BUF_ROWS[r].count; i++) {
            const BufRow *row = &BUF_ROWS[r];
            size_t n = row_floats(m, row, i, N);
            float **slot = (float **)(void *)((char *)m + row->slot + (size_t)i * row->stride);
            *slot = n ? A + off : NULL;
            off += round16(n);
        }
}

/* The operators' one workspace (the largest any layer asks for) and the folding buffer. */
static void workspace_alloc(Unet *m) {
    const int nb = m->max_batch, nt = m->nthreads;
    size_t ws = 0, fold = 0, need;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnetUnit *u = &m->units[i];
        ConvShape s = unet_unit_shape(u, nb);
        need = u->transposed ? conv_transpose2d_workspace_floats(&s, nt) : conv2d_workspace_floats(&s, nt);
        if (need > ws) ws = need;
        need = (size_t)u->co * ((size_t)u->ci * (size_t)u->k * (size_t)u->k + 1);
        if (need > fold) fold = need;
    }
    ConvShape so = unet_out_shape(m, nb);
    need = conv2d_workspace_floats(&so, nt);
    if (need > ws) ws = need;
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        if (!m->attn[i].c) continue;
        need = attention_workspace_floats(nb, m->attn[i].c, m->attn[i].hw, nt);
        if (need > ws) ws = need;
    }
    m->fold_floats = fold;
    m->fold = dev_alloc(&m->ctx, fold * sizeof(float));
    m->ctx.ws_floats = ws;
    m->ctx.ws = dev_alloc(&m->ctx, (ws ? ws : 1) * sizeof(float));
}

/* ---- construction ------------------------------------------------------------------ */

static int config_check(const UnetConfig *c, int max_batch, int nthreads) {
    const UnetOptions *o = &c->opt;
    if (c->kind < UNET_DENOISER || c->kind > UNET_CLASS) return err_set("unknown model kind %d", (int)c->kind);
    if (c->width < 1 || c->width > 1024) return err_set("width %d out of range (1..1024)", c->width);
    if (geometry_check(&c->geom) != 0) return -1;
    if (c->kind == UNET_CLASS && c->geom.classes < 1)
        return err_set("the class model needs labelled images (the geometry has no classes)");
    if (o->temb != 0 && (o->temb < 2 || o->temb > 1024 || o->temb % 2))
        return err_set("time embedding %d: an even number from 2 to 1024 (0 = scalar t/T)", o->temb);
    if (o->temb != 0 && c->kind == UNET_DENOISER)
        return err_set("the denoiser has no time input: a time embedding needs a time or class model");
    if (o->residual != 0 && o->residual != 1)
        return err_set("residual must be 0 or 1, not %d", o->residual);
    if (o->attention & ~(UNET_ATTN_DOWN2 | UNET_ATTN_UP1))
        return err_set("attention mask %d: only down2 (1) and up1 (2) exist", o->attention);
    if (max_batch < 1 || max_batch > 65536) return err_set("batch %d out of range (1..65536)", max_batch);
    if (nthreads < 1 || nthreads > 1024) return err_set("threads %d out of range (1..1024)", nthreads);
    return 0;
}

int unet_init(Unet *m, const UnetConfig *cfg, int max_batch, int nthreads, Rng *rng) {
    memset(m, 0, sizeof *m);
    if (config_check(cfg, max_batch, nthreads) != 0) return -1;
    m->kind = cfg->kind;
    m->width = cfg->width;
    m->geom = cfg->geom;
    m->temb = cfg->opt.temb;
    m->residual = cfg->opt.residual;
    m->attention = cfg->opt.attention;
    m->max_batch = max_batch;
    m->nthreads = nthreads;
    if (ops_ctx_init(&m->ctx, cfg->device, nthreads) != 0) return -1;
    shapes_setup(m);
    params_alloc(m, rng);
    arena_alloc(m);
    workspace_alloc(m);
    return 0;
}

void unet_free(Unet *m) {
    xfree(m->tensors);
    dev_free(&m->ctx, m->params, m->n_params * sizeof(float));
    dev_free(&m->ctx, m->grads, m->n_params * sizeof(float));
    dev_free(&m->ctx, m->buffers, m->n_buffers * sizeof(float));
    dev_free(&m->ctx, m->arena, m->arena_bytes);
    dev_free(&m->ctx, m->fold, m->fold_floats * sizeof(float));
    dev_free(&m->ctx, m->ctx.ws, (m->ctx.ws_floats ? m->ctx.ws_floats : 1) * sizeof(float));
    memset(m, 0, sizeof *m);
}

const UnetTensor *unet_find(const Unet *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

float *unet_tensor_data(const Unet *m, const UnetTensor *t) {
    return (t->is_buffer ? m->buffers : m->params) + t->offset;
}

float *unet_tensor_grad(const Unet *m, const UnetTensor *t) {
    return t->is_buffer ? NULL : m->grads + t->offset;
}

float *unet_state_download(const Unet *m) {
    float *h = xmalloc((m->n_params + m->n_buffers + 1) * sizeof(float));
    dev_download(&m->ctx, h, m->params, m->n_params * sizeof(float));
    dev_download(&m->ctx, h + m->n_params, m->buffers, m->n_buffers * sizeof(float));
    return h;
}

void unet_state_upload(Unet *m, const float *host) {
    dev_upload(&m->ctx, m->params, host, m->n_params * sizeof(float));
    dev_upload(&m->ctx, m->buffers, host + m->n_params, m->n_buffers * sizeof(float));
}

double unet_forward_macs(const Unet *m) {
    double macs = 0;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnetUnit *u = &m->units[i];
        if (u->transposed)
            macs += (double)u->ci * u->hin * u->hin * u->co * u->k * u->k;
        else
            macs += (double)u->co * u->hout * u->hout * u->ci * u->k * u->k;
    }
    const double H = m->geom.height;
    macs += (double)m->geom.channels * m->width * H * H * 9; /* output conv */
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        const UnetAttn *a = &m->attn[i];
        if (!a->out) continue;
        /* projections 3C^2 L + C^2 L, scores and weighted sum 2 L^2 C */
        double c = a->c, l = a->hw;
        macs += 4.0 * c * c * l + 2.0 * l * l * c;
    }
    return macs;
}

void unet_zero_grad(Unet *m) { dev_fill(&m->ctx, m->grads, 0.0f, m->n_params); }
