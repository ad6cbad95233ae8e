/* Image geometries: the built-in data sets', the check of what the UNet can be built for,
 * and the JSON form stored in checkpoint metadata. */
#include "data/geometry.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "data/dataset.h"

static ImageGeom geometry_28(const char *const *names) {
    ImageGeom g;
    memset(&g, 0, sizeof g);
    g.channels = 1;
    g.height = g.width = 28;
    g.classes = 10;
    for (int i = 0; i < g.classes; i++)
        snprintf(g.class_names[i], GEOMETRY_NAME_LEN, "%s", names[i]);
    return g;
}

ImageGeom geometry_mnist(void) { return geometry_28(dataset_class_names(DATASET_MNIST)); }

ImageGeom geometry_fashion(void) { return geometry_28(dataset_class_names(DATASET_FASHION)); }

size_t geometry_pixels(const ImageGeom *g) {
    return (size_t)g->channels * (size_t)g->height * (size_t)g->width;
}

int geometry_equal(const ImageGeom *a, const ImageGeom *b) {
    if (a->channels != b->channels || a->height != b->height || a->width != b->width ||
        a->classes != b->classes)
        return 0;
    for (int i = 0; i < a->classes && i < GEOMETRY_MAX_CLASSES; i++)
        if (strcmp(a->class_names[i], b->class_names[i]) != 0) return 0;
    return 1;
}

int geometry_check(const ImageGeom *g) {
    if (g->channels < 1 || g->channels > GEOMETRY_MAX_CHANNELS)
        return err_set("image geometry: %d channels (1 to %d)", g->channels, GEOMETRY_MAX_CHANNELS);
    if (g->height != g->width)
        return err_set("image geometry: %dx%d images are not square", g->height, g->width);
    if (g->height < 8 || g->height > GEOMETRY_MAX_SIDE || g->height % 4)
        return err_set("image geometry: side %d is not a multiple of 4 from 8 to %d", g->height,
                       GEOMETRY_MAX_SIDE);
    if (g->classes < 0 || g->classes > GEOMETRY_MAX_CLASSES)
        return err_set("image geometry: %d classes (0 to %d)", g->classes, GEOMETRY_MAX_CLASSES);
    for (int i = 0; i < g->classes; i++)
        if (!memchr(g->class_names[i], '\0', GEOMETRY_NAME_LEN) || !g->class_names[i][0])
            return err_set("image geometry: class %d has no name (1 to %d bytes)", i,
                           GEOMETRY_NAME_LEN - 1);
    return 0;
}

cJSON *geometry_to_json(const ImageGeom *g) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "channels", g->channels);
    cJSON_AddNumberToObject(j, "height", g->height);
    cJSON_AddNumberToObject(j, "width", g->width);
    cJSON_AddNumberToObject(j, "classes", g->classes);
    cJSON *names = cJSON_AddArrayToObject(j, "class_names");
    for (int i = 0; names && i < g->classes; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(g->class_names[i]));
    return j;
}

/* An integer member from lo to hi into *out. */
static int json_int(const cJSON *j, const char *key, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return err_set("image geometry: \"%s\" must be an integer from %d to %d", key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

int geometry_from_json(ImageGeom *g, const cJSON *j) {
    memset(g, 0, sizeof *g);
    if (!cJSON_IsObject(j)) return err_set("image geometry: not a JSON object");
    if (json_int(j, "channels", 1, GEOMETRY_MAX_CHANNELS, &g->channels) != 0 ||
        json_int(j, "height", 1, GEOMETRY_MAX_SIDE, &g->height) != 0 ||
        json_int(j, "width", 1, GEOMETRY_MAX_SIDE, &g->width) != 0 ||
        json_int(j, "classes", 0, GEOMETRY_MAX_CLASSES, &g->classes) != 0)
        return -1;
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(j, "class_names");
    if (names && (!cJSON_IsArray(names) || cJSON_GetArraySize(names) != g->classes))
        return err_set("image geometry: \"class_names\" must be an array of %d names", g->classes);
    for (int i = 0; i < g->classes; i++) {
        const cJSON *s = names ? cJSON_GetArrayItem(names, i) : NULL;
        if (names && (!cJSON_IsString(s) || strlen(s->valuestring) >= GEOMETRY_NAME_LEN))
            return err_set("image geometry: class name %d must be a string of at most %d bytes",
                           i, GEOMETRY_NAME_LEN - 1);
        if (s) snprintf(g->class_names[i], GEOMETRY_NAME_LEN, "%s", s->valuestring);
        else snprintf(g->class_names[i], GEOMETRY_NAME_LEN, "%d", i);
    }
    return geometry_check(g);
}
