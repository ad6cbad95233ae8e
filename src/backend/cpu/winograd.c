/* Winograd F(2x2, 3x3) convolution (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016) for Conv2d with K 3, stride 1, padding 1, forward and backward; and
 * F(4x4, 3x3), forward and backward (its section below).
 *
 * The output is cut into 2x2 tiles; tile (ty, tx) of an image needs the 4x4 input patch d at
 * rows 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2 (zero outside the image: the padding, and the
 * partial tiles at the bottom and right edges of odd sizes). Per tile and channel pair
 *     y = A^T [ (G g G^T) (.) (B^T d B) ] A        (. = elementwise, over 4x4 positions xi)
 * with
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *     A^T = [1 1 1 0; 0 1 -1 -1].
 * Summing over input channels makes each of the 16 positions xi one matrix product:
 *     M_xi (Co, tiles) = U_xi (Co, Ci) V_xi (Ci, tiles),  U = G g G^T,  V = B^T d B,
 * 16 multiplies per tile and channel pair where direct convolution needs 36 (2.25x fewer).
 * The three transforms are linear maps, so the gradients go through their transposes:
 *     dM = A dY A^T (per output tile),
 *     dV_xi = U_xi^T dM_xi,  dX += B dV B^T scattered onto the overlapping 4x4 patches,
 *     dU_xi = sum over tiles dM_xi V_xi^T,  dW += G^T dU G.
 *
 * Layout: V is (16, Ci, T) and M is (16, Co, T) for the T tiles of a group of small images or
 * of a band of tile rows of a large one, so each of the 16 GEMMs reads and writes contiguous
 * row-major matrices; U is (16, Co, Ci). The transforms are loops along a row of tiles that
 * the compiler vectorises; padding lives in small zero-bordered planes per thread. Threads
 * split the batch as in conv.c (slice t of nthreads, its own workspace slice, its own dU
 * partial; partials summed in slice order), so results are bit-identical for a fixed
 * nthreads. OpenBLAS runs single-threaded inside the threads (ops_cpu_init). */
#include "backend/cpu/winograd.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/simd.h"
#include "core/common.h"

/* Tiles per GEMM: as many as keep one group's V and M, 64 (Ci + Co) bytes per tile, within
 * this many bytes (half of the 1 MiB L2 per core of the machine it was tuned on, so that the
 * transforms' output is still there when the GEMMs read it; 256 KiB to 2 MiB measured within
 * noise of each other, 512 KiB slightly ahead), but at least WINO_MIN_TILES so the GEMMs stay
 * efficient. Small images are gathered several per group (a 7x7 image has 16 tiles, a 14x14
 * one 49); large ones are cut into bands of tile rows (a 28x28 image has 14 rows of 14). */
#define WINO_CACHE_BYTES (512 * 1024)
#define WINO_MIN_TILES 32
/* F(4x4, 3x3) works best with larger groups: 2 MiB measured ahead of 0.5 and 1 MiB (17.5 ms
 * against 21 and 19 for 128 images 64 > 64 28x28), 4 MiB and more behind. */
#define WINO4_CACHE_BYTES (2048 * 1024)
/* Most images per group for F(4x4, 3x3), whose transforms take the group's planes at once. */
#define WINO4_MAX_GROUP 64

/* How a call splits its work, and the floats of each part of the workspace (each rounded to
 * 64 bytes): the shared U, then per thread V, M, the dU partial, three padded planes and
 * the inverse transform's row buffer. A unit of work is g whole images (band == th) or one
 * band of tile rows of one image (g == 1). r is the output tile's side: 2 for F(2x2, 3x3),
 * 4 for F(4x4, 3x3). */
typedef struct {
    int r, npos;     /* output tile side, positions of the (r + 2)^2 transform */
    int th, tw, tpi; /* tiles per image: rows, columns, total (slots included) */
    int slots;       /* tile slots per tile row in V and M: tw, or tw + 1 for r = 4 (below) */
    int g;           /* images per group */
    int band;        /* tile rows per unit */
    int ph, pw;      /* padded plane: r th + 2 rows of r tw + 2 */
    size_t u, v, m, du, plane, tmp, per_thread;
} WPlan;

/* Floats from one position xi to the next in V (rows Ci), M (rows Co) or U: the matrix
 * rounded to 64 bytes plus 64 bytes more, so that the streams a transform reads or writes
 * do not all start at the same offset modulo 4 KiB (which would put them in one L1 set). */
static size_t xi_stride(size_t rows, size_t cols) { return round16(rows * cols) + 16; }

int conv_winograd_geometry(const ConvShape *s) {
    return s->k == 3 && s->stride == 1 && s->pad == 1 && s->ho == s->h && s->wo == s->w;
}

int conv2d_uses_winograd(const ConvShape *s) {
    return conv_winograd_geometry(s) && s->ci >= WINOGRAD_MIN_CHANNELS &&
           s->co >= WINOGRAD_MIN_CHANNELS && !conv_im2col_forced();
}

static WPlan wplan_make(const ConvShape *s, int nthreads, int r) {
    DDPM_CHECK(conv_winograd_geometry(s));
    DDPM_CHECK(nthreads >= 1 && s->n >= 1 && (r == 2 || r == 4));
    WPlan p;
    p.r = r;
    p.npos = (r + 2) * (r + 2);
    p.th = (s->h + r - 1) / r;
    p.tw = (s->w + r - 1) / r;
    p.slots = r == 2 ? p.tw : p.tw + 1;
    p.tpi = p.th * p.slots;
    p.ph = r * p.th + 2;
    p.pw = r * p.tw + 2;
    int per_slice = (s->n + nthreads - 1) / nthreads;
    size_t cache = r == 2 ? WINO_CACHE_BYTES : WINO4_CACHE_BYTES;
    int target = (int)(cache / (4 * (size_t)p.npos * ((size_t)s->ci + (size_t)s->co)));
    if (target < WINO_MIN_TILES) target = WINO_MIN_TILES;
    if (p.tpi <= target) {
        p.g = target / p.tpi < per_slice ? target / p.tpi : per_slice;
        if (r == 4 && p.g > WINO4_MAX_GROUP) p.g = WINO4_MAX_GROUP;
        p.band = p.th;
    } else {
        p.g = 1;
        p.band = target / p.slots > 1 ? target / p.slots : 1;
    }
    const int rows = p.band < p.th ? p.band : p.th;
    size_t tiles = (size_t)p.g * (size_t)rows * (size_t)p.slots;
    p.u = (size_t)p.npos * xi_stride((size_t)s->co, (size_t)s->ci);
    p.v = (size_t)p.npos * xi_stride((size_t)s->ci, tiles);
    p.m = (size_t)p.npos * xi_stride((size_t)s->co, tiles);
    p.du = p.u;
    if (r == 2) {
        p.plane = round16((size_t)p.ph * (size_t)p.pw);
        p.tmp = round16((size_t)p.npos * (size_t)p.tw);
    } else { /* input_transform4's g planes of rows 4 slots wide; the row buffers of both */
        p.plane = round16((size_t)p.g * (size_t)p.ph * 4 * (size_t)p.slots + 16);
        p.tmp = round16(6 * (size_t)p.g * (size_t)rows * 4 * (size_t)p.slots + 16);
    }
    p.per_thread = p.v + p.m + p.du + 3 * p.plane + p.tmp;
    return p;
}

