/* The throughput measurement: timed training steps or sampler repeats, the machine's SGEMM
 * peak and the per-layer profile table. */
#include "app/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>

#include "diffusion/sampler_words.h"
#include "core/common.h"
#include "core/dist.h"
#include "diffusion/sampler.h"
#include "train/train.h"

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* SGEMM peak of this machine for the way the convolutions use it: every thread runs its
 * own single-threaded 1024^3 SGEMMs (smaller ones stay below the peak that the larger
 * convolutions reach). Best of 5 rounds, in GFLOP/s over all threads. */
static double sgemm_peak(int threads) {
    const int n = 1024, rounds = 5, reps = 2;
    size_t sz = (size_t)n * n;
    float *mem = xcalloc(3 * sz * (size_t)threads, sizeof(float));
    for (size_t i = 0; i < 3 * sz * (size_t)threads; i++) mem[i] = (float)(i % 7) * 0.125f;
    double best = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_seconds();
#pragma omp parallel num_threads(threads)
        {
            float *a = mem + 3 * sz * (size_t)omp_get_thread_num(), *b = a + sz, *c = b + sz;
            for (int k = 0; k < reps; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                            0.0f, c, n);
        }
        double g = 2.0 * n * n * (double)n * reps * threads / (now_seconds() - t0) / 1e9;
        if (g > best) best = g;
    }
    xfree(mem);
    return best;
}

/* Multiply-adds of one image through a unit's convolution (index UNET_NUM_UNITS: the
 * output conv). */
static double unit_macs(const Unet *m, int i) {
    if (i == UNET_NUM_UNITS) return (double)m->width * MNIST_PIXELS * 9;
    const UnetUnit *u = &m->units[i];
    if (u->transposed) return (double)u->ci * u->hin * u->hin * u->co * u->k * u->k;
    return (double)u->co * u->hout * u->hout * u->ci * u->k * u->k;
}

/* The per-layer table of `steps` profiled steps of batch B (training steps, or forward
 * passes of the sampler when sampling: then the backward columns are empty), each step
 * taking step_s seconds on mean. */
