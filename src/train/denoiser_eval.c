/* The denoiser's test error: noise test images at one level, denoise them in evaluation
 * mode, and average the squared error (training, figures, ddpm denoise and eval use it). */
#include "train/denoiser_eval.h"

#include "core/common.h"
#include "core/rng.h"
#include "ops/ops.h"

/* The outputs of all batches are gathered, so that one sq_diff_sum over the n images sums
 * the squared errors in index order, as a single running sum. */
double denoiser_test_mse_fn(const OpsCtx *ctx, DenoiserFn fn, void *user, int B, size_t P,
                            const float *images, int n, float sigma, uint64_t seed, float *noisy,
                            float *denoised) {
    Rng rng;
    rng_seed(&rng, seed);
    const size_t all = (size_t)n * P, batch_bytes = (size_t)B * P * sizeof(float);
    float *hz = xmalloc(batch_bytes);                       /* (B, P) host noise */
    float *z = dev_alloc(ctx, batch_bytes);                 /* (B, P) noise, then noisy input */
    float *x = dev_alloc(ctx, all * sizeof(float));         /* (n, P) clean images */
    float *out = dev_alloc(ctx, all * sizeof(float));       /* (n, P) the model's outputs */
    dev_upload(ctx, x, images, all * sizeof(float));
    for (int s = 0; s < n; s += B) {
        int c = n - s < B ? n - s : B;
        const size_t off = (size_t)s * P, cp = (size_t)c * P;
        rng_fill_normal(&rng, hz, cp);
        dev_upload(ctx, z, hz, cp * sizeof(float));
        scale_add(ctx, z, x + off, sigma, z, cp);
        if (noisy) dev_download(ctx, noisy + off, z, cp * sizeof(float));
        fn(user, out + off, z, c);
    }
    double sum = sq_diff_sum(ctx, out, x, all);
    if (denoised) dev_download(ctx, denoised, out, all * sizeof(float));
    xfree(hz);
    dev_free(ctx, z, batch_bytes);
    dev_free(ctx, x, all * sizeof(float));
    dev_free(ctx, out, all * sizeof(float));
    return sum / ((double)n * P);
}

/* The UNet in evaluation mode, its output copied into the gathered outputs. */
static void unet_denoise(void *user, float *out, const float *noisy, int c) {
    Unet *m = user;
    const float *o = unet_forward(m, noisy, NULL, NULL, c, 0);
    dev_copy(&m->ctx, out, o, (size_t)c * geometry_pixels(&m->geom));
}

double denoiser_test_mse(Unet *m, const float *images, int n, float sigma, uint64_t seed,
                         float *noisy, float *denoised) {
    return denoiser_test_mse_fn(&m->ctx, unet_denoise, m, m->max_batch, geometry_pixels(&m->geom),
                                images, n, sigma, seed, noisy, denoised);
}
