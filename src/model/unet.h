/* The UNet of the SPEC with width D and its three conditioning variants (none, time,
 * time + class), for an image geometry (C x H x H, K classes; MNIST's 1 x 28 x 28 and 10
 * classes is the SPEC's), plus opt-in architecture options beyond the SPEC (UnetOptions: a
 * sinusoidal time embedding, residual ConvBlocks, self-attention after the second DownBlock
 * and/or the first UpBlock); with none of them set and the MNIST geometry the model is the
 * SPEC's, bit for bit. Every layer's shape follows from (kind, D, geometry, options); one
 * allocation each for parameters, gradients, BatchNorm buffers and activations, laid out from
 * tables of sizes (unet_layout.c); forward and backward are written out layer by layer, as in
 * llm.c. Tensor names and layouts: docs/WEIGHTS.md. */
#ifndef DDPM_UNET_H
#define DDPM_UNET_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "data/geometry.h"
#include "ops/ops.h"

typedef enum { UNET_DENOISER = 0, UNET_TIME = 1, UNET_CLASS = 2 } UnetKind;

#define UNET_NUM_UNITS 17 /* conv -> BatchNorm -> GELU units */
#define UNET_NUM_FC 4     /* t1, t2, c1, c2 */
/* The classes of the MNIST geometry, for callers that still assume it (the trainer's and the
 * sampler's one-hot buffers); the model's own count is m->geom.classes. */
#define UNET_NUM_CLASSES 10
#define UNET_NUM_RES 4    /* ConvBlocks that --residual turns residual: down1, down2, up1, up2 */
#define UNET_NUM_ATTN 2   /* optional attention layers: after down2 and after up1 */

/* Attention layers, named by their place, as a bit mask (UnetOptions.attention,
 * Unet.attention): UNET_ATTN_DOWN2 after the second DownBlock's ConvBlock (2D channels,
 * H/4 x H/4: the skip and the bottleneck's input), UNET_ATTN_UP1 after the first UpBlock's
 * ConvBlock (D channels, H/2 x H/2, before conditioning point 2). Their tensors are
 * "down2.attn.*" and "up1.attn.*"; files written before these names ("attn7.*", "attn14.*",
 * the resolutions at 28x28) still load (unet_tensor_legacy_name). */
#define UNET_ATTN_DOWN2 1
#define UNET_ATTN_UP1 2

/* Architecture options beyond the SPEC; all zero (or a NULL pointer) is the SPEC's UNet. */
typedef struct {
    int temb;      /* 0: the SPEC's scalar t/T; E (even, 2..1024): E sinusoidal features */
    int residual;  /* 1: each ConvBlock that follows a down/up sampling step (down1, down2, up1,
                      up2: input and output channels equal) returns x + block(x); enc0 and dec
                      change the channel count and stay plain. No new parameters. */
    int attention; /* UNET_ATTN_DOWN2 | UNET_ATTN_UP1 (0: none) */
} UnetOptions;

/* Everything a model is built from. */
typedef struct {
    UnetKind kind;
    int width;      /* D */
    ImageGeom geom; /* input and output C x H x H; K classes for the class model */
    UnetOptions opt;
    const char *device; /* the backend that holds and computes it (ops/backend.h); NULL: cpu */
} UnetConfig;

/* The SPEC's model of a kind and width: MNIST geometry, no options. */
UnetConfig unet_config_spec(UnetKind kind, int width);

/* Attention masks <-> "down2", "up1", "down2,up1" ("none" for 0), as on the command line, in
 * config.json and in checkpoints. Parse accepts the places in either order, the old
 * resolutions 7 (= down2) and 14 (= up1), and "none"; 0 or -1. */
const char *unet_attention_name(int mask);
int unet_attention_parse(const char *s, int *mask);
/* The name a tensor had before attention was named by place ("down2.attn.X" was "attn7.X",
 * "up1.attn.X" was "attn14.X"; a prefix such as "ema." or "adam.m." is kept), into out;
 * returns 0, or -1 when the name has no older form. */
int unet_tensor_legacy_name(const char *name, char *out, size_t size);

/* Names of the kinds as used on the command line and in checkpoints. */
const char *unet_kind_name(UnetKind k);
int unet_kind_parse(const char *s, UnetKind *out); /* 0 or -1 */

