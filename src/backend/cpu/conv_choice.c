/* The DDPM_CONV switch that both the Winograd paths (winograd.c, winograd_up.c) and the
 * choice in conv.c read: below all three, so that they need not call each other for it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/winograd.h"

/* DDPM_CONV, read once: 1 = im2col everywhere, 0 = automatic choice. */
int conv_im2col_forced(void) {
    static atomic_int mode = -1;
    int m = atomic_load_explicit(&mode, memory_order_acquire);
    if (m >= 0) return m;
    const char *e = getenv("DDPM_CONV");
    int bad = e && *e && strcmp(e, "im2col") != 0 && strcmp(e, "auto") != 0;
    m = e && strcmp(e, "im2col") == 0;
    int expected = -1;
    if (atomic_compare_exchange_strong(&mode, &expected, m) && bad)
        fprintf(stderr, "ddpm: ignoring DDPM_CONV=%s (expected im2col or auto)\n", e);
    return atomic_load(&mode);
}
