// jinja_filters.c - jinja2's built-in filters that chat templates use, with
// jinja2 3.1's semantics (map, select, reject, selectattr, rejectattr, items,
// unique and reverse give one-shot generators, as there), plus transformers'
// tojson (json.dumps with ensure_ascii=False, indent, separators, sort_keys).
#include "jinja_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAMS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_PARAMS ((const char *const[]){NULL})

static jval arg_or(jval v, jval dflt) {
    return jinja_given(v) ? v : dflt;
}

static jlist *generator(jctx *c, size_t cap) {
    return jlist_new(c->a, JL_GEN, cap);
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
static jval attr_lookup(jctx *c, int line, jval item, jval attr) {
    if (attr.type != JV_STR) return jinja_getitem(c, line, item, attr);
    size_t i = 0;
    while (i <= attr.s.n) {
        size_t e = i;
        while (e < attr.s.n && attr.s.p[e] != '.') e++;
        jval part = jval_strn(attr.s.p + i, e - i);
        int digits = e > i;
        int64_t k = 0;
        for (size_t j = i; j < e && digits; j++) {
            digits = attr.s.p[j] >= '0' && attr.s.p[j] <= '9';
            k = k * 10 + (attr.s.p[j] - '0');
        }
        item = jinja_getitem(c, line, item, digits ? jval_int(k) : part);
        i = e + 1;
    }
    return item;
}

static jval fold_case(jctx *c, jval v, int case_sensitive) {
    return !case_sensitive && v.type == JV_STR ? jinja_str_recase(c, v, JCASE_LOWER) : v;
}

// Sort key of an item: its attribute (or comma-separated attributes) when
// given, lowercased unless case_sensitive.
static jval sort_key(jctx *c, int line, jval item, jval attr, int case_sensitive) {
    if (!jinja_given(attr) || attr.type == JV_NONE) return fold_case(c, item, case_sensitive);
    if (attr.type == JV_STR && memchr(attr.s.p, ',', attr.s.n)) {
        jlist *t = jlist_new(c->a, JL_TUPLE, 2);
        size_t i = 0;
        while (i <= attr.s.n) {
            size_t e = i;
            while (e < attr.s.n && attr.s.p[e] != ',') e++;
            jval part = jval_strn(attr.s.p + i, e - i);
            jlist_push(c->a, t, fold_case(c, attr_lookup(c, line, item, part), case_sensitive));
            i = e + 1;
        }
        return jval_list(t);
    }
    return fold_case(c, attr_lookup(c, line, item, attr), case_sensitive);
}

// a < b, failing as Python does for unorderable values.
static int less(jctx *c, int line, jval a, jval b) {
    int r;
    if (a.type == JV_UNDEF) jinja_fail_undefined(c, line, a);
    if (b.type == JV_UNDEF) jinja_fail_undefined(c, line, b);
    if (jval_compare(a, b, &r) != 0)
        jinja_fail(c, line, "'<' not supported between instances of '%s' and '%s'",
                   jval_type_name(a), jval_type_name(b));
    return r < 0;
}

// Stable merge sort of vals by keys (Python's sorted(..., reverse=...)).
static void sort_by(jctx *c, int line, jval *keys, jval *vals, size_t n, int reverse) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_by(c, line, keys, vals, h, reverse);
    sort_by(c, line, keys + h, vals + h, n - h, reverse);
    jval *tk = jarena_alloc(c->a, n * sizeof(jval)), *tv = jarena_alloc(c->a, n * sizeof(jval));
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int take_right =
            reverse ? less(c, line, keys[i], keys[j]) : less(c, line, keys[j], keys[i]);
        size_t from = take_right ? j++ : i++;
        tk[k] = keys[from];
        tv[k++] = vals[from];
    }
    while (i < h) tk[k] = keys[i], tv[k++] = vals[i++];
    while (j < n) tk[k] = keys[j], tv[k++] = vals[j++];
    memcpy(keys, tk, n * sizeof(jval));
    memcpy(vals, tv, n * sizeof(jval));
}

