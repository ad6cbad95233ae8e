/* The reproduction: profiles as typed tables, the stages calling the training, sampling and
 * evaluation jobs with config structs, the stage record, and the estimate of time left. */
#include "app/reproduce.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <cjson/cJSON.h>

#include "app/eval.h"
#include "app/sample.h"
#include "diffusion/sampler_words.h"
#include "app/train_job.h"
#include "core/common.h"
#include "io/fileio.h"
#include "io/jsonio.h"
#include "io/report.h"
#include "model/unet.h"
#include "train/train.h"

static const ReproduceProfile PROFILES[] = {
    {.name = "full", .what = "the SPEC's protocol",
     .den = {.width = 128, .batch = 256, .epochs = 5, .subset = 0, .eval_n = 10000},
     .dm = {.width = 64, .batch = 128, .epochs = 20, .subset = 0, .T = 300, .beta_end = 0.02f,
            .fig_epochs = {5, 20}, .n_fig_epochs = 2},
     .sample_n = 64, .per_digit = 4, .sweep_per_digit = 4, .gif_every = 5,
     .eval_n = 1000, .eval_n_test = 10000, .eval_n_train = 60000,
     .eval_guidance = {0, 1, 2, 3, 5}, .n_eval_guidance = 5, .sweep = {0, 1, 2, 3, 5}, .n_sweep = 5,
     .judge_local = 0},
    {.name = "quick", .what = "small widths, few epochs, a training subset",
     .den = {.width = 16, .batch = 128, .epochs = 1, .subset = 20000, .eval_n = 2000},
     .dm = {.width = 32, .batch = 64, .epochs = 2, .subset = 30000, .T = 300, .beta_end = 0.02f,
            .fig_epochs = {1, 2}, .n_fig_epochs = 2},
     .sample_n = 40, .per_digit = 4, .sweep_per_digit = 1, .gif_every = 10,
     .eval_n = 100, .eval_n_test = 2000, .eval_n_train = 20000,
     .eval_guidance = {5}, .n_eval_guidance = 1, .sweep = {0, 1, 3, 5}, .n_sweep = 4,
     .judge_local = 0,
     /* 20 network passes instead of 300: the fast sampler whose FID is DDPM's within 2%
      * on the class model (time-uniform steps; docs/EXPERIMENTS.md, FID against NFE) */
     .sampler = {.kind = SAMPLER_DPMPP_2M_SDE, .steps = 20, .spacing = DDIM_SPACING_UNIFORM}},
    {.name = "tiny", .what = "for tests: seconds, the pictures mean nothing",
     .den = {.width = 4, .batch = 32, .epochs = 1, .subset = 256, .eval_n = 64},
     .dm = {.width = 4, .batch = 32, .epochs = 1, .subset = 256, .T = 20, .beta_end = 0.2f,
            .fig_epochs = {1}, .n_fig_epochs = 1},
     .sample_n = 8, .per_digit = 1, .sweep_per_digit = 1, .gif_every = 2,
     .eval_n = 20, .eval_n_test = 200, .eval_n_train = 500,
     .eval_guidance = {0, 5}, .n_eval_guidance = 2, .sweep = {0, 5}, .n_sweep = 2,
     .judge_local = 1},
};
#define N_PROFILES (int)(sizeof PROFILES / sizeof PROFILES[0])

const ReproduceProfile *reproduce_profile_find(const char *name) {
    for (int i = 0; i < N_PROFILES; i++)
        if (strcmp(name, PROFILES[i].name) == 0) return &PROFILES[i];
    return NULL;
}

typedef struct {
    const ReproduceJob *job;
    const ReproduceProfile *p;
    const Progress *report;
    const char *failed;  /* the job of the stage that failed */
    char judge_path[1024];
    cJSON *stages; /* stages.json: {"stages": [{name, what, seconds, finished, blas_kernel}]} */
    double t_start, done_work, done_seconds;
    SamplerChoice sampler; /* of the samples and evaluations */
    int nfe;               /* its network passes per image */
} Ctx;

static void path_in(char *dst, size_t cap, const Ctx *x, const char *rel) {
    path_join(dst, cap, x->job->out, rel);
}

