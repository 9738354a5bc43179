// word_cache.c - a word -> tokens cache for one tok_encode call: text
// repeats its words, and a hit skips the BPE merge.
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

// Words longer than this skip the cache: they rarely repeat.
#define WORD_CACHE_MAX_LEN 64
// Entries kept at most, bounding the cache's memory on huge inputs.
#define WORD_CACHE_MAX_ENTRIES (1 << 16)

void word_cache_free(word_cache *c) {
    free(c->slots);
    tok_buf_free(&c->keys);
    free(c->ids.v);
    memset(c, 0, sizeof *c);
}

static int cache_grow(word_cache *c) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    word_entry *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].key_len) continue;
        size_t j = c->slots[i].hash & (cap - 1);
        while (slots[j].key_len) j = (j + 1) & (cap - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

int word_cache_encode(tok_enc *e, const char *w, size_t n) {
    word_cache *c = &e->cache;
    if (n > WORD_CACHE_MAX_LEN) return bpe_word(&e->t->bpe, w, n, &e->bpe, e->out);
    uint32_t h = tok_hash(w, n);
    size_t j = 0;
    if (c->cap) {
        for (j = h & (c->cap - 1); c->slots[j].key_len; j = (j + 1) & (c->cap - 1)) {
            const word_entry *en = &c->slots[j];
            if (en->hash != h || en->key_len != n || memcmp(c->keys.p + en->key_off, w, n) != 0)
                continue;
            for (uint32_t k = 0; k < en->ids_n; k++)
                if (tok_ids_push(e->out, c->ids.v[en->ids_off + k]) != 0) return -1;
            return 0;
        }
    }
    size_t first = e->out->n;
    if (bpe_word(&e->t->bpe, w, n, &e->bpe, e->out) != 0) return -1;
    if (c->count >= WORD_CACHE_MAX_ENTRIES) return 0;
    if ((c->count + 1) * 2 > c->cap) {
        if (cache_grow(c) != 0) return -1;
        for (j = h & (c->cap - 1); c->slots[j].key_len; j = (j + 1) & (c->cap - 1)) continue;
    }
    word_entry en = {h, (uint32_t)c->keys.len, (uint32_t)n, (uint32_t)c->ids.n,
                     (uint32_t)(e->out->n - first)};
    if (tok_buf_put(&c->keys, w, n) != 0) return -1;
    for (size_t k = first; k < e->out->n; k++)
        if (tok_ids_push(&c->ids, e->out->v[k]) != 0) return -1;
    c->slots[j] = en;
    c->count++;
    return 0;
}
