/* safetensors reading and writing, following the format's specification: u64 little-endian
 * header length, a JSON header (cJSON) padded with spaces to a multiple of 8, then the data
 * section, which the tensors must cover exactly: no overlap, no gap, nothing left over. */
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "core/common.h"
#include "io/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this code copies it without byte swapping"
#endif

/* The reference implementation's limit on the JSON header. */
#define ST_MAX_HEADER ((uint64_t)100000000)
/* Largest file we load into memory: a checkpoint of this project is a few MB. */
#define ST_MAX_FILE ((size_t)1 << 32)
/* JSON numbers are doubles in cJSON: integers are exact up to 2^53. */
#define ST_MAX_JSON_INT 9007199254740992.0

static const char *const DTYPE_NAMES[] = {"F32", "I64", "U8", "F16", "BF16"};
static const size_t DTYPE_SIZES[] = {4, 8, 1, 2, 2};
#define N_DTYPES ((int)(sizeof DTYPE_SIZES / sizeof DTYPE_SIZES[0]))

static int dtype_valid(StDtype d) { return (int)d >= 0 && (int)d < N_DTYPES; }

const char *safetensors_dtype_name(StDtype d) { return dtype_valid(d) ? DTYPE_NAMES[d] : "?"; }
size_t safetensors_dtype_size(StDtype d) { return dtype_valid(d) ? DTYPE_SIZES[d] : 0; }

/* ---------------------------------------------------------------------------------------
 * Half precision, by hand on the bits: no compiler's _Float16 or rounding mode involved. */

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* v >> shift (1 <= shift <= 31), rounded to nearest with ties to even. */
static uint32_t shift_round_even(uint32_t v, int shift) {
    uint32_t q = v >> shift, rem = v & ((1u << shift) - 1), half = 1u << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t safetensors_f32_to_f16(float x) {
    const uint32_t u = f32_bits(x), sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7e00);   /* NaN: a quiet one */
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00);  /* >= 65520 rounds past 65504 */
    if (a >= 0x38800000)                                      /* normal: 2^-14 and up */
        /* rebias the exponent (127 -> 15); a carry out of the mantissa is the next binade */
        return (uint16_t)(sign | shift_round_even(a - (112u << 23), 13));
    if (a < 0x33000000) return (uint16_t)sign; /* below 2^-25, half the smallest subnormal */
    /* subnormal: the value is m 2^(e - 150) = k 2^-24 with k = m 2^(e - 126) */
    const uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
    return (uint16_t)(sign | shift_round_even(m, (int)(126 - e)));
}

float safetensors_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return f32_from_bits(sign | 0x7f800000 | (m << 13)); /* inf, NaN */
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* zero or subnormal: exact */
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t safetensors_f32_to_bf16(float x) {
    const uint32_t u = f32_bits(x);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    /* rounding the low half away carries into the exponent, up to infinity, as it should */
    return (uint16_t)(((uint64_t)u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float safetensors_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

/* Bytes of a tensor: prod(shape) * dtype size, or -1 on a negative dim or overflow. */
static int tensor_bytes(StDtype dtype, int ndim, const int64_t *shape, uint64_t *bytes) {
    uint64_t n = DTYPE_SIZES[dtype];
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > UINT64_MAX / d) return -1;
        n *= d;
    }
    *bytes = n;
    return 0;
}

static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, ")");
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * Writing. */

/* An exact integer as a raw JSON number: cJSON would print doubles above 1e15 in exponent
 * notation, which strict readers reject for an offset. */
static cJSON *json_uint(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    cJSON *item = cJSON_CreateRaw(buf);
    DDPM_CHECK(item != NULL);
    return item;
}

static cJSON *json_add_obj(cJSON *parent, const char *key) {
    cJSON *o = cJSON_CreateObject();
    DDPM_CHECK(o != NULL);
    cJSON_AddItemToObject(parent, key, o);
    return o;
}

/* Data layout: widest dtype first (stable, so otherwise in the given order). With the header
 * padded to a multiple of 8 this keeps every tensor aligned to its element size, which
 * zero-copy readers (numpy/torch frombuffer) rely on; the header keeps the given order. */
