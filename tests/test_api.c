/* The public C API (include/ddpm.h) as a program that embeds it sees it: opening weights
 * from a file and from a buffer and what a handle says; the same bytes as the internal
 * sampler; two handles in two threads at once giving the bytes of one after the other; a
 * progress callback that cancels; every damaged file of the bad-checkpoint table
 * (tests/test_reliability.c) refused with a status and a message, from a buffer and from a
 * file; wrong arguments; denoising; the PNG grid read back pixel by pixel. The models are
 * built here (width 4, random weights, saved as ddpm train saves them): what is tested is the
 * plumbing, not the pictures. */
#include "testutil.h"
#include "st_edit.h"

#include <pthread.h>

#include <png.h>

#include "ddpm.h"
#include "core/common.h"
#include "core/pixel.h"
#include "diffusion/sampler.h"
#include "io/fileio.h"
#include "model/checkpoint.h"

static char tmpdir[256];
static char class_path[300], time_path[300], den_path[300], ema_path[300];

static const char *tp(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *n) {
    unsigned char *buf;
    if (read_file(path, (size_t)1 << 30, &buf, n) != 0) fail_msg("%s", err_msg());
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A width-4 model of a kind with random weights, saved with a training configuration (and
 * moving averages of half its weights when ema). */
static void make_model(const char *path, UnetKind kind, const char *config, int ema,
                       const char *dtype) {
    Unet m;
    UnetConfig c = unet_config_spec(kind, 4);
    Rng rng;
    rng_seed(&rng, 11 + (uint64_t)kind);
    if (unet_init(&m, &c, 4, 1, &rng) != 0) fail_msg("%s", err_msg());
    const char *keys[2] = {"ddpm.config", "ddpm.dtype"}, *vals[2] = {config, dtype};
    int nk = dtype ? 2 : 1;
    int rc;
    if (ema) {
        float *state = unet_state_download(&m);
        for (size_t i = 0; i < m.n_params; i++) state[i] *= 0.5f;
        StTensor *t = calloc((size_t)m.n_tensors, sizeof(StTensor));
        char(*names)[64] = calloc((size_t)m.n_tensors, 64);
        int n = checkpoint_ema_tensors(&m, state, t, names);
        rc = checkpoint_save_with(&m, path, t, n, keys, vals, nk);
        free(t);
        free(names);
        xfree(state);
    } else {
        rc = checkpoint_save(&m, path, keys, vals, nk);
    }
    if (rc != 0) fail_msg("%s", err_msg());
    unet_free(&m);
}

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(tmpdir, sizeof tmpdir, "api") != 0) return -1;
    tp(class_path, sizeof class_path, "class.safetensors");
    tp(time_path, sizeof time_path, "time.safetensors");
    tp(den_path, sizeof den_path, "den.safetensors");
    tp(ema_path, sizeof ema_path, "ema.safetensors");
    make_model(class_path, UNET_CLASS, "{\"T\": 20, \"schedule\": \"cosine\", \"dataset\": \"mnist\"}", 0, NULL);
    make_model(time_path, UNET_TIME, "{\"T\": 12}", 0, NULL);
    make_model(den_path, UNET_DENOISER, "{\"model\": \"denoiser\"}", 0, NULL);
    make_model(ema_path, UNET_CLASS, "{\"T\": 15}", 1, "f16");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static ddpm_model *open_ok(const char *path, int threads, int max_batch) {
    ddpm_open_options o = {.threads = threads, .max_batch = max_batch};
    ddpm_model *m = NULL;
    ddpm_status st = ddpm_open(path, &o, &m);
    if (st != DDPM_OK) fail_msg("%s: %s", ddpm_status_name(st), ddpm_last_error());
    assert_non_null(m);
    return m;
}

static void *fresh_error(void *arg) {
    (void)arg;
    return (void *)(intptr_t)(strcmp(ddpm_last_error(), "") == 0);
}

