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
// A full page is identified by a chained hash: hash(parent page's hash, its
// block_size token ids). A lookup hit is confirmed by comparing the token ids
// stored with the page, so a hash collision can never serve wrong K/V.
#ifndef LLM_BLOCK_MANAGER_H
#define LLM_BLOCK_MANAGER_H

#include <stdint.h>

typedef struct block_manager block_manager;

// A sequence's pages, owned by the sequence (the block manager fills it).
typedef struct {
    int32_t *blocks;     // [n_blocks] page ids, in token order
    int n_blocks;
    int cap;             // allocated length of blocks
    int n_hashed;        // leading pages already registered in the prefix cache
    uint64_t last_hash;  // chained hash of page n_hashed - 1 (0 when none)
} bm_seq;

typedef struct {
    int total;           // pages in the pool
    int used;            // pages with refcount >= 1
    int cached;          // pages with refcount 0 holding a cached prefix
    uint64_t queries;    // prefix-cache lookups (pages looked up)
    uint64_t hits;       // pages found
} bm_stats;

// Creates a pool of num_blocks pages of block_size tokens. Returns NULL with
// err on failure.
block_manager *bm_create(int num_blocks, int block_size, int prefix_caching, char *err);
void bm_destroy(block_manager *bm);

int bm_block_size(const block_manager *bm);
// Pages that could be handed out now (free + cached).
int bm_num_free(const block_manager *bm);

// Prefix-cache lookup for a new sequence with tokens[0..n): the longest run of
// leading full pages found in the cache, never covering all n tokens (at least
// one token must be computed to produce logits). Takes a reference on each
// page found and appends it to seq (which must be empty). Returns the number
// of tokens covered (a multiple of block_size). With prefix caching off, 0.
int bm_lookup_prefix(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n);

// Makes seq hold enough pages for n_tokens tokens in total, taking new pages
// from the free list (evicting cached pages, least recently freed first).
// All or nothing: returns 0, or -1 (and changes nothing) when the pool has
// too few pages.
int bm_allocate(block_manager *bm, bm_seq *seq, int n_tokens);

// Registers in the prefix cache every page of seq that is now full of
// computed tokens: tokens[0..n_computed) are the sequence's tokens whose K/V
// are in the cache. Pages already registered are skipped.
void bm_cache_full_pages(block_manager *bm, bm_seq *seq, const int32_t *tokens, int n_computed);

// Drops seq's references (pages whose refcount reaches 0 go to the free
// list: hashed ones stay findable until evicted) and empties seq (keeps its
// array for reuse; bm_seq_free releases it).
void bm_release(block_manager *bm, bm_seq *seq);
void bm_seq_free(bm_seq *seq);

// Forgets every cached prefix (e.g. when weights change); pages in use stay.
void bm_reset_prefix_cache(block_manager *bm);

bm_stats bm_get_stats(const block_manager *bm);

// Internal consistency check for tests: refcounts match the given sequences'
// tables, free-list entries are exactly the refcount-0 pages, hash index and
// pages agree. Returns 0, or -1 with a description in err.
int bm_check(const block_manager *bm, const bm_seq *const *seqs, int n_seqs, char *err);

#endif