static jval f_abs(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "abs", a, NO_PARAMS, NULL);
    if (v.type == JV_BOOL) return jval_int(v.b);
    if (v.type == JV_INT) {
        if (v.i == INT64_MIN) jinja_fail(c, line, "integer overflow");
        return jval_int(v.i < 0 ? -v.i : v.i);
    }
    if (v.type == JV_FLOAT) return jval_float(fabs(v.f));
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    jinja_fail(c, line, "bad operand type for abs(): '%s'", jval_type_name(v));
}

static jval f_attr(jctx *c, int line, jval v, jargs *a) {
    jval name;
    jinja_bind(c, line, "attr", a, PARAMS("name"), &name);
    jinja_arg_str(c, line, "attr", name);
    const char *n = jarena_strndup(c->a, name.s.p, name.s.n);
    // attr() looks up attributes only: a dict's keys are not attributes.
    if (v.type == JV_DICT && !v.dict->is_namespace && !jinja_find_method(c, line, v, n))
        return jval_undef(n);
    return jinja_getattr(c, line, v, n);
}

static jval f_default(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "default", a, PARAMS("default_value", "boolean"), p);
    int boolean = jinja_given(p[1]) && jval_truthy(p[1]);
    if (v.type == JV_UNDEF || (boolean && !jval_truthy(v))) return arg_or(p[0], jval_str(""));
    return v;
}

static jval f_dictsort(jctx *c, int line, jval v, jargs *a) {
    jval p[3];
    jinja_bind(c, line, "dictsort", a, PARAMS("case_sensitive", "by", "reverse"), p);
    if (v.type != JV_DICT || v.dict->is_namespace) jinja_fail(c, line, "dictsort: expected a dict");
    int by_value = 0;
    if (jinja_given(p[1])) {
        jval by = jinja_arg_str(c, line, "dictsort", p[1]);
        by_value = by.s.n == 5 && !memcmp(by.s.p, "value", 5);
        if (!by_value && !(by.s.n == 3 && !memcmp(by.s.p, "key", 3)))
            jinja_fail(c, line, "You can only sort by either \"key\" or \"value\"");
    }
    size_t n = v.dict->n;
    jval *keys = jarena_alloc(c->a, (n + 1) * sizeof(jval)),
         *vals = jarena_alloc(c->a, (n + 1) * sizeof(jval));
    for (size_t i = 0; i < n; i++) {
        jlist *pair = jlist_new(c->a, JL_TUPLE, 2);
        jlist_push(c->a, pair, v.dict->keys[i]);
        jlist_push(c->a, pair, v.dict->vals[i]);
        vals[i] = jval_list(pair);
        keys[i] = fold_case(c, by_value ? v.dict->vals[i] : v.dict->keys[i],
                            jinja_given(p[0]) && jval_truthy(p[0]));
    }
    sort_by(c, line, keys, vals, n, jinja_given(p[2]) && jval_truthy(p[2]));
    jlist *l = jlist_new(c->a, JL_LIST, n);
    for (size_t i = 0; i < n; i++) jlist_push(c->a, l, vals[i]);
    return jval_list(l);
}

static jval f_first(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "first", a, NO_PARAMS, NULL);
    jlist *l = jinja_iterate(c, line, v);
    return l->n ? l->items[0] : jval_undef(NULL);
}

static jval f_last(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "last", a, NO_PARAMS, NULL);
    if (v.type == JV_LIST && v.list->kind == JL_GEN)
        jinja_fail(c, line, "'generator' object is not reversible");
    jlist *l = jinja_iterate(c, line, v);
    return l->n ? l->items[l->n - 1] : jval_undef(NULL);
}

static jval f_length(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "length", a, NO_PARAMS, NULL);
    return jval_int(jinja_length(c, line, v));
}

static jval f_list(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "list", a, NO_PARAMS, NULL);
    jlist *src = jinja_iterate(c, line, v), *l = jlist_new(c->a, JL_LIST, src->n);
    for (size_t i = 0; i < src->n; i++) jlist_push(c->a, l, src->items[i]);
    return jval_list(l);
}

