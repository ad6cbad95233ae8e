/* Figures drawn with cairo and saved as PNG: a labelled grid of images (sample sheets,
 * denoising trajectories) and a line plot with axes, round-number ticks, optional log scale
 * and a moving average (loss curves). Text uses cairo's toy API with DejaVu Sans. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>

#include "core/common.h"
#include "core/pixel.h"
#include "io/fileio.h"
#include "io/image.h"

#define FONT "DejaVu Sans"
#define FIG_MAX_SIDE 16384
#define PI 3.14159265358979323846 /* M_PI is not in strict C11 */

/* ---------------------------------------------------------------------------------------
 * Shared: text and saving. */

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s) {
    if (!s || !*s) return 0;
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* Draw s with its anchor at (x, y): ax 0/0.5/1 = left/centre/right, and the baseline
 * placed so the text is vertically centred on y (using the font's ascent and descent, so
 * labels line up regardless of which letters they contain). */
static void draw_text(cairo_t *cr, const char *s, double x, double y, double ax) {
    if (!s || !*s) return;
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s);
    cairo_move_to(cr, x - ax * w, y + (fe.ascent - fe.descent) / 2);
    cairo_show_text(cr, s);
}

static cairo_status_t on_png_chunk(void *closure, const unsigned char *data, unsigned int n) {
    return atomic_write(closure, data, n) ? CAIRO_STATUS_WRITE_ERROR : CAIRO_STATUS_SUCCESS;
}

/* Encode the surface as PNG straight into an AtomicFile: no temporary PNG of our own. */
static int save_surface(cairo_surface_t *surf, cairo_t *cr, const char *path) {
    cairo_status_t st = cairo_status(cr);
    if (st != CAIRO_STATUS_SUCCESS)
        return err_set("%s: drawing failed: %s", path, cairo_status_to_string(st));
    cairo_surface_flush(surf);
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    st = cairo_surface_write_to_png_stream(surf, on_png_chunk, &af);
    if (st != CAIRO_STATUS_SUCCESS) {
        int write_err = st == CAIRO_STATUS_WRITE_ERROR;
        atomic_abort(&af);
        /* On a write error err_msg() already names the file and the cause. */
        if (write_err) return -1;
        return err_set("%s: PNG encoding failed: %s", path, cairo_status_to_string(st));
    }
    return atomic_commit(&af);
}

/* ---------------------------------------------------------------------------------------
 * Image grid. */

static const char *label_at(const char *const *labels, int i) {
    return labels && labels[i] ? labels[i] : NULL;
}

int figure_grid_png(const char *path, const float *imgs, int rows, int cols, int h, int w,
                    const char *title, const char *const *row_labels,
                    const char *const *col_labels) {
    return figure_grid_png_c(path, imgs, rows, cols, 1, h, w, title, row_labels, col_labels);
}

