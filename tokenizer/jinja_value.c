// jinja_value.c - construction of interpreter values and the Python semantics
// templates observe: truthiness, ==, <, str(), repr() and json.dumps().
#include "jinja_value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jval jval_str(const char *p) {
    return jval_strn(p, strlen(p));
}

jlist *jlist_new(jarena *a, jlist_kind kind, size_t cap) {
    jlist *l = jarena_zalloc(a, sizeof *l);
    l->kind = (uint8_t)kind;
    l->cap = cap;
    l->items = cap ? jarena_alloc(a, cap * sizeof(jval)) : NULL;
    return l;
}

void jlist_push(jarena *a, jlist *l, jval v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jval *items = jarena_alloc(a, cap * sizeof(jval));
        if (l->n) memcpy(items, l->items, l->n * sizeof(jval));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
}

jval jval_list(jlist *l) {
    return (jval){.type = JV_LIST, .list = l};
}

jdict *jdict_new(jarena *a, size_t cap) {
    jdict *d = jarena_zalloc(a, sizeof *d);
    d->cap = cap;
    if (cap) {
        d->keys = jarena_alloc(a, cap * sizeof(jval));
        d->vals = jarena_alloc(a, cap * sizeof(jval));
    }
    return d;
}

jval *jdict_get(const jdict *d, jval key) {
    for (size_t i = 0; i < d->n; i++)
        if (jval_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

jval *jdict_get_str(const jdict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++) {
        const jval *k = &d->keys[i];
        if (k->type == JV_STR && k->s.n == n && memcmp(k->s.p, key, n) == 0) return &d->vals[i];
    }
    return NULL;
}

void jdict_set(jarena *a, jdict *d, jval key, jval val) {
    jval *old = jdict_get(d, key);
    if (old) {
        *old = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jval *keys = jarena_alloc(a, cap * sizeof(jval));
        jval *vals = jarena_alloc(a, cap * sizeof(jval));
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof(jval));
            memcpy(vals, d->vals, d->n * sizeof(jval));
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
}

jval jval_dict(jdict *d) {
    return (jval){.type = JV_DICT, .dict = d};
}

// Integral JSON numbers in this range become ints (cJSON keeps no trace of
// whether the text had a fraction, so 1.0 in the input is the int 1).
#define JSON_INT_LIMIT 9.2e18

jval jval_from_cjson(jarena *a, const cJSON *j) {
    if (cJSON_IsString(j)) return jval_str(j->valuestring ? j->valuestring : "");
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < JSON_INT_LIMIT) return jval_int((int64_t)d);
        return jval_float(d);
    }
    if (cJSON_IsBool(j)) return jval_bool(cJSON_IsTrue(j));
    if (cJSON_IsArray(j)) {
        jlist *l = jlist_new(a, JL_LIST, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *e = j->child; e; e = e->next) jlist_push(a, l, jval_from_cjson(a, e));
        return jval_list(l);
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jdict_new(a, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *e = j->child; e; e = e->next)
            jdict_set(a, d, jval_str(e->string ? e->string : ""), jval_from_cjson(a, e));
        return jval_dict(d);
    }
    return jval_none();
}

int jval_truthy(jval v) {
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE:
        return 0;
    case JV_BOOL:
        return v.b;
    case JV_INT:
        return v.i != 0;
    case JV_FLOAT:
        return v.f != 0;
    case JV_STR:
        return v.s.n > 0;
    case JV_LIST:
        return v.list->kind == JL_GEN || v.list->n > 0;
    case JV_DICT:
        return v.dict->is_namespace || v.dict->n > 0;
    default:
        return 1;
    }
}

static int is_number(jval v) {
    return v.type == JV_BOOL || v.type == JV_INT || v.type == JV_FLOAT;
}

static double num_value(jval v) {
    return v.type == JV_FLOAT ? v.f : v.type == JV_INT ? (double)v.i : (double)v.b;
}

static int64_t int_value(jval v) {
    return v.type == JV_INT ? v.i : v.b;
}

// Lists, tuples and ranges compare by items with their own kind only.
static int seq_comparable(const jlist *a, const jlist *b) {
    return a->kind == b->kind && (a->kind == JL_LIST || a->kind == JL_TUPLE || a->kind == JL_RANGE);
}

// Containers nested deeper than this (a template can build them) are not
// compared or printed: recursion that deep would risk the C stack.
#define JVAL_MAX_DEPTH 512