static jval f_items(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "items", a, NO_PARAMS, NULL);
    if (v.type == JV_UNDEF) return jval_list(generator(c, 0));
    if (v.type != JV_DICT || v.dict->is_namespace)
        jinja_fail(c, line, "Can only get item pairs from a mapping.");
    jlist *l = generator(c, v.dict->n);
    for (size_t i = 0; i < v.dict->n; i++) {
        jlist *pair = jlist_new(c->a, JL_TUPLE, 2);
        jlist_push(c->a, pair, v.dict->keys[i]);
        jlist_push(c->a, pair, v.dict->vals[i]);
        jlist_push(c->a, l, jval_list(pair));
    }
    return jval_list(l);
}

static jval f_join(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "join", a, PARAMS("d", "attribute"), p);
    jval sep = jinja_given(p[0]) ? jinja_to_str(c, line, p[0]) : jval_str("");
    jlist *l = jinja_iterate(c, line, v);
    jbuf b;
    jbuf_init(&b, c->a);
    for (size_t i = 0; i < l->n; i++) {
        jval item = l->items[i];
        if (jinja_given(p[1]) && p[1].type != JV_NONE) item = attr_lookup(c, line, item, p[1]);
        jval s = jinja_to_str(c, line, item);
        if (i) jbuf_put(&b, sep.s.p, sep.s.n);
        jbuf_put(&b, s.s.p, s.s.n);
    }
    return jval_strn(b.p ? b.p : "", b.n);
}

static jval str_filter(jctx *c, int line, jval v, jargs *a, const char *name, jcase mode) {
    jinja_bind(c, line, name, a, NO_PARAMS, NULL);
    return jinja_str_recase(c, jinja_to_str(c, line, v), mode);
}
static jval f_upper(jctx *c, int line, jval v, jargs *a) {
    return str_filter(c, line, v, a, "upper", JCASE_UPPER);
}
static jval f_lower(jctx *c, int line, jval v, jargs *a) {
    return str_filter(c, line, v, a, "lower", JCASE_LOWER);
}
static jval f_title(jctx *c, int line, jval v, jargs *a) {
    return str_filter(c, line, v, a, "title", JCASE_TITLE_WORDS);
}
static jval f_capitalize(jctx *c, int line, jval v, jargs *a) {
    return str_filter(c, line, v, a, "capitalize", JCASE_CAPITALIZE);
}

static jval f_string(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "string", a, NO_PARAMS, NULL);
    return jinja_to_str(c, line, v);
}

// With autoescape off (as transformers has it), safe and escape only mark the
// text: it matters where `+` meets a plain string (see jinja_binop).
static jval f_safe(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "safe", a, NO_PARAMS, NULL);
    jval s = jinja_to_str(c, line, v);
    s.markup = 1;
    return s;
}

static jval f_escape(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "escape", a, NO_PARAMS, NULL);
    return jinja_html_escape(c, jinja_to_str(c, line, v));
}

static jval f_trim(jctx *c, int line, jval v, jargs *a) {
    jval chars;
    jinja_bind(c, line, "trim", a, PARAMS("chars"), &chars);
    return jinja_str_strip(c, line, jinja_to_str(c, line, v), chars, 3);
}

static jval f_replace(jctx *c, int line, jval v, jargs *a) {
    jval p[3];
    jinja_bind(c, line, "replace", a, PARAMS("old", "new", "count"), p);
    if (!jinja_given(p[0]) || !jinja_given(p[1]))
        jinja_fail(c, line, "replace() needs old and new");
    int64_t count =
        jinja_given(p[2]) && p[2].type != JV_NONE ? jinja_arg_int(c, line, "replace", p[2]) : -1;
    return jinja_str_replace(c, line, jinja_to_str(c, line, v), jinja_to_str(c, line, p[0]),
                             jinja_to_str(c, line, p[1]), count);
}

