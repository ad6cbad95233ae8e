/* ddpm export: load (EMA by default), fold BatchNorm, narrow to the chosen dtype, and write
 * the weights with the metadata that makes them self-contained. */
#include "app/export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "model/checkpoint.h"
#include "model/fold.h"
#include "train/trained_with.h"

static const struct { const char *word; StDtype dtype; } DTYPES[] = {
    {"f32", ST_F32}, {"f16", ST_F16}, {"bf16", ST_BF16}};
#define N_EXPORT_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

int app_export_dtype_parse(const char *s, StDtype *d) {
    for (size_t i = 0; i < N_EXPORT_DTYPES; i++)
        if (strcmp(s, DTYPES[i].word) == 0) {
            *d = DTYPES[i].dtype;
            return 0;
        }
    return err_set("--dtype: unknown '%.20s' (expected f16, bf16 or f32)", s);
}

const char *app_export_dtype_name(StDtype d) {
    for (size_t i = 0; i < N_EXPORT_DTYPES; i++)
        if (DTYPES[i].dtype == d) return DTYPES[i].word;
    return "?";
}

/* The metadata beyond the model's own (checkpoint_write adds those): at most this many. */
#define MAX_META 16

typedef struct {
    const char *keys[MAX_META], *values[MAX_META];
    int n;
    char T[24], b0[32], b1[32];
} Meta;

static void meta_add(Meta *mt, const char *key, const char *value) {
    DDPM_CHECK(mt->n < MAX_META);
    mt->keys[mt->n] = key;
    mt->values[mt->n++] = value;
}

/* What sampling needs that is not the model: the schedule (time and class models) and the
 * data set, resolved as the sampler would resolve them from the source; and the source's
 * provenance (its digest, configuration, epoch and step) when it has them. */
static int meta_trained(Meta *mt, const StFile *src, UnetKind kind) {
    Dataset ds;
    if (trained_dataset_st(src, &ds) != 0) return -1;
    meta_add(mt, TRAINED_DATASET_KEY, dataset_name(ds));
    if (kind != UNET_DENOISER) {
        int T = SCHEDULE_DEFAULT_T;
        float b0 = SCHEDULE_DEFAULT_BETA_START, b1 = SCHEDULE_DEFAULT_BETA_END;
        ScheduleKind sk;
        if (trained_schedule_st(src, &sk, &T, &b0, &b1) != 0) return -1;
        snprintf(mt->T, sizeof mt->T, "%d", T);
        snprintf(mt->b0, sizeof mt->b0, "%.9g", (double)b0); /* nine digits: the float back */
        snprintf(mt->b1, sizeof mt->b1, "%.9g", (double)b1);
        meta_add(mt, TRAINED_SCHEDULE_KEY, schedule_kind_name(sk));
        meta_add(mt, TRAINED_T_KEY, mt->T);
        meta_add(mt, TRAINED_BETA_START_KEY, mt->b0);
        meta_add(mt, TRAINED_BETA_END_KEY, mt->b1);
    }
    static const char *const KEPT[] = {"ddpm.config", "ddpm.epoch", "ddpm.step"};
    for (size_t i = 0; i < sizeof KEPT / sizeof KEPT[0]; i++) {
        const char *v = safetensors_meta(src, KEPT[i]);
        if (v) meta_add(mt, KEPT[i], v);
    }
    const char *sha = safetensors_meta(src, CHECKPOINT_DIGEST_KEY);
    if (sha) meta_add(mt, "ddpm.source_sha256", sha);
    return 0;
}

/* The tensors to write: every one of m's but BatchNorm's, from the folded host state, in
 * dtype (narrowed copies into half, which holds n_params values). A weight that becomes
 * infinite in the narrower dtype is refused. Returns the count, or -1 with err_msg(). */
