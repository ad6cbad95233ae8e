/* The UNet's UpConv, a transposed convolution with a 4x4 kernel, stride 2 and padding 1
 * (H x W -> 2H x 2W), by sub-pixel Winograd F(2x2, 2x2): the fast path beside col2im + SGEMM
 * (conv.c), chosen by conv_transpose2d_forward / _backward (conv_transpose2d_uses_winograd).
 *
 * Output pixel (2m + a, 2n + b) of phase (a, b) only sees the 2x2 input pixels at rows
 * m + a - 1 + t and columns n + b - 1 + u (t, u in {0, 1}), through the kernel taps
 * w[3 - a - 2t][3 - b - 2u]: each phase is a 2x2 correlation on the input grid. F(2, 2) makes
 * two outputs of a 2-tap filter g from three inputs d with three multiplies:
 *     B^T d = (d0 - d1, d1, d2 - d1),  G g = (g0, g0 + g1, g1),  y = (m0 + m1, m1 + m2).
 * A tile here is the 4x4 input patch at rows 2ty - 1 .. 2ty + 2 (columns alike), which holds
 * the 3x3 inputs of all four phases of the 4x4 output block at rows 4ty .. 4ty + 3: phase 0
 * reads patch rows 0..2 and phase 1 rows 1..3. Stacked, the transforms become 6x4 and 4x6
 * matrices with coefficients 0 and +-1 only (exact in the weights, cheap):
 *     B'^T d = (d0 - d1, d1, d2 - d1, d1 - d2, d2, d3 - d2),
 *     G' k   = (k3, k1 + k3, k1, k2, k0 + k2, k0)    (a kernel row or column k0..k3),
 *     A'^T m = (m0 + m1, m3 + m4, m1 + m2, m4 + m5)  (output rows 4ty + 0..3),
 * so y_block = A'^T [ (G' w G'^T) (.) (B'^T d B') ] A' over 6x6 = 36 positions, each one
 * GEMM (Co, Ci) x (Ci, tiles) summed over input channels: 36 multiplies per tile and channel
 * pair for 16 outputs, where col2im + SGEMM does 64 (1.78x fewer). Gradients through the
 * transposes, as in winograd.c:
 *     dM = A' dY A'^T = per 4-vector (d0, d0 + d2, d2, d1, d1 + d3, d3),
 *     dV = U^T dM, dX += B' dV B'^T with B' e = (e0, e1 - e0 - e2 + e3, e2 - e3 + e4 - e5, e5)
 *        on the patches, which overlap by two rows and columns,
 *     dU = sum over tiles dM V^T, dW += G'^T dU G' with G'^T u = (u4 + u5, u1 + u2, u3 + u4,
 *        u0 + u1).
 * Threads split the batch as in conv.c (own workspace slice and dU partial, partials summed
 * in slice order): bit-identical results for a fixed thread count. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "backend/cpu/simd.h"
#include "backend/cpu/winograd.h"
#include "core/common.h"

/* Tiles per GEMM: as many whole images as keep V and M (36 positions, Ci + Co channels)
 * within this many bytes, but at least UP_MIN_TILES so the GEMMs stay efficient (for 128
 * images 128 > 64, 14x14 -> 28x28: 1 MiB / 64 tiles ahead of 1 MiB / 128, 2 MiB / 196 and
 * 4 MiB / 64, though within this machine's noise of the second). */
#define UP_CACHE_BYTES (1024 * 1024)
#define UP_MIN_TILES 64
#define UP_NPOS 36

/* Floats between consecutive positions of a (rows, cols) block, spread over cache sets. */
static size_t pos_stride(size_t rows, size_t cols) { return round16(rows * cols) + 16; }

typedef struct {
    int th, tw, tpi; /* tiles per image: rows, columns, total */
    int g;           /* images per group */
    int ph, pw;      /* padded input plane: 2 th + 2 rows of 2 tw + 2 (image at 1, 1) */
    int oh, ow;      /* output-sized plane: 4 th rows of 4 tw */
    size_t u, v, m, du, plane, oplane, tmp, per_thread;
} UPlan;

int conv_transpose_up_geometry(const ConvShape *s) {
    return s->k == 4 && s->stride == 2 && s->pad == 1 && s->ho == 2 * s->h && s->wo == 2 * s->w;
}