static void test_open_describe(void **state) {
    (void)state;
    /* the message is per thread: a new thread has none, whatever failed in this one */
    err_set("a failure of the main thread");
    pthread_t th;
    void *empty;
    assert_int_equal(pthread_create(&th, NULL, fresh_error, NULL), 0);
    assert_int_equal(pthread_join(th, &empty), 0);
    assert_true((intptr_t)empty);
    assert_string_equal(ddpm_last_error(), "a failure of the main thread");
    assert_string_equal(ddpm_version(), DDPM_VERSION_STRING);
    assert_string_equal(ddpm_status_name(DDPM_ERR_CANCELLED), "cancelled");
    ddpm_model *m = open_ok(class_path, 0, 0);
    ddpm_info info;
    ddpm_describe(m, &info);
    assert_int_equal(info.kind, DDPM_CLASS);
    assert_int_equal(info.model_width, 4);
    assert_int_equal(info.channels, 1);
    assert_int_equal(info.height, 28);
    assert_int_equal(info.width, 28);
    assert_int_equal(info.classes, 10);
    assert_string_equal(info.class_names[7], "7");
    assert_int_equal(info.T, 20);
    assert_string_equal(info.schedule, "cosine");
    assert_int_equal(info.ema, 0);
    assert_int_equal(info.half, 0);
    assert_true(info.parameters > 1000);
    assert_int_equal(ddpm_class_index(m, "7"), 7);
    assert_int_equal(ddpm_class_index(m, "0"), 0);
    assert_int_equal(ddpm_class_index(m, "cat"), -1);
    assert_int_equal(ddpm_class_index(m, NULL), -1);

    /* the same bytes from a buffer describe the same model */
    size_t n;
    unsigned char *buf = slurp(class_path, &n);
    ddpm_model *b = NULL;
    assert_int_equal(ddpm_open_memory(buf, n, "class in memory", NULL, &b), DDPM_OK);
    free(buf);
    ddpm_info binfo;
    ddpm_describe(b, &binfo);
    assert_memory_equal(&info, &binfo, sizeof info);
    ddpm_close(b);
    ddpm_close(m);

    m = open_ok(time_path, 1, 4);
    ddpm_describe(m, &info);
    assert_int_equal(info.kind, DDPM_TIME);
    assert_int_equal(info.classes, 0);
    assert_int_equal(info.T, 12);
    assert_string_equal(info.schedule, "linear");
    assert_int_equal(ddpm_class_index(m, "3"), -1);
    ddpm_close(m);

    m = open_ok(den_path, 1, 4);
    ddpm_describe(m, &info);
    assert_int_equal(info.kind, DDPM_DENOISER);
    assert_int_equal(info.T, 0);
    assert_string_equal(info.schedule, "");
    ddpm_close(m);

    /* moving averages by default, the trained weights with no_ema; ddpm.dtype f16 is half */
    m = open_ok(ema_path, 1, 4);
    ddpm_describe(m, &info);
    assert_int_equal(info.ema, 1);
    assert_int_equal(info.half, 1);
    assert_int_equal(info.T, 15);
    assert_string_equal(info.schedule, "linear");
    ddpm_close(m);
    ddpm_open_options o = {.no_ema = 1};
    assert_int_equal(ddpm_open(ema_path, &o, &m), DDPM_OK);
    ddpm_describe(m, &info);
    assert_int_equal(info.ema, 0);
    ddpm_close(m);
    ddpm_close(NULL);
}

/* What each of the two jobs draws: a guided class model in chunks (max_batch 4: 2 images a
 * chunk, 3 chunks), and a time model with DDIM. */
typedef struct {
    const char *path;
    int is_class;
    float *out; /* (N_IMG, 784) */
    ddpm_status st;
} Job;

enum { N_IMG = 6, IMG = 784 };

static void job_params(const Job *j, ddpm_sample_params *p, const int *labels) {
    ddpm_sample_params_init(p);
    p->n = N_IMG;
    p->seed = j->is_class ? 5 : 9;
    if (j->is_class) {
        p->labels = labels;
        p->guidance = 2.5f;
        p->sampler = "dpmpp2m";
        p->steps = 5;
    } else {
        p->sampler = "ddim";
        p->steps = 4;
        p->eta = 0.5f;
    }
}

