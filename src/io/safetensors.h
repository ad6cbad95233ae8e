/* safetensors: the weights format (an 8-byte little-endian header length, a JSON header
 * mapping names to dtype, shape and byte offsets, then the raw little-endian data).
 * Reading validates everything: header size cap, JSON, dtypes, shapes, offsets inside the
 * file, no overlap, no integer overflow. */
#ifndef DDPM_SAFETENSORS_H
#define DDPM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum { ST_F32 = 0, ST_I64, ST_U8 } StDtype;

/* A tensor to write. */
typedef struct {
    const char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} StTensor;

/* Write tensors (in the given order) with optional string metadata (n_meta key/value
 * pairs, may be 0), atomically. Returns 0 or -1 with err_msg(). */
int safetensors_write(const char *path, const StTensor *tensors, int n,
                      const char *const *meta_keys, const char *const *meta_values, int n_meta);

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t offset, bytes; /* into the data section */
} StEntry;

typedef struct {
    char *path;
    unsigned char *buf; /* the whole file */
    size_t size;
    size_t data_start;
    StEntry *entries;
    int n;
    char **meta_keys, **meta_values;
    int n_meta;
} StFile;

/* Read and validate a file. Returns 0 or -1 with err_msg() naming the file and problem. */
int safetensors_open(const char *path, StFile *f);
/* Same on a memory buffer (used by the fuzzer); the buffer is copied. */
int safetensors_parse(const unsigned char *buf, size_t size, const char *name, StFile *f);
void safetensors_close(StFile *f);
const StEntry *safetensors_find(const StFile *f, const char *name);
/* Copy a float32 tensor into dst after checking that it exists and has exactly this shape.
 * Returns 0 or -1 with err_msg(). */
int safetensors_read_f32(const StFile *f, const char *name, float *dst, int ndim,
                         const int64_t *shape);
/* Pointer to the raw bytes of an entry (little-endian), or NULL. */
const void *safetensors_data(const StFile *f, const StEntry *e);
/* Metadata value or NULL. */
const char *safetensors_meta(const StFile *f, const char *key);

#endif
