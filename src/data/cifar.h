/* CIFAR-10 in its binary form: records of 1 label byte and 3072 pixel bytes (the 32x32 red
 * plane, then green, then blue), 10000 to a file: data_batch_1.bin .. data_batch_5.bin for
 * training, test_batch.bin for testing, and batches.meta.txt with the ten class names. */
#ifndef DDPM_CIFAR_H
#define DDPM_CIFAR_H

#include <stddef.h>

#include "data/imageset.h"

#define CIFAR_SIDE 32
#define CIFAR_CLASSES 10
#define CIFAR_RECORD (1 + 3 * CIFAR_SIDE * CIFAR_SIDE) /* 3073 bytes */
#define CIFAR_TRAIN_FILES 5

/* 1 when dir holds CIFAR-10's binary files (data_batch_1.bin or test_batch.bin), directly or
 * in the archive's folder cifar-10-batches-bin; 0 when not. */
int cifar_detect(const char *dir);

/* The training split (all five data_batch_N.bin, in order) or the test split
 * (test_batch.bin) from dir (or dir/cifar-10-batches-bin) as a 3 x 32 x 32 set of ten
 * classes, named from batches.meta.txt when it is there, else airplane, automobile, bird,
 * cat, deer, dog, frog, horse, ship, truck. A missing file, a length that is not a whole
 * number of records, a label over 9 or a names file that does not hold ten names is one
 * sentence naming the file. Returns 0, or -1 with err_msg(). */
int cifar_load(ImageSet *out, const char *dir, int train);

/* The records of one batch file held in memory (the fuzzer's entry point): appended to out,
 * which must be a 3 x 32 x 32 set (its n grows; an empty set with pixels NULL is fine).
 * name appears in the messages. Returns 0, or -1 with err_msg(). */
int cifar_read_mem(ImageSet *out, const unsigned char *buf, size_t size, const char *name);

#endif
