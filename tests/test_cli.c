/* End-to-end tests of the ddpm binary ($DDPM_BIN): every bad input gives one clear error
 * line and a non-zero exit; a tiny training run writes its whole run directory and is
 * reproducible bit for bit; denoise and sample write what they promise. */
#define _GNU_SOURCE
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dist.h"
#include "data/idx.h"

static const char *bin(void) {
    const char *b = getenv("DDPM_BIN");
    return b && *b ? b : "./ddpm";
}

static char tmpdir[256];

/* Run a shell command line (with the binary substituted for %s), capture stdout+stderr into
 * *output (caller frees), return the exit status. */
static int run(char **output, const char *fmt, ...) {
    char cmd[4096], line[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char outpath[300];
    snprintf(outpath, sizeof outpath, "%s/out.txt", tmpdir);
    snprintf(line, sizeof line, "%s >%s 2>&1 </dev/null", cmd, outpath);
    int st = system(line);
    FILE *f = fopen(outpath, "rb");
    size_t cap = 1 << 20, len = 0;
    char *buf = calloc(cap + 1, 1);
    if (f) {
        len = fread(buf, 1, cap, f);
        fclose(f);
    }
    buf[len] = '\0';
    if (output) *output = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Expect a non-zero exit and exactly one line of output containing `needle`. */
static void expect_error(const char *needle, const char *fmt, const char *arg) {
    char *out;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, bin(), arg ? arg : "");
    int st = run(&out, "%s", cmd);
    printf("  $ %s\n    -> exit %d: %s", cmd, st, out);
    assert_int_not_equal(st, 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, needle));
    free(out);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_bad_options(void **state) {
    (void)state;
    expect_error("unknown command", "%s frobnicate", NULL);
    expect_error("--model is required", "%s train", NULL);
    expect_error("unknown model 'giant'", "%s train --model giant", NULL);
    expect_error("--batch: 'abc' is not an integer", "%s train --model denoiser --batch abc", NULL);
    expect_error("--batch: 0 is out of range", "%s train --model denoiser --batch 0", NULL);
    expect_error("--width: -3 is out of range", "%s train --model time --width -3", NULL);
    expect_error("--lr: 'x1' is not a number", "%s train --model time --lr x1", NULL);
    expect_error("--epochs needs a value", "%s train --model time --epochs", NULL);
    expect_error("unknown option '--bogus'", "%s train --model time --bogus 3", NULL);
    expect_error("--beta-start", "%s train --model time --beta-start 0.5 --beta-end 0.1", NULL);
    expect_error("--sigmas: 'a' is not a number", "%s denoise --ckpt x --sigmas 0.1,a", NULL);
    expect_error("--text", "%s sample --ckpt x --text 12a", NULL);
    expect_error("--digit: 12 is out of range", "%s sample --ckpt x --digit 12", NULL);
    expect_error("unknown noise schedule 'quad'", "%s train --model time --schedule quad", NULL);
    expect_error("--clip takes no value", "%s sample --ckpt x --clip=1", NULL);
    expect_error("--clip goes with --ckpt", "%s eval --samples x.idx --clip", NULL);
    expect_error("--sampler goes with --ckpt", "%s eval --judge-only --sampler ddim --steps 20", NULL);
    /* the samplers' words: one line each, naming the valid words */
    expect_error("--sampler: unknown sampler 'euler' (expected ddpm, ddim, dpmpp2m, dpmpp2m-sde or dpmpp3m)",
                 "%s sample --ckpt x --sampler euler", NULL);
    expect_error("--eta is for --sampler ddim; dpmpp2m-sde is the stochastic", "%s sample --ckpt x --sampler dpmpp2m --eta 0.5", NULL);
    expect_error("--spacing: unknown spacing 'cubic' (expected uniform, quadratic, trailing or logsnr)",
                 "%s eval --ckpt x --sampler dpmpp3m --spacing cubic", NULL);
    expect_error("--spacing is for --sampler ddim, dpmpp2m, dpmpp2m-sde and dpmpp3m", "%s sample --ckpt x --spacing logsnr", NULL);
    expect_error("--sampler goes with --sample", "%s bench --sampler dpmpp2m", NULL);
    expect_error("the timed repeats are --repeats", "%s bench --sample --steps 3", NULL);
    expect_error("--steps 301: the number of solver steps must be 1 to T = 300", "%s bench --sample --sampler dpmpp2m --steps 301", NULL);
    expect_error("--eta is for --sampler ddim", "%s reproduce --profile tiny --sampler dpmpp2m-sde --eta 1", NULL);
    expect_error("--steps 21: the number of DDIM steps must be 1 to T = 20", "%s reproduce --profile tiny --sampler ddim --steps 21", NULL);
    expect_error("--time-embedding 7: the number of features must be even", "%s train --model class --time-embedding 7", NULL);
    expect_error("--dataset: unknown dataset 'cifar' (expected mnist, fashion, cifar10 or folder)", "%s train --model class --dataset cifar", NULL);
    expect_error("--time-embedding 8: the denoiser has no time input", "%s train --model denoiser --time-embedding 8", NULL);
    expect_error("--attention 5: the attention layers' places are down2, up1 or down2,up1", "%s train --model time --attention 5", NULL);
    expect_error("--attention 7,28: the attention layers' places are down2, up1 or down2,up1", "%s bench --attention 7,28", NULL);
    expect_error("--residual takes no value", "%s train --model time --residual=1", NULL);
    expect_error("unknown profile 'huge'", "%s reproduce --profile huge", NULL);
    expect_error("only the CPU backend", "%s reproduce --device cuda", NULL);
    expect_error("contradict", "%s reproduce --quick --profile tiny", NULL);
    expect_error("--parts: 4 is out of range (1..3)", "%s reproduce --parts 2,4", NULL);
    expect_error("--parts: part 2 is listed twice", "%s reproduce --parts 2,2", NULL);
    /* a directory that holds another profile's reproduction is not mixed with this one */
    char dir[400], file[500], cmd[700];
    snprintf(dir, sizeof dir, "%s/repro", tmpdir);
    mkdir(dir, 0755);
    snprintf(file, sizeof file, "%s/reproduce.json", dir);
    write_bytes(file, "{\"profile\": \"tiny\"}", 19);
    snprintf(cmd, sizeof cmd, "%%s reproduce --quick --out %s", dir);
    expect_error("holds a 'tiny' reproduction, not 'quick'", cmd, NULL);
    write_bytes(file, "[1, 2]", 6);
    expect_error("not a reproduction record", cmd, NULL);
}

/* bench --sample times the chosen sampler's chain: the passes it times and the NFE it scales
 * them to (the SPEC's DDPM by default: T = 300), the throughput the last line. */
static void test_bench_sampler(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"", "DDPM, 300 steps (300 NFE); 3 of the 300 network passes per image timed per repeat"},
        {" --sampler dpmpp2m --steps 10",
         "DPM-Solver++(2M), 10 steps (10 NFE), log-SNR spacing; 3 of the 10 network passes"},
        {" --sampler dpmpp2m-sde --steps 2 --spacing uniform",
         "DPM-Solver++(2M) SDE, 2 steps (2 NFE); 2 of the 2 network passes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        int st = run(&out, "%s bench --model class --width 4 --batch 4 --sample --sample-steps 3 "
                     "--repeats 2 --warmup 0 --threads 2%s", bin(), cases[i][0]);
        printf("%s", out);
        assert_int_equal(st, 0);
        assert_non_null(strstr(out, cases[i][1]));
        assert_non_null(strstr(out, "repeat 2: "));
        const char *nfe = strstr(cases[i][1], "steps (") + 7;
        char want[32];
        snprintf(want, sizeof want, "img/s for %d NFE", atoi(nfe));
        assert_non_null(strstr(out, want));
        const char *last = out + strlen(out) - 1;
        while (last > out && last[-1] != '\n') last--;
        assert_non_null(strstr(last, " img/s"));
        free(out);
    }
}

