/* The run's processes over MPI, or one process without it. MPI is only initialised when a
 * launcher started the process, so a plain `ddpm train` never pays for it (nor needs the
 * launcher's daemon). A watchdog thread turns a collective that never completes (a peer that
 * died without the launcher noticing, a cut link) into one line and an exit. */
#define _POSIX_C_SOURCE 200809L
#include "core/dist.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

#ifdef DDPM_MPI
#include <mpi.h>
#include <pthread.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 1;
static double g_comm_seconds = 0.0, g_small_seconds = 0.0;
static long g_small_calls = 0;

/* The world size an MPI launcher announced in the environment, 0 when none did. */
static int launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                       "MPI_LOCALNRANKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local; }
double dist_comm_seconds(void) { return g_comm_seconds; }
double dist_small_seconds(void) { return g_small_seconds; }
long dist_small_calls(void) { return g_small_calls; }

#ifndef DDPM_MPI

int dist_built(void) { return 0; }

int dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    int n = launcher_size();
    if (n > 1)
        return err_set("started as one of %d processes by an MPI launcher, but this ddpm was "
                       "built without MPI (install libopenmpi-dev and rebuild with make MPI=1)", n);
    return 0;
}

void dist_finalize(void) {}
void dist_sum_floats(float *v, size_t n) { (void)v, (void)n; }
void dist_sum_doubles(double *v, int n) { (void)v, (void)n; }
void dist_broadcast(void *v, size_t bytes) { (void)v, (void)bytes; }
void dist_barrier(void) {}
void dist_note_stop(void) {}

#else

/* Monotonic nanoseconds at which this process entered the collective it is in; 0: none. */
static atomic_llong g_in_since;
static atomic_int g_stopping;
static int g_joined = 0;
static double g_timeout = 300.0;

int dist_built(void) { return 1; }

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dist_note_stop(void) { atomic_store(&g_stopping, 1); }

/* Seconds a collective may take before the watchdog gives up: DDPM_COMM_TIMEOUT, 300 by
 * default, and 10 once a stop was requested (the launcher stops every process at once, so
 * the peers answer within a step unless they are gone). */
static void *watchdog(void *arg) {
    (void)arg;
    const struct timespec tick = {0, 100000000};
    for (;;) {
        nanosleep(&tick, NULL);
        long long since = atomic_load(&g_in_since);
        if (!since) continue;
        double waited = mono_seconds() - 1e-9 * (double)since;
        double limit = atomic_load(&g_stopping) && g_timeout > 10.0 ? 10.0 : g_timeout;
        if (waited < limit) continue;
        char msg[256];
        int len = snprintf(msg, sizeof msg, "ddpm: rank %d: no answer from the other processes "
                           "for %.0f s (one has died or hung); stopping; the last checkpoint is "
                           "intact\n", g_rank, waited);
        ssize_t w = write(STDERR_FILENO, msg, (size_t)len);
        (void)w;
        _exit(1);
    }
    return NULL;
}

static double coll_enter(void) {
    double t = mono_seconds();
    atomic_store(&g_in_since, (long long)(t * 1e9));
    return t;
}

/* the seconds since t0, added to the total */
static double coll_leave(double t0) {
    atomic_store(&g_in_since, 0);
    double dt = mono_seconds() - t0;
    g_comm_seconds += dt;
    return dt;
}

int dist_init(int *argc, char ***argv) {
    if (launcher_size() == 0) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err_set("MPI_Init failed");
    g_joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &g_local);
    MPI_Comm_free(&local);
    const char *t = getenv("DDPM_COMM_TIMEOUT");
    if (t && atof(t) > 0) g_timeout = atof(t);
    if (g_size > 1) {
        pthread_t th;
        if (pthread_create(&th, NULL, watchdog, NULL) == 0) pthread_detach(th);
    }
    return 0;
}

void dist_finalize(void) {
    if (g_joined) MPI_Finalize();
    g_joined = 0;
}

void dist_sum_floats(float *v, size_t n) {
    if (g_size == 1) return;
    double t0 = coll_enter();
    /* MPI counts are int: large arrays go in chunks */
    for (size_t off = 0; off < n;) {
        int c = n - off > (size_t)1 << 30 ? 1 << 30 : (int)(n - off);
        MPI_Allreduce(MPI_IN_PLACE, v + off, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        off += (size_t)c;
    }
    coll_leave(t0);
}

void dist_sum_doubles(double *v, int n) {
    if (g_size == 1) return;
    double t0 = coll_enter();
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    g_small_seconds += coll_leave(t0);
    g_small_calls++;
}

void dist_broadcast(void *v, size_t bytes) {
    if (g_size == 1) return;
    double t0 = coll_enter();
    for (size_t off = 0; off < bytes;) {
        int c = bytes - off > (size_t)1 << 30 ? 1 << 30 : (int)(bytes - off);
        MPI_Bcast((char *)v + off, c, MPI_BYTE, 0, MPI_COMM_WORLD);
        off += (size_t)c;
    }
    coll_leave(t0);
}

void dist_barrier(void) {
    if (g_size == 1) return;
    double t0 = coll_enter();
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    const struct timespec ms = {0, 1000000};
    for (int done = 0;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) break;
        nanosleep(&ms, NULL);
    }
    coll_leave(t0);
}

#endif

void dist_sum_across(void *arg, double *v, int n) {
    (void)arg;
    dist_sum_doubles(v, n);
}
