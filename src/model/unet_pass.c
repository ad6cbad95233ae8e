/* The UNet's names (kinds, attention places) and its forward and backward passes written
 * out block by block (construction and memory layout: unet_layout.c). Data flows one way:
 * this file calls the operators of ops/ on the buffers the layout placed. */
#include "model/unet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "model/unet_layout.h"
#include "ops/attention.h"

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
    case UNET_ATTN_DOWN2: return "down2";
    case UNET_ATTN_UP1: return "up1";
    case UNET_ATTN_DOWN2 | UNET_ATTN_UP1: return "down2,up1";
    }
    return "?";
}

/* The places' words, and the resolutions that named them at 28x28 before. */
static const struct { const char *word; int bit; } ATTN_WORDS[] = {
    {"down2", UNET_ATTN_DOWN2}, {"up1", UNET_ATTN_UP1}, {"7", UNET_ATTN_DOWN2}, {"14", UNET_ATTN_UP1}};

int unet_attention_parse(const char *s, int *out) {
    if (strcmp(s, "none") == 0) {
        *out = 0;
        return 0;
    }
    int mask = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, ","), w = 0;
        while (w < sizeof ATTN_WORDS / sizeof ATTN_WORDS[0] &&
               (strlen(ATTN_WORDS[w].word) != len || strncmp(p, ATTN_WORDS[w].word, len) != 0))
            w++;
        if (w == sizeof ATTN_WORDS / sizeof ATTN_WORDS[0] || (mask & ATTN_WORDS[w].bit)) break;
        mask |= ATTN_WORDS[w].bit;
        p += len;
        if (*p == '\0') {
            *out = mask;
            return 0;
        }
        p++;
    }
    return err_set("unknown attention places '%.40s' (expected down2, up1, down2,up1 or none; "
                   "7 and 14 are the old names of down2 and up1)", s);
}

int unet_tensor_legacy_name(const char *name, char *out, size_t size) {
    static const struct { const char *now, *before; } RENAMED[] = {
        {"down2.attn.", "attn7."}, {"up1.attn.", "attn14."}};
    for (size_t r = 0; r < sizeof RENAMED / sizeof RENAMED[0]; r++) {
        const char *at = strstr(name, RENAMED[r].now);
        if (!at) continue;
        /* a prefix ends with '.' ("ema.", "adam.m."), so the place starts a name component */
        if (at != name && at[-1] != '.') continue;
        int len = snprintf(out, size, "%.*s%s%s", (int)(at - name), name, RENAMED[r].before,
                           at + strlen(RENAMED[r].now));
        return len >= 0 && (size_t)len < size ? 0 : -1;
    }
    return -1;
}

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

/* The unit's convolution with eval-mode BatchNorm folded in, into m->fold (ops.h bn_fold).
 * Returns the folded bias; the weights start at m->fold. */
static const float *fold_batchnorm(Unet *m, const UnetUnit *u) {
    float *b = m->fold + (size_t)u->co * (size_t)u->ci * (size_t)u->k * (size_t)u->k;
    bn_fold(&m->ctx, m->fold, b, u->w, u->b, u->gamma, u->beta, u->running_mean, u->running_var,
            u->ci, u->co, u->k, u->transposed, 1e-5f);
    return b;
}