static void *job_run(void *arg) {
    Job *j = arg;
    static const int labels[N_IMG] = {3, 1, 4, -1, 5, 9};
    ddpm_open_options o = {.threads = 2, .max_batch = 4};
    ddpm_model *m = NULL;
    j->st = ddpm_open(j->path, &o, &m);
    if (j->st != DDPM_OK) return NULL;
    ddpm_sample_params p;
    job_params(j, &p, labels);
    j->st = ddpm_sample(m, &p, j->out);
    ddpm_close(m);
    return NULL;
}

static void test_two_threads_same_bytes(void **state) {
    (void)state;
    float *want[2], *got[2];
    Job jobs[2];
    for (int k = 0; k < 2; k++) {
        want[k] = calloc(N_IMG * IMG, sizeof(float));
        got[k] = calloc(N_IMG * IMG, sizeof(float));
        jobs[k] = (Job){.path = k ? time_path : class_path, .is_class = !k, .out = want[k]};
        job_run(&jobs[k]); /* one after the other */
        assert_int_equal(jobs[k].st, DDPM_OK);
    }
    /* the API's bytes are the internal sampler's */
    Unet u;
    const CheckpointLoadOptions lo = {.max_batch = 4, .nthreads = 2, .use_ema = 1};
    if (checkpoint_load(&u, NULL, class_path, &lo) != 0) fail_msg("%s", err_msg());
    Schedule s;
    assert_int_equal(schedule_init_kind(&s, SCHEDULE_COSINE, 20, SCHEDULE_DEFAULT_BETA_START,
                                        SCHEDULE_DEFAULT_BETA_END), 0);
    const int labels[N_IMG] = {3, 1, 4, -1, 5, 9};
    SampleRequest req = {.n = N_IMG, .labels = labels, .guidance = 2.5f};
    const SamplerChoice c = {.kind = SAMPLER_DPMPP_2M, .steps = 5, .spacing = DDIM_SPACING_LOGSNR};
    assert_int_equal(sampler_choose(&req, &s, &c), 0);
    Rng rng;
    rng_seed(&rng, 5);
    assert_int_equal(sampler_draw(&u, &s, &rng, &req, got[0]), 0);
    assert_memory_equal(got[0], want[0], N_IMG * IMG * sizeof(float));
    schedule_free(&s);
    unet_free(&u);

    for (int round = 0; round < 3; round++) {
        pthread_t th[2];
        for (int k = 0; k < 2; k++) {
            memset(got[k], 0, N_IMG * IMG * sizeof(float));
            jobs[k].out = got[k];
            assert_int_equal(pthread_create(&th[k], NULL, job_run, &jobs[k]), 0);
        }
        for (int k = 0; k < 2; k++) {
            assert_int_equal(pthread_join(th[k], NULL), 0);
            assert_int_equal(jobs[k].st, DDPM_OK);
            assert_memory_equal(got[k], want[k], N_IMG * IMG * sizeof(float));
        }
    }
    /* and two handles of the same file at once */
    Job same[2] = {{.path = class_path, .is_class = 1, .out = got[0]},
                   {.path = class_path, .is_class = 1, .out = got[1]}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, job_run, &same[k]), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_join(th[k], NULL), 0);
        assert_int_equal(same[k].st, DDPM_OK);
        assert_memory_equal(got[k], want[0], N_IMG * IMG * sizeof(float));
    }
    for (int k = 0; k < 2; k++) {
        free(want[k]);
        free(got[k]);
    }
}

typedef struct {
    int calls, last_done, last_total, stop_at;
} Counter;

static int count_progress(void *user, int done, int total) {
    Counter *c = user;
    c->calls++;
    c->last_done = done;
    c->last_total = total;
    return c->stop_at && done >= c->stop_at;
}

