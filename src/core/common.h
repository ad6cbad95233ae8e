/* Shared basics: the checked allocator, invariant checks that abort with file and line,
 * and the per-thread "last error" message through which bad input and I/O failures
 * travel up to main as one clear sentence. */
#ifndef DDPM_COMMON_H
#define DDPM_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Glossary of dimension letters used in every shape comment:
 *   N batch, C channels (Ci in, Co out), H height, W width, K kernel size,
 *   D UNet width, T diffusion steps, F features (linear layers). */

/* Broken invariant = programming error: abort with file and line. */
#define DDPM_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) ddpm_panic(__FILE__, __LINE__, #cond);                     \
    } while (0)

_Noreturn void ddpm_panic(const char *file, int line, const char *what);

/* Allocation: out-of-memory is reported once, here, and aborts (the program cannot
 * do anything useful without its few large arenas). Memory is 64-byte aligned. */
void *xmalloc(size_t bytes);
void *xcalloc(size_t count, size_t size);
char *xstrdup(const char *s);
void xfree(void *p);
/* Large zeroed buffers straight from the kernel (anonymous mmap): page-aligned, and a page
 * counts towards the resident memory only once it is first touched, so the parts a run never
 * uses (the backward buffers when only sampling) cost nothing. Freed with their size. */
void *xcalloc_pages(size_t bytes);
void xfree_pages(void *p, size_t bytes);

/* Errors from bad input or failed I/O: set a message, return -1; main prints it.
 * err_set returns -1 so call sites can write `return err_set(...)`. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
/* The same, but "" when no error was set in this thread (the public API's ddpm_last_error). */
const char *err_last(void);

/* Wall clock in seconds (monotonic). */
double now_seconds(void);
/* A duration for people, rounded to the second: "45s", "3m07s", "2h05m" (negative or not
 * finite: "0s"). */
void format_duration(char *dst, size_t cap, double seconds);

#endif
