// Tests of engine/safetensors.c: round trips, files written by the reference
// implementation (tests/fixtures/safetensors/good, from scripts/make_st_fixtures.py),
// one crafted hostile header per validation rule, every truncation of a valid
// file, every file under tests/fixtures/safetensors/bad/, and sharded models.
#include "harness.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "util.h"

#define FIXTURES "tests/fixtures/safetensors"

// --- helpers ---------------------------------------------------------------

// A file image: 8-byte length, header text, data; malloc'd to the exact size so
// ASan catches any read past the end.
static uint8_t *make_image(const char *header, const void *data, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *buf = malloc(*len);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    if (data_len) memcpy(buf + 8 + h, data, data_len);
    return buf;
}

// Parses header + data_len zero bytes; returns 1 when accepted.
static int parse_ok(const char *header, size_t data_len, char *err) {
    uint8_t *zeros = calloc(1, data_len + 1);
    size_t len;
    uint8_t *buf = make_image(header, zeros, data_len, &len);
    st_model *m = st_parse(buf, len, "t.safetensors", err);
    st_close(m);
    free(buf);
    free(zeros);
    return m != NULL;
}

// Checks that header + data_len zero bytes is rejected with a message naming
// the label and containing want.
#define CHECK_REJECTS(header, data_len, want)                                                      \
    do {                                                                                           \
        char err_[LLM_ERR_LEN] = "";                                                               \
        CHECK_MSG(!parse_ok(header, data_len, err_), "accepted: %s", header);                      \
        CHECK_CONTAINS(err_, "t.safetensors: ");                                                   \
        CHECK_CONTAINS(err_, want);                                                                \
    } while (0)

#define CHECK_ACCEPTS(header, data_len)                                                            \
    do {                                                                                           \
        char err_[LLM_ERR_LEN] = "";                                                               \
        CHECK_MSG(parse_ok(header, data_len, err_), "rejected %s: %s", header, err_);              \
    } while (0)

