/* The conversion of a pixel in [0, 1] to a gray level. */
#include "core/pixel.h"

#include <math.h>

uint8_t pixel_to_u8(float v) {
    float c = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint8_t)lrintf(c * 255.0f);
}
