/* libFuzzer harness for the CIFAR-10 batch reader (src/data/cifar.c): arbitrary bytes as one
 * batch file. A success must hold whole records with labels 0-9 and readable pixels; anything
 * else must be a clean error, never a crash, leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/cifar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile unsigned fuzz_cifar_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ImageSet s;
    memset(&s, 0, sizeof s);
    s.geom.channels = 3;
    s.geom.height = s.geom.width = CIFAR_SIDE;
    s.geom.classes = CIFAR_CLASSES;
    if (cifar_read_mem(&s, data, size, "fuzz") == 0) {
        if (s.n <= 0 || (size_t)s.n * CIFAR_RECORD != size) abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)s.n * 3072; i++) sum += s.pixels[i];
        for (int i = 0; i < s.n; i++)
            if (s.labels[i] >= CIFAR_CLASSES) abort();
        fuzz_cifar_sink = sum;
    } else if (s.n != 0 || s.pixels) {
        abort(); /* a failed read leaves the set as it was */
    }
    imageset_free(&s);
    return 0;
}