int conv_transpose2d_uses_winograd(const ConvShape *s) {
    return conv_transpose_up_geometry(s) && s->ci >= WINOGRAD_MIN_CHANNELS &&
           s->co >= WINOGRAD_MIN_CHANNELS && s->h >= WINOGRAD_UP_MIN_SIZE &&
           s->w >= WINOGRAD_UP_MIN_SIZE && !conv_im2col_forced();
}

/* Floats per row of the input transform's column stage (up_input_transform): its vectors of 16
 * write up to round16(tw + 1) and read one past round16(tw). */
static size_t up_cstride(int tw) { return round16((size_t)tw + 2); }

static UPlan uplan_make(const ConvShape *s, int nthreads) {
    DDPM_CHECK(conv_transpose_up_geometry(s) && nthreads >= 1 && s->n >= 1);
    UPlan p;
    p.th = (s->h + 1) / 2;
    p.tw = (s->w + 1) / 2;
    p.tpi = p.th * p.tw;
    p.ph = 2 * p.th + 2;
    p.pw = 2 * p.tw + 2;
    p.oh = 4 * p.th;
    p.ow = 4 * p.tw;
    int per_slice = (s->n + nthreads - 1) / nthreads;
    int target = (int)(UP_CACHE_BYTES / (4 * UP_NPOS * ((size_t)s->ci + (size_t)s->co)));
    if (target < UP_MIN_TILES) target = UP_MIN_TILES;
    p.g = target / p.tpi;
    if (p.g < 1) p.g = 1;
    if (p.g > per_slice) p.g = per_slice;
    size_t tiles = (size_t)p.g * (size_t)p.tpi;
    p.u = UP_NPOS * pos_stride((size_t)s->co, (size_t)s->ci);
    p.v = UP_NPOS * pos_stride((size_t)s->ci, tiles);
    p.m = UP_NPOS * pos_stride((size_t)s->co, tiles);
    p.du = p.u;
    p.plane = round16((size_t)p.ph * (size_t)p.pw) + 16; /* + the input transform's over-read */
    p.oplane = round16((size_t)p.oh * (size_t)p.ow);
    /* 16 tw (grad input), 12 up_cstride + 16 (input, with its over-read), 24 round16(tw) (output) */
    size_t in_tmp = 12 * up_cstride(p.tw) + 16, out_tmp = 24 * round16((size_t)p.tw);
    p.tmp = in_tmp > out_tmp ? in_tmp : out_tmp;
    p.per_thread = p.v + p.m + p.du + 2 * p.plane + p.oplane + p.tmp;
    return p;
}

size_t conv_transpose2d_winograd_workspace_floats(const ConvShape *s, int nthreads) {
    UPlan p = uplan_make(s, nthreads);
    return p.u + (size_t)nthreads * p.per_thread;
}

/* ---- the transforms ----------------------------------------------------------------------- */

/* G' k, k read `step` floats apart. */
static inline void gk6(float *o, const float *k, int step) {
    const float k0 = k[0], k1 = k[step], k2 = k[2 * step], k3 = k[3 * step];
    o[0] = k3;
    o[1] = k1 + k3;
    o[2] = k1;
    o[3] = k2;
    o[4] = k0 + k2;
    o[5] = k0;
}

/* U (36, Co, Ci) = G' w G'^T for w (Ci, Co, 4, 4); work-shared over co by the calling team
 * (the omp for ends with a barrier). */
static void up_weight_transform(float *u, const float *w, int co, int ci) {
    const size_t xs = pos_stride((size_t)co, (size_t)ci);
#pragma omp for schedule(static)
    for (int o = 0; o < co; o++)
        for (int c = 0; c < ci; c++) {
            const float *k = w + ((size_t)c * (size_t)co + (size_t)o) * 16;
            float h[4][6], col[4], r[6];
            for (int ky = 0; ky < 4; ky++) gk6(h[ky], k + 4 * ky, 1); /* along each row */
            for (int J = 0; J < 6; J++) {
                for (int ky = 0; ky < 4; ky++) col[ky] = h[ky][J];
                gk6(r, col, 1); /* down the columns */
                for (int R = 0; R < 6; R++)
                    u[(size_t)(6 * R + J) * xs + (size_t)o * (size_t)ci + (size_t)c] = r[R];
            }
        }
}

