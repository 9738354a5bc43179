// tok_map.h - the tokenizer's hash maps: byte strings to ids (vocabularies),
// and pairs of ids to merges. Open addressing, linear probing, power-of-two
// tables kept at most half full.
#ifndef LLM_TOK_MAP_H
#define LLM_TOK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key; // not owned: must outlive the map
    uint32_t len;
    uint32_t hash;
    int32_t val;
} strmap_slot;

typedef struct {
    strmap_slot *slots; // [cap]; key == NULL marks an empty slot
    size_t cap, count;
} strmap;

// Hash of a byte string (FNV-1a).
uint32_t tok_hash(const char *s, size_t n);

// Sets key -> val (replacing an existing value). The key bytes are not
// copied. Returns 0, or -1 when out of memory.
int strmap_put(strmap *m, const char *key, size_t len, int32_t val);

// The value of key, or -1 when absent.
int32_t strmap_get(const strmap *m, const char *key, size_t len);

void strmap_free(strmap *m);

// A merge: the rank of the pair (its index in the merges list) and the id of
// the merged token.
typedef struct {
    uint64_t key; // left id << 32 | right id; PAIRMAP_EMPTY when unused
    uint32_t rank;
    int32_t id;
} pairmap_slot;

#define PAIRMAP_EMPTY UINT64_MAX

typedef struct {
    pairmap_slot *slots; // [cap]
    size_t cap, count;
} pairmap;

// Sets (a, b) -> (rank, id), replacing an earlier entry. Returns 0 or -1.
int pairmap_put(pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);

// The merge of (a, b), or NULL.
const pairmap_slot *pairmap_get(const pairmap *m, int32_t a, int32_t b);

void pairmap_free(pairmap *m);

#endif
