// regex_scan.h - the pre-tokenizer regexes of GPT-2, Llama-3 and Qwen2/3 as
// hand-written scanners over the Unicode property tables (unicode.h). Each
// scanner reproduces the leftmost, first-alternative-wins semantics of the
// Oniguruma regex the reference tokenizer runs, including the backtracking of
// `\s+(?!\S)` and `\s*[\r\n]+`. These regexes match at every position of any
// non-empty text, so splitting is a walk from match to match.
#ifndef LLM_REGEX_SCAN_H
#define LLM_REGEX_SCAN_H

#include <stddef.h>

typedef enum {
    REGEX_NONE = 0,
    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    REGEX_GPT2,
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    REGEX_LLAMA3,
    // as REGEX_LLAMA3 with \p{N} instead of \p{N}{1,3}
    REGEX_QWEN2,
} regex_kind;

// The scanner for a regex source string (exactly as it appears in
// tokenizer.json), or REGEX_NONE when it is none of the known ones.
regex_kind regex_identify(const char *pattern);

// The source string of a known regex.
const char *regex_source(regex_kind kind);

// End of the match that starts at s[pos] (pos < n), in bytes; always > pos.
// s must be valid UTF-8.
size_t regex_match(regex_kind kind, const char *s, size_t n, size_t pos);

#endif
