/* Gray pixels from the data scale (floats, 0 black .. 1 white) to bytes (0..255). */
#ifndef DDPM_PIXEL_H
#define DDPM_PIXEL_H

#include <stdint.h>

/* Clamp to [0, 1], scale by 255 and round (lrintf). */
uint8_t pixel_to_u8(float v);

#endif
