/* Training on the data sources beyond MNIST's IDX files, end to end through the ddpm binary
 * ($DDPM_BIN): a CIFAR-10 fixture made from MNIST and a folder of PNG class folders (`ddpm
 * data export`) each train a tiny model whose checkpoint carries the data's geometry and
 * class names, sample a colour grid from it and resume; bad folder options and an empty
 * folder are one-line errors. */
#define _GNU_SOURCE
#include "testutil.h"
#include "cifar_fixture.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "data/geometry.h"
#include "io/fileio.h"
#include "io/safetensors.h"

static char g_dir[64];

static const char *bin(void) {
    const char *b = getenv("DDPM_BIN");
    return b && *b ? b : "./ddpm";
}

/* Run a command line (the binary for each %s), its output in *out (caller frees; NULL: none);
 * returns the exit status. */
static int run(char **out, const char *fmt, ...) {
    char cmd[3000], line[3400], path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/out.txt", g_dir);
    snprintf(line, sizeof line, "%s >%s 2>&1 </dev/null", cmd, path);
    int st = system(line);
    unsigned char *buf = NULL;
    size_t n = 0;
    if (read_file(path, 1 << 20, &buf, &n) != 0) buf = NULL;
    char *s = calloc(n + 1, 1);
    if (buf) memcpy(s, buf, n);
    xfree(buf);
    printf("  $ %s\n    -> exit %d\n%s", cmd, WIFEXITED(st) ? WEXITSTATUS(st) : -1, s);
    if (out) *out = s;
    else free(s);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(g_dir, sizeof g_dir, "sources") != 0) return -1;
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache", g_dir);
    return setenv("XDG_CACHE_HOME", cache, 1);
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

/* The geometry in a weights file's metadata. */
static void checkpoint_geom(ImageGeom *g, const char *path) {
    StFile f;
    assert_int_equal(safetensors_open(path, &f), 0);
    const char *gs = safetensors_meta(&f, "ddpm.geometry");
    assert_non_null(gs);
    cJSON *j = cJSON_Parse(gs);
    assert_int_equal(geometry_from_json(g, j), 0);
    cJSON_Delete(j);
    safetensors_close(&f);
}

/* A PNG's width, height and colour type from its IHDR. */
static void png_header(const char *path, int *w, int *h, int *color) {
    unsigned char b[26];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, sizeof b, f), sizeof b);
    fclose(f);
    *w = b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    *h = b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    *color = b[25];
}

/* Train a tiny class model on data (extra options opt), check its geometry and sample a
 * grid of one image per class from it. */
static void train_and_sample(const char *data, const char *opt, int side, int classes,
                             const char *first, const char *last) {
    char *out;
    int st = run(&out, "%s train --model class --width 4 --epochs 1 --batch 16 --T 10 "
                 "--threads 1 --no-progress --data %s %s --out %s/run", bin(), data, opt, g_dir);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "ddpm: done"));
    free(out);
    char path[160];
    snprintf(path, sizeof path, "%s/run/model.safetensors", g_dir);
    ImageGeom g;
    checkpoint_geom(&g, path);
    assert_int_equal(g.channels, 3);
    assert_int_equal(g.height, side);
    assert_int_equal(g.width, side);
    assert_int_equal(g.classes, classes);
    assert_string_equal(g.class_names[0], first);
    assert_string_equal(g.class_names[classes - 1], last);
    snprintf(path, sizeof path, "%s/run/samples_epoch1.png", g_dir);
    int w, h, color;
    png_header(path, &w, &h, &color);
    assert_int_equal(color, 2); /* RGB */
    st = run(NULL, "%s sample --ckpt %s/run/model.safetensors --per-digit 1 --sampler ddim "
             "--steps 3 --threads 1 --out %s/s.png", bin(), g_dir, g_dir);
    assert_int_equal(st, 0);
    snprintf(path, sizeof path, "%s/s.png", g_dir);
    png_header(path, &w, &h, &color);
    assert_int_equal(color, 2);
    /* one column, a row per class, each image scaled by round(84 / side); the title may be
     * wider than the column */
    int scale = (int)(84.0 / side + 0.5);
    assert_true(w >= side * scale && w < 800); /* at least the title's width */
    assert_true(h >= classes * side * scale && h < classes * (side * scale + 4) + 200);
    /* a resume reloads the same data (here: the run is complete, after loading it all) */
    st = run(&out, "%s train --resume %s/run --no-progress", bin(), g_dir);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "already complete"));
    free(out);
}

static void test_cifar(void **state) {
    (void)state;
    char dir[128], path[200];
    snprintf(dir, sizeof dir, "%s/cifar", g_dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int k = 1; k <= CIFAR_TRAIN_FILES; k++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, k);
        assert_int_equal(cifar_fixture_write(path, &g_mnist, (k - 1) * 8, 8), 0);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    assert_int_equal(cifar_fixture_write(path, &g_mnist, 40, 10), 0);
    train_and_sample(dir, "--figure-epochs 1", 32, 10, "airplane", "truck");
    /* a class by name, with --digit as well as --class; an unknown name is one line */
    const char *opts[] = {"--digit cat", "--class cat", "--class 3"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(NULL, "%s sample --ckpt %s/run/model.safetensors %s --n 2 "
                             "--sampler ddim --steps 2 --threads 1 --out %s/c%d.png", bin(),
                             g_dir, opts[i], g_dir, i), 0);
        int w, h, color;
        snprintf(path, sizeof path, "%s/c%d.png", g_dir, i);
        png_header(path, &w, &h, &color);
        assert_int_equal(color, 2);
    }
    char *out;
    assert_int_not_equal(run(&out, "%s sample --ckpt %s/run/model.safetensors --class unicorn",
                             bin(), g_dir), 0);
    assert_non_null(strstr(out, "no class unicorn"));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
}

/* The class folder's run at 16 x 16 in colour; a resume on data of other classes fails. */
static void test_folder_run(void **state) {
    (void)state;
    assert_int_equal(run(NULL, "%s data export --format png --data %s --limit 48 %s/png", bin(),
                         test_data_dir(), g_dir), 0);
    char data[128];
    snprintf(data, sizeof data, "%s/png", g_dir);
    train_and_sample(data, "--image-size 16 --channels 3", 16, 10, "0", "9");
    /* the same run on a folder of nine classes: one line, non-zero */
    assert_int_equal(run(NULL, "cp -r %s/png %s/png9 && rm -r %s/png9/train/9 %s/png9/test/9",
                         g_dir, g_dir, g_dir, g_dir), 0);
    char *out;
    int st = run(&out, "%s train --resume %s/run --data %s/png9 --no-progress", bin(), g_dir,
                 g_dir);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(out, "resume it on the same data"));
    free(out);
}

static void test_errors(void **state) {
    (void)state;
    char *out;
    int st = run(&out, "%s train --model class --data %s --image-size 30 --out %s/r1", bin(),
                 g_dir, g_dir);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(out, "multiple of 4"));
    assert_non_null(strchr(out, '\n'));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
    char empty[128];
    snprintf(empty, sizeof empty, "%s/empty", g_dir);
    assert_int_equal(mkdir(empty, 0755), 0);
    st = run(&out, "%s train --model time --data %s --out %s/r2", bin(), empty, g_dir);
    assert_int_not_equal(st, 0);
    assert_non_null(strstr(out, empty));
    assert_non_null(strchr(out, '\n'));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cifar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, fixture_mnist_setup, fixture_mnist_teardown);
}
