/* The first training steps of the SPEC's three models (and of one model with every
 * architecture option) give the same loss.csv, byte for byte, as the committed fixtures of
 * tests/data/golden, written by tools/make_golden.sh before the redesign of issue 23: the
 * losses are printed to 8 significant digits, so any change in what a step computes shows.
 * And a training state written before the redesign (attention tensors under their old names,
 * EMA, Adam moments), stopped after step 5, resumes to the loss.csv of the same run made
 * uninterrupted by the old binary. */
#include "testutil.h"

#include <sys/wait.h>

static const char *bin(void) {
    const char *b = getenv("DDPM_BIN");
    return b && *b ? b : "./ddpm";
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1 << 16, 1);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

/* DIR/run/loss.csv is byte for byte the file want_path. */
static void expect_loss_csv(const char *dir, const char *want_path) {
    char got_path[512];
    snprintf(got_path, sizeof got_path, "%s/run/loss.csv", dir);
    char *got = slurp(got_path), *want = slurp(want_path);
    assert_non_null(got);
    assert_non_null(want);
    printf("  got:\n%s  want:\n%s", got, want);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void check_run(const char *name) {
    char runs[4096] = "";
    FILE *f = fopen("tests/data/golden/runs.txt", "r");
    assert_non_null(f);
    char line[1024];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(name);
        if (strncmp(line, name, len) == 0 && line[len] == ' ') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(runs, sizeof runs, "%s", line + len + 1);
            found = 1;
        }
    }
    fclose(f);
    assert_true(found);
    char dir[] = "/tmp/ddpm-golden-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s train %s --epochs 1 --figure-epochs 9 --threads 2 --seed 1 --no-progress "
             "--data %s --out %s/run >/dev/null 2>&1 </dev/null",
             bin(), runs, test_data_dir(), dir);
    printf("  $ %s\n", cmd);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char want_path[512];
    snprintf(want_path, sizeof want_path, "tests/data/golden/%s.csv", name);
    expect_loss_csv(dir, want_path);
    test_rm_rf(dir);
}

static void test_resume_old_state(void **state) {
    (void)state;
    char dir[] = "/tmp/ddpm-golden-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/run && cp tests/data/golden/old-state.safetensors "
             "%s/run/checkpoint.safetensors && %s train --resume %s/run --threads 1 "
             "--no-progress --data %s >%s/log 2>&1 </dev/null",
             dir, dir, bin(), dir, test_data_dir(), dir);
    printf("  $ %s\n", cmd);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "cat %s/log", dir);
    assert_int_equal(system(cmd), 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    expect_loss_csv(dir, "tests/data/golden/old-state-full.csv");
    test_rm_rf(dir);
}

static void test_golden_denoiser(void **state) { (void)state; check_run("denoiser"); }
static void test_golden_time(void **state) { (void)state; check_run("time"); }
static void test_golden_class(void **state) { (void)state; check_run("class"); }
static void test_golden_options(void **state) { (void)state; check_run("options"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_denoiser),
        cmocka_unit_test(test_golden_time),
        cmocka_unit_test(test_golden_class),
        cmocka_unit_test(test_golden_options),
        cmocka_unit_test(test_resume_old_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