static void test_progress_and_cancel(void **state) {
    (void)state;
    ddpm_model *m = open_ok(time_path, 1, 4);
    float *a = calloc(N_IMG * IMG, sizeof(float)), *b = calloc(N_IMG * IMG, sizeof(float));
    ddpm_sample_params p;
    ddpm_sample_params_init(&p);
    p.n = N_IMG; /* 2 chunks of 4 and 2 images, 12 steps each */
    Counter c = {0};
    p.progress = count_progress;
    p.user = &c;
    assert_int_equal(ddpm_sample(m, &p, a), DDPM_OK);
    assert_int_equal(c.calls, 24);
    assert_int_equal(c.last_done, 24);
    assert_int_equal(c.last_total, 24);

    c = (Counter){.stop_at = 3};
    assert_int_equal(ddpm_sample(m, &p, b), DDPM_ERR_CANCELLED);
    assert_int_equal(c.calls, 3);
    assert_non_null(strstr(ddpm_last_error(), "cancelled"));
    assert_non_null(strstr(ddpm_last_error(), time_path));
    /* the handle is whole after a cancel: the same draw again gives the same bytes */
    p.progress = NULL;
    assert_int_equal(ddpm_sample(m, &p, b), DDPM_OK);
    assert_memory_equal(a, b, N_IMG * IMG * sizeof(float));

    /* frames: the start noise, every 5th step, the end; the last is the result */
    p.frame_every = 5;
    int nf = ddpm_sample_frames(m, &p);
    assert_int_equal(nf, 1 + 3);
    float *frames = calloc((size_t)nf * N_IMG * IMG, sizeof(float));
    p.frames = frames;
    assert_int_equal(ddpm_sample(m, &p, b), DDPM_OK);
    assert_memory_equal(a, b, N_IMG * IMG * sizeof(float));
    assert_memory_equal(frames + (size_t)(nf - 1) * N_IMG * IMG, a, N_IMG * IMG * sizeof(float));
    assert_int_equal(ddpm_sample_nfe(m, &p), 12);
    p.sampler = "dpmpp3m";
    p.steps = 7;
    assert_int_equal(ddpm_sample_nfe(m, &p), 7);
    assert_int_equal(ddpm_sample_frames(m, &p), 1 + 2);
    p.sampler = "euler";
    assert_int_equal(ddpm_sample_frames(m, &p), -1);
    assert_int_equal(ddpm_sample_nfe(m, &p), -1);
    free(frames);
    free(a);
    free(b);
    ddpm_close(m);
}

/* The file at path is refused from its bytes and from the file, with a status other than OK,
 * no handle, and a message holding needle. */
static void expect_refused(const char *path, const char *needle) {
    size_t n;
    unsigned char *buf = slurp(path, &n);
    ddpm_model *m = (ddpm_model *)1;
    ddpm_status st = ddpm_open_memory(buf, n, "damaged buffer", NULL, &m);
    printf("  %-40.40s %s: %s\n", needle, ddpm_status_name(st), ddpm_last_error());
    assert_int_not_equal(st, DDPM_OK);
    assert_null(m);
    if (!strstr(ddpm_last_error(), needle)) fail_msg("want \"%s\" in: %s", needle, ddpm_last_error());
    assert_non_null(strstr(ddpm_last_error(), "damaged buffer"));
    free(buf);
    m = (ddpm_model *)1;
    st = ddpm_open(path, NULL, &m);
    assert_int_equal(st, DDPM_ERR_FORMAT);
    assert_null(m);
    if (!strstr(ddpm_last_error(), needle)) fail_msg("want \"%s\" in: %s", needle, ddpm_last_error());
    assert_non_null(strstr(ddpm_last_error(), path));
}

/* The byte-level cases of the table: truncated, flipped, huge or broken headers, offsets
 * out of range, and a safetensors file that is not a ddpm model. */
static void bad_bytes(const unsigned char *g, size_t n) {
    char p[300];
    tp(p, sizeof p, "bad.safetensors");
    static const struct {
        size_t len;
        const char *needle;
    } cuts[] = {{0, "too short for a safetensors file"}, {100, "longer than the file"}};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(p, g, cuts[i].len);
        expect_refused(p, cuts[i].needle);
    }
    write_bytes(p, g, n - 3);
    expect_refused(p, "data_offsets");
    assert_true(n > 1000);
    unsigned char *flip = malloc(n);
    memcpy(flip, g, n);
    const size_t at = n - 100;
    flip[at] ^= 0x40; /* one weight bit */
    write_bytes(p, flip, n);
    expect_refused(p, "integrity check failed");
    free(flip);
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_bytes(p, huge, 10);
    expect_refused(p, "larger than the limit");
    unsigned char notjson[24] = {16, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"', ':', '[', '1', ',',
                                 ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    write_bytes(p, notjson, 24);
    expect_refused(p, "not valid JSON");
    const char *oob = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999]}}";
    unsigned char buf[256] = {0};
    size_t jl = strlen(oob);
    buf[0] = (unsigned char)jl;
    memcpy(buf + 8, oob, jl);
    write_bytes(p, buf, 8 + jl + 8);
    expect_refused(p, "data_offsets");
    const float one[2] = {1, 2};
    const StTensor plain = {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = one};
    assert_int_equal(safetensors_write(p, &plain, 1, NULL, NULL, 0), 0);
    expect_refused(p, "not a ddpm checkpoint");
}

