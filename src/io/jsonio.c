/* Atomic JSON output. */
#include "io/jsonio.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/fileio.h"

int json_save(const char *path, const cJSON *doc) {
    char *text = cJSON_Print(doc);
    if (!text) return err_set("%s: could not format JSON (out of memory)", path);
    AtomicFile af;
    int rc = atomic_open(&af, path);
    if (rc == 0) {
        /* a trailing newline makes the file friendlier to shell tools */
        if (atomic_write(&af, text, strlen(text)) != 0 || atomic_write(&af, "\n", 1) != 0) {
            atomic_abort(&af);
            rc = -1;
        } else {
            rc = atomic_commit(&af);
        }
    }
    free(text);
    return rc;
}
