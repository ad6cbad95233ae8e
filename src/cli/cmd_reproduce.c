/* ddpm reproduce: options -> ReproduceJob -> app_reproduce (src/app/reproduce.h), then the
 * line that says how it ended. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/reproduce.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "cli/sampler_opts.h"
#include "core/common.h"
#include "diffusion/schedule.h"

static const char *HEAD =
    "Usage: ddpm reproduce [--quick | --profile full|quick|tiny] [--out DIR] [--data DIR]\n"
    "                      [--parts LIST] [--threads N] [--judge FILE] [--no-progress]\n"
    "                      [--sampler ddpm|ddim|dpmpp2m|dpmpp2m-sde|dpmpp3m] [--steps K] [--spacing S]\n"
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
    "complete once every part has run in the same --out. --sampler and its options (as in\n"
    "ddpm sample) choose how Parts 2 and 3 are sampled and evaluated (default the profile's:\n"
    "DDPM over all T steps, for quick DPM-Solver++(2M) SDE in 20 time-uniform steps); NFE =\n"
    "K network passes per image, a guided pair counted once.";

/* --parts into job->parts. Returns 0, or 2 after the message. */
static int parse_parts(ReproduceJob *job, const char *parts) {
    int plist[3];
    int np = parse_int_list("--parts", parts, plist, 3, 1, 3);
    if (np < 0) return cli_fail("reproduce", 2);
    for (int i = 0; i < np; i++) {
        if (job->parts[plist[i]]) {
            err_set("--parts: part %d is listed twice", plist[i]);
            return cli_fail("reproduce", 2);
        }
        job->parts[plist[i]] = 1;
    }
    return 0;
}

/* The sampler options, when any is given, into *c for job->sampler (the words without
 * --sampler apply to the profile's sampler), checked against the profile's schedule.
 * Returns 0, or 1 after the message. */
static int parse_sampler(ReproduceJob *job, SamplerChoice *c, SamplerWords *w, Opt *opts, int no) {
    const char *names[] = {"sampler", "steps", "eta", "clip", "spacing"};
    int any = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) any |= args_find(opts, no, names[i])->seen;
    if (!any) return 0;
    if (!w->name) w->name = sampler_words_kind(job->profile->sampler.kind);
    Schedule s;
    if (schedule_init(&s, job->profile->dm.T, SCHEDULE_DEFAULT_BETA_START, job->profile->dm.beta_end) != 0)
        return cli_fail("reproduce", 1);
    SampleRequest req = {0};
    int rc = sampler_words_choose(&req, &s, w);
    schedule_free(&s);
    if (rc != 0 || sampler_words_parse(c, w) != 0) return cli_fail("reproduce", 1);
    job->sampler = c;
    return 0;
}

/* How the reproduction ended: stopped (with the command that continues it), failed, or
 * finished (with what is left to run). Returns the exit status. */
static int report_end(const ReproduceJob *job, const ReproduceResult *res, int rc, const char *parts) {
    int all_parts = job->parts[1] && job->parts[2] && job->parts[3];
    if (rc > 0) {
        fprintf(stderr, "ddpm reproduce: stopped; `ddpm reproduce --profile %s --out %s%s%s` continues "
                        "where it stopped\n", job->profile->name, job->out, all_parts ? "" : " --parts ",
                all_parts ? "" : parts);
        return 128 + rc;
    }
    if (rc != 0) return cli_fail(res->failed_job, 1);
    if (res->missing)
        printf("parts %s finished in %s (%d stage%s of other parts still to run): open %s/index.html\n",
               parts, res->elapsed, res->missing, res->missing == 1 ? "" : "s", job->out);
    else
        printf("reproduction finished in %s: open %s/index.html\n", res->elapsed, job->out);
    return 0;
}

int cmd_reproduce(int argc, char **argv) {
    const char *profile = NULL, *out = NULL, *device = "cpu", *parts = "1,2,3";
    int quick = 0, no_progress = 0;
    ReproduceJob job = {.threads = 2};
    SamplerWords w = {NULL, 0, -1.0f, 0, NULL};
    SamplerChoice sampler;
    Opt opts[] = {
        {"quick", OPT_FLAG, &quick, "the quick profile (same as --profile quick)", 0, -1, 0},
        {"profile", OPT_STR, &profile, "full (default), quick or tiny", 0, -1, 0},
        {"out", OPT_STR, &out, "reproduction directory (default reproduce-<profile>)", 0, -1, 0},
        {"data", OPT_STR, &job.data, "MNIST directory (default $DDPM_DATA or ./data/mnist)", 0, -1, 0},
        {"parts", OPT_STR, &parts, "run the stages of these parts only, e.g. 1 or 2,3 (default 1,2,3)", 0, -1, 0},
        {"threads", OPT_INT, &job.threads, "CPU threads (default 2)", 1, 1024, 0},
        {"judge", OPT_STR, &job.judge, "judge weights for ddpm eval (default: its cache)", 0, -1, 0},
        {"device", OPT_STR, &device, "cpu (the only backend of this build)", 0, -1, 0},
        CLI_SAMPLER_OPTS(w, ""),
        {"steps", OPT_INT, &w.steps, CLI_SAMPLER_STEPS_HELP, 1, 100000, 0},
        {"no-progress", OPT_FLAG, &no_progress, "plain log lines instead of status lines", 0, -1, 0},
        {"fault-stop-at", OPT_LONG, &job.fault_stop_at, NULL, 1, 1e15, 0},
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
    if ((r = parse_parts(&job, parts)) != 0) return r;
    if (!(job.profile = reproduce_profile_find(profile))) {
        err_set("--profile: unknown profile '%s' (expected full, quick or tiny)", profile);
        return cli_fail("reproduce", 2);
    }
    if ((r = parse_sampler(&job, &sampler, &w, opts, no)) != 0) return r;
    char default_out[64], command[1600] = "ddpm";
    snprintf(default_out, sizeof default_out, "reproduce-%s", job.profile->name);
    job.out = out ? out : default_out;
    if (strlen(job.out) > 200) {
        err_set("--out: at most 200 bytes");
        return cli_fail("reproduce", 2);
    }
    for (int i = 1; i < argc; i++) {
        size_t l = strlen(command);
        snprintf(command + l, sizeof command - l, " %s", argv[i]);
    }
    job.command = command;
    job.train_status_line = !no_progress && isatty(2);
    job.judge_status_line = isatty(2);
    CliOutput co;
    const Progress report = cli_output(&co);
    ReproduceResult res;
    int rc = app_reproduce(&job, &report, &res);
    return report_end(&job, &res, rc, parts);
}
