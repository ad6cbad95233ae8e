/* The table of TrainConfig's fields and what it drives: the defaults of each kind,
 * config.json written in the table's order, and read back with every value checked, since a
 * resumed run trusts it completely. */
#include "train/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

/* TC_BOOL and TC_ENUM fields are read and written through int pointers. */
_Static_assert(sizeof(UnetKind) == sizeof(int) && sizeof(Dataset) == sizeof(int) &&
                   sizeof(ScheduleKind) == sizeof(int),
               "enums in TrainConfig must be int-sized");

/* ---- the names of the enumerated fields ------------------------------------------------- */

static const char *kind_name(int v) { return unet_kind_name((UnetKind)v); }
static int kind_parse(const char *s, int *v) {
    UnetKind k;
    if (unet_kind_parse(s, &k) != 0) return -1;
    *v = (int)k;
    return 0;
}
static const char *dataset_name_int(int v) { return dataset_name((Dataset)v); }
static int dataset_parse_int(const char *s, int *v) {
    Dataset d;
    if (dataset_parse(s, &d) != 0) return -1;
    *v = (int)d;
    return 0;
}
static const char *schedule_name_int(int v) { return schedule_kind_name((ScheduleKind)v); }
static int schedule_parse_int(const char *s, int *v) {
    ScheduleKind k;
    if (schedule_kind_parse(s, &k) != 0) return -1;
    *v = (int)k;
    return 0;
}

static const TrainConfigEnum KINDS = {kind_name, kind_parse, "\"denoiser\", \"time\" or \"class\""};
static const TrainConfigEnum DATASETS = {dataset_name_int, dataset_parse_int,
                                         "\"mnist\", \"fashion\", \"cifar10\" or \"folder\""};
static const TrainConfigEnum SCHEDULES = {schedule_name_int, schedule_parse_int,
                                          "\"linear\" or \"cosine\""};
static const TrainConfigEnum ATTENTIONS = {unet_attention_name, unet_attention_parse,
                                           "\"down2\", \"up1\", \"down2,up1\" or \"none\" (or the old \"7\", \"14\", \"7,14\")"};

/* ---- the table ---------------------------------------------------------------------------- */

#define OFF(f) offsetof(TrainConfig, f)
#define PER_KIND(denoiser, time, class) {denoiser, time, class}
#define ALL3(v) {v, v, v}
#define F(k, o, t, field, kd, fl, d, lo, hi)                                                  \
    .key = k, .option = o, .type = t, .offset = OFF(field), .kinds = kd, .flags = fl, .def = d, \
    .min = lo, .max = hi
