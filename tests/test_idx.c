/* Tests for the data layer: IDX reading/writing (plain and gzip, and every way a file can be
 * damaged), loading the shared MNIST copy, mnist_load's consistency checks, the data
 * directory lookup, and mnist_fetch failing fast and cleanly without a network. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "testutil.h"

#include "core/common.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "io/fileio.h"

/* ---------------------------------------------------------------------------------------
 * Helpers: a scratch directory per test, raw file writers, error checks. */

static char g_dir[64];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "idx");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static const char *tpath(const char *name) { return test_path_in(g_dir, name); }

/* gzip-compress data into a memory buffer (one gzip member). */
static size_t gzip_mem(const void *data, size_t n, unsigned char *out, size_t cap) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t len = cap - zs.avail_out;
    deflateEnd(&zs);
    return len;
}

/* Write data as a .gz file with zlib's gz* API, the way gzip(1) would. */
static void write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(gz), Z_OK);
}

/* An IDX image of nd dims into buf: header then count bytes of a simple pattern. */
static size_t make_idx(unsigned char *buf, int nd, const uint32_t *dims) {
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = 8;
    buf[3] = (unsigned char)nd;
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        unsigned char *p = buf + 4 + 4 * i;
        p[0] = (unsigned char)(dims[i] >> 24);
        p[1] = (unsigned char)(dims[i] >> 16);
        p[2] = (unsigned char)(dims[i] >> 8);
        p[3] = (unsigned char)dims[i];
        count *= dims[i];
    }
    size_t h = 4 + 4 * (size_t)nd;
    for (size_t i = 0; i < count; i++) buf[h + i] = (unsigned char)(i * 7 + 3);
    return h + count;
}

/* The last error must mention the file and the given phrase. */
static void expect_error(const char *path, const char *phrase) {
    const char *m = err_msg();
    printf("  error: %s\n", m);
    assert_non_null(strstr(m, path));
    assert_non_null(strstr(m, phrase));
}

/* ---------------------------------------------------------------------------------------
 * IDX. */

static void test_idx_roundtrip_plain(void **state) {
    (void)state;
    const uint32_t dims[3] = {3, 4, 5};
    uint8_t data[60];
    for (int i = 0; i < 60; i++) data[i] = (uint8_t)(i * 37 + 11);
    const char *p = tpath("a.idx");
    assert_int_equal(idx_write_u8(p, data, 3, dims), 0);

    /* The exact bytes: magic 00 00 08 03, big-endian dims, then the data. */
    unsigned char *raw;
    size_t n;
    assert_int_equal(read_file(p, 1 << 20, &raw, &n), 0);
    assert_int_equal(n, 16 + 60);
    const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5};
    assert_memory_equal(raw, hdr, 16);
    assert_memory_equal(raw + 16, data, 60);
    xfree(raw);

    IdxArray a;
    assert_int_equal(idx_read(p, &a), 0);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.dims[0], 3);
    assert_int_equal(a.dims[1], 4);
    assert_int_equal(a.dims[2], 5);
    assert_int_equal(a.count, 60);
    assert_memory_equal(a.data, data, 60);
    idx_free(&a);
    assert_null(a.data);

    const uint32_t want[3] = {0, 4, 5};
    assert_int_equal(idx_read_expect(p, &a, 3, want), 0);
    idx_free(&a);

    /* No temporary file is left beside the output. */
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') files++;
    closedir(d);
    assert_int_equal(files, 1);
}

static void test_idx_roundtrip_gzip(void **state) {
    (void)state;
    unsigned char buf[4096];
    const uint32_t dims[2] = {10, 37};
    size_t n = make_idx(buf, 2, dims);
    const char *p = tpath("b.idx.gz");
    write_gz(p, buf, n);
    IdxArray a;
    assert_int_equal(idx_read(p, &a), 0);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.dims[0], 10);
    assert_int_equal(a.dims[1], 37);
    assert_int_equal(a.count, 370);
    assert_memory_equal(a.data, buf + 12, 370);
    idx_free(&a);

    /* gzip allows several members back to back (e.g. `cat a.gz b.gz`): header in one,
     * data in the other must read the same. */
    unsigned char gz[8192];
    size_t g1 = gzip_mem(buf, 12, gz, sizeof gz);
    size_t g2 = gzip_mem(buf + 12, n - 12, gz + g1, sizeof gz - g1);
    const char *p2 = tpath("c.idx.gz");
    test_write_raw(p2, gz, g1 + g2);
    assert_int_equal(idx_read(p2, &a), 0);
    assert_int_equal(a.count, 370);
    assert_memory_equal(a.data, buf + 12, 370);
    idx_free(&a);
}

