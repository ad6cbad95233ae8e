/* UNet <-> safetensors. */
#include "model/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>

int checkpoint_save(const Unet *m, const char *path, const char *const *keys,
                    const char *const *values, int n_extra) {
    StTensor *ts = xcalloc((size_t)m->n_tensors, sizeof(StTensor));
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        ts[i].name = t->name;
        ts[i].dtype = ST_F32;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
        ts[i].data = unet_tensor_data(m, t);
    }
    int n_meta = 2 + n_extra;
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
    int rc = safetensors_write(path, ts, m->n_tensors, mk, mv, n_meta);
    xfree(ts);
    xfree(mk);
    xfree(mv);
    return rc;
}

static int load_tensors(Unet *m, const StFile *f, const char *path) {
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        if (safetensors_read_f32(f, t->name, unet_tensor_data(m, t), t->ndim, t->shape) != 0)
            return -1;
    }
    (void)path;
    return 0;
}

int checkpoint_load_into(Unet *m, const char *path) {
    StFile f;
    if (safetensors_open(path, &f) != 0) return -1;
    int rc = load_tensors(m, &f, path);
    safetensors_close(&f);
    return rc;
}

int checkpoint_load(Unet *m, const char *path, int max_batch, int nthreads) {
    StFile f;
    if (safetensors_open(path, &f) != 0) return -1;
    const char *kind_s = safetensors_meta(&f, "ddpm.kind");
    const char *width_s = safetensors_meta(&f, "ddpm.width");
    UnetKind kind;
    int rc = -1;
    if (!kind_s || !width_s) {
        err_set("%s: not a ddpm checkpoint (metadata ddpm.kind / ddpm.width missing)", path);
        goto done;
    }
    if (unet_kind_parse(kind_s, &kind) != 0) {
        err_set("%s: unknown model kind '%s' in metadata", path, kind_s);
        goto done;
    }
    char *end;
    long width = strtol(width_s, &end, 10);
    if (*end || width < 1 || width > 1024) {
        err_set("%s: bad width '%s' in metadata", path, width_s);
        goto done;
    }
    Rng rng;
    rng_seed(&rng, 0);
    if (unet_init(m, kind, (int)width, max_batch, nthreads, &rng) != 0) goto done;
    if (load_tensors(m, &f, path) != 0) {
        unet_free(m);
        goto done;
    }
    rc = 0;
done:
    safetensors_close(&f);
    return rc;
}

int checkpoint_schedule(const char *path, int *T, float *beta_start, float *beta_end) {
    StFile f;
    if (safetensors_open(path, &f) != 0) return -1;
    const char *cfg = safetensors_meta(&f, "ddpm.config");
    cJSON *j = cfg ? cJSON_Parse(cfg) : NULL;
    if (j) {
        const cJSON *t = cJSON_GetObjectItem(j, "T");
        const cJSON *b0 = cJSON_GetObjectItem(j, "beta_start");
        const cJSON *b1 = cJSON_GetObjectItem(j, "beta_end");
        if (cJSON_IsNumber(t)) *T = t->valueint;
        if (cJSON_IsNumber(b0)) *beta_start = (float)b0->valuedouble;
        if (cJSON_IsNumber(b1)) *beta_end = (float)b1->valuedouble;
        cJSON_Delete(j);
    }
    safetensors_close(&f);
    return 0;
}
