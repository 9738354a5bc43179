#include <stdint.h>
#include <stdlib.h>

#include "block_manager.h"
#include "harness.h"
#include "util.h"

static block_manager *bm_new(int num_blocks, int block_size, int prefix_caching) {
    char err[LLM_ERR_LEN] = "";
    block_manager *bm = bm_create(num_blocks, block_size, prefix_caching, err);
    CHECK_MSG(bm != NULL, "%s", err);
    return bm;
}

// Runs bm_check over up to 4 sequences (NULLs skipped) and fails the test on
// an inconsistency.
static void bm_expect_ok(const block_manager *bm, const bm_seq *a, const bm_seq *b, const bm_seq *c,
                         const bm_seq *d) {
    const bm_seq *v[4];
    int n = 0;
    if (a) v[n++] = a;
    if (b) v[n++] = b;
    if (c) v[n++] = c;
    if (d) v[n++] = d;
    char err[LLM_ERR_LEN] = "";
    int rc = bm_check(bm, v, n, err);
    CHECK_MSG(rc == 0, "bm_check: %s", err);
}

// Fills t[0..n) with base, base+1, ...
static void fill_tokens(int32_t *t, int n, int32_t base) {
    for (int i = 0; i < n; i++) t[i] = base + i;
}

// A sequence that computed tokens[0..n) and registered its full pages.
static int run_seq(block_manager *bm, bm_seq *s, const int32_t *tokens, int n) {
    int covered = bm_lookup_prefix(bm, s, tokens, n);
    if (bm_allocate(bm, s, n) != 0) return -1;
    bm_cache_full_pages(bm, s, tokens, n);
    return covered;
}

TEST(bm_create_rejects_bad_sizes) {
    char err[LLM_ERR_LEN] = "";
    CHECK(bm_create(0, 16, 1, err) == NULL);
    CHECK_CONTAINS(err, "num_blocks");
    CHECK(bm_create(8, 0, 1, err) == NULL);
    CHECK_CONTAINS(err, "block_size");
}

TEST(bm_allocate_and_release) {
    block_manager *bm = bm_new(8, 4, 1);
    if (!bm) return;
    bm_seq s = {0};
    CHECK_EQ(bm_block_size(bm), 4);
    CHECK_EQ(bm_num_free(bm), 8);
    CHECK_EQ(bm_allocate(bm, &s, 0), 0);
    CHECK_EQ(s.n_blocks, 0);
    CHECK_EQ(bm_allocate(bm, &s, 10), 0); // ceil(10/4) = 3 pages
    CHECK_EQ(s.n_blocks, 3);
    CHECK_EQ(bm_num_free(bm), 5);
    CHECK_EQ(bm_allocate(bm, &s, 12), 0); // still 3 pages: nothing to do
    CHECK_EQ(s.n_blocks, 3);
    CHECK_EQ(bm_allocate(bm, &s, 5), 0); // fewer tokens never shrinks
    CHECK_EQ(s.n_blocks, 3);
    CHECK_EQ(bm_allocate(bm, &s, 13), 0);
    CHECK_EQ(s.n_blocks, 4);
    for (int i = 0; i < s.n_blocks; i++) CHECK_EQ(bm_get_refcount(bm, s.blocks[i]), 1);
    bm_stats st = bm_get_stats(bm);
    CHECK_EQ(st.total, 8);
    CHECK_EQ(st.used, 4);
    CHECK_EQ(st.cached, 0);
    bm_expect_ok(bm, &s, NULL, NULL, NULL);
    int cap = s.cap;
    bm_release(bm, &s);
    CHECK_EQ(s.n_blocks, 0);
    CHECK_EQ(s.n_hashed, 0);
    CHECK_EQ(s.last_hash, 0);
    CHECK_EQ(s.cap, cap); // array kept for reuse
    CHECK_EQ(bm_num_free(bm), 8);
    CHECK_EQ(bm_get_stats(bm).used, 0);
    CHECK_EQ(bm_get_refcount(bm, -1), -1);
    CHECK_EQ(bm_get_refcount(bm, 8), -1);
    bm_expect_ok(bm, &s, NULL, NULL, NULL);
    bm_seq_free(&s);
    CHECK(s.blocks == NULL && s.cap == 0);
    bm_destroy(bm);
}

