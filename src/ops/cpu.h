/* Process-wide setup of the CPU backend (src/backend/cpu/cpu_backend.c), for programs that
 * call it at startup; ops_ctx_init also runs it for every context on the CPU backend. */
#ifndef DDPM_OPS_CPU_H
#define DDPM_OPS_CPU_H

/* Make OpenBLAS single-threaded. Call once at startup, before the first operator. */
void ops_cpu_init(void);

#endif
