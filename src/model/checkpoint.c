/* UNet <-> safetensors, with an integrity digest over the contents. */
#include "model/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "model/fold.h"

int checkpoint_save_with(const Unet *m, const char *path, const StTensor *extra, int n_extra_t,
                         const char *const *keys, const char *const *values, int n_extra) {
    DDPM_CHECK(n_extra_t >= 0 && n_extra >= 0);
    int nt = m->n_tensors + n_extra_t;
    StTensor *ts = xcalloc((size_t)nt, sizeof(StTensor));
    float *host = unet_state_download(m);
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        ts[i].name = t->name;
        ts[i].dtype = ST_F32;
        ts[i].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) ts[i].shape[d] = t->shape[d];
        ts[i].data = host + (t->is_buffer ? m->n_params : 0) + t->offset;
    }
    for (int i = 0; i < n_extra_t; i++) ts[m->n_tensors + i] = extra[i];
    int rc = checkpoint_write(m, path, ts, nt, keys, values, n_extra);
    xfree(ts);
    xfree(host);
    return rc;
}

int checkpoint_write(const Unet *m, const char *path, const StTensor *ts, int nt,
                     const char *const *keys, const char *const *values, int n_extra) {
    DDPM_CHECK(nt >= 0 && n_extra >= 0);
    int has_format = 0;
    for (int i = 0; i < n_extra; i++) has_format |= strcmp(keys[i], CHECKPOINT_FORMAT_KEY) == 0;
    /* the options beyond the SPEC are written only when set: the SPEC model's files keep
     * exactly their keys */
    int n_meta = 3 + n_extra + !has_format + (m->temb > 0) + (m->residual != 0) + (m->attention != 0);
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
    cJSON *gj = geometry_to_json(&m->geom);
    char *geom = gj ? cJSON_PrintUnformatted(gj) : NULL;
    cJSON_Delete(gj);
    if (!geom) {
        xfree(mk);
        xfree(mv);
        return err_set("%s: out of memory writing the image geometry", path);
    }
    mk[k] = "ddpm.geometry";
    mv[k++] = geom;
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
    cJSON_free(geom);
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

const char *checkpoint_tensor_name(const StFile *f, const char *name, char *buf, size_t size) {
    if (safetensors_find(f, name)) return name;
    if (unet_tensor_legacy_name(name, buf, size) == 0 && safetensors_find(f, buf)) return buf;
    return name;
}

/* Tensor t of m, called name in the file (or by its older name), into dst; finite. */
static int read_tensor(const StFile *f, const char *name, const UnetTensor *t, float *dst) {
    char legacy[80];
    const char *in_file = checkpoint_tensor_name(f, name, legacy, sizeof legacy);
    if (safetensors_read_f32(f, in_file, dst, t->ndim, t->shape) != 0) return -1;
    for (size_t k = 0; k < t->count; k++)
        if (!isfinite(dst[k]))
            return err_set("%s: tensor \"%s\" holds a non-finite value (%g at index %zu)",
                           f->path, in_file, (double)dst[k], k);
    return 0;
}

int checkpoint_is_folded(const StFile *f) {
    const char *v = safetensors_meta(f, CHECKPOINT_FOLDED_KEY);
    return v && strcmp(v, "1") == 0;
}

int checkpoint_weights_are_ema(const StFile *f) {
    const char *v = safetensors_meta(f, CHECKPOINT_EMA_KEY);
    return v && strcmp(v, "1") == 0;
}

int checkpoint_read_model(Unet *m, const StFile *f) {
    float *host = xmalloc((m->n_params + m->n_buffers + 1) * sizeof(float));
    const int folded = checkpoint_is_folded(f);
    int rc = 0;
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        const UnetTensor *t = &m->tensors[i];
        float *dst = host + (t->is_buffer ? m->n_params : 0) + t->offset;
        /* folded weights (ddpm export) hold no BatchNorm: it is the identity */
        if (folded && unet_bn_identity(t, dst) == 0) continue;
        rc = read_tensor(f, t->name, t, dst);
    }
    if (rc == 0) unet_state_upload(m, host);
    xfree(host);
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
        if (read_tensor(f, name, t, ema + (t->is_buffer ? m->n_params : 0) + t->offset) != 0)
            return -1;
    }
    return 0;
}

