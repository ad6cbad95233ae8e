/* A CIFAR-10 fixture made from MNIST, shared by the tests of the data layer and of training
 * on it: digit i padded to 32x32 and tinted per label (one channel at full intensity), as
 * CIFAR's binary records. */
#ifndef DDPM_TEST_CIFAR_FIXTURE_H
#define DDPM_TEST_CIFAR_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/common.h"
#include "data/cifar.h"
#include "data/mnist.h"
#include "testutil.h"

/* MNIST's test split, the source of every fixture of the data tests: loaded once per test
 * program by cmocka's group setup, freed by its teardown. */
static MnistSplit g_mnist;

static int fixture_mnist_setup(void **state) {
    (void)state;
    if (mnist_load(test_data_dir(), 0, &g_mnist)) {
        fprintf(stderr, "MNIST not found: %s\n", err_msg());
        return -1;
    }
    return 0;
}

static int fixture_mnist_teardown(void **state) {
    (void)state;
    mnist_free(&g_mnist);
    return 0;
}

/* MNIST digit i of m padded to 32x32 and tinted per label into the CIFAR record rec. */
static inline void cifar_fixture_record(uint8_t *rec, const MnistSplit *m, int i) {
    const uint8_t *digit = m->images + (size_t)i * MNIST_PIXELS;
    rec[0] = m->labels[i];
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int v = (y >= 2 && y < 30 && x >= 2 && x < 30) ? digit[(y - 2) * 28 + x - 2] : 0;
                int tint = ch == 0 ? 255 : ch == 1 ? 25 * rec[0] : 255 - 25 * rec[0];
                rec[1 + ch * 1024 + y * 32 + x] = (uint8_t)(v * tint / 255);
            }
}

/* Records of digits first .. first + n - 1 of m as the batch file path. Returns 0, or -1. */
static inline int cifar_fixture_write(const char *path, const MnistSplit *m, int first, int n) {
    uint8_t *buf = malloc((size_t)n * CIFAR_RECORD);
    if (!buf) return -1;
    for (int i = 0; i < n; i++) cifar_fixture_record(buf + (size_t)i * CIFAR_RECORD, m, first + i);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, (size_t)n * CIFAR_RECORD, f) == (size_t)n * CIFAR_RECORD;
    if (f && fclose(f) != 0) ok = 0;
    free(buf);
    return ok ? 0 : -1;
}

#endif
