// scheduler.h - continuous batching policy (vLLM V1 semantics): FCFS; each
// step every running sequence gets its next tokens first (a decode token, or
// the next chunk of a prompt), then waiting sequences are admitted while the
// token budget, max_num_seqs and the page pool allow (chunked prefill). When
// a running sequence cannot get a page, the most recently admitted running
// sequence is preempted: its pages are freed and it goes back to the front
// of the queue, to be recomputed later. Mechanism (pages) is in block_manager.
#ifndef LLM_SCHEDULER_H
#define LLM_SCHEDULER_H

#include <stdint.h>

#include "block_manager.h"
#include "request.h"

typedef struct {
    request **v;
    int n, cap;
} req_queue;

typedef struct {
    int max_num_seqs;
    int max_num_batched_tokens;
    block_manager *bm;
    req_queue waiting; // FCFS; preempted requests go back to the front
    req_queue running; // in admission order
    uint64_t preemptions;
    uint64_t cached_prompt_tokens;
    uint64_t prompt_tokens;
} scheduler;

// One request's share of a step: tokens [start, start + n) of its sequence.
typedef struct {
    request *r;
    int start;
    int n;
    int sample; // 1: this chunk reaches the end of its known tokens -> sample
} sched_item;

// Sets up an empty scheduler over bm with these limits (the running queue
// sized for max_num_seqs). Returns 0, or -1 with err when out of memory.
int sched_init(scheduler *s, int max_num_seqs, int max_num_batched_tokens, block_manager *bm,
               char *err);

// Appends r to the waiting queue, reserving room there for every request the
// scheduler holds, so that a preempted request can always go back to the
// queue (none is ever dropped). Returns 0, or -1 when out of memory (r is
// then not queued).
int sched_add(scheduler *s, request *r);

// Plans one step into items (capacity max_num_seqs). Pages for the planned
// tokens are allocated; preempted requests are requeued. Returns the count.
int sched_plan(scheduler *s, sched_item *items);

// After the step's forward pass: the items' tokens are computed; full pages
// are registered in the prefix cache.
void sched_commit(scheduler *s, const sched_item *items, int n);

// Takes r out of whichever queue holds it and releases its pages.
void sched_remove(scheduler *s, request *r);

void sched_free(scheduler *s);

#endif
