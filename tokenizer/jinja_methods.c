// jinja_methods.c - dict, list and loop methods, and the global functions a
// chat template can call: range, namespace, dict, and transformers'
// raise_exception and strftime_now.
#include "jinja_eval.h"

#include <string.h>
#include <time.h>

static const char *const no_params[] = {NULL};

static jval m_get(jctx *c, int line, jval d, jargs *a) {
    jval v[2];
    jinja_bind(c, line, "get", a, (const char *const[]){"key", "default", NULL}, v);
    if (!jinja_given(v[0])) jinja_fail(c, line, "get() takes at least 1 argument");
    jval *hit = jdict_get(d.dict, v[0]);
    return hit ? *hit : jinja_given(v[1]) ? v[1] : jval_none();
}

static jval dict_view(jctx *c, int line, jval d, jargs *a, jlist_kind kind) {
    jinja_bind(c, line,
               kind == JL_ITEMS  ? "items"
               : kind == JL_KEYS ? "keys"
                                 : "values",
               a, no_params, NULL);
    jlist *l = jlist_new(c->a, kind, d.dict->n);
    for (size_t i = 0; i < d.dict->n; i++) {
        if (kind == JL_ITEMS) {
            jlist *pair = jlist_new(c->a, JL_TUPLE, 2);
            jlist_push(c->a, pair, d.dict->keys[i]);
            jlist_push(c->a, pair, d.dict->vals[i]);
            jlist_push(c->a, l, jval_list(pair));
        } else {
            jlist_push(c->a, l, kind == JL_KEYS ? d.dict->keys[i] : d.dict->vals[i]);
        }
    }
    return jval_list(l);
}

static jval m_items(jctx *c, int line, jval d, jargs *a) {
    return dict_view(c, line, d, a, JL_ITEMS);
}
static jval m_keys(jctx *c, int line, jval d, jargs *a) {
    return dict_view(c, line, d, a, JL_KEYS);
}
static jval m_values(jctx *c, int line, jval d, jargs *a) {
    return dict_view(c, line, d, a, JL_VALUES);
}

static jval m_copy(jctx *c, int line, jval v, jargs *a) {
    jinja_bind(c, line, "copy", a, no_params, NULL);
    if (v.type == JV_DICT) {
        jdict *d = jdict_new(c->a, v.dict->n);
        for (size_t i = 0; i < v.dict->n; i++) jdict_set(c->a, d, v.dict->keys[i], v.dict->vals[i]);
        return jval_dict(d);
    }
    jlist *l = jlist_new(c->a, JL_LIST, v.list->n);
    for (size_t i = 0; i < v.list->n; i++) jlist_push(c->a, l, v.list->items[i]);
    return jval_list(l);
}

static jval list_search(jctx *c, int line, jval l, jargs *a, int count) {
    jval x;
    jinja_bind(c, line, count ? "count" : "index", a, (const char *const[]){"value", NULL}, &x);
    int64_t k = 0;
    for (size_t i = 0; i < l.list->n; i++) {
        if (!jval_equal(l.list->items[i], x)) continue;
        if (!count) return jval_int((int64_t)i);
        k++;
    }
    if (!count) jinja_fail(c, line, "value is not in list");
    return jval_int(k);
}

static jval m_list_count(jctx *c, int line, jval l, jargs *a) {
    return list_search(c, line, l, a, 1);
}
static jval m_list_index(jctx *c, int line, jval l, jargs *a) {
    return list_search(c, line, l, a, 0);
}

static jval m_cycle(jctx *c, int line, jval loop, jargs *a) {
    if (a->nkw) jinja_fail(c, line, "loop.cycle() takes no keyword arguments");
    if (!a->npos) jinja_fail(c, line, "no items for cycling given");
    return a->pos[loop.loop->index0 % (size_t)a->npos];
}

static int in_list(const char *const *names, const char *name) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

jbuiltin_fn jinja_find_method(jctx *c, int line, jval obj, const char *name) {
    // Methods that mutate: the immutable sandbox transformers uses forbids them.
    static const char *const dict_unsafe[] = {"clear",      "pop",    "popitem",
                                              "setdefault", "update", NULL};
    static const char *const dict_other[] = {"fromkeys", NULL};
    static const char *const list_unsafe[] = {"append", "clear",   "extend", "insert", "pop",
                                              "remove", "reverse", "sort",   NULL};
    if (name[0] == '_') return NULL; // private: the sandbox hides them, so dict keys win
    switch (obj.type) {
    case JV_STR:
        return jinja_str_method(c, line, name);
    case JV_DICT:
        if (obj.dict->is_namespace) return NULL;
        if (!strcmp(name, "get")) return m_get;
        if (!strcmp(name, "items")) return m_items;
        if (!strcmp(name, "keys")) return m_keys;
        if (!strcmp(name, "values")) return m_values;
        if (!strcmp(name, "copy")) return m_copy;
        if (in_list(dict_unsafe, name))
            jinja_fail(c, line, "access to attribute '%s' of 'dict' object is unsafe", name);
        if (in_list(dict_other, name)) jinja_fail(c, line, "unsupported dict method '%s'", name);
        return NULL;
    case JV_LIST:
        if (obj.list->kind != JL_LIST && obj.list->kind != JL_TUPLE) return NULL;
        if (!strcmp(name, "count")) return m_list_count;
        if (!strcmp(name, "index")) return m_list_index;
        if (in_list(list_unsafe, name))
            jinja_fail(c, line, "access to attribute '%s' of '%s' object is unsafe", name,
                       jval_type_name(obj));
        if (!strcmp(name, "copy") && obj.list->kind == JL_LIST) return m_copy;
        return NULL;
    case JV_LOOP:
        return !strcmp(name, "cycle") ? m_cycle : NULL;
    default:
        return NULL;
    }
}

