// jinja_strings.c - Python str operations for chat templates: strip,
// replace, split, `%` and str.format formatting, HTML escaping, and the str
// methods templates call (jinja_find_method dispatches here). Case mapping is
// in jinja_case.c.
#include "jinja_eval.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static jval buf_str(jbuf *b) {
    return jval_strn(b->p ? b->p : "", b->n);
}

static int in_chars(jval chars, uint32_t cp) {
    if (chars.type != JV_STR) return ju8_is_space(cp);
    size_t i = 0;
    while (i < chars.s.n)
        if (ju8_next(chars.s.p, chars.s.n, &i) == cp) return 1;
    return 0;
}

jval jinja_str_strip(jctx *c, int line, jval s, jval chars, int which) {
    if (jinja_given(chars) && chars.type != JV_NONE && chars.type != JV_STR)
        jinja_fail(c, line, "strip arg must be None or str");
    size_t lo = 0, hi = s.s.n;
    if (which & 1)
        while (lo < hi) {
            size_t i = lo;
            if (!in_chars(chars, ju8_next(s.s.p, hi, &i))) break;
            lo = i;
        }
    if (which & 2)
        while (hi > lo) {
            size_t k = hi - 1;
            while (k > lo && ((unsigned char)s.s.p[k] & 0xc0) == 0x80 && hi - k < 4) k--;
            size_t i = k;
            uint32_t cp = ju8_next(s.s.p, hi, &i);
            if (i != hi) {
                k = hi - 1;
                cp = (unsigned char)s.s.p[k];
            }
            if (!in_chars(chars, cp)) break;
            hi = k;
        }
    return jval_strn(s.s.p + lo, hi - lo);
}

jval jinja_str_replace(jctx *c, int line, jval s, jval old, jval new_, int64_t count) {
    jbuf b;
    jbuf_init(&b, c->a);
    if (count < 0) count = INT64_MAX;
    if (old.s.n == 0) { // Python inserts `new` around every code point
        size_t i = 0;
        while (i < s.s.n && count > 0) {
            jbuf_put(&b, new_.s.p, new_.s.n);
            count--;
            size_t at = i;
            ju8_next(s.s.p, s.s.n, &i);
            jbuf_put(&b, s.s.p + at, i - at);
        }
        if (i == s.s.n && count > 0) jbuf_put(&b, new_.s.p, new_.s.n);
        jbuf_put(&b, s.s.p + i, s.s.n - i);
        return buf_str(&b);
    }
    size_t i = 0;
    while (count > 0) {
        const char *hit = memmem(s.s.p + i, s.s.n - i, old.s.p, old.s.n);
        if (!hit) break;
        size_t at = (size_t)(hit - s.s.p);
        jbuf_put(&b, s.s.p + i, at - i);
        jbuf_put(&b, new_.s.p, new_.s.n);
        i = at + old.s.n;
        count--;
    }
    if (i == 0) return s;
    jbuf_put(&b, s.s.p + i, s.s.n - i);
    return buf_str(&b);
}

