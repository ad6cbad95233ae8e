/* safetensors: the weights format (an 8-byte little-endian header length, a JSON header
 * mapping names to dtype, shape and byte offsets, then the raw little-endian data).
 * Reading validates everything: header size cap, JSON, dtypes, shapes, offsets inside the
 * file, no overlap, no integer overflow. */
#ifndef DDPM_SAFETENSORS_H
#define DDPM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

/* F16 is IEEE 754 binary16, BF16 the upper half of a float32 (bfloat16): ddpm export stores
 * weights in them, and safetensors_read_f32 widens them to float. */
typedef enum { ST_F32 = 0, ST_I64, ST_U8, ST_F16, ST_BF16 } StDtype;

/* The dtype's name in the header ("F32", "I64", "U8", "F16", "BF16") and bytes per element. */
const char *safetensors_dtype_name(StDtype d);
size_t safetensors_dtype_size(StDtype d);

/* float <-> half-precision bits, rounding to nearest with ties to even: subnormals kept
 * (F16's smallest is 2^-24), values past the largest finite one (65504 for F16) become
 * infinities of their sign, and NaN stays a (quiet) NaN. Widening is exact. */
uint16_t safetensors_f32_to_f16(float x);
float safetensors_f16_to_f32(uint16_t h);
uint16_t safetensors_f32_to_bf16(float x);
float safetensors_bf16_to_f32(uint16_t h);

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
/* Copy a float tensor into dst as float32 after checking that it exists and has exactly this
 * shape: F32 as it is, F16 and BF16 widened (exactly). Returns 0 or -1 with err_msg(). */
int safetensors_read_f32(const StFile *f, const char *name, float *dst, int ndim,
                         const int64_t *shape);
/* Copy a tensor of any dtype into dst (e->bytes bytes) after checking dtype and shape.
 * Returns 0 or -1 with err_msg(). */
int safetensors_read(const StFile *f, const char *name, StDtype dtype, void *dst, int ndim,
                     const int64_t *shape);
/* Pointer to the raw bytes of an entry (little-endian), or NULL. */
const void *safetensors_data(const StFile *f, const StEntry *e);
/* Metadata value or NULL. */
const char *safetensors_meta(const StFile *f, const char *key);

/* Integrity check. The digest is a sha256, as 64 lower-case hex digits, over every tensor in
 * header order (its name, NUL, dtype name, NUL, its dims in decimal joined by ',', NUL, then
 * its bytes) followed by every other metadata pair in header order (key, NUL, value, NUL).
 * It therefore covers the data, the tensor table and the metadata, everything but the
 * layout of the data section, which the reader checks on its own. */
#define ST_DIGEST_HEX_LEN 64

/* As safetensors_write, with the digest stored as one more metadata value under
 * digest_key (appended after the others). */
int safetensors_write_digest(const char *path, const StTensor *tensors, int n,
                             const char *const *meta_keys, const char *const *meta_values,
                             int n_meta, const char *digest_key);
/* Recompute the digest of an opened file and compare it with the value under digest_key.
 * Returns 0 when it matches, 1 when the file has no such key, -1 with err_msg() when it
 * differs or is malformed (the file was damaged or edited). */
int safetensors_verify_digest(const StFile *f, const char *digest_key);

#endif
