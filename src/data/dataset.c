/* The image sets a run can train on: their names, data directories and class names. */
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/mnist.h"

int dataset_parse(const char *s, Dataset *d) {
    if (strcmp(s, "mnist") == 0) *d = DATASET_MNIST;
    else if (strcmp(s, "fashion") == 0) *d = DATASET_FASHION;
    else return err_set("unknown dataset '%s' (expected mnist or fashion)", s);
    return 0;
}

const char *dataset_name(Dataset d) { return d == DATASET_FASHION ? "fashion" : "mnist"; }

const char *dataset_dir(const char *option, Dataset d) {
    if (d == DATASET_MNIST) return mnist_data_dir(option);
    if (option && *option) return option;
    const char *env = getenv("DDPM_FASHION_DATA");
    if (env && *env) return env;
    return "/usr/share/datasets/fashion-mnist";
}

const char *const *dataset_class_names(Dataset d) {
    static const char *const digits[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    static const char *const fashion[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Boot"};
    return d == DATASET_FASHION ? fashion : digits;
}
