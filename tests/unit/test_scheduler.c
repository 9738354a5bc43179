// The scheduler's promise that no request is ever dropped: preempting a
// running request needs no memory (sched_add reserved its place in the
// waiting queue), so a preemption cannot fail and lose it.
#include <stdlib.h>

#include "harness.h"
#include "scheduler.h"
#include "util.h"

#define N_REQ 24
#define BLOCK 4

TEST(sched_preemption_needs_no_memory_and_drops_nothing) {
    char err[LLM_ERR_LEN] = "";
    block_manager *bm = bm_create(8, BLOCK, 0, err); // room for 8 one-page prompts
    scheduler s;
    CHECK_MSG(bm && sched_init(&s, 8, 64, bm, err) == 0, "%s", err);
    if (!bm) return;
    request *r[N_REQ];
    sampling_params sp = sampling_params_default();
    const int32_t prompt[BLOCK] = {5, 6, 7, 8};
    const int eos = 2;
    // 16 wait; 8 are admitted (the pool is full); 8 more arrive, so the
    // waiting queue holds as many as it ever held before
    for (int i = 0; i < N_REQ; i++) {
        r[i] = request_create(i, (uint64_t)i, prompt, BLOCK, 40, &sp, 100, &eos, 1, err);
        CHECK_MSG(r[i] != NULL, "%s", err);
        if (!r[i]) return;
    }
    sched_item items[8];
    for (int i = 0; i < 16; i++) CHECK_EQ(sched_add(&s, r[i]), 0);
    int n = sched_plan(&s, items);
    CHECK_EQ(n, 8);
    sched_commit(&s, items, n);
    for (int i = 16; i < N_REQ; i++) CHECK_EQ(sched_add(&s, r[i]), 0);
    CHECK(s.waiting.cap >= s.waiting.n + s.running.n);
    // every running request generated a token: each needs a second page, and
    // the pool has none, so the newest running requests are preempted
    for (int i = 0; i < s.running.n; i++) s.running.v[i]->tokens[s.running.v[i]->n_tokens++] = 9;
    request **waiting_before = s.waiting.v;
    int waiting_cap = s.waiting.cap;
    n = sched_plan(&s, items);
    CHECK(s.preemptions > 0);
    CHECK(s.waiting.v == waiting_before && s.waiting.cap == waiting_cap); // no allocation
    CHECK_EQ(s.waiting.n + s.running.n, N_REQ);
    for (int i = 0; i < N_REQ; i++) CHECK(r[i]->status != REQ_FINISHED);
    // the preempted go back to the front, in admission order, ahead of the new arrivals
    CHECK(s.waiting.v[0]->arrival < 8);
    for (int i = 0; i < N_REQ; i++) {
        bm_release(bm, &r[i]->pages);
        request_free(r[i]);
    }
    sched_free(&s);
    bm_destroy(bm);
}