/* Float defaults are float literals, so the double in the table converts back exactly. */
static const TrainConfigField FIELDS[] = {
    /* key, option, type, field, kinds, flags, defaults, min, max */
    {F("model", NULL, TC_ENUM, kind, TC_ALL, TC_KIND, PER_KIND(0, 1, 2), 0, 0), .names = &KINDS},
    {F("width", "width", TC_INT, width, TC_ALL, 0, PER_KIND(128, 64, 64), 1, 1024)},
    {F("batch", "batch", TC_INT, batch, TC_ALL, 0, PER_KIND(256, 128, 128), 1, 65536)},
    {F("epochs", "epochs", TC_INT, epochs, TC_ALL, 0, PER_KIND(5, 20, 20), 1, 100000)},
    {F("lr", "lr", TC_FLOAT, lr, TC_ALL, 0, PER_KIND(1e-4f, 1e-3f, 1e-3f), 1e-12, 10)},
    {F("lr_end", "lr-end", TC_FLOAT, lr_end, TC_ALL, 0, ALL3(1e-4f), 1e-12, 10)},
    /* JSON numbers are doubles: the largest below 2^64; the checkpoint keeps the exact seed */
    {F("seed", "seed", TC_U64, seed, TC_ALL, 0, ALL3(1), 0, 18446744073709549568.0)},
    {F("threads", "threads", TC_INT, threads, TC_ALL, 0, ALL3(2), 1, 1024)},
    {F("data", NULL, TC_STR, data_dir, TC_ALL, TC_OPTIONAL, ALL3(0), 0, 0)},
    {F("dataset", NULL, TC_ENUM, dataset, TC_ALL, TC_OPTIONAL, ALL3(DATASET_MNIST), 0, 0),
     .names = &DATASETS},
    /* a folder's size and colour mode (0: from the images) and held-out share (0: 0.1) */
    {F("image_size", "image-size", TC_INT, image_size, TC_ALL, TC_OPTIONAL | TC_IF_SET | TC_ZERO_OK,
       ALL3(0), 8, 1024)},
    {F("channels", "channels", TC_INT, channels, TC_ALL, TC_OPTIONAL | TC_IF_SET | TC_ZERO_OK,
       ALL3(0), 1, 3)},
    {F("test_fraction", "test-fraction", TC_FLOAT, test_fraction, TC_ALL,
       TC_OPTIONAL | TC_IF_SET | TC_ZERO_OK, ALL3(0), 0.001, 0.9)},
    {F("subset", "subset", TC_INT, subset, TC_ALL, TC_ZERO_OK, ALL3(0), 1, 60000)},
    {F("ema", "ema", TC_FLOAT, ema, TC_ALL, TC_OPTIONAL, ALL3(0), 0, 0.999999)},
    /* architecture options beyond the SPEC */
    {F("residual", NULL, TC_BOOL, residual, TC_ALL, TC_OPTIONAL | TC_IF_SET, ALL3(0), 0, 1)},
    {F("attention", NULL, TC_ENUM, attention, TC_ALL, TC_OPTIONAL | TC_IF_SET, ALL3(0), 0, 0),
     .names = &ATTENTIONS},
    {F("sigma", "sigma", TC_FLOAT, sigma, TC_DENOISER, 0, ALL3(0.5f), 0, 100)},
    {F("eval_n", "eval-n", TC_INT, eval_n, TC_DENOISER, TC_OPTIONAL, ALL3(10000), 1, 10000)},
    {F("sigma_table_n", "sigma-table-n", TC_INT, table_n, TC_DENOISER, TC_OPTIONAL, ALL3(10000),
       0, 10000)},
    {F("T", "T", TC_INT, T, TC_DIFFUSION, 0, ALL3(SCHEDULE_DEFAULT_T), 1, 100000)},
    {F("schedule", NULL, TC_ENUM, schedule, TC_DIFFUSION, TC_OPTIONAL, ALL3(SCHEDULE_LINEAR), 0,
       0), .names = &SCHEDULES},
    {F("time_embedding", "time-embedding", TC_INT, time_embedding, TC_DIFFUSION, TC_OPTIONAL,
       ALL3(0), 0, 1024)},
    {F("beta_start", "beta-start", TC_FLOAT, beta_start, TC_DIFFUSION, 0,
       ALL3(SCHEDULE_DEFAULT_BETA_START), 1e-12, 0.999999)},
    {F("beta_end", "beta-end", TC_FLOAT, beta_end, TC_DIFFUSION, 0,
       ALL3(SCHEDULE_DEFAULT_BETA_END), 1e-12, 0.999999)},
    {F("p_uncond", "p-uncond", TC_FLOAT, p_uncond, TC_CLASS, 0, ALL3(0.1f), 0, 1)},
    {F("guidance", "guidance", TC_FLOAT, guidance, TC_CLASS, 0, ALL3(5.0f), -100, 100)},
    /* the command line's --figure-epochs is a list parsed in cmd_train.c */
    {F("figure_epochs", NULL, TC_INT_LIST, fig_epochs, TC_ALL, TC_OPTIONAL, ALL3(0), 1, 100000),
     .count_offset = OFF(n_fig_epochs), .cap = TRAIN_MAX_FIG_EPOCHS,
     .list_def = {(const int[]){1, 5}, (const int[]){5, 20}, (const int[]){5, 20}},
     .list_def_n = 2},
    {F("checkpoint_every", "checkpoint-every", TC_INT, checkpoint_every, TC_ALL, TC_OPTIONAL,
       ALL3(0), 0, 1000000000)},
    /* not saved: where the run is, what it draws, how it reports, and test hooks */
    {F(NULL, NULL, TC_STR, out_dir, 0, 0, ALL3(0), 0, 0)},
    {F(NULL, NULL, TC_INT, n_grid, 0, 0, ALL3(40), 0, 0)},
    {F(NULL, NULL, TC_BOOL, progress, 0, 0, ALL3(0), 0, 1)},
    {F(NULL, NULL, TC_BOOL, resume, 0, 0, ALL3(0), 0, 1)},
    {F(NULL, "fault-nan-at", TC_LONG, fault_nan_at, 0, 0, ALL3(0), 1, 1e15)},
    {F(NULL, "fault-stop-at", TC_LONG, fault_stop_at, 0, 0, ALL3(0), 1, 1e15)},
    {F(NULL, NULL, TC_STR, device, 0, 0, ALL3(0), 0, 0)},
    {F(NULL, NULL, TC_HOOK, report, 0, 0, ALL3(0), 0, 0)},
};
#undef OFF
#undef PER_KIND
#undef ALL3
#undef F
#define N_FIELDS ((int)(sizeof FIELDS / sizeof FIELDS[0]))

