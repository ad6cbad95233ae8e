/* Progress line and pixel conversion for the sampling subcommands. */
#include "cli/progress.h"

#include <math.h>
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

uint8_t pixel_to_u8(float v) {
    float c = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint8_t)lrintf(c * 255.0f);
}
