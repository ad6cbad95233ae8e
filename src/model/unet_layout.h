/* Private to the UNet's two files: the indices of its units, FCBlocks, residual blocks and
 * attention layers, which unet_layout.c lays out and unet_pass.c's forward and backward walk. */
#ifndef DDPM_UNET_LAYOUT_H
#define DDPM_UNET_LAYOUT_H

#include "model/unet.h"

enum { U_ENC0_0, U_ENC0_1, U_DOWN1_0, U_DOWN1_1, U_DOWN1_2, U_DOWN2_0, U_DOWN2_1, U_DOWN2_2,
       U_UNFLAT, U_UP1_0, U_UP1_1, U_UP1_2, U_UP2_0, U_UP2_1, U_UP2_2, U_DEC_0, U_DEC_1 };
enum { FC_T1, FC_T2, FC_C1, FC_C2 };
/* The residual ConvBlocks: units RES_FIRST[r] and RES_FIRST[r] + 1, after the sampling unit
 * RES_FIRST[r] - 1, whose output is the block's input. */
enum { RES_DOWN1, RES_DOWN2, RES_UP1, RES_UP2 };
extern const int UNET_RES_FIRST[UNET_NUM_RES];
/* The attention layers, by index into Unet.attn (bit 1 << index of the mask). */
enum { ATTN_DOWN2, ATTN_UP1 };

/* The convolution shape of a unit, and of the plain output conv, for a batch of n. */
ConvShape unet_unit_shape(const UnetUnit *u, int n);
ConvShape unet_out_shape(const Unet *m, int n);

#endif