static char *make_tmpdir(void) {
    char tmpl[] = "/tmp/st_test_XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

// Removes a flat directory and the files in it.
static void remove_dir(char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char *p = llm_path_join(dir, e->d_name);
        unlink(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char *p = llm_path_join(dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    free(p);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    while (d && readdir(d)) n++;
    if (d) closedir(d);
    return n - 2;
}

static float f32_at(const st_tensor *t, uint64_t i) {
    float v;
    memcpy(&v, (const char *)t->data + 4 * i, 4);
    return v;
}

static float half_at(const st_tensor *t, uint64_t i) {
    uint16_t v;
    memcpy(&v, (const char *)t->data + 2 * i, 2);
    return t->dtype == LLM_BF16 ? bf16_to_f32(v) : fp16_to_f32(v);
}

// --- round trip ------------------------------------------------------------

TEST(safetensors_roundtrip_every_dtype) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    CHECK(dir != NULL);
    char *path = llm_path_join(dir, "rt.safetensors");

    float f32[6] = {1.5f, -2.25f, 0.0f, 3e38f, -1e-30f, 7.0f};
    uint16_t f16[3] = {f32_to_fp16(1.0f), f32_to_fp16(-0.5f), f32_to_fp16(65504.0f)};
    uint16_t bf16[4] = {f32_to_bf16(1.0f), f32_to_bf16(-3.0f), f32_to_bf16(0.15625f),
                        f32_to_bf16(1e30f)};
    int8_t i8[5] = {-128, -1, 0, 1, 127};
    float scalar = 42.0f;
    st_write_tensor ts[] = {
        {"w.f32", LLM_F32, 2, {2, 3}, f32},    {"w.f16", LLM_F16, 1, {3}, f16},
        {"w.bf16", LLM_BF16, 2, {2, 2}, bf16}, {"w.i8", LLM_I8, 3, {5, 1, 1}, i8},
        {"scalar", LLM_F32, 0, {0}, &scalar},  {"empty", LLM_F16, 2, {0, 7}, NULL},
    };
    const char *meta[] = {"format", "pt", "quant", "none"};
    CHECK_MSG(st_write_file(path, ts, 6, meta, 2, err) == 0, "%s", err);
    CHECK_EQ(count_entries(dir), 1); // no .tmp left behind

    // The header length is a multiple of 8 and __metadata__ comes first.
    size_t len;
    char *raw = llm_read_file(path, &len, err);
    CHECK(raw != NULL);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(uint8_t)raw[i] << (8 * i);
    CHECK_EQ(hlen % 8, 0);
    CHECK(strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\"", 30) == 0);
    CHECK_EQ(len, 8 + hlen + sizeof f32 + sizeof f16 + sizeof bf16 + sizeof i8 + 4);
    free(raw);

    st_model *m = st_open_file(path, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        CHECK_EQ(st_count(m), 6);
        for (int i = 0; i < 6; i++) { // written order is data order is st_get order
            const st_tensor *t = st_get(m, i);
            CHECK_STREQ(t->name, ts[i].name);
            CHECK_EQ(t->dtype, ts[i].dtype);
            CHECK_EQ(t->ndim, ts[i].ndim);
            for (int d = 0; d < t->ndim; d++) CHECK_EQ(t->shape[d], ts[i].shape[d]);
            CHECK(st_find(m, ts[i].name) == t);
            if (t->nbytes) CHECK(memcmp(t->data, ts[i].data, t->nbytes) == 0);
        }
        CHECK_EQ(st_find(m, "w.f32")->numel, 6);
        CHECK_NEAR(f32_at(st_find(m, "w.f32"), 3), 3e38f, 0);
        CHECK_NEAR(half_at(st_find(m, "w.f16"), 2), 65504.0f, 0);
        CHECK_NEAR(half_at(st_find(m, "w.bf16"), 1), -3.0f, 0);
        CHECK_EQ(((const int8_t *)st_find(m, "w.i8")->data)[0], -128);
        CHECK_EQ(st_find(m, "scalar")->numel, 1);
        CHECK_EQ(st_find(m, "empty")->numel, 0);
        CHECK_EQ(st_find(m, "empty")->nbytes, 0);
        CHECK(st_get(m, 6) == NULL && st_get(m, -1) == NULL);
        CHECK(st_find(m, "missing") == NULL);
        CHECK_STREQ(st_metadata(m, "format"), "pt");
        CHECK_STREQ(st_metadata(m, "quant"), "none");
        CHECK(st_metadata(m, "other") == NULL);
        CHECK_EQ(st_data_bytes(m), sizeof f32 + sizeof f16 + sizeof bf16 + sizeof i8 + 4);
        st_close(m);
    }
    free(path);
    remove_dir(dir);
}

TEST(safetensors_roundtrip_no_tensors_no_metadata) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    char *path = llm_path_join(dir, "e.safetensors");
    CHECK_MSG(st_write_file(path, NULL, 0, NULL, 0, err) == 0, "%s", err);
    st_model *m = st_open_file(path, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        CHECK_EQ(st_count(m), 0);
        CHECK(st_find(m, "x") == NULL);
        CHECK(st_metadata(m, "format") == NULL);
        st_close(m);
    }
    free(path);
    remove_dir(dir);
}

TEST(safetensors_write_rejects_bad_input) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    char *path = llm_path_join(dir, "w.safetensors");
    float x[2] = {0};
    st_write_tensor dup[] = {{"a", LLM_F32, 1, {1}, x}, {"a", LLM_F32, 1, {1}, x + 1}};
    CHECK(st_write_file(path, dup, 2, NULL, 0, err) == -1);
    CHECK_CONTAINS(err, "duplicate tensor name 'a'");
    st_write_tensor dims[] = {{"a", LLM_F32, 9, {1, 1, 1, 1, 1, 1, 1, 1}, x}};
    CHECK(st_write_file(path, dims, 1, NULL, 0, err) == -1);
    CHECK_CONTAINS(err, "9 dims");
    st_write_tensor neg[] = {{"a", LLM_F32, 1, {-1}, x}};
    CHECK(st_write_file(path, neg, 1, NULL, 0, err) == -1);
    CHECK_CONTAINS(err, "bad shape[0]");
    st_write_tensor reserved[] = {{"__metadata__", LLM_F32, 1, {1}, x}};
    CHECK(st_write_file(path, reserved, 1, NULL, 0, err) == -1);
    CHECK_EQ(count_entries(dir), 0);

    char *nowhere = llm_path_join(dir, "no/such/dir.safetensors");
    st_write_tensor ok[] = {{"a", LLM_F32, 1, {2}, x}};
    CHECK(st_write_file(nowhere, ok, 1, NULL, 0, err) == -1);
    CHECK_CONTAINS(err, "no/such/dir.safetensors.tmp");
    free(nowhere);
    free(path);
    remove_dir(dir);
}