/* "0,1,2" */
static void list_text(char *dst, size_t cap, const float *v, int n) {
    size_t o = 0;
    dst[0] = 0;
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(dst + o, cap - o, "%s%g", i ? "," : "", (double)v[i]);
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

/* Forward multiply-adds per image of the profile's three models, and the network passes
 * of a drawn image. */
typedef struct {
    double den, tm, cm;
    int nfe;
} ProfileMacs;

/* Multiply-adds of a stage (a training step counts three forwards). */
static double stage_work(const ReproduceProfile *p, const ProfileMacs *pm, StageId s) {
    const double den = pm->den, tm = pm->tm, cm = pm->cm;
    double den_imgs = (double)(p->den.subset ? p->den.subset : 60000) * p->den.epochs;
    double dm_imgs = (double)(p->dm.subset ? p->dm.subset : 60000) * p->dm.epochs;
    const int nfe = pm->nfe; /* network passes per drawn image */
    switch (s) {
    case ST_PART1: return 3 * den * den_imgs;
    case ST_PART2: return 3 * tm * dm_imgs;
    case ST_PART3: return 3 * cm * dm_imgs;
    case ST_SAMPLES2: return tm * nfe * p->sample_n;
    case ST_SAMPLES3: return 2 * cm * nfe * (10.0 * p->per_digit + 4 + 10.0 * p->sweep_per_digit * p->n_sweep);
    case ST_EVAL1: return den * p->eval_n_test * 7; /* the default noise levels */
    case ST_EVAL2: return tm * nfe * p->eval_n;
    case ST_EVAL3: return 2 * cm * nfe * (double)p->eval_n * p->n_eval_guidance;
    default: return 0;
    }
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

static void utc_now(char *dst, size_t cap) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(dst, cap, "%Y-%m-%d %H:%M UTC", &tmv);
}

static int stage_record(Ctx *x, const char *name, const char *what, double seconds) {
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(x->stages, "stages");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "what", what);
    cJSON_AddNumberToObject(o, "seconds", round(seconds * 10) / 10);
    /* when and with which BLAS kernel: a reproduction run part by part may span machines */
    char buf[64];
    utc_now(buf, sizeof buf);
    cJSON_AddStringToObject(o, "finished", buf);
    cJSON_AddStringToObject(o, "blas_kernel", openblas_get_corename());
    cJSON_AddItemToArray(arr, o);
    char path[1200];
    path_in(path, sizeof path, x, "stages.json");
    return json_save(path, x->stages);
}

/* ---- the stages ------------------------------------------------------------------------ */

/* A training stage: fresh with the profile's settings, or continued from its checkpoint.
 * Returns 0, -1 or the signal that stopped it. */
static int run_train(Ctx *x, const char *run, UnetKind kind) {
    const ReproduceJob *j = x->job;
    const ReproduceProfile *p = x->p;
    char dir[1200], ckpt[1300], data_buf[4096];
    path_in(dir, sizeof dir, x, run);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    x->failed = "train";
    TrainConfig c;
    train_config_defaults(&c, UNET_DENOISER);
    if (path_exists(ckpt)) {
        if (app_train_resume_config(&c, data_buf, sizeof data_buf, dir, j->data, j->threads,
                                    x->report) != 0)
            return -1;
    } else {
        train_config_defaults(&c, kind);
        if (kind == UNET_DENOISER) {
            c.width = p->den.width;
            c.batch = p->den.batch;
            c.epochs = p->den.epochs;
            if (p->den.subset) c.subset = p->den.subset;
            c.eval_n = c.table_n = p->den.eval_n;
        } else {
            c.width = p->dm.width;
            c.batch = p->dm.batch;
            c.epochs = p->dm.epochs;
            if (p->dm.subset) c.subset = p->dm.subset;
            c.T = p->dm.T;
            c.beta_end = p->dm.beta_end;
            memcpy(c.fig_epochs, p->dm.fig_epochs, (size_t)p->dm.n_fig_epochs * sizeof(int));
            c.n_fig_epochs = p->dm.n_fig_epochs;
        }
        c.threads = j->threads;
        c.dataset = DATASET_MNIST;
        c.data_dir = dataset_dir(j->data, c.dataset);
        c.out_dir = dir;
        c.checkpoint_every = 0;
        c.fault_stop_at = j->fault_stop_at;
    }
    c.progress = j->train_status_line;
    c.report = *x->report;
    return train_run(&c);
}

