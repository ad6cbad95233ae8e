/* Reliability of ddpm train ($DDPM_BIN), end to end: an interrupted and resumed run ends bit
 * for bit where an uninterrupted one does; SIGKILL at random moments, many of them during a
 * checkpoint write, always leaves a loadable checkpoint; SIGINT/SIGTERM save and say how to
 * resume, a second signal stops at once; an injected NaN stops the run and keeps the last good
 * checkpoint; a full disk, a file size limit, a read-only or vanished run directory give one
 * clear error and leave the good files as they were; malformed arguments, checkpoints and IDX
 * files each give one clear error line. Plus two library-level checks: the digest catches
 * every single-byte change, and a saved and reloaded training state steps identically.
 *
 * The full-disk and read-only cases need mounts: the program moves itself into a private
 * mount namespace (unshare(CLONE_NEWNS), as root) and mounts small tmpfs there, which vanish
 * with it. Where that is not allowed they fall back to chmod (not as root, where chmod does
 * not stop writes) or are skipped, and say so. */
#define _GNU_SOURCE
#include "testutil.h"
#include "st_edit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "data/idx.h"
#include "data/mnist.h"
#include "io/fileio.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "train/state.h"
#include "train/train.h"

static char tmpdir[256];
static int have_mounts; /* a private mount namespace: tmpfs mounts are allowed */
static char small_data[300]; /* the first 64 training and 64 test images of MNIST, plain IDX */

/* Every run here reads this small copy: loading all of MNIST would dominate tiny runs. */
static const char *data64(void) { return small_data; }

static const char *bin(void) {
    const char *b = getenv("DDPM_BIN");
    return b && *b ? b : "./ddpm";
}

/* The tiny runs: 64 images in batches of 16, 4 steps per epoch; one thread so that the
 * processes stay light on a shared machine. */
#define TINY_N 64
#define TINY "--model denoiser --width 4 --subset 64 --batch 16 --eval-n 32 --threads 1 --no-progress --seed 3"
/* The class model with two threads and a short last batch (60 = 3 x 16 + 12): the most
 * random draws per step and OpenMP reductions, and a moving average of the weights (EMA):
 * for the bit-exact resume. */
#define CLASS3 "--model class --width 4 --subset 60 --batch 16 --T 10 --threads 2 --no-progress --seed 5 --epochs 3 --ema 0.9"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
}

/* ---- processes -------------------------------------------------------------------------- */

/* Start `ddpm ARGS` (ARGS split at spaces) with stdout and stderr into log; fsize > 0 sets a
 * file size limit (bytes) on the child, as `ulimit -f` would. */
static pid_t spawn(const char *log, long fsize, const char *fmt, ...) {
    static char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *argv[128];
    int argc = 0;
    argv[argc++] = (char *)bin();
    for (char *tok = strtok(cmd, " "); tok && argc < 127; tok = strtok(NULL, " ")) argv[argc++] = tok;
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0) _exit(126);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Exit status (128 + signal for a signal), or -1 after killing it at the timeout. */
static int wait_exit(pid_t pid, double timeout) {
    double t0 = now();
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st)) return WEXITSTATUS(st);
            if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
        }
        if (now() - t0 > timeout) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            printf("  !! process %d still running after %.0f s: killed\n", (int)pid, timeout);
            return -1;
        }
        sleep_ms(2);
    }
}

/* Wait until the process stopped itself (--fault-stop-at). 0, or -1 if it exited. */
static int wait_stopped(pid_t pid, double timeout) {
    double t0 = now();
    int st;
    while (now() - t0 < timeout) {
        pid_t r = waitpid(pid, &st, WNOHANG | WUNTRACED);
        if (r == pid && WIFSTOPPED(st)) return 0;
        if (r == pid) return -1;
        sleep_ms(2);
    }
    return -1;
}

static int run_sync(const char *log, double timeout, const char *fmt, const char *a, const char *b) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return wait_exit(spawn(log, 0, "%s", cmd), timeout);
}

/* ---- files -------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n) {
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    size_t got = fread(b, 1, (size_t)len, f);
    fclose(f);
    b[got] = '\0';
    if (n) *n = got;
    return b;
}

static void show_log(const char *log) {
    char *s = slurp(log, NULL);
    printf("%s", s ? s : "(no log)\n");
    free(s);
}

static int log_has(const char *log, const char *needle) {
    char *s = slurp(log, NULL);
    int r = s && strstr(s, needle) != NULL;
    free(s);
    return r;
}

/* The last line of a log (static buffer). */
static const char *last_line(const char *log) {
    static char line[2048];
    char *s = slurp(log, NULL);
    line[0] = 0;
    if (s) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '\n') s[--n] = 0;
        char *nl = strrchr(s, '\n');
        snprintf(line, sizeof line, "%s", nl ? nl + 1 : s);
        free(s);
    }
    return line;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    if (!same) printf("  %s and %s differ\n", a, b);
    free(x);
    free(y);
    return same;
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    char *b = slurp(src, &n);
    assert_non_null(b);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(b);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Temporary files (NAME.tmp.PID) in dir: what an interrupted write leaves. */
static int count_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) {
            printf("  temporary left: %s/%s\n", dir, e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* Load RUN/checkpoint.safetensors the way --resume does, with every check. Returns 0 and its
 * step, or -1 (message printed). */
static int load_state(const char *dir, int n_train, long *step) {
    char path[600], data[4096];
    snprintf(path, sizeof path, "%s/%s", dir, TRAIN_STATE_FILE);
    TrainConfig c;
    if (train_state_read_config(path, &c, data, sizeof data) != 0) {
        printf("  load failed: %s\n", err_msg());
        return -1;
    }
    c.threads = 1;
    Trainer tr;
    if (trainer_init(&tr, &c) != 0) return -1;
    TrainProgress p;
    train_progress_init(&p, &c, n_train);
    int rc = train_state_load(path, trainer_state_refs(&tr), &p);
    if (rc) printf("  load failed: %s\n", err_msg());
    if (step) *step = p.step;
    train_progress_free(&p);
    trainer_free(&tr);
    return rc;
}

/* Every safetensors file in dir opens and passes its digest: nothing half-written. */
static void all_weights_load(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 12 || strcmp(e->d_name + n - 12, ".safetensors") != 0) continue;
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        StFile f;
        if (checkpoint_open(p, &f, 1) != 0) fail_msg("%s", err_msg());
        safetensors_close(&f);
    }
    closedir(d);
}

/* A path under the test directory; the strings live until the end of the program. */
static char *paths[8192];
static int n_paths;

static const char *tp(const char *fmt, ...) {
    char *b = malloc(600);
    assert_true(n_paths < 8192);
    paths[n_paths++] = b;
    int n = snprintf(b, 600, "%s/", tmpdir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, (size_t)(600 - n), fmt, ap);
    va_end(ap);
    return b;
}

/* Start a run that stops itself after step `stop`, send it sig, and expect the interrupted
 * exit with a checkpoint at that step. */
