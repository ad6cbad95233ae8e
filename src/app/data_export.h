/* ddpm data export: an IDX data set (MNIST, or Fashion-MNIST in the same files) written out as
 * folders of PNG files, one folder per class, that the folder loader reads back. */
#ifndef DDPM_DATA_EXPORT_H
#define DDPM_DATA_EXPORT_H

#include <stdint.h>

#include "core/progress.h"

typedef struct {
    int limit; /* > 0: only the first limit images of each split */
    int pad;   /* 0, or the side S >= 28 of the image each digit is centred in (zeros around) */
    int tint;  /* 1: RGB, each class drawn in its own colour (data_export_tint) */
} DataExportOptions;

/* The colour of class k (0..9) with tint: hue k x 36 degrees at saturation 0.75 and full
 * value, so one channel of every tint is 255 and the maximum over a tinted pixel's channels
 * is the grey level it was made from. */
void data_export_tint(uint8_t rgb[3], int k);

/* Write the training and test splits found in idx_dir as out_dir/train/D/NNNNN.png and
 * out_dir/test/D/NNNNN.png (D the label 0..9, NNNNN the image's index in its split, so a
 * class folder read in name order keeps the IDX order). Each PNG is the 28x28 grey image's
 * bytes as they are, or with o->pad / o->tint padded and tinted (grey v becomes
 * round(v x tint / 255) in each channel). Counts of the stage "exporting" and a closing
 * line on p. Returns 0, or -1 with err_msg(). */
int data_export_png(const char *out_dir, const char *idx_dir, const DataExportOptions *o,
                    const Progress *p);

#endif
