/* Tests for the data sources beside MNIST's IDX files: image sets and the seeded split, the
 * CIFAR-10 binary reader, folders of PNG and JPEG files (round trips, resizing, colour
 * modes, the bad-input table), the decoded-image cache (a second load reads no image; a
 * damaged cache is never a crash) and `ddpm data export`. Every fixture is made here from
 * the first MNIST test images. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>

#include "testutil.h"
#include "cifar_fixture.h"

#include "core/common.h"
#include "data/cifar.h"
#include "data/folder.h"
#include "data/imagecache.h"
#include "data/imagefile.h"
#include "data/imageset.h"
#include "data/mnist.h"
#include "io/fileio.h"
#include "io/image.h"

#define N_IMG 60 /* MNIST test images the fixtures are made of */

static char g_dir[64];

/* ---------------------------------------------------------------------------------------
 * Helpers. */

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "datasrc");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static const char *tpath(const char *name) { return test_path_in(g_dir, name); }

static const uint8_t *digit(int i) { return g_mnist.images + (size_t)i * MNIST_PIXELS; }

/* The first n MNIST test digits as dir/<label>/NNNNN.png (the project's PNG writer); the
 * order the loader gives them back in (class by class, by index) into order. Returns the
 * number of classes present. */
static int write_png_folder(const char *dir, int n, int *order) {
    char path[700];
    int present[10] = {0}, k = 0, classes = 0;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%u", dir, g_mnist.labels[i]);
        assert_int_equal(make_dirs(path), 0);
        snprintf(path, sizeof path, "%s/%u/%05d.png", dir, g_mnist.labels[i], i);
        assert_int_equal(png_write_gray(path, digit(i), MNIST_W, MNIST_H), 0);
        present[g_mnist.labels[i]] = 1;
    }
    for (int d = 0; d < 10; d++) {
        classes += present[d];
        for (int i = 0; i < n && order; i++)
            if (g_mnist.labels[i] == d) order[k++] = i;
    }
    return classes;
}

/* A JPEG of w x h pixels of 1 or 3 interleaved channels, by libjpeg's compressor. */
static void write_jpeg(const char *path, const uint8_t *pix, int w, int h, int channels) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = channels;
    c.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    for (int k = 0; k < c.num_components; k++) /* no chroma subsampling */
        c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * (size_t)w * (size_t)channels);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    test_write_raw(path, mem, len);
    jpeg_destroy_compress(&c);
    free(mem);
}

/* A 16-bit grey PNG without gamma information (libpng's full API). */
static void write_png16(const char *path, const uint16_t *pix, int w, int h) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 16, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_swap(png);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pix + (size_t)y * w));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    assert_int_equal(fclose(f), 0);
}

/* Log lines sent to a Progress, concatenated. */
typedef struct {
    char text[8192];
    long counts;
} Captured;

static void capture(void *user, const ProgressEvent *ev) {
    Captured *c = user;
    if (ev->line) strncat(c->text, ev->line, sizeof c->text - strlen(c->text) - 1);
    else c->counts++;
}

static double mean_u8(const uint8_t *p, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s / (double)n;
}

/* The last error is one line that names what (a file or folder). */
static void assert_error_names(const char *what) {
    const char *m = err_msg();
    printf("  error: %s\n", m);
    assert_non_null(strstr(m, what));
    assert_null(strchr(m, '\n'));
}

/* ---------------------------------------------------------------------------------------
 * Image sets. */

static void test_imageset_from_mnist(void **state) {
    (void)state;
    MnistSplit m = {.n = N_IMG, .images = xmalloc((size_t)N_IMG * MNIST_PIXELS),
                    .labels = xmalloc(N_IMG)};
    memcpy(m.images, g_mnist.images, (size_t)N_IMG * MNIST_PIXELS);
    memcpy(m.labels, g_mnist.labels, N_IMG);
    uint8_t *bytes = m.images;
    ImageSet s;
    ImageGeom g = geometry_mnist();
    imageset_from_mnist(&s, &m, &g);
    assert_null(m.images);
    assert_ptr_equal(s.pixels, bytes); /* taken over, not copied */
    assert_int_equal(s.n, N_IMG);
    assert_int_equal(imageset_image_bytes(&s), MNIST_PIXELS);
    assert_memory_equal(s.pixels, g_mnist.images, (size_t)N_IMG * MNIST_PIXELS);
    assert_memory_equal(s.labels, g_mnist.labels, N_IMG);
    imageset_free(&s);
}