TEST(bm_allocate_all_or_nothing) {
    block_manager *bm = bm_new(4, 4, 1);
    if (!bm) return;
    bm_seq a = {0}, b = {0};
    CHECK_EQ(bm_allocate(bm, &a, 12), 0);
    CHECK_EQ(bm_allocate(bm, &b, 8), -1); // needs 2, 1 left
    CHECK_EQ(b.n_blocks, 0);
    CHECK(b.blocks == NULL);
    CHECK_EQ(bm_allocate(bm, &a, 20), -1); // needs 2 more
    CHECK_EQ(a.n_blocks, 3);
    CHECK_EQ(bm_num_free(bm), 1);
    CHECK_EQ(bm_get_stats(bm).used, 3);
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    CHECK_EQ(bm_allocate(bm, &b, 1), 0); // the last page is still there
    CHECK_EQ(bm_num_free(bm), 0);
    CHECK_EQ(bm_allocate(bm, &a, 13), -1);
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    bm_release(bm, &a);
    bm_release(bm, &b);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_block_table_grows) {
    enum { N = 1000 };
    block_manager *bm = bm_new(N, 1, 0);
    if (!bm) return;
    bm_seq s = {0};
    static uint8_t seen[N];
    memset(seen, 0, sizeof seen);
    for (int n = 1; n <= N; n++) {
        if (bm_allocate(bm, &s, n) != 0) {
            CHECK_MSG(0, "allocate %d failed", n);
            break;
        }
    }
    CHECK_EQ(s.n_blocks, N);
    CHECK(s.cap >= N);
    for (int i = 0; i < s.n_blocks; i++) {
        int p = s.blocks[i];
        CHECK(p >= 0 && p < N && !seen[p]);
        if (p >= 0 && p < N) seen[p] = 1;
    }
    CHECK_EQ(bm_num_free(bm), 0);
    CHECK_EQ(bm_allocate(bm, &s, N + 1), -1);
    bm_expect_ok(bm, &s, NULL, NULL, NULL);
    bm_release(bm, &s);
    CHECK_EQ(bm_num_free(bm), N);
    bm_seq_free(&s);
    bm_destroy(bm);
}

