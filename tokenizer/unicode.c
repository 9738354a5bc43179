// unicode.c - UTF-8 helpers, property lookups and NFC over the generated tables.
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

// Index of the range (in a (start << 8 | value) table) holding cp.
static size_t range_find(const uint32_t *t, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; // invariant: t[lo] starts at or before cp (t[0] starts at 0)
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((t[mid] >> 8) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

uint32_t uni_props_slow(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    return uni_prop_ranges[range_find(uni_prop_ranges, uni_prop_ranges_len, cp)] & 0xFF;
}

uint32_t uni_ccc(uint32_t cp) {
    if (cp < 0x300 || cp > 0x10FFFF) return 0;
    return uni_ccc_ranges[range_find(uni_ccc_ranges, uni_ccc_ranges_len, cp)] & 0xFF;
}

// --- UTF-8 -------------------------------------------------------------------

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; // U+FFFD

int utf8_repair(const char *s, size_t n, tok_buf *out) {
    size_t i = 0, run = 0; // s[run..i) is valid and not yet copied
    while (i < n) {
        uint32_t cp;
        int r = (unsigned char)s[i] < 0x80 ? 1 : utf8_decode(s + i, n - i, &cp);
        if (r > 0) {
            i += (size_t)r;
            continue;
        }
        if (tok_buf_put(out, s + run, i - run) != 0) return -1;
        for (int k = 0; k < -r; k++)
            if (tok_buf_put(out, REPLACEMENT, 3) != 0) return -1;
        i += (size_t)-r;
        run = i;
    }
    return tok_buf_put(out, s + run, n - run);
}

int utf8_lossy(const char *s, size_t n, tok_buf *out) {
    size_t i = 0, run = 0;
    while (i < n) {
        uint32_t cp;
        int r = (unsigned char)s[i] < 0x80 ? 1 : utf8_decode(s + i, n - i, &cp);
        if (r > 0) {
            i += (size_t)r;
            continue;
        }
        if (tok_buf_put(out, s + run, i - run) != 0 || tok_buf_put(out, REPLACEMENT, 3) != 0)
            return -1;
        i += (size_t)-r;
        run = i;
    }
    return tok_buf_put(out, s + run, n - run);
}

// --- NFC ---------------------------------------------------------------------

// Hangul syllables decompose and compose by arithmetic (Unicode 3.12).
#define HANGUL_S 0xAC00
#define HANGUL_L 0x1100
#define HANGUL_V 0x1161
#define HANGUL_T 0x11A7
#define HANGUL_LCOUNT 19
#define HANGUL_VCOUNT 21
#define HANGUL_TCOUNT 28
#define HANGUL_NCOUNT (HANGUL_VCOUNT * HANGUL_TCOUNT)
#define HANGUL_SCOUNT (HANGUL_LCOUNT * HANGUL_NCOUNT)

// The one-level canonical decomposition of cp, or NULL.
static const uint32_t *decomp_find(uint32_t cp) {
    size_t lo = 0, hi = uni_decomp_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (uni_decomp[mid][0] == cp) return uni_decomp[mid];
        if (uni_decomp[mid][0] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

// The primary composite of (a, b), or 0.
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LCOUNT && b >= HANGUL_V &&
        b < HANGUL_V + HANGUL_VCOUNT)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_VCOUNT + (b - HANGUL_V)) * HANGUL_TCOUNT;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SCOUNT && (a - HANGUL_S) % HANGUL_TCOUNT == 0 &&
        b > HANGUL_T && b < HANGUL_T + HANGUL_TCOUNT)
        return a + (b - HANGUL_T);
    uint64_t key = (uint64_t)a << 32 | b;
    size_t lo = 0, hi = uni_comp_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k = (uint64_t)uni_comp[mid][0] << 32 | uni_comp[mid][1];
        if (k == key) return uni_comp[mid][2];
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

typedef struct {
    uint32_t *cp;
    size_t len, cap;
} cp_vec;

static int cp_push(cp_vec *v, uint32_t cp) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        uint32_t *p = realloc(v->cp, cap * sizeof *p);
        if (!p) return -1;
        v->cp = p;
        v->cap = cap;
    }
    v->cp[v->len++] = cp;
    return 0;
}

// Appends the full canonical decomposition of cp.
static int decompose(cp_vec *v, uint32_t cp) {
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SCOUNT) {
        uint32_t s = cp - HANGUL_S, t = s % HANGUL_TCOUNT;
        if (cp_push(v, HANGUL_L + s / HANGUL_NCOUNT) != 0 ||
            cp_push(v, HANGUL_V + (s % HANGUL_NCOUNT) / HANGUL_TCOUNT) != 0)
            return -1;
        return t ? cp_push(v, HANGUL_T + t) : 0;
    }
    const uint32_t *d = decomp_find(cp);
    if (!d) return cp_push(v, cp);
    if (decompose(v, d[1]) != 0) return -1;
    return d[2] ? decompose(v, d[2]) : 0;
}

// Appends the NFC form of s[0..n) (a run that starts at a starter) to out.
static int nfc_segment(const char *s, size_t n, cp_vec *v, tok_buf *out) {
    v->len = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)utf8_next(s + i, n - i, &cp);
        if (decompose(v, cp) != 0) return -1;
    }
    // Canonical ordering: stable sort of each run of non-starters by class.
    for (size_t k = 1; k < v->len; k++) {
        uint32_t c = v->cp[k], cc = uni_ccc(c);
        if (cc == 0) continue;
        size_t j = k;
        while (j > 0 && uni_ccc(v->cp[j - 1]) > cc) {
            v->cp[j] = v->cp[j - 1];
            j--;
        }
        v->cp[j] = c;
    }
    // Canonical composition (UAX #15's reference algorithm).
    size_t starter = 0, w = 1;
    uint32_t last_cc = uni_ccc(v->cp[0]) ? 256 : 0; // 256: no starter to compose with yet
    for (size_t k = 1; k < v->len; k++) {
        uint32_t c = v->cp[k], cc = uni_ccc(c);
        uint32_t comp = compose(v->cp[starter], c);
        if (comp && (last_cc < cc || last_cc == 0)) {
            v->cp[starter] = comp;
            continue;
        }
        if (cc == 0) starter = w;
        last_cc = cc;
        v->cp[w++] = c;
    }
    for (size_t k = 0; k < w; k++)
        if (tok_buf_put_cp(out, v->cp[k]) != 0) return -1;
    return 0;
}

// Only runs that hold a character flagged UNI_NFC can change: each such run,
// with the starter before it, is normalized on its own; a character without
// the flag (a starter that composes with nothing before it) bounds the runs.
int uni_nfc(const char *s, size_t n, tok_buf *out) {
    cp_vec v = {0};
    size_t done = 0, starter = 0, i = 0; // s[0..done) is in out
    int changed = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = (size_t)utf8_next(s + i, n - i, &cp);
        if (!(uni_props(cp) & UNI_NFC)) {
            starter = i;
            i += len;
            continue;
        }
        if (!changed) out->len = 0;
        changed = 1;
        size_t end = i + len;
        while (end < n) {
            len = (size_t)utf8_next(s + end, n - end, &cp);
            if (!(uni_props(cp) & UNI_NFC)) break;
            end += len;
        }
        if (tok_buf_put(out, s + done, starter - done) != 0 ||
            nfc_segment(s + starter, end - starter, &v, out) != 0)
            goto oom;
        done = starter = i = end;
    }
    if (changed && tok_buf_put(out, s + done, n - done) != 0) goto oom;
    free(v.cp);
    return changed;
oom:
    free(v.cp);
    return -1;
}
