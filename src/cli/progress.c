/* Progress line for the sampling subcommands. */
#include "cli/progress.h"

#include <stdio.h>

#include "core/common.h"

void cli_sample_progress(void *user, int done, int total) {
    SampleProgressLine *p = user;
    int pct = (int)(100.0 * done / total);
    if (pct != p->last_pct && (pct % 10 == 0 || done == total)) {
        p->last_pct = pct;
        fprintf(stderr, "\rsampling: %3d%%  (%.0f s)", pct, now_seconds() - p->t0);
        if (done == total) fprintf(stderr, "\n");
    }
}
