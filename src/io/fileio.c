/* Atomic file output (temporary file beside the target, flush, fsync, rename, fsync of the
 * directory), whole-file reading with a size cap, and mkdir -p. Every step is checked, so a
 * full disk is reported instead of leaving a truncated file where good data used to be. */
#include "io/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/common.h"

/* Free the strings and zero the struct so a second abort/commit is a harmless no-op. */
static void atomic_clear(AtomicFile *af) {
    xfree(af->path);
    xfree(af->tmp_path);
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
}

int atomic_open(AtomicFile *af, const char *path) {
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
    if (!path || !*path) return err_set("cannot write a file with an empty name");
    /* The temporary lives in the target's directory so that rename() stays on one
     * filesystem and is therefore atomic. */
    size_t len = strlen(path) + 32;
    char *tmp = xmalloc(len);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC rather than O_EXCL: a stale temporary from a crashed run with the same pid
     * must not block us. O_NOFOLLOW keeps us from writing through a planted symlink. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        int e = errno;
        xfree(tmp);
        if (e == ENOENT) return err_set("%s: cannot create: the directory does not exist", path);
        return err_set("%s: cannot create: %s", path, strerror(e));
    }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        int e = errno;
        close(fd);
        unlink(tmp);
        xfree(tmp);
        return err_set("%s: cannot create: %s", path, strerror(e));
    }
    af->fp = fp;
    af->path = xstrdup(path);
    af->tmp_path = tmp;
    return 0;
}

int atomic_write(AtomicFile *af, const void *data, size_t bytes) {
    if (!af->fp) return err_set("internal: write to a file that is not open");
    if (bytes == 0) return 0;
    errno = 0;
    if (fwrite(data, 1, bytes, af->fp) != bytes) {
        int e = errno;
        return err_set("%s: write failed: %s", af->path, e ? strerror(e) : "short write");
    }
    return 0;
}

/* fsync the directory holding path so the rename itself survives a crash. Some filesystems
 * cannot fsync a directory (EINVAL); that is not an error worth failing a save for. */
static int fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = xstrdup(".");
    } else if (slash == path) {
        dir = xstrdup("/");
    } else {
        size_t n = (size_t)(slash - path);
        dir = xmalloc(n + 1);
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY);
    int rc = 0;
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS && errno != EBADF)
            rc = err_set("%s: written, but syncing its directory %s failed: %s", path, dir,
                         strerror(errno));
        close(fd);
    }
    xfree(dir);
    return rc;
}

int atomic_commit(AtomicFile *af) {
    if (!af->fp) return err_set("internal: commit of a file that is not open");
    FILE *fp = af->fp;
    af->fp = NULL;
    const char *what = NULL;
    int e = 0;
    /* ferror catches an earlier failed atomic_write whose caller went on regardless. */
    if (ferror(fp)) {
        what = "an earlier write failed";
    } else if (fflush(fp) != 0) {
        e = errno;
        what = "flush failed";
    } else if (fsync(fileno(fp)) != 0) {
        e = errno;
        what = "fsync failed";
    }
    if (fclose(fp) != 0 && !what) {
        e = errno;
        what = "close failed";
    }
    if (!what && rename(af->tmp_path, af->path) != 0) {
        e = errno;
        what = "rename into place failed";
    }
    if (what) {
        unlink(af->tmp_path);
        err_set("%s: %s%s%s; the previous file (if any) was left unchanged", af->path, what,
                e ? ": " : "", e ? strerror(e) : "");
        atomic_clear(af);
        return -1;
    }
    int rc = fsync_parent_dir(af->path);
    atomic_clear(af);
    return rc;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    atomic_clear(af);
}

int write_file_atomic(const char *path, const void *data, size_t bytes) {
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    if (atomic_write(&af, data, bytes)) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}

