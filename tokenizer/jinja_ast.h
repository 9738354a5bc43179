// jinja_ast.h - tokens and syntax tree of the chat-template interpreter, and
// the lexer and parser that produce them.
//
// The lexer applies jinja2's whitespace rules as transformers configures them:
// newlines normalized to "\n" and one trailing newline dropped, trim_blocks
// (the first newline after a block or comment tag is removed), lstrip_blocks
// (spaces and tabs from the start of a line to a block or comment tag are
// removed), and the "-" / "+" markers of {%- -%} {{- -}} {#- -#} {%+ +%}.
#ifndef LLM_JINJA_AST_H
#define LLM_JINJA_AST_H

#include "jinja_value.h"

// --- tokens --------------------------------------------------------------------

typedef enum {
    JT_EOF,
    JT_DATA,        // template text (after whitespace control)
    JT_VAR_BEGIN,   // {{
    JT_VAR_END,     // }}
    JT_BLOCK_BEGIN, // {%
    JT_BLOCK_END,   // %}
    JT_NAME,
    JT_STRING, // text: the decoded literal
    JT_INT,
    JT_FLOAT,
    JT_OP, // text: the operator ("+", "//", "==", "(", ...)
} jtok_type;

typedef struct {
    uint8_t type; // jtok_type
    int line;
    const char *text; // NUL-terminated (arena); JT_DATA/JT_STRING may hold NULs
    size_t len;
    int64_t i;
    double f;
} jtok;

typedef struct {
    jtok *v;
    size_t n;
} jtoks;

// Splits template source into tokens (the last is JT_EOF). Syntax errors
// (unterminated tags, strings or comments, unbalanced brackets, stray
// characters) unwind through a->trap with their line.
jtoks jinja_lex(jarena *a, const char *src, size_t n);

// --- syntax tree -------------------------------------------------------------------

typedef struct jnode jnode;
typedef struct jbuiltin jbuiltin;

typedef struct {
    jnode **v;
    int n;
} jnodes;

typedef enum {
    // expressions
    JN_CONST,   // value
    JN_NAME,    // name
    JN_ATTR,    // obj.name
    JN_ITEM,    // obj[key]
    JN_SLICE,   // obj[start:stop:step], each part may be NULL
    JN_CALL,    // callee(args, kw=...)
    JN_FILTER,  // arg | fn(args)
    JN_TEST,    // arg is [not] fn(args)
    JN_NEG,     // -a
    JN_POS,     // +a
    JN_NOT,     // not a
    JN_AND,     // a and b
    JN_OR,      // a or b
    JN_BINOP,   // a op b: + - * / // % ** ~
    JN_COMPARE, // a op b [op c...]: == != < <= > >= in notin
    JN_COND,    // yes if cond else no (no may be NULL)
    JN_LIST,    // [items]
    JN_TUPLE,   // (items)
    JN_DICT,    // {keys: vals}
    // statements
    JN_DATA,  // text
    JN_PRINT, // {{ expr }}
    JN_IF,    // if cond: body else: orelse (elif nests an IF in orelse)
    JN_FOR,   // for targets in iter [if filter]: body else: orelse
    JN_SET,   // set targets = value | set ns.attr = value | set x %}body{% endset
    JN_MACRO, // macro name(params=defaults): body
    JN_BREAK,
    JN_CONTINUE,
    JN_BLOCK, // a plain body ({% generation %})
} jnode_kind;

typedef enum {
    JOP_ADD,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT
} jbinop;
typedef enum { JCMP_EQ, JCMP_NE, JCMP_LT, JCMP_LE, JCMP_GT, JCMP_GE, JCMP_IN, JCMP_NOTIN } jcmpop;

// Call arguments as written: positional expressions, then keyword ones.
typedef struct {
    jnodes pos;
    const char **kwnames;
    jnodes kw;
} jcallargs;

struct jnode {
    uint8_t kind; // jnode_kind
    int line;
    union {
        jval value;       // CONST
        const char *name; // NAME
        struct {
            jnode *obj;
            const char *name;
        } attr;
        struct {
            jnode *obj, *key;
        } item;
        struct {
            jnode *obj, *start, *stop, *step;
        } slice;
        struct {
            jnode *callee;
            jcallargs args;
        } call;
        struct {
            jnode *arg;
            const jbuiltin *fn;
            jcallargs args;
            int negate; // TEST: "is not"
        } filter;
        struct {
            jnode *a, *b;
            int op; // jbinop
        } bin;
        struct {
            jnode *first;
            int *ops; // jcmpop, one per rest
            jnodes rest;
        } cmp;
        struct {
            jnode *cond, *yes, *no;
        } cond;
        struct {
            jnodes items, vals; // vals: DICT only
        } seq;
        struct {
            const char *p;
            size_t n;
        } data;
        jnode *expr; // PRINT
        struct {
            jnode *cond;
            jnodes body, orelse;
        } if_;
        struct {
            const char **targets;
            int ntargets;
            int unpack; // targets written as a tuple
            jnode *iter, *filter;
            jnodes body, orelse;
        } for_;
        struct {
            const char **targets;
            int ntargets;
            int unpack;
            const char *attr; // set targets[0].attr = value (namespace)
            jnode *value;     // NULL: block set, value is body's output
            jnodes body;
        } set;
        struct {
            const char *name;
            const char **params;
            jnodes defaults; // one per param, NULL where none
            int nparams;
            int uses_varargs, uses_kwargs;
            jnodes body;
        } macro;
        jnodes block; // BLOCK
    };
};

// Parses a token stream into the template's top-level statement list.
// Unknown tags, filters and tests and syntax errors unwind through a->trap
// with their line.
jnodes jinja_parse(jarena *a, const jtoks *toks);

#endif
