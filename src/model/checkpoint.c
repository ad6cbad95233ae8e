/* UNet <-> safetensors, with an integrity digest over the contents. */
#include "model/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"

int checkpoint_save_with(const Unet *m, const char *path, const StTensor *extra, int n_extra_t,
                         const char *const *keys, const char *const *values, int n_extra) {
    DDPM_CHECK(n_extra_t >= 0 && n_extra >= 0);
    int nt = m->n_tensors + n_extra_t;
    StTensor *ts = xcalloc((size_t)nt, sizeof(StTensor));
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        ts[i].name = t->name;
        ts[i].dtype = ST_F32;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
        ts[i].data = unet_tensor_data(m, t);
    }
    for (int i = 0; i < n_extra_t; i++) ts[m->n_tensors + i] = extra[i];
    int has_format = 0;
    for (int i = 0; i < n_extra; i++) has_format |= strcmp(keys[i], CHECKPOINT_FORMAT_KEY) == 0;
    /* the options beyond the SPEC are written only when set: the SPEC model's files keep
     * exactly their keys */
    int n_meta = 2 + n_extra + !has_format + (m->temb > 0) + (m->residual != 0) + (m->attention != 0);
    const char **mk = xcalloc((size_t)n_meta, sizeof(char *));
    const char **mv = xcalloc((size_t)n_meta, sizeof(char *));
    char width[32];
    snprintf(width, sizeof width, "%d", m->width);
    mk[0] = "ddpm.kind";
    mv[0] = unet_kind_name(m->kind);
    mk[1] = "ddpm.width";
    mv[1] = width;
    for (int i = 0; i < n_extra; i++) {
        mk[2 + i] = keys[i];
        mv[2 + i] = values[i];
    }
    if (!has_format) {
        mk[2 + n_extra] = CHECKPOINT_FORMAT_KEY;
        mv[2 + n_extra] = CHECKPOINT_WEIGHTS_FORMAT;
    }
    int k = 2 + n_extra + !has_format;
    char temb[32];
    if (m->temb > 0) {
        snprintf(temb, sizeof temb, "%d", m->temb);
        mk[k] = "ddpm.time_embedding";
        mv[k++] = temb;
    }
    if (m->residual) {
        mk[k] = "ddpm.residual";
        mv[k++] = "1";
    }
    if (m->attention) {
        mk[k] = "ddpm.attention";
        mv[k++] = unet_attention_name(m->attention);
    }
    DDPM_CHECK(k == n_meta);
    int rc = safetensors_write_digest(path, ts, nt, mk, mv, n_meta, CHECKPOINT_DIGEST_KEY);
    xfree(ts);
    xfree(mk);
    xfree(mv);
    return rc;
}

int checkpoint_save(const Unet *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra) {
    return checkpoint_save_with(m, path, NULL, 0, keys, values, n_extra);
}

int checkpoint_verify(const StFile *f, int require_digest) {
    int v = safetensors_verify_digest(f, CHECKPOINT_DIGEST_KEY);
    /* Files that name a ddpm format always carry a digest: without one, the file (or the
     * digest's key) was damaged. */
    if (v == 1 && (require_digest || safetensors_meta(f, CHECKPOINT_FORMAT_KEY)))
        return err_set("%s: has no integrity digest (%s): damaged, or not written by ddpm",
                       f->path, CHECKPOINT_DIGEST_KEY);
    return v < 0 ? -1 : 0;
}

int checkpoint_open(const char *path, StFile *f, int require_digest) {
    if (safetensors_open(path, f) != 0) return -1;
    if (checkpoint_verify(f, require_digest) != 0) {
        safetensors_close(f);
        return -1;
    }
    return 0;
}

int checkpoint_read_model(Unet *m, const StFile *f) {
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        float *dst = unet_tensor_data(m, t);
        if (safetensors_read_f32(f, t->name, dst, t->ndim, t->shape) != 0) return -1;
        for (size_t k = 0; k < t->count; k++)
            if (!isfinite(dst[k]))
                return err_set("%s: tensor \"%s\" holds a non-finite value (%g at index %zu)",
                               f->path, t->name, (double)dst[k], k);
    }
    return 0;
}

