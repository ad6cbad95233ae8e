/* Helpers shared by the test programs: cmocka, tensor comparison that prints the worst
 * difference, and the path of the shared MNIST copy. */
#ifndef DDPM_TESTUTIL_H
#define DDPM_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Compare got against want over n values: passes when every |got - want| <= atol + rtol |want|.
 * Prints the worst element either way so a failure says where and by how much. */
static inline int check_tensor(const char *label, const float *got, const float *want, size_t n,
                               double atol, double rtol) {
    size_t worst = 0;
    double worst_excess = -INFINITY, worst_diff = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double lim = atol + rtol * fabs((double)want[i]);
        if (!(d <= lim)) ok = 0;
        double excess = isnan(d) ? INFINITY : d - lim;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
            worst_diff = d;
        }
    }
    if (n)
        printf("  %-40s n=%-8zu worst |diff| %.3e at %zu (got %.6g want %.6g) %s\n", label, n,
               worst_diff, worst, (double)got[worst], (double)want[worst], ok ? "ok" : "FAIL");
    return ok;
}

static inline double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* MNIST for tests: $DDPM_DATA, else ../shared/data/mnist relative to the repository. */
static inline const char *test_data_dir(void) {
    const char *d = getenv("DDPM_DATA");
    return d && *d ? d : "../shared/data/mnist";
}

/* A fresh directory /tmp/ddpm-test-NAME-XXXXXX (mkdtemp) into dir. Returns 0, or -1. */
static inline int test_mkdtemp(char *dir, size_t size, const char *name) {
    snprintf(dir, size, "/tmp/ddpm-test-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* DIR/NAME, in one of 8 buffers used in turn (a result lives through the next 7 calls). */
static inline const char *test_path_in(const char *dir, const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Write n bytes to path (a fixture file); the test fails if it cannot. */
static inline void test_write_raw(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Remove a file or a directory tree (tests' scratch directories). */
static inline void test_rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                size_t len = strlen(path) + 1 + strlen(e->d_name) + 1;
                char *sub = malloc(len);
                if (!sub) continue;
                snprintf(sub, len, "%s/%s", path, e->d_name);
                test_rm_rf(sub);
                free(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

#endif