TEST(bm_prefix_hit_partial) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t1[13], t2[13];
    fill_tokens(t1, 13, 100);
    memcpy(t2, t1, sizeof t2);
    t2[9] = 7; // third page differs
    bm_seq a = {0}, b = {0};
    CHECK_EQ(run_seq(bm, &a, t1, 13), 0); // empty cache
    CHECK_EQ(a.n_hashed, 3);              // 3 full pages registered, the 4th is partial
    int32_t a_pages[4];
    memcpy(a_pages, a.blocks, sizeof a_pages);
    for (int i = 0; i < 3; i++) {
        const int32_t *pt = bm_get_page_tokens(bm, a_pages[i]);
        CHECK(pt && memcmp(pt, t1 + 4 * i, 4 * sizeof *pt) == 0);
    }
    CHECK(bm_get_page_tokens(bm, a_pages[3]) == NULL);
    bm_release(bm, &a);
    CHECK_EQ(bm_get_stats(bm).cached, 3);

    CHECK_EQ(bm_lookup_prefix(bm, &b, t2, 13), 8);
    CHECK_EQ(b.n_blocks, 2);
    CHECK_EQ(b.n_hashed, 2);
    CHECK_EQ(b.blocks[0], a_pages[0]);
    CHECK_EQ(b.blocks[1], a_pages[1]);
    CHECK_EQ(bm_get_refcount(bm, a_pages[0]), 1);
    bm_stats st = bm_get_stats(bm);
    CHECK_EQ(st.queries, 6); // (13-1)/4 = 3 pages per lookup
    CHECK_EQ(st.hits, 2);
    CHECK_EQ(st.cached, 1); // a's third page is still cached
    CHECK_EQ(st.used, 2);
    CHECK_EQ(bm_num_free(bm), 14);
    bm_expect_ok(bm, &b, NULL, NULL, NULL);
    // b goes on: its own third page is registered next to a's, chained from page 2
    CHECK_EQ(bm_allocate(bm, &b, 13), 0);
    bm_cache_full_pages(bm, &b, t2, 13);
    CHECK_EQ(b.n_hashed, 3);
    CHECK(b.blocks[2] != a_pages[2]);
    CHECK(bm_get_page_tokens(bm, b.blocks[2]) != NULL);
    bm_expect_ok(bm, &b, NULL, NULL, NULL);
    bm_release(bm, &b);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_prefix_never_covers_all_tokens) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t[13];
    fill_tokens(t, 13, 1);
    bm_seq a = {0}, b = {0};
    CHECK_EQ(run_seq(bm, &a, t, 12), 0);
    CHECK_EQ(a.n_hashed, 3);
    bm_release(bm, &a);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 12), 8); // all 3 pages cached, 1 token must be computed
    bm_release(bm, &b);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 13), 12);
    bm_release(bm, &b);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 4), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 0), 0);
    bm_release(bm, &b);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);

    bm = bm_new(8, 1, 1); // block_size 1: every token a page
    if (!bm) return;
    CHECK_EQ(run_seq(bm, &a, t, 3), 0);
    bm_release(bm, &a);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 1), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 3), 2);
    bm_release(bm, &b);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 5), 3);
    bm_release(bm, &b);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_prefix_miss_on_different_tokens) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t[9], u[9];
    fill_tokens(t, 9, 50);
    bm_seq a = {0}, b = {0}, c = {0};
    run_seq(bm, &a, t, 9);
    bm_release(bm, &a);
    memcpy(u, t, sizeof u);
    u[3] = 0; // last token of page 0
    CHECK_EQ(bm_lookup_prefix(bm, &b, u, 9), 0);
    CHECK_EQ(b.n_blocks, 0);
    memcpy(u, t, sizeof u);
    u[4] = 0; // first token of page 1
    CHECK_EQ(bm_lookup_prefix(bm, &b, u, 9), 4);
    bm_release(bm, &b);
    // same page-1 tokens behind a different page 0: a different chain, so a miss
    memcpy(u, t, sizeof u);
    u[0] = 0;
    CHECK_EQ(bm_lookup_prefix(bm, &b, u, 9), 0);
    // ... until that chain is cached too; then each prompt finds its own pages
    run_seq(bm, &c, u, 9);
    CHECK(c.blocks[1] != a.blocks[1]);
    bm_release(bm, &c);
    int32_t c1 = c.blocks[1]; // still readable: release keeps the array
    CHECK_EQ(bm_lookup_prefix(bm, &b, u, 9), 8);
    CHECK_EQ(b.blocks[1], c1);
    bm_release(bm, &b);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 9), 8);
    CHECK(b.blocks[1] != c1);
    bm_expect_ok(bm, &b, NULL, NULL, NULL);
    bm_release(bm, &b);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_seq_free(&c);
    bm_destroy(bm);
}

