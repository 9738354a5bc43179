// jinja_arena.c - the chat-template interpreter's memory (arena, growable
// buffer), error unwinding, and UTF-8 walking.
#include "jinja_value.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// First chunk size; later chunks double up to the cap, so a render of a
// typical conversation makes one or two mallocs.
#define JARENA_MIN_CHUNK (16u << 10)
#define JARENA_MAX_CHUNK (1u << 20)

struct jarena_chunk {
    jarena_chunk *next;
    size_t used, cap;
    _Alignas(8) char data[];
};

_Noreturn void jinja_throw(jinja_trap *t, int line, const char *fmt, ...) {
    char msg[LLM_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        llm_errf(t->err, "chat template: %s at line %d", msg, line);
    else
        llm_errf(t->err, "chat template: %s", msg);
    longjmp(t->jmp, 1);
}

void jarena_init(jarena *a, jinja_trap *t) {
    a->head = NULL;
    a->last = NULL;
    a->trap = t;
}

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 7) & ~(size_t)7;
    jarena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : JARENA_MIN_CHUNK;
        if (cap > JARENA_MAX_CHUNK) cap = JARENA_MAX_CHUNK;
        if (cap < n) cap = n;
        jarena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) jinja_throw(a->trap, 0, "out of memory (%zu bytes)", n);
        nc->used = 0;
        nc->cap = cap;
        // A chunk made for one big allocation goes behind the current one,
        // so the current one's free space stays in use.
        if (c && cap == n && c->cap - c->used >= 64) {
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            return nc->data;
        }
        nc->next = c;
        a->head = c = nc;
    }
    char *p = c->data + c->used;
    c->used += n;
    a->last = p;
    return p;
}

void *jarena_zalloc(jarena *a, size_t n) {
    void *p = jarena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *jarena_strndup(jarena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jarena_free(jarena *a) {
    jarena_chunk *c = a->head;
    while (c) {
        jarena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->last = NULL;
}

// Grows the newest allocation p (of old bytes) to n bytes in place when the
// chunk has room. Returns 1 on success.
static int jarena_grow_last(jarena *a, char *p, size_t old, size_t n) {
    jarena_chunk *c = a->head;
    if (!c || p != a->last) return 0;
    old = (old + 7) & ~(size_t)7;
    n = (n + 7) & ~(size_t)7;
    if (c->data + c->used != p + old || c->cap - c->used < n - old) return 0;
    c->used += n - old;
    return 1;
}

void jbuf_init(jbuf *b, jarena *a) {
    b->p = NULL;
    b->n = b->cap = 0;
    b->a = a;
}

static void jbuf_reserve(jbuf *b, size_t extra) {
    if (b->cap - b->n >= extra) return;
    size_t want = b->n + extra;
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < want) cap *= 2;
    if (b->p && jarena_grow_last(b->a, b->p, b->cap, cap)) {
        b->cap = cap;
        return;
    }
    char *p = jarena_alloc(b->a, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}

void jbuf_put(jbuf *b, const char *s, size_t n) {
    if (!n) return;
    jbuf_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

void jbuf_puts(jbuf *b, const char *s) {
    jbuf_put(b, s, strlen(s));
}

void jbuf_putc(jbuf *b, char c) {
    jbuf_reserve(b, 1);
    b->p[b->n++] = c;
}

void jbuf_printf(jbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        jbuf_put(b, tmp, (size_t)k);
        return;
    }
    jbuf_reserve(b, (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void jbuf_put_utf8(jbuf *b, uint32_t cp) {
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    jbuf_put(b, u, k);
}

uint32_t ju8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s + *i;
    size_t left = n - *i;
    unsigned c = u[0];
    int k = c < 0x80 ? 1 : c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (k <= 1 || (size_t)k > left) {
        *i += 1;
        return c;
    }
    uint32_t cp = c & (0x7f >> k);
    for (int j = 1; j < k; j++) {
        if ((u[j] & 0xc0) != 0x80) {
            *i += 1;
            return c;
        }
        cp = (cp << 6) | (u[j] & 0x3f);
    }
    *i += (size_t)k;
    return cp;
}

size_t ju8_len(const char *s, size_t n) {
    size_t count = 0, i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
        } else {
            ju8_next(s, n, &i);
        }
        count++;
    }
    return count;
}

size_t ju8_offset(const char *s, size_t n, size_t cp) {
    size_t i = 0;
    while (cp > 0 && i < n) {
        if ((unsigned char)s[i] < 0x80)
            i++;
        else
            ju8_next(s, n, &i);
        cp--;
    }
    return i;
}

int ju8_is_space(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1c && cp <= 0x1f);
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

size_t ju8_rstrip_len(const char *s, size_t n) {
    while (n > 0) {
        size_t start = n - 1;
        while (start > 0 && n - start < 4 && ((unsigned char)s[start] & 0xc0) == 0x80) start--;
        size_t i = start;
        uint32_t cp = ju8_next(s, n, &i);
        if (i != n) { // not one well-formed sequence: the last byte stands alone
            start = n - 1;
            i = start;
            cp = ju8_next(s, n, &i);
        }
        if (!ju8_is_space(cp)) break;
        n = start;
    }
    return n;
}

size_t ju8_lstrip_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        if (!ju8_is_space(ju8_next(s, n, &j))) break;
        i = j;
    }
    return n - i;
}
