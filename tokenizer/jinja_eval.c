// jinja_eval.c - runs a chat template's syntax tree: scopes as jinja2 has
// them (a for-loop iteration and a macro call get their own; if does not),
// statements, expressions, calls and macros.
#include "jinja_eval.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { FLOW_NEXT, FLOW_BREAK, FLOW_CONTINUE };

_Noreturn void jinja_fail(jctx *c, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jinja_throw(c->trap, line, "%s", msg);
}

_Noreturn void jinja_fail_undefined(jctx *c, int line, jval v) {
    static const char *const owners[] = {"Undefined", "None", "bool", "int",      "float",
                                         "str",       "list", "dict", "function", "LoopContext"};
    if (!v.s.p) jinja_fail(c, line, "use of an undefined value");
    if (v.s.n == 0 || v.s.n > sizeof owners / sizeof *owners)
        jinja_fail(c, line, "'%s' is undefined", v.s.p);
    if (v.s.n == JV_NONE + 1) jinja_fail(c, line, "'None' has no attribute '%s'", v.s.p);
    jinja_fail(c, line, "'%s object' has no attribute '%s'", owners[v.s.n - 1], v.s.p);
}

static jscope *scope_new(jctx *c, jscope *parent) {
    jscope *s = jarena_zalloc(c->a, sizeof *s);
    s->parent = parent;
    return s;
}

void jscope_set(jctx *c, jscope *s, const char *name, jval v) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        const char **names = jarena_alloc(c->a, (size_t)cap * sizeof *names);
        jval *vals = jarena_alloc(c->a, (size_t)cap * sizeof *vals);
        if (s->n) {
            memcpy(names, s->names, (size_t)s->n * sizeof *names);
            memcpy(vals, s->vals, (size_t)s->n * sizeof *vals);
        }
        s->names = names;
        s->vals = vals;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

jval *jscope_get(jscope *s, const char *name) {
    for (; s; s = s->parent)
        for (int i = s->n - 1; i >= 0; i--)
            if (!strcmp(s->names[i], name)) return &s->vals[i];
    return NULL;
}

void jinja_bind(jctx *c, int line, const char *fname, jargs *a, const char *const *params,
                jval *out) {
    int np = 0;
    while (params[np]) out[np++] = jval_undef(NULL);
    if (a->npos > np)
        jinja_fail(c, line, "%s() takes at most %d argument(s) (%d given)", fname, np, a->npos);
    for (int i = 0; i < a->npos; i++) out[i] = a->pos[i];
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(params[i], a->kwnames[k])) i++;
        if (i == np)
            jinja_fail(c, line, "%s() got an unexpected keyword argument '%s'", fname,
                       a->kwnames[k]);
        if (jinja_given(out[i]))
            jinja_fail(c, line, "%s() got multiple values for argument '%s'", fname, params[i]);
        out[i] = a->kw[k];
    }
}

int64_t jinja_arg_int(jctx *c, int line, const char *fname, jval v) {
    if (v.type == JV_INT) return v.i;
    if (v.type == JV_BOOL) return v.b;
    jinja_fail(c, line, "%s(): expected an integer, got %s", fname, jval_type_name(v));
}

jval jinja_arg_str(jctx *c, int line, const char *fname, jval v) {
    if (v.type != JV_STR)
        jinja_fail(c, line, "%s(): expected a string, got %s", fname, jval_type_name(v));
    return v;
}

static void eval_args(jctx *c, jscope *s, const jcallargs *ca, jargs *out) {
    out->npos = ca->pos.n;
    out->nkw = ca->kw.n;
    out->pos = out->npos ? jarena_alloc(c->a, (size_t)out->npos * sizeof(jval)) : NULL;
    out->kw = out->nkw ? jarena_alloc(c->a, (size_t)out->nkw * sizeof(jval)) : NULL;
    out->kwnames = ca->kwnames;
    for (int i = 0; i < out->npos; i++) out->pos[i] = jinja_eval(c, s, ca->pos.v[i]);
    for (int i = 0; i < out->nkw; i++) out->kw[i] = jinja_eval(c, s, ca->kw.v[i]);
}

static int exec_body(jctx *c, jscope *s, const jnodes *body, jbuf *out);

