/* ddpm.h: the public C API of libddpm, the diffusion models of the `ddpm` program
 * (https: see README.md), as a library to embed in a C or C++ program.
 *
 * WHAT IT DOES
 *   Opens weights written by `ddpm train` (model.safetensors, checkpoint.safetensors) or
 *   by `ddpm export` (inference-only, half precision), says what they hold, and draws
 *   images from them: a time model draws any image of its data set, a class model an image
 *   of a requested class (a digit for MNIST), with classifier-free guidance; a denoiser
 *   cleans noisy images. Training and evaluation stay in the `ddpm` program.
 *
 * BUILD AND LINK
 *   make install PREFIX=/usr/local     (or a package of your distribution), then
 *   cc prog.c $(pkg-config --cflags --libs ddpm)
 *   The library links OpenBLAS, zlib, libpng and cJSON; pkg-config names them.
 *
 * A WHOLE PROGRAM (examples/digits.c is this, writing a PNG)
 *
 *   ddpm_model *m;
 *   if (ddpm_open("class.safetensors", NULL, &m) != DDPM_OK) {
 *       fprintf(stderr, "%s\n", ddpm_last_error());
 *       return 1;
 *   }
 *   ddpm_info info;
 *   ddpm_describe(m, &info);                       // kind, geometry, classes, schedule
 *   int labels[3] = {2, 0, 7};
 *   float *img = malloc(sizeof(float) * 3 * info.channels * info.height * info.width);
 *   ddpm_sample_params p;
 *   ddpm_sample_params_init(&p);                   // DDPM over all T steps, seed 1, 1 thread
 *   p.n = 3; p.labels = labels; p.guidance = 2.0f;
 *   p.sampler = "dpmpp2m"; p.steps = 20;           // 20 network passes instead of 300
 *   if (ddpm_sample(m, &p, img) != DDPM_OK) fprintf(stderr, "%s\n", ddpm_last_error());
 *   ddpm_write_png("digits.png", img, 3, 3, &info);  // one row of three
 *   free(img);
 *   ddpm_close(m);
 *
 * CONVENTIONS
 *   - Every function that can fail returns a ddpm_status; DDPM_OK is 0. On failure,
 *     ddpm_last_error() returns one sentence saying what went wrong (the file, the tensor,
 *     the option). Nothing prints, nothing exits, nothing aborts on bad input.
 *   - Images are float arrays of n x channels x height x width (planar, row-major), values
 *     in the data scale of training: 0 black .. 1 white for MNIST; samples are not clamped
 *     (ddpm_write_png clamps).
 *   - A handle owns its weights, its activations and its thread count. Two handles may be
 *     used at the same time from two threads; one handle must not be used by two threads
 *     at once. ddpm_last_error() is per thread. There is no other global state.
 *   - Results are deterministic: the same weights, parameters and seed give the same bytes,
 *     whatever else runs in the process; the thread count may change the last bits.
 */
#ifndef DDPM_H
#define DDPM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's exported functions (the shared library hides everything else). */
#if defined(__GNUC__) || defined(__clang__)
#define DDPM_API __attribute__((visibility("default")))
#else
#define DDPM_API
#endif

#define DDPM_VERSION_MAJOR 1
#define DDPM_VERSION_MINOR 0
#define DDPM_VERSION_PATCH 0
#define DDPM_VERSION_STRING "1.0.0"

/* The version of the library actually linked (DDPM_VERSION_STRING of its build). */
DDPM_API const char *ddpm_version(void);

typedef enum {
    DDPM_OK = 0,
    DDPM_ERR_IO = 1,        /* a file could not be read or written */
    DDPM_ERR_FORMAT = 2,    /* weights that are damaged, truncated, or not ddpm's */
    DDPM_ERR_ARGUMENT = 3,  /* a parameter out of range, or wrong for this kind of model */
    DDPM_ERR_MEMORY = 4,    /* out of memory */
    DDPM_ERR_CANCELLED = 5  /* the progress callback asked to stop; the output is partial */
} ddpm_status;

/* The message of the last failure in this thread ("" when none). Valid until the next
 * call into the library from this thread. */
DDPM_API const char *ddpm_last_error(void);
/* A fixed name for a status: "ok", "io", "format", "argument", "memory", "cancelled". */
DDPM_API const char *ddpm_status_name(ddpm_status s);

typedef struct ddpm_model ddpm_model; /* opaque */

/* How ddpm_open builds the model. Zero-initialised fields take the defaults. */
typedef struct {
    int threads;   /* CPU threads of this handle's work; 0: 1 */
    int max_batch; /* images per forward pass (activations are sized for it); 0: 64 */
    int no_ema;    /* 1: the trained weights even when the file holds their moving average */
    const char *device; /* the backend that runs the model: NULL or "cpu" (the default);
                           "ref" the plain reference loops (slow: for checking) */
} ddpm_open_options;

/* Open a weights file. o may be NULL (the defaults). On success *out is a handle to close
 * with ddpm_close; on failure *out is NULL. */
