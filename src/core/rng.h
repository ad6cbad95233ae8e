/* Explicit random generators: every source of randomness is an Rng object seeded from
 * the command line, so runs are reproducible and the state can be checkpointed. */
#ifndef DDPM_RNG_H
#define DDPM_RNG_H

#include <stdint.h>
#include <stddef.h>

/* xoshiro256** state plus a cached second Gaussian from Box-Muller. */
typedef struct {
    uint64_t s[4];
    int has_spare;
    float spare;
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float rng_uniform(Rng *r);
/* Uniform integer in [0, n). */
uint32_t rng_below(Rng *r, uint32_t n);
/* Standard normal. */
float rng_normal(Rng *r);
void rng_fill_normal(Rng *r, float *out, size_t n);
/* Uniform in [lo, hi). */
void rng_fill_uniform(Rng *r, float *out, size_t n, float lo, float hi);
/* Fisher-Yates permutation of 0..n-1. */
void rng_permutation(Rng *r, uint32_t *out, uint32_t n);

#endif
