// request.c - see request.h.
#include "request.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

request *request_create(int64_t id, uint64_t arrival, const int32_t *prompt, int n_prompt, int cap,
                        const sampling_params *sp, int vocab, const int *eos_ids, int n_eos,
                        char *err) {
    request *r = llm_calloc(1, sizeof *r, err);
    if (!r) return NULL;
    r->tokens = llm_malloc((size_t)cap * sizeof(int32_t), err);
    r->sampler =
        r->tokens ? sampler_seq_create(sp, vocab, eos_ids, n_eos, prompt, n_prompt, err) : NULL;
    if (!r->sampler) {
        request_free(r);
        return NULL;
    }
    memcpy(r->tokens, prompt, (size_t)n_prompt * sizeof(int32_t));
    r->n_tokens = r->n_prompt = n_prompt;
    r->cap = cap;
    r->params = *sp;
    r->id = id;
    r->arrival = arrival;
    r->status = REQ_WAITING;
    r->t_added = llm_now();
    r->queue_time = -1;
    return r;
}

void request_free(request *r) {
    if (!r) return;
    bm_seq_free(&r->pages);
    sampler_seq_destroy(r->sampler);
    free(r->tokens);
    free(r);
}
