/* The evaluation of sample sets: the real-data reference (judge features of the test set and
 * their Gaussian fit, a seeded reference subset with its k-NN radii and nearest-training-image
 * distances, and the real-data floor computed on training images), the metrics of one sample
 * set, the table (as output lines) and the JSON. */
#include "eval/evaluate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "eval/judge.h"
#include "eval/metrics.h"

#define P MNIST_PIXELS
#define F CLS_FEATURES

/* Mean pairwise distance within each digit d of the rows of feat (N, F) and img (N, 784)
 * grouped by group (N); NAN for digits with fewer than two rows. */
static void per_digit_mpd(double mpd_feat[10], double mpd_pix[10], const float *feat,
                          const float *img, const int *group, int n, int threads) {
    int *rows = xmalloc((size_t)n * sizeof(int));
    float *gf = xmalloc((size_t)n * F * sizeof(float));
    float *gp = xmalloc((size_t)n * P * sizeof(float));
    for (int d = 0; d < 10; d++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (group[i] == d) rows[m++] = i;
        if (m < 2) {
            mpd_feat[d] = mpd_pix[d] = NAN;
            continue;
        }
        for (int i = 0; i < m; i++) {
            memcpy(gf + (size_t)i * F, feat + (size_t)rows[i] * F, F * sizeof(float));
            memcpy(gp + (size_t)i * P, img + (size_t)rows[i] * P, P * sizeof(float));
        }
        mpd_feat[d] = mean_pairwise_distance(gf, m, F, threads);
        mpd_pix[d] = mean_pairwise_distance(gp, m, P, threads);
    }
    xfree(rows);
    xfree(gf);
    xfree(gp);
}

static double share_below(const float *v, int n, double threshold) {
    int64_t c = 0;
    for (int i = 0; i < n; i++) c += v[i] < threshold;
    return n > 0 ? (double)c / n : NAN;
}

/* The metrics of n images with optional labels; nearest training images when do_nn. */
static void eval_set(EvalResult *res, EvalReal *r, const char *name, const float *images,
                     const int *labels, int n, int do_nn, int keep_nn) {
    DDPM_CHECK(n >= EVAL_MIN_SAMPLES);
    memset(res, 0, sizeof *res);
    snprintf(res->name, sizeof res->name, "%s", name);
    res->n = n;
    res->conditional = labels != NULL;
    float *feat = xmalloc((size_t)n * F * sizeof(float)); /* (N, F) */
    int *pred = xmalloc((size_t)n * sizeof(int));         /* (N) judged digits */
    judge_apply(r->judge, images, n, feat, pred);

    res->fid = frechet_distance_features(feat, n, r->test_feat, r->nt, F);
    double *rad = xmalloc((size_t)n * sizeof(double));
    knn_radii(rad, feat, n, F, EVAL_K, r->threads);
    res->precision = manifold_coverage(feat, n, r->ref_feat, r->ref_radius, r->n_ref, F, NULL, r->threads);
    res->recall = manifold_coverage(r->ref_feat, r->n_ref, feat, rad, n, F, NULL, r->threads);
    xfree(rad);

    for (int i = 0; i < n; i++) res->hist[pred[i]]++;
    res->entropy_bits = histogram_entropy(res->hist, 10);
    res->accuracy = NAN;
    for (int d = 0; d < 10; d++) res->acc_digit[d] = NAN;
    if (labels) {
        int64_t right = 0, asked[10] = {0}, hit[10] = {0};
        for (int i = 0; i < n; i++) {
            asked[labels[i]]++;
            hit[labels[i]] += pred[i] == labels[i];
            right += pred[i] == labels[i];
        }
        res->accuracy = (double)right / n;
        for (int d = 0; d < 10; d++)
            if (asked[d]) res->acc_digit[d] = (double)hit[d] / (double)asked[d];
    }

    /* diversity: within each requested digit (judged digit when unconditional) */
    double mf[10], mp[10];
    per_digit_mpd(mf, mp, feat, images, labels ? labels : pred, n, r->threads);
    double sf = 0, sp = 0;
    int nd = 0;
    for (int d = 0; d < 10; d++) {
        res->div_feat_digit[d] = mf[d] / r->mpd_feat[d];
        res->div_pix_digit[d] = mp[d] / r->mpd_pix[d];
        if (isfinite(res->div_feat_digit[d]) && isfinite(res->div_pix_digit[d])) {
            sf += res->div_feat_digit[d];
            sp += res->div_pix_digit[d];
            nd++;
        }
    }
    res->div_feat = nd ? sf / nd : NAN;
    res->div_pix = nd ? sp / nd : NAN;

    res->nn_median = res->memo_share = res->copy_share = NAN;
    if (do_nn) {
        int *idx = xmalloc((size_t)n * sizeof(int));
        float *dist = xmalloc((size_t)n * sizeof(float));
        nearest_neighbours(idx, dist, images, n, r->search_img, r->n_search, P, r->threads);
        res->nn_median = quantile(dist, n, 0.5);
        res->memo_share = share_below(dist, n, r->nn_median);
        res->copy_share = share_below(dist, n, r->nn_p01);
        if (keep_nn) {
            res->nn_index = idx;
            res->nn_dist = dist;
        } else {
            xfree(idx);
            xfree(dist);
        }
    }
    xfree(feat);
    xfree(pred);
}