/* v[P xs + tile] = (B'^T d B')[P] for the tiles of one input plane (h, w). Patch column j of
 * tile tx is padded column 2 tx + j, so the plane is copied into pin split by column parity
 * (E: even padded columns, O: odd ones, K = tw + 1 of each per row; image pixel (y, x) is
 * padded (y + 1, x + 1); the border and everything past the image stay zero): the four
 * columns of tile tx are then E[tx], O[tx], E[tx + 1], O[tx + 1], all contiguous along the
 * tile row (with stride 2 the loop did not vectorise). Per tile row, B'^T down the columns
 * into tmp (rows of up_cstride(tw) floats: 6 for E, 6 for O), then B' along the rows. A tile
 * row has few tiles (7 for the UNet's 14x14 input), too few for the compiler's vector loops,
 * so both stages work on whole vectors of 16: reads may run past a row (inside pin and tmp, sized for it), and the
 * stores to V spill up to 15 values past the row, onto tiles that are written later (the
 * caller goes through the planes in the order of V: channel, then image) or onto the 16
 * spare floats at the end of each position's block (pos_stride). */
static void up_input_transform(float *restrict v, size_t xs, const float *restrict in,
                               float *restrict pin, float *restrict tmp, const UPlan *p, int h,
                               int w) {
    const int tw = p->tw, K = tw + 1;
    const size_t cs = up_cstride(tw);
    float *restrict E = pin, *restrict O = pin + (size_t)p->ph * (size_t)K;
    for (int y = 0; y < h; y++) {
        const float *src = in + (size_t)y * (size_t)w;
        float *e = E + (size_t)(y + 1) * (size_t)K, *o = O + (size_t)(y + 1) * (size_t)K;
        for (int k = 0; 2 * k < w; k++) o[k] = src[2 * k];         /* x = 2k: column 2k + 1 */
        for (int k = 1; 2 * k - 1 < w; k++) e[k] = src[2 * k - 1]; /* x = 2k - 1: column 2k */
    }
    for (int ty = 0; ty < p->th; ty++) {
        for (int s = 0; s < 2; s++) { /* c[i][k] = (B'^T applied to rows 2ty .. 2ty + 3)[i] */
            const float *r0 = (s ? O : E) + (size_t)(2 * ty) * (size_t)K, *r1 = r0 + K,
                        *r2 = r1 + K, *r3 = r2 + K;
            float *c = tmp + (size_t)s * 6 * cs;
            for (int k = 0; k < K; k += 16) {
                const v16f d0 = load16(r0 + k), d1 = load16(r1 + k), d2 = load16(r2 + k),
                           d3 = load16(r3 + k);
                const v16f out[6] = {d0 - d1, d1, d2 - d1, d1 - d2, d2, d3 - d2};
                for (int i = 0; i < 6; i++) memcpy(c + (size_t)i * cs + k, &out[i], sizeof out[i]);
            }
        }
        float *o = v + (size_t)ty * (size_t)tw;
        for (int R = 0; R < 6; R++) { /* along each row: columns E[tx], O[tx], E[tx+1], O[tx+1] */
            const float *ce = tmp + (size_t)R * cs, *co = tmp + (size_t)(6 + R) * cs;
            float *q = o + (size_t)(6 * R) * xs;
            for (int tx = 0; tx < tw; tx += 16) {
                const v16f d0 = load16(ce + tx), d1 = load16(co + tx), d2 = load16(ce + tx + 1),
                           d3 = load16(co + tx + 1);
                const v16f out[6] = {d0 - d1, d1, d2 - d1, d1 - d2, d2, d3 - d2};
                for (int i = 0; i < 6; i++) memcpy(q + (size_t)i * xs + tx, &out[i], sizeof out[i]);
            }
        }
    }
}

/* out (ho, wo) = A'^T M A' + bias of one output plane. Per tile row: A'^T along the rows of
 * M for all tiles at once, 16 tiles per step, the four results of each tile stored side by
 * side (tmp row R holds 4 tw values, the layout of the output row); then A'^T down the
 * columns is a sum of two such rows, contiguous along the output row. Tile rows and columns
 * past ho or wo (partial tiles of odd sizes) are dropped. */
