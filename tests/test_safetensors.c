/* Tests for safetensors: exact bytes of a small file against the specification, a round trip
 * with every dtype, metadata, scalars and empty tensors, a table of malformed files that
 * must each be refused with a clear message, and random corruption that must never crash.
 * Half precision: F16 and BF16 conversions on known values (checked with Python's struct
 * 'e' format, IEEE binary16 with ties to even, and exact arithmetic for BF16), every half
 * value back and forth, and F16/BF16 tensors read as float. */
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "core/common.h"
#include "io/fileio.h"
#include "io/safetensors.h"

static char g_path[128];

static int setup(void **state) {
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/ddpm_test_st_%ld.safetensors", (long)getpid());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(g_path);
    return 0;
}

static void test_exact_bytes(void **state) {
    (void)state;
    /* One float 1.0: the header is 56 bytes of JSON padded to 56 (already a multiple of
     * 8), then the 4 data bytes, little-endian. */
    const float one = 1.0f;
    StTensor t = {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &one};
    assert_int_equal(safetensors_write(g_path, &t, 1, NULL, NULL, 0), 0);
    unsigned char *buf;
    size_t n;
    assert_int_equal(read_file(g_path, 1 << 20, &buf, &n), 0);
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    assert_int_equal(n, 8 + padded + 4);
    for (int i = 0; i < 8; i++) assert_int_equal(buf[i], (unsigned char)(padded >> (8 * i)));
    assert_memory_equal(buf + 8, json, jl);
    for (size_t i = jl; i < padded; i++) assert_int_equal(buf[8 + i], ' ');
    const unsigned char one_le[4] = {0x00, 0x00, 0x80, 0x3f};
    assert_memory_equal(buf + 8 + padded, one_le, 4);
    xfree(buf);
}