// --- files written by the reference -----------------------------------------

TEST(safetensors_reads_reference_dtypes) {
    char err[LLM_ERR_LEN] = "";
    st_model *m = st_open_file(FIXTURES "/good/dtypes.safetensors", err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    CHECK_EQ(st_count(m), 4);
    const st_tensor *t = st_find(m, "f32");
    CHECK(t && t->dtype == LLM_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    for (int i = 0; t && i < 6; i++) CHECK_NEAR(f32_at(t, i), i * 0.5 - 1.0, 0);
    t = st_find(m, "f16");
    const float f16[4] = {1.0f, -2.0f, 0.5f, 65504.0f};
    CHECK(t && t->dtype == LLM_F16 && t->ndim == 1 && t->shape[0] == 4);
    for (int i = 0; t && i < 4; i++) CHECK_NEAR(half_at(t, i), f16[i], 0);
    t = st_find(m, "bf16");
    const float bf16[3] = {1.0f, -2.5f, 3.140625f};
    CHECK(t && t->dtype == LLM_BF16 && t->ndim == 1 && t->shape[0] == 3);
    for (int i = 0; t && i < 3; i++) CHECK_NEAR(half_at(t, i), bf16[i], 0);
    t = st_find(m, "i8");
    const int8_t i8[4] = {-128, -1, 0, 127};
    CHECK(t && t->dtype == LLM_I8 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2);
    if (t) CHECK(memcmp(t->data, i8, 4) == 0);
    CHECK_STREQ(st_metadata(m, "format"), "pt");
    CHECK_STREQ(st_metadata(m, "note"), "fixture");
    CHECK_EQ(st_data_bytes(m), 24 + 8 + 6 + 4);
    st_close(m);
}

TEST(safetensors_reads_reference_scalars_and_empty) {
    char err[LLM_ERR_LEN] = "";
    st_model *m = st_open_file(FIXTURES "/good/scalars_empty.safetensors", err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    CHECK_EQ(st_count(m), 4);
    const st_tensor *t = st_find(m, "scalar_f32");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->nbytes == 4);
    if (t) CHECK_NEAR(f32_at(t, 0), 42.5, 0);
    t = st_find(m, "scalar_i8");
    CHECK(t && t->dtype == LLM_I8 && t->ndim == 0 && t->numel == 1);
    if (t) CHECK_EQ(*(const int8_t *)t->data, -7);
    t = st_find(m, "empty_f16");
    CHECK(t && t->dtype == LLM_F16 && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4);
    CHECK(t && t->numel == 0 && t->nbytes == 0);
    t = st_find(m, "empty_i8");
    CHECK(t && t->ndim == 1 && t->numel == 0);
    CHECK(st_metadata(m, "format") == NULL);
    st_close(m);
}

TEST(safetensors_reads_reference_many) {
    char err[LLM_ERR_LEN] = "";
    st_model *m = st_open_file(FIXTURES "/good/many.safetensors", err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    CHECK_EQ(st_count(m), 20);
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d.w", i);
        const st_tensor *t = st_find(m, name);
        CHECK_MSG(t != NULL, "%s missing", name);
        if (!t) continue;
        CHECK_EQ(t->shape[0], i + 1);
        CHECK_NEAR(f32_at(t, 0), i, 0);
        CHECK_NEAR(f32_at(t, (uint64_t)i), i, 0);
    }
    CHECK(st_find(m, "layers.20.w") == NULL && st_find(m, "") == NULL);
    st_close(m);
}

TEST(safetensors_open_dir_reference_shards) {
    char err[LLM_ERR_LEN] = "";
    st_model *m = st_open_dir(FIXTURES "/good/sharded", err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    CHECK_EQ(st_count(m), 4);
    const st_tensor *t = st_find(m, "embed.weight");
    CHECK(t && t->shape[0] == 2 && t->shape[1] == 4);
    if (t) CHECK_NEAR(f32_at(t, 7), 7.0, 0);
    t = st_find(m, "layers.0.w");
    if (t) CHECK_NEAR(half_at(t, 1), -1.5, 0);
    t = st_find(m, "layers.1.w");
    if (t) CHECK_EQ(((const int8_t *)t->data)[2], 9);
    t = st_find(m, "norm.weight");
    if (t) CHECK_NEAR(f32_at(t, 3), 1.0, 0);
    CHECK_STREQ(st_metadata(m, "format"), "pt");
    CHECK_EQ(st_data_bytes(m), 32 + 4 + 3 + 16);
    st_close(m);
}

// --- one hostile header per rule --------------------------------------------

#define T8 "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"

TEST(safetensors_rejects_short_file) {
    char err[LLM_ERR_LEN] = "";
    const uint8_t b[7] = {0};
    for (size_t n = 0; n < 8; n++) {
        CHECK(st_parse(b, n, "t.safetensors", err) == NULL);
        CHECK_CONTAINS(err, "t.safetensors: file too small");
    }
}

TEST(safetensors_rejects_header_length) {
    char err[LLM_ERR_LEN] = "";
    uint8_t b[16] = {0};
    uint32_t big = ST_MAX_HEADER_BYTES + 1;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(big >> (8 * i));
    CHECK(st_parse(b, sizeof b, "t.safetensors", err) == NULL);
    CHECK_CONTAINS(err, "exceeds the limit of 100000000 bytes");
    memset(b, 0xff, 8); // 2^64 - 1: no overflow in the size arithmetic
    CHECK(st_parse(b, sizeof b, "t.safetensors", err) == NULL);
    CHECK_CONTAINS(err, "exceeds the limit");
    memset(b, 0, 8);
    b[0] = 9; // one byte more than the file holds
    memcpy(b + 8, "{}      ", 8);
    CHECK(st_parse(b, sizeof b, "t.safetensors", err) == NULL);
    CHECK_CONTAINS(err, "header length 9 exceeds the file size - 8 (8 bytes)");
    b[0] = 0;
    CHECK(st_parse(b, 8, "t.safetensors", err) == NULL);
    CHECK_CONTAINS(err, "not valid JSON");
}

TEST(safetensors_rejects_bad_json) {
    CHECK_REJECTS("{\"a\":{" T8 "}", 8, "header is not valid JSON");
    CHECK_REJECTS("{\"a\":{" T8 "}}x", 8, "header is not valid JSON");
    CHECK_REJECTS("{\"a\":{" T8 "},}", 8, "header is not valid JSON");
    CHECK_REJECTS("[1, 2]", 0, "header is not a JSON object");
    CHECK_REJECTS("\"str\"", 0, "header is not a JSON object");
    CHECK_REJECTS("{\"\xff\":{" T8 "}}", 8, "not valid UTF-8 (byte 2)");
    CHECK_REJECTS("{\"\xc0\xaf\":{" T8 "}}", 8, "not valid UTF-8");     // overlong '/'
    CHECK_REJECTS("{\"\xed\xa0\x80\":{" T8 "}}", 8, "not valid UTF-8"); // a surrogate
    CHECK_REJECTS("\xef\xbb\xbf{\"a\":{" T8 "}}", 8, "byte-order mark");
    CHECK_REJECTS("{\"a\tb\":{" T8 "}}", 8, "control character 0x09 at byte 3");
    CHECK_REJECTS("{\x01\"a\":{" T8 "}}", 8, "control character 0x01");
    CHECK_REJECTS("{\"a\\u0000b\":{" T8 "}}", 8, "\\u0000");
    CHECK_REJECTS("{\"\\ud800\":{" T8 "}}", 8, "not valid JSON"); // lone surrogate escape
}

TEST(safetensors_rejects_bad_entry) {
    CHECK_REJECTS("{\"a\":3}", 0, "tensor 'a' is not an object");
    CHECK_REJECTS("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'a' has no dtype");
    CHECK_REJECTS("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8,
                  "tensor 'a' has no shape");
    CHECK_REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'a' has no data_offsets");
    CHECK_REJECTS("{\"a\":{\"shape\":[2]," T8 "}}", 8, "tensor 'a' has two 'shape' fields");
}

TEST(safetensors_rejects_bad_dtype) {
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
                  "unsupported dtype 'F64' for tensor 'x' (supported: F32 F16 BF16 I8)");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  "unsupported dtype 'f32'");
    CHECK_REJECTS("{\"x\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                  "tensor 'x' dtype is not a string");
}

TEST(safetensors_rejects_bad_shape) {
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
                  "tensor 'x' shape is not an array");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,8]}}", 8,
                  "tensor 'x' shape is not an array");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"I8\",\"shape\":[1,1,1,1,1,1,1,1,8],\"data_offsets\":[0,8]}}",
                  8, "tensor 'x' has 9 dims (at most 8 supported)");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[1,-2],\"data_offsets\":[0,8]}}", 8,
                  "tensor 'x' shape[1] is not a non-negative integer");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
                  "shape[0] is not a non-negative integer");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
                  "shape[0] is not a non-negative integer");
    // 2^53 + 2 is not held exactly by a double: rejected, not rounded.
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[9007199254740994],\"data_offsets\":[0,8]}}",
                  8, "shape[0] is not a non-negative integer");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
                  "shape[0] is not a non-negative integer");
}

