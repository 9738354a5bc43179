#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int queue_reserve(req_queue *q, int n) {
    if (n <= q->cap) return 0;
    int cap = q->cap ? q->cap * 2 : 16;
    while (cap < n) cap *= 2;
    request **v = realloc(q->v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    q->v = v;
    q->cap = cap;
    return 0;
}

static int queue_push_back(req_queue *q, request *r) {
    if (queue_reserve(q, q->n + 1)) return -1;
    q->v[q->n++] = r;
    return 0;
}

static int queue_push_front(req_queue *q, request *r) {
    if (queue_reserve(q, q->n + 1)) return -1;
    memmove(q->v + 1, q->v, (size_t)q->n * sizeof *q->v);
    q->v[0] = r;
    q->n++;
    return 0;
}

static void queue_remove_at(req_queue *q, int i) {
    memmove(q->v + i, q->v + i + 1, (size_t)(q->n - i - 1) * sizeof *q->v);
    q->n--;
}

static int queue_find(const req_queue *q, const request *r) {
    for (int i = 0; i < q->n; i++)
        if (q->v[i] == r) return i;
    return -1;
}

int sched_init(scheduler *s, int max_num_seqs, int max_num_batched_tokens, block_manager *bm,
               char *err) {
    *s = (scheduler){
        .max_num_seqs = max_num_seqs, .max_num_batched_tokens = max_num_batched_tokens, .bm = bm};
    if (queue_reserve(&s->running, max_num_seqs)) return llm_errf(err, "out of memory");
    return 0;
}

int sched_add(scheduler *s, request *r) {
    // room in the waiting queue for every request held: a preempted one always fits
    if (queue_reserve(&s->waiting, s->waiting.n + s->running.n + 1)) return -1;
    r->status = REQ_WAITING;
    queue_push_back(&s->waiting, r);
    return 0;
}

// Frees the pages of the most recently admitted running request and puts it
// back at the front of the waiting queue (recompute later).
static request *preempt_last(scheduler *s) {
    request *victim = s->running.v[--s->running.n];
    bm_release(s->bm, &victim->pages);
    victim->n_computed = 0;
    victim->status = REQ_WAITING;
    s->preemptions++;
    // cannot fail: sched_add reserved waiting room for every request held
    queue_push_front(&s->waiting, victim);
    return victim;
}

// Tokens r may compute this step under the token budget (the engine ends a
// request before it passes max_model_len).
static int chunk_len(const request *r, int budget) {
    int n = r->n_tokens - r->n_computed;
    if (n > budget) n = budget;
    return n;
}

int sched_plan(scheduler *s, sched_item *items) {
    int n_items = 0, budget = s->max_num_batched_tokens, preempted = 0;

    // 1. running requests, oldest first: decodes and continuing prefill chunks
    for (int i = 0; i < s->running.n && budget > 0; i++) {
        request *r = s->running.v[i];
        int n = chunk_len(r, budget);
        if (n <= 0) continue;
        while (bm_allocate(s->bm, &r->pages, r->n_computed + n) != 0) {
            request *victim = preempt_last(s);
            preempted = 1;
            if (victim == r) break;
        }
        if (r->status != REQ_RUNNING) break; // r itself was preempted: nothing newer is left
        items[n_items++] = (sched_item){r, r->n_computed, n, r->n_computed + n == r->n_tokens};
        budget -= n;
    }

    // 2. waiting requests, FCFS, unless this step had to preempt
    while (!preempted && budget > 0 && s->waiting.n > 0 && s->running.n < s->max_num_seqs) {
        request *r = s->waiting.v[0];
        int fresh = r->pages.n_blocks == 0 && r->n_computed == 0;
        if (fresh) r->n_computed = bm_lookup_prefix(s->bm, &r->pages, r->tokens, r->n_tokens);
        int n = chunk_len(r, budget);
        if (bm_allocate(s->bm, &r->pages, r->n_computed + n) != 0) {
            bm_release(s->bm, &r->pages); // give back the prefix pages; retry next step
            r->n_computed = 0;
            break;
        }
        if (!r->admitted) {
            r->admitted = 1;
            r->queue_time = llm_now() - r->t_added;
            r->n_cached = r->n_computed;
            s->cached_prompt_tokens += (uint64_t)r->n_computed;
            s->prompt_tokens += (uint64_t)r->n_prompt;
        }
        queue_remove_at(&s->waiting, 0);
        r->status = REQ_RUNNING;
        queue_push_back(&s->running, r); // cannot fail: running.n < max_num_seqs <= cap
        items[n_items++] = (sched_item){r, r->n_computed, n, r->n_computed + n == r->n_tokens};
        budget -= n;
    }
    return n_items;
}

void sched_commit(scheduler *s, const sched_item *items, int n) {
    for (int i = 0; i < n; i++) {
        request *r = items[i].r;
        r->n_computed = items[i].start + items[i].n;
        bm_cache_full_pages(s->bm, &r->pages, r->tokens, r->n_computed);
    }
}

void sched_remove(scheduler *s, request *r) {
    int i = queue_find(&s->running, r);
    if (i >= 0) queue_remove_at(&s->running, i);
    i = queue_find(&s->waiting, r);
    if (i >= 0) queue_remove_at(&s->waiting, i);
    bm_release(s->bm, &r->pages);
    r->status = REQ_FINISHED;
}

void sched_free(scheduler *s) {
    free(s->waiting.v);
    free(s->running.v);
    s->waiting.v = s->running.v = NULL;
}
