// Unit tests of tokenizer loading, encoding, decoding and streaming. The
// expected ids come from the reference (`tokenizers` 0.23.3); the token-for-
// token comparison over the whole corpus is tests/integration/
// test_tokenizer_parity.py. Tests of real tokenizers skip when
// ../shared/tokenizers is absent.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

#define TINY "tests/fixtures/tokenizer/tiny"
#define SHARED "../shared/tokenizers/"

static tokenizer *load_or_skip(const char *path) {
    char err[LLM_ERR_LEN] = "";
    if (!llm_file_exists(path)) {
        harness_skip("tokenizer not present");
        return NULL;
    }
    tokenizer *t = tok_load(path, err);
    CHECK_MSG(t != NULL, "tok_load(%s): %s", path, err);
    return t;
}

// Encodes s and compares with want[0..n).
static void check_encode(const tokenizer *t, const char *s, size_t len, int add_special,
                         const int32_t *want, size_t n) {
    char err[LLM_ERR_LEN];
    int32_t *ids = NULL;
    size_t got = 0;
    CHECK_EQ(tok_encode(t, s, len, add_special, &ids, &got, err), 0);
    int same = got == n && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK_MSG(same, "encode(\"%s\"): %zu ids, want %zu (first %d vs %d)", s, got, n,
              got ? ids[0] : -1, n ? want[0] : -1);
    free(ids);
}

#define ENCODES(t, s, special, ...)                                                                \
    do {                                                                                           \
        static const int32_t want_[] = {__VA_ARGS__};                                              \
        check_encode(t, s, strlen(s), special, want_, sizeof want_ / sizeof want_[0]);             \
    } while (0)

static void check_decode(const tokenizer *t, const int32_t *ids, size_t n, int skip,
                         const char *want) {
    char err[LLM_ERR_LEN];
    size_t len;
    char *s = tok_decode(t, ids, n, skip, &len, err);
    CHECK_STREQ(s, want);
    if (s) CHECK_EQ(len, strlen(want));
    free(s);
}

#define DECODES(t, skip, want, ...)                                                                \
    do {                                                                                           \
        static const int32_t ids_[] = {__VA_ARGS__};                                               \
        check_decode(t, ids_, sizeof ids_ / sizeof ids_[0], skip, want);                           \
    } while (0)

// Streams ids; every piece must be valid UTF-8 and all of them together must
// equal tok_decode. Returns the number of non-empty pieces.
static size_t check_stream(const tokenizer *t, const int32_t *ids, size_t n, int skip) {
    char err[LLM_ERR_LEN];
    tok_stream *s = tok_stream_create(t, skip, err);
    CHECK(s != NULL);
    if (!s) return 0;
    tok_buf all = {0};
    size_t pieces = 0;
    for (int round = 0; round < 2; round++) { // the second round reuses the stream
        all.len = 0;
        pieces = 0;
        for (size_t i = 0; i <= n; i++) {
            size_t len;
            const char *p =
                i < n ? tok_stream_push(s, ids[i], &len, err) : tok_stream_flush(s, &len, err);
            CHECK(p != NULL);
            if (!p) break;
            CHECK_MSG(utf8_valid(p, len), "piece %zu is not valid UTF-8", i);
            pieces += len > 0;
            tok_buf_put(&all, p, len);
        }
        size_t len;
        char *whole = tok_decode(t, ids, n, skip, &len, err);
        CHECK_MSG(whole && all.len == len && (!len || memcmp(all.p, whole, len) == 0),
                  "streamed pieces differ from the whole decode (%zu vs %zu bytes)", all.len, len);
        free(whole);
    }
    tok_buf_free(&all);
    tok_stream_destroy(s);
    return pieces;
}