// Two different 2-token pages with equal hashes, found by a brute-force
// search over bm_hash_page's xxHash64 steps: a lookup must treat the hit as a
// miss, and registering the second page must leave the first canonical.
TEST(bm_hash_collision_is_a_miss) {
    const int32_t ta[3] = {5541, 1244300180, 1}, tb[3] = {194022, 0, 1};
    uint64_t ha = bm_hash_page(0, ta, 2), hb = bm_hash_page(0, tb, 2);
    CHECK_MSG(ha == hb, "the hash changed: find a new colliding pair (%llx vs %llx)",
              (unsigned long long)ha, (unsigned long long)hb);
    block_manager *bm = bm_new(8, 2, 1);
    if (!bm) return;
    bm_seq a = {0}, b = {0};
    CHECK_EQ(run_seq(bm, &a, ta, 3), 0);
    CHECK(a.last_hash == ha);
    int32_t pa = a.blocks[0];
    CHECK_EQ(bm_lookup_prefix(bm, &b, tb, 3), 0); // same hash, other tokens
    CHECK_EQ(bm_allocate(bm, &b, 3), 0);
    bm_cache_full_pages(bm, &b, tb, 3);
    CHECK_EQ(b.n_hashed, 1);
    CHECK(bm_get_page_tokens(bm, b.blocks[0]) == NULL);
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    bm_release(bm, &a);
    bm_release(bm, &b);
    CHECK_EQ(bm_lookup_prefix(bm, &b, tb, 3), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &a, ta, 3), 2);
    CHECK_EQ(a.blocks[0], pa);
    bm_release(bm, &a);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_hash_chains_pages) {
    block_manager *bm = bm_new(8, 4, 1);
    if (!bm) return;
    int32_t t[9];
    fill_tokens(t, 9, 3);
    bm_seq a = {0}, b = {0};
    run_seq(bm, &a, t, 9);
    uint64_t h0 = bm_hash_page(0, t, 4), h1 = bm_hash_page(h0, t + 4, 4);
    CHECK_EQ(a.n_hashed, 2);
    CHECK(a.last_hash == h1);
    CHECK(h1 != bm_hash_page(0, t + 4, 4)); // the parent matters
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 9), 8);
    CHECK(b.last_hash == h1);
    bm_release(bm, &a);
    bm_release(bm, &b);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_shared_pages_refcount) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t[13];
    fill_tokens(t, 13, 9);
    bm_seq a = {0}, b = {0};
    run_seq(bm, &a, t, 13); // a still running
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 13), 12);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(b.blocks[i], a.blocks[i]);
        CHECK_EQ(bm_get_refcount(bm, a.blocks[i]), 2);
    }
    CHECK_EQ(bm_get_stats(bm).used, 4); // 3 shared + a's partial page
    CHECK_EQ(bm_allocate(bm, &b, 13), 0);
    CHECK(b.blocks[3] != a.blocks[3]);
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    bm_release(bm, &a);
    for (int i = 0; i < 3; i++) CHECK_EQ(bm_get_refcount(bm, b.blocks[i]), 1);
    CHECK_EQ(bm_get_stats(bm).used, 4);
    CHECK_EQ(bm_get_stats(bm).cached, 0);
    CHECK_EQ(bm_num_free(bm), 12);
    bm_expect_ok(bm, &b, NULL, NULL, NULL);
    bm_release(bm, &b);
    CHECK_EQ(bm_get_stats(bm).cached, 3);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

