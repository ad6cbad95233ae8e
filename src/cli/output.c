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

/* "sampling: NN% (done of total network passes, seconds)" redrawn every 10%; a count of 0
 * starts a new draw. */
static void sampling_line(CliOutput *o, long done, long total) {
    if (done == 0) {
        o->t0 = now_seconds();
        o->last_pct = -1;
        return;
    }
    int pct = (int)(100.0 * done / total);
    if (pct != o->last_pct && (pct % 10 == 0 || done == total)) {
        o->last_pct = pct;
        /* the count is of batched network passes (chunks x NFE) */
        fprintf(stderr, "\rsampling: %3d%%  (%ld of %ld network passes, %.0f s)", pct, done, total,
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
    if (ev->stage && strcmp(ev->stage, "sampling") == 0 && o->tty) sampling_line(o, ev->done, ev->total);
}

int cli_check_device(const char *cmd, const char *device) {
    if (!device || backend_find(device)) return 0;
    fprintf(stderr, "ddpm %s: --device: %s\n", cmd, err_msg());
    return 2;
}

Progress cli_output(CliOutput *out) {
    out->tty = isatty(2);
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
