/* Image sets: allocation, MNIST's split taken over as a set, and the seeded held-out split
 * (class by class, so that the test part has the classes in the proportions of the whole). */
#include "data/imageset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"

size_t imageset_image_bytes(const ImageSet *s) { return geometry_pixels(&s->geom); }

void imageset_alloc(ImageSet *out, const ImageGeom *g, int n) {
    DDPM_CHECK(n >= 0);
    memset(out, 0, sizeof *out);
    out->geom = *g;
    out->n = n;
    out->pixels = xcalloc((size_t)n ? (size_t)n : 1, geometry_pixels(g));
    if (g->classes > 0) out->labels = xcalloc((size_t)n ? (size_t)n : 1, 1);
}

void imageset_free(ImageSet *s) {
    if (!s) return;
    xfree(s->pixels);
    xfree(s->labels);
    memset(s, 0, sizeof *s);
}

void imageset_from_mnist(ImageSet *out, MnistSplit *m, const ImageGeom *g) {
    DDPM_CHECK(g->channels == 1 && g->height == MNIST_H && g->width == MNIST_W);
    memset(out, 0, sizeof *out);
    out->geom = *g;
    out->n = m->n;
    out->pixels = m->images;
    out->labels = g->classes > 0 ? m->labels : NULL;
    if (g->classes == 0) xfree(m->labels);
    memset(m, 0, sizeof *m);
}

/* Copy the images whose flag in is_test equals want into out, in their original order. */
static void split_copy(ImageSet *out, const ImageSet *all, const uint8_t *is_test, int want,
                       int count) {
    imageset_alloc(out, &all->geom, count);
    size_t bytes = imageset_image_bytes(all);
    int j = 0;
    for (int i = 0; i < all->n; i++) {
        if (is_test[i] != want) continue;
        memcpy(out->pixels + (size_t)j * bytes, all->pixels + (size_t)i * bytes, bytes);
        if (out->labels) out->labels[j] = all->labels[i];
        j++;
    }
    DDPM_CHECK(j == count);
}

int imageset_split(ImageSet *train, ImageSet *test, const ImageSet *all, double test_fraction,
                   uint64_t seed) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!(test_fraction > 0 && test_fraction < 1))
        return err_set("test fraction %g is not between 0 and 1", test_fraction);
    Rng rng;
    rng_seed(&rng, seed);
    uint8_t *is_test = xcalloc((size_t)all->n + 1, 1);
    uint32_t *idx = xmalloc(((size_t)all->n + 1) * sizeof *idx);
    uint32_t *perm = xmalloc(((size_t)all->n + 1) * sizeof *perm);
    int groups = all->labels ? all->geom.classes : 1, n_test = 0;
    for (int c = 0; c < groups; c++) {
        uint32_t m = 0;
        for (int i = 0; i < all->n; i++)
            if (!all->labels || all->labels[i] == c) idx[m++] = (uint32_t)i;
        if (m == 0) continue;
        rng_permutation(&rng, perm, m);
        uint32_t take = (uint32_t)lround(test_fraction * (double)m);
        if (take >= m) take = m - 1;
        for (uint32_t k = 0; k < take; k++) is_test[idx[perm[k]]] = 1;
        n_test += (int)take;
    }
    xfree(idx);
    xfree(perm);
    if (n_test == 0 || n_test == all->n) {
        xfree(is_test);
        return err_set("a test fraction of %g of %d images leaves %s part empty", test_fraction,
                       all->n, n_test == 0 ? "the test" : "the training");
    }
    split_copy(train, all, is_test, 0, all->n - n_test);
    split_copy(test, all, is_test, 1, n_test);
    xfree(is_test);
    return 0;
}
