// api_common.h - what the endpoint handlers share: request references for
// streams that outlive their handler, and chat prompts.
#ifndef LLM_API_COMMON_H
#define LLM_API_COMMON_H

#include "gen.h"
#include "params.h"
#include "server.h"

// A stream's response outlives the handler that queued it: it holds a
// reference to the exchange, whose access-log line is written and memory
// freed when the last reference goes.
void http_req_ref(http_req *q);
void http_req_unref(http_req *q);

// The token ids of a chat request: body's "messages" (each with a string
// "role" and a "content" that is a string or a list of text parts), its
// optional "tools" and "chat_template_kwargs", rendered through the model's
// chat template with the generation prompt, then tokenized. Returns 0, or -1
// with *status, *param and err filled (400 for a malformed message or a
// template error, e.g. roles out of order).
int api_chat_prompt(server *s, const cJSON *body, int32_t **ids, int *n_ids, const char **param,
                    int *status, char *err);

// --- the objects of the answers (api_objects.c) ---

// Completions: {"tokens","token_logprobs","top_logprobs","text_offset"}.
typedef struct {
    cJSON *obj, *tokens, *lps, *tops, *offsets;
    size_t offset; // text offset of the next token
} cmpl_logprobs;

void api_cmpl_lp_init(cmpl_logprobs *l, size_t offset);
void api_cmpl_lp_add(server *s, cmpl_logprobs *l, const gen_token *t);
// Chat: one {"token","logprob","bytes","top_logprobs"} entry.
cJSON *api_chat_lp_entry(server *s, const gen_token *t);
// {"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details"}.
cJSON *api_usage(const gen *g);
// "stop_reason": the stop string that ended g, or null.
void api_add_stop_reason(cJSON *choice, const gen *g);
// {"id","object","created","model"}.
cJSON *api_envelope(const char *id, const char *object, double created, const char *model);

// Runs a non-streamed request to the end; its text and logprobs are built
// by the caller from what this gathers.
typedef struct {
    char *text;
    size_t len, cap;
    gen_token *toks;
    int n_toks, cap_toks;
} collected;

int api_collect(gen *g, collected *c, int want_tokens);

// 1 when the prompt (field `param`) is empty or leaves no room for
// max_tokens within the context: a 400 is queued into *ret.
int api_prompt_rejected(http_req *q, int n_ids, int max_tokens, const char *param,
                        enum MHD_Result *ret);

// --- server-sent events (sse.c) ---

// Answers q with an event stream (text/event-stream) of api's chunks: submits
// ids (copied) with sp, then streams the text as it comes, the final chunk
// with finish_reason, usage when o asks, and [DONE]. id_prefix names the
// stream's id ("chatcmpl-", "cmpl-"; NULL: none); echo_text (owned, may be
// NULL) is sent first (completions with echo). An error before the stream
// starts is answered as JSON.
enum MHD_Result sse_answer(http_req *q, api_kind api, const api_opts *o, sampling_params *sp,
                           const int32_t *ids, int n_ids, const char *id_prefix, char *echo_text);

#endif
