/* Tests for the run configuration (train/config.h): the table covers every field of
 * TrainConfig once, its defaults are the SPEC's as before the table, config.json is byte for
 * byte what the code before the table wrote (fixtures below, from that code), it reads back
 * to the same bytes, files from older runs still read, and bad values get the same sentences. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "train/config.h"

/* Written by train_config_to_json before the table (commit 2193e92), m = NULL: for each kind
 * the defaults, then every option set, then attention 14 only and no figure epochs. */
static const char *const FIXTURES[9] = {
    "{\"model\":\"denoiser\",\"width\":128,\"batch\":256,\"epochs\":5,\"lr\":9.9999997473"
    "7875e-05,\"lr_end\":9.99999974737875e-05,\"seed\":1,\"threads\":2,\"data\":\"\",\"da"
    "taset\":\"mnist\",\"subset\":0,\"ema\":0,\"sigma\":0.5,\"eval_n\":10000,\"sigma_tabl"
    "e_n\":10000,\"figure_epochs\":[1,5],\"checkpoint_every\":0}",
    "{\"model\":\"denoiser\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.0003000000142"
    "4923539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"da"
    "ta\":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.999000012874603"
    "27,\"residual\":true,\"attention\":\"down2,up1\",\"sigma\":0.300000011920929,\"eval_n\":6"
    "4,\"sigma_table_n\":0,\"figure_epochs\":[1,2,3],\"checkpoint_every\":7}",
    "{\"model\":\"denoiser\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.0003000000142"
    "4923539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"da"
    "ta\":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.999000012874603"
    "27,\"attention\":\"up1\",\"sigma\":0.300000011920929,\"eval_n\":64,\"sigma_table_n\":"
    "0,\"figure_epochs\":[],\"checkpoint_every\":7}",
    "{\"model\":\"time\",\"width\":64,\"batch\":128,\"epochs\":20,\"lr\":0.00100000004749"
    "74513,\"lr_end\":9.99999974737875e-05,\"seed\":1,\"threads\":2,\"data\":\"\",\"datas"
    "et\":\"mnist\",\"subset\":0,\"ema\":0,\"T\":300,\"schedule\":\"linear\",\"time_embed"
    "ding\":0,\"beta_start\":9.99999974737875e-05,\"beta_end\":0.019999999552965164,\"fig"
    "ure_epochs\":[5,20],\"checkpoint_every\":0}",
    "{\"model\":\"time\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.00030000001424923"
    "539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"data\""
    ":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.99900001287460327,"
    "\"residual\":true,\"attention\":\"down2,up1\",\"T\":50,\"schedule\":\"cosine\",\"time_emb"
    "edding\":16,\"beta_start\":0.0010000000474974513,\"beta_end\":0.05000000074505806,\""
    "figure_epochs\":[1,2,3],\"checkpoint_every\":7}",
    "{\"model\":\"time\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.00030000001424923"
    "539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"data\""
    ":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.99900001287460327,"
    "\"attention\":\"up1\",\"T\":50,\"schedule\":\"cosine\",\"time_embedding\":16,\"beta_s"
    "tart\":0.0010000000474974513,\"beta_end\":0.05000000074505806,\"figure_epochs\":[],"
    "\"checkpoint_every\":7}",
    "{\"model\":\"class\",\"width\":64,\"batch\":128,\"epochs\":20,\"lr\":0.0010000000474"
    "974513,\"lr_end\":9.99999974737875e-05,\"seed\":1,\"threads\":2,\"data\":\"\",\"data"
    "set\":\"mnist\",\"subset\":0,\"ema\":0,\"T\":300,\"schedule\":\"linear\",\"time_embe"
    "dding\":0,\"beta_start\":9.99999974737875e-05,\"beta_end\":0.019999999552965164,\"p_"
    "uncond\":0.10000000149011612,\"guidance\":5,\"figure_epochs\":[5,20],\"checkpoint_ev"
    "ery\":0}",
    "{\"model\":\"class\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.0003000000142492"
    "3539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"data"
    "\":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.99900001287460327"
    ",\"residual\":true,\"attention\":\"down2,up1\",\"T\":50,\"schedule\":\"cosine\",\"time_em"
    "bedding\":16,\"beta_start\":0.0010000000474974513,\"beta_end\":0.05000000074505806,"
    "\"p_uncond\":0.20000000298023224,\"guidance\":-1.5,\"figure_epochs\":[1,2,3],\"check"
    "point_every\":7}",
    "{\"model\":\"class\",\"width\":8,\"batch\":32,\"epochs\":3,\"lr\":0.0003000000142492"
    "3539,\"lr_end\":2.4999999368446879e-05,\"seed\":12345678901234,\"threads\":4,\"data"
    "\":\"/data/mnist\",\"dataset\":\"fashion\",\"subset\":96,\"ema\":0.99900001287460327"
    ",\"attention\":\"up1\",\"T\":50,\"schedule\":\"cosine\",\"time_embedding\":16,\"beta_"
    "start\":0.0010000000474974513,\"beta_end\":0.05000000074505806,\"p_uncond\":0.200000"
    "00298023224,\"guidance\":-1.5,\"figure_epochs\":[],\"checkpoint_every\":7}"};

