// jinja_value.h - values of the chat-template interpreter (a Jinja subset) and
// the memory they live in: an arena freed all at once, a growable byte buffer
// in that arena, and the error trap that unwinds to the entry point.
//
// Values follow Python's semantics as jinja2 exposes them: str() and repr()
// text, truthiness, ==, <, and json.dumps output. Strings are UTF-8 byte
// ranges (not NUL-terminated); lengths, indices and slices count code points.
#ifndef LLM_JINJA_VALUE_H
#define LLM_JINJA_VALUE_H

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

// --- errors ------------------------------------------------------------------

// Every failure inside the interpreter unwinds with longjmp to the one setjmp
// of the public entry point; everything allocated lives in an arena, so
// nothing leaks on the way.
typedef struct {
    jmp_buf jmp;
    char *err; // LLM_ERR_LEN bytes
} jinja_trap;

// Writes "chat template: MSG at line N" (no " at line" when line <= 0) into
// t->err and unwinds to t->jmp.
_Noreturn void jinja_throw(jinja_trap *t, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// --- arena ---------------------------------------------------------------------

typedef struct jarena_chunk jarena_chunk;

typedef struct {
    jarena_chunk *head; // newest chunk first
    char *last;         // start of the newest allocation (jbuf grows it in place)
    jinja_trap *trap;   // out of memory unwinds here
} jarena;

void jarena_init(jarena *a, jinja_trap *t);
// Returns n bytes aligned to 8, uninitialized; never NULL (unwinds instead).
void *jarena_alloc(jarena *a, size_t n);
void *jarena_zalloc(jarena *a, size_t n);
// Copies s[0..n) and a terminating NUL.
char *jarena_strndup(jarena *a, const char *s, size_t n);
void jarena_free(jarena *a);

// --- buffer ----------------------------------------------------------------------

// Growable byte buffer in an arena (amortized doubling, in place when it is
// the arena's newest allocation). p is not NUL-terminated.
typedef struct {
    char *p;
    size_t n, cap;
    jarena *a;
} jbuf;

void jbuf_init(jbuf *b, jarena *a);
void jbuf_put(jbuf *b, const char *s, size_t n);
void jbuf_puts(jbuf *b, const char *s);
void jbuf_putc(jbuf *b, char c);
void jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends code point cp as UTF-8.
void jbuf_put_utf8(jbuf *b, uint32_t cp);

// --- values ------------------------------------------------------------------------

typedef enum {
    JV_UNDEF, // jinja2's default Undefined: prints "", iterates empty, is falsy
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, // list, tuple, generator, range and dict views (see jlist_kind)
    JV_DICT, // dict, or a namespace() object
    JV_FUNC, // macro, global function, bound method
    JV_LOOP, // the `loop` object of a for loop
} jval_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct {
    uint8_t type;   // jval_type
    uint8_t markup; // JV_STR marked safe (|safe, |escape): `+` escapes the other side
    union {
        int b;
        int64_t i;
        double f;
        // JV_STR: UTF-8 bytes. JV_UNDEF: p = the missing name (NUL-terminated,
        // may be NULL), n = 0 for a missing variable, else the jval_type + 1
        // of the object that lacked the attribute (for error messages).
        struct {
            const char *p;
            size_t n;
        } s;
        jlist *list;
        jdict *dict;
        jfunc *fn;
        jloop *loop;
    };
} jval;

typedef enum {
    JL_LIST,
    JL_TUPLE,
    JL_GEN,   // a generator (map, select...): iterable once, no len, no index
    JL_RANGE, // range(start, stop, step): prints as such
    JL_ITEMS, // dict.items() / .keys() / .values() views
    JL_KEYS,
    JL_VALUES,
} jlist_kind;

struct jlist {
    jval *items;
    size_t n, cap;
    uint8_t kind;                    // jlist_kind
    uint8_t consumed;                // JL_GEN: already iterated
    int64_t r_start, r_stop, r_step; // JL_RANGE
};

struct jdict {
    jval *keys, *vals; // insertion order, as Python dicts
    size_t n, cap;
    uint8_t is_namespace;
};

// The `loop` object of a for loop.
struct jloop {
    jlist *items; // what is iterated, after the loop's `if` filter
    size_t index0;
};

static inline jval jval_undef(const char *name) {
    jval v = {.type = JV_UNDEF};
    v.s.p = name;
    return v;
}
static inline jval jval_none(void) {
    return (jval){.type = JV_NONE};
}
static inline jval jval_bool(int b) {
    return (jval){.type = JV_BOOL, .b = b != 0};
}
static inline jval jval_int(int64_t i) {
    return (jval){.type = JV_INT, .i = i};
}
static inline jval jval_float(double f) {
    return (jval){.type = JV_FLOAT, .f = f};
}
static inline jval jval_strn(const char *p, size_t n) {
    jval v = {.type = JV_STR};
    v.s.p = p;
    v.s.n = n;
    return v;
}
jval jval_str(const char *p); // p NUL-terminated, not copied

jlist *jlist_new(jarena *a, jlist_kind kind, size_t cap);
void jlist_push(jarena *a, jlist *l, jval v);
jval jval_list(jlist *l);
jdict *jdict_new(jarena *a, size_t cap);
// Sets key to val (replacing an equal key in place).
void jdict_set(jarena *a, jdict *d, jval key, jval val);
// Returns the value of the key equal to `key`, or NULL.
jval *jdict_get(const jdict *d, jval key);
jval *jdict_get_str(const jdict *d, const char *key, size_t n);
jval jval_dict(jdict *d);

// Builds a value tree from cJSON; strings point into the cJSON tree, which must
// outlive the value. Numbers without a fractional part become ints.
jval jval_from_cjson(jarena *a, const cJSON *j);

// Python's bool(v); a generator is always true.
int jval_truthy(jval v);
// Python's ==.
int jval_equal(jval a, jval b);
// Python's a < b for numbers, strings and same-kind sequences; returns -1, 0
// or 1 in *out and 0, or -1 when the types are not orderable.
int jval_compare(jval a, jval b, int *out);
// Name of v's Python type ("str", "int", "dict"...), for messages.
const char *jval_type_name(jval v);

// Writes str(v) (Undefined: nothing). Returns -1 for values whose text
// Python would give as an object address (functions, generators) and for
// containers nested over 512 deep (or holding themselves, via a namespace).
int jval_write_str(jbuf *b, jval v);
// Writes repr(v).
int jval_write_repr(jbuf *b, jval v);
// Writes Python's repr of a float ("1.0", "0.1", "1e-05", "inf").
void jval_write_float(jbuf *b, double f);

typedef struct {
    int indent;             // < 0: none (", " and ": " separators)
    const char *indent_str; // used instead of `indent` spaces when not NULL
    int ensure_ascii;
    int sort_keys;
    const char *item_sep, *key_sep; // NULL: Python's defaults
} jjson_opts;

// Writes json.dumps(v) with opts. Returns NULL, or the type name of the first
// value that JSON cannot represent.
const char *jval_write_json(jbuf *b, jval v, const jjson_opts *o, int depth);

// --- UTF-8 ---------------------------------------------------------------------

// Decodes one code point at s[*i] (advancing *i); a byte that does not start
// a valid sequence decodes as itself.
uint32_t ju8_next(const char *s, size_t n, size_t *i);
// Number of code points of s.
size_t ju8_len(const char *s, size_t n);
// Byte offset of code point index cp (clamped to n).
size_t ju8_offset(const char *s, size_t n, size_t cp);

// Python's str.isspace() for one code point (what \s, strip() and split()
// treat as whitespace).
int ju8_is_space(uint32_t cp);
// Length of s without its trailing / leading whitespace.
size_t ju8_rstrip_len(const char *s, size_t n);
size_t ju8_lstrip_len(const char *s, size_t n);

#endif
