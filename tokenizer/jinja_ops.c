// jinja_ops.c - operators and element access with Python's semantics:
// arithmetic (floor division and modulo round toward negative infinity),
// concatenation, `in`, attribute and item lookup as jinja2's sandbox does
// them, slicing, iteration and len().
#include "jinja_eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int is_intlike(jval v) {
    return v.type == JV_INT || v.type == JV_BOOL;
}
static int64_t intval(jval v) {
    return v.type == JV_INT ? v.i : v.b;
}
static int is_num(jval v) {
    return is_intlike(v) || v.type == JV_FLOAT;
}
static double numval(jval v) {
    return v.type == JV_FLOAT ? v.f : (double)intval(v);
}

jval jinja_to_str(jctx *c, int line, jval v) {
    if (v.type == JV_STR) return v;
    jbuf b;
    jbuf_init(&b, c->a);
    if (jval_write_str(&b, v) < 0)
        jinja_fail(c, line,
                   "cannot convert a %s to a string (its Python text is an object address, or it "
                   "nests too deeply)",
                   jval_type_name(v));
    return jval_strn(b.p ? b.p : "", b.n);
}

static _Noreturn void bad_operands(jctx *c, int line, const char *op, jval a, jval b) {
    jinja_fail(c, line, "unsupported operand type(s) for %s: '%s' and '%s'", op, jval_type_name(a),
               jval_type_name(b));
}

static _Noreturn void overflow(jctx *c, int line) {
    jinja_fail(c, line, "integer overflow (beyond 64 bits)");
}

// CPython's float divmod: the quotient rounds toward negative infinity and
// the remainder takes the divisor's sign.
static void float_divmod(double x, double y, double *div, double *mod) {
    double m = fmod(x, y);
    double d = (x - m) / y;
    if (m != 0) {
        if ((y < 0) != (m < 0)) {
            m += y;
            d -= 1.0;
        }
    } else {
        m = copysign(0.0, y);
    }
    if (d != 0) {
        double f = floor(d);
        if (d - f > 0.5) f += 1.0;
        d = f;
    } else {
        d = copysign(0.0, x / y);
    }
    *div = d;
    *mod = m;
}

static jval repeat(jctx *c, jval seq, int64_t k) {
    if (k < 0) k = 0;
    if (seq.type == JV_STR) {
        jbuf b;
        jbuf_init(&b, c->a);
        for (int64_t i = 0; i < k; i++) jbuf_put(&b, seq.s.p, seq.s.n);
        return jval_strn(b.p ? b.p : "", b.n);
    }
    jlist *l = jlist_new(c->a, seq.list->kind, seq.list->n * (size_t)k);
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.list->n; j++) jlist_push(c->a, l, seq.list->items[j]);
    return jval_list(l);
}

static int is_seq(jval v) {
    return v.type == JV_LIST && (v.list->kind == JL_LIST || v.list->kind == JL_TUPLE);
}

static jval int_op(jctx *c, int line, int op, int64_t x, int64_t y) {
    int64_t r;
    switch (op) {
    case JOP_ADD:
        if (__builtin_add_overflow(x, y, &r)) overflow(c, line);
        return jval_int(r);
    case JOP_SUB:
        if (__builtin_sub_overflow(x, y, &r)) overflow(c, line);
        return jval_int(r);
    case JOP_MUL:
        if (__builtin_mul_overflow(x, y, &r)) overflow(c, line);
        return jval_int(r);
    case JOP_FLOORDIV:
    case JOP_MOD: {
        if (y == 0) jinja_fail(c, line, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) overflow(c, line);
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
            q -= 1;
            m += y;
        }
        return jval_int(op == JOP_MOD ? m : q);
    }
    case JOP_POW: {
        if (y < 0) {
            if (x == 0) jinja_fail(c, line, "0.0 cannot be raised to a negative power");
            return jval_float(pow((double)x, (double)y));
        }
        int64_t base = x;
        r = 1;
        for (int64_t e = y; e > 0; e >>= 1) {
            if ((e & 1) && __builtin_mul_overflow(r, base, &r)) overflow(c, line);
            if (e > 1 && __builtin_mul_overflow(base, base, &base)) overflow(c, line);
        }
        return jval_int(r);
    }
    default:
        return jval_float((double)x / (double)y);
    }
}

