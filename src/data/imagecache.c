/* The decoded-image cache file (format in imagecache.h): its key, the checked reader (one
 * stream over a file or a memory buffer, the CRC kept as the bytes go by, the exact length
 * known before anything large is allocated), the atomic writer, and the cached folder load. */
#include "data/imagecache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "core/common.h"
#include "io/fileio.h"

static const char IMAGECACHE_MAGIC[8] = {'D', 'D', 'P', 'M', 'I', 'M', 'G', 'C'};
#define IMAGECACHE_MAX_JSON 16384
#define IMAGECACHE_HEAD (8 + 4 + IMAGECACHE_KEY_LEN + 4)
#define IMAGECACHE_CHUNK ((size_t)1 << 20)

/* ---------------------------------------------------------------------------------------
 * The key. */

static void key_add(EVP_MD_CTX *md, const void *p, size_t n) {
    DDPM_CHECK(EVP_DigestUpdate(md, p, n) == 1);
}

static void key_add_i64(EVP_MD_CTX *md, long long v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((unsigned long long)v >> (8 * i));
    key_add(md, b, 8);
}

void imagecache_key(char key[IMAGECACHE_KEY_LEN + 1], const FolderListing *l,
                    const FolderOptions *opt) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    DDPM_CHECK(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
    static const char tag[] = "ddpm image cache";
    key_add(md, tag, sizeof tag);
    key_add_i64(md, IMAGECACHE_VERSION);
    key_add_i64(md, opt->size);
    key_add_i64(md, opt->channels);
    key_add_i64(md, l->classes);
    for (int c = 0; c < l->classes; c++)
        key_add(md, l->class_names[c], strlen(l->class_names[c]) + 1);
    key_add_i64(md, l->n);
    for (int i = 0; i < l->n; i++) {
        key_add(md, l->files[i].rel, strlen(l->files[i].rel) + 1);
        key_add_i64(md, l->files[i].label);
        key_add_i64(md, l->files[i].bytes);
        key_add_i64(md, l->files[i].mtime_ns);
    }
    unsigned char d[32];
    unsigned int dn = 0;
    DDPM_CHECK(EVP_DigestFinal_ex(md, d, &dn) == 1 && dn == 32);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++) snprintf(key + 2 * i, 3, "%02x", d[i]);
}

/* ---------------------------------------------------------------------------------------
 * Reading. */

typedef struct {
    FILE *fp;
    const char *name;
    uLong crc;
} Reader;

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Exactly n bytes, added to the CRC; a short read is a cut-short file. */
static int reader_get(Reader *r, void *dst, size_t n) {
    unsigned char *p = dst;
    for (size_t done = 0; done < n;) {
        size_t want = n - done < IMAGECACHE_CHUNK ? n - done : IMAGECACHE_CHUNK;
        size_t got = fread(p + done, 1, want, r->fp);
        if (got < want) {
            if (ferror(r->fp)) return err_set("%s: read failed: %s", r->name, strerror(errno));
            return err_set("%s: damaged image cache: the file is cut short", r->name);
        }
        r->crc = crc32(r->crc, p + done, (uInt)got);
        done += got;
    }
    return 0;
}

/* The geometry's JSON, checked. */
static int read_geometry(Reader *r, ImageGeom *g, uint32_t len) {
    if (len == 0 || len > IMAGECACHE_MAX_JSON)
        return err_set("%s: damaged image cache: a geometry of %u bytes", r->name, len);
    char *text = xmalloc(len + 1);
    int rc = reader_get(r, text, len);
    text[len] = 0;
    cJSON *j = rc ? NULL : cJSON_ParseWithLength(text, len);
    xfree(text);
    if (rc) return -1;
    if (!j) return err_set("%s: damaged image cache: the geometry is not JSON", r->name);
    rc = geometry_from_json(g, j);
    cJSON_Delete(j);
    if (rc) return err_set("%s: damaged image cache: %s", r->name, err_msg());
    return 0;
}