TEST(safetensors_rejects_size_overflow) {
    // 2^40 x 2^40 elements overflow 64 bits.
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                  "\"data_offsets\":[0,8]}}",
                  8, "tensor 'x' element count overflows");
    // 2^31 x 2^31 = 2^62 elements fit, but x 4 bytes does not.
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],"
                  "\"data_offsets\":[0,8]}}",
                  8, "tensor 'x' byte size overflows");
    // A zero dimension makes the product 0 whatever the other dims are.
    CHECK_ACCEPTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740992,9007199254740992],"
                  "\"data_offsets\":[0,0]}}",
                  0);
}

TEST(safetensors_rejects_bad_offsets) {
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
                  "tensor 'x' data_offsets is not a [begin, end] pair of non-negative integers");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
                  "not a [begin, end] pair");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0,\"b\":8}}}", 8,
                  "not a [begin, end] pair");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
                  "not a [begin, end] pair");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8,
                  "not a [begin, end] pair");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
                  "tensor 'x' data_offsets [8, 0] end before they begin");
    CHECK_REJECTS(
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
        "t.safetensors: tensor 'x' data_offsets [0, 16] exceed the data buffer (8 bytes)");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9007199254740992,"
                  "9007199254740992]}}",
                  8, "exceed the data buffer");
    CHECK_REJECTS("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                  "tensor 'x' data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12");
}

