// pretok.c - the pre-tokenizers (Split, ByteLevel, Digits, Metaspace), run
// depth-first: each piece one step produces goes through the next steps, and
// finally through the BPE model, before the step looks at the next piece.
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

// Turns a stream of (start, end, is_match) intervals that cover the text into
// pieces, as HF's NormalizedString::split does for each split behaviour.
typedef struct {
    tok_enc *e;
    size_t step; // pieces go on to this step
    const char *s;
    int at_start;
    split_behavior behavior;
    int invert;
    int pending; // an interval is held back: [ps, pe)
    size_t ps, pe;
    int prev_match;
} splitter;

static int emit(splitter *sp, size_t start, size_t end) {
    if (end == start) return 0;
    return pretok_run(sp->e, sp->step, sp->s + start, end - start, sp->at_start && start == 0);
}

static int flush(splitter *sp) {
    if (!sp->pending) return 0;
    sp->pending = 0;
    return emit(sp, sp->ps, sp->pe);
}

static int hold(splitter *sp, size_t start, size_t end) {
    sp->pending = 1;
    sp->ps = start;
    sp->pe = end;
    return 0;
}

static int interval(splitter *sp, size_t start, size_t end, int match) {
    if (sp->invert) match = !match;
    int prev = sp->prev_match;
    sp->prev_match = match;
    switch (sp->behavior) {
    case SPLIT_ISOLATED:
        return emit(sp, start, end);
    case SPLIT_REMOVED:
        return match ? 0 : emit(sp, start, end);
    case SPLIT_MERGED_PREV: // a match joins the piece before it
        if (match && !prev && sp->pending) {
            sp->pe = end;
            return 0;
        }
        if (flush(sp) != 0) return -1;
        return hold(sp, start, end);
    case SPLIT_MERGED_NEXT: // a match joins the non-match after it
        if (match) {
            if (flush(sp) != 0) return -1;
            return hold(sp, start, end);
        }
        if (sp->pending) {
            sp->pending = 0;
            return emit(sp, sp->ps, end);
        }
        return emit(sp, start, end);
    case SPLIT_CONTIGUOUS: // runs of matches, and of non-matches, stay together
        if (match == prev && sp->pending) {
            sp->pe = end;
            return 0;
        }
        if (flush(sp) != 0) return -1;
        return hold(sp, start, end);
    }
    return 0;
}

// Splits s[0..n) where code points satisfy the predicate: each such character
// is one match; the runs between them are non-matches.
typedef int (*cp_pred)(uint32_t cp, uint32_t arg);

static int pred_numeric(uint32_t cp, uint32_t arg) {
    (void)arg;
    return (uni_props(cp) & UNI_N) != 0;
}

static int pred_equal(uint32_t cp, uint32_t arg) {
    return cp == arg;
}

static int split_chars(splitter *sp, const char *s, size_t n, cp_pred pred, uint32_t arg) {
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = (size_t)utf8_next(s + i, n - i, &cp);
        if (pred(cp, arg)) {
            if (run < i && interval(sp, run, i, 0) != 0) return -1;
            if (interval(sp, i, i + len, 1) != 0) return -1;
            run = i + len;
        }
        i += len;
    }
    if (run < n && interval(sp, run, n, 0) != 0) return -1;
    return flush(sp);
}

static int split_regex(splitter *sp, const char *s, size_t n, regex_kind kind) {
    for (size_t pos = 0; pos < n;) {
        size_t end = regex_match(kind, s, n, pos);
        if (interval(sp, pos, end, 1) != 0) return -1;
        pos = end;
    }
    return flush(sp);
}

static int split_literal(splitter *sp, const char *s, size_t n, const char *pat, size_t len) {
    size_t run = 0;
    for (size_t i = 0; len && i + len <= n;) {
        if (memcmp(s + i, pat, len) != 0) {
            i++;
            continue;
        }
        if (run < i && interval(sp, run, i, 0) != 0) return -1;
        if (interval(sp, i, i + len, 1) != 0) return -1;
        i += len;
        run = i;
    }
    if (run < n && interval(sp, run, n, 0) != 0) return -1;
    return flush(sp);
}

// Metaspace: spaces become the replacement character, which is prepended
// per the scheme.
static int metaspace_text(const tok_pre *p, const char *s, size_t n, int at_start, tok_buf *out) {
    out->len = 0;
    // Spaces are replaced first: a leading space counts as a leading replacement.
    int starts = s[0] == ' ' || (n >= p->repl_len && memcmp(s, p->repl, p->repl_len) == 0);
    int prepend = p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && at_start);
    if (prepend && !starts && tok_buf_put(out, p->repl, p->repl_len) != 0) return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ') continue;
        if (tok_buf_put(out, s + run, i - run) != 0 || tok_buf_put(out, p->repl, p->repl_len) != 0)
            return -1;
        run = i + 1;
    }
    return tok_buf_put(out, s + run, n - run);
}

int pretok_run(tok_enc *e, size_t step, const char *s, size_t n, int at_start) {
    const tokenizer *t = e->t;
    if (n == 0) return 0;
    if (step == t->n_pres) return tok_encode_word(e, s, n);
    const tok_pre *p = &t->pres[step];
    tok_buf *buf = &e->stage[step];
    splitter sp = {e, step + 1, s, at_start, p->behavior, p->invert, 0, 0, 0, 0};
    switch (p->kind) {
    case PRE_SPLIT:
        if (p->regex != REGEX_NONE) return split_regex(&sp, s, n, p->regex);
        if (p->literal_len == 0) return interval(&sp, 0, n, 0) != 0 ? -1 : flush(&sp);
        return split_literal(&sp, s, n, p->literal, p->literal_len);
    case PRE_BYTELEVEL:
        // The last step: pieces stay raw bytes, the model works in byte space.
        if (p->add_prefix_space && s[0] != ' ') {
            buf->len = 0;
            if (tok_buf_put(buf, " ", 1) != 0 || tok_buf_put(buf, s, n) != 0) return -1;
            sp.s = s = buf->p;
            n = buf->len;
        }
        if (p->regex == REGEX_NONE) return pretok_run(e, step + 1, s, n, at_start);
        return split_regex(&sp, s, n, p->regex);
    case PRE_DIGITS:
        return split_chars(&sp, s, n, pred_numeric, 0);
    case PRE_METASPACE:
        if (metaspace_text(p, s, n, at_start, buf) != 0) return -1;
        if (!p->split) return pretok_run(e, step + 1, buf->p, buf->len, at_start);
        sp.s = buf->p;
        return split_chars(&sp, buf->p, buf->len, pred_equal, p->repl_cp);
    }
    return 0;
}
