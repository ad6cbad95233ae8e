/* IDX reading and writing. The reader streams the file through zlib when it starts with the
 * gzip magic (1f 8b) and reads it directly otherwise, checks the header, then reads exactly
 * prod(dims) bytes into one allocation and insists the file ends right there. */
#include "data/idx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "core/common.h"
#include "core/pixel.h"
#include "io/fileio.h"

/* Largest decompressed payload we accept: far above MNIST (47 MB), far below what would
 * exhaust memory on a bad or hostile header. */
#define IDX_MAX_BYTES ((uint64_t)1 << 30)
/* A gzip stream's size is unknown until it ends, so its payload buffer starts at most this
 * large and doubles as data actually arrives: a header that lies costs no memory. */
#define IDX_FIRST_CHUNK ((size_t)1 << 24)
#define IDX_TYPE_U8 0x08

/* ---------------------------------------------------------------------------------------
 * A byte source: plain file or gzip stream, with errors that name the file. */

typedef struct {
    const char *path;
    FILE *fp;
    long long size;  /* bytes in the file when known (a regular file or memory), else -1 */
    int gz;          /* 1: inflate through zs */
    int zs_ready;    /* inflateInit2 succeeded */
    int member_done; /* the current gzip member ended (Z_STREAM_END) */
    z_stream zs;
    unsigned char in[1 << 16];
} Source;

/* Choose plain or gzip from the first two bytes, which stay in the input. */
static int source_start(Source *s) {
    size_t n = fread(s->in, 1, 2, s->fp);
    if (ferror(s->fp)) return err_set("%s: read failed: %s", s->path, strerror(errno));
    if (n == 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
        s->gz = 1;
        /* 16 + MAX_WBITS: accept only a gzip wrapper, so a stray zlib stream is an error. */
        if (inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK)
            return err_set("%s: cannot start gzip decompression", s->path);
        s->zs_ready = 1;
        s->zs.next_in = s->in;
        s->zs.avail_in = 2;
    } else {
        rewind(s->fp);
    }
    return 0;
}

static int source_open(Source *s, const char *path) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->size = -1;
    s->fp = fopen(path, "rb");
    if (!s->fp) {
        if (errno == ENOENT) return err_set("%s: no such file", path);
        return err_set("%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(s->fp), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return err_set("%s: is a directory, not a file", path);
        if (S_ISREG(st.st_mode)) s->size = (long long)st.st_size;
    }
    return source_start(s);
}

/* A memory buffer as a file (for the fuzzer); size must be > 0. */
static int source_open_mem(Source *s, const unsigned char *buf, size_t size, const char *name) {
    memset(s, 0, sizeof *s);
    s->path = name;
    s->size = (long long)size;
    s->fp = fmemopen((void *)buf, size, "rb");
    if (!s->fp) return err_set("%s: cannot read from memory: %s", name, strerror(errno));
    return source_start(s);
}

static void source_close(Source *s) {
    if (s->zs_ready) inflateEnd(&s->zs);
    if (s->fp) fclose(s->fp);
    s->zs_ready = 0;
    s->fp = NULL;
}

/* Refill the compressed input buffer. Returns bytes read (0 at EOF) or -1 on error. */
static long source_fill(Source *s) {
    size_t n = fread(s->in, 1, sizeof s->in, s->fp);
    if (n == 0 && ferror(s->fp)) return err_set("%s: read failed: %s", s->path, strerror(errno));
    s->zs.next_in = s->in;
    s->zs.avail_in = (uInt)n;
    return (long)n;
}

/* After a gzip member ends: more input must be another member (gzip allows concatenation)
 * or nothing at all. Returns 1 if a new member starts, 0 at a clean end, -1 on garbage. */
static int source_next_member(Source *s) {
    if (s->zs.avail_in == 0 && source_fill(s) < 0) return -1;
    if (s->zs.avail_in == 0) return 0;
    if (s->zs.avail_in < 2 && s->zs.next_in[0] == 0x1f) {
        /* The second magic byte may sit in the next buffer-full; shift and top up. */
        s->in[0] = s->zs.next_in[0];
        size_t n = fread(s->in + 1, 1, 1, s->fp);
        s->zs.next_in = s->in;
        s->zs.avail_in = (uInt)(1 + n);
    }
    if (s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b) {
        inflateReset(&s->zs);
        s->member_done = 0;
        return 1;
    }
    return err_set("%s: unexpected data after the end of the gzip stream", s->path);
}

