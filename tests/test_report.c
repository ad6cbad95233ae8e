/* The reproduction report page: base64 against RFC 4648's test vectors, and report_write on
 * a hand-made reproduction directory: every image it holds is embedded byte for byte, text
 * from the files is escaped, tables carry the files' numbers, and missing parts say so. */
#define _GNU_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>

#include "core/common.h"
#include "io/fileio.h"
#include "io/report.h"

static char tmpdir[256];

static void test_base64_vectors(void **state) {
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *got = base64_encode((const unsigned char *)in[i], strlen(in[i]));
        assert_string_equal(got, want[i]);
        xfree(got);
    }
    /* every byte value, through the high bits */
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)(255 - i);
    char *got = base64_encode(all, 3);
    assert_string_equal(got, "//79");
    xfree(got);
}

static void put_file(const char *rel, const void *data, size_t n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    char dir[600];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(make_dirs(dir), 0);
    assert_int_equal(write_file_atomic(path, data, n), 0);
}

static void put_text(const char *rel, const char *text) { put_file(rel, text, strlen(text)); }

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

static void test_report_page(void **state) {
    (void)state;
    /* fake images: the page embeds bytes without decoding them */
    unsigned char img1[300], img2[77];
    for (int i = 0; i < 300; i++) img1[i] = (unsigned char)(i * 7);
    for (int i = 0; i < 77; i++) img2[i] = (unsigned char)(200 - i);
    put_text("reproduce.json", "{\"profile\":\"quick\",\"command\":\"ddpm reproduce <x> & y\","
                               "\"machine\":{\"cpu\":\"Test CPU\",\"cores\":2,\"threads\":2,\"blas\":\"B\"},"
                               "\"sweep\":[0,5]}");
    put_text("stages.json", "{\"stages\":[{\"name\":\"part1\",\"what\":\"train\",\"seconds\":30},"
                            "{\"name\":\"part2\",\"what\":\"train\",\"seconds\":150,"
                            "\"finished\":\"2026-11-26 18:00 UTC\"}]}");
    put_text("part1/config.json", "{\"model\":\"denoiser\",\"width\":16,\"batch\":128,\"epochs\":1,"
                                  "\"lr\":1e-4,\"lr_end\":1e-4,\"subset\":20000,\"sigma\":0.5,\"parameters\":12345}");
    put_text("part1/metrics.json", "{\"epochs\":[{\"epoch\":1,\"mean_loss\":0.0321,\"mean_loss_last100\":0.0222,"
                                   "\"test_mse\":0.01876,\"images_per_second\":900.5,\"seconds\":22.2}]}");
    put_file("part1/loss.png", img1, sizeof img1);
    put_file("part1/ood_epoch1.png", img2, sizeof img2);
    put_file("part1/denoise_epoch1.png", img2, sizeof img2);
    put_file("samples/part3-sweep-g5.png", img1, sizeof img1);
    put_text("eval/part2.json", "{\"results\":[{\"n\":200,\"fid\":12.345,\"precision\":0.5,\"recall\":0.25,"
                                "\"accuracy\":null,\"judged_digit_entropy_bits\":3.1}],"
                                "\"real_floor\":{\"n\":200,\"fid\":1.5},\"judge\":{\"test_accuracy\":0.9933}}");
    assert_int_equal(report_write(tmpdir), 0);

    char path[600];
    snprintf(path, sizeof path, "%s/index.html", tmpdir);
    unsigned char *page;
    size_t n;
    assert_int_equal(read_file(path, 1 << 26, &page, &n), 0);
    const char *html = (const char *)page;
    char *b1 = base64_encode(img1, sizeof img1), *b2 = base64_encode(img2, sizeof img2);
    /* loss.png and the sweep image hold img1, the other two img2 */
    assert_int_equal(count(html, b1), 2);
    assert_int_equal(count(html, b2), 2);
    assert_int_equal(count(html, "<img"), 4);
    assert_int_equal(count(html, "src=\"data:image/png;base64,"), 4);
    /* reading order: loss, then the epoch-1 test digits, then the out-of-distribution grid */
    const char *loss = strstr(html, "part1/loss.png"), *den = strstr(html, "part1/denoise_epoch1.png");
    const char *ood = strstr(html, "part1/ood_epoch1.png");
    assert_non_null(loss);
    assert_true(loss < den && den < ood);
    assert_non_null(strstr(html, "ddpm reproduce &lt;x&gt; &amp; y"));
    assert_null(strstr(html, "<x>"));
    assert_non_null(strstr(html, "Test CPU, 2 cores"));
    assert_non_null(strstr(html, "<td>0.0188</td>")); /* test MSE of epoch 1 */
    assert_non_null(strstr(html, "<td>20000</td>"));  /* training subset */
    assert_non_null(strstr(html, "<td>12.35</td>"));  /* FID */
    assert_non_null(strstr(html, "real data (training images): the floor"));
    assert_non_null(strstr(html, "99.33% test accuracy"));
    assert_non_null(strstr(html, "<th>3.0 min</th>")); /* 180 s over the stages */
    assert_non_null(strstr(html, "<td>2.5 min</td><td>2026-11-26 18:00 UTC</td>"));
    assert_non_null(strstr(html, "<td>30 s</td><td></td>")); /* recorded before "finished" */
    assert_non_null(strstr(html, "Guidance 5"));
    assert_int_equal(count(html, "Not run yet."), 2); /* parts 2 and 3 have no config */
    assert_non_null(strstr(html, "name=\"viewport\""));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    xfree(b1);
    xfree(b2);
    xfree(page);
}

/* A directory that cannot be written: one error naming it, nothing left behind. */
static void test_report_unwritable(void **state) {
    (void)state;
    assert_int_equal(report_write("/nonexistent/dir"), -1);
    assert_non_null(strstr(err_msg(), "/nonexistent/dir"));
}

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "report");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_report_page),
        cmocka_unit_test(test_report_unwritable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