static void test_imageset_split(void **state) {
    (void)state;
    ImageSet all;
    ImageGeom g = geometry_mnist();
    imageset_alloc(&all, &g, 1000);
    memcpy(all.pixels, g_mnist.images, (size_t)1000 * MNIST_PIXELS);
    memcpy(all.labels, g_mnist.labels, 1000);
    ImageSet tr, te, tr2, te2;
    assert_int_equal(imageset_split(&tr, &te, &all, 0.1, 7), 0);
    assert_int_equal(tr.n + te.n, 1000);
    assert_true(te.n >= 95 && te.n <= 105);
    /* class by class: each class's share of the test part is within one image of 10% */
    int count_all[10] = {0}, count_te[10] = {0};
    for (int i = 0; i < 1000; i++) count_all[all.labels[i]]++;
    for (int i = 0; i < te.n; i++) count_te[te.labels[i]]++;
    for (int d = 0; d < 10; d++) assert_true(abs(count_te[d] * 10 - count_all[d]) <= 10);
    /* the same seed gives the same split, another seed another */
    assert_int_equal(imageset_split(&tr2, &te2, &all, 0.1, 7), 0);
    assert_int_equal(te2.n, te.n);
    assert_memory_equal(te2.pixels, te.pixels, (size_t)te.n * MNIST_PIXELS);
    imageset_free(&tr2);
    imageset_free(&te2);
    assert_int_equal(imageset_split(&tr2, &te2, &all, 0.1, 8), 0);
    assert_true(te2.n != te.n || memcmp(te2.pixels, te.pixels, (size_t)te.n * MNIST_PIXELS));
    imageset_free(&tr2);
    imageset_free(&te2);
    /* every image lands in exactly one part: the pixel sums add up */
    double sum = mean_u8(tr.pixels, (size_t)tr.n * MNIST_PIXELS) * tr.n +
                 mean_u8(te.pixels, (size_t)te.n * MNIST_PIXELS) * te.n;
    assert_true(fabs(sum - mean_u8(all.pixels, (size_t)1000 * MNIST_PIXELS) * 1000) < 1e-3);
    imageset_free(&tr);
    imageset_free(&te);
    assert_int_equal(imageset_split(&tr, &te, &all, 1.5, 7), -1);
    assert_int_equal(imageset_split(&tr, &te, &all, 0.0001, 7), -1);
    imageset_free(&all);
}

/* ---------------------------------------------------------------------------------------
 * CIFAR-10. */

static void cifar_record(uint8_t *rec, int i) { cifar_fixture_record(rec, &g_mnist, i); }

static void write_cifar(const char *path, int first, int n) {
    assert_int_equal(cifar_fixture_write(path, &g_mnist, first, n), 0);
}

static void test_cifar_roundtrip(void **state) {
    (void)state;
    for (int b = 1; b <= 5; b++) {
        char name[64];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        write_cifar(tpath(name), (b - 1) * 8, 8);
    }
    write_cifar(tpath("test_batch.bin"), 40, 5);
    assert_true(cifar_detect(g_dir));
    ImageSet s;
    assert_int_equal(cifar_load(&s, g_dir, 1), 0);
    assert_int_equal(s.n, 40);
    assert_int_equal(s.geom.channels, 3);
    assert_int_equal(s.geom.height, 32);
    assert_int_equal(s.geom.classes, 10);
    assert_string_equal(s.geom.class_names[3], "cat");
    uint8_t rec[CIFAR_RECORD];
    for (int i = 0; i < 40; i++) {
        cifar_record(rec, i);
        assert_int_equal(s.labels[i], g_mnist.labels[i]);
        assert_memory_equal(s.pixels + (size_t)i * 3072, rec + 1, 3072);
    }
    imageset_free(&s);
    /* the test split, and the names from batches.meta.txt */
    const char *names = "a0\nb1\nc2\nd3\ne4\nf5\ng6\nh7\ni8\nj9\n\n";
    test_write_raw(tpath("batches.meta.txt"), names, strlen(names));
    assert_int_equal(cifar_load(&s, g_dir, 0), 0);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.geom.class_names[9], "j9");
    assert_int_equal(geometry_check(&s.geom), 0);
    imageset_free(&s);
}

