/* The UNet: parameter table and initialisation, memory layout, and the forward and
 * backward passes written out block by block. Data flows one way: this file calls
 * the operators of ops/ and owns every buffer they touch. */
#include "model/unet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "ops/attention.h"

#define IMG 28

const char *unet_kind_name(UnetKind k) {
    switch (k) {
    case UNET_DENOISER: return "denoiser";
    case UNET_TIME: return "time";
    case UNET_CLASS: return "class";
    }
    return "?";
}

int unet_kind_parse(const char *s, UnetKind *out) {
    for (int k = UNET_DENOISER; k <= UNET_CLASS; k++)
        if (strcmp(s, unet_kind_name((UnetKind)k)) == 0) {
            *out = (UnetKind)k;
            return 0;
        }
    return err_set("unknown model '%s' (expected denoiser, time or class)", s);
}

const char *unet_attention_name(int mask) {
    switch (mask) {
    case 0: return "none";
    case UNET_ATTN_7: return "7";
    case UNET_ATTN_14: return "14";
    case UNET_ATTN_7 | UNET_ATTN_14: return "7,14";
    }
    return "?";
}

int unet_attention_parse(const char *s, int *out) {
    if (strcmp(s, "none") == 0) {
        *out = 0;
        return 0;
    }
    int mask = 0;
    const char *p = s;
    for (;;) {
        int bit = 0;
        if (strncmp(p, "14", 2) == 0) {
            bit = UNET_ATTN_14;
            p += 2;
        } else if (*p == '7') {
            bit = UNET_ATTN_7;
            p += 1;
        }
        if (!bit || (mask & bit) || (*p != ',' && *p != '\0')) break;
        mask |= bit;
        if (*p == '\0') {
            *out = mask;
            return 0;
        }
        p++;
    }
    return err_set("unknown attention resolutions '%.40s' (expected 7, 14, 7,14 or none)", s);
}

/* ---- the architecture table ---------------------------------------------------- */

typedef struct {
    const char *name;
    int transposed, ci_mul, co_mul, ci_one, k, stride, pad, hin, hout;
} UnitSpec;

/* ci = ci_one ? 1 : ci_mul * D; co = co_mul * D. */
static const UnitSpec UNIT_SPECS[UNET_NUM_UNITS] = {
    {"enc0.0", 0, 0, 1, 1, 3, 1, 1, 28, 28},  {"enc0.1", 0, 1, 1, 0, 3, 1, 1, 28, 28},
    {"down1.0", 0, 1, 1, 0, 3, 2, 1, 28, 14}, {"down1.1", 0, 1, 1, 0, 3, 1, 1, 14, 14},
    {"down1.2", 0, 1, 1, 0, 3, 1, 1, 14, 14}, {"down2.0", 0, 1, 2, 0, 3, 2, 1, 14, 7},
    {"down2.1", 0, 2, 2, 0, 3, 1, 1, 7, 7},   {"down2.2", 0, 2, 2, 0, 3, 1, 1, 7, 7},
    {"unflat", 1, 2, 2, 0, 7, 7, 0, 1, 7},    {"up1.0", 1, 4, 1, 0, 4, 2, 1, 7, 14},
    {"up1.1", 0, 1, 1, 0, 3, 1, 1, 14, 14},   {"up1.2", 0, 1, 1, 0, 3, 1, 1, 14, 14},
    {"up2.0", 1, 2, 1, 0, 4, 2, 1, 14, 28},   {"up2.1", 0, 1, 1, 0, 3, 1, 1, 28, 28},
    {"up2.2", 0, 1, 1, 0, 3, 1, 1, 28, 28},   {"dec.0", 0, 2, 1, 0, 3, 1, 1, 28, 28},
    {"dec.1", 0, 1, 1, 0, 3, 1, 1, 28, 28},
};

enum { U_ENC0_0, U_ENC0_1, U_DOWN1_0, U_DOWN1_1, U_DOWN1_2, U_DOWN2_0, U_DOWN2_1, U_DOWN2_2,
       U_UNFLAT, U_UP1_0, U_UP1_1, U_UP1_2, U_UP2_0, U_UP2_1, U_UP2_2, U_DEC_0, U_DEC_1 };
enum { FC_T1, FC_T2, FC_C1, FC_C2 };
static const char *FC_NAMES[UNET_NUM_FC] = {"t1", "t2", "c1", "c2"};

/* The residual ConvBlocks: the units i0, i0 + 1 after the sampling unit i0 - 1, whose output is
 * the block's input; and the attention layers: name, channels (multiple of D), resolution. */
enum { RES_DOWN1, RES_DOWN2, RES_UP1, RES_UP2 };
static const int RES_FIRST[UNET_NUM_RES] = {U_DOWN1_1, U_DOWN2_1, U_UP1_1, U_UP2_1};
static const struct { const char *name; int c_mul, h; } ATTN_SPECS[UNET_NUM_ATTN] = {
    {"attn7", 2, 7}, {"attn14", 1, 14}};

static ConvShape unit_shape(const UnetUnit *u, int n) {
    if (u->transposed) return conv_transpose_shape(n, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad);
    return conv_shape(n, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad);
}

static ConvShape out_shape(const Unet *m, int n) {
    return conv_shape(n, m->width, 1, IMG, IMG, 3, 1, 1);
}

/* ---- parameter table ------------------------------------------------------------ */

typedef struct {
    UnetTensor *t;
    int n, cap;
    size_t params, buffers;
} TableBuilder;