size_t conv2d_winograd_workspace_floats(const ConvShape *s, int nthreads) {
    WPlan p2 = wplan_make(s, nthreads, 2), p4 = wplan_make(s, nthreads, 4);
    size_t a = p2.u + (size_t)nthreads * p2.per_thread, b = p4.u + (size_t)nthreads * p4.per_thread;
    return a > b ? a : b;
}

/* ---- the transforms ------------------------------------------------------------------------
 * Each works on the tile rows [ty0, ty1) of one channel plane of one image; tile (ty, tx) is
 * column (ty - ty0) tw + tx of the matrices it reads or writes, and position xi = 4 i + j
 * (row i, column j of the 4x4 transform) is xs floats further on. Loops run along a row of
 * tiles, which the compiler vectorises (the 16 positions are 16 contiguous streams). */

/* U (16, Co, Ci) = G w G^T for every (co, ci); work-shared over co by the calling team. */
static void weight_transform(float *u, const float *w, int co, int ci) {
    const size_t xs = xi_stride((size_t)co, (size_t)ci);
#pragma omp for schedule(static)
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++) {
            const float *g = w + ((size_t)o * (size_t)ci + (size_t)i) * 9;
            float h[3][4]; /* h = g G^T: each kernel row mapped to 4 values */
            for (int a = 0; a < 3; a++) {
                float g0 = g[3 * a], g1 = g[3 * a + 1], g2 = g[3 * a + 2];
                h[a][0] = g0;
                h[a][1] = 0.5f * (g0 + g1 + g2);
                h[a][2] = 0.5f * (g0 - g1 + g2);
                h[a][3] = g2;
            }
            float *dst = u + (size_t)o * (size_t)ci + (size_t)i;
            for (int j = 0; j < 4; j++) { /* G h, column by column */
                float g0 = h[0][j], g1 = h[1][j], g2 = h[2][j];
                dst[(size_t)(0 + j) * xs] = g0;
                dst[(size_t)(4 + j) * xs] = 0.5f * (g0 + g1 + g2);
                dst[(size_t)(8 + j) * xs] = 0.5f * (g0 - g1 + g2);
                dst[(size_t)(12 + j) * xs] = g2;
            }
        }
}

/* v[xi xs + tile] = (B^T d B)[xi] for the tiles of one plane in (h, w). pin is a (ph, pw)
 * buffer whose border (row 0, column 0, and everything past row h or column w) is zero;
 * image row y goes to pin row y + 1, columns 1..w, so tile (ty, tx) reads pin rows
 * 2ty..2ty+3, columns 2tx..2tx+3 without bounds checks (only the rows the band needs are
 * copied). */
static void input_transform(float *restrict v, size_t xs, const float *restrict in,
                            float *restrict pin, const WPlan *p, int h, int w, int ty0, int ty1) {
    const int pw = p->pw, tw = p->tw;
    const int y0 = 2 * ty0 - 1 > 0 ? 2 * ty0 - 1 : 0, y1 = 2 * ty1 + 1 < h ? 2 * ty1 + 1 : h;
    for (int y = y0; y < y1; y++)
        memcpy(pin + (size_t)(y + 1) * (size_t)pw + 1, in + (size_t)y * (size_t)w,
               sizeof(float) * (size_t)w);
    for (int ty = ty0; ty < ty1; ty++) {
        const float *r0 = pin + (size_t)(2 * ty) * (size_t)pw, *r1 = r0 + pw, *r2 = r1 + pw,
                    *r3 = r2 + pw;
        float *o = v + (size_t)(ty - ty0) * (size_t)tw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            const int q = 2 * tx;
            /* rows times B: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) */
            float a0 = r0[q] - r0[q + 2], a1 = r0[q + 1] + r0[q + 2], a2 = r0[q + 2] - r0[q + 1],
                  a3 = r0[q + 1] - r0[q + 3];
            float b0 = r1[q] - r1[q + 2], b1 = r1[q + 1] + r1[q + 2], b2 = r1[q + 2] - r1[q + 1],
                  b3 = r1[q + 1] - r1[q + 3];
            float c0 = r2[q] - r2[q + 2], c1 = r2[q + 1] + r2[q + 2], c2 = r2[q + 2] - r2[q + 1],
                  c3 = r2[q + 1] - r2[q + 3];
            float e0 = r3[q] - r3[q + 2], e1 = r3[q + 1] + r3[q + 2], e2 = r3[q + 2] - r3[q + 1],
                  e3 = r3[q + 1] - r3[q + 3];
            /* B^T applied to the columns: rows (r0 - r2, r1 + r2, r2 - r1, r1 - r3) */
            o[0 * xs + tx] = a0 - c0;
            o[1 * xs + tx] = a1 - c1;
            o[2 * xs + tx] = a2 - c2;
            o[3 * xs + tx] = a3 - c3;
            o[4 * xs + tx] = b0 + c0;
            o[5 * xs + tx] = b1 + c1;
            o[6 * xs + tx] = b2 + c2;
            o[7 * xs + tx] = b3 + c3;
            o[8 * xs + tx] = c0 - b0;
            o[9 * xs + tx] = c1 - b1;
            o[10 * xs + tx] = c2 - b2;
            o[11 * xs + tx] = c3 - b3;
            o[12 * xs + tx] = b0 - e0;
            o[13 * xs + tx] = b1 - e1;
            o[14 * xs + tx] = b2 - e2;
            o[15 * xs + tx] = b3 - e3;
        }
    }
}