static void up_output_transform(float *restrict out, const float *restrict m, size_t xs,
                                float *restrict tmp, float bias, const UPlan *p, int ho, int wo) {
    const int tw = p->tw;
    const size_t ts = 4 * round16((size_t)tw); /* floats per row of tmp (the last step's 16 tiles fit) */
    for (int ty = 0; ty < p->th; ty++) {
        const float *mi = m + (size_t)ty * (size_t)tw;
        for (int R = 0; R < 6; R++) {
            /* reads up to 15 tiles past the row: within M (pos_stride keeps 16 floats spare) */
            const float *q = mi + (size_t)(6 * R) * xs;
            for (int tx = 0; tx < tw; tx += 16) {
                const v16f m0 = load16(q + tx), m1 = load16(q + xs + tx), m2 = load16(q + 2 * xs + tx),
                           m3 = load16(q + 3 * xs + tx), m4 = load16(q + 4 * xs + tx),
                           m5 = load16(q + 5 * xs + tx);
                const v16f out[4] = {m0 + m1, m3 + m4, m1 + m2, m4 + m5};
                store_interleaved4(tmp + (size_t)R * ts + 4 * (size_t)tx, out);
            }
        }
        static const int first[4] = {0, 3, 1, 4}; /* output row r = tmp rows first[r] + first[r] + 1 */
        for (int r = 0; r < 4 && 4 * ty + r < ho; r++) {
            const float *a = tmp + (size_t)first[r] * ts, *b = a + ts;
            float *dst = out + (size_t)(4 * ty + r) * (size_t)wo;
#pragma omp simd
            for (int x = 0; x < wo; x++) dst[x] = (a[x] + b[x]) + bias;
        }
    }
}

/* m[P xs + tile] = (A' dY A'^T)[P] for one output-gradient plane (ho, wo), copied first into
 * the output-sized pdy (zero past ho and wo). */
static void up_grad_output_transform(float *restrict m, size_t xs, const float *restrict dy,
                                     float *restrict pdy, const UPlan *p, int ho, int wo) {
    const int ow = p->ow, tw = p->tw;
    for (int y = 0; y < ho; y++)
        memcpy(pdy + (size_t)y * (size_t)ow, dy + (size_t)y * (size_t)wo, sizeof(float) * (size_t)wo);
    for (int ty = 0; ty < p->th; ty++) {
        const float *r = pdy + (size_t)(4 * ty) * (size_t)ow;
        float *o = m + (size_t)ty * (size_t)tw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            float t[6][4];
            for (int c = 0; c < 4; c++) { /* A' down each block column */
                const float d0 = r[4 * tx + c], d1 = r[ow + 4 * tx + c], d2 = r[2 * ow + 4 * tx + c],
                            d3 = r[3 * ow + 4 * tx + c];
                t[0][c] = d0;
                t[1][c] = d0 + d2;
                t[2][c] = d2;
                t[3][c] = d1;
                t[4][c] = d1 + d3;
                t[5][c] = d3;
            }
            for (int R = 0; R < 6; R++) { /* then along each row */
                const float d0 = t[R][0], d1 = t[R][1], d2 = t[R][2], d3 = t[R][3];
                float *q = o + (size_t)(6 * R) * xs + tx;
                q[0] = d0;
                q[xs] = d0 + d2;
                q[2 * xs] = d2;
                q[3 * xs] = d1;
                q[4 * xs] = d1 + d3;
                q[5 * xs] = d3;
            }
        }
    }
}

/* dx (h, w) += the 4x4 patches B' dV B'^T of the tiles of one input plane, which overlap by two
 * rows and columns: each row of tiles goes through tmp (16, tw) and is summed into pacc
 * (laid out as pin, zero on entry and left zero), whose interior is then added to dx. */