const TrainConfigField *train_config_fields(int *n) {
    *n = N_FIELDS;
    return FIELDS;
}

/* ---- defaults and ranges ------------------------------------------------------------------ */

static void *at(TrainConfig *c, size_t offset) { return (char *)c + offset; }
static const void *at_c(const TrainConfig *c, size_t offset) { return (const char *)c + offset; }

void train_config_defaults(TrainConfig *c, UnetKind kind) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_FIELDS; i++) {
        const TrainConfigField *f = &FIELDS[i];
        double v = f->def[kind];
        switch (f->type) {
        case TC_INT: case TC_BOOL: case TC_ENUM: *(int *)at(c, f->offset) = (int)v; break;
        case TC_LONG: *(long *)at(c, f->offset) = (long)v; break;
        case TC_U64: *(uint64_t *)at(c, f->offset) = (uint64_t)v; break;
        case TC_FLOAT: *(float *)at(c, f->offset) = (float)v; break;
        case TC_STR: *(const char **)at(c, f->offset) = NULL; break;
        case TC_HOOK: memset(at(c, f->offset), 0, sizeof(Progress)); break;
        case TC_INT_LIST:
            memcpy(at(c, f->offset), f->list_def[kind], (size_t)f->list_def_n * sizeof(int));
            *(int *)at(c, f->count_offset) = f->list_def_n;
            break;
        }
    }
}

int train_config_option_range(const char *option, double *min, double *max) {
    for (int i = 0; i < N_FIELDS; i++) {
        const TrainConfigField *f = &FIELDS[i];
        if (!f->option || strcmp(f->option, option) != 0) continue;
        if (f->type != TC_INT && f->type != TC_LONG && f->type != TC_FLOAT) return -1;
        *min = f->min;
        *max = f->max;
        return 0;
    }
    return -1;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static int saved(const TrainConfigField *f, UnetKind kind) {
    return f->key && (f->kinds & (1u << kind));
}

/* The value of a number field as a double (what cJSON writes). */
static double number_of(const TrainConfig *c, const TrainConfigField *f) {
    const void *p = at_c(c, f->offset);
    switch (f->type) {
    case TC_LONG: return (double)*(const long *)p;
    case TC_U64: return (double)*(const uint64_t *)p;
    case TC_FLOAT: return *(const float *)p;
    default: return *(const int *)p;
    }
}

cJSON *train_config_to_json(const TrainConfig *c, const Unet *m) {
    cJSON *j = cJSON_CreateObject();
    DDPM_CHECK(j != NULL);
    for (int i = 0; i < N_FIELDS; i++) {
        const TrainConfigField *f = &FIELDS[i];
        if (!saved(f, c->kind)) continue;
        const void *p = at_c(c, f->offset);
        if ((f->flags & TC_IF_SET) && *(const int *)p == 0) continue;
        switch (f->type) {
        case TC_BOOL: cJSON_AddBoolToObject(j, f->key, *(const int *)p != 0); break;
        case TC_ENUM: cJSON_AddStringToObject(j, f->key, f->names->name(*(const int *)p)); break;
        case TC_STR: {
            const char *s = *(const char *const *)p;
            cJSON_AddStringToObject(j, f->key, s ? s : "");
            break;
        }
        case TC_INT_LIST: {
            cJSON *a = cJSON_AddArrayToObject(j, f->key);
            const int *v = p;
            int n = *(const int *)at_c(c, f->count_offset);
            for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
            break;
        }
        default: cJSON_AddNumberToObject(j, f->key, number_of(c, f)); break;
        }
    }
    if (m) {
        cJSON_AddNumberToObject(j, "parameters", (double)m->n_params);
        cJSON_AddNumberToObject(j, "forward_macs_per_image", unet_forward_macs(m));
    }
    return j;
}

/* A number in [min, max] (integral for the integer types), or 0 with TC_ZERO_OK. */
static int number_ok(const TrainConfigField *f, double v) {
    int integral = f->type != TC_FLOAT;
    double min = (f->flags & TC_ZERO_OK) ? 0 : f->min;
    return isfinite(v) && (!integral || v == floor(v)) && v >= min && v <= f->max;
}

static int number_error(const TrainConfigField *f, const char *what) {
    double min = (f->flags & TC_ZERO_OK) ? 0 : f->min;
    if (f->type != TC_FLOAT)
        return err_set("%s: the configuration's \"%s\" must be an integer from %.0f to %.0f", what,
                       f->key, min, f->max);
    return err_set("%s: the configuration's \"%s\" must be a number from %g to %g", what, f->key,
                   min, f->max);
}

/* The data directory goes to data_buf (cap bytes), not into c, which does not own strings. */
static int read_string(const cJSON *it, const TrainConfigField *f, const char *what,
                       char *data_buf, size_t cap) {
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap)
        return err_set("%s: the configuration's \"%s\" must be a directory name shorter than %zu "
                       "bytes", what, f->key, cap);
    memcpy(data_buf, it->valuestring, strlen(it->valuestring) + 1);
    return 0;
}

