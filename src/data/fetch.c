/* mnist_fetch: download the four official MNIST .gz files over HTTPS with libcurl, verify
 * each against its published sha256 (OpenSSL EVP) while it streams into an atomic temporary
 * file, and keep files that are already present and correct. Progress lines go to the
 * caller's Progress (core/progress.h). */
#include "data/mnist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "core/common.h"
#include "core/progress.h"
#include "io/fileio.h"

/* Public mirrors of the original files (the original site no longer serves them freely),
 * tried in order. DDPM_MNIST_URL replaces the list with one base URL, e.g. for tests. */
static const char *const MIRRORS[] = {
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
};

typedef struct {
    const char *name;
    const char *sha256; /* of the official file, from shared/data/mnist/README.md */
    long size;          /* bytes, also official; caps the download */
} MnistFile;

/* Smallest first, so a broken connection or mirror shows up before the 10 MB download. */
static const MnistFile FILES[] = {
    {"t10k-labels-idx1-ubyte.gz",
     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542},
    {"train-labels-idx1-ubyte.gz",
     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881},
    {"t10k-images-idx3-ubyte.gz",
     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877},
    {"train-images-idx3-ubyte.gz",
     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422},
};

static void hex_digest(const unsigned char *md, char hex[65]) {
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = 0;
}

/* sha256 of an existing file as hex. Returns 1 if computed, 0 if the file is absent or
 * unreadable (then it is simply downloaded again). */
static int file_sha256(const char *path, char hex[65]) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    DDPM_CHECK(ctx != NULL);
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, fp)) > 0) ok = EVP_DigestUpdate(ctx, buf, n) == 1;
    if (ferror(fp)) ok = 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    fclose(fp);
    if (ok) hex_digest(md, hex);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * One download. */

typedef struct {
    AtomicFile *af;
    EVP_MD_CTX *md;
    long limit;      /* abort beyond this many bytes */
    long received;
    int write_failed; /* err_msg() holds the reason */
    int too_large;
    int next_report; /* next progress line, in percent */
    const char *name;
    const Progress *p;
} Download;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user) {
    Download *d = user;
    size_t n = size * nmemb; /* curl guarantees this fits (at most CURL_MAX_WRITE_SIZE) */
    if (d->received + (long)n > d->limit) {
        d->too_large = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (atomic_write(d->af, ptr, n)) {
        d->write_failed = 1;
        return 0;
    }
    if (EVP_DigestUpdate(d->md, ptr, n) != 1) {
        d->write_failed = 1;
        err_set("%s: sha256 computation failed", d->name);
        return 0;
    }
    d->received += (long)n;
    return n;
}

/* A line every 25%, so a log file shows progress without carriage-return noise. */
static int on_progress(void *user, curl_off_t total, curl_off_t now, curl_off_t ut,
                       curl_off_t un) {
    (void)ut;
    (void)un;
    Download *d = user;
    if (total <= 0) total = d->limit;
    if (total > 0 && now > 0) {
        int pct = (int)(100 * (double)now / (double)total);
        if (pct >= d->next_report && d->next_report <= 100) {
            if (d->next_report > 0 && d->next_report < 100)
                progress_log(d->p, "fetch:   %s %3d%% (%.1f of %.1f MB)\n", d->name, pct,
                             (double)now / 1e6, (double)total / 1e6);
            while (d->next_report <= pct) d->next_report += 25;
        }
    }
    return 0;
}

/* The host part of url, for "cannot reach HOST". */
static void url_host(const char *url, char *host, size_t cap) {
    snprintf(host, cap, "%.*s", (int)cap - 1, url);
    CURLU *u = curl_url();
    char *h = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && h)
        snprintf(host, cap, "%.*s", (int)cap - 1, h);
    curl_free(h);
    curl_url_cleanup(u);
}

/* Download url into path, verifying sha256. Returns 0, or -1 with err_msg() set and the
 * old file (if any) untouched. */
