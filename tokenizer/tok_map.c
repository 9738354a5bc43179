// tok_map.c - open-addressing hash maps for vocabularies and merges.
#include "tok_map.h"

#include <stdlib.h>
#include <string.h>

uint32_t tok_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int strmap_grow(strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    strmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int strmap_put(strmap *m, const char *key, size_t len, int32_t val) {
    if (len > UINT32_MAX) return -1;
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m) != 0) return -1;
    uint32_t h = tok_hash(key, len);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        strmap_slot *s = &m->slots[j];
        if (!s->key) {
            *s = (strmap_slot){key, (uint32_t)len, h, val};
            m->count++;
            return 0;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            s->val = val;
            return 0;
        }
    }
}

int32_t strmap_get(const strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint32_t h = tok_hash(key, len);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const strmap_slot *s = &m->slots[j];
        if (!s->key) return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s->val;
    }
}

void strmap_free(strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static inline size_t pair_hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key;
}

static int pairmap_grow(pairmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    pairmap_slot *slots = malloc(cap * sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < cap; i++) slots[i].key = PAIRMAP_EMPTY;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == PAIRMAP_EMPTY) continue;
        size_t j = pair_hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key != PAIRMAP_EMPTY) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int pairmap_put(pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    if ((m->count + 1) * 2 > m->cap && pairmap_grow(m) != 0) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t j = pair_hash(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        pairmap_slot *s = &m->slots[j];
        if (s->key == PAIRMAP_EMPTY) m->count++;
        if (s->key == PAIRMAP_EMPTY || s->key == key) {
            *s = (pairmap_slot){key, rank, id};
            return 0;
        }
    }
}

const pairmap_slot *pairmap_get(const pairmap *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t j = pair_hash(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const pairmap_slot *s = &m->slots[j];
        if (s->key == key) return s;
        if (s->key == PAIRMAP_EMPTY) return NULL;
    }
}

void pairmap_free(pairmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