static int read_list(const cJSON *it, const TrainConfigField *f, const char *what, TrainConfig *c) {
    /* figure_epochs is the only list, hence the messages' "epochs" */
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) > f->cap)
        return err_set("%s: the configuration's \"%s\" must be an array of at most %d epochs",
                       what, f->key, f->cap);
    int *out = at(c, f->offset), n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        if (!cJSON_IsNumber(e) || !number_ok(f, e->valuedouble))
            return err_set("%s: the configuration's \"%s\" must hold integers from %.0f to %.0f",
                           what, f->key, f->min, f->max);
        out[n++] = (int)e->valuedouble;
    }
    *(int *)at(c, f->count_offset) = n;
    return 0;
}

/* One field from its JSON item (present). Returns 0 or -1 with err_msg(). */
static int read_field(const cJSON *it, const TrainConfigField *f, const char *what,
                      TrainConfig *c, char *data_buf, size_t cap) {
    void *p = at(c, f->offset);
    switch (f->type) {
    case TC_BOOL:
        if (!cJSON_IsBool(it))
            return err_set("%s: the configuration's \"%s\" must be true or false", what, f->key);
        *(int *)p = cJSON_IsTrue(it);
        return 0;
    case TC_ENUM:
        if (!cJSON_IsString(it) || f->names->parse(it->valuestring, p) != 0)
            return err_set("%s: the configuration's \"%s\" must be %s", what, f->key,
                           f->names->choices);
        return 0;
    case TC_STR: return read_string(it, f, what, data_buf, cap);
    case TC_INT_LIST: return read_list(it, f, what, c);
    default: break;
    }
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !number_ok(f, v)) return number_error(f, what);
    switch (f->type) {
    case TC_LONG: *(long *)p = (long)v; break;
    case TC_U64: *(uint64_t *)p = (uint64_t)v; break;
    case TC_FLOAT: *(float *)p = (float)v; break;
    default: *(int *)p = (int)v; break;
    }
    return 0;
}

int train_config_from_json(const char *text, const char *what, TrainConfig *c, char *data_buf,
                           size_t cap) {
    cJSON *j = cJSON_Parse(text);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        err_set("%s: the configuration is not a JSON object", what);
        goto done;
    }
    /* the kind first: it picks the defaults and which fields the file must hold */
    const TrainConfigField *kf = &FIELDS[0];
    DDPM_CHECK(kf->flags & TC_KIND);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, kf->key);
    int kind;
    if (!cJSON_IsString(model) || kf->names->parse(model->valuestring, &kind) != 0) {
        err_set("%s: the configuration's \"%s\" must be %s", what, kf->key, kf->names->choices);
        goto done;
    }
    train_config_defaults(c, (UnetKind)kind);
    data_buf[0] = 0;
    for (int i = 1; i < N_FIELDS; i++) {
        const TrainConfigField *f = &FIELDS[i];
        if (!saved(f, c->kind)) continue;
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, f->key);
        if (!it) {
            if (f->flags & TC_OPTIONAL) continue;
            err_set("%s: the configuration has no \"%s\"", what, f->key);
            goto done;
        }
        if (read_field(it, f, what, c, data_buf, cap) != 0) goto done;
    }
    if (c->kind != UNET_DENOISER && c->beta_start > c->beta_end) {
        err_set("%s: the configuration's beta_start is larger than its beta_end", what);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}