// One %-conversion: flags, width, precision and type already parsed.
static void percent_one(jctx *c, int line, jbuf *b, char type, const char *flags, int width,
                        int prec, jval v) {
    char fmt[32];
    if (type == 's' || type == 'r') {
        jbuf tmp;
        jbuf_init(&tmp, c->a);
        if (type == 's') {
            jval s = jinja_to_str(c, line, v);
            jbuf_put(&tmp, s.s.p, s.s.n);
        } else if (jval_write_repr(&tmp, v) < 0) {
            jinja_fail(c, line, "cannot format a %s", jval_type_name(v));
        }
        size_t n = tmp.n, cps = ju8_len(tmp.p ? tmp.p : "", tmp.n);
        if (prec >= 0 && (size_t)prec < cps) {
            n = ju8_offset(tmp.p, tmp.n, (size_t)prec);
            cps = (size_t)prec;
        }
        int left = strchr(flags, '-') != NULL;
        for (int k = (int)cps; !left && k < width; k++) jbuf_putc(b, ' ');
        jbuf_put(b, tmp.p ? tmp.p : "", n);
        for (int k = (int)cps; left && k < width; k++) jbuf_putc(b, ' ');
        return;
    }
    if (type == 'c') {
        jbuf ch;
        jbuf_init(&ch, c->a);
        if (v.type == JV_STR && ju8_len(v.s.p, v.s.n) == 1)
            jbuf_put(&ch, v.s.p, v.s.n);
        else if (v.type == JV_INT && v.i >= 0 && v.i <= 0x10ffff)
            jbuf_put_utf8(&ch, (uint32_t)v.i);
        else
            jinja_fail(c, line, "%%c requires an int or a single character");
        percent_one(c, line, b, 's', flags, width, -1, jval_strn(ch.p, ch.n));
        return;
    }
    if (v.type != JV_INT && v.type != JV_BOOL && v.type != JV_FLOAT)
        jinja_fail(c, line, "%%%c format: a real number is required, not %s", type,
                   jval_type_name(v));
    if (type == 'd' || type == 'i' || type == 'x' || type == 'X' || type == 'o') {
        if (v.type == JV_FLOAT && !(fabs(v.f) < 9.2e18)) jinja_fail(c, line, "integer overflow");
        int64_t i = v.type == JV_FLOAT ? (int64_t)v.f : v.type == JV_INT ? v.i : v.b;
        if (type != 'd' && type != 'i' && v.type == JV_FLOAT)
            jinja_fail(c, line, "%%%c format: an integer is required, not float", type);
        const char *conv = type == 'x'   ? PRIx64
                           : type == 'X' ? PRIX64
                           : type == 'o' ? PRIo64
                                         : PRId64;
        snprintf(fmt, sizeof fmt, "%%%s%d%s", flags, width, conv);
        jbuf_printf(b, fmt, i);
        return;
    }
    double f = v.type == JV_FLOAT ? v.f : v.type == JV_INT ? (double)v.i : v.b;
    snprintf(fmt, sizeof fmt, "%%%s%d.%d%c", flags, width, prec < 0 ? 6 : prec, type);
    jbuf_printf(b, fmt, f);
}

jval jinja_str_percent(jctx *c, int line, jval fmtv, jval args) {
    const jval *argv = &args;
    size_t argc = 1, next = 0;
    if (args.type == JV_LIST && args.list->kind == JL_TUPLE) {
        argv = args.list->items;
        argc = args.list->n;
    } else if (args.type == JV_DICT) {
        jinja_fail(c, line, "%%-formatting with a mapping is not supported");
    }
    jbuf b;
    jbuf_init(&b, c->a);
    const char *s = fmtv.s.p;
    size_t n = fmtv.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            jbuf_putc(&b, s[i]);
            continue;
        }
        char flags[8] = {0};
        int nf = 0, width = 0, prec = -1;
        i++;
        while (i < n && strchr("-+ 0#", s[i]) && nf < 6) flags[nf++] = s[i++];
        while (i < n && s[i] >= '0' && s[i] <= '9' && width < 10000)
            width = width * 10 + (s[i++] - '0');
        if (i < n && s[i] == '.') {
            prec = 0;
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9' && prec < 10000)
                prec = prec * 10 + (s[i++] - '0');
        }
        if (i >= n) jinja_fail(c, line, "incomplete format");
        char type = s[i];
        if (type == '%') {
            jbuf_putc(&b, '%');
            continue;
        }
        if (!strchr("srcdixXofFeEgG", type))
            jinja_fail(c, line, "unsupported format character '%c'", type);
        if (next >= argc) jinja_fail(c, line, "not enough arguments for format string");
        percent_one(c, line, &b, type, flags, width, prec, argv[next++]);
    }
    if (next < argc) jinja_fail(c, line, "not all arguments converted during string formatting");
    return buf_str(&b);
}

jval jinja_html_escape(jctx *c, jval s) {
    if (s.markup) return s;
    jbuf b;
    jbuf_init(&b, c->a);
    for (size_t i = 0; i < s.s.n; i++) {
        switch (s.s.p[i]) {
        case '&':
            jbuf_puts(&b, "&amp;");
            break;
        case '<':
            jbuf_puts(&b, "&lt;");
            break;
        case '>':
            jbuf_puts(&b, "&gt;");
            break;
        case '"':
            jbuf_puts(&b, "&#34;");
            break;
        case '\'':
            jbuf_puts(&b, "&#39;");
            break;
        default:
            jbuf_putc(&b, s.s.p[i]);
        }
    }
    jval r = buf_str(&b);
    r.markup = 1;
    return r;
}

// --- str methods -----------------------------------------------------------------