static UnetTensor *table_add(TableBuilder *tb, const char *prefix, const char *suffix, int ndim,
                             int64_t d0, int64_t d1, int64_t d2, int64_t d3, int is_buffer) {
    DDPM_CHECK(tb->n < tb->cap);
    UnetTensor *t = &tb->t[tb->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
    t->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3};
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        t->count *= (size_t)dims[i];
    }
    t->is_buffer = is_buffer;
    if (is_buffer) {
        t->offset = tb->buffers;
        tb->buffers += t->count;
    } else {
        t->offset = tb->params;
        tb->params += t->count;
    }
    return t;
}

static int uses_fc(UnetKind kind, int i) {
    if (kind == UNET_DENOISER) return 0;
    if (kind == UNET_TIME) return i == FC_T1 || i == FC_T2;
    return 1;
}

/* Lays out the tensor table in docs/WEIGHTS.md order; returns offsets per slot in idx. */
static void build_table(Unet *m, size_t idx[][6], size_t out_idx[2], size_t fc_idx[][4],
                        size_t attn_idx[][4]) {
    int D = m->width;
    TableBuilder tb = {.cap = UNET_NUM_UNITS * 6 + 2 + UNET_NUM_FC * 4 + UNET_NUM_ATTN * 4};
    tb.t = xcalloc((size_t)tb.cap, sizeof(UnetTensor));
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnitSpec *s = &UNIT_SPECS[i];
        int ci = s->ci_one ? 1 : s->ci_mul * D, co = s->co_mul * D;
        UnetTensor *t;
        if (s->transposed)
            t = table_add(&tb, s->name, "conv.weight", 4, ci, co, s->k, s->k, 0);
        else
            t = table_add(&tb, s->name, "conv.weight", 4, co, ci, s->k, s->k, 0);
        idx[i][0] = (size_t)(t - tb.t);
        idx[i][1] = (size_t)(table_add(&tb, s->name, "conv.bias", 1, co, 0, 0, 0, 0) - tb.t);
        idx[i][2] = (size_t)(table_add(&tb, s->name, "bn.weight", 1, co, 0, 0, 0, 0) - tb.t);
        idx[i][3] = (size_t)(table_add(&tb, s->name, "bn.bias", 1, co, 0, 0, 0, 0) - tb.t);
        idx[i][4] = (size_t)(table_add(&tb, s->name, "bn.running_mean", 1, co, 0, 0, 0, 1) - tb.t);
        idx[i][5] = (size_t)(table_add(&tb, s->name, "bn.running_var", 1, co, 0, 0, 0, 1) - tb.t);
    }
    out_idx[0] = (size_t)(table_add(&tb, "out", "weight", 4, 1, D, 3, 3, 0) - tb.t);
    out_idx[1] = (size_t)(table_add(&tb, "out", "bias", 1, 1, 0, 0, 0, 0) - tb.t);
    for (int i = 0; i < UNET_NUM_FC; i++) {
        if (!uses_fc(m->kind, i)) continue;
        int fi = (i == FC_T1 || i == FC_T2) ? (m->temb ? m->temb : 1) : UNET_NUM_CLASSES;
        int fo = (i == FC_T1 || i == FC_C1) ? 2 * D : D;
        fc_idx[i][0] = (size_t)(table_add(&tb, FC_NAMES[i], "fc1.weight", 2, fo, fi, 0, 0, 0) - tb.t);
        fc_idx[i][1] = (size_t)(table_add(&tb, FC_NAMES[i], "fc1.bias", 1, fo, 0, 0, 0, 0) - tb.t);
        fc_idx[i][2] = (size_t)(table_add(&tb, FC_NAMES[i], "fc2.weight", 2, fo, fo, 0, 0, 0) - tb.t);
        fc_idx[i][3] = (size_t)(table_add(&tb, FC_NAMES[i], "fc2.bias", 1, fo, 0, 0, 0, 0) - tb.t);
    }
    /* beyond the SPEC, after all of its tensors */
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        if (!(m->attention & (1 << i))) continue;
        const char *nm = ATTN_SPECS[i].name;
        int c = ATTN_SPECS[i].c_mul * D;
        attn_idx[i][0] = (size_t)(table_add(&tb, nm, "qkv.weight", 2, 3 * c, c, 0, 0, 0) - tb.t);
        attn_idx[i][1] = (size_t)(table_add(&tb, nm, "qkv.bias", 1, 3 * c, 0, 0, 0, 0) - tb.t);
        attn_idx[i][2] = (size_t)(table_add(&tb, nm, "proj.weight", 2, c, c, 0, 0, 0) - tb.t);
        attn_idx[i][3] = (size_t)(table_add(&tb, nm, "proj.bias", 1, c, 0, 0, 0, 0) - tb.t);
    }
    m->tensors = tb.t;
    m->n_tensors = tb.n;
    m->n_params = tb.params;
    m->n_buffers = tb.buffers;
}

/* PyTorch's default initialisation: weights and biases uniform in +-1/sqrt(fan_in), where
 * fan_in is size(1) * K * K of the weight (for a transposed conv that is Co * K * K; for the
 * attention layers' Linear projections the input channels C);
 * BatchNorm weight 1, bias 0, running mean 0, running var 1. */
