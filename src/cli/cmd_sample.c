/* ddpm sample: draw samples from a time or class model: PNG grid, IDX (images, and labels
 * for class models), an animated GIF of the reverse process, a guidance sweep, and a
 * number written in generated digits. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/progress.h"
#include "core/common.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "diffusion/sampler.h"
#include "io/image.h"
#include "model/checkpoint.h"

#define P MNIST_PIXELS
#define MAX_SWEEP 16
#define MAX_TEXT 64

static const char *HEAD =
    "Usage: ddpm sample --ckpt FILE [--n N] [--seed S] [--out FILE.png] [--idx FILE] [--gif FILE]\n"
    "                   [--digit K | --per-digit K | --text DIGITS] [--guidance G] [--sweep G,G,..]\n"
    "\n"
    "Runs the DDPM reverse process from pure noise. Time models: N samples in a grid.\n"
    "Class models: --digit K draws N samples of digit K; otherwise a grid with --per-digit\n"
    "samples of every digit (rows 0 to 9); --text 2026 writes that number in generated\n"
    "digits as one image. Guidance: eps = eps_u + G (eps_c - eps_u). --sweep writes one grid\n"
    "per guidance scale (FILE-g<G>.png). --idx writes the images as an IDX file (MNIST format,\n"
    "unsigned bytes) and, for class models, the labels beside it (FILE with -labels).";

/* "a/b.idx" -> "a/b-labels.idx"; without an extension, append "-labels". */
static void labels_path(char *dst, size_t cap, const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path) {
        snprintf(dst, cap, "%.*s-labels%s", (int)(dot - path), path, dot);
    } else {
        snprintf(dst, cap, "%s-labels", path);
    }
}

static void suffixed(char *dst, size_t cap, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path)
        snprintf(dst, cap, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
    else
        snprintf(dst, cap, "%s%s", path, suffix);
}

static int write_grid(const char *path, const float *imgs, int n, int cols, const int *labels,
                      int per_digit, const char *title, Dataset ds) {
    int rows = (n + cols - 1) / cols;
    float *g = xcalloc((size_t)rows * cols * P, sizeof(float));
    memcpy(g, imgs, (size_t)n * P * sizeof(float));
    int rc = figure_grid_png(path, g, rows, cols, 28, 28, title,
                             per_digit && labels ? dataset_class_names(ds) : NULL, NULL);
    xfree(g);
    return rc;
}

int cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *out = "samples.png", *idx = NULL, *gif = NULL, *text = NULL;
    const char *sweep_s = NULL;
    int n = 40, digit = -1, per_digit = 4, threads = 2, batch = 128, gif_every = 5;
    uint64_t seed = 1;
    float guidance = 5.0f, eta = -1.0f;
    const char *sampler = "ddpm";
    const char *spacing = NULL;
    int steps = 0, no_ema = 0, used_ema = 0, clip = 0;
    Opt opts[] = {
        {"ckpt", OPT_STR, &ckpt, "weights of a time or class model (.safetensors), required", 0, -1, 0},
        {"n", OPT_INT, &n, "number of samples (default 40)", 1, 1000000, 0},
        {"seed", OPT_U64, &seed, "random seed (default 1)", 0, -1, 0},
        {"out", OPT_STR, &out, "PNG grid (default samples.png)", 0, -1, 0},
        {"idx", OPT_STR, &idx, "also write the samples as an IDX file", 0, -1, 0},
        {"gif", OPT_STR, &gif, "also write the reverse process as an animated GIF", 0, -1, 0},
        {"gif-every", OPT_INT, &gif_every, "steps between GIF frames (default 5)", 1, 100000, 0},
        {"digit", OPT_INT, &digit, "class: sample N images of this digit", 0, 9, 0},
        {"per-digit", OPT_INT, &per_digit, "class: samples of every digit in the grid (default 4)", 1, 1000, 0},
        {"text", OPT_STR, &text, "class: a string of digits to write as one image", 0, -1, 0},
        {"guidance", OPT_FLOAT, &guidance, "class: guidance scale gamma (default 5)", -100, 100, 0},
        {"sweep", OPT_STR, &sweep_s, "class: one grid per guidance scale, e.g. 0,1,2,3,5", 0, -1, 0},
        {"no-ema", OPT_FLAG, &no_ema, "use the trained weights, not their moving average (when the file has one)", 0, -1, 0},
        {"sampler", OPT_STR, &sampler, "ddpm (the SPEC's, all T steps; default) or ddim", 0, -1, 0},
        {"steps", OPT_INT, &steps, "ddim: reverse steps (default 50)", 1, 100000, 0},
        {"eta", OPT_FLOAT, &eta, "ddim: noise per step, 0 deterministic (default) to 1", 0, 1, 0},
        {"clip", OPT_FLAG, &clip, "ddim: clip the predicted clean image to [0, 1] at each step", 0, -1, 0},
        {"spacing", OPT_STR, &spacing, "ddim: uniform (default), quadratic (denser near the clean end) or trailing (no step at t = 0)", 0, -1, 0},
        {"threads", OPT_INT, &threads, "CPU threads (default 2)", 1, 1024, 0},
        {"batch", OPT_INT, &batch, "images per forward pass (default 128)", 2, 65536, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("sample", 2);
    if (!ckpt) {
        fprintf(stderr, "ddpm sample: --ckpt is required (see --help)\n");
        return 2;
    }
    if (text) {
        size_t len = strlen(text);
        if (len > MAX_TEXT) {
            fprintf(stderr, "ddpm sample: --text: at most %d digits\n", MAX_TEXT);
            return 2;
        }
        for (size_t i = 0; i < len; i++)
            if (!isdigit((unsigned char)text[i])) {
                fprintf(stderr, "ddpm sample: --text: '%s' is not a string of digits\n", text);
                return 2;
            }
    }
    float sweep[MAX_SWEEP];
    int n_sweep = 0;
    if (sweep_s && (n_sweep = parse_float_list("--sweep", sweep_s, sweep, MAX_SWEEP)) < 0) return cli_fail("sample", 2);

    Unet m;
    const CheckpointLoadOptions lo = {.max_batch = batch, .nthreads = threads, .use_ema = !no_ema};
    if (checkpoint_load(&m, &used_ema, ckpt, &lo) != 0) return cli_fail("sample", 1);
    int rc = 1;
    int *labels = NULL;
    float *imgs = NULL, *frames = NULL;
    uint8_t *bytes = NULL;
    Schedule s = {0};
    const int cls = m.kind == UNET_CLASS;
    if (m.kind == UNET_DENOISER) {
        err_set("%s is a denoiser; sampling needs a time or class model", ckpt);
        goto done;
    }
    if (!cls && (digit >= 0 || text || sweep_s)) {
        err_set("--digit, --text and --sweep need a class model; %s is a time model", ckpt);
        goto done;
    }
    Dataset ds;
    if (checkpoint_dataset(ckpt, &ds) != 0) goto done;
    if (text && ds != DATASET_MNIST) {
        err_set("--text writes digits; %s was trained on %s", ckpt, dataset_name(ds));
        goto done;
    }
    /* the schedule the checkpoint was trained with (the SPEC's unless its config says otherwise) */
    int T = SCHEDULE_DEFAULT_T;
    float b0 = SCHEDULE_DEFAULT_BETA_START, b1 = SCHEDULE_DEFAULT_BETA_END;
    ScheduleKind sk;
    if (checkpoint_schedule_kind(ckpt, &sk, &T, &b0, &b1) != 0) goto done;
    if (schedule_init_kind(&s, sk, T, b0, b1) != 0) goto done;
    SampleRequest base = {0};
    SamplerWords words = {sampler, steps, eta, clip, spacing};
    if (sampler_choose(&base, &s, &words) != 0) goto done;
    const int K = sampler_steps(&s, &base);

    int cols = 10, grid_per_digit = 0;
    if (cls) {
        if (text) {
            n = (int)strlen(text);
            cols = n;
        } else if (digit < 0) {
            n = 10 * per_digit;
            cols = per_digit;
            grid_per_digit = 1;
        }
        labels = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++)
            labels[i] = text ? text[i] - '0' : digit >= 0 ? digit : i / per_digit;
    }
    if (used_ema) fprintf(stderr, "sampling with the moving average of the weights (EMA; --no-ema for the raw ones)\n");
    imgs = xmalloc((size_t)n * P * sizeof(float));
    int nf = gif ? sampler_n_frames(K, gif_every) : 0;
    if (gif) frames = xmalloc((size_t)nf * n * P * sizeof(float));
    int n_runs = n_sweep ? n_sweep : 1;
    for (int k = 0; k < n_runs; k++) {
        float g = n_sweep ? sweep[k] : guidance;
        Rng rng;
        rng_seed(&rng, seed);
        SampleProgressLine pr = {.t0 = now_seconds(), .last_pct = -1};
        SampleRequest req = base; /* the sampler chosen by sampler_choose, then this draw */
        req.n = n;
        req.labels = labels;
        req.guidance = g;
        req.frame_every = gif && k == 0 ? gif_every : 0;
        req.frames = frames;
        req.progress = isatty(2) ? cli_sample_progress : NULL;
        req.progress_user = &pr;
        double t0 = now_seconds();
        ddpm_sample(&m, &s, &rng, &req, imgs);
        double dt = now_seconds() - t0;
        fprintf(stderr, "%d samples in %.1f s (%.2f img/s, %d %s steps%s)\n", n, dt, n / dt, K,
                base.ddim_steps ? "DDIM" : "DDPM",
                cls && g != 0.0f && g != 1.0f ? ", guided: 2 forward images per sample" : "");
        char path[1024], title[160];
        if (n_sweep) {
            char suf[32];
            snprintf(suf, sizeof suf, "-g%g", (double)g);
            suffixed(path, sizeof path, out, suf);
        } else {
            snprintf(path, sizeof path, "%s", out);
        }
        if (text) {
            /* one image of the number: digits side by side, no gaps */
            if (png_write_grid(path, imgs, n, 28, 28, n, 0, 4) != 0) goto done;
        } else {
            if (cls)
                snprintf(title, sizeof title, "Samples of %s %s, guidance %g", digit >= 0 ? "one" : "every",
                         ds == DATASET_MNIST ? "digit" : "class", (double)g);
            else
                snprintf(title, sizeof title, base.ddim_steps ? "Samples from pure noise, DDIM %d steps" : "Samples from pure noise, T=%d", K);
            if (write_grid(path, imgs, n, cols, labels, grid_per_digit, title, ds) != 0) goto done;
        }
        printf("wrote %s\n", path);
    }
    if (idx) {
        bytes = xmalloc((size_t)n * P);
        for (size_t i = 0; i < (size_t)n * P; i++) bytes[i] = pixel_to_u8(imgs[i]);
        uint32_t dims[3] = {(uint32_t)n, 28, 28};
        if (idx_write_u8(idx, bytes, 3, dims) != 0) goto done;
        printf("wrote %s\n", idx);
        if (cls) {
            char lp[1024];
            labels_path(lp, sizeof lp, idx);
            for (int i = 0; i < n; i++) bytes[i] = (uint8_t)labels[i];
            uint32_t ld[1] = {(uint32_t)n};
            if (idx_write_u8(lp, bytes, 1, ld) != 0) goto done;
            printf("wrote %s\n", lp);
        }
    }
    if (gif) {
        /* each frame is the grid of (up to 100) samples at that point of the reverse process */
        int gn = n < 100 ? n : 100, gc = gn < cols ? gn : cols, gr = (gn + gc - 1) / gc;
        int pad = 2, W = gc * 28 + (gc + 1) * pad, H = gr * 28 + (gr + 1) * pad;
        uint8_t *fb = xcalloc((size_t)nf * W * H, 1);
        for (int f = 0; f < nf; f++)
            for (int i = 0; i < gn; i++) {
                int gy = i / gc, gx = i % gc;
                const float *src = frames + ((size_t)f * n + i) * P;
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++)
                        fb[(size_t)f * W * H + (size_t)(pad + gy * (28 + pad) + y) * W + pad + gx * (28 + pad) + x] = pixel_to_u8(src[y * 28 + x]);
            }
        int grc = gif_write_gray(gif, fb, nf, W, H, 6, 200);
        xfree(fb);
        if (grc != 0) goto done;
        printf("wrote %s (%d frames)\n", gif, nf);
    }
    rc = 0;
done:
    if (rc) cli_fail("sample", 1);
    xfree(labels);
    xfree(imgs);
    xfree(frames);
    xfree(bytes);
    schedule_free(&s);
    unet_free(&m);
    return rc;
}