/* A sampling job on the model of `run`, the files under OUT. */
static int run_sample(Ctx *x, const char *run, SampleJob *s, const char *out, const char *gif,
                      const char *idx) {
    char ckpt[1300], out_path[1300], gif_path[1300], idx_path[1300];
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", x->job->out, run);
    path_in(out_path, sizeof out_path, x, out);
    s->ckpt = ckpt;
    s->out = out_path;
    s->threads = x->job->threads;
    if (gif) {
        path_in(gif_path, sizeof gif_path, x, gif);
        s->gif = gif_path;
        s->gif_every = x->p->gif_every;
    }
    if (idx) {
        path_in(idx_path, sizeof idx_path, x, idx);
        s->idx = idx_path;
    }
    x->failed = "sample";
    return app_sample(s, x->report);
}

static int run_samples(Ctx *x, StageId s) {
    const ReproduceProfile *p = x->p;
    char dir[1200];
    path_in(dir, sizeof dir, x, "samples");
    x->failed = "reproduce";
    if (make_dirs(dir) != 0) return -1;
    SampleJob j;
    sample_job_defaults(&j);
    j.sampler = x->sampler;
    if (s == ST_SAMPLES2) {
        j.n = p->sample_n;
        return run_sample(x, "part2", &j, "samples/part2-samples.png", "samples/part2-reverse.gif",
                          "samples/part2-samples.idx");
    }
    j.per_digit = p->per_digit;
    if (run_sample(x, "part3", &j, "samples/part3-digits.png", "samples/part3-reverse.gif",
                   "samples/part3-digits.idx") != 0)
        return -1;
    sample_job_defaults(&j);
    j.sampler = x->sampler;
    j.text = "2026";
    if (run_sample(x, "part3", &j, "samples/part3-text.png", NULL, NULL) != 0) return -1;
    sample_job_defaults(&j);
    j.sampler = x->sampler;
    j.per_digit = p->sweep_per_digit;
    memcpy(j.sweep, p->sweep, (size_t)p->n_sweep * sizeof(float));
    j.n_sweep = p->n_sweep;
    return run_sample(x, "part3", &j, "samples/part3-sweep.png", NULL, NULL);
}

/* An evaluation job on the model of `run`: n samples (0: a denoiser's, no samples) at the
 * profile's guidance scales when guided. */
static int run_eval(Ctx *x, const char *run, const char *json, int n, int guided) {
    const ReproduceProfile *p = x->p;
    const ReproduceJob *rj = x->job;
    char dir[1200], ckpt[1300], path[1300];
    path_in(dir, sizeof dir, x, "eval");
    x->failed = "reproduce";
    if (make_dirs(dir) != 0) return -1;
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", rj->out, run);
    path_in(path, sizeof path, x, json);
    EvalJob e;
    eval_job_defaults(&e);
    e.ckpt = ckpt;
    e.json = path;
    e.n_test = p->eval_n_test;
    if (n > 0) {
        e.sampler = x->sampler;
        e.n = n;
        e.n_train = p->eval_n_train;
    }
    if (guided) {
        memcpy(e.guidance, p->eval_guidance, (size_t)p->n_eval_guidance * sizeof(float));
        e.n_guidance = p->n_eval_guidance;
        e.guidance_given = 1;
    }
    if (x->judge_path[0]) e.judge_path = x->judge_path;
    if (p->judge_local) {
        e.judge.epochs = 1;
        e.judge.subset = 2000;
    }
    e.threads = e.judge.threads = rj->threads;
    e.judge.progress = rj->judge_status_line;
    e.data = rj->data;
    x->failed = "eval";
    return app_eval(&e, x->report);
}

static int run_stage(Ctx *x, StageId s) {
    switch (s) {
    case ST_PART1: return run_train(x, "part1", UNET_DENOISER);
    case ST_PART2: return run_train(x, "part2", UNET_TIME);
    case ST_PART3: return run_train(x, "part3", UNET_CLASS);
    case ST_SAMPLES2:
    case ST_SAMPLES3: return run_samples(x, s);
    case ST_EVAL1: return run_eval(x, "part1", "eval/part1.json", 0, 0);
    case ST_EVAL2: return run_eval(x, "part2", "eval/part2.json", x->p->eval_n, 0);
    case ST_EVAL3: return run_eval(x, "part3", "eval/part3.json", x->p->eval_n, 1);
    case ST_REPORT:
        x->failed = "reproduce";
        return report_write(x->job->out);
    default: return -1;
    }
}

