// block_manager.c - page pool, free list (LRU of released pages) and the
// prefix-cache hash index. See block_manager.h for the contract.
//
// Invariants (bm_check verifies them):
//   refcount[p] == 0  <=>  p is on the free list
//   hashed[p]         <=>  the index maps hash[p] to p (one page per hash)
//   n_used = pages with refcount >= 1, n_cached = free pages with hashed set
#include "block_manager.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

// Largest pool: the index has 2 * num_blocks slots rounded up to a power of
// two, which must stay an int.
#define BM_MAX_BLOCKS (1 << 29)
#define BM_NONE (-1) // no page: empty index slot, end of the free list

struct block_manager {
    int num_blocks, block_size, prefix_caching;
    int32_t *refcount;    // [num_blocks]
    int32_t *prev, *next; // [num_blocks] free-list links, BM_NONE at the ends
    int free_head, free_tail, n_free;
    uint8_t *hashed; // [num_blocks] 1 when the page is in the index
    uint64_t *hash;  // [num_blocks] chained hash of an indexed page
    int32_t *tokens; // [num_blocks, block_size] token ids of an indexed page
    int32_t *slots;  // [index_cap] page ids, BM_NONE when empty; linear probing
    int index_cap;   // power of two, >= 2 * num_blocks
    int n_used, n_cached;
    uint64_t queries, hits;
};

// --- hashing -----------------------------------------------------------------

// xxHash64's primes and its per-word step and avalanche: each token id is a
// 32-bit word chained onto the parent's hash. Every step is invertible, so
// for fixed tokens the hash is a bijection of the parent's: equal hashes and
// equal tokens imply equal parents, and comparing tokens confirms a hit.
#define XXH_P1 0x9E3779B185EBCA87ULL
#define XXH_P2 0xC2B2AE3D27D4EB4FULL
#define XXH_P3 0x165667B19E3779F9ULL
#define XXH_P5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

uint64_t bm_hash_page(uint64_t parent, const int32_t *tokens, int block_size) {
    uint64_t h = parent + XXH_P5 + (uint64_t)block_size * 4;
    for (int i = 0; i < block_size; i++) {
        h ^= (uint64_t)(uint32_t)tokens[i] * XXH_P1;
        h = rotl64(h, 23) * XXH_P2 + XXH_P3;
    }
    h ^= h >> 33;
    h *= XXH_P2;
    h ^= h >> 29;
    h *= XXH_P3;
    h ^= h >> 32;
    return h;
}

// --- hash index: hash -> page, open addressing with linear probing -----------

// Slot holding the page indexed under h, or the empty slot where the probe
// for h ends.
static int index_slot(const block_manager *bm, uint64_t h) {
    int mask = bm->index_cap - 1, i = (int)(h & (uint64_t)mask);
    while (bm->slots[i] != BM_NONE && bm->hash[bm->slots[i]] != h) i = (i + 1) & mask;
    return i;
}

static int index_find(const block_manager *bm, uint64_t h) {
    return bm->slots[index_slot(bm, h)];
}

// Indexes page p (its hash[] already set); the caller checked h is absent.
static void index_insert(block_manager *bm, int p) {
    bm->slots[index_slot(bm, bm->hash[p])] = p;
    bm->hashed[p] = 1;
}

// Removes page p from the index by backward-shift deletion, which keeps every
// remaining entry reachable from its home slot without tombstones.
static void index_remove(block_manager *bm, int p) {
    int mask = bm->index_cap - 1, i = index_slot(bm, bm->hash[p]);
    bm->hashed[p] = 0;
    for (int j = (i + 1) & mask; bm->slots[j] != BM_NONE; j = (j + 1) & mask) {
        int home = (int)(bm->hash[bm->slots[j]] & (uint64_t)mask);
        // the entry at j may move to the hole at i when i lies on its probe path
        // home .. j (cyclically)
        if (((j - home) & mask) >= ((j - i) & mask)) {
            bm->slots[i] = bm->slots[j];
            i = j;
        }
    }
    bm->slots[i] = BM_NONE;
}

// --- free list -----------------------------------------------------------------