static jval m_upper(jctx *c, int line, jval s, jargs *a) {
    jinja_bind(c, line, "upper", a, (const char *const[]){NULL}, NULL);
    return jinja_str_recase(c, s, JCASE_UPPER);
}
static jval m_lower(jctx *c, int line, jval s, jargs *a) {
    jinja_bind(c, line, "lower", a, (const char *const[]){NULL}, NULL);
    return jinja_str_recase(c, s, JCASE_LOWER);
}
static jval m_title(jctx *c, int line, jval s, jargs *a) {
    jinja_bind(c, line, "title", a, (const char *const[]){NULL}, NULL);
    return jinja_str_recase(c, s, JCASE_TITLE);
}
static jval m_capitalize(jctx *c, int line, jval s, jargs *a) {
    jinja_bind(c, line, "capitalize", a, (const char *const[]){NULL}, NULL);
    return jinja_str_recase(c, s, JCASE_CAPITALIZE);
}

static jval strip_method(jctx *c, int line, jval s, jargs *a, const char *name, int which) {
    jval chars;
    jinja_bind(c, line, name, a, (const char *const[]){"chars", NULL}, &chars);
    return jinja_str_strip(c, line, s, chars, which);
}
static jval m_strip(jctx *c, int line, jval s, jargs *a) {
    return strip_method(c, line, s, a, "strip", 3);
}
static jval m_lstrip(jctx *c, int line, jval s, jargs *a) {
    return strip_method(c, line, s, a, "lstrip", 1);
}
static jval m_rstrip(jctx *c, int line, jval s, jargs *a) {
    return strip_method(c, line, s, a, "rstrip", 2);
}

static int affix_match(jctx *c, int line, jval s, jval affix, int suffix, const char *name) {
    if (affix.type == JV_LIST && affix.list->kind == JL_TUPLE) {
        for (size_t i = 0; i < affix.list->n; i++)
            if (affix_match(c, line, s, affix.list->items[i], suffix, name)) return 1;
        return 0;
    }
    if (affix.type != JV_STR)
        jinja_fail(c, line, "%s first arg must be str or a tuple of str, not %s", name,
                   jval_type_name(affix));
    if (affix.s.n > s.s.n) return 0;
    return memcmp(s.s.p + (suffix ? s.s.n - affix.s.n : 0), affix.s.p, affix.s.n) == 0;
}

static jval m_startswith(jctx *c, int line, jval s, jargs *a) {
    jval p;
    jinja_bind(c, line, "startswith", a, (const char *const[]){"prefix", NULL}, &p);
    return jval_bool(affix_match(c, line, s, p, 0, "startswith"));
}
static jval m_endswith(jctx *c, int line, jval s, jargs *a) {
    jval p;
    jinja_bind(c, line, "endswith", a, (const char *const[]){"suffix", NULL}, &p);
    return jval_bool(affix_match(c, line, s, p, 1, "endswith"));
}

static jval m_replace(jctx *c, int line, jval s, jargs *a) {
    jval v[3];
    jinja_bind(c, line, "replace", a, (const char *const[]){"old", "new", "count", NULL}, v);
    jinja_arg_str(c, line, "replace", v[0]);
    jinja_arg_str(c, line, "replace", v[1]);
    int64_t count = jinja_given(v[2]) ? jinja_arg_int(c, line, "replace", v[2]) : -1;
    return jinja_str_replace(c, line, s, v[0], v[1], count);
}

