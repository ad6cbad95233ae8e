/* Setup of the CPU backend: all parallelism of the operators is ours (OpenMP across the
 * batch, the channels or the elements), so the BLAS library must not start threads of its
 * own inside our parallel regions. */
#ifndef DDPM_OPS_CPU_H
#define DDPM_OPS_CPU_H

#include <stddef.h>
#include <stdint.h>

/* Make OpenBLAS single-threaded. Call once at startup, before the first operator. */
void ops_cpu_init(void);

/* Helpers the operators share. */
/* n rounded up to a multiple of 16 floats (64 bytes, a cache line). */
static inline size_t round16(size_t n) { return (n + 15) / 16 * 16; }
/* Slice t of nt of a batch of n: [*n0, *n1), balanced and fixed by nt (so results that sum
 * per-slice partials in slice order are bit-identical for a fixed thread count). */
static inline void slice_of(int n, int nt, int t, int *n0, int *n1) {
    *n0 = (int)((int64_t)n * t / nt);
    *n1 = (int)((int64_t)n * (t + 1) / nt);
}

#endif
