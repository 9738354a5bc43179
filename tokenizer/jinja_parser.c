// jinja_parser.c - builds the syntax tree of a chat template from its tokens,
// with jinja2's grammar and operator precedence (lowest first): conditional
// `x if c else y`, or, and, not, comparisons (== != < <= > >= in, not in),
// + -, ~, * / // %, **, unary - +, then postfix .attr [item] (call) and the
// filter | and test `is` chain.
#include "jinja_eval.h"

#include <stdio.h>
#include <string.h>

// Deepest nesting of expressions and of block statements.
#define PARSE_MAX_DEPTH 200

typedef struct {
    jarena *a;
    const jtok *t;
    size_t pos;
    int depth;
    int loops;    // enclosing for loops (break/continue are valid inside one)
    jnode *macro; // macro being parsed: notes uses of varargs / kwargs
} parser;

static _Noreturn void fail(parser *P, int line, const char *fmt, const char *a, const char *b) {
    jinja_throw(P->a->trap, line, fmt, a, b);
}

static const jtok *cur(parser *P) {
    return &P->t[P->pos];
}
static const jtok *peek(parser *P, int k) {
    const jtok *t = cur(P);
    for (int i = 0; i < k && t->type != JT_EOF; i++) t++;
    return t;
}
static const jtok *advance(parser *P) {
    const jtok *t = cur(P);
    if (t->type != JT_EOF) P->pos++;
    return t;
}

static int is_name(const jtok *t, const char *s) {
    return t->type == JT_NAME && !strcmp(t->text, s);
}
static int is_op(const jtok *t, const char *s) {
    return t->type == JT_OP && !strcmp(t->text, s);
}

static const char *describe(const jtok *t) {
    switch (t->type) {
    case JT_EOF:
        return "end of template";
    case JT_DATA:
        return "template data";
    case JT_VAR_BEGIN:
        return "begin of print statement";
    case JT_VAR_END:
        return "end of print statement";
    case JT_BLOCK_BEGIN:
        return "begin of statement block";
    case JT_BLOCK_END:
        return "end of statement block";
    case JT_STRING:
        return "string";
    case JT_INT:
        return "integer";
    case JT_FLOAT:
        return "float";
    default:
        return t->text;
    }
}

static _Noreturn void unexpected(parser *P, const char *wanted) {
    const jtok *t = cur(P);
    if (wanted) fail(P, t->line, "expected %s, got '%s'", wanted, describe(t));
    fail(P, t->line, "unexpected '%s'%s", describe(t), "");
}

static void expect_op(parser *P, const char *op) {
    if (!is_op(cur(P), op)) {
        char want[16];
        snprintf(want, sizeof want, "'%s'", op);
        unexpected(P, want);
    }
    advance(P);
}

static void expect_type(parser *P, jtok_type type, const char *what) {
    if (cur(P)->type != type) unexpected(P, what);
    advance(P);
}

static void expect_block_end(parser *P) {
    expect_type(P, JT_BLOCK_END, "end of statement block");
}

static const char *expect_name(parser *P) {
    if (cur(P)->type != JT_NAME) unexpected(P, "a name");
    return advance(P)->text;
}

// Makes room for one more element in an arena array of n elements of size
// elem (capacity: 4, then doubling at powers of two).
static void *grow(jarena *a, void *v, int n, size_t elem) {
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0)) return v;
    int cap = n ? n * 2 : 4;
    void *nv = jarena_alloc(a, (size_t)cap * elem);
    if (n) memcpy(nv, v, (size_t)n * elem);
    return nv;
}

static void push(parser *P, jnodes *l, jnode *n) {
    l->v = grow(P->a, l->v, l->n, sizeof *l->v);
    l->v[l->n++] = n;
}

