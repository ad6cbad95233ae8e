/* The training-state checkpoint: writing it atomically with a digest, and reading it back with every value checked, since a resumed run
 * trusts it completely. */
#include "train/state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"

#define N_COUNTERS 7
#define N_RNG 6
/* The data-order generator's seed, derived from the run's seed (train_progress_init). */
#define DATA_SEED_MIX 0xD1B54A32D192ED03ULL

/* ---- progress ------------------------------------------------------------------------ */

void train_progress_init(TrainProgress *p, const TrainConfig *c, int n_train) {
    memset(p, 0, sizeof *p);
    p->epoch = 1;
    p->n_train = n_train;
    p->steps_per_epoch = (n_train + c->batch - 1) / c->batch;
    p->capacity = (long)p->steps_per_epoch * c->epochs;
    p->loss = xcalloc((size_t)(p->capacity > 0 ? p->capacity : 1), sizeof(float));
    p->lr = xcalloc((size_t)(p->capacity > 0 ? p->capacity : 1), sizeof(float));
    rng_seed(&p->data_rng, c->seed ^ DATA_SEED_MIX);
}

void train_progress_free(TrainProgress *p) {
    xfree(p->loss);
    xfree(p->lr);
    free(p->metrics);
    memset(p, 0, sizeof *p);
}

/* ---- generators as I64 tensors --------------------------------------------------------- */

static void rng_pack(const Rng *r, int64_t out[N_RNG]) {
    for (int i = 0; i < 4; i++) out[i] = (int64_t)r->s[i];
    uint32_t bits;
    memcpy(&bits, &r->spare, sizeof bits);
    out[4] = r->has_spare;
    out[5] = (int64_t)bits;
}

static int rng_unpack(const int64_t in[N_RNG], Rng *r, const char *path, const char *name) {
    if ((in[0] | in[1] | in[2] | in[3]) == 0)
        return err_set("%s: tensor \"%s\" holds the all-zero state, which xoshiro never reaches",
                       path, name);
    if (in[4] != 0 && in[4] != 1)
        return err_set("%s: tensor \"%s\": has_spare must be 0 or 1", path, name);
    if (in[5] < 0 || in[5] > (int64_t)UINT32_MAX)
        return err_set("%s: tensor \"%s\": the spare value is not a float's bits", path, name);
    uint32_t bits = (uint32_t)in[5];
    float spare;
    memcpy(&spare, &bits, sizeof spare);
    if (!isfinite(spare))
        return err_set("%s: tensor \"%s\": the spare value is not finite", path, name);
    for (int i = 0; i < 4; i++) r->s[i] = (uint64_t)in[i];
    r->has_spare = (int)in[4];
    r->spare = spare;
    return 0;
}

/* ---- save ------------------------------------------------------------------------------ */

static StTensor i64_tensor(const char *name, const int64_t *data, int64_t n) {
    return (StTensor){.name = name, .dtype = ST_I64, .ndim = 1, .shape = {n}, .data = data};
}

