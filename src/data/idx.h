/* IDX files (the MNIST container format), gzip-compressed or plain: reading with full
 * validation, and writing unsigned-byte arrays so other tools can read our samples. */
#ifndef DDPM_IDX_H
#define DDPM_IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_MAX_DIMS 4

typedef struct {
    int ndim;                    /* 1..IDX_MAX_DIMS */
    uint32_t dims[IDX_MAX_DIMS]; /* dims[0] is the item count */
    size_t count;                /* product of dims */
    uint8_t *data;               /* count bytes (only unsigned-byte IDX, type 0x08) */
} IdxArray;

/* Read an IDX file of unsigned bytes; gzip is detected from the file's first bytes.
 * Checks the magic number, type, dimensions, size caps and truncation (and trailing data).
 * Returns 0, or -1 with err_msg() naming the file and the problem. */
int idx_read(const char *path, IdxArray *out);
/* As idx_read, and also require ndim dimensions; dims_expect[i] == 0 means "any". */
int idx_read_expect(const char *path, IdxArray *out, int ndim, const uint32_t *dims_expect);
/* The same checks on a file held in memory (the fuzzer's entry point); ndim 0 accepts any
 * number of dimensions. name appears in the messages. */
int idx_read_mem(const unsigned char *buf, size_t size, const char *name, IdxArray *out, int ndim,
                 const uint32_t *dims_expect);
void idx_free(IdxArray *a);

/* Write count = prod(dims) bytes as a plain (uncompressed) IDX file, atomically
 * (temporary file, flush, fsync, rename). Returns 0 or -1 with err_msg(). */
int idx_write_u8(const char *path, const uint8_t *data, int ndim, const uint32_t *dims);

/* Images (n, h, w) in the data scale as gray levels (core/pixel.h's rounding) to path, and
 * when labels is not NULL, labels (n, each 0..255) to idx_labels_path(path). Returns 0 or -1
 * with err_msg(). */
int idx_write_images(const char *path, const float *imgs, const int *labels, int n, int h, int w);
/* Where the labels of the images in path go: "a/b.idx" -> "a/b-labels.idx", a name without
 * an extension gets "-labels" appended. Allocated (xfree). */
char *idx_labels_path(const char *path);

#endif
