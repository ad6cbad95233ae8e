/* Names of the files the sampling jobs write beside their PNG grids, derived from the one
 * given ("a/b.png" -> "a/b-g2.png"). */
#ifndef DDPM_APP_FILES_H
#define DDPM_APP_FILES_H

#include <stddef.h>

/* path with suffix inserted before its extension (appended when it has none). */
void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix);

#endif