/* The fixtures' configurations, built field by field as the old fixture program did. */
static void fixture_config(TrainConfig *c, int k, int variant) {
    train_config_defaults(c, (UnetKind)k);
    if (variant == 0) return;
    c->data_dir = "/data/mnist";
    c->dataset = DATASET_FASHION;
    c->width = 8;
    c->batch = 32;
    c->epochs = 3;
    c->lr = 3e-4f;
    c->lr_end = 2.5e-5f;
    c->seed = 12345678901234ULL;
    c->threads = 4;
    c->subset = 96;
    c->ema = 0.999f;
    c->residual = 1;
    c->attention = UNET_ATTN_DOWN2 | UNET_ATTN_UP1;
    c->sigma = 0.3f;
    c->eval_n = 64;
    c->table_n = 0;
    c->T = 50;
    c->schedule = SCHEDULE_COSINE;
    c->time_embedding = 16;
    c->beta_start = 1e-3f;
    c->beta_end = 0.05f;
    c->p_uncond = 0.2f;
    c->guidance = -1.5f;
    c->n_fig_epochs = 3;
    c->fig_epochs[0] = 1;
    c->fig_epochs[1] = 2;
    c->fig_epochs[2] = 3;
    c->checkpoint_every = 7;
    if (variant == 2) {
        c->attention = UNET_ATTN_UP1;
        c->residual = 0;
        c->n_fig_epochs = 0;
    }
}

static char *to_text(const TrainConfig *c) {
    cJSON *j = train_config_to_json(c, NULL);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static void test_json_unchanged(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < 3; v++) {
            TrainConfig c;
            fixture_config(&c, k, v);
            char *t = to_text(&c);
            assert_string_equal(t, FIXTURES[3 * k + v]);
            free(t);
        }
}

/* Each fixture reads back into a configuration that writes the same bytes. */
static void test_json_roundtrip(void **state) {
    (void)state;
    for (int i = 0; i < 9; i++) {
        TrainConfig c;
        char data[256];
        if (train_config_from_json(FIXTURES[i], "fixture", &c, data, sizeof data) != 0)
            fail_msg("%s", err_msg());
        c.data_dir = data;
        char *t = to_text(&c);
        assert_string_equal(t, FIXTURES[i]);
        free(t);
    }
}

/* train_config_defaults as it was before the table. */
static void old_defaults(TrainConfig *c, UnetKind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->seed = 1;
    c->threads = 2;
    c->sigma = 0.5f;
    c->T = SCHEDULE_DEFAULT_T;
    c->beta_start = SCHEDULE_DEFAULT_BETA_START;
    c->beta_end = SCHEDULE_DEFAULT_BETA_END;
    c->p_uncond = 0.1f;
    c->guidance = 5.0f;
    c->eval_n = 10000;
    c->table_n = 10000;
    c->n_grid = 40;
    if (kind == UNET_DENOISER) {
        c->width = 128;
        c->batch = 256;
        c->epochs = 5;
        c->lr = c->lr_end = 1e-4f;
        c->fig_epochs[0] = 1;
        c->fig_epochs[1] = 5;
    } else {
        c->width = 64;
        c->batch = 128;
        c->epochs = 20;
        c->lr = 1e-3f;
        c->lr_end = 1e-4f;
        c->fig_epochs[0] = 5;
        c->fig_epochs[1] = 20;
    }
    c->n_fig_epochs = 2;
}