int figure_grid_png_c(const char *path, const float *imgs, int rows, int cols, int ch, int h,
                      int w, const char *title, const char *const *row_labels,
                      const char *const *col_labels) {
    if (rows <= 0 || cols <= 0 || h <= 0 || w <= 0 || rows > 1024 || cols > 1024 || h > 4096 ||
        w > 4096 || (ch != 1 && ch != 3))
        return err_set("%s: invalid figure (%d x %d images of %d x %d pixels)", path, rows, cols,
                       h, w);
    /* Nearest-neighbour upscaling to about 84 px per image (3x for MNIST): big enough to
     * see strokes, small enough for a 10 x 10 sheet to fit a screen. */
    int side = h > w ? h : w;
    int scale = (int)lround(84.0 / side);
    if (scale < 1) scale = 1;
    if (scale > 8) scale = 8;
    const double gap = 4, margin = 12, label_font = 14, title_font = 18;
    int iw = w * scale, ih = h * scale;

    /* Measure the labels on a scratch surface to size the margins. */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *mc = cairo_create(scratch);
    set_font(mc, label_font, 0);
    double row_w = 0, col_w = 0;
    for (int r = 0; r < rows; r++) row_w = fmax(row_w, text_width(mc, label_at(row_labels, r)));
    for (int c = 0; c < cols; c++) col_w = fmax(col_w, text_width(mc, label_at(col_labels, c)));
    cairo_font_extents_t fe;
    cairo_font_extents(mc, &fe);
    double label_h = fe.height;
    set_font(mc, title_font, 1);
    double title_w = text_width(mc, title);
    cairo_font_extents(mc, &fe);
    double title_h = fe.height;
    cairo_destroy(mc);
    cairo_surface_destroy(scratch);

    double cell_w = fmax(iw, ceil(col_w) + 6);
    double left = margin + (row_w > 0 ? ceil(row_w) + 10 : 0);
    double top = margin + (title && *title ? title_h + 8 : 0) + (col_w > 0 ? label_h + 4 : 0);
    double W = left + cols * cell_w + (cols - 1) * gap + margin;
    double H = top + rows * (double)ih + (rows - 1) * gap + margin;
    if (W < title_w + 2 * margin) W = ceil(title_w + 2 * margin);
    if (W > FIG_MAX_SIDE || H > FIG_MAX_SIDE)
        return err_set("%s: figure of %.0f x %.0f pixels is too large", path, W, H);
    /* Centre the labels-and-grid block when the title made the figure wider. */
    double grid_w = cols * cell_w + (cols - 1) * gap;
    double x_grid = floor((W - (left - margin) - grid_w) / 2) + (left - margin);

    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)W, (int)H);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    double y = margin;
    if (title && *title) {
        set_font(cr, title_font, 1);
        draw_text(cr, title, W / 2, y + title_h / 2, 0.5);
        y += title_h + 8;
    }
    set_font(cr, label_font, 0);
    if (col_w > 0)
        for (int c = 0; c < cols; c++)
            draw_text(cr, label_at(col_labels, c), x_grid + c * (cell_w + gap) + cell_w / 2,
                      y + label_h / 2, 0.5);
    for (int r = 0; r < rows; r++)
        draw_text(cr, label_at(row_labels, r), x_grid - 10, top + r * (ih + gap) + ih / 2.0, 1);

    /* Pixels are written straight into the surface: exact nearest-neighbour blocks with no
     * resampling filter in the way. */
    cairo_surface_flush(surf);
    unsigned char *base = cairo_image_surface_get_data(surf);
    int stride = cairo_image_surface_get_stride(surf);
    if (base) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                const size_t plane = (size_t)h * (size_t)w;
                const float *img = imgs + ((size_t)r * (size_t)cols + (size_t)c) * ch * plane;
                /* grey: the one plane three times; colour: the R, G and B planes */
                const size_t gp = ch == 3 ? plane : 0;
                int x0 = (int)(x_grid + c * (cell_w + gap) + (cell_w - iw) / 2);
                int y0 = (int)(top + r * (ih + gap));
                for (int yy = 0; yy < ih; yy++) {
                    uint32_t *row = (uint32_t *)(base + (size_t)(y0 + yy) * (size_t)stride) + x0;
                    const float *src = img + (size_t)(yy / scale) * (size_t)w;
                    for (int xx = 0; xx < iw; xx++) {
                        const float *px = src + xx / scale;
                        uint32_t rv = pixel_to_u8(px[0]), gv = pixel_to_u8(px[gp]),
                                 bv = pixel_to_u8(px[2 * gp]);
                        row[xx] = 0xff000000u | rv << 16 | gv << 8 | bv;
                    }
                }
            }
        }
        cairo_surface_mark_dirty(surf);
    }
    int rc = save_surface(surf, cr, path);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Line plot. */

/* 1, 2 or 5 times a power of ten, about range / target. */
static double nice_step(double range, int target) {
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    return nf * mag;
}