static void up_grad_input_transform(float *restrict dx, const float *restrict v, size_t xs,
                                    float *restrict pacc, float *restrict tmp, const UPlan *p,
                                    int h, int w) {
    const int pw = p->pw, tw = p->tw;
    for (int ty = 0; ty < p->th; ty++) {
        const float *vi = v + (size_t)ty * (size_t)tw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            float t[6][4];
            for (int R = 0; R < 6; R++) { /* B' along each row of dV */
                const float *q = vi + (size_t)(6 * R) * xs + tx;
                const float e0 = q[0], e1 = q[xs], e2 = q[2 * xs], e3 = q[3 * xs], e4 = q[4 * xs],
                            e5 = q[5 * xs];
                t[R][0] = e0;
                t[R][1] = (e1 - e0) + (e3 - e2);
                t[R][2] = (e2 - e3) + (e4 - e5);
                t[R][3] = e5;
            }
            for (int c = 0; c < 4; c++) { /* then down the columns: patch (row, c) at tmp[4 row + c] */
                const float e0 = t[0][c], e1 = t[1][c], e2 = t[2][c], e3 = t[3][c], e4 = t[4][c],
                            e5 = t[5][c];
                tmp[(size_t)c * (size_t)tw + tx] = e0;
                tmp[(size_t)(4 + c) * (size_t)tw + tx] = (e1 - e0) + (e3 - e2);
                tmp[(size_t)(8 + c) * (size_t)tw + tx] = (e2 - e3) + (e4 - e5);
                tmp[(size_t)(12 + c) * (size_t)tw + tx] = e5;
            }
        }
        for (int r = 0; r < 4; r++) {
            float *row = pacc + (size_t)(2 * ty + r) * (size_t)pw;
            for (int tx = 0; tx < tw; tx++)
                for (int c = 0; c < 4; c++) row[2 * tx + c] += tmp[(size_t)(4 * r + c) * (size_t)tw + tx];
        }
    }
    for (int y = 0; y < h; y++) {
        float *src = pacc + (size_t)(y + 1) * (size_t)pw + 1, *dst = dx + (size_t)y * (size_t)w;
#pragma omp simd
        for (int x = 0; x < w; x++) dst[x] += src[x];
    }
    memset(pacc, 0, sizeof(float) * (size_t)p->ph * (size_t)pw);
}

/* dw (Ci, Co, 4, 4) += G'^T dU G' with dU the sum of the nt partials (36, Co, Ci) at part,
 * stride apart, summed in slice order; called by every thread of the team. */
static void up_reduce_weight_grad(float *dw, const float *part, size_t stride, int nt, int co,
                                  int ci) {
    const size_t pairs = (size_t)co * (size_t)ci, xs = pos_stride((size_t)co, (size_t)ci);
#pragma omp barrier
#pragma omp for schedule(static)
    for (size_t e = 0; e < pairs; e++) {
        float a[UP_NPOS], r[6][4];
        for (int P = 0; P < UP_NPOS; P++) {
            float acc = 0.0f;
            for (int t = 0; t < nt; t++) acc += part[(size_t)t * stride + (size_t)P * xs + e];
            a[P] = acc;
        }
        for (int R = 0; R < 6; R++) { /* dU G' along each row */
            const float *u = a + 6 * R;
            r[R][0] = u[4] + u[5];
            r[R][1] = u[1] + u[2];
            r[R][2] = u[3] + u[4];
            r[R][3] = u[0] + u[1];
        }
        const size_t o = e / (size_t)ci, c = e % (size_t)ci;
        float *d = dw + (c * (size_t)co + o) * 16;
        for (int kx = 0; kx < 4; kx++) { /* G'^T (dU G') down each column */
            d[kx] += r[4][kx] + r[5][kx];
            d[4 + kx] += r[1][kx] + r[2][kx];
            d[8 + kx] += r[3][kx] + r[4][kx];
            d[12 + kx] += r[0][kx] + r[1][kx];
        }
    }
}

/* ---- the drivers -------------------------------------------------------------------------- */

typedef struct {
    float *v, *m, *du, *pin, *pacc, *po, *tmp;
} UScratch;

static UScratch uscratch_of(const OpsCtx *ctx, const UPlan *p, int t) {
    UScratch w;
    w.v = ctx->ws + p->u + (size_t)t * p->per_thread;
    w.m = w.v + p->v;
    w.du = w.m + p->m;
    w.pin = w.du + p->du;
    w.pacc = w.pin + p->plane;
    w.po = w.pacc + p->plane;
    w.tmp = w.po + p->oplane;
    /* pin and po rely on zero borders, pacc on being zero between uses */
    memset(w.pin, 0, sizeof(float) * (2 * p->plane + p->oplane));
    return w;
}