// Python's float(str): optional sign, digits with single '_' between,
// fraction, exponent, inf/infinity/nan; surrounding whitespace allowed.
static int parse_float(jval s, double *out) {
    jval t = s;
    size_t lo = s.s.n - ju8_lstrip_len(s.s.p, s.s.n), hi = ju8_rstrip_len(s.s.p, s.s.n);
    if (hi <= lo || hi - lo > 400) return -1;
    char buf[401];
    size_t k = 0;
    for (size_t i = lo; i < hi; i++) {
        char ch = t.s.p[i];
        if (ch == '_') {
            if (i == lo || i + 1 >= hi || !(t.s.p[i - 1] >= '0' && t.s.p[i - 1] <= '9') ||
                !(t.s.p[i + 1] >= '0' && t.s.p[i + 1] <= '9'))
                return -1;
            continue;
        }
        if (!strchr("0123456789+-.eEinfatyINFATY", ch)) return -1;
        buf[k++] = ch;
    }
    buf[k] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 && end != buf ? 0 : -1;
}

// Python's int(str, base) for bases 2..36 (and prefixes 0b/0o/0x).
static int parse_int(jval s, int base, int64_t *out) {
    size_t lo = s.s.n - ju8_lstrip_len(s.s.p, s.s.n), hi = ju8_rstrip_len(s.s.p, s.s.n);
    const char *p = s.s.p;
    int neg = 0;
    if (lo < hi && (p[lo] == '+' || p[lo] == '-')) neg = p[lo++] == '-';
    if (hi - lo > 2 && p[lo] == '0') {
        char x = (char)(p[lo + 1] | 0x20);
        int pb = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (pb && pb == base) lo += 2;
    }
    if (lo >= hi) return -1;
    uint64_t v = 0;
    for (size_t i = lo; i < hi; i++) {
        char ch = p[i];
        if (ch == '_' && i > lo && i + 1 < hi && p[i - 1] != '_') continue;
        int d = ch >= '0' && ch <= '9'                     ? ch - '0'
                : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z' ? (ch | 0x20) - 'a' + 10
                                                           : 99;
        if (d >= base) return -1;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return -1;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static jval f_int(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "int", a, PARAMS("default", "base"), p);
    jval dflt = arg_or(p[0], jval_int(0));
    int base = jinja_given(p[1]) ? (int)jinja_arg_int(c, line, "int", p[1]) : 10;
    if (base < 2 || base > 36) jinja_fail(c, line, "int() base must be >= 2 and <= 36");
    switch (v.type) {
    case JV_INT:
        return v;
    case JV_BOOL:
        return jval_int(v.b);
    case JV_FLOAT:
        if (isnan(v.f) || isinf(v.f))
            jinja_fail(c, line, "cannot convert float %s to integer",
                       isnan(v.f) ? "NaN" : "infinity");
        if (fabs(v.f) >= 9.2e18) jinja_fail(c, line, "integer overflow");
        return jval_int((int64_t)v.f);
    case JV_STR: {
        int64_t i;
        if (parse_int(v, base, &i) == 0) return jval_int(i);
        double f;
        if (parse_float(v, &f) == 0 && !isnan(f) && !isinf(f) && fabs(f) < 9.2e18)
            return jval_int((int64_t)f);
        return dflt;
    }
    case JV_UNDEF:
        jinja_fail_undefined(c, line, v);
    default:
        return dflt;
    }
}

static jval f_float(jctx *c, int line, jval v, jargs *a) {
    jval dflt;
    jinja_bind(c, line, "float", a, PARAMS("default"), &dflt);
    double f;
    switch (v.type) {
    case JV_INT:
        return jval_float((double)v.i);
    case JV_BOOL:
        return jval_float(v.b);
    case JV_FLOAT:
        return v;
    case JV_STR:
        if (parse_float(v, &f) == 0) return jval_float(f);
        break;
    case JV_UNDEF:
        jinja_fail_undefined(c, line, v);
    default:
        break;
    }
    return arg_or(dflt, jval_float(0.0));
}

static jval f_format(jctx *c, int line, jval v, jargs *a) {
    if (a->nkw) jinja_fail(c, line, "format: keyword arguments are not supported");
    jlist *t = jlist_new(c->a, JL_TUPLE, (size_t)a->npos);
    for (int i = 0; i < a->npos; i++) jlist_push(c->a, t, a->pos[i]);
    return jinja_str_percent(c, line, jinja_to_str(c, line, v), jval_list(t));
}

static jval f_indent(jctx *c, int line, jval v, jargs *a) {
    jval p[3];
    jinja_bind(c, line, "indent", a, PARAMS("width", "first", "blank"), p);
    jbuf ind;
    jbuf_init(&ind, c->a);
    if (jinja_given(p[0]) && p[0].type == JV_STR) {
        jbuf_put(&ind, p[0].s.p, p[0].s.n);
    } else {
        int64_t w = jinja_given(p[0]) ? jinja_arg_int(c, line, "indent", p[0]) : 4;
        for (int64_t i = 0; i < w && i < 10000; i++) jbuf_putc(&ind, ' ');
    }
    int first = jinja_given(p[1]) && jval_truthy(p[1]),
        blank = jinja_given(p[2]) && jval_truthy(p[2]);
    jval s = jinja_to_str(c, line, v);
    jbuf text;
    jbuf_init(&text, c->a);
    jbuf_put(&text, s.s.p, s.s.n);
    jbuf_putc(&text, '\n'); // as jinja2 does, for splitlines
    jargs none = {0};
    jval lines = jinja_str_method(c, line, "splitlines")(c, line, jval_strn(text.p, text.n), &none);
    jbuf b;
    jbuf_init(&b, c->a);
    if (first) jbuf_put(&b, ind.p, ind.n);
    for (size_t i = 0; i < lines.list->n; i++) {
        jval ln = lines.list->items[i];
        if (i) {
            jbuf_putc(&b, '\n');
            if (blank || ln.s.n) jbuf_put(&b, ind.p, ind.n);
        }
        jbuf_put(&b, ln.s.p, ln.s.n);
    }
    return jval_strn(b.p ? b.p : "", b.n);
}

static jval f_map(jctx *c, int line, jval v, jargs *a) {
    jlist *src = jinja_iterate(c, line, v), *out = generator(c, src->n);
    if (a->npos == 0) {
        jval p[2];
        jinja_bind(c, line, "map", a, PARAMS("attribute", "default"), p);
        if (!jinja_given(p[0])) jinja_fail(c, line, "map requires a filter argument");
        for (size_t i = 0; i < src->n; i++) {
            jval x = attr_lookup(c, line, src->items[i], p[0]);
            if (x.type == JV_UNDEF && jinja_given(p[1]) && p[1].type != JV_NONE) x = p[1];
            jlist_push(c->a, out, x);
        }
        return jval_list(out);
    }
    jval name = jinja_arg_str(c, line, "map", a->pos[0]);
    const jbuiltin *f = jinja_find_filter(jarena_strndup(c->a, name.s.p, name.s.n));
    if (!f) jinja_fail(c, line, "no filter named '%.*s'", (int)name.s.n, name.s.p);
    jargs rest = *a;
    rest.pos++;
    rest.npos--;
    for (size_t i = 0; i < src->n; i++) jlist_push(c->a, out, f->fn(c, line, src->items[i], &rest));
    return jval_list(out);
}

// select / reject / selectattr / rejectattr.
static jval select_items(jctx *c, int line, jval v, jargs *a, int by_attr, int keep) {
    jval attr = jval_undef(NULL);
    jargs rest = *a;
    if (by_attr) {
        if (rest.npos < 1) jinja_fail(c, line, "Missing parameter for attribute name");
        attr = rest.pos[0];
        rest.pos++;
        rest.npos--;
    }
    const char *test = NULL;
    if (rest.npos >= 1) {
        jval t = jinja_arg_str(c, line, "select", rest.pos[0]);
        test = jarena_strndup(c->a, t.s.p, t.s.n);
        rest.pos++;
        rest.npos--;
    }
    jlist *out = generator(c, 4);
    if (!jval_truthy(v)) return jval_list(out);
    jlist *src = jinja_iterate(c, line, v);
    for (size_t i = 0; i < src->n; i++) {
        jval x = by_attr ? attr_lookup(c, line, src->items[i], attr) : src->items[i];
        int ok = test ? jinja_run_test(c, line, test, x, &rest) : jval_truthy(x);
        if (ok == keep) jlist_push(c->a, out, src->items[i]);
    }
    return jval_list(out);
}
static jval f_select(jctx *c, int line, jval v, jargs *a) {
    return select_items(c, line, v, a, 0, 1);
}
static jval f_reject(jctx *c, int line, jval v, jargs *a) {
    return select_items(c, line, v, a, 0, 0);
}
static jval f_selectattr(jctx *c, int line, jval v, jargs *a) {
    return select_items(c, line, v, a, 1, 1);
}
static jval f_rejectattr(jctx *c, int line, jval v, jargs *a) {
    return select_items(c, line, v, a, 1, 0);
}

static jval f_reverse(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "reverse", a, NO_PARAMS, NULL);
    if (v.type == JV_STR) return jinja_slice(c, line, v, jval_none(), jval_none(), jval_int(-1));
    int is_gen = v.type == JV_LIST && v.list->kind == JL_GEN;
    jlist *src = jinja_iterate(c, line, v);
    jlist *out = jlist_new(c->a, is_gen ? JL_LIST : JL_GEN, src->n);
    for (size_t i = src->n; i > 0; i--) jlist_push(c->a, out, src->items[i - 1]);
    return jval_list(out);
}

