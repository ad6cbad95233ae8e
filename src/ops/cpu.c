/* CPU backend setup: OpenBLAS runs single-threaded because every operator parallelises
 * itself with OpenMP and calls BLAS from inside its threads (nested BLAS threads would
 * oversubscribe the cores and make timings erratic). */
#include "ops/cpu.h"

#include <cblas.h>

void ops_cpu_init(void) { openblas_set_num_threads(1); }
