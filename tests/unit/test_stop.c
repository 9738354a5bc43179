#include <stdlib.h>

#include "harness.h"
#include "stop.h"
#include "util.h"

// 1 when s[0, n) holds whole UTF-8 characters only (starts on a lead byte and
// its last character is complete); invalid bytes are not expected here.
static int whole_chars(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        size_t len = b < 0x80             ? 1
                     : (b & 0xe0) == 0xc0 ? 2
                     : (b & 0xf0) == 0xe0 ? 3
                     : (b & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80) return 0;
        i += len;
    }
    return 1;
}

typedef struct {
    char text[1024];
    size_t len;
    int hit;
    int pieces_whole; // every emitted piece was whole characters
} stream_out;

// Feeds text cut at the given offsets (ascending, within the text) and
// flushes; collects what was emitted.
static stream_out run_stream(const char *const *stops, int n_stops, const char *text,
                             const size_t *cuts, int n_cuts) {
    stream_out o = {.pieces_whole = 1};
    char err[LLM_ERR_LEN] = "";
    stop_checker *c = stop_create(stops, n_stops, err);
    CHECK_MSG(c != NULL, "%s", err);
    if (!c) return o;
    size_t n = strlen(text), at = 0;
    for (int i = 0; i <= n_cuts && !o.hit; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        const char *out;
        size_t out_len;
        int r = stop_push(c, text + at, end - at, &out, &out_len, err);
        CHECK(r == 0 || r == 1);
        o.hit = r == 1;
        if (!whole_chars(out, out_len)) o.pieces_whole = 0;
        memcpy(o.text + o.len, out, out_len);
        o.len += out_len;
        at = end;
    }
    const char *out;
    size_t out_len;
    stop_flush(c, &out, &out_len);
    memcpy(o.text + o.len, out, out_len);
    o.len += out_len;
    o.text[o.len] = 0;
    stop_destroy(c);
    return o;
}

// What a checker must emit for the whole text: up to the match that ends
// first (then starts first), or everything.
static size_t expected_len(const char *const *stops, int n_stops, const char *text, int *hit) {
    size_t n = strlen(text);
    for (size_t end = 1; end <= n; end++)
        for (size_t start = 0; start < end; start++)
            for (int i = 0; i < n_stops; i++)
                if (strlen(stops[i]) == end - start &&
                    !memcmp(text + start, stops[i], end - start)) {
                    *hit = 1;
                    return start;
                }
    *hit = 0;
    return n;
}

// Every way to cut text into up to three chunks gives the same output.
static void check_all_cuts(const char *const *stops, int n_stops, const char *text) {
    int hit;
    size_t want = expected_len(stops, n_stops, text, &hit), n = strlen(text);
    int bad = 0;
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) {
            size_t cuts[2] = {i, j};
            stream_out o = run_stream(stops, n_stops, text, cuts, 2);
            if (o.hit != hit || o.len != want || memcmp(o.text, text, want) != 0 ||
                !o.pieces_whole) {
                if (!bad++)
                    CHECK_MSG(
                        0,
                        "\"%s\" cut at %zu,%zu: got \"%s\" hit %d whole %d, want %zu bytes hit %d",
                        text, i, j, o.text, o.hit, o.pieces_whole, want, hit);
            }
        }
    CHECK_EQ(bad, 0);
}

TEST(stop_spans_chunks) {
    const char *stops[] = {"</s>"};
    stream_out o = run_stream(stops, 1, "Hello </s> more", (size_t[]){8}, 1);
    CHECK(o.hit);
    CHECK_STREQ(o.text, "Hello ");
    check_all_cuts(stops, 1, "Hello </s> more");
    check_all_cuts(stops, 1, "no stop here <s/ </");
}

TEST(stop_emits_early_and_holds_prefix) {
    const char *stops[] = {"<end>"};
    char err[LLM_ERR_LEN] = "";
    stop_checker *c = stop_create(stops, 1, err);
    const char *out;
    size_t n;
    CHECK_EQ(stop_push(c, "abc", 3, &out, &n, err), 0);
    CHECK(n == 3 && !memcmp(out, "abc", 3));
    CHECK_EQ(stop_push(c, "de<en", 5, &out, &n, err), 0);
    CHECK(n == 2 && !memcmp(out, "de", 2));
    // a partial match that fails comes out in order with what follows
    CHECK_EQ(stop_push(c, "x<", 2, &out, &n, err), 0);
    CHECK(n == 4 && !memcmp(out, "<enx", 4));
    CHECK_EQ(stop_push(c, "e", 1, &out, &n, err), 0);
    CHECK_EQ(n, 0);
    stop_flush(c, &out, &n);
    CHECK(n == 2 && !memcmp(out, "<e", 2));
    stop_flush(c, &out, &n);
    CHECK_EQ(n, 0);
    CHECK_EQ(stop_hit_index(c), -1);
    stop_destroy(c);
}