static jval call_macro(jctx *c, int line, const jfunc *f, jargs *a) {
    const jnode *m = f->macro;
    int np = m->macro.nparams;
    if (a->npos > np && !m->macro.uses_varargs)
        jinja_fail(c, line, "macro '%s' takes not more than %d argument(s)", m->macro.name, np);
    if (++c->depth > JINJA_MAX_DEPTH) jinja_fail(c, line, "macro calls nested too deeply");
    jscope *s = scope_new(c, f->closure);
    jval *vals = jarena_alloc(c->a, ((size_t)np + 1) * sizeof(jval));
    for (int i = 0; i < np; i++) vals[i] = i < a->npos ? a->pos[i] : jval_undef(NULL);
    jdict *kwargs = jdict_new(c->a, 0);
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(m->macro.params[i], a->kwnames[k])) i++;
        if (i == np) {
            if (!m->macro.uses_kwargs)
                jinja_fail(c, line, "macro '%s' takes no keyword argument '%s'", m->macro.name,
                           a->kwnames[k]);
            jdict_set(c->a, kwargs, jval_str(a->kwnames[k]), a->kw[k]);
            continue;
        }
        if (jinja_given(vals[i]))
            jinja_fail(c, line, "macro '%s' got multiple values for argument '%s'", m->macro.name,
                       m->macro.params[i]);
        vals[i] = a->kw[k];
    }
    // Defaults are evaluated in the call's scope, after the earlier parameters.
    for (int i = 0; i < np; i++) {
        if (!jinja_given(vals[i]))
            vals[i] = m->macro.defaults.v[i] ? jinja_eval(c, s, m->macro.defaults.v[i])
                                             : jval_undef(m->macro.params[i]);
        jscope_set(c, s, m->macro.params[i], vals[i]);
    }
    if (m->macro.uses_varargs) {
        jlist *rest = jlist_new(c->a, JL_TUPLE, 0);
        for (int i = np; i < a->npos; i++) jlist_push(c->a, rest, a->pos[i]);
        jscope_set(c, s, "varargs", jval_list(rest));
    }
    if (m->macro.uses_kwargs) jscope_set(c, s, "kwargs", jval_dict(kwargs));
    jbuf out;
    jbuf_init(&out, c->a);
    exec_body(c, s, &m->macro.body, &out);
    c->depth--;
    return jval_strn(out.p ? out.p : "", out.n);
}

jval jinja_call(jctx *c, int line, jval fn, jargs *a) {
    if (fn.type == JV_UNDEF) jinja_fail_undefined(c, line, fn);
    if (fn.type != JV_FUNC) jinja_fail(c, line, "'%s' object is not callable", jval_type_name(fn));
    if (fn.fn->kind == JF_MACRO) return call_macro(c, line, fn.fn, a);
    return fn.fn->fn(c, line, fn.fn->self, a);
}

static jval make_builtin(jctx *c, const jbuiltin *b) {
    jfunc *f = jarena_zalloc(c->a, sizeof *f);
    f->kind = JF_BUILTIN;
    f->name = b->name;
    f->fn = b->fn;
    return (jval){.type = JV_FUNC, .fn = f};
}

static jval eval_call(jctx *c, jscope *s, const jnode *n) {
    const jnode *callee = n->call.callee;
    jargs a;
    if (callee->kind == JN_ATTR) {
        jval obj = jinja_eval(c, s, callee->attr.obj);
        if (obj.type == JV_UNDEF) jinja_fail_undefined(c, n->line, obj);
        jbuiltin_fn m = jinja_find_method(c, n->line, obj, callee->attr.name);
        eval_args(c, s, &n->call.args, &a);
        if (m) return m(c, n->line, obj, &a);
        return jinja_call(c, n->line, jinja_getattr(c, n->line, obj, callee->attr.name), &a);
    }
    if (callee->kind == JN_NAME && !jscope_get(s, callee->name)) {
        const jbuiltin *g = jinja_find_global(callee->name);
        if (!g) jinja_fail(c, n->line, "'%s' is undefined", callee->name);
        eval_args(c, s, &n->call.args, &a);
        return g->fn(c, n->line, jval_none(), &a);
    }
    jval fn = jinja_eval(c, s, callee);
    eval_args(c, s, &n->call.args, &a);
    return jinja_call(c, n->line, fn, &a);
}

static int compare(jctx *c, int line, int op, jval a, jval b) {
    switch (op) {
    case JCMP_EQ:
        return jval_equal(a, b);
    case JCMP_NE:
        return !jval_equal(a, b);
    case JCMP_IN:
        return jinja_contains(c, line, b, a);
    case JCMP_NOTIN:
        return !jinja_contains(c, line, b, a);
    default:
        break;
    }
    static const char *const names[] = {"==", "!=", "<", "<=", ">", ">="};
    if (a.type == JV_UNDEF) jinja_fail_undefined(c, line, a);
    if (b.type == JV_UNDEF) jinja_fail_undefined(c, line, b);
    int r;
    if (jval_compare(a, b, &r) != 0)
        jinja_fail(c, line, "'%s' not supported between instances of '%s' and '%s'", names[op],
                   jval_type_name(a), jval_type_name(b));
    return op == JCMP_LT ? r < 0 : op == JCMP_LE ? r <= 0 : op == JCMP_GT ? r > 0 : r >= 0;
}