static int download_one(const char *url, const char *path, const MnistFile *f,
                        const Progress *p) {
    AtomicFile af;
    if (atomic_open(&af, path)) return -1;
    Download d = {.af = &af, .limit = f->size, .name = f->name, .p = p};
    d.md = EVP_MD_CTX_new();
    DDPM_CHECK(d.md != NULL);
    CURL *c = curl_easy_init();
    if (!c || EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1) {
        if (c) curl_easy_cleanup(c);
        EVP_MD_CTX_free(d.md);
        atomic_abort(&af);
        return err_set("%s: cannot start the download (libcurl or OpenSSL failed to "
                       "initialise)", url);
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    /* Without a network a connect attempt should fail in seconds, not hang; a transfer that
     * stalls below 1 kB/s for a minute is given up too. */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ddpm-mnist-fetch/1");

    CURLcode cc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(c);

    unsigned char md[32];
    unsigned int mdlen = 0;
    int md_ok = EVP_DigestFinal_ex(d.md, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(d.md);
    const char *cerr = curl_err[0] ? curl_err : curl_easy_strerror(cc);

    int rc = -1;
    char host[256];
    url_host(url, host, sizeof host);
    if (d.write_failed) {
        /* err_msg() already says what went wrong with the file. */
    } else if (d.too_large) {
        err_set("%s: the server sent more than the %ld bytes of the official file", url,
                f->size);
    } else if (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY ||
               cc == CURLE_COULDNT_CONNECT ||
               (cc == CURLE_OPERATION_TIMEDOUT && d.received == 0)) {
        err_set("cannot reach %s: no network connection? (curl: %s)", host, cerr);
    } else if (cc == CURLE_HTTP_RETURNED_ERROR) {
        err_set("%s: the server answered HTTP %ld", url, http);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        err_set("%s: download stalled after %ld bytes (curl: %s)", url, d.received, cerr);
    } else if (cc != CURLE_OK) {
        err_set("%s: download failed (curl: %s)", url, cerr);
    } else if (!md_ok) {
        err_set("%s: sha256 computation failed", url);
    } else {
        char hex[65];
        hex_digest(md, hex);
        if (strcmp(hex, f->sha256) != 0)
            err_set("%s: sha256 mismatch (got %s, expected %s): a damaged download or not "
                    "the official file", url, hex, f->sha256);
        else
            rc = 0;
    }
    if (rc) {
        atomic_abort(&af);
        return -1;
    }
    return atomic_commit(&af);
}

/* ---------------------------------------------------------------------------------------
 * The four files. */

int mnist_fetch(const char *dir, const Progress *p) {
    if (make_dirs(dir)) return -1;
    const char *env = getenv("DDPM_MNIST_URL");
    const char *const *bases = MIRRORS;
    int nbases = (int)(sizeof MIRRORS / sizeof MIRRORS[0]);
    if (env && *env) {
        bases = &env;
        nbases = 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return err_set("cannot initialise libcurl");
    int rc = 0;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0] && rc == 0; i++) {
        const MnistFile *f = &FILES[i];
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, f->name) >= (int)sizeof path) {
            rc = err_set("%s: directory path too long", dir);
            break;
        }
        char hex[65];
        if (file_sha256(path, hex)) {
            if (strcmp(hex, f->sha256) == 0) {
                progress_log(p, "fetch: %s already present (sha256 ok)\n", path);
                continue;
            }
            progress_log(p, "fetch: %s differs from the official file (sha256 %.12s...); "
                          "replacing it\n", path, hex);
        }
        rc = -1;
        for (int b = 0; b < nbases && rc != 0; b++) {
            size_t blen = strlen(bases[b]);
            char url[2048];
            int n = snprintf(url, sizeof url, "%s%s%s", bases[b],
                             blen && bases[b][blen - 1] == '/' ? "" : "/", f->name);
            if (n < 0 || n >= (int)sizeof url) {
                err_set("%s: mirror URL too long", bases[b]);
                continue;
            }
            progress_log(p, "fetch: downloading %s (%.1f MB)\n", url, (double)f->size / 1e6);
            rc = download_one(url, path, f, p);
            if (rc == 0)
                progress_log(p, "fetch: %s ok (sha256 verified)\n", path);
            else if (b + 1 < nbases)
                progress_log(p, "fetch: %s; trying the next mirror\n", err_msg());
        }
    }
    curl_global_cleanup();
    if (rc == 0) progress_log(p, "fetch: MNIST is ready in %s\n", dir);
    return rc;
}
