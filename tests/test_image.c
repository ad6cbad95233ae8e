/* Tests for the I/O layer: atomic files (commit, abort, failed commits leave the old file),
 * read_file and make_dirs; PNG and GIF written by us and read back with libpng and giflib;
 * figures and plots drawn with cairo come out as valid PNGs of the expected size; PNG, GIF,
 * IDX and figures hold the same gray levels for the same float images (core/pixel.h). */
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo.h>
#include <gif_lib.h>
#include <png.h>

#include "testutil.h"

#include "core/common.h"
#include "core/pixel.h"
#include "data/idx.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/png_read.h"

/* ---------------------------------------------------------------------------------------
 * Helpers. */

static char g_dir[64];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "image");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static const char *tpath(const char *name) { return test_path_in(g_dir, name); }

/* Names in g_dir, to prove no temporary file was left behind. */
static int count_entries(const char *needle) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (!needle || strstr(e->d_name, needle))) n++;
    closedir(d);
    return n;
}

static void expect_content(const char *path, const char *want) {
    unsigned char *buf;
    size_t n;
    if (read_file(path, 1 << 20, &buf, &n) != 0) fail_msg("%s", err_msg());
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    xfree(buf);
}

/* Read a PNG with libpng's simplified API into the given format; returns the pixels. */
static uint8_t *read_png(const char *path, uint32_t format, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) fail_msg("libpng: %s", img.message);
    img.format = format;
    uint8_t *buf = xmalloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) fail_msg("libpng: %s", img.message);
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * fileio. */