/* out (h, w) = A^T M A + bias for the tiles of one plane: tile (ty, tx) goes to pout (ph, pw)
 * rows 2ty, 2ty+1, columns 2tx, 2tx+1, then the rows and columns inside the image are copied
 * out (the parts past h or w are computed and dropped). */
static void output_transform(float *restrict out, const float *restrict m, size_t xs,
                             float *restrict pout, float bias, const WPlan *p, int h, int w,
                             int ty0, int ty1) {
    const int pw = p->pw, tw = p->tw;
    for (int ty = ty0; ty < ty1; ty++) {
        const float *mi = m + (size_t)(ty - ty0) * (size_t)tw;
        float *y0 = pout + (size_t)(2 * ty) * (size_t)pw, *y1 = y0 + pw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            float t[4][2]; /* M A: each row i of M mapped to (m0 + m1 + m2, m1 - m2 - m3) */
            for (int i = 0; i < 4; i++) {
                const float *r = mi + (size_t)(4 * i) * xs + tx;
                float m0 = r[0], m1 = r[xs], m2 = r[2 * xs], m3 = r[3 * xs];
                t[i][0] = m0 + m1 + m2;
                t[i][1] = m1 - m2 - m3;
            }
            y0[2 * tx] = t[0][0] + t[1][0] + t[2][0];
            y0[2 * tx + 1] = t[0][1] + t[1][1] + t[2][1];
            y1[2 * tx] = t[1][0] - t[2][0] - t[3][0];
            y1[2 * tx + 1] = t[1][1] - t[2][1] - t[3][1];
        }
    }
    const int y1 = 2 * ty1 < h ? 2 * ty1 : h;
    for (int y = 2 * ty0; y < y1; y++) {
        const float *src = pout + (size_t)y * (size_t)pw;
        float *dst = out + (size_t)y * (size_t)w;
#pragma omp simd
        for (int x = 0; x < w; x++) dst[x] = src[x] + bias;
    }
}

/* m[xi xs + tile] = (A dY A^T)[xi] for the 2x2 tiles of one gradient plane dy (h, w), whose
 * rows are copied first into pdy (ph, pw), columns 0..w-1; pdy is zero past row h or column w. */
static void grad_output_transform(float *restrict m, size_t xs, const float *restrict dy,
                                  float *restrict pdy, const WPlan *p, int h, int w, int ty0,
                                  int ty1) {
    const int pw = p->pw, tw = p->tw;
    const int y1 = 2 * ty1 < h ? 2 * ty1 : h;
    for (int y = 2 * ty0; y < y1; y++)
        memcpy(pdy + (size_t)y * (size_t)pw, dy + (size_t)y * (size_t)w, sizeof(float) * (size_t)w);
    for (int ty = ty0; ty < ty1; ty++) {
        const float *d0 = pdy + (size_t)(2 * ty) * (size_t)pw, *d1 = d0 + pw;
        float *o = m + (size_t)(ty - ty0) * (size_t)tw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            /* each 2-vector (p, q) maps to (p, p + q, p - q, -q), rows then columns */
            float p0 = d0[2 * tx], q0 = d0[2 * tx + 1], p1 = d1[2 * tx], q1 = d1[2 * tx + 1];
            float e0[4] = {p0, p0 + q0, p0 - q0, -q0};
            float e1[4] = {p1, p1 + q1, p1 - q1, -q1};
            for (int j = 0; j < 4; j++) {
                o[(size_t)j * xs + tx] = e0[j];
                o[(size_t)(4 + j) * xs + tx] = e0[j] + e1[j];
                o[(size_t)(8 + j) * xs + tx] = e0[j] - e1[j];
                o[(size_t)(12 + j) * xs + tx] = -e1[j];
            }
        }
    }
}

/* dx (h, w) += the 4x4 patches B dV B^T of the tiles of one plane, which overlap by two rows
 * and columns: summed in pacc (ph, pw, laid out as pin, zero on entry and left zero), a row of
 * tiles at a time through tmp (16, tw), then added to dx. Pacc rows 2ty0..2ty1+1 receive the
 * band; the two rows it shares with the next band reach dx from both, one after the other. */
static void grad_input_transform(float *restrict dx, const float *restrict v, size_t xs,
                                 float *restrict pacc, float *restrict tmp, const WPlan *p, int h,
                                 int w, int ty0, int ty1) {
    const int pw = p->pw, tw = p->tw;
    for (int ty = ty0; ty < ty1; ty++) {
        const float *vi = v + (size_t)(ty - ty0) * (size_t)tw;
#pragma omp simd
        for (int tx = 0; tx < tw; tx++) {
            /* each 4-vector u maps to (u0, u1 - u2 + u3, u1 + u2 - u0, -u3), rows then columns */
            float t[4][4];
            for (int i = 0; i < 4; i++) {
                const float *r = vi + (size_t)(4 * i) * xs + tx;
                float u0 = r[0], u1 = r[xs], u2 = r[2 * xs], u3 = r[3 * xs];
                t[i][0] = u0;
                t[i][1] = u1 - u2 + u3;
                t[i][2] = u1 + u2 - u0;
                t[i][3] = -u3;
            }
            for (int s = 0; s < 4; s++) {
                tmp[(size_t)(0 + s) * (size_t)tw + (size_t)tx] = t[0][s];
                tmp[(size_t)(4 + s) * (size_t)tw + (size_t)tx] = t[1][s] - t[2][s] + t[3][s];
                tmp[(size_t)(8 + s) * (size_t)tw + (size_t)tx] = t[1][s] + t[2][s] - t[0][s];
                tmp[(size_t)(12 + s) * (size_t)tw + (size_t)tx] = -t[3][s];
            }
        }
        /* patch row k lands on pacc row 2ty + k; columns 0,1 of the patches never collide
         * within a row of tiles, nor do columns 2,3, so two passes */
        for (int k = 0; k < 4; k++) {
            float *row = pacc + (size_t)(2 * ty + k) * (size_t)pw;
            const float *c0 = tmp + (size_t)(4 * k) * (size_t)tw, *c1 = c0 + tw, *c2 = c1 + tw,
                        *c3 = c2 + tw;
#pragma omp simd
            for (int tx = 0; tx < tw; tx++) {
                row[2 * tx] += c0[tx];
                row[2 * tx + 1] += c1[tx];
            }
#pragma omp simd
            for (int tx = 0; tx < tw; tx++) {
                row[2 * tx + 2] += c2[tx];
                row[2 * tx + 3] += c3[tx];
            }
        }
    }
    /* pacc row r is image row r - 1 */
    const int y0 = 2 * ty0 - 1 > 0 ? 2 * ty0 - 1 : 0, y1 = 2 * ty1 + 1 < h ? 2 * ty1 + 1 : h;
    for (int y = y0; y < y1; y++) {
        const float *src = pacc + (size_t)(y + 1) * (size_t)pw + 1;
        float *dst = dx + (size_t)y * (size_t)w;
#pragma omp simd
        for (int x = 0; x < w; x++) dst[x] += src[x];
    }
    memset(pacc + (size_t)(2 * ty0) * (size_t)pw, 0,
           sizeof(float) * (size_t)(2 * (ty1 - ty0) + 2) * (size_t)pw);
}