static int equal_at(jval a, jval b, int depth) {
    if (depth > JVAL_MAX_DEPTH) return 0;
    if (is_number(a) && is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT) return int_value(a) == int_value(b);
        return num_value(a) == num_value(b);
    }
    if (a.type != b.type) return 0;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_STR:
        return a.s.n == b.s.n && memcmp(a.s.p, b.s.p, a.s.n) == 0;
    case JV_LIST:
        if (a.list == b.list) return 1;
        if (!seq_comparable(a.list, b.list) || a.list->n != b.list->n) return 0;
        for (size_t i = 0; i < a.list->n; i++)
            if (!equal_at(a.list->items[i], b.list->items[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a.dict == b.dict) return 1;
        if (a.dict->is_namespace || b.dict->is_namespace || a.dict->n != b.dict->n) return 0;
        for (size_t i = 0; i < a.dict->n; i++) {
            const jval *o = jdict_get(b.dict, a.dict->keys[i]);
            if (!o || !equal_at(a.dict->vals[i], *o, depth + 1)) return 0;
        }
        return 1;
    case JV_FUNC:
        return a.fn == b.fn;
    case JV_LOOP:
        return a.loop == b.loop;
    default:
        return 0;
    }
}

int jval_equal(jval a, jval b) {
    return equal_at(a, b, 0);
}

static int compare_at(jval a, jval b, int *out, int depth) {
    if (depth > JVAL_MAX_DEPTH) return -1;
    if (is_number(a) && is_number(b)) {
        if (a.type != JV_FLOAT && b.type != JV_FLOAT) {
            int64_t x = int_value(a), y = int_value(b);
            *out = x < y ? -1 : x > y;
        } else {
            double x = num_value(a), y = num_value(b);
            *out = x < y ? -1 : x > y; // NaN compares as equal: every op false but <=, >=
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
        int c = n ? memcmp(a.s.p, b.s.p, n) : 0; // UTF-8 byte order = code point order
        *out = c ? (c < 0 ? -1 : 1) : (a.s.n < b.s.n ? -1 : a.s.n > b.s.n);
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST && seq_comparable(a.list, b.list) &&
        a.list->kind != JL_RANGE) {
        size_t n = a.list->n < b.list->n ? a.list->n : b.list->n;
        for (size_t i = 0; i < n; i++) {
            if (equal_at(a.list->items[i], b.list->items[i], depth + 1)) continue;
            return compare_at(a.list->items[i], b.list->items[i], out, depth + 1);
        }
        *out = a.list->n < b.list->n ? -1 : a.list->n > b.list->n;
        return 0;
    }
    return -1;
}

int jval_compare(jval a, jval b, int *out) {
    return compare_at(a, b, out, 0);
}

const char *jval_type_name(jval v) {
    static const char *const lists[] = {"list",       "tuple",     "generator",  "range",
                                        "dict_items", "dict_keys", "dict_values"};
    switch (v.type) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        return lists[v.list->kind];
    case JV_DICT:
        return v.dict->is_namespace ? "Namespace" : "dict";
    case JV_FUNC:
        return "function";
    default:
        return "LoopContext";
    }
}

void jval_write_float(jbuf *b, double f) {
    if (isnan(f)) {
        jbuf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        jbuf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    // Shortest digits that read back as f, as Python's repr.
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    const char *p = e;
    if (*p == '-') {
        jbuf_putc(b, '-');
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            jbuf_puts(b, "0.");
            for (int i = 0; i < -exp - 1; i++) jbuf_putc(b, '0');
            jbuf_put(b, digits, (size_t)nd);
            return;
        }
        for (int i = 0; i <= exp; i++) jbuf_putc(b, i < nd ? digits[i] : '0');
        jbuf_putc(b, '.');
        if (nd > exp + 1)
            jbuf_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
        else
            jbuf_putc(b, '0');
        return;
    }
    jbuf_putc(b, digits[0]);
    if (nd > 1) {
        jbuf_putc(b, '.');
        jbuf_put(b, digits + 1, (size_t)(nd - 1));
    }
    jbuf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

// Python's str.isprintable() for the code points it is false for that occur
// in practice (controls, format characters, separators other than space,
// surrogates, private use); unassigned code points are not known here.
static int is_printable(uint32_t cp) {
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) return 0;
    if (cp < 0x600) return 1;
    if ((cp >= 0x600 && cp <= 0x605) || cp == 0x61c || cp == 0x6dd || cp == 0x70f || cp == 0x180e ||
        cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
        (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || (cp >= 0xd800 && cp <= 0xf8ff) ||
        cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) || cp >= 0xf0000 ||
        (cp >= 0xe0000 && cp <= 0xe007f))
        return 0;
    return 1;
}