int checkpoint_geometry(ImageGeom *g, const StFile *f) {
    const char *gs = safetensors_meta(f, "ddpm.geometry");
    if (!gs) {
        *g = geometry_mnist(); /* every file written before the geometry was stored */
        return 0;
    }
    cJSON *j = cJSON_Parse(gs);
    int rc = geometry_from_json(g, j);
    cJSON_Delete(j);
    if (rc != 0) return err_set("%s: metadata ddpm.geometry: %s", f->path, err_msg());
    return 0;
}

/* An integer metadata value from lo to hi (and even when even is set); def when absent. */
static int meta_int(const StFile *f, const char *key, long lo, long hi, int even, long def,
                    long *out) {
    const char *v = safetensors_meta(f, key);
    *out = def;
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || x < lo || x > hi || (even && x % 2))
        return err_set("%s: bad %s '%.40s' in metadata (%s%ld to %ld)", f->path, key, v,
                       even ? "an even number, " : "", lo, hi);
    *out = x;
    return 0;
}

/* The model a checkpoint describes: kind, width, geometry and options from its metadata. */
static int config_from_meta(UnetConfig *c, const StFile *f) {
    memset(c, 0, sizeof *c);
    const char *kind_s = safetensors_meta(f, "ddpm.kind");
    if (!kind_s || !safetensors_meta(f, "ddpm.width"))
        return err_set("%s: not a ddpm checkpoint (metadata ddpm.kind / ddpm.width missing)", f->path);
    if (unet_kind_parse(kind_s, &c->kind) != 0)
        return err_set("%s: unknown model kind '%.40s' in metadata", f->path, kind_s);
    long width, temb;
    if (meta_int(f, "ddpm.width", 1, 1024, 0, 0, &width) != 0) return -1;
    /* the options, absent in files of the SPEC's model: the time embedding's width (0:
     * scalar t/T), residual blocks, attention layers */
    if (meta_int(f, "ddpm.time_embedding", 2, 1024, 1, 0, &temb) != 0) return -1;
    c->width = (int)width;
    c->opt.temb = (int)temb;
    const char *res_s = safetensors_meta(f, "ddpm.residual");
    if (res_s && strcmp(res_s, "0") != 0 && strcmp(res_s, "1") != 0)
        return err_set("%s: bad ddpm.residual '%.40s' in metadata (0 or 1)", f->path, res_s);
    c->opt.residual = res_s && strcmp(res_s, "1") == 0;
    const char *attn_s = safetensors_meta(f, "ddpm.attention");
    if (attn_s && unet_attention_parse(attn_s, &c->opt.attention) != 0)
        return err_set("%s: bad ddpm.attention '%.40s' in metadata (down2, up1, down2,up1 or none)",
                       f->path, attn_s);
    return checkpoint_geometry(&c->geom, f);
}

/* The moving averages in f, when it has them, in place of m's weights. */
static int load_ema(Unet *m, int *used_ema, const StFile *f) {
    if (!checkpoint_has_ema(f)) return 0;
    /* params then buffers are the model's own two arrays */
    float *ema = xmalloc((m->n_params + m->n_buffers) * sizeof(float));
    int rc = checkpoint_read_ema(m, ema, f);
    if (rc == 0) {
        unet_state_upload(m, ema);
        if (used_ema) *used_ema = 1;
    }
    xfree(ema);
    return rc;
}

int checkpoint_load_st(Unet *m, int *used_ema, const StFile *f, const CheckpointLoadOptions *o) {
    if (used_ema) *used_ema = 0;
    UnetConfig c;
    Rng rng;
    rng_seed(&rng, 0);
    if (config_from_meta(&c, f) != 0) return -1;
    c.device = o->device;
    if (unet_init(m, &c, o->max_batch, o->nthreads, &rng) != 0) return -1;
    int rc = checkpoint_read_model(m, f);
    if (rc == 0 && o->use_ema) rc = load_ema(m, used_ema, f);
    if (rc != 0) unet_free(m);
    return rc;
}

int checkpoint_load(Unet *m, int *used_ema, const char *path, const CheckpointLoadOptions *o) {
    if (used_ema) *used_ema = 0;
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    int rc = checkpoint_load_st(m, used_ema, &f, o);
    safetensors_close(&f);
    return rc;
}