// After a and b are released the free list is 6, 7 (never used), then a's
// pages tail first, then b's: eviction order a2 a1 a0 b2 b1 b0.
TEST(bm_eviction_least_recently_freed_first) {
    block_manager *bm = bm_new(8, 2, 1);
    if (!bm) return;
    int32_t ta[7], tb[7], tc[8];
    fill_tokens(ta, 7, 100);
    fill_tokens(tb, 7, 200);
    fill_tokens(tc, 8, 300);
    bm_seq a = {0}, b = {0}, c = {0}, d = {0};
    run_seq(bm, &a, ta, 6);
    run_seq(bm, &b, tb, 6);
    int32_t pa[3], pb[3];
    memcpy(pa, a.blocks, sizeof pa);
    memcpy(pb, b.blocks, sizeof pb);
    bm_release(bm, &a);
    bm_release(bm, &b);
    CHECK_EQ(bm_get_stats(bm).cached, 6);

    CHECK_EQ(bm_allocate(bm, &c, 8), 0); // 4 pages: 6, 7, a2, a1
    CHECK_EQ(c.blocks[2], pa[2]);
    CHECK_EQ(c.blocks[3], pa[1]);
    CHECK(bm_get_page_tokens(bm, pa[2]) == NULL); // evicted
    CHECK_EQ(bm_get_stats(bm).cached, 4);
    bm_expect_ok(bm, &c, NULL, NULL, NULL);
    CHECK_EQ(bm_lookup_prefix(bm, &d, ta, 7), 2); // only a0 left of a
    CHECK_EQ(d.blocks[0], pa[0]);
    bm_release(bm, &d); // a0 freed again: now the most recently freed
    CHECK_EQ(bm_lookup_prefix(bm, &d, tb, 7), 6);
    bm_release(bm, &d);

    // c's pages hold no prefix: back at the head, reused before any cached page
    bm_release(bm, &c);
    CHECK_EQ(bm_get_stats(bm).cached, 4);
    CHECK_EQ(bm_allocate(bm, &c, 8), 0);
    CHECK_EQ(bm_get_stats(bm).cached, 4);
    bm_release(bm, &c);
    run_seq(bm, &c, tc, 8); // registers 4 pages, evicting nothing
    bm_release(bm, &c);
    CHECK_EQ(bm_get_stats(bm).cached, 8);
    // the order now: a0 b2 b1 b0 (as d freed them) c3 c2 c1 c0
    CHECK_EQ(bm_allocate(bm, &d, 8), 0);
    CHECK_EQ(d.blocks[0], pa[0]);
    CHECK_EQ(d.blocks[1], pb[2]);
    CHECK_EQ(d.blocks[2], pb[1]);
    CHECK_EQ(d.blocks[3], pb[0]);
    CHECK_EQ(bm_get_stats(bm).cached, 4);
    bm_release(bm, &d);
    CHECK_EQ(bm_lookup_prefix(bm, &d, tc, 8), 6);
    bm_release(bm, &d);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_seq_free(&c);
    bm_seq_free(&d);
    bm_destroy(bm);
}

TEST(bm_duplicate_content_stays_unindexed) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t[9];
    fill_tokens(t, 9, 5);
    bm_seq a = {0}, b = {0}, c = {0};
    // both start before either registered anything: same content, different pages
    CHECK_EQ(bm_lookup_prefix(bm, &a, t, 9), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 9), 0);
    CHECK_EQ(bm_allocate(bm, &a, 9), 0);
    CHECK_EQ(bm_allocate(bm, &b, 9), 0);
    bm_cache_full_pages(bm, &a, t, 9);
    bm_cache_full_pages(bm, &b, t, 9);
    CHECK_EQ(b.n_hashed, 2);
    CHECK_EQ(b.last_hash, a.last_hash);
    CHECK(bm_get_page_tokens(bm, a.blocks[0]) != NULL);
    CHECK(bm_get_page_tokens(bm, b.blocks[0]) == NULL);
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    bm_release(bm, &b);
    CHECK_EQ(bm_get_stats(bm).cached, 0);
    bm_release(bm, &a);
    CHECK_EQ(bm_get_stats(bm).cached, 2);
    CHECK_EQ(bm_lookup_prefix(bm, &c, t, 9), 8);
    CHECK_EQ(c.blocks[0], a.blocks[0]);
    bm_release(bm, &c);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_seq_free(&c);
    bm_destroy(bm);
}

TEST(bm_lookup_needs_empty_seq) {
    block_manager *bm = bm_new(8, 4, 1);
    if (!bm) return;
    int32_t t[9];
    fill_tokens(t, 9, 1);
    bm_seq a = {0}, b = {0};
    run_seq(bm, &a, t, 9);
    CHECK_EQ(bm_allocate(bm, &b, 1), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 9), 0);
    CHECK_EQ(b.n_blocks, 1);
    CHECK_EQ(bm_get_stats(bm).queries, 2); // a's lookup only
    bm_expect_ok(bm, &a, &b, NULL, NULL);
    bm_release(bm, &a);
    bm_release(bm, &b);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_prefix_caching_off) {
    block_manager *bm = bm_new(8, 4, 0);
    if (!bm) return;
    int32_t t[13];
    fill_tokens(t, 13, 1);
    bm_seq a = {0}, b = {0};
    CHECK_EQ(run_seq(bm, &a, t, 13), 0);
    CHECK_EQ(a.n_hashed, 0);
    for (int i = 0; i < a.n_blocks; i++) CHECK(bm_get_page_tokens(bm, a.blocks[i]) == NULL);
    bm_release(bm, &a);
    CHECK_EQ(bm_lookup_prefix(bm, &b, t, 13), 0);
    CHECK_EQ(b.n_blocks, 0);
    bm_stats st = bm_get_stats(bm);
    CHECK_EQ(st.cached, 0);
    CHECK_EQ(st.queries, 0);
    CHECK_EQ(st.hits, 0);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_destroy(bm);
}