static void write_str_repr(jbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jbuf_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju8_next(s, n, &i);
        if (cp == (uint32_t)q || cp == '\\') {
            jbuf_putc(b, '\\');
            jbuf_putc(b, (char)cp);
        } else if (cp == '\n') {
            jbuf_puts(b, "\\n");
        } else if (cp == '\r') {
            jbuf_puts(b, "\\r");
        } else if (cp == '\t') {
            jbuf_puts(b, "\\t");
        } else if (!is_printable(cp)) {
            if (cp < 0x100)
                jbuf_printf(b, "\\x%02x", cp);
            else if (cp < 0x10000)
                jbuf_printf(b, "\\u%04x", cp);
            else
                jbuf_printf(b, "\\U%08x", cp);
        } else {
            jbuf_put(b, s + start, i - start);
        }
    }
    jbuf_putc(b, q);
}

static int write_value(jbuf *b, jval v, int repr, int depth);

static int write_items(jbuf *b, const jlist *l, const char *open, const char *close, int depth) {
    jbuf_puts(b, open);
    for (size_t i = 0; i < l->n; i++) {
        if (i) jbuf_puts(b, ", ");
        if (write_value(b, l->items[i], 1, depth + 1) < 0) return -1;
    }
    if (l->kind == JL_TUPLE && l->n == 1) jbuf_putc(b, ',');
    jbuf_puts(b, close);
    return 0;
}

static int write_container(jbuf *b, jval v, int depth) {
    if (depth > JVAL_MAX_DEPTH) return -1; // also ends a namespace that holds itself
    if (v.type == JV_DICT) {
        const jdict *d = v.dict;
        jbuf_puts(b, d->is_namespace ? "<Namespace {" : "{");
        for (size_t i = 0; i < d->n; i++) {
            if (i) jbuf_puts(b, ", ");
            if (write_value(b, d->keys[i], 1, depth + 1) < 0) return -1;
            jbuf_puts(b, ": ");
            if (write_value(b, d->vals[i], 1, depth + 1) < 0) return -1;
        }
        jbuf_puts(b, d->is_namespace ? "}>" : "}");
        return 0;
    }
    const jlist *l = v.list;
    switch (l->kind) {
    case JL_LIST:
        return write_items(b, l, "[", "]", depth);
    case JL_TUPLE:
        return write_items(b, l, "(", ")", depth);
    case JL_ITEMS:
        return write_items(b, l, "dict_items([", "])", depth);
    case JL_KEYS:
        return write_items(b, l, "dict_keys([", "])", depth);
    case JL_VALUES:
        return write_items(b, l, "dict_values([", "])", depth);
    case JL_RANGE:
        jbuf_printf(b, "range(%" PRId64 ", %" PRId64, l->r_start, l->r_stop);
        if (l->r_step != 1) jbuf_printf(b, ", %" PRId64, l->r_step);
        jbuf_putc(b, ')');
        return 0;
    default:
        return -1; // a generator prints as its address
    }
}

static int write_value(jbuf *b, jval v, int repr, int depth) {
    switch (v.type) {
    case JV_UNDEF:
        if (repr) jbuf_puts(b, "Undefined");
        return 0;
    case JV_NONE:
        jbuf_puts(b, "None");
        return 0;
    case JV_BOOL:
        jbuf_puts(b, v.b ? "True" : "False");
        return 0;
    case JV_INT:
        jbuf_printf(b, "%" PRId64, v.i);
        return 0;
    case JV_FLOAT:
        jval_write_float(b, v.f);
        return 0;
    case JV_STR:
        if (repr)
            write_str_repr(b, v.s.p, v.s.n);
        else
            jbuf_put(b, v.s.p, v.s.n);
        return 0;
    case JV_LIST:
    case JV_DICT:
        return write_container(b, v, depth);
    case JV_LOOP:
        jbuf_printf(b, "<LoopContext %zu/%zu>", v.loop->index0 + 1, v.loop->items->n);
        return 0;
    default:
        return -1;
    }
}

int jval_write_str(jbuf *b, jval v) {
    return write_value(b, v, 0, 0);
}
int jval_write_repr(jbuf *b, jval v) {
    return write_value(b, v, 1, 0);
}

