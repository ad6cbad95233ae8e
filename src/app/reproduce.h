/* The job of `ddpm reproduce`: Parts 1, 2 and 3 trained (train_run), sampled (app_sample)
 * and evaluated (app_eval) under a profile, then the report page. A finished stage is
 * recorded in OUT/stages.json and skipped on the next call; a training stage that was
 * stopped continues from its checkpoint. */
#ifndef DDPM_APP_REPRODUCE_H
#define DDPM_APP_REPRODUCE_H

#include "core/progress.h"
#include "diffusion/sampler.h"

#define REPRODUCE_MAX_LIST 8

/* What a profile trains and measures. The time and class models share their settings. */
typedef struct {
    const char *name, *what;
    struct {
        int width, batch, epochs;
        int subset;             /* training images (0: all) */
        int eval_n;             /* test images of the per-epoch MSE and the sigma table */
    } den;
    struct {
        int width, batch, epochs, subset, T;
        float beta_end;
        int fig_epochs[REPRODUCE_MAX_LIST]; /* epochs after which figures are drawn */
        int n_fig_epochs;
    } dm;
    int sample_n;               /* Part 2's grid */
    int per_digit;              /* Part 3's grid: samples of every digit */
    int sweep_per_digit;        /* Part 3's guidance sweep: samples of every digit per scale */
    int gif_every;              /* steps between the reverse-process GIFs' frames */
    int eval_n, eval_n_test, eval_n_train; /* samples judged; reference test and training images */
    float eval_guidance[REPRODUCE_MAX_LIST]; /* Part 3's evaluation: guidance scales */
    int n_eval_guidance;
    float sweep[REPRODUCE_MAX_LIST];          /* Part 3's sweep: guidance scales */
    int n_sweep;
    int judge_local; /* train a throwaway judge inside OUT (tiny: never touch the cache) */
    SamplerChoice sampler; /* Parts 2 and 3's samples and evaluations (zero: DDPM, all T) */
} ReproduceProfile;

/* "full", "quick" or "tiny"; NULL for another name. */
const ReproduceProfile *reproduce_profile_find(const char *name);

typedef struct {
    const ReproduceProfile *profile;
    const char *out;          /* the reproduction directory (at most 200 bytes) */
    const char *data;         /* MNIST directory, or NULL: the default */
    const char *judge;        /* judge weights, or NULL: its cache (judge_local: OUT's own) */
    int parts[4];             /* parts[k]: run the stages of part k (1..3) */
    int threads;
    const SamplerChoice *sampler; /* the samples' and evaluations' sampler; NULL: the profile's */
    int train_status_line;    /* training: a status line redrawn in place (a terminal) */
    int judge_status_line;    /* the judge's training likewise */
    long fault_stop_at;       /* test hook for the training stages that start fresh */
    const char *command;      /* the command line, recorded in reproduce.json */
} ReproduceJob;

typedef struct {
    const char *failed_job;   /* after an error: "train", "sample", "eval" or "reproduce" */
    int missing;              /* stages of other parts still to run */
    char elapsed[32];         /* time this call took, e.g. "6m04s" */
} ReproduceResult;

/* Runs the stages asked for. Reports on p: "reproduce [k/9] ..." per stage, and the lines
 * of the jobs it runs. Returns 0, -1 with err_msg() (res->failed_job says which job), or
 * the number of the signal that stopped a training stage (its state is saved). */
int app_reproduce(const ReproduceJob *job, const Progress *p, ReproduceResult *res);

#endif