static void test_cifar_bad(void **state) {
    (void)state;
    ImageSet s;
    /* missing files */
    assert_false(cifar_detect(g_dir));
    assert_int_equal(cifar_load(&s, g_dir, 0), -1);
    assert_error_names("test_batch.bin");
    write_cifar(tpath("data_batch_1.bin"), 0, 3);
    assert_int_equal(cifar_load(&s, g_dir, 1), -1);
    assert_error_names("data_batch_2.bin");
    /* a length that is not a whole number of records */
    uint8_t *buf = xmalloc(3 * CIFAR_RECORD);
    for (int i = 0; i < 3; i++) cifar_record(buf + i * CIFAR_RECORD, i);
    test_write_raw(tpath("test_batch.bin"), buf, 3 * CIFAR_RECORD - 100);
    assert_int_equal(cifar_load(&s, g_dir, 0), -1);
    assert_error_names("test_batch.bin");
    assert_non_null(strstr(err_msg(), "whole number"));
    /* a label over 9 */
    buf[CIFAR_RECORD] = 10;
    test_write_raw(tpath("test_batch.bin"), buf, 3 * CIFAR_RECORD);
    assert_int_equal(cifar_load(&s, g_dir, 0), -1);
    assert_error_names("test_batch.bin");
    assert_non_null(strstr(err_msg(), "record 1 has label 10"));
    /* empty, and a names file without ten names */
    test_write_raw(tpath("test_batch.bin"), buf, 0);
    assert_int_equal(cifar_load(&s, g_dir, 0), -1);
    assert_error_names("test_batch.bin");
    buf[CIFAR_RECORD] = 1;
    test_write_raw(tpath("test_batch.bin"), buf, 3 * CIFAR_RECORD);
    test_write_raw(tpath("batches.meta.txt"), "cat\ndog\n", 8);
    assert_int_equal(cifar_load(&s, g_dir, 0), -1);
    assert_error_names("batches.meta.txt");
    xfree(buf);
}

/* ---------------------------------------------------------------------------------------
 * Folders. */

static void test_folder_png_roundtrip(void **state) {
    (void)state;
    int order[N_IMG];
    int classes = write_png_folder(g_dir, N_IMG, order);
    ImageSet s;
    FolderOptions opt = {0};
    Captured cap = {.counts = 0};
    Progress p = {capture, &cap};
    assert_int_equal(folder_load(&s, g_dir, &opt, &p), 0);
    assert_int_equal(s.n, N_IMG);
    assert_int_equal(s.geom.channels, 1);
    assert_int_equal(s.geom.height, 28);
    assert_int_equal(s.geom.classes, classes);
    assert_int_equal(geometry_check(&s.geom), 0);
    for (int i = 0; i < N_IMG; i++) {
        assert_memory_equal(s.pixels + (size_t)i * MNIST_PIXELS, digit(order[i]), MNIST_PIXELS);
        /* the label is the class folder's index; the folders are the digits present */
        char want[2] = {(char)('0' + g_mnist.labels[order[i]]), 0};
        assert_string_equal(s.geom.class_names[s.labels[i]], want);
    }
    assert_true(cap.counts > 0);      /* progress while decoding */
    assert_string_equal(cap.text, ""); /* nothing converted, nothing to say */
    imageset_free(&s);

    /* in RGB: three equal planes, each the digit */
    opt.channels = 3;
    assert_int_equal(folder_load(&s, g_dir, &opt, &p), 0);
    assert_int_equal(s.geom.channels, 3);
    for (int ch = 0; ch < 3; ch++)
        assert_memory_equal(s.pixels + 5 * 3 * MNIST_PIXELS + ch * MNIST_PIXELS, digit(order[5]),
                            MNIST_PIXELS);
    assert_non_null(strstr(cap.text, "three equal channels"));
    imageset_free(&s);
}