jval jinja_binop(jctx *c, int line, int op, jval a, jval b) {
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
    if (op == JOP_CONCAT) {
        jval x = jinja_to_str(c, line, a), y = jinja_to_str(c, line, b);
        if (!y.s.n) return x;
        if (!x.s.n) return y;
        char *p = jarena_alloc(c->a, x.s.n + y.s.n);
        memcpy(p, x.s.p, x.s.n);
        memcpy(p + x.s.n, y.s.p, y.s.n);
        return jval_strn(p, x.s.n + y.s.n);
    }
    if (a.type == JV_UNDEF) jinja_fail_undefined(c, line, a);
    if (b.type == JV_UNDEF) jinja_fail_undefined(c, line, b);
    if (op == JOP_MOD && a.type == JV_STR) return jinja_str_percent(c, line, a, b);
    if (is_num(a) && is_num(b)) {
        if (is_intlike(a) && is_intlike(b)) {
            if (op == JOP_DIV && intval(b) == 0) jinja_fail(c, line, "division by zero");
            return int_op(c, line, op, intval(a), intval(b));
        }
        double x = numval(a), y = numval(b), d, m;
        switch (op) {
        case JOP_ADD:
            return jval_float(x + y);
        case JOP_SUB:
            return jval_float(x - y);
        case JOP_MUL:
            return jval_float(x * y);
        case JOP_DIV:
            if (y == 0) jinja_fail(c, line, "float division by zero");
            return jval_float(x / y);
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (y == 0) jinja_fail(c, line, "float floor division or modulo by zero");
            float_divmod(x, y, &d, &m);
            return jval_float(op == JOP_MOD ? m : d);
        default:
            if (x == 0 && y < 0) jinja_fail(c, line, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y))
                jinja_fail(c, line, "negative number raised to a fractional power");
            return jval_float(pow(x, y));
        }
    }
    if (op == JOP_ADD && a.type == JV_STR && b.type == JV_STR) {
        // Markup + str (either order) escapes the plain side, as markupsafe does.
        if (a.markup && !b.markup) b = jinja_html_escape(c, b);
        if (b.markup && !a.markup) a = jinja_html_escape(c, a);
        char *p = jarena_alloc(c->a, a.s.n + b.s.n);
        memcpy(p, a.s.p, a.s.n);
        memcpy(p + a.s.n, b.s.p, b.s.n);
        jval r = jval_strn(p, a.s.n + b.s.n);
        r.markup = a.markup;
        return r;
    }
    if (op == JOP_ADD && is_seq(a) && is_seq(b) && a.list->kind == b.list->kind) {
        jlist *l = jlist_new(c->a, a.list->kind, a.list->n + b.list->n);
        for (size_t i = 0; i < a.list->n; i++) jlist_push(c->a, l, a.list->items[i]);
        for (size_t i = 0; i < b.list->n; i++) jlist_push(c->a, l, b.list->items[i]);
        return jval_list(l);
    }
    if (op == JOP_MUL && (a.type == JV_STR || is_seq(a)) && is_intlike(b))
        return repeat(c, a, intval(b));
    if (op == JOP_MUL && (b.type == JV_STR || is_seq(b)) && is_intlike(a))
        return repeat(c, b, intval(a));
    bad_operands(c, line, names[op], a, b);
}

int jinja_contains(jctx *c, int line, jval container, jval item) {
    switch (container.type) {
    case JV_UNDEF:
        return 0;
    case JV_STR:
        if (item.type != JV_STR)
            jinja_fail(c, line, "'in <string>' requires string as left operand, not %s",
                       jval_type_name(item));
        if (item.s.n == 0) return 1;
        return memmem(container.s.p, container.s.n, item.s.p, item.s.n) != NULL;
    case JV_DICT:
        if (!container.dict->is_namespace) return jdict_get(container.dict, item) != NULL;
        break;
    case JV_LIST: {
        jlist *l = jinja_iterate(c, line, container);
        for (size_t i = 0; i < l->n; i++)
            if (jval_equal(l->items[i], item)) return 1;
        return 0;
    }
    case JV_LOOP: {
        jlist *l = container.loop->items;
        for (size_t i = 0; i < l->n; i++)
            if (jval_equal(l->items[i], item)) return 1;
        return 0;
    }
    default:
        break;
    }
    jinja_fail(c, line, "argument of type '%s' is not iterable", jval_type_name(container));
}

// Undefined for a missing attribute `name` of obj.
static jval missing(jval obj, const char *name) {
    jval u = jval_undef(name);
    u.s.n = (size_t)obj.type + 1;
    return u;
}

