/* The judge: training loop (Adam, cosine learning-rate decay, shuffled batches of randomly
 * shifted digits), the weights cache with its sha256 file, and batched inference for features
 * and predicted digits. */
#include "eval/judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/common.h"
#include "core/pixel.h"
#include "core/rng.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "optim/adam.h"

#define P MNIST_PIXELS
#define EVAL_BATCH 256

void judge_config_defaults(JudgeConfig *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 4;
    c->batch = 128;
    c->lr = 1e-3;
    c->lr_end = 1e-5;
    c->seed = 1;
    c->threads = 2;
    c->subset = 0;
    c->shift = 2;
    c->progress = 0;
}

int judge_default_path(char *dst, size_t cap) {
    if (cache_file_path(dst, cap, "judge.safetensors") == 0) return 0;
    return err_set("no cache directory for the judge: set XDG_CACHE_HOME or HOME, or name the "
                   "judge's file");
}

float *mnist_to_float(const MnistSplit *s, const int *idx, int n) {
    float *f = xmalloc((size_t)n * P * sizeof(float));
    for (int i = 0; i < n; i++)
        pixels_from_u8(f + (size_t)i * P, s->images + (size_t)(idx ? idx[i] : i) * P, P);
    return f;
}

void judge_apply(Classifier *m, const float *images, int n, float *features, int *pred) {
    for (int s = 0; s < n; s += m->max_batch) {
        int c = n - s < m->max_batch ? n - s : m->max_batch;
        const float *logits = classifier_forward(m, images + (size_t)s * P, c);
        if (features)
            memcpy(features + (size_t)s * CLS_FEATURES, m->feat,
                   (size_t)c * CLS_FEATURES * sizeof(float));
        if (pred)
            for (int i = 0; i < c; i++) {
                const float *z = logits + (size_t)i * CLS_CLASSES;
                int best = 0;
                for (int j = 1; j < CLS_CLASSES; j++)
                    if (z[j] > z[best]) best = j;
                pred[s + i] = best;
            }
    }
}

/* Share of the split's images whose predicted digit is the label. */
static double split_accuracy(Classifier *m, const MnistSplit *s) {
    enum { CHUNK = 1024 };
    float *x = xmalloc((size_t)CHUNK * P * sizeof(float)); /* (CHUNK, 784) */
    int *pred = xmalloc((size_t)CHUNK * sizeof(int));
    int64_t right = 0;
    for (int i0 = 0; i0 < s->n; i0 += CHUNK) {
        int c = s->n - i0 < CHUNK ? s->n - i0 : CHUNK;
        pixels_from_u8(x, s->images + (size_t)i0 * P, (size_t)c * P);
        judge_apply(m, x, c, NULL, pred);
        for (int i = 0; i < c; i++) right += pred[i] == s->labels[i0 + i];
    }
    xfree(x);
    xfree(pred);
    return (double)right / s->n;
}

/* dst (28, 28) = src / 255 moved by (dx, dy) pixels, zero where nothing moves in. */
static void shifted_image(float *dst, const uint8_t *src, int dx, int dy) {
    for (int yy = 0; yy < 28; yy++)
        for (int xx = 0; xx < 28; xx++) {
            int sy = yy - dy, sx = xx - dx;
            dst[yy * 28 + xx] = sy >= 0 && sy < 28 && sx >= 0 && sx < 28
                                    ? pixel_from_u8(src[sy * 28 + sx])
                                    : 0.0f;
        }
}

int judge_train(Classifier *m, const JudgeConfig *c, const MnistSplit *train,
                const MnistSplit *test, double *accuracy, const Progress *p) {
    Rng rng;
    rng_seed(&rng, c->seed);
    int max_batch = c->batch > EVAL_BATCH ? c->batch : EVAL_BATCH;
    classifier_init(m, max_batch, c->threads, &rng);
    const int n = c->subset > 0 && c->subset < train->n ? c->subset : train->n;
    const int B = c->batch;
    const int steps_per_epoch = (n + B - 1) / B; /* the last batch of an epoch may be short */
    const long total_steps = (long)steps_per_epoch * c->epochs;
    float *pm = xcalloc(m->n_params, sizeof(float)); /* (n_params) Adam first moment */
    float *pv = xcalloc(m->n_params, sizeof(float)); /* (n_params) second moment */
    float *x = xmalloc((size_t)B * P * sizeof(float)); /* (N, 784) batch */
    int *y = xmalloc((size_t)B * sizeof(int));         /* (N) labels */
    uint32_t *perm = xmalloc((size_t)n * sizeof(uint32_t));
    Adam opt = {.lr = c->lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .step = 0};
    progress_log(p, "judge: training %s (%zu parameters) on %d images, random shifts up to %d "
                 "pixels, %d epochs, batch %d, Adam lr %g cosine to %g, seed %llu, %d threads\n",
                 CLS_ARCH, m->n_params, n, c->shift, c->epochs, B, c->lr, c->lr_end,
                 (unsigned long long)c->seed, c->threads);
    const double t0 = now_seconds();
    double last_print = t0;
    double acc = 0.0;
    for (int e = 1; e <= c->epochs; e++) {
        rng_permutation(&rng, perm, (uint32_t)n);
        double loss_sum = 0.0;
        for (int s = 0; s < steps_per_epoch; s++) {
            int nb = n - s * B < B ? n - s * B : B;
            for (int i = 0; i < nb; i++) {
                uint32_t k = perm[(size_t)s * B + (size_t)i];
                int dx = 0, dy = 0;
                if (c->shift > 0) {
                    dx = (int)rng_below(&rng, (uint32_t)(2 * c->shift + 1)) - c->shift;
                    dy = (int)rng_below(&rng, (uint32_t)(2 * c->shift + 1)) - c->shift;
                }
                shifted_image(x + (size_t)i * P, train->images + (size_t)k * P, dx, dy);
                y[i] = train->labels[k];
            }
            long step = (long)(e - 1) * steps_per_epoch + s;
            double frac = (double)step / (double)total_steps;
            opt.lr = c->lr_end + 0.5 * (c->lr - c->lr_end) * (1.0 + cos(3.14159265358979323846 * frac));
            classifier_forward(m, x, nb);
            float loss = classifier_loss(m, y);
            loss_sum += loss;
            classifier_zero_grad(m);
            classifier_backward(m, y);
            adam_step(&m->ctx, &opt, m->params, m->grads, pm, pv, m->n_params);
            double now = now_seconds();
            if (c->progress && (now - last_print > 0.5 || s == steps_per_epoch - 1)) {
                last_print = now;
                progress_log(p, "\rjudge: epoch %d/%d step %d/%d loss %.4f (%.0f s)   ", e,
                             c->epochs, s + 1, steps_per_epoch, (double)loss, now - t0);
            }
        }
        acc = split_accuracy(m, test);
        progress_log(p, "%sjudge: epoch %d/%d mean loss %.4f, test accuracy %.2f%% (%.0f s)\n",
                     c->progress ? "\r" : "", e, c->epochs, loss_sum / steps_per_epoch,
                     100.0 * acc, now_seconds() - t0);
    }
    xfree(pm);
    xfree(pv);
    xfree(x);
    xfree(y);
    xfree(perm);
    *accuracy = acc;
    return 0;
}