static void test_folder_resize(void **state) {
    (void)state;
    write_png_folder(g_dir, 20, NULL);
    const int sizes[2] = {32, 16};
    for (int k = 0; k < 2; k++) {
        ImageSet s;
        FolderOptions opt = {.size = sizes[k]};
        Captured cap = {.counts = 0};
        Progress p = {capture, &cap};
        assert_int_equal(folder_load(&s, g_dir, &opt, &p), 0);
        assert_int_equal(s.n, 20);
        assert_int_equal(s.geom.height, sizes[k]);
        assert_int_equal(s.geom.width, sizes[k]);
        assert_int_equal(s.geom.channels, 1);
        /* the mean brightness survives the resampling */
        double want = 0, got = mean_u8(s.pixels, (size_t)20 * sizes[k] * sizes[k]);
        for (int i = 0; i < 20; i++) want += mean_u8(digit(i), MNIST_PIXELS) / 20;
        printf("  %dx%d: mean %.2f, at 28x28 %.2f\n", sizes[k], sizes[k], got, want);
        assert_true(fabs(got - want) < 0.04 * want);
        assert_non_null(strstr(cap.text, "20 of 20 images resized"));
        imageset_free(&s);
    }
}

/* A colour JPEG (the digit tinted orange), a grey JPEG, a non-square PNG with alpha and a
 * 16-bit PNG, unlabelled in one folder: decoded, converted and stated. */
static void test_folder_formats(void **state) {
    (void)state;
    uint8_t rgb[MNIST_PIXELS * 3];
    for (int k = 0; k < MNIST_PIXELS; k++) {
        rgb[3 * k] = digit(0)[k];
        rgb[3 * k + 1] = (uint8_t)(digit(0)[k] / 2);
        rgb[3 * k + 2] = 0;
    }
    write_jpeg(tpath("a.jpg"), rgb, 28, 28, 3);
    write_jpeg(tpath("b.JPEG"), digit(1), 28, 28, 1);
    /* c.png: 28 wide, 40 high, RGBA; the middle 28 rows are digit 2, opaque; the rest
     * transparent white, which the composite on black makes 0 */
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 28;
    im.height = 40;
    im.format = PNG_FORMAT_RGBA;
    uint8_t *rgba = xcalloc(28 * 40 * 4, 1);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 28; x++) {
            uint8_t *px = rgba + (y * 28 + x) * 4;
            int in = y >= 6 && y < 34;
            px[0] = px[1] = px[2] = in ? digit(2)[(y - 6) * 28 + x] : 255;
            px[3] = in ? 255 : 0;
        }
    assert_true(png_image_write_to_file(&im, tpath("c.png"), 0, rgba, 0, NULL));
    xfree(rgba);
    uint16_t deep[MNIST_PIXELS];
    for (int k = 0; k < MNIST_PIXELS; k++) deep[k] = (uint16_t)(digit(3)[k] * 257);
    write_png16(tpath("d.png"), deep, 28, 28);
    test_write_raw(tpath("notes.txt"), "hello", 5);

    ImageSet s;
    FolderOptions opt = {0};
    Captured cap = {.counts = 0};
    Progress p = {capture, &cap};
    assert_int_equal(folder_load(&s, g_dir, &opt, &p), 0);
    printf("%s", cap.text);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.geom.classes, 0);
    assert_null(s.labels);
    assert_int_equal(s.geom.channels, 3); /* one image in colour */
    assert_int_equal(s.geom.height, 28);
    const size_t img = 3 * MNIST_PIXELS;
    double err_r = 0, err_g = 0, err_grey = 0;
    for (int k = 0; k < MNIST_PIXELS; k++) {
        err_r += fabs((double)s.pixels[k] - digit(0)[k]) / MNIST_PIXELS;
        err_g += fabs((double)s.pixels[MNIST_PIXELS + k] - digit(0)[k] / 2) / MNIST_PIXELS;
        err_grey += fabs((double)s.pixels[img + k] - digit(1)[k]) / MNIST_PIXELS;
    }
    printf("  JPEG mean |error|: red %.2f, green %.2f, grey %.2f\n", err_r, err_g, err_grey);
    assert_true(err_r < 3 && err_g < 3 && err_grey < 3);
    assert_memory_equal(s.pixels + 2 * img, digit(2), MNIST_PIXELS); /* crop, composite */
    assert_memory_equal(s.pixels + 3 * img + 2 * MNIST_PIXELS, digit(3), MNIST_PIXELS);
    assert_non_null(strstr(cap.text, "1 file without a .png, .jpg or .jpeg name skipped"));
    assert_non_null(strstr(cap.text, "2 of 4 images are grey"));
    assert_non_null(strstr(cap.text, "1 of 4 images are not square"));
    assert_non_null(strstr(cap.text, "1 of 4 images have transparency"));
    assert_non_null(strstr(cap.text, "1 of 4 images have 16 bits"));
    imageset_free(&s);

    /* in grey: the colour image by luma */
    opt.channels = 1;
    assert_int_equal(folder_load(&s, g_dir, &opt, &p), 0);
    assert_int_equal(s.geom.channels, 1);
    assert_memory_equal(s.pixels + 3 * MNIST_PIXELS, digit(3), MNIST_PIXELS);
    assert_non_null(strstr(cap.text, "2 of 4 images are in colour: turned grey"));
    imageset_free(&s);
}