/* One learnable or buffer tensor: its name, shape and offset in its flat array. */
typedef struct {
    char name[48];
    int ndim;
    int64_t shape[4];
    size_t offset; /* floats into params (or buffers when is_buffer) */
    size_t count;
    int is_buffer; /* BatchNorm running statistics: saved, not trained */
} UnetTensor;

/* conv (or conv-transpose) -> BatchNorm2d -> GELU, with its geometry for the max batch. */
typedef struct {
    const char *name;
    int transposed;
    int ci, co, k, stride, pad, hin, hout; /* square maps */
    float *w, *b, *gamma, *beta;           /* into params */
    float *dw, *db, *dgamma, *dbeta;       /* into grads */
    float *running_mean, *running_var;     /* into buffers (Co) */
    const float *input; /* (N, Ci, Hin, Hin) what the last forward read */
    float *conv_out; /* (N, Co, Hout, Hout) pre-BatchNorm, kept for backward */
    float *act;      /* (N, Co, Hout, Hout) after GELU: the unit's output */
    float *mean, *rstd; /* (Co) batch statistics saved by forward */
} UnetUnit;

/* FCBlock: Linear(fi, fo) -> GELU -> Linear(fo, fo). */
typedef struct {
    const char *name;
    int fi, fo;
    float *w1, *b1, *w2, *b2;
    float *dw1, *db1, *dw2, *db2;
    float *h, *g, *out; /* (N, fo) pre-GELU, post-GELU, output */
} UnetFc;

/* Residual self-attention layer (ops/attention.h) on a (C, HW) map; NULL pointers when off. */
typedef struct {
    const char *name; /* "down2.attn" or "up1.attn": tensors NAME.qkv.weight (3C, C),
                         NAME.qkv.bias (3C), NAME.proj.weight (C, C), NAME.proj.bias (C) */
    int c, hw;
    float *w_qkv, *b_qkv, *w_proj, *b_proj;     /* into params */
    float *dw_qkv, *db_qkv, *dw_proj, *db_proj; /* into grads */
    const float *input; /* (N, C, HW) what the last forward read */
    float *out;         /* (N, C, HW) x + attention(x) */
    float *saved;       /* attention_saved_floats(N, C, HW): kept for backward */
} UnetAttn;

/* Per-layer timing for `ddpm bench --profile`: seconds accumulated over the profiled
 * passes, per unit (index UNET_NUM_UNITS is the plain output conv) and phase. */
enum { UNET_PROF_CONV, UNET_PROF_BN, UNET_PROF_GELU, UNET_PROF_PHASES };
typedef struct {
    double fwd[UNET_NUM_UNITS + 1][UNET_PROF_PHASES];
    double bwd[UNET_NUM_UNITS + 1][UNET_PROF_PHASES];
    double total_fwd, total_bwd; /* whole passes: the rest is FCBlocks, conditioning, concat,
                                    pooling and zeroing (and the options' residual sums and
                                    attention layers) */
} UnetProfile;