static jval eval_unary(jctx *c, int line, int neg, jval v) {
    if (v.type == JV_BOOL) v = jval_int(v.b);
    if (v.type == JV_INT) {
        if (neg && v.i == INT64_MIN) jinja_fail(c, line, "integer overflow");
        return neg ? jval_int(-v.i) : v;
    }
    if (v.type == JV_FLOAT) return neg ? jval_float(-v.f) : v;
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    jinja_fail(c, line, "bad operand type for unary %c: '%s'", neg ? '-' : '+', jval_type_name(v));
}

static jval eval_seq(jctx *c, jscope *s, const jnode *n) {
    if (n->kind == JN_DICT) {
        jdict *d = jdict_new(c->a, (size_t)n->seq.items.n);
        for (int i = 0; i < n->seq.items.n; i++) {
            jval k = jinja_eval(c, s, n->seq.items.v[i]);
            if (k.type == JV_LIST || k.type == JV_DICT)
                jinja_fail(c, n->line, "unhashable type: '%s'", jval_type_name(k));
            jdict_set(c->a, d, k, jinja_eval(c, s, n->seq.vals.v[i]));
        }
        return jval_dict(d);
    }
    jlist *l = jlist_new(c->a, n->kind == JN_TUPLE ? JL_TUPLE : JL_LIST, (size_t)n->seq.items.n);
    for (int i = 0; i < n->seq.items.n; i++)
        jlist_push(c->a, l, jinja_eval(c, s, n->seq.items.v[i]));
    return jval_list(l);
}

jval jinja_eval(jctx *c, jscope *s, const jnode *n) {
    switch (n->kind) {
    case JN_CONST:
        return n->value;
    case JN_NAME: {
        jval *v = jscope_get(s, n->name);
        if (v) return *v;
        const jbuiltin *g = jinja_find_global(n->name);
        return g ? make_builtin(c, g) : jval_undef(n->name);
    }
    case JN_ATTR:
        return jinja_getattr(c, n->line, jinja_eval(c, s, n->attr.obj), n->attr.name);
    case JN_ITEM:
        return jinja_getitem(c, n->line, jinja_eval(c, s, n->item.obj),
                             jinja_eval(c, s, n->item.key));
    case JN_SLICE: {
        jval obj = jinja_eval(c, s, n->slice.obj);
        jval part[3];
        const jnode *parts[3] = {n->slice.start, n->slice.stop, n->slice.step};
        for (int i = 0; i < 3; i++) part[i] = parts[i] ? jinja_eval(c, s, parts[i]) : jval_none();
        return jinja_slice(c, n->line, obj, part[0], part[1], part[2]);
    }
    case JN_CALL:
        return eval_call(c, s, n);
    case JN_FILTER:
    case JN_TEST: {
        jval v = jinja_eval(c, s, n->filter.arg);
        jargs a;
        eval_args(c, s, &n->filter.args, &a);
        jval r = n->filter.fn->fn(c, n->line, v, &a);
        if (n->kind == JN_TEST && n->filter.negate) r.b = !r.b;
        return r;
    }
    case JN_NEG:
    case JN_POS:
        return eval_unary(c, n->line, n->kind == JN_NEG, jinja_eval(c, s, n->bin.a));
    case JN_NOT:
        return jval_bool(!jval_truthy(jinja_eval(c, s, n->bin.a)));
    case JN_AND:
    case JN_OR: {
        jval a = jinja_eval(c, s, n->bin.a);
        if (jval_truthy(a) == (n->kind == JN_OR)) return a;
        return jinja_eval(c, s, n->bin.b);
    }
    case JN_BINOP:
        return jinja_binop(c, n->line, n->bin.op, jinja_eval(c, s, n->bin.a),
                           jinja_eval(c, s, n->bin.b));
    case JN_COMPARE: {
        jval left = jinja_eval(c, s, n->cmp.first);
        for (int i = 0; i < n->cmp.rest.n; i++) {
            jval right = jinja_eval(c, s, n->cmp.rest.v[i]);
            if (!compare(c, n->line, n->cmp.ops[i], left, right)) return jval_bool(0);
            left = right;
        }
        return jval_bool(1);
    }
    case JN_COND:
        if (jval_truthy(jinja_eval(c, s, n->cond.cond))) return jinja_eval(c, s, n->cond.yes);
        return n->cond.no ? jinja_eval(c, s, n->cond.no) : jval_undef(NULL);
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT:
        return eval_seq(c, s, n);
    default:
        jinja_fail(c, n->line, "statement used as an expression");
    }
}