/* The bad-input table: each case one line naming the file or folder, nothing loaded. */
static void test_folder_bad_input(void **state) {
    (void)state;
    unsigned char *png;
    size_t png_len;
    assert_int_equal(png_write_gray(tpath("good.png"), digit(0), 28, 28), 0);
    assert_int_equal(read_file(tpath("good.png"), 1 << 20, &png, &png_len), 0);
    write_jpeg(tpath("good.jpg"), digit(0), 28, 28, 1);
    unsigned char *jpg;
    size_t jpg_len;
    assert_int_equal(read_file(tpath("good.jpg"), 1 << 20, &jpg, &jpg_len), 0);
    static const char *const cases[] = {"no images",   "zero bytes",   "truncated PNG",
                                        "truncated JPEG", "not an image", "unreadable",
                                        "empty class",  "long class name", "image beside classes",
                                        "missing folder"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[600], file[700], named[700];
        snprintf(dir, sizeof dir, "%s/case%zu", g_dir, c);
        assert_int_equal(make_dirs(dir), 0);
        snprintf(file, sizeof file, "%s/x.png", dir);
        snprintf(named, sizeof named, "%s", file);
        switch (c) {
        case 0: test_write_raw(tpath("case0/readme.txt"), "x", 1); snprintf(named, sizeof named, "%s", dir); break;
        case 1: test_write_raw(file, "", 0); break;
        case 2: test_write_raw(file, png, png_len / 2); break;
        case 3: snprintf(file, sizeof file, "%s/x.jpg", dir); test_write_raw(file, jpg, jpg_len / 2);
                snprintf(named, sizeof named, "%s", file); break;
        case 4: test_write_raw(file, "<html>this is not a picture</html>", 34); break;
        case 5: assert_int_equal(symlink("/nonexistent/ddpm-test.png", file), 0); break;
        case 6: snprintf(named, sizeof named, "%s/cat", dir); assert_int_equal(make_dirs(named), 0);
                test_write_raw(tpath("case6/cat/a.txt"), "x", 1); break;
        case 7: snprintf(named, sizeof named, "%s/a_class_name_of_thirty_bytes", dir);
                assert_int_equal(make_dirs(named), 0); break;
        case 8: snprintf(named, sizeof named, "%s/dog", dir); assert_int_equal(make_dirs(named), 0);
                test_write_raw(tpath("case8/dog/a.png"), png, png_len); test_write_raw(file, png, png_len); 
                snprintf(named, sizeof named, "%s", file); break;
        case 9: snprintf(dir, sizeof dir, "%s/no-such-folder", g_dir); snprintf(named, sizeof named, "%s", dir); break;
        }
        printf("  %-22s", cases[c]);
        ImageSet s;
        FolderOptions opt = {0};
        assert_int_equal(folder_load(&s, dir, &opt, NULL), -1);
        assert_null(s.pixels);
        assert_error_names(named);
    }
    /* a size the model cannot take */
    ImageSet s;
    FolderOptions odd = {.size = 30};
    assert_int_equal(folder_load(&s, tpath("case8/dog"), &odd, NULL), -1);
    assert_error_names("image size 30 is not a multiple of 4");
    /* a class with a single image: loaded, with a warning naming its folder */
    Captured cap = {.counts = 0};
    Progress p = {capture, &cap};
    FolderOptions opt = {0};
    test_write_raw(tpath("case8/dog/b.png"), png, png_len);
    assert_int_equal(make_dirs(tpath("single/cat")), 0);
    assert_int_equal(make_dirs(tpath("single/dog")), 0);
    test_write_raw(tpath("single/cat/a.png"), png, png_len);
    test_write_raw(tpath("single/dog/a.png"), png, png_len);
    test_write_raw(tpath("single/dog/b.png"), png, png_len);
    assert_int_equal(folder_load(&s, tpath("single"), &opt, &p), 0);
    printf("  single-image class: %s", cap.text);
    assert_non_null(strstr(cap.text, tpath("single/cat")));
    assert_non_null(strstr(cap.text, "single image"));
    assert_int_equal(s.n, 3);
    imageset_free(&s);
    xfree(png);
    xfree(jpg);
}

