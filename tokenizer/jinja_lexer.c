// jinja_lexer.c - splits chat-template source into tokens the way jinja2's
// lexer does with trim_blocks and lstrip_blocks on (see jinja_ast.h).
#include "jinja_ast.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

// Deepest bracket nesting inside one tag.
#define LEX_MAX_BRACKETS 256

typedef struct {
    jarena *a;
    const char *s; // normalized source
    size_t n, pos;
    int line;
    int line_starting; // the last thing consumed ended with a newline
    jtok *v;
    size_t nv, cap;
} lexer;

static _Noreturn void lex_fail(lexer *L, int line, const char *fmt, const char *arg) {
    jinja_throw(L->a->trap, line, fmt, arg);
}

static jtok *lex_emit(lexer *L, jtok_type type, int line) {
    if (L->nv == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 64;
        jtok *v = jarena_alloc(L->a, cap * sizeof(jtok));
        if (L->nv) memcpy(v, L->v, L->nv * sizeof(jtok));
        L->v = v;
        L->cap = cap;
    }
    jtok *t = &L->v[L->nv++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->line = line;
    return t;
}

static int count_lines(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

// Consumes s[pos..to), counting its newlines.
static void lex_advance(lexer *L, size_t to) {
    L->line += count_lines(L->s + L->pos, to - L->pos);
    if (to > L->pos) L->line_starting = L->s[to - 1] == '\n';
    L->pos = to;
}

// Position after the whitespace starting at i.
static size_t skip_ws(const lexer *L, size_t i) {
    while (i < L->n) {
        size_t j = i;
        if (!ju8_is_space(ju8_next(L->s, L->n, &j))) break;
        i = j;
    }
    return i;
}

// Emits the template text s[from..to) after the whitespace control of the tag
// that follows it: sign is that tag's '-', '+' or 0; lstrip says whether
// lstrip_blocks applies to the tag (block and comment tags).
static void lex_data(lexer *L, size_t from, size_t to, char sign, int lstrip) {
    const char *text = L->s + from;
    size_t len = to - from;
    if (sign == '-') {
        len = ju8_rstrip_len(text, len);
    } else if (sign != '+' && lstrip) {
        size_t l_pos = 0;
        for (size_t i = len; i > 0; i--)
            if (text[i - 1] == '\n') {
                l_pos = i;
                break;
            }
        if ((l_pos > 0 || L->line_starting) && l_pos < len &&
            ju8_rstrip_len(text + l_pos, len - l_pos) == 0)
            len = l_pos;
    }
    if (len) {
        jtok *t = lex_emit(L, JT_DATA, L->line);
        t->text = text;
        t->len = len;
    }
    lex_advance(L, to);
}

// After an end tag's closing characters at i: '-' eats all whitespace,
// '+' nothing, none one newline (trim_blocks) when trim is set.
static size_t after_end(const lexer *L, size_t i, char sign, int trim) {
    if (sign == '-') return skip_ws(L, i);
    if (sign != '+' && trim && i < L->n && L->s[i] == '\n') return i + 1;
    return i;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}
static int is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_name_char(char c) {
    return is_name_start(c) || is_digit(c);
}

// End of a run of digits with single '_' between groups at i, or i if none.
static size_t digit_run(const lexer *L, size_t i) {
    if (i >= L->n || !is_digit(L->s[i])) return i;
    while (i < L->n) {
        if (is_digit(L->s[i]))
            i++;
        else if (L->s[i] == '_' && i + 1 < L->n && is_digit(L->s[i + 1]))
            i++;
        else
            break;
    }
    return i;
}

// A float literal at i (jinja2's float_re), returning its end, or i.
static size_t match_float(const lexer *L, size_t i) {
    if (i > 0 && L->s[i - 1] == '.') return i;
    size_t j = digit_run(L, i);
    if (j == i) return i;
    size_t frac = j;
    if (j < L->n && L->s[j] == '.') {
        size_t k = digit_run(L, j + 1);
        if (k > j + 1) frac = k;
    }
    size_t e = frac;
    if (e < L->n && (L->s[e] == 'e' || L->s[e] == 'E')) {
        size_t k = e + 1;
        if (k < L->n && (L->s[k] == '+' || L->s[k] == '-')) k++;
        size_t m = digit_run(L, k);
        if (m > k) return m;
    }
    return frac > j ? frac : i;
}

static void lex_number(lexer *L, size_t i) {
    size_t end = match_float(L, i);
    char buf[128];
    int is_float = end > i;
    int base = 10;
    size_t digits_from = i;
    if (!is_float) {
        char p = i + 1 < L->n ? (char)(L->s[i + 1] | 0x20) : 0;
        if (L->s[i] == '0' && (p == 'x' || p == 'o' || p == 'b')) {
            base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
            digits_from = end = i + 2;
            while (end < L->n && (L->s[end] == '_' ||
                                  (base == 16 && strchr("0123456789abcdefABCDEF", L->s[end])) ||
                                  (base != 16 && L->s[end] >= '0' && L->s[end] < '0' + base)))
                end++;
        } else if (L->s[i] == '0') { // jinja2: a leading 0 is followed by zeros only
            end = i + 1;
            while (end + 1 < L->n &&
                   (L->s[end] == '0' || (L->s[end] == '_' && L->s[end + 1] == '0')))
                end += L->s[end] == '_' ? 2 : 1;
            if (end < L->n && L->s[end] == '0') end++;
        } else {
            end = digit_run(L, i);
        }
    }
    size_t k = 0;
    for (size_t j = digits_from; j < end; j++)
        if (L->s[j] != '_' && k + 1 < sizeof buf) buf[k++] = L->s[j];
    buf[k] = 0;
    jtok *t = lex_emit(L, is_float ? JT_FLOAT : JT_INT, L->line);
    errno = 0;
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        t->i = (int64_t)strtoll(buf, NULL, base);
        if (errno == ERANGE || k == 0)
            lex_fail(L, L->line, "integer literal '%s' out of range", buf);
    }
    lex_advance(L, end);
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// Decodes the body of a string literal with Python's escapes.
static void lex_string(lexer *L, size_t i) {
    char q = L->s[i];
    size_t j = i + 1;
    while (j < L->n && L->s[j] != q) j += L->s[j] == '\\' ? 2 : 1;
    if (j >= L->n) lex_fail(L, L->line, "unterminated string literal%s", "");
    jbuf b;
    jbuf_init(&b, L->a);
    const char *s = L->s;
    for (size_t k = i + 1; k < j; k++) {
        if (s[k] != '\\') {
            jbuf_putc(&b, s[k]);
            continue;
        }
        char c = s[++k];
        const char *simple = strchr("\\'\"abfnrtv", c);
        if (c && simple) {
            static const char out[] = "\\'\"\a\b\f\n\r\t\v";
            jbuf_putc(&b, out[simple - "\\'\"abfnrtv"]);
        } else if (c == '\n') {
            continue;
        } else if (c >= '0' && c <= '7') {
            uint32_t cp = 0;
            int d = 0;
            while (d < 3 && k < j && s[k] >= '0' && s[k] <= '7')
                cp = cp * 8 + (uint32_t)(s[k++] - '0'), d++;
            k--;
            jbuf_put_utf8(&b, cp);
        } else if (c == 'x' || c == 'u' || c == 'U') {
            int want = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < want; d++) {
                int h = k + 1 + (size_t)d < j ? hex_value(s[k + 1 + (size_t)d]) : -1;
                if (h < 0)
                    lex_fail(L, L->line, "truncated \\%c escape in string literal", (char[]){c, 0});
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10ffff)
                lex_fail(L, L->line, "illegal Unicode character in string literal%s", "");
            k += (size_t)want;
            jbuf_put_utf8(&b, cp);
        } else if (c == 'N') {
            lex_fail(L, L->line, "unsupported \\N{...} escape in string literal%s", "");
        } else {
            jbuf_putc(&b, '\\');
            jbuf_putc(&b, c);
        }
    }
    jtok *t = lex_emit(L, JT_STRING, L->line);
    t->text = jarena_strndup(L->a, b.p ? b.p : "", b.n);
    t->len = b.n;
    lex_advance(L, j + 1);
}

// Lexes the inside of a {{ }} or {% %} tag up to and including its end.
static void lex_tag(lexer *L, int is_block, int open_line) {
    char stack[LEX_MAX_BRACKETS];
    int depth = 0;
    for (;;) {
        lex_advance(L, skip_ws(L, L->pos));
        size_t i = L->pos;
        if (i >= L->n)
            lex_fail(L, open_line, "unexpected end of template: tag not closed with '%s'",
                     is_block ? "%}" : "}}");
        const char *s = L->s + i;
        size_t left = L->n - i;
        char close = is_block ? '%' : '}';
        if (depth == 0) {
            char sign = (s[0] == '-' || (s[0] == '+' && is_block)) ? s[0] : 0;
            size_t k = sign ? 1 : 0;
            if (left >= k + 2 && s[k] == close && s[k + 1] == '}') {
                lex_emit(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->line);
                lex_advance(L, after_end(L, i + k + 2, sign, is_block));
                return;
            }
        }
        char c = s[0];
        if (is_name_start(c)) {
            size_t j = i + 1;
            while (j < L->n && is_name_char(L->s[j])) j++;
            jtok *t = lex_emit(L, JT_NAME, L->line);
            t->text = jarena_strndup(L->a, s, j - i);
            t->len = j - i;
            lex_advance(L, j);
            continue;
        }
        if (is_digit(c)) {
            lex_number(L, i);
            continue;
        }
        if (c == '\'' || c == '"') {
            lex_string(L, i);
            continue;
        }
        static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<="};
        size_t oplen = 0;
        for (size_t k = 0; k < sizeof ops2 / sizeof *ops2; k++)
            if (left >= 2 && s[0] == ops2[k][0] && s[1] == ops2[k][1]) oplen = 2;
        if (!oplen && strchr("+-/*%~[](){}><=.:|,;", c) && c) oplen = 1;
        if (!oplen) {
            char bad[8] = {0};
            size_t e = i;
            ju8_next(L->s, L->n, &e);
            for (size_t j = 0; j < e - i && j < 4; j++) bad[j] = s[j];
            lex_fail(L, L->line, "unexpected character '%s'", bad);
        }
        if (c == '(' || c == '[' || c == '{') {
            if (depth == LEX_MAX_BRACKETS) lex_fail(L, L->line, "brackets nested too deeply%s", "");
            stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth == 0 || stack[depth - 1] != c)
                lex_fail(L, L->line, "unexpected '%s'", c == ')' ? ")" : c == ']' ? "]" : "}");
            depth--;
        }
        jtok *t = lex_emit(L, JT_OP, L->line);
        t->text = jarena_strndup(L->a, s, oplen);
        t->len = oplen;
        lex_advance(L, i + oplen);
    }
}

