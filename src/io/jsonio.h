/* JSON files through cJSON: atomic save of a document. */
#ifndef DDPM_JSONIO_H
#define DDPM_JSONIO_H

#include <cjson/cJSON.h>

/* Print doc (formatted) and write it atomically. Returns 0 or -1 with err_msg(). */
int json_save(const char *path, const cJSON *doc);

#endif