static void free_unlink(block_manager *bm, int p) {
    int a = bm->prev[p], b = bm->next[p];
    if (a != BM_NONE)
        bm->next[a] = b;
    else
        bm->free_head = b;
    if (b != BM_NONE)
        bm->prev[b] = a;
    else
        bm->free_tail = a;
    bm->prev[p] = bm->next[p] = BM_NONE;
    bm->n_free--;
}

static void free_push_tail(block_manager *bm, int p) {
    bm->prev[p] = bm->free_tail;
    bm->next[p] = BM_NONE;
    if (bm->free_tail != BM_NONE)
        bm->next[bm->free_tail] = p;
    else
        bm->free_head = p;
    bm->free_tail = p;
    bm->n_free++;
}

static void free_push_head(block_manager *bm, int p) {
    bm->prev[p] = BM_NONE;
    bm->next[p] = bm->free_head;
    if (bm->free_head != BM_NONE)
        bm->prev[bm->free_head] = p;
    else
        bm->free_tail = p;
    bm->free_head = p;
    bm->n_free++;
}

// --- pool ----------------------------------------------------------------------

block_manager *bm_create(int num_blocks, int block_size, int prefix_caching, char *err) {
    if (num_blocks < 1 || num_blocks > BM_MAX_BLOCKS) {
        llm_errf(err, "block manager: num_blocks %d out of range [1, %d]", num_blocks,
                 BM_MAX_BLOCKS);
        return NULL;
    }
    if (block_size < 1) {
        llm_errf(err, "block manager: block_size %d must be positive", block_size);
        return NULL;
    }
    block_manager *bm = llm_calloc(1, sizeof *bm, err);
    if (!bm) return NULL;
    bm->num_blocks = num_blocks;
    bm->block_size = block_size;
    bm->prefix_caching = prefix_caching != 0;
    bm->index_cap = 16;
    while (bm->index_cap < 2 * num_blocks) bm->index_cap *= 2;
    size_t n = (size_t)num_blocks;
    bm->refcount = llm_calloc(n, sizeof *bm->refcount, err);
    bm->prev = llm_malloc(n * sizeof *bm->prev, err);
    bm->next = llm_malloc(n * sizeof *bm->next, err);
    bm->hashed = llm_calloc(n, sizeof *bm->hashed, err);
    bm->hash = llm_calloc(n, sizeof *bm->hash, err);
    bm->tokens = llm_calloc(n * (size_t)block_size, sizeof *bm->tokens, err);
    bm->slots = llm_malloc((size_t)bm->index_cap * sizeof *bm->slots, err);
    if (!bm->refcount || !bm->prev || !bm->next || !bm->hashed || !bm->hash || !bm->tokens ||
        !bm->slots) {
        bm_destroy(bm);
        return NULL;
    }
    for (int i = 0; i < bm->index_cap; i++) bm->slots[i] = BM_NONE;
    bm->free_head = bm->free_tail = BM_NONE;
    for (int p = 0; p < num_blocks; p++) free_push_tail(bm, p);
    return bm;
}

void bm_destroy(block_manager *bm) {
    if (!bm) return;
    free(bm->refcount), free(bm->prev), free(bm->next), free(bm->hashed);
    free(bm->hash), free(bm->tokens), free(bm->slots);
    free(bm);
}

int bm_block_size(const block_manager *bm) {
    return bm->block_size;
}
int bm_num_free(const block_manager *bm) {
    return bm->n_free;
}

// Makes room for n pages in seq's table (capacity doubling). 0 or -1 (OOM,
// seq unchanged).
static int seq_reserve(bm_seq *seq, int n) {
    if (n <= seq->cap) return 0;
    int cap = seq->cap ? seq->cap : 4;
    while (cap < n) cap = cap > (1 << 29) ? n : cap * 2;
    int32_t *b = realloc(seq->blocks, (size_t)cap * sizeof *b);
    if (!b) return -1;
    seq->blocks = b;
    seq->cap = cap;
    return 0;
}

// Takes a reference on page p, pulling it off the free list when it was there.
static void page_ref(block_manager *bm, int p) {
    if (bm->refcount[p]++ > 0) return;
    free_unlink(bm, p);
    bm->n_used++;
    if (bm->hashed[p]) bm->n_cached--;
}