void eval_real_init(EvalReal *r, const MnistSplit *train, const MnistSplit *test, Classifier *judge,
                    int n, int nt, int n_search, uint64_t seed, int threads, const Progress *p) {
    DDPM_CHECK(n >= EVAL_MIN_SAMPLES);
    memset(r, 0, sizeof *r);
    r->train = train;
    r->test = test;
    r->judge = judge;
    r->p = p;
    r->threads = threads;
    r->n = n;
    r->nt = nt < test->n ? nt : test->n;
    r->n_search = n_search < train->n ? n_search : train->n;
    DDPM_CHECK(r->nt >= EVAL_MIN_SAMPLES && r->n_search >= 1);
    const double t0 = now_seconds();

    /* the test set: features, their Gaussian fit, per-digit diversity */
    r->test_img = mnist_to_float(test, NULL, r->nt);
    r->test_feat = xmalloc((size_t)r->nt * F * sizeof(float));
    judge_apply(judge, r->test_img, r->nt, r->test_feat, NULL);
    r->mu = xmalloc(F * sizeof(double));
    r->cov = xmalloc((size_t)F * F * sizeof(double));
    feature_stats(r->mu, r->cov, r->test_feat, r->nt, F);
    int *lab = xmalloc((size_t)r->nt * sizeof(int));
    for (int i = 0; i < r->nt; i++) lab[i] = test->labels[i];
    per_digit_mpd(r->mpd_feat, r->mpd_pix, r->test_feat, r->test_img, lab, r->nt, threads);
    xfree(lab);

    /* the precision/recall reference: a random subset of the test images, as large as the sample set */
    Rng rng;
    rng_seed(&rng, seed);
    uint32_t *perm = xmalloc((size_t)(r->nt > train->n ? r->nt : train->n) * sizeof(uint32_t));
    rng_permutation(&rng, perm, (uint32_t)r->nt);
    r->n_ref = n < r->nt ? n : r->nt;
    r->ref_feat = xmalloc((size_t)r->n_ref * F * sizeof(float));
    float *ref_img = xmalloc((size_t)r->n_ref * P * sizeof(float));
    for (int i = 0; i < r->n_ref; i++) {
        memcpy(r->ref_feat + (size_t)i * F, r->test_feat + (size_t)perm[i] * F, F * sizeof(float));
        memcpy(ref_img + (size_t)i * P, r->test_img + (size_t)perm[i] * P, P * sizeof(float));
    }
    r->ref_radius = xmalloc((size_t)r->n_ref * sizeof(double));
    knn_radii(r->ref_radius, r->ref_feat, r->n_ref, F, EVAL_K, threads);

    /* how close held-out digits come to the training set: the memorisation yardstick */
    progress_log(p, "eval: nearest training images of %d test images among %d...\n", r->n_ref,
                 r->n_search);
    r->search_img = mnist_to_float(train, NULL, r->n_search);
    r->ref_nn_dist = xmalloc((size_t)r->n_ref * sizeof(float));
    int *idx = xmalloc((size_t)r->n_ref * sizeof(int));
    nearest_neighbours(idx, r->ref_nn_dist, ref_img, r->n_ref, r->search_img, r->n_search, P, threads);
    xfree(idx);
    xfree(ref_img);
    r->nn_median = quantile(r->ref_nn_dist, r->n_ref, 0.5);
    r->nn_p01 = quantile(r->ref_nn_dist, r->n_ref, 0.01);

    /* the real-data floor: random training images (with their labels) in place of samples */
    int nf = n < train->n ? n : train->n;
    rng_permutation(&rng, perm, (uint32_t)train->n);
    int *fidx = xmalloc((size_t)nf * sizeof(int));
    int *flab = xmalloc((size_t)nf * sizeof(int));
    for (int i = 0; i < nf; i++) {
        fidx[i] = (int)perm[i];
        flab[i] = train->labels[perm[i]];
    }
    float *fimg = mnist_to_float(train, fidx, nf);
    eval_set(&r->floor, r, "real floor", fimg, flab, nf, 0, 0);
    /* training images are in the searched set, so their memorisation entries are those of the
     * held-out reference subset: by construction about 50% and 1% */
    r->floor.nn_median = r->nn_median;
    r->floor.memo_share = share_below(r->ref_nn_dist, r->n_ref, r->nn_median);
    r->floor.copy_share = share_below(r->ref_nn_dist, r->n_ref, r->nn_p01);
    xfree(fimg);
    xfree(fidx);
    xfree(flab);
    xfree(perm);
    progress_log(p, "eval: real-data reference ready (%.1f s)\n", now_seconds() - t0);
}