int train_state_save(const char *path, TrainStateRefs tr, const TrainProgress *p,
                     const char *cfg_text) {
    const Unet *m = tr.model;
    int np = 0;
    for (int i = 0; i < m->n_tensors; i++) np += !m->tensors[i].is_buffer;
    const int n_ema = tr.ema ? m->n_tensors : 0;
    const int n_extra = 2 * np + 5 + n_ema;
    StTensor *ex = xcalloc((size_t)n_extra, sizeof(StTensor));
    char (*names)[64] = xcalloc((size_t)(2 * np + n_ema), sizeof *names);
    /* host copies of what lives in the backend's memory */
    const size_t nm = m->n_params, ne = m->n_params + m->n_buffers;
    float *hm = xmalloc((nm + 1) * sizeof(float)), *hv = xmalloc((nm + 1) * sizeof(float));
    float *he = tr.ema ? xmalloc(ne * sizeof(float)) : NULL;
    dev_download(&m->ctx, hm, tr.m, nm * sizeof(float));
    dev_download(&m->ctx, hv, tr.v, nm * sizeof(float));
    if (he) dev_download(&m->ctx, he, tr.ema, ne * sizeof(float));
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        if (t->is_buffer) continue;
        for (int mv = 0; mv < 2; mv++) {
            snprintf(names[k], sizeof names[k], "adam.%c.%s", mv ? 'v' : 'm', t->name);
            ex[k] = (StTensor){.name = names[k], .dtype = ST_F32, .ndim = t->ndim,
                               .data = (mv ? hv : hm) + t->offset};
            for (int d = 0; d < t->ndim; d++) ex[k].shape[d] = t->shape[d];
            k++;
        }
    }
    int64_t counters[N_COUNTERS] = {p->epoch, p->epoch_step, p->step, *tr.step, p->n_train,
                                    p->steps_per_epoch, (int64_t)tr.cfg->seed};
    int64_t noise[N_RNG], data[N_RNG];
    rng_pack(tr.noise_rng, noise);
    rng_pack(&p->data_rng, data);
    ex[k++] = i64_tensor("train.counters", counters, N_COUNTERS);
    ex[k++] = i64_tensor("train.rng.noise", noise, N_RNG);
    ex[k++] = i64_tensor("train.rng.data", data, N_RNG);
    ex[k++] = (StTensor){.name = "train.loss", .dtype = ST_F32, .ndim = 1, .shape = {p->step},
                         .data = p->loss};
    ex[k++] = (StTensor){.name = "train.lr", .dtype = ST_F32, .ndim = 1, .shape = {p->step},
                         .data = p->lr};
    if (he) k += checkpoint_ema_tensors(m, he, ex + k, names + 2 * np);
    DDPM_CHECK(k == n_extra);

    char epoch_s[24], step_s[24], seconds[160], ranks_s[24];
    snprintf(ranks_s, sizeof ranks_s, "%d", p->ranks > 0 ? p->ranks : 1);
    snprintf(epoch_s, sizeof epoch_s, "%d", p->epoch);
    snprintf(step_s, sizeof step_s, "%ld", p->step);
    snprintf(seconds, sizeof seconds, "{\"train\":%.17g,\"wall\":%.17g,\"epoch\":%.17g}",
             p->train_seconds, p->wall_seconds, p->epoch_seconds);
    const char *keys[] = {CHECKPOINT_FORMAT_KEY, "ddpm.config", "ddpm.epoch", "ddpm.step",
                          "ddpm.metrics", "ddpm.seconds", "ddpm.ranks"};
    const char *vals[] = {TRAIN_STATE_FORMAT, cfg_text, epoch_s, step_s,
                          p->metrics ? p->metrics : "{}", seconds, ranks_s};
    int rc = checkpoint_save_with(m, path, ex, n_extra, keys, vals, 7);
    xfree(ex);
    xfree(names);
    xfree(hm);
    xfree(hv);
    xfree(he);
    return rc;
}

/* ---- load ------------------------------------------------------------------------------ */

/* Open with the digest required and check the format tag. */
static int state_open(const char *path, StFile *f) {
    if (checkpoint_open(path, f, 1) != 0) return -1;
    const char *fmt = safetensors_meta(f, CHECKPOINT_FORMAT_KEY);
    if (fmt && strcmp(fmt, CHECKPOINT_INFERENCE_FORMAT) == 0) {
        err_set("%s: holds inference-only weights (ddpm export: BatchNorm folded, no optimizer "
                "state), from which training cannot resume", path);
        safetensors_close(f);
        return -1;
    }
    if (!fmt || strcmp(fmt, TRAIN_STATE_FORMAT) != 0) {
        err_set("%s: not a ddpm training-state checkpoint (ddpm.format is %s%.40s%s, expected "
                "\"%s\")", path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "",
                TRAIN_STATE_FORMAT);
        safetensors_close(f);
        return -1;
    }
    return 0;
}

int train_state_read_config(const char *path, TrainConfig *c, char *data_buf, size_t cap) {
    StFile f;
    if (state_open(path, &f) != 0) return -1;
    int rc = -1;
    const char *cfg = safetensors_meta(&f, "ddpm.config");
    int64_t counters[N_COUNTERS];
    const int64_t shape[1] = {N_COUNTERS};
    if (!cfg) {
        err_set("%s: has no configuration (metadata ddpm.config)", path);
        goto done;
    }
    if (train_config_from_json(cfg, path, c, data_buf, cap) != 0) goto done;
    if (safetensors_read(&f, "train.counters", ST_I64, counters, 1, shape) != 0) goto done;
    /* JSON keeps the seed as a double; the counters keep it exactly. */
    uint64_t seed = (uint64_t)counters[6];
    if ((double)seed != (double)c->seed) {
        err_set("%s: the seed in train.counters (%llu) disagrees with the configuration's", path,
                (unsigned long long)seed);
        goto done;
    }
    c->seed = seed;
    rc = 0;
done:
    safetensors_close(&f);
    return rc;
}

