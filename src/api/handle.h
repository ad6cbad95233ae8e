/* The handle behind include/ddpm.h's opaque ddpm_model, for the library's own files and for
 * the jobs above it (app/), which report more than the public API tells (the sampler's line,
 * its title, the data set of the class names): the model, its schedule, what it was trained
 * on, and a public sampler choice as the diffusion layer's request. */
#ifndef DDPM_API_HANDLE_H
#define DDPM_API_HANDLE_H

#include "ddpm.h"
#include "data/dataset.h"
#include "diffusion/sampler.h"
#include "model/unet.h"

struct ddpm_model {
    Unet net;       /* weights and activations for max_batch images, its own threads */
    Schedule sched; /* time and class models (has_sched); untouched for a denoiser */
    int has_sched;
    Dataset ds;     /* the data set it was trained on (ddpm.config; MNIST when absent) */
    int used_ema;   /* the weights are the file's moving averages */
    int half;       /* the file stores half precision (metadata ddpm.dtype f16 or bf16) */
    char *name;     /* the path or the buffer's name, for messages */
};

/* p's sampler (sampler, steps, eta, clip, spacing) checked against m's schedule into req
 * (only the sampler's fields are set). Returns 0, or -1 with err_msg() naming the field. */
int api_request(SampleRequest *req, const ddpm_model *m, const ddpm_sample_params *p);

#endif