static void interrupt_at(const char *args, const char *dir, int n_train, long stop, int sig) {
    const char *log = tp("interrupt.log");
    pid_t pid = spawn(log, 0, "train %s --data %s --out %s --fault-stop-at %ld", args,
                      data64(), dir, stop);
    if (wait_stopped(pid, 120) != 0) {
        show_log(log);
        fail_msg("the run did not reach step %ld", stop);
    }
    kill(pid, sig);
    kill(pid, SIGCONT);
    int rc = wait_exit(pid, 120);
    show_log(log);
    assert_int_equal(rc, 128 + sig);
    char want[200];
    snprintf(want, sizeof want, "after step %ld ", stop);
    assert_true(log_has(log, want));
    snprintf(want, sizeof want, "continue with: ddpm train --resume %s", dir);
    assert_true(log_has(log, want));
    long step = -1;
    assert_int_equal(load_state(dir, n_train, &step), 0);
    assert_int_equal(step, stop);
    assert_int_equal(count_temporaries(dir), 0);
}

/* An uninterrupted run made once and shared by the tests that compare with it. */
static const char *reference(const char *name, const char *args) {
    const char *dir = tp("%s", name);
    if (!exists(dir)) {
        const char *log = tp("%s.log", name);
        int rc = run_sync(log, 300, "train %s --data %s", args, data64());
        if (rc != 0) show_log(log);
        assert_int_equal(rc, 0);
    }
    return dir;
}

#define TINY3_ARGS TINY " --epochs 3"

static const char *ref_tiny3(void) {
    static char args[1200];
    snprintf(args, sizeof args, "%s --out %s", TINY3_ARGS, tp("ref_tiny3"));
    return reference("ref_tiny3", args);
}

static void same_results(const char *dir, const char *ref, int epochs) {
    char a[700], b[700];
    const char *names[] = {"model.safetensors", "loss.csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", dir, names[i]);
        snprintf(b, sizeof b, "%s/%s", ref, names[i]);
        printf("  compare %s\n", a);
        assert_true(same_file(a, b));
    }
    for (int e = 1; e <= epochs; e++) {
        snprintf(a, sizeof a, "%s/epoch_%03d.safetensors", dir, e);
        snprintf(b, sizeof b, "%s/epoch_%03d.safetensors", ref, e);
        assert_true(same_file(a, b));
    }
}

static int resume_sync(const char *dir, const char *log) {
    int rc = wait_exit(spawn(log, 0, "train --resume %s", dir), 300);
    if (rc != 0) show_log(log);
    return rc;
}

/* ---- resume is bit-exact ---------------------------------------------------------------- */

/* Interrupted mid-epoch (SIGINT after step 6 of 12) and at an epoch's last step (SIGTERM after
 * step 4, before the epoch's evaluation), then resumed: weights of every epoch and the loss
 * history equal those of an uninterrupted run byte for byte. */
static void test_resume_bit_identical(void **state) {
    (void)state;
    static char args[1200];
    snprintf(args, sizeof args, "%s --out %s", CLASS3, tp("ref_class3"));
    const char *ref = reference("ref_class3", args);
    const char *dirs[2] = {tp("resume_mid"), tp("resume_edge")};
    const long stops[2] = {6, 4};
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        printf("-- interrupt after step %ld with signal %d, then resume\n", stops[i], sigs[i]);
        interrupt_at(CLASS3, dirs[i], 60, stops[i], sigs[i]);
        assert_int_equal(resume_sync(dirs[i], tp("resume.log")), 0);
        assert_true(log_has(tp("resume.log"), "resuming class model"));
        same_results(dirs[i], ref, 3);
    }
    /* a complete run has nothing left to do */
    assert_int_equal(resume_sync(dirs[0], tp("resume.log")), 0);
    assert_true(log_has(tp("resume.log"), "already complete"));
}

/* ---- ddpm reproduce continues where it stopped -------------------------------------------- */

#define REPRO "reproduce --profile tiny --threads 1 --no-progress"

/* The three models, a loss log and the sample files of two reproductions are byte-identical. */
static void same_models_and_samples(const char *dir, const char *ref) {
    const char *files[] = {"part1/model.safetensors", "part2/model.safetensors",
                           "part3/model.safetensors", "part1/loss.csv",
                           "samples/part2-samples.idx", "samples/part3-digits.idx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", ref, files[i]);
        printf("  compare %s\n", a);
        assert_true(same_file(a, b));
    }
}

/* A tiny reproduction interrupted in its first training stage (SIGINT after step 3) and run
 * again: the stopped stage resumes from its checkpoint, and the three models and the samples
 * equal those of an uninterrupted reproduction byte for byte. A finished reproduction run
 * once more skips every stage. */
static void test_reproduce_resume(void **state) {
    (void)state;
    const char *ref = tp("repro_ref"), *dir = tp("repro_stop"), *log = tp("repro.log");
    const char *data = test_data_dir();
    int rc = run_sync(log, 600, REPRO " --out %s --data %s", ref, data);
    if (rc != 0) show_log(log);
    assert_int_equal(rc, 0);
    assert_true(log_has(log, "open "));

    pid_t pid = spawn(log, 0, REPRO " --out %s --data %s --fault-stop-at 3", dir, data);
    assert_int_equal(wait_stopped(pid, 120), 0);
    kill(pid, SIGINT);
    kill(pid, SIGCONT);
    rc = wait_exit(pid, 120);
    show_log(log);
    assert_int_equal(rc, 130);
    char want[700];
    snprintf(want, sizeof want, "ddpm reproduce --profile tiny --out %s` continues", dir);
    assert_true(log_has(log, want));
    assert_false(exists(tp("repro_stop/part2")));

    rc = run_sync(log, 600, REPRO " --out %s --data %s", dir, data);
    show_log(log);
    assert_int_equal(rc, 0);
    assert_true(log_has(log, "continuing the tiny reproduction"));
    assert_true(log_has(log, "resuming denoiser model"));
    same_models_and_samples(dir, ref);
    assert_true(exists(tp("repro_stop/index.html")));

    rc = run_sync(log, 600, REPRO " --out %s --data %s", dir, data);
    assert_int_equal(rc, 0);
    assert_true(log_has(log, "[6/9] Part 3: train the digit-conditioned DDPM (D 4, 1 epoch): done earlier, skipped"));
    assert_true(log_has(log, "[8/9] Part 3: evaluate 20 samples per guidance scale (0,5) with ddpm eval: done earlier, skipped"));
    assert_false(log_has(log, "resuming"));

    /* the same reproduction one part per call (part 1, then 3 and 2): the page lists what is
     * missing until the last call, and every model and sample file equals the one-call run's */
    const char *pdir = tp("repro_parts");
    rc = run_sync(log, 600, REPRO " --out %s --data %s --parts 1", pdir, data);
    show_log(log);
    assert_int_equal(rc, 0);
    assert_true(log_has(log, "parts 1 finished"));
    assert_true(log_has(log, "(6 stages of other parts still to run)"));
    assert_true(exists(tp("repro_parts/eval/part1.json")));
    assert_false(exists(tp("repro_parts/part2")));
    assert_false(exists(tp("repro_parts/part3")));
    char page[700];
    snprintf(page, sizeof page, "%s/index.html", pdir);
    assert_true(log_has(page, "Not run yet."));
    rc = run_sync(log, 600, REPRO " --out %s --data %s --parts 3,2", pdir, data);
    show_log(log);
    assert_int_equal(rc, 0);
    assert_false(log_has(log, "Part 1")); /* not even as skipped: not asked for */
    assert_true(log_has(log, "reproduction finished"));
    assert_false(log_has(page, "Not run yet."));
    same_models_and_samples(pdir, ref);
    char stages[700];
    snprintf(stages, sizeof stages, "%s/stages.json", pdir);
    for (int k = 0; k < 9; k++) {
        const char *names[] = {"part1", "eval1", "part2", "samples2", "eval2", "part3", "samples3", "eval3", "report"};
        char want_name[64];
        snprintf(want_name, sizeof want_name, "\"name\":\t\"%s\"", names[k]);
        assert_true(log_has(stages, want_name));
    }
    assert_true(log_has(stages, "\"finished\":\t\"20")); /* when each stage ended, and the BLAS kernel */
    assert_true(log_has(stages, "\"blas_kernel\":"));
}

