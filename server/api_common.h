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

#endif
