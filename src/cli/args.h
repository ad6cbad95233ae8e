/* A small table-driven option parser for the subcommands: `--name value` or `--name=value`,
 * strict number parsing with ranges, and generated --help text. */
#ifndef DDPM_ARGS_H
#define DDPM_ARGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum { OPT_INT, OPT_U64, OPT_FLOAT, OPT_STR, OPT_FLAG, OPT_LONG } OptType;

typedef struct {
    const char *name; /* without the leading -- */
    OptType type;
    void *dst;        /* int*, uint64_t*, float*, const char**, int* (flag), long* */
    const char *help; /* NULL: a hidden option (test hooks), left out of --help */
    double min, max;  /* inclusive range for numbers (ignored when min > max) */
    int seen;         /* set by args_parse */
} Opt;

/* Parse argv[first..argc). Returns 0, 1 when --help was given (usage printed), or -1 with
 * err_msg() set ("--batch: 'x' is not an integer"). */
int args_parse(int argc, char **argv, int first, Opt *opts, int nopts, const char *usage_head);
void args_usage(FILE *f, const char *usage_head, const Opt *opts, int nopts);
/* Find an option by name in a table (NULL when absent). */
Opt *args_find(Opt *opts, int nopts, const char *name);
/* Strict conversions: decimal digits with an optional leading '-' (numbers also a fraction
 * and exponent), nothing before or after, no overflow. Return 0 or -1 with err_msg() naming
 * what. */
int parse_int(const char *what, const char *s, long min, long max, long *out);
int parse_float(const char *what, const char *s, double min, double max, double *out);
/* Comma-separated values, at most cap, none empty; returns count or -1. */
int parse_float_list(const char *what, const char *s, float *out, int cap);
int parse_int_list(const char *what, const char *s, int *out, int cap, long min, long max);

#endif