static void print_profile(const Progress *out, const Unet *m, const UnetProfile *p, int steps,
                          int batch, double step_s, double peak, int sampling) {
    progress_out(out, "\nper-layer profile, ms per %s (mean %.1f ms); GFLOP/s and %% of the %.0f GFLOP/s SGEMM peak\n",
           sampling ? "reverse step" : "training step", step_s * 1e3, peak);
    progress_out(out, "%-8s %-22s %8s %7s %5s %8s %7s %5s %7s %7s %7s %7s %6s\n", "layer", "shape", "conv fw",
           "GF/s", "peak", "conv bw", "GF/s", "peak", "bn fw", "bn bw", "gelu fw", "gelu bw", "share");
    double sum_fw = 0, sum_bw = 0, conv = 0, bn = 0, gelu = 0;
    for (int i = 0; i <= UNET_NUM_UNITS; i++) {
        char name[16], shape[32];
        if (i < UNET_NUM_UNITS) {
            const UnetUnit *u = &m->units[i];
            snprintf(name, sizeof name, "%s", u->name);
            ConvShape cs = u->transposed ? conv_transpose_shape(batch, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad)
                                         : conv_shape(batch, u->ci, u->co, u->hin, u->hin, u->k, u->stride, u->pad);
            const char *mark = conv_method(&m->ctx, &cs, u->transposed);
            snprintf(shape, sizeof shape, "%s %d>%d %dx%d%s%s", u->transposed ? "convT" : "conv", u->ci,
                     u->co, u->hout, u->hout, *mark ? " " : "", mark);
        } else {
            snprintf(name, sizeof name, "out");
            snprintf(shape, sizeof shape, "conv %d>1 28x28", m->width);
        }
        const double *f = p->fwd[i], *b = p->bwd[i];
        double flops = 2.0 * unit_macs(m, i) * batch;
        double bflops = (i == 0 ? 1.0 : 2.0) * flops; /* enc0.0 has no input gradient */
        double cf = f[UNET_PROF_CONV] / steps, cb = b[UNET_PROF_CONV] / steps;
        double gf = cf > 0 ? flops / cf / 1e9 : 0, gb = cb > 0 ? bflops / cb / 1e9 : 0;
        double row_fw = (f[0] + f[1] + f[2]) / steps, row_bw = (b[0] + b[1] + b[2]) / steps;
        sum_fw += row_fw;
        sum_bw += row_bw;
        conv += cf + cb;
        bn += (f[UNET_PROF_BN] + b[UNET_PROF_BN]) / steps;
        gelu += (f[UNET_PROF_GELU] + b[UNET_PROF_GELU]) / steps;
        progress_out(out, "%-8s %-22s %8.2f %7.1f %4.0f%% %8.2f %7.1f %4.0f%% %7.2f %7.2f %7.2f %7.2f %5.1f%%\n",
               name, shape, cf * 1e3, gf, 100 * gf / peak, cb * 1e3, gb, 100 * gb / peak,
               f[UNET_PROF_BN] / steps * 1e3, b[UNET_PROF_BN] / steps * 1e3,
               f[UNET_PROF_GELU] / steps * 1e3, b[UNET_PROF_GELU] / steps * 1e3,
               100 * (row_fw + row_bw) / step_s);
    }
    double tf = p->total_fwd / steps, tb = p->total_bwd / steps;
    double rest = step_s - tf - tb;
    progress_out(out, "W: Winograd F(2x2,3x3), W4: F(4x4,3x3), Wt: sub-pixel F(2x2,2x2) (DDPM_CONV=im2col turns\n"
           "   all off); their GFLOP/s count the FLOPs of a direct convolution, an effective rate that may\n"
           "   exceed the SGEMM peak\n");
    if (sampling) progress_out(out, "BatchNorm folded into the convolutions (inference)\n");
    if (!sampling)
        progress_out(out, "bn: BatchNorm and the GELU after it, one fused operator in training (gelu columns empty)\n");
    progress_out(out, "totals per step: conv %.1f ms (%.0f%%), BatchNorm %.1f ms (%.0f%%), GELU %.1f ms (%.0f%%),\n",
           conv * 1e3, 100 * conv / step_s, bn * 1e3, 100 * bn / step_s, gelu * 1e3, 100 * gelu / step_s);
    progress_out(out, "  FCBlocks/conditioning/concat/pooling/zeroing %.1f ms forward + %.1f ms backward (%.0f%%),\n",
           (tf - sum_fw) * 1e3, (tb - sum_bw) * 1e3, 100 * (tf - sum_fw + tb - sum_bw) / step_s);
    progress_out(out, "  %s %.1f ms (%.0f%%)\n", sampling ? "guidance, noise and update" : "noise, loss and Adam",
           rest * 1e3, 100 * rest / step_s);
}

/* The request that times k network passes of the job's sampler: DDPM over a schedule of k
 * steps (*s, which costs exactly k reverse steps of the full sampler), the other samplers
 * in k steps of the full schedule (a step's cost does not depend on how many there are). */
static int timed_request(SampleRequest *req, Schedule *s, const TrainConfig *c,
                         const SamplerChoice *choice, int k) {
    if (choice->kind == SAMPLER_DDPM) {
        if (schedule_init(s, k, c->beta_start, c->beta_end) != 0) return -1;
        return sampler_choose(req, s, choice);
    }
    if (schedule_init(s, c->T, c->beta_start, c->beta_end) != 0) return -1;
    SamplerChoice ck = *choice;
    ck.steps = k;
    return sampler_choose(req, s, &ck);
}

