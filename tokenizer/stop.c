// stop.c - stop strings over streamed text; see stop.h for the rules.
#include "stop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "util.h"

// Longest UTF-8 sequence minus one: the most bytes of an unfinished character.
#define UTF8_MAX_TAIL 3

struct stop_checker {
    char **str;  // [n] copies of the stop strings
    size_t *len; // [n] their lengths
    int n;
    char *held; // [held_cap] text not yet emitted, a possible stop string start
    size_t n_held;
    size_t held_cap;
    char *buf; // [buf_cap] held + the next chunk, when something is held
    size_t buf_cap;
    int hit; // index of the stop string hit, -1 before
};

stop_checker *stop_create(const char *const *strings, int n, char *err) {
    if (n < 0) {
        llm_errf(err, "negative number of stop strings: %d", n);
        return NULL;
    }
    stop_checker *c = llm_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->hit = -1;
    c->str = llm_calloc((size_t)n, sizeof *c->str, err);
    c->len = llm_calloc((size_t)n, sizeof *c->len, err);
    if (!c->str || !c->len) goto fail;
    c->n = n;
    size_t max_len = 0;
    for (int i = 0; i < n; i++) {
        c->len[i] = strlen(strings[i]);
        if (!c->len[i]) {
            llm_errf(err, "stop string %d is empty", i);
            goto fail;
        }
        if (!utf8_valid(strings[i], c->len[i])) {
            llm_errf(err, "stop string %d is not valid UTF-8", i);
            goto fail;
        }
        if (!(c->str[i] = llm_malloc(c->len[i] + 1, err))) goto fail;
        memcpy(c->str[i], strings[i], c->len[i] + 1);
        if (c->len[i] > max_len) max_len = c->len[i];
    }
    // held = a proper prefix of a stop string, or an incomplete character
    c->held_cap = max_len > UTF8_MAX_TAIL ? max_len - 1 : UTF8_MAX_TAIL;
    if (!(c->held = llm_malloc(c->held_cap, err))) goto fail;
    return c;
fail:
    stop_destroy(c);
    return NULL;
}

void stop_destroy(stop_checker *c) {
    if (!c) return;
    for (int i = 0; c->str && i < c->n; i++) free(c->str[i]);
    free(c->str);
    free(c->len);
    free(c->held);
    free(c->buf);
    free(c);
}

// The longest tail of t[0, n) that is a proper prefix of some stop string.
static size_t longest_partial(const stop_checker *c, const char *t, size_t n) {
    size_t best = 0;
    for (int i = 0; i < c->n; i++)
        for (size_t k = c->len[i] - 1 < n ? c->len[i] - 1 : n; k > best; k--)
            if (t[n - k] == c->str[i][0] && memcmp(t + n - k, c->str[i], k) == 0) {
                best = k;
                break;
            }
    return best;
}

int stop_push(stop_checker *c, const char *chunk, size_t len, const char **out, size_t *out_len,
              char *err) {
    if (c->hit >= 0 || len == 0) {
        *out = "";
        *out_len = 0;
        return c->hit >= 0;
    }
    // with nothing held the output is a prefix of chunk: no copy (the common
    // case, and always so without stop strings unless a character is cut)
    const char *t = chunk; // the text to scan: held + chunk
    size_t n = len;
    if (c->n_held) {
        n = c->n_held + len;
        if (n > c->buf_cap) {
            char *b = realloc(c->buf, n);
            if (!b) return llm_errf(err, "out of memory for %zu bytes of output text", n);
            c->buf = b;
            c->buf_cap = n;
        }
        memcpy(c->buf, c->held, c->n_held);
        memcpy(c->buf + c->n_held, chunk, len);
        t = c->buf;
    }

    // earliest end wins, then earliest start; no match lies inside held alone
    size_t best_end = SIZE_MAX, best_start = 0;
    for (int i = 0; i < c->n; i++) {
        const char *p = memmem(t, n, c->str[i], c->len[i]);
        if (!p) continue;
        size_t start = (size_t)(p - t), end = start + c->len[i];
        if (end < best_end || (end == best_end && start < best_start)) {
            best_end = end;
            best_start = start;
            c->hit = i;
        }
    }
    if (c->hit >= 0) {
        c->n_held = 0;
        *out = t;
        *out_len = best_start;
        return 1;
    }

    size_t emit = n - longest_partial(c, t, n), tail = utf8_incomplete_tail(t, n);
    if (n - tail < emit) emit = n - tail;
    c->n_held = n - emit;
    memcpy(c->held, t + emit, c->n_held);
    *out = t;
    *out_len = emit;
    return 0;
}

void stop_flush(stop_checker *c, const char **out, size_t *out_len) {
    *out = c->held;
    *out_len = c->n_held;
    c->n_held = 0;
}

int stop_hit_index(const stop_checker *c) {
    return c->hit;
}