static void unit_forward(Unet *m, UnetUnit *u, const float *in, int n, int train) {
    ConvShape s = unet_unit_shape(u, n);
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
    const UnetUnit *u0 = &m->units[UNET_RES_FIRST[r] - 1], *u2 = &m->units[UNET_RES_FIRST[r] + 1];
    if (!m->residual) return u2->act;
    size_t count = (size_t)n * (size_t)u2->co * (size_t)u2->hout * (size_t)u2->hout;
    add_forward(&m->ctx, m->res[r], u0->act, u2->act, count);
    return m->res[r];
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
    const int D = m->width, H = m->geom.height;
    const int hw1 = H * H, hw2 = hw1 / 4, hw4 = hw1 / 16; /* H x H, H/2 x H/2, H/4 x H/4 maps */
    UnetUnit *U = m->units;
    double t_pass = prof_now(m);
    m->last_train = train;
    m->last_n = n;
    dev_copy(&m->ctx, m->x, x, (size_t)n * geometry_pixels(&m->geom));
    if (m->kind != UNET_DENOISER) {
        DDPM_CHECK(tn != NULL);
        dev_copy(&m->ctx, m->tn, tn, (size_t)n);
        if (m->temb) time_embedding_forward(&m->ctx, m->temb_buf, m->tn, n, m->temb);
        const float *tin = m->temb ? m->temb_buf : m->tn;
        fc_forward(m, &m->fc[FC_T1], tin, n);
        fc_forward(m, &m->fc[FC_T2], tin, n);
    }
    if (m->kind == UNET_CLASS) {
        DDPM_CHECK(onehot != NULL);
        dev_copy(&m->ctx, m->onehot, onehot, (size_t)n * (size_t)m->geom.classes);
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
    const float *c = attn_forward(m, ATTN_DOWN2, block_out(m, RES_DOWN2, n), n);
    /* bottleneck: Flatten then Unflatten */
    avgpool_forward(&m->ctx, m->pooled, c, n * 2 * D, hw4);
    gelu_forward(&m->ctx, m->pooled_g, m->pooled, (int64_t)n * 2 * D);
    unit_forward(m, &U[U_UNFLAT], m->pooled_g, n, train);
    const float *u1 = condition(m, m->cond1, U[U_UNFLAT].act, FC_T1, FC_C1, n, 2 * D, hw4);
    concat_forward(&m->ctx, m->cat1, u1, c, n, 2 * D, 2 * D, hw4);
    /* decoder */
    unit_forward(m, &U[U_UP1_0], m->cat1, n, train);
    unit_forward(m, &U[U_UP1_1], U[U_UP1_0].act, n, train);
    unit_forward(m, &U[U_UP1_2], U[U_UP1_1].act, n, train);
    m->cond2_in = attn_forward(m, ATTN_UP1, block_out(m, RES_UP1, n), n);
    const float *u2 = condition(m, m->cond2, m->cond2_in, FC_T2, FC_C2, n, D, hw2);
    concat_forward(&m->ctx, m->cat2, u2, b, n, D, D, hw2);
    unit_forward(m, &U[U_UP2_0], m->cat2, n, train);
    unit_forward(m, &U[U_UP2_1], U[U_UP2_0].act, n, train);
    unit_forward(m, &U[U_UP2_2], U[U_UP2_1].act, n, train);
    concat_forward(&m->ctx, m->cat3, block_out(m, RES_UP2, n), a, n, D, D, hw1);
    unit_forward(m, &U[U_DEC_0], m->cat3, n, train);
    unit_forward(m, &U[U_DEC_1], U[U_DEC_0].act, n, train);
    ConvShape so = unet_out_shape(m, n);
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

/* A tensor of count floats set to zero, before an operator accumulates into it. */
static void zero(const Unet *m, float *p, size_t count) { dev_fill(&m->ctx, p, 0.0f, count); }

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
        zero(m, m->s2, count);
        gelu_backward(&m->ctx, m->s2, d_out, m->s1, (int64_t)count);
        if (row) prof_lap(m, &row[UNET_PROF_GELU], &t);
        zero(m, m->s1, count);
        batchnorm2d_backward_eval(&m->ctx, m->s1, u->dgamma, u->dbeta, m->s2, u->conv_out,
                                  u->running_mean, u->running_var, u->gamma, n, u->co, hw,
                                  1e-5f);
        if (row) prof_lap(m, &row[UNET_PROF_BN], &t);
    }
    ConvShape s = unet_unit_shape(u, n);
    if (u->transposed)
        conv_transpose2d_backward(&m->ctx, d_in, u->dw, u->db, m->s1, u->input, u->w, &s);
    else
        conv2d_backward(&m->ctx, d_in, u->dw, u->db, m->s1, u->input, u->w, &s);
    if (row) prof_lap(m, &row[UNET_PROF_CONV], &t);
}

