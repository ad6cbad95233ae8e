/* libFuzzer harness for one image file through the folder loader (src/data/imagefile.c and
 * folder.c): arbitrary bytes decoded as PNG or JPEG, then cropped and resized as a folder's
 * image is, to 8x8 and to the automatic size. A success must give readable pixels of the
 * stated size; anything else must be a clean error, never a crash, leak or undefined
 * behaviour. */
#include <stdint.h>
#include <stdlib.h>

#include "core/common.h"
#include "data/folder.h"
#include "data/imagefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Images of up to 256x256: larger ones run the same code, only slower (a 4 KB input can
 * claim millions of pixels), and the refusal of too many pixels is reached all the same. */
#define FUZZ_MAX_PIXELS ((uint64_t)1 << 16)

volatile unsigned fuzz_imagefile_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    DecodedImage im;
    if (imagefile_decode(&im, data, size, "fuzz", FUZZ_MAX_PIXELS) != 0) {
        if (im.pixels) abort();
        return 0;
    }
    if (im.width <= 0 || im.height <= 0 || (im.channels != 1 && im.channels != 3)) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)im.width * im.height * im.channels; i++) sum += im.pixels[i];
    const int sizes[2] = {8, folder_auto_size(&im)};
    for (int k = 0; k < 2; k++) {
        uint8_t *slot = xmalloc((size_t)sizes[k] * sizes[k] * im.channels);
        if (folder_place(slot, &im, sizes[k], "fuzz") == 0)
            for (size_t i = 0; i < (size_t)sizes[k] * sizes[k] * im.channels; i++)
                sum += slot[i];
        xfree(slot);
    }
    fuzz_imagefile_sink = sum;
    imagefile_free(&im);
    return 0;
}