static void test_idx_truncated(void **state) {
    (void)state;
    unsigned char buf[4096];
    const uint32_t dims[3] = {2, 28, 28};
    size_t n = make_idx(buf, 3, dims);
    IdxArray a;

    const char *p = tpath("trunc.idx");
    test_write_raw(p, buf, n - 100);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "truncated: expected 1568 bytes of data after the header, got 1468");
    assert_null(a.data);

    /* Cut inside the dimensions. */
    test_write_raw(p, buf, 9);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "truncated: expected 12 bytes of dimensions, got 5");

    /* Shorter than the magic number; and an empty file. */
    test_write_raw(p, buf, 3);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "truncated");
    test_write_raw(p, buf, 0);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "truncated");

    /* A complete gzip stream holding too few bytes. */
    const char *pg = tpath("trunc.idx.gz");
    write_gz(pg, buf, n - 1);
    assert_int_equal(idx_read(pg, &a), -1);
    expect_error(pg, "truncated: expected 1568 bytes of data after the header, got 1567");
}

static void test_idx_bad_magic(void **state) {
    (void)state;
    unsigned char buf[64] = {0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 9};
    const char *p = tpath("magic.idx");
    test_write_raw(p, buf, 9);
    IdxArray a;
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "bad magic number 0x12345678");

    /* All zeros, read where a 3-d image file is expected: the message says what was
     * expected. */
    memset(buf, 0, sizeof buf);
    test_write_raw(p, buf, sizeof buf);
    const uint32_t dims[3] = {0, 28, 28};
    assert_int_equal(idx_read_expect(p, &a, 3, dims), -1);
    expect_error(p, "bad magic number 0x00000000 (expected an IDX file of unsigned bytes, "
                    "0x00000803)");

    /* Right layout but float elements (type 0x0d). */
    const unsigned char fl[12] = {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    test_write_raw(p, fl, sizeof fl);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "element type 0x0d is not supported");

    /* Zero and too many dimensions. */
    const unsigned char nd0[4] = {0, 0, 8, 0}, nd5[4] = {0, 0, 8, 5};
    test_write_raw(p, nd0, 4);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "bad magic number 0x00000800");
    test_write_raw(p, nd5, 4);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "bad magic number 0x00000805");
}

static void test_idx_wrong_shape(void **state) {
    (void)state;
    unsigned char buf[4096];
    const uint32_t d2[2] = {3, 5};
    size_t n = make_idx(buf, 2, d2);
    const char *p = tpath("shape.idx");
    test_write_raw(p, buf, n);
    IdxArray a;
    const uint32_t want3[3] = {0, 28, 28};
    assert_int_equal(idx_read_expect(p, &a, 3, want3), -1);
    expect_error(p, "has 2 dimensions, expected 3");

    const uint32_t d3[3] = {2, 28, 27};
    n = make_idx(buf, 3, d3);
    test_write_raw(p, buf, n);
    assert_int_equal(idx_read_expect(p, &a, 3, want3), -1);
    expect_error(p, "has shape (2, 28, 27), expected (N, 28, 28)");

    /* A header claiming 4 GiB is refused before anything is allocated. */
    const unsigned char big[16] = {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    test_write_raw(p, big, sizeof big);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "larger than the limit");
}

static void test_idx_trailing_bytes(void **state) {
    (void)state;
    unsigned char buf[4096];
    const uint32_t dims[1] = {100};
    size_t n = make_idx(buf, 1, dims);
    buf[n] = 0xab;
    IdxArray a;

    const char *p = tpath("trail.idx");
    test_write_raw(p, buf, n + 1);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "unexpected data after the 100 bytes the header describes");

    /* Inside the gzip stream. */
    const char *pg = tpath("trail.idx.gz");
    write_gz(pg, buf, n + 1);
    assert_int_equal(idx_read(pg, &a), -1);
    expect_error(pg, "unexpected data after the 100 bytes the header describes");

    /* After the gzip stream: garbage that is not another gzip member. */
    unsigned char gz[4096];
    size_t g = gzip_mem(buf, n, gz, sizeof gz);
    memcpy(gz + g, "junk", 4);
    test_write_raw(pg, gz, g + 4);
    assert_int_equal(idx_read(pg, &a), -1);
    expect_error(pg, "unexpected data after the end of the gzip stream");
}