/* A float tensor with the shape of t: read into dst, all finite (and >= 0 if nonneg). */
static int read_finite(const StFile *f, const char *name, float *dst, int ndim,
                       const int64_t *shape, size_t count, int nonneg) {
    if (safetensors_read_f32(f, name, dst, ndim, shape) != 0) return -1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]) || (nonneg && dst[i] < 0))
            return err_set("%s: tensor \"%s\" holds an invalid value (%g at index %zu)", f->path,
                           name, (double)dst[i], i);
    return 0;
}

static int check_counters(const char *path, const int64_t *k, const TrainConfig *c,
                          const TrainProgress *p) {
    const int64_t epoch = k[0], estep = k[1], step = k[2], adam = k[3], n_train = k[4],
                  spe = k[5];
    if (n_train != p->n_train || spe != p->steps_per_epoch)
        return err_set("%s: was saved for %lld training images (%lld steps per epoch), but the "
                       "data now gives %d (%d steps): resume with the same data and subset",
                       path, (long long)n_train, (long long)spe, p->n_train, p->steps_per_epoch);
    if (epoch < 1 || epoch > (int64_t)c->epochs + 1 || estep < 0 || estep > spe ||
        (epoch == (int64_t)c->epochs + 1 && estep != 0))
        return err_set("%s: epoch %lld, step %lld of it is outside a %d-epoch run of %lld steps "
                       "per epoch", path, (long long)epoch, (long long)estep, c->epochs,
                       (long long)spe);
    if (step != (epoch - 1) * spe + estep || adam != step)
        return err_set("%s: the step counters disagree (step %lld, Adam step %lld, epoch %lld "
                       "step %lld)", path, (long long)step, (long long)adam, (long long)epoch,
                       (long long)estep);
    return 0;
}

/* The seconds metadata: {"train": s, "wall": s, "epoch": s}, each finite and >= 0. */
static int read_seconds(const char *path, const char *text, TrainProgress *p) {
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    double v[3] = {0, 0, 0};
    const char *keys[3] = {"train", "wall", "epoch"};
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!cJSON_IsObject(j) || !cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
            it->valuedouble < 0 || it->valuedouble > 1e12)
            rc = err_set("%s: metadata ddpm.seconds is missing or malformed", path);
        else
            v[i] = it->valuedouble;
    }
    cJSON_Delete(j);
    if (rc == 0) {
        p->train_seconds = v[0];
        p->wall_seconds = v[1];
        p->epoch_seconds = v[2];
    }
    return rc;
}