// Matches "\s*NAME\s*" then an end of block tag at i; returns the position
// after the tag (and its whitespace control) or 0.
static size_t match_word_tag(const lexer *L, size_t i, const char *name, int allow_plus, int trim) {
    i = skip_ws(L, i);
    size_t k = strlen(name);
    if (L->n - i < k || memcmp(L->s + i, name, k) != 0) return 0;
    i = skip_ws(L, i + k);
    char sign = 0;
    if (i < L->n && (L->s[i] == '-' || (allow_plus && L->s[i] == '+'))) sign = L->s[i++];
    if (L->n - i < 2 || L->s[i] != '%' || L->s[i + 1] != '}') return 0;
    return after_end(L, i + 2, sign, trim);
}

// {% raw %}...{% endraw %}: `body` is after the opening tag.
static void lex_raw(lexer *L, size_t body, int open_line) {
    lex_advance(L, body);
    for (size_t i = body; i + 1 < L->n; i++) {
        if (L->s[i] != '{' || L->s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = j < L->n && (L->s[j] == '-' || L->s[j] == '+') ? L->s[j++] : 0;
        size_t end = match_word_tag(L, j, "endraw", 1, 1);
        if (!end) continue;
        lex_data(L, body, i, sign, 1);
        lex_advance(L, end);
        return;
    }
    lex_fail(L, open_line, "missing end of raw directive%s", "");
}

// Newlines to "\n" and one trailing newline dropped, as jinja2 does with
// keep_trailing_newline off.
static void normalize(lexer *L, const char *src, size_t n) {
    char *d = jarena_alloc(L->a, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            d[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else {
            d[k++] = src[i];
        }
    }
    if (k > 0 && d[k - 1] == '\n') k--;
    d[k] = 0;
    L->s = d;
    L->n = k;
}

jtoks jinja_lex(jarena *a, const char *src, size_t n) {
    lexer L = {.a = a, .line = 1, .line_starting = 1};
    normalize(&L, src, n);
    while (L.pos < L.n) {
        const char *tag = NULL;
        for (size_t i = L.pos; i + 1 < L.n; i++) {
            char c = L.s[i + 1];
            if (L.s[i] == '{' && (c == '%' || c == '{' || c == '#')) {
                tag = L.s + i;
                break;
            }
        }
        if (!tag) {
            lex_data(&L, L.pos, L.n, 0, 0);
            break;
        }
        size_t at = (size_t)(tag - L.s);
        char kind = tag[1];
        char sign = at + 2 < L.n && (tag[2] == '-' || tag[2] == '+') ? tag[2] : 0;
        size_t inner = at + 2 + (sign ? 1 : 0);
        lex_data(&L, L.pos, at, sign, kind != '{');
        int line = L.line;
        if (kind == '#') {
            const char *end = NULL;
            for (size_t i = inner; i + 1 < L.n; i++)
                if (L.s[i] == '#' && L.s[i + 1] == '}') {
                    end = L.s + i;
                    break;
                }
            if (!end) lex_fail(&L, line, "missing end of comment tag%s", "");
            size_t e = (size_t)(end - L.s);
            char esign = e > inner && (end[-1] == '-' || end[-1] == '+') ? end[-1] : 0;
            lex_advance(&L, after_end(&L, e + 2, esign, 1));
            continue;
        }
        if (kind == '%') {
            size_t body = match_word_tag(&L, inner, "raw", 0, 0);
            if (body) {
                lex_raw(&L, body, line);
                continue;
            }
        }
        lex_emit(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, line);
        lex_advance(&L, inner);
        lex_tag(&L, kind == '%', line);
    }
    lex_emit(&L, JT_EOF, L.line);
    return (jtoks){L.v, L.nv};
}