static const char *stage_what(const ReproduceProfile *p, StageId s, char *buf, size_t cap) {
    char list[128];
    switch (s) {
    case ST_PART1:
        snprintf(buf, cap, "Part 1: train the denoiser (D %d, %d epoch%s)", p->den.width, p->den.epochs, p->den.epochs == 1 ? "" : "s");
        break;
    case ST_PART2:
        snprintf(buf, cap, "Part 2: train the time-conditioned DDPM (D %d, %d epoch%s)", p->dm.width, p->dm.epochs, p->dm.epochs == 1 ? "" : "s");
        break;
    case ST_PART3:
        snprintf(buf, cap, "Part 3: train the digit-conditioned DDPM (D %d, %d epoch%s)", p->dm.width, p->dm.epochs, p->dm.epochs == 1 ? "" : "s");
        break;
    case ST_SAMPLES2: snprintf(buf, cap, "Part 2: samples and the reverse process"); break;
    case ST_SAMPLES3: snprintf(buf, cap, "Part 3: digit grid, reverse process, a number, guidance sweep"); break;
    case ST_EVAL1: snprintf(buf, cap, "Part 1: evaluate the denoiser with ddpm eval"); break;
    case ST_EVAL2: snprintf(buf, cap, "Part 2: evaluate %d samples with ddpm eval", p->eval_n); break;
    case ST_EVAL3:
        list_text(list, sizeof list, p->eval_guidance, p->n_eval_guidance);
        snprintf(buf, cap, "Part 3: evaluate %d samples per guidance scale (%s) with ddpm eval", p->eval_n, list);
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

static cJSON *float_list_json(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* A new OUT/reproduce.json: the profile, the command, when and on what machine. */
static int record_new(const Ctx *x, const char *path) {
    const ReproduceProfile *p = x->p;
    char buf[1600];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "profile", p->name);
    cJSON_AddStringToObject(j, "profile_description", p->what);
    cJSON_AddStringToObject(j, "command", x->job->command);
    utc_now(buf, sizeof buf);
    cJSON_AddStringToObject(j, "started", buf);
    cJSON *m = cJSON_AddObjectToObject(j, "machine");
    cpu_name(buf, sizeof buf);
    cJSON_AddStringToObject(m, "cpu", buf);
    cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(m, "threads", x->job->threads);
    snprintf(buf, sizeof buf, "%s (kernel %s)", openblas_get_config(), openblas_get_corename());
    cJSON_AddStringToObject(m, "blas", buf);
    cJSON_AddNumberToObject(j, "guidance", 5);
    cJSON_AddStringToObject(j, "sampler", sampler_words_kind(x->sampler.kind));
    cJSON_AddItemToObject(j, "sweep", float_list_json(p->sweep, p->n_sweep));
    cJSON_AddItemToObject(j, "eval_guidance", float_list_json(p->eval_guidance, p->n_eval_guidance));
    int rc = json_save(path, j);
    cJSON_Delete(j);
    return rc;
}

/* Creates OUT/reproduce.json, or checks that an existing one is of the same profile; loads
 * or starts OUT/stages.json. */
static int open_reproduction(Ctx *x) {
    const char *out = x->job->out;
    char path[1200];
    if (make_dirs(out) != 0 || dir_check_writable(out) != 0) return -1;
    path_in(path, sizeof path, x, "reproduce.json");
    unsigned char *data;
    size_t n;
    if (read_file(path, 1 << 20, &data, &n) == 0) {
        cJSON *j = cJSON_ParseWithLength((const char *)data, n);
        xfree(data);
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "profile");
        if (!cJSON_IsString(pr)) {
            cJSON_Delete(j);
            return err_set("%s: not a reproduction record (no \"profile\"); choose another "
                           "directory", path);
        }
        if (strcmp(pr->valuestring, x->p->name) != 0) {
            int rc = err_set("%s holds a '%s' reproduction, not '%s': run that profile to continue "
                             "it, or choose another directory", out, pr->valuestring, x->p->name);
            cJSON_Delete(j);
            return rc;
        }
        cJSON_Delete(j);
        progress_log(x->report, "ddpm reproduce: continuing the %s reproduction in %s\n", x->p->name, out);
    } else if (record_new(x, path) != 0) {
        return -1;
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

/* "reproduce [k/9] WHAT", with the time elapsed and left once a stage has been timed. */
static void report_stage(const Ctx *x, int s, const char *what, double remaining) {
    char left[32], elapsed[32];
    /* time left from this run's own speed; before the first stage ends, no guess */
    if (x->done_seconds > 1 && x->done_work > 0) {
        format_duration(left, sizeof left, remaining * x->done_seconds / x->done_work);
        format_duration(elapsed, sizeof elapsed, now_seconds() - x->t_start);
        progress_log(x->report, "reproduce [%d/%d] %s (%s elapsed, about %s left)\n", s + 1, N_STAGES,
                     what, elapsed, left);
    } else {
        progress_log(x->report, "reproduce [%d/%d] %s\n", s + 1, N_STAGES, what);
    }
}

/* The stages asked for and not done yet, each recorded when it ends; the page is written
 * again after each. */
static int run_stages(Ctx *x) {
    const ReproduceJob *j = x->job;
    int parts[4] = {1, j->parts[1], j->parts[2], j->parts[3]}; /* the report is every part's */
    double work[N_STAGES], remaining = 0;
    const ProfileMacs pm = {model_macs(UNET_DENOISER, x->p->den.width),
                            model_macs(UNET_TIME, x->p->dm.width),
                            model_macs(UNET_CLASS, x->p->dm.width), x->nfe};
    for (int s = 0; s < N_STAGES; s++) {
        work[s] = stage_work(x->p, &pm, (StageId)s);
        if (j->parts[STAGE_PART[s]] && !stage_done(x, STAGE_NAMES[s])) remaining += work[s];
    }
    x->t_start = now_seconds();
    for (int s = 0; s < N_STAGES; s++) {
        char what[160];
        stage_what(x->p, (StageId)s, what, sizeof what);
        if (!parts[STAGE_PART[s]]) continue;
        if (stage_done(x, STAGE_NAMES[s]) && s != ST_REPORT) {
            progress_log(x->report, "reproduce [%d/%d] %s: done earlier, skipped\n", s + 1, N_STAGES, what);
            continue;
        }
        report_stage(x, s, what, remaining);
        double t0 = now_seconds();
        int rc = run_stage(x, (StageId)s);
        double dt = now_seconds() - t0;
        if (rc != 0) return rc;
        x->done_work += work[s];
        x->done_seconds += dt;
        remaining -= work[s];
        x->failed = "reproduce";
        /* the report counts as done once every other stage is */
        int record = !stage_done(x, STAGE_NAMES[s]) && (s != ST_REPORT || stages_missing(x) == 0);
        if (record && stage_record(x, STAGE_NAMES[s], what, dt) != 0) return -1;
        if (s != ST_REPORT && report_write(j->out) != 0) return -1; /* the page fills in stage by stage */
    }
    return 0;
}

/* The sampler of the samples and evaluations, checked against the profile's schedule before
 * anything is trained, and its network passes per image. */
static int choose_sampler(Ctx *x) {
    x->sampler = x->job->sampler ? *x->job->sampler : x->p->sampler;
    Schedule s;
    if (schedule_init(&s, x->p->dm.T, SCHEDULE_DEFAULT_BETA_START, x->p->dm.beta_end) != 0) return -1;
    SampleRequest req = {0};
    int rc = sampler_choose(&req, &s, &x->sampler);
    if (rc == 0) x->nfe = sampler_nfe(&s, &req);
    schedule_free(&s);
    return rc;
}

int app_reproduce(const ReproduceJob *job, const Progress *p, ReproduceResult *res) {
    Ctx x;
    memset(&x, 0, sizeof x);
    x.job = job;
    x.p = job->profile;
    x.report = p;
    x.failed = "reproduce";
    memset(res, 0, sizeof *res);
    res->failed_job = "reproduce";
    if (strlen(job->out) > 200) return err_set("%.40s...: the directory's name is longer than 200 bytes", job->out);
    if (choose_sampler(&x) != 0) return -1;
    if (job->judge) snprintf(x.judge_path, sizeof x.judge_path, "%s", job->judge);
    else if (x.p->judge_local) snprintf(x.judge_path, sizeof x.judge_path, "%s/judge.safetensors", job->out);
    if (open_reproduction(&x) != 0) {
        cJSON_Delete(x.stages);
        return -1;
    }
    int rc = run_stages(&x);
    res->failed_job = x.failed;
    res->missing = stages_missing(&x);
    format_duration(res->elapsed, sizeof res->elapsed, now_seconds() - x.t_start);
    cJSON_Delete(x.stages);
    return rc;
}