/* ---- F(4x4, 3x3) ------------------------------------------------------------------------------
 * 4x4 output tiles from the 6x6 input patches at rows 4ty-1 .. 4ty+4 (columns alike), with
 *     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *            0 4 0 -5 0 1],
 *     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
 *     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]:
 * 36 GEMMs, 36 multiplies per tile and channel pair for 16 outputs where direct convolution
 * needs 144 (4x fewer; 1.78x fewer than F(2x2, 3x3)). The larger coefficients cost accuracy
 * (errors up to about 1e-5 of the output's largest magnitude on random data, against 6e-7
 * for F(2x2, 3x3); test_ops, in every direction). conv2d_algo runs it on images of 20 rows
 * and more, where it is faster, in training too (docs/PERFORMANCE.md compares the losses of
 * a training run with and without it).
 * Backward: dX is the forward's computation applied to dY with each kernel rotated by 180
 * degrees and the channel counts swapped (weight_transform4's flipped, accumulating output);
 * dU_xi = sum over tiles (A dY A^T)_xi (B^T d B)_xi, dW += G^T dU G. */

/* G g for one 3-vector, in double (the weights are transformed once per call). */
static inline void g6(double *o, double g0, double g1, double g2) {
    o[0] = g0 / 4.0;
    o[1] = -(g0 + g1 + g2) / 6.0;
    o[2] = -(g0 - g1 + g2) / 6.0;
    o[3] = g0 / 24.0 + g1 / 12.0 + g2 / 6.0;
    o[4] = g0 / 24.0 - g1 / 12.0 + g2 / 6.0;
    o[5] = g2;
}

/* U (36, Co, Ci) = G w G^T; work-shared over co by the calling team. flipped: the kernel of
 * the input gradient's convolution, whose (output o, input i) kernel is the weight w (i, o)
 * (w then being (Ci, Co, 3, 3)) rotated by 180 degrees. */
static void weight_transform4(float *u, const float *w, int co, int ci, int flipped) {
    const size_t xs = xi_stride((size_t)co, (size_t)ci);
#pragma omp for schedule(static)
    for (int o = 0; o < co; o++)
        for (int i = 0; i < ci; i++) {
            const float *src = flipped ? w + ((size_t)i * (size_t)co + (size_t)o) * 9
                                       : w + ((size_t)o * (size_t)ci + (size_t)i) * 9;
            float g[9];
            for (int k = 0; k < 9; k++) g[k] = flipped ? src[8 - k] : src[k];
            double h[3][6], c[6]; /* h = g G^T: each kernel row mapped to 6 values */
            for (int a = 0; a < 3; a++) g6(h[a], g[3 * a], g[3 * a + 1], g[3 * a + 2]);
            float *dst = u + (size_t)o * (size_t)ci + (size_t)i;
            for (int j = 0; j < 6; j++) { /* G h, column by column */
                g6(c, h[0][j], h[1][j], h[2][j]);
                for (int k = 0; k < 6; k++) dst[(size_t)(6 * k + j) * xs] = (float)c[k];
            }
        }
}

/* The F(4x4) transforms are written so that every loop is long and contiguous enough to
 * vectorise (a row of 28 / 4 = 7 tiles is too short a loop). A row of tiles gets
 * slots = tw + 1 slots in V and M, the last one junk, and the padded plane pin has rows of
 * W = 4 slots floats (image row y at row y + 1, columns 1..w, zeros around), so tile slot
 * f = (ty - ty0) slots + tx starts at column 4 f of a band-wide row buffer. Input: first
 * B^T over the 6 plane rows of each tile row, along whole rows (u[i][ty - ty0][x]), then
 * B along the columns, one loop over all slots of the band reading u[i] + 4 f .. 4 f + 5.
 * Output: A^T along the rows of M (t[i] + 4 f + c), then A^T down the columns, along whole
 * image rows. The junk slots cost 1 / slots more GEMM work. */

/* v[xi xs + f] = (B^T d B)[xi], xi = 6 i + j, for the slots of tile rows [ty0, ty1) of one
 * channel plane of each of g images, the plane of image j at in[j] (its slots follow those
 * of image j - 1, as in V); pin holds the g padded planes one above the other, tmp the row
 * buffers. */
