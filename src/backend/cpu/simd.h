/* Helpers the CPU backend's operators share: padding to cache lines, the split of a batch
 * across threads, and sixteen-float vectors for the Winograd transforms. */
#ifndef DDPM_BACKEND_CPU_SIMD_H
#define DDPM_BACKEND_CPU_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* n rounded up to a multiple of 16 floats (64 bytes, a cache line). */
static inline size_t round16(size_t n) { return (n + 15) / 16 * 16; }
/* Slice t of nt of a batch of n: [*n0, *n1), balanced and fixed by nt (so results that sum
 * per-slice partials in slice order are bit-identical for a fixed thread count). */
static inline void slice_of(int n, int nt, int t, int *n0, int *n1) {
    *n0 = (int)((int64_t)n * t / nt);
    *n1 = (int)((int64_t)n * (t + 1) / nt);
}

/* Sixteen floats as one value (GCC and Clang vector extensions; on a machine without 512-bit
 * registers the compiler splits them). The Winograd output transforms write four results per
 * tile interleaved (t[4 f + c]); written as a plain loop, GCC 12 vectorises those stride-4
 * stores as scatters (or not at all), which cost more than the arithmetic. store_interleaved4
 * interleaves four vectors of 16 tiles in registers by two rounds of shuffles instead. */
typedef float v16f __attribute__((vector_size(64)));

/* Built without AVX-512 (ARCH=-march=x86-64), GCC notes at every call that 64-byte vector
 * arguments have no stable ABI; these helpers are static inline, so that cannot matter, and
 * the note is off in the files that include this header. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

static inline v16f load16(const float *p) {
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* t[0 .. 63] = p[0][0] p[1][0] p[2][0] p[3][0] p[0][1] p[1][1] ... p[3][15] (the vectors by
 * pointer: passed by value they draw a note about the ABI from GCC in builds without AVX-512). */
static inline void store_interleaved4(float *t, const v16f p[4]) {
    const v16f a = __builtin_shufflevector(p[0], p[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6,
                                           22, 7, 23);
    const v16f b = __builtin_shufflevector(p[0], p[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29,
                                           14, 30, 15, 31);
    const v16f c = __builtin_shufflevector(p[2], p[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6,
                                           22, 7, 23);
    const v16f d = __builtin_shufflevector(p[2], p[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29,
                                           14, 30, 15, 31);
    const v16f o[4] = {
        __builtin_shufflevector(a, c, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
        __builtin_shufflevector(a, c, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31),
        __builtin_shufflevector(b, d, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
        __builtin_shufflevector(b, d, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)};
    memcpy(t, o, sizeof o);
}

#endif
