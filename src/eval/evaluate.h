/* The evaluation of a set of generated digits against MNIST with the judge: the real-data
 * reference (test-set statistics, reference subsets, the real-data floor) is computed once,
 * then each sample set gets one column of metrics; a table for people and JSON for tools.
 * Definitions of every metric: docs/EVAL.md. */
#ifndef DDPM_EVALUATE_H
#define DDPM_EVALUATE_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/progress.h"
#include "data/mnist.h"
#include "model/classifier.h"

#define EVAL_K 3 /* neighbours of the precision/recall manifolds */
#define EVAL_MIN_SAMPLES 10

/* One column of the table: the metrics of one sample set. NAN where a metric does not apply. */
typedef struct {
    char name[48];
    int n;
    int conditional;           /* labels were given: accuracy is defined */
    double fid;
    double precision, recall;
    double accuracy;           /* share judged as the requested digit */
    double acc_digit[10];      /* the same per requested digit */
    int64_t hist[10];          /* judged digits */
    double entropy_bits;       /* of hist */
    double div_feat, div_pix;  /* mean over digits of the per-digit ratios below */
    double div_feat_digit[10]; /* mean pairwise feature distance within digit / the test set's */
    double div_pix_digit[10];  /* the same in pixel space */
    double nn_median;          /* median pixel distance to the nearest training image */
    double memo_share;         /* share closer to a training image than the test median */
    double copy_share;         /* share closer than the test set's 1st percentile */
    int *nn_index;             /* (n) nearest training image of each sample (owned, may be NULL) */
    float *nn_dist;            /* (n) its distance */
} EvalResult;

/* The real data side, built once for sample sets of n images. */
typedef struct {
    const MnistSplit *train, *test;
    Classifier *judge;
    const Progress *p;      /* where eval_real_init and eval_samples say what they do */
    int threads;
    int n;                  /* sample-set size this reference was built for */
    int nt;                 /* test images used (first nt) */
    int n_search;           /* training images searched for nearest neighbours (first n_search) */
    float *test_img;        /* (NT, 784) */
    float *test_feat;       /* (NT, 128) */
    double *mu, *cov;       /* (128), (128, 128) Gaussian fit of test_feat */
    double mpd_feat[10], mpd_pix[10]; /* mean pairwise distances within each digit of the test set */
    int n_ref;              /* min(n, NT): size of the precision/recall reference subset */
    float *ref_feat;        /* (n_ref, 128) features of a seeded random subset of the test images */
    double *ref_radius;     /* (n_ref) k-NN radii of ref_feat */
    float *ref_nn_dist;     /* (n_ref) pixel distance of each subset image to its nearest training image */
    double nn_median, nn_p01; /* median and 1st percentile of ref_nn_dist */
    float *search_img;      /* (n_search, 784) training images searched for nearest neighbours */
    EvalResult floor;       /* the real-data floor: min(n, train) random training images */
} EvalReal;

/* Build the reference for sample sets of n images (n >= EVAL_MIN_SAMPLES) with nt test
 * images and n_search training images (each capped at the split's size). Log lines on p
 * (NULL: silent) say what takes time, here and in eval_samples. */
void eval_real_init(EvalReal *r, const MnistSplit *train, const MnistSplit *test, Classifier *judge,
                    int n, int nt, int n_search, uint64_t seed, int threads, const Progress *p);
void eval_real_free(EvalReal *r);

/* Evaluate n == r->n images (N, 784) in [0, 1]; labels (N) are the requested digits (0..9)
 * or NULL for unconditional samples. keep_nn keeps the per-sample nearest neighbours. */
void eval_samples(EvalResult *res, EvalReal *r, const char *name, const float *images,
                  const int *labels, int keep_nn);
void eval_result_free(EvalResult *res);

/* The table: one row per metric, one column per result, then the real-data floor, as
 * output lines on p. */
void eval_table(const Progress *p, const EvalReal *r, const EvalResult *cols, int ncols);
/* A JSON object for one result (per-sample nearest neighbours included when kept). */
cJSON *eval_result_json(const EvalResult *res);

#endif