/* Sampling throughput of the job's sampler: `steps` repeats of k = min(sample_steps, K)
 * network passes on a batch of B samples, each repeat's time per pass scaled to the
 * sampler's whole chain (its NFE); with profile, the per-layer table of the timed passes. */
static int bench_sample(const Progress *out, const TrainConfig *c, UnetKind kind,
                        const BenchJob *job) {
    const int steps = job->steps, profile = job->profile;
    Unet m;
    Rng rng;
    rng_seed(&rng, 7);
    int guided = kind == UNET_CLASS;
    UnetConfig uc = unet_config_spec(kind, c->width);
    uc.opt = (UnetOptions){.residual = c->residual, .attention = c->attention};
    uc.device = c->device;
    Schedule full, s = {0};
    SampleRequest chain = {0}, req = {.n = c->batch, .guidance = 5.0f};
    if (schedule_init(&full, c->T, c->beta_start, c->beta_end) != 0) return -1;
    if (sampler_choose(&chain, &full, &job->sampler) != 0) {
        schedule_free(&full);
        return -1;
    }
    const int K = sampler_steps(&full, &chain), nfe = sampler_nfe(&full, &chain);
    const int k = job->sample_steps < K ? job->sample_steps : K;
    if (timed_request(&req, &s, c, &job->sampler, k) != 0) {
        schedule_free(&s);
        schedule_free(&full);
        return -1;
    }
    if (unet_init(&m, &uc, guided ? 2 * c->batch : c->batch, c->threads, &rng) != 0) {
        schedule_free(&s);
        schedule_free(&full);
        return -1;
    }
    int *labels = xmalloc((size_t)c->batch * sizeof(int));
    for (int i = 0; i < c->batch; i++) labels[i] = i % 10;
    req.labels = guided ? labels : NULL;
    float *imgs = xmalloc((size_t)c->batch * MNIST_PIXELS * sizeof(float));
    char desc[160];
    sampler_words_describe(&chain, &full, desc, sizeof desc);
    progress_out(out, "bench: sampling, %s model, width %d, batch %d%s, %d threads; %s; %d of the "
                 "%d network passes per image timed per repeat\n",
                 unet_kind_name(kind), c->width, c->batch, guided ? " (guided: 2B per forward)" : "",
                 c->threads, desc, k, nfe);
    for (int i = 0; i < job->warmup; i++) sampler_draw(&m, &s, &rng, &req, imgs);
    double *ips = xmalloc((size_t)steps * sizeof(double));
    double peak = profile ? sgemm_peak(c->threads) : 0, total = 0;
    UnetProfile prof;
    memset(&prof, 0, sizeof prof);
    if (profile) m.prof = &prof;
    for (int i = 0; i < steps; i++) {
        double t0 = now_seconds();
        sampler_draw(&m, &s, &rng, &req, imgs);
        double per_pass = (now_seconds() - t0) / k;
        total += per_pass * k;
        ips[i] = c->batch / (per_pass * nfe);
        progress_out(out, "repeat %d: %.4f s per network pass, %.3f img/s for %d NFE\n", i + 1,
                     per_pass, ips[i], nfe);
        progress_flush(out);
    }
    progress_out(out, "peak RSS %.0f MiB\n", peak_rss_mib());
    if (profile) {
        m.prof = NULL;
        print_profile(out, &m, &prof, steps * k, guided ? 2 * c->batch : c->batch, total / (steps * k), peak, 1);
    }
    progress_out(out, "%.3f img/s\n", median(ips, steps));
    xfree(ips);
    xfree(labels);
    xfree(imgs);
    schedule_free(&s);
    schedule_free(&full);
    unet_free(&m);
    return 0;
}