// min / max / unique / sort share: attribute, case_sensitive.
static jval f_sort(jctx *c, int line, jval v, jargs *a) {
    jval p[3];
    jinja_bind(c, line, "sort", a, PARAMS("reverse", "case_sensitive", "attribute"), p);
    jlist *src = jinja_iterate(c, line, v);
    size_t n = src->n;
    jval *keys = jarena_alloc(c->a, (n + 1) * sizeof(jval)),
         *vals = jarena_alloc(c->a, (n + 1) * sizeof(jval));
    int cs = jinja_given(p[1]) && jval_truthy(p[1]);
    for (size_t i = 0; i < n; i++) {
        vals[i] = src->items[i];
        keys[i] = sort_key(c, line, vals[i], p[2], cs);
    }
    sort_by(c, line, keys, vals, n, jinja_given(p[0]) && jval_truthy(p[0]));
    jlist *l = jlist_new(c->a, JL_LIST, n);
    for (size_t i = 0; i < n; i++) jlist_push(c->a, l, vals[i]);
    return jval_list(l);
}

static jval min_max(jctx *c, int line, jval v, jargs *a, int want_max) {
    jval p[2];
    jinja_bind(c, line, want_max ? "max" : "min", a, PARAMS("case_sensitive", "attribute"), p);
    jlist *src = jinja_iterate(c, line, v);
    if (!src->n) return jval_undef(NULL);
    int cs = jinja_given(p[0]) && jval_truthy(p[0]);
    size_t best = 0;
    jval bk = sort_key(c, line, src->items[0], p[1], cs);
    for (size_t i = 1; i < src->n; i++) {
        jval k = sort_key(c, line, src->items[i], p[1], cs);
        if (want_max ? less(c, line, bk, k) : less(c, line, k, bk)) {
            best = i;
            bk = k;
        }
    }
    return src->items[best];
}
static jval f_min(jctx *c, int line, jval v, jargs *a) {
    return min_max(c, line, v, a, 0);
}
static jval f_max(jctx *c, int line, jval v, jargs *a) {
    return min_max(c, line, v, a, 1);
}

