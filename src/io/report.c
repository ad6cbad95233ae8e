/* The reproduction report page (see report.h): a growing text buffer, a few table and
 * figure writers, and the page assembled part by part from the directory's files. */
#include "io/report.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "io/fileio.h"

#define MAX_FILE (256u << 20) /* largest image or JSON file read */

/* ---- text buffer ----------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (b->len + n + 1 > cap) cap *= 2;
        char *t = xmalloc(cap);
        if (b->len) memcpy(t, b->s, b->len);
        xfree(b->s);
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void printf_(Buf *b, const char *fmt, ...) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    DDPM_CHECK(n >= 0 && (size_t)n < sizeof tmp);
    put(b, tmp, (size_t)n);
}

/* Text with &, <, >, " escaped. */
static void esc(Buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': puts_(b, "&amp;"); break;
        case '<': puts_(b, "&lt;"); break;
        case '>': puts_(b, "&gt;"); break;
        case '"': puts_(b, "&quot;"); break;
        default: put(b, s, 1);
        }
    }
}

char *base64_encode(const unsigned char *d, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = A[(v >> 6) & 63];
        *o++ = A[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = i + 1 < n ? A[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* ---- inputs ---------------------------------------------------------------------------- */

/* dir/rel parsed, or NULL when absent or not JSON. */
static cJSON *load_json(const char *dir, const char *rel) {
    char path[2048];
    path_join(path, sizeof path, dir, rel);
    unsigned char *data;
    size_t n;
    if (read_file(path, MAX_FILE, &data, &n) != 0) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)data, n);
    xfree(data);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- page pieces ----------------------------------------------------------------------- */

static const char *CSS =
    "body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:64rem;"
    "margin:0 auto;padding:1rem;color:#1b1b1b;background:#fff}"
    "h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;margin-top:2rem;"
    "border-bottom:1px solid #ddd}h3{font-size:1.05rem}"
    ".figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:1rem}"
    "figure{margin:0;background:#fafafa;border:1px solid #e4e4e4;border-radius:6px;padding:.5rem}"
    "figure img{display:block;width:100%;height:auto;image-rendering:pixelated}"
    "figure img.plot{image-rendering:auto}"
    "figcaption{font-size:.85rem;color:#444;margin-top:.3rem}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}"
    "th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;white-space:nowrap}"
    "th:first-child,td:first-child,td.l{text-align:left}th{background:#f3f3f3}"
    "code{font-size:.85em}.note{color:#555;font-size:.9rem}";

static void fmt_num(char *dst, size_t cap, double v, const char *fmt) {
    if (isfinite(v)) snprintf(dst, cap, fmt, v);
    else snprintf(dst, cap, "&ndash;");
}

static void fmt_seconds(char *dst, size_t cap, double s) {
    if (!isfinite(s)) snprintf(dst, cap, "&ndash;");
    else if (s < 90) snprintf(dst, cap, "%.0f s", s);
    else if (s < 5400) snprintf(dst, cap, "%.1f min", s / 60);
    else snprintf(dst, cap, "%.2f h", s / 3600);
}

/* One embedded image; nothing when the file is absent. Returns 1 if embedded. */
static int figure(Buf *b, const char *dir, const char *rel, const char *caption) {
    char path[2048];
    path_join(path, sizeof path, dir, rel);
    unsigned char *data;
    size_t n;
    if (read_file(path, MAX_FILE, &data, &n) != 0) return 0;
    const char *ext = strrchr(rel, '.');
    const char *mime = ext && strcmp(ext, ".gif") == 0 ? "image/gif" : "image/png";
    char *b64 = base64_encode(data, n);
    xfree(data);
    puts_(b, "<figure><img");
    size_t len = strlen(rel);
    if (len >= 8 && strcmp(rel + len - 8, "loss.png") == 0) puts_(b, " class=\"plot\""); /* smooth */
    printf_(b, " alt=\"");
    esc(b, caption);
    printf_(b, "\" src=\"data:%s;base64,", mime);
    puts_(b, b64);
    puts_(b, "\"><figcaption>");
    esc(b, caption);
    puts_(b, " <code>");
    esc(b, rel);
    puts_(b, "</code></figcaption></figure>\n");
    xfree(b64);
    return 1;
}

/* The figures a training run drew, in reading order, with their captions. */
typedef struct {
    const char *prefix, *caption;
} FigKind;

static const FigKind FIG_KINDS[] = {
    {"loss", "Training loss, every step"},
    {"noising", "Noising: x + sigma eps for growing sigma"},
    {"denoise_epoch", "Test digits (clean / noisy / denoised) after epoch %d"},
    {"ood_epoch", "Noise levels it was not trained on, after epoch %d"},
    {"samples_epoch", "Samples from pure noise after epoch %d"},
};
#define N_FIG_KINDS (int)(sizeof FIG_KINDS / sizeof FIG_KINDS[0])

typedef struct {
    char name[256];
    int kind, epoch;
} FigFile;

static int fig_cmp(const void *a, const void *b) {
    const FigFile *x = a, *y = b;
    if (x->kind != y->kind) return x->kind - y->kind;
    if (x->epoch != y->epoch) return x->epoch - y->epoch;
    return strcmp(x->name, y->name);
}

static void run_figures(Buf *b, const char *dir, const char *run) {
    char path[2048];
    path_join(path, sizeof path, dir, run);
    DIR *d = opendir(path);
    if (!d) return;
    FigFile files[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        size_t len = strlen(e->d_name);
        if (len < 5 || len >= sizeof files[0].name || strcmp(e->d_name + len - 4, ".png") != 0) continue;
        for (int k = 0; k < N_FIG_KINDS; k++) {
            size_t pl = strlen(FIG_KINDS[k].prefix);
            if (strncmp(e->d_name, FIG_KINDS[k].prefix, pl) != 0) continue;
            snprintf(files[n].name, sizeof files[n].name, "%s", e->d_name);
            files[n].kind = k;
            files[n].epoch = atoi(e->d_name + pl);
            n++;
            break;
        }
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof files[0], fig_cmp);
    puts_(b, "<div class=\"figs\">\n");
    for (int i = 0; i < n; i++) {
        char caption[256], rel[600];
        snprintf(caption, sizeof caption, FIG_KINDS[files[i].kind].caption, files[i].epoch);
        snprintf(rel, sizeof rel, "%.200s/%.255s", run, files[i].name);
        figure(b, dir, rel, caption);
    }
    puts_(b, "</div>\n");
}

/* Configuration and per-epoch table of a training run. */
static void run_tables(Buf *b, const char *dir, const char *run) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s/config.json", run);
    cJSON *cfg = load_json(dir, rel);
    snprintf(rel, sizeof rel, "%s/metrics.json", run);
    cJSON *met = load_json(dir, rel);
    if (!cfg) {
        puts_(b, "<p class=\"note\">Not run yet.</p>\n");
        cJSON_Delete(met);
        return;
    }
    const char *model = str(cfg, "model");
    int denoiser = model && strcmp(model, "denoiser") == 0;
    char v[64];
    puts_(b, "<div class=\"scroll\"><table><tr><th>model</th><th>width D</th><th>batch</th>"
             "<th>epochs</th><th>Adam lr</th><th>lr after last epoch</th><th>training images</th>");
    puts_(b, denoiser ? "<th>sigma</th>" : "<th>T</th><th>betas</th>");
    if (model && strcmp(model, "class") == 0) puts_(b, "<th>p_uncond</th>");
    puts_(b, "<th>parameters</th></tr>\n<tr><td>");
    esc(b, model ? model : "?");
    double subset = num(cfg, "subset");
    printf_(b, "</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.3g</td><td>%.3g</td><td>%s</td>",
            num(cfg, "width"), num(cfg, "batch"), num(cfg, "epochs"), num(cfg, "lr"),
            num(cfg, "lr_end"), subset > 0 ? (snprintf(v, sizeof v, "%.0f", subset), v) : "60000");
    if (denoiser) printf_(b, "<td>%.3g</td>", num(cfg, "sigma"));
    else printf_(b, "<td>%.0f</td><td>%.3g&ndash;%.3g</td>", num(cfg, "T"), num(cfg, "beta_start"), num(cfg, "beta_end"));
    if (model && strcmp(model, "class") == 0) printf_(b, "<td>%.3g</td>", num(cfg, "p_uncond"));
    printf_(b, "<td>%.0f</td></tr></table></div>\n", num(cfg, "parameters"));

    const cJSON *epochs = met ? cJSON_GetObjectItemCaseSensitive(met, "epochs") : NULL;
    if (cJSON_IsArray(epochs) && cJSON_GetArraySize(epochs) > 0) {
        puts_(b, "<div class=\"scroll\"><table><tr><th>epoch</th><th>mean loss</th>"
                 "<th>mean loss, last 100 steps</th>");
        if (denoiser) puts_(b, "<th>test MSE</th>");
        puts_(b, "<th>images/s</th><th>time</th></tr>\n");
        const cJSON *e;
        cJSON_ArrayForEach(e, epochs) {
            char a[32], c[32], d[32], t[32], s[32];
            fmt_num(a, sizeof a, num(e, "mean_loss"), "%.4f");
            fmt_num(c, sizeof c, num(e, "mean_loss_last100"), "%.4f");
            fmt_num(d, sizeof d, num(e, "test_mse"), "%.4f");
            fmt_num(t, sizeof t, num(e, "images_per_second"), "%.1f");
            fmt_seconds(s, sizeof s, num(e, "seconds"));
            printf_(b, "<tr><td>%.0f</td><td>%s</td><td>%s</td>", num(e, "epoch"), a, c);
            if (denoiser) printf_(b, "<td>%s</td>", d);
            printf_(b, "<td>%s</td><td>%s</td></tr>\n", t, s);
        }
        puts_(b, "</table></div>\n");
    }
    cJSON_Delete(cfg);
    cJSON_Delete(met);
}

/* The evaluation table of eval/partN.json (time or class model). */
static void eval_table(Buf *b, const char *dir, const char *rel, const char *title) {
    cJSON *j = load_json(dir, rel);
    const cJSON *res = j ? cJSON_GetObjectItemCaseSensitive(j, "results") : NULL;
    if (!cJSON_IsArray(res)) {
        cJSON_Delete(j);
        return;
    }
    printf_(b, "<h3>");
    esc(b, title);
    printf_(b, "</h3>\n<div class=\"scroll\"><table><tr><th>samples</th><th>n</th><th>FID (judge "
               "features)</th><th>precision</th><th>recall</th><th>judged as requested</th>"
               "<th>judged-digit entropy (bits)</th><th>diversity</th><th>closer to a training "
               "image than the median test image</th></tr>\n");
    const cJSON *floor = cJSON_GetObjectItemCaseSensitive(j, "real_floor");
    int count = cJSON_GetArraySize(res);
    for (int i = 0; i <= count; i++) {
        const cJSON *r = i < count ? cJSON_GetArrayItem(res, i) : floor;
        if (!cJSON_IsObject(r)) continue;
        char name[128], f[32], p[32], rc[32], a[32], en[32], dv[32], me[32];
        double g = num(r, "guidance");
        if (i == count) snprintf(name, sizeof name, "real data (training images): the floor");
        else if (isfinite(g)) snprintf(name, sizeof name, "guidance %g", g);
        else snprintf(name, sizeof name, "samples");
        const cJSON *mem = cJSON_GetObjectItemCaseSensitive(r, "memorisation");
        fmt_num(f, sizeof f, num(r, "fid"), "%.2f");
        fmt_num(p, sizeof p, num(r, "precision"), "%.3f");
        fmt_num(rc, sizeof rc, num(r, "recall"), "%.3f");
        fmt_num(a, sizeof a, 100 * num(r, "accuracy"), "%.1f%%");
        fmt_num(en, sizeof en, num(r, "judged_digit_entropy_bits"), "%.2f");
        fmt_num(dv, sizeof dv, num(r, "diversity_features"), "%.3f");
        fmt_num(me, sizeof me, 100 * num(mem, "share_closer_than_median_test"), "%.1f%%");
        printf_(b, "<tr><td>%s</td><td>%.0f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td></tr>\n",
                name, num(r, "n"), f, p, rc, a, en, dv, me);
    }
    puts_(b, "</table></div>\n");
    const cJSON *judge = cJSON_GetObjectItemCaseSensitive(j, "judge");
    double acc = num(judge, "test_accuracy");
    if (isfinite(acc))
        printf_(b, "<p class=\"note\">Judge: an MNIST classifier trained by ddpm, %.2f%% test "
                   "accuracy. Definitions of every column: docs/EVAL.md.</p>\n", 100 * acc);
    /* "sampler" held this description before it became the sampler's word */
    const char *sd = str(j, "sampler_description") ? str(j, "sampler_description") : str(j, "sampler");
    if (sd) {
        puts_(b, "<p class=\"note\">Sampler: ");
        esc(b, sd);
        if (isfinite(num(j, "nfe")))
            printf_(b, " (%.0f network passes per image)", num(j, "nfe"));
        puts_(b, ".</p>\n");
    }
    cJSON_Delete(j);
}

static void denoiser_eval_table(Buf *b, const char *dir) {
    cJSON *j = load_json(dir, "eval/part1.json");
    const cJSON *arr = j ? cJSON_GetObjectItemCaseSensitive(j, "denoiser") : NULL;
    if (cJSON_IsArray(arr)) {
        puts_(b, "<h3>Denoiser: test MSE and PSNR per noise level</h3>\n<div class=\"scroll\">"
                 "<table><tr><th>sigma</th>");
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) printf_(b, "<th>%g</th>", num(e, "sigma"));
        puts_(b, "</tr>\n<tr><td>test MSE</td>");
        cJSON_ArrayForEach(e, arr) printf_(b, "<td>%.4f</td>", num(e, "mse"));
        puts_(b, "</tr>\n<tr><td>PSNR (dB)</td>");
        cJSON_ArrayForEach(e, arr) printf_(b, "<td>%.2f</td>", num(e, "psnr_db"));
        puts_(b, "</tr></table></div>\n");
    }
    cJSON_Delete(j);
}

