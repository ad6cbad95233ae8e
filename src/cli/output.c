/* The progress printer of the command line and its error line. */
#include "cli/output.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/dist.h"
#include "ops/backend.h"

int cli_fail(const char *cmd, int status) {
    if (dist_rank() != 0) {
        /* In a data-parallel run an error usually strikes every process alike: rank 0 says
         * it, and mpirun ends the others before they would repeat it. An error of this
         * process alone (rank 0 then waits for it) is still printed, a moment later. */
        sleep(2);
        fprintf(stderr, "ddpm %s: rank %d: %s\n", cmd, dist_rank(), err_msg());
        return status;
    }
    fprintf(stderr, "ddpm %s: %s\n", cmd, err_msg());
    return status;
}

/* The counted stages drawn on a terminal, with the unit of their counts. */
static const struct {
    const char *stage, *units;
} COUNTED[] = {
    {"sampling", "network passes"}, /* batched network passes (chunks x NFE) */
    {"decoding", "images"},         /* a folder of images read into a data set */
    {"exporting", "images"},        /* ddpm data export */
};

/* "STAGE: NN% (done of total UNITS, seconds)" redrawn every 10%; a count of 0, another
 * stage or a count that goes back starts a new line (its clock from the first count). */
static void count_line(CliOutput *o, const char *stage, const char *units, long done,
                       long total) {
    if (done == 0 || stage != o->stage || done < o->last_done) {
        o->stage = stage;
        o->t0 = now_seconds();
        o->last_pct = -1;
    }
    o->last_done = done;
    if (done == 0) return;
    int pct = (int)(100.0 * done / total);
    if (pct != o->last_pct && (pct % 10 == 0 || done == total)) {
        o->last_pct = pct;
        fprintf(stderr, "\r%s: %3d%%  (%ld of %ld %s, %.0f s)", stage, pct, done, total, units,
                now_seconds() - o->t0);
        if (done == total) fprintf(stderr, "\n");
    }
}

static void print_event(void *user, const ProgressEvent *ev) {
    CliOutput *o = user;
    if (ev->stage && strcmp(ev->stage, "interrupted") == 0) {
        fprintf(stderr, "ddpm train: %s; continue with: ddpm train --resume %s\n", ev->line,
                ev->path);
        return;
    }
    if (ev->stage && strcmp(ev->stage, "ema") == 0) {
        fprintf(stderr, "%s (EMA; --no-ema for the raw ones)\n", ev->line);
        return;
    }
    if (ev->line) {
        FILE *f = ev->stream == PROGRESS_OUT ? stdout : stderr;
        fputs(ev->line, f);
        if (ev->flush) fflush(f);
        return;
    }
    if (!ev->stage || !o->tty || ev->total <= 0) return;
    for (size_t i = 0; i < sizeof COUNTED / sizeof COUNTED[0]; i++)
        if (strcmp(ev->stage, COUNTED[i].stage) == 0)
            count_line(o, COUNTED[i].stage, COUNTED[i].units, ev->done, ev->total);
}

int cli_check_device(const char *cmd, const char *device) {
    if (!device || backend_find(device)) return 0;
    fprintf(stderr, "ddpm %s: --device: %s\n", cmd, err_msg());
    return 2;
}

Progress cli_output(CliOutput *out) {
    out->tty = isatty(2);
    out->stage = NULL;
    out->last_done = 0;
    out->t0 = now_seconds();
    out->last_pct = -1;
    /* in a data-parallel run rank 0 speaks for all; the others print only their errors */
    if (dist_rank() != 0) return (Progress){NULL, NULL};
    return (Progress){print_event, out};
}

int cli_rank_threads(int threads, int given) {
    if (given || dist_local_size() == 1) return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long per = cores / dist_local_size();
    return per >= 1 ? (int)per : 1;
}
