/* libFuzzer harness for the IDX reader (src/data/idx.c): arbitrary bytes, plain or gzip, read
 * with any shape and with MNIST's image shape. A success must describe exactly the bytes it
 * returns; anything else must be a clean error, never a crash, leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>

#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile unsigned fuzz_idx_sink; /* keeps the read of every byte below from being optimised out */

static void check(const IdxArray *a) {
    size_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->dims[i];
    if (a->ndim < 1 || a->ndim > IDX_MAX_DIMS || n != a->count || (n > 0 && !a->data)) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < a->count; i++) sum += a->data[i]; /* every byte must be readable */
    fuzz_idx_sink = sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    IdxArray a;
    if (idx_read_mem(data, size, "fuzz", &a, 0, NULL) == 0) {
        check(&a);
        idx_free(&a);
    }
    static const uint32_t images[3] = {0, 28, 28};
    if (idx_read_mem(data, size, "fuzz", &a, 3, images) == 0) {
        check(&a);
        if (a.dims[1] != 28 || a.dims[2] != 28) abort();
        idx_free(&a);
    }
    return 0;
}