// 1 when indexed page p holds exactly these tokens (a hash collision otherwise).
static int page_matches(const block_manager *bm, int p, const int32_t *tokens) {
    const size_t bs = (size_t)bm->block_size;
    return memcmp(bm->tokens + (size_t)p * bs, tokens, bs * sizeof *tokens) == 0;
}

int bm_lookup_prefix(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n) {
    if (!bm->prefix_caching || n <= 0 || seq->n_blocks != 0) return 0;
    const int bs = bm->block_size, max_pages = (n - 1) / bs;
    bm->queries += (uint64_t)max_pages;
    uint64_t h = 0;
    int found = 0;
    while (found < max_pages) {
        const int32_t *t = tokens + (size_t)found * bs;
        uint64_t hn = bm_hash_page(h, t, bs);
        int p = index_find(bm, hn);
        if (p == BM_NONE || !page_matches(bm, p, t)) break;
        if (seq_reserve(seq, found + 1)) break;
        page_ref(bm, p);
        seq->blocks[found++] = p;
        h = hn;
    }
    bm->hits += (uint64_t)found;
    seq->n_blocks = seq->n_hashed = found;
    seq->last_hash = h;
    return found * bs;
}

int bm_allocate(block_manager *bm, bm_seq *seq, int n_tokens) {
    const int bs = bm->block_size;
    int needed = n_tokens / bs + (n_tokens % bs > 0) - seq->n_blocks;
    if (needed <= 0) return 0;
    if (needed > bm->n_free || seq_reserve(seq, seq->n_blocks + needed)) return -1;
    for (int i = 0; i < needed; i++) {
        int p = bm->free_head;
        free_unlink(bm, p);
        if (bm->hashed[p]) { // evict the cached prefix it held
            index_remove(bm, p);
            bm->n_cached--;
        }
        bm->refcount[p] = 1;
        bm->n_used++;
        seq->blocks[seq->n_blocks++] = p;
    }
    return 0;
}

void bm_cache_full_pages(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n_computed) {
    if (!bm->prefix_caching) return;
    const int bs = bm->block_size;
    int full = n_computed / bs;
    if (full > seq->n_blocks) full = seq->n_blocks;
    for (int i = seq->n_hashed; i < full; i++) {
        const int32_t *t = tokens + (size_t)i * bs;
        uint64_t h = bm_hash_page(seq->last_hash, t, bs);
        int p = seq->blocks[i];
        // an equal (or colliding) entry elsewhere stays canonical; p stays un-indexed
        if (!bm->hashed[p] && index_find(bm, h) == BM_NONE) {
            bm->hash[p] = h;
            memcpy(bm->tokens + (size_t)p * bs, t, (size_t)bs * sizeof *t);
            index_insert(bm, p);
        }
        seq->n_hashed = i + 1;
        seq->last_hash = h;
    }
}

void bm_release(block_manager *bm, bm_seq *seq) {
    for (int i = seq->n_blocks - 1; i >= 0; i--) {
        int p = seq->blocks[i];
        if (--bm->refcount[p] > 0) continue;
        bm->n_used--;
        if (bm->hashed[p]) {
            free_push_tail(bm, p);
            bm->n_cached++;
        } else {
            free_push_head(bm, p);
        }
    }
    seq->n_blocks = seq->n_hashed = 0;
    seq->last_hash = 0;
}

void bm_seq_free(bm_seq *seq) {
    free(seq->blocks);
    memset(seq, 0, sizeof *seq);
}

void bm_reset_prefix_cache(block_manager *bm) {
    for (int i = 0; i < bm->index_cap; i++) bm->slots[i] = BM_NONE;
    memset(bm->hashed, 0, (size_t)bm->num_blocks);
    bm->n_cached = 0;
}

bm_stats bm_get_stats(const block_manager *bm) {
    return (bm_stats){.total = bm->num_blocks,
                      .used = bm->n_used,
                      .cached = bm->n_cached,
                      .queries = bm->queries,
                      .hits = bm->hits};
}

int bm_get_refcount(const block_manager *bm, int page) {
    return page >= 0 && page < bm->num_blocks ? bm->refcount[page] : -1;
}

const int32_t *bm_get_page_tokens(const block_manager *bm, int page) {
    if (page < 0 || page >= bm->num_blocks || !bm->hashed[page]) return NULL;
    return bm->tokens + (size_t)page * (size_t)bm->block_size;
}