static int layout_before(const StTensor *a, const StTensor *b, int ia, int ib) {
    size_t sa = DTYPE_SIZES[a->dtype], sb = DTYPE_SIZES[b->dtype];
    return sa != sb ? sa > sb : ia < ib;
}

int safetensors_write(const char *path, const StTensor *tensors, int n,
                      const char *const *meta_keys, const char *const *meta_values,
                      int n_meta) {
    if (n < 0 || n_meta < 0) return err_set("%s: negative tensor or metadata count", path);
    cJSON *root = cJSON_CreateObject();
    DDPM_CHECK(root != NULL);
    int rc = -1;
    uint64_t *bytes = xcalloc((size_t)n + 1, sizeof(uint64_t));
    uint64_t *offset = xcalloc((size_t)n + 1, sizeof(uint64_t));
    int *order = xcalloc((size_t)n + 1, sizeof(int)); /* tensor indices in data order */
    if (n_meta > 0) {
        cJSON *meta = json_add_obj(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) {
            if (!meta_keys[i] || !meta_values[i]) {
                err_set("%s: metadata entry %d has no key or value", path, i);
                goto done;
            }
            if (cJSON_GetObjectItemCaseSensitive(meta, meta_keys[i])) {
                err_set("%s: metadata key \"%s\" given twice", path, meta_keys[i]);
                goto done;
            }
            cJSON *v = cJSON_CreateString(meta_values[i]);
            DDPM_CHECK(v != NULL);
            cJSON_AddItemToObject(meta, meta_keys[i], v);
        }
    }
    /* Validate every tensor before laying anything out. */
    for (int i = 0; i < n; i++) {
        const StTensor *t = &tensors[i];
        if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0) {
            err_set("%s: tensor %d has an empty or reserved name", path, i);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0) {
                err_set("%s: tensor name \"%s\" used twice", path, t->name);
                goto done;
            }
        if (!dtype_valid(t->dtype) || t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            err_set("%s: tensor \"%s\" has an invalid dtype or number of dimensions", path,
                    t->name);
            goto done;
        }
        if (tensor_bytes(t->dtype, t->ndim, t->shape, &bytes[i]) || bytes[i] > SIZE_MAX) {
            err_set("%s: tensor \"%s\" has a negative or overflowing shape", path, t->name);
            goto done;
        }
        if (bytes[i] > 0 && !t->data) {
            err_set("%s: tensor \"%s\" has no data", path, t->name);
            goto done;
        }
    }
    /* Insertion sort into data order: n is a few hundred at most. */
    for (int i = 0; i < n; i++) {
        int j = i;
        while (j > 0 && layout_before(&tensors[i], &tensors[order[j - 1]], i, order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    uint64_t total = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        if (bytes[i] > UINT64_MAX - total) {
            err_set("%s: the tensors add up to more bytes than a file can hold", path);
            goto done;
        }
        offset[i] = total;
        total += bytes[i];
    }
    for (int i = 0; i < n; i++) {
        const StTensor *t = &tensors[i];
        cJSON *e = json_add_obj(root, t->name);
        cJSON_AddItemToObject(e, "dtype", cJSON_CreateString(DTYPE_NAMES[t->dtype]));
        cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        DDPM_CHECK(shape && offs);
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, json_uint((uint64_t)t->shape[d]));
        cJSON_AddItemToArray(offs, json_uint(offset[i]));
        cJSON_AddItemToArray(offs, json_uint(offset[i] + bytes[i]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToObject(e, "data_offsets", offs);
    }
    char *json = cJSON_PrintUnformatted(root);
    DDPM_CHECK(json != NULL);
    size_t jlen = strlen(json);
    /* Pad with spaces so the data section starts 8-byte aligned, as the spec recommends. */
    size_t padded = (jlen + 7) / 8 * 8;
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    AtomicFile af;
    if (atomic_open(&af, path)) {
        cJSON_free(json);
        goto done;
    }
    static const char spaces[8] = "        ";
    int bad = atomic_write(&af, lenbuf, 8) || atomic_write(&af, json, jlen) ||
              atomic_write(&af, spaces, padded - jlen);
    cJSON_free(json);
    for (int k = 0; k < n && !bad; k++)
        bad = atomic_write(&af, tensors[order[k]].data, (size_t)bytes[order[k]]);
    if (bad) {
        atomic_abort(&af);
        goto done;
    }
    rc = atomic_commit(&af);
done:
    xfree(bytes);
    xfree(offset);
    xfree(order);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Reading. */

/* RFC 3629 UTF-8 (no overlongs, no surrogates), as the spec requires of the header. */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned min;
        if ((c & 0xe0) == 0xc0) len = 2, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) len = 3, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) len = 4, min = 0x10000, c &= 0x07;
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

/* A JSON number that is an exact non-negative integer. */
static int json_to_u64(const cJSON *item, uint64_t *v) {
    if (!cJSON_IsNumber(item)) return -1;
    double d = item->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > ST_MAX_JSON_INT) return -1;
    *v = (uint64_t)d;
    return 0;
}

