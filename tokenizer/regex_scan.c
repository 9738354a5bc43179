// regex_scan.c - hand-written scanners for the known pre-tokenizer regexes.
//
// Character classes, in the regexes' terms:
//   L = \p{L}, N = \p{N}, S = \s (White_Space), other = [^\s\p{L}\p{N}].
#include "regex_scan.h"

#include <string.h>

#include "unicode.h"

static const char SRC_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char SRC_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char SRC_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

regex_kind regex_identify(const char *pattern) {
    if (strcmp(pattern, SRC_GPT2) == 0) return REGEX_GPT2;
    if (strcmp(pattern, SRC_LLAMA3) == 0) return REGEX_LLAMA3;
    if (strcmp(pattern, SRC_QWEN2) == 0) return REGEX_QWEN2;
    return REGEX_NONE;
}

const char *regex_source(regex_kind kind) {
    switch (kind) {
    case REGEX_GPT2:
        return SRC_GPT2;
    case REGEX_LLAMA3:
        return SRC_LLAMA3;
    case REGEX_QWEN2:
        return SRC_QWEN2;
    default:
        return "";
    }
}

// A cursor over valid UTF-8: the code point at pos, its length and properties.
typedef struct {
    uint32_t cp;
    uint32_t props;
    size_t len; // 0 at the end of the text
} ch_t;

static inline ch_t ch_at(const char *s, size_t n, size_t pos) {
    ch_t c = {0, 0, 0};
    if (pos < n) {
        c.len = (size_t)utf8_next(s + pos, n - pos, &c.cp);
        c.props = uni_props(c.cp);
    }
    return c;
}

#define IS_OTHER(c) ((c).len && !((c).props & (UNI_L | UNI_N | UNI_WS)))

// End of the run of characters whose properties have one of `bits`, from pos.
static size_t run_end(const char *s, size_t n, size_t pos, uint32_t bits) {
    while (pos < n) {
        ch_t c = ch_at(s, n, pos);
        if (!(c.props & bits)) break;
        pos += c.len;
    }
    return pos;
}

static size_t other_end(const char *s, size_t n, size_t pos) {
    while (pos < n) {
        ch_t c = ch_at(s, n, pos);
        if (!IS_OTHER(c)) break;
        pos += c.len;
    }
    return pos;
}

// \s+(?!\S)|\s+ at pos (a whitespace character): the whole run when it ends
// the text or is one character long, else the run minus its last character.
static size_t space_end(const char *s, size_t n, size_t pos) {
    size_t end = pos, last = pos;
    while (end < n) {
        ch_t c = ch_at(s, n, end);
        if (!(c.props & UNI_WS)) break;
        last = end;
        end += c.len;
    }
    if (end == n || last == pos) return end;
    return last;
}

// 's|'t|'re|'ve|'m|'ll|'d after the apostrophe at pos; 0 when none matches.
// With fold, letters match case-insensitively (Unicode simple folding: only
// U+017F LATIN SMALL LETTER LONG S folds onto one of these letters).
static size_t contraction_end(const char *s, size_t n, size_t pos, int fold) {
    ch_t a = ch_at(s, n, pos + 1);
    if (!a.len) return 0;
    uint32_t x = a.cp;
    if (fold) {
        if (x == 0x17F)
            x = 's';
        else if (x >= 'A' && x <= 'Z')
            x += 'a' - 'A';
    }
    if (x == 's' || x == 't' || x == 'm' || x == 'd') return pos + 1 + a.len;
    uint32_t want = x == 'r' || x == 'v' ? 'e' : x == 'l' ? 'l' : 0;
    if (!want) return 0;
    ch_t b = ch_at(s, n, pos + 1 + a.len);
    uint32_t y = b.cp;
    if (fold && y >= 'A' && y <= 'Z') y += 'a' - 'A';
    return b.len && y == want ? pos + 1 + a.len + b.len : 0;
}

static size_t match_gpt2(const char *s, size_t n, size_t pos) {
    ch_t c = ch_at(s, n, pos);
    if (c.cp == '\'') {
        size_t e = contraction_end(s, n, pos, 0);
        if (e) return e;
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
    size_t p = c.cp == ' ' ? pos + 1 : pos;
    ch_t d = c.cp == ' ' ? ch_at(s, n, p) : c;
    if (d.props & UNI_L) return run_end(s, n, p, UNI_L);
    if (d.props & UNI_N) return run_end(s, n, p, UNI_N);
    if (IS_OTHER(d)) return other_end(s, n, p);
    return space_end(s, n, pos); // c is whitespace
}

static size_t match_llama3(const char *s, size_t n, size_t pos, int max_digits) {
    ch_t c = ch_at(s, n, pos);
    if (c.cp == '\'') {
        size_t e = contraction_end(s, n, pos, 1);
        if (e) return e;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (c.props & UNI_L) return run_end(s, n, pos, UNI_L);
    if (c.cp != '\r' && c.cp != '\n' && !(c.props & UNI_N)) {
        ch_t d = ch_at(s, n, pos + c.len);
        if (d.props & UNI_L) return run_end(s, n, pos + c.len, UNI_L);
    }
    // \p{N}{1,max_digits}
    if (c.props & UNI_N) {
        size_t e = pos;
        for (int k = 0; k < max_digits; k++) {
            ch_t d = ch_at(s, n, e);
            if (!(d.props & UNI_N)) break;
            e += d.len;
        }
        return e;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    size_t p = c.cp == ' ' ? pos + 1 : pos;
    ch_t d = c.cp == ' ' ? ch_at(s, n, p) : c;
    if (IS_OTHER(d)) {
        size_t e = other_end(s, n, p);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) e++;
        return e;
    }
    // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n.
    size_t end = pos, nl = 0;
    while (end < n) {
        ch_t w = ch_at(s, n, end);
        if (!(w.props & UNI_WS)) break;
        if (w.cp == '\r' || w.cp == '\n') nl = end + 1;
        end += w.len;
    }
    if (nl) return nl;
    return space_end(s, n, pos);
}

size_t regex_match(regex_kind kind, const char *s, size_t n, size_t pos) {
    switch (kind) {
    case REGEX_GPT2:
        return match_gpt2(s, n, pos);
    case REGEX_LLAMA3:
        return match_llama3(s, n, pos, 3);
    case REGEX_QWEN2:
        return match_llama3(s, n, pos, 1);
    default:
        return n;
    }
}
