/* ddpm data export: an IDX data set (MNIST, or Fashion-MNIST in the same files) written out as
 * folders of PNG files, one folder per class, that the folder loader reads back. */
#ifndef DDPM_DATA_EXPORT_H
#define DDPM_DATA_EXPORT_H

#include "core/progress.h"

/* Write the training and test splits found in idx_dir as out_dir/train/D/NNNNN.png and
 * out_dir/test/D/NNNNN.png (D the label 0..9, NNNNN the image's index in its split, so a
 * class folder read in name order keeps the IDX order); limit > 0 writes only the first limit
 * images of each split. Each PNG is the 28x28 grey image's bytes as they are. Counts of the
 * stage "exporting" and a closing line on p. Returns 0, or -1 with err_msg(). */
int data_export_png(const char *out_dir, const char *idx_dir, int limit, const Progress *p);

#endif