// Assigns v to targets (unpacking a sequence when written as a tuple).
static void assign(jctx *c, int line, jscope *s, const char **targets, int ntargets, int unpack,
                   jval v) {
    if (!unpack) {
        jscope_set(c, s, targets[0], v);
        return;
    }
    if (v.type == JV_UNDEF) jinja_fail_undefined(c, line, v);
    jlist *items = jinja_iterate(c, line, v);
    if ((int)items->n < ntargets)
        jinja_fail(c, line, "not enough values to unpack (expected %d, got %zu)", ntargets,
                   items->n);
    if ((int)items->n > ntargets)
        jinja_fail(c, line, "too many values to unpack (expected %d)", ntargets);
    for (int i = 0; i < ntargets; i++) jscope_set(c, s, targets[i], items->items[i]);
}

static int exec_for(jctx *c, jscope *s, const jnode *n, jbuf *out) {
    jval seq = jinja_eval(c, s, n->for_.iter);
    jlist *items = jinja_iterate(c, n->line, seq);
    if (n->for_.filter) {
        jlist *kept = jlist_new(c->a, JL_LIST, items->n);
        for (size_t i = 0; i < items->n; i++) {
            jscope *t = scope_new(c, s);
            assign(c, n->line, t, n->for_.targets, n->for_.ntargets, n->for_.unpack,
                   items->items[i]);
            if (jval_truthy(jinja_eval(c, t, n->for_.filter)))
                jlist_push(c->a, kept, items->items[i]);
        }
        items = kept;
    }
    jloop *loop = jarena_zalloc(c->a, sizeof *loop);
    loop->items = items;
    // jinja2 runs the else block unless some iteration ran its body to the
    // end: a loop left by break or continue on every iteration runs it too.
    int completed = 0;
    for (size_t i = 0; i < items->n; i++) {
        jscope *t = scope_new(c, s);
        loop->index0 = i;
        jscope_set(c, t, "loop", (jval){.type = JV_LOOP, .loop = loop});
        assign(c, n->line, t, n->for_.targets, n->for_.ntargets, n->for_.unpack, items->items[i]);
        int flow = exec_body(c, t, &n->for_.body, out);
        if (flow == FLOW_NEXT) completed = 1;
        if (flow == FLOW_BREAK) break;
    }
    if (!completed) return exec_body(c, s, &n->for_.orelse, out);
    return FLOW_NEXT;
}

static void exec_set(jctx *c, jscope *s, const jnode *n) {
    jval v;
    if (n->set.value) {
        v = jinja_eval(c, s, n->set.value);
    } else {
        jbuf b;
        jbuf_init(&b, c->a);
        exec_body(c, scope_new(c, s), &n->set.body, &b);
        v = jval_strn(b.p ? b.p : "", b.n);
    }
    if (n->set.attr) {
        jval *ns = jscope_get(s, n->set.targets[0]);
        if (!ns || ns->type != JV_DICT || !ns->dict->is_namespace)
            jinja_fail(c, n->line, "cannot assign attribute on non-namespace object");
        jdict_set(c->a, ns->dict, jval_str(n->set.attr), v);
        return;
    }
    assign(c, n->line, s, n->set.targets, n->set.ntargets, n->set.unpack, v);
}

static int exec_body(jctx *c, jscope *s, const jnodes *body, jbuf *out) {
    for (int i = 0; i < body->n; i++) {
        const jnode *n = body->v[i];
        int flow = FLOW_NEXT;
        switch (n->kind) {
        case JN_DATA:
            jbuf_put(out, n->data.p, n->data.n);
            break;
        case JN_PRINT: {
            jval v = jinja_eval(c, s, n->expr);
            if (jval_write_str(out, v) < 0)
                jinja_fail(c, n->line,
                           "cannot print a %s (its Python text is an object address, or it nests "
                           "too deeply)",
                           jval_type_name(v));
            break;
        }
        case JN_IF:
            flow = exec_body(
                c, s, jval_truthy(jinja_eval(c, s, n->if_.cond)) ? &n->if_.body : &n->if_.orelse,
                out);
            break;
        case JN_FOR:
            flow = exec_for(c, s, n, out);
            break;
        case JN_SET:
            exec_set(c, s, n);
            break;
        case JN_MACRO: {
            jfunc *f = jarena_zalloc(c->a, sizeof *f);
            f->kind = JF_MACRO;
            f->name = n->macro.name;
            f->macro = n;
            f->closure = s;
            jscope_set(c, s, n->macro.name, (jval){.type = JV_FUNC, .fn = f});
            break;
        }
        case JN_BREAK:
            return FLOW_BREAK;
        case JN_CONTINUE:
            return FLOW_CONTINUE;
        case JN_BLOCK:
            flow = exec_body(c, s, &n->block, out);
            break;
        default:
            jinja_fail(c, n->line, "expression used as a statement");
        }
        if (flow != FLOW_NEXT) return flow;
    }
    return FLOW_NEXT;
}

void jinja_exec(jctx *c, jscope *s, const jnodes *body, jbuf *out) {
    exec_body(c, s, body, out);
}
