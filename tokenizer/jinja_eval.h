// jinja_eval.h - the evaluator of the chat-template interpreter: scopes,
// expression evaluation, statement execution, and the tables of built-in
// filters, tests, global functions and methods it dispatches to.
#ifndef LLM_JINJA_EVAL_H
#define LLM_JINJA_EVAL_H

#include "jinja_ast.h"

// Deepest nesting of macro calls while rendering, so a
// recursive macro fails with a message instead of overflowing the C stack.
#define JINJA_MAX_DEPTH 200
// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
#define JINJA_MAX_RANGE 100000

typedef struct jscope jscope;

// Variables of one scope: the template's, a loop iteration's, a macro call's.
// Lookups walk to the parent; assignments go to the innermost scope.
struct jscope {
    jscope *parent;
    const char **names;
    jval *vals;
    int n, cap;
};

typedef struct {
    jarena *a; // everything this render allocates
    jinja_trap *trap;
    int depth; // macro calls in progress, bounded by JINJA_MAX_DEPTH
} jctx;

// Evaluated call arguments.
typedef struct {
    jval *pos;
    int npos;
    const char **kwnames;
    jval *kw;
    int nkw;
} jargs;

// A filter, test, global function or method. `self` is the filtered value,
// the tested value, or the method's object (unused for globals). Tests
// return a JV_BOOL.
typedef jval (*jbuiltin_fn)(jctx *c, int line, jval self, jargs *a);

struct jbuiltin {
    const char *name;
    jbuiltin_fn fn;
};

typedef enum { JF_MACRO, JF_BUILTIN, JF_METHOD } jfunc_kind;

struct jfunc {
    uint8_t kind; // jfunc_kind
    const char *name;
    const jnode *macro; // JF_MACRO
    jscope *closure;    // JF_MACRO: scope it was defined in
    jbuiltin_fn fn;     // JF_BUILTIN, JF_METHOD
    jval self;          // JF_METHOD: the bound object
};

// --- evaluator (jinja_eval.c) ---------------------------------------------------

_Noreturn void jinja_fail(jctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Fails with jinja2's UndefinedError text for using undefined value v.
_Noreturn void jinja_fail_undefined(jctx *c, int line, jval v);

void jscope_set(jctx *c, jscope *s, const char *name, jval v);
// Returns the variable, or NULL when no scope defines it.
jval *jscope_get(jscope *s, const char *name);

// Runs `body` in scope s, appending output to out.
void jinja_exec(jctx *c, jscope *s, const jnodes *body, jbuf *out);
jval jinja_eval(jctx *c, jscope *s, const jnode *n);
// Calls a function value (macro, global, bound method).
jval jinja_call(jctx *c, int line, jval fn, jargs *a);

// --- operators (jinja_ops.c) ---------------------------------------------------

jval jinja_binop(jctx *c, int line, int op, jval a, jval b);
// `a in b`.
int jinja_contains(jctx *c, int line, jval container, jval item);
// jinja2's sandboxed getattr (obj.name): attribute, else item, else Undefined.
jval jinja_getattr(jctx *c, int line, jval obj, const char *name);
// jinja2's sandboxed getitem (obj[key]): item, else attribute, else Undefined.
jval jinja_getitem(jctx *c, int line, jval obj, jval key);
// obj[start:stop:step]; parts may be JV_NONE.
jval jinja_slice(jctx *c, int line, jval obj, jval start, jval stop, jval step);
// The items `for` iterates over (a list's items, a string's characters, a
// dict's keys...). Undefined iterates as empty; a generator only once.
jlist *jinja_iterate(jctx *c, int line, jval v);
// str(v) as a value; fails for values without a stable text.
jval jinja_to_str(jctx *c, int line, jval v);
// len(v); fails where Python's len() would.
int64_t jinja_length(jctx *c, int line, jval v);

// --- built-ins (jinja_filters.c, jinja_tests.c, jinja_methods.c) ------------------

const jbuiltin *jinja_find_filter(const char *name);
const jbuiltin *jinja_find_test(const char *name);
const jbuiltin *jinja_find_global(const char *name);
// Method `name` of obj (a str, dict, list or loop), or NULL when obj has no
// such method. Fails for Python methods this interpreter does not provide
// and for methods the immutable sandbox forbids.
jbuiltin_fn jinja_find_method(jctx *c, int line, jval obj, const char *name);
// Runs test `name` (selectattr, select...).
int jinja_run_test(jctx *c, int line, const char *name, jval v, jargs *a);

// Binds arguments to the parameters `params` (NULL-terminated names) of
// function `fname`: out[i] is the value given for params[i], or JV_UNDEF with
// no name when it was not given. Fails on extra or unknown arguments.
void jinja_bind(jctx *c, int line, const char *fname, jargs *a, const char *const *params,
                jval *out);
// 1 when a bound argument was given.
static inline int jinja_given(jval v) {
    return !(v.type == JV_UNDEF && v.s.p == NULL);
}
// Argument as int / str, failing with a message naming fname otherwise.
int64_t jinja_arg_int(jctx *c, int line, const char *fname, jval v);
jval jinja_arg_str(jctx *c, int line, const char *fname, jval v);

// --- case mapping (jinja_case.c) --------------------------------------------------

// Simple case mapping of one code point, and whether it is a cased letter.
uint32_t jinja_upper_cp(uint32_t cp);
uint32_t jinja_lower_cp(uint32_t cp);
int jinja_is_cased(uint32_t cp);

typedef enum {
    JCASE_UPPER,
    JCASE_LOWER,
    JCASE_TITLE,       // Python's str.title()
    JCASE_CAPITALIZE,  // Python's str.capitalize()
    JCASE_TITLE_WORDS, // jinja2's title filter: first letter after - ( { [ < or space
} jcase;

// s in the case `mode` asks for (a new string; multi-code-point mappings
// such as ß -> SS included).
jval jinja_str_recase(jctx *c, jval s, jcase mode);

// --- str helpers shared by filters and methods (jinja_strings.c) -------------------

// s.strip(chars) with which = 1 (left), 2 (right), 3 (both); chars JV_NONE
// or not given: whitespace.
jval jinja_str_strip(jctx *c, int line, jval s, jval chars, int which);
jval jinja_str_replace(jctx *c, int line, jval s, jval old, jval new_, int64_t count);
// s % args (printf-style formatting: %s %r %c %d %i %x %o %f %e %g %%).
jval jinja_str_percent(jctx *c, int line, jval fmt, jval args);
// markupsafe's escape(): & < > " ' as HTML entities, marked as markup.
jval jinja_html_escape(jctx *c, jval s);
// The str method `name`, NULL when str has no such attribute; fails for
// Python str methods this interpreter does not provide.
jbuiltin_fn jinja_str_method(jctx *c, int line, const char *name);

#endif
