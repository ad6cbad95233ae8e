/* The DDPM_CONV switch that both the Winograd paths (winograd.c, winograd_up.c) and the
 * choice in conv.c read: below all three, so that they need not call each other for it.
 * A value it does not know is treated as auto without a word; ops_cpu_conv_ignored lets the
 * program say so. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/winograd.h"
#include "ops/cpu.h"

const char *ops_cpu_conv_ignored(void) {
    const char *e = getenv("DDPM_CONV");
    return e && *e && strcmp(e, "im2col") != 0 && strcmp(e, "auto") != 0 ? e : NULL;
}

/* DDPM_CONV, read once: 1 = im2col everywhere, 0 = automatic choice. */
int conv_im2col_forced(void) {
    static atomic_int mode = -1;
    int m = atomic_load_explicit(&mode, memory_order_acquire);
    if (m >= 0) return m;
    const char *e = getenv("DDPM_CONV");
    m = e && strcmp(e, "im2col") == 0;
    int expected = -1;
    atomic_compare_exchange_strong(&mode, &expected, m);
    return atomic_load(&mode);
}