DDPM_API ddpm_status ddpm_open(const char *path, const ddpm_open_options *o, ddpm_model **out);
/* The same from a buffer holding a file's bytes (copied: the caller may free it after the
 * call). name appears in error messages (NULL: "buffer"). */
DDPM_API ddpm_status ddpm_open_memory(const void *data, size_t size, const char *name,
                             const ddpm_open_options *o, ddpm_model **out);
/* Free the handle and everything it holds. NULL is allowed. */
DDPM_API void ddpm_close(ddpm_model *m);

typedef enum { DDPM_DENOISER = 0, DDPM_TIME = 1, DDPM_CLASS = 2 } ddpm_kind;

#define DDPM_MAX_CLASSES 64
#define DDPM_CLASS_NAME_LEN 24

/* What a handle holds. */
typedef struct {
    ddpm_kind kind;
    int model_width;            /* D, the UNet's base channel count (64 for the SPEC's) */
    int channels, height, width; /* image geometry: C x H x W */
    int classes;                /* class model: labels 0..classes-1; else 0 */
    char class_names[DDPM_MAX_CLASSES][DDPM_CLASS_NAME_LEN]; /* "0".."9" for MNIST */
    int T;                      /* diffusion steps of training (time, class); 0: denoiser */
    char schedule[16];          /* "linear" or "cosine" (time, class); "" for a denoiser */
    int ema;                    /* 1 when the loaded weights are a moving average */
    int half;                   /* 1 when the file stores half precision (ddpm export) */
    int64_t parameters;         /* trainable parameters */
} ddpm_info;

/* Fill *info. Never fails for an open handle. */
DDPM_API void ddpm_describe(const ddpm_model *m, ddpm_info *info);
/* The label of a class name ("7", "cat"), or -1 when the model has no such class. */
DDPM_API int ddpm_class_index(const ddpm_model *m, const char *name);

/* Called after every reverse step (done = 1..total, total = steps of the whole call, all
 * chunks of images together). Return 0 to go on, anything else to stop: ddpm_sample then
 * returns DDPM_ERR_CANCELLED. */
typedef int (*ddpm_progress_fn)(void *user, int done, int total);

/* What ddpm_sample draws. Set with ddpm_sample_params_init, then change what you need. */
typedef struct {
    int n;               /* images to draw (>= 1) */
    const int *labels;   /* class model: (n) requested classes, -1 for unconditional;
                            NULL: all unconditional. Time model: must be NULL */
    float guidance;      /* class model: gamma of eps_u + gamma (eps_c - eps_u); default 2 */
    const char *sampler; /* "ddpm" (default: all T steps, the SPEC's), "ddim", "dpmpp2m",
                            "dpmpp2m-sde", "dpmpp3m" (DPM-Solver++, 10-25 steps) */
    int steps;           /* ddim and solvers: reverse steps = network passes per image;
                            0: 50 for ddim, 20 for the solvers */
    float eta;           /* ddim: 0 (deterministic, default) .. 1 */
    int clip;            /* ddim and solvers: clip the predicted clean image to [0, 1] */
    const char *spacing; /* ddim and solvers: "uniform", "quadratic", "trailing", "logsnr";
                            NULL: uniform for ddim, logsnr for the solvers */
    uint64_t seed;       /* default 1 */
    ddpm_progress_fn progress; /* may be NULL */
    void *user;          /* passed to progress */
    int frame_every;     /* > 0: record the images every this many steps into frames */
    float *frames;       /* ddpm_sample_frames(m, &p) x n images, when frame_every > 0:
                            frame f of image i at frames + (f n + i) C H W */
} ddpm_sample_params;

DDPM_API void ddpm_sample_params_init(ddpm_sample_params *p);
/* Frames ddpm_sample records for p (the start noise, every frame_every-th step, the end);
 * 0 when frame_every is 0; -1 with ddpm_last_error() for an invalid sampler choice. */
DDPM_API int ddpm_sample_frames(const ddpm_model *m, const ddpm_sample_params *p);
/* Network passes per image of p's sampler (a guided pair counts once); -1 when invalid. */
DDPM_API int ddpm_sample_nfe(const ddpm_model *m, const ddpm_sample_params *p);

/* Draw p->n images of a time or class model into out (n x C x H x W floats). */
DDPM_API ddpm_status ddpm_sample(ddpm_model *m, const ddpm_sample_params *p, float *out);

/* A denoiser: clean n noisy images (n x C x H x W, data scale) into out (same shape;
 * in == out is allowed). */
DDPM_API ddpm_status ddpm_denoise(ddpm_model *m, const float *in, int n, float *out);

/* Write n images (of info's geometry) as one PNG grid of `cols` columns, clamped to [0, 1],
 * grey or RGB as the images are (1 or 3 channels); 8-bit. The grid has no gaps and no
 * titles: cols x ceil(n / cols) cells of exactly height x width pixels, image i in row
 * i / cols, column i % cols, unused cells black. Atomic: the file is complete or absent. */
DDPM_API ddpm_status ddpm_write_png(const char *path, const float *images, int n, int cols,
                           const ddpm_info *info);

#ifdef __cplusplus
}
#endif

#endif
