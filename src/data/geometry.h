/* The geometry of a data set's images: channels, height, width and the classes with their
 * names. The data layer owns it; the UNet derives every layer's shape from it and
 * checkpoints carry it in their metadata (ddpm.geometry, JSON). A plain value: the class
 * names live in fixed buffers, so a geometry is copied with `=`. */
#ifndef DDPM_GEOMETRY_H
#define DDPM_GEOMETRY_H

#include <stddef.h>

/* cJSON's object, declared here so that the header needs no cJSON (geometry_json.c) */
struct cJSON;

#define GEOMETRY_MAX_CLASSES 64  /* classes of a class-conditional model: 0..64 */
#define GEOMETRY_NAME_LEN 24     /* a class name's bytes, its terminating 0 included */
#define GEOMETRY_MAX_SIDE 1024   /* height = width: 8..1024, a multiple of 4 */
#define GEOMETRY_MAX_CHANNELS 4

typedef struct {
    int channels; /* C: 1 (gray) .. 4 */
    int height;   /* H = W: square images, a multiple of 4 (two stride-2 steps) */
    int width;
    int classes;  /* labels 0..classes-1 (0: unlabelled) */
    char class_names[GEOMETRY_MAX_CLASSES][GEOMETRY_NAME_LEN];
} ImageGeom;

/* MNIST (the SPEC's): 1 x 28 x 28, classes "0".."9". */
ImageGeom geometry_mnist(void);
/* Fashion-MNIST: as MNIST, with the ten clothing classes' short names. */
ImageGeom geometry_fashion(void);

/* Values per image: C * H * W. */
size_t geometry_pixels(const ImageGeom *g);
/* Whether two geometries describe the same images and classes (names included). */
int geometry_equal(const ImageGeom *a, const ImageGeom *b);

/* The model's requirements: square, side a multiple of 4 from 8 to GEOMETRY_MAX_SIDE,
 * channels 1..GEOMETRY_MAX_CHANNELS, classes 0..GEOMETRY_MAX_CLASSES, every class named.
 * Returns 0, or -1 with err_msg() naming the problem. */
int geometry_check(const ImageGeom *g);

/* {"channels": C, "height": H, "width": W, "classes": K, "class_names": [..]}; NULL only
 * when out of memory. */
struct cJSON *geometry_to_json(const ImageGeom *g);
/* The inverse, checked with geometry_check; "class_names" may be absent (then the classes
 * are named "0", "1", ..). Returns 0, or -1 with err_msg(). */
int geometry_from_json(ImageGeom *g, const struct cJSON *j);

#endif
