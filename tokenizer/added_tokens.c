// added_tokens.c - finding added (and special) tokens in text, as Hugging
// Face's AddedVocabulary does: leftmost-longest matches over all token
// contents (a byte trie), single_word, lstrip and rstrip.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

static int32_t trie_new_node(tok_trie *tr, uint8_t byte) {
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 256;
        trie_node *nodes = realloc(tr->nodes, cap * sizeof *nodes);
        if (!nodes) return -1;
        tr->nodes = nodes;
        tr->cap = cap;
    }
    tr->nodes[tr->n] = (trie_node){-1, -1, -1, byte};
    return (int32_t)tr->n++;
}

static int32_t trie_child(const tok_trie *tr, int32_t node, uint8_t byte) {
    for (int32_t c = tr->nodes[node].child; c >= 0; c = tr->nodes[c].sibling)
        if (tr->nodes[c].byte == byte) return c;
    return -1;
}

int trie_add(tok_trie *tr, const char *s, size_t n, int32_t token) {
    if (tr->n == 0 && trie_new_node(tr, 0) < 0) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = trie_child(tr, node, b);
        if (c < 0) {
            if ((c = trie_new_node(tr, b)) < 0) return -1;
            tr->nodes[c].sibling = tr->nodes[node].child;
            tr->nodes[node].child = c;
        }
        node = c;
    }
    if (tr->nodes[node].token < 0) tr->nodes[node].token = token; // the first one wins
    tr->first[(uint8_t)s[0]] = 1;
    return 0;
}

void trie_free(tok_trie *tr) {
    free(tr->nodes);
    memset(tr, 0, sizeof *tr);
}

int32_t trie_longest(const tok_trie *tr, const char *s, size_t n, size_t pos, size_t *end) {
    int32_t best = -1, node = 0;
    for (size_t i = pos; i < n; i++) {
        node = trie_child(tr, node, (uint8_t)s[i]);
        if (node < 0) break;
        if (tr->nodes[node].token >= 0) {
            best = tr->nodes[node].token;
            *end = i + 1;
        }
    }
    return best;
}

// Start of the character that ends at s[end] (exclusive), end > 0.
static size_t char_start_before(const char *s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static uint32_t props_before(const char *s, size_t end) {
    uint32_t cp;
    size_t i = char_start_before(s, end);
    utf8_next(s + i, end - i, &cp);
    return uni_props(cp);
}

static uint32_t props_at(const char *s, size_t n, size_t pos) {
    uint32_t cp;
    utf8_next(s + pos, n - pos, &cp);
    return uni_props(cp);
}

static int span_push(tok_spans *out, size_t start, size_t end, int32_t id) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        tok_span *v = realloc(out->v, cap * sizeof *v);
        if (!v) return -1;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = (tok_span){start, end, id};
    return 0;
}

int added_split(const tokenizer *t, const tok_trie *tr, const char *s, size_t n, tok_spans *out) {
    size_t done = 0; // s[0..done) is already covered by pushed spans
    for (size_t i = 0; tr->n && i < n;) {
        size_t end = 0;
        int32_t k = tr->first[(uint8_t)s[i]] ? trie_longest(tr, s, n, i, &end) : -1;
        if (k < 0) {
            i++;
            continue;
        }
        const tok_added *a = &t->added[k];
        size_t start = i;
        i = end; // the search goes on after this match, kept or not
        if (a->single_word) {
            int word_before = start > 0 && (props_before(s, start) & UNI_WORD);
            int word_after = end < n && (props_at(s, n, end) & UNI_WORD);
            if (word_before || word_after) continue;
        }
        if (a->lstrip) {
            while (start > done && (props_before(s, start) & UNI_WS))
                start = char_start_before(s, start);
        }
        if (a->rstrip) {
            while (end < n && (props_at(s, n, end) & UNI_WS)) {
                uint32_t cp;
                end += (size_t)utf8_next(s + end, n - end, &cp);
            }
            i = end;
        }
        if (start > done && span_push(out, done, start, -1) != 0) return -1;
        if (span_push(out, start, end, a->id) != 0) return -1;
        done = end;
    }
    if (done < n && span_push(out, done, n, -1) != 0) return -1;
    return 0;
}
