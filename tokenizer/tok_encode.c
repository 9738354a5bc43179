// tok_encode.c - text to token ids: repair UTF-8, split out added tokens,
// normalize, pre-tokenize, BPE, post-process (the reference's pipeline).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"
#include "util.h"

// Inputs are indexed with int32 symbol positions inside the BPE model.
#define TOK_MAX_INPUT ((size_t)INT32_MAX)

static const char METASPACE[] = "\xE2\x96\x81"; // U+2581

int tok_encode_word(tok_enc *e, const char *w, size_t n) {
    if (!e->t->split_at_metaspace) return word_cache_encode(e, w, n);
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (memcmp(w + i, METASPACE, 3) != 0 || (i >= 3 && memcmp(w + i - 3, METASPACE, 3) == 0))
            continue;
        if (word_cache_encode(e, w + start, i - start) != 0) return -1;
        start = i;
        i += 2;
    }
    return word_cache_encode(e, w + start, n - start);
}

// Normalizes one text span (not an added token) and encodes it, splitting out
// the added tokens that match normalized text first.
static int encode_span(tok_enc *e, const char *s, size_t n, int at_start, tok_buf *norm,
                       tok_buf *tmp, tok_spans *spans) {
    const tokenizer *t = e->t;
    const char *ns;
    size_t nn;
    if (tok_normalize(t, s, n, norm, tmp, &ns, &nn) != 0) return -1;
    if (!t->trie_norm.n) return pretok_run(e, 0, ns, nn, at_start);
    spans->n = 0;
    if (added_split(t, &t->trie_norm, ns, nn, spans) != 0) return -1;
    for (size_t i = 0; i < spans->n; i++) {
        tok_span sp = spans->v[i];
        if (sp.id >= 0) {
            if (tok_ids_push(e->out, sp.id) != 0) return -1;
        } else if (pretok_run(e, 0, ns + sp.start, sp.end - sp.start, at_start && sp.start == 0)) {
            return -1;
        }
    }
    return 0;
}

// Wraps ids in the post-processor's template.
static int apply_template(const tokenizer *t, tok_ids *ids) {
    tok_ids out = {0};
    for (size_t i = 0; i < t->n_tmpl; i++) {
        if (t->tmpl[i] != TEMPLATE_SEQ) {
            if (tok_ids_push(&out, t->tmpl[i]) != 0) goto oom;
            continue;
        }
        for (size_t k = 0; k < ids->n; k++)
            if (tok_ids_push(&out, ids->v[k]) != 0) goto oom;
    }
    free(ids->v);
    *ids = out;
    return 0;
oom:
    free(out.v);
    return -1;
}

int tok_encode(const tokenizer *t, const char *text, size_t n, int add_special, int32_t **ids,
               size_t *n_ids, char *err) {
    if (n >= TOK_MAX_INPUT) return llm_errf(err, "tok_encode: input of %zu bytes is too long", n);
    tok_ids out = {0};
    tok_buf repaired = {0}, norm = {0}, tmp = {0};
    tok_spans spans = {0}, nspans = {0};
    tok_enc e = {.t = t, .out = &out};
    int rc = -1;

    if (!utf8_valid(text, n)) {
        if (utf8_repair(text, n, &repaired) != 0) goto done;
        text = repaired.p;
        n = repaired.len;
    }
    if (added_split(t, &t->trie_raw, text, n, &spans) != 0) goto done;
    for (size_t i = 0; i < spans.n; i++) {
        tok_span sp = spans.v[i];
        if (sp.id >= 0) {
            if (tok_ids_push(&out, sp.id) != 0) goto done;
        } else if (encode_span(&e, text + sp.start, sp.end - sp.start, sp.start == 0, &norm, &tmp,
                               &nspans) != 0) {
            goto done;
        }
    }
    if (add_special && t->tmpl && apply_template(t, &out) != 0) goto done;
    if (!out.v && tok_ids_push(&out, 0) == 0) out.n = 0; // a valid pointer even when empty
    rc = out.v ? 0 : -1;
done:
    if (rc != 0) {
        llm_errf(err, "tok_encode: out of memory");
        free(out.v);
    } else {
        *ids = out.v;
        *n_ids = out.n;
    }
    tok_buf_free(&repaired);
    tok_buf_free(&norm);
    tok_buf_free(&tmp);
    free(spans.v);
    free(nspans.v);
    bpe_scratch_free(&e.bpe);
    word_cache_free(&e.cache);
    for (size_t i = 0; i < TOK_MAX_STEPS; i++) tok_buf_free(&e.stage[i]);
    return rc;
}
