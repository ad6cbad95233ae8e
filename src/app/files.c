/* Derived file names of the sampling jobs' outputs. */
#include "app/files.h"

#include <stdio.h>
#include <string.h>

void app_path_suffixed(char *dst, size_t cap, const char *path, const char *suffix) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path)
        snprintf(dst, cap, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
    else
        snprintf(dst, cap, "%s%s", path, suffix);
}
