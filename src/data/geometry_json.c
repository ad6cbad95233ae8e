/* The JSON form of an image geometry, as checkpoint metadata stores it (ddpm.geometry). */
#include "data/geometry.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"

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