int checkpoint_load_into(Unet *m, const char *path) {
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    int rc = checkpoint_read_model(m, &f);
    safetensors_close(&f);
    return rc;
}

int checkpoint_ema_tensors(const Unet *m, const float *ema, StTensor *out, char (*names)[64]) {
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        snprintf(names[i], 64, "ema.%s", t->name);
        out[i] = (StTensor){.name = names[i], .dtype = ST_F32, .ndim = t->ndim,
                            .data = ema + (t->is_buffer ? m->n_params : 0) + t->offset};
        for (int d = 0; d < t->ndim; d++) out[i].shape[d] = t->shape[d];
    }
    return m->n_tensors;
}

int checkpoint_has_ema(const StFile *f) {
    for (int i = 0; i < f->n; i++)
        if (strncmp(f->entries[i].name, "ema.", 4) == 0) return 1;
    return 0;
}

int checkpoint_read_ema(const Unet *m, float *ema, const StFile *f) {
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        char name[64];
        snprintf(name, sizeof name, "ema.%s", t->name);
        float *dst = ema + (t->is_buffer ? m->n_params : 0) + t->offset;
        if (safetensors_read_f32(f, name, dst, t->ndim, t->shape) != 0) return -1;
        for (size_t k = 0; k < t->count; k++)
            if (!isfinite(dst[k]))
                return err_set("%s: tensor \"%s\" holds a non-finite value (%g at index %zu)",
                               f->path, name, (double)dst[k], k);
    }
    return 0;
}

int checkpoint_load(Unet *m, const char *path, int max_batch, int nthreads) {
    return checkpoint_load_ex(m, path, max_batch, nthreads, 1, NULL);
}

int checkpoint_load_ex(Unet *m, const char *path, int max_batch, int nthreads, int use_ema,
                       int *used_ema) {
    if (used_ema) *used_ema = 0;
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    const char *kind_s = safetensors_meta(&f, "ddpm.kind");
    const char *width_s = safetensors_meta(&f, "ddpm.width");
    UnetKind kind;
    int rc = -1;
    if (!kind_s || !width_s) {
        err_set("%s: not a ddpm checkpoint (metadata ddpm.kind / ddpm.width missing)", path);
        goto done;
    }
    if (unet_kind_parse(kind_s, &kind) != 0) {
        err_set("%s: unknown model kind '%.40s' in metadata", path, kind_s);
        goto done;
    }
    char *end;
    long width = strtol(width_s, &end, 10);
    if (*width_s < '0' || *width_s > '9' || *end || width < 1 || width > 1024) {
        err_set("%s: bad width '%.40s' in metadata (1 to 1024)", path, width_s);
        goto done;
    }
    /* the time embedding's width, absent (0: scalar t/T) in files of the SPEC's model */
    long temb = 0;
    const char *temb_s = safetensors_meta(&f, "ddpm.time_embedding");
    if (temb_s) {
        temb = strtol(temb_s, &end, 10);
        if (*temb_s < '0' || *temb_s > '9' || *end || temb < 2 || temb > 1024 || temb % 2) {
            err_set("%s: bad ddpm.time_embedding '%.40s' in metadata (an even number, 2 to 1024)", path, temb_s);
            goto done;
        }
    }
    /* residual blocks and attention layers, absent in files of the SPEC's model */
    UnetOptions opt = {.temb = (int)temb};
    const char *res_s = safetensors_meta(&f, "ddpm.residual");
    if (res_s && strcmp(res_s, "0") != 0 && strcmp(res_s, "1") != 0) {
        err_set("%s: bad ddpm.residual '%.40s' in metadata (0 or 1)", path, res_s);
        goto done;
    }
    opt.residual = res_s && strcmp(res_s, "1") == 0;
    const char *attn_s = safetensors_meta(&f, "ddpm.attention");
    if (attn_s && unet_attention_parse(attn_s, &opt.attention) != 0) {
        err_set("%s: bad ddpm.attention '%.40s' in metadata (7, 14, 7,14 or none)", path, attn_s);
        goto done;
    }
    Rng rng;
    rng_seed(&rng, 0);
    if (unet_init_opts(m, kind, (int)width, &opt, max_batch, nthreads, &rng) != 0) goto done;
    if (checkpoint_read_model(m, &f) != 0) {
        unet_free(m);
        goto done;
    }
    if (use_ema && checkpoint_has_ema(&f)) {
        /* params then buffers are the model's own two arrays */
        float *ema = xmalloc((m->n_params + m->n_buffers) * sizeof(float));
        int erc = checkpoint_read_ema(m, ema, &f);
        if (erc == 0) {
            memcpy(m->params, ema, m->n_params * sizeof(float));
            memcpy(m->buffers, ema + m->n_params, m->n_buffers * sizeof(float));
            if (used_ema) *used_ema = 1;
        }
        xfree(ema);
        if (erc != 0) {
            unet_free(m);
            goto done;
        }
    }
    rc = 0;
done:
    safetensors_close(&f);
    return rc;
}