/* ---------------------------------------------------------------------------------------
 * The cache. */

/* Overwrite every file of l with bytes that are no image, keeping its size and mtime: the
 * listing (and so the key) stays, and any image read would now fail. */
static void spoil_images(const FolderListing *l) {
    for (int i = 0; i < l->n; i++) {
        struct stat st;
        assert_int_equal(stat(l->files[i].path, &st), 0);
        char *junk = xcalloc((size_t)st.st_size + 1, 1);
        memset(junk, 'x', (size_t)st.st_size);
        test_write_raw(l->files[i].path, junk, (size_t)st.st_size);
        xfree(junk);
        struct timespec times[2] = {st.st_atim, st.st_mtim};
        assert_int_equal(utimensat(AT_FDCWD, l->files[i].path, times, 0), 0);
    }
}

static void test_cache_second_load_reads_no_image(void **state) {
    (void)state;
    char imgdir[600], cache[600];
    snprintf(imgdir, sizeof imgdir, "%s/images", g_dir);
    snprintf(cache, sizeof cache, "%s/cache/sub/images.ddpmcache", g_dir);
    write_png_folder(imgdir, 30, NULL);
    FolderOptions opt = {.size = 16, .channels = 3};
    ImageSet first, second;
    Captured cap = {.counts = 0};
    Progress p = {capture, &cap};
    assert_int_equal(folder_load_cached(&first, imgdir, &opt, cache, &p), 0);
    assert_true(path_exists(cache));

    FolderListing l;
    assert_int_equal(folder_list(&l, imgdir, NULL), 0);
    spoil_images(&l);
    /* a decode would now fail on the first file */
    ImageSet s;
    assert_int_equal(folder_load(&s, imgdir, &opt, NULL), -1);
    assert_error_names(l.files[0].path);

    cap.text[0] = 0;
    cap.counts = 0;
    assert_int_equal(folder_load_cached(&second, imgdir, &opt, cache, &p), 0);
    assert_non_null(strstr(cap.text, "read from the cache"));
    assert_int_equal(cap.counts, 0); /* nothing decoded */
    assert_true(geometry_equal(&first.geom, &second.geom));
    assert_int_equal(second.n, first.n);
    assert_memory_equal(second.pixels, first.pixels, (size_t)first.n * imageset_image_bytes(&first));
    assert_memory_equal(second.labels, first.labels, (size_t)first.n);
    imageset_free(&second);

    /* other options are another key: a miss, so the (spoiled) images are read */
    FolderOptions other = {.size = 16, .channels = 1};
    assert_int_equal(folder_load_cached(&second, imgdir, &other, cache, &p), -1);
    /* and so is a changed mtime */
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
    assert_int_equal(utimensat(AT_FDCWD, l.files[3].path, times, 0), 0);
    assert_int_equal(folder_load_cached(&second, imgdir, &opt, cache, &p), -1);
    folder_listing_free(&l);
    imageset_free(&first);
}