static void test_atomic_commit_and_abort(void **state) {
    (void)state;
    const char *p = tpath("out.txt");
    assert_int_equal(write_file_atomic(p, "old contents", 12), 0);
    expect_content(p, "old contents");

    /* Abort: the original stays, the temporary goes. */
    AtomicFile af;
    assert_int_equal(atomic_open(&af, p), 0);
    assert_non_null(strstr(af.tmp_path, ".tmp."));
    assert_int_equal(access(af.tmp_path, F_OK), 0); /* the temporary exists meanwhile */
    assert_int_equal(atomic_write(&af, "new", 3), 0);
    expect_content(p, "old contents");
    atomic_abort(&af);
    atomic_abort(&af); /* harmless twice */
    expect_content(p, "old contents");
    assert_int_equal(count_entries(NULL), 1);

    /* Commit: replaced, no temporary left. */
    assert_int_equal(atomic_open(&af, p), 0);
    assert_int_equal(atomic_write(&af, "new contents", 12), 0);
    assert_int_equal(atomic_commit(&af), 0);
    expect_content(p, "new contents");
    assert_int_equal(count_entries(NULL), 1);

    /* Opening in a missing directory says so. */
    assert_int_equal(atomic_open(&af, tpath("no/such/dir/x")), -1);
    printf("  error: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "no/such/dir/x"));
    assert_non_null(strstr(err_msg(), "directory does not exist"));
}

static void test_atomic_commit_failure(void **state) {
    (void)state;
    /* rename() onto a non-empty directory fails (even for root): the commit must report
     * it, remove the temporary and leave the directory and its content alone. */
    const char *d = tpath("target");
    assert_int_equal(make_dirs(d), 0);
    char inner[600];
    snprintf(inner, sizeof inner, "%s/keep.txt", d);
    assert_int_equal(write_file_atomic(inner, "keep", 4), 0);
    AtomicFile af;
    assert_int_equal(atomic_open(&af, d), 0);
    assert_int_equal(atomic_write(&af, "data", 4), 0);
    assert_int_equal(atomic_commit(&af), -1);
    printf("  error: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "rename into place failed"));
    assert_non_null(strstr(err_msg(), d));
    expect_content(inner, "keep");
    assert_int_equal(count_entries(".tmp."), 0);
    assert_null(af.tmp_path);
}

static void test_atomic_write_failure(void **state) {
    (void)state;
    /* A file size limit makes writes fail with EFBIG (disk-full behaves the same way):
     * the failure must surface at the latest in commit, and the old file survive. */
    const char *p = tpath("big.bin");
    assert_int_equal(write_file_atomic(p, "small", 5), 0);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    struct rlimit lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    static char block[100000];
    memset(block, 'x', sizeof block);
    AtomicFile af;
    int rc = atomic_open(&af, p);
    if (rc == 0) rc = atomic_write(&af, block, sizeof block);
    if (rc == 0)
        rc = atomic_commit(&af);
    else
        atomic_abort(&af);
    int rc2 = write_file_atomic(p, block, sizeof block);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());

    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    printf("  error: %s\n", msg);
    assert_int_equal(rc, -1);
    assert_int_equal(rc2, -1);
    assert_non_null(strstr(msg, p));
    expect_content(p, "small");
    assert_int_equal(count_entries(".tmp."), 0);
}

static void test_read_file_and_make_dirs(void **state) {
    (void)state;
    const char *p = tpath("hundred");
    char data[100];
    memset(data, 'a', sizeof data);
    assert_int_equal(write_file_atomic(p, data, 100), 0);
    unsigned char *buf;
    size_t n;
    assert_int_equal(read_file(p, 100, &buf, &n), 0);
    assert_int_equal(n, 100);
    assert_int_equal(buf[100], 0); /* NUL-terminated for text users */
    xfree(buf);
    assert_int_equal(read_file(p, 99, &buf, &n), -1);
    assert_non_null(strstr(err_msg(), "more than the limit of 99 bytes"));
    assert_null(buf);
    assert_int_equal(read_file(tpath("absent"), 100, &buf, &n), -1);
    assert_non_null(strstr(err_msg(), "absent: no such file"));

    /* Empty file. */
    assert_int_equal(write_file_atomic(p, "", 0), 0);
    assert_int_equal(read_file(p, 100, &buf, &n), 0);
    assert_int_equal(n, 0);
    xfree(buf);

    const char *deep = tpath("a/b/c/");
    assert_int_equal(make_dirs(deep), 0);
    assert_int_equal(make_dirs(deep), 0); /* existing is fine */
    struct stat st;
    assert_int_equal(stat(tpath("a/b/c"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A file in the way. */
    assert_int_equal(make_dirs(tpath("hundred/sub")), -1);
    printf("  error: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "is not a directory"));
}

/* ---------------------------------------------------------------------------------------
 * PNG and GIF. */

static void test_png_gray_roundtrip(void **state) {
    (void)state;
    const int w = 37, h = 13;
    uint8_t pix[37 * 13];
    for (int i = 0; i < w * h; i++) pix[i] = (uint8_t)(i * 13 + (i / w) * 7);
    const char *p = tpath("g.png");
    assert_int_equal(png_write_gray(p, pix, w, h), 0);
    int rw, rh;
    uint8_t *back = read_png(p, PNG_FORMAT_GRAY, &rw, &rh);
    assert_int_equal(rw, w);
    assert_int_equal(rh, h);
    assert_memory_equal(back, pix, (size_t)(w * h));
    xfree(back);
    assert_int_equal(count_entries(".tmp."), 0);

    assert_int_equal(png_write_gray(tpath("missing/dir/g.png"), pix, w, h), -1);
    assert_non_null(strstr(err_msg(), "missing/dir/g.png"));
    assert_int_equal(png_write_gray(p, pix, 0, h), -1);
}

static void test_png_grid(void **state) {
    (void)state;
    /* 5 images of 3 x 4 in 2 columns, pad 1, scale 2: 3 rows of cells. */
    const int n = 5, h = 3, w = 4, cols = 2, pad = 1, scale = 2;
    float imgs[5 * 12];
    for (int i = 0; i < n * h * w; i++) imgs[i] = (float)(i % 12) / 11.0f;
    imgs[0] = -3.0f; /* clamped to 0 */
    imgs[1] = 7.0f;  /* clamped to 1 */
    const char *p = tpath("grid.png");
    assert_int_equal(png_write_grid(p, imgs, n, h, w, cols, pad, scale), 0);
    int rw, rh;
    uint8_t *g = read_png(p, PNG_FORMAT_GRAY, &rw, &rh);
    assert_int_equal(rw, pad + cols * (w * scale + pad));
    assert_int_equal(rh, pad + 3 * (h * scale + pad));
    assert_int_equal(g[0], 128); /* padding */
    /* Image 3 (row 1, column 1), source pixel (y=2, x=3) covers a 2x2 block. */
    int x0 = pad + 1 * (w * scale + pad), y0 = pad + 1 * (h * scale + pad);
    uint8_t want = (uint8_t)(11.0f / 11.0f * 255.0f + 0.5f);
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++)
            assert_int_equal(g[(y0 + 2 * scale + dy) * rw + x0 + 3 * scale + dx], want);
    assert_int_equal(g[pad * rw + pad], 0);       /* clamped low */
    assert_int_equal(g[pad * rw + pad + 2], 255); /* clamped high */
    xfree(g);
}

/* png_read_gray: our grey PNG back as written; an RGB PNG of grey pixels gives the same
 * levels; anything else is refused with its name. */
static void test_png_read_gray(void **state) {
    (void)state;
    const int w = 29, h = 11;
    uint8_t pix[29 * 11], rgb[29 * 11 * 3];
    for (int i = 0; i < w * h; i++)
        pix[i] = rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (uint8_t)(i * 7);
    const char *g = tpath("g.png"), *c = tpath("c.png"), *x = tpath("x.png");
    assert_int_equal(png_write_gray(g, pix, w, h), 0);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = PNG_FORMAT_RGB;
    assert_true(png_image_write_to_file(&im, c, 0, rgb, 0, NULL));
    const char *paths[2] = {g, c};
    for (int k = 0; k < 2; k++) {
        uint8_t *back;
        int rw, rh;
        assert_true(png_is_png(paths[k]));
        assert_int_equal(png_read_gray(paths[k], &back, &rw, &rh), 0);
        assert_int_equal(rw, w);
        assert_int_equal(rh, h);
        assert_memory_equal(back, pix, sizeof pix);
        xfree(back);
    }
    FILE *f = fopen(x, "wb");
    assert_non_null(f);
    fputs("\x89PNG\r\n\x1a\nbroken", f);
    fclose(f);
    uint8_t *none;
    int rw, rh;
    assert_true(png_is_png(x));
    assert_int_equal(png_read_gray(x, &none, &rw, &rh), -1);
    assert_non_null(strstr(err_msg(), "x.png"));
    assert_false(png_is_png(tpath("missing.png")));
}

static void test_gif_roundtrip(void **state) {
    (void)state;
    const int w = 5, h = 4, nf = 3;
    uint8_t frames[3 * 20];
    for (int i = 0; i < nf * w * h; i++) frames[i] = (uint8_t)(i * 17);
    const char *p = tpath("anim.gif");
    assert_int_equal(gif_write_gray(p, frames, nf, w, h, 7, 150), 0);

    int err = 0;
    GifFileType *gif = DGifOpenFileName(p, &err);
    assert_non_null(gif);
    assert_int_equal(DGifSlurp(gif), GIF_OK);
    assert_int_equal(gif->SWidth, w);
    assert_int_equal(gif->SHeight, h);
    assert_int_equal(gif->ImageCount, nf);
    assert_non_null(gif->SColorMap);
    assert_int_equal(gif->SColorMap->ColorCount, 256);
    for (int i = 0; i < 256; i += 51) {
        assert_int_equal(gif->SColorMap->Colors[i].Red, i);
        assert_int_equal(gif->SColorMap->Colors[i].Green, i);
        assert_int_equal(gif->SColorMap->Colors[i].Blue, i);
    }
    /* The NETSCAPE2.0 block (loop count 0 = forever) comes before the first frame. */
    int found_loop = 0;
    SavedImage *first = &gif->SavedImages[0];
    for (int b = 0; b + 1 < first->ExtensionBlockCount; b++) {
        ExtensionBlock *e = &first->ExtensionBlocks[b];
        if (e->Function == APPLICATION_EXT_FUNC_CODE && e->ByteCount == 11 &&
            memcmp(e->Bytes, "NETSCAPE2.0", 11) == 0) {
            ExtensionBlock *sub = &first->ExtensionBlocks[b + 1];
            assert_int_equal(sub->ByteCount, 3);
            assert_int_equal(sub->Bytes[0], 1);
            assert_int_equal(sub->Bytes[1], 0);
            assert_int_equal(sub->Bytes[2], 0);
            found_loop = 1;
        }
    }
    assert_true(found_loop);
    const int want_delay[3] = {7, 7, 150};
    for (int f = 0; f < nf; f++) {
        GraphicsControlBlock gcb;
        assert_int_equal(DGifSavedExtensionToGCB(gif, f, &gcb), GIF_OK);
        assert_int_equal(gcb.DelayTime, want_delay[f]);
        assert_int_equal(gcb.TransparentColor, NO_TRANSPARENT_COLOR);
        SavedImage *si = &gif->SavedImages[f];
        assert_int_equal(si->ImageDesc.Width, w);
        assert_int_equal(si->ImageDesc.Height, h);
        assert_memory_equal(si->RasterBits, frames + f * w * h, (size_t)(w * h));
    }
    DGifCloseFile(gif, &err);

    /* GIF89a, since it uses extensions. */
    FILE *fp = fopen(p, "rb");
    char sig[6];
    assert_int_equal(fread(sig, 1, 6, fp), 6);
    fclose(fp);
    assert_memory_equal(sig, "GIF89a", 6);
    assert_int_equal(count_entries(".tmp."), 0);

    assert_int_equal(gif_write_gray(p, frames, 0, w, h, 7, 150), -1);
    assert_int_equal(gif_write_gray(p, frames, 1, 70000, 1, 7, 150), -1);
}

/* ---------------------------------------------------------------------------------------
 * One pixel conversion for every writer. */

/* Round half to even at every exact half k + 0.5, clamping, NaN, and the byte round trip. */
static void test_pixel_rounding(void **state) {
    (void)state;
    for (int k = 0; k < 255; k++) {
        float v = (k + 0.5f) / 255.0f;
        assert_true(v * 255.0f == k + 0.5f); /* an exact half, as the writers see it */
        assert_int_equal(pixel_to_u8(v), k % 2 == 0 ? k : k + 1);
    }
    assert_int_equal(pixel_to_u8(0.5f / 255.0f), 0); /* 0.00196: 0 in every file */
    assert_int_equal(pixel_to_u8(-3.0f), 0);
    assert_int_equal(pixel_to_u8(7.0f), 255);
    assert_int_equal(pixel_to_u8(NAN), 0);
    assert_int_equal(pixel_to_u8(INFINITY), 255);
    for (int b = 0; b < 256; b++) assert_int_equal(pixel_to_u8(pixel_from_u8((uint8_t)b)), b);
}

/* The same float images written as PNG (grid), GIF (grid), IDX and a figure come back as the
 * same bytes, pixel_to_u8's, exact halves included. */
static void test_writers_agree(void **state) {
    (void)state;
    enum { N = 2, S = 28, P = S * S };
    float imgs[N * P];
    uint8_t want[N * P];
    for (int i = 0; i < N * P; i++) {
        int k = i % 255;
        /* exact halves, a ramp between them, and out-of-range values */
        imgs[i] = i % 3 == 0 ? (k + 0.5f) / 255.0f : i % 3 == 1 ? (float)i / (N * P) : (i % 7) - 3.0f;
    }
    imgs[5] = NAN;
    pixels_to_u8(want, imgs, N * P);

    const char *png = tpath("agree.png"), *gif = tpath("agree.gif"), *idx = tpath("agree.idx");
    assert_int_equal(png_write_grid(png, imgs, N, S, S, 1, 0, 1), 0);
    const PixelGrid g = {.n = N, .h = S, .w = S, .cols = 1, .pad = 0, .scale = 1};
    assert_int_equal(gif_write_grid(gif, imgs, N * P, 1, &g, 10, 10), 0);
    const int labels[N] = {3, 7};
    assert_int_equal(idx_write_images(idx, imgs, labels, N, S, S), 0);

    int w, h;
    uint8_t *from_png = read_png(png, PNG_FORMAT_GRAY, &w, &h);
    assert_int_equal(w, S);
    assert_int_equal(h, N * S);
    assert_memory_equal(from_png, want, N * P);
    xfree(from_png);

    int err = 0;
    GifFileType *gf = DGifOpenFileName(gif, &err);
    assert_non_null(gf);
    assert_int_equal(DGifSlurp(gf), GIF_OK);
    assert_int_equal(gf->ImageCount, 1);
    assert_int_equal(gf->SWidth, S);
    assert_int_equal(gf->SHeight, N * S);
    assert_memory_equal(gf->SavedImages[0].RasterBits, want, N * P);
    DGifCloseFile(gf, &err);

    IdxArray a, l;
    const uint32_t dims[3] = {N, S, S}, ldims[1] = {N};
    if (idx_read_expect(idx, &a, 3, dims) != 0) fail_msg("%s", err_msg());
    assert_memory_equal(a.data, want, N * P);
    idx_free(&a);
    char *lp = idx_labels_path(idx);
    assert_string_equal(lp, tpath("agree-labels.idx"));
    if (idx_read_expect(lp, &l, 1, ldims) != 0) fail_msg("%s", err_msg());
    assert_int_equal(l.data[0], 3);
    assert_int_equal(l.data[1], 7);
    idx_free(&l);
    xfree(lp);

    /* A figure of the first image alone: 3x upscaled, 12 pixels of margin, gray as RGB. */
    assert_int_equal(figure_grid_png(png, imgs, 1, 1, S, S, NULL, NULL, NULL), 0);
    uint8_t *rgb = read_png(png, PNG_FORMAT_RGB, &w, &h);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const uint8_t *px = rgb + 3 * ((size_t)(12 + 3 * y) * w + 12 + 3 * x);
            assert_int_equal(px[0], want[y * S + x]);
            assert_int_equal(px[1], want[y * S + x]);
        }
    xfree(rgb);
}

/* A GIF grid shows the first g.n of a frame's images (frame_stride apart), padded. */
static void test_gif_grid(void **state) {
    (void)state;
    enum { NF = 2, NI = 3, H = 2, W = 3 };
    float frames[NF * NI * H * W];
    for (int i = 0; i < NF * NI * H * W; i++) frames[i] = (float)i / (NF * NI * H * W);
    const PixelGrid g = {.n = 2, .h = H, .w = W, .cols = 2, .pad = 1, .scale = 1, .background = 9};
    const char *p = tpath("grid.gif");
    assert_int_equal(gif_write_grid(p, frames, NI * H * W, NF, &g, 5, 50), 0);
    int err = 0;
    GifFileType *gf = DGifOpenFileName(p, &err);
    assert_non_null(gf);
    assert_int_equal(DGifSlurp(gf), GIF_OK);
    const int GW = 1 + 2 * (W + 1), GH = 1 + (H + 1);
    assert_int_equal(gf->SWidth, GW);
    assert_int_equal(gf->SHeight, GH);
    assert_int_equal(gf->ImageCount, NF);
    for (int f = 0; f < NF; f++) {
        const uint8_t *r = gf->SavedImages[f].RasterBits;
        assert_int_equal(r[0], 9);
        for (int i = 0; i < 2; i++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    assert_int_equal(r[(1 + y) * GW + 1 + i * (W + 1) + x],
                                     pixel_to_u8(frames[(f * NI + i) * H * W + y * W + x]));
    }
    DGifCloseFile(gf, &err);
    const PixelGrid bad = {.n = 0, .h = H, .w = W, .cols = 1, .scale = 1};
    assert_int_equal(gif_write_grid(p, frames, 0, 1, &bad, 5, 5), -1);
}

/* ---------------------------------------------------------------------------------------
 * Figures. */

static void test_figure_grid(void **state) {
    (void)state;
    /* 2 x 3 all-black 28 x 28 images: they show up upscaled 3x as black squares on white. */
    const int rows = 2, cols = 3, h = 28, w = 28;
    float *imgs = xcalloc((size_t)(rows * cols * h * w), sizeof(float));
    const char *rl[2] = {"digit 3", NULL};
    const char *cl[3] = {"t=1000", "t=500", "t=0"};
    const char *p = tpath("fig.png");
    assert_int_equal(figure_grid_png(p, imgs, rows, cols, h, w, "A title", rl, cl), 0);
    int W, H;
    uint8_t *rgb = read_png(p, PNG_FORMAT_RGB, &W, &H);
    printf("  figure %d x %d\n", W, H);
    assert_true(W >= cols * 84 && W < cols * 84 + 300);
    assert_true(H >= rows * 84 + 20 && H < rows * 84 + 200);
    long black = 0, white = 0;
    for (long i = 0; i < (long)W * H; i++) {
        const uint8_t *px = rgb + 3 * i;
        if (px[0] == 0 && px[1] == 0 && px[2] == 0) black++;
        if (px[0] == 255 && px[1] == 255 && px[2] == 255) white++;
    }
    assert_true(black >= (long)rows * cols * 84 * 84);
    assert_true(black < (long)rows * cols * 84 * 84 + 2000); /* text is dark gray, not black */
    assert_int_equal(rgb[0], 255); /* white background */
    assert_true(white > (long)W * H / 5);
    /* Some text was drawn: dark gray, not white or black, above the images. */
    long ink = 0;
    for (long i = 0; i < (long)W * 30; i++) ink += rgb[3 * i] < 200;
    assert_true(ink > 50);
    xfree(rgb);

    /* No labels and no title: just the images with a margin. */
    assert_int_equal(figure_grid_png(p, imgs, 1, 1, h, w, NULL, NULL, NULL), 0);
    rgb = read_png(p, PNG_FORMAT_RGB, &W, &H);
    assert_int_equal(W, 84 + 24);
    assert_int_equal(H, 84 + 24);
    xfree(rgb);

    assert_int_equal(figure_grid_png(p, imgs, 0, 3, h, w, NULL, NULL, NULL), -1);
    assert_non_null(strstr(err_msg(), p));
    xfree(imgs);
}

/* Count pixels of exactly this colour. */
static long count_rgb(const uint8_t *rgb, int W, int H, int r, int g, int b, int tol) {
    long n = 0;
    for (long i = 0; i < (long)W * H; i++)
        if (abs(rgb[3 * i] - r) <= tol && abs(rgb[3 * i + 1] - g) <= tol &&
            abs(rgb[3 * i + 2] - b) <= tol)
            n++;
    return n;
}

static void test_plot_curve(void **state) {
    (void)state;
    const int n = 3000;
    float *y = xmalloc(sizeof(float) * n);
    for (int i = 0; i < n; i++)
        y[i] = 0.05f + expf((float)-i / 300.0f) + 0.02f * (float)((i * 7919) % 13) / 13.0f;
    y[100] = NAN; /* a gap, not a crash */
    const char *p = tpath("loss.png");
    for (int log_y = 0; log_y <= 1; log_y++) {
        assert_int_equal(plot_curve_png(p, y, n, "Loss", "step", "MSE", 50, log_y), 0);
        int W, H;
        uint8_t *rgb = read_png(p, PNG_FORMAT_RGB, &W, &H);
        assert_int_equal(W, 900);
        assert_int_equal(H, 500);
        /* The strong moving-average colour and the light raw colour are both present. */
        long strong = count_rgb(rgb, W, H, 13, 64, 166, 12);
        long light = count_rgb(rgb, W, H, 158, 194, 237, 12);
        printf("  log_y=%d: %ld strong, %ld light pixels\n", log_y, strong, light);
        assert_true(strong > 500);
        assert_true(light > 500);
        xfree(rgb);
    }
    /* Degenerate inputs still give a picture. */
    assert_int_equal(plot_curve_png(p, y, 0, "Empty", "step", "loss", 10, 1), 0);
    float c[3] = {2, 2, 2};
    assert_int_equal(plot_curve_png(p, c, 3, "Flat", "step", "loss", 0, 0), 0);
    assert_int_equal(plot_curve_png(p, c, 1, "One", NULL, NULL, 5, 0), 0);
    float extreme[4] = {3e38f, -3e38f, NAN, INFINITY};
    assert_int_equal(plot_curve_png(p, extreme, 4, "Extreme", "step", "loss", 2, 0), 0);
    assert_int_equal(plot_curve_png(p, extreme, 4, "Extreme", "step", "loss", 2, 1), 0);
    assert_int_equal(count_entries(".tmp."), 0);
    xfree(y);
}

/* fontconfig, which cairo uses to find DejaVu Sans, keeps its configuration for the life of
 * the process on purpose; tell LeakSanitizer (in `make asan`) that this is not our leak. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig\n"; }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_atomic_commit_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_commit_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_and_make_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_gray_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_read_gray, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gif_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pixel_rounding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writers_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gif_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_figure_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plot_curve, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cairo_debug_reset_static_data(); /* release cairo's font caches before leak checking */
    return failed;
}
