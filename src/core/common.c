/* The checked allocator, panics and the per-thread error message. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "common.h"

#include <sys/mman.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ddpm_panic(const char *file, int line, const char *what) {
    fprintf(stderr, "ddpm: internal error at %s:%d: check failed: %s\n", file, line, what);
    abort();
}

void *xmalloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded) != 0 || !p) {
        fprintf(stderr, "ddpm: out of memory allocating %zu bytes\n", bytes);
        abort();
    }
    return p;
}

void *xcalloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) {
        fprintf(stderr, "ddpm: allocation size overflow (%zu x %zu)\n", count, size);
        abort();
    }
    void *p = xmalloc(count * size);
    memset(p, 0, count * size);
    return p;
}

void *xcalloc_pages(size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "ddpm: out of memory allocating %zu bytes\n", bytes);
        abort();
    }
    return p;
}

void xfree_pages(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void xfree(void *p) { free(p); }

static _Thread_local char err_buf[1024];

int err_set(const char *fmt, ...) {
    /* formatted apart first: a message may quote the one before it (err_msg() as an argument) */
    char msg[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(err_buf, msg, sizeof msg);
    return -1;
}

const char *err_msg(void) { return err_buf[0] ? err_buf : "unknown error"; }

const char *err_last(void) { return err_buf; }

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void format_duration(char *dst, size_t cap, double seconds) {
    if (!(seconds >= 0) || !isfinite(seconds)) seconds = 0;
    long t = (long)(seconds + 0.5);
    if (t < 60) snprintf(dst, cap, "%lds", t);
    else if (t < 3600) snprintf(dst, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(dst, cap, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}
