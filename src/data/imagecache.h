/* The decoded-image cache: a folder's images, decoded, resized and packed into one file, so
 * that a second load (the next run, or the next epoch of one that reloads) reads no image
 * file. A cache file is keyed by the folder's listing (every image's name, size and mtime,
 * its class) and the options (size, channels): any change there makes it a miss.
 *
 * The file (integers little-endian):
 *   "DDPMIMGC" | u32 version (1) | 64 bytes key (sha256, hex) | u32 J | J bytes of the
 *   geometry as JSON (geometry_to_json) | u32 N | u32 labelled (0 or 1) |
 *   N x C x H x W pixel bytes | N label bytes when labelled | u32 CRC-32 of all before it.
 * It is written atomically (temporary file and rename); a reader checks the exact length,
 * the geometry, every label and the CRC, so a damaged or cut-short file is a clear sentence
 * and never a crash. */
#ifndef DDPM_IMAGECACHE_H
#define DDPM_IMAGECACHE_H

#include <stddef.h>

#include "core/progress.h"
#include "data/folder.h"
#include "data/imageset.h"

#define IMAGECACHE_KEY_LEN 64 /* hex characters of the key */
#define IMAGECACHE_VERSION 1

/* What a load found. */
typedef enum {
    IMAGECACHE_DAMAGED = -1, /* a cache file that cannot be read (err_msg() says why) */
    IMAGECACHE_MISS = 0,     /* no file, or one made for another listing or options */
    IMAGECACHE_HIT = 1,      /* out holds the images */
} ImageCacheResult;

/* The key of a listing with options: the sha256 (hex) of the format version, the options,
 * the class names and every file's relative name, label, size and mtime. No image is read. */
void imagecache_key(char key[IMAGECACHE_KEY_LEN + 1], const FolderListing *l,
                    const FolderOptions *opt);

/* The cache at path into out when its key is key (key NULL: any key). */
ImageCacheResult imagecache_load(ImageSet *out, const char *path, const char *key);
/* The same on a file held in memory (the fuzzer's entry point); name is for messages; when
 * key_out is not NULL it receives the file's key. */
ImageCacheResult imagecache_read_mem(ImageSet *out, char key_out[IMAGECACHE_KEY_LEN + 1],
                                     const unsigned char *buf, size_t size, const char *name,
                                     const char *key);

/* Write s with key to path atomically, creating path's folder. Returns 0, or -1 with
 * err_msg(). */
int imagecache_save(const char *path, const char *key, const ImageSet *s);

/* folder_load through the cache file cache_path (NULL: no cache): the folder is listed (no
 * image read), and when the cache holds that listing with these options its images are
 * used; otherwise the folder is decoded and the cache (re)written. A damaged cache or one
 * that cannot be written is a log line on p, not an error. Returns 0, or -1 with err_msg(). */
int folder_load_cached(ImageSet *out, const char *dir, const FolderOptions *opt,
                       const char *cache_path, const Progress *p);

#endif