/* ---- signals ------------------------------------------------------------------------------ */

/* A real Ctrl-C at an unplanned moment of a long run: exit 130, the resume hint, and a
 * checkpoint at the step the message names. */
static void test_sigint(void **state) {
    (void)state;
    const char *dir = tp("sigint"), *log = tp("sigint.log");
    char ck[700];
    snprintf(ck, sizeof ck, "%s/%s", dir, TRAIN_STATE_FILE);
    pid_t pid = spawn(log, 0, "train %s --epochs 1000 --checkpoint-every 3 --data %s --out %s",
                      TINY, data64(), dir);
    double t0 = now();
    while (!exists(ck) && now() - t0 < 120) sleep_ms(5);
    assert_true(exists(ck));
    sleep_ms(rand() % 100);
    kill(pid, SIGINT);
    int rc = wait_exit(pid, 120);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 130);
    const char *hint = strstr(last_line(log), "interrupted by SIGINT after step ");
    assert_non_null(hint);
    long named = atol(hint + strlen("interrupted by SIGINT after step "));
    char want[700];
    snprintf(want, sizeof want, "continue with: ddpm train --resume %s", dir);
    assert_non_null(strstr(last_line(log), want));
    long step = -1;
    assert_int_equal(load_state(dir, TINY_N, &step), 0);
    assert_int_equal(step, named);
    assert_int_equal(count_temporaries(dir), 0);
}

/* Two signals: the second ends the process at once, without a checkpoint. */
static void test_second_signal(void **state) {
    (void)state;
    const char *dir = tp("second"), *log = tp("second.log");
    pid_t pid = spawn(log, 0, "train %s --epochs 3 --data %s --out %s --fault-stop-at 2", TINY,
                      data64(), dir);
    assert_int_equal(wait_stopped(pid, 120), 0);
    /* both wait while it is stopped and arrive together when it continues */
    kill(pid, SIGINT);
    kill(pid, SIGTERM);
    kill(pid, SIGCONT);
    int rc = wait_exit(pid, 60);
    show_log(log);
    assert_true(rc == 128 + SIGTERM || rc == 128 + SIGINT);
    assert_true(log_has(log, "second interrupt: stopping now"));
    assert_false(log_has(log, "the training state is saved"));
}

/* ---- SIGKILL during checkpoint writes ---------------------------------------------------- */

#define KILLS 50

/* Identity of a file's current version: inode and modification time (0 when absent). */
static uint64_t version_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    return (uint64_t)st.st_ino * 1000003u ^ (uint64_t)st.st_mtim.tv_sec * 1000000000u ^
           (uint64_t)st.st_mtim.tv_nsec ^ 1;
}

/* A run saving its state after every step is killed KILLS times, half at a random moment
 * after a checkpoint and half while its temporary checkpoint file exists (mid-write); each
 * time it is resumed. After every kill the checkpoint loads with all checks, its step never
 * goes back, and the run finally ends with the weights of an uninterrupted run. */