int train_state_load(const char *path, TrainStateRefs tr, TrainProgress *p) {
    StFile f;
    if (state_open(path, &f) != 0) return -1;
    const TrainConfig *c = tr.cfg;
    Unet *m = tr.model;
    int rc = -1;
    /* read on the host, then uploaded to the backend's memory */
    const size_t nm = m->n_params, ne = m->n_params + m->n_buffers;
    float *hm = xmalloc((nm + 1) * sizeof(float)), *hv = xmalloc((nm + 1) * sizeof(float));
    float *he = tr.ema ? xmalloc(ne * sizeof(float)) : NULL;
    const char *kind = safetensors_meta(&f, "ddpm.kind");
    const char *width = safetensors_meta(&f, "ddpm.width");
    char want_width[16];
    snprintf(want_width, sizeof want_width, "%d", c->width);
    if (!kind || !width || strcmp(kind, unet_kind_name(c->kind)) != 0 ||
        strcmp(width, want_width) != 0) {
        err_set("%s: the model's kind and width in the metadata disagree with its configuration",
                path);
        goto done;
    }
    const char *res_s = safetensors_meta(&f, "ddpm.residual");
    const char *attn_s = safetensors_meta(&f, "ddpm.attention");
    int attn = 0;
    if ((res_s && strcmp(res_s, "1") == 0) != (c->residual != 0) ||
        (attn_s && unet_attention_parse(attn_s, &attn) != 0) || attn != c->attention) {
        err_set("%s: the model's residual blocks or attention layers in the metadata disagree "
                "with its configuration", path);
        goto done;
    }
    ImageGeom saved_geom;
    if (checkpoint_geometry(&saved_geom, &f) != 0) goto done;
    /* shapes and class count only: files from before the geometry was stored read as MNIST's,
     * names included, also for Fashion-MNIST runs */
    if (saved_geom.channels != m->geom.channels || saved_geom.height != m->geom.height ||
        saved_geom.width != m->geom.width || saved_geom.classes != m->geom.classes) {
        err_set("%s: the run trained on %d x %d x %d images of %d classes, and its data now "
                "gives %d x %d x %d images of %d classes: resume it on the same data", path,
                saved_geom.channels, saved_geom.height, saved_geom.width, saved_geom.classes,
                m->geom.channels, m->geom.height, m->geom.width, m->geom.classes);
        goto done;
    }
    if (checkpoint_read_model(m, &f) != 0) goto done;
    for (int i = 0; i < m->n_tensors; i++) {
        const UnetTensor *t = &m->tensors[i];
        if (t->is_buffer) continue;
        char name[64], old[80]; /* old: the name before attention was named by place */
        snprintf(name, sizeof name, "adam.m.%s", t->name);
        const char *in_file = checkpoint_tensor_name(&f, name, old, sizeof old);
        if (read_finite(&f, in_file, hm + t->offset, t->ndim, t->shape, t->count, 0) != 0) goto done;
        snprintf(name, sizeof name, "adam.v.%s", t->name);
        in_file = checkpoint_tensor_name(&f, name, old, sizeof old);
        if (read_finite(&f, in_file, hv + t->offset, t->ndim, t->shape, t->count, 1) != 0) goto done;
    }
    if (he && checkpoint_read_ema(m, he, &f) != 0) goto done;
    int64_t k[N_COUNTERS], noise[N_RNG], data[N_RNG];
    const int64_t kshape[1] = {N_COUNTERS}, rshape[1] = {N_RNG};
    if (safetensors_read(&f, "train.counters", ST_I64, k, 1, kshape) != 0 ||
        check_counters(path, k, c, p) != 0)
        goto done;
    if ((uint64_t)k[6] != c->seed) {
        err_set("%s: the seed in train.counters disagrees with the configuration's", path);
        goto done;
    }
    if (safetensors_read(&f, "train.rng.noise", ST_I64, noise, 1, rshape) != 0 ||
        safetensors_read(&f, "train.rng.data", ST_I64, data, 1, rshape) != 0 ||
        rng_unpack(noise, tr.noise_rng, path, "train.rng.noise") != 0 ||
        rng_unpack(data, &p->data_rng, path, "train.rng.data") != 0)
        goto done;
    const int64_t lshape[1] = {k[2]};
    if (read_finite(&f, "train.loss", p->loss, 1, lshape, (size_t)k[2], 0) != 0 ||
        read_finite(&f, "train.lr", p->lr, 1, lshape, (size_t)k[2], 1) != 0)
        goto done;
    const char *metrics = safetensors_meta(&f, "ddpm.metrics");
    cJSON *mj = metrics ? cJSON_Parse(metrics) : NULL;
    int metrics_ok = cJSON_IsObject(mj);
    cJSON_Delete(mj);
    if (!metrics_ok) {
        err_set("%s: metadata ddpm.metrics is missing or not a JSON object", path);
        goto done;
    }
    if (read_seconds(path, safetensors_meta(&f, "ddpm.seconds"), p) != 0) goto done;
    /* the number of processes that trained it; states written before MPI have none: 1 */
    const char *ranks = safetensors_meta(&f, "ddpm.ranks");
    char *end = NULL;
    long nr = ranks ? strtol(ranks, &end, 10) : 1;
    if (ranks && (end == ranks || *end || nr < 1 || nr > 1000000)) {
        err_set("%s: metadata ddpm.ranks is not a process count (%.20s)", path, ranks);
        goto done;
    }
    p->ranks = (int)nr;
    free(p->metrics);
    p->metrics = xstrdup(metrics);
    p->epoch = (int)k[0];
    p->epoch_step = (int)k[1];
    p->step = (long)k[2];
    *tr.step = (long)k[3];
    dev_upload(&m->ctx, tr.m, hm, nm * sizeof(float));
    dev_upload(&m->ctx, tr.v, hv, nm * sizeof(float));
    if (he) dev_upload(&m->ctx, tr.ema, he, ne * sizeof(float));
    rc = 0;
done:
    safetensors_close(&f);
    xfree(hm);
    xfree(hv);
    xfree(he);
    return rc;
}
