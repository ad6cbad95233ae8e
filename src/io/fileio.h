/* Atomic file output: write to a temporary file beside the target, flush, fsync, rename.
 * A crash or a failed write never leaves a half-written file in place of good data. */
#ifndef DDPM_FILEIO_H
#define DDPM_FILEIO_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *fp;        /* write through this */
    char *path;      /* final path */
    char *tmp_path;  /* temporary path in the same directory */
} AtomicFile;

/* Returns 0 or -1 with err_msg() naming the path. */
int atomic_open(AtomicFile *af, const char *path);
/* Write bytes; returns 0 or -1 with err_msg() (disk full, file size limit, ...). */
int atomic_write(AtomicFile *af, const void *data, size_t bytes);
/* Flush, fsync, close and rename into place (and fsync the directory).
 * On failure the temporary file is removed and the old target is left untouched. */
int atomic_commit(AtomicFile *af);
/* Give up: close and remove the temporary file. */
void atomic_abort(AtomicFile *af);

/* Whole-file helpers. read_file caps the size at max_bytes. */
int write_file_atomic(const char *path, const void *data, size_t bytes);
int read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *bytes);
/* mkdir -p; returns 0 or -1 with err_msg(). */
int make_dirs(const char *path);
/* 1 when something (file, directory, ...) exists at path, else 0. */
int path_exists(const char *path);
/* dst = "dir/name"; the caller bounds the lengths, so not fitting in cap is a broken invariant
 * (abort). */
void path_join(char *dst, size_t cap, const char *dir, const char *name);
/* dst = the cache file $XDG_CACHE_HOME/ddpm/NAME, else $HOME/.cache/ddpm/NAME (name may hold
 * subfolders). Returns 0, or -1 with err_msg() when neither variable is set or dst is too
 * short. */
int cache_file_path(char *dst, size_t cap, const char *name);
/* Create and remove a probe file in dir, so that a read-only or vanished directory is
 * reported before hours of work rather than after. Returns 0 or -1 with err_msg(). */
int dir_check_writable(const char *dir);
/* Remove the temporaries (NAME.tmp.PID) that writers killed mid-write left in dir, for
 * processes that no longer exist. Returns how many were removed. */
int atomic_remove_stale(const char *dir);

#endif