void eval_real_free(EvalReal *r) {
    xfree(r->test_img);
    xfree(r->test_feat);
    xfree(r->mu);
    xfree(r->cov);
    xfree(r->ref_feat);
    xfree(r->ref_radius);
    xfree(r->ref_nn_dist);
    xfree(r->search_img);
    eval_result_free(&r->floor);
    memset(r, 0, sizeof *r);
}

void eval_samples(EvalResult *res, EvalReal *r, const char *name, const float *images,
                  const int *labels, int keep_nn) {
    const double t0 = now_seconds();
    eval_set(res, r, name, images, labels, r->n, 1, keep_nn);
    progress_log(r->p, "eval: %s evaluated (%.1f s)\n", name, now_seconds() - t0);
}

void eval_result_free(EvalResult *res) {
    xfree(res->nn_index);
    xfree(res->nn_dist);
    res->nn_index = NULL;
    res->nn_dist = NULL;
}

/* ---- the table ------------------------------------------------------------------------------ */

typedef enum { FMT_NUM3, FMT_PCT, FMT_NUM2 } Fmt;

/* One line of the table being built: text so far and its length. A row holds at most
 * 46 + 13 * (columns + 1) characters, columns of names under 48 characters. */
typedef struct {
    char s[2048];
    size_t len;
} Line;

static void line_add(Line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(Line *l, const char *fmt, ...) {
    if (l->len >= sizeof l->s) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->s + l->len, sizeof l->s - l->len, fmt, ap);
    va_end(ap);
    if (k > 0) l->len += (size_t)k;
}

static void cell(Line *l, double v, Fmt fmt) {
    char s[32];
    if (!isfinite(v)) snprintf(s, sizeof s, "-");
    else if (fmt == FMT_PCT) snprintf(s, sizeof s, "%.2f%%", 100.0 * v);
    else if (fmt == FMT_NUM2) snprintf(s, sizeof s, "%.2f", v);
    else snprintf(s, sizeof s, "%.3f", v);
    line_add(l, " %12s", s);
}

/* One row: the label, the value of each column, the floor. `get` picks the field. */
static void row(const Progress *p, const char *label, const EvalResult *cols, int ncols,
                const EvalResult *floor, double (*get)(const EvalResult *, int), int arg, Fmt fmt) {
    Line l = {.len = 0};
    line_add(&l, "%-46s", label);
    for (int c = 0; c < ncols; c++) cell(&l, get(&cols[c], arg), fmt);
    cell(&l, get(floor, arg), fmt);
    progress_out(p, "%s\n", l.s);
}

static double g_fid(const EvalResult *e, int a) { (void)a; return e->fid; }
static double g_prec(const EvalResult *e, int a) { (void)a; return e->precision; }
static double g_rec(const EvalResult *e, int a) { (void)a; return e->recall; }
static double g_acc(const EvalResult *e, int a) { (void)a; return e->accuracy; }
static double g_accd(const EvalResult *e, int d) { return e->acc_digit[d]; }
static double g_ent(const EvalResult *e, int a) { (void)a; return e->entropy_bits; }
static double g_hist(const EvalResult *e, int d) { return (double)e->hist[d] / e->n; }
static double g_divf(const EvalResult *e, int a) { (void)a; return e->div_feat; }
static double g_divfd(const EvalResult *e, int d) { return e->div_feat_digit[d]; }
static double g_divp(const EvalResult *e, int a) { (void)a; return e->div_pix; }
static double g_nnm(const EvalResult *e, int a) { (void)a; return e->nn_median; }
static double g_memo(const EvalResult *e, int a) { (void)a; return e->memo_share; }
static double g_copy(const EvalResult *e, int a) { (void)a; return e->copy_share; }