TEST(safetensors_rejects_bad_tiling) {
    CHECK_REJECTS("{\"a\":{" T8 "},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, "tensor 'b' data_offsets [4, 8] overlap another tensor");
    CHECK_REJECTS(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        12, "tensor 'b' data_offsets [8, 12] leave a gap: the previous tensor ends at byte 4");
    CHECK_REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                  "tensor 'a' data_offsets [4, 8] leave a gap: the previous tensor ends at byte 0");
    CHECK_REJECTS("{\"a\":{" T8 "}}", 9,
                  "tensors end at byte 8 but the data buffer has 9 bytes (trailing bytes)");
    CHECK_REJECTS("{}", 1, "tensors end at byte 0 but the data buffer has 1 bytes");
    // A zero-size tensor must sit where the previous tensor ends, as in the reference.
    CHECK_REJECTS("{\"a\":{" T8 "},\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                  8, "tensor 'z' data_offsets [4, 4] overlap another tensor");
    CHECK_REJECTS("{\"a\":{" T8 "},\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                  "\"y\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}",
                  9, "tensor 'y' data_offsets [9, 9] leave a gap");
}

TEST(safetensors_rejects_duplicate_name) {
    // The reference keeps the last of two identical entries; we refuse both forms.
    CHECK_REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, "duplicate tensor name 'a'");
    CHECK_REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                  0, "duplicate tensor name 'a'");
}

TEST(safetensors_rejects_bad_metadata) {
    CHECK_REJECTS("{\"__metadata__\":[],\"a\":{" T8 "}}", 8, "__metadata__ is not an object");
    CHECK_REJECTS("{\"__metadata__\":\"x\",\"a\":{" T8 "}}", 8, "__metadata__ is not an object");
    CHECK_REJECTS("{\"__metadata__\":{\"k\":1},\"a\":{" T8 "}}", 8,
                  "__metadata__ value of 'k' is not a string");
    CHECK_REJECTS("{\"__metadata__\":{\"k\":{}},\"a\":{" T8 "}}", 8,
                  "value of 'k' is not a string");
    CHECK_REJECTS("{\"__metadata__\":{},\"a\":{" T8 "},\"__metadata__\":{}}", 8,
                  "header has two __metadata__ entries");
}