static void test_damaged_files(void **state) {
    (void)state;
    size_t n;
    unsigned char *g = slurp(ema_path, &n);
    bad_bytes(g, n);
    free(g);
    char p[300];
    tp(p, sizeof p, "bad.safetensors");
    /* rewritten with a valid digest: the content checks stand on their own */
    static const struct {
        const char *key, *value, *needle;
    } metas[] = {
        {"ddpm.config", "not json at all", "ddpm.config is not a JSON object"},
        {"ddpm.config", "{\"T\": 0}", "T must be an integer"},
        {"ddpm.config", "{\"schedule\": \"quad\"}", "schedule must be"},
        {"ddpm.config", "{\"dataset\": \"cifar\"}", "dataset must be"},
        {"ddpm.config", "{\"beta_start\": 0.5, \"beta_end\": 0.1}", "is larger than beta_end"},
        {"ddpm.kind", "giant", "unknown model kind"},
        {"ddpm.width", "99999", "bad ddpm.width"},
        {"ddpm.geometry", "{\"channels\": 9}", "ddpm.geometry"},
        {"ddpm.format", "ddpm-weights/1", "has no integrity digest"}, /* saved without one */
    };
    StEdit e;
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        st_edit_open(&e, ema_path);
        st_edit_meta(&e, metas[i].key, metas[i].value);
        st_edit_save(&e, p, i + 1 < sizeof metas / sizeof metas[0]);
        st_edit_close(&e);
        expect_refused(p, metas[i].needle);
    }
    static const char *const nan_in[] = {"out.bias", "ema.out.bias"};
    for (int i = 0; i < 2; i++) {
        st_edit_open(&e, ema_path);
        float *v = (float *)st_edit_tensor(&e, nan_in[i])->data;
        float keep = v[0];
        v[0] = NAN;
        st_edit_save(&e, p, 1);
        st_edit_close(&e);
        (void)keep;
        char needle[80];
        snprintf(needle, sizeof needle, "\"%s\" holds a non-finite value", nan_in[i]);
        expect_refused(p, needle);
    }
    st_edit_open(&e, ema_path);
    st_edit_tensor(&e, "out.weight")->shape[1] = 2; /* (1, 4, 3, 3) written as (1, 2, 3, 3) */
    st_edit_save(&e, p, 1);
    st_edit_close(&e);
    expect_refused(p, "\"out.weight\" has shape (1, 2, 3, 3)");
    st_edit_open(&e, ema_path);
    st_edit_tensor(&e, "out.bias")->name = "out.bias_renamed";
    st_edit_save(&e, p, 1);
    st_edit_close(&e);
    expect_refused(p, "no tensor named \"out.bias\"");

    /* a file that cannot be read is an I/O error */
    ddpm_model *m = (ddpm_model *)1;
    tp(p, sizeof p, "missing.safetensors");
    assert_int_equal(ddpm_open(p, NULL, &m), DDPM_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(ddpm_last_error(), "no such file"));
}