static int parse_dtype(const char *s, StDtype *d) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, DTYPE_NAMES[i]) == 0) {
            *d = (StDtype)i;
            return 0;
        }
    return -1;
}

/* One tensor entry of the header into e (name set by the caller). */
static int parse_entry(const char *fname, const cJSON *obj, uint64_t data_size, StEntry *e) {
    const char *tn = e->name;
    if (!cJSON_IsObject(obj))
        return err_set("%s: header entry \"%s\" is not an object", fname, tn);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of))
        return err_set("%s: tensor \"%s\" needs a string \"dtype\" and arrays \"shape\" and "
                       "\"data_offsets\"", fname, tn);
    if (parse_dtype(dt->valuestring, &e->dtype))
        return err_set("%s: tensor \"%s\" has dtype \"%.32s\", which is unknown or unsupported "
                       "(this program reads F32, F16, BF16, I64 and U8)", fname, tn, dt->valuestring);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return err_set("%s: tensor \"%s\" has %d dimensions (at most %d supported)", fname, tn,
                       ndim, ST_MAX_DIMS);
    e->ndim = ndim;
    int d = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, sh) {
        uint64_t v;
        if (json_to_u64(it, &v))
            return err_set("%s: tensor \"%s\": shape entries must be non-negative integers",
                           fname, tn);
        e->shape[d++] = (int64_t)v;
    }
    uint64_t bytes;
    if (tensor_bytes(e->dtype, ndim, e->shape, &bytes))
        return err_set("%s: tensor \"%s\": the size of its shape overflows", fname, tn);
    uint64_t begin, end;
    if (cJSON_GetArraySize(of) != 2 || json_to_u64(cJSON_GetArrayItem(of, 0), &begin) ||
        json_to_u64(cJSON_GetArrayItem(of, 1), &end))
        return err_set("%s: tensor \"%s\": data_offsets must be two non-negative integers",
                       fname, tn);
    if (begin > end || end > data_size)
        return err_set("%s: tensor \"%s\": data_offsets [%llu, %llu] are not a range inside "
                       "the %llu-byte data section", fname, tn, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != bytes) {
        char sb[160];
        return err_set("%s: tensor \"%s\": data_offsets span %llu bytes but %s %s needs %llu",
                       fname, tn, (unsigned long long)(end - begin), DTYPE_NAMES[e->dtype],
                       shape_str(sb, sizeof sb, ndim, e->shape), (unsigned long long)bytes);
    }
    e->offset = (size_t)begin;
    e->bytes = (size_t)bytes;
    return 0;
}

/* A tensor's byte range, sorted to check the layout without touching the entry order. */
typedef struct {
    size_t begin, end;
    int idx;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data section: sorted by offset, each starts where the previous
 * ended, and the last ends at the end of the file (the spec forbids holes, which would let
 * a file hide other content). */
static int check_layout(const char *fname, const StFile *f, size_t data_size) {
    Span *sp = xmalloc(sizeof(Span) * (size_t)(f->n > 0 ? f->n : 1));
    for (int i = 0; i < f->n; i++)
        sp[i] = (Span){f->entries[i].offset, f->entries[i].offset + f->entries[i].bytes, i};
    qsort(sp, (size_t)f->n, sizeof(Span), span_cmp);
    size_t pos = 0;
    int rc = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        if (sp[i].begin < pos)
            rc = err_set("%s: tensors \"%s\" and \"%s\" overlap in the data section", fname,
                         f->entries[sp[i - 1].idx].name, f->entries[sp[i].idx].name);
        else if (sp[i].begin > pos)
            rc = err_set("%s: data bytes %zu to %zu belong to no tensor (the format allows "
                         "no gaps)", fname, pos, sp[i].begin);
        pos = sp[i].end;
    }
    if (rc == 0 && pos != data_size)
        rc = err_set("%s: %zu bytes after the last tensor belong to no tensor", fname,
                     data_size - pos);
    xfree(sp);
    return rc;
}