static jnode *node(parser *P, jnode_kind kind, int line) {
    jnode *n = jarena_zalloc(P->a, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = line;
    return n;
}

static void enter(parser *P) {
    if (++P->depth > PARSE_MAX_DEPTH)
        fail(P, cur(P)->line, "template nested too deeply%s%s", "", "");
}

static jnode *parse_expression(parser *P, int with_condexpr);
static jnode *parse_unary(parser *P, int with_filter);
static jnode *parse_primary(parser *P);
static jnode *parse_postfix(parser *P, jnode *n);
static jnodes parse_body(parser *P, const char *const *ends, const char *opener, int opener_line);

static int is_tuple_end(parser *P) {
    const jtok *t = cur(P);
    return t->type == JT_VAR_END || t->type == JT_BLOCK_END || t->type == JT_EOF || is_op(t, ")");
}

// `a, b, c` as a tuple, or the single expression when there is no comma.
static jnode *parse_tuple(parser *P, int with_condexpr, int parenthesized) {
    int line = cur(P)->line;
    jnode *tuple = node(P, JN_TUPLE, line);
    int is_tuple = 0;
    for (;;) {
        if (tuple->seq.items.n) expect_op(P, ",");
        if (is_tuple_end(P)) break;
        push(P, &tuple->seq.items, parse_expression(P, with_condexpr));
        if (!is_op(cur(P), ",")) break;
        is_tuple = 1;
    }
    if (!is_tuple) {
        if (tuple->seq.items.n) return tuple->seq.items.v[0];
        if (!parenthesized) unexpected(P, "an expression");
    }
    return tuple;
}

static void parse_call_args(parser *P, jcallargs *args) {
    expect_op(P, "(");
    int nkw = 0;
    while (!is_op(cur(P), ")")) {
        if (args->pos.n + nkw) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            fail(P, cur(P)->line, "unsupported %s%s in call arguments", cur(P)->text, "args");
        if (cur(P)->type == JT_NAME && is_op(peek(P, 1), "=")) {
            const char *name = advance(P)->text;
            advance(P);
            args->kwnames = grow(P->a, args->kwnames, nkw, sizeof *args->kwnames);
            args->kwnames[nkw++] = name;
            push(P, &args->kw, parse_expression(P, 1));
        } else {
            if (nkw)
                fail(P, cur(P)->line, "positional argument follows keyword argument%s%s", "", "");
            push(P, &args->pos, parse_expression(P, 1));
        }
    }
    advance(P);
}

static jnode *parse_filter(parser *P, jnode *arg) {
    int line = advance(P)->line; // '|'
    const char *name = expect_name(P);
    jnode *n = node(P, JN_FILTER, line);
    n->filter.arg = arg;
    n->filter.fn = jinja_find_filter(name);
    if (!n->filter.fn) fail(P, line, "unknown filter '%s'%s", name, "");
    if (is_op(cur(P), "(")) parse_call_args(P, &n->filter.args);
    return n;
}

static jnode *parse_test(parser *P, jnode *arg) {
    int line = advance(P)->line; // 'is'
    jnode *n = node(P, JN_TEST, line);
    if (is_name(cur(P), "not")) {
        advance(P);
        n->filter.negate = 1;
    }
    const char *name = expect_name(P);
    n->filter.arg = arg;
    n->filter.fn = jinja_find_test(name);
    if (!n->filter.fn) fail(P, line, "unknown test '%s'%s", name, "");
    const jtok *t = cur(P);
    if (is_op(t, "(")) {
        parse_call_args(P, &n->filter.args);
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT ||
                t->type == JT_FLOAT || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is"))
            fail(P, t->line, "you cannot chain multiple tests with is%s%s", "", "");
        push(P, &n->filter.args.pos, parse_postfix(P, parse_primary(P)));
    }
    return n;
}

static jnode *parse_filter_expr(parser *P, jnode *n) {
    for (;;) {
        if (is_op(cur(P), "|")) {
            n = parse_filter(P, n);
        } else if (is_name(cur(P), "is")) {
            n = parse_test(P, n);
        } else if (is_op(cur(P), "(")) {
            jnode *c = node(P, JN_CALL, cur(P)->line);
            c->call.callee = n;
            parse_call_args(P, &c->call.args);
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *parse_subscript(parser *P, jnode *obj) {
    const jtok *t = advance(P);
    if (t->type == JT_OP && t->text[0] == '.') {
        const jtok *a = advance(P);
        if (a->type == JT_NAME) {
            jnode *n = node(P, JN_ATTR, t->line);
            n->attr.obj = obj;
            n->attr.name = a->text;
            return n;
        }
        if (a->type != JT_INT)
            fail(P, a->line, "expected name or number after '.', got '%s'%s", describe(a), "");
        jnode *n = node(P, JN_ITEM, t->line);
        n->item.obj = obj;
        n->item.key = node(P, JN_CONST, t->line);
        n->item.key->value = jval_int(a->i);
        return n;
    }
    // '['
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    if (!is_op(cur(P), ":")) {
        parts[0] = parse_expression(P, 1);
        if (!is_op(cur(P), ":")) {
            expect_op(P, "]");
            jnode *n = node(P, JN_ITEM, t->line);
            n->item.obj = obj;
            n->item.key = parts[0];
            return n;
        }
    }
    while (is_op(cur(P), ":") && k < 2) {
        advance(P);
        k++;
        if (!is_op(cur(P), ":") && !is_op(cur(P), "]")) parts[k] = parse_expression(P, 1);
    }
    expect_op(P, "]");
    jnode *n = node(P, JN_SLICE, t->line);
    n->slice.obj = obj;
    n->slice.start = parts[0];
    n->slice.stop = parts[1];
    n->slice.step = parts[2];
    return n;
}

static jnode *parse_postfix(parser *P, jnode *n) {
    for (;;) {
        const jtok *t = cur(P);
        if (is_op(t, ".") || is_op(t, "[")) {
            n = parse_subscript(P, n);
        } else if (is_op(t, "(")) {
            jnode *c = node(P, JN_CALL, t->line);
            c->call.callee = n;
            parse_call_args(P, &c->call.args);
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *parse_seq(parser *P, jnode_kind kind, const char *close) {
    jnode *n = node(P, kind, advance(P)->line);
    while (!is_op(cur(P), close)) {
        if (n->seq.items.n) expect_op(P, ",");
        if (is_op(cur(P), close)) break;
        push(P, &n->seq.items, parse_expression(P, 1));
        if (kind == JN_DICT) {
            expect_op(P, ":");
            push(P, &n->seq.vals, parse_expression(P, 1));
        }
    }
    advance(P);
    return n;
}

static jnode *parse_primary(parser *P) {
    const jtok *t = cur(P);
    jnode *n;
    switch (t->type) {
    case JT_NAME:
        advance(P);
        n = node(P, JN_CONST, t->line);
        if (!strcmp(t->text, "true") || !strcmp(t->text, "True")) {
            n->value = jval_bool(1);
        } else if (!strcmp(t->text, "false") || !strcmp(t->text, "False")) {
            n->value = jval_bool(0);
        } else if (!strcmp(t->text, "none") || !strcmp(t->text, "None")) {
            n->value = jval_none();
        } else {
            n->kind = JN_NAME;
            n->name = t->text;
            if (P->macro && !strcmp(t->text, "varargs")) P->macro->macro.uses_varargs = 1;
            if (P->macro && !strcmp(t->text, "kwargs")) P->macro->macro.uses_kwargs = 1;
        }
        return n;
    case JT_STRING: {
        jbuf b;
        jbuf_init(&b, P->a);
        while (cur(P)->type == JT_STRING) {
            const jtok *s = advance(P);
            jbuf_put(&b, s->text, s->len);
        }
        n = node(P, JN_CONST, t->line);
        n->value = jval_strn(b.p ? b.p : "", b.n);
        return n;
    }
    case JT_INT:
    case JT_FLOAT:
        advance(P);
        n = node(P, JN_CONST, t->line);
        n->value = t->type == JT_INT ? jval_int(t->i) : jval_float(t->f);
        return n;
    default:
        break;
    }
    if (is_op(t, "(")) {
        advance(P);
        n = parse_tuple(P, 1, 1);
        expect_op(P, ")");
        return n;
    }
    if (is_op(t, "[")) return parse_seq(P, JN_LIST, "]");
    if (is_op(t, "{")) return parse_seq(P, JN_DICT, "}");
    unexpected(P, NULL);
}

static jnode *parse_unary(parser *P, int with_filter) {
    enter(P);
    const jtok *t = cur(P);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(P);
        n = node(P, t->text[0] == '-' ? JN_NEG : JN_POS, t->line);
        n->bin.a = parse_unary(P, 0);
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static jnode *binop(parser *P, jnode_kind kind, int op, int line, jnode *a, jnode *b) {
    jnode *n = node(P, kind, line);
    n->bin.op = op;
    n->bin.a = a;
    n->bin.b = b;
    return n;
}

static jnode *parse_pow(parser *P) {
    jnode *n = parse_unary(P, 1);
    while (is_op(cur(P), "**")) {
        int line = advance(P)->line;
        n = binop(P, JN_BINOP, JOP_POW, line, n, parse_unary(P, 1));
    }
    return n;
}

static jnode *parse_math2(parser *P) {
    jnode *n = parse_pow(P);
    for (;;) {
        const jtok *t = cur(P);
        int op = is_op(t, "*")    ? JOP_MUL
                 : is_op(t, "/")  ? JOP_DIV
                 : is_op(t, "//") ? JOP_FLOORDIV
                 : is_op(t, "%")  ? JOP_MOD
                                  : -1;
        if (op < 0) return n;
        advance(P);
        n = binop(P, JN_BINOP, op, t->line, n, parse_pow(P));
    }
}

static jnode *parse_concat(parser *P) {
    jnode *n = parse_math2(P);
    while (is_op(cur(P), "~")) {
        int line = advance(P)->line;
        n = binop(P, JN_BINOP, JOP_CONCAT, line, n, parse_math2(P));
    }
    return n;
}

static jnode *parse_math1(parser *P) {
    jnode *n = parse_concat(P);
    while (is_op(cur(P), "+") || is_op(cur(P), "-")) {
        const jtok *t = advance(P);
        n = binop(P, JN_BINOP, t->text[0] == '+' ? JOP_ADD : JOP_SUB, t->line, n, parse_concat(P));
    }
    return n;
}

static jnode *parse_compare(parser *P) {
    jnode *first = parse_math1(P);
    jnode *n = NULL;
    for (;;) {
        const jtok *t = cur(P);
        int op = is_op(t, "==")                                     ? JCMP_EQ
                 : is_op(t, "!=")                                   ? JCMP_NE
                 : is_op(t, "<")                                    ? JCMP_LT
                 : is_op(t, "<=")                                   ? JCMP_LE
                 : is_op(t, ">")                                    ? JCMP_GT
                 : is_op(t, ">=")                                   ? JCMP_GE
                 : is_name(t, "in")                                 ? JCMP_IN
                 : (is_name(t, "not") && is_name(peek(P, 1), "in")) ? JCMP_NOTIN
                                                                    : -1;
        if (op < 0) return n ? n : first;
        advance(P);
        if (op == JCMP_NOTIN) advance(P);
        if (!n) {
            n = node(P, JN_COMPARE, t->line);
            n->cmp.first = first;
        }
        n->cmp.ops = grow(P->a, n->cmp.ops, n->cmp.rest.n, sizeof *n->cmp.ops);
        n->cmp.ops[n->cmp.rest.n] = op;
        push(P, &n->cmp.rest, parse_math1(P));
    }
}

static jnode *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        int line = advance(P)->line;
        enter(P);
        jnode *n = node(P, JN_NOT, line);
        n->bin.a = parse_not(P);
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static jnode *parse_and(parser *P) {
    jnode *n = parse_not(P);
    while (is_name(cur(P), "and")) {
        int line = advance(P)->line;
        n = binop(P, JN_AND, 0, line, n, parse_not(P));
    }
    return n;
}

static jnode *parse_or(parser *P) {
    jnode *n = parse_and(P);
    while (is_name(cur(P), "or")) {
        int line = advance(P)->line;
        n = binop(P, JN_OR, 0, line, n, parse_and(P));
    }
    return n;
}

static jnode *parse_expression(parser *P, int with_condexpr) {
    enter(P);
    jnode *n = parse_or(P);
    while (with_condexpr && is_name(cur(P), "if")) {
        jnode *c = node(P, JN_COND, advance(P)->line);
        c->cond.yes = n;
        c->cond.cond = parse_or(P);
        if (is_name(cur(P), "else")) {
            advance(P);
            c->cond.no = parse_expression(P, 1);
        }
        n = c;
    }
    P->depth--;
    return n;
}

// Assignment targets: `a`, `a, b` or `(a, b)`. Returns the count; *unpack is
// set when written as a tuple.
static int parse_targets(parser *P, const char ***names, int *unpack) {
    int paren = is_op(cur(P), "(");
    if (paren) advance(P);
    int n = 0;
    *unpack = paren;
    for (;;) {
        *names = grow(P->a, *names, n, sizeof **names);
        (*names)[n++] = expect_name(P);
        if (!is_op(cur(P), ",")) break;
        advance(P);
        *unpack = 1;
        if (paren && is_op(cur(P), ")")) break;
    }
    if (paren) expect_op(P, ")");
    return n;
}

static jnode *parse_for(parser *P, int line) {
    jnode *n = node(P, JN_FOR, line);
    n->for_.ntargets = parse_targets(P, &n->for_.targets, &n->for_.unpack);
    if (!is_name(cur(P), "in")) unexpected(P, "'in'");
    advance(P);
    n->for_.iter = parse_tuple(P, 0, 0);
    if (is_name(cur(P), "if")) {
        advance(P);
        n->for_.filter = parse_expression(P, 1);
    }
    if (is_name(cur(P), "recursive"))
        fail(P, line, "recursive for loops are not supported%s%s", "", "");
    expect_block_end(P);
    static const char *const ends[] = {"endfor", "else", NULL};
    P->loops++;
    n->for_.body = parse_body(P, ends, "for", line);
    P->loops--;
    if (is_name(cur(P), "else")) {
        advance(P);
        expect_block_end(P);
        static const char *const end[] = {"endfor", NULL};
        n->for_.orelse = parse_body(P, end, "for", line);
    }
    advance(P); // endfor
    expect_block_end(P);
    return n;
}

static jnode *parse_if(parser *P, int line) {
    jnode *top = node(P, JN_IF, line), *n = top;
    static const char *const ends[] = {"endif", "elif", "else", NULL};
    for (;;) {
        n->if_.cond = parse_tuple(P, 0, 0);
        expect_block_end(P);
        n->if_.body = parse_body(P, ends, "if", line);
        if (is_name(cur(P), "elif")) {
            jnode *e = node(P, JN_IF, advance(P)->line);
            push(P, &n->if_.orelse, e);
            n = e;
            continue;
        }
        if (is_name(cur(P), "else")) {
            advance(P);
            expect_block_end(P);
            static const char *const end[] = {"endif", NULL};
            n->if_.orelse = parse_body(P, end, "if", line);
        }
        advance(P); // endif
        expect_block_end(P);
        return top;
    }
}

static jnode *parse_set(parser *P, int line) {
    jnode *n = node(P, JN_SET, line);
    if (cur(P)->type == JT_NAME && is_op(peek(P, 1), ".")) {
        n->set.targets = jarena_alloc(P->a, sizeof *n->set.targets);
        n->set.targets[0] = advance(P)->text;
        n->set.ntargets = 1;
        advance(P);
        n->set.attr = expect_name(P);
    } else {
        n->set.ntargets = parse_targets(P, &n->set.targets, &n->set.unpack);
    }
    if (is_op(cur(P), "=")) {
        advance(P);
        n->set.value = parse_tuple(P, 1, 0);
        expect_block_end(P);
        return n;
    }
    if (n->set.attr || n->set.unpack) unexpected(P, "'='");
    if (is_op(cur(P), "|"))
        fail(P, line, "filters on {%% set %%} blocks are not supported%s%s", "", "");
    expect_block_end(P);
    static const char *const ends[] = {"endset", NULL};
    n->set.body = parse_body(P, ends, "set", line);
    advance(P);
    expect_block_end(P);
    return n;
}

static jnode *parse_macro(parser *P, int line) {
    if (P->macro) fail(P, line, "macros defined inside macros are not supported%s%s", "", "");
    jnode *n = node(P, JN_MACRO, line);
    n->macro.name = expect_name(P);
    expect_op(P, "(");
    while (!is_op(cur(P), ")")) {
        if (n->macro.nparams) expect_op(P, ",");
        n->macro.params = grow(P->a, n->macro.params, n->macro.nparams, sizeof *n->macro.params);
        n->macro.params[n->macro.nparams++] = expect_name(P);
        jnode *dflt = NULL;
        if (is_op(cur(P), "=")) {
            advance(P);
            dflt = parse_expression(P, 1);
        } else if (n->macro.defaults.n && n->macro.defaults.v[n->macro.defaults.n - 1]) {
            fail(P, line, "non-default argument follows default argument%s%s", "", "");
        }
        push(P, &n->macro.defaults, dflt);
    }
    advance(P);
    expect_block_end(P);
    static const char *const ends[] = {"endmacro", NULL};
    int loops = P->loops;
    P->loops = 0;
    P->macro = n;
    n->macro.body = parse_body(P, ends, "macro", line);
    P->macro = NULL;
    P->loops = loops;
    advance(P);
    expect_block_end(P);
    return n;
}

static jnode *parse_statement(parser *P) {
    const jtok *t = cur(P);
    if (t->type != JT_NAME) unexpected(P, "a tag name");
    const char *tag = advance(P)->text;
    int line = t->line;
    if (!strcmp(tag, "for")) return parse_for(P, line);
    if (!strcmp(tag, "if")) return parse_if(P, line);
    if (!strcmp(tag, "set")) return parse_set(P, line);
    if (!strcmp(tag, "macro")) return parse_macro(P, line);
    if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        if (!P->loops) fail(P, line, "'%s' outside of a loop%s", tag, "");
        expect_block_end(P);
        return node(P, tag[0] == 'b' ? JN_BREAK : JN_CONTINUE, line);
    }
    if (!strcmp(tag, "generation")) {
        expect_block_end(P);
        static const char *const ends[] = {"endgeneration", NULL};
        jnode *n = node(P, JN_BLOCK, line);
        n->block = parse_body(P, ends, "generation", line);
        advance(P);
        expect_block_end(P);
        return n;
    }
    static const char *const unsupported[] = {"filter", "with",  "call",    "include",    "import",
                                              "from",   "block", "extends", "autoescape", NULL};
    for (int i = 0; unsupported[i]; i++)
        if (!strcmp(tag, unsupported[i])) fail(P, line, "unsupported tag '%s'%s", tag, "");
    fail(P, line, "unknown tag '%s'%s", tag, "");
}

// Statements up to EOF (ends == NULL) or up to a block tag named in ends;
// then the parser stands on that tag's name.
static jnodes parse_body(parser *P, const char *const *ends, const char *opener, int opener_line) {
    jnodes body = {0};
    enter(P);
    for (;;) {
        const jtok *t = cur(P);
        if (t->type == JT_EOF) {
            if (!ends) break;
            jinja_throw(P->a->trap, opener_line, "missing {%% %s %%} for the '%s' block", ends[0],
                        opener);
        }
        if (t->type == JT_DATA) {
            jnode *n = node(P, JN_DATA, t->line);
            n->data.p = t->text;
            n->data.n = t->len;
            push(P, &body, n);
            advance(P);
        } else if (t->type == JT_VAR_BEGIN) {
            advance(P);
            jnode *n = node(P, JN_PRINT, t->line);
            n->expr = parse_tuple(P, 1, 0);
            expect_type(P, JT_VAR_END, "end of print statement");
            push(P, &body, n);
        } else if (t->type == JT_BLOCK_BEGIN) {
            advance(P);
            const jtok *name = cur(P);
            for (int i = 0; ends && ends[i]; i++)
                if (is_name(name, ends[i])) {
                    P->depth--;
                    return body;
                }
            if (name->type == JT_NAME &&
                (!strncmp(name->text, "end", 3) || !strcmp(name->text, "else") ||
                 !strcmp(name->text, "elif"))) {
                if (ends)
                    jinja_throw(P->a->trap, name->line,
                                "unexpected '%s' (expected {%% %s %%} for the '%s' at line %d)",
                                name->text, ends[0], opener, opener_line);
                fail(P, name->line, "unexpected '%s'%s", name->text, "");
            }
            push(P, &body, parse_statement(P));
        } else {
            unexpected(P, NULL);
        }
    }
    P->depth--;
    return body;
}

jnodes jinja_parse(jarena *a, const jtoks *toks) {
    parser P = {.a = a, .t = toks->v};
    return parse_body(&P, NULL, NULL, 0);
}
