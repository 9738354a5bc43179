// client_sse.h - an incremental Server-Sent Events parser: bytes in, as they
// arrive from the socket (an event may be split across any number of writes),
// one callback per complete event's data out.
#ifndef LLM_CLIENT_SSE_H
#define LLM_CLIENT_SSE_H

#include <stddef.h>

// Called with the data of one event (its `data:` lines joined by '\n', NUL
// terminated). A nonzero return stops the parse and is returned by sse_feed.
typedef int (*sse_event_fn)(void *ud, const char *data, size_t len);

typedef struct {
    char *line; // the current, unfinished line
    size_t line_len, line_cap;
    char *data; // data lines of the current event
    size_t data_len, data_cap;
    int has_data;
} sse_parser;

// Feeds n bytes. Lines end in "\n" or "\r\n"; a blank line ends an event;
// lines starting with ':' and fields other than `data` are ignored. Returns 0,
// the callback's nonzero return, or -1 when out of memory.
int sse_feed(sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *ud);

// At end of stream: dispatches an event whose blank line never came (a last
// unterminated `data:` line included). Returns as sse_feed.
int sse_finish(sse_parser *p, sse_event_fn fn, void *ud);

// Frees the buffers and zeroes the parser (which can then be reused).
void sse_free(sse_parser *p);

#endif
