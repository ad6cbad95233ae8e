/* libFuzzer harness for the run configuration parser (train_config_from_json in
 * src/train/config.c), which --resume trusts: any text gives a configuration inside the
 * command line's ranges, or a clean error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    TrainConfig c;
    char dir[64];
    if (train_config_from_json(text, "fuzz", &c, dir, sizeof dir) == 0) {
        if (c.width < 1 || c.width > 1024 || c.batch < 1 || c.batch > 65536 || c.epochs < 1 ||
            c.epochs > 100000 || c.threads < 1 || c.threads > 1024 || c.subset < 0 ||
            c.n_fig_epochs < 0 || c.n_fig_epochs > TRAIN_MAX_FIG_EPOCHS || !(c.lr > 0) ||
            !(c.lr_end > 0) || c.T < 1 || c.beta_start > c.beta_end || strlen(dir) >= sizeof dir)
            abort();
    }
    free(text);
    return 0;
}