static int parse_header(const char *fname, StFile *f, const char *hdr, size_t hlen,
                        size_t data_size) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root)
        return err_set("%s: the header is not valid JSON (error near byte %ld)", fname,
                       (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - hdr : 0));
    int rc = -1;
    /* Only whitespace (the padding) may follow the JSON object. */
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            err_set("%s: the header has unexpected bytes after its JSON object", fname);
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        err_set("%s: the header is not a JSON object", fname);
        goto done;
    }
    int count = cJSON_GetArraySize(root);
    f->entries = xcalloc((size_t)(count > 0 ? count : 1), sizeof(StEntry));
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *key = item->string;
        if (strcmp(key, "__metadata__") == 0) {
            if (f->meta_keys) {
                err_set("%s: the header has two __metadata__ entries", fname);
                goto done;
            }
            if (cJSON_IsNull(item)) continue;
            if (!cJSON_IsObject(item)) {
                err_set("%s: __metadata__ must be an object of strings", fname);
                goto done;
            }
            int nm = cJSON_GetArraySize(item);
            f->meta_keys = xcalloc((size_t)(nm > 0 ? nm : 1), sizeof(char *));
            f->meta_values = xcalloc((size_t)(nm > 0 ? nm : 1), sizeof(char *));
            const cJSON *m;
            cJSON_ArrayForEach(m, item) {
                if (!cJSON_IsString(m)) {
                    err_set("%s: metadata value of \"%s\" is not a string", fname, m->string);
                    goto done;
                }
                for (int k = 0; k < f->n_meta; k++)
                    if (strcmp(f->meta_keys[k], m->string) == 0) {
                        err_set("%s: metadata key \"%s\" appears twice", fname, m->string);
                        goto done;
                    }
                f->meta_keys[f->n_meta] = xstrdup(m->string);
                f->meta_values[f->n_meta] = xstrdup(m->valuestring);
                f->n_meta++;
            }
            continue;
        }
        /* Names are compared exactly; a repeated key would otherwise shadow a tensor. */
        for (int k = 0; k < f->n; k++)
            if (strcmp(f->entries[k].name, key) == 0) {
                err_set("%s: tensor \"%s\" appears twice in the header", fname, key);
                goto done;
            }
        StEntry *e = &f->entries[f->n];
        e->name = xstrdup(key);
        f->n++;
        if (parse_entry(fname, item, data_size, e)) goto done;
    }
    rc = check_layout(fname, f, data_size);
done:
    cJSON_Delete(root);
    return rc;
}