void conv_transpose2d_winograd_forward(const OpsCtx *ctx, float *y, const float *x,
                                       const float *w, const float *b, const ConvShape *s) {
    const int nt = ctx->nthreads;
    const UPlan p = uplan_make(s, nt);
    DDPM_CHECK(ctx->ws_floats >= p.u + (size_t)nt * p.per_thread);
    const int ci = s->ci, co = s->co;
    const size_t pix = (size_t)s->h * (size_t)s->w, opix = (size_t)s->ho * (size_t)s->wo,
                 in_img = (size_t)ci * pix, out_img = (size_t)co * opix,
                 uxs = pos_stride((size_t)co, (size_t)ci);
    float *u = ctx->ws;
#pragma omp parallel num_threads(nt)
    {
        up_weight_transform(u, w, co, ci);
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            UScratch sc = uscratch_of(ctx, &p, t);
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i += p.g) {
                const int gi = n1 - i < p.g ? n1 - i : p.g, T = gi * p.tpi;
                const size_t vxs = pos_stride((size_t)ci, (size_t)T), mxs = pos_stride((size_t)co, (size_t)T);
                for (int c = 0; c < ci; c++) /* in this order: up_input_transform's spill */
                    for (int j = 0; j < gi; j++)
                        up_input_transform(sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)p.tpi, vxs,
                                           x + (size_t)(i + j) * in_img + (size_t)c * pix, sc.pin, sc.tmp,
                                           &p, s->h, s->w);
                for (int P = 0; P < UP_NPOS; P++)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, T, ci, 1.0f,
                                u + (size_t)P * uxs, ci, sc.v + (size_t)P * vxs, T, 0.0f,
                                sc.m + (size_t)P * mxs, T);
                for (int j = 0; j < gi; j++)
                    for (int o = 0; o < co; o++)
                        up_output_transform(y + (size_t)(i + j) * out_img + (size_t)o * opix,
                                            sc.m + (size_t)o * (size_t)T + (size_t)j * (size_t)p.tpi, mxs,
                                            sc.tmp, b ? b[o] : 0.0f, &p, s->ho, s->wo);
            }
        }
    }
}

void conv_transpose2d_winograd_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                                        const float *x, const float *w, const ConvShape *s) {
    if (!dx && !dw) return;
    const int nt = ctx->nthreads;
    const UPlan p = uplan_make(s, nt);
    DDPM_CHECK(ctx->ws_floats >= p.u + (size_t)nt * p.per_thread);
    const int ci = s->ci, co = s->co;
    const size_t pix = (size_t)s->h * (size_t)s->w, opix = (size_t)s->ho * (size_t)s->wo,
                 in_img = (size_t)ci * pix, out_img = (size_t)co * opix,
                 uxs = pos_stride((size_t)co, (size_t)ci);
    float *u = ctx->ws;
#pragma omp parallel num_threads(nt)
    {
        if (dx) up_weight_transform(u, w, co, ci);
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            UScratch sc = uscratch_of(ctx, &p, t);
            if (dw) memset(sc.du, 0, sizeof(float) * p.du);
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i += p.g) {
                const int gi = n1 - i < p.g ? n1 - i : p.g, T = gi * p.tpi;
                const size_t vxs = pos_stride((size_t)ci, (size_t)T), mxs = pos_stride((size_t)co, (size_t)T);
                for (int j = 0; j < gi; j++)
                    for (int o = 0; o < co; o++)
                        up_grad_output_transform(sc.m + (size_t)o * (size_t)T + (size_t)j * (size_t)p.tpi,
                                                 mxs, dy + (size_t)(i + j) * out_img + (size_t)o * opix,
                                                 sc.po, &p, s->ho, s->wo);
                if (dw) {
                    for (int c = 0; c < ci; c++) /* in this order: up_input_transform's spill */
                        for (int j = 0; j < gi; j++)
                            up_input_transform(sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)p.tpi,
                                               vxs, x + (size_t)(i + j) * in_img + (size_t)c * pix,
                                               sc.pin, sc.tmp, &p, s->h, s->w);
                    for (int P = 0; P < UP_NPOS; P++)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, co, ci, T, 1.0f,
                                    sc.m + (size_t)P * mxs, T, sc.v + (size_t)P * vxs, T, 1.0f,
                                    sc.du + (size_t)P * uxs, ci);
                }
                if (dx) {
                    for (int P = 0; P < UP_NPOS; P++)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ci, T, co, 1.0f,
                                    u + (size_t)P * uxs, ci, sc.m + (size_t)P * mxs, T, 0.0f,
                                    sc.v + (size_t)P * vxs, T);
                    for (int j = 0; j < gi; j++)
                        for (int c = 0; c < ci; c++)
                            up_grad_input_transform(dx + (size_t)(i + j) * in_img + (size_t)c * pix,
                                                    sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)p.tpi,
                                                    vxs, sc.pacc, sc.tmp, &p, s->h, s->w);
                }
            }
        }
        if (dw) up_reduce_weight_grad(dw, ctx->ws + p.u + p.v + p.m, p.per_thread, nt, co, ci);
    }
}
