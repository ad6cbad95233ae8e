/* Progress events: formatting a line and handing it to the callback. */
#include "core/progress.h"

#include <stdarg.h>
#include <stdio.h>

void progress_event(const Progress *p, const ProgressEvent *ev) {
    if (p && p->fn) p->fn(p->user, ev);
}

static void vline(const Progress *p, ProgressStream stream, const char *fmt, va_list ap) {
    if (!p || !p->fn) return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    ProgressEvent ev = {.line = buf, .stream = stream};
    p->fn(p->user, &ev);
}

void progress_log(const Progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vline(p, PROGRESS_LOG, fmt, ap);
    va_end(ap);
}

void progress_out(const Progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vline(p, PROGRESS_OUT, fmt, ap);
    va_end(ap);
}

void progress_count(const Progress *p, const char *stage, long done, long total) {
    ProgressEvent ev = {.stage = stage, .done = done, .total = total};
    progress_event(p, &ev);
}

void progress_flush(const Progress *p) {
    ProgressEvent ev = {.line = "", .stream = PROGRESS_OUT, .flush = 1};
    progress_event(p, &ev);
}
