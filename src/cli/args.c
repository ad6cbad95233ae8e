/* Option parsing with strict numbers: no silent truncation, no trailing garbage. */
#include "cli/args.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* strtol and strtod skip leading white space and accept a '+'; a strict number starts with
 * a digit, or a '-' (or '.') and a digit. */
static int number_start_ok(const char *s) {
    if (*s == '-') s++;
    if (*s == '.') s++;
    return *s >= '0' && *s <= '9';
}

int parse_int(const char *what, const char *s, long min, long max, long *out) {
    char *end;
    if (!number_start_ok(s)) return err_set("%s: '%s' is not an integer", what, s);
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end) return err_set("%s: '%s' is not an integer", what, s);
    if (errno == ERANGE || v < min || v > max)
        return err_set("%s: %s is out of range (%ld..%ld)", what, s, min, max);
    *out = v;
    return 0;
}

int parse_float(const char *what, const char *s, double min, double max, double *out) {
    char *end;
    /* no hexadecimal floats, "inf" or "nan": a number the user can read */
    if (!number_start_ok(s) || strpbrk(s, "xXpP"))
        return err_set("%s: '%s' is not a number", what, s);
    errno = 0;
    double v = strtod(s, &end);
    if (*end) return err_set("%s: '%s' is not a number", what, s);
    if (errno == ERANGE || !isfinite(v)) {
        if (min <= max) return err_set("%s: %s is out of range (%g..%g)", what, s, min, max);
        return err_set("%s: %s is too large or too small for a number here", what, s);
    }
    if (min <= max && (v < min || v > max)) return err_set("%s: %g is out of range (%g..%g)", what, v, min, max);
    *out = v;
    return 0;
}

static int parse_list(const char *what, const char *s, float *fout, int *iout, int cap, double min, double max) {
    int n = 0;
    char *copy = xstrdup(s);
    char *tok = copy;
    for (;;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = 0;
        if (!*tok) {
            xfree(copy);
            return err_set("%s: '%s' has an empty item", what, s);
        }
        if (n >= cap) {
            xfree(copy);
            return err_set("%s: more than %d values", what, cap);
        }
        if (fout) {
            double v = 0;
            if (parse_float(what, tok, min, max, &v) != 0) { xfree(copy); return -1; }
            fout[n++] = (float)v;
        } else {
            long v = 0;
            if (parse_int(what, tok, (long)min, (long)max, &v) != 0) { xfree(copy); return -1; }
            iout[n++] = (int)v;
        }
        if (!comma) break;
        tok = comma + 1;
    }
    xfree(copy);
    return n;
}

int parse_float_list(const char *what, const char *s, float *out, int cap) {
    return parse_list(what, s, out, NULL, cap, -1e30, 1e30);
}

int parse_int_list(const char *what, const char *s, int *out, int cap, long min, long max) {
    return parse_list(what, s, NULL, out, cap, (double)min, (double)max);
}

Opt *args_find(Opt *opts, int nopts, const char *name) {
    for (int i = 0; i < nopts; i++)
        if (strcmp(opts[i].name, name) == 0) return &opts[i];
    return NULL;
}

int args_parse(int argc, char **argv, int first, Opt *opts, int nopts, const char *usage_head) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_usage(stdout, usage_head, opts, nopts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) return err_set("unexpected argument '%s' (options start with --; see --help)", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) return err_set("unknown option '%s' (see --help)", a);
        memcpy(name, a + 2, len);
        name[len] = '\0';
        Opt *o = args_find(opts, nopts, name);
        if (!o) return err_set("unknown option '--%s' (see --help)", name);
        char what[80];
        snprintf(what, sizeof what, "--%s", name);
        o->seen = 1;
        if (o->type == OPT_FLAG) {
            if (eq) return err_set("%s takes no value", what);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return err_set("%s needs a value", what);
        switch (o->type) {
        case OPT_INT: {
            long v = 0;
            long lo = o->min <= o->max ? (long)o->min : -2147483647L, hi = o->min <= o->max ? (long)o->max : 2147483647L;
            if (parse_int(what, val, lo, hi, &v) != 0) return -1;
            *(int *)o->dst = (int)v;
            break;
        }
        case OPT_LONG: {
            long v = 0;
            long lo = o->min <= o->max ? (long)o->min : LONG_MIN, hi = o->min <= o->max ? (long)o->max : LONG_MAX;
            if (parse_int(what, val, lo, hi, &v) != 0) return -1;
            *(long *)o->dst = v;
            break;
        }
        case OPT_U64: {
            char *end;
            /* strtoull would accept " -1" as 2^64 - 1 */
            if (*val < '0' || *val > '9') return err_set("%s: '%s' is not a non-negative integer", what, val);
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (*end) return err_set("%s: '%s' is not a non-negative integer", what, val);
            if (errno == ERANGE) return err_set("%s: %s is out of range (0..%llu)", what, val, (unsigned long long)UINT64_MAX);
            *(uint64_t *)o->dst = (uint64_t)v;
            break;
        }
        case OPT_FLOAT: {
            double v = 0;
            if (parse_float(what, val, o->min, o->max, &v) != 0) return -1;
            *(float *)o->dst = (float)v;
            break;
        }
        case OPT_STR:
            if (!*val) return err_set("%s: empty value", what);
            *(const char **)o->dst = val;
            break;
        case OPT_FLAG: break;
        }
    }
    return 0;
}

void args_usage(FILE *f, const char *usage_head, const Opt *opts, int nopts) {
    fprintf(f, "%s\n\nOptions:\n", usage_head);
    for (int i = 0; i < nopts; i++) {
        if (!opts[i].help) continue;
        const char *arg = opts[i].type == OPT_FLAG ? "" : opts[i].type == OPT_STR ? " S" : " N";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name, arg);
        fprintf(f, "  %-20s %s\n", left, opts[i].help);
    }
    fprintf(f, "  %-20s %s\n", "--help", "show this help");
}