static void test_roundtrip(void **state) {
    (void)state;
    float w[6] = {1.5f, -2.25f, 3e-8f, 0.0f, -0.0f, 1e30f};
    int64_t steps[4] = {0, -1, INT64_MAX, INT64_MIN};
    uint8_t bytes[5] = {0, 1, 127, 128, 255};
    float scalar = 42.0f;
    StTensor ts[] = {
        /* Deliberately not alphabetical: the writer keeps this order. */
        {.name = "z.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .data = w},
        {.name = "mask", .dtype = ST_U8, .ndim = 1, .shape = {5}, .data = bytes},
        {.name = "step", .dtype = ST_I64, .ndim = 1, .shape = {4}, .data = steps},
        {.name = "empty", .dtype = ST_F32, .ndim = 2, .shape = {0, 3}, .data = NULL},
        {.name = "scalar", .dtype = ST_F32, .ndim = 0, .data = &scalar},
    };
    const char *keys[] = {"format", "config"};
    const char *vals[] = {"pt", "{\"width\": 32, \"note\": \"quotes \\\" and \\n\"}"};
    assert_int_equal(safetensors_write(g_path, ts, 5, keys, vals, 2), 0);

    StFile f;
    if (safetensors_open(g_path, &f) != 0) fail_msg("%s", err_msg());
    assert_int_equal(f.n, 5);
    assert_int_equal(f.data_start % 8, 0);
    assert_int_equal(f.buf[8], '{');
    for (int i = 0; i < 5; i++) {
        assert_string_equal(f.entries[i].name, ts[i].name);
        /* The U8 tensor comes before the I64 one, yet every tensor is aligned in the file
         * to its element size (the writer lays out the data widest dtype first). */
        size_t elem = f.entries[i].dtype == ST_I64 ? 8 : f.entries[i].dtype == ST_F32 ? 4 : 1;
        assert_int_equal((f.data_start + f.entries[i].offset) % elem, 0);
    }
    assert_int_equal(f.n_meta, 2);
    assert_string_equal(safetensors_meta(&f, "format"), "pt");
    assert_string_equal(safetensors_meta(&f, "config"), vals[1]);
    assert_null(safetensors_meta(&f, "missing"));

    const StEntry *e = safetensors_find(&f, "step");
    assert_non_null(e);
    assert_int_equal(e->dtype, ST_I64);
    assert_int_equal(e->ndim, 1);
    assert_int_equal(e->shape[0], 4);
    assert_int_equal(e->bytes, 32);
    int64_t got_steps[4];
    memcpy(got_steps, safetensors_data(&f, e), 32);
    assert_memory_equal(got_steps, steps, 32);

    e = safetensors_find(&f, "mask");
    assert_int_equal(e->dtype, ST_U8);
    assert_memory_equal(safetensors_data(&f, e), bytes, 5);

    e = safetensors_find(&f, "empty");
    assert_int_equal(e->bytes, 0);
    assert_int_equal(e->shape[0], 0);
    assert_int_equal(e->shape[1], 3);

    e = safetensors_find(&f, "scalar");
    assert_int_equal(e->ndim, 0);
    assert_int_equal(e->bytes, 4);

    float got[6];
    const int64_t shape[2] = {2, 3};
    assert_int_equal(safetensors_read_f32(&f, "z.weight", got, 2, shape), 0);
    assert_memory_equal(got, w, sizeof w);

    /* Wrong shape, wrong dtype, missing name: each a clear error naming the file. */
    const int64_t wrong[2] = {3, 2};
    assert_int_equal(safetensors_read_f32(&f, "z.weight", got, 2, wrong), -1);
    printf("  error: %s\n", err_msg());
    assert_non_null(strstr(err_msg(), "has shape (2, 3), expected (3, 2)"));
    assert_non_null(strstr(err_msg(), g_path));
    assert_int_equal(safetensors_read_f32(&f, "step", got, 1, shape), -1);
    assert_non_null(strstr(err_msg(), "is I64, expected F32"));
    assert_int_equal(safetensors_read_f32(&f, "nope", got, 1, shape), -1);
    assert_non_null(strstr(err_msg(), "no tensor named \"nope\""));
    safetensors_close(&f);
    assert_null(f.buf);

    /* No metadata at all: no __metadata__ key is written. */
    assert_int_equal(safetensors_write(g_path, ts, 1, NULL, NULL, 0), 0);
    assert_int_equal(safetensors_open(g_path, &f), 0);
    assert_int_equal(f.n_meta, 0);
    assert_null(strstr((const char *)f.buf + 8, "__metadata__"));
    safetensors_close(&f);
}

static void test_write_rejects(void **state) {
    (void)state;
    float x[2] = {0};
    StTensor dup[2] = {{.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = x},
                       {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {2}, .data = x}};
    assert_int_equal(safetensors_write(g_path, dup, 2, NULL, NULL, 0), -1);
    assert_non_null(strstr(err_msg(), "used twice"));
    StTensor neg = {.name = "n", .dtype = ST_F32, .ndim = 1, .shape = {-2}, .data = x};
    assert_int_equal(safetensors_write(g_path, &neg, 1, NULL, NULL, 0), -1);
    assert_non_null(strstr(err_msg(), "negative or overflowing shape"));
    assert_int_equal(access(g_path, F_OK), -1); /* nothing was written */
}

/* A file from a header string and data_len bytes of data (value = index). */
static unsigned char *make_file(const char *json, uint64_t claimed_len, size_t data_len,
                                size_t *size) {
    size_t jl = strlen(json);
    *size = 8 + jl + data_len;
    unsigned char *buf = xmalloc(*size);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(claimed_len >> (8 * i));
    memcpy(buf + 8, json, jl);
    for (size_t i = 0; i < data_len; i++) buf[8 + jl + i] = (unsigned char)i;
    return buf;
}

typedef struct {
    const char *what;
    const char *json;
    long long claimed; /* header length to store; -1 = the real one */
    size_t data_len;
    const char *expect; /* a phrase the error must contain */
} BadCase;

static void test_malformed(void **state) {
    (void)state;
    const BadCase cases[] = {
        {"too short", "", -1, 0, "too short for a safetensors file"},
        {"huge header length", "{}", 200000000, 0, "larger than the limit"},
        {"header longer than file", "{}", 4096, 0, "longer than the file"},
        {"not JSON", "{\"a\": {\"dtype\": ", -1, 0, "not valid JSON"},
        {"not an object", "[1, 2]", -1, 0, "does not start with '{'"},
        {"junk after JSON", "{}x", -1, 0, "unexpected bytes after its JSON object"},
        {"invalid UTF-8", "{\"\xff\": 1}", -1, 0, "not valid UTF-8"},
        {"entry not object", "{\"a\": 3}", -1, 0, "is not an object"},
        {"missing dtype", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", -1, 4,
         "needs a string \"dtype\""},
        {"unknown dtype", "{\"a\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 1]}}",
         -1, 1, "dtype \"Q4\", which is unknown or unsupported"},
        {"unsupported dtype", /* a dtype of the format this program does not read (F16 now is read) */
         "{\"a\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", -1, 16,
         "dtype \"F64\""},
        {"negative dim", "{\"a\": {\"dtype\": \"U8\", \"shape\": [-1], \"data_offsets\": [0, 0]}}",
         -1, 0, "non-negative integers"},
        {"fractional dim",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1.5], \"data_offsets\": [0, 1]}}", -1, 1,
         "non-negative integers"},
        {"string dim", "{\"a\": {\"dtype\": \"U8\", \"shape\": [\"2\"], \"data_offsets\": [0, 2]}}",
         -1, 2, "non-negative integers"},
        {"too many dims",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}",
         -1, 1, "9 dimensions"},
        {"shape overflow",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
         "\"data_offsets\": [0, 4]}}",
         -1, 4, "overflows"},
        {"offsets out of range",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", -1, 4,
         "[0, 8] are not a range inside the 4-byte data section"},
        {"offsets reversed",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 0]}}", -1, 4,
         "[4, 0] are not a range inside"},
        {"negative offset",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [-1, 0]}}", -1, 1,
         "data_offsets must be two non-negative integers"},
        {"three offsets",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1, 2]}}", -1, 1,
         "data_offsets must be two"},
        {"wrong byte count",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 12]}}", -1, 12,
         "span 12 bytes but F32 (2, 2) needs 16"},
        {"overlap",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
         " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
         -1, 12, "\"a\" and \"b\" overlap"},
        {"gap between tensors",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]},"
         " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}",
         -1, 6, "bytes 2 to 4 belong to no tensor"},
        {"trailing data",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}", -1, 5,
         "3 bytes after the last tensor"},
        {"duplicate tensor",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
         " \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
         -1, 2, "appears twice"},
        {"metadata not strings", "{\"__metadata__\": {\"epoch\": 3}}", -1, 0,
         "metadata value of \"epoch\" is not a string"},
        {"metadata not object", "{\"__metadata__\": [\"x\"]}", -1, 0,
         "__metadata__ must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const BadCase *c = &cases[i];
        size_t size;
        uint64_t claimed = c->claimed >= 0 ? (uint64_t)c->claimed : strlen(c->json);
        unsigned char *buf = make_file(c->json, claimed, c->data_len, &size);
        if (strcmp(c->what, "too short") == 0) size = 5;
        StFile f;
        int rc = safetensors_parse(buf, size, "bad.safetensors", &f);
        printf("  %-24s -> %s\n", c->what, rc ? err_msg() : "ACCEPTED");
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err_msg(), "bad.safetensors: "));
        if (!strstr(err_msg(), c->expect)) fail_msg("case '%s': expected '%s'", c->what, c->expect);
        assert_null(f.buf); /* nothing left allocated */
        xfree(buf);
    }

    /* The same checks through safetensors_open name the path. */
    size_t size;
    unsigned char *buf = make_file("{}", 4096, 0, &size);
    assert_int_equal(write_file_atomic(g_path, buf, size), 0);
    xfree(buf);
    StFile f;
    assert_int_equal(safetensors_open(g_path, &f), -1);
    assert_non_null(strstr(err_msg(), g_path));
    unlink(g_path);
    assert_int_equal(safetensors_open(g_path, &f), -1);
    assert_non_null(strstr(err_msg(), "no such file"));
}