TEST(bm_reset_prefix_cache_forgets) {
    block_manager *bm = bm_new(16, 4, 1);
    if (!bm) return;
    int32_t t[9], u[9];
    fill_tokens(t, 9, 1);
    fill_tokens(u, 9, 40);
    bm_seq a = {0}, b = {0}, c = {0};
    run_seq(bm, &a, t, 9);
    bm_release(bm, &a);
    run_seq(bm, &b, u, 9); // b keeps running across the reset
    CHECK_EQ(bm_get_stats(bm).cached, 2);
    bm_reset_prefix_cache(bm);
    CHECK_EQ(bm_get_stats(bm).cached, 0);
    CHECK_EQ(bm_get_stats(bm).used, 3);
    CHECK_EQ(bm_num_free(bm), 13);
    for (int i = 0; i < b.n_blocks; i++) CHECK_EQ(bm_get_refcount(bm, b.blocks[i]), 1);
    bm_expect_ok(bm, &b, NULL, NULL, NULL);
    CHECK_EQ(bm_lookup_prefix(bm, &c, t, 9), 0);
    CHECK_EQ(bm_lookup_prefix(bm, &c, u, 9), 0);
    bm_release(bm, &b);
    CHECK_EQ(bm_get_stats(bm).cached, 0);
    CHECK_EQ(run_seq(bm, &c, t, 9), 0); // the cache fills again
    bm_release(bm, &c);
    CHECK_EQ(bm_lookup_prefix(bm, &c, t, 9), 8);
    bm_release(bm, &c);
    bm_expect_ok(bm, NULL, NULL, NULL, NULL);
    bm_seq_free(&a);
    bm_seq_free(&b);
    bm_seq_free(&c);
    bm_destroy(bm);
}

// --- randomized property test ----------------------------------------------------
//
// Several live sequences share random prefixes of a few base prompts and are
// added (lookup + allocate a first chunk), grown (prefill chunks, then decode
// tokens), preempted and released at random. A shadow copy of the KV cache
// records which token each page slot was computed for, so a prefix hit is
// checked end to end: the pages served hold exactly the prompt's tokens.

enum { PR_MAX_LIVE = 6, PR_MAX_TOKENS = 160, PR_BASES = 4, PR_BASE_LEN = 96 };

typedef struct {
    bm_seq pages;
    int32_t tokens[PR_MAX_TOKENS];
    int n_tokens, n_computed;
} pr_seq;

typedef struct {
    block_manager *bm;
    int bs, num_blocks, vocab;
    int32_t *shadow; // [num_blocks, bs] token whose K/V each slot holds, -1 none
    int32_t base[PR_BASES][PR_BASE_LEN];
    pr_seq live[PR_MAX_LIVE];
    int n_live;
    uint64_t rng;
    int hits, alloc_failures, evictions, failed; // what the run exercised; failed stops it
} pr_state;

static uint32_t pr_rand(pr_state *s, uint32_t n) {
    s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((s->rng >> 33) % n);
}

static void pr_fail(pr_state *s, const char *what, int step) {
    CHECK_MSG(0, "step %d (bs %d): %s", step, s->bs, what);
    s->failed = 1;
}

