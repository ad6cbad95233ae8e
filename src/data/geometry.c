/* Image geometries: the built-in data sets' and the check of what the UNet can be built for
 * (their JSON form is geometry_json.c's, so that this file builds without cJSON: the web
 * build's inference path uses it). */
#include "data/geometry.h"

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