/* bench --profile: a row for every layer of the model and the totals, then the throughput;
 * for training steps and, with --sample, for the sampler's reverse steps (forward only). */
static void test_bench_profile(void **state) {
    (void)state;
    for (int sampling = 0; sampling <= 1; sampling++) {
        char *out;
        int st = run(&out, "%s bench --model class --width 4 --batch 4 --%s 2 --warmup 0 --threads 2 --profile%s",
                     bin(), sampling ? "repeats" : "steps", sampling ? " --sample --sample-steps 2" : "");
        printf("%s", out);
        assert_int_equal(st, 0);
        const char *layers[] = {"enc0.0", "enc0.1", "down1.0", "down1.1", "down1.2", "down2.0",
                                "down2.1", "down2.2", "unflat", "up1.0", "up1.1", "up1.2",
                                "up2.0", "up2.1", "up2.2", "dec.0", "dec.1", "\nout "};
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
            char want[32];
            snprintf(want, sizeof want, "%s ", layers[i]);
            assert_non_null(strstr(out, want));
        }
        assert_non_null(strstr(out, "convT 8>8 7x7")); /* unflat at D 4: 2D -> 2D, 1x1 -> 7x7 */
        assert_non_null(strstr(out, "totals per step: conv"));
        assert_non_null(strstr(out, sampling ? "ms per reverse step" : "ms per training step"));
        assert_non_null(strstr(out, sampling ? "guidance, noise and update" : "noise, loss and Adam"));
        if (sampling) { /* no backward pass: the dec.1 row's backward column is zero */
            const char *row = strstr(out, "\ndec.1 ");
            assert_non_null(row);
            char name[16], kind[16], shape[16], size[16];
            double fw, gf, pk, bw;
            assert_int_equal(sscanf(row + 1, "%15s %15s %15s %15s %lf %lf %lf%% %lf", name, kind,
                                    shape, size, &fw, &gf, &pk, &bw), 8);
            assert_true(fw > 0 && bw == 0);
        }
        const char *last = out + strlen(out) - 1;
        while (last > out && last[-1] != '\n') last--;
        assert_non_null(strstr(last, " img/s"));
        free(out);
    }
}