// "Computes" tokens [n_computed, n_computed + k) of q: writes the shadow cache,
// which must only touch pages q holds alone, then registers full pages.
static void pr_compute(pr_state *s, pr_seq *q, int k, int step) {
    for (int pos = q->n_computed; pos < q->n_computed + k; pos++) {
        int p = q->pages.blocks[pos / s->bs];
        if (bm_get_refcount(s->bm, p) != 1) pr_fail(s, "writing a shared page", step);
        s->shadow[(size_t)p * s->bs + pos % s->bs] = q->tokens[pos];
    }
    q->n_computed += k;
    bm_cache_full_pages(s->bm, &q->pages, q->tokens, q->n_computed);
}

// bm_allocate, counting the cached pages it evicted.
static int pr_allocate(pr_state *s, pr_seq *q, int n_tokens) {
    int cached = bm_get_stats(s->bm).cached;
    int rc = bm_allocate(s->bm, &q->pages, n_tokens);
    s->evictions += cached - bm_get_stats(s->bm).cached;
    if (rc) s->alloc_failures++;
    return rc;
}

static void pr_remove(pr_state *s, int i) {
    bm_release(s->bm, &s->live[i].pages);
    bm_seq_free(&s->live[i].pages);
    s->live[i] = s->live[--s->n_live];
    memset(&s->live[s->n_live], 0, sizeof s->live[s->n_live]);
}

static void pr_add(pr_state *s, int step) {
    pr_seq *q = &s->live[s->n_live++];
    memset(q, 0, sizeof *q);
    const int32_t *base = s->base[pr_rand(s, PR_BASES)];
    int shared = (int)pr_rand(s, 81), extra = (int)pr_rand(s, 9);
    if (shared + extra == 0) extra = 1;
    memcpy(q->tokens, base, (size_t)shared * sizeof *base);
    for (int i = 0; i < extra; i++) q->tokens[shared + i] = (int32_t)pr_rand(s, s->vocab);
    int n = q->n_tokens = shared + extra;

    int covered = bm_lookup_prefix(s->bm, &q->pages, q->tokens, n);
    if (covered % s->bs || covered > (n - 1) / s->bs * s->bs || covered < 0)
        pr_fail(s, "lookup covered a bad token count", step);
    if (q->pages.n_blocks != covered / s->bs || q->pages.n_hashed != q->pages.n_blocks)
        pr_fail(s, "lookup left a bad table", step);
    for (int i = 0; i < q->pages.n_blocks; i++) {
        int p = q->pages.blocks[i];
        const int32_t *want = q->tokens + (size_t)i * s->bs, *stored = bm_get_page_tokens(s->bm, p);
        size_t len = (size_t)s->bs * sizeof *want;
        if (!stored || memcmp(stored, want, len)) pr_fail(s, "hit page stores other tokens", step);
        if (memcmp(s->shadow + (size_t)p * s->bs, want, len))
            pr_fail(s, "hit page holds other K/V", step);
    }
    s->hits += covered > 0;
    q->n_computed = covered;
    int k = 1 + (int)pr_rand(s, (uint32_t)(n - covered));
    if (pr_allocate(s, q, covered + k) != 0) {
        pr_remove(s, s->n_live - 1); // as the scheduler: give the prefix back, retry later
        return;
    }
    pr_compute(s, q, k, step);
}

// A prefill chunk, or one decode token once the prompt is done.
static void pr_grow(pr_state *s, int step) {
    int i = (int)pr_rand(s, (uint32_t)s->n_live);
    pr_seq *q = &s->live[i];
    int k;
    if (q->n_computed < q->n_tokens) {
        k = 1 + (int)pr_rand(s, (uint32_t)(q->n_tokens - q->n_computed));
    } else {
        if (q->n_tokens == PR_MAX_TOKENS) {
            pr_remove(s, i); // finished
            return;
        }
        q->tokens[q->n_tokens++] = (int32_t)pr_rand(s, s->vocab);
        k = 1;
    }
    if (pr_allocate(s, q, q->n_computed + k) != 0) {
        if (pr_rand(s, 2)) pr_remove(s, i); // preempted
        return;
    }
    pr_compute(s, q, k, step);
}