// Python's split / rsplit.
static jval split(jctx *c, int line, jval s, jargs *a, int from_right) {
    const char *name = from_right ? "rsplit" : "split";
    jval v[2];
    jinja_bind(c, line, name, a, (const char *const[]){"sep", "maxsplit", NULL}, v);
    int64_t max = jinja_given(v[1]) ? jinja_arg_int(c, line, name, v[1]) : -1;
    if (max < 0) max = INT64_MAX;
    jlist *l = jlist_new(c->a, JL_LIST, 4);
    const char *p = s.s.p;
    size_t n = s.s.n;
    if (!jinja_given(v[0]) || v[0].type == JV_NONE) {
        // Words between whitespace runs; past the limit, the rest of the text
        // (from the next word on, or up to the previous one) stays whole.
        size_t nw = 0, cap = 8;
        size_t *ws = jarena_alloc(c->a, cap * 2 * sizeof *ws);
        size_t i = 0;
        while (i < n) {
            size_t k = i;
            if (ju8_is_space(ju8_next(p, n, &k))) {
                i = k;
                continue;
            }
            size_t e = i;
            while (e < n) {
                k = e;
                if (ju8_is_space(ju8_next(p, n, &k))) break;
                e = k;
            }
            if (nw == cap) {
                size_t *w2 = jarena_alloc(c->a, cap * 4 * sizeof *ws);
                memcpy(w2, ws, cap * 2 * sizeof *ws);
                ws = w2;
                cap *= 2;
            }
            ws[2 * nw] = i;
            ws[2 * nw + 1] = e;
            nw++;
            i = e;
        }
        if ((int64_t)nw <= max || max == INT64_MAX) {
            for (size_t w = 0; w < nw; w++)
                jlist_push(c->a, l, jval_strn(p + ws[2 * w], ws[2 * w + 1] - ws[2 * w]));
        } else if (!from_right) {
            for (size_t w = 0; w < (size_t)max; w++)
                jlist_push(c->a, l, jval_strn(p + ws[2 * w], ws[2 * w + 1] - ws[2 * w]));
            jlist_push(c->a, l, jval_strn(p + ws[2 * max], n - ws[2 * max]));
        } else {
            size_t keep = nw - (size_t)max;
            jlist_push(c->a, l, jval_strn(p, ws[2 * (keep - 1) + 1]));
            for (size_t w = keep; w < nw; w++)
                jlist_push(c->a, l, jval_strn(p + ws[2 * w], ws[2 * w + 1] - ws[2 * w]));
        }
        return jval_list(l);
    }
    jval sep = jinja_arg_str(c, line, name, v[0]);
    if (sep.s.n == 0) jinja_fail(c, line, "empty separator");
    if (!from_right) {
        size_t i = 0;
        while (max > 0) {
            const char *hit = memmem(p + i, n - i, sep.s.p, sep.s.n);
            if (!hit) break;
            jlist_push(c->a, l, jval_strn(p + i, (size_t)(hit - p) - i));
            i = (size_t)(hit - p) + sep.s.n;
            max--;
        }
        jlist_push(c->a, l, jval_strn(p + i, n - i));
        return jval_list(l);
    }
    jlist *parts = jlist_new(c->a, JL_LIST, 4);
    size_t hi = n;
    while (max > 0 && hi >= sep.s.n) {
        size_t k = hi - sep.s.n + 1, found = SIZE_MAX;
        while (k-- > 0)
            if (!memcmp(p + k, sep.s.p, sep.s.n)) {
                found = k;
                break;
            }
        if (found == SIZE_MAX) break;
        jlist_push(c->a, parts, jval_strn(p + found + sep.s.n, hi - found - sep.s.n));
        hi = found;
        max--;
    }
    jlist_push(c->a, parts, jval_strn(p, hi));
    for (size_t i = parts->n; i > 0; i--) jlist_push(c->a, l, parts->items[i - 1]);
    return jval_list(l);
}

static jval m_split(jctx *c, int line, jval s, jargs *a) {
    return split(c, line, s, a, 0);
}
static jval m_rsplit(jctx *c, int line, jval s, jargs *a) {
    return split(c, line, s, a, 1);
}

static jval m_splitlines(jctx *c, int line, jval s, jargs *a) {
    jval keep;
    jinja_bind(c, line, "splitlines", a, (const char *const[]){"keepends", NULL}, &keep);
    int keepends = jinja_given(keep) && jval_truthy(keep);
    jlist *l = jlist_new(c->a, JL_LIST, 4);
    size_t i = 0, start = 0;
    while (i < s.s.n) {
        size_t at = i;
        uint32_t cp = ju8_next(s.s.p, s.s.n, &i);
        int brk = cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c ||
                  (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) continue;
        if (cp == '\r' && i < s.s.n && s.s.p[i] == '\n') i++;
        jlist_push(c->a, l, jval_strn(s.s.p + start, (keepends ? i : at) - start));
        start = i;
    }
    if (start < s.s.n) jlist_push(c->a, l, jval_strn(s.s.p + start, s.s.n - start));
    return jval_list(l);
}

static jval m_join(jctx *c, int line, jval s, jargs *a) {
    jval it;
    jinja_bind(c, line, "join", a, (const char *const[]){"iterable", NULL}, &it);
    jlist *items = jinja_iterate(c, line, it);
    jbuf b;
    jbuf_init(&b, c->a);
    for (size_t i = 0; i < items->n; i++) {
        if (items->items[i].type != JV_STR)
            jinja_fail(c, line, "sequence item %zu: expected str instance, %s found", i,
                       jval_type_name(items->items[i]));
        if (i) jbuf_put(&b, s.s.p, s.s.n);
        jbuf_put(&b, items->items[i].s.p, items->items[i].s.n);
    }
    return buf_str(&b);
}

