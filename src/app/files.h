/* Files the sampling jobs write beside their PNG grids: names derived from the one given
 * ("a/b.idx" -> "a/b-labels.idx", "a/b.png" -> "a/b-g2.png") and samples as IDX files. */
#ifndef DDPM_APP_FILES_H
#define DDPM_APP_FILES_H

#include <stddef.h>

/* path with suffix inserted before its extension (appended when it has none). */
void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix);

/* The labels file beside an IDX file of images: suffix "-labels". */
void app_labels_path(char *dst, size_t cap, const char *path);

/* images (n, 28, 28) as an IDX file of bytes and, when labels is not NULL, the labels (n)
 * beside it (app_labels_path). Returns 0 or -1 with err_msg(). */
int app_write_idx(const char *path, const float *imgs, const int *labels, int n);

#endif
