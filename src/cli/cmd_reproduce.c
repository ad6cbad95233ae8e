/* ddpm reproduce: Parts 1, 2 and 3 trained, sampled and evaluated in one command, then the
 * report page. Each stage is one of the other subcommands called with a built argument
 * list, so the pipeline does exactly what a user typing those commands would. A finished
 * stage is recorded in OUT/stages.json and skipped on the next call; a training stage that
 * was stopped continues from its checkpoint. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/common.h"
#include "eval/judge.h"
#include "io/fileio.h"
#include "io/jsonio.h"
#include "io/report.h"
#include "model/unet.h"

static const char *HEAD =
    "Usage: ddpm reproduce [--quick | --profile full|quick|tiny] [--out DIR] [--data DIR]\n"
    "                      [--parts LIST] [--threads N] [--judge FILE] [--no-progress]\n"
    "\n"
    "Trains the three models of the write-up (Part 1 denoiser, Part 2 time-conditioned DDPM,\n"
    "Part 3 digit-conditioned DDPM with guidance), samples from them (grids, the reverse\n"
    "process as GIFs, a number written in generated digits, a guidance sweep), evaluates them\n"
    "with ddpm eval, and writes OUT/index.html: one self-contained page with every figure,\n"
    "table and timing (the images are also files under OUT).\n"
    "Profiles: full = the SPEC's protocol (hours on a CPU); quick = small widths, few epochs\n"
    "and a training subset, about 6 minutes on 2 cores; tiny = seconds, for tests only.\n"
    "Run it again with the same --out to continue a stopped reproduction: finished stages\n"
    "are skipped and a stopped training run resumes from its checkpoint. --parts runs the\n"
    "stages of some parts only (train, sample, evaluate), e.g. one part per sitting on a\n"
    "machine that cannot run for hours; the page shows what has been done so far and is\n"
    "complete once every part has run in the same --out.";

/* What a profile trains and measures. The time and class models share their settings. */
typedef struct {
    const char *name, *what;
    int den_width, den_batch, den_epochs, den_subset, den_eval_n;
    int dm_width, dm_batch, dm_epochs, dm_subset, T;
    const char *beta_end, *fig_epochs;
    int sample_n, per_digit, sweep_per_digit, gif_every;
    int eval_n, eval_n_test, eval_n_train;
    const char *eval_guidance, *sweep;
    int judge_local; /* train a throwaway judge inside OUT (tiny: never touch the cache) */
} Profile;

static const Profile PROFILES[] = {
    {"full", "the SPEC's protocol", 128, 256, 5, 0, 10000, 64, 128, 20, 0, 300, "0.02", "5,20",
     64, 4, 4, 5, 1000, 10000, 60000, "0,1,2,3,5", "0,1,2,3,5", 0},
    {"quick", "small widths, few epochs, a training subset", 16, 128, 1, 20000, 2000, 32, 64, 2,
     30000, 300, "0.02", "1,2", 40, 4, 1, 10, 100, 2000, 20000, "5", "0,1,3,5", 0},
    {"tiny", "for tests: seconds, the pictures mean nothing", 4, 32, 1, 256, 64, 4, 32, 1, 256,
     20, "0.2", "1", 8, 1, 1, 2, 20, 200, 500, "0,5", "0,5", 1},
};
#define N_PROFILES (int)(sizeof PROFILES / sizeof PROFILES[0])

typedef struct {
    const Profile *p;
    const char *out, *data, *judge;
    int threads, progress;
    int parts[4]; /* parts[k]: run the stages of part k (1..3) */
    long fault_stop_at; /* test hook, passed to the training stages that start fresh */
    char judge_path[1024];
    cJSON *stages; /* stages.json: {"stages": [{name, what, seconds, finished, blas_kernel}]} */
    double t_start, done_work, done_seconds;
} Ctx;

/* ---- argument lists for the subcommands ------------------------------------------------ */

#define MAX_ARGS 48
typedef struct {
    char *v[MAX_ARGS + 1];
    char store[MAX_ARGS][1100];
    int n;
} Argv;

