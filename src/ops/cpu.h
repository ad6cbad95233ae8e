/* Process-wide setup of the CPU backend (src/backend/cpu/cpu_backend.c), for programs that
 * call it at startup; ops_ctx_init also runs it for every context on the CPU backend. And
 * the check of its DDPM_CONV switch (conv_choice.c), for the program to report. */
#ifndef DDPM_OPS_CPU_H
#define DDPM_OPS_CPU_H

/* Make OpenBLAS single-threaded. Call once at startup, before the first operator. */
void ops_cpu_init(void);

/* The value of the environment variable DDPM_CONV when it is neither im2col nor auto (the CPU
 * convolutions then make their automatic choice, silently), else NULL. */
const char *ops_cpu_conv_ignored(void);

#endif