// What the reference accepts, we accept too.
TEST(safetensors_accepts_reference_edge_cases) {
    CHECK_ACCEPTS("{}", 0);
    CHECK_ACCEPTS(" \t\r\n{\"a\":{" T8 "}}  \n ", 8);        // whitespace around the object
    CHECK_ACCEPTS("{\"\":{" T8 "}}", 8);                     // an empty name
    CHECK_ACCEPTS("{\"a\":{" T8 ",\"extra\":[1.5,{}]}}", 8); // unknown fields are ignored
    CHECK_ACCEPTS("{\"__metadata__\":null,\"a\":{" T8 "}}", 8);
    CHECK_ACCEPTS("{\"__metadata__\":{},\"a\":{" T8 "}}", 8);
    CHECK_ACCEPTS("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},\"a\":{" T8
                  "},\"y\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[8,8]},"
                  "\"w\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[8,8]}}",
                  8);
    CHECK_ACCEPTS("{\"\\u00e9\\ud83d\\ude00\":{" T8 "}}", 8); // escapes, a surrogate pair
    CHECK_ACCEPTS("{\"\xc3\xa9\xf0\x9f\x98\x80\":{" T8 "}}", 8);

    // Tensors listed out of order come back in data order; a repeated metadata
    // key keeps its last value, as in the reference.
    char err[LLM_ERR_LEN] = "";
    size_t len;
    uint8_t data[12] = {0};
    data[8] = 1;
    uint8_t *buf = make_image("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                              "\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"},\"a\":{" T8 "}}",
                              data, sizeof data, &len);
    st_model *m = st_parse(buf, len, "t", err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        CHECK_STREQ(st_get(m, 0)->name, "a");
        CHECK_STREQ(st_get(m, 1)->name, "b");
        CHECK(st_find(m, "b")->data == buf + len - 4);
        CHECK_EQ(*(const uint8_t *)st_find(m, "b")->data, 1);
        CHECK_STREQ(st_metadata(m, "k"), "w");
        CHECK_EQ(st_data_bytes(m), 12);
        st_close(m);
    }
    free(buf);
}

// --- truncation and hostile files on disk -----------------------------------

TEST(safetensors_rejects_every_truncation) {
    char err[LLM_ERR_LEN] = "";
    size_t full;
    char *file = llm_read_file(FIXTURES "/good/dtypes.safetensors", &full, err);
    CHECK_MSG(file != NULL, "%s", err);
    if (!file) return;
    char *dir = make_tmpdir();
    char *path = llm_path_join(dir, "cut.safetensors");
    for (size_t n = 0; n <= full; n++) {
        uint8_t *buf = malloc(n ? n : 1); // exact size: ASan sees any over-read
        memcpy(buf, file, n);
        st_model *m = st_parse(buf, n, "cut", err);
        // The data buffer must be covered exactly, so only the whole file parses.
        CHECK_MSG((m != NULL) == (n == full), "length %zu of %zu: %s", n, full, m ? "ok" : err);
        if (m) CHECK_EQ(st_data_bytes(m), 42);
        st_close(m);
        free(buf);

        FILE *f = fopen(path, "wb");
        fwrite(file, 1, n, f);
        fclose(f);
        m = st_open_file(path, err);
        CHECK_MSG((m != NULL) == (n == full), "file length %zu: %s", n, m ? "ok" : err);
        if (!m) CHECK_CONTAINS(err, path);
        st_close(m);
    }
    free(path);
    remove_dir(dir);
    free(file);
}

