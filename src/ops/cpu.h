/* Setup of the CPU backend: all parallelism of the operators is ours (OpenMP across the
 * batch, the channels or the elements), so the BLAS library must not start threads of its
 * own inside our parallel regions. */
#ifndef DDPM_OPS_CPU_H
#define DDPM_OPS_CPU_H

/* Make OpenBLAS single-threaded. Call once at startup, before the first operator. */
void ops_cpu_init(void);

#endif