static void write_json_str(jbuf *b, const char *s, size_t n, int ensure_ascii) {
    jbuf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju8_next(s, n, &i);
        switch (cp) {
        case '"':
            jbuf_puts(b, "\\\"");
            continue;
        case '\\':
            jbuf_puts(b, "\\\\");
            continue;
        case '\n':
            jbuf_puts(b, "\\n");
            continue;
        case '\r':
            jbuf_puts(b, "\\r");
            continue;
        case '\t':
            jbuf_puts(b, "\\t");
            continue;
        case '\b':
            jbuf_puts(b, "\\b");
            continue;
        case '\f':
            jbuf_puts(b, "\\f");
            continue;
        default:
            break;
        }
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7f)) {
            if (cp >= 0x10000) {
                uint32_t x = cp - 0x10000;
                jbuf_printf(b, "\\u%04x\\u%04x", 0xd800 + (x >> 10), 0xdc00 + (x & 0x3ff));
            } else {
                jbuf_printf(b, "\\u%04x", cp);
            }
        } else {
            jbuf_put(b, s + start, i - start);
        }
    }
    jbuf_putc(b, '"');
}

static void json_newline(jbuf *b, const jjson_opts *o, int depth) {
    jbuf_putc(b, '\n');
    for (int i = 0; i < depth; i++) {
        if (o->indent_str)
            jbuf_puts(b, o->indent_str);
        else
            for (int k = 0; k < o->indent; k++) jbuf_putc(b, ' ');
    }
}

static int json_pretty(const jjson_opts *o) {
    return o->indent_str || o->indent >= 0;
}

// Order of dict entries for sort_keys: indices sorted by key (insertion sort:
// tool schemas have a handful of keys).
static void sorted_order(const jdict *d, size_t *idx) {
    for (size_t i = 0; i < d->n; i++) {
        size_t j = i;
        while (j > 0) {
            int c = 0;
            if (jval_compare(d->keys[idx[j - 1]], d->keys[i], &c) != 0 || c <= 0) break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}

const char *jval_write_json(jbuf *b, jval v, const jjson_opts *o, int depth) {
    if (depth > JVAL_MAX_DEPTH) return "a value nested too deeply";
    const char *item_sep = o->item_sep ? o->item_sep : json_pretty(o) ? "," : ", ";
    const char *key_sep = o->key_sep ? o->key_sep : ": ";
    switch (v.type) {
    case JV_NONE:
        jbuf_puts(b, "null");
        return NULL;
    case JV_BOOL:
        jbuf_puts(b, v.b ? "true" : "false");
        return NULL;
    case JV_INT:
        jbuf_printf(b, "%" PRId64, v.i);
        return NULL;
    case JV_FLOAT:
        if (isnan(v.f))
            jbuf_puts(b, "NaN");
        else if (isinf(v.f))
            jbuf_puts(b, v.f < 0 ? "-Infinity" : "Infinity");
        else
            jval_write_float(b, v.f);
        return NULL;
    case JV_STR:
        write_json_str(b, v.s.p, v.s.n, o->ensure_ascii);
        return NULL;
    case JV_LIST: {
        const jlist *l = v.list;
        if (l->kind != JL_LIST && l->kind != JL_TUPLE) return jval_type_name(v);
        if (l->n == 0) {
            jbuf_puts(b, "[]");
            return NULL;
        }
        jbuf_putc(b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jbuf_puts(b, item_sep);
            if (json_pretty(o)) json_newline(b, o, depth + 1);
            const char *bad = jval_write_json(b, l->items[i], o, depth + 1);
            if (bad) return bad;
        }
        if (json_pretty(o)) json_newline(b, o, depth);
        jbuf_putc(b, ']');
        return NULL;
    }
    case JV_DICT: {
        const jdict *d = v.dict;
        if (d->is_namespace) return "Namespace";
        if (d->n == 0) {
            jbuf_puts(b, "{}");
            return NULL;
        }
        size_t *idx = jarena_alloc(b->a, d->n * sizeof(size_t));
        for (size_t i = 0; i < d->n; i++) idx[i] = i;
        if (o->sort_keys) sorted_order(d, idx);
        jbuf_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            jval k = d->keys[idx[i]];
            if (i) jbuf_puts(b, item_sep);
            if (json_pretty(o)) json_newline(b, o, depth + 1);
            if (k.type == JV_STR) {
                write_json_str(b, k.s.p, k.s.n, o->ensure_ascii);
            } else if (k.type == JV_NONE || k.type == JV_BOOL || k.type == JV_INT ||
                       k.type == JV_FLOAT) {
                jbuf_putc(b, '"');
                jval_write_json(b, k, o, depth + 1);
                jbuf_putc(b, '"');
            } else {
                return jval_type_name(k);
            }
            jbuf_puts(b, key_sep);
            const char *bad = jval_write_json(b, d->vals[idx[i]], o, depth + 1);
            if (bad) return bad;
        }
        if (json_pretty(o)) json_newline(b, o, depth);
        jbuf_putc(b, '}');
        return NULL;
    }
    default:
        return jval_type_name(v);
    }
}
