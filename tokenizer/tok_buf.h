// tok_buf.h - a growable byte buffer, the tokenizer's scratch and output type.
#ifndef LLM_TOK_BUF_H
#define LLM_TOK_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *p;    // [cap] bytes, NUL-terminated after len once anything was put
    size_t len; // bytes in use
    size_t cap;
} tok_buf;

// Makes room for `extra` more bytes plus a terminator. Returns 0, or -1 when
// out of memory (the buffer is unchanged).
int tok_buf_reserve(tok_buf *b, size_t extra);

// Appends n bytes (and keeps the buffer NUL-terminated). Returns 0 or -1.
int tok_buf_put(tok_buf *b, const void *s, size_t n);

// Appends the UTF-8 encoding of code point cp (< 0x110000). Returns 0 or -1.
int tok_buf_put_cp(tok_buf *b, uint32_t cp);

// Hands the bytes to the caller (a NUL-terminated heap string, never NULL
// unless out of memory) and leaves the buffer empty.
char *tok_buf_take(tok_buf *b);

void tok_buf_free(tok_buf *b);

#endif