static void test_valid_edge_cases(void **state) {
    (void)state;
    /* Accepted by the specification: an empty header object, null metadata, header padding
     * with any JSON whitespace, tensors listed out of offset order. */
    const char *ok[] = {
        "{}",
        "{\"__metadata__\": null}    ",
        ("{\"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [2, 4]},"
         " \"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}\n\t "),
    };
    const size_t data_len[] = {0, 0, 4};
    for (int i = 0; i < 3; i++) {
        size_t size;
        unsigned char *buf = make_file(ok[i], strlen(ok[i]), data_len[i], &size);
        StFile f;
        if (safetensors_parse(buf, size, "ok.safetensors", &f) != 0) fail_msg("%s", err_msg());
        if (i == 2) {
            assert_int_equal(f.n, 2);
            assert_string_equal(f.entries[0].name, "b");
            const uint8_t *b = safetensors_data(&f, safetensors_find(&f, "b"));
            assert_int_equal(b[0], 2);
            assert_int_equal(b[1], 3);
        }
        safetensors_close(&f);
        xfree(buf);
    }
}

/* Random corruption of a valid file must give 0 or -1, never a crash or a read outside the
 * buffer (meaningful under `make asan`). */
static void test_random_corruption(void **state) {
    (void)state;
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = (float)i;
    uint8_t u[3] = {1, 2, 3};
    StTensor ts[] = {{.name = "w", .dtype = ST_F32, .ndim = 2, .shape = {3, 4}, .data = w},
                     {.name = "u", .dtype = ST_U8, .ndim = 1, .shape = {3}, .data = u}};
    const char *k[] = {"k"}, *v[] = {"v"};
    assert_int_equal(safetensors_write(g_path, ts, 2, k, v, 1), 0);
    unsigned char *good;
    size_t n;
    assert_int_equal(read_file(g_path, 1 << 20, &good, &n), 0);
    unsigned char *buf = xmalloc(n);
    uint64_t s = 12345;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, good, n);
        int flips = 1 + iter % 4;
        for (int j = 0; j < flips; j++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (size_t)(s >> 33) % n;
            buf[pos] = (unsigned char)(s >> 20);
        }
        size_t len = iter % 7 == 0 ? (size_t)(s >> 40) % (n + 1) : n; /* sometimes truncate */
        StFile f;
        if (safetensors_parse(buf, len, "fuzz", &f) == 0) {
            /* Whatever was accepted must be self-consistent. */
            for (int t = 0; t < f.n; t++)
                assert_true(f.data_start + f.entries[t].offset + f.entries[t].bytes <= f.size);
            safetensors_close(&f);
            accepted++;
        } else {
            rejected++;
        }
    }
    printf("  3000 corrupted files: %d accepted (flips in the data), %d rejected\n", accepted,
           rejected);
    assert_true(rejected > 0);
    xfree(buf);
    xfree(good);
}