static void test_wrong_arguments(void **state) {
    (void)state;
    ddpm_model *t = open_ok(time_path, 1, 4), *c = open_ok(class_path, 1, 4);
    ddpm_model *d = open_ok(den_path, 1, 4);
    float *out = calloc(4 * IMG, sizeof(float));
    const int labels[2] = {1, 2}, bad_label[2] = {1, 10};
    ddpm_sample_params p;
    static const struct {
        int which; /* 0 time, 1 class, 2 denoiser */
        const char *what, *needle;
    } cases[] = {
        {0, "labels", "labels need a class model"},
        {0, "n0", "at least 1 image"},
        {1, "n-1", "at least 1 image"},
        {0, "sampler", "unknown sampler 'euler'"},
        {0, "ddpm steps", "takes all T = 12 steps, not 3"},
        {0, "steps", "must be 1 to T = 12, not 13"},
        {0, "eta", "--eta is for --sampler ddim"},
        {0, "eta range", "eta 2: out of range"},
        {0, "spacing", "unknown spacing 'cubic'"},
        {1, "label 10", "label 10 of image 1"},
        {1, "frames", "frames is NULL"},
        {1, "guidance", "guidance nan is not a number"},
        {2, "sample a denoiser", "is a denoiser"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ddpm_sample_params_init(&p);
        p.n = 2;
        const char *w = cases[i].what;
        if (!strcmp(w, "labels")) p.labels = labels;
        if (!strcmp(w, "n0")) p.n = 0;
        if (!strcmp(w, "n-1")) p.n = -1;
        if (!strcmp(w, "sampler")) p.sampler = "euler";
        if (!strcmp(w, "ddpm steps")) p.steps = 3;
        if (!strcmp(w, "steps")) p.sampler = "ddim", p.steps = 13;
        if (!strcmp(w, "eta")) p.sampler = "dpmpp2m", p.eta = 0.5f;
        if (!strcmp(w, "eta range")) p.sampler = "ddim", p.eta = 2.0f;
        if (!strcmp(w, "spacing")) p.sampler = "ddim", p.spacing = "cubic";
        if (!strcmp(w, "label 10")) p.labels = bad_label;
        if (!strcmp(w, "frames")) p.frame_every = 2;
        if (!strcmp(w, "guidance")) p.guidance = NAN;
        ddpm_model *m = cases[i].which == 0 ? t : cases[i].which == 1 ? c : d;
        ddpm_status st = ddpm_sample(m, &p, out);
        printf("  %-18s %s: %s\n", w, ddpm_status_name(st), ddpm_last_error());
        assert_int_equal(st, DDPM_ERR_ARGUMENT);
        if (!strstr(ddpm_last_error(), cases[i].needle))
            fail_msg("want \"%s\" in: %s", cases[i].needle, ddpm_last_error());
    }
    assert_int_equal(ddpm_denoise(t, out, 2, out), DDPM_ERR_ARGUMENT);
    assert_non_null(strstr(ddpm_last_error(), "denoising needs a denoiser"));
    assert_int_equal(ddpm_denoise(d, out, 0, out), DDPM_ERR_ARGUMENT);
    assert_int_equal(ddpm_sample(t, NULL, out), DDPM_ERR_ARGUMENT);

    ddpm_model *m = (ddpm_model *)1;
    ddpm_open_options o = {.threads = -1};
    assert_int_equal(ddpm_open(time_path, &o, &m), DDPM_ERR_ARGUMENT);
    assert_null(m);
    o = (ddpm_open_options){.device = "gpu"};
    assert_int_equal(ddpm_open(time_path, &o, &m), DDPM_ERR_ARGUMENT);
    assert_non_null(strstr(ddpm_last_error(), "unknown device 'gpu'"));
    assert_int_equal(ddpm_open(NULL, NULL, &m), DDPM_ERR_ARGUMENT);
    assert_int_equal(ddpm_open_memory(NULL, 5, NULL, NULL, &m), DDPM_ERR_ARGUMENT);
    free(out);
    ddpm_close(t);
    ddpm_close(c);
    ddpm_close(d);
}

/* Denoising in place gives what a separate output gets, and the ref device agrees with cpu
 * within the backends' tolerance (tests/test_device.c). */
static void test_denoise(void **state) {
    (void)state;
    enum { N = 5 };
    ddpm_model *d = open_ok(den_path, 2, 2); /* chunks of 2, 2 and 1 */
    float *in = malloc(N * IMG * sizeof(float)), *a = malloc(N * IMG * sizeof(float));
    float *b = malloc(N * IMG * sizeof(float));
    Rng r;
    rng_seed(&r, 3);
    rng_fill_uniform(&r, in, N * IMG, 0.0f, 1.0f);
    assert_int_equal(ddpm_denoise(d, in, N, a), DDPM_OK);
    memcpy(b, in, N * IMG * sizeof(float));
    assert_int_equal(ddpm_denoise(d, b, N, b), DDPM_OK);
    assert_memory_equal(a, b, N * IMG * sizeof(float));
    ddpm_close(d);
    ddpm_open_options o = {.max_batch = 8, .device = "ref"};
    assert_int_equal(ddpm_open(den_path, &o, &d), DDPM_OK);
    assert_int_equal(ddpm_denoise(d, in, N, b), DDPM_OK);
    assert_true(check_tensor("denoise cpu vs ref", a, b, N * IMG, 1e-4 * max_abs(b, N * IMG), 0));
    ddpm_close(d);
    free(in);
    free(a);
    free(b);
}

/* Read a PNG back as 8-bit gray or RGB with libpng's simplified API. */
static unsigned char *png_read(const char *path, int rgb, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) fail_msg("%s: %s", path, im.message);
    assert_int_equal(im.format & PNG_FORMAT_FLAG_COLOR, rgb ? PNG_FORMAT_FLAG_COLOR : 0);
    im.format = rgb ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    unsigned char *pix = malloc(PNG_IMAGE_SIZE(im));
    if (!png_image_finish_read(&im, NULL, pix, 0, NULL)) fail_msg("%s: %s", path, im.message);
    *w = (int)im.width;
    *h = (int)im.height;
    return pix;
}

