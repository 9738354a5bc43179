// bpe.c - byte-pair encoding of one word, merges by rank (heap + linked list).
#include "bpe.h"

#include <stdlib.h>
#include <string.h>

#include "unicode.h"

int tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v) return -1;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

struct bpe_sym {
    int32_t id;
    int32_t prev, next; // neighbours in the list, -1 at the ends
    int32_t alive;      // 0 once merged into its left neighbour
};

// A candidate merge of the symbol at pos with its right neighbour.
struct bpe_merge {
    uint32_t rank;
    uint32_t pos;
    int32_t id; // the merged token
};

void bpe_scratch_free(bpe_scratch *sc) {
    free(sc->sym);
    free(sc->heap);
    tok_buf_free(&sc->key);
    memset(sc, 0, sizeof *sc);
}

void bpe_free(bpe_model *m) {
    strmap_free(&m->vocab);
    pairmap_free(&m->merges);
}

// Min-heap on (rank, pos): the lowest rank first, the leftmost among equals.
static inline int merge_less(const bpe_merge *a, const bpe_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int heap_push(bpe_scratch *sc, bpe_merge m) {
    if (sc->heap_len == sc->heap_cap) {
        size_t cap = sc->heap_cap ? sc->heap_cap * 2 : 64;
        bpe_merge *h = realloc(sc->heap, cap * sizeof *h);
        if (!h) return -1;
        sc->heap = h;
        sc->heap_cap = cap;
    }
    size_t i = sc->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&m, &sc->heap[parent])) break;
        sc->heap[i] = sc->heap[parent];
        i = parent;
    }
    sc->heap[i] = m;
    return 0;
}

static bpe_merge heap_pop(bpe_scratch *sc) {
    bpe_merge top = sc->heap[0], last = sc->heap[--sc->heap_len];
    size_t i = 0, n = sc->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && merge_less(&sc->heap[c + 1], &sc->heap[c])) c++;
        if (!merge_less(&sc->heap[c], &last)) break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (n) sc->heap[i] = last;
    return top;
}

static int sym_push(bpe_scratch *sc, size_t *n, int32_t id) {
    if (*n == sc->sym_cap) {
        size_t cap = sc->sym_cap ? sc->sym_cap * 2 : 64;
        bpe_sym *s = realloc(sc->sym, cap * sizeof *s);
        if (!s) return -1;
        sc->sym = s;
        sc->sym_cap = cap;
    }
    sc->sym[*n] = (bpe_sym){id, (int32_t)*n - 1, (int32_t)*n + 1, 1};
    (*n)++;
    return 0;
}

// Id of one initial symbol: prefix (unless first) + s[0..len) + suffix (if last).
static int32_t symbol_id(const bpe_model *m, bpe_scratch *sc, const char *s, size_t len, int first,
                         int last, const char **key, size_t *key_len) {
    *key = s;
    *key_len = len;
    if ((!first && m->prefix) || (last && m->suffix)) {
        sc->key.len = 0;
        if ((!first && m->prefix && tok_buf_put(&sc->key, m->prefix, m->prefix_len) != 0) ||
            tok_buf_put(&sc->key, s, len) != 0 ||
            (last && m->suffix && tok_buf_put(&sc->key, m->suffix, m->suffix_len) != 0))
            return -2;
        *key = sc->key.p;
        *key_len = sc->key.len;
    }
    return strmap_get(&m->vocab, *key, *key_len);
}

// Splits the word into initial symbols (HF's BPE::merge_word before merging).
static int initial_symbols(const bpe_model *m, const char *w, size_t n, bpe_scratch *sc,
                           size_t *nsym) {
    int32_t unk = -1; // a pending unk symbol (HF adds it lazily to fuse runs)
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        if (!m->byte_symbols) {
            uint32_t cp;
            len = (size_t)utf8_next(w + i, n - i, &cp);
        }
        const char *key;
        size_t key_len;
        int32_t id = symbol_id(m, sc, w + i, len, i == 0, i + len == n, &key, &key_len);
        if (id == -2) return -1;
        i += len;
        if (id >= 0) {
            if (unk >= 0 && sym_push(sc, nsym, unk) != 0) return -1;
            unk = -1;
            if (sym_push(sc, nsym, id) != 0) return -1;
            continue;
        }
        if (m->byte_fallback) {
            size_t k = 0;
            while (k < key_len && m->byte_ids[(unsigned char)key[k]] >= 0) k++;
            if (k == key_len) {
                for (k = 0; k < key_len; k++)
                    if (sym_push(sc, nsym, m->byte_ids[(unsigned char)key[k]]) != 0) return -1;
                continue;
            }
        }
        if (m->unk_id < 0) continue;
        if (unk >= 0 && !m->fuse_unk && sym_push(sc, nsym, unk) != 0) return -1;
        unk = m->unk_id;
    }
    if (unk >= 0 && sym_push(sc, nsym, unk) != 0) return -1;
    return 0;
}

int bpe_word(const bpe_model *m, const char *w, size_t n, bpe_scratch *sc, tok_ids *out) {
    if (n == 0) return 0;
    if (m->ignore_merges) {
        int32_t id = strmap_get(&m->vocab, w, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    size_t nsym = 0;
    if (initial_symbols(m, w, n, sc, &nsym) != 0) return -1;
    if (nsym == 0) return 0;
    bpe_sym *sym = sc->sym;
    sym[nsym - 1].next = -1;

    sc->heap_len = 0;
    for (size_t i = 0; i + 1 < nsym; i++) {
        const pairmap_slot *p = pairmap_get(&m->merges, sym[i].id, sym[i + 1].id);
        if (p && heap_push(sc, (bpe_merge){p->rank, (uint32_t)i, p->id}) != 0) return -1;
    }
    while (sc->heap_len) {
        bpe_merge top = heap_pop(sc);
        bpe_sym *s = &sym[top.pos];
        if (!s->alive || s->next < 0) continue;
        bpe_sym *right = &sym[s->next];
        const pairmap_slot *p = pairmap_get(&m->merges, s->id, right->id);
        if (!p || p->id != top.id) continue; // stale: a neighbour changed since
        s->id = top.id;
        right->alive = 0;
        s->next = right->next;
        if (s->next >= 0) sym[s->next].prev = (int32_t)top.pos;
        if (s->prev >= 0) {
            p = pairmap_get(&m->merges, sym[s->prev].id, s->id);
            if (p && heap_push(sc, (bpe_merge){p->rank, (uint32_t)s->prev, p->id}) != 0) return -1;
        }
        if (s->next >= 0) {
            p = pairmap_get(&m->merges, s->id, sym[s->next].id);
            if (p && heap_push(sc, (bpe_merge){p->rank, top.pos, p->id}) != 0) return -1;
        }
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (tok_ids_push(out, sym[i].id) != 0) return -1;
    return 0;
}
