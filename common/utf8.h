// utf8.h - strict UTF-8 reading (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), the one implementation every layer uses: the
// tokenizer, stop strings, the safetensors header check and the server's
// request bodies.
#ifndef LLM_UTF8_H
#define LLM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Reads one UTF-8 sequence from s[0..n), n >= 1. Returns its length (1..4)
// and sets *cp when it is well-formed. Otherwise returns -k, where k >= 1 is
// the length of the maximal ill-formed subpart (Unicode's "substitution of
// maximal subparts", as Rust's from_utf8_lossy and Python apply it).
int utf8_decode(const char *s, size_t n, uint32_t *cp);

// Reads the code point at s[0..n), n >= 1, of text known to be valid UTF-8.
// Returns its length.
static inline int utf8_next(const char *s, size_t n, uint32_t *cp) {
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = utf8_decode(s, n, cp);
    return len > 0 ? len : 1;
}

// Length of the longest suffix of s[0..n) that is a proper prefix of a
// well-formed UTF-8 sequence (0..3): bytes that more input could complete.
size_t utf8_incomplete_tail(const char *s, size_t n);

// 1 when s[0..n) is well-formed UTF-8.
int utf8_valid(const char *s, size_t n);

#ifdef __cplusplus
}
#endif

#endif