/* Every cut of a cache file and every one-byte change is a miss or a clear error, never a
 * hit and never a crash (under ASan in make asan). */
static void test_cache_damaged(void **state) {
    (void)state;
    ImageSet s;
    ImageGeom g = geometry_mnist();
    imageset_alloc(&s, &g, 12);
    memcpy(s.pixels, g_mnist.images, (size_t)12 * MNIST_PIXELS);
    memcpy(s.labels, g_mnist.labels, 12);
    const char *key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *path = tpath("c.ddpmcache");
    assert_int_equal(imagecache_save(path, key, &s), 0);
    ImageSet back;
    assert_int_equal(imagecache_load(&back, path, key), IMAGECACHE_HIT);
    assert_memory_equal(back.pixels, s.pixels, (size_t)12 * MNIST_PIXELS);
    assert_memory_equal(back.labels, s.labels, 12);
    imageset_free(&back);
    assert_int_equal(imagecache_load(&back, path, "ffff"), IMAGECACHE_MISS);
    assert_int_equal(imagecache_load(&back, tpath("absent"), key), IMAGECACHE_MISS);

    unsigned char *buf;
    size_t len;
    assert_int_equal(read_file(path, 1 << 24, &buf, &len), 0);
    int damaged = 0;
    for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 97)) {
        ImageCacheResult r = imagecache_read_mem(&back, NULL, buf, cut, "cut", NULL);
        assert_int_not_equal(r, IMAGECACHE_HIT);
        assert_null(back.pixels);
        damaged += r == IMAGECACHE_DAMAGED;
    }
    assert_true(damaged > 0);
    for (size_t at = 0; at < len; at += (at < 300 ? 1 : 53)) {
        unsigned char saved = buf[at];
        buf[at] ^= 0x5a;
        ImageCacheResult r = imagecache_read_mem(&back, NULL, buf, len, "flip", NULL);
        assert_int_not_equal(r, IMAGECACHE_HIT);
        assert_null(strchr(err_msg(), '\n'));
        buf[at] = saved;
    }
    /* a truncated file on disk: a clear line naming it */
    test_write_raw(path, buf, len - 10);
    assert_int_equal(imagecache_load(&back, path, key), IMAGECACHE_DAMAGED);
    assert_error_names(path);
    xfree(buf);
    imageset_free(&s);

    /* a cached load over a damaged cache says so, decodes again and rewrites the cache */
    char imgdir[600];
    snprintf(imgdir, sizeof imgdir, "%s/images", g_dir);
    write_png_folder(imgdir, 8, NULL);
    FolderOptions opt = {0};
    Captured cap = {.counts = 0};
    Progress p = {capture, &cap};
    assert_int_equal(folder_load_cached(&s, imgdir, &opt, path, &p), 0); /* another key */
    imageset_free(&s);
    assert_int_equal(read_file(path, 1 << 24, &buf, &len), 0);
    test_write_raw(path, buf, len - 1);
    xfree(buf);
    cap.text[0] = 0;
    assert_int_equal(folder_load_cached(&s, imgdir, &opt, path, &p), 0);
    printf("  %s", cap.text);
    assert_non_null(strstr(cap.text, "damaged image cache"));
    assert_non_null(strstr(cap.text, "decoding the images again"));
    cap.text[0] = 0;
    assert_int_equal(folder_load_cached(&back, imgdir, &opt, path, &p), 0);
    assert_non_null(strstr(cap.text, "read from the cache"));
    assert_memory_equal(back.pixels, s.pixels, (size_t)8 * MNIST_PIXELS);
    imageset_free(&back);
    imageset_free(&s);
}

