// jinja_case.c - Python's upper(), lower(), title() and capitalize() for
// chat templates, and jinja2's title filter.
//
// The mapping covers ASCII, Latin-1, Latin Extended-A/B and Additional, Greek,
// Cyrillic, Armenian and fullwidth Latin, with Python's special cases there
// (ß -> SS, ligatures, digraph title case, final sigma, dotted I); letters of
// other cased scripts (Georgian, Cherokee, Glagolitic...) are left as they are.
#include "jinja_eval.h"

#include <string.h>

// Pairs (upper = even, lower = odd) in these ranges; odd_upper marks ranges
// where the odd code point is the upper one.
static const struct {
    uint32_t lo, hi;
    int odd_upper;
} case_pairs[] = {
    {0x100, 0x12f, 0},   {0x132, 0x137, 0}, {0x139, 0x148, 1}, {0x14a, 0x177, 0},
    {0x179, 0x17e, 1},   {0x1cd, 0x1dc, 1}, {0x1de, 0x1ef, 0}, {0x1f4, 0x1f5, 0},
    {0x1f8, 0x21f, 0},   {0x222, 0x233, 0}, {0x246, 0x24f, 0}, {0x460, 0x481, 0},
    {0x48a, 0x4bf, 0},   {0x4c1, 0x4ce, 1}, {0x4d0, 0x52f, 0}, {0x1e00, 0x1e95, 0},
    {0x1ea0, 0x1eff, 0},
};

// Offset ranges: [lo, hi] of lower case letters and what to subtract for upper.
static const struct {
    uint32_t lo, hi, delta;
} case_shifts[] = {
    {'a', 'z', 32},     {0xe0, 0xf6, 32},   {0xf8, 0xfe, 32},     {0x3b1, 0x3c1, 32},
    {0x3c3, 0x3cb, 32}, {0x3ad, 0x3af, 37}, {0x3cd, 0x3ce, 63},   {0x430, 0x44f, 32},
    {0x450, 0x45f, 80}, {0x561, 0x586, 48}, {0xff41, 0xff5a, 32},
};

// Latin digraphs with upper, title and lower forms (DŽ Dž dž...).
static const uint32_t digraphs[][3] = {
    {0x1c4, 0x1c5, 0x1c6}, {0x1c7, 0x1c8, 0x1c9}, {0x1ca, 0x1cb, 0x1cc}, {0x1f1, 0x1f2, 0x1f3}};

// Code points whose upper case is several: full upper and title forms.
static const struct {
    uint32_t cp;
    const char *upper, *title;
} case_expand[] = {
    {0xdf, "SS", "Ss"},     {0x149, "\xca\xbcN", "\xca\xbcN"},
    {0xfb00, "FF", "Ff"},   {0xfb01, "FI", "Fi"},
    {0xfb02, "FL", "Fl"},   {0xfb03, "FFI", "Ffi"},
    {0xfb04, "FFL", "Ffl"}, {0xfb05, "ST", "St"},
    {0xfb06, "ST", "St"},
};

static const uint32_t *digraph(uint32_t cp) {
    for (size_t i = 0; i < sizeof digraphs / sizeof *digraphs; i++)
        if (cp >= digraphs[i][0] && cp <= digraphs[i][2]) return digraphs[i];
    return NULL;
}

uint32_t jinja_upper_cp(uint32_t cp) {
    if (cp < 0x80) return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    for (size_t i = 0; i < sizeof case_shifts / sizeof *case_shifts; i++)
        if (cp >= case_shifts[i].lo && cp <= case_shifts[i].hi) return cp - case_shifts[i].delta;
    for (size_t i = 0; i < sizeof case_pairs / sizeof *case_pairs; i++)
        if (cp >= case_pairs[i].lo && cp <= case_pairs[i].hi)
            return ((cp & 1) != (uint32_t)case_pairs[i].odd_upper) ? cp - 1 : cp;
    const uint32_t *d = digraph(cp);
    if (d) return d[0];
    switch (cp) {
    case 0xb5:
        return 0x39c;
    case 0xff:
        return 0x178;
    case 0x131:
        return 'I';
    case 0x17f:
        return 'S';
    case 0x3c2:
        return 0x3a3;
    case 0x3ac:
        return 0x386;
    case 0x3cc:
        return 0x38c;
    default:
        return cp;
    }
}