int app_bench(const BenchJob *job, const Progress *out) {
    const UnetKind kind = job->kind;
    const int steps = job->steps, warmup = job->warmup, threads = job->threads;
    TrainConfig c;
    train_config_defaults(&c, kind);
    if (job->width) c.width = job->width;
    if (job->batch) c.batch = job->batch;
    c.threads = threads;
    c.residual = job->residual;
    c.attention = job->attention;
    c.device = job->device;
    progress_out(out, "BLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    if (job->sample && dist_size() > 1)
        return err_set("--sample times one process; run it without mpirun or with -np 1");
    if (job->sample) return bench_sample(out, &c, kind, job);
    double peak = job->profile ? sgemm_peak(threads) : 0;
    Trainer tr;
    if (trainer_init(&tr, &c) != 0) return -1;
    Rng rng;
    rng_seed(&rng, 42);
    float *imgs = xmalloc((size_t)c.batch * MNIST_PIXELS * sizeof(float));
    uint8_t *labels = xmalloc((size_t)c.batch);
    rng_fill_uniform(&rng, imgs, (size_t)c.batch * MNIST_PIXELS, 0.0f, 1.0f);
    for (int i = 0; i < c.batch; i++) labels[i] = (uint8_t)rng_below(&rng, 10);
    double *dt = xmalloc((size_t)steps * sizeof(double));
    double *comm = xmalloc((size_t)steps * sizeof(double));
    double *small = xmalloc((size_t)steps * sizeof(double));
    long calls = 0;
    char procs[48] = "";
    if (tr.ranks > 1) snprintf(procs, sizeof procs, "%d processes x ", tr.ranks);
    progress_out(out, "bench: %s model, width %d, batch %d, %s%d threads, %zu parameters, %.3g GFLOP per image per step (3x forward)\n",
                 unet_kind_name(kind), c.width, c.batch, procs, threads, tr.model.n_params, 6.0 * unet_forward_macs(&tr.model) / 1e9);
    for (int i = 0; i < warmup; i++) trainer_step(&tr, imgs, labels, c.batch);
    UnetProfile prof;
    memset(&prof, 0, sizeof prof);
    if (job->profile) tr.model.prof = &prof;
    for (int i = 0; i < steps; i++) {
        double t0 = now_seconds(), c0 = dist_comm_seconds(), s0 = dist_small_seconds();
        long k0 = dist_small_calls();
        trainer_step(&tr, imgs, labels, c.batch);
        dt[i] = now_seconds() - t0;
        comm[i] = dist_comm_seconds() - c0;
        small[i] = dist_small_seconds() - s0;
        calls = dist_small_calls() - k0;
        progress_out(out, "step %d: %.3f s, %.1f img/s\n", i + 1, dt[i], c.batch / dt[i]);
        progress_flush(out);
    }
    double med = median(dt, steps);
    double gflops = 6.0 * unet_forward_macs(&tr.model) * c.batch / med / 1e9;
    progress_out(out, "median step %.3f s, %.1f GFLOP/s; peak RSS %.0f MiB\n", med, gflops, peak_rss_mib());
    if (tr.ranks > 1) {
        /* time inside the collectives, waiting for the slowest process included */
        double cm = median(comm, steps), sm = median(small, steps);
        progress_out(out, "communication: median %.1f ms per step (%.1f%% of the step): %.1f ms "
                     "summing %.2f MB of gradients over %d processes, %.1f ms in %ld small sums "
                     "(BatchNorm statistics and the loss)\n", 1e3 * cm, 100.0 * cm / med,
                     1e3 * (cm - sm), 4e-6 * (double)tr.model.n_params, tr.ranks, 1e3 * sm, calls);
    }
    if (job->profile) {
        double mean = 0;
        for (int i = 0; i < steps; i++) mean += dt[i] / steps;
        tr.model.prof = NULL;
        print_profile(out, &tr.model, &prof, steps, c.batch, mean, peak, 0);
    }
    progress_out(out, "%.1f img/s\n", c.batch / med);
    xfree(dt);
    xfree(comm);
    xfree(small);
    xfree(imgs);
    xfree(labels);
    trainer_free(&tr);
    return 0;
}