__attribute__((format(printf, 2, 3))) static void arg(Argv *a, const char *fmt, ...) {
    DDPM_CHECK(a->n < MAX_ARGS);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(a->store[a->n], sizeof a->store[0], fmt, ap);
    va_end(ap);
    DDPM_CHECK(k >= 0 && (size_t)k < sizeof a->store[0]);
    a->v[a->n] = a->store[a->n];
    a->n++;
    a->v[a->n] = NULL;
}

/* The options the stages share: threads, and where the command takes them, the data
 * directory and the progress style. */
static void common_args(const Ctx *x, Argv *a, int with_data, int train) {
    arg(a, "--threads");
    arg(a, "%d", x->threads);
    if (with_data && x->data) {
        arg(a, "--data");
        arg(a, "%s", x->data);
    }
    if (train && !x->progress) arg(a, "--no-progress");
}

static void path_in(char *dst, size_t cap, const Ctx *x, const char *rel) {
    int n = snprintf(dst, cap, "%s/%s", x->out, rel);
    DDPM_CHECK(n > 0 && (size_t)n < cap);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- work estimates for "time left" --------------------------------------------------- */

/* Forward multiply-adds per image of a model. */
static double model_macs(UnetKind kind, int width) {
    Unet m;
    Rng rng;
    rng_seed(&rng, 1);
    UnetConfig uc = unet_config_spec(kind, width);
    if (unet_init(&m, &uc, 1, 1, &rng) != 0) return 0;
    double macs = unet_forward_macs(&m);
    unet_free(&m);
    return macs;
}

/* The stages, part by part: each part is trained, sampled and evaluated before the next. */
typedef enum {
    ST_PART1, ST_EVAL1, ST_PART2, ST_SAMPLES2, ST_EVAL2, ST_PART3, ST_SAMPLES3, ST_EVAL3, ST_REPORT,
    N_STAGES
} StageId;

static const char *STAGE_NAMES[N_STAGES] = {"part1", "eval1", "part2", "samples2", "eval2",
                                            "part3", "samples3", "eval3", "report"};
static const int STAGE_PART[N_STAGES] = {1, 1, 2, 2, 2, 3, 3, 3, 0}; /* 0: every part */

/* Forward multiply-adds per image of the profile's three models. */
typedef struct {
    double den, tm, cm;
} ProfileMacs;

/* Multiply-adds of a stage (a training step counts three forwards). */
static double stage_work(const Profile *p, const ProfileMacs *pm, StageId s) {
    const double den = pm->den, tm = pm->tm, cm = pm->cm;
    double den_imgs = (double)(p->den_subset ? p->den_subset : 60000) * p->den_epochs;
    double dm_imgs = (double)(p->dm_subset ? p->dm_subset : 60000) * p->dm_epochs;
    int n_sweep = 1;
    for (const char *c = p->sweep; *c; c++) n_sweep += *c == ',';
    int n_guid = 1;
    for (const char *c = p->eval_guidance; *c; c++) n_guid += *c == ',';
    switch (s) {
    case ST_PART1: return 3 * den * den_imgs;
    case ST_PART2: return 3 * tm * dm_imgs;
    case ST_PART3: return 3 * cm * dm_imgs;
    case ST_SAMPLES2: return tm * p->T * p->sample_n;
    case ST_SAMPLES3: return 2 * cm * p->T * (10.0 * p->per_digit + 4 + 10.0 * p->sweep_per_digit * n_sweep);
    case ST_EVAL1: return den * p->eval_n_test * 7; /* the default noise levels */
    case ST_EVAL2: return tm * p->T * p->eval_n;
    case ST_EVAL3: return 2 * cm * p->T * (double)p->eval_n * n_guid;
    default: return 0;
    }
}

static void fmt_duration(char *dst, size_t cap, double s) {
    if (s < 60) snprintf(dst, cap, "%.0fs", s);
    else if (s < 3600) snprintf(dst, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(dst, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* ---- stage bookkeeping ----------------------------------------------------------------- */

/* Recorded in stages.json. Reproductions before the evaluation was split per part recorded
 * one "eval" stage for the three. */
static int stage_done(const Ctx *x, const char *name) {
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(x->stages, "stages")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(s, "name");
        if (!cJSON_IsString(n)) continue;
        if (strcmp(n->valuestring, name) == 0) return 1;
        if (strcmp(n->valuestring, "eval") == 0 && strncmp(name, "eval", 4) == 0) return 1;
    }
    return 0;
}

/* Stages other than the report not recorded yet. */
static int stages_missing(const Ctx *x) {
    int n = 0;
    for (int s = 0; s < ST_REPORT; s++) n += !stage_done(x, STAGE_NAMES[s]);
    return n;
}

static int stage_record(Ctx *x, const char *name, const char *what, double seconds) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(x->stages, "stages");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddNumberToObject(o, "seconds", round(seconds * 10) / 10);
    /* when and with which BLAS kernel: a reproduction run part by part may span machines */
    char buf[64];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tmv);
    cJSON_AddStringToObject(o, "finished", buf);
    cJSON_AddStringToObject(o, "blas_kernel", openblas_get_corename());
    cJSON_AddItemToArray(arr, o);
    char path[1200];
    path_in(path, sizeof path, x, "stages.json");
    return json_save(path, x->stages);
}

/* ---- the stages ------------------------------------------------------------------------ */

static int run_train(const Ctx *x, const char *run, const char *model, int width, int batch,
                     int epochs, int subset, int eval_n) {
    const Profile *p = x->p;
    char dir[1200], ckpt[1300];
    path_in(dir, sizeof dir, x, run);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    Argv a = {.n = 0};
    arg(&a, "ddpm");
    arg(&a, "train");
    if (file_exists(ckpt)) {
        arg(&a, "--resume");
        arg(&a, "%s", dir);
    } else {
        arg(&a, "--model");
        arg(&a, "%s", model);
        arg(&a, "--out");
        arg(&a, "%s", dir);
        arg(&a, "--width");
        arg(&a, "%d", width);
        arg(&a, "--batch");
        arg(&a, "%d", batch);
        arg(&a, "--epochs");
        arg(&a, "%d", epochs);
        if (subset) {
            arg(&a, "--subset");
            arg(&a, "%d", subset);
        }
        if (strcmp(model, "denoiser") == 0) {
            arg(&a, "--eval-n");
            arg(&a, "%d", eval_n);
            arg(&a, "--sigma-table-n");
            arg(&a, "%d", eval_n);
        } else {
            arg(&a, "--T");
            arg(&a, "%d", p->T);
            arg(&a, "--beta-end");
            arg(&a, "%s", p->beta_end);
            arg(&a, "--figure-epochs");
            arg(&a, "%s", p->fig_epochs);
        }
    }
    if (x->fault_stop_at > 0 && !file_exists(ckpt)) {
        arg(&a, "--fault-stop-at");
        arg(&a, "%ld", x->fault_stop_at);
    }
    common_args(x, &a, 1, 1);
    return cmd_train(a.n, a.v);
}

static int run_sample(const Ctx *x, const char *run, const char *out, const char *extra1,
                      const char *extra1v, const char *gif, const char *idx, int n, int per_digit) {
    char ckpt[1300], path[1300];
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", x->out, run);
    Argv a = {.n = 0};
    arg(&a, "ddpm");
    arg(&a, "sample");
    arg(&a, "--ckpt");
    arg(&a, "%s", ckpt);
    path_in(path, sizeof path, x, out);
    arg(&a, "--out");
    arg(&a, "%s", path);
    if (n > 0) {
        arg(&a, "--n");
        arg(&a, "%d", n);
    }
    if (per_digit > 0) {
        arg(&a, "--per-digit");
        arg(&a, "%d", per_digit);
    }
    if (extra1) {
        arg(&a, "%s", extra1);
        arg(&a, "%s", extra1v);
    }
    if (gif) {
        path_in(path, sizeof path, x, gif);
        arg(&a, "--gif");
        arg(&a, "%s", path);
        arg(&a, "--gif-every");
        arg(&a, "%d", x->p->gif_every);
    }
    if (idx) {
        path_in(path, sizeof path, x, idx);
        arg(&a, "--idx");
        arg(&a, "%s", path);
    }
    common_args(x, &a, 0, 0);
    return cmd_sample(a.n, a.v);
}

static int run_eval(const Ctx *x, const char *run, const char *json, int n, const char *guidance) {
    const Profile *p = x->p;
    char ckpt[1300], path[1300];
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", x->out, run);
    path_in(path, sizeof path, x, json);
    Argv a = {.n = 0};
    arg(&a, "ddpm");
    arg(&a, "eval");
    arg(&a, "--ckpt");
    arg(&a, "%s", ckpt);
    arg(&a, "--json");
    arg(&a, "%s", path);
    arg(&a, "--n-test");
    arg(&a, "%d", p->eval_n_test);
    if (n > 0) {
        arg(&a, "--n");
        arg(&a, "%d", n);
        arg(&a, "--n-train");
        arg(&a, "%d", p->eval_n_train);
    }
    if (guidance) {
        arg(&a, "--guidance");
        arg(&a, "%s", guidance);
    }
    if (x->judge_path[0]) {
        arg(&a, "--judge");
        arg(&a, "%s", x->judge_path);
    }
    if (p->judge_local) {
        arg(&a, "--judge-epochs");
        arg(&a, "1");
        arg(&a, "--judge-subset");
        arg(&a, "2000");
    }
    common_args(x, &a, 1, 0);
    return cmd_eval(a.n, a.v);
}

static int run_stage(Ctx *x, StageId s) {
    const Profile *p = x->p;
    char dir[1200];
    switch (s) {
    case ST_PART1:
        return run_train(x, "part1", "denoiser", p->den_width, p->den_batch, p->den_epochs,
                         p->den_subset, p->den_eval_n);
    case ST_PART2:
        return run_train(x, "part2", "time", p->dm_width, p->dm_batch, p->dm_epochs, p->dm_subset, 0);
    case ST_PART3:
        return run_train(x, "part3", "class", p->dm_width, p->dm_batch, p->dm_epochs, p->dm_subset, 0);
    case ST_SAMPLES2:
        path_in(dir, sizeof dir, x, "samples");
        if (make_dirs(dir) != 0) return cli_fail("reproduce", 1);
        return run_sample(x, "part2", "samples/part2-samples.png", NULL, NULL,
                          "samples/part2-reverse.gif", "samples/part2-samples.idx", p->sample_n, 0);
    case ST_SAMPLES3: {
        path_in(dir, sizeof dir, x, "samples");
        if (make_dirs(dir) != 0) return cli_fail("reproduce", 1);
        int rc = run_sample(x, "part3", "samples/part3-digits.png", NULL, NULL,
                            "samples/part3-reverse.gif", "samples/part3-digits.idx", 0, p->per_digit);
        if (rc == 0) rc = run_sample(x, "part3", "samples/part3-text.png", "--text", "2026", NULL, NULL, 0, 0);
        if (rc == 0)
            rc = run_sample(x, "part3", "samples/part3-sweep.png", "--sweep", p->sweep, NULL, NULL, 0,
                            p->sweep_per_digit);
        return rc;
    }
    case ST_EVAL1:
    case ST_EVAL2:
    case ST_EVAL3:
        path_in(dir, sizeof dir, x, "eval");
        if (make_dirs(dir) != 0) return cli_fail("reproduce", 1);
        if (s == ST_EVAL1) return run_eval(x, "part1", "eval/part1.json", 0, NULL);
        if (s == ST_EVAL2) return run_eval(x, "part2", "eval/part2.json", p->eval_n, NULL);
        return run_eval(x, "part3", "eval/part3.json", p->eval_n, p->eval_guidance);
    case ST_REPORT:
        if (report_write(x->out) != 0) return cli_fail("reproduce", 1);
        return 0;
    default: return 1;
    }
}

static const char *stage_what(const Profile *p, StageId s, char *buf, size_t cap) {
    switch (s) {
    case ST_PART1:
        snprintf(buf, cap, "Part 1: train the denoiser (D %d, %d epoch%s)", p->den_width, p->den_epochs, p->den_epochs == 1 ? "" : "s");
        break;
    case ST_PART2:
        snprintf(buf, cap, "Part 2: train the time-conditioned DDPM (D %d, %d epoch%s)", p->dm_width, p->dm_epochs, p->dm_epochs == 1 ? "" : "s");
        break;
    case ST_PART3:
        snprintf(buf, cap, "Part 3: train the digit-conditioned DDPM (D %d, %d epoch%s)", p->dm_width, p->dm_epochs, p->dm_epochs == 1 ? "" : "s");
        break;
    case ST_SAMPLES2: snprintf(buf, cap, "Part 2: samples and the reverse process"); break;
    case ST_SAMPLES3: snprintf(buf, cap, "Part 3: digit grid, reverse process, a number, guidance sweep"); break;
    case ST_EVAL1: snprintf(buf, cap, "Part 1: evaluate the denoiser with ddpm eval"); break;
    case ST_EVAL2: snprintf(buf, cap, "Part 2: evaluate %d samples with ddpm eval", p->eval_n); break;
    case ST_EVAL3:
        snprintf(buf, cap, "Part 3: evaluate %d samples per guidance scale (%s) with ddpm eval", p->eval_n,
                 p->eval_guidance);
        break;
    default: snprintf(buf, cap, "write the report page"); break;
    }
    return buf;
}

/* ---- reproduce.json -------------------------------------------------------------------- */

static void cpu_name(char *dst, size_t cap) {
    snprintf(dst, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) break;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = '\0';
        snprintf(dst, cap, "%s", c);
        break;
    }
    fclose(f);
}