static jval bound_method(jctx *c, jval obj, const char *name, jbuiltin_fn fn) {
    jfunc *f = jarena_zalloc(c->a, sizeof *f);
    f->kind = JF_METHOD;
    f->name = name;
    f->fn = fn;
    f->self = obj;
    return (jval){.type = JV_FUNC, .fn = f};
}

static jval loop_attr(jctx *c, int line, jval obj, const char *name, int *found) {
    const jloop *l = obj.loop;
    size_t n = l->items->n, i = l->index0;
    *found = 1;
    if (!strcmp(name, "index")) return jval_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jval_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jval_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jval_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jval_bool(i == 0);
    if (!strcmp(name, "last")) return jval_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jval_int((int64_t)n);
    if (!strcmp(name, "depth")) return jval_int(1);
    if (!strcmp(name, "depth0")) return jval_int(0);
    if (!strcmp(name, "previtem")) return i > 0 ? l->items->items[i - 1] : jval_undef("previtem");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items->items[i + 1] : jval_undef("nextitem");
    if (!strcmp(name, "changed")) jinja_fail(c, line, "loop.changed() is not supported");
    *found = 0;
    return jval_undef(NULL);
}

jval jinja_getattr(jctx *c, int line, jval obj, const char *name) {
    if (obj.type == JV_UNDEF) jinja_fail_undefined(c, line, obj);
    if (obj.type == JV_DICT && obj.dict->is_namespace) {
        jval *v = jdict_get_str(obj.dict, name, strlen(name));
        return v ? *v : missing(obj, name);
    }
    if (obj.type == JV_LOOP) {
        int found;
        jval v = loop_attr(c, line, obj, name, &found);
        if (found) return v;
    }
    jbuiltin_fn m = jinja_find_method(c, line, obj, name);
    if (m) return bound_method(c, obj, name, m);
    if (obj.type == JV_DICT) {
        jval *v = jdict_get_str(obj.dict, name, strlen(name));
        if (v) return *v;
    }
    return missing(obj, name);
}

// Python's index normalization: negative counts from the end; -1 when out of range.
static int64_t norm_index(int64_t i, size_t n) {
    if (i < 0) i += (int64_t)n;
    return i < 0 || i >= (int64_t)n ? -1 : i;
}

jval jinja_getitem(jctx *c, int line, jval obj, jval key) {
    if (obj.type == JV_UNDEF) jinja_fail_undefined(c, line, obj);
    if (obj.type == JV_DICT && !obj.dict->is_namespace) {
        jval *v = jdict_get(obj.dict, key);
        if (v) return *v;
    } else if (obj.type == JV_LIST && is_intlike(key) && obj.list->kind != JL_GEN &&
               obj.list->kind < JL_ITEMS) {
        int64_t i = norm_index(intval(key), obj.list->n);
        if (i >= 0) return obj.list->items[i];
    } else if (obj.type == JV_STR && is_intlike(key)) {
        int64_t i = norm_index(intval(key), ju8_len(obj.s.p, obj.s.n));
        if (i >= 0) {
            size_t at = ju8_offset(obj.s.p, obj.s.n, (size_t)i), end = at;
            ju8_next(obj.s.p, obj.s.n, &end);
            return jval_strn(obj.s.p + at, end - at);
        }
    }
    if (key.type == JV_STR) {
        const char *name = jarena_strndup(c->a, key.s.p, key.s.n);
        if (obj.type != JV_DICT || obj.dict->is_namespace) return jinja_getattr(c, line, obj, name);
        jbuiltin_fn m = jinja_find_method(c, line, obj, name);
        if (m) return bound_method(c, obj, name, m);
        return missing(obj, name);
    }
    jbuf b;
    jbuf_init(&b, c->a);
    jval_write_repr(&b, key);
    jbuf_putc(&b, 0);
    return missing(obj, b.p);
}

static int64_t slice_part(jctx *c, int line, jval v, int64_t dflt) {
    if (v.type == JV_NONE) return dflt;
    if (!is_intlike(v)) jinja_fail(c, line, "slice indices must be integers or None");
    return intval(v);
}

