// block_manager.h - the paged KV cache's page pool: per-sequence block
// tables, reference counts, and prefix caching of full pages (vLLM V1's
// KVCacheManager semantics). Mechanism only: the scheduler decides who gets
// pages; this file hands them out and takes them back.
//
// Pages are numbered 0 .. num_blocks-1. A page is
//   free      - refcount 0, no content worth keeping (on the free list),
//   cached    - refcount 0 but holding a full page of a known token prefix
//               (also on the free list, evicted least-recently-freed first),
//   in use    - refcount >= 1 (shared when several sequences hold the same
//               cached prefix).
// A full page is identified by a chained 64-bit hash: hash(parent page's
// hash, its block_size token ids). A lookup hit is confirmed by comparing the
// token ids stored with the page (for fixed tokens the hash is a bijection of
// the parent hash, so this confirms the parent too): a collision between two
// pages' hashes is a miss, never wrong K/V. Serving a wrong prefix would take
// two different prefixes with equal chained hashes (a 64-bit collision).
// At most one page is indexed per hash: a page whose content is already
// indexed elsewhere stays un-indexed (plain free when released).
#ifndef LLM_BLOCK_MANAGER_H
#define LLM_BLOCK_MANAGER_H

#include <stdint.h>

typedef struct block_manager block_manager;

// A sequence's pages, owned by the sequence (the block manager fills it).
// Zero-initialise before first use.
typedef struct {
    int32_t *blocks; // [n_blocks] page ids, in token order
    int n_blocks;
    int cap;            // allocated length of blocks
    int n_hashed;       // leading pages already registered in the prefix cache
    uint64_t last_hash; // chained hash of page n_hashed - 1 (0 when none)
} bm_seq;

typedef struct {
    int total;        // pages in the pool
    int used;         // pages with refcount >= 1
    int cached;       // pages with refcount 0 holding a cached prefix
    uint64_t queries; // full prompt pages a lookup could have served: (n-1)/block_size each
    uint64_t hits;    // of those, pages served from the cache
} bm_stats;

// Creates a pool of num_blocks pages of block_size tokens, every page free.
// prefix_caching 0 turns lookups and registration off. Returns NULL with err
// on failure (bad sizes, out of memory).
block_manager *bm_create(int num_blocks, int block_size, int prefix_caching, char *err);
void bm_destroy(block_manager *bm);

int bm_block_size(const block_manager *bm);
// Pages that could be handed out now (free + cached).
int bm_num_free(const block_manager *bm);

// Prefix-cache lookup for a new sequence with tokens[0..n): the longest run of
// leading full pages found in the cache, never covering all n tokens (at least
// one token must be computed to produce logits), so at most
// ((n-1)/block_size)*block_size. Takes a reference on each page found (a
// cached page leaves the free list) and appends it to seq, which must be
// empty (a non-empty seq gets 0 and no change). Sets seq->n_hashed and
// last_hash to the pages found. Returns the number of tokens covered (a
// multiple of block_size); fewer when seq's table cannot grow (out of memory).
// With prefix caching off, 0 and no stats counted.
int bm_lookup_prefix(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n);

// Makes seq hold enough pages for n_tokens tokens in total, taking new pages
// from the head of the free list (evicting cached pages, least recently freed
// first). All or nothing: returns 0 (also when seq already has the pages), or
// -1 (and changes nothing) when the pool has too few pages or seq's table
// cannot grow.
int bm_allocate(block_manager *bm, bm_seq *seq, int n_tokens);

// Registers in the prefix cache every page of seq that is now full of
// computed tokens: tokens[0..n_computed) are the sequence's tokens whose K/V
// are in the cache. Pages already registered are skipped; a page whose
// content is already indexed in another page is passed over (the other stays
// canonical) but still advances seq->n_hashed. No-op with prefix caching off.
void bm_cache_full_pages(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n_computed);

// Drops seq's references, last page first, so pages whose refcount reaches 0
// join the free list tail-of-sequence first: a sequence's tail is evicted
// before its prefix. Pages holding a cached prefix go to the list's tail
// (evicted last, still findable); pages holding none go to its head (they are
// worth nothing, so they are reused first). Empties seq (n_blocks, n_hashed,
// last_hash = 0) but keeps its array for reuse; bm_seq_free releases it.
void bm_release(block_manager *bm, bm_seq *seq);
void bm_seq_free(bm_seq *seq);

// Forgets every cached prefix (e.g. when weights change): the index is
// emptied and no page keeps a hash; pages in use stay held. Sequences that
// go on running still register their later pages, so when their K/V are
// stale too, release every sequence first (vLLM refuses a reset then).
void bm_reset_prefix_cache(block_manager *bm);

bm_stats bm_get_stats(const block_manager *bm);

// The chained hash of a full page of block_size tokens whose parent page
// hashes to parent (0 for a sequence's first page).
uint64_t bm_hash_page(uint64_t parent, const int32_t *tokens, int block_size);

// For tests and debugging: page's reference count (-1 for a bad page id), and
// the block_size token ids stored with page when it is indexed in the prefix
// cache (NULL otherwise; valid until the page is evicted or the cache reset).
int bm_get_refcount(const block_manager *bm, int page);
const int32_t *bm_get_page_tokens(const block_manager *bm, int page);

// Internal consistency check for tests: refcounts match the given sequences'
// tables, free-list entries are exactly the refcount-0 pages, hash index and
// pages agree, stats counters match. Returns 0, or -1 with a description in
// err.
int bm_check(const block_manager *bm, const bm_seq *const *seqs, int n_seqs, char *err);

#endif
