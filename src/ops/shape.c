/* The shapes and sizes that the operators' definitions fix, apart from any backend: the
 * output size of a convolution and the floats attention saves for its backward. */
#include "ops/attention.h"

#include "core/common.h"
#include "ops/ops.h"

ConvShape conv_shape(int n, int ci, int co, int h, int w, int k, int stride, int pad) {
    DDPM_CHECK(n > 0 && ci > 0 && co > 0 && k > 0 && stride > 0 && pad >= 0);
    DDPM_CHECK(h + 2 * pad >= k && w + 2 * pad >= k);
    ConvShape s = {n, ci, co, h, w, k, stride, pad, 0, 0};
    s.ho = (h + 2 * pad - k) / stride + 1;
    s.wo = (w + 2 * pad - k) / stride + 1;
    return s;
}

ConvShape conv_transpose_shape(int n, int ci, int co, int h, int w, int k, int stride, int pad) {
    DDPM_CHECK(n > 0 && ci > 0 && co > 0 && h > 0 && w > 0 && k > 0 && stride > 0 && pad >= 0);
    ConvShape s = {n, ci, co, h, w, k, stride, pad, 0, 0};
    s.ho = (h - 1) * stride - 2 * pad + k;
    s.wo = (w - 1) * stride - 2 * pad + k;
    DDPM_CHECK(s.ho > 0 && s.wo > 0);
    return s;
}

size_t attention_saved_floats(int n, int c, int l) {
    DDPM_CHECK(n > 0 && c > 0 && l > 0);
    /* per image QKV (3C, L), P (L, L), O (C, L) */
    return (size_t)n * (4 * (size_t)c * (size_t)l + (size_t)l * (size_t)l);
}
