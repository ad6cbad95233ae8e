/* st_compare A B: how far apart the float32 tensors of two safetensors files are (the MPI
 * tests compare the weights of a data-parallel run with a one-process run's). Prints
 *   tensors N values V above_1e-6 F max_rel R (TENSOR) free_max_rel Q (TENSOR)
 * F: the fraction of values that differ by more than 1e-6; R: the largest difference relative
 * to max(1, |value in B|) over the tensors that act on the output; Q: the same over the ones
 * that do not: the biases of the convolutions that BatchNorm follows (BatchNorm subtracts
 * them again, so their gradient is zero but for rounding, which Adam turns into steps of up
 * to lr either way) and the running means that carry them. Exits 1 when a tensor of one file
 * is missing from the other or has another shape, 2 on a usage or file error. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors.h"

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: st_compare A B\n");
        return 2;
    }
    StFile a, b;
    if (safetensors_open(argv[1], &a) != 0 || safetensors_open(argv[2], &b) != 0) {
        fprintf(stderr, "st_compare: cannot read %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    long tensors = 0, values = 0, above = 0;
    double max_rel[2] = {0, 0};
    const char *worst[2] = {"-", "-"};
    int bad = 0;
    for (int i = 0; i < a.n; i++) {
        const StEntry *ea = &a.entries[i], *eb = safetensors_find(&b, ea->name);
        if (ea->dtype != ST_F32) continue;
        if (!eb || eb->dtype != ST_F32 || eb->bytes != ea->bytes) {
            fprintf(stderr, "st_compare: %s differs in presence or shape\n", ea->name);
            bad = 1;
            continue;
        }
        const int free = ends_with(ea->name, ".conv.bias") || ends_with(ea->name, ".bn.running_mean");
        const unsigned char *x = safetensors_data(&a, ea), *y = safetensors_data(&b, eb);
        size_t n = ea->bytes / sizeof(float);
        for (size_t k = 0; k < n; k++) {
            float xv, yv;
            memcpy(&xv, x + k * sizeof xv, sizeof xv); /* the data need not be aligned */
            memcpy(&yv, y + k * sizeof yv, sizeof yv);
            double d = fabs((double)xv - (double)yv);
            double rel = d / (fabs((double)yv) > 1.0 ? fabs((double)yv) : 1.0);
            if (!(rel <= max_rel[free])) { /* a NaN counts as the worst */
                max_rel[free] = rel;
                worst[free] = ea->name;
            }
            above += !(d <= 1e-6);
        }
        tensors++;
        values += (long)n;
    }
    printf("tensors %ld values %ld above_1e-6 %.6f max_rel %.3g (%s) free_max_rel %.3g (%s)\n",
           tensors, values, values ? (double)above / (double)values : 0.0, max_rel[0], worst[0],
           max_rel[1], worst[1]);
    safetensors_close(&a);
    safetensors_close(&b);
    return bad;
}