static void test_bad_data(void **state) {
    (void)state;
    char dir[400], cmd_tail[600];
    /* missing directory */
    expect_error("no such file", "%s train --model denoiser --data /nonexistent/mnist --epochs 1%s", NULL);
    /* a data directory whose training images are truncated */
    snprintf(dir, sizeof dir, "%s/trunc", tmpdir);
    mkdir(dir, 0755);
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/train-images-idx3-ubyte.gz", test_data_dir());
    snprintf(dst, sizeof dst, "%s/train-images-idx3-ubyte.gz", dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "head -c 100000 %s > %s && cp %s/train-labels-idx1-ubyte.gz %s/t10k-* %s/", src, dst,
             test_data_dir(), test_data_dir(), dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd_tail, sizeof cmd_tail, " --data %s --epochs 1", dir);
    expect_error("train-images-idx3-ubyte.gz", "%s train --model denoiser%s", cmd_tail);
    /* corrupt: a bad magic number in a plain file that shadows nothing (gz is tried first) */
    snprintf(dir, sizeof dir, "%s/badmagic", tmpdir);
    mkdir(dir, 0755);
    snprintf(cmd, sizeof cmd, "cp %s/* %s/ && rm %s/train-labels-idx1-ubyte.gz", test_data_dir(), dir, dir);
    assert_int_equal(system(cmd), 0);
    unsigned char bad[16] = {0, 0, 9, 1, 0, 0, 0, 4, 1, 2, 3, 4};
    snprintf(dst, sizeof dst, "%s/train-labels-idx1-ubyte", dir);
    write_bytes(dst, bad, 12);
    snprintf(cmd_tail, sizeof cmd_tail, " --data %s --epochs 1", dir);
    expect_error("train-labels-idx1-ubyte", "%s train --model denoiser%s", cmd_tail);
    /* a checkpoint that is not a safetensors file */
    snprintf(dst, sizeof dst, "%s/junk.safetensors", tmpdir);
    write_bytes(dst, "hello world, not weights", 24);
    expect_error("junk.safetensors", "%s sample --ckpt %s", dst);
    expect_error("missing.safetensors", "%s denoise --ckpt %s", "/nonexistent/missing.safetensors");
}

