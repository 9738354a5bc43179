// tok_stream.c - streaming detokenization.
//
// The stream keeps a window of ids: the ids that produced the last emitted
// text (its context) followed by those not emitted yet. Each push decodes the
// window; when the result is not pending (see tok_decode_into) and is longer
// than the context's own text, the difference is new text. Decoding the
// context along with the new ids keeps whatever the decoder does to a
// sequence's first token (Strip, Metaspace) from applying to them. Cost per
// push: one decode of a short window.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "util.h"

struct tok_stream {
    const tokenizer *t;
    int skip_special;
    tok_ids ids;      // the window
    size_t n_context; // ids[0..n_context) produced the last emitted text
    tok_buf context;  // their text, decoded alone
    tok_buf text;     // scratch: the window decoded
    tok_buf out;      // the text returned to the caller
};

tok_stream *tok_stream_create(const tokenizer *t, int skip_special, char *err) {
    tok_stream *s = llm_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->t = t;
    s->skip_special = skip_special;
    if (tok_buf_put(&s->out, "", 0) != 0) {
        free(s);
        llm_errf(err, "out of memory");
        return NULL;
    }
    return s;
}

void tok_stream_destroy(tok_stream *s) {
    if (!s) return;
    free(s->ids.v);
    tok_buf_free(&s->context);
    tok_buf_free(&s->text);
    tok_buf_free(&s->out);
    free(s);
}

static const char *empty(tok_stream *s, size_t *len) {
    s->out.len = 0;
    s->out.p[0] = 0;
    if (len) *len = 0;
    return s->out.p;
}

// Emits text[context.len..] when the window's text extends the context's.
// final: emit even when pending. Returns 1 when emitted, 0 when not, -1 on OOM.
static int advance(tok_stream *s, int final) {
    int pending;
    if (tok_decode_into(s->t, s->ids.v, s->ids.n, s->skip_special, &s->text, &pending) != 0)
        return -1;
    if ((pending && !final) || s->text.len <= s->context.len ||
        (s->context.len && memcmp(s->text.p, s->context.p, s->context.len) != 0))
        return 0;
    s->out.len = 0;
    if (tok_buf_put(&s->out, s->text.p + s->context.len, s->text.len - s->context.len) != 0)
        return -1;
    // The ids just emitted become the context.
    size_t keep = s->ids.n - s->n_context;
    memmove(s->ids.v, s->ids.v + s->n_context, keep * sizeof *s->ids.v);
    s->ids.n = keep;
    s->n_context = keep;
    if (tok_decode_into(s->t, s->ids.v, s->ids.n, s->skip_special, &s->context, &pending) != 0)
        return -1;
    return 1;
}

const char *tok_stream_push(tok_stream *s, int32_t id, size_t *len, char *err) {
    // Ids the decoder drops change nothing: not keeping them keeps the window short.
    if (tok_decode_skips(s->t, id, s->skip_special)) return empty(s, len);
    if (tok_ids_push(&s->ids, id) != 0) goto oom;
    int r = advance(s, 0);
    if (r < 0) goto oom;
    if (r == 0) return empty(s, len);
    if (len) *len = s->out.len;
    return s->out.p;
oom:
    llm_errf(err, "tok_stream_push: out of memory");
    return NULL;
}

const char *tok_stream_flush(tok_stream *s, size_t *len, char *err) {
    int r = s->ids.n > s->n_context ? advance(s, 1) : 0;
    s->ids.n = 0;
    s->n_context = 0;
    s->context.len = 0;
    if (r < 0) {
        llm_errf(err, "tok_stream_flush: out of memory");
        return NULL;
    }
    if (r == 0) return empty(s, len);
    if (len) *len = s->out.len;
    return s->out.p;
}