/* ---- the cache --------------------------------------------------------------------------- */

int file_sha256_hex(const char *path, char hex[65]) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set("%s: cannot open: no such file or not readable", path);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    DDPM_CHECK(ctx != NULL);
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, fp)) > 0) ok = EVP_DigestUpdate(ctx, buf, n) == 1;
    int read_err = ferror(fp);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (ok && !read_err) ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    fclose(fp);
    if (read_err) return err_set("%s: read error while computing its sha256", path);
    if (!ok) return err_set("%s: computing its sha256 failed", path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = 0;
    return 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int judge_save(const Classifier *m, const char *path, const JudgeConfig *c, double accuracy,
               int test_images) {
    char acc[32], ep[16], bs[16], lr[32], seed[32], th[16], sub[16], nt[16], sh[16];
    snprintf(acc, sizeof acc, "%.6f", accuracy);
    snprintf(nt, sizeof nt, "%d", test_images);
    snprintf(sh, sizeof sh, "%d", c->shift);
    snprintf(ep, sizeof ep, "%d", c->epochs);
    snprintf(bs, sizeof bs, "%d", c->batch);
    snprintf(lr, sizeof lr, "%g", c->lr);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    snprintf(th, sizeof th, "%d", c->threads);
    snprintf(sub, sizeof sub, "%d", c->subset);
    const char *keys[] = {"ddpm.judge.test_accuracy", "ddpm.judge.epochs", "ddpm.judge.batch",
                          "ddpm.judge.lr", "ddpm.judge.seed", "ddpm.judge.threads",
                          "ddpm.judge.subset", "ddpm.judge.test_images", "ddpm.judge.shift"};
    const char *vals[] = {acc, ep, bs, lr, seed, th, sub, nt, sh};
    if (classifier_save(m, path, keys, vals, (int)(sizeof keys / sizeof keys[0])) != 0) return -1;
    char hex[65], line[1200], sum_path[1100];
    if (file_sha256_hex(path, hex) != 0) return -1;
    snprintf(line, sizeof line, "%s  %s\n", hex, base_name(path));
    snprintf(sum_path, sizeof sum_path, "%s.sha256", path);
    return write_file_atomic(sum_path, line, strlen(line));
}

int judge_load(Classifier *m, const char *path, int max_batch, int nthreads, double *accuracy) {
    char sum_path[1100], hex[65];
    snprintf(sum_path, sizeof sum_path, "%s.sha256", path);
    unsigned char *txt = NULL;
    size_t len = 0;
    if (read_file(sum_path, 4096, &txt, &len) != 0)
        return err_set("%s: no checksum file %s beside it (a judge is saved with one; delete the "
                       "file to retrain)", path, sum_path);
    int well_formed = len >= 64;
    for (size_t i = 0; well_formed && i < 64; i++)
        well_formed = (txt[i] >= '0' && txt[i] <= '9') || (txt[i] >= 'a' && txt[i] <= 'f');
    char want[65] = {0};
    if (well_formed) memcpy(want, txt, 64);
    xfree(txt);
    if (!well_formed) return err_set("%s: not a sha256 checksum file", sum_path);
    if (file_sha256_hex(path, hex) != 0) return -1;
    if (strcmp(hex, want) != 0)
        return err_set("%s: checksum mismatch against %s (the file is damaged or was changed); "
                       "delete both to retrain the judge", path, sum_path);
    Rng rng;
    rng_seed(&rng, 0); /* the initial values are overwritten by the file's */
    classifier_init(m, max_batch, nthreads, &rng);
    if (classifier_load(m, path) != 0) {
        classifier_free(m);
        return -1;
    }
    if (accuracy) {
        *accuracy = NAN;
        StFile f;
        if (safetensors_open(path, &f) == 0) {
            const char *a = safetensors_meta(&f, "ddpm.judge.test_accuracy");
            if (a) *accuracy = strtod(a, NULL);
            safetensors_close(&f);
        }
    }
    return 0;
}
