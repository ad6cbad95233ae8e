/* mpirun -np P mpi_bn: synchronised BatchNorm seen from every process. Each process builds the
 * same UNet twice: one computes the whole batch alone (no sum_across), the other only this
 * process's slice with BatchNorm's sums taken across the processes. After one training-mode
 * forward and backward, every process checks that its slice's outputs, the BatchNorm running
 * statistics (the batch's mean and variance folded in) and the gradients summed over the
 * processes equal the whole-batch ones. For the time and class models on the cpu and ref
 * backends. Prints one line per case and process; exits 1 if any is out of tolerance. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/dist.h"
#include "core/rng.h"
#include "model/unet.h"
#include "ops/ops.h"
#include "train/train.h"

#define BATCH 7 /* split 3 + 4 over two processes: unequal slices */

/* max |a - b| / (max |b| + tiny) over n values */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, s = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= d)) d = e;
        if (fabs((double)b[i]) > s) s = fabs((double)b[i]);
    }
    return d / s;
}

static int check_case(UnetKind kind, const char *device) {
    UnetConfig uc = unet_config_spec(kind, 8);
    uc.device = device;
    const int P = 784, K = 10, rank = dist_rank(), ranks = dist_size();
    int lo, k;
    trainer_slice(BATCH, rank, ranks, &lo, &k);
    Unet whole, part;
    Rng r1, r2;
    rng_seed(&r1, 5);
    rng_seed(&r2, 5);
    if (unet_init(&whole, &uc, BATCH, 1, &r1) != 0 || unet_init(&part, &uc, k, 1, &r2) != 0) {
        fprintf(stderr, "mpi_bn: %s\n", err_msg());
        return 1;
    }
    part.ctx.sum_across = dist_sum_across;
    float x[BATCH * 784], dout[BATCH * 784], tn[BATCH], oh[BATCH * 10];
    Rng in;
    rng_seed(&in, 11);
    rng_fill_normal(&in, x, (size_t)BATCH * P);
    rng_fill_normal(&in, dout, (size_t)BATCH * P);
    memset(oh, 0, sizeof oh);
    for (int i = 0; i < BATCH; i++) {
        tn[i] = (float)rng_uniform(&in);
        oh[i * K + i % K] = 1.0f;
    }
    const int cls = kind == UNET_CLASS;
    float *xw = dev_alloc(&whole.ctx, sizeof x), *xp = dev_alloc(&part.ctx, sizeof x);
    float *gw = dev_alloc(&whole.ctx, sizeof dout), *gp = dev_alloc(&part.ctx, sizeof dout);
    float *tw = dev_alloc(&whole.ctx, sizeof tn), *tp = dev_alloc(&part.ctx, sizeof tn);
    float *ow = dev_alloc(&whole.ctx, sizeof oh), *op = dev_alloc(&part.ctx, sizeof oh);
    dev_upload(&whole.ctx, xw, x, sizeof x);
    dev_upload(&whole.ctx, gw, dout, sizeof dout);
    dev_upload(&whole.ctx, tw, tn, sizeof tn);
    dev_upload(&whole.ctx, ow, oh, sizeof oh);
    dev_upload(&part.ctx, xp, x + lo * P, (size_t)k * P * sizeof(float));
    dev_upload(&part.ctx, gp, dout + lo * P, (size_t)k * P * sizeof(float));
    dev_upload(&part.ctx, tp, tn + lo, (size_t)k * sizeof(float));
    dev_upload(&part.ctx, op, oh + lo * K, (size_t)k * K * sizeof(float));

    static float yw[BATCH * 784], yp[BATCH * 784];
    dev_download(&whole.ctx, yw, unet_forward(&whole, xw, tw, cls ? ow : NULL, BATCH, UNET_TRAIN), sizeof yw);
    dev_download(&part.ctx, yp, unet_forward(&part, xp, tp, cls ? op : NULL, k, UNET_TRAIN),
                 (size_t)k * P * sizeof(float));
    unet_zero_grad(&whole);
    unet_zero_grad(&part);
    unet_backward(&whole, gw);
    unet_backward(&part, gp);
    float *sw = unet_state_download(&whole), *sp = unet_state_download(&part);
    const size_t np = whole.n_params, nb = whole.n_buffers;
    float *hgw = xmalloc(np * sizeof(float)), *hgp = xmalloc(np * sizeof(float));
    dev_download(&whole.ctx, hgw, whole.grads, np * sizeof(float));
    dev_download(&part.ctx, hgp, part.grads, np * sizeof(float));
    dist_sum_floats(hgp, np);
    double d_out = rel_diff(yp, yw + lo * P, (size_t)k * P);
    double d_stats = rel_diff(sp + np, sw + np, nb);
    double d_grad = rel_diff(hgp, hgw, np);
    /* float rounding of sums split in another place; the stats are summed in double */
    int ok = d_stats <= 1e-7 && d_out <= 1e-5 && d_grad <= 1e-5;
    printf("mpi_bn: %s %s rank %d of %d (rows %d..%d): BatchNorm statistics %.2g, outputs "
           "%.2g, gradients %.2g (relative to the largest value) %s\n", unet_kind_name(kind),
           device, rank, ranks, lo, lo + k - 1, d_stats, d_out, d_grad, ok ? "ok" : "FAILED");
    xfree(sw);
    xfree(sp);
    xfree(hgw);
    xfree(hgp);
    dev_free(&whole.ctx, xw, sizeof x);
    dev_free(&part.ctx, xp, sizeof x);
    dev_free(&whole.ctx, gw, sizeof dout);
    dev_free(&part.ctx, gp, sizeof dout);
    dev_free(&whole.ctx, tw, sizeof tn);
    dev_free(&part.ctx, tp, sizeof tn);
    dev_free(&whole.ctx, ow, sizeof oh);
    dev_free(&part.ctx, op, sizeof oh);
    unet_free(&whole);
    unet_free(&part);
    return !ok;
}

int main(int argc, char **argv) {
    if (dist_init(&argc, &argv) != 0) {
        fprintf(stderr, "mpi_bn: %s\n", err_msg());
        return 2;
    }
    if (dist_size() < 2) {
        fprintf(stderr, "mpi_bn: run it under mpirun with two or more processes\n");
        dist_finalize();
        return 2;
    }
    int bad = 0;
    const char *devices[] = {"cpu", "ref"};
    const UnetKind kinds[] = {UNET_TIME, UNET_CLASS};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 2; i++) bad |= check_case(kinds[i], devices[d]);
    double v = bad;
    dist_sum_doubles(&v, 1);
    dist_finalize();
    return v > 0;
}
