/* A safetensors file in memory, to be changed and written again, with a valid digest (what a
 * careless edit or a bug would produce: the content checks must catch it on their own) or
 * without one. Shared by the tests of damaged checkpoints (test_reliability.c through the
 * CLI, test_api.c through the library). Include after testutil.h. */
#ifndef DDPM_TESTS_ST_EDIT_H
#define DDPM_TESTS_ST_EDIT_H

#include "core/common.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"

typedef struct {
    StFile f;
    StTensor *t;
    const char **keys, **vals; /* the metadata but the digest */
    int n_meta;
} StEdit;

static inline void st_edit_open(StEdit *e, const char *path) {
    memset(e, 0, sizeof *e);
    if (safetensors_open(path, &e->f) != 0) fail_msg("%s", err_msg());
    e->t = calloc((size_t)e->f.n, sizeof(StTensor));
    for (int i = 0; i < e->f.n; i++) {
        const StEntry *x = &e->f.entries[i];
        e->t[i] = (StTensor){.name = x->name, .dtype = x->dtype, .ndim = x->ndim,
                             .data = safetensors_data(&e->f, x)};
        memcpy(e->t[i].shape, x->shape, sizeof x->shape);
    }
    e->keys = calloc((size_t)e->f.n_meta + 1, sizeof(char *));
    e->vals = calloc((size_t)e->f.n_meta + 1, sizeof(char *));
    for (int i = 0; i < e->f.n_meta; i++)
        if (strcmp(e->f.meta_keys[i], CHECKPOINT_DIGEST_KEY) != 0) {
            e->keys[e->n_meta] = e->f.meta_keys[i];
            e->vals[e->n_meta++] = e->f.meta_values[i];
        }
}

static inline StTensor *st_edit_tensor(StEdit *e, const char *name) {
    for (int i = 0; i < e->f.n; i++)
        if (strcmp(e->t[i].name, name) == 0) return &e->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

/* The tensor's bytes, writable: they live in the opened file's buffer. */
static inline void *st_edit_data(StEdit *e, const char *name) {
    return (void *)st_edit_tensor(e, name)->data;
}

static inline void st_edit_meta(StEdit *e, const char *key, const char *value) {
    for (int i = 0; i < e->n_meta; i++)
        if (strcmp(e->keys[i], key) == 0) {
            e->vals[i] = value;
            return;
        }
    fail_msg("no metadata %s", key);
}

static inline void st_edit_save(StEdit *e, const char *path, int with_digest) {
    int rc = with_digest ? safetensors_write_digest(path, e->t, e->f.n, e->keys, e->vals,
                                                    e->n_meta, CHECKPOINT_DIGEST_KEY)
                         : safetensors_write(path, e->t, e->f.n, e->keys, e->vals, e->n_meta);
    if (rc != 0) fail_msg("%s", err_msg());
}

static inline void st_edit_close(StEdit *e) {
    safetensors_close(&e->f);
    free(e->t);
    free(e->keys);
    free(e->vals);
}

#endif
