// jinja_tests.c - jinja2's built-in tests (`x is defined`, `x is string`,
// `x is divisibleby 3`...), with Python's type distinctions: a bool is a
// number but not an integer, a dict is a sequence, Undefined is iterable.
#include "jinja_eval.h"

#include <math.h>
#include <string.h>

// The one argument of a test like `divisibleby`, `equalto`, `in`.
static jval one_arg(jctx *c, int line, const char *name, jargs *a) {
    if (a->npos + a->nkw != 1) jinja_fail(c, line, "test '%s' takes exactly one argument", name);
    return a->npos ? a->pos[0] : a->kw[0];
}

static void no_args(jctx *c, int line, const char *name, jargs *a) {
    if (a->npos || a->nkw) jinja_fail(c, line, "test '%s' takes no arguments", name);
}

#define SIMPLE_TEST(name, expr)                                                                    \
    static jval t_##name(jctx *c, int line, jval v, jargs *a) {                                    \
        no_args(c, line, #name, a);                                                                \
        return jval_bool(expr);                                                                    \
    }

SIMPLE_TEST(defined, v.type != JV_UNDEF)
SIMPLE_TEST(undefined, v.type == JV_UNDEF)
SIMPLE_TEST(none, v.type == JV_NONE)
SIMPLE_TEST(boolean, v.type == JV_BOOL)
SIMPLE_TEST(true, v.type == JV_BOOL && v.b)
SIMPLE_TEST(false, v.type == JV_BOOL && !v.b)
SIMPLE_TEST(integer, v.type == JV_INT)
SIMPLE_TEST(float, v.type == JV_FLOAT)
SIMPLE_TEST(number, v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL)
SIMPLE_TEST(string, v.type == JV_STR)
SIMPLE_TEST(mapping, v.type == JV_DICT && !v.dict->is_namespace)
SIMPLE_TEST(callable, v.type == JV_FUNC || v.type == JV_UNDEF || v.type == JV_LOOP)
SIMPLE_TEST(iterable, v.type == JV_STR || v.type == JV_LIST || v.type == JV_UNDEF ||
                          v.type == JV_LOOP || (v.type == JV_DICT && !v.dict->is_namespace))
SIMPLE_TEST(sequence,
            v.type == JV_STR || v.type == JV_UNDEF ||
                (v.type == JV_LIST && v.list->kind <= JL_RANGE && v.list->kind != JL_GEN) ||
                (v.type == JV_DICT && !v.dict->is_namespace))
SIMPLE_TEST(escaped, v.type == JV_STR && v.markup)

// The integer value of a number for odd / even / divisibleby.
static double number(jctx *c, int line, jval v) {
    if (v.type == JV_INT) return (double)v.i;
    if (v.type == JV_BOOL) return v.b;
    if (v.type == JV_FLOAT) return v.f;
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    jinja_fail(c, line, "expected a number, got %s", jval_type_name(v));
}

static jval parity(jctx *c, int line, jval v, jargs *a, int want) {
    no_args(c, line, want ? "odd" : "even", a);
    if (v.type == JV_INT) return jval_bool((v.i & 1) == want);
    double m = fmod(number(c, line, v), 2.0);
    if (m < 0) m += 2.0;
    return jval_bool(m == (double)want);
}
static jval t_odd(jctx *c, int line, jval v, jargs *a) {
    return parity(c, line, v, a, 1);
}
static jval t_even(jctx *c, int line, jval v, jargs *a) {
    return parity(c, line, v, a, 0);
}

static jval t_divisibleby(jctx *c, int line, jval v, jargs *a) {
    jval d = one_arg(c, line, "divisibleby", a);
    if (v.type == JV_INT && d.type == JV_INT) {
        if (d.i == 0) jinja_fail(c, line, "integer division or modulo by zero");
        return jval_bool(d.i == -1 || v.i % d.i == 0);
    }
    double x = number(c, line, v), y = number(c, line, d);
    if (y == 0) jinja_fail(c, line, "float modulo by zero");
    return jval_bool(fmod(x, y) == 0);
}