static void stage_table(Buf *b, const cJSON *stages) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(stages, "stages");
    if (!cJSON_IsArray(arr)) return;
    puts_(b, "<div class=\"scroll\"><table><tr><th>stage</th><th>what</th><th>time</th>"
             "<th>finished</th></tr>\n");
    double total = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, arr) {
        char t[32];
        double sec = num(s, "seconds");
        if (isfinite(sec)) total += sec;
        fmt_seconds(t, sizeof t, sec);
        puts_(b, "<tr><td>");
        esc(b, str(s, "name") ? str(s, "name") : "?");
        puts_(b, "</td><td class=\"l\">");
        esc(b, str(s, "what") ? str(s, "what") : "");
        printf_(b, "</td><td>%s</td><td>", t);
        esc(b, str(s, "finished") ? str(s, "finished") : "");
        puts_(b, "</td></tr>\n");
    }
    char t[32];
    fmt_seconds(t, sizeof t, total);
    printf_(b, "<tr><th>all</th><th></th><th>%s</th><th></th></tr></table></div>\n", t);
}

int report_write(const char *dir) {
    Buf b = {0};
    cJSON *rep = load_json(dir, "reproduce.json");
    cJSON *stages = load_json(dir, "stages.json");
    const char *profile = rep && str(rep, "profile") ? str(rep, "profile") : "?";
    puts_(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              "<title>ddpm reproduction</title>\n<style>");
    puts_(&b, CSS);
    puts_(&b, "</style></head><body>\n<h1>ddpm: diffusion models on MNIST, reproduced</h1>\n");
    printf_(&b, "<p>Profile <b>");
    esc(&b, profile);
    puts_(&b, "</b>");
    const char *started = rep ? str(rep, "started") : NULL;
    if (started) {
        puts_(&b, ", started ");
        esc(&b, started);
    }
    puts_(&b, ". Command: <code>");
    esc(&b, rep && str(rep, "command") ? str(rep, "command") : "ddpm reproduce");
    puts_(&b, "</code></p>\n");
    const cJSON *mach = rep ? cJSON_GetObjectItemCaseSensitive(rep, "machine") : NULL;
    if (mach) {
        puts_(&b, "<p>Machine: ");
        esc(&b, str(mach, "cpu") ? str(mach, "cpu") : "?");
        printf_(&b, ", %.0f cores, %.0f threads used; BLAS: ", num(mach, "cores"), num(mach, "threads"));
        esc(&b, str(mach, "blas") ? str(mach, "blas") : "?");
        puts_(&b, ".</p>\n");
    }
    puts_(&b, "<h2>Stages and timings</h2>\n");
    if (stages) stage_table(&b, stages);
    else puts_(&b, "<p class=\"note\">No stage has finished yet.</p>\n");

    puts_(&b, "<h2>Part 1: a UNet that denoises directly</h2>\n<p>The UNet maps x + sigma eps "
              "to x (MSE), trained at one sigma and tried on others.</p>\n");
    run_tables(&b, dir, "part1");
    run_figures(&b, dir, "part1");
    denoiser_eval_table(&b, dir);

    puts_(&b, "<h2>Part 2: a DDPM conditioned on the timestep</h2>\n<p>The UNet predicts the "
              "noise of x_t given t/T; samples come from the DDPM reverse process started from "
              "pure noise.</p>\n");
    run_tables(&b, dir, "part2");
    run_figures(&b, dir, "part2");
    puts_(&b, "<div class=\"figs\">\n");
    figure(&b, dir, "samples/part2-samples.png", "Samples of the final model");
    figure(&b, dir, "samples/part2-reverse.gif", "The reverse process, pure noise to digits");
    puts_(&b, "</div>\n");

    puts_(&b, "<h2>Part 3: digit conditioning with classifier-free guidance</h2>\n<p>A one-hot "
              "digit (dropped 10% of the time) scales the features; sampling mixes the "
              "conditional and unconditional predictions with guidance gamma.</p>\n");
    run_tables(&b, dir, "part3");
    run_figures(&b, dir, "part3");
    puts_(&b, "<div class=\"figs\">\n");
    double gamma = rep ? num(rep, "guidance") : NAN;
    char cap[128];
    snprintf(cap, sizeof cap, "Every digit, rows 0 to 9, guidance %g", isfinite(gamma) ? gamma : 5.0);
    figure(&b, dir, "samples/part3-digits.png", cap);
    figure(&b, dir, "samples/part3-reverse.gif", "The guided reverse process");
    figure(&b, dir, "samples/part3-text.png", "A requested number, in generated digits");
    const cJSON *sweep = rep ? cJSON_GetObjectItemCaseSensitive(rep, "sweep") : NULL;
    const cJSON *g;
    cJSON_ArrayForEach(g, sweep) {
        if (!cJSON_IsNumber(g)) continue;
        char rel[128];
        snprintf(rel, sizeof rel, "samples/part3-sweep-g%g.png", g->valuedouble);
        snprintf(cap, sizeof cap, "Guidance %g", g->valuedouble);
        figure(&b, dir, rel, cap);
    }
    puts_(&b, "</div>\n");

    puts_(&b, "<h2>Evaluation</h2>\n<p>Samples judged by an MNIST classifier that ddpm trains "
              "itself; distances in its penultimate-layer features.</p>\n");
    eval_table(&b, dir, "eval/part2.json", "Part 2: time-conditioned DDPM");
    eval_table(&b, dir, "eval/part3.json", "Part 3: digit-conditioned DDPM, by guidance scale");
    puts_(&b, "<p class=\"note\">Every image on this page is also a file in the reproduction "
              "directory (its path is under it). Written by ddpm reproduce.</p>\n</body></html>\n");
    cJSON_Delete(rep);
    cJSON_Delete(stages);
    char path[2048];
    path_join(path, sizeof path, dir, "index.html");
    int rc = write_file_atomic(path, b.s, b.len);
    xfree(b.s);
    return rc;
}