static jval f_unique(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "unique", a, PARAMS("case_sensitive", "attribute"), p);
    jlist *src = jinja_iterate(c, line, v), *out = generator(c, src->n);
    jval *seen = jarena_alloc(c->a, (src->n + 1) * sizeof(jval));
    size_t nseen = 0;
    int cs = jinja_given(p[0]) && jval_truthy(p[0]);
    for (size_t i = 0; i < src->n; i++) {
        jval k = sort_key(c, line, src->items[i], p[1], cs);
        if (k.type == JV_DICT || (k.type == JV_LIST && k.list->kind != JL_TUPLE))
            jinja_fail(c, line, "unhashable type: '%s'", jval_type_name(k));
        size_t j = 0;
        while (j < nseen && !jval_equal(seen[j], k)) j++;
        if (j < nseen) continue;
        seen[nseen++] = k;
        jlist_push(c->a, out, src->items[i]);
    }
    return jval_list(out);
}

static jval f_sum(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "sum", a, PARAMS("attribute", "start"), p);
    jval total = arg_or(p[1], jval_int(0));
    jlist *src = jinja_iterate(c, line, v);
    for (size_t i = 0; i < src->n; i++) {
        jval x = jinja_given(p[0]) && p[0].type != JV_NONE
                     ? attr_lookup(c, line, src->items[i], p[0])
                     : src->items[i];
        total = jinja_binop(c, line, JOP_ADD, total, x);
    }
    return total;
}