int read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *bytes) {
    *data = NULL;
    *bytes = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT) return err_set("%s: no such file", path);
        return err_set("%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        return err_set("%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        fclose(fp);
        return err_set("%s: is a directory, not a file", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        fclose(fp);
        return err_set("%s: is %lld bytes, more than the limit of %zu bytes", path,
                       (long long)st.st_size, max_bytes);
    }
    /* Read until EOF rather than trusting st_size: pipes report 0 and files can grow.
     * One spare byte keeps the buffer NUL-terminated for text users. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : 65536;
    if (cap > max_bytes) cap = max_bytes;
    unsigned char *buf = xmalloc(cap + 1);
    size_t len = 0;
    int too_big = 0;
    for (;;) {
        if (len == cap) {
            /* Probe before growing, so a regular file is read into one exact buffer. */
            int c = fgetc(fp);
            if (c == EOF) break;
            if (cap == max_bytes) {
                too_big = 1;
                break;
            }
            size_t ncap = cap == 0 ? 65536 : cap <= max_bytes / 2 ? cap * 2 : max_bytes;
            if (ncap > max_bytes) ncap = max_bytes;
            unsigned char *nb = xmalloc(ncap + 1);
            memcpy(nb, buf, len);
            xfree(buf);
            buf = nb;
            cap = ncap;
            buf[len++] = (unsigned char)c;
            continue;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    int failed = ferror(fp);
    int e = errno;
    fclose(fp);
    if (failed) {
        xfree(buf);
        return err_set("%s: read failed: %s", path, strerror(e));
    }
    if (too_big) {
        xfree(buf);
        return err_set("%s: is larger than the limit of %zu bytes", path, max_bytes);
    }
    buf[len] = 0;
    *data = buf;
    *bytes = len;
    return 0;
}

int make_dirs(const char *path) {
    if (!path || !*path) return err_set("cannot create a directory with an empty name");
    char *p = xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    /* Create each prefix in turn; EEXIST is fine as long as it is a directory. */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char saved = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0) {
            int e = errno;
            struct stat st;
            /* An existing directory is fine whatever mkdir said (a read-only filesystem
             * answers EROFS even for a directory that is already there). */
            int is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
            if (!is_dir) {
                int rc = e == EEXIST
                             ? err_set("%s: cannot create directory: %s exists and is not a "
                                       "directory", path, p)
                             : err_set("%s: cannot create directory %s: %s", path, p,
                                       strerror(e));
                xfree(p);
                return rc;
            }
        }
        *s = saved;
        if (saved == 0) break;
    }
    xfree(p);
    return 0;
}

int dir_check_writable(const char *dir) {
    size_t len = strlen(dir) + 48;
    char *probe = xmalloc(len);
    snprintf(probe, len, "%s/.ddpm-write-test.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666);
    int rc = 0;
    if (fd < 0) {
        int e = errno;
        rc = e == ENOENT ? err_set("%s: the directory does not exist", dir)
                         : err_set("%s: cannot write in this directory: %s", dir, strerror(e));
    } else {
        close(fd);
        unlink(probe);
    }
    xfree(probe);
    return rc;
}

/* NAME.tmp.PID: the pid of the writer, or 0 when name is not such a temporary. */
static long stale_pid(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    const char *d = t + 5;
    long pid = 0;
    if (!*d) return 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 100000000) return 0;
        pid = pid * 10 + (*d - '0');
    }
    return pid;
}

int atomic_remove_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        long pid = stale_pid(ent->d_name);
        if (pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        size_t len = strlen(dir) + strlen(ent->d_name) + 2;
        char *path = xmalloc(len);
        snprintf(path, len, "%s/%s", dir, ent->d_name);
        if (unlink(path) == 0) removed++;
        xfree(path);
    }
    closedir(d);
    return removed;
}

int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

void path_join(char *dst, size_t cap, const char *dir, const char *name) {
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    DDPM_CHECK(n > 0 && (size_t)n < cap);
}

int cache_file_path(char *dst, size_t cap, const char *name) {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (x && *x) n = snprintf(dst, cap, "%s/ddpm/%s", x, name);
    else if (h && *h) n = snprintf(dst, cap, "%s/.cache/ddpm/%s", h, name);
    else return err_set("no cache directory: set XDG_CACHE_HOME or HOME");
    if (n < 0 || (size_t)n >= cap) return err_set("the cache directory's name is too long");
    return 0;
}