static void init_params(Unet *m, Rng *rng) {
    float bound = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        UnetTensor *t = &m->tensors[i];
        float *p = unet_tensor_data(m, t);
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

/* ---- construction ------------------------------------------------------------------ */

int unet_init(Unet *m, UnetKind kind, int width, int max_batch, int nthreads, Rng *rng) {
    return unet_init_opts(m, kind, width, NULL, max_batch, nthreads, rng);
}

int unet_init_ex(Unet *m, UnetKind kind, int width, int temb, int max_batch, int nthreads,
                 Rng *rng) {
    UnetOptions o = {.temb = temb};
    return unet_init_opts(m, kind, width, &o, max_batch, nthreads, rng);
}

void unet_time_embedding(float *out, const float *tn, int n, int E) {
    const int half = E / 2;
    for (int i = 0; i < n; i++) {
        double s = 1000.0 * (double)tn[i];
        for (int k = 0; k < half; k++) {
            double f = exp(-log(10000.0) * (double)k / (double)half);
            out[(size_t)i * E + k] = (float)sin(s * f);
            out[(size_t)i * E + half + k] = (float)cos(s * f);
        }
    }
}

int unet_init_opts(Unet *m, UnetKind kind, int width, const UnetOptions *opt, int max_batch,
                   int nthreads, Rng *rng) {
    memset(m, 0, sizeof *m);
    const UnetOptions none = {0};
    if (!opt) opt = &none;
    const int temb = opt->temb;
    if (width < 1 || width > 1024) return err_set("width %d out of range (1..1024)", width);
    if (temb != 0 && (temb < 2 || temb > 1024 || temb % 2))
        return err_set("time embedding %d: an even number from 2 to 1024 (0 = scalar t/T)", temb);
    if (temb != 0 && kind == UNET_DENOISER)
        return err_set("the denoiser has no time input: a time embedding needs a time or class model");
    if (opt->residual != 0 && opt->residual != 1)
        return err_set("residual must be 0 or 1, not %d", opt->residual);
    if (opt->attention & ~(UNET_ATTN_7 | UNET_ATTN_14))
        return err_set("attention mask %d: only 7x7 (1) and 14x14 (2) exist", opt->attention);
    m->temb = temb;
    m->residual = opt->residual;
    m->attention = opt->attention;
    if (max_batch < 1 || max_batch > 65536) return err_set("batch %d out of range (1..65536)", max_batch);
    if (nthreads < 1 || nthreads > 1024) return err_set("threads %d out of range (1..1024)", nthreads);
    m->kind = kind;
    m->width = width;
    m->max_batch = max_batch;
    m->nthreads = nthreads;
    const int D = width;
    const size_t N = (size_t)max_batch;

    size_t idx[UNET_NUM_UNITS][6], out_idx[2], fc_idx[UNET_NUM_FC][4], attn_idx[UNET_NUM_ATTN][4];
    build_table(m, idx, out_idx, fc_idx, attn_idx);
    m->params = xcalloc(m->n_params, sizeof(float));
    m->grads = xcalloc(m->n_params, sizeof(float));
    m->buffers = xcalloc(m->n_buffers, sizeof(float));
    init_params(m, rng);

    /* Activation sizes, in floats, laid out in one arena. */
    size_t unit_max = 0, total = 0;
    size_t conv_off[UNET_NUM_UNITS], act_off[UNET_NUM_UNITS], stat_off[UNET_NUM_UNITS];
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnitSpec *s = &UNIT_SPECS[i];
        size_t co = (size_t)s->co_mul * (size_t)D;
        size_t sz = N * co * (size_t)s->hout * (size_t)s->hout;
        if (sz > unit_max) unit_max = sz;
        conv_off[i] = total; total += sz;
        act_off[i] = total; total += sz;
        stat_off[i] = total; total += 2 * co;
    }
    size_t D_ = (size_t)D;
    size_t off_x = total; total += N * IMG * IMG;
    size_t off_tn = total; total += N;
    size_t off_temb = total; total += N * (size_t)temb;
    size_t off_oh = total; total += N * UNET_NUM_CLASSES;
    size_t off_pooled = total; total += N * 2 * D_;
    size_t off_pooled_g = total; total += N * 2 * D_;
    size_t off_cond1 = total; total += N * 2 * D_ * 49;
    size_t off_cond2 = total; total += N * D_ * 196;
    size_t off_cat1 = total; total += N * 4 * D_ * 49;
    size_t off_cat2 = total; total += N * 2 * D_ * 196;
    size_t off_cat3 = total; total += N * 2 * D_ * 784;
    size_t off_out = total; total += N * IMG * IMG;
    size_t off_ga = total; total += N * D_ * 784;
    size_t off_gb = total; total += N * D_ * 196;
    size_t off_gc = total; total += N * 2 * D_ * 49;
    size_t off_gcat1 = total; total += N * 4 * D_ * 49;
    size_t off_gcat2 = total; total += N * 2 * D_ * 196;
    size_t off_gcat3 = total; total += N * 2 * D_ * 784;
    size_t off_gx1 = total; total += unit_max;
    size_t off_gx2 = total; total += unit_max;
    size_t off_s1 = total; total += unit_max;
    size_t off_s2 = total; total += unit_max;
    size_t off_gp = total; total += N * 2 * D_;
    size_t off_fa = total; total += N * 2 * D_;
    size_t off_fb = total; total += N * 2 * D_;
    size_t off_fs = total; total += N * 2 * D_;
    size_t off_fh = total; total += N * 2 * D_;
    size_t fc_off[UNET_NUM_FC];
    for (int i = 0; i < UNET_NUM_FC; i++) {
        fc_off[i] = total;
        total += 3 * N * 2 * D_;
    }
    /* the options' buffers, after all of the SPEC model's */
    size_t res_off[UNET_NUM_RES] = {0}, attn_out_off[UNET_NUM_ATTN] = {0},
           attn_saved_off[UNET_NUM_ATTN] = {0};
    for (int i = 0; m->residual && i < UNET_NUM_RES; i++) {
        const UnitSpec *s = &UNIT_SPECS[RES_FIRST[i] + 1];
        res_off[i] = total;
        total += N * (size_t)s->co_mul * D_ * (size_t)s->hout * (size_t)s->hout;
    }
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        if (!(m->attention & (1 << i))) continue;
        int c = ATTN_SPECS[i].c_mul * D, hw = ATTN_SPECS[i].h * ATTN_SPECS[i].h;
        attn_out_off[i] = total;
        total += N * (size_t)c * (size_t)hw;
        attn_saved_off[i] = total;
        total += attention_saved_floats(max_batch, c, hw);
    }
    /* page-backed: the parts a run never touches (in sampling, the backward buffers and the
     * units' conv_out) take no resident memory */
    m->arena_bytes = total * sizeof(float);
    float *A = xcalloc_pages(m->arena_bytes);
    m->arena = A;

    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnitSpec *s = &UNIT_SPECS[i];
        UnetUnit *u = &m->units[i];
        u->name = s->name;
        u->transposed = s->transposed;
        u->ci = s->ci_one ? 1 : s->ci_mul * D;
        u->co = s->co_mul * D;
        u->k = s->k;
        u->stride = s->stride;
        u->pad = s->pad;
        u->hin = s->hin;
        u->hout = s->hout;
        u->w = m->params + m->tensors[idx[i][0]].offset;
        u->b = m->params + m->tensors[idx[i][1]].offset;
        u->gamma = m->params + m->tensors[idx[i][2]].offset;
        u->beta = m->params + m->tensors[idx[i][3]].offset;
        u->dw = m->grads + m->tensors[idx[i][0]].offset;
        u->db = m->grads + m->tensors[idx[i][1]].offset;
        u->dgamma = m->grads + m->tensors[idx[i][2]].offset;
        u->dbeta = m->grads + m->tensors[idx[i][3]].offset;
        u->running_mean = m->buffers + m->tensors[idx[i][4]].offset;
        u->running_var = m->buffers + m->tensors[idx[i][5]].offset;
        u->conv_out = A + conv_off[i];
        u->act = A + act_off[i];
        u->mean = A + stat_off[i];
        u->rstd = A + stat_off[i] + u->co;
    }
    m->out_w = m->params + m->tensors[out_idx[0]].offset;
    m->out_b = m->params + m->tensors[out_idx[1]].offset;
    m->out_dw = m->grads + m->tensors[out_idx[0]].offset;
    m->out_db = m->grads + m->tensors[out_idx[1]].offset;
    for (int i = 0; i < UNET_NUM_FC; i++) {
        UnetFc *f = &m->fc[i];
        f->name = FC_NAMES[i];
        if (!uses_fc(kind, i)) continue;
        m->n_fc++;
        f->fi = (i == FC_T1 || i == FC_T2) ? (temb ? temb : 1) : UNET_NUM_CLASSES;
        f->fo = (i == FC_T1 || i == FC_C1) ? 2 * D : D;
        float **p[4] = {&f->w1, &f->b1, &f->w2, &f->b2};
        float **g[4] = {&f->dw1, &f->db1, &f->dw2, &f->db2};
        for (int j = 0; j < 4; j++) {
            *p[j] = m->params + m->tensors[fc_idx[i][j]].offset;
            *g[j] = m->grads + m->tensors[fc_idx[i][j]].offset;
        }
        f->h = A + fc_off[i];
        f->g = f->h + N * 2 * D_;
        f->out = f->g + N * 2 * D_;
    }
    m->x = A + off_x;
    m->tn = A + off_tn;
    m->temb_buf = temb ? A + off_temb : NULL;
    m->onehot = A + off_oh;
    m->pooled = A + off_pooled;
    m->pooled_g = A + off_pooled_g;
    m->cond1 = A + off_cond1;
    m->cond2 = A + off_cond2;
    m->cat1 = A + off_cat1;
    m->cat2 = A + off_cat2;
    m->cat3 = A + off_cat3;
    m->out = A + off_out;
    m->g_a = A + off_ga;
    m->g_b = A + off_gb;
    m->g_c = A + off_gc;
    m->g_cat1 = A + off_gcat1;
    m->g_cat2 = A + off_gcat2;
    m->g_cat3 = A + off_gcat3;
    m->g_x1 = A + off_gx1;
    m->g_x2 = A + off_gx2;
    m->s1 = A + off_s1;
    m->s2 = A + off_s2;
    m->g_pooled = A + off_gp;
    m->g_fc_a = A + off_fa;
    m->g_fc_b = A + off_fb;
    m->g_film_scale = A + off_fs;
    m->g_film_shift = A + off_fh;
    for (int i = 0; m->residual && i < UNET_NUM_RES; i++) m->res[i] = A + res_off[i];
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        UnetAttn *a = &m->attn[i];
        a->name = ATTN_SPECS[i].name;
        if (!(m->attention & (1 << i))) continue;
        a->c = ATTN_SPECS[i].c_mul * D;
        a->hw = ATTN_SPECS[i].h * ATTN_SPECS[i].h;
        float **p[4] = {&a->w_qkv, &a->b_qkv, &a->w_proj, &a->b_proj};
        float **g[4] = {&a->dw_qkv, &a->db_qkv, &a->dw_proj, &a->db_proj};
        for (int j = 0; j < 4; j++) {
            *p[j] = m->params + m->tensors[attn_idx[i][j]].offset;
            *g[j] = m->grads + m->tensors[attn_idx[i][j]].offset;
        }
        a->out = A + attn_out_off[i];
        a->saved = A + attn_saved_off[i];
    }

    /* One workspace for every operator: the largest any layer asks for. */
    size_t ws = 0;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        ConvShape s = unit_shape(&m->units[i], max_batch);
        size_t need = m->units[i].transposed ? conv_transpose2d_workspace_floats(&s, nthreads)
                                             : conv2d_workspace_floats(&s, nthreads);
        if (need > ws) ws = need;
    }
    ConvShape so = out_shape(m, max_batch);
    size_t need = conv2d_workspace_floats(&so, nthreads);
    if (need > ws) ws = need;
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        if (!m->attn[i].out) continue;
        need = attention_workspace_floats(max_batch, m->attn[i].c, m->attn[i].hw, nthreads);
        if (need > ws) ws = need;
    }
    size_t fold = 0;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnetUnit *u = &m->units[i];
        size_t f = (size_t)u->co * ((size_t)u->ci * (size_t)u->k * (size_t)u->k + 1);
        if (f > fold) fold = f;
    }
    m->fold = xmalloc(fold * sizeof(float));
    ops_ctx_init(&m->ctx, NULL, nthreads); /* the default backend: cannot fail */
    m->ctx.ws_floats = ws;
    m->ctx.ws = xcalloc_pages((ws ? ws : 1) * sizeof(float));
    return 0;
}

