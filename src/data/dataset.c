/* The image sets a run can train on: their names, data directories and class names. */
#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/mnist.h"

int dataset_parse(const char *s, Dataset *d) {
    if (strcmp(s, "mnist") == 0) *d = DATASET_MNIST;
    else if (strcmp(s, "fashion") == 0) *d = DATASET_FASHION;
    else if (strcmp(s, "cifar10") == 0) *d = DATASET_CIFAR10;
    else if (strcmp(s, "folder") == 0) *d = DATASET_FOLDER;
    else return err_set("unknown dataset '%.40s' (expected mnist, fashion, cifar10 or folder)", s);
    return 0;
}

const char *dataset_name(Dataset d) {
    static const char *const names[] = {"mnist", "fashion", "cifar10", "folder"};
    return d >= DATASET_MNIST && d <= DATASET_FOLDER ? names[d] : "mnist";
}

const char *dataset_dir(const char *option, Dataset d) {
    if (d == DATASET_MNIST) return mnist_data_dir(option);
    if (option && *option) return option;
    if (d == DATASET_CIFAR10) return "./data/cifar10";
    if (d == DATASET_FOLDER) return ".";
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
