/* A training run's configuration: the TrainConfig struct and the one table of its fields
 * (config.c), from which come the defaults of each kind, config.json both ways and the ranges
 * that the command line and a resumed run's JSON are checked against. */
#ifndef DDPM_TRAIN_CONFIG_H
#define DDPM_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/progress.h"
#include "data/dataset.h"
#include "diffusion/schedule.h"
#include "model/unet.h"

#define TRAIN_MAX_FIG_EPOCHS 16

/* Every field has its row in config.c's table: a new field is a new row there. */
typedef struct {
    UnetKind kind;
    int width, batch, epochs;
    float lr, lr_end;       /* LR decays exponentially per epoch from lr to lr_end */
    uint64_t seed;
    int threads;
    const char *out_dir;    /* run directory */
    const char *data_dir;
    Dataset dataset;        /* MNIST (the SPEC's), Fashion-MNIST, CIFAR-10 or a folder */
    int image_size;         /* a folder's images: square side (0: from the images) */
    int channels;           /* a folder's images: 1 or 3 (0: from the images) */
    float test_fraction;    /* a folder without train/ and test/: held-out share (0: 0.1) */
    int subset;             /* train on the first `subset` images (0 = all) */
    float sigma;            /* denoiser noise level */
    int T;
    ScheduleKind schedule;  /* linear (the SPEC's) or cosine */
    int time_embedding;     /* 0: the SPEC's scalar t/T; E: E sinusoidal features */
    int residual;           /* 1: residual ConvBlocks (UnetOptions.residual; 0: the SPEC's) */
    int attention;          /* attention layers, UNET_ATTN_DOWN2 | UNET_ATTN_UP1 (0: none, the SPEC's) */
    float beta_start, beta_end;
    float p_uncond;         /* class model: probability of the zero label */
    float guidance;         /* class model: gamma for the sample grids */
    float ema;              /* decay of the weights' exponential moving average (0: none) */
    int fig_epochs[TRAIN_MAX_FIG_EPOCHS]; /* epochs after which figures are drawn */
    int n_fig_epochs;
    int eval_n;             /* test images for the denoiser's per-epoch test MSE */
    int table_n;            /* test images for its per-sigma MSE table at figure epochs (0 = none) */
    int n_grid;             /* samples in the time model's grids */
    int progress;           /* 1 = redraw a status line (terminal), 0 = plain log lines */
    int checkpoint_every;   /* also save the training state every N steps (0: epoch ends only) */
    int resume;             /* continue the run in out_dir from its checkpoint.safetensors */
    long fault_nan_at;      /* test hook: make step N's loss NaN (0: off) */
    long fault_stop_at;     /* test hook: raise SIGSTOP after step N (0: off) */
    const char *device;     /* the backend that trains (ops/backend.h); NULL: cpu */
    Progress report;        /* receives train_run's lines (fn NULL: silent): the log lines as
                               text; an interruption as stage "interrupted" with the run
                               directory as path and the line without its ending */
} TrainConfig;

/* How a field is stored. TC_BOOL and TC_ENUM are ints (enums included); TC_STR is a
 * const char *; TC_INT_LIST is int[cap] with its count in an int at count_offset; TC_HOOK is
 * a Progress callback that the caller sets (never saved; the defaults leave it empty). */
typedef enum {
    TC_INT, TC_LONG, TC_U64, TC_FLOAT, TC_BOOL, TC_ENUM, TC_STR, TC_INT_LIST, TC_HOOK
} TrainConfigType;

/* Which kinds' configuration holds a field (bit 1 << UnetKind). */
#define TC_DENOISER (1u << UNET_DENOISER)
#define TC_DIFFUSION ((1u << UNET_TIME) | (1u << UNET_CLASS))
#define TC_CLASS (1u << UNET_CLASS)
#define TC_ALL (TC_DENOISER | TC_DIFFUSION)

/* Flags of a field. */
#define TC_OPTIONAL 1u /* may be absent from config.json (older runs): the default stays */
#define TC_IF_SET 2u   /* written only when not 0, so the SPEC models' config.json (also in
                          their weights' metadata) is as it was before the option existed */
#define TC_ZERO_OK 4u  /* config.json also holds 0 ("none"/"all") below the option's minimum */
#define TC_KIND 8u     /* the kind itself: read first, it picks the other defaults */

/* A TC_ENUM's names: name(v) and parse(s, &v) (0 or -1), and the choices for messages. */
typedef struct {
    const char *(*name)(int v);
    int (*parse)(const char *s, int *v);
    const char *choices;
} TrainConfigEnum;

typedef struct {
    const char *key;        /* key in config.json; NULL: not saved */
    const char *option;     /* ddpm train --OPTION whose range this is; NULL: none */
    TrainConfigType type;
    size_t offset;          /* offsetof(TrainConfig, field) */
    unsigned kinds;         /* TC_ALL, TC_DENOISER, TC_DIFFUSION, TC_CLASS: where it is saved */
    unsigned flags;         /* TC_OPTIONAL | TC_IF_SET | TC_ZERO_OK | TC_KIND */
    double def[3];          /* default per kind (denoiser, time, class); numbers and enums */
    double min, max;        /* inclusive range of a number or list item */
    const TrainConfigEnum *names; /* TC_ENUM */
    size_t count_offset;    /* TC_INT_LIST: offsetof the count */
    int cap;                /* TC_INT_LIST: capacity */
    const int *list_def[3]; /* TC_INT_LIST: default per kind, list_def_n items */
    int list_def_n;
} TrainConfigField;

/* The table, in config.json's order; *n receives its length. */
const TrainConfigField *train_config_fields(int *n);

/* Defaults of the SPEC for a kind (Part 1, 2 or 3): every field from the table. */
void train_config_defaults(TrainConfig *c, UnetKind kind);

/* The range of ddpm train --option from the table (the value itself; TC_ZERO_OK's 0 is for
 * the JSON only). Returns 0, or -1 when the option is not a ranged field (strings, flags and
 * the seed, which takes any 64-bit value on the command line). */
int train_config_option_range(const char *option, double *min, double *max);

/* The resolved configuration as JSON, the table's fields of c's kind in its order (m adds the
 * parameter count and multiply-adds; may be NULL). */
cJSON *train_config_to_json(const TrainConfig *c, const Unet *m);
/* Parse and check a configuration written by train_config_to_json: every field present
 * (unless TC_OPTIONAL), of the right type and in the table's range. The data directory is
 * copied into data_buf. Fields that are not part of the configuration (out_dir, threads
 * overrides, hooks) are left as train_config_defaults sets them. Returns 0 or -1 with
 * err_msg() naming `what` (a file). */
int train_config_from_json(const char *text, const char *what, TrainConfig *c, char *data_buf,
                           size_t cap);

#endif