typedef struct {
    UnetKind kind;
    int width;     /* D */
    int temb;      /* time input: 0 = the SPEC's scalar t/T; E > 0 = E sinusoidal features */
    int residual;  /* residual ConvBlocks (UnetOptions.residual) */
    int attention; /* UNET_ATTN_DOWN2 | UNET_ATTN_UP1 */
    ImageGeom geom; /* C x H x H images, K classes */
    int max_batch; /* N capacity of every activation buffer */
    int nthreads;
    OpsCtx ctx;

    /* parameter table, in docs/WEIGHTS.md order */
    UnetTensor *tensors;
    int n_tensors;
    size_t n_params, n_buffers;

    float *params;  /* (n_params) learnable parameters */
    float *grads;   /* (n_params) their gradients */
    float *buffers; /* (n_buffers) BatchNorm running statistics */

    UnetUnit units[UNET_NUM_UNITS];
    UnetFc fc[UNET_NUM_FC]; /* t1, t2, c1, c2; only those the kind uses are set */
    int n_fc;
    float *out_w, *out_b, *out_dw, *out_db; /* plain output conv (C, D, 3, 3), (C) */
    UnetAttn attn[UNET_NUM_ATTN]; /* [0] after down2, [1] after up1; set only when enabled */

    /* activations beyond the units' own, for the max batch; H is the image side */
    float *x;        /* (N, C, H, H) the input of the last forward */
    float *tn;       /* (N, 1) timestep input */
    float *temb_buf; /* (N, temb) its sinusoidal features when temb > 0 */
    float *onehot;   /* (N, K) class input */
    float *pooled;   /* (N, 2D) AvgPool output, pre-GELU */
    float *pooled_g; /* (N, 2D) after GELU: input of Unflatten (as (N, 2D, 1, 1)) */
    float *cond1;    /* (N, 2D, H/4, H/4) Unflatten output after conditioning */
    float *cond2;    /* (N, D, H/2, H/2) first UpBlock output after conditioning */
    float *cat1;     /* (N, 4D, H/4, H/4) */
    float *cat2;     /* (N, 2D, H/2, H/2) */
    float *cat3;     /* (N, 2D, H, H) */
    float *out;      /* (N, C, H, H) the UNet's output */
    float *res[UNET_NUM_RES]; /* with residual: outputs x + block(x) of down1, down2, up1, up2 */
    const float *cond2_in;    /* input of conditioning point 2 in the last forward */

    /* backward scratch */
    float *g_a, *g_b, *g_c;       /* gradients of the skip tensors */
    float *g_cat1, *g_cat2, *g_cat3;
    float *g_x1, *g_x2;           /* ping-pong, max unit output size */
    float *s1, *s2;               /* unit scratch, max unit output size */
    float *g_pooled;              /* (N, 2D) */
    float *g_fc_a, *g_fc_b;       /* (N, 2D) FCBlock scratch */
    float *g_film_scale, *g_film_shift; /* (N, 2D) */

    float *fold; /* inference: one unit's conv weights and bias with BatchNorm folded in */
    size_t fold_floats;

    UnetProfile *prof; /* NULL unless profiling: then every pass adds its timings */
    int last_train; /* mode of the last forward: UNET_TRAIN, UNET_EVAL or UNET_INFER */
    int last_n;

    void *arena; /* the one activation allocation (dev_alloc) */
    size_t arena_bytes;
} Unet;

/* Build a model for cfg (kind, D, geometry, options) with activations for max_batch images:
 * parameters initialised as PyTorch's defaults from rng. The parameters of the SPEC's
 * tensors are drawn first, in the same order, so the options add tensors (attention) after
 * them without changing their initial values for a given rng. Returns 0 or -1 with
 * err_msg(). */
int unet_init(Unet *m, const UnetConfig *cfg, int max_batch, int nthreads, Rng *rng);
void unet_free(Unet *m);

/* Modes of unet_forward. UNET_TRAIN: BatchNorm with batch statistics (and updating the running
 * ones). UNET_EVAL: BatchNorm with the running statistics, as PyTorch's model.eval().
 * UNET_INFER: the same function for sampling, computed faster and a little less exactly:
 * BatchNorm folded into the preceding convolution's weights and bias; no backward may
 * follow it. */
enum { UNET_EVAL = 0, UNET_TRAIN = 1, UNET_INFER = 2 };

/* Forward on n <= max_batch images. x (N,C,H,H); tn (N,1) or NULL for the denoiser;
 * onehot (N,K) for the class model (an all-zero row is "no class"). train is the mode
 * (UNET_TRAIN, UNET_EVAL or UNET_INFER; 1 and 0 are training and evaluation).
 * Returns m->out (N,C,H,H). */
const float *unet_forward(Unet *m, const float *x, const float *tn, const float *onehot, int n,
                          int train);
/* Backward of the last forward given dout (N,C,H,H); accumulates into m->grads. */
void unet_backward(Unet *m, const float *dout);
void unet_zero_grad(Unet *m);

/* Look up a tensor by name (NULL when absent); data pointer of a tensor. */
const UnetTensor *unet_find(const Unet *m, const char *name);
float *unet_tensor_data(const Unet *m, const UnetTensor *t);
float *unet_tensor_grad(const Unet *m, const UnetTensor *t); /* NULL for buffers */

/* The model's weights then BatchNorm buffers (n_params + n_buffers floats, as the tensor
 * table's offsets) copied from the backend's memory into a new host array (xfree it), and
 * back: files and the host never touch the backend's memory directly. */
float *unet_state_download(const Unet *m);
void unet_state_upload(Unet *m, const float *host);

/* Multiply-adds of one forward pass per image. */
double unet_forward_macs(const Unet *m);

#endif