// find / rfind / index / rindex / count of a substring, in code points.
static jval search(jctx *c, int line, jval s, jargs *a, const char *name) {
    jval sub;
    jinja_bind(c, line, name, a, (const char *const[]){"sub", NULL}, &sub);
    jinja_arg_str(c, line, name, sub);
    if (!strcmp(name, "count")) {
        if (sub.s.n == 0) return jval_int((int64_t)ju8_len(s.s.p, s.s.n) + 1);
        int64_t k = 0;
        for (const char *p = s.s.p; (p = memmem(p, s.s.n - (size_t)(p - s.s.p), sub.s.p, sub.s.n));
             p += sub.s.n)
            k++;
        return jval_int(k);
    }
    int64_t found = -1;
    if (name[0] == 'r') {
        for (size_t k = s.s.n + 1; k-- > 0;)
            if (k + sub.s.n <= s.s.n && !memcmp(s.s.p + k, sub.s.p, sub.s.n)) {
                found = (int64_t)ju8_len(s.s.p, k);
                break;
            }
    } else {
        const char *hit = sub.s.n ? memmem(s.s.p, s.s.n, sub.s.p, sub.s.n) : s.s.p;
        if (hit) found = (int64_t)ju8_len(s.s.p, (size_t)(hit - s.s.p));
    }
    if (found < 0 && strstr(name, "index")) jinja_fail(c, line, "substring not found");
    return jval_int(found);
}
static jval m_find(jctx *c, int line, jval s, jargs *a) {
    return search(c, line, s, a, "find");
}
static jval m_rfind(jctx *c, int line, jval s, jargs *a) {
    return search(c, line, s, a, "rfind");
}
static jval m_index(jctx *c, int line, jval s, jargs *a) {
    return search(c, line, s, a, "index");
}
static jval m_rindex(jctx *c, int line, jval s, jargs *a) {
    return search(c, line, s, a, "rindex");
}
static jval m_count(jctx *c, int line, jval s, jargs *a) {
    return search(c, line, s, a, "count");
}

static jval affix_remove(jctx *c, int line, jval s, jargs *a, int suffix) {
    const char *name = suffix ? "removesuffix" : "removeprefix";
    jval x;
    jinja_bind(c, line, name, a, (const char *const[]){"affix", NULL}, &x);
    jinja_arg_str(c, line, name, x);
    if (!x.s.n || !affix_match(c, line, s, x, suffix, name)) return s;
    return jval_strn(s.s.p + (suffix ? 0 : x.s.n), s.s.n - x.s.n);
}
static jval m_removeprefix(jctx *c, int line, jval s, jargs *a) {
    return affix_remove(c, line, s, a, 0);
}
static jval m_removesuffix(jctx *c, int line, jval s, jargs *a) {
    return affix_remove(c, line, s, a, 1);
}

// isspace / isupper / islower / isdigit / isalpha / isalnum. The last three
// are exact for ASCII text only; other text fails rather than guess.
static jval classify(jctx *c, int line, jval s, jargs *a, const char *name) {
    jinja_bind(c, line, name, a, (const char *const[]){NULL}, NULL);
    if (s.s.n == 0) return jval_bool(0);
    int any_cased = 0;
    size_t i = 0;
    while (i < s.s.n) {
        uint32_t cp = ju8_next(s.s.p, s.s.n, &i);
        if (!strcmp(name, "isspace")) {
            if (!ju8_is_space(cp)) return jval_bool(0);
            continue;
        }
        if (!strcmp(name, "isupper") || !strcmp(name, "islower")) {
            if (!jinja_is_cased(cp)) continue;
            any_cased = 1;
            // Upper: maps only down; lower: maps only up (or expands, as ß).
            // Title-case digraphs (Dž) map both ways: neither.
            int up = jinja_upper_cp(cp) == cp && jinja_lower_cp(cp) != cp;
            int low = jinja_lower_cp(cp) == cp && !up;
            if (!(name[2] == 'u' ? up : low)) return jval_bool(0);
            continue;
        }
        if (cp >= 0x80) jinja_fail(c, line, "str.%s() of non-ASCII text is not supported", name);
        int digit = cp >= '0' && cp <= '9', alpha = (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
        int ok = !strcmp(name, "isdigit")   ? digit
                 : !strcmp(name, "isalpha") ? alpha
                                            : digit || alpha;
        if (!ok) return jval_bool(0);
    }
    return jval_bool(name[2] == 'u' || name[2] == 'l' ? any_cased : 1);
}
static jval m_isspace(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "isspace");
}
static jval m_isupper(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "isupper");
}
static jval m_islower(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "islower");
}
static jval m_isdigit(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "isdigit");
}
static jval m_isalpha(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "isalpha");
}
static jval m_isalnum(jctx *c, int line, jval s, jargs *a) {
    return classify(c, line, s, a, "isalnum");
}

