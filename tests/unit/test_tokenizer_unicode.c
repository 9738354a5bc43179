// Unit tests of the tokenizer's Unicode layer: property tables, UTF-8
// reading and repair, NFC, the byte-level alphabet and the regex scanners.
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "regex_scan.h"
#include "tok_internal.h"
#include "unicode.h"

TEST(tok_unicode_ascii_table_matches_ranges) {
    for (uint32_t cp = 0; cp < 128; cp++) CHECK_EQ(uni_ascii_props[cp], uni_props_slow(cp));
}

TEST(tok_unicode_properties) {
    CHECK_EQ(uni_props('a'), UNI_L | UNI_WORD);
    CHECK_EQ(uni_props('7'), UNI_N | UNI_WORD);
    CHECK_EQ(uni_props('_'), UNI_WORD);
    CHECK_EQ(uni_props(' '), UNI_WS);
    CHECK_EQ(uni_props('!'), 0);
    CHECK_EQ(uni_props(0x65E5), UNI_L | UNI_WORD);   // 日
    CHECK_EQ(uni_props(0x0663), UNI_N | UNI_WORD);   // ARABIC-INDIC DIGIT THREE
    CHECK_EQ(uni_props(0x00BD), UNI_N);              // ½ (No: numeric, not \w)
    CHECK_EQ(uni_props(0x3000), UNI_WS);             // IDEOGRAPHIC SPACE
    CHECK_EQ(uni_props(0x0085), UNI_WS);             // NEXT LINE
    CHECK_EQ(uni_props(0x200D), UNI_WORD);           // ZWJ: Join_Control
    CHECK_EQ(uni_props(0x0301), UNI_WORD | UNI_NFC); // combining acute
    CHECK_EQ(uni_props(0x0378), 0);                  // unassigned
    CHECK_EQ(uni_props(0x10FFFF), 0);
    CHECK_EQ(uni_props(0x110000), 0);
    CHECK_EQ(uni_ccc(0x0301), 230);
    CHECK_EQ(uni_ccc(0x0323), 220);
    CHECK_EQ(uni_ccc('a'), 0);
}

// Checks utf8_decode on s: the expected return (length or -subpart).
static void check_decode(const char *s, size_t n, int want, uint32_t want_cp) {
    uint32_t cp = 0;
    int r = utf8_decode(s, n, &cp);
    CHECK_MSG(r == want, "utf8_decode(\"%s\") = %d, want %d", s, r, want);
    if (want > 0) CHECK_EQ(cp, want_cp);
}

TEST(tok_utf8_decode_maximal_subparts) {
    check_decode("A", 1, 1, 'A');
    check_decode("\xC3\xA9", 2, 2, 0xE9);
    check_decode("\xE6\x97\xA5", 3, 3, 0x65E5);
    check_decode("\xF0\x9F\x98\x80", 4, 4, 0x1F600);
    check_decode("\x80", 1, -1, 0);             // lone continuation
    check_decode("\xC0\x80", 2, -1, 0);         // overlong lead
    check_decode("\xE0\x80\x80", 3, -1, 0);     // overlong: E0 needs A0..BF next
    check_decode("\xED\xA0\x80", 3, -1, 0);     // surrogate
    check_decode("\xF4\x90\x80\x80", 4, -1, 0); // above U+10FFFF
    check_decode("\xF5", 1, -1, 0);
    check_decode("\xE2\x82", 2, -2, 0);     // cut short
    check_decode("\xE2\x82\x41", 3, -2, 0); // broken by 'A'
    check_decode("\xF0\x9F\x98", 3, -3, 0);
}

TEST(tok_utf8_repair_replaces_each_bad_byte) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"a\xFFz", "a\xEF\xBF\xBDz"},
        {"a\xE2\x82z", "a\xEF\xBF\xBD\xEF\xBF\xBDz"},
        {"\xC0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"x\xF0\x9F\x98", "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xC3\xA9\x80", "\xC3\xA9\xEF\xBF\xBD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tok_buf b = {0};
        CHECK_EQ(utf8_repair(cases[i].in, strlen(cases[i].in), &b), 0);
        CHECK_STREQ(b.p, cases[i].out);
        CHECK(utf8_valid(b.p, b.len));
        tok_buf_free(&b);
    }
    CHECK(!utf8_valid("a\xFF", 2));
    CHECK(utf8_valid("", 0));
}

TEST(tok_utf8_lossy_replaces_each_subpart) {
    tok_buf b = {0};
    CHECK_EQ(utf8_lossy("a\xE2\x82z\xF0\x9F\x98", 7, &b), 0);
    CHECK_STREQ(b.p, "a\xEF\xBF\xBDz\xEF\xBF\xBD");
    tok_buf_free(&b);
}

