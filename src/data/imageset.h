/* A decoded image set in memory, whatever its source (MNIST's IDX files, CIFAR-10's binary
 * batches, a folder of PNG and JPEG files, the decoded-image cache): the geometry, N images of
 * C planes each and their labels; and the held-out split for sources without a test split. */
#ifndef DDPM_IMAGESET_H
#define DDPM_IMAGESET_H

#include <stdint.h>

#include "data/geometry.h"
#include "data/mnist.h"

typedef struct {
    ImageGeom geom;  /* C, H = W, classes and their names (classes 0: unlabelled) */
    int n;           /* N images */
    uint8_t *pixels; /* (N, C, H, W) 0..255, planar per image (all of R, then G, then B) */
    uint8_t *labels; /* (N) 0..classes-1; NULL when unlabelled (geom.classes == 0) */
} ImageSet;

/* Bytes of one image: C * H * W. */
size_t imageset_image_bytes(const ImageSet *s);
/* An empty set of n images of geometry g: pixels zeroed, labels zeroed when g->classes > 0
 * (else NULL). */
void imageset_alloc(ImageSet *out, const ImageGeom *g, int n);
void imageset_free(ImageSet *s);

/* Take over m's buffers as a 1 x 28 x 28 set of geometry g (geometry_mnist() or
 * geometry_fashion()): MNIST's (N, 28, 28) bytes are already (N, 1, 28, 28), so nothing is
 * copied or changed; m is left empty. */
void imageset_from_mnist(ImageSet *out, MnistSplit *m, const ImageGeom *g);

/* Split all into train and test (new copies; all is left as it is), for a source without a
 * test split of its own: a fraction test_fraction (0 < f < 1) of the images, drawn with a
 * generator seeded by seed, go to test. Labelled sets are split class by class (each class
 * gives round(f * its count) images, so every class of two or more images keeps at least one
 * image for training); both parts keep the images' original order. Returns 0, or -1 with
 * err_msg() when the fraction is out of range or a part would be empty. */
int imageset_split(ImageSet *train, ImageSet *test, const ImageSet *all, double test_fraction,
                   uint64_t seed);

#endif
