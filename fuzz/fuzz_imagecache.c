/* libFuzzer harness for the decoded-image cache reader (src/data/imagecache.c): arbitrary
 * bytes as a cache file, with any key and with a fixed one. A hit must describe exactly the
 * images it returns (a checked geometry, labels within the classes); anything else must be a
 * miss or a clean error, never a crash, leak or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/imagecache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile unsigned fuzz_imagecache_sink;

static void check(const ImageSet *s) {
    if (geometry_check(&s->geom) || s->n <= 0 || !s->pixels) abort();
    if ((s->geom.classes > 0) != (s->labels != NULL)) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)s->n * geometry_pixels(&s->geom); i++) sum += s->pixels[i];
    for (int i = 0; s->labels && i < s->n; i++)
        if (s->labels[i] >= s->geom.classes) abort();
    fuzz_imagecache_sink = sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ImageSet s;
    char key[IMAGECACHE_KEY_LEN + 1];
    if (imagecache_read_mem(&s, key, data, size, "fuzz", NULL) == IMAGECACHE_HIT) {
        if (strlen(key) != IMAGECACHE_KEY_LEN) abort();
        check(&s);
        imageset_free(&s);
    } else if (s.pixels) {
        abort();
    }
    static const char fixed[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    if (imagecache_read_mem(&s, NULL, data, size, "fuzz", fixed) == IMAGECACHE_HIT) {
        check(&s);
        imageset_free(&s);
    }
    return 0;
}
