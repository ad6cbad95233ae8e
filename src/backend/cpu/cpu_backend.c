/* The CPU backend's table: the operators of src/backend/cpu/ behind the interface of
 * ops/backend.h, and its setup (OpenBLAS single-threaded, because every operator parallelises
 * itself with OpenMP and calls BLAS from inside its threads: nested BLAS threads would
 * oversubscribe the cores and make timings erratic). */
#include <cblas.h>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/winograd.h"
#include "ops/backend.h"
#include "ops/cpu.h"

void ops_cpu_init(void) { openblas_set_num_threads(1); }

/* The Winograd paths' tags in bench --profile: F(4x4,3x3), F(2x2,3x3), sub-pixel F(2x2,2x2). */
static const char *cpu_conv_method(const ConvShape *s, int transposed) {
    if (transposed) return conv_transpose2d_uses_winograd(s) ? "Wt" : "";
    ConvAlgo a = conv2d_algo(s);
    return a == CONV_ALGO_WINOGRAD4 ? "W4" : a == CONV_ALGO_WINOGRAD ? "W" : "";
}

const Backend backend_cpu = {
    .name = "cpu",
    .init = ops_cpu_init,
    .conv_method = cpu_conv_method,
    .conv2d_workspace_floats = cpu_conv2d_workspace_floats,
    .conv_transpose2d_workspace_floats = cpu_conv_transpose2d_workspace_floats,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .conv_transpose2d_forward = cpu_conv_transpose2d_forward,
    .conv_transpose2d_backward = cpu_conv_transpose2d_backward,
    .batchnorm2d_forward_train = cpu_batchnorm2d_forward_train,
    .batchnorm2d_forward_eval = cpu_batchnorm2d_forward_eval,
    .batchnorm2d_backward_train = cpu_batchnorm2d_backward_train,
    .batchnorm2d_backward_eval = cpu_batchnorm2d_backward_eval,
    .bn_gelu_forward_train = cpu_bn_gelu_forward_train,
    .bn_gelu_backward_train = cpu_bn_gelu_backward_train,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .concat_forward = cpu_concat_forward,
    .concat_backward = cpu_concat_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .film_forward = cpu_film_forward,
    .film_backward = cpu_film_backward,
    .mse_forward = cpu_mse_forward,
    .mse_backward = cpu_mse_backward,
    .dev_alloc = cpu_dev_alloc,
    .dev_free = cpu_dev_free,
    .dev_upload = cpu_dev_upload,
    .dev_download = cpu_dev_download,
    .dev_fill = cpu_dev_fill,
    .dev_copy = cpu_dev_copy,
    .add_forward = cpu_add_forward,
    .scale_add = cpu_scale_add,
    .noising_forward = cpu_noising_forward,
    .time_embedding_forward = cpu_time_embedding_forward,
    .bn_fold = cpu_bn_fold,
    .adam_update = cpu_adam_update,
    .ema_update = cpu_ema_update,
    .swap_values = cpu_swap_values,
    .all_finite = cpu_all_finite,
    .sq_diff_sum = cpu_sq_diff_sum,
    .guidance_forward = cpu_guidance_forward,
    .ddpm_step = cpu_ddpm_step,
    .ddim_step = cpu_ddim_step,
    .multistep_step = cpu_multistep_step,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .maxpool2x2_forward = cpu_maxpool2x2_forward,
    .maxpool2x2_backward = cpu_maxpool2x2_backward,
    .softmax_xent_forward = cpu_softmax_xent_forward,
    .softmax_xent_backward = cpu_softmax_xent_backward,
    .attention_workspace_floats = cpu_attention_workspace_floats,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
};
