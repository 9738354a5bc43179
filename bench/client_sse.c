// client_sse.c - see client_sse.h.
#include "client_sse.h"

#include <stdlib.h>
#include <string.h>

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *b = realloc(*buf, c);
    if (!b) return -1;
    *buf = b;
    *cap = c;
    return 0;
}

static int dispatch(sse_parser *p, sse_event_fn fn, void *ud) {
    if (!p->has_data) return 0;
    p->has_data = 0;
    size_t n = p->data_len;
    p->data_len = 0;
    return fn(ud, p->data, n);
}

// One complete line (without its terminator).
static int on_line(sse_parser *p, const char *s, size_t n, sse_event_fn fn, void *ud) {
    if (n == 0) return dispatch(p, fn, ud);
    if (s[0] == ':') return 0;
    size_t name = 0;
    while (name < n && s[name] != ':') name++;
    if (name != 4 || memcmp(s, "data", 4) != 0) return 0;
    const char *v = s + name + (name < n);
    size_t vn = n - name - (name < n);
    if (vn && *v == ' ') v++, vn--;
    size_t at = p->data_len + (p->has_data ? 1 : 0);
    if (grow(&p->data, &p->data_cap, at + vn + 1)) return -1;
    if (p->has_data) p->data[p->data_len] = '\n';
    memcpy(p->data + at, v, vn);
    p->data_len = at + vn;
    p->data[p->data_len] = 0;
    p->has_data = 1;
    return 0;
}

int sse_feed(sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ud) {
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(buf + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (buf + i)) : n - i;
        if (!nl) {
            if (grow(&p->line, &p->line_cap, p->line_len + take + 1)) return -1;
            memcpy(p->line + p->line_len, buf + i, take);
            p->line_len += take;
            return 0;
        }
        const char *s = buf + i;
        size_t len = take;
        if (p->line_len) { // finish a line begun in an earlier write
            if (grow(&p->line, &p->line_cap, p->line_len + take + 1)) return -1;
            memcpy(p->line + p->line_len, buf + i, take);
            s = p->line;
            len = p->line_len + take;
            p->line_len = 0;
        }
        if (len && s[len - 1] == '\r') len--;
        int rc = on_line(p, s, len, fn, ud);
        if (rc) return rc;
        i += take + 1;
    }
    return 0;
}

int sse_finish(sse_parser *p, sse_event_fn fn, void *ud) {
    if (p->line_len) {
        size_t len = p->line_len;
        p->line_len = 0;
        if (len && p->line[len - 1] == '\r') len--;
        int rc = on_line(p, p->line, len, fn, ud);
        if (rc) return rc;
    }
    return dispatch(p, fn, ud);
}

void sse_free(sse_parser *p) {
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}