jval jinja_slice(jctx *c, int line, jval obj, jval start, jval stop, jval step) {
    if (obj.type == JV_UNDEF) jinja_fail_undefined(c, line, obj);
    int is_str = obj.type == JV_STR;
    if (!is_str && !(obj.type == JV_LIST && obj.list->kind <= JL_RANGE && obj.list->kind != JL_GEN))
        jinja_fail(c, line, "'%s' object is not subscriptable", jval_type_name(obj));
    int64_t st = slice_part(c, line, step, 1);
    if (st == 0) jinja_fail(c, line, "slice step cannot be zero");
    size_t *offs = NULL; // code point byte offsets of a non-ASCII string
    int64_t n;
    if (is_str) {
        n = (int64_t)ju8_len(obj.s.p, obj.s.n);
        if ((size_t)n != obj.s.n) {
            offs = jarena_alloc(c->a, ((size_t)n + 1) * sizeof *offs);
            size_t i = 0;
            for (int64_t k = 0; k < n; k++) {
                offs[k] = i;
                ju8_next(obj.s.p, obj.s.n, &i);
            }
            offs[n] = obj.s.n;
        }
    } else {
        n = (int64_t)obj.list->n;
    }
    int64_t lo = slice_part(c, line, start, st < 0 ? n - 1 : 0);
    int64_t hi = slice_part(c, line, stop, st < 0 ? -1 : n);
    if (start.type != JV_NONE) {
        if (lo < 0) lo += n;
        if (lo < 0)
            lo = st < 0 ? -1 : 0;
        else if (lo >= n)
            lo = st < 0 ? n - 1 : n;
    }
    if (stop.type != JV_NONE) {
        if (hi < 0) hi += n;
        if (hi < 0)
            hi = st < 0 ? -1 : 0;
        else if (hi >= n)
            hi = st < 0 ? n - 1 : n;
    }
    if (is_str) {
        if (st == 1) {
            if (hi <= lo) return jval_strn("", 0);
            size_t a = offs ? offs[lo] : (size_t)lo, b = offs ? offs[hi] : (size_t)hi;
            return jval_strn(obj.s.p + a, b - a);
        }
        jbuf b;
        jbuf_init(&b, c->a);
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
            size_t a = offs ? offs[i] : (size_t)i, e = offs ? offs[i + 1] : (size_t)i + 1;
            jbuf_put(&b, obj.s.p + a, e - a);
        }
        return jval_strn(b.p ? b.p : "", b.n);
    }
    const jlist *src = obj.list;
    jlist *l = jlist_new(c->a, src->kind == JL_LIST ? JL_LIST : src->kind, 0);
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) jlist_push(c->a, l, src->items[i]);
    if (src->kind == JL_RANGE) { // a slice of a range is a range
        l->r_start = src->r_start + lo * src->r_step;
        l->r_stop = src->r_start + hi * src->r_step;
        l->r_step = src->r_step * st;
    }
    return jval_list(l);
}

jlist *jinja_iterate(jctx *c, int line, jval v) {
    switch (v.type) {
    case JV_UNDEF:
        return jlist_new(c->a, JL_LIST, 0);
    case JV_LIST:
        if (v.list->kind == JL_GEN) {
            if (v.list->consumed)
                jinja_fail(c, line,
                           "this generator was already iterated (add |list to keep its items)");
            v.list->consumed = 1;
        }
        return v.list;
    case JV_DICT:
        if (v.dict->is_namespace) break;
        {
            jlist *l = jlist_new(c->a, JL_LIST, v.dict->n);
            for (size_t i = 0; i < v.dict->n; i++) jlist_push(c->a, l, v.dict->keys[i]);
            return l;
        }
    case JV_STR: {
        jlist *l = jlist_new(c->a, JL_LIST, v.s.n);
        size_t i = 0;
        while (i < v.s.n) {
            size_t at = i;
            ju8_next(v.s.p, v.s.n, &i);
            jlist_push(c->a, l, jval_strn(v.s.p + at, i - at));
        }
        return l;
    }
    case JV_LOOP:
        return v.loop->items;
    default:
        break;
    }
    jinja_fail(c, line, "'%s' object is not iterable", jval_type_name(v));
}

int64_t jinja_length(jctx *c, int line, jval v) {
    switch (v.type) {
    case JV_UNDEF:
        return 0;
    case JV_STR:
        return (int64_t)ju8_len(v.s.p, v.s.n);
    case JV_LIST:
        if (v.list->kind != JL_GEN) return (int64_t)v.list->n;
        break;
    case JV_DICT:
        if (!v.dict->is_namespace) return (int64_t)v.dict->n;
        break;
    case JV_LOOP:
        return (int64_t)v.loop->items->n;
    default:
        break;
    }
    jinja_fail(c, line, "object of type '%s' has no len()", jval_type_name(v));
}