/* Parse a buffer the StFile takes ownership of. */
static int parse_owned(unsigned char *buf, size_t size, const char *name, StFile *f) {
    memset(f, 0, sizeof *f);
    f->path = xstrdup(name);
    f->buf = buf;
    f->size = size;
    if (size < 8) {
        err_set("%s: %zu bytes is too short for a safetensors file", name, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > ST_MAX_HEADER) {
        err_set("%s: header length %llu is larger than the limit of %llu bytes (not a "
                "safetensors file?)", name, (unsigned long long)hlen,
                (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > size - 8) {
        err_set("%s: header length %llu is longer than the file (%zu bytes): truncated or not "
                "a safetensors file", name, (unsigned long long)hlen, size);
        goto fail;
    }
    const char *hdr = (const char *)buf + 8;
    if (hlen < 2 || hdr[0] != '{') {
        err_set("%s: the header does not start with '{' (not a safetensors file?)", name);
        goto fail;
    }
    if (!utf8_valid(buf + 8, (size_t)hlen)) {
        err_set("%s: the header is not valid UTF-8", name);
        goto fail;
    }
    f->data_start = 8 + (size_t)hlen;
    if (parse_header(name, f, hdr, (size_t)hlen, size - f->data_start)) goto fail;
    return 0;
fail:
    safetensors_close(f);
    return -1;
}

int safetensors_open(const char *path, StFile *f) {
    memset(f, 0, sizeof *f);
    unsigned char *buf;
    size_t size;
    if (read_file(path, ST_MAX_FILE, &buf, &size)) return -1;
    return parse_owned(buf, size, path, f);
}

int safetensors_parse(const unsigned char *buf, size_t size, const char *name, StFile *f) {
    unsigned char *copy = xmalloc(size);
    if (size) memcpy(copy, buf, size);
    return parse_owned(copy, size, name ? name : "(memory)", f);
}

void safetensors_close(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) xfree(f->entries[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        xfree(f->meta_keys[i]);
        xfree(f->meta_values[i]);
    }
    xfree(f->entries);
    xfree(f->meta_keys);
    xfree(f->meta_values);
    xfree(f->buf);
    xfree(f->path);
    memset(f, 0, sizeof *f);
}

const StEntry *safetensors_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

/* Whether the entry called name is of dtype (any float dtype when floats is set) and of
 * exactly this shape: 0, or -1 with err_msg(). */
static int entry_check(const StFile *f, const StEntry *e, const char *name, StDtype dtype,
                       int floats, int ndim, const int64_t *shape) {
    if (!e) return err_set("%s: no tensor named \"%s\"", f->path, name);
    if (!dtype_valid(dtype)) return err_set("internal: invalid dtype %d", (int)dtype);
    int is_float = e->dtype == ST_F32 || e->dtype == ST_F16 || e->dtype == ST_BF16;
    if (floats ? !is_float : e->dtype != dtype)
        return err_set("%s: tensor \"%s\" is %s, expected %s%s", f->path, name,
                       DTYPE_NAMES[e->dtype], DTYPE_NAMES[dtype], floats ? " (or F16, BF16)" : "");
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same) {
        char a[160], b[160];
        return err_set("%s: tensor \"%s\" has shape %s, expected %s", f->path, name,
                       shape_str(a, sizeof a, e->ndim, e->shape),
                       shape_str(b, sizeof b, ndim, shape));
    }
    return 0;
}

int safetensors_read(const StFile *f, const char *name, StDtype dtype, void *dst, int ndim,
                     const int64_t *shape) {
    const StEntry *e = safetensors_find(f, name);
    if (entry_check(f, e, name, dtype, 0, ndim, shape) != 0) return -1;
    if (e->bytes) memcpy(dst, f->buf + f->data_start + e->offset, e->bytes);
    return 0;
}

int safetensors_read_f32(const StFile *f, const char *name, float *dst, int ndim,
                         const int64_t *shape) {
    const StEntry *e = safetensors_find(f, name);
    if (entry_check(f, e, name, ST_F32, 1, ndim, shape) != 0) return -1;
    const unsigned char *src = f->buf + f->data_start + e->offset;
    if (e->dtype == ST_F32) {
        if (e->bytes) memcpy(dst, src, e->bytes);
        return 0;
    }
    const size_t n = e->bytes / 2;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, sizeof h); /* the data is not necessarily 2-byte aligned */
        dst[i] = e->dtype == ST_F16 ? safetensors_f16_to_f32(h) : safetensors_bf16_to_f32(h);
    }
    return 0;
}

const void *safetensors_data(const StFile *f, const StEntry *e) {
    if (!f || !e || !f->buf) return NULL;
    return f->buf + f->data_start + e->offset;
}

const char *safetensors_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Integrity digest. */

typedef struct {
    EVP_MD_CTX *ctx;
    int ok;
} Digest;

static void digest_init(Digest *d) {
    d->ctx = EVP_MD_CTX_new();
    d->ok = d->ctx && EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) == 1;
}

static void digest_bytes(Digest *d, const void *p, size_t n) {
    if (d->ok && n) d->ok = EVP_DigestUpdate(d->ctx, p, n) == 1;
}

/* A string with its terminating NUL, so that ("ab", "c") and ("a", "bc") differ. */
static void digest_str(Digest *d, const char *s) { digest_bytes(d, s, strlen(s) + 1); }