uint32_t jinja_lower_cp(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    for (size_t i = 0; i < sizeof case_shifts / sizeof *case_shifts; i++) {
        uint32_t lo = case_shifts[i].lo - case_shifts[i].delta,
                 hi = case_shifts[i].hi - case_shifts[i].delta;
        if (cp >= lo && cp <= hi) return cp + case_shifts[i].delta;
    }
    for (size_t i = 0; i < sizeof case_pairs / sizeof *case_pairs; i++)
        if (cp >= case_pairs[i].lo && cp <= case_pairs[i].hi)
            return ((cp & 1) == (uint32_t)case_pairs[i].odd_upper) ? cp + 1 : cp;
    const uint32_t *d = digraph(cp);
    if (d) return d[2];
    switch (cp) {
    case 0x178:
        return 0xff;
    case 0x386:
        return 0x3ac;
    case 0x38c:
        return 0x3cc;
    case 0x1e9e:
        return 0xdf;
    default:
        return cp;
    }
}

int jinja_is_cased(uint32_t cp) {
    if (jinja_upper_cp(cp) != cp || jinja_lower_cp(cp) != cp) return 1;
    for (size_t i = 0; i < sizeof case_expand / sizeof *case_expand; i++)
        if (case_expand[i].cp == cp) return 1;
    return 0;
}

// Upper case (title: title case, as str.title() and capitalize() give the
// first letter) of cp, which may be several code points.
static void put_upper(jbuf *b, uint32_t cp, int title) {
    for (size_t i = 0; i < sizeof case_expand / sizeof *case_expand; i++)
        if (case_expand[i].cp == cp) {
            jbuf_puts(b, title ? case_expand[i].title : case_expand[i].upper);
            return;
        }
    const uint32_t *d = title ? digraph(cp) : NULL;
    jbuf_put_utf8(b, d ? d[1] : jinja_upper_cp(cp));
}

// Lower case of the code point at s[at..i), with Python's special cases
// (final sigma, dotted capital I).
static void put_lower(jbuf *b, const char *s, size_t n, size_t at, size_t i, uint32_t cp) {
    if (cp == 0x130) {
        jbuf_puts(b, "i\xcc\x87");
        return;
    }
    if (cp == 0x3a3) {
        int before = 0, after = 0;
        if (at > 0) {
            size_t k = at - 1;
            while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
            before = jinja_is_cased(ju8_next(s, n, &k));
        }
        if (i < n) after = jinja_is_cased(ju8_next(s, n, &(size_t){i}));
        jbuf_put_utf8(b, before && !after ? 0x3c2 : 0x3c3);
        return;
    }
    jbuf_put_utf8(b, jinja_lower_cp(cp));
}

static jval buf_str(jbuf *b) {
    return jval_strn(b->p ? b->p : "", b->n);
}

jval jinja_str_recase(jctx *c, jval s, jcase mode) {
    jbuf b;
    jbuf_init(&b, c->a);
    int prev_cased = 0, word_start = 1;
    size_t i = 0;
    while (i < s.s.n) {
        size_t at = i;
        uint32_t cp = ju8_next(s.s.p, s.s.n, &i);
        int up;
        switch (mode) {
        case JCASE_UPPER:
            up = 1;
            break;
        case JCASE_LOWER:
            up = 0;
            break;
        case JCASE_TITLE:
            up = !prev_cased;
            break;
        case JCASE_CAPITALIZE:
            up = at == 0;
            break;
        default: {
            int sep =
                cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || ju8_is_space(cp);
            up = word_start;
            word_start = sep;
            if (sep) {
                jbuf_put(&b, s.s.p + at, i - at);
                continue;
            }
        }
        }
        prev_cased = jinja_is_cased(cp);
        if (up)
            put_upper(&b, cp, mode == JCASE_TITLE || mode == JCASE_CAPITALIZE);
        else
            put_lower(&b, s.s.p, s.s.n, at, i, cp);
    }
    return buf_str(&b);
}