/* The body after the header: counts, pixels, labels and the CRC. size: the stream's length. */
static int read_body(Reader *r, ImageSet *out, const ImageGeom *g, uint32_t json_len,
                     long long size) {
    unsigned char b[8];
    if (reader_get(r, b, 8)) return -1;
    uint32_t n = le32(b), labelled = le32(b + 4);
    if (n == 0 || n > 0x7fffffffu || labelled != (g->classes > 0))
        return err_set("%s: damaged image cache: %u images, labelled %u, for %d classes",
                       r->name, n, labelled, g->classes);
    unsigned long long want = (unsigned long long)IMAGECACHE_HEAD + json_len + 8 +
                              (unsigned long long)n * (geometry_pixels(g) + labelled) + 4;
    if (size >= 0 && (unsigned long long)size != want)
        return err_set("%s: damaged image cache: %lld bytes where %d images of %dx%dx%d take "
                       "%llu (cut short?)", r->name, size, (int)n, g->channels, g->height,
                       g->width, want);
    imageset_alloc(out, g, (int)n);
    if (reader_get(r, out->pixels, (size_t)n * geometry_pixels(g))) return -1;
    if (out->labels && reader_get(r, out->labels, n)) return -1;
    for (uint32_t i = 0; out->labels && i < n; i++)
        if (out->labels[i] >= g->classes)
            return err_set("%s: damaged image cache: image %u has label %u of %d classes",
                           r->name, i, out->labels[i], g->classes);
    uLong crc = r->crc;
    if (reader_get(r, b, 4)) return -1;
    if (le32(b) != (uint32_t)crc)
        return err_set("%s: damaged image cache: its checksum does not match", r->name);
    return 0;
}

static ImageCacheResult read_stream(Reader *r, ImageSet *out, char *key_out, const char *key,
                                    long long size) {
    unsigned char h[IMAGECACHE_HEAD];
    memset(out, 0, sizeof *out);
    r->crc = crc32(0L, Z_NULL, 0);
    if (reader_get(r, h, sizeof h)) return IMAGECACHE_DAMAGED;
    if (memcmp(h, IMAGECACHE_MAGIC, 8) != 0) {
        err_set("%s: is not a ddpm image cache", r->name);
        return IMAGECACHE_DAMAGED;
    }
    if (le32(h + 8) != IMAGECACHE_VERSION) {
        err_set("%s: image cache of version %u (this program writes %d)", r->name, le32(h + 8),
                IMAGECACHE_VERSION);
        return IMAGECACHE_MISS;
    }
    char file_key[IMAGECACHE_KEY_LEN + 1];
    memcpy(file_key, h + 12, IMAGECACHE_KEY_LEN);
    file_key[IMAGECACHE_KEY_LEN] = 0;
    if (key_out) memcpy(key_out, file_key, sizeof file_key);
    if (key && strcmp(key, file_key) != 0) {
        err_set("%s: image cache made for another listing or options", r->name);
        return IMAGECACHE_MISS;
    }
    ImageGeom g;
    uint32_t json_len = le32(h + 12 + IMAGECACHE_KEY_LEN);
    if (read_geometry(r, &g, json_len) || read_body(r, out, &g, json_len, size)) {
        imageset_free(out);
        return IMAGECACHE_DAMAGED;
    }
    return IMAGECACHE_HIT;
}

ImageCacheResult imagecache_read_mem(ImageSet *out, char key_out[IMAGECACHE_KEY_LEN + 1],
                                     const unsigned char *buf, size_t size, const char *name,
                                     const char *key) {
    memset(out, 0, sizeof *out);
    if (size == 0) {
        err_set("%s: is empty (0 bytes), not an image cache", name);
        return IMAGECACHE_DAMAGED;
    }
    Reader r = {.fp = fmemopen((void *)buf, size, "rb"), .name = name};
    if (!r.fp) {
        err_set("%s: cannot read from memory: %s", name, strerror(errno));
        return IMAGECACHE_DAMAGED;
    }
    ImageCacheResult res = read_stream(&r, out, key_out, key, (long long)size);
    fclose(r.fp);
    return res;
}