TEST(stop_overlapping_strings) {
    // the match that ends first wins
    const char *a[] = {"abcd", "bc"};
    stream_out o = run_stream(a, 2, "xabcdy", NULL, 0);
    CHECK(o.hit);
    CHECK_STREQ(o.text, "xa");
    check_all_cuts(a, 2, "xabcdy");
    // same end: the longer (earlier start) wins
    const char *b[] = {"bc", "xbc"};
    char err[LLM_ERR_LEN] = "";
    stop_checker *c = stop_create(b, 2, err);
    const char *out;
    size_t n;
    CHECK_EQ(stop_push(c, "1x", 2, &out, &n, err), 0);
    CHECK_EQ(stop_push(c, "bc2", 3, &out, &n, err), 1);
    CHECK_EQ(stop_hit_index(c), 1);
    CHECK_EQ(n, 0); // "1" went out with the first push; "x" was held
    // after a hit nothing more comes out
    CHECK_EQ(stop_push(c, "more", 4, &out, &n, err), 1);
    CHECK_EQ(n, 0);
    stop_flush(c, &out, &n);
    CHECK_EQ(n, 0);
    stop_destroy(c);
    // self-overlapping prefixes
    const char *d[] = {"aab", "abab"};
    check_all_cuts(d, 2, "aaab");
    check_all_cuts(d, 2, "aabab");
    check_all_cuts(d, 2, "abaabab");
    check_all_cuts(d, 2, "aaaaaaa");
}

TEST(stop_utf8_split_across_chunks) {
    // CJK stop string, CJK and emoji text, every cut position
    const char *cjk[] = {"世界"};
    check_all_cuts(cjk, 1, "你好世界！");
    check_all_cuts(cjk, 1, "世😀世 界");
    const char *emoji[] = {"😀!", "é"};
    check_all_cuts(emoji, 2, "a😀😀b😀!c");
    check_all_cuts(emoji, 2, "caf\xc3\xa9 ok");
    const char *ascii[] = {"END"};
    check_all_cuts(ascii, 1, "日本語😀ÉN END 😀");
    check_all_cuts(ascii, 1, "ÉNÉ😀EN");
    // a stop string that shares lead bytes with the text: 😀 = F0 9F 98 80,
    // 😁 = F0 9F 98 81
    const char *close[] = {"😁"};
    check_all_cuts(close, 1, "😀😀😁");
    // no stop strings: cut characters wait for their ends, whole ones pass
    check_all_cuts(NULL, 0, "😀a世");
}

TEST(stop_without_strings_passes_through) {
    char err[LLM_ERR_LEN] = "";
    stop_checker *c = stop_create(NULL, 0, err);
    CHECK(c != NULL);
    const char *out;
    size_t n;
    const char *chunk = "hello, world";
    CHECK_EQ(stop_push(c, chunk, strlen(chunk), &out, &n, err), 0);
    CHECK(out == chunk); // no copy
    CHECK_EQ(n, strlen(chunk));
    CHECK_EQ(stop_push(c, "\xe4\xb8", 2, &out, &n, err), 0); // half of 世
    CHECK_EQ(n, 0);
    CHECK_EQ(stop_push(c, "\x96x", 2, &out, &n, err), 0);
    CHECK(n == 4 && !memcmp(out, "世x", 4));
    stop_flush(c, &out, &n);
    CHECK_EQ(n, 0);
    stop_destroy(c);
}

TEST(stop_long_string_and_flush) {
    static char stop[257];
    memset(stop, 'z', 256);
    stop[255] = 'y'; // 255 z then y
    const char *stops[] = {stop};
    char err[LLM_ERR_LEN] = "";
    stop_checker *c = stop_create(stops, 1, err);
    const char *out;
    size_t n, total = 0;
    char text[300];
    memset(text, 'z', sizeof text);
    for (int i = 0; i < 300; i += 7) { // 300 z: always a possible start
        CHECK_EQ(stop_push(c, text + i, i + 7 <= 300 ? 7 : 300 - i, &out, &n, err), 0);
        total += n;
    }
    CHECK_EQ(total, 300 - 255);
    stop_flush(c, &out, &n);
    CHECK_EQ(n, 255);
    stop_destroy(c);

    c = stop_create(stops, 1, err);
    stream_out o = {0};
    for (int i = 0; i < 300; i++) {
        CHECK_EQ(stop_push(c, "z", 1, &out, &n, err), 0);
        o.len += n;
    }
    CHECK_EQ(stop_push(c, "y tail", 6, &out, &n, err), 1);
    CHECK_EQ(o.len + n, 300 - 255);
    stop_destroy(c);
}

TEST(stop_rejects_bad_strings) {
    const char *empty[] = {"ok", ""};
    char err[LLM_ERR_LEN] = "";
    CHECK(stop_create(empty, 2, err) == NULL);
    CHECK_CONTAINS(err, "empty");
    const char *cut[] = {"\xe4\xb8"}, *stray[] = {"\x80"
                                                  "a"};
    CHECK(stop_create(cut, 1, err) == NULL);
    CHECK_CONTAINS(err, "UTF-8");
    CHECK(stop_create(stray, 1, err) == NULL);
    CHECK_CONTAINS(err, "UTF-8");
}
