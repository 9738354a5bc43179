// gen.h - one generation request as the HTTP handlers see it: submitted to
// the engine thread, its tokens turned into text (streamed detokenization,
// stop strings), latencies measured, metrics and in-flight count kept.
// Used from the request's own connection thread only.
#ifndef LLM_GEN_H
#define LLM_GEN_H

#include "server.h"
#include "stop.h"

// One generated token, as logprobs report it.
typedef struct {
    int token;
    sample_result sample;
} gen_token;

typedef struct {
    server *s;
    http_req *q;
    et_request *r;
    tok_stream *ts;
    stop_checker *stop;
    sampling_params sp;
    int n_prompt, n_cached, n_generated;
    double t_start, t_first, t_last;
    double t_checked;          // last deadline / hang-up check
    double queue_time;         // from the engine's first event; -1 before
    const char *finish_reason; // set when done
    int stop_index;            // the stop string hit, or -1
    int done;
    int counted; // 1 while counted in s->in_flight
    // text made visible by the latest gen_wait (owned, reset by each call)
    char *text;
    size_t text_len, text_cap;
    // tokens consumed by the latest gen_wait (for logprobs)
    gen_token *toks;
    int n_toks, toks_cap;
} gen;

// Submits a request. stops: the stop strings (also copied into sp). On
// failure returns -1 with *status (400 for a request the engine rejects,
// 503 when the queue is full or the server is draining) and err filled.
int gen_start(gen *g, http_req *q, const int32_t *ids, int n_ids, const sampling_params *sp,
              int *status, char *err);

// Waits for the request's next events (all that are ready, at least one),
// then fills g->text / g->toks with what they made visible. Sets g->done
// and g->finish_reason at the end; a client that hangs up or a request past
// --request-timeout ends the request with "abort". Returns 0, or -1 with err
// when out of memory (the request is aborted).
int gen_wait(gen *g, char *err);

// Ends the request (aborting it when not done), records metrics and frees
// everything. Safe to call twice.
void gen_finish(gen *g);

// The text of one token for logprobs (special tokens included), malloc'd.
char *gen_token_text(server *s, int token);

#endif
