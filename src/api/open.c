/* The public API's handles (include/ddpm.h): opening weights from a file or a buffer, what
 * they hold, closing; the version and the error words. Sampling and denoising: draw.c. */
#include <stdio.h>
#include <string.h>

#include "api/handle.h"
#include "core/common.h"
#include "model/checkpoint.h"
#include "ops/backend.h"
#include "train/trained_with.h"

_Static_assert(DDPM_MAX_CLASSES == GEOMETRY_MAX_CLASSES, "ddpm.h and data/geometry.h agree");
_Static_assert(DDPM_CLASS_NAME_LEN == GEOMETRY_NAME_LEN, "ddpm.h and data/geometry.h agree");
_Static_assert((int)DDPM_DENOISER == (int)UNET_DENOISER && (int)DDPM_TIME == (int)UNET_TIME &&
                   (int)DDPM_CLASS == (int)UNET_CLASS,
               "ddpm_kind and UnetKind agree");

/* Activations are sized for max_batch images: beyond this the request is surely a mistake. */
#define API_MAX_BATCH 65536
#define API_MAX_THREADS 1024

const char *ddpm_version(void) { return DDPM_VERSION_STRING; }

const char *ddpm_last_error(void) { return err_last(); }

const char *ddpm_status_name(ddpm_status s) {
    static const char *const names[] = {"ok", "io", "format", "argument", "memory", "cancelled"};
    return (int)s >= 0 && (int)s < (int)(sizeof names / sizeof names[0]) ? names[s] : "unknown";
}

/* The options with the defaults filled in; ARGUMENT for values out of range. */
static ddpm_status open_options(ddpm_open_options *o, const ddpm_open_options *given) {
    memset(o, 0, sizeof *o);
    if (given) *o = *given;
    if (o->threads < 0 || o->threads > API_MAX_THREADS) {
        err_set("ddpm_open: threads %d is out of range (0 for 1, up to %d)", o->threads,
                API_MAX_THREADS);
        return DDPM_ERR_ARGUMENT;
    }
    if (o->max_batch < 0 || o->max_batch > API_MAX_BATCH) {
        err_set("ddpm_open: max_batch %d is out of range (0 for 64, up to %d)", o->max_batch,
                API_MAX_BATCH);
        return DDPM_ERR_ARGUMENT;
    }
    if (o->device && !backend_find(o->device)) {
        err_set("ddpm_open: %s", err_msg()); /* err_set formats before it replaces */
        return DDPM_ERR_ARGUMENT;
    }
    if (o->threads == 0) o->threads = 1;
    if (o->max_batch == 0) o->max_batch = 64;
    return DDPM_OK;
}

/* What the file says beyond the model: the schedule it was trained with (time and class
 * models), the data set its classes name, whether it stores half precision, and whether
 * an export's weights are moving averages. */
static int open_trained_with(ddpm_model *h, const StFile *f) {
    if (trained_dataset_st(f, &h->ds) != 0) return -1;
    const char *dtype = safetensors_meta(f, CHECKPOINT_DTYPE_KEY);
    h->half = dtype && (strcmp(dtype, "f16") == 0 || strcmp(dtype, "bf16") == 0);
    /* an export holds the moving averages as its weights (ddpm.ema says so), not as "ema." */
    if (checkpoint_weights_are_ema(f)) h->used_ema = 1;
    if (h->net.kind == UNET_DENOISER) return 0;
    int T = SCHEDULE_DEFAULT_T;
    float b0 = SCHEDULE_DEFAULT_BETA_START, b1 = SCHEDULE_DEFAULT_BETA_END;
    ScheduleKind sk;
    if (trained_schedule_st(f, &sk, &T, &b0, &b1) != 0) return -1;
    if (schedule_init_kind(&h->sched, sk, T, b0, b1) != 0) return -1;
    h->has_sched = 1;
    return 0;
}

/* A handle from a parsed file; FORMAT when the file is not usable weights. */
static ddpm_status open_parsed(const StFile *f, const ddpm_open_options *o, ddpm_model **out) {
    if (checkpoint_verify(f, 0) != 0) return DDPM_ERR_FORMAT;
    ddpm_model *h = xcalloc(1, sizeof *h);
    const CheckpointLoadOptions lo = {.max_batch = o->max_batch, .nthreads = o->threads,
                                      .use_ema = !o->no_ema, .device = o->device};
    if (checkpoint_load_st(&h->net, &h->used_ema, f, &lo) != 0) {
        xfree(h);
        return DDPM_ERR_FORMAT;
    }
    h->name = xstrdup(f->path);
    if (open_trained_with(h, f) != 0) {
        ddpm_close(h);
        return DDPM_ERR_FORMAT;
    }
    *out = h;
    return DDPM_OK;
}

ddpm_status ddpm_open(const char *path, const ddpm_open_options *o, ddpm_model **out) {
    if (!out) {
        err_set("ddpm_open: out is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    *out = NULL;
    if (!path) {
        err_set("ddpm_open: path is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    ddpm_open_options opt;
    ddpm_status st = open_options(&opt, o);
    if (st != DDPM_OK) return st;
    StFile f;
    if (safetensors_open(path, &f) != 0) {
        /* the reader's message says which; the status tells a file that cannot be read
         * from one whose bytes are wrong */
        FILE *fp = fopen(path, "rb");
        if (!fp) return DDPM_ERR_IO;
        fclose(fp);
        return DDPM_ERR_FORMAT;
    }
    st = open_parsed(&f, &opt, out);
    safetensors_close(&f);
    return st;
}

ddpm_status ddpm_open_memory(const void *data, size_t size, const char *name,
                             const ddpm_open_options *o, ddpm_model **out) {
    if (!out) {
        err_set("ddpm_open_memory: out is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    *out = NULL;
    if (!data && size) {
        err_set("ddpm_open_memory: data is NULL");
        return DDPM_ERR_ARGUMENT;
    }
    ddpm_open_options opt;
    ddpm_status st = open_options(&opt, o);
    if (st != DDPM_OK) return st;
    StFile f;
    if (safetensors_parse(data, size, name ? name : "buffer", &f) != 0) return DDPM_ERR_FORMAT;
    st = open_parsed(&f, &opt, out);
    safetensors_close(&f);
    return st;
}

void ddpm_close(ddpm_model *m) {
    if (!m) return;
    unet_free(&m->net);
    if (m->has_sched) schedule_free(&m->sched);
    xfree(m->name);
    xfree(m);
}

void ddpm_describe(const ddpm_model *m, ddpm_info *info) {
    memset(info, 0, sizeof *info);
    const Unet *u = &m->net;
    info->kind = (ddpm_kind)u->kind;
    info->model_width = u->width;
    info->channels = u->geom.channels;
    info->height = u->geom.height;
    info->width = u->geom.width;
    if (u->kind == UNET_CLASS) {
        info->classes = u->geom.classes;
        memcpy(info->class_names, u->geom.class_names, sizeof info->class_names);
    }
    if (m->has_sched) {
        info->T = m->sched.T;
        snprintf(info->schedule, sizeof info->schedule, "%s", schedule_kind_name(m->sched.kind));
    }
    info->ema = m->used_ema;
    info->half = m->half;
    info->parameters = (int64_t)u->n_params;
}

int ddpm_class_index(const ddpm_model *m, const char *name) {
    if (!m || !name || m->net.kind != UNET_CLASS) return -1;
    for (int k = 0; k < m->net.geom.classes; k++)
        if (strcmp(m->net.geom.class_names[k], name) == 0) return k;
    return -1;
}