static void input_transform4(float *restrict v, size_t xs, const float *const *in, int g,
                             float *restrict pin, float *restrict tmp, const WPlan *p, int h,
                             int w, int ty0, int ty1) {
    const int rows = ty1 - ty0, W = 4 * p->slots, nf = g * rows * p->slots;
    const size_t us = (size_t)g * (size_t)rows * (size_t)W; /* floats per i block of u */
    const size_t ps = (size_t)p->ph * (size_t)W;              /* floats per padded plane */
    const int y0 = 4 * ty0 - 1 > 0 ? 4 * ty0 - 1 : 0, y1 = 4 * ty1 + 1 < h ? 4 * ty1 + 1 : h;
    for (int j = 0; j < g; j++)
        for (int y = y0; y < y1; y++)
            memcpy(pin + (size_t)j * ps + (size_t)(y + 1) * (size_t)W + 1,
                   in[j] + (size_t)y * (size_t)w, sizeof(float) * (size_t)w);
    /* down the columns: u[i][j][ty - ty0][x] = (B^T applied to rows 4ty .. 4ty + 5 of plane j)[i] */
    for (int j = 0; j < g; j++)
        for (int ty = ty0; ty < ty1; ty++) {
            const float *d = pin + (size_t)j * ps + (size_t)(4 * ty) * (size_t)W;
            float *u = tmp + ((size_t)j * (size_t)rows + (size_t)(ty - ty0)) * (size_t)W;
#pragma omp simd
            for (int x = 0; x < W; x++) {
                const float d0 = d[x], d1 = d[W + x], d2 = d[2 * W + x], d3 = d[3 * W + x],
                            d4 = d[4 * W + x], d5 = d[5 * W + x];
                u[x] = 4.0f * d0 - 5.0f * d2 + d4;
                u[us + x] = (d3 + d4) - 4.0f * (d1 + d2);
                u[2 * us + x] = (d4 - d3) + 4.0f * (d1 - d2);
                u[3 * us + x] = (d4 - d2) + 2.0f * (d3 - d1);
                u[4 * us + x] = (d4 - d2) - 2.0f * (d3 - d1);
                u[5 * us + x] = 4.0f * d1 - 5.0f * d3 + d5;
            }
        }
    /* along the rows: v[(6 i + j) xs + f] = (B^T applied to u[i] + 4 f .. 4 f + 5)[j] */
    for (int i = 0; i < 6; i++) {
        const float *d = tmp + (size_t)i * us;
        float *o = v + (size_t)(6 * i) * xs;
#pragma omp simd
        for (int f = 0; f < nf; f++) {
            const float d0 = d[4 * f], d1 = d[4 * f + 1], d2 = d[4 * f + 2], d3 = d[4 * f + 3],
                        d4 = d[4 * f + 4], d5 = d[4 * f + 5];
            o[f] = 4.0f * d0 - 5.0f * d2 + d4;
            o[xs + f] = (d3 + d4) - 4.0f * (d1 + d2);
            o[2 * xs + f] = (d4 - d3) + 4.0f * (d1 - d2);
            o[3 * xs + f] = (d4 - d2) + 2.0f * (d3 - d1);
            o[4 * xs + f] = (d4 - d2) - 2.0f * (d3 - d1);
            o[5 * xs + f] = 4.0f * d1 - 5.0f * d3 + d5;
        }
    }
}

/* One output row of a tile row: o[x] (+)= (A^T applied to the six t rows at x)[k] + bias, k the
 * row within the tile; w values. Separate loops per (k, acc) so that each is straight code. */
#define OUT4_ROW(OP, EXPR)                                                                          \
    _Pragma("omp simd") for (int x = 0; x < w; x++) {                                             \
        const float m0 = t[x], m1 = t[ts + x], m2 = t[2 * ts + x], m3 = t[3 * ts + x],             \
                    m4 = t[4 * ts + x], m5 = t[5 * ts + x];                                        \
        (void)m0, (void)m5;                                                                        \
        o[x] OP(EXPR) + bias;                                                                      \
    }

/* out[j] (h, w) = A^T M A + bias (acc: out[j] += A^T M A + bias) for tile rows [ty0, ty1) of
 * one channel plane of each of g images, from m[xi xs + f] (image j's slots after image
 * j - 1's). */
static void output_transform4(float *const *out, int g, const float *restrict m, size_t xs,
                              float *restrict tmp, float bias, int acc, const WPlan *p, int h,
                              int w, int ty0, int ty1) {
    const int rows = ty1 - ty0, W = 4 * p->slots, nf = g * rows * p->slots;
    const size_t ts = (size_t)g * (size_t)rows * (size_t)W; /* floats per i block of t */
    /* along the rows: t[i][4 f + c] = (A^T applied to row i of slot f's M)[c] */
    for (int i = 0; i < 6; i++) {
        const float *r = m + (size_t)(6 * i) * xs;
        float *t = tmp + (size_t)i * ts;
        int f = 0;
        for (; f + 16 <= nf; f += 16) {
            const v16f m0 = load16(r + f), m1 = load16(r + xs + f), m2 = load16(r + 2 * xs + f),
                       m3 = load16(r + 3 * xs + f), m4 = load16(r + 4 * xs + f),
                       m5 = load16(r + 5 * xs + f);
            const v16f a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            const v16f out[4] = {m0 + a + c, b + 2.0f * d, a + 4.0f * c, b + 8.0f * d + m5};
            store_interleaved4(t + 4 * f, out);
        }
        for (; f < nf; f++) {
            const float m0 = r[f], m1 = r[xs + f], m2 = r[2 * xs + f], m3 = r[3 * xs + f],
                        m4 = r[4 * xs + f], m5 = r[5 * xs + f];
            const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            t[4 * f] = m0 + a + c;
            t[4 * f + 1] = b + 2.0f * d;
            t[4 * f + 2] = a + 4.0f * c;
            t[4 * f + 3] = b + 8.0f * d + m5;
        }
    }
    /* down the columns: output row 4ty + k = (A^T applied to t[0..5][j][ty - ty0])[k] + bias;
     * the last tile row of a height that is not a multiple of 4 keeps nk < 4 of its rows */
    for (int j = 0; j < g; j++)
        for (int ty = ty0; ty < ty1; ty++) {
            const float *t = tmp + ((size_t)j * (size_t)rows + (size_t)(ty - ty0)) * (size_t)W;
            const int y = 4 * ty, nk = h - y < 4 ? h - y : 4;
            for (int k = 0; k < nk; k++) {
                float *o = out[j] + (size_t)(y + k) * (size_t)w;
                switch (k + 4 * (acc != 0)) {
                case 0: OUT4_ROW(=, m0 + (m1 + m2) + (m3 + m4)) break;
                case 1: OUT4_ROW(=, (m1 - m2) + 2.0f * (m3 - m4)) break;
                case 2: OUT4_ROW(=, (m1 + m2) + 4.0f * (m3 + m4)) break;
                case 3: OUT4_ROW(=, (m1 - m2) + 8.0f * (m3 - m4) + m5) break;
                case 4: OUT4_ROW(+=, m0 + (m1 + m2) + (m3 + m4)) break;
                case 5: OUT4_ROW(+=, (m1 - m2) + 2.0f * (m3 - m4)) break;
                case 6: OUT4_ROW(+=, (m1 + m2) + 4.0f * (m3 + m4)) break;
                default: OUT4_ROW(+=, (m1 - m2) + 8.0f * (m3 - m4) + m5) break;
                }
            }
        }
}
#undef OUT4_ROW

