/* The job of `ddpm export`: weights for shipping. A checkpoint's model (its moving averages by
 * default) with every BatchNorm folded into the convolution in front of it (model/fold.h),
 * stored in float32, float16 or bfloat16 (computed in float32 all the same), with everything
 * sampling needs in the metadata (the model, the schedule, the data set), so the file alone
 * samples as its source does. Format: docs/WEIGHTS.md, "Inference weights". */
#ifndef DDPM_APP_EXPORT_H
#define DDPM_APP_EXPORT_H

#include "core/progress.h"
#include "io/safetensors.h"

typedef struct {
    const char *in;  /* a ddpm weights file or training state (.safetensors) */
    const char *out; /* the inference weights to write (atomically) */
    StDtype dtype;   /* ST_F32, ST_F16 or ST_BF16 */
    int use_ema;     /* the moving averages when the file holds them (1 by default) */
} ExportJob;

/* "f32", "f16", "bf16" (the --dtype words and the metadata ddpm.dtype) <-> the dtype.
 * Parse returns 0, or -1 with err_msg(). */
int app_export_dtype_parse(const char *s, StDtype *d);
const char *app_export_dtype_name(StDtype d);

/* Write job->out from job->in and report it as one output line on p (what it holds, its size
 * beside the source's). Refuses (-1 with err_msg(), one sentence) a missing or damaged input,
 * an output that cannot be written, and a weight beyond the dtype's range. */
int app_export(const ExportJob *job, const Progress *p);

#endif