void unet_free(Unet *m) {
    xfree(m->tensors);
    xfree(m->params);
    xfree(m->grads);
    xfree(m->buffers);
    xfree_pages(m->arena, m->arena_bytes);
    xfree(m->fold);
    xfree_pages(m->ctx.ws, (m->ctx.ws_floats ? m->ctx.ws_floats : 1) * sizeof(float));
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

double unet_forward_macs(const Unet *m) {
    double macs = 0;
    for (int i = 0; i < UNET_NUM_UNITS; i++) {
        const UnetUnit *u = &m->units[i];
        if (u->transposed)
            macs += (double)u->ci * u->hin * u->hin * u->co * u->k * u->k;
        else
            macs += (double)u->co * u->hout * u->hout * u->ci * u->k * u->k;
    }
    macs += (double)m->width * IMG * IMG * 9; /* output conv */
    for (int i = 0; i < UNET_NUM_ATTN; i++) {
        const UnetAttn *a = &m->attn[i];
        if (!a->out) continue;
        /* projections 3C^2 L + C^2 L, scores and weighted sum 2 L^2 C */
        double c = a->c, l = a->hw;
        macs += 4.0 * c * c * l + 2.0 * l * l * c;
    }
    return macs;
}

void unet_zero_grad(Unet *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

/* ---- profiling ---------------------------------------------------------------------- */

/* Start of a timed interval (0 when not profiling). */
static double prof_now(const Unet *m) { return m->prof ? now_seconds() : 0.0; }

/* Adds the time since *t to *slot and restarts the interval at now. */
static void prof_lap(const Unet *m, double *slot, double *t) {
    if (!m->prof) return;
    double now = now_seconds();
    *slot += now - *t;
    *t = now;
}

/* The profile row of a unit, or NULL when not profiling. */
static double *prof_row(const Unet *m, const UnetUnit *u, int backward) {
    if (!m->prof) return NULL;
    int i = (int)(u - m->units);
    return backward ? m->prof->bwd[i] : m->prof->fwd[i];
}

/* ---- forward ----------------------------------------------------------------------- */

/* The unit's convolution with eval-mode BatchNorm folded in, into m->fold: per output
 * channel o, s = gamma / sqrt(running_var + eps), weights times s and bias (b - mean) s + beta.
 * Returns the folded bias; the weights start at m->fold. */
static const float *fold_batchnorm(Unet *m, const UnetUnit *u) {
    const size_t kk = (size_t)u->k * (size_t)u->k, per = (size_t)u->ci * kk;
    float *w = m->fold, *b = m->fold + (size_t)u->co * per;
    for (int o = 0; o < u->co; o++) {
        float sc = u->gamma[o] / sqrtf(u->running_var[o] + 1e-5f);
        b[o] = (u->b[o] - u->running_mean[o]) * sc + u->beta[o];
        if (u->transposed) /* (Ci, Co, K, K) */
            for (int i = 0; i < u->ci; i++)
                for (size_t j = 0; j < kk; j++) {
                    size_t e = ((size_t)i * (size_t)u->co + (size_t)o) * kk + j;
                    w[e] = u->w[e] * sc;
                }
        else /* (Co, Ci, K, K) */
            for (size_t e = (size_t)o * per; e < (size_t)(o + 1) * per; e++) w[e] = u->w[e] * sc;
    }
    return b;
}

static void unit_forward(Unet *m, UnetUnit *u, const float *in, int n, int train) {
    ConvShape s = unit_shape(u, n);
    int hw = u->hout * u->hout;
    int64_t count = (int64_t)n * u->co * hw;
    double *row = prof_row(m, u, 0), t = prof_now(m);
    u->input = in;
    if (train == UNET_INFER) {
        /* the pre-GELU values go to the shared scratch s1, not the unit's conv_out (kept for
         * backward in the other modes): sampling then never touches the conv_out pages, and
         * the process's resident memory stays smaller */
        const float *b = fold_batchnorm(m, u);
        if (u->transposed)
            conv_transpose2d_forward(&m->ctx, m->s1, in, m->fold, b, &s);
        else
            conv2d_forward(&m->ctx, m->s1, in, m->fold, b, &s);
        if (row) prof_lap(m, &row[UNET_PROF_CONV], &t);
        gelu_forward(&m->ctx, u->act, m->s1, count);
        if (row) prof_lap(m, &row[UNET_PROF_GELU], &t);
        return;
    }
    if (u->transposed)
        conv_transpose2d_forward(&m->ctx, u->conv_out, in, u->w, u->b, &s);
    else
        conv2d_forward(&m->ctx, u->conv_out, in, u->w, u->b, &s);
    if (row) prof_lap(m, &row[UNET_PROF_CONV], &t);
    if (train == UNET_TRAIN) { /* BatchNorm and GELU in one operator */
        bn_gelu_forward_train(&m->ctx, u->act, u->mean, u->rstd, u->running_mean,
                              u->running_var, u->conv_out, u->gamma, u->beta, n, u->co, hw,
                              0.1f, 1e-5f);
        if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
        return;
    }
    batchnorm2d_forward_eval(&m->ctx, m->s1, u->conv_out, u->gamma, u->beta, u->running_mean,
                             u->running_var, n, u->co, hw, 1e-5f);
    if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
    gelu_forward(&m->ctx, u->act, m->s1, count);
    if (row) prof_lap(m, &row[UNET_PROF_GELU], &t);
}

static void fc_forward(Unet *m, UnetFc *f, const float *in, int n) {
    linear_forward(&m->ctx, f->h, in, f->w1, f->b1, n, f->fi, f->fo);
    gelu_forward(&m->ctx, f->g, f->h, (int64_t)n * f->fo);
    linear_forward(&m->ctx, f->out, f->g, f->w2, f->b2, n, f->fo, f->fo);
}

/* Conditioning point: dst = scale * src + shift (scale from c1/c2 for the class model). */
static const float *condition(Unet *m, float *dst, const float *src, int fc_t, int fc_c, int n,
                              int c, int hw) {
    if (m->kind == UNET_DENOISER) return src;
    const float *scale = m->kind == UNET_CLASS ? m->fc[fc_c].out : NULL;
    film_forward(&m->ctx, dst, src, scale, m->fc[fc_t].out, n, c, hw);
    return dst;
}

/* Output of the ConvBlock of units first, first + 1 (index r of RES_FIRST), whose input is
 * unit first - 1's output: with residual blocks x + block(x) in m->res[r], else the unit's. */
static const float *block_out(Unet *m, int r, int n) {
    const UnetUnit *u0 = &m->units[RES_FIRST[r] - 1], *u2 = &m->units[RES_FIRST[r] + 1];
    if (!m->residual) return u2->act;
    size_t count = (size_t)n * (size_t)u2->co * (size_t)u2->hout * (size_t)u2->hout;
    float *y = m->res[r];
    const float *a = u0->act, *b = u2->act;
#pragma omp parallel for num_threads(m->ctx.nthreads) schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
    return y;
}

/* The attention layer i on x when it is enabled (returns its output), else x. */
static const float *attn_forward(Unet *m, int i, const float *x, int n) {
    UnetAttn *a = &m->attn[i];
    if (!a->out) return x;
    a->input = x;
    attention_forward(&m->ctx, a->out, a->saved, x, a->w_qkv, a->b_qkv, a->w_proj, a->b_proj, n,
                      a->c, a->hw);
    return a->out;
}

const float *unet_forward(Unet *m, const float *x, const float *tn, const float *onehot, int n,
                          int train) {
    DDPM_CHECK(n >= 1 && n <= m->max_batch);
    DDPM_CHECK(train == UNET_EVAL || train == UNET_TRAIN || train == UNET_INFER);
    const int D = m->width;
    UnetUnit *U = m->units;
    double t_pass = prof_now(m);
    m->last_train = train;
    m->last_n = n;
    memcpy(m->x, x, (size_t)n * IMG * IMG * sizeof(float));
    if (m->kind != UNET_DENOISER) {
        DDPM_CHECK(tn != NULL);
        memcpy(m->tn, tn, (size_t)n * sizeof(float));
        if (m->temb) unet_time_embedding(m->temb_buf, m->tn, n, m->temb);
        const float *tin = m->temb ? m->temb_buf : m->tn;
        fc_forward(m, &m->fc[FC_T1], tin, n);
        fc_forward(m, &m->fc[FC_T2], tin, n);
    }
    if (m->kind == UNET_CLASS) {
        DDPM_CHECK(onehot != NULL);
        memcpy(m->onehot, onehot, (size_t)n * UNET_NUM_CLASSES * sizeof(float));
        fc_forward(m, &m->fc[FC_C1], m->onehot, n);
        fc_forward(m, &m->fc[FC_C2], m->onehot, n);
    }
    /* encoder */
    unit_forward(m, &U[U_ENC0_0], m->x, n, train);
    for (int i = U_ENC0_1; i <= U_DOWN1_2; i++) unit_forward(m, &U[i], U[i - 1].act, n, train);
    const float *a = U[U_ENC0_1].act, *b = block_out(m, RES_DOWN1, n);
    unit_forward(m, &U[U_DOWN2_0], b, n, train);
    unit_forward(m, &U[U_DOWN2_1], U[U_DOWN2_0].act, n, train);
    unit_forward(m, &U[U_DOWN2_2], U[U_DOWN2_1].act, n, train);
    const float *c = attn_forward(m, 0, block_out(m, RES_DOWN2, n), n);
    /* bottleneck: Flatten then Unflatten */
    avgpool_forward(&m->ctx, m->pooled, c, n * 2 * D, 49);
    gelu_forward(&m->ctx, m->pooled_g, m->pooled, (int64_t)n * 2 * D);
    unit_forward(m, &U[U_UNFLAT], m->pooled_g, n, train);
    const float *u1 = condition(m, m->cond1, U[U_UNFLAT].act, FC_T1, FC_C1, n, 2 * D, 49);
    concat_forward(&m->ctx, m->cat1, u1, c, n, 2 * D, 2 * D, 49);
    /* decoder */
    unit_forward(m, &U[U_UP1_0], m->cat1, n, train);
    unit_forward(m, &U[U_UP1_1], U[U_UP1_0].act, n, train);
    unit_forward(m, &U[U_UP1_2], U[U_UP1_1].act, n, train);
    m->cond2_in = attn_forward(m, 1, block_out(m, RES_UP1, n), n);
    const float *u2 = condition(m, m->cond2, m->cond2_in, FC_T2, FC_C2, n, D, 196);
    concat_forward(&m->ctx, m->cat2, u2, b, n, D, D, 196);
    unit_forward(m, &U[U_UP2_0], m->cat2, n, train);
    unit_forward(m, &U[U_UP2_1], U[U_UP2_0].act, n, train);
    unit_forward(m, &U[U_UP2_2], U[U_UP2_1].act, n, train);
    concat_forward(&m->ctx, m->cat3, block_out(m, RES_UP2, n), a, n, D, D, 784);
    unit_forward(m, &U[U_DEC_0], m->cat3, n, train);
    unit_forward(m, &U[U_DEC_1], U[U_DEC_0].act, n, train);
    ConvShape so = out_shape(m, n);
    double t = prof_now(m);
    if (train == UNET_INFER)
        conv2d_forward(&m->ctx, m->out, U[U_DEC_1].act, m->out_w, m->out_b, &so);
    else
        conv2d_forward(&m->ctx, m->out, U[U_DEC_1].act, m->out_w, m->out_b, &so);
    if (m->prof) {
        prof_lap(m, &m->prof->fwd[UNET_NUM_UNITS][UNET_PROF_CONV], &t);
        m->prof->total_fwd += t - t_pass;
    }
    return m->out;
}

/* ---- backward ---------------------------------------------------------------------- */

static void zero(float *p, size_t count) { memset(p, 0, count * sizeof(float)); }

/* Backward of one unit: d_out is the gradient of its output; d_in (may be NULL)
 * accumulates the gradient of its input. Uses s1, s2 as scratch. */
static void unit_backward(Unet *m, UnetUnit *u, float *d_in, const float *d_out, int n) {
    int hw = u->hout * u->hout;
    size_t count = (size_t)n * (size_t)u->co * (size_t)hw;
    double *row = prof_row(m, u, 1), t = prof_now(m);
    if (m->last_train == UNET_TRAIN) { /* GELU and BatchNorm in one operator, into s1 */
        bn_gelu_backward_train(&m->ctx, m->s1, u->dgamma, u->dbeta, d_out, u->conv_out, u->mean,
                               u->rstd, u->gamma, u->beta, n, u->co, hw);
        if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
    } else {
        batchnorm2d_forward_eval(&m->ctx, m->s1, u->conv_out, u->gamma, u->beta,
                                 u->running_mean, u->running_var, n, u->co, hw, 1e-5f);
        if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
        zero(m->s2, count);
        gelu_backward(&m->ctx, m->s2, d_out, m->s1, (int64_t)count);
        if (row) prof_lap(m, &row[UNET_PROF_GELU], &t);
        zero(m->s1, count);
        batchnorm2d_backward_eval(&m->ctx, m->s1, u->dgamma, u->dbeta, m->s2, u->conv_out,
                                  u->running_mean, u->running_var, u->gamma, n, u->co, hw,
                                  1e-5f);
        if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
    }
    ConvShape s = unit_shape(u, n);
    if (u->transposed)
        conv_transpose2d_backward(&m->ctx, d_in, u->dw, u->db, m->s1, u->input, u->w, &s);
    else
        conv2d_backward(&m->ctx, d_in, u->dw, u->db, m->s1, u->input, u->w, &s);
    if (row) prof_lap(m, &row[UNET_PROF_CONV], &t);
}

static void fc_backward(Unet *m, UnetFc *f, const float *in, const float *dout, int n) {
    size_t cnt = (size_t)n * (size_t)f->fo;
    zero(m->g_fc_a, cnt);
    linear_backward(&m->ctx, m->g_fc_a, f->dw2, f->db2, dout, f->g, f->w2, n, f->fo, f->fo);
    zero(m->g_fc_b, cnt);
    gelu_backward(&m->ctx, m->g_fc_b, m->g_fc_a, f->h, (int64_t)cnt);
    linear_backward(&m->ctx, NULL, f->dw1, f->db1, m->g_fc_b, in, f->w1, n, f->fi, f->fo);
}

/* Backward through a conditioning point: dy is the gradient after it; returns the gradient
 * before it (written into dx_buf unless there is no conditioning). */
static const float *condition_backward(Unet *m, float *dx_buf, const float *dy, const float *x,
                                       int fc_t, int fc_c, int n, int c, int hw) {
    if (m->kind == UNET_DENOISER) return dy;
    size_t cnt = (size_t)n * (size_t)c;
    int cls = m->kind == UNET_CLASS;
    zero(dx_buf, cnt * (size_t)hw);
    zero(m->g_film_shift, cnt);
    if (cls) zero(m->g_film_scale, cnt);
    film_backward(&m->ctx, dx_buf, cls ? m->g_film_scale : NULL, m->g_film_shift, dy, x,
                  cls ? m->fc[fc_c].out : NULL, n, c, hw);
    fc_backward(m, &m->fc[fc_t], m->temb ? m->temb_buf : m->tn, m->g_film_shift, n);
    if (cls) fc_backward(m, &m->fc[fc_c], m->onehot, m->g_film_scale, n);
    return dx_buf;
}

void unet_backward(Unet *m, const float *dout) {
    DDPM_CHECK(m->last_train != UNET_INFER); /* an inference forward keeps no backward state */
    const int n = m->last_n, D = m->width;
    const size_t N = (size_t)n, D_ = (size_t)D;
    UnetUnit *U = m->units;
    float *p = m->g_x1, *q = m->g_x2; /* ping-pong gradients of the unit chain */
    float *t;
#define SWAP() (t = p, p = q, q = t)

    /* output conv, dec.1, dec.0 */
    double t_pass = prof_now(m), t_out = t_pass;
    ConvShape so = out_shape(m, n);
    zero(p, N * D_ * 784);
    conv2d_backward(&m->ctx, p, m->out_dw, m->out_db, dout, U[U_DEC_1].act, m->out_w, &so);
    if (m->prof) prof_lap(m, &m->prof->bwd[UNET_NUM_UNITS][UNET_PROF_CONV], &t_out);
    zero(q, N * D_ * 784);
    unit_backward(m, &U[U_DEC_1], q, p, n);
    SWAP();
    zero(m->g_cat3, N * 2 * D_ * 784);
    unit_backward(m, &U[U_DEC_0], m->g_cat3, p, n);
    zero(q, N * D_ * 784);
    zero(m->g_a, N * D_ * 784);
    concat_backward(&m->ctx, q, m->g_a, m->g_cat3, n, D, D, 784);
    SWAP();
    /* second UpBlock. With residual blocks, the gradient of the block's input is that of its
     * output (still in q after the first unit: the ping-pong's other buffer) plus the chain's:
     * the ConvBlock's first unit accumulates into it instead of a zeroed buffer. */
    for (int i = U_UP2_2; i >= U_UP2_1; i--) {
        if (!(m->residual && i == U_UP2_1)) zero(q, N * D_ * 784);
        unit_backward(m, &U[i], q, p, n);
        SWAP();
    }
    zero(m->g_cat2, N * 2 * D_ * 196);
    unit_backward(m, &U[U_UP2_0], m->g_cat2, p, n);
    zero(q, N * D_ * 196);
    zero(m->g_b, N * D_ * 196);
    concat_backward(&m->ctx, q, m->g_b, m->g_cat2, n, D, D, 196);
    SWAP();
    /* conditioning point 2 (writes into q when present) */
    const float *g = condition_backward(m, q, p, m->cond2_in, FC_T2, FC_C2, n, D, 196);
    if (g == q) SWAP();
    /* attention at 14x14 */
    UnetAttn *at = &m->attn[1];
    if (at->out) {
        zero(q, N * D_ * 196);
        attention_backward(&m->ctx, q, at->dw_qkv, at->db_qkv, at->dw_proj, at->db_proj, p,
                           at->input, at->saved, at->w_qkv, at->w_proj, n, at->c, at->hw);
        SWAP();
    }
    /* first UpBlock (residual as the second's) */
    for (int i = U_UP1_2; i >= U_UP1_1; i--) {
        if (!(m->residual && i == U_UP1_1)) zero(q, N * D_ * 196);
        unit_backward(m, &U[i], q, p, n);
        SWAP();
    }
    zero(m->g_cat1, N * 4 * D_ * 49);
    unit_backward(m, &U[U_UP1_0], m->g_cat1, p, n);
    zero(q, N * 2 * D_ * 49);
    zero(m->g_c, N * 2 * D_ * 49);
    concat_backward(&m->ctx, q, m->g_c, m->g_cat1, n, 2 * D, 2 * D, 49);
    SWAP();
    g = condition_backward(m, q, p, U[U_UNFLAT].act, FC_T1, FC_C1, n, 2 * D, 49);
    if (g == q) SWAP();
    /* bottleneck */
    zero(m->g_fc_a, N * 2 * D_);
    unit_backward(m, &U[U_UNFLAT], m->g_fc_a, p, n);
    zero(m->g_pooled, N * 2 * D_);
    gelu_backward(&m->ctx, m->g_pooled, m->g_fc_a, m->pooled, (int64_t)(N * 2 * D_));
    avgpool_backward(&m->ctx, m->g_c, m->g_pooled, n * 2 * D, 49);
    /* encoder: the skip gradients g_c, g_b, g_a already hold the decoder's share */
    const float *gc = m->g_c; /* gradient of the second DownBlock's output */
    at = &m->attn[0];
    if (at->out) {
        zero(q, N * D_ * 2 * 49);
        attention_backward(&m->ctx, q, at->dw_qkv, at->db_qkv, at->dw_proj, at->db_proj, m->g_c,
                           at->input, at->saved, at->w_qkv, at->w_proj, n, at->c, at->hw);
        gc = q;
    }
    zero(p, N * D_ * 2 * 49);
    unit_backward(m, &U[U_DOWN2_2], p, gc, n);
    /* residual: the block input's gradient starts as the output's (the skip) */
    if (!m->residual) zero(q, N * D_ * 2 * 49);
    else if (gc != q) memcpy(q, gc, N * D_ * 2 * 49 * sizeof(float));
    unit_backward(m, &U[U_DOWN2_1], q, p, n);
    unit_backward(m, &U[U_DOWN2_0], m->g_b, q, n);
    zero(p, N * D_ * 196);
    unit_backward(m, &U[U_DOWN1_2], p, m->g_b, n);
    if (m->residual) memcpy(q, m->g_b, N * D_ * 196 * sizeof(float));
    else zero(q, N * D_ * 196);
    unit_backward(m, &U[U_DOWN1_1], q, p, n);
    unit_backward(m, &U[U_DOWN1_0], m->g_a, q, n);
    zero(p, N * D_ * 784);
    unit_backward(m, &U[U_ENC0_1], p, m->g_a, n);
    unit_backward(m, &U[U_ENC0_0], NULL, p, n);
    if (m->prof) m->prof->total_bwd += now_seconds() - t_pass;
#undef SWAP
}