/* m[xi xs + f] = (A dY A^T)[xi], xi = 6 i + j, for the 4x4 tiles of tile rows [ty0, ty1) of one
 * gradient plane of each of g images (dy[j], (h, w)), in the slot layout of input_transform4
 * (the junk slot, columns past w, and rows past h read as zero, so their dM is exactly 0).
 * rb holds 4 zero-padded rows of W = 4 slots floats, tmp the column pass (6 blocks of
 * g rows W). Each 4-vector d maps to (d0, d0 + d1 + d2 + d3, d0 - d1 + d2 - d3,
 * d0 + 2 d1 + 4 d2 + 8 d3, d0 - 2 d1 + 4 d2 - 8 d3, d3), down the columns, then along the rows. */
static void grad_output_transform4(float *restrict m, size_t xs, const float *const *dy, int g,
                                   float *restrict rb, float *restrict tmp, const WPlan *p, int h,
                                   int w, int ty0, int ty1) {
    const int rows = ty1 - ty0, W = 4 * p->slots, nf = g * rows * p->slots;
    const size_t ts = (size_t)g * (size_t)rows * (size_t)W;
    memset(rb, 0, sizeof(float) * 4 * (size_t)W);
    for (int j = 0; j < g; j++)
        for (int ty = ty0; ty < ty1; ty++) {
            for (int k = 0; k < 4; k++) {
                const int y = 4 * ty + k;
                if (y < h)
                    memcpy(rb + (size_t)k * (size_t)W, dy[j] + (size_t)y * (size_t)w, sizeof(float) * (size_t)w);
                else
                    memset(rb + (size_t)k * (size_t)W, 0, sizeof(float) * (size_t)w);
            }
            float *c = tmp + ((size_t)j * (size_t)rows + (size_t)(ty - ty0)) * (size_t)W;
#pragma omp simd
            for (int x = 0; x < W; x++) {
                const float d0 = rb[x], d1 = rb[W + x], d2 = rb[2 * W + x], d3 = rb[3 * W + x];
                const float a = d0 + d2, b = d1 + d3, e = d0 + 4.0f * d2, f = 2.0f * d1 + 8.0f * d3;
                c[x] = d0;
                c[ts + x] = a + b;
                c[2 * ts + x] = a - b;
                c[3 * ts + x] = e + f;
                c[4 * ts + x] = e - f;
                c[5 * ts + x] = d3;
            }
        }
    for (int i = 0; i < 6; i++) {
        const float *c = tmp + (size_t)i * ts;
        float *o = m + (size_t)(6 * i) * xs;
#pragma omp simd
        for (int f = 0; f < nf; f++) {
            const float d0 = c[4 * f], d1 = c[4 * f + 1], d2 = c[4 * f + 2], d3 = c[4 * f + 3];
            const float a = d0 + d2, b = d1 + d3, e = d0 + 4.0f * d2, q = 2.0f * d1 + 8.0f * d3;
            o[f] = d0;
            o[xs + f] = a + b;
            o[2 * xs + f] = a - b;
            o[3 * xs + f] = e + q;
            o[4 * xs + f] = e - q;
            o[5 * xs + f] = d3;
        }
    }
}

/* G^T u for one 6-vector (G the 6x3 matrix of g6), in double. */
static inline void gt6(double *o, const double *u) {
    o[0] = u[0] / 4.0 - (u[1] + u[2]) / 6.0 + (u[3] + u[4]) / 24.0;
    o[1] = (u[2] - u[1]) / 6.0 + (u[3] - u[4]) / 12.0;
    o[2] = (u[3] + u[4] - u[1] - u[2]) / 6.0 + u[5];
}

/* ---- the drivers ------------------------------------------------------------------------- */

/* One thread's view of the workspace. */
typedef struct {
    float *v, *m, *du, *pin, *pdy, *pacc, *tmp;
} WScratch;

static WScratch scratch_of(const OpsCtx *ctx, const WPlan *p, int t) {
    WScratch w;
    w.v = ctx->ws + p->u + (size_t)t * p->per_thread;
    w.m = w.v + p->v;
    w.du = w.m + p->m;
    w.pin = w.du + p->du;
    w.pdy = w.pin + p->plane;
    w.pacc = w.pdy + p->plane;
    w.tmp = w.pacc + p->plane;
    /* the padded planes rely on zero borders (pacc on being zero between uses) */
    memset(w.pin, 0, sizeof(float) * 3 * p->plane);
    return w;
}

/* The forward pass with r x r output tiles: F(2x2, 3x3) or F(4x4, 3x3). grad (r 4 only):
 * the input gradient's convolution instead, y += conv(x, w flipped) with w (Ci, Co, 3, 3)
 * the forward weight of the layer whose output gradient x is (s is that convolution's shape:
 * Ci and Co the layer's Co and Ci); b must be NULL. */