int checkpoint_schedule(const char *path, int *T, float *beta_start, float *beta_end) {
    ScheduleKind k;
    return checkpoint_schedule_kind(path, &k, T, beta_start, beta_end);
}

/* The run configuration a weights file carries (metadata ddpm.config), parsed: *out is the
 * JSON object, or NULL when the file has none. Returns 0, or -1 with err_msg(). */
static int config_json(const char *path, cJSON **out) {
    *out = NULL;
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    const char *cfg = safetensors_meta(&f, "ddpm.config");
    int rc = 0;
    if (cfg) {
        *out = cJSON_Parse(cfg);
        if (!cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = NULL;
            rc = err_set("%s: metadata ddpm.config is not a JSON object", path);
        }
    }
    safetensors_close(&f);
    return rc;
}

int checkpoint_schedule_kind(const char *path, ScheduleKind *kind, int *T, float *beta_start,
                             float *beta_end) {
    *kind = SCHEDULE_LINEAR;
    cJSON *j;
    int rc = config_json(path, &j);
    if (rc == 0 && j) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "T");
        const cJSON *b0 = cJSON_GetObjectItemCaseSensitive(j, "beta_start");
        const cJSON *b1 = cJSON_GetObjectItemCaseSensitive(j, "beta_end");
        int nT = *T;
        double nb0 = *beta_start, nb1 = *beta_end;
        if (t && (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
                  t->valuedouble < 1 || t->valuedouble > 100000))
            rc = err_set("%s: ddpm.config: T must be an integer from 1 to 100000", path);
        else if (t)
            nT = (int)t->valuedouble;
        if (rc == 0 && b0) {
            if (cJSON_IsNumber(b0) && b0->valuedouble > 0 && b0->valuedouble < 1) nb0 = b0->valuedouble;
            else rc = err_set("%s: ddpm.config: beta_start must be a number in (0, 1)", path);
        }
        if (rc == 0 && b1) {
            if (cJSON_IsNumber(b1) && b1->valuedouble > 0 && b1->valuedouble < 1) nb1 = b1->valuedouble;
            else rc = err_set("%s: ddpm.config: beta_end must be a number in (0, 1)", path);
        }
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "schedule");
        if (rc == 0 && sk && (!cJSON_IsString(sk) || schedule_kind_parse(sk->valuestring, kind) != 0))
            rc = err_set("%s: ddpm.config: schedule must be \"linear\" or \"cosine\"", path);
        if (rc == 0 && nb0 > nb1)
            rc = err_set("%s: ddpm.config: beta_start %g is larger than beta_end %g", path, nb0, nb1);
        if (rc == 0) {
            *T = nT;
            *beta_start = (float)nb0;
            *beta_end = (float)nb1;
        }
    }
    cJSON_Delete(j);
    return rc;
}

int checkpoint_dataset(const char *path, Dataset *d) {
    *d = DATASET_MNIST;
    cJSON *j;
    int rc = config_json(path, &j);
    const cJSON *ds = j ? cJSON_GetObjectItemCaseSensitive(j, "dataset") : NULL;
    if (rc == 0 && ds && (!cJSON_IsString(ds) || dataset_parse(ds->valuestring, d) != 0))
        rc = err_set("%s: ddpm.config: dataset must be \"mnist\" or \"fashion\"", path);
    cJSON_Delete(j);
    return rc;
}
