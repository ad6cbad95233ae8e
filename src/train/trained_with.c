/* What a weights file says about the run that trained it (its metadata ddpm.config, the
 * configuration as train/config.c writes it): the noise schedule and the data set. */
#include "train/trained_with.h"

#include <math.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "model/checkpoint.h"

/* The run configuration a weights file carries (metadata ddpm.config), parsed: *out is the
 * JSON object, or NULL when the file has none. Returns 0, or -1 with err_msg(). */
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

int trained_schedule_st(const StFile *f, ScheduleKind *kind, int *T, float *beta_start,
                        float *beta_end) {
    const char *path = f->path;
    *kind = SCHEDULE_LINEAR;
    cJSON *j;
    int rc = config_json(f, &j);
    if (rc == 0 && j) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "T");
        const cJSON *b0 = cJSON_GetObjectItemCaseSensitive(j, "beta_start");
        const cJSON *b1 = cJSON_GetObjectItemCaseSensitive(j, "beta_end");
        int nT = *T;
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
    }
    cJSON_Delete(j);
    return rc;
}

int trained_dataset_st(const StFile *f, Dataset *d) {
    *d = DATASET_MNIST;
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