static jval t_sameas(jctx *c, int line, jval v, jargs *a) {
    jval o = one_arg(c, line, "sameas", a);
    if (v.type != o.type) return jval_bool(0);
    switch (v.type) {
    case JV_NONE:
        return jval_bool(1);
    case JV_BOOL:
        return jval_bool(v.b == o.b);
    case JV_INT:
        return jval_bool(v.i == o.i && v.i >= -5 && v.i <= 256); // CPython's cached ints
    case JV_LIST:
        return jval_bool(v.list == o.list);
    case JV_DICT:
        return jval_bool(v.dict == o.dict);
    case JV_FUNC:
        return jval_bool(v.fn == o.fn);
    case JV_STR:
        return jval_bool(v.s.p == o.s.p && v.s.n == o.s.n);
    default:
        return jval_bool(0);
    }
}

static int cmp_test(jctx *c, int line, jval v, jval o, int op) {
    if (op == JCMP_EQ) return jval_equal(v, o);
    if (op == JCMP_NE) return !jval_equal(v, o);
    int r;
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    if (o.type == JV_UNDEF) jinja_fail_undefined(c, line, o);
    if (jval_compare(v, o, &r) != 0)
        jinja_fail(c, line, "comparison not supported between instances of '%s' and '%s'",
                   jval_type_name(v), jval_type_name(o));
    return op == JCMP_LT ? r < 0 : op == JCMP_LE ? r <= 0 : op == JCMP_GT ? r > 0 : r >= 0;
}

#define CMP_TEST(name, op)                                                                         \
    static jval t_##name(jctx *c, int line, jval v, jargs *a) {                                    \
        return jval_bool(cmp_test(c, line, v, one_arg(c, line, #name, a), op));                    \
    }
CMP_TEST(eq, JCMP_EQ)
CMP_TEST(ne, JCMP_NE)
CMP_TEST(lt, JCMP_LT)
CMP_TEST(le, JCMP_LE)
CMP_TEST(gt, JCMP_GT)
CMP_TEST(ge, JCMP_GE)

static jval t_in(jctx *c, int line, jval v, jargs *a) {
    return jval_bool(jinja_contains(c, line, one_arg(c, line, "in", a), v));
}

static jval case_test(jctx *c, int line, jval v, jargs *a, const char *method) {
    no_args(c, line, method, a);
    jargs none = {0};
    return jinja_str_method(c, line, method)(c, line, jinja_to_str(c, line, v), &none);
}
static jval t_lower(jctx *c, int line, jval v, jargs *a) {
    return case_test(c, line, v, a, "islower");
}
static jval t_upper(jctx *c, int line, jval v, jargs *a) {
    return case_test(c, line, v, a, "isupper");
}

static jval name_test(jctx *c, int line, jval v, jargs *a, int filters) {
    no_args(c, line, filters ? "filter" : "test", a);
    if (v.type != JV_STR) return jval_bool(0);
    const char *name = jarena_strndup(c->a, v.s.p, v.s.n);
    return jval_bool(filters ? jinja_find_filter(name) != NULL : jinja_find_test(name) != NULL);
}
static jval t_filter(jctx *c, int line, jval v, jargs *a) {
    return name_test(c, line, v, a, 1);
}
static jval t_test(jctx *c, int line, jval v, jargs *a) {
    return name_test(c, line, v, a, 0);
}

static const jbuiltin tests[] = {
    {"!=", t_ne},
    {"<", t_lt},
    {"<=", t_le},
    {"==", t_eq},
    {">", t_gt},
    {">=", t_ge},
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {"greaterthan", t_gt},
    {"gt", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"lessthan", t_lt},
    {"lower", t_lower},
    {"lt", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

const jbuiltin *jinja_find_test(const char *name) {
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
        if (!strcmp(tests[i].name, name)) return &tests[i];
    return NULL;
}

int jinja_run_test(jctx *c, int line, const char *name, jval v, jargs *a) {
    const jbuiltin *t = jinja_find_test(name);
    if (!t) jinja_fail(c, line, "no test named '%s'", name);
    return t->fn(c, line, v, a).b;
}