static void digest_tensor(Digest *d, const char *name, StDtype dtype, int ndim,
                          const int64_t *shape, const void *data, size_t bytes) {
    char dims[ST_MAX_DIMS * 21 + 1];
    size_t used = 0;
    dims[0] = 0;
    for (int i = 0; i < ndim && used < sizeof dims; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%lld", i ? "," : "",
                                 (long long)shape[i]);
    digest_str(d, name);
    digest_str(d, DTYPE_NAMES[dtype]);
    digest_str(d, dims);
    digest_bytes(d, data, bytes);
}

/* Finish into 64 hex digits + NUL. Returns 0 or -1 with err_msg(). */
static int digest_final(Digest *d, char hex[ST_DIGEST_HEX_LEN + 1]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (d->ok) d->ok = EVP_DigestFinal_ex(d->ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(d->ctx);
    d->ctx = NULL;
    if (!d->ok) return err_set("sha256 computation failed (OpenSSL)");
    for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int safetensors_write_digest(const char *path, const StTensor *tensors, int n,
                             const char *const *meta_keys, const char *const *meta_values,
                             int n_meta, const char *digest_key) {
    if (n < 0 || n_meta < 0) return err_set("%s: negative tensor or metadata count", path);
    Digest d;
    digest_init(&d);
    for (int i = 0; i < n; i++) {
        const StTensor *t = &tensors[i];
        uint64_t bytes;
        if (!t->name || !dtype_valid(t->dtype) || t->ndim < 0 || t->ndim > ST_MAX_DIMS ||
            tensor_bytes(t->dtype, t->ndim, t->shape, &bytes) || bytes > SIZE_MAX ||
            (bytes > 0 && !t->data)) {
            EVP_MD_CTX_free(d.ctx);
            /* safetensors_write words the error */
            return safetensors_write(path, tensors, n, meta_keys, meta_values, n_meta);
        }
        digest_tensor(&d, t->name, t->dtype, t->ndim, t->shape, t->data, (size_t)bytes);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i]) {
            EVP_MD_CTX_free(d.ctx);
            return err_set("%s: metadata entry %d has no key or value", path, i);
        }
        digest_str(&d, meta_keys[i]);
        digest_str(&d, meta_values[i]);
    }
    char hex[ST_DIGEST_HEX_LEN + 1];
    if (digest_final(&d, hex)) return err_set("%s: %s", path, err_msg());
    const char **mk = xcalloc((size_t)n_meta + 1, sizeof(char *));
    const char **mv = xcalloc((size_t)n_meta + 1, sizeof(char *));
    for (int i = 0; i < n_meta; i++) {
        mk[i] = meta_keys[i];
        mv[i] = meta_values[i];
    }
    mk[n_meta] = digest_key;
    mv[n_meta] = hex;
    int rc = safetensors_write(path, tensors, n, mk, mv, n_meta + 1);
    xfree(mk);
    xfree(mv);
    return rc;
}

int safetensors_verify_digest(const StFile *f, const char *digest_key) {
    const char *want = safetensors_meta(f, digest_key);
    if (!want) return 1;
    if (strlen(want) != ST_DIGEST_HEX_LEN)
        return err_set("%s: integrity check failed: the %s value is not a sha256 (the file "
                       "is damaged or was edited)", f->path, digest_key);
    Digest d;
    digest_init(&d);
    for (int i = 0; i < f->n; i++) {
        const StEntry *e = &f->entries[i];
        digest_tensor(&d, e->name, e->dtype, e->ndim, e->shape, safetensors_data(f, e), e->bytes);
    }
    for (int i = 0; i < f->n_meta; i++) {
        if (strcmp(f->meta_keys[i], digest_key) == 0) continue;
        digest_str(&d, f->meta_keys[i]);
        digest_str(&d, f->meta_values[i]);
    }
    char hex[ST_DIGEST_HEX_LEN + 1];
    if (digest_final(&d, hex)) return err_set("%s: %s", f->path, err_msg());
    if (strcmp(hex, want) != 0)
        return err_set("%s: integrity check failed: the sha256 of its contents does not match "
                       "the one recorded in it (the file is damaged or was edited)", f->path);
    return 0;
}
