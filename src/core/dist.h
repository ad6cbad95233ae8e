/* The processes of a data-parallel run: MPI when ddpm is built with it (make MPI=1, the default
 * where mpicc is installed) and started by an MPI launcher (mpirun, srun); otherwise one process
 * of rank 0, and every call below is a no-op. The world is the process's, so this is the one
 * module with process-wide state; only the training run and its benchmark use it. */
#ifndef DDPM_DIST_H
#define DDPM_DIST_H

#include <stddef.h>

/* Joins the run when an MPI launcher started this process. Returns 0, or -1 with err_set when
 * a launcher started several processes but this build has no MPI (each would train alone). */
int dist_init(int *argc, char ***argv);
/* Leaves the run (MPI_Finalize); a no-op without one. */
void dist_finalize(void);

int dist_rank(void);       /* 0 .. dist_size() - 1 */
int dist_size(void);       /* processes in the run; 1 without MPI */
int dist_local_size(void); /* processes of the run on this machine */
int dist_built(void);      /* 1 when this build has MPI */

/* Collectives: every process calls them in the same order with the same n. In place. */
void dist_sum_floats(float *v, size_t n);
void dist_sum_doubles(double *v, int n);
/* v of rank 0 to every process. */
void dist_broadcast(void *v, size_t bytes);
/* Waits for every process without spinning on a core (rank 0 may be writing figures). */
void dist_barrier(void);

/* The callback of OpsCtx.sum_across (synchronised BatchNorm): dist_sum_doubles. */
void dist_sum_across(void *arg, double *v, int n);

/* Seconds this process has spent inside the collectives above since dist_init (waiting for
 * the slowest process included), and the part of it in dist_sum_doubles (the small sums:
 * BatchNorm's statistics and the loss) with the number of those calls. */
double dist_comm_seconds(void);
double dist_small_seconds(void);
long dist_small_calls(void);

/* From a signal handler (async-signal-safe): a stop was requested. A process then stuck in a
 * collective for longer than a few seconds (its peers are gone) says so and exits. */
void dist_note_stop(void);

#endif