TEST(tok_utf8_incomplete_tail) {
    CHECK_EQ(utf8_incomplete_tail("abc\xE2\x82", 5), 2);
    CHECK_EQ(utf8_incomplete_tail("\xF0\x9F\x98", 3), 3);
    CHECK_EQ(utf8_incomplete_tail("\xF0", 1), 1);
    CHECK_EQ(utf8_incomplete_tail("a\xFF", 2), 0);
    CHECK_EQ(utf8_incomplete_tail("\xC3\xA9", 2), 0);
    CHECK_EQ(utf8_incomplete_tail("\x80", 1), 0);
    CHECK_EQ(utf8_incomplete_tail("\xE0\x80", 2), 0); // can never complete
    CHECK_EQ(utf8_incomplete_tail("", 0), 0);
}

// NFC of s, or s itself when uni_nfc reports it unchanged.
static char *nfc(const char *s) {
    tok_buf b = {0};
    int r = uni_nfc(s, strlen(s), &b);
    if (r == 0) return strdup(s);
    return r == 1 ? tok_buf_take(&b) : NULL;
}

TEST(tok_nfc) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"plain ascii", "plain ascii"},
        {"cafe\xCC\x81", "caf\xC3\xA9"},                          // e + acute
        {"e\xCC\x81\xCC\xA3", "\xE1\xBA\xB9\xCC\x81"},            // reordered: dot below first
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81"}, // Hangul L V T
        {"\xE2\x84\xAB", "\xC3\x85"},                             // ANGSTROM SIGN
        {"\xCD\xBE", ";"},                                        // GREEK QUESTION MARK
        {"\xCC\x81x", "\xCC\x81x"},                               // leading mark stays
        {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},             // excluded composite
        // Unicode 13's DIVES AKURU VOWEL SIGN O does not compose: the
        // reference normalizes with Unicode 9.0 data.
        {"\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0", "\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = nfc(cases[i].in);
        CHECK_STREQ(got, cases[i].out);
        free(got);
    }
}

TEST(tok_byte_level_alphabet) {
    // GPT-2's bytes_to_unicode: printable Latin-1 as itself, the rest from U+0100.
    CHECK_EQ(byte_to_cp('a'), 'a');
    CHECK_EQ(byte_to_cp(' '), 0x120);  // Ġ
    CHECK_EQ(byte_to_cp('\n'), 0x10A); // Ċ
    CHECK_EQ(byte_to_cp(0x7F), 0x121);
    CHECK_EQ(byte_to_cp(0xA0), 0x142);
    CHECK_EQ(byte_to_cp(0xAD), 0x143);
    CHECK_EQ(byte_to_cp(0xFF), 0xFF);
    for (int b = 0; b < 256; b++) CHECK_EQ(cp_to_byte(byte_to_cp((uint8_t)b)), b);
    CHECK_EQ(cp_to_byte(' '), -1);
    CHECK_EQ(cp_to_byte(0x144), -1);
    CHECK_EQ(cp_to_byte(0x2581), -1);
}

// Splits s with a regex scanner into pieces joined by '|'.
static char *split(regex_kind k, const char *s) {
    tok_buf b = {0};
    size_t n = strlen(s);
    for (size_t pos = 0; pos < n;) {
        size_t end = regex_match(k, s, n, pos);
        if (pos) tok_buf_put(&b, "|", 1);
        tok_buf_put(&b, s + pos, end - pos);
        pos = end;
    }
    tok_buf_put(&b, "", 0);
    return tok_buf_take(&b);
}

TEST(tok_regex_scanners) {
    CHECK_EQ(regex_identify(regex_source(REGEX_GPT2)), REGEX_GPT2);
    CHECK_EQ(regex_identify(regex_source(REGEX_LLAMA3)), REGEX_LLAMA3);
    CHECK_EQ(regex_identify(regex_source(REGEX_QWEN2)), REGEX_QWEN2);
    CHECK_EQ(regex_identify("\\w+"), REGEX_NONE);
    static const struct {
        regex_kind k;
        const char *in, *out;
    } cases[] = {
        {REGEX_GPT2, "Hello world's  test", "Hello| world|'s| | test"},
        {REGEX_GPT2, "a  \n\n  b", "a|  \n\n | b"},
        {REGEX_GPT2, "x'S 12345 !!", "x|'|S| 12345| !!"},
        {REGEX_LLAMA3, "x'S 12345 !!", "x|'S| |123|45| !!"},
        {REGEX_LLAMA3, "a  \n\n  b", "a|  \n\n| | b"},
        {REGEX_LLAMA3, "\tfoo;\r\n", "\tfoo|;\r\n"},
        {REGEX_LLAMA3, "x'\xC5\xBFt", "x|'\xC5\xBF|t"}, // long s folds onto s
        {REGEX_QWEN2, "v12 \xE6\x97\xA5\xE6\x9C\xAC", "v|1|2| \xE6\x97\xA5\xE6\x9C\xAC"},
        {REGEX_QWEN2, "end  ", "end|  "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = split(cases[i].k, cases[i].in);
        CHECK_STREQ(got, cases[i].out);
        free(got);
    }
}
