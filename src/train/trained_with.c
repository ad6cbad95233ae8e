/* What a weights file says about the run that trained it: its own schedule and data set keys
 * (inference weights), else its ddpm.config (the configuration as train/config.c writes it). */
#include "train/trained_with.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "model/checkpoint.h"

/* The run configuration an opened weights file carries (metadata ddpm.config), parsed: *out
 * is the JSON object, or NULL when the file has none. Returns 0, or -1 with err_msg(). */
static int config_json(const StFile *f, cJSON **out) {
    *out = NULL;
    const char *cfg = safetensors_meta(f, "ddpm.config");
    if (!cfg) return 0;
    *out = cJSON_Parse(cfg);
    if (cJSON_IsObject(*out)) return 0;
    cJSON_Delete(*out);
    *out = NULL;
    return err_set("%s: metadata ddpm.config is not a JSON object", f->path);
}

static int schedule_from_config(const char *path, const cJSON *j, ScheduleKind *kind, int *T,
                                float *beta_start, float *beta_end) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "T");
    const cJSON *b0 = cJSON_GetObjectItemCaseSensitive(j, "beta_start");
    const cJSON *b1 = cJSON_GetObjectItemCaseSensitive(j, "beta_end");
    int nT = *T, rc = 0;
    double nb0 = *beta_start, nb1 = *beta_end;
    if (t && (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
              !(fabs(t->valuedouble) <= SCHEDULE_MAX_T) || schedule_check_T((int)t->valuedouble) != 0))
        rc = err_set("%s: ddpm.config: T must be an integer from 1 to %d", path, SCHEDULE_MAX_T);
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
    return rc;
}

/* A beta from metadata key: a plain decimal number in (0, 1). */
static int meta_beta(const StFile *f, const char *key, double *out) {
    const char *v = safetensors_meta(f, key);
    char *end = NULL;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || end == v || *end || errno || !(x > 0 && x < 1))
        return err_set("%s: metadata %s must be a number in (0, 1)", f->path, key);
    *out = x;
    return 0;
}

/* The schedule in the file's own keys (all four together). */
static int schedule_from_keys(const StFile *f, ScheduleKind *kind, int *T, float *beta_start,
                              float *beta_end) {
    const char *ks = safetensors_meta(f, TRAINED_SCHEDULE_KEY);
    const char *ts = safetensors_meta(f, TRAINED_T_KEY);
    if (schedule_kind_parse(ks, kind) != 0)
        return err_set("%s: metadata %s must be \"linear\" or \"cosine\"", f->path, TRAINED_SCHEDULE_KEY);
    char *end = NULL;
    errno = 0;
    long t = ts && *ts >= '0' && *ts <= '9' ? strtol(ts, &end, 10) : 0;
    if (!ts || !end || *end || errno || t < 1 || t > SCHEDULE_MAX_T)
        return err_set("%s: metadata %s must be an integer from 1 to %d", f->path, TRAINED_T_KEY,
                       SCHEDULE_MAX_T);
    double b0 = 0, b1 = 0;
    if (meta_beta(f, TRAINED_BETA_START_KEY, &b0) != 0 || meta_beta(f, TRAINED_BETA_END_KEY, &b1) != 0)
        return -1;
    if (b0 > b1)
        return err_set("%s: metadata: beta_start %g is larger than beta_end %g", f->path, b0, b1);
    *T = (int)t;
    *beta_start = (float)b0;
    *beta_end = (float)b1;
    return 0;
}

int trained_schedule_st(const StFile *f, ScheduleKind *kind, int *T, float *beta_start,
                        float *beta_end) {
    *kind = SCHEDULE_LINEAR;
    if (safetensors_meta(f, TRAINED_SCHEDULE_KEY))
        return schedule_from_keys(f, kind, T, beta_start, beta_end);
    cJSON *j;
    int rc = config_json(f, &j);
    if (rc == 0 && j) rc = schedule_from_config(f->path, j, kind, T, beta_start, beta_end);
    cJSON_Delete(j);
    return rc;
}

int trained_dataset_st(const StFile *f, Dataset *d) {
    *d = DATASET_MNIST;
    const char *key = safetensors_meta(f, TRAINED_DATASET_KEY);
    if (key) {
        if (dataset_parse(key, d) != 0)
            return err_set("%s: metadata %s must be \"mnist\" or \"fashion\"", f->path,
                           TRAINED_DATASET_KEY);
        return 0;
    }
    cJSON *j;
    int rc = config_json(f, &j);
    const cJSON *ds = j ? cJSON_GetObjectItemCaseSensitive(j, "dataset") : NULL;
    if (rc == 0 && ds && (!cJSON_IsString(ds) || dataset_parse(ds->valuestring, d) != 0))
        rc = err_set("%s: ddpm.config: dataset must be \"mnist\" or \"fashion\"", f->path);
    cJSON_Delete(j);
    return rc;
}

int trained_schedule(const char *path, ScheduleKind *kind, int *T, float *beta_start,
                     float *beta_end) {
    *kind = SCHEDULE_LINEAR;
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    int rc = trained_schedule_st(&f, kind, T, beta_start, beta_end);
    safetensors_close(&f);
    return rc;
}

int trained_dataset(const char *path, Dataset *d) {
    *d = DATASET_MNIST;
    StFile f;
    if (checkpoint_open(path, &f, 0) != 0) return -1;
    int rc = trained_dataset_st(&f, d);
    safetensors_close(&f);
    return rc;
}