// --- globals -----------------------------------------------------------------------

static jval g_range(jctx *c, int line, jval self, jargs *a) {
    if (a->nkw) jinja_fail(c, line, "range() takes no keyword arguments");
    if (a->npos < 1 || a->npos > 3)
        jinja_fail(c, line, "range expected 1 to 3 arguments, got %d", a->npos);
    int64_t v[3] = {0, 0, 1};
    for (int i = 0; i < a->npos; i++)
        v[a->npos == 1 ? 1 : i] = jinja_arg_int(c, line, "range", a->pos[i]);
    if (v[2] == 0) jinja_fail(c, line, "range() arg 3 must not be zero");
    int64_t n = 0;
    if (v[2] > 0 && v[1] > v[0]) n = (v[1] - v[0] + v[2] - 1) / v[2];
    if (v[2] < 0 && v[1] < v[0]) n = (v[0] - v[1] - v[2] - 1) / -v[2];
    if (n > JINJA_MAX_RANGE)
        jinja_fail(c, line, "range too big: the sandbox allows at most %d items", JINJA_MAX_RANGE);
    jlist *l = jlist_new(c->a, JL_RANGE, (size_t)n);
    l->r_start = v[0];
    l->r_stop = v[1];
    l->r_step = v[2];
    for (int64_t i = 0; i < n; i++) jlist_push(c->a, l, jval_int(v[0] + i * v[2]));
    return jval_list(l);
}

// dict(mapping or pairs, **kw) and namespace(...), which takes the same.
static jval make_dict(jctx *c, int line, jargs *a, int is_namespace) {
    const char *name = is_namespace ? "namespace" : "dict";
    if (a->npos > 1)
        jinja_fail(c, line, "%s expected at most 1 positional argument, got %d", name, a->npos);
    jdict *d = jdict_new(c->a, (size_t)a->nkw);
    d->is_namespace = (uint8_t)is_namespace;
    if (a->npos) {
        jval src = a->pos[0];
        if (src.type == JV_DICT && !src.dict->is_namespace) {
            for (size_t i = 0; i < src.dict->n; i++)
                jdict_set(c->a, d, src.dict->keys[i], src.dict->vals[i]);
        } else {
            jlist *items = jinja_iterate(c, line, src);
            for (size_t i = 0; i < items->n; i++) {
                jval p = items->items[i];
                if (p.type != JV_LIST || p.list->kind == JL_GEN || p.list->n != 2)
                    jinja_fail(c, line, "%s(): sequence element #%zu is not a pair", name, i);
                jdict_set(c->a, d, p.list->items[0], p.list->items[1]);
            }
        }
    }
    for (int i = 0; i < a->nkw; i++) jdict_set(c->a, d, jval_str(a->kwnames[i]), a->kw[i]);
    return jval_dict(d);
}

static jval g_dict(jctx *c, int line, jval self, jargs *a) {
    return make_dict(c, line, a, 0);
}
static jval g_namespace(jctx *c, int line, jval self, jargs *a) {
    return make_dict(c, line, a, 1);
}

// transformers' raise_exception(message): the template's own error, passed
// through as the whole error message.
static jval g_raise_exception(jctx *c, int line, jval self, jargs *a) {
    jval msg;
    jinja_bind(c, line, "raise_exception", a, (const char *const[]){"message", NULL}, &msg);
    jval text = jinja_to_str(c, line, jinja_given(msg) ? msg : jval_str(""));
    jinja_throw(c->trap, 0, "%.*s", (int)text.s.n, text.s.p);
}

// transformers' strftime_now(format): local time, like datetime.now().strftime.
static jval g_strftime_now(jctx *c, int line, jval self, jargs *a) {
    jval fmt;
    jinja_bind(c, line, "strftime_now", a, (const char *const[]){"format", NULL}, &fmt);
    jinja_arg_str(c, line, "strftime_now", fmt);
    char *f = jarena_strndup(c->a, fmt.s.p, fmt.s.n);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char out[256];
    size_t n = strftime(out, sizeof out, f, &tm);
    return jval_strn(jarena_strndup(c->a, out, n), n);
}

// jinja2 globals this interpreter does not provide: calling one is an error
// naming it, not an "undefined" surprise.
static _Noreturn void unsupported(jctx *c, int line, const char *name) {
    jinja_fail(c, line, "unsupported global function '%s'", name);
}
static jval g_lipsum(jctx *c, int line, jval self, jargs *a) {
    unsupported(c, line, "lipsum");
}
static jval g_cycler(jctx *c, int line, jval self, jargs *a) {
    unsupported(c, line, "cycler");
}
static jval g_joiner(jctx *c, int line, jval self, jargs *a) {
    unsupported(c, line, "joiner");
}

static const jbuiltin globals[] = {
    {"range", g_range},
    {"namespace", g_namespace},
    {"dict", g_dict},
    {"raise_exception", g_raise_exception},
    {"strftime_now", g_strftime_now},
    {"lipsum", g_lipsum},
    {"cycler", g_cycler},
    {"joiner", g_joiner},
};

const jbuiltin *jinja_find_global(const char *name) {
    for (size_t i = 0; i < sizeof globals / sizeof *globals; i++)
        if (!strcmp(globals[i].name, name)) return &globals[i];
    return NULL;
}