void eval_table(const Progress *p, const EvalReal *r, const EvalResult *cols, int ncols) {
    const EvalResult *fl = &r->floor;
    int any_cond = 0;
    for (int c = 0; c < ncols; c++) any_cond |= cols[c].conditional;
    Line head = {.len = 0}, count = {.len = 0};
    line_add(&head, "%-46s", "metric");
    for (int c = 0; c < ncols; c++) line_add(&head, " %12s", cols[c].name);
    progress_out(p, "\n%s %12s\n", head.s, "real floor");
    line_add(&count, "%-46s", "images");
    for (int c = 0; c < ncols; c++) line_add(&count, " %12d", cols[c].n);
    progress_out(p, "%s %12d\n", count.s, fl->n);
    char lab[64];
    row(p, "FID (judge features, vs test set)", cols, ncols, fl, g_fid, 0, FMT_NUM3);
    row(p, "precision (k=3, vs test subset)", cols, ncols, fl, g_prec, 0, FMT_NUM3);
    row(p, "recall (k=3, vs test subset)", cols, ncols, fl, g_rec, 0, FMT_NUM3);
    if (any_cond) {
        row(p, "accuracy (judged = requested digit)", cols, ncols, fl, g_acc, 0, FMT_PCT);
        for (int d = 0; d < 10; d++) {
            snprintf(lab, sizeof lab, "  accuracy, digit %d", d);
            row(p, lab, cols, ncols, fl, g_accd, d, FMT_PCT);
        }
    }
    row(p, "judged-digit entropy (bits, uniform 3.322)", cols, ncols, fl, g_ent, 0, FMT_NUM3);
    for (int d = 0; d < 10; d++) {
        snprintf(lab, sizeof lab, "  share judged %d", d);
        row(p, lab, cols, ncols, fl, g_hist, d, FMT_PCT);
    }
    row(p, "diversity, features (1 = test set)", cols, ncols, fl, g_divf, 0, FMT_NUM3);
    for (int d = 0; d < 10; d++) {
        snprintf(lab, sizeof lab, "  diversity, features, digit %d", d);
        row(p, lab, cols, ncols, fl, g_divfd, d, FMT_NUM3);
    }
    row(p, "diversity, pixels (1 = test set)", cols, ncols, fl, g_divp, 0, FMT_NUM3);
    row(p, "nearest training image, median distance", cols, ncols, fl, g_nnm, 0, FMT_NUM2);
    row(p, "memorisation: closer than median test", cols, ncols, fl, g_memo, 0, FMT_PCT);
    row(p, "near copies: closer than 1% of test", cols, ncols, fl, g_copy, 0, FMT_PCT);
    progress_out(p, "\nreal floor: %d random training images against the same references (memorisation\n"
                    "rows: the %d held-out test images of the reference subset). Definitions: docs/EVAL.md\n",
                 fl->n, r->n_ref);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void add_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static void add_array10(cJSON *o, const char *key, const double *v) {
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int d = 0; d < 10; d++)
        cJSON_AddItemToArray(a, isfinite(v[d]) ? cJSON_CreateNumber(v[d]) : cJSON_CreateNull());
}

cJSON *eval_result_json(const EvalResult *res) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", res->name);
    cJSON_AddNumberToObject(o, "n", res->n);
    add_num(o, "fid", res->fid);
    add_num(o, "precision", res->precision);
    add_num(o, "recall", res->recall);
    add_num(o, "accuracy", res->accuracy);
    add_array10(o, "accuracy_per_digit", res->acc_digit);
    cJSON *h = cJSON_AddArrayToObject(o, "judged_digit_counts");
    for (int d = 0; d < 10; d++) cJSON_AddItemToArray(h, cJSON_CreateNumber((double)res->hist[d]));
    add_num(o, "judged_digit_entropy_bits", res->entropy_bits);
    add_num(o, "diversity_features", res->div_feat);
    add_array10(o, "diversity_features_per_digit", res->div_feat_digit);
    add_num(o, "diversity_pixels", res->div_pix);
    add_array10(o, "diversity_pixels_per_digit", res->div_pix_digit);
    cJSON *m = cJSON_AddObjectToObject(o, "memorisation");
    add_num(m, "median_nearest_train_distance", res->nn_median);
    add_num(m, "share_closer_than_median_test", res->memo_share);
    add_num(m, "share_closer_than_p01_test", res->copy_share);
    if (res->nn_index) {
        cJSON *ai = cJSON_AddArrayToObject(m, "nearest_train_index");
        cJSON *ad = cJSON_AddArrayToObject(m, "nearest_train_distance");
        for (int i = 0; i < res->n; i++) {
            cJSON_AddItemToArray(ai, cJSON_CreateNumber(res->nn_index[i]));
            cJSON_AddItemToArray(ad, cJSON_CreateNumber(round(res->nn_dist[i] * 1e4) / 1e4));
        }
    }
    return o;
}