// Why each hand-made file under bad/ must fail (scripts/make_st_fixtures.py);
// other files there are fuzzer finds and need only fail cleanly.
static const struct {
    const char *file, *reason;
} bad_reasons[] = {
    {"empty", "file too small (0 bytes"},
    {"short_length", "file too small (3 bytes"},
    {"header_len_zero", "not valid JSON"},
    {"header_too_large", "exceeds the limit"},
    {"header_past_eof", "exceeds the file size - 8"},
    {"header_not_json", "not valid JSON"},
    {"header_not_object", "not a JSON object"},
    {"header_bad_utf8", "not valid UTF-8"},
    {"header_bom", "byte-order mark"},
    {"header_control_char", "control character"},
    {"header_trailing_nul", "control character 0x00"},
    {"tensor_not_object", "is not an object"},
    {"missing_dtype", "has no dtype"},
    {"missing_shape", "has no shape"},
    {"missing_offsets", "has no data_offsets"},
    {"duplicate_field", "two 'dtype' fields"},
    {"unknown_dtype", "unsupported dtype 'Q4'"},
    {"dtype_not_string", "dtype is not a string"},
    {"shape_not_array", "shape is not an array"},
    {"shape_negative", "not a non-negative integer"},
    {"shape_fraction", "not a non-negative integer"},
    {"shape_overflow", "overflows"},
    {"offsets_three", "not a [begin, end] pair"},
    {"offsets_strings", "not a [begin, end] pair"},
    {"offsets_reversed", "end before they begin"},
    {"offsets_past_end", "exceed the data buffer"},
    {"size_mismatch", "needs 12"},
    {"overlap", "overlap"},
    {"gap", "leave a gap"},
    {"not_from_zero", "leave a gap"},
    {"trailing_bytes", "trailing bytes"},
    {"data_without_tensors", "trailing bytes"},
    {"zero_size_inside", "overlap"},
    {"zero_size_past_end", "exceed the data buffer"},
    {"duplicate_name", "duplicate tensor name 'a'"},
    {"metadata_not_object", "__metadata__ is not an object"},
    {"metadata_non_string", "is not a string"},
    {"metadata_twice", "two __metadata__"},
};

TEST(safetensors_rejects_every_bad_fixture) {
    const char *dir = FIXTURES "/bad";
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s (run from the repository root)", dir);
    if (!d) return;
    int n_files = 0, n_reasons = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char err[LLM_ERR_LEN] = "", err2[LLM_ERR_LEN] = "";
        char *path = llm_path_join(dir, e->d_name);
        n_files++;
        st_model *m = st_open_file(path, err);
        CHECK_MSG(m == NULL, "%s was accepted", path);
        st_close(m);
        CHECK_CONTAINS(err, path);

        size_t len;
        char *text = llm_read_file(path, &len, err2);
        uint8_t *buf = malloc(len ? len : 1); // exact size, unlike llm_read_file's
        memcpy(buf, text, len);
        m = st_parse(buf, len, path, err2);
        CHECK_MSG(m == NULL, "%s was accepted by st_parse", path);
        st_close(m);
        CHECK_STREQ(err2, err); // one verdict, whether mapped or in memory
        free(buf);
        free(text);

        for (size_t i = 0; i < sizeof bad_reasons / sizeof *bad_reasons; i++) {
            size_t k = strlen(bad_reasons[i].file);
            if (!strncmp(e->d_name, bad_reasons[i].file, k) &&
                !strcmp(e->d_name + k, ".safetensors")) {
                CHECK_CONTAINS(err, bad_reasons[i].reason);
                n_reasons++;
            }
        }
        free(path);
    }
    closedir(d);
    CHECK_EQ(n_reasons, (int)(sizeof bad_reasons / sizeof *bad_reasons));
    CHECK(n_files >= n_reasons);
}

TEST(safetensors_open_file_errors) {
    char err[LLM_ERR_LEN] = "";
    CHECK(st_open_file("tests/fixtures/safetensors/no-such.safetensors", err) == NULL);
    CHECK_CONTAINS(err, "no-such.safetensors: No such file or directory");
    CHECK(st_open_file(FIXTURES, err) == NULL);
    CHECK_CONTAINS(err, "not a regular file");
}

// --- directories -------------------------------------------------------------

// Writes a shard holding the named 4-byte F32 tensors, the k-th with value k.
static void write_shard(const char *dir, const char *file, const char *const *names, int n) {
    char err[LLM_ERR_LEN] = "";
    st_write_tensor ts[8];
    float vals[8];
    for (int i = 0; i < n; i++) {
        vals[i] = (float)i;
        ts[i] = (st_write_tensor){names[i], LLM_F32, 1, {1}, &vals[i]};
    }
    char *p = llm_path_join(dir, file);
    const char *meta[] = {"shard", file};
    CHECK_MSG(st_write_file(p, ts, n, meta, 1, err) == 0, "%s", err);
    free(p);
}

#define INDEX_HEAD "{\"metadata\": {\"total_size\": 16}, \"weight_map\": {"