/* Read up to n bytes; *got says how many arrived before the end of the data.
 * Returns 0 (also at a short read) or -1 on an I/O or decompression error. */
static int source_read(Source *s, void *dst, size_t n, size_t *got) {
    unsigned char *out = dst;
    *got = 0;
    if (!s->gz) {
        size_t r = fread(out, 1, n, s->fp);
        *got = r;
        if (r < n && ferror(s->fp))
            return err_set("%s: read failed: %s", s->path, strerror(errno));
        return 0;
    }
    while (*got < n) {
        if (s->member_done) {
            int more = source_next_member(s);
            if (more < 0) return -1;
            if (more == 0) return 0;
        }
        if (s->zs.avail_in == 0) {
            long r = source_fill(s);
            if (r < 0) return -1;
            if (r == 0)
                return err_set("%s: corrupt gzip file: the compressed stream is cut short "
                               "(truncated download?)", s->path);
        }
        /* zlib counts in uInt; feed at most 1 GiB per call. */
        size_t want = n - *got;
        if (want > (1u << 30)) want = 1u << 30;
        s->zs.next_out = out + *got;
        s->zs.avail_out = (uInt)want;
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        *got += want - s->zs.avail_out;
        if (rc == Z_STREAM_END) {
            s->member_done = 1;
        } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            return err_set("%s: corrupt gzip data (%s)", s->path,
                           s->zs.msg ? s->zs.msg : "invalid compressed data");
        } else if (rc == Z_MEM_ERROR) {
            return err_set("%s: out of memory while decompressing", s->path);
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return err_set("%s: gzip decompression failed (zlib error %d)", s->path, rc);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reading. */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "(60000, 28, 28)" into buf. dims with value 0 print as "N" when any_is_n is set. */
static const char *shape_str(char *buf, size_t cap, int ndim, const uint32_t *dims,
                             int any_is_n) {
    size_t used = 0;
    used += (size_t)snprintf(buf + used, cap - used, "(");
    for (int i = 0; i < ndim && used < cap; i++) {
        if (any_is_n && dims[i] == 0)
            used += (size_t)snprintf(buf + used, cap - used, "%sN", i ? ", " : "");
        else
            used += (size_t)snprintf(buf + used, cap - used, "%s%u", i ? ", " : "", dims[i]);
    }
    if (used < cap) snprintf(buf + used, cap - used, ")");
    return buf;
}

/* Called with err_msg() describing a problem found in the decompressed content: drain the
 * rest of the stream, and if it turns out corrupt, let that error replace the first. */
static void gz_diagnose(Source *s) {
    char first[1024];
    snprintf(first, sizeof first, "%s", err_msg());
    unsigned char sink[1 << 14];
    size_t got;
    uint64_t total = 0;
    do {
        if (source_read(s, sink, sizeof sink, &got)) return; /* corrupt: keep that error */
        total += got;
    } while (got == sizeof sink && total <= IDX_MAX_BYTES);
    err_set("%s", first);
}

/* Read count payload bytes into a buffer that grows with the data, so that a gzip file
 * whose header promises a gigabyte gets that much memory only by holding that much data.
 * Returns 0 with *data and *got (got < count: the data ended early) or -1. */
static int read_payload(Source *s, uint64_t count, uint8_t **data, size_t *got) {
    size_t cap = count < IDX_FIRST_CHUNK ? (size_t)count : IDX_FIRST_CHUNK;
    uint8_t *buf = xmalloc(cap);
    size_t len = 0;
    for (;;) {
        size_t n;
        if (source_read(s, buf + len, cap - len, &n)) {
            xfree(buf);
            return -1;
        }
        len += n;
        if (len < cap || cap == count) break;
        size_t ncap = cap > count / 2 ? (size_t)count : cap * 2;
        uint8_t *nb = xmalloc(ncap);
        memcpy(nb, buf, len);
        xfree(buf);
        buf = nb;
        cap = ncap;
    }
    *data = buf;
    *got = len;
    return 0;
}

static int idx_read_impl(Source *src, IdxArray *out, int ndim_expect,
                         const uint32_t *dims_expect) {
    Source *s = src;
    const char *path = s->path;
    int rc = -1;
    unsigned char hdr[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    uint8_t *data = NULL;

    if (source_read(s, hdr, 4, &got)) goto finish;
    if (got < 4) {
        err_set("%s: truncated: %zu bytes, too short for an IDX header", path, got);
        goto bad_content;
    }
    uint32_t magic = be32(hdr);
    int ndim = hdr[3];
    if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != IDX_TYPE_U8 || ndim < 1 ||
        ndim > IDX_MAX_DIMS) {
        if (hdr[0] == 0 && hdr[1] == 0 && hdr[2] != IDX_TYPE_U8 && hdr[2] >= 0x09 &&
            hdr[2] <= 0x0e)
            err_set("%s: IDX element type 0x%02x is not supported (only unsigned bytes, "
                    "0x08)", path, hdr[2]);
        else if (ndim_expect > 0)
            err_set("%s: bad magic number 0x%08x (expected an IDX file of unsigned bytes, "
                    "0x%08x)", path, magic, 0x800u | (unsigned)ndim_expect);
        else
            err_set("%s: bad magic number 0x%08x (expected an IDX file of unsigned bytes, "
                    "0x0000080N with N = 1..%d dimensions)", path, magic, IDX_MAX_DIMS);
        goto bad_content;
    }
    if (ndim_expect > 0 && ndim != ndim_expect) {
        err_set("%s: has %d dimension%s, expected %d (magic 0x%08x)", path, ndim,
                ndim == 1 ? "" : "s", ndim_expect, magic);
        goto bad_content;
    }
    size_t dim_bytes = 4 * (size_t)ndim;
    if (source_read(s, hdr + 4, dim_bytes, &got)) goto finish;
    if (got < dim_bytes) {
        err_set("%s: truncated: expected %zu bytes of dimensions, got %zu", path, dim_bytes,
                got);
        goto bad_content;
    }
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        out->dims[i] = be32(hdr + 4 + 4 * i);
        /* Each factor is < 2^32 and the running product is capped at 2^30 below, so the
         * multiplication cannot overflow 64 bits. */
        count *= out->dims[i];
        if (count > IDX_MAX_BYTES) {
            char sb[128];
            err_set("%s: shape %s is larger than the limit of %llu bytes", path,
                    shape_str(sb, sizeof sb, ndim, out->dims, 0),
                    (unsigned long long)IDX_MAX_BYTES);
            goto bad_content;
        }
    }
    out->ndim = ndim;
    if (dims_expect) {
        for (int i = 0; i < ndim; i++) {
            if (dims_expect[i] != 0 && dims_expect[i] != out->dims[i]) {
                char sa[128], sb[128];
                err_set("%s: has shape %s, expected %s", path,
                        shape_str(sa, sizeof sa, ndim, out->dims, 0),
                        shape_str(sb, sizeof sb, ndim, dims_expect, 1));
                goto bad_content;
            }
        }
    }
    /* A plain file must hold the payload it announces: say so before allocating for it. */
    if (!s->gz && s->size >= 0 && (uint64_t)s->size - (4 + dim_bytes) < count) {
        err_set("%s: truncated: expected %llu bytes of data after the header, got %llu",
                path, (unsigned long long)count,
                (unsigned long long)((uint64_t)s->size - (4 + dim_bytes)));
        goto bad_content;
    }
    if (read_payload(s, count, &data, &got)) goto finish;
    if (got < count) {
        err_set("%s: truncated: expected %llu bytes of data after the header, got %zu", path,
                (unsigned long long)count, got);
        goto bad_content;
    }
    /* Anything after the data means the header does not describe this file. For gzip this
     * read also runs the stream to its end, so zlib verifies the CRC and length trailer. */
    unsigned char extra;
    if (source_read(s, &extra, 1, &got)) goto finish;
    if (got != 0) {
        err_set("%s: unexpected data after the %llu bytes the header describes", path,
                (unsigned long long)count);
        goto bad_content;
    }
    out->count = (size_t)count;
    out->data = data;
    data = NULL;
    rc = 0;
    goto finish;
bad_content:
    /* A content error in a gzip file is often really a damaged stream (deflate decodes
     * garbage happily; only the CRC at the end notices), so read on and report the
     * corruption instead when there is one. */
    if (s->gz) gz_diagnose(s);
finish:
    xfree(data);
    source_close(s);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}

static int idx_read_path(const char *path, IdxArray *out, int ndim, const uint32_t *dims_expect) {
    memset(out, 0, sizeof *out);
    Source s;
    if (source_open(&s, path)) {
        source_close(&s);
        return -1;
    }
    return idx_read_impl(&s, out, ndim, dims_expect);
}

int idx_read(const char *path, IdxArray *out) { return idx_read_path(path, out, 0, NULL); }

int idx_read_expect(const char *path, IdxArray *out, int ndim, const uint32_t *dims_expect) {
    DDPM_CHECK(ndim >= 1 && ndim <= IDX_MAX_DIMS);
    return idx_read_path(path, out, ndim, dims_expect);
}

int idx_read_mem(const unsigned char *buf, size_t size, const char *name, IdxArray *out, int ndim,
                 const uint32_t *dims_expect) {
    memset(out, 0, sizeof *out);
    DDPM_CHECK(ndim >= 0 && ndim <= IDX_MAX_DIMS);
    if (!name) name = "(memory)";
    if (size == 0) return err_set("%s: truncated: 0 bytes, too short for an IDX header", name);
    Source s;
    if (source_open_mem(&s, buf, size, name)) {
        source_close(&s);
        return -1;
    }
    return idx_read_impl(&s, out, ndim, dims_expect);
}

void idx_free(IdxArray *a) {
    if (!a) return;
    xfree(a->data);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------------------------------
 * Writing. */

int idx_write_u8(const char *path, const uint8_t *data, int ndim, const uint32_t *dims) {
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return err_set("%s: cannot write an IDX file with %d dimensions (1 to %d)", path, ndim,
                       IDX_MAX_DIMS);
    unsigned char hdr[4 + 4 * IDX_MAX_DIMS] = {0, 0, IDX_TYPE_U8, (unsigned char)ndim};
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        count *= dims[i];
        if (count > IDX_MAX_BYTES)
            return err_set("%s: array too large for an IDX file (more than %llu bytes)", path,
                           (unsigned long long)IDX_MAX_BYTES);
        unsigned char *p = hdr + 4 + 4 * i;
        p[0] = (unsigned char)(dims[i] >> 24);
        p[1] = (unsigned char)(dims[i] >> 16);
        p[2] = (unsigned char)(dims[i] >> 8);
        p[3] = (unsigned char)dims[i];
    }
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    if (atomic_write(&af, hdr, 4 + 4 * (size_t)ndim) ||
        atomic_write(&af, data, (size_t)count)) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}

char *idx_labels_path(const char *path) {
    size_t cap = strlen(path) + sizeof "-labels";
    char *lp = xmalloc(cap);
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path)
        snprintf(lp, cap, "%.*s-labels%s", (int)(dot - path), path, dot);
    else
        snprintf(lp, cap, "%s-labels", path);
    return lp;
}

int idx_write_images(const char *path, const float *imgs, const int *labels, int n, int h, int w) {
    if (n < 1 || h < 1 || w < 1)
        return err_set("%s: cannot write %d images of %d x %d", path, n, h, w);
    size_t count = (size_t)n * (size_t)h * (size_t)w;
    uint8_t *b = xmalloc(count);
    pixels_to_u8(b, imgs, count);
    const uint32_t dims[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    int rc = idx_write_u8(path, b, 3, dims);
    if (rc == 0 && labels) {
        char *lp = idx_labels_path(path);
        for (int i = 0; i < n; i++) b[i] = (uint8_t)labels[i];
        const uint32_t ld[1] = {(uint32_t)n};
        rc = idx_write_u8(lp, b, 1, ld);
        xfree(lp);
    }
    xfree(b);
    return rc;
}