// str.format with "{}", "{0}" and "{name}" fields (no format specs).
static jval m_format(jctx *c, int line, jval s, jargs *a) {
    jbuf b;
    jbuf_init(&b, c->a);
    int auto_index = 0;
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        if ((ch == '{' || ch == '}') && i + 1 < s.s.n && s.s.p[i + 1] == ch) {
            jbuf_putc(&b, ch);
            i++;
            continue;
        }
        if (ch == '}') jinja_fail(c, line, "single '}' encountered in format string");
        if (ch != '{') {
            jbuf_putc(&b, ch);
            continue;
        }
        size_t end = i + 1;
        while (end < s.s.n && s.s.p[end] != '}') end++;
        if (end >= s.s.n) jinja_fail(c, line, "single '{' encountered in format string");
        const char *f = s.s.p + i + 1;
        size_t fn = end - i - 1;
        int conv = 0;
        if (fn >= 2 && f[fn - 2] == '!') {
            conv = f[fn - 1];
            fn -= 2;
        }
        if (memchr(f, ':', fn) || memchr(f, '.', fn) || memchr(f, '[', fn) ||
            (conv && conv != 's' && conv != 'r'))
            jinja_fail(c, line, "str.format(): only plain {}, {N} and {name} fields are supported");
        jval v;
        if (fn == 0 || (f[0] >= '0' && f[0] <= '9')) {
            int64_t k = 0;
            if (fn == 0)
                k = auto_index++;
            else
                for (size_t j = 0; j < fn && k <= a->npos; j++) {
                    if (f[j] < '0' || f[j] > '9')
                        jinja_fail(c, line, "str.format(): bad field name '%.*s'", (int)fn, f);
                    k = k * 10 + (f[j] - '0');
                }
            if (k >= a->npos)
                jinja_fail(c, line, "str.format(): replacement index %" PRId64 " out of range", k);
            v = a->pos[k];
        } else {
            int k = 0;
            while (k < a->nkw && (strlen(a->kwnames[k]) != fn || memcmp(a->kwnames[k], f, fn))) k++;
            if (k == a->nkw)
                jinja_fail(c, line, "str.format(): no argument named '%.*s'", (int)fn, f);
            v = a->kw[k];
        }
        if (conv == 'r') {
            if (jval_write_repr(&b, v) < 0)
                jinja_fail(c, line, "cannot format a %s", jval_type_name(v));
        } else {
            jval t = jinja_to_str(c, line, v);
            jbuf_put(&b, t.s.p, t.s.n);
        }
        i = end;
    }
    return buf_str(&b);
}

static const jbuiltin str_methods[] = {
    {"capitalize", m_capitalize},
    {"count", m_count},
    {"endswith", m_endswith},
    {"find", m_find},
    {"format", m_format},
    {"index", m_index},
    {"isalnum", m_isalnum},
    {"isalpha", m_isalpha},
    {"isdigit", m_isdigit},
    {"islower", m_islower},
    {"isspace", m_isspace},
    {"isupper", m_isupper},
    {"join", m_join},
    {"lower", m_lower},
    {"lstrip", m_lstrip},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"replace", m_replace},
    {"rfind", m_rfind},
    {"rindex", m_rindex},
    {"rsplit", m_rsplit},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"splitlines", m_splitlines},
    {"startswith", m_startswith},
    {"strip", m_strip},
    {"title", m_title},
    {"upper", m_upper},
};

// The rest of Python's str methods: known, not provided.
static const char *const str_other[] = {"casefold",   "center",      "encode",    "expandtabs",
                                        "format_map", "isascii",     "isdecimal", "isidentifier",
                                        "isnumeric",  "isprintable", "istitle",   "ljust",
                                        "maketrans",  "partition",   "rjust",     "rpartition",
                                        "swapcase",   "translate",   "zfill",     NULL};

jbuiltin_fn jinja_str_method(jctx *c, int line, const char *name) {
    for (size_t i = 0; i < sizeof str_methods / sizeof *str_methods; i++)
        if (!strcmp(str_methods[i].name, name)) return str_methods[i].fn;
    for (int i = 0; str_other[i]; i++)
        if (!strcmp(str_other[i], name))
            jinja_fail(c, line, "unsupported string method '%s'", name);
    return NULL;
}