static cJSON *float_list_json(const char *list) {
    cJSON *a = cJSON_CreateArray();
    float v[16];
    int n = parse_float_list("list", list, v, 16);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* Creates OUT/reproduce.json, or checks that an existing one is of the same profile. */
static int open_reproduction(Ctx *x, int argc, char **argv) {
    char path[1200];
    if (make_dirs(x->out) != 0 || dir_check_writable(x->out) != 0) return -1;
    path_in(path, sizeof path, x, "reproduce.json");
    unsigned char *data;
    size_t n;
    if (read_file(path, 1 << 20, &data, &n) == 0) {
        cJSON *j = cJSON_ParseWithLength((const char *)data, n);
        xfree(data);
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "profile");
        if (!cJSON_IsString(pr)) {
            cJSON_Delete(j);
            return err_set("%s: not a reproduction record (no \"profile\"); choose another --out", path);
        }
        if (strcmp(pr->valuestring, x->p->name) != 0) {
            int rc = err_set("%s holds a '%s' reproduction, not '%s': run that profile to continue "
                             "it, or choose another --out", x->out, pr->valuestring, x->p->name);
            cJSON_Delete(j);
            return rc;
        }
        cJSON_Delete(j);
        fprintf(stderr, "ddpm reproduce: continuing the %s reproduction in %s\n", x->p->name, x->out);
    } else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "profile", x->p->name);
        cJSON_AddStringToObject(j, "profile_description", x->p->what);
        char buf[1600] = "ddpm";
        for (int i = 1; i < argc; i++) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof buf - l, " %s", argv[i]);
        }
        cJSON_AddStringToObject(j, "command", buf);
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tmv);
        cJSON_AddStringToObject(j, "started", buf);
        cJSON *m = cJSON_AddObjectToObject(j, "machine");
        cpu_name(buf, sizeof buf);
        cJSON_AddStringToObject(m, "cpu", buf);
        cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
        cJSON_AddNumberToObject(m, "threads", x->threads);
        snprintf(buf, sizeof buf, "%s (kernel %s)", openblas_get_config(), openblas_get_corename());
        cJSON_AddStringToObject(m, "blas", buf);
        cJSON_AddNumberToObject(j, "guidance", 5);
        cJSON_AddItemToObject(j, "sweep", float_list_json(x->p->sweep));
        cJSON_AddItemToObject(j, "eval_guidance", float_list_json(x->p->eval_guidance));
        int rc = json_save(path, j);
        cJSON_Delete(j);
        if (rc != 0) return -1;
    }
    path_in(path, sizeof path, x, "stages.json");
    if (read_file(path, 1 << 20, &data, &n) == 0) {
        x->stages = cJSON_ParseWithLength((const char *)data, n);
        xfree(data);
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(x->stages, "stages")))
            return err_set("%s: not a stage record; remove it to redo every stage", path);
    } else {
        x->stages = cJSON_CreateObject();
        cJSON_AddArrayToObject(x->stages, "stages");
    }
    return 0;
}