// --- consistency check -----------------------------------------------------------

static int check_tables(const block_manager *bm, const bm_seq *const *seqs, int n_seqs,
                        int32_t *refs, char *err) {
    for (int s = 0; s < n_seqs; s++) {
        const bm_seq *q = seqs[s];
        if (q->n_blocks < 0 || q->n_blocks > q->cap || q->n_hashed < 0 || q->n_hashed > q->n_blocks)
            return llm_errf(err, "seq %d: n_blocks %d, cap %d, n_hashed %d inconsistent", s,
                            q->n_blocks, q->cap, q->n_hashed);
        for (int i = 0; i < q->n_blocks; i++) {
            int p = q->blocks[i];
            if (p < 0 || p >= bm->num_blocks)
                return llm_errf(err, "seq %d block %d: page %d out of range", s, i, p);
            refs[p]++;
        }
    }
    int used = 0, cached = 0;
    for (int p = 0; p < bm->num_blocks; p++) {
        if (refs[p] != bm->refcount[p])
            return llm_errf(err, "page %d: refcount %d, sequences hold %d", p, bm->refcount[p],
                            refs[p]);
        used += refs[p] > 0;
        cached += refs[p] == 0 && bm->hashed[p];
    }
    if (used != bm->n_used || cached != bm->n_cached)
        return llm_errf(err, "stats used %d cached %d, pages say %d and %d", bm->n_used,
                        bm->n_cached, used, cached);
    return 0;
}

// The free list, walked from its head, is exactly the refcount-0 pages once.
static int check_free_list(const block_manager *bm, uint8_t *seen, char *err) {
    int count = 0, prev = BM_NONE;
    for (int p = bm->free_head; p != BM_NONE; prev = p, p = bm->next[p]) {
        if (p < 0 || p >= bm->num_blocks) return llm_errf(err, "free list: bad page %d", p);
        if (seen[p]) return llm_errf(err, "free list: page %d twice", p);
        if (bm->prev[p] != prev) return llm_errf(err, "free list: page %d bad prev link", p);
        if (bm->refcount[p] != 0)
            return llm_errf(err, "free list: page %d has refcount %d", p, bm->refcount[p]);
        seen[p] = 1;
        count++;
    }
    if (prev != bm->free_tail)
        return llm_errf(err, "free list: tail %d, walk ends at %d", bm->free_tail, prev);
    if (count != bm->n_free)
        return llm_errf(err, "free list: %d pages, n_free %d", count, bm->n_free);
    if (count + bm->n_used != bm->num_blocks)
        return llm_errf(err, "free %d + used %d != total %d", count, bm->n_used, bm->num_blocks);
    return 0;
}

static int check_index(const block_manager *bm, char *err) {
    int entries = 0, hashed = 0;
    for (int i = 0; i < bm->index_cap; i++) {
        int p = bm->slots[i];
        if (p == BM_NONE) continue;
        if (p < 0 || p >= bm->num_blocks) return llm_errf(err, "index slot %d: bad page %d", i, p);
        if (!bm->hashed[p]) return llm_errf(err, "index slot %d: page %d not marked hashed", i, p);
        // the probe for the page's hash must reach this very slot
        if (index_slot(bm, bm->hash[p]) != i)
            return llm_errf(err, "index slot %d: page %d unreachable or duplicated", i, p);
        entries++;
    }
    for (int p = 0; p < bm->num_blocks; p++) hashed += bm->hashed[p];
    if (!bm->prefix_caching && hashed)
        return llm_errf(err, "prefix caching off, yet %d pages are indexed", hashed);
    if (entries != hashed)
        return llm_errf(err, "index holds %d entries, %d pages are hashed", entries, hashed);
    return 0;
}

int bm_check(const block_manager *bm, const bm_seq *const *seqs, int n_seqs, char *err) {
    int32_t *refs = llm_calloc((size_t)bm->num_blocks, sizeof *refs, err);
    uint8_t *seen = llm_calloc((size_t)bm->num_blocks, 1, err);
    int rc = -1;
    if (refs && seen && !check_tables(bm, seqs, n_seqs, refs, err) &&
        !check_free_list(bm, seen, err) && !check_index(bm, err))
        rc = 0;
    free(refs);
    free(seen);
    return rc;
}