static void test_sigkill_during_checkpoint(void **state) {
    (void)state;
    static char args[1200];
    snprintf(args, sizeof args, "%s --epochs 30 --checkpoint-every 1 --out %s", TINY, tp("ref_tiny30"));
    const char *ref = reference("ref_tiny30", args);
    const char *dir = tp("sigkill"), *log = tp("sigkill.log");
    char ck[700], tmp[760];
    snprintf(ck, sizeof ck, "%s/%s", dir, TRAIN_STATE_FILE);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    printf("  random seed %u\n", seed);
    int kills = 0, mid_write = 0, finished = 0;
    long last_step = 0;
    for (int k = 0; k < KILLS && !finished; k++) {
        uint64_t before = version_of(ck);
        pid_t pid = k == 0 ? spawn(log, 0, "train %s --epochs 30 --checkpoint-every 1 --data %s --out %s",
                                   TINY, data64(), dir)
                           : spawn(log, 0, "train --resume %s", dir);
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", ck, (int)pid);
        /* wait for this process's first new checkpoint (a new inode, or a new mtime) */
        double t0 = now();
        int st, exited = 0;
        while (version_of(ck) == before || version_of(ck) == 0) {
            if (waitpid(pid, &st, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            assert_true(now() - t0 < 120);
            sleep_ms(1);
        }
        if (exited) {
            show_log(log);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            finished = 1;
            break;
        }
        if (k % 2 == 0) {
            sleep_ms((double)(rand() % 20000) / 1000.0); /* 0 to 20 ms */
        } else {
            /* until the temporary of its next checkpoint appears, then a moment into it */
            double t1 = now();
            while (!exists(tmp) && now() - t1 < 2.0) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
            }
            struct timespec ts = {0, (long)(rand() % 500) * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        if (WIFEXITED(st)) {
            finished = WEXITSTATUS(st) == 0;
            assert_true(finished);
            break;
        }
        kills++;
        int in_write = exists(tmp);
        mid_write += in_write;
        long step = -1;
        if (load_state(dir, TINY_N, &step) != 0) {
            show_log(log);
            fail_msg("after kill %d the checkpoint does not load", kills);
        }
        printf("  kill %2d: checkpoint at step %3ld loads%s\n", kills, step,
               in_write ? " (killed mid-write: its temporary file was left)" : "");
        assert_true(step >= last_step);
        last_step = step;
    }
    printf("  %d kills, %d of them during a checkpoint write\n", kills, mid_write);
    assert_true(kills >= KILLS / 2);
    assert_true(mid_write >= 1);
    if (!finished) assert_int_equal(resume_sync(dir, log), 0);
    same_results(dir, ref, 30);
    assert_int_equal(count_temporaries(dir), 0);
}

/* ---- numerical faults ---------------------------------------------------------------------- */

/* A NaN injected into step 6's input stops the run there with a message naming the step;
 * the checkpoint of step 4 (end of epoch 1) and model.safetensors of epoch 1 stay as they
 * were, and resuming from them (without the fault) reproduces the clean run. A fault before
 * any checkpoint says so and leaves none. */
static void test_nan_injection(void **state) {
    (void)state;
    const char *ref = ref_tiny3();
    const char *dir = tp("nan"), *log = tp("nan.log");
    int rc = run_sync(log, 300, "train " TINY3_ARGS " --data %s --out %s --fault-nan-at 6",
                      data64(), dir);
    show_log(log);
    assert_int_equal(rc, 1);
    const char *last = last_line(log);
    assert_non_null(strstr(last, "ddpm train: training stopped at step 6 (epoch 2, step 2 of 4): the loss is "));
    assert_non_null(strstr(last, "nan"));
    assert_non_null(strstr(last, "holds step 4"));
    long step = -1;
    assert_int_equal(load_state(dir, TINY_N, &step), 0);
    assert_int_equal(step, 4);
    assert_true(same_file(tp("nan/model.safetensors"), tp("nan/epoch_001.safetensors")));
    assert_false(exists(tp("nan/epoch_002.safetensors")));
    assert_int_equal(count_temporaries(dir), 0);
    assert_int_equal(resume_sync(dir, log), 0);
    same_results(dir, ref, 3);

    const char *dir2 = tp("nan_early");
    rc = run_sync(log, 300, "train " TINY3_ARGS " --data %s --out %s --fault-nan-at 2",
                  data64(), dir2);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(last_line(log), "training stopped at step 2 (epoch 1, step 2 of 4)"));
    assert_non_null(strstr(last_line(log), "no checkpoint had been written yet"));
    assert_false(exists(tp("nan_early/%s", TRAIN_STATE_FILE)));
    assert_false(exists(tp("nan_early/model.safetensors")));
}

/* ---- I/O faults ------------------------------------------------------------------------------ */

static int mount_tmpfs(const char *dir, const char *opts) {
    mkdir(dir, 0755);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        printf("  cannot mount a tmpfs on %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int remount(const char *dir, int readonly) {
    if (mount("tmpfs", dir, "tmpfs", MS_REMOUNT | (readonly ? MS_RDONLY : 0), NULL) != 0) {
        printf("  cannot remount %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Fill the filesystem holding dir until it refuses another byte. */
static void fill_disk(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    char block[4096];
    memset(block, 0, sizeof block);
    while (write(fd, block, sizeof block) > 0) {
    }
    while (write(fd, block, 1) > 0) {
    }
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

/* A resumed run on a full disk fails at its first write of the epoch's end with a clear
 * error and leaves the checkpoint exactly as it was and no temporary; with space again the
 * run resumes and ends as an uninterrupted run does. (A 2 MB tmpfs, filled up.) */
static void test_disk_full(void **state) {
    (void)state;
    if (!have_mounts) skip();
    const char *ref = ref_tiny3();
    const char *mnt = tp("full"), *dir = tp("full/run"), *log = tp("full.log");
    assert_int_equal(mount_tmpfs(mnt, "size=2m"), 0);
    interrupt_at(TINY3_ARGS, dir, TINY_N, 2, SIGINT);
    copy_file(tp("full/run/%s", TRAIN_STATE_FILE), tp("full_backup.safetensors"));
    fill_disk(tp("full/fill"));
    int rc = resume_sync(dir, log);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(last_line(log), "No space left on device"));
    assert_true(same_file(tp("full/run/%s", TRAIN_STATE_FILE), tp("full_backup.safetensors")));
    assert_int_equal(load_state(dir, TINY_N, NULL), 0);
    all_weights_load(dir);
    assert_int_equal(count_temporaries(dir), 0);
    unlink(tp("full/fill"));
    assert_int_equal(resume_sync(dir, log), 0);
    same_results(dir, ref, 3);
    umount(mnt);
}

/* A file size limit (setrlimit, as `ulimit -f`) below the checkpoint's size: the run reports
 * "File too large" instead of dying of SIGXFSZ, the old checkpoint stays, and every weights
 * file present is whole. */
static void test_file_size_limit(void **state) {
    (void)state;
    const char *dir = tp("fsize"), *log = tp("fsize.log");
    interrupt_at(TINY3_ARGS, dir, TINY_N, 2, SIGINT);
    char ck[700];
    snprintf(ck, sizeof ck, "%s/%s", dir, TRAIN_STATE_FILE);
    copy_file(ck, tp("fsize_backup.safetensors"));
    struct stat st;
    assert_int_equal(stat(ck, &st), 0);
    long limit = (long)st.st_size / 2; /* the weights files fit, the training state does not */
    printf("  checkpoint %lld bytes, limit %ld bytes\n", (long long)st.st_size, limit);
    int rc = wait_exit(spawn(log, limit, "train --resume %s", dir), 300);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(last_line(log), "File too large"));
    assert_non_null(strstr(last_line(log), TRAIN_STATE_FILE));
    assert_true(same_file(ck, tp("fsize_backup.safetensors")));
    assert_int_equal(load_state(dir, TINY_N, NULL), 0);
    all_weights_load(dir);
    assert_int_equal(count_temporaries(dir), 0);
}

/* A read-only run directory: refused at once, in one line, for a new run and for a resume;
 * made read-only in the middle of a run, the epoch's end fails clearly and the checkpoint
 * stays. Needs a read-only mount (as root chmod does not stop writes). */
static void test_readonly_dir(void **state) {
    (void)state;
    const char *mnt = tp("ro"), *dir = tp("ro/run"), *log = tp("ro.log");
    int use_mount = have_mounts;
    if (!use_mount && geteuid() == 0) {
        printf("  no mount namespace and running as root (chmod would not stop writes): skipped\n");
        skip();
    }
    if (use_mount) assert_int_equal(mount_tmpfs(mnt, "size=4m"), 0);
    else mkdir(mnt, 0755);
    interrupt_at(TINY3_ARGS, dir, TINY_N, 2, SIGINT);
    char ck[700];
    snprintf(ck, sizeof ck, "%s/%s", dir, TRAIN_STATE_FILE);
    copy_file(ck, tp("ro_backup.safetensors"));
    if (use_mount) assert_int_equal(remount(mnt, 1), 0);
    else assert_int_equal(chmod(dir, 0555) | chmod(mnt, 0555), 0);

    const char *why = use_mount ? "Read-only file system" : "Permission denied";
    int rc = resume_sync(dir, log);
    char *out = slurp(log, NULL);
    printf("  -> %s", out ? out : "(nothing)\n");
    assert_int_equal(rc, 1);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "cannot write in this directory"));
    assert_non_null(strstr(out, why));
    free(out);
    rc = run_sync(log, 60, "train " TINY3_ARGS " --data %s --out %s/new", data64(), mnt);
    out = slurp(log, NULL);
    printf("  -> %s", out ? out : "(nothing)\n");
    assert_int_equal(rc, 1);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, why));
    free(out);

    /* read-only from the middle of epoch 2 on */
    if (use_mount) assert_int_equal(remount(mnt, 0), 0);
    else assert_int_equal(chmod(dir, 0755) | chmod(mnt, 0755), 0);
    pid_t pid = spawn(log, 0, "train --resume %s --fault-stop-at 5", dir);
    assert_int_equal(wait_stopped(pid, 120), 0);
    copy_file(ck, tp("ro_backup.safetensors"));
    if (use_mount) assert_int_equal(remount(mnt, 1), 0);
    else assert_int_equal(chmod(dir, 0555), 0);
    kill(pid, SIGCONT);
    rc = wait_exit(pid, 120);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(last_line(log), why));
    assert_true(same_file(ck, tp("ro_backup.safetensors")));
    assert_int_equal(load_state(dir, TINY_N, NULL), 0);
    if (use_mount) {
        remount(mnt, 0);
        umount(mnt);
    } else {
        chmod(dir, 0755);
        chmod(mnt, 0755);
    }
}