/* A tick value with just the decimals its step needs, so 0.1 + 0.2 prints as 0.3. */
static void fmt_linear(char *buf, size_t cap, double v, double step) {
    if (fabs(v) < step * 1e-9) v = 0; /* no "-0" */
    if (fabs(v) >= 1e6 || step < 1e-5) {
        snprintf(buf, cap, "%.3g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, cap, "%.*f", dec, v);
}

static void fmt_log(char *buf, size_t cap, double v) {
    int e = (int)floor(log10(v) + 1e-9);
    double m = v / pow(10, e);
    if (e >= -3 && e <= 4)
        snprintf(buf, cap, "%g", v);
    else if (fabs(m - 1) < 1e-9)
        snprintf(buf, cap, "1e%d", e);
    else
        snprintf(buf, cap, "%.0fe%d", m, e);
}

typedef struct {
    double x0, y0, w, h;     /* plot area in pixels */
    double xlo, xhi;         /* data range shown on x */
    double ylo, yhi;         /* on y: log10 of the values when log_y */
    double ystep;            /* linear y: tick spacing, which the frame edges are multiples of */
    int log_y;
} Axes;

static double ax_px(const Axes *a, double x) {
    return a->x0 + (x - a->xlo) / (a->xhi - a->xlo) * a->w;
}

/* Pixel row of value v, or NAN where it cannot be drawn (non-finite, or <= 0 on log). */
static double ax_py(const Axes *a, double v) {
    if (!isfinite(v) || (a->log_y && v <= 0)) return NAN;
    double t = a->log_y ? log10(v) : v;
    return a->y0 + a->h - (t - a->ylo) / (a->yhi - a->ylo) * a->h;
}

static void y_tick(cairo_t *cr, const Axes *a, double v, const char *label, int major) {
    double py = ax_py(a, v);
    if (!(py >= a->y0 - 0.5 && py <= a->y0 + a->h + 0.5)) return;
    py = floor(py) + 0.5; /* crisp 1-px lines */
    double g = major ? 0.9 : 0.96; /* minor grid lines fainter still */
    cairo_set_source_rgb(cr, g, g, g);
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_move_to(cr, a->x0 - (major ? 6 : 3), py);
    cairo_line_to(cr, a->x0, py);
    cairo_stroke(cr);
    if (label) draw_text(cr, label, a->x0 - 9, py, 1);
}

static void draw_y_axis(cairo_t *cr, const Axes *a) {
    char buf[32];
    if (!a->log_y) {
        /* Integer tick indices rather than repeated += keep the values exact multiples. */
        double step = a->ystep;
        long k0 = lround(a->ylo / step), k1 = lround(a->yhi / step);
        for (long k = k0; k <= k1; k++) {
            fmt_linear(buf, sizeof buf, (double)k * step, step);
            y_tick(cr, a, (double)k * step, buf, 1);
        }
        return;
    }
    int e0 = (int)floor(a->ylo + 1e-9), e1 = (int)ceil(a->yhi - 1e-9);
    int decades = e1 - e0;
    int every = decades > 8 ? (decades + 7) / 8 : 1; /* at most ~8 labelled decades */
    for (int e = e0; e <= e1; e++) {
        double base = pow(10, e);
        if ((e - e0) % every == 0) {
            fmt_log(buf, sizeof buf, base);
            y_tick(cr, a, base, buf, 1);
        }
        if (decades <= 6)
            for (int m = 2; m <= 9; m++) {
                /* Over one or two decades the 2x and 5x ticks get labels too. */
                int label = decades <= 2 && (m == 2 || m == 5);
                if (label) fmt_log(buf, sizeof buf, m * base);
                y_tick(cr, a, m * base, label ? buf : NULL, label);
            }
    }
}

static void draw_x_axis(cairo_t *cr, const Axes *a) {
    char buf[32];
    double step = fmax(1, nice_step(a->xhi - a->xlo, 8));
    for (double v = ceil(a->xlo / step - 1e-9) * step; v <= a->xhi + 1e-9; v += step) {
        double px = floor(ax_px(a, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, px, a->y0);
        cairo_line_to(cr, px, a->y0 + a->h);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, px, a->y0 + a->h);
        cairo_line_to(cr, px, a->y0 + a->h + 6);
        cairo_stroke(cr);
        snprintf(buf, sizeof buf, "%.0f", v);
        draw_text(cr, buf, px, a->y0 + a->h + 17, 0.5);
    }
}

/* A polyline through (i + 1, v[i]), broken wherever a value cannot be drawn. When there are
 * many more points than pixel columns, each column gets one vertical min-max segment
 * (envelope: looks the same as the full noisy line at O(width) cost) or, for a smooth curve,
 * one point at the column's mean, which keeps the line smooth. */
static void draw_series(cairo_t *cr, const Axes *a, const double *v, int n, int envelope) {
    if (n > 2 * (int)a->w) {
        int cols = (int)a->w, pen = 0;
        for (int c = 0; c < cols; c++) {
            int i0 = (int)((int64_t)c * n / cols), i1 = (int)((int64_t)(c + 1) * n / cols);
            double lo = INFINITY, hi = -INFINITY, sum = 0;
            int cnt = 0;
            for (int i = i0; i < i1; i++) {
                double py = ax_py(a, v[i]);
                if (isnan(py)) continue;
                lo = fmin(lo, py);
                hi = fmax(hi, py);
                sum += py;
                cnt++;
            }
            double px = a->x0 + c + 0.5;
            if (cnt == 0) {
                pen = 0;
            } else if (envelope) {
                cairo_move_to(cr, px, lo - 0.5);
                cairo_line_to(cr, px, hi + 0.5);
            } else {
                if (pen)
                    cairo_line_to(cr, px, sum / cnt);
                else
                    cairo_move_to(cr, px, sum / cnt);
                pen = 1;
            }
        }
        cairo_stroke(cr);
        return;
    }
    int pen = 0;
    for (int i = 0; i < n; i++) {
        double py = ax_py(a, v[i]);
        if (isnan(py)) {
            pen = 0;
            continue;
        }
        double px = ax_px(a, i + 1);
        if (pen)
            cairo_line_to(cr, px, py);
        else
            cairo_move_to(cr, px, py);
        pen = 1;
    }
    if (n == 1 && pen) {
        cairo_stroke(cr);
        cairo_arc(cr, ax_px(a, 1), ax_py(a, v[0]), 2.5, 0, 2 * PI);
        cairo_fill(cr);
        return;
    }
    cairo_stroke(cr);
}

/* Centred moving average over `window` values (narrower at the ends, non-finite values
 * skipped): unlike a trailing one it does not lag behind a fast-falling loss. */
static void moving_average(const double *v, int n, int window, double *out) {
    double *sum = malloc(((size_t)n + 1) * sizeof(double));
    int *cnt = malloc(((size_t)n + 1) * sizeof(int));
    if (!sum || !cnt) {
        for (int i = 0; i < n; i++) out[i] = v[i];
        free(sum);
        free(cnt);
        return;
    }
    sum[0] = 0;
    cnt[0] = 0;
    for (int i = 0; i < n; i++) {
        int ok = isfinite(v[i]);
        sum[i + 1] = sum[i] + (ok ? v[i] : 0);
        cnt[i + 1] = cnt[i] + ok;
    }
    for (int i = 0; i < n; i++) {
        /* the window stays symmetric, narrowing towards the ends */
        int half = window / 2;
        if (half > i) half = i;
        if (half > n - 1 - i) half = n - 1 - i;
        int lo = i - half, hi = i + half + 1;
        int c = cnt[hi] - cnt[lo];
        out[i] = c > 0 ? (sum[hi] - sum[lo]) / c : NAN;
    }
    free(sum);
    free(cnt);
}

/* The y axis of a curve plot: from the data's range lo..hi (have: any finite point), a log
 * frame of whole decades, or a linear one snapped to round ticks just outside the data. */
static void set_y_range(Axes *a, double lo, double hi, int have, int log_y) {
    if (log_y) {
        if (!have) lo = 0.1, hi = 1;
        a->ylo = floor(log10(lo));
        a->yhi = ceil(log10(hi));
        if (a->yhi <= a->ylo) a->yhi = a->ylo + 1;
    } else {
        if (!have) lo = 0, hi = 1;
        if (hi - lo < 1e-12 * fmax(1, fabs(hi))) {
            double d = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
            lo -= d;
            hi += d;
        }
        /* Snap the frame to round ticks just outside the data. */
        double margin = 0.03 * (hi - lo);
        double step = nice_step(hi - lo + 2 * margin, 6);
        a->ylo = floor((lo - margin) / step) * step;
        a->yhi = ceil((hi + margin) / step) * step;
        if (lo >= 0 && a->ylo < 0) a->ylo = 0;
        a->ystep = step;
        /* Values near DBL_MAX overflow the range arithmetic: fall back to a unit frame
         * rather than loop over absurd tick counts. */
        if (!isfinite(a->ylo) || !isfinite(a->yhi) || !(step > 0) ||
            (a->yhi - a->ylo) / step > 100) {
            a->ylo = 0;
            a->yhi = 1;
            a->ystep = 0.2;
        }
    }
}

/* The legend in the top-right corner of the plot area: the raw curve and, when two, its
 * moving average over `smooth` points. */
static void draw_legend(cairo_t *cr, const Axes *a, int smooth, int two) {
    char avg_label[64];
    snprintf(avg_label, sizeof avg_label, "moving average (%d)", smooth);
    set_font(cr, 12, 0);
    double lw = fmax(text_width(cr, "raw"), two ? text_width(cr, avg_label) : 0) + 44;
    double lh = two ? 44 : 24;
    double lx = a->x0 + a->w - lw - 8, ly = a->y0 + 8;
    cairo_rectangle(cr, lx, ly, lw, lh);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_stroke(cr);
    for (int k = 0; k < 1 + two; k++) {
        double yy = ly + 12 + 20 * k;
        if (k == 0) {
            cairo_set_source_rgb(cr, 0.62, 0.76, 0.93);
            cairo_set_line_width(cr, 1.5);
        } else {
            cairo_set_source_rgb(cr, 0.05, 0.25, 0.65);
            cairo_set_line_width(cr, 2.2);
        }
        cairo_move_to(cr, lx + 8, yy);
        cairo_line_to(cr, lx + 32, yy);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_text(cr, k == 0 ? "raw" : avg_label, lx + 38, yy, 0);
    }
}

int plot_curve_png(const char *path, const float *y, int n, const char *title,
                   const char *xlabel, const char *ylabel, int smooth, int log_y) {
    if (n < 0) return err_set("%s: cannot plot %d points", path, n);
    const int W = 900, H = 500;
    Axes a = {.x0 = 84, .y0 = 46, .w = W - 84 - 24, .h = H - 46 - 62, .log_y = log_y};
    double *v = xmalloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double *avg = NULL;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        v[i] = y[i];
        if (isfinite(v[i]) && (!log_y || v[i] > 0)) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    }
    int have = lo <= hi;
    a.xlo = 1;
    a.xhi = n > 1 ? n : 2;
    set_y_range(&a, lo, hi, have, log_y);

    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_line_width(cr, 1);
    set_font(cr, 12, 0);
    draw_y_axis(cr, &a);
    draw_x_axis(cr, &a);

    cairo_save(cr);
    cairo_rectangle(cr, a.x0, a.y0, a.w, a.h);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_source_rgb(cr, 0.62, 0.76, 0.93);
    cairo_set_line_width(cr, 1);
    draw_series(cr, &a, v, n, 1);
    if (smooth > 1 && n > 0) {
        avg = xmalloc(sizeof(double) * (size_t)n);
        moving_average(v, n, smooth, avg);
        cairo_set_source_rgb(cr, 0.05, 0.25, 0.65);
        cairo_set_line_width(cr, 2.2);
        draw_series(cr, &a, avg, n, 0);
    }
    cairo_restore(cr);

    /* Frame on top of the curves so they never cover it. */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, a.x0 - 0.5, a.y0 - 0.5, a.w + 1, a.h + 1);
    cairo_stroke(cr);

    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (!have) {
        set_font(cr, 14, 0);
        draw_text(cr, "no data", a.x0 + a.w / 2, a.y0 + a.h / 2, 0.5);
    }
    set_font(cr, 13, 0);
    draw_text(cr, xlabel, a.x0 + a.w / 2, H - 16, 0.5);
    if (ylabel && *ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 18, a.y0 + a.h / 2);
        cairo_rotate(cr, -PI / 2);
        draw_text(cr, ylabel, 0, 0, 0.5);
        cairo_restore(cr);
    }
    set_font(cr, 16, 1);
    draw_text(cr, title, W / 2.0, 22, 0.5);

    if (have) draw_legend(cr, &a, smooth, avg != NULL);

    int rc = save_surface(surf, cr, path);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    xfree(v);
    xfree(avg);
    return rc;
}