static void fc_backward(Unet *m, UnetFc *f, const float *in, const float *dout, int n) {
    size_t cnt = (size_t)n * (size_t)f->fo;
    zero(m, m->g_fc_a, cnt);
    linear_backward(&m->ctx, m->g_fc_a, f->dw2, f->db2, dout, f->g, f->w2, n, f->fo, f->fo);
    zero(m, m->g_fc_b, cnt);
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
    zero(m, dx_buf, cnt * (size_t)hw);
    zero(m, m->g_film_shift, cnt);
    if (cls) zero(m, m->g_film_scale, cnt);
    film_backward(&m->ctx, dx_buf, cls ? m->g_film_scale : NULL, m->g_film_shift, dy, x,
                  cls ? m->fc[fc_c].out : NULL, n, c, hw);
    fc_backward(m, &m->fc[fc_t], m->temb ? m->temb_buf : m->tn, m->g_film_shift, n);
    if (cls) fc_backward(m, &m->fc[fc_c], m->onehot, m->g_film_scale, n);
    return dx_buf;
}

void unet_backward(Unet *m, const float *dout) {
    DDPM_CHECK(m->last_train != UNET_INFER); /* an inference forward keeps no backward state */
    const int n = m->last_n, D = m->width, H = m->geom.height;
    const int hw1 = H * H, hw2 = hw1 / 4, hw4 = hw1 / 16; /* H x H, H/2 x H/2, H/4 x H/4 maps */
    const size_t N = (size_t)n, D_ = (size_t)D, S1 = (size_t)hw1, S2 = (size_t)hw2, S4 = (size_t)hw4;
    UnetUnit *U = m->units;
    float *p = m->g_x1, *q = m->g_x2; /* ping-pong gradients of the unit chain */
    float *t;
#define SWAP() (t = p, p = q, q = t)

    /* output conv, dec.1, dec.0 */
    double t_pass = prof_now(m), t_out = t_pass;
    ConvShape so = unet_out_shape(m, n);
    zero(m, p, N * D_ * S1);
    conv2d_backward(&m->ctx, p, m->out_dw, m->out_db, dout, U[U_DEC_1].act, m->out_w, &so);
    if (m->prof) prof_lap(m, &m->prof->bwd[UNET_NUM_UNITS][UNET_PROF_CONV], &t_out);
    zero(m, q, N * D_ * S1);
    unit_backward(m, &U[U_DEC_1], q, p, n);
    SWAP();
    zero(m, m->g_cat3, N * 2 * D_ * S1);
    unit_backward(m, &U[U_DEC_0], m->g_cat3, p, n);
    zero(m, q, N * D_ * S1);
    zero(m, m->g_a, N * D_ * S1);
    concat_backward(&m->ctx, q, m->g_a, m->g_cat3, n, D, D, hw1);
    SWAP();
    /* second UpBlock. With residual blocks, the gradient of the block's input is that of its
     * output (still in q after the first unit: the ping-pong's other buffer) plus the chain's:
     * the ConvBlock's first unit accumulates into it instead of a zeroed buffer. */
    for (int i = U_UP2_2; i >= U_UP2_1; i--) {
        if (!(m->residual && i == U_UP2_1)) zero(m, q, N * D_ * S1);
        unit_backward(m, &U[i], q, p, n);
        SWAP();
    }
    zero(m, m->g_cat2, N * 2 * D_ * S2);
    unit_backward(m, &U[U_UP2_0], m->g_cat2, p, n);
    zero(m, q, N * D_ * S2);
    zero(m, m->g_b, N * D_ * S2);
    concat_backward(&m->ctx, q, m->g_b, m->g_cat2, n, D, D, hw2);
    SWAP();
    /* conditioning point 2 (writes into q when present) */
    const float *g = condition_backward(m, q, p, m->cond2_in, FC_T2, FC_C2, n, D, hw2);
    if (g == q) SWAP();
    /* attention after up1 */
    UnetAttn *at = &m->attn[ATTN_UP1];
    if (at->out) {
        zero(m, q, N * D_ * S2);
        attention_backward(&m->ctx, q, at->dw_qkv, at->db_qkv, at->dw_proj, at->db_proj, p,
                           at->input, at->saved, at->w_qkv, at->w_proj, n, at->c, at->hw);
        SWAP();
    }
    /* first UpBlock (residual as the second's) */
    for (int i = U_UP1_2; i >= U_UP1_1; i--) {
        if (!(m->residual && i == U_UP1_1)) zero(m, q, N * D_ * S2);
        unit_backward(m, &U[i], q, p, n);
        SWAP();
    }
    zero(m, m->g_cat1, N * 4 * D_ * S4);
    unit_backward(m, &U[U_UP1_0], m->g_cat1, p, n);
    zero(m, q, N * 2 * D_ * S4);
    zero(m, m->g_c, N * 2 * D_ * S4);
    concat_backward(&m->ctx, q, m->g_c, m->g_cat1, n, 2 * D, 2 * D, hw4);
    SWAP();
    g = condition_backward(m, q, p, U[U_UNFLAT].act, FC_T1, FC_C1, n, 2 * D, hw4);
    if (g == q) SWAP();
    /* bottleneck */
    zero(m, m->g_fc_a, N * 2 * D_);
    unit_backward(m, &U[U_UNFLAT], m->g_fc_a, p, n);
    zero(m, m->g_pooled, N * 2 * D_);
    gelu_backward(&m->ctx, m->g_pooled, m->g_fc_a, m->pooled, (int64_t)(N * 2 * D_));
    avgpool_backward(&m->ctx, m->g_c, m->g_pooled, n * 2 * D, hw4);
    /* encoder: the skip gradients g_c, g_b, g_a already hold the decoder's share */
    const float *gc = m->g_c; /* gradient of the second DownBlock's output */
    at = &m->attn[ATTN_DOWN2];
    if (at->out) {
        zero(m, q, N * D_ * 2 * S4);
        attention_backward(&m->ctx, q, at->dw_qkv, at->db_qkv, at->dw_proj, at->db_proj, m->g_c,
                           at->input, at->saved, at->w_qkv, at->w_proj, n, at->c, at->hw);
        gc = q;
    }
    zero(m, p, N * D_ * 2 * S4);
    unit_backward(m, &U[U_DOWN2_2], p, gc, n);
    /* residual: the block input's gradient starts as the output's (the skip) */
    if (!m->residual) zero(m, q, N * D_ * 2 * S4);
    else if (gc != q) dev_copy(&m->ctx, q, gc, N * D_ * 2 * S4);
    unit_backward(m, &U[U_DOWN2_1], q, p, n);
    unit_backward(m, &U[U_DOWN2_0], m->g_b, q, n);
    zero(m, p, N * D_ * S2);
    unit_backward(m, &U[U_DOWN1_2], p, m->g_b, n);
    if (m->residual) dev_copy(&m->ctx, q, m->g_b, N * D_ * S2);
    else zero(m, q, N * D_ * S2);
    unit_backward(m, &U[U_DOWN1_1], q, p, n);
    unit_backward(m, &U[U_DOWN1_0], m->g_a, q, n);
    zero(m, p, N * D_ * S1);
    unit_backward(m, &U[U_ENC0_1], p, m->g_a, n);
    unit_backward(m, &U[U_ENC0_0], NULL, p, n);
    if (m->prof) m->prof->total_bwd += now_seconds() - t_pass;
#undef SWAP
}