/* The run directory removed while the run is stopped after step 5: the next write (the end
 * of epoch 2) fails with a clear message; the directory is not silently recreated. */
static void test_vanished_dir(void **state) {
    (void)state;
    const char *dir = tp("vanish"), *log = tp("vanish.log");
    pid_t pid = spawn(log, 0, "train " TINY3_ARGS " --data %s --out %s --fault-stop-at 5",
                      data64(), dir);
    assert_int_equal(wait_stopped(pid, 120), 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    kill(pid, SIGCONT);
    int rc = wait_exit(pid, 120);
    printf("  %s\n", last_line(log));
    assert_int_equal(rc, 1);
    assert_non_null(strstr(last_line(log), "the directory does not exist"));
    assert_false(exists(dir));
}

/* ---- malformed input -------------------------------------------------------------------------- */

/* Run a shell command line, expect a non-zero exit and exactly one line holding needle. */
static void expect_error(const char *needle, const char *fmt, ...) {
    char cmd[8192], line[8400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const char *out = tp("expect.txt");
    snprintf(line, sizeof line, "%s >%s 2>&1 </dev/null", cmd, out);
    int st = system(line);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    char *text = slurp(out, NULL);
    printf("  $ %.200s%s\n    -> exit %d: %s", cmd, strlen(cmd) > 200 ? "..." : "", rc,
           text ? text : "(nothing)\n");
    assert_non_null(text);
    assert_int_not_equal(rc, 0);
    assert_true(rc < 128); /* an error, not a crash */
    assert_int_equal(count_lines(text), 1);
    if (!strstr(text, needle)) fail_msg("expected \"%s\" in the message", needle);
    free(text);
}

static void test_malformed_arguments(void **state) {
    (void)state;
    const char *b = bin();
    char long_out[1200];
    memset(long_out, 'a', sizeof long_out - 1);
    long_out[sizeof long_out - 1] = 0;
    memcpy(long_out, "/tmp/", 5);
    static const struct {
        const char *args, *needle;
    } cases[] = {
        {"--model denoiser --checkpoint-every -1", "--checkpoint-every: -1 is out of range"},
        {"--model denoiser --checkpoint-every x", "--checkpoint-every: 'x' is not an integer"},
        {"--model denoiser --seed -1", "--seed: '-1' is not a non-negative integer"},
        {"--model denoiser --seed ' 7'", "--seed: ' 7' is not a non-negative integer"},
        {"--model denoiser --seed ' -1'", "--seed: ' -1' is not a non-negative integer"},
        {"--model denoiser --seed 18446744073709551616", "--seed: 18446744073709551616 is out of range"},
        {"--model denoiser --batch 99999999999999999999", "--batch: 99999999999999999999 is out of range"},
        {"--model denoiser --width 0x10", "--width: '0x10' is not an integer"},
        {"--model denoiser --width ' 8'", "--width: ' 8' is not an integer"},
        {"--model denoiser --width +8", "--width: '+8' is not an integer"},
        {"--model denoiser --epochs 1.5", "--epochs: '1.5' is not an integer"},
        {"--model denoiser --epochs ''", "--epochs: '' is not an integer"},
        {"--model denoiser --lr nan", "--lr: 'nan' is not a number"},
        {"--model denoiser --lr inf", "--lr: 'inf' is not a number"},
        {"--model denoiser --lr 0x1p-3", "--lr: '0x1p-3' is not a number"},
        {"--model denoiser --lr 1e999", "--lr: 1e999 is out of range"},
        {"--model denoiser --lr 1e-999", "--lr: 1e-999 is out of range"},
        {"--model denoiser --sigma 1e", "--sigma: '1e' is not a number"},
        {"--model denoiser --figure-epochs 1,,2", "--figure-epochs: '1,,2' has an empty item"},
        {"--model denoiser --figure-epochs 1,", "--figure-epochs: '1,' has an empty item"},
        {"--model denoiser --figure-epochs 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "--figure-epochs: more than 16 values"},
        {"--model denoiser --out ''", "--out: empty value"},
        {"--model denoiser --fault-nan-at 0", "--fault-nan-at: 0 is out of range"},
        {"--model denoiser --no-progress=1", "--no-progress takes no value"},
        {"--resume /nonexistent/run", "/nonexistent/run/checkpoint.safetensors: no such file"},
        {"--resume /tmp --width 8", "--width cannot be combined with --resume"},
        {"--resume /tmp --model time", "--model cannot be combined with --resume"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].needle, "%s train %s", b, cases[i].args);
    expect_error("the run directory's name is longer than 900 bytes",
                 "%s train --model denoiser --data %s --out %s", b, data64(), long_out);
}

/* A directory holding only a checkpoint made from the good one by `how`. */
static const char *bad_run(int k) {
    const char *d = tp("badck%02d", k);
    mkdir(d, 0755);
    return tp("badck%02d/%s", k, TRAIN_STATE_FILE);
}

static void test_malformed_checkpoints(void **state) {
    (void)state;
    ref_tiny3();
    const char *good_dir = tp("goodck");
    interrupt_at(TINY3_ARGS, good_dir, TINY_N, 6, SIGINT);
    char good[700];
    snprintf(good, sizeof good, "%s/%s", good_dir, TRAIN_STATE_FILE);
    size_t n;
    unsigned char *g = (unsigned char *)slurp(good, &n);
    assert_non_null(g);
    const char *b = bin();
    int k = 0;
    const char *p;

    p = bad_run(k++);
    write_bytes(p, g, 0);
    expect_error("too short for a safetensors file", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    write_bytes(p, g, 100);
    expect_error("longer than the file", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    write_bytes(p, g, n - 3);
    expect_error("data_offsets", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    g[n - 100] ^= 0x40; /* one weight bit */
    write_bytes(p, g, n);
    g[n - 100] ^= 0x40;
    expect_error("integrity check failed", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_bytes(p, huge, 10);
    expect_error("larger than the limit", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    unsigned char notjson[24] = {16, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"', ':', '[', '1', ',', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    write_bytes(p, notjson, 24);
    expect_error("not valid JSON", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    const char *oob = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999]}}";
    unsigned char buf[256] = {0};
    size_t jl = strlen(oob);
    buf[0] = (unsigned char)jl;
    memcpy(buf + 8, oob, jl);
    write_bytes(p, buf, 8 + jl + 8);
    expect_error("data_offsets", "%s train --resume %s", b, tp("badck%02d", k - 1));
    p = bad_run(k++);
    copy_file(tp("goodck/../ref_tiny3/model.safetensors"), p);
    expect_error("not a ddpm training-state checkpoint", "%s train --resume %s", b, tp("badck%02d", k - 1));

    /* Rewritten with a valid digest: the content checks stand on their own. */
    StEdit e;
    static const struct {
        const char *meta_key, *meta_value, *needle;
    } metas[] = {
        {"ddpm.config", "{\"model\": \"denoiser\", \"width\": 99999}", "\"width\" must be an integer from 1 to 1024"},
        {"ddpm.config", "not json at all", "the configuration is not a JSON object"},
        {"ddpm.config", "{\"model\": \"giant\"}", "\"model\" must be"},
        {"ddpm.format", "ddpm-train-state/999", "not a ddpm training-state checkpoint"},
        {"ddpm.metrics", "[1,2", "ddpm.metrics is missing or not a JSON object"},
        {"ddpm.seconds", "{\"train\": -1}", "ddpm.seconds is missing or malformed"},
    };
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        st_edit_open(&e, good);
        st_edit_meta(&e, metas[i].meta_key, metas[i].meta_value);
        st_edit_save(&e, bad_run(k++), 1);
        st_edit_close(&e);
        expect_error(metas[i].needle, "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    }
    /* counters: epoch, epoch step, step, Adam step, images, steps per epoch, seed */
    static const struct {
        int index;
        int64_t value;
        const char *needle;
    } counters[] = {
        {2, 7, "the step counters disagree"},
        {3, 5, "the step counters disagree"},
        {0, 9, "outside a 3-epoch run"},
        {0, -1, "outside a 3-epoch run"},
        {1, 5, "outside a 3-epoch run"},
        {4, 63, "was saved for 63 training images"},
        {6, 4, "seed"},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        st_edit_open(&e, good);
        int64_t *c = st_edit_data(&e, "train.counters");
        c[counters[i].index] = counters[i].value;
        st_edit_save(&e, bad_run(k++), 1);
        st_edit_close(&e);
        expect_error(counters[i].needle, "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    }
    st_edit_open(&e, good);
    memset(st_edit_data(&e, "train.rng.noise"), 0, 4 * sizeof(int64_t));
    st_edit_save(&e, bad_run(k++), 1);
    st_edit_close(&e);
    expect_error("all-zero state", "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    st_edit_open(&e, good);
    ((int64_t *)st_edit_data(&e, "train.rng.data"))[4] = 7;
    st_edit_save(&e, bad_run(k++), 1);
    st_edit_close(&e);
    expect_error("has_spare must be 0 or 1", "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    st_edit_open(&e, good);
    ((float *)st_edit_data(&e, "adam.v.enc0.0.conv.weight"))[3] = -1.0f;
    st_edit_save(&e, bad_run(k++), 1);
    st_edit_close(&e);
    expect_error("adam.v.enc0.0.conv.weight\" holds an invalid value", "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    st_edit_open(&e, good);
    ((float *)st_edit_data(&e, "out.bias"))[0] = NAN;
    st_edit_save(&e, bad_run(k++), 1);
    st_edit_close(&e);
    expect_error("\"out.bias\" holds a non-finite value", "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    st_edit_open(&e, good);
    for (int i = 0; i < e.f.n; i++)
        if (strcmp(e.t[i].name, "train.loss") == 0) e.t[i].shape[0] = 5;
    st_edit_save(&e, bad_run(k++), 1);
    st_edit_close(&e);
    expect_error("\"train.loss\" has shape (5), expected (6)", "%s train --resume %s --data %s", b, tp("badck%02d", k - 1), data64());
    st_edit_open(&e, good);
    st_edit_save(&e, bad_run(k++), 0);
    st_edit_close(&e);
    expect_error("has no integrity digest", "%s train --resume %s", b, tp("badck%02d", k - 1));

    /* weights files: a flipped bit is refused by sample and denoise */
    const char *model = tp("goodck/../ref_tiny3/model.safetensors");
    unsigned char *m = (unsigned char *)slurp(model, &n);
    m[n - 8] ^= 1;
    write_bytes(tp("tampered.safetensors"), m, n);
    free(m);
    expect_error("integrity check failed", "%s denoise --ckpt %s --data %s", b, tp("tampered.safetensors"), data64());
    expect_error("integrity check failed", "%s sample --ckpt %s", b, tp("tampered.safetensors"));
    free(g);
}

/* gzip of a buffer through the gzip tool. */
static void write_gz(const char *path, const void *data, size_t n) {
    char raw[700], cmd[1500];
    snprintf(raw, sizeof raw, "%s.raw", path);
    write_bytes(raw, data, n);
    snprintf(cmd, sizeof cmd, "gzip -c -n %s > %s && rm %s", raw, path, raw);
    assert_int_equal(system(cmd), 0);
}

/* A data directory with the small MNIST copy's files linked in and one file replaced. */
static const char *data_with(int k, const char *name) {
    const char *d = tp("baddata%02d", k);
    mkdir(d, 0755);
    const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        if (strncmp(name, files[i], strlen(files[i])) == 0) continue;
        char src[700], dst[700];
        snprintf(src, sizeof src, "%s/%s", data64(), files[i]);
        snprintf(dst, sizeof dst, "%s/%s", d, files[i]);
        unlink(dst);
        assert_int_equal(symlink(src, dst), 0);
    }
    return tp("baddata%02d/%s", k, name);
}

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void test_malformed_idx(void **state) {
    (void)state;
    const char *b = bin();
    /* one small valid label file: 64 labels */
    unsigned char lab[8 + 64];
    be32(lab, 0x801);
    be32(lab + 4, 64);
    for (int i = 0; i < 64; i++) lab[8 + i] = (unsigned char)(i % 10);
    unsigned char hdr[16];
    int k = 0;
    const char *p;
#define TRAIN_WITH(needle) \
    expect_error(needle, "%s train --model denoiser --subset 8 --epochs 1 --data %s --out %s", b, tp("baddata%02d", k - 1), tp("baddata%02d/run", k - 1))

    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr, 0x0703);
    write_bytes(p, hdr, 4);
    TRAIN_WITH("bad magic number 0x00000703");
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr, 0x0d03);
    write_bytes(p, hdr, 4);
    TRAIN_WITH("IDX element type 0x0d is not supported");
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr, 0x0805);
    write_bytes(p, hdr, 4);
    TRAIN_WITH("bad magic number 0x00000805");
    p = data_with(k++, "train-images-idx3-ubyte");
    write_bytes(p, "\0\0\x08", 3);
    TRAIN_WITH("truncated: 3 bytes, too short for an IDX header");
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr, 0x0803);
    be32(hdr + 4, 4000000);
    be32(hdr + 8, 28);
    be32(hdr + 12, 28);
    write_bytes(p, hdr, 16);
    TRAIN_WITH("is larger than the limit of 1073741824 bytes");
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr + 4, 0xffffffffu);
    be32(hdr + 8, 0xffffffffu);
    be32(hdr + 12, 0xffffffffu);
    write_bytes(p, hdr, 16);
    TRAIN_WITH("is larger than the limit");
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(hdr + 4, 64);
    be32(hdr + 8, 27);
    be32(hdr + 12, 28);
    write_bytes(p, hdr, 16);
    TRAIN_WITH("has shape (64, 27, 28), expected (N, 28, 28)");
    /* the payload: 64 images of 784 bytes */
    size_t img_n = 16 + 64 * 784;
    unsigned char *img = calloc(img_n + 16, 1);
    be32(img, 0x803);
    be32(img + 4, 64);
    be32(img + 8, 28);
    be32(img + 12, 28);
    p = data_with(k++, "train-images-idx3-ubyte");
    write_bytes(p, img, img_n - 1);
    TRAIN_WITH("truncated: expected 50176 bytes of data after the header, got 50175");
    p = data_with(k++, "train-images-idx3-ubyte");
    write_bytes(p, img, img_n + 5);
    TRAIN_WITH("unexpected data after the 50176 bytes the header describes");
    p = data_with(k++, "train-images-idx3-ubyte.gz");
    write_gz(p, img, img_n);
    {
        size_t gn;
        char *gz = slurp(p, &gn);
        write_bytes(p, gz, gn - 20); /* cut short */
        TRAIN_WITH("cut short");
        p = data_with(k++, "train-images-idx3-ubyte.gz");
        gz[gn / 2] ^= 0xff;
        write_bytes(p, gz, gn);
        TRAIN_WITH("corrupt gzip");
        gz[gn / 2] ^= 0xff;
        p = data_with(k++, "train-images-idx3-ubyte.gz");
        gz = realloc(gz, gn + 4);
        memcpy(gz + gn, "junk", 4);
        write_bytes(p, gz, gn + 4);
        TRAIN_WITH("unexpected data after the end of the gzip stream");
        p = data_with(k++, "train-images-idx3-ubyte.gz");
        write_bytes(p, gz, 10); /* a gzip header and nothing else */
        TRAIN_WITH("train-images-idx3-ubyte.gz");
        free(gz);
    }
    p = data_with(k++, "train-images-idx3-ubyte");
    be32(img + 4, 0);
    write_bytes(p, img, 16);
    TRAIN_WITH("contains no images");
    be32(img + 4, 64);
    /* labels: a digit out of range, a count that does not match the images */
    p = data_with(k++, "train-labels-idx1-ubyte");
    lab[8 + 5] = 10;
    write_bytes(p, lab, sizeof lab);
    lab[8 + 5] = 5;
    TRAIN_WITH("label 10 at index 5 is not a digit 0-9");
    p = data_with(k++, "train-labels-idx1-ubyte");
    be32(lab + 4, 63);
    write_bytes(p, lab, sizeof lab - 1);
    TRAIN_WITH("has 63 labels but");
    free(img);
#undef TRAIN_WITH
}

/* ---- library-level ----------------------------------------------------------------------------- */

/* Any single-byte change (every position, two bit patterns) and any truncation of a file
 * written as ddpm writes weights is refused: by the parser or by the digest (including a
 * change to the digest's own key, which the format tag makes mandatory). */
static void test_digest_catches_every_byte(void **state) {
    (void)state;
    float w[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    int64_t c[3] = {1, 2, 3};
    StTensor ts[2] = {{.name = "w", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = w},
                      {.name = "train.counters", .dtype = ST_I64, .ndim = 1, .shape = {3}, .data = c}};
    const char *keys[3] = {"ddpm.kind", "ddpm.config", CHECKPOINT_FORMAT_KEY};
    const char *vals[3] = {"time", "{\"width\": 4}", CHECKPOINT_WEIGHTS_FORMAT};
    const char *path = tp("digest.safetensors");
    assert_int_equal(safetensors_write_digest(path, ts, 2, keys, vals, 3, CHECKPOINT_DIGEST_KEY), 0);
    size_t n;
    unsigned char *buf = (unsigned char *)slurp(path, &n);
    StFile f;
    assert_int_equal(safetensors_parse(buf, n, "digest", &f), 0);
    assert_int_equal(safetensors_verify_digest(&f, CHECKPOINT_DIGEST_KEY), 0);
    safetensors_close(&f);
    int accepted = 0, tried = 0;
    const unsigned char flips[2] = {0x01, 0x80};
    for (size_t i = 0; i < n; i++)
        for (int fl = 0; fl < 2; fl++) {
            buf[i] ^= flips[fl];
            tried++;
            if (safetensors_parse(buf, n, "digest", &f) == 0) {
                if (checkpoint_verify(&f, 0) == 0) {
                    printf("  byte %zu ^ 0x%02x accepted\n", i, flips[fl]);
                    accepted++;
                }
                safetensors_close(&f);
            }
            buf[i] ^= flips[fl];
        }
    for (size_t len = 0; len < n; len++) {
        tried++;
        if (safetensors_parse(buf, len, "digest", &f) == 0) {
            accepted += checkpoint_verify(&f, 0) == 0;
            safetensors_close(&f);
        }
    }
    printf("  %d corrupted versions of a %zu-byte file, %d accepted\n", tried, n, accepted);
    assert_int_equal(accepted, 0);
    free(buf);
}

/* Train 3 steps, save, load into a fresh trainer: every parameter, BatchNorm statistic, Adam
 * moment, generator and counter is equal, and the next step is bit-identical on both. */
static void test_state_roundtrip(void **state) {
    (void)state;
    MnistSplit tr_data;
    if (mnist_load(data64(), 1, &tr_data) != 0) fail_msg("%s", err_msg());
    TrainConfig c;
    train_config_defaults(&c, UNET_CLASS);
    c.width = 4;
    c.batch = 8;
    c.epochs = 2;
    c.T = 10;
    c.threads = 1;
    c.subset = 16;
    c.ema = 0.75f;
    c.data_dir = data64();
    float *imgs = malloc(8 * 784 * sizeof(float));
    for (int i = 0; i < 8 * 784; i++) imgs[i] = tr_data.images[i] / 255.0f;
    Trainer a, b;
    assert_int_equal(trainer_init(&a, &c), 0);
    TrainProgress p, q;
    train_progress_init(&p, &c, 16);
    float loss;
    /* the moving average starts at the initial weights and statistics, then follows
     * ema <- 0.75 ema + 0.25 value after every step */
    const size_t np = a.model.n_params, nb = a.model.n_buffers;
    assert_memory_equal(a.ema, a.model.params, np * sizeof(float));
    assert_memory_equal(a.ema + np, a.model.buffers, nb * sizeof(float));
    float *prev = malloc((np + nb) * sizeof(float));
    for (int s = 0; s < 3; s++) {
        memcpy(prev, a.ema, (np + nb) * sizeof(float));
        assert_int_equal(trainer_step_checked(&a, imgs, tr_data.labels, 8, &loss), 0);
        p.loss[s] = loss;
        p.lr[s] = a.lr;
        for (size_t i = 0; i < np + nb; i++) {
            float v = i < np ? a.model.params[i] : a.model.buffers[i - np];
            float want = 0.75f * prev[i] + 0.25f * v;
            if (a.ema[i] != want) fail_msg("ema[%zu] = %g, want %g", i, (double)a.ema[i], (double)want);
        }
    }
    assert_memory_not_equal(a.ema, a.model.params, np * sizeof(float));
    /* swapping twice restores both exactly */
    memcpy(prev, a.model.params, np * sizeof(float));
    trainer_swap_ema(&a);
    assert_memory_not_equal(prev, a.model.params, np * sizeof(float));
    trainer_swap_ema(&a);
    assert_memory_equal(prev, a.model.params, np * sizeof(float));
    free(prev);
    p.epoch = 2;
    p.epoch_step = 1;
    p.step = 3;
    p.metrics = strdup("{\"epochs\": []}");
    rng_normal(&a.noise_rng); /* leave a spare normal cached, to see it restored */
    cJSON *cj = train_config_to_json(&c, &a.model);
    char *cfg = cJSON_PrintUnformatted(cj);
    const char *path = tp("roundtrip.safetensors");
    assert_int_equal(train_state_save(path, trainer_state_refs(&a), &p, cfg), 0);

    TrainConfig c2;
    char data[4096];
    assert_int_equal(train_state_read_config(path, &c2, data, sizeof data), 0);
    assert_int_equal(c2.width, 4);
    assert_int_equal(c2.batch, 8);
    assert_int_equal(c2.kind, UNET_CLASS);
    assert_true(c2.seed == c.seed);
    assert_string_equal(data, c.data_dir);
    assert_int_equal(trainer_init(&b, &c2), 0);
    train_progress_init(&q, &c2, 16);
    if (train_state_load(path, trainer_state_refs(&b), &q) != 0) fail_msg("%s", err_msg());
    assert_memory_equal(a.model.params, b.model.params, a.model.n_params * sizeof(float));
    assert_memory_equal(a.model.buffers, b.model.buffers, a.model.n_buffers * sizeof(float));
    assert_memory_equal(a.m, b.m, a.model.n_params * sizeof(float));
    assert_memory_equal(a.v, b.v, a.model.n_params * sizeof(float));
    assert_true(c2.ema == 0.75f);
    assert_memory_equal(a.ema, b.ema, (np + nb) * sizeof(float));
    assert_memory_equal(&a.noise_rng, &b.noise_rng, sizeof(Rng));
    assert_memory_equal(&p.data_rng, &q.data_rng, sizeof(Rng));
    assert_memory_equal(p.loss, q.loss, 3 * sizeof(float));
    assert_int_equal(b.step, 3);
    assert_int_equal(q.epoch, 2);
    assert_int_equal(q.epoch_step, 1);
    float la, lb;
    a.lr = b.lr = 1e-3f;
    assert_int_equal(trainer_step_checked(&a, imgs, tr_data.labels, 8, &la), 0);
    assert_int_equal(trainer_step_checked(&b, imgs, tr_data.labels, 8, &lb), 0);
    assert_memory_equal(&la, &lb, sizeof la);
    assert_memory_equal(a.model.params, b.model.params, a.model.n_params * sizeof(float));
    /* a non-finite loss (the NaN hook) is caught before the update: the weights stay */
    float *before = malloc(a.model.n_params * sizeof(float));
    memcpy(before, a.model.params, a.model.n_params * sizeof(float));
    a.cfg.fault_nan_at = a.step + 1;
    assert_int_equal(trainer_step_checked(&a, imgs, tr_data.labels, 8, &la), -1);
    printf("  %s\n", err_msg());
    assert_memory_equal(before, a.model.params, a.model.n_params * sizeof(float));
    assert_int_equal(a.step, 4);
    free(before);
    free(cfg);
    cJSON_Delete(cj);
    train_progress_free(&p);
    train_progress_free(&q);
    trainer_free(&a);
    trainer_free(&b);
    free(imgs);
    mnist_free(&tr_data);
}

static int write_split(const char *prefix, const MnistSplit *s, int n) {
    char p[400];
    const uint32_t dims[3] = {(uint32_t)n, 28, 28}, ldims[1] = {(uint32_t)n};
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", small_data, prefix);
    if (idx_write_u8(p, s->images, 3, dims) != 0) return -1;
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", small_data, prefix);
    return idx_write_u8(p, s->labels, 1, ldims);
}

static int make_small_data(void) {
    snprintf(small_data, sizeof small_data, "%s/mnist64", tmpdir);
    mkdir(small_data, 0755);
    MnistSplit tr, te;
    if (mnist_load(test_data_dir(), 1, &tr) != 0 || mnist_load(test_data_dir(), 0, &te) != 0) {
        printf("cannot load MNIST: %s\n", err_msg());
        return -1;
    }
    int rc = write_split("train", &tr, 64) | write_split("t10k", &te, 64);
    mnist_free(&tr);
    mnist_free(&te);
    return rc;
}

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(tmpdir, sizeof tmpdir, "rel") != 0) return -1;
    if (make_small_data() != 0) return -1;
    /* The runs here are tiny: OpenMP threads that sleep instead of spinning keep them fast on
     * a loaded machine (the results do not depend on it). */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    /* A private mount namespace: our tmpfs mounts are seen by this process and its children
     * only, and vanish with them. */
    have_mounts = unshare(CLONE_NEWNS) == 0 && mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    if (!have_mounts)
        printf("note: no private mount namespace (%s): the full-disk test is skipped and the "
               "read-only test uses chmod when not root\n", strerror(errno));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    const char *mnts[] = {"full", "ro"};
    for (int i = 0; i < 2; i++) umount2(tp("%s", mnts[i]), MNT_DETACH);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "chmod -R u+w %s 2>/dev/null; rm -rf %s", tmpdir, tmpdir);
    for (int i = 0; i < n_paths; i++) free(paths[i]);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_catches_every_byte),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_malformed_arguments),
        cmocka_unit_test(test_malformed_idx),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_reproduce_resume),
        cmocka_unit_test(test_nan_injection),
        cmocka_unit_test(test_malformed_checkpoints),
        cmocka_unit_test(test_sigint),
        cmocka_unit_test(test_second_signal),
        cmocka_unit_test(test_sigkill_during_checkpoint),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_readonly_dir),
        cmocka_unit_test(test_vanished_dir),
    };
    if (getenv("TEST_FILTER")) cmocka_set_test_filter(getenv("TEST_FILTER")); /* e.g. test_sig* */
    return cmocka_run_group_tests(tests, setup, teardown);
}