/* ---------------------------------------------------------------------------------------
 * ddpm data export. */

static void test_data_export(void **state) {
    (void)state;
    const char *bin = getenv("DDPM_BIN");
    if (!bin || !*bin) bin = "./ddpm"; /* as test_cli: the binary of the checkout */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s data export --format png --data %s --limit 50 %s/out 2>/dev/null",
             bin, test_data_dir(), g_dir);
    assert_int_equal(system(cmd), 0);
    ImageSet s;
    FolderOptions opt = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/out/test", g_dir);
    assert_int_equal(folder_load(&s, dir, &opt, NULL), 0);
    assert_int_equal(s.n, 50);
    int k = 0;
    for (int d = 0; d < 10; d++)
        for (int i = 0; i < 50; i++)
            if (g_mnist.labels[i] == d) {
                char want[2] = {(char)('0' + d), 0};
                assert_string_equal(s.geom.class_names[s.labels[k]], want);
                assert_memory_equal(s.pixels + (size_t)k * MNIST_PIXELS, digit(i), MNIST_PIXELS);
                k++;
            }
    imageset_free(&s);
    snprintf(cmd, sizeof cmd, "%s data export --format jpeg %s/out2 2>/dev/null", bin, g_dir);
    assert_int_not_equal(system(cmd), 0);
}

/* --pad 32 --tint: 32x32 RGB, the digit centred, each class in a colour with one channel at
 * full intensity, so the maximum over channels is the digit again; classes' colours differ. */
static void test_data_export_tinted(void **state) {
    (void)state;
    const char *bin = getenv("DDPM_BIN");
    if (!bin || !*bin) bin = "./ddpm";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s data export --format png --data %s --limit 40 --pad 32 --tint %s/tinted 2>/dev/null",
             bin, test_data_dir(), g_dir);
    assert_int_equal(system(cmd), 0);
    ImageSet s;
    FolderOptions opt = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tinted/test", g_dir);
    assert_int_equal(folder_load(&s, dir, &opt, NULL), 0);
    assert_int_equal(s.n, 40);
    assert_int_equal(s.geom.channels, 3);
    assert_int_equal(s.geom.height, 32);
    uint8_t rgb_of[10][3] = {{0}};
    int k = 0;
    for (int d = 0; d < 10; d++)
        for (int i = 0; i < 40; i++) {
            if (g_mnist.labels[i] != d) continue;
            const uint8_t *im = s.pixels + (size_t)k * 3 * 1024, *want = digit(i);
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    const uint8_t r = im[y * 32 + x], g = im[1024 + y * 32 + x],
                                  b = im[2048 + y * 32 + x];
                    const int inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                    const uint8_t mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
                    assert_int_equal(mx, inside ? want[(y - 2) * 28 + x - 2] : 0);
                    if (inside && want[(y - 2) * 28 + x - 2] == 255) {
                        rgb_of[d][0] = r, rgb_of[d][1] = g, rgb_of[d][2] = b;
                    }
                }
            k++;
        }
    for (int a = 0; a < 10; a++)
        for (int b = a + 1; b < 10; b++)
            if (rgb_of[a][0] + rgb_of[a][1] + rgb_of[a][2] && rgb_of[b][0] + rgb_of[b][1] + rgb_of[b][2])
                assert_memory_not_equal(rgb_of[a], rgb_of[b], 3);
    imageset_free(&s);
    snprintf(cmd, sizeof cmd, "%s data export --format png --pad 30x %s/bad 2>/dev/null", bin, g_dir);
    assert_int_not_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_imageset_from_mnist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imageset_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cifar_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_png_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_second_load_reads_no_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_export_tinted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, fixture_mnist_setup, fixture_mnist_teardown);
}