ImageCacheResult imagecache_load(ImageSet *out, const char *path, const char *key) {
    memset(out, 0, sizeof *out);
    Reader r = {.fp = fopen(path, "rb"), .name = path};
    if (!r.fp) {
        if (errno == ENOENT) {
            err_set("%s: no image cache yet", path);
            return IMAGECACHE_MISS;
        }
        err_set("%s: cannot open the image cache: %s", path, strerror(errno));
        return IMAGECACHE_DAMAGED;
    }
    struct stat st;
    if (fstat(fileno(r.fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(r.fp);
        err_set("%s: is not a regular file, not an image cache", path);
        return IMAGECACHE_DAMAGED;
    }
    long long size = (long long)st.st_size;
    ImageCacheResult res = read_stream(&r, out, NULL, key, size);
    fclose(r.fp);
    return res;
}

/* ---------------------------------------------------------------------------------------
 * Writing. */

typedef struct {
    AtomicFile af;
    uLong crc;
} Writer;

static int writer_put(Writer *w, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t done = 0; done < n;) {
        size_t len = n - done < IMAGECACHE_CHUNK ? n - done : IMAGECACHE_CHUNK;
        w->crc = crc32(w->crc, b + done, (uInt)len);
        if (atomic_write(&w->af, b + done, len)) return -1;
        done += len;
    }
    return 0;
}

static int writer_put32(Writer *w, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return writer_put(w, b, 4);
}

/* The folder that holds path, created. */
static int make_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    char *dir = xstrdup(path);
    dir[slash - path] = 0;
    int rc = make_dirs(dir);
    xfree(dir);
    return rc;
}

int imagecache_save(const char *path, const char *key, const ImageSet *s) {
    DDPM_CHECK(strlen(key) == IMAGECACHE_KEY_LEN && s->n > 0);
    cJSON *j = geometry_to_json(&s->geom);
    char *json = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!json) return err_set("%s: out of memory writing the image cache", path);
    Writer w = {.crc = crc32(0L, Z_NULL, 0)};
    int rc = make_parent(path) || atomic_open(&w.af, path) ? -1 : 0;
    if (rc) {
        cJSON_free(json);
        return -1;
    }
    size_t json_len = strlen(json);
    rc = writer_put(&w, IMAGECACHE_MAGIC, 8) || writer_put32(&w, IMAGECACHE_VERSION) ||
         writer_put(&w, key, IMAGECACHE_KEY_LEN) || writer_put32(&w, (uint32_t)json_len) ||
         writer_put(&w, json, json_len) || writer_put32(&w, (uint32_t)s->n) ||
         writer_put32(&w, s->labels ? 1 : 0) ||
         writer_put(&w, s->pixels, (size_t)s->n * imageset_image_bytes(s)) ||
         (s->labels && writer_put(&w, s->labels, (size_t)s->n));
    uint32_t crc = (uint32_t)w.crc;
    if (!rc) rc = writer_put32(&w, crc);
    cJSON_free(json);
    if (rc) {
        atomic_abort(&w.af);
        return -1;
    }
    return atomic_commit(&w.af);
}

/* ---------------------------------------------------------------------------------------
 * The cached folder load. */

int folder_load_cached(ImageSet *out, const char *dir, const FolderOptions *opt,
                       const char *cache_path, const Progress *p) {
    memset(out, 0, sizeof *out);
    if (folder_options_check(opt)) return -1;
    FolderListing l;
    if (folder_list(&l, dir, p)) return -1;
    char key[IMAGECACHE_KEY_LEN + 1];
    imagecache_key(key, &l, opt);
    if (cache_path) {
        ImageCacheResult res = imagecache_load(out, cache_path, key);
        if (res == IMAGECACHE_HIT && out->n == l.n) {
            folder_listing_free(&l);
            progress_log(p, "%s: %d images read from the cache %s\n", dir, out->n, cache_path);
            return 0;
        }
        if (res == IMAGECACHE_HIT) imageset_free(out); /* a key collision: decode */
        if (res == IMAGECACHE_DAMAGED)
            progress_log(p, "%s; decoding the images again\n", err_msg());
    }
    int rc = folder_decode(out, &l, opt, p);
    folder_listing_free(&l);
    if (rc || !cache_path) return rc;
    if (imagecache_save(cache_path, key, out))
        progress_log(p, "warning: the decoded images are not cached: %s\n", err_msg());
    return 0;
}