static void winograd_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                             const float *b, const ConvShape *s, int r, int grad) {
    DDPM_CHECK(!grad || (r == 4 && !b));
    const int nt = ctx->nthreads;
    const WPlan p = wplan_make(s, nt, r);
    DDPM_CHECK(ctx->ws_floats >= p.u + (size_t)nt * p.per_thread);
    const int ci = s->ci, co = s->co, h = s->h, wd = s->w;
    const size_t pix = (size_t)h * (size_t)wd, in_img = (size_t)ci * pix,
                 out_img = (size_t)co * pix, uxs = xi_stride((size_t)co, (size_t)ci);
    float *u = ctx->ws;
#pragma omp parallel num_threads(nt)
    {
        if (r == 2) /* each ends with a barrier */
            weight_transform(u, w, co, ci);
        else
            weight_transform4(u, w, co, ci, grad);
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            WScratch sc = scratch_of(ctx, &p, t);
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i += p.g)
                for (int ty0 = 0; ty0 < p.th; ty0 += p.band) {
                    const int gi = n1 - i < p.g ? n1 - i : p.g;
                    const int ty1 = ty0 + p.band < p.th ? ty0 + p.band : p.th;
                    /* tiles (slots) per image, all */
                    const int tpu = (ty1 - ty0) * p.slots, T = gi * tpu;
                    const size_t vxs = xi_stride((size_t)ci, (size_t)T),
                                 mxs = xi_stride((size_t)co, (size_t)T);
                    if (r == 2)
                        for (int j = 0; j < gi; j++)
                            for (int c = 0; c < ci; c++)
                                input_transform(sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)tpu,
                                                vxs, x + (size_t)(i + j) * in_img + (size_t)c * pix,
                                                sc.pin, &p, h, wd, ty0, ty1);
                    else
                        for (int c = 0; c < ci; c++) {
                            const float *xc[WINO4_MAX_GROUP];
                            for (int j = 0; j < gi; j++)
                                xc[j] = x + (size_t)(i + j) * in_img + (size_t)c * pix;
                            input_transform4(sc.v + (size_t)c * (size_t)T, vxs, xc, gi, sc.pin,
                                             sc.tmp, &p, h, wd, ty0, ty1);
                        }
                    for (int xi = 0; xi < p.npos; xi++)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, T, ci, 1.0f,
                                    u + (size_t)xi * uxs, ci, sc.v + (size_t)xi * vxs, T, 0.0f,
                                    sc.m + (size_t)xi * mxs, T);
                    if (r == 2)
                        for (int j = 0; j < gi; j++)
                            for (int o = 0; o < co; o++)
                                output_transform(y + (size_t)(i + j) * out_img + (size_t)o * pix,
                                                 sc.m + (size_t)o * (size_t)T + (size_t)j * (size_t)tpu,
                                                 mxs, sc.pacc, b ? b[o] : 0.0f, &p, h, wd, ty0, ty1);
                    else
                        for (int o = 0; o < co; o++) {
                            float *yo[WINO4_MAX_GROUP];
                            for (int j = 0; j < gi; j++)
                                yo[j] = y + (size_t)(i + j) * out_img + (size_t)o * pix;
                            output_transform4(yo, gi, sc.m + (size_t)o * (size_t)T, mxs, sc.tmp,
                                              b ? b[o] : 0.0f, grad, &p, h, wd, ty0, ty1);
                        }
                }
        }
    }
}

void conv2d_winograd_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                             const float *b, const ConvShape *s) {
    winograd_forward(ctx, y, x, w, b, s, 2, 0);
}

void conv2d_winograd4_forward(const OpsCtx *ctx, float *y, const float *x, const float *w,
                              const float *b, const ConvShape *s) {
    winograd_forward(ctx, y, x, w, b, s, 4, 0);
}

/* dw (Co, Ci, 3, 3) += G^T dU G with dU the sum of the nt partials (36, Co, Ci) at part,
 * stride apart, summed in slice order (in double, as the weight transform); called by every
 * thread of the team. */
static void reduce_weight_grad4(float *dw, const float *part, size_t stride, int nt, int co,
                                int ci) {
    const size_t pairs = (size_t)co * (size_t)ci, xs = xi_stride((size_t)co, (size_t)ci);
#pragma omp barrier
#pragma omp for schedule(static)
    for (size_t e = 0; e < pairs; e++) {
        double a[36], r[6][3], col[6], o[3];
        for (int xi = 0; xi < 36; xi++) {
            float acc = 0.0f;
            for (int t = 0; t < nt; t++) acc += part[(size_t)t * stride + (size_t)xi * xs + e];
            a[xi] = acc;
        }
        for (int i = 0; i < 6; i++) gt6(r[i], a + 6 * i); /* dU G, row by row */
        float *d = dw + e * 9;
        for (int c = 0; c < 3; c++) { /* G^T (dU G), column by column */
            for (int i = 0; i < 6; i++) col[i] = r[i][c];
            gt6(o, col);
            for (int k = 0; k < 3; k++) d[3 * k + c] += (float)o[k];
        }
    }
}

/* dw += the weight gradient by F(4x4, 3x3): dU_xi = sum over tiles (A dY A^T)_xi (B^T d B)_xi,
 * 36 GEMMs over 4x4 output tiles instead of F(2x2)'s 16 over 2x2 ones (1.78x fewer
 * multiplies); the junk slots' dM is exactly zero and their V is zeroed. */
static void winograd4_weight_grad(const OpsCtx *ctx, float *dw, const float *dy, const float *x,
                                  const ConvShape *s) {
    const int nt = ctx->nthreads;
    const WPlan p = wplan_make(s, nt, 4);
    DDPM_CHECK(ctx->ws_floats >= p.u + (size_t)nt * p.per_thread);
    const int ci = s->ci, co = s->co, h = s->h, wd = s->w;
    const size_t pix = (size_t)h * (size_t)wd, in_img = (size_t)ci * pix,
                 out_img = (size_t)co * pix, uxs = xi_stride((size_t)co, (size_t)ci);
#pragma omp parallel num_threads(nt)
    {
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            WScratch sc = scratch_of(ctx, &p, t);
            memset(sc.du, 0, sizeof(float) * p.du);
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i += p.g)
                for (int ty0 = 0; ty0 < p.th; ty0 += p.band) {
                    const int gi = n1 - i < p.g ? n1 - i : p.g;
                    const int ty1 = ty0 + p.band < p.th ? ty0 + p.band : p.th;
                    const int tpu = (ty1 - ty0) * p.slots, T = gi * tpu;
                    const size_t vxs = xi_stride((size_t)ci, (size_t)T),
                                 mxs = xi_stride((size_t)co, (size_t)T);
                    const float *pl[WINO4_MAX_GROUP];
                    for (int c = 0; c < ci; c++) {
                        for (int j = 0; j < gi; j++) pl[j] = x + (size_t)(i + j) * in_img + (size_t)c * pix;
                        float *vc = sc.v + (size_t)c * (size_t)T;
                        input_transform4(vc, vxs, pl, gi, sc.pin, sc.tmp, &p, h, wd, ty0, ty1);
                        for (int xi = 0; xi < 36; xi++) /* the junk slot of each tile row */
                            for (int f = p.slots - 1; f < T; f += p.slots) vc[(size_t)xi * vxs + (size_t)f] = 0.0f;
                    }
                    for (int o = 0; o < co; o++) {
                        for (int j = 0; j < gi; j++) pl[j] = dy + (size_t)(i + j) * out_img + (size_t)o * pix;
                        grad_output_transform4(sc.m + (size_t)o * (size_t)T, mxs, pl, gi, sc.pdy,
                                               sc.tmp, &p, h, wd, ty0, ty1);
                    }
                    for (int xi = 0; xi < 36; xi++)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, co, ci, T, 1.0f,
                                    sc.m + (size_t)xi * mxs, T, sc.v + (size_t)xi * vxs, T, 1.0f,
                                    sc.du + (size_t)xi * uxs, ci);
                }
        }
        reduce_weight_grad4(dw, ctx->ws + p.u + p.v + p.m, p.per_thread, nt, co, ci);
    }
}