TEST(tok_load_errors_name_the_problem) {
    static const struct {
        const char *file, *msg;
    } cases[] = {
        {"unknown_regex", "Split regex \\w+|\\s+ is none of the known pre-tokenizer regexes"},
        {"unknown_model", "model type \"WordPiece\" is not supported"},
        {"merge_not_in_vocab", "uses \"zz\", which is not in the vocab"},
        {"bad_merge_form", "merge 0 is neither"},
        {"unknown_decoder", "decoder type \"CTC\""},
        {"unknown_normalizer", "normalizer type \"NFKC\""},
        {"negative_id", "bad id"},
        {"unk_not_in_vocab", "unk_token \"<unk>\" is not in the vocab"},
        {"not_json", "not valid JSON"},
        {"invalid_utf8", "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256], err[LLM_ERR_LEN] = "";
        snprintf(path, sizeof path, "tests/fixtures/tokenizer/bad/%s.json", cases[i].file);
        tokenizer *t = tok_load(path, err);
        CHECK_MSG(t == NULL, "%s loaded", path);
        tok_free(t);
        CHECK_CONTAINS(err, cases[i].msg);
        CHECK_CONTAINS(err, path);
    }
    char err[LLM_ERR_LEN] = "";
    CHECK(tok_load("tests/fixtures/tokenizer/no-such-dir", err) == NULL);
    CHECK_CONTAINS(err, "no-such-dir");
}

// The tiny fixture: SentencePiece-style (Prepend + Replace normalizer),
// byte_fallback, <s> template, Replace/ByteFallback/Fuse/Strip decoder.
TEST(tok_tiny_spm_encode_decode) {
    tokenizer *t = load_or_skip(TINY "/tokenizer.json");
    if (!t) return;
    ENCODES(t, "ab abc", 1, 1, 259, 264, 259, 267);
    ENCODES(t, "ab abc", 0, 259, 264, 259, 267);
    ENCODES(t, "abcab  c", 1, 1, 259, 267, 264, 268, 262);
    ENCODES(t, "x \xC3\xA9", 1, 1, 259, 123, 259, 198, 172);
    ENCODES(t, "\xE6\x97\xA5", 1, 1, 259, 233, 154, 168);
    ENCODES(t, "<s>ab</s>", 1, 1, 1, 259, 264, 2);
    ENCODES(t, "", 1, 1);
    check_encode(t, "", 0, 0, NULL, 0);
    DECODES(t, 0, "<s> x \xC3\xA9", 1, 259, 123, 259, 198, 172);
    DECODES(t, 1, "x \xC3\xA9", 1, 259, 123, 259, 198, 172);
    DECODES(t, 1, "ab", 1, 1, 259, 264, 2);
    // A run of byte tokens that is not UTF-8 gives one U+FFFD per byte.
    DECODES(t, 0, "\xEF\xBF\xBD\xEF\xBF\xBD\x61\x62", 198, 3 + 0x41 + 0x80, 264);
    // Ids that name no token are skipped.
    DECODES(t, 0, "ab", -5, 264, 100000);
    CHECK_EQ(tok_vocab_size(t), 269);
    CHECK_STREQ(tok_id_to_token(t, 259), "\xE2\x96\x81");
    CHECK(tok_id_to_token(t, 269) == NULL);
    CHECK(tok_id_to_token(t, -1) == NULL);
    CHECK_EQ(tok_token_to_id(t, "<s>"), 1);
    CHECK_EQ(tok_token_to_id(t, "abc"), 267);
    CHECK_EQ(tok_token_to_id(t, "nope"), -1);
    CHECK(tok_is_special(t, 2));
    CHECK(!tok_is_special(t, 264));
    tok_free(t);
}

TEST(tok_tiny_unk_fused_and_not) {
    tokenizer *fused = load_or_skip(TINY "/unk_fused.json");
    tokenizer *unfused = load_or_skip(TINY "/unk_unfused.json");
    if (fused) {
        ENCODES(fused, "xyz ab", 1, 1, 259, 0, 259, 264);
        ENCODES(fused, "ab\xE6\x97\xA5\xE6\x9C\xAC\x63", 1, 1, 259, 264, 0, 262);
    }
    if (unfused) {
        ENCODES(unfused, "xyz ab", 1, 1, 259, 0, 0, 0, 259, 264);
        ENCODES(unfused, "ab\xE6\x97\xA5\xE6\x9C\xAC\x63", 1, 1, 259, 264, 0, 0, 262);
    }
    tok_free(fused);
    tok_free(unfused);
}

TEST(tok_invalid_utf8_input_reads_as_replacement_chars) {
    tokenizer *t = load_or_skip(TINY "/tokenizer.json");
    if (!t) return;
    // Each bad byte is one U+FFFD, which byte_fallback spells EF BF BD.
    ENCODES(t, "a\xFF", 0, 263, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD);
    ENCODES(t, "\xE2\x82", 0, 259, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD, 3 + 0xEF, 3 + 0xBF, 3 + 0xBD);
    static const char raw[] = "\x00\x80\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80\xFE\xFF";
    int32_t *ids;
    size_t n;
    char err[LLM_ERR_LEN];
    CHECK_EQ(tok_encode(t, raw, sizeof raw - 1, 1, &ids, &n, err), 0);
    CHECK_EQ(n, 2 + 1 + 12 * 3); // <s>, U+2581, NUL byte, 12 bad bytes of 3 byte tokens each
    free(ids);
    tok_free(t);
}

TEST(tok_llama3_encode_decode) {
    tokenizer *t = load_or_skip(SHARED "llama3/tokenizer.json");
    if (!t) return;
    ENCODES(t, "Hello world", 1, 9906, 1917);
    static const char mixed[] = "It's 12345 <|im_start|>\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E "
                                "\xF0\x9F\x98\x80\n\n";
    ENCODES(t, mixed, 1, 2181, 596, 220, 4513, 1774, 83739, 318, 5011, 91, 29, 102433, 102158,
            91416, 271);
    ENCODES(t, "<|begin_of_text|>Hello", 0, 128000, 9906);
    DECODES(t, 0, "<|begin_of_text|>Hello", 128000, 9906);
    DECODES(t, 1, "Hello", 128000, 9906);
    // 😀 is two tokens; the first alone is a cut-short sequence.
    DECODES(t, 0, "\xEF\xBF\xBD", 76460);
    DECODES(t, 0, "\xF0\x9F\x98\x80", 76460, 222);
    static const int32_t emoji[] = {9906, 76460, 222, 76460, 76460, 222, 1917};
    CHECK_EQ(check_stream(t, emoji, 7, 0), 4); // Hello, 😀, �😀, world
    CHECK_EQ(tok_vocab_size(t), 128256);
    CHECK_EQ(tok_token_to_id(t, "<|begin_of_text|>"), 128000);
    CHECK_EQ(tok_token_to_id(t, "Hello"), 9906);
    CHECK_STREQ(tok_id_to_token(t, 128009), "<|eot_id|>");
    CHECK(tok_is_special(t, 128009));
    tok_free(t);
}

TEST(tok_qwen3_nfc_and_digits) {
    tokenizer *t = load_or_skip(SHARED "qwen3/tokenizer.json");
    if (!t) return;
    ENCODES(t, "Hello world", 1, 9707, 1879);
    // NFC: e + combining acute encodes as é.
    int32_t *a, *b;
    size_t na, nb;
    char err[LLM_ERR_LEN];
    CHECK_EQ(tok_encode(t, "cafe\xCC\x81", 6, 1, &a, &na, err), 0);
    CHECK_EQ(tok_encode(t, "caf\xC3\xA9", 5, 1, &b, &nb, err), 0);
    CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    ENCODES(t, "12345", 1, 16, 17, 18, 19, 20);
    tok_free(t);
}

TEST(tok_llama2_spm_byte_fallback_stream) {
    tokenizer *t = load_or_skip(SHARED "llama2-spm/tokenizer.json");
    if (!t) return;
    ENCODES(t, "Hello world", 1, 1, 22557, 1526);
    ENCODES(t, "<s>Hi</s>  there", 1, 1, 1, 15359, 2, 259, 736);
    DECODES(t, 0, "<s> Hello world", 1, 22557, 1526);
    // Byte tokens (ids 3..258 are <0x00>..<0xFF>): 日 as three bytes, then a run
    // that is not UTF-8.
    static const int32_t ids[] = {1,    22557,    3 + 0xE6, 3 + 0x97, 3 + 0xA5,
                                  1526, 3 + 0xE6, 3 + 0x41, 22557,    3 + 0xC3};
    check_stream(t, ids, 10, 0);
    check_stream(t, ids, 10, 1);
    tok_free(t);
}

// Random ids, many of them byte tokens: streams must still agree with
// tok_decode and never emit broken UTF-8.
TEST(tok_stream_random_ids) {
    static const char *paths[] = {TINY "/tokenizer.json", SHARED "llama3/tokenizer.json",
                                  SHARED "llama2-spm/tokenizer.json"};
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (size_t k = 0; k < 3; k++) {
        if (!llm_file_exists(paths[k])) continue;
        char err[LLM_ERR_LEN];
        tokenizer *t = tok_load(paths[k], err);
        CHECK(t != NULL);
        if (!t) continue;
        size_t vocab = tok_vocab_size(t);
        for (int trial = 0; trial < 30; trial++) {
            int32_t ids[40];
            for (int i = 0; i < 40; i++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                uint32_t r = (uint32_t)(rng >> 33);
                // mostly low ids (bytes, byte-level single characters), some anything
                ids[i] = (int32_t)(r % 4 ? r % 300 : r % (vocab + 10));
            }
            check_stream(t, ids, 40, trial & 1);
        }
        tok_free(t);
    }
}

TEST(tok_long_cjk_run_is_one_word) {
    tokenizer *t = load_or_skip(SHARED "llama3/tokenizer.json");
    if (!t) return;
    // 60,000 CJK characters with no spaces: one pre-tokenized word for
    // Llama-3's regex (180 KB). The BPE merge is O(n log n).
    size_t n = 60000;
    char *s = malloc(3 * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = 0x4E00 + (uint32_t)((i * 7919) % 20000);
        s[3 * i] = (char)(0xE0 | cp >> 12);
        s[3 * i + 1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[3 * i + 2] = (char)(0x80 | (cp & 0x3F));
    }
    int32_t *ids;
    size_t n_ids;
    char err[LLM_ERR_LEN];
    double t0 = llm_now();
    CHECK_EQ(tok_encode(t, s, 3 * n, 0, &ids, &n_ids, err), 0);
    double dt = llm_now() - t0;
    CHECK(n_ids > n / 2);
    CHECK_MSG(dt < 10.0, "encoding 180 KB took %.1f s", dt);
    size_t len;
    char *back = tok_decode(t, ids, n_ids, 0, &len, err);
    CHECK(back && len == 3 * n && memcmp(back, s, len) == 0);
    free(back);
    free(ids);
    free(s);
    tok_free(t);
}

TEST(tok_encode_is_thread_safe) {
    tokenizer *t = load_or_skip(TINY "/tokenizer.json");
    if (!t) return;
    static const char *texts[] = {"ab abc", "abcab  c", "x \xC3\xA9 \xE6\x97\xA5", "<s>ab</s>"};
    size_t want[4];
    for (int i = 0; i < 4; i++) {
        int32_t *ids;
        char err[LLM_ERR_LEN];
        tok_encode(t, texts[i], strlen(texts[i]), 1, &ids, &want[i], err);
        free(ids);
    }
    int bad = 0;
#pragma omp parallel for reduction(+ : bad)
    for (int k = 0; k < 64; k++) {
        int32_t *ids;
        size_t n = 0;
        char err[LLM_ERR_LEN];
        if (tok_encode(t, texts[k % 4], strlen(texts[k % 4]), 1, &ids, &n, err) != 0)
            bad++;
        else
            free(ids);
        bad += n != want[k % 4];
    }
    CHECK_EQ(bad, 0);
    tok_free(t);
}

// Inputs kept from fuzzing, crashers and hard cases (tests/fixtures/tokenizer/fuzz/): each
// must encode, decode and stream cleanly with every tokenizer at hand.
TEST(tok_fuzz_inputs_stay_fixed) {
    static const char *paths[] = {TINY "/tokenizer.json", SHARED "llama3/tokenizer.json",
                                  SHARED "qwen3/tokenizer.json",
                                  SHARED "llama2-spm/tokenizer.json"};
    DIR *d = opendir("tests/fixtures/tokenizer/fuzz");
    if (!d) {
        harness_skip("no fuzz inputs kept");
        return;
    }
    tokenizer *toks[4] = {0};
    char err[LLM_ERR_LEN];
    for (int k = 0; k < 4; k++)
        if (llm_file_exists(paths[k])) toks[k] = tok_load(paths[k], err);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "tests/fixtures/tokenizer/fuzz/%s", e->d_name);
        size_t len;
        char *data = llm_read_file(path, &len, err);
        CHECK(data != NULL);
        for (int k = 0; data && k < 4; k++) {
            if (!toks[k]) continue;
            int32_t *ids;
            size_t n;
            CHECK_EQ(tok_encode(toks[k], data, len, 1, &ids, &n, err), 0);
            check_stream(toks[k], ids, n, 0);
            free(ids);
        }
        free(data);
    }
    closedir(d);
    for (int k = 0; k < 4; k++) tok_free(toks[k]);
}