static void test_defaults(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++) {
        TrainConfig a, b;
        train_config_defaults(&a, (UnetKind)k);
        old_defaults(&b, (UnetKind)k);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static size_t field_size(const TrainConfigField *f) {
    switch (f->type) {
    case TC_LONG: return sizeof(long);
    case TC_U64: return sizeof(uint64_t);
    case TC_FLOAT: return sizeof(float);
    case TC_STR: return sizeof(const char *);
    case TC_INT_LIST: return (size_t)f->cap * sizeof(int);
    case TC_HOOK: return sizeof(Progress);
    default: return sizeof(int);
    }
}

/* Every byte of TrainConfig but padding belongs to exactly one row: a field added to the
 * struct without its row leaves a hole at least as large as its alignment. */
static void test_table_covers_struct(void **state) {
    (void)state;
    int n;
    const TrainConfigField *f = train_config_fields(&n);
    unsigned char owner[sizeof(TrainConfig)] = {0};
    for (int i = 0; i < n; i++) {
        size_t spans[2][2] = {{f[i].offset, field_size(&f[i])}, {0, 0}};
        if (f[i].type == TC_INT_LIST) {
            spans[1][0] = f[i].count_offset;
            spans[1][1] = sizeof(int);
        }
        for (int s = 0; s < 2; s++)
            for (size_t b = spans[s][0]; b < spans[s][0] + spans[s][1]; b++) {
                assert_true(b < sizeof(TrainConfig));
                assert_int_equal(owner[b], 0);
                owner[b] = 1;
            }
    }
    size_t hole = 0, worst = 0;
    for (size_t b = 0; b <= sizeof(TrainConfig); b++) {
        if (b < sizeof(TrainConfig) && !owner[b]) {
            hole++;
            continue;
        }
        /* padding before a field is smaller than that field's alignment (at most 8 here) */
        if (hole > worst) worst = hole;
        if (hole > 0 && b < sizeof(TrainConfig)) {
            int ok = 0;
            for (int i = 0; i < n; i++)
                if (f[i].offset == b) ok = hole < field_size(&f[i]) && hole < 8;
            if (!ok) fail_msg("bytes %zu..%zu of TrainConfig have no row in the table", b - hole, b - 1);
        }
        hole = 0;
    }
    assert_true(worst < 8);
}

/* Runs before the options existed wrote no dataset, ema, residual, attention, schedule,
 * time_embedding, figure_epochs or checkpoint_every: those read as the defaults. */
static void test_old_files_read(void **state) {
    (void)state;
    const char *old = "{\"model\":\"time\",\"width\":4,\"batch\":2,\"epochs\":1,\"lr\":0.1,"
                      "\"lr_end\":0.1,\"seed\":1,\"threads\":1,\"subset\":0,\"T\":10,"
                      "\"beta_start\":0.1,\"beta_end\":0.2}";
    TrainConfig c, d;
    char data[16];
    if (train_config_from_json(old, "old", &c, data, sizeof data) != 0) fail_msg("%s", err_msg());
    train_config_defaults(&d, UNET_TIME);
    assert_int_equal(c.dataset, d.dataset);
    assert_true(c.ema == 0.0f);
    assert_int_equal(c.residual, 0);
    assert_int_equal(c.attention, 0);
    assert_int_equal(c.schedule, SCHEDULE_LINEAR);
    assert_int_equal(c.time_embedding, 0);
    assert_int_equal(c.n_fig_epochs, 2);
    assert_int_equal(c.fig_epochs[1], 20);
    assert_int_equal(c.checkpoint_every, 0);
    assert_int_equal(c.width, 4);
    assert_int_equal(c.T, 10);
    assert_string_equal(data, "");
}

/* The sentences are those of the code before the table. */
static void test_errors(void **state) {
    (void)state;
    const char *base = "\"model\":\"class\",\"width\":4,\"batch\":2,\"epochs\":1,\"lr\":0.1,"
                       "\"lr_end\":0.1,\"seed\":1,\"threads\":1,\"subset\":0,\"T\":10,"
                       "\"beta_start\":0.1,\"beta_end\":0.2,\"p_uncond\":0.1,\"guidance\":2";
    struct {
        const char *extra, *msg;
    } cases[] = {
        {",\"width\":0", "w: the configuration's \"width\" must be an integer from 1 to 1024"},
        {",\"subset\":-1", "w: the configuration's \"subset\" must be an integer from 0 to 60000"},
        {",\"lr\":11", "w: the configuration's \"lr\" must be a number from 1e-12 to 10"},
        {",\"dataset\":\"x\"", "w: the configuration's \"dataset\" must be \"mnist\", \"fashion\", \"cifar10\" or \"folder\""},
        {",\"schedule\":3", "w: the configuration's \"schedule\" must be \"linear\" or \"cosine\""},
        {",\"residual\":1", "w: the configuration's \"residual\" must be true or false"},
        {",\"attention\":\"5\"",
         "w: the configuration's \"attention\" must be \"down2\", \"up1\", \"down2,up1\" or \"none\" (or the old \"7\", \"14\", \"7,14\")"},
        {",\"figure_epochs\":[0]",
         "w: the configuration's \"figure_epochs\" must hold integers from 1 to 100000"},
        {",\"figure_epochs\":3",
         "w: the configuration's \"figure_epochs\" must be an array of at most 16 epochs"},
        {",\"data\":\"0123456789abcdef\"",
         "w: the configuration's \"data\" must be a directory name shorter than 16 bytes"},
        {",\"beta_start\":0.3", "w: the configuration's beta_start is larger than its beta_end"},
    };
    char text[1024], data[16];
    TrainConfig c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* cJSON takes the first of two equal keys, so the bad value goes first */
        snprintf(text, sizeof text, "{%s,%s}", cases[i].extra + 1, base);
        assert_int_equal(train_config_from_json(text, "w", &c, data, sizeof data), -1);
        assert_string_equal(err_msg(), cases[i].msg);
    }
    snprintf(text, sizeof text, "{\"model\":\"time\"}");
    assert_int_equal(train_config_from_json(text, "w", &c, data, sizeof data), -1);
    assert_string_equal(err_msg(), "w: the configuration has no \"width\"");
    assert_int_equal(train_config_from_json("{\"model\":\"x\"}", "w", &c, data, sizeof data), -1);
    assert_string_equal(err_msg(),
                        "w: the configuration's \"model\" must be \"denoiser\", \"time\" or \"class\"");
    assert_int_equal(train_config_from_json("[1]", "w", &c, data, sizeof data), -1);
    assert_string_equal(err_msg(), "w: the configuration is not a JSON object");
}

/* The command line's ranges come from the table; subset's 0 is for the JSON only. */
static void test_option_ranges(void **state) {
    (void)state;
    double lo, hi;
    assert_int_equal(train_config_option_range("width", &lo, &hi), 0);
    assert_true(lo == 1 && hi == 1024);
    assert_int_equal(train_config_option_range("subset", &lo, &hi), 0);
    assert_true(lo == 1 && hi == 60000);
    assert_int_equal(train_config_option_range("beta-end", &lo, &hi), 0);
    assert_true(lo == 1e-12 && hi == 0.999999);
    assert_int_equal(train_config_option_range("seed", &lo, &hi), -1);
    assert_int_equal(train_config_option_range("model", &lo, &hi), -1);
    assert_int_equal(train_config_option_range("nonsense", &lo, &hi), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_unchanged),     cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_defaults),           cmocka_unit_test(test_table_covers_struct),
        cmocka_unit_test(test_old_files_read),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_option_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