static void check_grid(int C, int H, int W, int n, int cols) {
    char p[300];
    tp(p, sizeof p, "grid.png");
    ddpm_info info = {.channels = C, .height = H, .width = W};
    const size_t img = (size_t)C * H * W;
    float *x = malloc((size_t)n * img * sizeof(float));
    Rng r;
    rng_seed(&r, 7);
    rng_fill_uniform(&r, x, (size_t)n * img, -0.2f, 1.2f); /* out of range too: clamped */
    assert_int_equal(ddpm_write_png(p, x, n, cols, &info), DDPM_OK);
    int w, h;
    unsigned char *pix = png_read(p, C == 3, &w, &h);
    const int rows = (n + cols - 1) / cols;
    assert_int_equal(w, cols * W);
    assert_int_equal(h, rows * H);
    for (int cell = 0; cell < rows * cols; cell++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++) {
                    size_t at = ((size_t)((cell / cols) * H + y) * w + (cell % cols) * W + xx) * C + c;
                    int want = cell < n ? pixel_to_u8(x[cell * img + (size_t)c * H * W + y * W + xx]) : 0;
                    if (pix[at] != want)
                        fail_msg("cell %d (%d, %d) channel %d: %d, want %d", cell, y, xx, c, pix[at], want);
                }
    free(pix);
    free(x);
}

static void test_write_png(void **state) {
    (void)state;
    check_grid(1, 28, 28, 5, 3); /* 2 rows, the last cell black */
    check_grid(3, 8, 12, 4, 4);
    check_grid(1, 28, 28, 2, 5); /* more columns than images: still 5 cells wide */
    ddpm_info info = {.channels = 2, .height = 8, .width = 8};
    float x[128] = {0};
    char p[300];
    assert_int_equal(ddpm_write_png(tp(p, sizeof p, "g2.png"), x, 1, 1, &info), DDPM_ERR_ARGUMENT);
    info.channels = 1;
    assert_int_equal(ddpm_write_png(tp(p, sizeof p, "g.png"), x, 0, 1, &info), DDPM_ERR_ARGUMENT);
    assert_int_equal(ddpm_write_png("/nonexistent/dir/g.png", x, 1, 1, &info), DDPM_ERR_IO);
    assert_true(strlen(ddpm_last_error()) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_describe),
        cmocka_unit_test(test_two_threads_same_bytes),
        cmocka_unit_test(test_progress_and_cancel),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_wrong_arguments),
        cmocka_unit_test(test_denoise),
        cmocka_unit_test(test_write_png),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
