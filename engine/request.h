// request.h - one generation request as the engine holds it: its tokens
// (prompt, then generated), how many of them are in the KV cache, its pages,
// its sampler, and the timing the server reports.
#ifndef LLM_REQUEST_H
#define LLM_REQUEST_H

#include <stdint.h>

#include "block_manager.h"
#include "sampler.h"

typedef enum { REQ_WAITING, REQ_RUNNING, REQ_FINISHED } req_status;

typedef struct {
    int64_t id;
    req_status status;
    int32_t *tokens; // [n_tokens] prompt then generated tokens
    int n_tokens;
    int cap;
    int n_prompt;
    int n_computed; // leading tokens whose K/V are in the cache
    int n_cached;   // prompt tokens the prefix cache served at first admission
    int admitted;   // admitted once already (prefix stats count the first time)
    bm_seq pages;
    sampler_seq *sampler;
    sampling_params params;
    uint64_t arrival;  // admission order, for FCFS and preemption
    double t_added;    // llm_now() at engine_add_request
    double queue_time; // seconds from t_added to the first admission; -1 before
} request;

// A waiting request of id and arrival order with a copy of the prompt and
// room for cap tokens in all (prompt + generated, cap > n_prompt); its
// sampler stops at any of the n_eos eos_ids (vocabulary of vocab tokens).
// Returns NULL with err when out of memory or sp is invalid for the sampler.
request *request_create(int64_t id, uint64_t arrival, const int32_t *prompt, int n_prompt, int cap,
                        const sampling_params *sp, int vocab, const int *eos_ids, int n_eos,
                        char *err);

// Frees r, its tokens, sampler and page list (its pages must be released to
// the block manager first). NULL is ignored.
void request_free(request *r);

#endif