TEST(safetensors_open_dir_single_file) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    const char *names[] = {"a", "b"};
    write_shard(dir, "model.safetensors", names, 2);
    // model.safetensors wins over an index (here a broken one).
    write_text(dir, "model.safetensors.index.json", "not json");
    st_model *m = st_open_dir(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        CHECK_EQ(st_count(m), 2);
        CHECK_STREQ(st_metadata(m, "shard"), "model.safetensors");
        st_close(m);
    }
    remove_dir(dir);
}

TEST(safetensors_open_dir_sharded) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    const char *s1[] = {"embed", "l0.w"}, *s2[] = {"l1.w", "norm"};
    write_shard(dir, "model-00002-of-00002.safetensors", s2, 2);
    write_shard(dir, "model-00001-of-00002.safetensors", s1, 2);
    write_text(dir, "model.safetensors.index.json",
               INDEX_HEAD "\"embed\": \"model-00001-of-00002.safetensors\", "
                          "\"norm\": \"model-00002-of-00002.safetensors\", "
                          "\"l1.w\": \"model-00002-of-00002.safetensors\", "
                          "\"l0.w\": \"model-00001-of-00002.safetensors\"}}");
    st_model *m = st_open_dir(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        CHECK_EQ(st_count(m), 4);
        CHECK_STREQ(st_get(m, 0)->name, "embed"); // shards in name order
        CHECK_STREQ(st_get(m, 3)->name, "norm");
        CHECK_NEAR(f32_at(st_find(m, "norm"), 0), 1.0, 0);
        CHECK_NEAR(f32_at(st_find(m, "l0.w"), 0), 1.0, 0);
        CHECK_NEAR(f32_at(st_find(m, "l1.w"), 0), 0.0, 0);
        CHECK_STREQ(st_metadata(m, "shard"), "model-00001-of-00002.safetensors");
        CHECK_EQ(st_data_bytes(m), 16);
        st_close(m);
    }
    remove_dir(dir);
}

TEST(safetensors_open_dir_errors) {
    char err[LLM_ERR_LEN] = "";
    char *dir = make_tmpdir();
    CHECK(st_open_dir(dir, err) == NULL);
    char want[256];
    snprintf(want, sizeof want, "%s: no model.safetensors or model.safetensors.index.json", dir);
    CHECK_STREQ(err, want);

    const char *s1[] = {"a", "b"}, *s2[] = {"c", "b"};
    write_shard(dir, "s1.safetensors", s1, 2);
    write_shard(dir, "s2.safetensors", s2, 2);
    const struct {
        const char *index, *want;
    } cases[] = {
        {"[]", "no \"weight_map\" object"},
        {"{\"weight_map\": {}}", "no \"weight_map\" object"},
        {"{\"weight_map\": {\"a\": 1}}", "weight_map entry for 'a' is not a file name"},
        {"{\"weight_map\": {\"a\": \"../s1.safetensors\"}}", "is not a file name"},
        {"{\"weight_map\": {\"a\": \"s1.safetensors\", \"x\": \"s3.safetensors\"}}",
         "s3.safetensors: shard listed in model.safetensors.index.json is missing"},
        {"{\"weight_map\": {\"a\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}}",
         "tensor 'b' is in both "},
        {"{\"weight_map\": {\"a\": \"s1.safetensors\", \"zz\": \"s1.safetensors\"}}",
         "tensor 'zz' is not in "},
        {"{weight_map", "model.safetensors.index.json: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_text(dir, "model.safetensors.index.json", cases[i].index);
        st_model *m = st_open_dir(dir, err);
        CHECK_MSG(m == NULL, "accepted %s", cases[i].index);
        st_close(m);
        CHECK_CONTAINS(err, cases[i].want);
    }

    // A tensor found in another shard than the index says.
    const char *s3[] = {"d"};
    char *p = llm_path_join(dir, "s2.safetensors");
    unlink(p);
    free(p);
    write_shard(dir, "s2.safetensors", s3, 1);
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", "
               "\"d\": \"s2.safetensors\"}}");
    CHECK(st_open_dir(dir, err) == NULL);
    CHECK_CONTAINS(err, "tensor 'b' is listed in s2.safetensors but found in ");
    CHECK_CONTAINS(err, "s1.safetensors");

    // A hostile shard: its own error comes through.
    write_text(dir, "s2.safetensors", "garbage!garbage!");
    CHECK(st_open_dir(dir, err) == NULL);
    CHECK_CONTAINS(err, "s2.safetensors: header length");
    remove_dir(dir);
}
