/* OpenMP's runtime calls for the web build, which has one thread and no OpenMP (the pragmas
 * are ignored without -fopenmp): every parallel region is the one thread 0 of 1. */
#ifndef DDPM_WEB_OMP_H
#define DDPM_WEB_OMP_H

static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_max_threads(void) { return 1; }

#endif