/* Bits of a float and a float from bits. */
static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static void test_half_known(void **state) {
    (void)state;
    /* float -> F16: value, expected bits (Python: struct.pack('<e', x)) */
    static const struct { float x; uint16_t h; } F16[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {-0.0f, 0x8000},
        {0.1f, 0x2e66},
        {1.0f / 3.0f, 0x3555},
        {65504.0f, 0x7bff},             /* the largest finite */
        {65519.98828125f, 0x7bff},      /* the float below the tie with 65536 */
        {65520.0f, 0x7c00},             /* the tie: to even, which is infinity */
        {0x1p-14f, 0x0400},             /* the smallest normal */
        {1023 * 0x1p-24f, 0x03ff},      /* the largest subnormal */
        {0x1p-24f, 0x0001},             /* the smallest subnormal */
        {0x1p-25f, 0x0000},             /* half of it: the tie goes to even, 0 */
        {0x1.000002p-25f, 0x0001},      /* just above half */
        {3 * 0x1p-25f, 0x0002},         /* tie between 1 and 2 units: even */
        {5 * 0x1p-26f, 0x0001},         /* 1.25 units */
        {1.0f + 0x1p-11f, 0x3c00},      /* tie between 1 and 1 + 2^-10: even */
        {1.0f + 3 * 0x1p-11f, 0x3c02},  /* tie between 1 + 2^-10 and 1 + 2^-9: even */
        {1e-10f, 0x0000},
        {-1e-10f, 0x8000},
        {1e10f, 0x7c00},
        {-1e10f, 0xfc00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
    };
    for (size_t i = 0; i < sizeof F16 / sizeof F16[0]; i++) {
        uint16_t h = safetensors_f32_to_f16(F16[i].x);
        if (h != F16[i].h) fail_msg("f16(%a) = 0x%04x, expected 0x%04x", (double)F16[i].x, h, F16[i].h);
    }
    assert_true(safetensors_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(safetensors_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(safetensors_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(safetensors_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(safetensors_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(bits_of(safetensors_f16_to_f32(0x8000)) == 0x80000000u);
    assert_true(safetensors_f16_to_f32(0x7c00) == INFINITY);
    assert_true(safetensors_f16_to_f32(0xfc00) == -INFINITY);
    assert_true(isnan(safetensors_f16_to_f32(0x7e00)) && isnan(safetensors_f16_to_f32(0x7c01)));
    uint16_t hn = safetensors_f32_to_f16(NAN), hm = safetensors_f32_to_f16(-NAN);
    assert_true((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0 && !(hn & 0x8000));
    assert_true((hm & 0x7c00) == 0x7c00 && (hm & 0x3ff) != 0 && (hm & 0x8000));
    assert_true((safetensors_f32_to_f16(from_bits(0x7f800001)) & 0x3ff) != 0); /* signalling */

    /* float -> BF16: the upper half, rounded to nearest with ties to even */
    static const struct { uint32_t x; uint16_t h; } BF[] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: the tie, to even */
        {0x3f818000, 0x3f82}, /* 1 + 3 2^-8: the tie, to even (up) */
        {0x40490fdb, 0x4049}, /* pi */
        {0xc0200000, 0xc020}, /* -2.5 */
        {0x000116c2, 0x0001}, /* 1e-40, a float subnormal */
        {0x00008000, 0x0000}, /* half the smallest BF16 subnormal: to even, 0 */
        {0x00018000, 0x0002}, /* 1.5 units: to even, 2 */
        {0x7f7fffff, 0x7f80}, /* FLT_MAX: above the last tie, infinity */
        {0x7f7f7fff, 0x7f7f}, /* below it: the largest finite BF16 */
        {0x7f800000, 0x7f80}, /* inf */
        {0xff800000, 0xff80}, /* -inf */
        {0x80000000, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof BF / sizeof BF[0]; i++) {
        uint16_t h = safetensors_f32_to_bf16(from_bits(BF[i].x));
        if (h != BF[i].h) fail_msg("bf16(0x%08x) = 0x%04x, expected 0x%04x", BF[i].x, h, BF[i].h);
    }
    assert_true(bits_of(safetensors_bf16_to_f32(0x4049)) == 0x40490000u);
    assert_true(bits_of(safetensors_bf16_to_f32(0x0001)) == 0x00010000u);
    uint16_t bn = safetensors_f32_to_bf16(from_bits(0x7f800001)); /* payload only in the low half */
    assert_true((bn & 0x7f80) == 0x7f80 && (bn & 0x7f) != 0);
    assert_true(isnan(safetensors_bf16_to_f32(bn)));
}

/* Every half value widens exactly and narrows back to itself (NaNs: to a NaN). */
static void test_half_every_value(void **state) {
    (void)state;
    for (uint32_t u = 0; u < 0x10000; u++) {
        const uint16_t h = (uint16_t)u;
        float x = safetensors_f16_to_f32(h);
        if (isnan(x)) assert_true(isnan(safetensors_f16_to_f32(safetensors_f32_to_f16(x))));
        else if (safetensors_f32_to_f16(x) != h) fail_msg("f16 0x%04x does not round-trip", h);
        float y = safetensors_bf16_to_f32(h);
        if (isnan(y)) assert_true(isnan(safetensors_bf16_to_f32(safetensors_f32_to_bf16(y))));
        else if (safetensors_f32_to_bf16(y) != h) fail_msg("bf16 0x%04x does not round-trip", h);
    }
    /* and monotonic: a float between two neighbouring halves goes to one of them */
    for (uint16_t h = 0x0000; h < 0x7bff; h++) {
        float lo = safetensors_f16_to_f32(h), hi = safetensors_f16_to_f32((uint16_t)(h + 1));
        uint16_t mid = safetensors_f32_to_f16(lo + (hi - lo) * 0.25f);
        assert_true(mid == h);
        mid = safetensors_f32_to_f16(lo + (hi - lo) * 0.75f);
        assert_true(mid == h + 1);
    }
}

/* F16 and BF16 tensors are written, laid out after the wider ones, and read as float. */
static void test_half_tensors(void **state) {
    (void)state;
    const float w[4] = {1.0f, -0.5f, 65504.0f, 0x1p-24f};
    uint16_t h16[4], hb[3];
    for (int i = 0; i < 4; i++) h16[i] = safetensors_f32_to_f16(w[i]);
    for (int i = 0; i < 3; i++) hb[i] = safetensors_f32_to_bf16(w[i]);
    const float f1 = 2.0f;
    StTensor ts[3] = {
        {.name = "h", .dtype = ST_F16, .ndim = 2, .shape = {2, 2}, .data = h16},
        {.name = "b", .dtype = ST_BF16, .ndim = 1, .shape = {3}, .data = hb},
        {.name = "f", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &f1},
    };
    assert_int_equal(safetensors_write(g_path, ts, 3, NULL, NULL, 0), 0);
    StFile f;
    assert_int_equal(safetensors_open(g_path, &f), 0);
    const StEntry *e = safetensors_find(&f, "h");
    assert_int_equal(e->dtype, ST_F16);
    assert_int_equal(e->bytes, 8);
    assert_int_equal(e->offset, 4); /* after the F32 tensor */
    assert_int_equal(safetensors_find(&f, "b")->dtype, ST_BF16);
    assert_string_equal(safetensors_dtype_name(ST_BF16), "BF16");
    assert_int_equal(safetensors_dtype_size(ST_F16), 2);
    float got[4];
    const int64_t s22[2] = {2, 2}, s3[1] = {3};
    assert_int_equal(safetensors_read_f32(&f, "h", got, 2, s22), 0);
    assert_memory_equal(got, w, sizeof w); /* every one representable */
    assert_int_equal(safetensors_read_f32(&f, "b", got, 1, s3), 0);
    assert_true(got[0] == 1.0f && got[1] == -0.5f && got[2] == 65536.0f);
    uint16_t raw[4];
    assert_int_equal(safetensors_read(&f, "h", ST_F16, raw, 2, s22), 0);
    assert_memory_equal(raw, h16, sizeof raw);
    assert_int_equal(safetensors_read(&f, "h", ST_F32, got, 2, s22), -1);
    assert_non_null(strstr(err_msg(), "is F16, expected F32"));
    assert_int_equal(safetensors_read_f32(&f, "h", got, 1, s3), -1);
    assert_non_null(strstr(err_msg(), "has shape (2, 2), expected (3)"));
    safetensors_close(&f);
    /* a BF16 tensor whose data_offsets span an odd byte count is refused */
    static const char hdr[] = "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,3]}}";
    unsigned char buf[128] = {0};
    size_t hl = sizeof hdr - 1;
    buf[0] = (unsigned char)hl;
    memcpy(buf + 8, hdr, hl);
    assert_int_equal(safetensors_parse(buf, 8 + hl + 3, "odd", &f), -1);
    assert_non_null(strstr(err_msg(), "span 3 bytes but BF16 (2) needs 4"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_edge_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_every_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_tensors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