static void test_idx_corrupt_gzip(void **state) {
    (void)state;
    unsigned char buf[8192];
    const uint32_t dims[2] = {40, 100};
    size_t n = make_idx(buf, 2, dims);
    unsigned char gz[16384];
    size_t g = gzip_mem(buf, n, gz, sizeof gz);
    const char *p = tpath("bad.idx.gz");
    IdxArray a;

    /* Damaged deflate data. */
    unsigned char bad[16384];
    memcpy(bad, gz, g);
    for (size_t i = 12; i < g - 8; i += 5) bad[i] ^= 0x5a;
    test_write_raw(p, bad, g);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "corrupt gzip");

    /* Wrong CRC in the trailer: every data byte decodes, yet the file is rejected. */
    memcpy(bad, gz, g);
    bad[g - 8] ^= 0xff;
    test_write_raw(p, bad, g);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "corrupt gzip data (incorrect data check)");

    /* Download cut short in the middle of the compressed stream. */
    test_write_raw(p, gz, g / 2);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "cut short");

    /* Only the gzip magic. */
    test_write_raw(p, gz, 2);
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "corrupt gzip");
}

static void test_idx_missing_file(void **state) {
    (void)state;
    IdxArray a;
    const char *p = tpath("does-not-exist-idx3-ubyte.gz");
    assert_int_equal(idx_read(p, &a), -1);
    expect_error(p, "no such file");
    /* A directory is not a file either. */
    assert_int_equal(idx_read(g_dir, &a), -1);
    assert_non_null(strstr(err_msg(), g_dir));
}

/* ---------------------------------------------------------------------------------------
 * MNIST. */

