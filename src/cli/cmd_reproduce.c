/* ddpm reproduce: options -> ReproduceJob -> app_reproduce (src/app/reproduce.h), then the
 * line that says how it ended. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/reproduce.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"

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
    Opt opts[] = {
        {"quick", OPT_FLAG, &quick, "the quick profile (same as --profile quick)", 0, -1, 0},
        {"profile", OPT_STR, &profile, "full (default), quick or tiny", 0, -1, 0},
        {"out", OPT_STR, &out, "reproduction directory (default reproduce-<profile>)", 0, -1, 0},
        {"data", OPT_STR, &job.data, "MNIST directory (default $DDPM_DATA or ./data/mnist)", 0, -1, 0},
        {"parts", OPT_STR, &parts, "run the stages of these parts only, e.g. 1 or 2,3 (default 1,2,3)", 0, -1, 0},
        {"threads", OPT_INT, &job.threads, "CPU threads (default 2)", 1, 1024, 0},
        {"judge", OPT_STR, &job.judge, "judge weights for ddpm eval (default: its cache)", 0, -1, 0},
        {"device", OPT_STR, &device, "cpu (the only backend of this build)", 0, -1, 0},
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