static jval f_round(jctx *c, int line, jval v, jargs *a) {
    jval p[2];
    jinja_bind(c, line, "round", a, PARAMS("precision", "method"), p);
    int64_t prec = jinja_given(p[0]) ? jinja_arg_int(c, line, "round", p[0]) : 0;
    if (prec < 0 || prec > 30)
        jinja_fail(c, line, "round(): precision %lld is not supported", (long long)prec);
    int method = 0; // common, ceil, floor
    if (jinja_given(p[1])) {
        jval m = jinja_arg_str(c, line, "round", p[1]);
        method = m.s.n == 4 && !memcmp(m.s.p, "ceil", 4)    ? 1
                 : m.s.n == 5 && !memcmp(m.s.p, "floor", 5) ? 2
                                                            : 0;
        if (!method && !(m.s.n == 6 && !memcmp(m.s.p, "common", 6)))
            jinja_fail(c, line, "method must be common, ceil or floor");
    }
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    if (v.type != JV_INT && v.type != JV_BOOL && v.type != JV_FLOAT)
        jinja_fail(c, line, "round(): expected a number, got %s", jval_type_name(v));
    double x = v.type == JV_FLOAT ? v.f : v.type == JV_INT ? (double)v.i : v.b;
    if (method == 0) {
        if (v.type != JV_FLOAT) return v.type == JV_BOOL ? jval_int(v.b) : v;
        if (isnan(x) || isinf(x)) return v;
        char buf[400]; // correctly rounded, half to even, as Python's round
        snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
        return jval_float(strtod(buf, NULL));
    }
    double scale = pow(10.0, (double)prec);
    return jval_float((method == 1 ? ceil(x * scale) : floor(x * scale)) / scale);
}

static jval f_tojson(jctx *c, int line, jval v, jargs *a) {
    jval p[4];
    jinja_bind(c, line, "tojson", a, PARAMS("ensure_ascii", "indent", "separators", "sort_keys"),
               p);
    jjson_opts o = {.indent = -1};
    o.ensure_ascii = jinja_given(p[0]) && jval_truthy(p[0]);
    o.sort_keys = jinja_given(p[3]) && jval_truthy(p[3]);
    if (jinja_given(p[1]) && p[1].type == JV_STR) {
        o.indent_str = jarena_strndup(c->a, p[1].s.p, p[1].s.n);
    } else if (jinja_given(p[1]) && p[1].type != JV_NONE) {
        int64_t ind = jinja_arg_int(c, line, "tojson", p[1]);
        o.indent = ind < 0 ? 0 : ind > 1000 ? 1000 : (int)ind;
    }
    if (jinja_given(p[2]) && p[2].type != JV_NONE) {
        jval s = p[2];
        if (s.type != JV_LIST || s.list->n != 2 || s.list->items[0].type != JV_STR ||
            s.list->items[1].type != JV_STR)
            jinja_fail(c, line, "tojson: separators must be a pair of strings");
        o.item_sep = jarena_strndup(c->a, s.list->items[0].s.p, s.list->items[0].s.n);
        o.key_sep = jarena_strndup(c->a, s.list->items[1].s.p, s.list->items[1].s.n);
    }
    jbuf b;
    jbuf_init(&b, c->a);
    const char *bad = jval_write_json(&b, v, &o, 0);
    if (bad && strchr(bad, ' ')) jinja_fail(c, line, "tojson: %s", bad);
    if (bad) jinja_fail(c, line, "Object of type %s is not JSON serializable", bad);
    return jval_strn(b.p ? b.p : "", b.n);
}

static const jbuiltin filters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"safe", f_safe},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
};

const jbuiltin *jinja_find_filter(const char *name) {
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
        if (!strcmp(filters[i].name, name)) return &filters[i];
    return NULL;
}
