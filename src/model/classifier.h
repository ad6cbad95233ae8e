/* The judge: a small MNIST classifier whose penultimate layer is the feature space of the
 * evaluation metrics (src/eval/). conv3x3(1->32) ReLU, conv3x3(32->32) ReLU, maxpool 2,
 * conv3x3(32->64) ReLU, maxpool 2, linear(64*7*7 -> 128) ReLU = features, linear(128 -> 10).
 * One allocation each for parameters, gradients and activations, as the UNet. */
#ifndef DDPM_CLASSIFIER_H
#define DDPM_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "ops/ops.h"

#define CLS_FEATURES 128 /* F of the penultimate layer */
#define CLS_CLASSES 10
#define CLS_NUM_TENSORS 10
#define CLS_ARCH "conv32-conv32-pool-conv64-pool-fc128-fc10"

/* One learnable tensor: PyTorch name (nn.Sequential-free: conv1.weight ...), shape, offset. */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[4];
    size_t offset, count; /* floats into params */
} ClsTensor;

typedef struct {
    int max_batch, nthreads;
    OpsCtx ctx;
    ClsTensor tensors[CLS_NUM_TENSORS];
    size_t n_params;
    float *params; /* (n_params) */
    float *grads;  /* (n_params) */
    /* views into params / grads */
    float *w1, *b1, *w2, *b2, *w3, *b3, *fw1, *fb1, *fw2, *fb2;
    float *dw1, *db1, *dw2, *db2, *dw3, *db3, *dfw1, *dfb1, *dfw2, *dfb2;

    /* activations for max_batch N */
    float *x;      /* (N, 1, 28, 28) input of the last forward */
    float *a1;     /* (N, 32, 28, 28) conv1 output, pre-ReLU */
    float *r1;     /* (N, 32, 28, 28) after ReLU */
    float *a2;     /* (N, 32, 28, 28) conv2 output */
    float *r2;     /* (N, 32, 28, 28) */
    float *p2;     /* (N, 32, 14, 14) pooled */
    float *a3;     /* (N, 64, 14, 14) conv3 output */
    float *r3;     /* (N, 64, 14, 14) */
    float *p3;     /* (N, 64, 7, 7) pooled = fc1 input (N, 3136) */
    float *h;      /* (N, 128) fc1 output, pre-ReLU */
    float *feat;   /* (N, 128) the features */
    float *logits; /* (N, 10) */
    float *probs;  /* (N, 10) softmax, written by classifier_loss */
    /* backward scratch */
    float *g1, *g2;            /* (N, 32, 28, 28) ping-pong gradients */
    float *gl, *gf, *gh;       /* (N, 10), (N, 128), (N, 128) */
    int last_n;
    void *arena;
} Classifier;

/* Build the network for up to max_batch images, parameters initialised as PyTorch's
 * defaults (uniform in +-1/sqrt(fan_in)) from rng. */
void classifier_init(Classifier *m, int max_batch, int nthreads, Rng *rng);
void classifier_free(Classifier *m);

/* Forward on n <= max_batch images x (N, 784) in [0, 1]. Returns logits (N, 10);
 * m->feat (N, 128) holds the features. */
const float *classifier_forward(Classifier *m, const float *x, int n);
/* Mean cross-entropy of the last forward's logits against labels (N) in 0..9. */
float classifier_loss(Classifier *m, const int *labels);
/* Backward of the loss of the last forward + classifier_loss; accumulates into m->grads. */
void classifier_backward(Classifier *m, const int *labels);
void classifier_zero_grad(Classifier *m);

/* Look up a tensor by name (NULL when absent). */
const ClsTensor *classifier_find(const Classifier *m, const char *name);

/* Save every tensor as safetensors with metadata (ddpm.arch and n_extra more pairs),
 * atomically; load checks the architecture and every shape. Return 0 or -1 with err_msg(). */
int classifier_save(const Classifier *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra);
int classifier_load(Classifier *m, const char *path);

#endif