static int export_tensors(StTensor *ts, uint16_t *half, const Unet *m, const float *state,
                          StDtype dtype, const char *in) {
    int n = 0;
    size_t used = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        if (unet_is_bn_tensor(t)) continue;
        const float *src = state + (t->is_buffer ? m->n_params : 0) + t->offset;
        StTensor *o = &ts[n++];
        *o = (StTensor){.name = t->name, .dtype = dtype, .ndim = t->ndim, .data = src};
        for (int d = 0; d < t->ndim; d++) o->shape[d] = t->shape[d];
        if (dtype == ST_F32) continue;
        DDPM_CHECK(!t->is_buffer && used + t->count <= m->n_params);
        uint16_t *h = half + used;
        for (size_t k = 0; k < t->count; k++) {
            const int f16 = dtype == ST_F16;
            h[k] = f16 ? safetensors_f32_to_f16(src[k]) : safetensors_f32_to_bf16(src[k]);
            if (isinf(f16 ? safetensors_f16_to_f32(h[k]) : safetensors_bf16_to_f32(h[k])))
                return err_set("%s: weight %s[%zu] = %g (BatchNorm folded in) is beyond the range "
                               "of %s; export it as f32%s", in, t->name, k, (double)src[k],
                               safetensors_dtype_name(dtype), dtype == ST_F16 ? " or bf16" : "");
        }
        o->data = h;
        used += t->count;
    }
    return n;
}

static double file_mb(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0;
}

/* Everything after the model is loaded: fold, narrow, describe, write. */
static int export_write(const ExportJob *j, const Unet *m, const StFile *src, int used_ema) {
    Meta mt = {.n = 0};
    meta_add(&mt, CHECKPOINT_FORMAT_KEY, CHECKPOINT_INFERENCE_FORMAT);
    meta_add(&mt, CHECKPOINT_DTYPE_KEY, app_export_dtype_name(j->dtype));
    meta_add(&mt, CHECKPOINT_FOLDED_KEY, "1");
    /* an export of an export keeps saying what its weights are */
    int ema = used_ema || (checkpoint_is_folded(src) && checkpoint_weights_are_ema(src));
    meta_add(&mt, CHECKPOINT_EMA_KEY, ema ? "1" : "0");
    if (meta_trained(&mt, src, m->kind) != 0) return -1;
    float *state = unet_state_download(m);
    unet_fold_state(m, state);
    StTensor *ts = xcalloc((size_t)m->n_tensors, sizeof(StTensor));
    uint16_t *half = j->dtype == ST_F32 ? NULL : xmalloc((m->n_params + 1) * sizeof(uint16_t));
    int n = export_tensors(ts, half, m, state, j->dtype, j->in);
    int rc = n < 0 ? -1 : checkpoint_write(m, j->out, ts, n, mt.keys, mt.values, mt.n);
    xfree(ts);
    xfree(half);
    xfree(state);
    return rc;
}

int app_export(const ExportJob *job, const Progress *p) {
    if (job->dtype != ST_F32 && job->dtype != ST_F16 && job->dtype != ST_BF16)
        return err_set("export: dtype %s cannot hold weights (f32, f16 or bf16)",
                       safetensors_dtype_name(job->dtype));
    if (strcmp(job->in, job->out) == 0)
        return err_set("%s: the export would replace its own source; give another output file", job->out);
    StFile src;
    if (checkpoint_open(job->in, &src, 0) != 0) return -1;
    Unet m;
    int used_ema = 0;
    const CheckpointLoadOptions lo = {.max_batch = 1, .nthreads = 1, .use_ema = job->use_ema};
    int rc = checkpoint_load_st(&m, &used_ema, &src, &lo); /* the file read and checked once */
    if (rc == 0) {
        rc = export_write(job, &m, &src, used_ema);
        if (rc == 0)
            progress_out(p, "wrote %s: %s model, BatchNorm folded, %s weights%s, %.2f MB (%s: %.2f MB)\n",
                         job->out, unet_kind_name(m.kind), app_export_dtype_name(job->dtype),
                         used_ema ? " (the moving averages)" : "", file_mb(job->out), job->in,
                         file_mb(job->in));
        unet_free(&m);
    }
    safetensors_close(&src);
    return rc;
}