// Checks after every step: bm_check, page accounting, no page twice in one
// table, and every indexed page's stored tokens equal to what it holds.
static void pr_verify(pr_state *s, uint8_t *mark, int step) {
    const bm_seq *v[PR_MAX_LIVE];
    for (int i = 0; i < s->n_live; i++) v[i] = &s->live[i].pages;
    char err[LLM_ERR_LEN] = "";
    if (bm_check(s->bm, v, s->n_live, err)) pr_fail(s, err, step);
    bm_stats st = bm_get_stats(s->bm);
    if (st.used + bm_num_free(s->bm) != st.total) pr_fail(s, "used + free != total", step);
    if (st.cached > bm_num_free(s->bm)) pr_fail(s, "more cached than free pages", step);
    memset(mark, 0, (size_t)s->num_blocks);
    int distinct = 0;
    for (int i = 0; i < s->n_live; i++) {
        const bm_seq *q = &s->live[i].pages;
        for (int b = 0; b < q->n_blocks; b++) {
            int p = q->blocks[b];
            if (mark[p] == i + 1) pr_fail(s, "a page held twice by one sequence", step);
            distinct += mark[p] == 0;
            mark[p] = (uint8_t)(i + 1);
        }
    }
    if (distinct != st.used) pr_fail(s, "used != distinct pages held", step);
    for (int p = 0; p < s->num_blocks; p++) {
        const int32_t *stored = bm_get_page_tokens(s->bm, p);
        if (stored && memcmp(stored, s->shadow + (size_t)p * s->bs, (size_t)s->bs * 4))
            pr_fail(s, "indexed page's K/V were overwritten", step);
    }
}

static void pr_run(int num_blocks, int bs, int vocab, int steps, uint64_t seed) {
    pr_state s = {.bs = bs, .num_blocks = num_blocks, .vocab = vocab, .rng = seed};
    s.bm = bm_new(num_blocks, bs, 1);
    s.shadow = malloc((size_t)num_blocks * bs * sizeof *s.shadow);
    uint8_t *mark = malloc((size_t)num_blocks);
    if (!s.bm || !s.shadow || !mark) {
        CHECK(s.shadow && mark);
        goto done;
    }
    memset(s.shadow, 0xff, (size_t)num_blocks * bs * sizeof *s.shadow);
    for (int b = 0; b < PR_BASES; b++)
        for (int i = 0; i < PR_BASE_LEN; i++) s.base[b][i] = (int32_t)pr_rand(&s, (uint32_t)vocab);
    for (int step = 0; step < steps && !s.failed; step++) {
        uint32_t r = pr_rand(&s, 100);
        if (r < 30 && s.n_live < PR_MAX_LIVE)
            pr_add(&s, step);
        else if (r < 85 && s.n_live > 0)
            pr_grow(&s, step);
        else if (r < 99 && s.n_live > 0)
            pr_remove(&s, (int)pr_rand(&s, (uint32_t)s.n_live));
        else if (pr_rand(&s, 5) == 0)
            bm_reset_prefix_cache(s.bm);
        pr_verify(&s, mark, step);
    }
    // the run must have exercised hits, a full pool and evictions
    CHECK_MSG(s.hits > steps / 50, "bs %d: only %d prefix hits", bs, s.hits);
    CHECK_MSG(s.alloc_failures > 0, "bs %d: the pool never ran out", bs);
    CHECK_MSG(s.evictions > 0, "bs %d: no cached page was evicted", bs);
    while (s.n_live > 0) pr_remove(&s, s.n_live - 1);
    char err[LLM_ERR_LEN] = "";
    CHECK_MSG(bm_check(s.bm, NULL, 0, err) == 0, "%s", err);
    CHECK_EQ(bm_num_free(s.bm), num_blocks);
done:
    for (int i = 0; i < s.n_live; i++) bm_seq_free(&s.live[i].pages);
    free(mark);
    free(s.shadow);
    bm_destroy(s.bm);
}

TEST(bm_property_random_sharing) {
    pr_run(40, 4, 4, 20000, 1); // small vocab: equal pages under different parents
    pr_run(24, 1, 3, 20000, 2); // every token a page
    pr_run(14, 16, 50, 20000, 3);
}