static void test_mnist_load_shared(void **state) {
    (void)state;
    const char *dir = test_data_dir();
    MnistSplit tr, te;
    if (mnist_load(dir, 1, &tr) != 0) fail_msg("%s", err_msg());
    assert_int_equal(tr.n, 60000);
    assert_int_equal(tr.labels[0], 5);
    double sum = 0;
    int hist[10] = {0};
    for (size_t i = 0; i < (size_t)tr.n * MNIST_PIXELS; i++) sum += tr.images[i];
    for (int i = 0; i < tr.n; i++) hist[tr.labels[i]]++;
    double mean = sum / ((double)tr.n * MNIST_PIXELS) / 255.0;
    printf("  train pixel mean %.5f (expected about 0.1307)\n", mean);
    assert_true(fabs(mean - 0.1307) < 0.0005);
    /* The official class counts of the training set. */
    const int want[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    for (int c = 0; c < 10; c++) assert_int_equal(hist[c], want[c]);
    mnist_free(&tr);
    assert_null(tr.images);

    if (mnist_load(dir, 0, &te) != 0) fail_msg("%s", err_msg());
    assert_int_equal(te.n, 10000);
    assert_int_equal(te.labels[0], 7);
    /* The first test image is a 7: a blank corner, full ink somewhere. */
    uint8_t mx = 0;
    for (int i = 0; i < MNIST_PIXELS; i++) mx = te.images[i] > mx ? te.images[i] : mx;
    assert_int_equal(te.images[0], 0);
    assert_true(mx >= 250);
    mnist_free(&te);
}

/* A small fake MNIST split in g_dir: n images (plain file) and nl labels (gzip). */
static void write_fake_split(int n, int nl, int bad_label_at) {
    uint8_t *img = xcalloc((size_t)n, MNIST_PIXELS);
    uint8_t lab[64];
    for (int i = 0; i < nl; i++) lab[i] = (uint8_t)(i % 10);
    if (bad_label_at >= 0) lab[bad_label_at] = 12;
    const uint32_t di[3] = {(uint32_t)n, 28, 28};
    assert_int_equal(idx_write_u8(tpath("train-images-idx3-ubyte"), img, 3, di), 0);
    unsigned char buf[128];
    const uint32_t dl[1] = {(uint32_t)nl};
    make_idx(buf, 1, dl);
    memcpy(buf + 8, lab, (size_t)nl);
    write_gz(tpath("train-labels-idx1-ubyte.gz"), buf, 8 + (size_t)nl);
    xfree(img);
}

static void test_mnist_load_checks(void **state) {
    (void)state;
    MnistSplit s;
    /* Plain images and gzip labels, consistent: loads (the .gz / plain fallback). */
    write_fake_split(5, 5, -1);
    assert_int_equal(mnist_load(g_dir, 1, &s), 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.labels[4], 4);
    mnist_free(&s);

    write_fake_split(5, 4, -1);
    assert_int_equal(mnist_load(g_dir, 1, &s), -1);
    expect_error(tpath("train-labels-idx1-ubyte.gz"), "has 4 labels but");
    assert_non_null(strstr(err_msg(), "has 5 images"));
    assert_null(s.images);

    write_fake_split(5, 5, 3);
    assert_int_equal(mnist_load(g_dir, 1, &s), -1);
    expect_error(tpath("train-labels-idx1-ubyte.gz"), "label 12 at index 3 is not a digit");

    /* The test split is absent: the error names the file that was looked for. */
    assert_int_equal(mnist_load(g_dir, 0, &s), -1);
    expect_error(tpath("t10k-images-idx3-ubyte.gz"), "no such file");
}

static void test_mnist_data_dir(void **state) {
    (void)state;
    char *saved = getenv("DDPM_DATA") ? xstrdup(getenv("DDPM_DATA")) : NULL;
    setenv("DDPM_DATA", "/from/env", 1);
    assert_string_equal(mnist_data_dir("/from/option"), "/from/option");
    assert_string_equal(mnist_data_dir(NULL), "/from/env");
    unsetenv("DDPM_DATA");
    assert_string_equal(mnist_data_dir(NULL), "./data/mnist");
    if (saved) setenv("DDPM_DATA", saved, 1);
    xfree(saved);
}

/* Copy a file byte for byte. */
static void copy_file(const char *from, const char *to) {
    unsigned char *buf;
    size_t n;
    if (read_file(from, 64u << 20, &buf, &n) != 0) fail_msg("%s", err_msg());
    test_write_raw(to, buf, n);
    xfree(buf);
}

/* The fetch's progress lines, onto stderr as the command line prints them. */
static void lines_to_stderr(void *user, const ProgressEvent *ev) {
    (void)user;
    if (ev->line) fputs(ev->line, stderr);
}

static void test_mnist_fetch_no_network(void **state) {
    (void)state;
    /* Three official files are present, and the rebuilt training images (whose sha256
     * differs from the official one on purpose). Port 9 on loopback is closed, so the one
     * download needed fails at once. */
    const char *shared = test_data_dir();
    char from[4096];
    const char *names[4] = {"t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz",
                            "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s", shared, names[i]);
        copy_file(from, tpath(names[i]));
    }
    struct stat before;
    assert_int_equal(stat(tpath("train-images-idx3-ubyte.gz"), &before), 0);

    setenv("DDPM_MNIST_URL", "http://127.0.0.1:9/", 1);
    setenv("no_proxy", "127.0.0.1", 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    /* Capture stderr to check the progress lines. */
    const char *log = tpath("fetch.log");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    double t0 = now_seconds();
    const Progress report = {lines_to_stderr, NULL};
    int rc = mnist_fetch(g_dir, &report);
    double dt = now_seconds() - t0;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    unsetenv("DDPM_MNIST_URL");

    printf("  mnist_fetch took %.2f s: %s\n", dt, err_msg());
    assert_int_equal(rc, -1);
    assert_true(dt < 10.0);
    assert_non_null(strstr(err_msg(), "cannot reach 127.0.0.1: no network connection? (curl: "));

    unsigned char *text;
    size_t n;
    assert_int_equal(read_file(log, 1 << 20, &text, &n), 0);
    printf("%s", (char *)text);
    /* The three official files were recognised by checksum and kept. */
    int present = 0;
    for (const char *s = (char *)text; (s = strstr(s, "already present (sha256 ok)")); s++)
        present++;
    assert_int_equal(present, 3);
    assert_non_null(strstr((char *)text, "differs from the official file"));
    assert_non_null(
        strstr((char *)text, "downloading http://127.0.0.1:9/train-images-idx3-ubyte.gz"));
    xfree(text);

    /* The failed download left the existing file as it was and no temporary behind. */
    struct stat after;
    assert_int_equal(stat(tpath("train-images-idx3-ubyte.gz"), &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtime, before.st_mtime);
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while ((e = readdir(d))) assert_null(strstr(e->d_name, ".tmp."));
    closedir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idx_roundtrip_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_roundtrip_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_bad_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_wrong_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_trailing_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_corrupt_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idx_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_load_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_load_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_data_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mnist_fetch_no_network, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
