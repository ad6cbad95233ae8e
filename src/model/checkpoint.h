/* Saving and loading a UNet as safetensors (names and layout in docs/WEIGHTS.md), with the
 * model kind, width, image geometry and options in the metadata so a file is
 * self-describing, and a sha256 of the contents (metadata ddpm.sha256) so a damaged file is
 * refused instead of half-loaded. */
#ifndef DDPM_CHECKPOINT_H
#define DDPM_CHECKPOINT_H

#include "data/geometry.h"
#include "io/safetensors.h"
#include "model/unet.h"

/* The metadata key of the integrity digest (see safetensors_verify_digest), and of the
 * format tag, whose presence makes the digest mandatory (a damaged digest key must not pass
 * for a file from another tool, which has neither). */
#define CHECKPOINT_DIGEST_KEY "ddpm.sha256"
#define CHECKPOINT_FORMAT_KEY "ddpm.format"
#define CHECKPOINT_WEIGHTS_FORMAT "ddpm-weights/1"
/* Inference-only weights (ddpm export: BatchNorm folded, maybe half precision); its metadata
 * CHECKPOINT_FOLDED_KEY = "1" says the file holds no BatchNorm tensors (model/fold.h). */
#define CHECKPOINT_INFERENCE_FORMAT "ddpm-inference/1"
#define CHECKPOINT_FOLDED_KEY "ddpm.folded"
/* An export's storage type ("f32", "f16", "bf16") and whether its weights are the moving
 * averages ("1") or the trained ones ("0"). */
#define CHECKPOINT_DTYPE_KEY "ddpm.dtype"
#define CHECKPOINT_EMA_KEY "ddpm.ema"

/* Write every tensor of m plus metadata: ddpm.kind, ddpm.width, ddpm.geometry (the
 * ImageGeom as JSON), the options that are set, the extra key/value pairs given (n_extra may
 * be 0), ddpm.format (ddpm-weights/1 unless given) and ddpm.sha256. Atomic. Returns 0 or -1
 * with err_msg(). */
int checkpoint_save(const Unet *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra);

/* As checkpoint_save, with more tensors after the model's (optimizer state, counters). */
int checkpoint_save_with(const Unet *m, const char *path, const StTensor *extra, int n_extra_t,
                         const char *const *keys, const char *const *values, int n_extra);

/* m's metadata (as checkpoint_save) over exactly the nt tensors given, in place of the
 * model's own: inference weights (ddpm export) are folded and in half precision. Returns 0
 * or -1 with err_msg(). */
int checkpoint_write(const Unet *m, const char *path, const StTensor *tensors, int nt,
                     const char *const *keys, const char *const *values, int n_extra);

/* Open and validate a safetensors file and check its ddpm.sha256 when it has one (files
 * written by other tools have none); require_digest makes a missing digest an error.
 * Returns 0 or -1 with err_msg() naming the file. */
int checkpoint_open(const char *path, StFile *f, int require_digest);
/* The same check on a file already parsed. Returns 0 or -1 with err_msg(). */
int checkpoint_verify(const StFile *f, int require_digest);

/* How checkpoint_load builds the model. */
typedef struct {
    int max_batch; /* activations for this many images per forward */
    int nthreads;
    int use_ema;   /* load the moving averages of the weights when the file holds them */
    const char *device; /* the backend that holds and runs the model; NULL: cpu */
} CheckpointLoadOptions;

/* Read kind, width, geometry and options from a checkpoint's metadata (files without
 * ddpm.geometry are MNIST's 1 x 28 x 28 with 10 classes), build a model for o, and load
 * every tensor (each must be present with the right shape and finite; the attention layers'
 * tensors also under their names before they were named by place). *used_ema (may be NULL)
 * says whether the moving averages were loaded. Returns 0 or -1 with err_msg() naming the
 * file. */
int checkpoint_load(Unet *m, int *used_ema, const char *path, const CheckpointLoadOptions *o);
/* The same from a file already opened and verified (checkpoint_open, or safetensors_parse
 * then checkpoint_verify for a buffer); f stays the caller's. */
int checkpoint_load_st(Unet *m, int *used_ema, const StFile *f, const CheckpointLoadOptions *o);

/* The image geometry in an opened checkpoint's metadata, MNIST's when it has none.
 * Returns 0, or -1 with err_msg(). */
int checkpoint_geometry(ImageGeom *g, const StFile *f);
/* The name under which f holds the tensor called name: name itself, or its name before
 * attention was named by place (unet_tensor_legacy_name, written into buf) when only that is
 * present; name when neither is, so that reading it fails with the usual message. */
const char *checkpoint_tensor_name(const StFile *f, const char *name, char *buf, size_t size);
/* Whether f holds folded weights (metadata ddpm.folded = 1). */
int checkpoint_is_folded(const StFile *f);
/* Whether an export's weights are the moving averages (CHECKPOINT_EMA_KEY "1"): such a file
 * holds them as its weights, not as "ema." tensors. */
int checkpoint_weights_are_ema(const StFile *f);
/* Read m's tensors (params and buffers) from an opened file; from folded weights, BatchNorm
 * is set to the identity (unet_bn_identity) instead. Returns 0 or -1 with err_msg(). */
int checkpoint_read_model(Unet *m, const StFile *f);

/* The moving averages of a model's tensors (ema: params then buffers, as Trainer.ema) as
 * tensors named "ema.NAME", for checkpoint_save_with; names holds m->n_tensors strings.
 * Returns m->n_tensors. */
int checkpoint_ema_tensors(const Unet *m, const float *ema, StTensor *out, char (*names)[64]);
/* Whether a file holds moving averages ("ema." tensors). */
int checkpoint_has_ema(const StFile *f);
/* Read the "ema." tensors into ema (params then buffers). Returns 0 or -1 with err_msg(). */
int checkpoint_read_ema(const Unet *m, float *ema, const StFile *f);

#endif