static char *slurp(const char *path, size_t *n) {
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

static int file_nonempty(const char *dir, const char *name) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

/* A tiny denoiser run writes every artefact of the run directory, and the same seed and
 * thread count reproduce the same losses bit for bit (a different seed does not). */
static void test_train_denoiser_tiny(void **state) {
    (void)state;
    char *out;
    const char *args = "--width 4 --batch 32 --subset 96 --epochs 2 --eval-n 64 --threads 2 --no-progress";
    int st = run(&out, "%s train --model denoiser %s --data %s --out %s/run1 --seed 7", bin(), args, test_data_dir(), tmpdir);
    printf("%s", out);
    assert_int_equal(st, 0);
    free(out);
    char d1[300], d2[400], d3[400];
    snprintf(d1, sizeof d1, "%s/run1", tmpdir);
    const char *files[] = {"config.json", "loss.csv", "loss.png", "metrics.json", "epoch_001.safetensors",
                           "epoch_002.safetensors", "model.safetensors", "noising.png", "denoise_epoch1.png",
                           "denoise_epoch2.png", "ood_epoch2.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        printf("  %s/%s\n", d1, files[i]);
        assert_true(file_nonempty(d1, files[i]));
    }
    assert_int_equal(run(NULL, "%s train --model denoiser %s --data %s --out %s/run2 --seed 7", bin(), args, test_data_dir(), tmpdir), 0);
    assert_int_equal(run(NULL, "%s train --model denoiser %s --data %s --out %s/run3 --seed 8", bin(), args, test_data_dir(), tmpdir), 0);
    snprintf(d2, sizeof d2, "%s/run2/loss.csv", tmpdir);
    snprintf(d3, sizeof d3, "%s/run3/loss.csv", tmpdir);
    char p1[500];
    snprintf(p1, sizeof p1, "%s/loss.csv", d1);
    size_t n1 = 0, n2 = 0, n3 = 0;
    char *a = slurp(p1, &n1), *b = slurp(d2, &n2), *c = slurp(d3, &n3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(count_lines(a), 1 + 2 * 3); /* header + 2 epochs x 3 steps */
    assert_true(n1 == n2 && memcmp(a, b, n1) == 0);
    assert_false(n1 == n3 && memcmp(a, c, n1) == 0);
    free(a);
    free(b);
    free(c);
    /* denoise with the saved weights */
    st = run(&out, "%s denoise --ckpt %s/model.safetensors --data %s --n 32 --sigmas 0.2,0.5 --out %s/den.png --json %s/den.json",
             bin(), d1, test_data_dir(), tmpdir, tmpdir);
    printf("%s", out);
    assert_int_equal(st, 0);
    free(out);
    assert_true(file_nonempty(tmpdir, "den.png"));
    char jp[400];
    snprintf(jp, sizeof jp, "%s/den.json", tmpdir);
    char *j = slurp(jp, NULL);
    assert_non_null(strstr(j, "\"mse\""));
    free(j);
    /* a denoiser cannot be sampled from */
    snprintf(jp, sizeof jp, "%s/model.safetensors", d1);
    expect_error("denoiser", "%s sample --ckpt %s", jp);
}

/* Python's standard library reads an IDX file we wrote: magic, count, shape. */
static void check_idx_with_python(const char *path, int magic, const char *shape) {
    char *out;
    int st = run(&out,
                 "python3 -c \"import struct,sys; d=open(sys.argv[1],'rb').read(); "
                 "m=struct.unpack('>I',d[:4])[0]; nd=m&255; "
                 "dims=struct.unpack('>'+'I'*nd,d[4:4+4*nd]); n=1\n"
                 "for x in dims: n*=x\n"
                 "assert len(d)==4+4*nd+n, 'size'; print(hex(m), 'x'.join(map(str,dims)))\" %s",
                 path);
    printf("  python reads %s: %s", path, out);
    assert_int_equal(st, 0);
    char want[64];
    snprintf(want, sizeof want, "%#x %s", magic, shape);
    assert_non_null(strstr(out, want));
    free(out);
}

/* Tiny time and class models: training writes sample grids, sampling writes PNG, IDX
 * (and labels for the class model) and GIF; the IDX files load in a third-party reader. */
static void test_sample_outputs(void **state) {
    (void)state;
    char *out;
    const char *args = "--width 4 --batch 16 --subset 32 --epochs 1 --T 10 --threads 2 --no-progress";
    int st = run(&out, "%s train --model time %s --ema 0.9 --data %s --out %s/time --figure-epochs 1", bin(), args, test_data_dir(), tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    char d[400];
    snprintf(d, sizeof d, "%s/time", tmpdir);
    assert_true(file_nonempty(d, "samples_epoch1.png"));
    assert_true(file_nonempty(d, "loss.png"));
    st = run(&out, "%s sample --ckpt %s/model.safetensors --n 6 --out %s/s.png --idx %s/s.idx --gif %s/s.gif --gif-every 3",
             bin(), d, tmpdir, tmpdir, tmpdir);
    printf("%s", out);
    assert_int_equal(st, 0);
    /* trained with --ema: sampling takes the moving average, unless told otherwise */
    assert_non_null(strstr(out, "sampling with the moving average of the weights"));
    free(out);
    st = run(&out, "%s sample --ckpt %s/model.safetensors --n 6 --no-ema --out %s/raw.png --idx %s/raw.idx",
             bin(), d, tmpdir, tmpdir);
    printf("%s", out);
    assert_int_equal(st, 0);
    assert_null(strstr(out, "moving average"));
    free(out);
    st = run(&out, "cmp -s %s/s.idx %s/raw.idx", tmpdir, tmpdir);
    free(out);
    assert_int_not_equal(st, 0); /* other weights, other samples from the same seed */
    assert_true(file_nonempty(tmpdir, "s.png"));
    assert_true(file_nonempty(tmpdir, "s.gif"));
    char p[400];
    snprintf(p, sizeof p, "%s/s.idx", tmpdir);
    check_idx_with_python(p, 0x803, "6x28x28");
    IdxArray a;
    assert_int_equal(idx_read(p, &a), 0);
    assert_int_equal(a.dims[0], 6);
    idx_free(&a);

    /* the class model with the cosine schedule and a sinusoidal time embedding, which its
     * weights file carries to sample */
    st = run(&out, "%s train --model class %s --schedule cosine --time-embedding 8 --data %s --out %s/class --figure-epochs 1", bin(), args, test_data_dir(), tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    snprintf(d, sizeof d, "%s/class", tmpdir);
    assert_true(file_nonempty(d, "samples_epoch1.png"));
    st = run(&out, "grep -c '\"schedule\":[[:space:]]*\"cosine\"' %s/config.json", d);
    free(out);
    assert_int_equal(st, 0);
    st = run(&out, "%s sample --ckpt %s/model.safetensors --sampler ddim --steps 4 --n 3 --out %s/ddim.png --gif %s/ddim.gif --gif-every 1", bin(), d, tmpdir, tmpdir);
    printf("%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "4 DDIM steps"));
    assert_non_null(strstr(out, "(5 frames)")); /* the start and after each of 4 steps */
    free(out);
    /* every sampler word end to end: the solvers (4 steps, or min(20, T) = 10 by default) and
     * DDIM with log-SNR spacing; the log says the network passes */
    const char *words[][3] = {{"dpmpp2m --steps 4", "DPM-Solver++(2M), 4 steps (4 NFE), log-SNR spacing", "(5 frames)"},
                              {"dpmpp2m-sde --steps 4 --clip", "DPM-Solver++(2M) SDE, 4 steps (4 NFE), x0 clipped, log-SNR spacing", "(5 frames)"},
                              {"dpmpp3m", "DPM-Solver++(3M), 10 steps (10 NFE), log-SNR spacing", "(11 frames)"},
                              {"ddim --steps 4 --spacing logsnr", "DDIM, 4 steps (4 NFE), eta 0, log-SNR spacing", "(5 frames)"}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        st = run(&out, "%s sample --ckpt %s/model.safetensors --sampler %s --n 3 --out %s/w.png --idx %s/w.idx --gif %s/w.gif --gif-every 1",
                 bin(), d, words[i][0], tmpdir, tmpdir, tmpdir);
        printf("%s", out);
        assert_int_equal(st, 0);
        assert_non_null(strstr(out, words[i][1]));
        assert_non_null(strstr(out, words[i][2]));
        free(out);
        assert_true(file_nonempty(tmpdir, "w.png"));
    }
    st = run(&out, "%s sample --ckpt %s/model.safetensors --digit 7 --n 3 --out %s/c.png --idx %s/c.idx", bin(), d, tmpdir, tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    snprintf(p, sizeof p, "%s/c.idx", tmpdir);
    check_idx_with_python(p, 0x803, "3x28x28");
    snprintf(p, sizeof p, "%s/c-labels.idx", tmpdir);
    check_idx_with_python(p, 0x801, "3");
    assert_int_equal(idx_read(p, &a), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(a.data[i], 7);
    idx_free(&a);
    st = run(&out, "%s sample --ckpt %s/model.safetensors --text 2026 --out %s/text.png", bin(), d, tmpdir);
    free(out);
    assert_int_equal(st, 0);
    assert_true(file_nonempty(tmpdir, "text.png"));
    st = run(&out, "%s sample --ckpt %s/model.safetensors --sweep 0,2 --per-digit 1 --out %s/sw.png", bin(), d, tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    assert_true(file_nonempty(tmpdir, "sw-g0.png"));
    assert_true(file_nonempty(tmpdir, "sw-g2.png"));
    /* class-only options on a time model are refused */
    snprintf(p, sizeof p, "%s/time/model.safetensors", tmpdir);
    expect_error("need a class model", "%s sample --ckpt %s --digit 3", p);
}

/* --dataset fashion: Fashion-MNIST from Debian's dataset-fashion-mnist (or
 * $DDPM_FASHION_DATA); the run records it, grids are labelled with class names, and the
 * digit-only tools (--text, the MNIST judge of eval) refuse its weights. */
static void test_fashion(void **state) {
    (void)state;
    const char *env = getenv("DDPM_FASHION_DATA");
    const char *dir = env && *env ? env : "/usr/share/datasets/fashion-mnist";
    char *out;
    int st = run(&out, "%s train --model class --dataset fashion --width 4 --batch 16 --subset 32 --epochs 1 --T 10 "
                 "--threads 2 --no-progress --out %s/fashion --figure-epochs 1", bin(), tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    char d[400];
    snprintf(d, sizeof d, "%s/fashion", tmpdir);
    assert_true(file_nonempty(d, "samples_epoch1.png"));
    st = run(&out, "grep -c '\"dataset\":[[:space:]]*\"fashion\"' %s/config.json && grep -c '\"data\":[[:space:]]*\"%s\"' %s/config.json", d, dir, d);
    free(out);
    assert_int_equal(st, 0);
    st = run(&out, "%s sample --ckpt %s/model.safetensors --per-digit 1 --out %s/f.png", bin(), d, tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    assert_true(file_nonempty(tmpdir, "f.png"));
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    expect_error("--text writes digits", "%s sample --ckpt %s --text 12", p);
    expect_error("was trained on fashion; the judge and the reference sets are MNIST's", "%s eval --ckpt %s --n 10", p);
    /* a run of MNIST records that too */
    st = run(&out, "grep -c '\"dataset\":[[:space:]]*\"mnist\"' %s/class/config.json", tmpdir);
    free(out);
    assert_int_equal(st, 0);
}

/* The architecture options beyond the SPEC: a tiny class model with residual ConvBlocks and
 * attention after down2 and up1 (asked for by their old names 7,14) trains, records the
 * options in config.json (by their places' names) and its weights, and
 * `ddpm sample` rebuilds that architecture from the weights alone. */
static void test_architecture_options(void **state) {
    (void)state;
    char *out;
    const char *args = "--width 4 --batch 16 --subset 32 --epochs 1 --T 10 --threads 2 --no-progress";
    int st = run(&out, "%s train --model class %s --residual --attention 7,14 --data %s --out %s/arch --figure-epochs 1",
                 bin(), args, test_data_dir(), tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    char d[400];
    snprintf(d, sizeof d, "%s/arch", tmpdir);
    assert_true(file_nonempty(d, "samples_epoch1.png"));
    st = run(&out, "grep -c '\"residual\":[[:space:]]*true' %s/config.json && grep -c '\"attention\":[[:space:]]*\"down2,up1\"' %s/config.json", d, d);
    free(out);
    assert_int_equal(st, 0);
    st = run(&out, "%s sample --ckpt %s/model.safetensors --digit 3 --n 4 --out %s/arch.png --idx %s/arch.idx", bin(), d, tmpdir, tmpdir);
    printf("%s", out);
    free(out);
    assert_int_equal(st, 0);
    assert_true(file_nonempty(tmpdir, "arch.png"));
    char p[400];
    snprintf(p, sizeof p, "%s/arch.idx", tmpdir);
    IdxArray a;
    assert_int_equal(idx_read(p, &a), 0);
    assert_int_equal(a.dims[0], 4);
    idx_free(&a);
    /* options of the architecture cannot change on --resume */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%%s train --resume %s --residual", d);
    expect_error("cannot be combined with --resume", cmd, NULL);
}

/* Started by an MPI launcher as one of several processes (the environment mpirun gives
 * them), a build without MPI refuses in one line rather than train alone twice. In an MPI
 * build the launcher is real; tests/mpi.sh runs the distributed cases. Both tell of it. */
static void test_launcher_without_mpi(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run(&out, "%s train --help", bin()), 0);
    assert_non_null(strstr(out, "mpirun -np 2 ddpm train"));
    free(out);
    if (!dist_built())
        expect_error("built without MPI", "OMPI_COMM_WORLD_SIZE=2 %s train --model time%s", NULL);
}

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "cli");
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_bench_profile),
        cmocka_unit_test(test_bench_sampler),
        cmocka_unit_test(test_train_denoiser_tiny),
        cmocka_unit_test(test_sample_outputs),
        cmocka_unit_test(test_architecture_options),
        cmocka_unit_test(test_fashion),
        cmocka_unit_test(test_launcher_without_mpi),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