void conv2d_winograd4_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                               const float *x, const float *w, const ConvShape *s) {
    if (dw) winograd4_weight_grad(ctx, dw, dy, x, s);
    if (dx) {
        /* dx += dy convolved with each kernel rotated by 180 degrees, channels swapped: a
         * 3x3 stride-1 padding-1 convolution of shape (N, Co -> Ci), whose workspace is the
         * forward's (the plan is symmetric in Ci and Co) */
        ConvShape g = conv_shape(s->n, s->co, s->ci, s->h, s->w, 3, 1, 1);
        winograd_forward(ctx, dx, dy, w, NULL, &g, 4, 1);
    }
}

/* dw (Co, Ci, 3, 3) += G^T dU G with dU the sum of the nt partials (16, Co, Ci) at part,
 * stride apart, summed in slice order; called by every thread of the team. */
static void reduce_weight_grad(float *dw, const float *part, size_t stride, int nt, int co,
                               int ci) {
    const size_t pairs = (size_t)co * (size_t)ci, xs = xi_stride((size_t)co, (size_t)ci);
#pragma omp barrier
#pragma omp for schedule(static)
    for (size_t e = 0; e < pairs; e++) {
        float a[16];
        for (int xi = 0; xi < 16; xi++) {
            float acc = 0.0f;
            for (int t = 0; t < nt; t++) acc += part[(size_t)t * stride + (size_t)xi * xs + e];
            a[xi] = acc;
        }
        float r[4][3]; /* dU G: each row (u0, u1, u2, u3) maps to (u0 + (u1 + u2)/2, (u1 - u2)/2,
                          (u1 + u2)/2 + u3) */
        for (int i = 0; i < 4; i++) {
            float u0 = a[4 * i], u1 = a[4 * i + 1], u2 = a[4 * i + 2], u3 = a[4 * i + 3];
            r[i][0] = u0 + 0.5f * (u1 + u2);
            r[i][1] = 0.5f * (u1 - u2);
            r[i][2] = 0.5f * (u1 + u2) + u3;
        }
        float *d = dw + e * 9;
        for (int c = 0; c < 3; c++) { /* G^T (dU G), column by column */
            float u0 = r[0][c], u1 = r[1][c], u2 = r[2][c], u3 = r[3][c];
            d[c] += u0 + 0.5f * (u1 + u2);
            d[3 + c] += 0.5f * (u1 - u2);
            d[6 + c] += 0.5f * (u1 + u2) + u3;
        }
    }
}

void conv2d_winograd_backward(const OpsCtx *ctx, float *dx, float *dw, const float *dy,
                              const float *x, const float *w, const ConvShape *s) {
    if (!dx && !dw) return;
    const int nt = ctx->nthreads;
    const WPlan p = wplan_make(s, nt, 2);
    DDPM_CHECK(ctx->ws_floats >= p.u + (size_t)nt * p.per_thread);
    const int ci = s->ci, co = s->co, h = s->h, wd = s->w;
    const size_t pix = (size_t)h * (size_t)wd, in_img = (size_t)ci * pix,
                 out_img = (size_t)co * pix, uxs = xi_stride((size_t)co, (size_t)ci);
    float *u = ctx->ws;
#pragma omp parallel num_threads(nt)
    {
        if (dx) weight_transform(u, w, co, ci); /* ends with a barrier */
        for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads()) {
            WScratch sc = scratch_of(ctx, &p, t);
            if (dw) memset(sc.du, 0, sizeof(float) * p.du);
            int n0, n1;
            slice_of(s->n, nt, t, &n0, &n1);
            for (int i = n0; i < n1; i += p.g)
                for (int ty0 = 0; ty0 < p.th; ty0 += p.band) {
                    const int gi = n1 - i < p.g ? n1 - i : p.g;
                    const int ty1 = ty0 + p.band < p.th ? ty0 + p.band : p.th;
                    const int tpu = (ty1 - ty0) * p.tw, T = gi * tpu;
                    const size_t vxs = xi_stride((size_t)ci, (size_t)T),
                                 mxs = xi_stride((size_t)co, (size_t)T);
                    for (int j = 0; j < gi; j++)
                        for (int o = 0; o < co; o++)
                            grad_output_transform(
                                sc.m + (size_t)o * (size_t)T + (size_t)j * (size_t)tpu, mxs,
                                dy + (size_t)(i + j) * out_img + (size_t)o * pix, sc.pdy, &p, h,
                                wd, ty0, ty1);
                    if (dw) {
                        for (int j = 0; j < gi; j++)
                            for (int c = 0; c < ci; c++)
                                input_transform(
                                    sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)tpu, vxs,
                                    x + (size_t)(i + j) * in_img + (size_t)c * pix, sc.pin, &p, h,
                                    wd, ty0, ty1);
                        for (int xi = 0; xi < 16; xi++)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, co, ci, T, 1.0f,
                                        sc.m + (size_t)xi * mxs, T, sc.v + (size_t)xi * vxs, T,
                                        1.0f, sc.du + (size_t)xi * uxs, ci);
                    }
                    if (dx) {
                        for (int xi = 0; xi < 16; xi++)
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ci, T, co, 1.0f,
                                        u + (size_t)xi * uxs, ci, sc.m + (size_t)xi * mxs, T,
                                        0.0f, sc.v + (size_t)xi * vxs, T);
                        for (int j = 0; j < gi; j++)
                            for (int c = 0; c < ci; c++)
                                grad_input_transform(
                                    dx + (size_t)(i + j) * in_img + (size_t)c * pix,
                                    sc.v + (size_t)c * (size_t)T + (size_t)j * (size_t)tpu, vxs,
                                    sc.pacc, sc.tmp, &p, h, wd, ty0, ty1);
                    }
                }
        }
        if (dw) reduce_weight_grad(dw, ctx->ws + p.u + p.v + p.m, p.per_thread, nt, co, ci);
    }
}