int cmd_reproduce(int argc, char **argv) {
    const char *profile = NULL, *out = NULL, *data = NULL, *judge = NULL, *device = "cpu";
    const char *parts = "1,2,3";
    int quick = 0, threads = 2, no_progress = 0;
    long fault_stop_at = 0;
    Opt opts[] = {
        {"quick", OPT_FLAG, &quick, "the quick profile (same as --profile quick)", 0, -1, 0},
        {"profile", OPT_STR, &profile, "full (default), quick or tiny", 0, -1, 0},
        {"out", OPT_STR, &out, "reproduction directory (default reproduce-<profile>)", 0, -1, 0},
        {"data", OPT_STR, &data, "MNIST directory (default $DDPM_DATA or ./data/mnist)", 0, -1, 0},
        {"parts", OPT_STR, &parts, "run the stages of these parts only, e.g. 1 or 2,3 (default 1,2,3)", 0, -1, 0},
        {"threads", OPT_INT, &threads, "CPU threads (default 2)", 1, 1024, 0},
        {"judge", OPT_STR, &judge, "judge weights for ddpm eval (default: its cache)", 0, -1, 0},
        {"device", OPT_STR, &device, "cpu (the only backend of this build)", 0, -1, 0},
        {"no-progress", OPT_FLAG, &no_progress, "plain log lines instead of status lines", 0, -1, 0},
        {"fault-stop-at", OPT_LONG, &fault_stop_at, NULL, 1, 1e15, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    int r = args_parse(argc, argv, 2, opts, no, HEAD);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("reproduce", 2);
    if (strcmp(device, "cpu") != 0) {
        err_set("--device %s: this build has only the CPU backend (--device cpu)", device);
        return cli_fail("reproduce", 2);
    }
    if (quick && profile && strcmp(profile, "quick") != 0) {
        err_set("--quick and --profile %s contradict each other", profile);
        return cli_fail("reproduce", 2);
    }
    if (quick) profile = "quick";
    if (!profile) profile = "full";
    Ctx x = {.threads = threads, .data = data, .progress = !no_progress, .fault_stop_at = fault_stop_at};
    int plist[3];
    int np = parse_int_list("--parts", parts, plist, 3, 1, 3);
    if (np < 0) return cli_fail("reproduce", 2);
    for (int i = 0; i < np; i++) {
        if (x.parts[plist[i]]) {
            err_set("--parts: part %d is listed twice", plist[i]);
            return cli_fail("reproduce", 2);
        }
        x.parts[plist[i]] = 1;
    }
    for (int i = 0; i < N_PROFILES; i++)
        if (strcmp(profile, PROFILES[i].name) == 0) x.p = &PROFILES[i];
    if (!x.p) {
        err_set("--profile: unknown profile '%s' (expected full, quick or tiny)", profile);
        return cli_fail("reproduce", 2);
    }
    char default_out[64];
    snprintf(default_out, sizeof default_out, "reproduce-%s", x.p->name);
    x.out = out ? out : default_out;
    if (strlen(x.out) > 200) {
        err_set("--out: at most 200 bytes");
        return cli_fail("reproduce", 2);
    }
    if (judge) snprintf(x.judge_path, sizeof x.judge_path, "%s", judge);
    else if (x.p->judge_local) snprintf(x.judge_path, sizeof x.judge_path, "%s/judge.safetensors", x.out);
    if (open_reproduction(&x, argc, argv) != 0) {
        cJSON_Delete(x.stages);
        return cli_fail("reproduce", 1);
    }

    double work[N_STAGES], remaining = 0;
    const ProfileMacs pm = {model_macs(UNET_DENOISER, x.p->den_width),
                            model_macs(UNET_TIME, x.p->dm_width),
                            model_macs(UNET_CLASS, x.p->dm_width)};
    for (int s = 0; s < N_STAGES; s++) {
        work[s] = stage_work(x.p, &pm, (StageId)s);
        if (x.parts[STAGE_PART[s]] && !stage_done(&x, STAGE_NAMES[s])) remaining += work[s];
    }
    x.parts[0] = 1; /* the report is every part's */
    x.t_start = now_seconds();
    int rc = 0;
    for (int s = 0; s < N_STAGES && rc == 0; s++) {
        char what[160], left[32], elapsed[32];
        stage_what(x.p, (StageId)s, what, sizeof what);
        if (!x.parts[STAGE_PART[s]]) continue;
        if (stage_done(&x, STAGE_NAMES[s]) && s != ST_REPORT) {
            fprintf(stderr, "reproduce [%d/%d] %s: done earlier, skipped\n", s + 1, N_STAGES, what);
            continue;
        }
        /* time left from this run's own speed; before the first stage ends, no guess */
        if (x.done_seconds > 1 && x.done_work > 0) {
            fmt_duration(left, sizeof left, remaining * x.done_seconds / x.done_work);
            fmt_duration(elapsed, sizeof elapsed, now_seconds() - x.t_start);
            fprintf(stderr, "reproduce [%d/%d] %s (%s elapsed, about %s left)\n", s + 1, N_STAGES,
                    what, elapsed, left);
        } else {
            fprintf(stderr, "reproduce [%d/%d] %s\n", s + 1, N_STAGES, what);
        }
        double t0 = now_seconds();
        rc = run_stage(&x, (StageId)s);
        double dt = now_seconds() - t0;
        if (rc != 0) break;
        x.done_work += work[s];
        x.done_seconds += dt;
        remaining -= work[s];
        /* the report counts as done once every other stage is */
        int record = !stage_done(&x, STAGE_NAMES[s]) && (s != ST_REPORT || stages_missing(&x) == 0);
        if (record && stage_record(&x, STAGE_NAMES[s], what, dt) != 0) {
            rc = cli_fail("reproduce", 1);
            break;
        }
        if (s != ST_REPORT && report_write(x.out) != 0) { /* the page fills in stage by stage */
            rc = cli_fail("reproduce", 1);
            break;
        }
    }
    int missing = stages_missing(&x);
    cJSON_Delete(x.stages);
    int all_parts = x.parts[1] && x.parts[2] && x.parts[3];
    if (rc == 130 || rc == 143) {
        fprintf(stderr, "ddpm reproduce: stopped; `ddpm reproduce --profile %s --out %s%s%s` continues "
                        "where it stopped\n", x.p->name, x.out, all_parts ? "" : " --parts ",
                all_parts ? "" : parts);
        return rc;
    }
    if (rc != 0) return rc;
    char elapsed[32];
    fmt_duration(elapsed, sizeof elapsed, now_seconds() - x.t_start);
    if (missing)
        printf("parts %s finished in %s (%d stage%s of other parts still to run): open %s/index.html\n",
               parts, elapsed, missing, missing == 1 ? "" : "s", x.out);
    else
        printf("reproduction finished in %s: open %s/index.html\n", elapsed, x.out);
    return 0;
}
